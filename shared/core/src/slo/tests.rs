use std::time::Duration;

use super::*;
use crate::series::Grid;
use crate::state::{Event, InstanceState, Machine, Observation};

const MIN: u64 = 60;

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

const GOOD: &str = r#"
slos:
  - name: PaymentsAvailability
    team: payments
    objective: 99.9
    window: 30d
    sli:
      errors: {namespace: Shop, metric: Errors, dimensions: {Service: payments}, stat: Sum}
      total: {namespace: Shop, metric: Requests, dimensions: {Service: payments}, stat: Sum}
    min_volume: {at_least: 500, window: 1h}
    labels: {service: payments}
    annotations:
      title: Payments availability
      runbook_url: https://runbooks.example.com/payments/slo
"#;

fn slo() -> Slo {
    parse_slos("s.yaml", GOOD).unwrap().remove(0)
}

fn errors(text: &str) -> Vec<String> {
    match parse_slos("bad.yaml", text) {
        Ok(_) => vec![],
        Err(e) => e.0.errors().map(|d| d.to_string()).collect(),
    }
}

// ---------------------------------------------------------------- conformance

/// The SRE workbook's recommended alerts for a 99.9% SLO over 30 days
/// (chapter 5, table 5-8): windows, burn rates and the budget spent when
/// each fires.
#[test]
fn workbook_table_for_a_30_day_999_slo() {
    let window = REFERENCE_WINDOW;
    let table = [
        (PAGE_FAST, "page", 60 * MIN, 5 * MIN, 14.4, 0.02),
        (PAGE_SLOW, "page", 360 * MIN, 30 * MIN, 6.0, 0.05),
        (TICKET, "ticket", 3 * 1440 * MIN, 360 * MIN, 1.0, 0.10),
        (TICKET_FAST, "ticket", 1440 * MIN, 120 * MIN, 3.0, 0.10),
    ];
    for (a, sev, long, short, burn, spent) in table {
        let a = a.scaled(window);
        assert_eq!(a.severity.as_str(), sev);
        assert_eq!(a.long, Duration::from_secs(long));
        assert_eq!(a.short, Duration::from_secs(short));
        assert_eq!(
            a.short * 12,
            a.long,
            "the short window is 1/12 of the long one"
        );
        assert_eq!(a.burn, burn);
        assert!(
            (a.budget_spent(window) - spent).abs() < 1e-12,
            "{sev} {long}: {}",
            a.budget_spent(window)
        );
    }
}

/// Detection time for a constant error ratio: long window × burn threshold
/// / actual burn rate. At 100% errors on a 99.9% SLO (burn rate 1000) the
/// 1h page fires in 0.864 minutes, the 6h page in 2.16 and the 3-day ticket
/// in 4.32; at 10% errors (burn rate 100) in 8.64, 21.6 and 43.2 minutes; at
/// 1% (burn rate 10) the 1h page never fires (10 < 14.4).
#[test]
fn workbook_detection_times() {
    let budget = 0.001;
    let minutes = |a: BurnAlert, e: f64| a.detection_time(budget, e).map(|d| secs(d) / 60.0);
    let close = |got: Option<f64>, want: f64| {
        let got = got.unwrap();
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
    };
    close(minutes(PAGE_FAST, 1.0), 0.864);
    close(minutes(PAGE_SLOW, 1.0), 2.16);
    close(minutes(TICKET, 1.0), 4.32);
    close(minutes(TICKET_FAST, 1.0), 4.32);
    close(minutes(PAGE_FAST, 0.1), 8.64);
    close(minutes(PAGE_SLOW, 0.1), 21.6);
    close(minutes(TICKET, 0.1), 43.2);
    close(minutes(PAGE_SLOW, 0.01), 216.0);
    assert_eq!(minutes(PAGE_FAST, 0.01), None);
    assert_eq!(minutes(TICKET, 0.001), None, "burn rate 1 is not above 1");
    close(minutes(TICKET, 0.0011), 72.0 * 60.0 / 1.1);
}

