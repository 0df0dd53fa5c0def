//! Where `libonnxruntime.so` may come from: only places the user chose.
//!
//! Loading a shared library runs its code inside stepwire, so the search never looks in the
//! working directory or its parents (anyone who can create `/tmp/.venv` would otherwise run code
//! in every stepwire started below `/tmp`), nor asks a `python3` found on `PATH` (which imports
//! from the working directory). In order:
//!
//! 1. `ORT_DYLIB_PATH`, which must name an existing file;
//! 2. `$VIRTUAL_ENV` (an activated virtual environment, absolute path);
//! 3. the checkout's own `.venv`, found from the executable's path: `<repo>/target/<profile>/`
//!    (or `deps/`, `examples/`, `<triple>/<profile>/`) with `<repo>/Cargo.toml` → `<repo>/.venv`.
//!
//! In a virtual environment the library is `lib*/python*/site-packages/onnxruntime/capi/
//! libonnxruntime.so*`.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// What to do when no library is found or the one found does not load.
pub const FIX: &str = "set ORT_DYLIB_PATH to a libonnxruntime.so of version 1.31 or newer, activate a \
                       virtual environment that has onnxruntime==1.31.1 (VIRTUAL_ENV), or run \
                       scripts/setup.sh in the stepwire checkout (it installs it into <repo>/.venv)";

/// How many directories above the executable's a cargo `target` directory may be
/// (`target/<triple>/<profile>/deps/exe` is the deepest layout).
const TARGET_DEPTH: usize = 4;

/// Why a library was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `ORT_DYLIB_PATH` names it.
    OrtDylibPath,
    /// The activated virtual environment, `$VIRTUAL_ENV`.
    VirtualEnv(PathBuf),
    /// The `.venv` of the checkout the executable lives in.
    ProjectVenv(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::OrtDylibPath => write!(f, "ORT_DYLIB_PATH"),
            Source::VirtualEnv(v) => write!(f, "VIRTUAL_ENV={}", v.display()),
            Source::ProjectVenv(v) => write!(f, "the checkout's virtual environment {}", v.display()),
        }
    }
}

/// A library and why it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub source: Source,
}

/// What the search looks at. [`SearchInputs::from_process`] reads them from this process; tests
/// build them by hand.
#[derive(Debug, Clone, Default)]
pub struct SearchInputs {
    pub ort_dylib_path: Option<OsString>,
    pub virtual_env: Option<OsString>,
    pub executable: Option<PathBuf>,
}

impl SearchInputs {
    pub fn from_process() -> Self {
        SearchInputs {
            ort_dylib_path: std::env::var_os("ORT_DYLIB_PATH"),
            virtual_env: std::env::var_os("VIRTUAL_ENV"),
            executable: std::env::current_exe().ok(),
        }
    }
}

/// The library to load, by the order of this module; the error says where it looked and what
/// to set.
pub fn search(inputs: &SearchInputs) -> Result<Found, String> {
    if let Some(p) = inputs.ort_dylib_path.as_ref().filter(|p| !p.is_empty()) {
        let path = PathBuf::from(p);
        if path.is_file() {
            return Ok(Found { path, source: Source::OrtDylibPath });
        }
        return Err(format!("ORT_DYLIB_PATH={} is not a file; {FIX}", path.display()));
    }
    let mut looked = vec!["ORT_DYLIB_PATH is not set".to_string()];
    match inputs.virtual_env.as_ref().filter(|v| !v.is_empty()).map(PathBuf::from) {
        None => looked.push("VIRTUAL_ENV is not set".into()),
        Some(venv) if venv.is_relative() => {
            looked.push(format!("VIRTUAL_ENV={} is ignored (not an absolute path)", venv.display()))
        }
        Some(venv) => match lib_in_venv(&venv) {
            Some(path) => return Ok(Found { path, source: Source::VirtualEnv(venv) }),
            None => looked.push(format!("VIRTUAL_ENV={} has no onnxruntime", venv.display())),
        },
    }
    match inputs.executable.as_deref().and_then(checkout_of) {
        None => looked.push("the executable is not in a checkout's target directory".into()),
        Some(repo) => {
            let venv = repo.join(".venv");
            match lib_in_venv(&venv) {
                Some(path) => return Ok(Found { path, source: Source::ProjectVenv(venv) }),
                None => looked.push(format!("{} has no onnxruntime", venv.display())),
            }
        }
    }
    Err(format!("libonnxruntime.so not found ({}; the working directory is never searched); {FIX}", looked.join("; ")))
}

/// The checkout an executable was built in: the parent of the cargo `target` directory it lies
/// in, when that parent has a `Cargo.toml`.
fn checkout_of(executable: &Path) -> Option<PathBuf> {
    // Resolve links: a link to the binary elsewhere still belongs to the checkout it points into.
    let exe = std::fs::canonicalize(executable).unwrap_or_else(|_| executable.to_path_buf());
    let target = exe.parent()?.ancestors().take(TARGET_DEPTH).find(|d| d.file_name().is_some_and(|n| n == "target"))?;
    let repo = target.parent()?;
    repo.join("Cargo.toml").is_file().then(|| repo.to_path_buf())
}

