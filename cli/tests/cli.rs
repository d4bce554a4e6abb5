#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The `firebell` command as a new user runs it.

mod common;
use common::{firebell, text};

#[test]
fn demo_pages_the_payments_incident_and_ignores_the_toast() {
    let out = firebell(&["demo"]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        text(&out.stderr)
    );

    // The page: value, threshold and the 15:4x start time in the text.
    let page = stdout
        .split("-> notify payments-oncall")
        .nth(1)
        .expect("a notification to payments-oncall");
    let page = &page[..page.find("\n  1").unwrap_or(page.len())];
    assert!(
        page.contains("subject: [FIRING] Payments error rate"),
        "{page}"
    );
    assert!(page.contains("(threshold 1%)"), "{page}");
    assert!(page.contains("since 15:42 UTC"), "{page}");
    assert!(page.contains("runbooks.example.com/payments"), "{page}");

    // Exactly one firing and one resolved notification per real incident; nothing else.
    let subjects: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("subject: "))
        .collect();
    // The checkout latency SLO's page joins the checkout incident's group
    // and resolves with it.
    assert_eq!(subjects.len(), 5, "{subjects:#?}");
    assert!(subjects[0].starts_with("[FIRING] Payments error rate"));
    assert!(subjects[1].starts_with("[RESOLVED] Payments error rate"));
    assert!(subjects[2].starts_with("[FIRING] Checkout p99 latency"));
    assert!(subjects[3].starts_with("[FIRING] Checkout latency: error budget burn over 1h"));
    assert!(subjects[4].starts_with("[RESOLVED:2] checkout: Checkout latency"));

    // No notification between midnight and 15:42: the toast is ignored.
    let first_notify = stdout.find("-> notify").expect("a notification");
    let before = &stdout[..first_notify];
    for toast in ["02:13", "04:30", "11:20", "13:05"] {
        assert!(
            !before.contains(&format!("{toast}  -> notify")),
            "toast at {toast} was notified"
        );
    }
    assert!(
        stdout.contains("every fire paged, no toast paged"),
        "{stdout}"
    );
}

#[test]
fn validate_accepts_the_examples() {
    let out = firebell(&["validate", "examples/"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).starts_with("ok: "));
}

