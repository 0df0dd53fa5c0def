//! Starting the real `stepwire` binary for the server tests.
#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const STEPWIRE: &str = env!("CARGO_BIN_EXE_stepwire");
pub const WAIT: Duration = Duration::from_secs(30);

pub fn spawn(args: &[&str]) -> Child {
    spawn_with_env(args, &[])
}

pub fn spawn_with_env(args: &[&str], env: &[(&str, &str)]) -> Child {
    Command::new(STEPWIRE)
        .args(args)
        .env_remove("STEPWIRE_TOKEN")
        .envs(env.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("stepwire starts")
}

/// Starts `serve --listen 127.0.0.1:0` and reads the bound address from its stderr.
pub async fn listen(extra: &[&str]) -> (Child, String) {
    listen_with_env(extra, &[]).await
}

pub async fn listen_with_env(extra: &[&str], env: &[(&str, &str)]) -> (Child, String) {
    let mut args = vec!["serve", "--policy", "rules"];
    if !extra.contains(&"--listen") {
        args.extend(["--listen", "127.0.0.1:0"]);
    }
    args.extend_from_slice(extra);
    let mut child = spawn_with_env(&args, env);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.split("listening on ws://").nth(1) {
                return rest.split_whitespace().next().unwrap().to_string();
            }
        }
        panic!("stepwire exited before listening");
    })
    .await
    .expect("listens in time");
    // Keep draining stderr so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}
