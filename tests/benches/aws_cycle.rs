//! One engine cycle at scale with the real DynamoDB and SNS adapters
//! against the emulator: 1,000, 10,000 and 100,000 rules, each over two
//! metrics of its own service (`Errors` / `Requests`, or a `Latency` p99
//! guarded by `Requests`), so 2,000 / 20,000 / 200,000 distinct metrics;
//! about 1% of the rules breach. Per size: one cold cycle (every instance
//! is new) and then a quiet one a minute later (no new data, nothing
//! changes).
//!
//! ```sh
//! eval "$(scripts/emulator.sh start)"
//! cargo bench -p firebell-tests --bench aws_cycle                        # 1k, 10k, 100k
//! FIREBELL_BENCH_RULES=1000,10000 cargo bench -p firebell-tests --bench aws_cycle
//! ```
//!
//! **CloudWatch is served in-process** by a generated [`MetricsSource`]
//! (`Generated`), not by the emulator: the emulator's `GetMetricData`
//! slows down with everything stored (200,000 metrics), which would measure
//! the emulator, not firebell. The generated source counts the
//! `GetMetricData` calls a real CloudWatch would be asked
//! ([`firebell_aws::get_metric_data_calls`]: the adapter's own plan, at most
//! 500 queries per call, grouped by period) and answers with awkward,
//! real-world values: error ratios such as 7/463, request counts that make
//! non-round floats, interpolated percentiles. DynamoDB and SNS are the
//! real adapters (`DynamoStore`, `SnsNotifier`) on the emulator.
//!
//! Each size runs in its own child process (this binary re-executed with
//! `FIREBELL_BENCH_CHILD=<rules>`), so the peak memory (VmHWM) is per size.
//! Printed per cycle: the API calls by service and operation, the DynamoDB
//! read and write units (as DynamoDB bills them, worked out by the adapter
//! from the item sizes: `DynamoStats`), the wall time, firebell's own CPU
//! time (this process's user + system time; the emulator is another
//! process) and the peak memory. Checked: `GetMetricData` calls =
//! ceil(metrics / 500) per cycle; no DynamoDB write, no transition and no
//! SNS call in the quiet cycle. Exits 1 when a check fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use firebell_aws::{DynamoStats, DynamoStore, SnsNotifier, SnsStats, get_metric_data_calls};
use firebell_core::diag::Diagnostics;
use firebell_core::model::Stat;
use firebell_core::ports::{Clock, MetricQuery, MetricSeries, MetricsError, MetricsSource};
use firebell_core::series::{Epoch, Point};
use firebell_engine::{CycleReport, Engine, EngineOptions};
use firebell_tests::{Aws, aws, minute_now, peak_rss_kib};

/// The sizes run when `FIREBELL_BENCH_RULES` is not set.
const DEFAULT_SIZES: &str = "1000,10000,100000";
/// Metrics per rule.
const METRICS_PER_RULE: usize = 2;
/// About one rule in this many breaches.
const BREACH_EVERY: usize = 100;
/// Every this many rules one is a latency (p99) rule.
const LATENCY_EVERY: usize = 10;
/// Minutes of data before the cold cycle's tick.
const MINUTES: i64 = 3;
/// `GetMetricData` accepts at most this many queries per call.
const QUERIES_PER_CALL: usize = 500;

/// Rules per config file (a file may hold at most 4 MiB).
const RULES_PER_FILE: usize = 2000;

/// The config: files of [`RULES_PER_FILE`] rules, then the routing.
fn config_texts(rules: usize, topic: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = (0..rules)
        .step_by(RULES_PER_FILE)
        .map(|first| {
            let last = (first + RULES_PER_FILE).min(rules);
            (format!("rules{first:06}.yaml"), rules_text(first..last))
        })
        .collect();
    files.push((
        "routing.yaml".to_string(),
        format!(
            r#"receivers:
  bench: {{topics: ["{topic}"], send_resolved: true}}
route:
  receiver: bench
  group_by: [alertname]
  group_wait: 0s
  group_interval: 5m
  repeat_interval: 4h
"#
        ),
    ));
    files
}

