//! A model's second session (overlapped prefill) is built from the first one's loaded bytes and
//! shares its memory-mapped weights and their pre-packed forms, instead of holding a copy.

mod common;

use common::{init_logs, models_dir, policy_decoder};
use stepwire_onnx::decoder::SessionOptions;
use stepwire_onnx::reference::greedy_padded;

/// Private (anonymous) memory of this process in KiB: what a copy of the weights would add
/// (mapped file pages are not counted, as the kernel can drop them).
fn anon_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:")?.trim().strip_suffix("kB")?.trim().parse().ok())
        .expect("RssAnon in /proc/self/status")
}

#[test]
fn a_second_session_shares_the_first_ones_weights_and_gives_the_same_tokens() {
    init_logs();
    for name in ["scienceworld-step-hrl-genai", "scienceworld-step-hrl-genai-int4"] {
        let dir = models_dir().join(name);
        let mut first = policy_decoder(&dir, SessionOptions { intra_threads: 1, ..Default::default() });
        let (count, bytes) = first.shared_weights().unwrap_or_else(|| panic!("{name}: no weights shared"));
        assert!(count > 0 && bytes > 0, "{name}: {count} initializers, {bytes} bytes shared");
        let before = anon_kib();
        let mut second = first.load_again().unwrap();
        let grown_kib = anon_kib().saturating_sub(before);
        eprintln!("{name}: {count} initializers ({bytes} bytes) shared; the second session added {grown_kib} KiB");
        assert!(first.same_model(&second), "{name}: the second session was not built from the first's bytes");
        if bytes > 8 << 20 {
            // A copy of its own would add the weights again (packed), on top of the ~4 MiB a
            // session itself takes.
            assert!(grown_kib * 1024 < bytes * 3 / 4, "{name}: the second session added {grown_kib} KiB");
        }
        assert_eq!(second.shared_weights(), first.shared_weights());
        assert_eq!(second.last_position_logits, first.last_position_logits);
        let prompt: Vec<u32> = (5..60).collect();
        let a = greedy_padded(&mut first, std::slice::from_ref(&prompt), 0, u32::MAX, 12).unwrap();
        let b = greedy_padded(&mut second, &[prompt], 0, u32::MAX, 12).unwrap();
        assert_eq!(a, b, "{name}: the two sessions disagree");
    }
}