/// The budget left and the time until it is gone: a fresh budget burning at
/// 14.4x lasts 50 hours; at 1x, the whole window.
#[test]
fn time_to_exhaustion_of_the_budget() {
    let w = REFERENCE_WINDOW;
    let hours =
        |spent: f64, burn: f64| time_to_exhaustion(w, spent, burn).map(|d| secs(d) / 3600.0);
    assert!((hours(0.0, 14.4).unwrap() - 50.0).abs() < 1e-9);
    assert!((hours(0.0, 1.0).unwrap() - 720.0).abs() < 1e-9);
    assert!((hours(0.5, 6.0).unwrap() - 60.0).abs() < 1e-9);
    assert_eq!(hours(1.0, 6.0), None);
    assert_eq!(hours(0.2, 0.0), None);
}

/// Runs a generated rule over `base` clean datapoints (1000 requests each,
/// no errors) then datapoints at `error_ratio`, through the expression and
/// the state machine; returns how long after the incident started the
/// alert fired (the end of the firing datapoint's period).
fn simulate(rule: &Rule, error_ratio: f64, incident: usize) -> Option<Duration> {
    let step = rule.step().as_secs() as i64;
    let base = rule.expression.history() + 1;
    let len = base + incident;
    let grid = Grid {
        start: 1_700_000_000 - 1_700_000_000 % step,
        step,
        len,
    };
    let total: Vec<Option<f64>> = vec![Some(1000.0); len];
    let errors: Vec<Option<f64>> = (0..len)
        .map(|i| Some(if i < base { 0.0 } else { 1000.0 * error_ratio }))
        .collect();
    let values = rule
        .expression
        .eval(&grid, &|id| match id {
            "errors" => Some(errors.as_slice()),
            "total" => Some(total.as_slice()),
            _ => None,
        })
        .unwrap();
    let machine = Machine::for_rule(rule);
    let mut st = InstanceState::default();
    for (i, t) in grid.times().enumerate().skip(base - 1) {
        for ev in machine.step(&mut st, Observation::new(t, values[i])) {
            if let Event::Fired { .. } = ev {
                return Some(Duration::from_secs(((i + 1 - base) as i64 * step) as u64));
            }
        }
    }
    None
}

/// The generated rules, run through the expression language and the state
/// machine, detect a constant error ratio at the workbook's detection time
/// rounded up to the rule's step.
#[test]
fn generated_rules_detect_at_the_workbook_times() {
    let s = slo();
    let rules = s.rules().unwrap();
    let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "PaymentsAvailability:page:1h",
            "PaymentsAvailability:page:6h",
            "PaymentsAvailability:ticket:3d"
        ]
    );
    let alerts = [PAGE_FAST, PAGE_SLOW, TICKET];
    for (rule, alert) in rules.iter().zip(alerts) {
        for e in [1.0, 0.1, 0.025] {
            let got = simulate(rule, e, 400);
            let step = secs(rule.step());
            // The condition is `>`: the first datapoint past the time.
            let want = alert
                .detection_time(0.001, e)
                .map(|d| Duration::from_secs_f64(((secs(d) / step).floor() + 1.0) * step));
            assert_eq!(got, want, "{} at error ratio {e}", rule.name);
        }
    }
    // The minutes the rules actually take (step 1m, 1m, 15m).
    let at = |i: usize, e: f64| simulate(&rules[i], e, 400).map(|d| d.as_secs() / 60);
    assert_eq!(
        [at(0, 1.0), at(1, 1.0), at(2, 1.0)],
        [Some(1), Some(3), Some(15)]
    );
    assert_eq!(
        [at(0, 0.1), at(1, 0.1), at(2, 0.1)],
        [Some(9), Some(22), Some(45)]
    );
    // 1% errors is a 10x burn: never a 14.4x page; the 6h window reaches 6x
    // after 216 minutes (3.6 hours), and passes it on the next datapoint.
    assert_eq!([at(0, 0.01), at(1, 0.01)], [None, Some(217)]);
}

