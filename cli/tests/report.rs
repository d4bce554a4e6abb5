//! `firebell report`: the noise report over a backtest of the bundled demo
//! day, and over a stored history on the embedded store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{assert_schema, firebell, text};
use firebell_core::alert::AlertStatus;
use firebell_core::model::Labels;
use firebell_core::ports::{Clock, Expect, Item, StateStore, SystemClock};
use firebell_core::state::Event;
use firebell_embedded::FileStore;
use firebell_engine::Transition;
use firebell_engine::history::{self, HistoryEntry, Notification, NotifiedAlert};
use firebell_notify::{Matcher, PK_SILENCE, Silence};

const DEMO: &[&str] = &[
    "report",
    "--config",
    "examples",
    "--source",
    "examples/demo/day.jsonl",
];

#[test]
fn a_backtest_of_the_demo_day() {
    let out = firebell(DEMO);
    assert_eq!(text(&out.stderr), "");
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        "Noise report 2026-11-23T00:00:00Z .. 2026-11-24T00:00:00Z

Team checkout-oncall (working hours: 09:00-18:00 Monday-Friday America/New_York)
  3 notifications, 1 page, 0 out of hours, 0 toast (0%)
  silences created: none
  rule                         notifs pages  ooh toast flaps   median      p90  fires   firing
  CheckoutLatencyP99                2     1    0     0     0      18m      18m      1      18m
  CheckoutLatency:page:1h           2     0    0     0     0       5m       5m      1       5m

Team ops (working hours: 09:00-18:00 Monday-Friday UTC)
  0 notifications, 0 pages, 0 out of hours, 0 toast (-)
  silences created: none

Team payments-oncall (working hours: 09:00-18:00 Monday-Friday UTC)
  2 notifications, 1 page, 0 out of hours, 0 toast (0%)
  silences created: none
  rule                         notifs pages  ooh toast flaps   median      p90  fires   firing
  PaymentsHighErrorRate             2     1    0     0     0      15m      15m      1      15m

Noisiest rules
  1. CheckoutLatencyP99 (checkout-oncall): 1 page, 2 notifications, 0 flaps
     -> move to an SLO: a threshold on single datapoints that paged 1 time; page on error-budget burn instead
  2. PaymentsHighErrorRate (payments-oncall): 1 page, 2 notifications, 0 flaps
     -> move to an SLO: a threshold on single datapoints that paged 1 time; page on error-budget burn instead
  3. CheckoutLatency:page:1h (checkout-oncall): 0 pages, 2 notifications, 0 flaps
     -> no change suggested

Silences created: none
"
    );
}