/// `lib*/python*/site-packages/onnxruntime/capi/libonnxruntime.so*` in a virtual environment,
/// the newest Python first.
fn lib_in_venv(venv: &Path) -> Option<PathBuf> {
    for lib in ["lib", "lib64"] {
        let Ok(entries) = std::fs::read_dir(venv.join(lib)) else { continue };
        let mut pythons: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("python")))
            .collect();
        pythons.sort();
        for py in pythons.iter().rev() {
            let capi = py.join("site-packages").join("onnxruntime").join("capi");
            if let Some(p) = lib_in_capi(&capi) {
                return Some(p);
            }
        }
    }
    None
}

fn lib_in_capi(capi: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(capi).ok()?;
    let mut libs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with("libonnxruntime.so") || n == "libonnxruntime.dylib"
            })
        })
        .collect();
    // Prefer the fully versioned file name (`libonnxruntime.so.1.31.1`).
    libs.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    libs.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIB: &str = "libonnxruntime.so.1.31.1";

    /// A virtual environment holding a file named like the library (its content is garbage).
    fn plant_venv(venv: &Path) -> PathBuf {
        let capi = venv.join("lib/python3.11/site-packages/onnxruntime/capi");
        std::fs::create_dir_all(&capi).unwrap();
        let lib = capi.join(LIB);
        std::fs::write(&lib, b"not a shared library").unwrap();
        lib
    }

    /// `<root>/<name>` with a Cargo.toml and a built executable in `target/debug/`.
    fn checkout(root: &Path, name: &str) -> (PathBuf, PathBuf) {
        let repo = root.join(name);
        std::fs::create_dir_all(repo.join("target/debug/deps")).unwrap();
        std::fs::write(repo.join("Cargo.toml"), "[workspace]\n").unwrap();
        let exe = repo.join("target/debug/stepwire");
        std::fs::write(&exe, b"").unwrap();
        (repo, exe)
    }

    fn inputs(exe: &Path) -> SearchInputs {
        SearchInputs { executable: Some(exe.to_path_buf()), ..Default::default() }
    }

    #[test]
    fn a_venv_planted_above_the_executable_is_never_chosen() {
        // The attack: `/tmp/.venv` above a checkout or a binary below /tmp.
        let tmp = tempfile::tempdir().unwrap();
        let planted = plant_venv(&tmp.path().join(".venv"));
        let (repo, exe) = checkout(tmp.path(), "work/stepwire");
        std::fs::create_dir_all(tmp.path().join("work/bin")).unwrap();
        let loose = tmp.path().join("work/bin/stepwire");
        std::fs::write(&loose, b"").unwrap();
        for exe in [&exe, &loose, &repo.join("target/debug/deps/library-0123")] {
            let e = search(&inputs(exe)).expect_err("nothing the user chose holds a library");
            assert!(!e.contains(&planted.display().to_string()), "{e}");
            assert!(e.contains("ORT_DYLIB_PATH") && e.contains("scripts/setup.sh"), "{e}");
        }
        // Nor is a .venv in a checkout's parent directories, or beside its target directory's parent.
        plant_venv(&tmp.path().join("work/.venv"));
        let e = search(&inputs(&exe)).unwrap_err();
        assert!(!e.contains("work/.venv/lib"), "{e}");
    }

    #[test]
    fn the_checkouts_own_venv_is_found_from_the_executable() {
        let tmp = tempfile::tempdir().unwrap();
        // Canonical, as the search resolves the executable's links.
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        plant_venv(&root.join(".venv"));
        let (repo, exe) = checkout(&root, "stepwire");
        let real = plant_venv(&repo.join(".venv"));
        let want = Found { path: real, source: Source::ProjectVenv(repo.join(".venv")) };
        for exe in [
            exe.clone(),
            repo.join("target/debug/deps/library-0123"),
            repo.join("target/x86_64-unknown-linux-gnu/release/deps/t"),
        ] {
            assert_eq!(search(&inputs(&exe)).unwrap(), want, "{}", exe.display());
        }
        // A target directory without a Cargo.toml beside it is not a checkout.
        std::fs::remove_file(repo.join("Cargo.toml")).unwrap();
        assert!(search(&inputs(&exe)).is_err());
    }

    #[test]
    fn explicit_choices_come_first() {
        let tmp = tempfile::tempdir().unwrap();
        let (repo, exe) = checkout(tmp.path(), "stepwire");
        plant_venv(&repo.join(".venv"));
        let active = tmp.path().join("active");
        let active_lib = plant_venv(&active);
        let explicit = tmp.path().join("libonnxruntime.so");
        std::fs::write(&explicit, b"").unwrap();

        let mut i = inputs(&exe);
        i.virtual_env = Some(active.clone().into());
        assert_eq!(search(&i).unwrap(), Found { path: active_lib, source: Source::VirtualEnv(active) });
        i.ort_dylib_path = Some(explicit.clone().into());
        assert_eq!(search(&i).unwrap(), Found { path: explicit, source: Source::OrtDylibPath });
        i.ort_dylib_path = Some(tmp.path().join("missing.so").into());
        assert!(search(&i).unwrap_err().contains("is not a file"));
    }

    #[test]
    fn a_relative_virtual_env_is_ignored() {
        // A relative VIRTUAL_ENV would be resolved against the working directory.
        let i = SearchInputs { virtual_env: Some(".venv".into()), ..Default::default() };
        let e = search(&i).unwrap_err();
        assert!(e.contains("VIRTUAL_ENV=.venv is ignored"), "{e}");
    }
}