fn rules_text(range: std::ops::Range<usize>) -> String {
    let mut text = String::with_capacity(range.len() * 520);
    text.push_str("rules:\n");
    for i in range {
        let svc = format!("svc{i:06}");
        if i % LATENCY_EVERY == 5 {
            text.push_str(&format!(
                r#"  - name: Latency{i:06}
    metrics:
      latency: {{namespace: Bench, metric: Latency, dimensions: {{Service: {svc}}}, stat: p99, period: 1m}}
      requests: {{namespace: Bench, metric: Requests, dimensions: {{Service: {svc}}}, stat: Sum, period: 1m}}
    expression: latency
    unit: ms
    condition: {{op: ">", threshold: 800}}
    min_volume: {{metric: requests, at_least: 10, window: 1m}}
    labels: {{team: bench, service: {svc}, severity: page}}
    annotations: {{title: "{svc} p99 latency"}}
"#
            ));
        } else {
            text.push_str(&format!(
                r#"  - name: Errors{i:06}
    metrics:
      errors: {{namespace: Bench, metric: Errors, dimensions: {{Service: {svc}}}, stat: Sum, period: 1m}}
      requests: {{namespace: Bench, metric: Requests, dimensions: {{Service: {svc}}}, stat: Sum, period: 1m}}
    expression: 100 * errors / requests
    unit: percent
    condition: {{op: ">", threshold: 5}}
    labels: {{team: bench, service: {svc}, severity: page}}
    annotations: {{title: "{svc} error rate"}}
"#
            ));
        }
    }
    text
}

/// A small deterministic hash, for values that look random but repeat.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// CloudWatch, generated: every `Service=svcNNNNNN` metric has data for the
/// `MINUTES` minutes before `data_end` (none after, so a later cycle sees
/// nothing new). Values:
/// - `Requests` (Sum): 300 to 1,299 per minute, never round;
/// - `Errors` (Sum): 2 to 12 per minute (7 of 463 is 1.5119...%), 80 to 119
///   for one service in `BREACH_EVERY` (over the 5% threshold);
/// - `Latency` (p99): interpolated between two samples (412.7 + k/3 ms),
///   over 800 ms for the breaching services.
struct Generated {
    data_end: Epoch,
    calls: AtomicU64,
    queries: AtomicU64,
}

impl Generated {
    fn value(&self, metric: &str, stat: Stat, svc: usize, t: Epoch) -> f64 {
        let h = mix((svc as u64) << 32 ^ (t as u64 / 60));
        // One Errors rule and one Latency rule in every 2 * BREACH_EVERY.
        let breach =
            svc.is_multiple_of(2 * BREACH_EVERY) || svc % (2 * BREACH_EVERY) == BREACH_EVERY + 5;
        match (metric, stat) {
            ("Requests", _) => 300.0 + (h % 1000) as f64,
            ("Errors", _) if breach => 80.0 + (h % 40) as f64,
            ("Errors", _) => 2.0 + (h % 11) as f64,
            ("Latency", Stat::Percentile(p)) => {
                // The p-th percentile of 300 samples, interpolated between
                // the two nearest: rank r = p/100 * (n - 1).
                let base = if breach { 812.5 } else { 412.7 };
                let rank = p / 100.0 * 299.0;
                let frac = rank - rank.floor();
                let a = base + (h % 97) as f64 / 3.0;
                let b = a + 17.0 / 7.0;
                a + (b - a) * frac
            }
            _ => (h % 100) as f64 / 7.0,
        }
    }
}

#[async_trait]
impl MetricsSource for Generated {
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: Epoch,
        end: Epoch,
    ) -> Result<Vec<MetricSeries>, MetricsError> {
        let calls = get_metric_data_calls(queries, start, end)?;
        self.calls.fetch_add(calls as u64, Ordering::Relaxed);
        self.queries
            .fetch_add(queries.len() as u64, Ordering::Relaxed);
        let first = (self.data_end - MINUTES * 60).max(start.div_euclid(60) * 60);
        let last = self.data_end.min(end);
        Ok(queries
            .iter()
            .map(|q| {
                let svc = q
                    .spec
                    .dimensions
                    .get("Service")
                    .and_then(|s| s.strip_prefix("svc"))
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(0);
                let points = (first..last)
                    .step_by(60)
                    .map(|t| Point {
                        t,
                        v: self.value(&q.spec.metric_name, q.spec.stat, svc, t),
                    })
                    .collect();
                MetricSeries {
                    id: q.id.clone(),
                    points,
                    complete: true,
                }
            })
            .collect())
    }
}

#[derive(Clone, Copy)]
struct Stats {
    get_metric_data: u64,
    dynamodb: DynamoStats,
    sns: SnsStats,
    cpu: f64,
}

struct Bench {
    rules: usize,
    engine: Engine,
    cloudwatch: Arc<Generated>,
    dynamo: Arc<DynamoStore>,
    sns: Arc<SnsNotifier>,
}

/// This process's CPU time (user + system) in seconds, from
/// `/proc/self/stat` (clock ticks of 1/100 s); 0 where there is none.
fn cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / 100.0
}

