//! `stepwire report` end to end: the real binary on fixture recordings, its error messages on bad
//! input, and the page opened in headless Chromium (Debian's `chromium`).
//!
//! The Chromium test skips when no browser is installed, unless `STEPWIRE_REQUIRE_CHROMIUM=1`
//! (set by scripts/test.sh's report stage) makes a missing browser a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use resvg::tiny_skia::Pixmap;

const CHARTS: [&str; 4] = ["success", "scores", "steps", "prompt-tokens"];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report").join(name)
}

fn stepwire_report(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stepwire")).arg("report").args(args).output().expect("run stepwire report")
}

/// Writes the report of both fixtures into a fresh folder.
fn report_of_fixtures() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let output = stepwire_report(&[
        fixture("step-hrl.jsonl").as_os_str(),
        fixture("full-history.jsonl").as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(stdout.trim(), format!("report written to {}", out.join("index.html").display()));
    (dir, out)
}

/// How many distinct colours a PNG holds: a blank image has one.
fn colours(png: &Path) -> usize {
    let pixmap = Pixmap::load_png(png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
    let mut seen: Vec<[u8; 4]> = pixmap.pixels().iter().map(|p| [p.red(), p.green(), p.blue(), p.alpha()]).collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

#[test]
fn writes_a_page_a_summary_and_a_png_per_chart() {
    let (_dir, out) = report_of_fixtures();
    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    for id in CHARTS {
        assert!(page.contains(&format!("<section id=\"{id}\">")), "{id} missing");
        let png = out.join(format!("{id}.png"));
        assert!(colours(&png) > 10, "{} looks blank", png.display());
    }
    // Self-contained: no scripts, stylesheets, images or fonts fetched from anywhere.
    for fetch in ["<script", "<link", "<img", "src=\"http", "href=\"http", "url("] {
        assert!(!page.contains(fetch), "the page holds {fetch:?}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["policies"][0]["label"], "step-hrl");
    assert_eq!(summary["policies"][0]["won"], 3);
    assert_eq!(summary["policies"][1]["won"], 1);
}

fn failing_report(contents: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(&path, contents).unwrap();
    let out = dir.path().join("out");
    let output = stepwire_report(&[path.as_os_str(), "--out".as_ref(), out.as_os_str()]);
    assert!(!output.status.success(), "a bad recording was accepted");
    assert!(!out.join("index.html").exists(), "a page was written for a bad recording");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bad_input_gets_a_clear_error() {
    assert!(failing_report(b"").contains("is empty"));
    let csv = failing_report(b"task,score\nboil,100\n");
    assert!(csv.contains("is not a stepwire recording: line 1"), "{csv}");
    let other_json = failing_report(b"{\"kind\":\"metrics\"}\n");
    assert!(other_json.contains("is not a stepwire recording"), "{other_json}");
    let recording = std::fs::read_to_string(fixture("step-hrl.jsonl")).unwrap();
    let mut lines: Vec<&str> = recording.lines().collect();
    lines.insert(3, "{\"kind\":\"transition\",");
    let middle = failing_report((lines.join("\n") + "\n").as_bytes());
    assert!(middle.contains("line 4 is not a record line"), "{middle}");
}

#[test]
fn a_torn_last_line_is_named_and_the_rest_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torn.jsonl");
    let recording = std::fs::read_to_string(fixture("step-hrl.jsonl")).unwrap();
    let lines = recording.lines().count();
    std::fs::write(&path, format!("{recording}{{\"kind\":\"transition\",\"episode\":{{\"env\"")).unwrap();
    let out = dir.path().join("out");
    let output = stepwire_report(&[path.as_os_str(), "--out".as_ref(), out.as_os_str()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let expected = format!("line {} (the last) is torn", lines + 1);
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(std::fs::read_to_string(out.join("index.html")).unwrap().contains(&expected));
}

fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("STEPWIRE_CHROMIUM") {
        return Some(path.into());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser", "google-chrome"].map(|name| dir.join(name)))
        .find(|p| p.is_file())
}

/// Runs headless Chromium with `args` on `page`; kills it after a minute rather than hang.
fn headless(browser: &Path, profile: &Path, args: &[String], page: &Path) -> Output {
    let child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    let watchdog = std::thread::spawn(move || {
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
        }
        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
    });
    let output = child.wait_with_output().expect("wait for chromium");
    drop(watchdog);
    output
}

#[test]
fn the_page_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        assert!(std::env::var_os("STEPWIRE_REQUIRE_CHROMIUM").is_none(), "chromium is not installed");
        eprintln!("skipped: no chromium on PATH (apt-get install chromium)");
        return;
    };
    let (dir, out) = report_of_fixtures();
    let page = out.join("index.html");
    let profile = dir.path().join("profile");
    let output = headless(&browser, &profile, &["--dump-dom".into()], &page);
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(dom.matches("<svg").count(), CHARTS.len(), "{dom}");
    for title in [
        "<title>Success rate per task and split</title>",
        "<title>Prompt tokens per call against the step index (mean over episodes)</title>",
        "step-hrl · low",
        "full-history · low",
        "3/5",
        "1/5",
    ] {
        assert!(dom.contains(title), "{title:?} not in the rendered DOM");
    }
    let shot = dir.path().join("shot.png");
    let output = headless(
        &browser,
        &profile,
        &[format!("--screenshot={}", shot.display()), "--window-size=1000,2400".into(), "--hide-scrollbars".into()],
        &page,
    );
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    assert!(colours(&shot) > 10, "the screenshot is blank");
}