/// The short window resets the alert soon after the errors stop, though the
/// long window still remembers them.
#[test]
fn short_window_resolves_soon_after_the_errors_stop() {
    let rules = slo().rules().unwrap();
    let rule = &rules[0];
    let step = 60;
    let base = rule.expression.history() + 1;
    let len = base + 30;
    let grid = Grid {
        start: 1_700_000_000 - 1_700_000_000 % step,
        step,
        len,
    };
    let total = vec![Some(1000.0); len];
    // 10 minutes of 100% errors, then clean.
    let errors: Vec<Option<f64>> = (0..len)
        .map(|i| {
            Some(if i >= base && i < base + 10 {
                1000.0
            } else {
                0.0
            })
        })
        .collect();
    let values = rule
        .expression
        .eval(&grid, &|id| match id {
            "errors" => Some(errors.as_slice()),
            _ => Some(total.as_slice()),
        })
        .unwrap();
    let machine = Machine::for_rule(rule);
    let mut st = InstanceState::default();
    let mut events = Vec::new();
    for (i, t) in grid.times().enumerate().skip(base - 1) {
        for ev in machine.step(&mut st, Observation::new(t, values[i])) {
            events.push((i + 1 - base, ev));
        }
    }
    let fired: Vec<_> = events
        .iter()
        .filter_map(|(i, e)| match e {
            Event::Fired { value, .. } => Some((*i, value.unwrap())),
            _ => None,
        })
        .collect();
    let resolved: Vec<_> = events
        .iter()
        .filter_map(|(i, e)| match e {
            Event::Resolved { value, .. } => Some((*i, value.unwrap())),
            _ => None,
        })
        .collect();
    // Fires on the first bad minute at the long window's burn rate: 1000/60.
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].0, 1);
    assert!((fired[0].1 - 1000.0 / 60.0).abs() < 1e-9);
    // Resolves once the 5-minute window is down to 14.4x: after the 5th
    // clean minute (the long window is still at 10000/60 = 166x). The value
    // shown then is the short window's, 0.
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].0, 15);
    assert_eq!(resolved[0].1, 0.0);
}

// ---------------------------------------------------------------- generated rules

#[test]
fn generated_rule_shape() {
    let s = slo();
    let rules = s.rules().unwrap();
    let r = &rules[0];
    assert_eq!(r.origin.to_string(), "s.yaml:3:11");
    assert_eq!(r.interval, Duration::from_secs(60));
    assert_eq!(r.step(), Duration::from_secs(60));
    assert_eq!(
        r.expression_src,
        "IF(RSUM(FILL(errors, 0), 5) / RSUM(total, 5) / 0.001 > 14.4, \
RSUM(FILL(errors, 0), 60) / RSUM(total, 60) / 0.001, \
MIN(RSUM(FILL(errors, 0), 60) / RSUM(total, 60) / 0.001, RSUM(FILL(errors, 0), 5) / RSUM(total, 5) / 0.001))"
    );
    assert_eq!(r.condition.threshold, 14.4);
    assert_eq!(r.condition.op, Op::Gt);
    assert_eq!(r.pending, Pending::For(Duration::ZERO));
    let labels: Vec<String> = r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(
        labels,
        [
            "service=payments",
            "severity=page",
            "slo=PaymentsAvailability",
            "team=payments"
        ]
    );
    assert_eq!(
        r.annotations["title"],
        "Payments availability: error budget burn over 1h"
    );
    assert_eq!(
        r.annotations["runbook_url"],
        "https://runbooks.example.com/payments/slo"
    );
    assert_eq!(
        r.annotations["description"],
        "SLO PaymentsAvailability: 99.9% of requests good over 30d. This page fires when the \
last 1h and the last 5m both burn the error budget faster than 14.4x; at 14.4x, 2% of the 30d \
budget goes in 1h."
    );
    let g = r.min_volume.as_ref().unwrap();
    assert_eq!(
        (g.metric.as_str(), g.at_least, g.window),
        ("total", 500.0, Duration::from_secs(3600))
    );
    // Lookback: the guard (60m), the 60-datapoint window's history (59),
    // one interval, the margin (5).
    assert_eq!(r.lookback(), Duration::from_secs((60 + 59 + 1 + 5) * 60));

    // The budget over the SLO window: hourly datapoints, 30 days of them.
    let c = &r.context[0];
    assert_eq!(c.name, BUDGET_SPENT);
    assert_eq!(c.window, REFERENCE_WINDOW);
    assert_eq!(c.step(), Duration::from_secs(3600));
    assert_eq!(c.metrics["total"].metric_name, "Requests");
    assert_eq!(
        c.expression.source(),
        "SUM(FILL(errors, 0)) / SUM(total) / 0.001"
    );

    // The other alerts' grids: 6h at 1m, 3d at 15m.
    assert_eq!(rules[1].step(), Duration::from_secs(60));
    assert_eq!(rules[1].condition.threshold, 6.0);
    assert!(rules[1].expression_src.contains("RSUM(total, 360)"));
    assert!(rules[1].expression_src.contains("RSUM(total, 30)"));
    assert_eq!(rules[2].step(), Duration::from_secs(900));
    assert_eq!(rules[2].interval, Duration::from_secs(900));
    assert!(rules[2].expression_src.contains("RSUM(total, 288)"));
    assert!(rules[2].expression_src.contains("RSUM(total, 24)"));
    assert_eq!(rules[2].labels["severity"], "ticket");
}

