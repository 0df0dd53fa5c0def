//! The bridge target: the SDK's `BridgeClient`, in this process, spawning the lockbox bridge
//! over and over: spawn, reset, steps, shutdown, and now and then a bridge dropped or SIGKILLed
//! in the middle of an episode. What is measured is this process (the host).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use stepwire_sdk::client::{BridgeClient, BridgeCommand, BridgeOptions};
use stepwire_sdk::environment::{EnvError, Environment};
use stepwire_sdk::protocol::ResetParams;

use super::{measure, SoakArgs, TargetOutcome};
use crate::procfs::{self, TREE_MARKER};
use crate::stats::Tally;
use crate::verdict::Criteria;

/// Steps after which an episode is abandoned (lockbox's expert wins in 2 or 3).
const MAX_STEPS: usize = 30;

/// How an episode ends.
#[derive(Debug, Clone, Copy)]
enum Fate {
    /// Played to the end, then `shutdown`.
    Played,
    /// The client dropped mid-episode: the bridge's group is killed.
    Dropped,
    /// The bridge SIGKILLed mid-episode: the next call must say it crashed.
    Killed,
}

fn options() -> BridgeOptions {
    BridgeOptions {
        call_timeout: Duration::from_secs(10),
        initialize_timeout: Duration::from_secs(10),
        shutdown_timeout: Duration::from_secs(5),
        ..BridgeOptions::default()
    }
}

pub async fn soak(args: &SoakArgs, tally: Arc<Tally>) -> anyhow::Result<TargetOutcome> {
    let lockbox = crate::binaries::locate(args.bridge.as_deref(), "lockbox-bridge", "stepwire-example-bridge")?;
    let me = std::process::id();

    // One priming episode: the process-wide setup of child handling happens once, before the baseline.
    let primer = Arc::new(Tally::default());
    episode(&lockbox, &primer, &mut StdRng::seed_from_u64(args.seed), Fate::Played).await;
    anyhow::ensure!(primer.snapshot().unexpected == 0, "the priming episode failed: {:?}", primer.snapshot());

    let duration = Duration::from_secs(args.duration);
    let measured = measure(me, duration, |deadline| {
        let workers: Vec<_> = (0..args.sessions)
            .map(|i| {
                let seed = args.seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
                tokio::spawn(worker(lockbox.clone(), tally.clone(), seed, deadline))
            })
            .collect();
        async move {
            for w in workers {
                w.await?;
            }
            anyhow::Ok(())
        }
    })
    .await?;

    let strays = stray_bridges(me);
    let mut criteria = Criteria::default();
    criteria.check(
        "no stray bridge process",
        strays.is_empty(),
        format!("{} processes carry {TREE_MARKER}={me}.*: {strays:?}", strays.len()),
    );
    let notes = BTreeMap::from([("strayBridges".to_string(), json!(strays))]);
    Ok(TargetOutcome { pid: me, measured, criteria, notes })
}

/// Bridges this process started that are still alive: the client marks every bridge's
/// environment with `STEPWIRE_BRIDGE_TREE=<this pid>.<n>.<time>`, inherited by its children.
pub fn stray_bridges(me: u32) -> Vec<String> {
    let prefix = format!("{me}.");
    procfs::carrying(TREE_MARKER, |v| v.starts_with(&prefix))
        .into_iter()
        .map(|(pid, _)| format!("{pid} {}", procfs::cmdline(pid)))
        .collect()
}

async fn worker(lockbox: PathBuf, tally: Arc<Tally>, seed: u64, deadline: Instant) {
    let mut rng = StdRng::seed_from_u64(seed);
    while Instant::now() < deadline {
        let fate = match rng.random_range(0..100) {
            0..10 => Fate::Dropped,
            10..20 => Fate::Killed,
            _ => Fate::Played,
        };
        episode(&lockbox, &tally, &mut rng, fate).await;
    }
}

/// One bridge, one episode, with the given ending.
async fn episode(lockbox: &Path, tally: &Tally, rng: &mut StdRng, fate: Fate) {
    tally.request();
    let started = Instant::now();
    let mut client = match BridgeClient::spawn(BridgeCommand::new(lockbox), options()).await {
        Ok(c) => c,
        Err(e) => return tally.unexpected(format!("spawn: {e}")),
    };
    tally.timed("spawn", started.elapsed());
    let task = if rng.random_bool(0.5) { "open-box" } else { "find-key" };
    let reset = ResetParams { task: task.into(), variation: Some(rng.random_range(0..40)), ..Default::default() };
    if let Err(e) = client.reset(reset).await {
        return tally.unexpected(format!("reset: {e}"));
    }
    // Interrupted episodes stop after 0 or 1 steps; the rest play to the end.
    let stop_after = match fate {
        Fate::Played => MAX_STEPS,
        _ => rng.random_range(0..2),
    };
    let mut won = false;
    for _ in 0..stop_after {
        let action = match client.expert_action().await {
            Ok(advice) => advice.action.unwrap_or_else(|| "look".into()),
            Err(e) => return tally.unexpected(format!("expert action: {e}")),
        };
        let t = Instant::now();
        match client.step(&action).await {
            Ok(step) => {
                tally.timed("env_step", t.elapsed());
                if step.done {
                    won = step.won;
                    break;
                }
            }
            Err(e) => return tally.unexpected(format!("step: {e}")),
        }
    }
    match fate {
        Fate::Played => {
            if !won {
                tally.unexpected(format!("the expert did not win {task}"));
            }
            match client.shutdown().await {
                Ok(status) if status.success() => tally.expected("played_then_shutdown"),
                other => tally.unexpected(format!("shutdown: {other:?}")),
            }
        }
        Fate::Dropped => {
            drop(client);
            tally.expected("dropped_mid_episode");
        }
        Fate::Killed => {
            let Some(pid) = client.pid() else { return tally.unexpected("a bridge without a pid") };
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
            match client.step("look").await {
                Err(EnvError::Crashed(_)) => tally.expected("killed_mid_episode"),
                other => tally.unexpected(format!("a step after SIGKILL answered {other:?}")),
            }
        }
    }
}