#[test]
fn the_demo_day_as_json_follows_the_schema() {
    let mut args = DEMO.to_vec();
    args.extend(["-o", "json", "--receiver", "payments-oncall"]);
    let out = firebell(&args);
    assert_eq!(text(&out.stderr), "");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_schema("report", &doc);
    assert_eq!(doc["schema"], "firebell.report/v1");
    assert_eq!(doc["since"], "2026-11-23T00:00:00Z");
    let teams: Vec<&str> = doc["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["receiver"].as_str().unwrap())
        .collect();
    assert_eq!(teams, ["payments-oncall"]);
    let t = &doc["teams"][0];
    assert_eq!(
        (t["notifications"].as_u64(), t["pages"].as_u64()),
        (Some(2), Some(1))
    );
    let r = &t["rules"][0];
    assert_eq!(r["rule"], "PaymentsHighErrorRate");
    assert_eq!(r["median_resolve_secs"], 900);
    assert_eq!(doc["noisiest"][0]["suggestion"], "slo");
}

fn put(store: &FileStore, pk: String, sk: String, data: String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let item = Item {
        pk,
        sk,
        version: 1,
        data,
        expires_at: Some(4_000_000_000),
    };
    rt.block_on(store.put(item, Expect::Any)).unwrap();
}

fn entry(store: &FileStore, kind: &str, id: &str, e: &HistoryEntry) {
    let k = history::key(e.at(), kind, id);
    put(store, k.pk, k.sk, history::pages(vec![e.clone()]).remove(0));
}

/// Saturday 2026-11-21 03:00 UTC.
const SAT_0300: i64 = 1_795_230_000;

fn page(at: i64, update: bool) -> HistoryEntry {
    let labels: Labels = [
        ("alertname", "PaymentsHighErrorRate"),
        ("severity", "page"),
        ("team", "payments"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    HistoryEntry::Notification(Notification {
        at,
        receiver: "payments-oncall".into(),
        destinations: vec!["payments".into()],
        group_key: "payments-oncall/x".into(),
        status: AlertStatus::Firing,
        alertname: "PaymentsHighErrorRate".into(),
        severity: Some("page".into()),
        subject: "x".into(),
        group_labels: Labels::new(),
        alerts: vec![NotifiedAlert {
            alertname: "PaymentsHighErrorRate".into(),
            status: AlertStatus::Firing,
            labels,
            value: Some(0.2),
        }],
        update,
        more_alerts: 0,
    })
}

fn transition(event: Event) -> HistoryEntry {
    HistoryEntry::Transition(Transition {
        rule: "PaymentsHighErrorRate".into(),
        labels: Labels::new(),
        event,
    })
}

#[test]
fn the_stored_history_on_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = FileStore::open(&state, clock).unwrap();
    // Two incidents on a Saturday night: one over in 4 minutes (toast),
    // one back 20 minutes after it resolved (a flap) lasting 10 minutes.
    let t = SAT_0300;
    let entries = [
        (
            "transition",
            "a",
            transition(Event::Fired { at: t, value: None }),
        ),
        ("notification", "a", page(t + 60, false)),
        (
            "transition",
            "b",
            transition(Event::Resolved {
                at: t + 240,
                value: None,
            }),
        ),
        (
            "transition",
            "c",
            transition(Event::Fired {
                at: t + 1440,
                value: None,
            }),
        ),
        ("notification", "b", page(t + 1500, false)),
        ("notification", "c", page(t + 1800, true)),
        (
            "transition",
            "d",
            transition(Event::Resolved {
                at: t + 2040,
                value: None,
            }),
        ),
    ];
    for (kind, id, e) in &entries {
        entry(&store, kind, id, e);
    }
    let silence = Silence {
        id: "s1".into(),
        matchers: Matcher::parse_list(r#"team="payments""#).unwrap(),
        starts_at: t + 300,
        ends_at: t + 7200,
        created_by: "alice".into(),
        comment: "deploy".into(),
        created_at: t + 300,
        updated_at: t + 300,
    };
    put(
        &store,
        PK_SILENCE.into(),
        "s1".into(),
        serde_json::to_string(&silence).unwrap(),
    );

    let state_arg = state.display().to_string();
    let out = firebell(&[
        "report",
        "--config",
        "examples",
        "--state",
        &state_arg,
        "--since",
        "7d",
        "--until",
        "2026-11-23T00:00:00Z",
        "--receiver",
        "payments-oncall",
    ]);
    assert_eq!(text(&out.stderr), "");
    assert_eq!(
        text(&out.stdout),
        "Noise report 2026-11-16T00:00:00Z .. 2026-11-23T00:00:00Z

Team payments-oncall (working hours: 09:00-18:00 Monday-Friday UTC)
  3 notifications, 2 pages, 2 out of hours, 1 toast (50%)
  silences created: 1 (alice 1)
  rule                         notifs pages  ooh toast flaps   median      p90  fires   firing
  PaymentsHighErrorRate             3     2    2     1     1       4m      10m      2      14m

Noisiest rules
  1. PaymentsHighErrorRate (payments-oncall): 2 pages, 3 notifications, 1 flap
     -> raise `for`: 1 of 2 pages resolved within 5 minutes

Silences created: 1 (alice 1)
"
    );
    assert!(out.status.success());

    let out = firebell(&[
        "report",
        "--config",
        "examples",
        "--state",
        &state_arg,
        "--since",
        "7d",
        "--until",
        "2026-11-23T00:00:00Z",
        "-o",
        "json",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_schema("report", &doc);
}

#[test]
fn reading_never_creates_the_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("nothing-here");
    let state_arg = state.display().to_string();
    let out = firebell(&["report", "--config", "examples", "--state", &state_arg]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: no state at {state_arg} (nothing has run there): give --state DIR, or --backend aws --table NAME, or --source FILE for a backtest\n"
        )
    );
    assert!(!state.exists());
}
