//! Every fuzz target briefly, in CI: the seeds load, and a few thousand edited inputs pass.
//! The long runs (`stepwire-fuzz --execs ...`) are in RELIABILITY.md.

use stepwire_fuzz::runner::{run, Budget};
use stepwire_fuzz::{corpus, targets};

#[test]
fn every_seed_set_is_there() {
    assert!(corpus::messages().len() >= 25, "schema examples as messages");
    assert!(corpus::frames().len() > corpus::messages().len());
    assert!(corpus::manifests().len() >= 3);
    assert!(corpus::recordings().len() >= 2);
    // The seeds are the real thing: the message seeds decode and classify as messages.
    for m in corpus::messages() {
        assert!(stepwire_sdk::framing::decode_body(&m).is_ok());
    }
}

#[test]
fn every_target_survives_a_short_run() {
    for target in targets::all() {
        let report = run(&target, Budget::Executions(3_000), 7, &|_| {});
        assert_eq!(report.executions, 3_000, "{}", target.name);
        assert!(report.failure.is_none(), "{}: {:?}", target.name, report.failure);
    }
}