#[test]
fn windows_scale_with_the_slo_window() {
    let text = GOOD
        .replace("window: 30d", "window: 28d\n    ticket_fast: true")
        .replace("objective: 99.9", "objective: 99.5");
    let s = parse_slos("s.yaml", &text).unwrap().remove(0);
    let plans = s.plans();
    let shown: Vec<String> = plans
        .iter()
        .map(|p| {
            format!(
                "{} {}/{} at {} x{} ({}%)",
                p.alert.severity.as_str(),
                format_duration(p.long()),
                format_duration(p.short()),
                format_duration(p.step),
                number(p.alert.burn),
                number(p.alert.budget_spent(s.window) * 100.0),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            "page 56m/5m at 1m x14.4 (2%)",
            "page 5h36m/28m at 1m x6 (5%)",
            "ticket 2d19h15m/5h30m at 15m x1 (10%)",
            "ticket 22h25m/1h50m at 5m x3 (10%)",
        ]
    );
    let rules = s.rules().unwrap();
    assert_eq!(rules[0].name, "PaymentsAvailability:page:56m");
    assert_eq!(rules[3].name, "PaymentsAvailability:ticket:22h25m");
    assert!(rules[0].expression_src.contains("/ 0.005 > 14.4"));

    // A 7-day SLO: the 1h page becomes 14m over 1m.
    let s7 = parse_slos("s.yaml", &GOOD.replace("window: 30d", "window: 7d"))
        .unwrap()
        .remove(0);
    let p = s7.plans()[0];
    assert_eq!(
        (p.long(), p.short()),
        (Duration::from_secs(14 * 60), Duration::from_secs(60))
    );
}

#[test]
fn good_total_sli_and_coarse_periods() {
    let text = r#"slos:
  - name: CheckoutLatency
    team: checkout
    objective: 99
    window: 90d
    sli:
      good: {namespace: Shop, metric: FastRequests, dimensions: {Service: checkout}, stat: Sum, period: 5m}
      total: {namespace: Shop, metric: Requests, dimensions: {Service: checkout}, stat: SampleCount, period: 5m}
"#;
    let s = parse_slos("s.yaml", text).unwrap().remove(0);
    let rules = s.rules().unwrap();
    // 90d: the 1h page is 3h long; the SLI's 5m period is the finest step.
    assert_eq!(rules[0].name, "CheckoutLatency:page:3h");
    assert_eq!(rules[0].step(), Duration::from_secs(300));
    assert!(
        rules[0]
            .expression_src
            .starts_with("IF(RSUM(total - FILL(good, 0), 3) / RSUM(total, 3) / 0.01 > 14.4")
    );
    assert_eq!(
        rules[0].context[0].expression.source(),
        "(SUM(total) - SUM(FILL(good, 0))) / SUM(total) / 0.01"
    );
    assert!(rules[0].min_volume.is_none());
    assert_eq!(rules[0].labels["team"], "checkout");
    assert_eq!(
        rules[0].annotations["title"],
        "CheckoutLatency: error budget burn over 3h"
    );
    // 366 days: hourly would be 8,784 datapoints; daily instead.
    let long = parse_slos("s.yaml", &text.replace("window: 90d", "window: 366d")).unwrap();
    assert_eq!(long[0].budget_period(), Duration::from_secs(86_400));
}

#[test]
fn plan_keeps_long_windows_within_the_point_budget() {
    let p = plan(TICKET, Duration::from_secs(60));
    assert_eq!((p.step.as_secs(), p.long_n, p.short_n), (900, 288, 24));
    let p = plan(PAGE_FAST, Duration::from_secs(10));
    assert_eq!((p.step.as_secs(), p.long_n, p.short_n), (60, 60, 5));
    // An odd SLI period: multiples of it.
    let p = plan(TICKET, Duration::from_secs(420));
    assert_eq!(p.step.as_secs() % 420, 0);
    assert!(u64::from(p.long_n) <= MAX_WINDOW_POINTS);
}

#[test]
fn numbers_print_without_float_noise() {
    assert_eq!(number((100.0 - 99.9) / 100.0), "0.001");
    assert_eq!(number(14.4), "14.4");
    assert_eq!(number(6.0), "6");
    assert_eq!(number(0.02 * 100.0), "2");
    assert_eq!(number(-0.0), "0");
}

#[test]
fn budget_template_mentions_the_window() {
    let t = budget_template(REFERENCE_WINDOW);
    assert!(t.contains("* 720 / value_raw"), "{t}");
    assert!(t.contains("of the 30d budget"), "{t}");
    assert!(t.starts_with("{% if budget_spent is none %}"), "{t}");
}

// ---------------------------------------------------------------- decoding errors

#[test]
fn every_mistake_is_reported_with_its_position() {
    let text = r#"slos:
  - name: "Bad:Name"
    team: ""
    objective: 100
    window: 12h
    sli:
      errors: {namespace: Shop, metric: Errors, stat: Average}
      good: {namespace: Shop, metric: Fast, stat: Sum}
      total: {namespace: Shop, metric: Requests, stat: Sum}
    ticket_fast: yes
    min_volume: {at_least: -1, window: 0}
    labels: {severity: low, "bad-label": x}
    colour: red
"#;
    assert_eq!(
        errors(text),
        vec![
            "bad.yaml:2:11: error: invalid SLO name \"Bad:Name\" (expected letters, digits, '_', '-' or '.', at most 128 characters)",
            "bad.yaml:3:11: error: `team` is empty (expected the team the alerts go to)",
            "bad.yaml:4:16: error: `objective` 100 is out of range (expected a percentage of good events above 0 and below 100, such as 99.9)",
            "bad.yaml:5:13: error: `window` 12h is too short (expected at least 1d, such as 30d or 28d)",
            "bad.yaml:7:7: error: `sli` takes `errors` or `good` beside `total`, not both",
            "bad.yaml:7:55: error: `stat` of SLI metric `errors` must be Sum or SampleCount (counts that add up over windows), found Average",
            "bad.yaml:10:18: error: `ticket_fast` must be true or false, found \"yes\"",
            "bad.yaml:11:28: error: `at_least` -1 is negative (expected a count of events)",
            "bad.yaml:11:40: error: `window` is zero (expected a duration such as 1h)",
            "bad.yaml:12:13: error: invalid label name \"bad-label\" (expected [A-Za-z_][A-Za-z0-9_]*)",
            "bad.yaml:12:13: error: label \"severity\" is set by firebell for SLO alerts (alertname, severity: page or ticket, slo, and team from `team`)",
            "bad.yaml:13:5: error: unknown field `colour` in SLO (expected one of: annotations, labels, min_volume, name, objective, sli, team, ticket_fast, window)",
        ]
    );
}

#[test]
fn missing_fields_and_duplicates() {
    let text = r#"slos:
  - name: A
    team: t
    objective: 99.9
    sli:
      total: {namespace: Shop, metric: Requests, stat: Sum}
  - name: B
    sli: {errors: {namespace: Shop, metric: Errors, stat: Sum}}
  - name: C
    team: t
    objective: 99
    sli:
      errors: {namespace: Shop, metric: Errors, stat: Sum}
      total: {namespace: Shop, metric: Requests, stat: Sum}
  - name: C
    team: t
    objective: 99
    window: 400d
    sli:
      errors: {namespace: Shop, metric: Errors, stat: Sum}
      total: {namespace: Shop, metric: Requests, stat: Sum}
"#;
    assert_eq!(
        errors(text),
        vec![
            "bad.yaml:6:7: error: `sli` is missing `errors` or `good` (the bad or the good events, beside `total`)",
            "bad.yaml:7:5: error: SLO is missing required field `team`",
            "bad.yaml:7:5: error: SLO is missing required field `objective`",
            "bad.yaml:8:11: error: sli is missing required field `total`",
            "bad.yaml:18:13: error: `window` 400d is too long (expected at most 366d)",
        ]
    );
    let dup = text.replace("    window: 400d\n", "");
    assert_eq!(
        errors(&dup).last().map(String::as_str),
        Some("bad.yaml:15:11: error: duplicate SLO name \"C\" (first defined at bad.yaml:9:11)")
    );
}

// ---------------------------------------------------------------- latency SLI

const LATENCY: &str = r#"slos:
  - name: CheckoutLatency
    team: checkout
    objective: 99
    sli:
      latency: {namespace: Shop, metric: Latency, dimensions: {Service: checkout}, under: 300, period: 1m}
    min_volume: {at_least: 100, window: 1h}
"#;

#[test]
fn latency_sli_reads_the_percentile_rank_weighted_by_the_sample_count() {
    let s = parse_slos("s.yaml", LATENCY).unwrap().remove(0);
    let rules = s.rules().unwrap();
    let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "CheckoutLatency:page:1h",
            "CheckoutLatency:page:6h",
            "CheckoutLatency:ticket:3d"
        ]
    );
    let page = &rules[0];
    assert_eq!(
        page.expression_src,
        "IF(RSUM(total * (100 - fast) / 100, 5) / RSUM(IF(fast >= 0, total), 5) / 0.01 > 14.4, \
         RSUM(total * (100 - fast) / 100, 60) / RSUM(IF(fast >= 0, total), 60) / 0.01, \
         MIN(RSUM(total * (100 - fast) / 100, 60) / RSUM(IF(fast >= 0, total), 60) / 0.01, \
         RSUM(total * (100 - fast) / 100, 5) / RSUM(IF(fast >= 0, total), 5) / 0.01))"
    );
    let stats: Vec<(String, String, String)> = page
        .metrics
        .iter()
        .map(|(id, m)| (id.clone(), m.metric_name.clone(), m.stat.to_string()))
        .collect();
    assert_eq!(
        stats,
        [
            ("fast".into(), "Latency".into(), "PR(:300)".into()),
            ("total".into(), "Latency".into(), "SampleCount".into())
        ]
    );
    assert_eq!(page.metrics["fast"].dimensions["Service"], "checkout");
    assert_eq!(
        page.min_volume.as_ref().map(|g| g.metric.as_str()),
        Some("total")
    );
    // The ticket runs on 15 minutes: both metrics at that period.
    assert!(
        rules[2]
            .metrics
            .values()
            .all(|m| m.period == Duration::from_secs(900))
    );
    let budget = &page.context[0];
    assert_eq!(
        budget.expression.source(),
        "SUM(total * (100 - fast) / 100) / SUM(IF(fast >= 0, total)) / 0.01"
    );
    assert_eq!(budget.required, vec!["fast".to_string()]);
    assert!(
        budget
            .metrics
            .values()
            .all(|m| m.period == Duration::from_secs(3600))
    );
}

