#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Issue 15's acceptance: the detection latency of the demo's two fires
//! with sentinel mode equals polling mode. The demo's config (the files
//! `cli/src/bundled.rs` compiles in) and day are replayed through the
//! [`Simulator`] the demo uses, once polling every rule every minute and
//! once with `sentinels: {mode: auto}` over [`SimulatedAlarms`] on the same
//! replay source; every transition, every message and so both fires (rule,
//! cycle, datapoint, notification time) are the same, while the covered
//! rules were skipped on most quiet minutes.
//!
//! `PaymentsHighErrorRate` alerts on missing data (`missing_data: nodata`)
//! over an expression of two metrics, which CloudWatch metric math cannot
//! watch soundly (`Polling::MissingData`): it stays on polling in sentinel
//! mode. So the day is also replayed with its missing data kept, where
//! both firing rules have sentinels.

use std::collections::BTreeMap;
use std::sync::Arc;

use firebell_core::diag::Diagnostics;
use firebell_core::sentinel::Polling;
use firebell_core::series::Epoch;
use firebell_core::state::Event;
use firebell_embedded::{ReplaySource, SimulatedAlarms};
use firebell_engine::{Config, Transition};
use firebell_tools::backtest::{SimOptions, Simulator};

/// The demo's config files, as `cli/src/bundled.rs` lists them.
const EXAMPLE_FILES: &[(&str, &str)] = &[
    (
        "examples/rules/payments.yaml",
        include_str!("../../../examples/rules/payments.yaml"),
    ),
    (
        "examples/rules/checkout.yaml",
        include_str!("../../../examples/rules/checkout.yaml"),
    ),
    (
        "examples/slos.yaml",
        include_str!("../../../examples/slos.yaml"),
    ),
    (
        "examples/routing.yaml",
        include_str!("../../../examples/routing.yaml"),
    ),
];
const DEMO_DAY: &str = include_str!("../../../examples/demo/day.jsonl");
/// 2026-11-23T00:00:00Z, the demo's day.
const DAY: Epoch = 1_795_392_000;

/// The files above are the example config directory (its rule tests
/// aside), as `firebell demo` and `cli/src/bundled.rs` take it.
#[test]
fn the_demo_config_is_the_example_directory() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut texts: Vec<String> = firebell_engine::config_files(&dir)
        .unwrap()
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .filter(|t| !firebell_tools::unittest::is_test_file(t))
        .collect();
    let mut ours: Vec<&str> = EXAMPLE_FILES.iter().map(|(_, t)| *t).collect();
    texts.sort();
    ours.sort_unstable();
    assert_eq!(texts, ours);
}

