//! Where the programs under test are: beside the harness binary (`target/<profile>/`), as cargo
//! builds them, unless a flag names them.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// `name` next to the running executable, or `given` when set; an error that says how to build
/// it when it is missing.
pub fn locate(given: Option<&Path>, name: &str, package: &str) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => {
            let exe = std::env::current_exe()?;
            let dir = exe.parent().ok_or_else(|| anyhow::anyhow!("the harness binary has no directory"))?;
            // A test binary lives one level deeper, in target/<profile>/deps.
            let dir = if dir.file_name().is_some_and(|n| n == "deps") { dir.parent().unwrap_or(dir) } else { dir };
            dir.join(name)
        }
    };
    if !path.is_file() {
        bail!(
            "{} not found: build it first (`cargo build --release -p {package}`) or name it with a flag",
            path.display()
        );
    }
    Ok(path)
}