/// The burn rate is of requests, not datapoints: a busy minute at 90% fast
/// weighs ten times a quiet minute at 50% fast.
#[test]
fn latency_burn_rate_weights_each_datapoint_by_its_requests() {
    let s = parse_slos("s.yaml", LATENCY).unwrap().remove(0);
    let rule = &s.rules().unwrap()[0];
    let len = 60;
    let grid = Grid {
        start: 1_700_000_000 - 1_700_000_000 % 60,
        step: 60,
        len,
    };
    // Alternating: 1000 requests 90% fast, 100 requests 50% fast; one
    // minute without requests (no percentile rank, no count).
    let fast: Vec<Option<f64>> = (0..len)
        .map(|i| match i {
            7 => None,
            _ if i % 2 == 0 => Some(90.0),
            _ => Some(50.0),
        })
        .collect();
    let total: Vec<Option<f64>> = (0..len)
        .map(|i| match i {
            7 => None,
            _ if i % 2 == 0 => Some(1000.0),
            _ => Some(100.0),
        })
        .collect();
    let values = rule
        .expression
        .eval(&grid, &|id| match id {
            "fast" => Some(fast.as_slice()),
            "total" => Some(total.as_slice()),
            _ => None,
        })
        .unwrap();
    // Over the hour: 30 × 100 + 29 × 50 slow out of 30,000 + 2,900
    // requests, against a 1% budget.
    let long = (30.0 * 100.0 + 29.0 * 50.0) / (30_000.0 + 2_900.0) / 0.01;
    let last = values[len - 1].unwrap();
    // The short window (5 minutes, ending on a busy one) burns faster than
    // the threshold, so the value shown is the long window's.
    assert!((last - long).abs() < 1e-9, "{last} vs {long}");
}

