//! Shared bits of the example hosts: where the binaries are, and the game both hosts play.

use std::path::PathBuf;

use stepwire_sdk::client::{BridgeClient, BridgeCommand, BridgeOptions};

/// A binary built next to this example (`stepwire`, `lockbox-bridge`).
pub fn sibling_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the example knows where it runs from");
    exe.parent().expect("binaries live in a directory").join(name)
}

/// The host's "game": the lockbox environment, spawned as a bridge process.
pub async fn start_game() -> anyhow::Result<BridgeClient> {
    let cmd = BridgeCommand::new(sibling_binary("lockbox-bridge")).name("lockbox");
    BridgeClient::spawn(cmd, BridgeOptions::default())
        .await
        .map_err(|e| anyhow::anyhow!("{e} (build it first: cargo build -p stepwire-example-bridge)"))
}

/// `--policy <rules|model dir>` from the command line; the bundled tiny model by default.
pub fn policy_arg() -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--policy")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| "models/tiny-llama".into())
}