impl Bench {
    fn stats(&self) -> Stats {
        Stats {
            get_metric_data: self.cloudwatch.calls.load(Ordering::Relaxed),
            dynamodb: self.dynamo.stats(),
            sns: self.sns.stats(),
            cpu: cpu_secs(),
        }
    }
}

fn dynamo_diff(a: &DynamoStats, b: &DynamoStats) -> DynamoStats {
    DynamoStats {
        get_item: b.get_item - a.get_item,
        batch_get_item: b.batch_get_item - a.batch_get_item,
        put_item: b.put_item - a.put_item,
        delete_item: b.delete_item - a.delete_item,
        query: b.query - a.query,
        query_eventually: b.query_eventually - a.query_eventually,
        unprocessed_retries: b.unprocessed_retries - a.unprocessed_retries,
        read_half_units: b.read_half_units - a.read_half_units,
        write_units: b.write_units - a.write_units,
    }
}

fn sns_diff(a: &SnsStats, b: &SnsStats) -> SnsStats {
    SnsStats {
        publish: b.publish - a.publish,
        publish_batch: b.publish_batch - a.publish_batch,
        batch_entries: b.batch_entries - a.batch_entries,
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "OK" } else { "VIOLATED" }
}

fn peak_mib() -> String {
    match peak_rss_kib() {
        Some(kib) => format!("{:.1} MiB (VmHWM)", kib as f64 / 1024.0),
        None => "unknown (no /proc/self/status)".to_string(),
    }
}

/// Runs one cycle, prints its figures, returns whether its checks held.
async fn cycle(b: &Bench, name: &str, tick: i64, quiet: bool) -> bool {
    let before = b.stats();
    let started = Instant::now();
    let report: CycleReport = b
        .engine
        .run_cycle(tick, &|| false)
        .await
        .unwrap_or_else(|e| panic!("{name} cycle failed: {e}"));
    let wall = started.elapsed();
    let after = b.stats();
    let gmd = after.get_metric_data - before.get_metric_data;
    let ddb = dynamo_diff(&before.dynamodb, &after.dynamodb);
    let sns = sns_diff(&before.sns, &after.sns);
    let rules = b.rules;
    println!("[{rules} rules] {name} cycle (tick {tick}):");
    println!(
        "  report      : {} rules, {} instances, {} queries, {} transitions, {} notifications sent, {} store writes, {} errors, skipped {:?}",
        report.rules_evaluated,
        report.instances_evaluated,
        report.queries,
        report.transitions.len(),
        report.notifications_sent,
        report.store_writes,
        report.errors.len(),
        report.skipped,
    );
    let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
    for t in &report.transitions {
        let kind = format!("{:?}", t.event);
        let kind = kind
            .split([' ', '{', '('])
            .next()
            .unwrap_or_default()
            .to_string();
        *kinds.entry(kind).or_default() += 1;
    }
    if !kinds.is_empty() {
        println!("  transitions : {kinds:?}");
    }
    for e in report.errors.iter().take(5) {
        println!("  error       : {e}");
    }
    println!(
        "  CloudWatch  : {gmd} calls (GetMetricData={gmd}, in-process, counted as CloudWatch would be called)"
    );
    println!(
        "  DynamoDB    : {} calls, {} writes ({ddb})",
        ddb.total(),
        ddb.writes()
    );
    println!(
        "  DDB units   : {} read units, {} write units",
        ddb.read_units(),
        ddb.write_units
    );
    println!("  SNS         : {} calls ({sns})", sns.total());
    println!("  wall time   : {:.3} s", wall.as_secs_f64());
    println!(
        "  CPU time    : {:.2} s (firebell: this process, user + system)",
        after.cpu - before.cpu
    );
    println!("  peak memory : {}", peak_mib());
    let metrics = rules * METRICS_PER_RULE;
    let want_calls = metrics.div_ceil(QUERIES_PER_CALL) as u64;
    let calls_ok = gmd == want_calls;
    println!(
        "  check       : GetMetricData calls {gmd} == ceil({metrics}/{QUERIES_PER_CALL}) = {want_calls}: {}",
        verdict(calls_ok)
    );
    let mut ok = calls_ok;
    if quiet {
        let writes_ok = ddb.writes() == 0;
        println!(
            "  check       : DynamoDB writes in the quiet cycle {} == 0: {}",
            ddb.writes(),
            verdict(writes_ok)
        );
        ok &= writes_ok;
        let transitions_ok = report.transitions.is_empty() && sns.total() == 0;
        println!(
            "  check       : nothing happens in the quiet cycle ({} transitions, {} SNS calls): {}",
            report.transitions.len(),
            sns.total(),
            verdict(transitions_ok)
        );
        ok &= transitions_ok;
    }
    ok
}