/// A datapoint with requests (`SampleCount`) but no percentile rank says
/// nothing of their speed: it is left out of both sums, not counted fast.
#[test]
fn latency_datapoints_without_a_rank_are_left_out_not_counted_fast() {
    let s = parse_slos("s.yaml", LATENCY).unwrap().remove(0);
    let rule = &s.rules().unwrap()[0];
    let len = 60;
    let grid = Grid {
        start: 1_700_000_000 - 1_700_000_000 % 60,
        step: 60,
        len,
    };
    // Every minute 100 requests, 50% fast; the last 4 minutes 10,000
    // requests each with no percentile rank.
    let fast: Vec<Option<f64>> = (0..len).map(|i| (i < len - 4).then_some(50.0)).collect();
    let total: Vec<Option<f64>> = (0..len)
        .map(|i| Some(if i < len - 4 { 100.0 } else { 10_000.0 }))
        .collect();
    let eval = |e: &crate::expr::Expr| {
        e.eval(&grid, &|id| match id {
            "fast" => Some(fast.as_slice()),
            "total" => Some(total.as_slice()),
            _ => None,
        })
        .unwrap()
    };
    // 50% slow against a 1% budget: burning 50x over both windows (the
    // unranked minutes neither dilute it nor count as fast).
    assert_eq!(eval(&rule.expression)[len - 1], Some(50.0));
    assert_eq!(eval(&rule.context[0].expression)[len - 1], Some(50.0));
}

