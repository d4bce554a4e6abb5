#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The CLI's conventions: `--config` (and `$FIREBELL_CONFIG`) the same way
//! for every command, shell completions, `--version` with the commit and
//! build date, JUnit reports from `firebell test`, reads that create no
//! state, local runs that never pass the demo day off as a user config's
//! history, and no Rust `Debug` text in human output.

mod common;
use common::{firebell, text};

use std::path::Path;
use std::process::{Command, Output};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Runs firebell in `cwd` with extra environment variables (and without
/// an inherited `FIREBELL_CONFIG`).
fn firebell_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firebell"))
        .args(args)
        .current_dir(cwd)
        .env_remove("FIREBELL_CONFIG")
        .envs(env.iter().copied())
        .output()
        .expect("run firebell")
}

#[test]
fn completions_for_each_shell_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = firebell(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for sub in [
            "demo", "run", "validate", "lint", "cost", "routes", "silence", "test", "backtest",
        ] {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
        assert!(
            script.contains("output"),
            "{shell} completion lacks --output"
        );
    }
    let out = firebell(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn version_names_the_commit_and_build_date() {
    let out = firebell(&["--version"]);
    assert!(out.status.success());
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(ROOT)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| text(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    let v = text(&out.stdout);
    let prefix = format!(
        "firebell {} (commit {commit}, built ",
        env!("CARGO_PKG_VERSION")
    );
    let date = v
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(")\n"))
        .unwrap_or_else(|| panic!("{v:?} does not start with {prefix:?}"));
    let parts: Vec<&str> = date.split('-').collect();
    assert!(
        parts.len() == 3
            && parts[0].len() == 4
            && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_digit())),
        "build date {date:?}"
    );
}