fn hhmm(t: Epoch) -> String {
    let m = (t - DAY) / 60;
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// The example config, with sentinels on when `sentinels`, each file's
/// text passed through `edit`.
fn config(sentinels: bool, edit: &dyn Fn(&str) -> String) -> Arc<Config> {
    let mut texts: Vec<(String, String)> = EXAMPLE_FILES
        .iter()
        .map(|(n, t)| (n.to_string(), edit(t)))
        .collect();
    if sentinels {
        texts.push((
            "examples/sentinels.yaml".to_string(),
            "sentinels: {mode: auto}\n".to_string(),
        ));
    }
    let mut diags = Diagnostics::new();
    let config = firebell_engine::load_texts(&texts, &mut diags, Vec::new());
    assert!(!diags.has_errors(), "{diags}");
    Arc::new(config)
}

/// One fire: rule, the cycle that fired it, its datapoint, and when its
/// first notification went out.
#[derive(Debug, Clone, PartialEq)]
struct Fire {
    rule: String,
    cycle: String,
    datapoint: String,
    notified: String,
}

/// What a replay of the day did.
#[derive(Default)]
struct Day {
    /// Per cycle: transitions and messages (Debug text, compared whole).
    cycles: Vec<(Epoch, Vec<Transition>, Vec<String>)>,
    fires: Vec<Fire>,
    /// Per rule: the cycles that judged it.
    judged: BTreeMap<String, usize>,
    cold: usize,
    alarm: usize,
    swept: usize,
}

async fn replay(config: Arc<Config>, sentinels: bool) -> Day {
    let source = Arc::new(ReplaySource::parse("examples/demo/day.jsonl", DEMO_DAY).unwrap());
    // As `firebell demo` runs it (`cli/src/demo.rs`, `replay_day`).
    let opts = SimOptions {
        owner: "demo".into(),
        ..SimOptions::new(DAY, DAY + 1440 * 60)
    };
    let mut sim = Simulator::new(config, source.clone(), opts.from, &opts.owner);
    if sentinels {
        sim = sim.with_alarms(Arc::new(SimulatedAlarms::new(source)));
    }
    let mut day = Day::default();
    for now in opts.ticks() {
        let c = sim.cycle(now).await.unwrap();
        assert!(
            c.report.errors.is_empty(),
            "{}: {:?}",
            hhmm(now),
            c.report.errors
        );
        day.cold += c.report.sentinels.cold;
        day.alarm += c.report.sentinels.alarm;
        day.swept += c.report.sentinels.swept;
        let mut rules: Vec<&str> = c.report.views.iter().map(|v| v.rule.as_str()).collect();
        rules.dedup();
        for r in rules {
            *day.judged.entry(r.to_string()).or_default() += 1;
        }
        for t in &c.report.transitions {
            if let Event::Fired { at, .. } = t.event {
                day.fires.push(Fire {
                    rule: t.rule.clone(),
                    cycle: hhmm(now),
                    datapoint: hhmm(at),
                    notified: String::new(),
                });
            }
        }
        for m in &c.sent {
            for f in day.fires.iter_mut().filter(|f| f.notified.is_empty()) {
                if m.subject.starts_with("[FIRING]")
                    && m.attributes.get("alertname") == Some(&f.rule)
                {
                    f.notified = hhmm(now);
                }
            }
        }
        day.cycles.push((
            now,
            c.report.transitions,
            c.sent.iter().map(|m| format!("{m:?}")).collect(),
        ));
    }
    day
}

fn fire(rule: &str, cycle: &str, datapoint: &str, notified: &str) -> Fire {
    Fire {
        rule: rule.into(),
        cycle: cycle.into(),
        datapoint: datapoint.into(),
        notified: notified.into(),
    }
}

/// Replays the day both ways and checks they did the same, at the same
/// minutes; returns the sentinel mode's day.
async fn same_day(edit: &dyn Fn(&str) -> String) -> (Day, Day) {
    let polling = replay(config(false, edit), false).await;
    let sentinel = replay(config(true, edit), true).await;
    assert_eq!(polling.cycles.len(), 1440);
    assert_eq!(sentinel.cycles.len(), 1440);
    for ((t, tr_a, sent_a), (_, tr_b, sent_b)) in polling.cycles.iter().zip(&sentinel.cycles) {
        assert_eq!(tr_a, tr_b, "{}: transitions differ", hhmm(*t));
        assert_eq!(sent_a, sent_b, "{}: messages differ", hhmm(*t));
    }
    assert_eq!(polling.fires, sentinel.fires);
    // Polling judges every rule at every cycle it is due: every minute,
    // the SLO's ticket every 15 minutes.
    for (rule, &n) in &polling.judged {
        let due = if rule.contains(":ticket:") { 97 } else { 1440 };
        assert_eq!(n, due, "{rule}");
    }
    assert_eq!(polling.cold, 0);
    (polling, sentinel)
}

#[tokio::test]
async fn the_demo_fires_and_pages_at_the_same_minutes_with_sentinels() {
    let config = config(true, &|t| t.to_string());
    let desired =
        firebell_engine::sentinel::desired(&config, firebell_core::sentinel::DEFAULT_PREFIX);
    // Which rules sentinels cover in the demo's config.
    let covered: Vec<&str> = desired
        .alarms
        .iter()
        .flat_map(|a| a.rules.iter().map(String::as_str))
        .collect();
    assert_eq!(
        covered,
        [
            "PaymentsAvailability:page:1h",
            "PaymentsAvailability:page:6h",
            "CheckoutLatency:page:1h",
            "CheckoutLatency:page:6h",
            "CheckoutErrorRate",
            "CheckoutLatencyP99"
        ]
    );
    assert_eq!(
        desired.polling.get("PaymentsHighErrorRate"),
        Some(&Polling::MissingData)
    );

    let (_, sentinel) = same_day(&|t| t.to_string()).await;
    assert_eq!(
        sentinel.fires,
        [
            fire("PaymentsHighErrorRate", "15:46", "15:45", "15:46"),
            fire("CheckoutLatencyP99", "19:09", "19:08", "19:09"),
            // The latency SLO (PR(:800) weighted by SampleCount): its
            // sentinel wakes it in time.
            fire("CheckoutLatency:page:1h", "19:24", "19:23", "19:24"),
        ]
    );
    // Not vacuous: the covered rules were skipped most minutes of the day
    // (judged when their sentinel was in ALARM, their state not at rest,
    // at their sweep, and until the sentinels were in sync).
    assert!(sentinel.cold > 3 * 1440, "{}", sentinel.cold);
    assert!(sentinel.alarm > 0);
    for rule in &covered {
        let n = sentinel.judged[*rule];
        assert!(n < 1440 / 3, "{rule} judged {n} times");
    }
    assert_eq!(sentinel.judged["PaymentsHighErrorRate"], 1440);
    eprintln!(
        "demo day, sentinel mode: judged per rule {:?}; cold {}, alarm {}, swept {}",
        sentinel.judged, sentinel.cold, sentinel.alarm, sentinel.swept
    );
}

#[tokio::test]
async fn with_the_payments_rule_covered_too_both_fires_are_as_early_with_sentinels() {
    // Missing data kept: the rule gets a sentinel; the day's fires are the
    // same (the 13:05 gap raised nothing either way).
    let keep = |t: &str| t.replace("    missing_data: nodata\n", "    missing_data: keep\n");
    assert!(EXAMPLE_FILES[0].1.contains("    missing_data: nodata\n"));
    let config = config(true, &keep);
    let desired =
        firebell_engine::sentinel::desired(&config, firebell_core::sentinel::DEFAULT_PREFIX);
    assert!(desired.sentinel_of("PaymentsHighErrorRate").is_some());
    assert!(desired.sentinel_of("CheckoutLatencyP99").is_some());

    let (_, sentinel) = same_day(&keep).await;
    assert_eq!(
        sentinel.fires,
        [
            fire("PaymentsHighErrorRate", "15:46", "15:45", "15:46"),
            fire("CheckoutLatencyP99", "19:09", "19:08", "19:09"),
            // The latency SLO (PR(:800) weighted by SampleCount): its
            // sentinel wakes it in time.
            fire("CheckoutLatency:page:1h", "19:24", "19:23", "19:24"),
        ]
    );
    for rule in ["PaymentsHighErrorRate", "CheckoutLatencyP99"] {
        let n = sentinel.judged[rule];
        assert!(n < 1440 / 3, "{rule} judged {n} times");
    }
    eprintln!(
        "demo day, payments covered: judged per rule {:?}; cold {}, alarm {}, swept {}",
        sentinel.judged, sentinel.cold, sentinel.alarm, sentinel.swept
    );
}
