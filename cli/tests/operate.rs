#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Operating firebell on the embedded store: `history` and `status` after
//! cycles of the bundled demo day (the AWS side: `cli/tests/aws.rs`).

mod common;
use common::{assert_schema, firebell, text};

/// A state store after the payments incident (15:30-16:30) and the
/// checkout latency incident (19:00-19:30) of the demo day.
fn store_after_two_incidents() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    for (at, until) in [
        ("2026-11-23T15:30:00Z", "2026-11-23T16:30:00Z"),
        ("2026-11-23T19:00:00Z", "2026-11-23T19:30:00Z"),
    ] {
        let out = firebell(&[
            "run", "--config", "examples", "--at", at, "--until", until, "--state", state,
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    dir
}

fn history(state: &str, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec![
        "history",
        "--state",
        state,
        "--since",
        "2026-11-23",
        "--until",
        "2026-11-24",
    ];
    args.extend_from_slice(extra);
    let out = firebell(&args);
    (out.status.code(), text(&out.stdout))
}

#[test]
fn history_lists_what_fired_and_what_was_sent_with_filters() {
    let dir = store_after_two_incidents();
    let state = dir.path().to_str().unwrap();
    let header = |n: usize| {
        format!(
            "history in {state} (embedded) from 2026-11-23T00:00:00Z to 2026-11-24T00:00:00Z ({n} entries)\n"
        )
    };
    let payments = "\
2026-11-23T15:42:00Z  pending         PaymentsHighErrorRate {service=\"payments\", severity=\"page\", team=\"payments\"}
2026-11-23T15:45:00Z  fired           PaymentsHighErrorRate {service=\"payments\", severity=\"page\", team=\"payments\"} value 5.2334
2026-11-23T15:46:00Z  paged           payments-oncall: [FIRING] Payments error rate 5.23% > 1% (payments, page)
2026-11-23T16:00:00Z  resolved        PaymentsHighErrorRate {service=\"payments\", severity=\"page\", team=\"payments\"} value 0.0707
2026-11-23T16:01:00Z  notified        payments-oncall: [RESOLVED] Payments error rate back to 0.071% (payments, page)
";
    // The latency degradation also pages the checkout latency SLO (an
    // update of the same group, resolved with it).
    let checkout = "\
2026-11-23T19:05:00Z  pending         CheckoutLatencyP99 {service=\"checkout\", severity=\"page\", team=\"checkout\"}
2026-11-23T19:08:00Z  fired           CheckoutLatencyP99 {service=\"checkout\", severity=\"page\", team=\"checkout\"} value 1547.874
2026-11-23T19:09:00Z  paged           checkout-oncall: [FIRING] Checkout p99 latency 1548ms > 800ms (checkout, page)
2026-11-23T19:23:00Z  fired           CheckoutLatency:page:1h {service=\"checkout\", severity=\"page\", slo=\"CheckoutLatency\", team=\"checkout\"} value 14.9776
2026-11-23T19:24:00Z  notified        checkout-oncall: [FIRING] Checkout latency: error budget burn over 1h 15 > 14.4 (checkout, page)
2026-11-23T19:26:00Z  resolved        CheckoutLatencyP99 {service=\"checkout\", severity=\"page\", team=\"checkout\"} value 148.425
2026-11-23T19:28:00Z  resolved        CheckoutLatency:page:1h {service=\"checkout\", severity=\"page\", slo=\"CheckoutLatency\", team=\"checkout\"} value 11.3542
2026-11-23T19:29:00Z  notified        checkout-oncall: [RESOLVED:2] checkout: Checkout latency: error budget burn over 1h 11.4, Checkout p99 latency 148ms
";
    let checkout_p99 = "\
2026-11-23T19:05:00Z  pending         CheckoutLatencyP99 {service=\"checkout\", severity=\"page\", team=\"checkout\"}
2026-11-23T19:08:00Z  fired           CheckoutLatencyP99 {service=\"checkout\", severity=\"page\", team=\"checkout\"} value 1547.874
2026-11-23T19:09:00Z  paged           checkout-oncall: [FIRING] Checkout p99 latency 1548ms > 800ms (checkout, page)
2026-11-23T19:26:00Z  resolved        CheckoutLatencyP99 {service=\"checkout\", severity=\"page\", team=\"checkout\"} value 148.425
2026-11-23T19:29:00Z  notified        checkout-oncall: [RESOLVED:2] checkout: Checkout latency: error budget burn over 1h 11.4, Checkout p99 latency 148ms
";
    assert_eq!(
        history(state, &[]),
        (Some(0), format!("{}{payments}{checkout}", header(13)))
    );
    assert_eq!(
        history(state, &["--rule", "CheckoutLatencyP99"]),
        (Some(0), format!("{}{checkout_p99}", header(5)))
    );
    assert_eq!(
        history(state, &["service=\"payments\""]),
        (Some(0), format!("{}{payments}", header(5)))
    );
    // --receiver: its notifications and, through the routing tree, the
    // transitions of the alerts it is sent.
    assert_eq!(
        history(
            state,
            &["--receiver", "checkout-oncall", "--config", "examples"]
        ),
        (Some(0), format!("{}{checkout}", header(8)))
    );
    // A relative window that holds nothing (the demo day is in the past).
    for since in ["now-1h", "-1h", "1h"] {
        let out = firebell(&["history", "--state", state, "--since", since]);
        assert_eq!(out.status.code(), Some(0), "{since}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).starts_with(&format!("no history in {state} (embedded) from ")),
            "{}",
            text(&out.stdout)
        );
    }
    let out = firebell(&["history", "--state", state, "--since", "last week"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: --since: invalid time \"last week\" (expected RFC 3339 such as 2026-11-23T15:42:00Z, a day such as 2026-11-23, Unix seconds, or a time relative to now: now, now-6h, -1d, 7d)\n"
    );
}

#[test]
fn history_json_follows_the_published_schemas() {
    let dir = store_after_two_incidents();
    let state = dir.path().to_str().unwrap();
    let (code, out) = history(state, &["--cycles", "-o", "json"]);
    assert_eq!(code, Some(0));
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let entries = doc.as_array().unwrap();
    let mut kinds = std::collections::BTreeMap::new();
    for e in entries {
        assert_schema("history", e);
        let entity = match e["kind"].as_str().unwrap() {
            "transition" => "transition",
            "notification" => "notification-record",
            "cycle" => "cycle",
            other => panic!("kind {other}"),
        };
        assert_schema(entity, &e["entry"]);
        *kinds.entry(entity).or_insert(0) += 1;
    }
    assert_eq!(kinds["transition"], 8);
    assert_eq!(kinds["notification-record"], 5);
    assert!(kinds["cycle"] >= 6, "{kinds:?}");
}

#[test]
fn status_reports_the_cycles_and_a_verdict() {
    let dir = store_after_two_incidents();
    let state = dir.path().to_str().unwrap();
    let out = firebell(&[
        "status",
        "--state",
        state,
        "--config",
        "examples",
        "--at",
        "2026-11-23T19:40:00Z",
        "--cycles",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Durations vary: masked.
    let stdout: String = text(&out.stdout)
        .lines()
        .map(|l| match l.rfind(", ") {
            Some(i) if l.ends_with(" ms") => format!("{}, N ms\n", &l[..i]),
            _ => format!("{l}\n"),
        })
        .collect();
    let version = text(&firebell(&["validate", "examples"]).stdout)
        .rsplit(' ')
        .next()
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(
        stdout,
        format!(
            "store: {state} (embedded)
config version: {version} (the same as --config)
last recorded tick: 2026-11-23T19:30:00Z (10m ago)
lease: free (last held by firebell-run-PID)

recent cycles that wrote (a quiet cycle writes nothing, so it is not listed):
  2026-11-23T19:29:00Z  7 rules, 7 instances, 1 transitions, 1 notifications, N ms
  2026-11-23T19:28:00Z  7 rules, 7 instances, 0 transitions, 0 notifications, N ms

outbox: 0 undelivered

silences: 0 active

verdict: healthy
"
        )
        .replace("firebell-run-PID", stdout_owner(&stdout))
    );
    let out = firebell(&[
        "status",
        "--state",
        state,
        "--at",
        "2026-11-23T19:40:00Z",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_schema("status", &doc);
    assert_eq!(doc["verdict"], "healthy");
    for c in doc["cycles"].as_array().unwrap() {
        assert_schema("cycle", c);
    }
}

/// The lease owner named in a status text (a process id varies).
fn stdout_owner(stdout: &str) -> &str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("lease: free (last held by "))
        .and_then(|l| l.strip_suffix(')'))
        .unwrap_or("?")
}

#[test]
fn reading_creates_no_state_and_a_missing_store_is_degraded() {
    let cwd = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_firebell"))
            .args(args)
            .current_dir(cwd.path())
            .env_remove("FIREBELL_CONFIG")
            .output()
            .unwrap()
    };
    let out = run(&["history"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).starts_with("no history in .firebell/state (embedded) from "),
        "{}",
        text(&out.stdout)
    );
    let out = run(&["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        "store: .firebell/state (embedded)\nverdict: degraded: no state store at .firebell/state (embedded): no cycle has written yet\n"
    );
    let out = run(&["status", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_schema("status", &serde_json::from_str(&text(&out.stdout)).unwrap());
    assert!(!cwd.path().join(".firebell").exists());
}