/// Loads the config and builds the engine; the cold cycle's tick is the
/// minute after loading (a slow load must not age the tick: the store's
/// lease expiry follows the wall clock).
async fn setup(aws: &Aws, rules: usize) -> anyhow::Result<(Bench, i64)> {
    let table = aws.table().await?;
    let topic = aws.topic(false).await?;

    let cpu0 = cpu_secs();
    let started = Instant::now();
    let texts = config_texts(rules, &topic);
    let bytes: usize = texts.iter().map(|(_, t)| t.len()).sum();
    let mut diags = Diagnostics::new();
    let config = firebell_engine::load_texts(&texts, &mut diags, Vec::new());
    if diags.has_errors() {
        anyhow::bail!("bench config: {diags}");
    }
    println!(
        "[{rules} rules] config: {:.1} MB of YAML in {} files loaded in {:.2} s wall, {:.2} s CPU; peak memory {}",
        bytes as f64 / 1e6,
        texts.len(),
        started.elapsed().as_secs_f64(),
        cpu_secs() - cpu0,
        peak_mib()
    );
    drop(texts);
    let tick = minute_now();
    let clock: Arc<dyn Clock> = Arc::new(firebell_core::ports::SystemClock);
    let cloudwatch = Arc::new(Generated {
        data_end: tick,
        calls: AtomicU64::new(0),
        queries: AtomicU64::new(0),
    });
    let dynamo = Arc::new(DynamoStore::new(aws.dynamodb.clone(), table, clock));
    let sns = Arc::new(SnsNotifier::new(aws.sns.clone()));
    let engine = Engine::new(
        Arc::new(config),
        cloudwatch.clone(),
        dynamo.clone(),
        sns.clone(),
        EngineOptions {
            owner: "bench".to_string(),
            ..EngineOptions::default()
        },
    );
    let bench = Bench {
        rules,
        engine,
        cloudwatch,
        dynamo,
        sns,
    };
    Ok((bench, tick))
}

/// One size, in this process.
fn child(rules: usize) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("aws_cycle: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let aws = match aws().await {
            Ok(a) => a,
            Err(e) => {
                eprintln!("aws_cycle: {e}");
                return ExitCode::FAILURE;
            }
        };
        let (bench, tick) = match setup(&aws, rules).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("aws_cycle: setup failed: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        let cold = cycle(&bench, "cold", tick, false).await;
        let quiet = cycle(&bench, "quiet", tick + 60, true).await;
        if cold && quiet {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}

fn main() -> ExitCode {
    if let Ok(n) = std::env::var("FIREBELL_BENCH_CHILD") {
        return match n.parse() {
            Ok(rules) => child(rules),
            Err(_) => {
                eprintln!("aws_cycle: FIREBELL_BENCH_CHILD={n:?} is not a number");
                ExitCode::FAILURE
            }
        };
    }
    let sizes = std::env::var("FIREBELL_BENCH_RULES").unwrap_or_else(|_| DEFAULT_SIZES.into());
    let sizes: Vec<usize> = match sizes
        .split(',')
        .map(|s| s.trim().replace('_', "").parse())
        .collect()
    {
        Ok(s) => s,
        Err(_) => {
            eprintln!("aws_cycle: FIREBELL_BENCH_RULES={sizes:?}: expected sizes like 1000,10000");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "aws_cycle: {sizes:?} rules ({METRICS_PER_RULE} metrics each), DynamoDB and SNS on {}, CloudWatch generated in-process (the emulator's GetMetricData slows down with everything stored; calls counted as CloudWatch would be called)",
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_default()
    );
    let Ok(exe) = std::env::current_exe() else {
        eprintln!("aws_cycle: cannot find this binary to run each size apart");
        return ExitCode::FAILURE;
    };
    let mut ok = true;
    for rules in sizes {
        // Each size in its own process: its own peak memory.
        match std::process::Command::new(&exe)
            .env("FIREBELL_BENCH_CHILD", rules.to_string())
            .status()
        {
            Ok(s) if s.success() => {}
            Ok(s) => {
                println!("aws_cycle: {rules} rules: {s}");
                ok = false;
            }
            Err(e) => {
                println!("aws_cycle: {rules} rules: cannot run: {e}");
                ok = false;
            }
        }
    }
    if ok {
        println!("aws_cycle: all checks OK");
        ExitCode::SUCCESS
    } else {
        println!("aws_cycle: some checks VIOLATED");
        ExitCode::FAILURE
    }
}
