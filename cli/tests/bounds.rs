#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Issue #10 end to end: every config `validate` accepts runs, and every
//! config it rejects is rejected with a clear error by `validate`, `run`
//! and `backtest` alike: no panic (exit 101), abort, stack overflow or hang.

mod common;
use common::{firebell, text};

use std::path::PathBuf;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p =
            std::env::temp_dir().join(format!("firebell-cli-bounds-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn write(&self, rel: &str, text: impl AsRef<[u8]>) -> String {
        let p = self.0.join(rel);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One rule named `name` on metric period `period`, with `extra` rule fields.
fn rule(name: &str, period: &str, expression: &str, extra: &str) -> String {
    format!(
        "  - name: {name}\n    metrics:\n      m: {{namespace: N, metric: M, stat: Sum, period: {period}}}\n    expression: {expression}\n    condition: {{op: \">\", threshold: 1}}\n{extra}"
    )
}

/// Runs validate, run (one cycle) and backtest on `path`: each exits 1 with
/// `stderr` (validate) or at least its first line (run, backtest).
fn rejected_everywhere(path: &str, stderr: &str) {
    let out = firebell(&["validate", path]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), stderr);
    let first = stderr.lines().next().unwrap();
    for args in [
        vec![
            "run",
            "--config",
            path,
            "--once",
            "--at",
            "2025-01-15T12:00:00Z",
        ],
        vec!["backtest", "--config", path],
    ] {
        let out = firebell(&args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(first),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn huge_durations_are_rejected_with_position_value_and_limit() {
    let dir = TempDir::new("durations");
    let mut rules = String::from("rules:\n");
    rules.push_str(&rule("For", "1m", "m", "    for: 99999999999d\n"));
    rules.push_str(&rule("Interval", "1m", "m", "    interval: 99999999999d\n"));
    rules.push_str(&rule(
        "Keep",
        "1m",
        "m",
        "    keep_firing_for: 99999999999d\n",
    ));
    rules.push_str(&rule(
        "Window",
        "1m",
        "m",
        "    min_volume: {metric: m, at_least: 1, window: 99999999999d}\n",
    ));
    rules.push_str(&rule("Period", "99999999999d", "m", ""));
    rules.push_str(&rule("Wrap", "1m", "m", "    for: 200000000000000d\n"));
    rules.push_str(&rule("Weeks", "10000000000000w", "m", ""));
    let f = dir.write("rules.yaml", rules);
    let limit = "is too long (expected at most 455d: CloudWatch keeps no older data)";
    rejected_everywhere(
        &f,
        &format!(
            "{f}:7:10: error: duration \"99999999999d\" for `for` {limit}\n\
             {f}:13:15: error: duration \"99999999999d\" for `interval` {limit}\n\
             {f}:19:22: error: duration \"99999999999d\" for `keep_firing_for` {limit}\n\
             {f}:25:50: error: duration \"99999999999d\" for `window` {limit}\n\
             {f}:28:55: error: duration \"99999999999d\" for `period` {limit}\n\
             {f}:36:10: error: duration \"200000000000000d\" for `for` {limit}\n\
             {f}:39:55: error: duration \"10000000000000w\" for `period` {limit}\n\
             7 errors\n"
        ),
    );
}

#[test]
fn a_lookback_beyond_retention_is_rejected() {
    let dir = TempDir::new("lookback");
    let f = dir.write(
        "rules.yaml",
        format!("rules:\n{}", rule("Long", "1m", "m", "    for: 30d\n")),
    );
    rejected_everywhere(
        &f,
        &format!(
            "{f}:2:11: error: rule \"Long\" looks back 30d6m (`for`/`datapoints` or `keep_firing_for`, `min_volume.window`, the expression's history, `interval` and 5 periods of margin), beyond the 15d CloudWatch keeps data of period 1m (expected a lookback of at most 15d)\n1 error\n"
        ),
    );
}

#[test]
fn long_expressions_are_rejected_without_stack_overflow() {
    let dir = TempDir::new("expressions");
    for terms in [60_000, 200_000] {
        let src = format!("m{}", " + m".repeat(terms - 1));
        let f = dir.write(
            &format!("rules{terms}.yaml"),
            format!("rules:\n{}", rule("Long", "1m", &src, "")),
        );
        rejected_everywhere(
            &f,
            &format!(
                "{f}:5:17: error: invalid expression \"{src}\": expression is too long ({} bytes, expected at most 4096) at offset 4096\n1 error\n",
                src.len()
            ),
        );
    }
}

#[test]
fn deeply_nested_yaml_is_rejected_without_stack_overflow() {
    let dir = TempDir::new("nesting");
    let f = dir.write("deep.yaml", format!("rules:\n  {}x\n", "- ".repeat(50_000)));
    rejected_everywhere(
        &f,
        &format!("{f}:2:3: error: YAML is nested too deeply (more than 100 levels)\n1 error\n"),
    );
}

#[test]
fn a_stray_tests_key_is_an_error_not_a_skipped_file() {
    let dir = TempDir::new("tests-key");
    let f = dir.write(
        "rules.yaml",
        format!("rules:\n{}tests: []\n", rule("R", "1m", "m", "")),
    );
    let out = firebell(&["validate", &f]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "{f}:7:1: error: `tests` in a config file with config sections (rules): rule unit tests belong in their own file (`tests:` with `config:` or `rule_files:`, run by `firebell test`)\n1 error\n"
        )
    );
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let dir = TempDir::new("bom");
    let f = dir.write(
        "rules.yaml",
        format!("\u{feff}rules:\n{}", rule("R", "1m", "m", "")),
    );
    let out = firebell(&["validate", &f]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("ok: 1 file(s), 1 rule(s), 0 receiver(s)"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn invalid_utf8_is_reported_at_its_line_and_column() {
    let dir = TempDir::new("utf8");
    let mut bytes = format!("rules:\n{}", rule("R", "1m", "m", "")).into_bytes();
    bytes.extend_from_slice(b"    annotations: {summary: \"caf\xe9\"}\n");
    let f = dir.write("rules.yaml", bytes);
    let out = firebell(&["validate", &f]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!("{f}:7:32: error: invalid UTF-8: byte 0xe9 (expected UTF-8 text)\n1 error\n")
    );
}

#[test]
fn a_flood_of_errors_is_capped() {
    let dir = TempDir::new("flood");
    let mut rules = String::from("rules:\n  - name: R\n");
    for i in 0..100_000 {
        rules.push_str(&format!("    k{i}: 1\n"));
    }
    let f = dir.write("rules.yaml", rules);
    let out = firebell(&["validate", &f]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 102, "{}", &stderr[..2000.min(stderr.len())]);
    assert!(
        lines[0].starts_with(&format!(
            "{f}:2:5: error: rule is missing required field `metrics`"
        )),
        "{}",
        lines[0]
    );
    assert_eq!(lines[100], "... and 99903 more errors");
    assert_eq!(lines[101], "100003 errors");
}

#[test]
fn a_replay_file_with_a_huge_period_is_an_error_naming_the_line() {
    let dir = TempDir::new("replay");
    let f = dir.write(
        "day.jsonl",
        "# a comment\n{\"namespace\":\"Shop\",\"metric\":\"Errors\",\"dimensions\":{\"Service\":\"payments\"},\"stat\":\"Sum\",\"period\":9223372036854775807,\"points\":[[1700000000,1.0]]}\n",
    );
    let want = format!(
        "{f}:2: period must be a positive number of seconds, at most 86400 (1 day), got 9223372036854775807"
    );
    for args in [
        vec![
            "run",
            "--config",
            "examples/",
            "--replay",
            &f,
            "--once",
            "--at",
            "2023-11-14T22:20:00Z",
        ],
        vec!["backtest", "--config", "examples/", "--source", &f],
    ] {
        let out = firebell(&args);
        // 2: a failed command (anyhow), not 101 (a panic).
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(&want),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}