#[test]
fn config_is_given_the_same_way_to_every_command() {
    let root = Path::new(ROOT);
    // --config and -c, and the positional path kept for validate and lint.
    for args in [
        &["validate", "--config", "examples"][..],
        &["validate", "-c", "examples"],
        &["validate", "examples"],
        &["lint", "--config", "examples"],
        &["lint", "examples"],
        &["cost", "-c", "examples"],
        &["routes", "-c", "examples", "-l", "team=payments"],
    ] {
        let out = firebell_in(root, args, &[]);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
    // FIREBELL_CONFIG is the default, as the Lambda reads it.
    let env = [("FIREBELL_CONFIG", "examples")];
    for args in [
        &["validate"][..],
        &["lint"],
        &["cost"],
        &["routes", "-l", "team=payments"],
    ] {
        let out = firebell_in(root, args, &env);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
    let out = firebell_in(root, &["validate"], &env);
    assert!(
        text(&out.stdout).starts_with("ok: 4 file(s), 9 rule(s)"),
        "{}",
        text(&out.stdout)
    );
    // An explicit path wins over the environment.
    let out = firebell_in(
        root,
        &["validate", "cli/tests/fixtures/three_mistakes.yaml"],
        &env,
    );
    assert_eq!(out.status.code(), Some(1));
    // Neither: say what to pass.
    let out = firebell_in(root, &["validate"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: no config given: pass a config file or directory (PATH or --config DIR), or set FIREBELL_CONFIG\n"
    );
    let out = firebell_in(root, &["cost"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--config <DIR>"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn test_writes_a_junit_report() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("junit.xml");
    let broken = dir.path().join("broken_test.yaml");
    std::fs::write(&broken, "tests:\n  - name: a <b> & \"c\"\n").unwrap();
    let broken = broken.to_str().unwrap();
    let out = firebell(&[
        "test",
        "tests/fixtures/failing_rule_test.yaml",
        "examples/tests/checkout_test.yaml",
        broken,
        "--junit",
        report.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let f = "tests/fixtures/failing_rule_test.yaml";
    let c = "examples/tests/checkout_test.yaml";
    let expected = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="firebell test" tests="6" failures="1" errors="1">
  <testsuite name="{f}" tests="1" failures="1" errors="0">
    <testcase name="wrongly expects a page after 2 minutes" classname="{f}" file="{f}" line="8">
      <failure message="2 of 3 checks failed">{f}:14:9: alerts of PaymentsHighErrorRate at eval_time 2m
expected (-) vs got (+):
- firing  {{service=&quot;payments&quot;, severity=&quot;page&quot;, team=&quot;payments&quot;}}
+ pending {{service=&quot;payments&quot;, severity=&quot;page&quot;, team=&quot;payments&quot;}}
{f}:25:9: notifications up to 10m
expected (-) vs got (+):
- at 2m     payments-oncall  firing
+ at 4m     payments-oncall  firing  PaymentsHighErrorRate  subject &quot;[FIRING] Payments error rate 5% &gt; 1% (payments, page)&quot;
</failure>
    </testcase>
  </testsuite>
  <testsuite name="{c}" tests="4" failures="0" errors="0">
    <testcase name="error rate fires on 2 of 3 breaching minutes" classname="{c}" file="{c}" line="6"/>
    <testcase name="two breaching minutes that are never 2 of 3 do not fire" classname="{c}" file="{c}" line="34"/>
    <testcase name="the volume guard ignores a 2-of-3 blip at 8 requests a minute" classname="{c}" file="{c}" line="49"/>
    <testcase name="p99 latency fires on 4 of 5 minutes and recovers only below 600ms" classname="{c}" file="{c}" line="62"/>
  </testsuite>
  <testsuite name="{broken}" tests="1" failures="0" errors="1">
    <testcase name="load" classname="{broken}" file="{broken}">
      <error message="3 errors in the test file">{broken}:1:1: error: test file is missing required field `config` (the config directory under test, relative to this file) or `rule_files`
{broken}:2:5: error: test is missing required field `input_series`
{broken}:2:5: error: test has neither `alert_rule_test` nor `notification_test`: it checks nothing
</error>
    </testcase>
  </testsuite>
</testsuites>
"#
    );
    assert_eq!(std::fs::read_to_string(&report).unwrap(), expected);
}

#[test]
fn reading_silences_creates_no_state() {
    let cwd = tempfile::tempdir().unwrap();
    let out = firebell_in(cwd.path(), &["silence", "list"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "no silences in .firebell/state (embedded)\n"
    );
    let out = firebell_in(cwd.path(), &["silence", "list", "-o", "json"], &[]);
    assert_eq!(text(&out.stdout), "[]\n");
    let out = firebell_in(cwd.path(), &["silence", "expire", "abc"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: no silence with id \"abc\" in .firebell/state (embedded)\n"
    );
    let left: Vec<_> = std::fs::read_dir(cwd.path()).unwrap().collect();
    assert!(left.is_empty(), "created {left:?}");
}

/// A user config's local run needs its own history; the demo day is only
/// the examples'.
#[test]
fn run_of_a_user_config_needs_a_replay() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        format!("{ROOT}/examples/rules/payments.yaml"),
        dir.path().join("payments.yaml"),
    )
    .unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir(&config).unwrap();
    std::fs::rename(
        dir.path().join("payments.yaml"),
        config.join("payments.yaml"),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let state = dir.path().join("state");
    let state = state.to_str().unwrap();
    let out = firebell(&[
        "run",
        "-c",
        config,
        "--once",
        "--at",
        "2026-11-23T15:46:00Z",
        "--state",
        state,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: {config} is not the bundled example config, so the bundled demo day is not its history: pass --replay FILE (a replay file, REPLAY.md), or --backend aws to read CloudWatch\n"
        )
    );
    assert_eq!(text(&out.stdout), "");

    // With a replay lacking one of its metrics: a note, then the cycle.
    let replay = dir.path().join("requests.jsonl");
    std::fs::write(
        &replay,
        "{\"namespace\":\"Shop\",\"metric\":\"Requests\",\"dimensions\":{\"Service\":\"payments\"},\"stat\":\"Sum\",\"period\":60,\"points\":[[1795448700,100]]}\n",
    )
    .unwrap();
    let out = firebell(&[
        "run",
        "-c",
        config,
        "--once",
        "--at",
        "2026-11-23T15:46:00Z",
        "--state",
        state,
        "--replay",
        replay.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "note: rule PaymentsHighErrorRate: replay has no datapoints for metric Shop/Errors {Service=\"payments\"} (`errors`)\n"
    );
    assert_eq!(
        text(&out.stdout),
        "2026-11-23T15:46:00Z cycle: 1 rules, 1 instances, 0 transitions, 0 notifications sent, 0 store writes\n"
    );
}

/// People read words, not Rust's `Debug` of the engine's types.
#[test]
fn human_output_has_no_debug_text() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    let run = |at: &str, until: &str| {
        let out = firebell(&[
            "run", "-c", "examples", "--at", at, "--until", until, "--state", state,
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        (text(&out.stdout), text(&out.stderr))
    };
    let (stdout, stderr) = run("2026-11-23T15:40:00Z", "2026-11-23T16:05:00Z");
    let mut all = stdout + &stderr;
    // A tick again: the skipped cycle says why in words.
    let (again, stderr) = run("2026-11-23T15:46:00Z", "2026-11-23T15:46:00Z");
    assert_eq!(
        again,
        "2026-11-23T15:46:00Z cycle skipped: duplicate tick (already evaluated)\n"
    );
    all.push_str(&again);
    all.push_str(&stderr);
    all.push_str(&text(&firebell(&["backtest", "-c", "examples"]).stdout));
    all.push_str(&text(&firebell(&["demo"]).stdout));
    assert!(
        all.contains("PaymentsHighErrorRate fired (datapoint 2026-11-23T15:45:00Z, value 5.23"),
        "{all}"
    );
    for debug in [
        "Some(",
        "None",
        "Fired {",
        "Resolved {",
        "Pending {",
        "NoDataStarted",
        "Duplicate",
        "Overlap",
        " { at:",
    ] {
        assert!(!all.contains(debug), "Debug text {debug:?} in:\n{all}");
    }
}
