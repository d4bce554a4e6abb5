//! An SLO through the whole engine: its generated burn-rate rule fires on a
//! fast burn, and the page states the error budget left (from the hourly
//! budget query over the SLO window) and the time until it is gone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use firebell_core::diag::Diagnostics;
use firebell_core::ports::{Clock, Outbound};
use firebell_core::series::Epoch;
use firebell_core::state::Event;
use firebell_embedded::{ManualClock, MemoryNotifier, MemoryStore, ReplaySource};
use firebell_engine::{Engine, EngineOptions};

const CONFIG: &str = r#"
slos:
  - name: ApiAvailability
    team: api
    objective: 99.9
    window: 30d
    sli:
      errors: {namespace: App, metric: Errors, dimensions: {Service: api}, stat: Sum}
      total: {namespace: App, metric: Requests, dimensions: {Service: api}, stat: Sum}
    annotations:
      title: API availability
      runbook_url: https://runbooks.example.com/api/slo
receivers:
  oncall:
    topics: [arn:aws:sns:us-east-1:123456789012:oncall]
route:
  receiver: oncall
  group_by: [alertname]
  group_wait: 0s
"#;

const T0: Epoch = 1_700_006_400; // a whole day (UTC midnight)
const DAY_MIN: i64 = 1440;

/// A day of 1,000 requests a minute with one error every 10 minutes (0.01%:
/// a tenth of the budget), then 20% errors (a 200x burn).
fn replay() -> ReplaySource {
    let mins = DAY_MIN + 30;
    let mut req = Vec::new();
    let mut err = Vec::new();
    for m in 0..mins {
        let t = T0 + 60 * m;
        req.push(format!("[{t},1000]"));
        let e = if m >= DAY_MIN {
            200
        } else if m % 10 == 0 {
            1
        } else {
            0
        };
        err.push(format!("[{t},{e}]"));
    }
    let line = |metric: &str, points: &[String]| {
        format!(
            r#"{{"namespace":"App","metric":"{metric}","dimensions":{{"Service":"api"}},"stat":"Sum","period":60,"points":[{}]}}"#,
            points.join(",")
        )
    };
    let text = format!("{}\n{}\n", line("Requests", &req), line("Errors", &err));
    ReplaySource::parse("slo.jsonl", &text).unwrap()
}

#[tokio::test]
async fn fast_burn_pages_with_the_budget_left() {
    let mut diags = Diagnostics::new();
    let config = firebell_engine::load_texts(
        &[("slo.yaml".to_string(), CONFIG.to_string())],
        &mut diags,
        vec![PathBuf::from("slo.yaml")],
    );
    assert!(!diags.has_errors(), "{diags}");
    let names: Vec<&str> = config.rules.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ApiAvailability:page:1h",
            "ApiAvailability:page:6h",
            "ApiAvailability:ticket:3d"
        ]
    );

    let clock = Arc::new(ManualClock::at_epoch(T0));
    let store = Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>));
    let notifier = Arc::new(MemoryNotifier::new());
    let engine = Engine::new(
        Arc::new(config),
        Arc::new(replay()),
        store,
        notifier.clone(),
        EngineOptions::default(),
    );
    let mut fired = Vec::new();
    let mut sent: Vec<(Epoch, Outbound)> = Vec::new();
    // Cycles from the last clean hour into the incident.
    for m in (DAY_MIN - 60)..(DAY_MIN + 20) {
        let now = T0 + 60 * (m + 1);
        clock.set_epoch(now);
        let report = engine.run_cycle(now, &|| false).await.unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        for t in &report.transitions {
            if let Event::Fired { at, value } = t.event {
                fired.push((t.rule.clone(), (at - T0) / 60 - DAY_MIN, value));
            }
        }
        sent.extend(notifier.take().into_iter().map(|o| (now, o)));
    }
    // 20% errors is a 200x burn: the 1h page passes 14.4x after
    // 60 × 14.4 / 200 = 4.32 minutes, so on the incident's 5th datapoint
    // (minute 4); the 6h page after 360 × 6 / 200 = 10.8 (minute 10). The
    // 3-day ticket runs on 15-minute datapoints: its first one of the
    // incident (minute 0, judged once complete) is already past 1x, as only
    // a day of history backs its 3-day window.
    let fired_at: Vec<(&str, i64)> = fired.iter().map(|(r, m, _)| (r.as_str(), *m)).collect();
    assert_eq!(
        fired_at,
        [
            ("ApiAvailability:page:1h", 4),
            ("ApiAvailability:page:6h", 10),
            ("ApiAvailability:ticket:3d", 0)
        ]
    );
    // The value is the 1h burn rate: 5 × 200 errors and 5 baseline errors
    // in the last 60,000 requests, over the 0.1% budget.
    let v = fired[0].2.unwrap();
    assert!((v - 1005.0 / 60_000.0 / 0.001).abs() < 1e-9, "{v}");

    let (_, page) = sent
        .iter()
        .find(|(_, o)| o.subject.contains("error budget burn over 1h"))
        .expect("a page for the 1h window");
    assert_eq!(
        page.subject,
        "[FIRING] API availability: error budget burn over 1h 16.8 > 14.4 (page)"
    );
    let body = &page.bodies["default"];
    // Budget spent over the window (the day and the incident's 5 minutes,
    // hourly, with the hour in progress): (144 + 1000) errors out of
    // 1,445,000 requests, 79.2% of the 0.1% budget: 20.8% left, gone in
    // 0.2083 × 720 h / 16.75 = 8.95 hours at the current burn rate.
    assert!(
        body.contains(
            "Error budget left: 20.8% of the 30d budget; at 16.8x it is gone in 9.0 hours."
        ),
        "{body}"
    );
    // A day of data backs the 30-day figure: it says so.
    assert!(
        body.contains(
            "gone in 9.0 hours. (Partial: computed from only 24.1 hours of data, not the full 30d.)"
        ),
        "{body}"
    );
    assert!(
        body.contains("https://runbooks.example.com/api/slo"),
        "{body}"
    );
}
