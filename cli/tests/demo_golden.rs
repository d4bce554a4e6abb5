#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `firebell demo` prints exactly what it printed when these golden files were
//! captured: full, `--brief` and `--json`, compared byte for byte. Golden files
//! live in `cli/tests/golden/`; `UPDATE_GOLDEN=1 cargo test -p firebell --test
//! demo_golden` rewrites them (review the diff: the demo is the tour a new
//! user takes, and a refactor must not change it).

mod common;
use common::{firebell, text};

use std::path::PathBuf;

/// The one part of the output that varies between runs: the wall-clock time
/// in the summary's last line, `  1440 cycles in 2.34s; ...`. Replaced by
/// `<elapsed>`; nothing else is normalised.
fn normalise(stdout: &str) -> String {
    stdout
        .split_inclusive('\n')
        .map(|line| match elapsed_span(line) {
            Some((start, end)) => format!("{}<elapsed>{}", &line[..start], &line[end..]),
            None => line.to_owned(),
        })
        .collect()
}

/// Byte range of `2.34s` in `  1440 cycles in 2.34s; ...`.
fn elapsed_span(line: &str) -> Option<(usize, usize)> {
    const PREFIX: &str = "  1440 cycles in ";
    let rest = line.strip_prefix(PREFIX)?;
    let number = &rest[..rest.find("s; ")?];
    let (whole, fraction) = number.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(whole) && digits(fraction)).then_some((PREFIX.len(), PREFIX.len() + number.len() + 1))
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// Runs `firebell demo ARGS` and compares its (normalised) stdout with the
/// golden file `name` exactly, or rewrites the file when `UPDATE_GOLDEN=1`.
fn check(args: &[&str], name: &str) {
    let out = firebell(args);
    assert!(
        out.status.success(),
        "firebell {} failed:\n{}\n{}",
        args.join(" "),
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("demo output is UTF-8");
    let actual = normalise(&stdout);
    let path = golden_path(name);
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    if actual != expected {
        let first = actual
            .lines()
            .zip(expected.lines())
            .position(|(a, e)| a != e)
            .unwrap_or_else(|| actual.lines().count().min(expected.lines().count()));
        panic!(
            "`firebell {}` differs from {} from line {} on (run with UPDATE_GOLDEN=1 to accept):\n--- expected\n{expected}\n--- actual\n{actual}",
            args.join(" "),
            path.display(),
            first + 1
        );
    }
}

#[test]
fn demo_output_is_unchanged() {
    check(&["demo"], "demo.txt");
}

#[test]
fn demo_brief_output_is_unchanged() {
    check(&["demo", "--brief"], "demo-brief.txt");
}

#[test]
fn demo_json_output_is_unchanged() {
    check(&["demo", "--json"], "demo-json.txt");
}

#[test]
fn only_the_elapsed_time_is_normalised() {
    let line = "  1440 cycles in 12.05s; every fire paged, no toast paged\n";
    assert_eq!(
        normalise(line),
        "  1440 cycles in <elapsed>; every fire paged, no toast paged\n"
    );
    // Anything else, including a look-alike that is not a duration, stays.
    for other in [
        "  1440 cycles in 2s; every fire paged\n",
        "  1440 cycles in soon; every fire paged\n",
        "  Notifications sent: 4 (checkout-oncall: 2, payments-oncall: 2)\n",
        "         | 1440 cycles in 2.34s; quoted in a body\n",
    ] {
        assert_eq!(normalise(other), other);
    }
}