#[test]
fn latency_sli_mistakes_are_reported() {
    let text = r#"slos:
  - name: L
    team: t
    objective: 99
    sli:
      latency: {namespace: Shop, metric: Latency, under: 0, stat: p99}
      total: {namespace: Shop, metric: Requests, stat: Sum}
"#;
    assert_eq!(
        errors(text),
        vec![
            "bad.yaml:6:58: error: `under` 0 is out of range (expected the latency threshold, a positive number in the metric's unit, such as 300)",
            "bad.yaml:6:61: error: unknown field `stat` in latency SLI (expected one of: dimensions, metric, namespace, period, under)",
            "bad.yaml:7:7: error: `sli` takes `latency` alone (its request count is the metric's SampleCount), not `total`",
        ]
    );
    let missing = r#"slos:
  - name: L
    team: t
    objective: 99
    sli:
      latency: {namespace: Shop, metric: Latency}
"#;
    assert_eq!(
        errors(missing),
        vec!["bad.yaml:6:17: error: latency SLI is missing required field `under`"]
    );
}

#[test]
fn latency_slo_sentinel_weights_the_rank_by_the_count() {
    let s = parse_slos("s.yaml", LATENCY).unwrap().remove(0);
    let rules = s.rules().unwrap();
    let refs: Vec<&Rule> = rules.iter().collect();
    let alarm = crate::sentinel::for_slo(&s, &refs, "fb-").unwrap();
    assert_eq!(
        alarm.expression.source(),
        "FILL(total, 0) * (100 - FILL(fast, 100)) / 100 - 0.06 * FILL(total, 0)"
    );
}
