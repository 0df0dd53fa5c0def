//! The environment registry: short names (`scienceworld`, `lockbox`, ...) for the bridges this
//! repository ships, and how any other `--env` value becomes a bridge command line.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use stepwire_sdk::client::{python_interpreter, BridgeCommand};

/// How a known environment's bridge is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// A Python script, relative to the repository root, run with the project's Python.
    Python(&'static str),
    /// A Rust binary built in this workspace (found next to `stepwire` or in `target/`).
    Binary { bin: &'static str, package: &'static str },
}

/// A bridge the registry knows by name.
#[derive(Debug, Clone, Copy)]
pub struct KnownEnv {
    pub name: &'static str,
    pub about: &'static str,
    pub launch: Launch,
}

/// Every name `--env` understands.
pub const KNOWN_ENVS: &[KnownEnv] = &[
    KnownEnv {
        name: "scienceworld",
        about: "ScienceWorld (Java 17; `scienceworld` Python package)",
        launch: Launch::Python("bridges/scienceworld/bridge.py"),
    },
    KnownEnv {
        name: "alfworld",
        about: "ALFWorld text games (see data/alfworld/README.md)",
        launch: Launch::Python("bridges/alfworld/bridge.py"),
    },
    KnownEnv {
        name: "textworld",
        about: "TextWorld games generated with tw-make",
        launch: Launch::Python("bridges/textworld/bridge.py"),
    },
    KnownEnv {
        name: "babyai",
        about: "BabyAI levels as text (`minigrid` package; minigrid's BabyAIBot as the expert)",
        launch: Launch::Python("bridges/babyai/bridge.py"),
    },
    KnownEnv {
        name: "toytext",
        about: "Gymnasium's Taxi and FrozenLake as text (value iteration as the expert)",
        launch: Launch::Python("bridges/toytext/bridge.py"),
    },
    KnownEnv {
        name: "lockbox",
        about: "the example Rust bridge (cargo build -p stepwire-example-bridge)",
        launch: Launch::Binary { bin: "lockbox-bridge", package: "stepwire-example-bridge" },
    },
    KnownEnv {
        name: "python-example",
        about: "the example Python bridge (a small garden game)",
        launch: Launch::Python("examples/python-bridge/bridge.py"),
    },
];

/// An `--env` value turned into something to spawn.
#[derive(Debug, Clone)]
pub struct ResolvedEnv {
    /// The registry name, or the program's file name for a command line.
    pub name: String,
    pub command: BridgeCommand,
}

/// The names `--env` knows, comma separated (for messages and `--help`).
pub fn known_names() -> String {
    KNOWN_ENVS.iter().map(|e| e.name).collect::<Vec<_>>().join(", ")
}

/// Finds the stepwire checkout whose bridges and `.venv` the named environments run:
/// `$STEPWIRE_ROOT` when set, else upward from the executable (`<repo>/target/<profile>/stepwire`).
/// Never from the working directory: a checkout planted above it (`/tmp/Cargo.toml`,
/// `/tmp/bridges/`, `/tmp/.venv/`) would otherwise run its code.
pub fn repo_root() -> Option<PathBuf> {
    let explicit = std::env::var_os("STEPWIRE_ROOT").filter(|v| !v.is_empty()).map(PathBuf::from);
    root_from(explicit.as_deref(), std::env::current_exe().ok().as_deref())
}

fn root_from(explicit: Option<&Path>, exe: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(dir) => find_root_from(dir).filter(|r| r == dir),
        None => find_root_from(exe?.parent()?),
    }
}

fn find_root_from(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|d| d.join("Cargo.toml").is_file() && d.join("bridges").is_dir() && d.join("sdk").is_dir())
        .map(Path::to_path_buf)
}

/// Resolves `--env`: a registry name, else a command line split with shell-words rules.
pub fn resolve(spec: &str) -> anyhow::Result<ResolvedEnv> {
    let spec = spec.trim();
    if spec.is_empty() {
        bail!("--env is empty; known environments: {}", known_names());
    }
    if let Some(known) = KNOWN_ENVS.iter().find(|e| e.name == spec) {
        return resolve_known(known);
    }
    let words = split_command_line(spec)?;
    let Some((program, args)) = words.split_first() else {
        bail!("--env is empty; known environments: {}", known_names());
    };
    let program_path = Path::new(program);
    let exists = if program.contains('/') { program_path.exists() } else { in_path(program).is_some() };
    if !exists {
        bail!(
            "unknown environment `{spec}`: not a known name and `{program}` is no such file or program\n\
             known environments: {}\n\
             (or give a bridge command line, e.g. --env \"./my-bridge --flag\")",
            known_names()
        );
    }
    let command = BridgeCommand::new(program.as_str()).args(args.iter().map(String::as_str));
    Ok(ResolvedEnv { name: command.name.clone(), command })
}

