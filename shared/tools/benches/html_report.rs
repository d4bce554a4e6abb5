#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The HTML report of a long backtest: `FIREBELL_BENCH_RULES` rules
//! (default 100), each with two instances (a wildcard `Host`), over
//! `FIREBELL_BENCH_DAYS` days (default 14) of one-minute data with a few
//! incidents and quiet nights (the volume guard). Prints the backtest's
//! time, the report's generation time and size, and the peak memory.
//! A benchmark that prints, not a timed test:
//!
//! ```text
//! cargo bench -p firebell-tools --bench html_report
//! ```

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use firebell_core::model::Stat;
use firebell_core::series::Point;
use firebell_embedded::{ReplaySeries, ReplaySource};
use firebell_tools::backtest::{SimOptions, analyze, simulate_charted};
use firebell_tools::html::{BacktestPage, Charts, Run, backtest_page};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift64*: reproducible noise without a crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn config(rules: usize) -> String {
    let mut y = String::from("rules:\n");
    for r in 0..rules {
        let _ = write!(
            y,
            r#"  - name: Rule{r:03}
    metrics:
      errors: {{namespace: Bench, metric: Errors, dimensions: {{Rule: "r{r}", Host: "*"}}, stat: Sum, period: 1m}}
      requests: {{namespace: Bench, metric: Requests, dimensions: {{Rule: "r{r}", Host: "*"}}, stat: Sum, period: 1m}}
    expression: 100 * FILL(errors, 0) / requests
    unit: percent
    condition: {{op: ">", threshold: 2, recovery: 1}}
    datapoints: {{breaching: 3, out_of: 5}}
    min_volume: {{metric: requests, at_least: 500, window: 5m}}
    labels: {{team: team{t}, severity: {sev}, service: svc{r}}}
    annotations:
      summary: "Error rate {{{{ value }}}} (threshold {{{{ threshold }}}})"
"#,
            t = r % 5,
            sev = if r % 3 == 0 { "page" } else { "ticket" },
        );
    }
    y.push_str("receivers:\n");
    for t in 0..5 {
        let _ = writeln!(
            y,
            "  team{t}: {{topics: [arn:aws:sns:us-east-1:123456789012:team{t}], send_resolved: true}}"
        );
    }
    y.push_str("route:\n  receiver: team0\n  group_by: [service]\n  group_wait: 0s\n  group_interval: 5m\n  repeat_interval: 4h\n  routes:\n");
    for t in 1..5 {
        let _ = writeln!(
            y,
            "    - matchers: ['team=\"team{t}\"']\n      receiver: team{t}"
        );
    }
    y
}

/// Two weeks of minutes per instance: daily traffic (quiet nights, under
/// the guard), noise, and an incident every few days per instance.
fn history(rules: usize, from: i64, to: i64) -> Vec<ReplaySeries> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::new();
    for r in 0..rules {
        for host in ["a", "b"] {
            let mut errors = Vec::new();
            let mut requests = Vec::new();
            let phase = rng.next() * 86_400.0;
            let mut incident_left = 0;
            let mut t = from;
            while t < to {
                let day = ((t as f64 + phase) / 86_400.0 * std::f64::consts::TAU).sin();
                let req = (60.0 + 140.0 * (day + 1.0) + rng.next() * 20.0).round();
                if incident_left == 0 && rng.next() < 1.0 / (3.0 * 1440.0) {
                    incident_left = 5 + (rng.next() * 40.0) as i64;
                }
                let rate = if incident_left > 0 {
                    incident_left -= 1;
                    0.03 + rng.next() * 0.05
                } else {
                    rng.next() * 0.012
                };
                requests.push(Point { t, v: req });
                errors.push(Point {
                    t,
                    v: (req * rate).round(),
                });
                t += 60;
            }
            for (metric, points) in [("Errors", errors), ("Requests", requests)] {
                out.push(ReplaySeries {
                    namespace: "Bench".into(),
                    metric: metric.into(),
                    dimensions: [
                        ("Rule".to_string(), format!("r{r}")),
                        ("Host".to_string(), host.to_string()),
                    ]
                    .into(),
                    stat: Stat::Sum,
                    period: 60,
                    points,
                    account: None,
                    region: None,
                    query: None,
                });
            }
        }
    }
    out
}

/// Peak resident memory (VmHWM), in MB.
fn peak_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is read from the command line.
    let rules = env("FIREBELL_BENCH_RULES", 100);
    let days = env("FIREBELL_BENCH_DAYS", 14);
    let from: i64 = 1_800_000_000 - 1_800_000_000 % 86_400;
    let to = from + 86_400 * days as i64;
    let mut diags = firebell_core::diag::Diagnostics::new();
    let cfg = firebell_engine::load_texts(
        &[("bench.yaml".to_string(), config(rules))],
        &mut diags,
        Vec::new(),
    );
    assert!(!diags.has_errors(), "{diags}");
    let cfg = Arc::new(cfg);
    let data = history(rules, from - 3600, to);
    let source = Arc::new(ReplaySource::from_series(data));
    println!(
        "html report: {rules} rules x 2 instances over {days} days of 1-minute data ({} cycles)",
        (to - from) / 60
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let opts = SimOptions::new(from, to);
    let mut charts = Charts::new(from, to);
    let start = Instant::now();
    let sim = rt
        .block_on(simulate_charted(
            cfg.clone(),
            source,
            &opts,
            &mut |_| {},
            Some(&mut charts),
        ))
        .unwrap();
    let report = analyze(&cfg, &sim);
    let simulated = start.elapsed();

    let start = Instant::now();
    let page = backtest_page(&BacktestPage {
        source: "generated",
        notes: &[],
        partial: &Default::default(),
        generator: "firebell bench",
        a: Run {
            name: "bench",
            config: &cfg,
            report: &report,
            charts: &charts,
        },
        b: None,
    });
    let written = start.elapsed();
    let fires: usize = report.rules.iter().map(|r| r.fires).sum();
    println!(
        "  backtest (with charts): {:.1}s; {} instances charted, {fires} fires, {} notifications",
        simulated.as_secs_f64(),
        charts.instances.len(),
        report.notifications.len()
    );
    println!(
        "  report: {:.0} ms to write, {:.2} MB ({} bytes), {} charts",
        written.as_secs_f64() * 1000.0,
        page.len() as f64 / 1_048_576.0,
        page.len(),
        page.matches("<svg class=\"chart\"").count()
    );
    println!("  peak memory: {:.0} MB", peak_mb());
    if let Ok(path) = std::env::var("FIREBELL_BENCH_HTML") {
        std::fs::write(&path, &page).unwrap();
        println!("  written to {path}");
    }
}
