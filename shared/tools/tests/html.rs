#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The HTML report's charts hold what the engine reported: the datapoints
//! its judge stepped through (each once, with the guard's verdict), its
//! state changes as bands, and an inhibition as `firebell alerts` decides it.

use std::sync::Arc;

use firebell_core::model::Stat;
use firebell_core::series::{Epoch, Point};
use firebell_embedded::{ReplaySeries, ReplaySource};
use firebell_tools::backtest::{SimOptions, analyze, simulate_charted};
use firebell_tools::html::{BacktestPage, BandKind, Charts, Run, backtest_page};

/// A whole hour.
const T0: Epoch = 1_800_000_000;

const CONFIG: &str = r#"
rules:
  - name: Down
    metrics:
      a: {namespace: N, metric: A, dimensions: {Service: s}, stat: Sum, period: 1m}
    expression: a
    condition: {op: ">", threshold: 5}
    labels: {team: t, severity: page, service: s}
  - name: Slow
    metrics:
      b: {namespace: N, metric: B, dimensions: {Service: s}, stat: Sum, period: 1m}
      v: {namespace: N, metric: V, dimensions: {Service: s}, stat: Sum, period: 1m}
    expression: b
    condition: {op: ">", threshold: 5}
    min_volume: {metric: v, at_least: 10, window: 1m}
    labels: {team: t, severity: ticket, service: s}
receivers:
  t: {topics: [arn:aws:sns:us-east-1:123456789012:t]}
route:
  receiver: t
  group_by: [alertname]
  group_wait: 0s
  group_interval: 5m
  repeat_interval: 4h
inhibit_rules:
  - source_matchers: ['severity="page"']
    target_matchers: ['severity="ticket"']
    equal: [service]
"#;

fn series(metric: &str, values: &[f64]) -> ReplaySeries {
    ReplaySeries {
        namespace: "N".into(),
        metric: metric.into(),
        dimensions: [("Service".to_string(), "s".to_string())].into(),
        stat: Stat::Sum,
        period: 60,
        account: None,
        region: None,
        query: None,
        points: values
            .iter()
            .enumerate()
            .map(|(i, v)| Point {
                t: T0 + 60 * i as i64,
                v: *v,
            })
            .collect(),
    }
}