fn resolve_known(known: &KnownEnv) -> anyhow::Result<ResolvedEnv> {
    let root = repo_root();
    let command = match known.launch {
        Launch::Python(script) => {
            let root = root.with_context(|| {
                format!(
                    "cannot find the stepwire checkout holding {script} (looked upward from the \
                     executable); set STEPWIRE_ROOT to the checkout or give --env a command line"
                )
            })?;
            let path = root.join(script);
            if !path.is_file() {
                bail!("the `{}` bridge is missing: {} does not exist", known.name, path.display());
            }
            BridgeCommand::new(python_interpreter(Some(&root))).arg(path).name(known.name)
        }
        Launch::Binary { bin, package } => {
            let path = find_binary(bin, root.as_deref()).with_context(|| {
                format!(
                    "cannot find the `{bin}` binary (looked next to stepwire and in target/debug, target/release); \
                     build it with `cargo build -p {package}`"
                )
            })?;
            BridgeCommand::new(path).name(known.name)
        }
    };
    Ok(ResolvedEnv { name: known.name.to_string(), command })
}

/// Looks for a workspace binary next to the current executable, then in `<repo>/target/{debug,release}`.
fn find_binary(bin: &str, root: Option<&Path>) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)) {
        candidates.push(dir.join(bin));
        // `cargo test` runs test binaries from target/<profile>/deps.
        if dir.ends_with("deps") {
            if let Some(parent) = dir.parent() {
                candidates.push(parent.join(bin));
            }
        }
    }
    if let Some(root) = root {
        candidates.push(root.join("target/debug").join(bin));
        candidates.push(root.join("target/release").join(bin));
    }
    candidates.into_iter().find(|p| p.is_file())
}

fn in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file())
}

/// Splits a command line the way a POSIX shell splits words: whitespace separates, single quotes
/// keep everything literal, double quotes allow `\"`, `\\`, `\$` and `` \` `` escapes, a backslash
/// outside quotes escapes the next character. No expansion of any kind.
pub fn split_command_line(line: &str) -> anyhow::Result<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => bail!("unterminated single quote in `{line}`"),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => bail!("unterminated double quote in `{line}`"),
                        },
                        Some(c) => word.push(c),
                        None => bail!("unterminated double quote in `{line}`"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(c) => word.push(c),
                    None => bail!("trailing backslash in `{line}`"),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_checkout_planted_above_the_working_directory_is_never_used() {
        let planted = tempfile::tempdir().unwrap();
        let real = tempfile::tempdir().unwrap();
        for root in [planted.path(), real.path()] {
            std::fs::write(root.join("Cargo.toml"), "").unwrap();
            std::fs::create_dir_all(root.join("bridges")).unwrap();
            std::fs::create_dir_all(root.join("sdk")).unwrap();
            std::fs::create_dir_all(root.join("target/release")).unwrap();
        }
        let exe = real.path().join("target/release/stepwire");
        // The working directory plays no part: only the executable's checkout or an explicit one.
        assert_eq!(super::root_from(None, Some(&exe)).as_deref(), Some(real.path()));
        assert_eq!(super::root_from(Some(planted.path()), Some(&exe)).as_deref(), Some(planted.path()));
        assert_eq!(super::root_from(Some(&planted.path().join("sdk")), Some(&exe)), None, "not a checkout");
        let loose = tempfile::tempdir().unwrap();
        assert_eq!(super::root_from(None, Some(&loose.path().join("stepwire"))), None);
    }

    use super::*;

    #[test]
    fn splits_like_a_shell() {
        let w = split_command_line(r#"./b --flag 'a b' "c \"d\"" e\ f '' x"#).unwrap();
        assert_eq!(w, ["./b", "--flag", "a b", "c \"d\"", "e f", "", "x"]);
        assert!(split_command_line("'open").is_err());
        assert!(split_command_line("\"open").is_err());
        assert_eq!(split_command_line("  ").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let e = resolve("no-such-env-xyz").unwrap_err().to_string();
        assert!(e.contains("scienceworld") && e.contains("lockbox"), "{e}");
    }

    #[test]
    fn command_lines_resolve() {
        let r = resolve("/bin/sh -c 'exit 0'").unwrap();
        assert_eq!(r.name, "sh");
        assert_eq!(r.command.args, vec![std::ffi::OsString::from("-c"), std::ffi::OsString::from("exit 0")]);
    }
}
