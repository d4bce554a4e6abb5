#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The demo day's HTML report (`firebell backtest --html`) in a real browser:
//! headless Chromium (the system package; `scripts/test.sh` installs it when
//! missing, `FIREBELL_CHROMIUM` names another binary) loads it with its
//! console logged to stderr. The page must log nothing (no script error, no
//! resource it failed to load: it has neither), every rule must have a chart
//! in the DOM the browser built, and a screenshot is saved (light and dark)
//! next to the test binaries (`UPDATE_SCREENSHOT=1` also copies the light
//! one to `docs/img/html-report.png`, the README's). A page with a script
//! error is caught by the same check (the negative case below), so a clean
//! run means something. Without Chromium the test fails, saying how to get it.

mod common;
use common::{firebell, text};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use std::time::{Duration, Instant};

/// The Chromium binary: `FIREBELL_CHROMIUM`, else `chromium` or
/// `chromium-browser` on the PATH.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("FIREBELL_CHROMIUM") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "chromium not found on the PATH: the browser test needs it (scripts/test.sh installs it: \
         apt-get install -y chromium; or set FIREBELL_CHROMIUM to a Chromium binary)"
    );
}

/// One Chromium at a time (about 400 MB of memory each, all its processes
/// counted: the tests stay under 512 MB).
static ONE_BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs headless Chromium on `page` with `args`, killed after two minutes.
/// Its output goes to files (a pipe nobody reads while it runs would fill
/// and stall it).
fn browse(page: &Path, args: &[&str]) -> Output {
    let _one = ONE_BROWSER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let profile = tempfile::tempdir().unwrap();
    let out_path = profile.path().join("stdout");
    let err_path = profile.path().join("stderr");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run chromium ({}): {e}", chromium().display()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish within 2 minutes:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    }
}

/// The DOM Chromium built, and every console message it logged.
fn load(page: &Path) -> (String, Vec<String>) {
    let out = browse(page, &["--dump-dom"]);
    let console: Vec<String> = text(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        text(&out.stderr)
    );
    (text(&out.stdout), console)
}

fn demo_report(dir: &Path) -> (PathBuf, Vec<String>) {
    let file = dir.join("demo-report.html");
    let out = firebell(&[
        "backtest",
        "--config",
        "examples",
        "--source",
        "examples/demo/day.jsonl",
        "--html",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rules: Vec<String> = text(&out.stdout)
        .lines()
        .skip_while(|l| !l.starts_with("Rules"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    (file, rules)
}

#[test]
fn the_demo_report_renders_in_chromium_without_console_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (page, rules) = demo_report(dir.path());
    assert_eq!(rules.len(), 9);

    let (dom, console) = load(&page);
    assert!(
        console.is_empty(),
        "the page logged to the console:\n{}",
        console.join("\n")
    );
    // Every rule has a section with a chart in the DOM the browser built.
    let sections: Vec<&str> = dom.split("<section class=\"rule\"").skip(1).collect();
    assert_eq!(sections.len(), rules.len(), "one section per rule");
    for (rule, section) in rules.iter().zip(&sections) {
        let section = section.split("</section>").next().unwrap();
        assert!(
            section.contains(&format!(">{rule}</h3>")),
            "{rule}: no heading"
        );
        assert!(
            section.contains("<svg class=\"chart\" role=\"img\""),
            "{rule}: no chart"
        );
        assert!(
            section.contains("<path class=\"series\""),
            "{rule}: no line"
        );
    }

    // Screenshots, light and dark.
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for (name, extra) in [
        ("html-report.png", None),
        (
            "html-report-dark.png",
            Some("--blink-settings=preferredColorScheme=0"),
        ),
    ] {
        let png = shots.join(name);
        let _ = std::fs::remove_file(&png);
        let shot = format!("--screenshot={}", png.display());
        // Virtual time lets layout finish before the capture.
        let mut args = vec![
            "--window-size=1200,2000",
            "--virtual-time-budget=10000",
            shot.as_str(),
        ];
        args.extend(extra);
        let out = browse(&page, &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{name} is not a PNG"
        );
        assert!(
            bytes.len() > 20_000,
            "{name}: {} bytes, blank?",
            bytes.len()
        );
        eprintln!("screenshot: {}", png.display());
        if extra.is_none() && std::env::var("UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
            let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/img/html-report.png");
            std::fs::create_dir_all(Path::new(docs).parent().unwrap()).unwrap();
            std::fs::copy(&png, docs).unwrap();
        }
    }
}

#[test]
fn a_script_error_is_caught() {
    // The same check on the same page with a broken script added: it must
    // see the error, or a clean run above would prove nothing.
    let dir = tempfile::tempdir().unwrap();
    let (page, _) = demo_report(dir.path());
    let html = std::fs::read_to_string(&page).unwrap();
    let broken = dir.path().join("broken.html");
    std::fs::write(
        &broken,
        html.replace(
            "</body>",
            "<script>document.title = noSuchFunction();</script></body>",
        ),
    )
    .unwrap();
    let (_, console) = load(&broken);
    assert!(
        console
            .iter()
            .any(|l| l.contains("Uncaught ReferenceError: noSuchFunction is not defined")),
        "the script error was not seen: {console:?}"
    );
}