#[test]
fn validate_reports_every_mistake_with_its_position() {
    let out = firebell(&["validate", "cli/tests/fixtures/three_mistakes.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let f = "cli/tests/fixtures/three_mistakes.yaml";
    assert_eq!(
        text(&out.stderr),
        format!(
            "{f}:6:17: error: expression \"100 * errors / request\" uses undefined metric `request` (defined: errors, requests)\n\
             {f}:8:10: error: invalid duration \"soon\" for `for` (expected a duration such as 30s, 5m, 1h or 1h30m)\n\
             {f}:10:5: error: unknown field `annotation` in rule (expected one of: annotations, arrival_grace, condition, datapoints, evaluation_delay, expression, for, interval, keep_firing_for, labels, metrics, min_volume, missing_data, name, unit); did you mean `annotations`?\n\
             3 errors\n"
        )
    );
}

/// Annotation and receiver templates are compiled and trial-rendered by
/// `validate` (issue #10): a broken one never ships.
#[test]
fn validate_rejects_templates_that_cannot_render() {
    let f = "cli/tests/fixtures/broken_templates.yaml";
    let out = firebell(&["validate", f]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "{f}:11:14: error: annotation `title` of rule \"ApiErrors\": syntax error: unexpected character (line 1 of the template), rendering a sample alert (firing, value 10 > 5); firebell templates use `{{{{ labels.name }}}}` and `{{{{ value }}}}`, not `$labels.name`/`$value`\n\
             {f}:12:16: error: annotation `summary` of rule \"ApiErrors\": invalid operation: value too large: 2000000002 bytes (limit 262144 bytes) (line 1 of the template), rendering a sample alert (firing, value 10 > 5)\n\
             {f}:17:25: error: template in `subject_template` fails: undefined value (line 1 of the template), rendering a sample group\n\
             3 errors\n"
        )
    );
}

#[test]
fn routes_explains_the_matching_route() {
    let out = firebell(&[
        "routes",
        "--config",
        "examples",
        "--labels",
        "team=checkout,severity=ticket",
    ]);
    assert!(out.status.success());
    let s = text(&out.stdout);
    assert!(s.contains("1 receiver: checkout-oncall"), "{s}");
}

#[test]
fn silences_can_be_added_listed_and_expired() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    let add = firebell(&[
        "silence",
        "add",
        "-c",
        "examples",
        "-m",
        "team=\"payments\"",
        "--duration",
        "2h",
        "--created-by",
        "alice",
        "--comment",
        "deploy",
        "--state",
        state,
    ]);
    assert!(add.status.success(), "{}", text(&add.stderr));
    let id = text(&add.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let list = text(&firebell(&["silence", "list", "--state", state]).stdout);
    assert!(list.contains(&id) && list.contains("active"), "{list}");
    let exp = firebell(&["silence", "expire", &id, "--state", state]);
    assert!(exp.status.success(), "{}", text(&exp.stderr));
    let list = text(&firebell(&["silence", "list", "--state", state]).stdout);
    assert!(list.contains("expired"), "{list}");

    // created_by and comment are required.
    let bad = firebell(&[
        "silence",
        "add",
        "-c",
        "examples",
        "-m",
        "team=\"payments\"",
        "--created-by",
        "",
        "--comment",
        "",
        "--state",
        state,
    ]);
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn run_once_uses_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    // Replays the bundled day: by 15:48 the payments incident fired and paged (15:46).
    let out = firebell(&[
        "run",
        "--config",
        "examples",
        "--at",
        "2026-11-23T15:30:00Z",
        "--until",
        "2026-11-23T15:48:00Z",
        "--state",
        state,
    ]);
    let s = text(&out.stdout);
    assert!(out.status.success(), "{s}{}", text(&out.stderr));
    assert!(
        s.contains("PaymentsHighErrorRate fired (datapoint 2026-11-23T15:45:00Z, value "),
        "{s}"
    );
    assert!(s.contains("[FIRING] Payments error rate"), "{s}");
    // State survives: the next cycle in a new process does not page again.
    let out = firebell(&[
        "run",
        "--config",
        "examples",
        "--once",
        "--at",
        "2026-11-23T15:49:00Z",
        "--state",
        state,
    ]);
    let s = text(&out.stdout);
    assert!(out.status.success());
    assert!(!s.contains("[FIRING]"), "{s}");
    assert!(s.contains("0 transitions"), "{s}");
}

#[test]
fn run_refuses_a_future_tick_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    let future = |flags: &[&str]| {
        let mut args = vec!["run", "--config", "examples", "--state", state];
        args.extend_from_slice(flags);
        firebell(&args)
    };
    let out = future(&["--once", "--at", "2200-01-01T00:00:00Z"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert_eq!(
        text(&out.stderr),
        "error: --at 2200-01-01T00:00:00Z is more than 5m ahead of the clock: a cycle at a future tick is recorded as the last tick, and the ticks before it would look done. Check the time, or pass --force to run it anyway\n"
    );
    assert_eq!(text(&out.stdout), "");
    let out = future(&[
        "--at",
        "2026-11-23T15:30:00Z",
        "--until",
        "2200-01-01T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .starts_with("error: --until 2200-01-01T00:00:00Z is more than 5m ahead of the clock"),
        "{}",
        text(&out.stderr)
    );
    // Forced: it runs (and records the future tick) ...
    let out = future(&["--once", "--at", "2200-01-01T00:00:00Z", "--force"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("2200-01-01T00:00:00Z cycle:"),
        "{}",
        text(&out.stdout)
    );
    // ... and a later cycle at a present tick is not a duplicate: the
    // engine reports clock skew and evaluates.
    let out = future(&[
        "--at",
        "2026-11-23T15:30:00Z",
        "--until",
        "2026-11-23T15:48:00Z",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(!stdout.contains("skipped"), "{stdout}");
    // What the demo day cannot back, before the cycles.
    let notes = "\
note: slo PaymentsAvailability: the demo day covers 15h48m of its 30d window (`budget_spent`); figures computed from less history are marked Partial
note: rule PaymentsAvailability:ticket:3d: the demo day covers 15h48m of the 3d its expression looks back; its values are computed from less history
note: slo CheckoutLatency: the demo day covers 15h48m of its 30d window (`budget_spent`); figures computed from less history are marked Partial
note: rule CheckoutLatency:ticket:3d: the demo day covers 15h48m of the 3d its expression looks back; its values are computed from less history
";
    assert!(
        stderr.starts_with(&format!("{notes}2026-11-23T15:30:00Z error: clock skew: the last recorded tick 7258118400 is later than now (")),
        "{stderr}"
    );
    assert!(
        stdout.contains("2026-11-23T15:48:00Z cycle: 7 rules, 7 instances"),
        "{stdout}"
    );
    // The payments incident still fires and pages.
    assert!(
        stdout.contains("PaymentsHighErrorRate fired (datapoint 2026-11-23T15:45:00Z, value "),
        "{stdout}"
    );
    assert!(stdout.contains("[FIRING] Payments error rate"), "{stdout}");
}

#[test]
fn a_silence_of_every_alert_needs_force() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    let add = |matcher: &str, force: bool| {
        let mut args = vec![
            "silence",
            "add",
            "-c",
            "examples",
            "-m",
            matcher,
            "--created-by",
            "alice",
            "--comment",
            "region-wide maintenance",
            "--state",
            state,
        ];
        if force {
            args.push("--force");
        }
        firebell(&args)
    };
    for m in ["alertname=~\".+\"", "alertname!~\"\"", "alertname!=\"\""] {
        let out = add(m, false);
        assert_eq!(out.status.code(), Some(1), "{m}");
        assert_eq!(
            text(&out.stderr),
            format!(
                "error: invalid silence: the matchers would silence every alert: {m} matches every alert (every alert has a non-empty `alertname`); to silence everything anyway, force it (`firebell silence add --force`) with a comment saying why\n"
            )
        );
    }
    let list = text(&firebell(&["silence", "list", "--state", state]).stdout);
    assert_eq!(list, format!("no silences in {state} (embedded)\n"));
    let out = add("alertname=~\".+\"", true);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("added: alertname=~\".+\" until"),
        "{}",
        text(&out.stdout)
    );
}

/// `firebell run ... | head -1`: the reader closes the pipe after one line
/// while firebell still has a day of cycles (150 KB) to print; it ends
/// quietly with 0 (no panic, no exit 101).
#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_firebell"))
        .args([
            "run",
            "--config",
            "examples",
            "--at",
            "2026-11-23T00:00:00Z",
            "--until",
            "2026-11-23T23:59:00Z",
            "--state",
            state.path().to_str().unwrap(),
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(!first.is_empty());
    // (The reader is dropped here: the pipe is closed.)
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "\
note: slo PaymentsAvailability: the demo day covers 23h59m of its 30d window (`budget_spent`); figures computed from less history are marked Partial
note: rule PaymentsAvailability:ticket:3d: the demo day covers 23h59m of the 3d its expression looks back; its values are computed from less history
note: slo CheckoutLatency: the demo day covers 23h59m of its 30d window (`budget_spent`); figures computed from less history are marked Partial
note: rule CheckoutLatency:ticket:3d: the demo day covers 23h59m of the 3d its expression looks back; its values are computed from less history
"
    );
}