#[test]
fn charts_hold_the_judged_points_the_states_and_the_inhibition() {
    let mut diags = firebell_core::diag::Diagnostics::new();
    let config = Arc::new(firebell_engine::load_texts(
        &[("c.yaml".to_string(), CONFIG.to_string())],
        &mut diags,
        Vec::new(),
    ));
    assert!(!diags.has_errors(), "{diags}");
    // Down fires at minute 2..6; Slow breaches at 3..8, its volume is too
    // low at minute 0 (not judged there).
    let source = ReplaySource::from_series([
        series("A", &[0., 0., 9., 9., 9., 9., 0., 0., 0., 0.]),
        series("B", &[9., 0., 0., 9., 9., 9., 9., 9., 9., 0.]),
        series("V", &[1., 20., 20., 20., 20., 20., 20., 20., 20., 20.]),
    ]);
    let (from, to) = (T0, T0 + 600);
    let mut charts = Charts::new(from, to);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let sim = rt
        .block_on(simulate_charted(
            config.clone(),
            Arc::new(source),
            &SimOptions::new(from, to),
            &mut |_| {},
            Some(&mut charts),
        ))
        .unwrap();
    let report = analyze(&config, &sim);

    let down = charts.instances.iter().find(|c| c.rule == "Down").unwrap();
    let slow = charts.instances.iter().find(|c| c.rule == "Slow").unwrap();
    // Every datapoint once (the cycle at 10m sees minutes 0..9), with the guard's verdict.
    assert_eq!(
        (down.stats.points, down.stats.missing, down.stats.unjudged),
        (10, 0, 0)
    );
    assert_eq!(
        (slow.stats.points, slow.stats.missing, slow.stats.unjudged),
        (10, 0, 1)
    );
    assert_eq!((slow.stats.min, slow.stats.max), (Some(0.0), Some(9.0)));
    assert_eq!(slow.stats.last, Some((T0 + 540, 0.0)));
    assert!(slow.columns[0].unjudged && !slow.columns[100].unjudged);

    let bands = |c: &firebell_tools::html::InstanceChart| -> Vec<(BandKind, i64, i64, String)> {
        c.bands
            .iter()
            .map(|b| (b.kind, (b.from - T0) / 60, (b.to - T0) / 60, b.by.clone()))
            .collect()
    };
    assert_eq!(bands(down), vec![(BandKind::Firing, 2, 6, String::new())]);
    // Slow fires at 3 and is inhibited while Down fires: from the cycle at
    // 4m (the first after its fire at datapoint 3) to the one at 7m, when
    // Down resolved (datapoint 6).
    assert_eq!(
        bands(slow),
        vec![
            (BandKind::Firing, 3, 9, String::new()),
            (
                BandKind::Inhibited,
                3,
                7,
                r#"inhibited by Down {service="s", severity="page", team="t"}"#.to_string()
            ),
        ]
    );

    let page = backtest_page(&BacktestPage {
        source: "test",
        notes: &[],
        partial: &Default::default(),
        generator: "test",
        a: Run {
            name: "c",
            config: &config,
            report: &report,
            charts: &charts,
        },
        b: None,
    });
    assert!(page.contains(r#"<rect class="band inhibited" fill="url(#p-inhibited)""#));
    assert!(page.contains("<td>inhibited</td><td>inhibited by Down {service=&quot;s&quot;, severity=&quot;page&quot;, team=&quot;t&quot;}</td>"));
}

#[test]
fn a_silenced_alert_is_marked_with_its_silence() {
    use firebell_tools::backtest::Simulator;
    let mut diags = firebell_core::diag::Diagnostics::new();
    let config = Arc::new(firebell_engine::load_texts(
        &[("c.yaml".to_string(), CONFIG.to_string())],
        &mut diags,
        Vec::new(),
    ));
    assert!(!diags.has_errors(), "{diags}");
    let source =
        ReplaySource::from_series([series("A", &[0., 0., 9., 9., 9., 9., 0., 0., 0., 0.])]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let sim = Simulator::charting(config.clone(), Arc::new(source), T0, "test");
    let silence = rt
        .block_on(firebell_notify::add_silence(
            sim.store().as_ref(),
            &config.notify.silence_policy,
            T0,
            firebell_notify::SilenceSpec {
                matchers: vec![r#"alertname="Down""#.to_string()],
                starts_at: None,
                ends_at: T0 + 3600,
                created_by: "alice".to_string(),
                // User text, as a page must show it: escaped.
                comment: "maintenance </title></rect><script>x()</script>".to_string(),
                force: false,
            },
        ))
        .unwrap();
    // The loop of `simulate_charted`, over a world holding a silence.
    let mut charts = Charts::new(T0, T0 + 600);
    for now in SimOptions::new(T0, T0 + 600).ticks() {
        let cycle = rt.block_on(sim.cycle(now)).unwrap();
        charts.observe(&cycle);
        if charts.alerting() {
            let alerts = rt
                .block_on(firebell_engine::alerts::list(
                    sim.store().as_ref(),
                    &config,
                    &firebell_engine::alerts::Filter::default(),
                    now,
                ))
                .unwrap();
            charts.muting(now, 60, &alerts);
        }
    }
    charts.finish();
    let down = charts.instances.iter().find(|c| c.rule == "Down").unwrap();
    let bands: Vec<(BandKind, i64, i64, &str)> = down
        .bands
        .iter()
        .map(|b| (b.kind, (b.from - T0) / 60, (b.to - T0) / 60, b.by.as_str()))
        .collect();
    let by = format!(
        "silenced by {} (alice: maintenance </title></rect><script>x()</script>)",
        silence.id
    );
    assert_eq!(
        bands,
        vec![
            (BandKind::Firing, 2, 6, ""),
            (BandKind::Silenced, 2, 7, by.as_str()),
        ]
    );
    // The page charts the rules its report names.
    let mut report = firebell_tools::backtest::BacktestReport::default();
    report.rules.push(firebell_tools::backtest::RuleStats {
        rule: "Down".to_string(),
        ..Default::default()
    });
    let page = backtest_page(&BacktestPage {
        source: "test",
        notes: &[],
        partial: &Default::default(),
        generator: "test",
        a: Run {
            name: "c",
            config: &config,
            report: &report,
            charts: &charts,
        },
        b: None,
    });
    assert!(!page.contains("<script>"), "unescaped silence comment");
    assert!(
        page.contains("maintenance &lt;/title&gt;&lt;/rect&gt;&lt;script&gt;x()&lt;/script&gt;")
    );
}
