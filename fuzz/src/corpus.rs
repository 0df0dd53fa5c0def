//! Seed inputs, read from the repository at run time: every schema example (as the message a
//! peer would send), the bundled policy manifests, recorded episodes, and `fuzz/corpus/`.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// The repository root (this crate sits in `fuzz/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("fuzz/ has a parent").to_path_buf()
}

fn files_under(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path, ext));
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// JSON-RPC messages as a peer sends them: each schema example wrapped as the request,
/// notification or response it belongs to, plus the envelope examples as they are.
pub fn messages() -> Vec<Vec<u8>> {
    let examples = repo_root().join("schemas/examples");
    let mut out = Vec::new();
    for path in files_under(&examples, "json") {
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let Ok(example) = serde_json::from_str::<Value>(&text) else { continue };
        let kind = path.parent().and_then(|d| d.file_name()).map(|n| n.to_string_lossy().into_owned());
        let message = match kind.as_deref().and_then(|k| k.rsplit_once('.')) {
            Some((method, "params")) => {
                let method = method.replace('.', "/");
                let method = if method == "cancelRequest" || method == "progress" || method == "logMessage" {
                    format!("$/{method}")
                } else {
                    method
                };
                json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": example})
            }
            Some((_, "result")) => json!({"jsonrpc": "2.0", "id": 7, "result": example}),
            _ => example,
        };
        out.push(message.to_string().into_bytes());
    }
    out
}

/// Byte streams: frames of the seed messages, one to three in a row, and `fuzz/corpus/frame/`.
pub fn frames() -> Vec<Vec<u8>> {
    let messages = messages();
    let mut out: Vec<Vec<u8>> = messages.iter().map(|m| stepwire_sdk::framing::frame_bytes(m)).collect();
    for pair in messages.windows(3) {
        out.push(pair.iter().flat_map(|m| stepwire_sdk::framing::frame_bytes(m)).collect());
    }
    for path in files_under(&repo_root().join("fuzz/corpus/frame"), "bin") {
        if let Ok(bytes) = std::fs::read(path) {
            out.push(bytes);
        }
    }
    out
}

/// Every policy manifest in the repository.
pub fn manifests() -> Vec<Vec<u8>> {
    let root = repo_root();
    let mut paths = files_under(&root.join("models"), "toml");
    paths.extend(files_under(&root.join("train/manifests"), "toml"));
    paths.into_iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// Recordings: the first lines of the recorded episodes the training tests use.
pub fn recordings() -> Vec<Vec<u8>> {
    let root = repo_root();
    files_under(&root.join("train/tests/data"), "jsonl")
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|text| text.lines().take(40).collect::<Vec<_>>().join("\n").into_bytes())
        .collect()
}
