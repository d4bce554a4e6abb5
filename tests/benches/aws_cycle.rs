//! One engine cycle against the emulator with the real adapters, at scale:
//! 1,000 rules over 2,000 distinct metrics (each rule divides its own
//! `Errors` by its own `Requests`; 1% of them breach), one cold cycle (every
//! instance is new) and then a quiet one (no new data, nothing changes).
//!
//! ```sh
//! eval "$(scripts/emulator.sh start)"
//! cargo bench -p firebell-tests --bench aws_cycle
//! ```
//!
//! Prints per cycle the API calls by service (from the adapters' `stats()`),
//! the wall time and the peak memory (VmHWM), and checks two budgets:
//! `GetMetricData` calls = ceil(2000 / 500) = 4 per cycle, and no DynamoDB
//! write at all in the quiet cycle. Exits 1 when a budget is violated.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use firebell_aws::{
    CloudWatchSource, CloudWatchStats, DynamoStats, DynamoStore, SnsNotifier, SnsStats,
};
use firebell_core::diag::Diagnostics;
use firebell_core::ports::{Clock, SystemClock};
use firebell_engine::{CycleReport, Engine, EngineOptions};
use firebell_tests::{Aws, Datum, aws, minute_now, peak_rss_kib, unique};

const RULES: usize = 1000;
const METRICS: usize = 2 * RULES;
/// Every this many rules one breaches.
const BREACH_EVERY: usize = 100;
/// Minutes of data before the cold cycle's tick.
const MINUTES: i64 = 3;

fn config_text(ns: &str, topic: &str) -> String {
    let mut text = String::with_capacity(RULES * 400);
    text.push_str("rules:\n");
    for i in 0..RULES {
        text.push_str(&format!(
            r#"  - name: Errors{i:04}
    metrics:
      errors: {{namespace: "{ns}", metric: Errors, dimensions: {{Service: svc{i:04}}}, stat: Sum, period: 1m}}
      requests: {{namespace: "{ns}", metric: Requests, dimensions: {{Service: svc{i:04}}}, stat: Sum, period: 1m}}
    expression: 100 * errors / requests
    unit: percent
    condition: {{op: ">", threshold: 5}}
    labels: {{team: bench, service: svc{i:04}, severity: page}}
    annotations: {{title: svc{i:04} error rate}}
"#
        ));
    }
    text.push_str(&format!(
        r#"receivers:
  bench: {{topics: ["{topic}"], send_resolved: true}}
route:
  receiver: bench
  group_by: [alertname]
  group_wait: 0s
  group_interval: 5m
  repeat_interval: 4h
"#
    ));
    text
}

fn data(tick: i64) -> Vec<Datum> {
    let mut out = Vec::with_capacity(METRICS * MINUTES as usize);
    for i in 0..RULES {
        let dims = vec![("Service".to_string(), format!("svc{i:04}"))];
        let errors = if i % BREACH_EVERY == 0 { 10.0 } else { 1.0 };
        for m in 1..=MINUTES {
            let t = tick - 60 * m;
            out.push(Datum {
                metric: "Requests".to_string(),
                dimensions: dims.clone(),
                t,
                value: 100.0,
            });
            out.push(Datum {
                metric: "Errors".to_string(),
                dimensions: dims.clone(),
                t,
                value: errors,
            });
        }
    }
    out
}

#[derive(Clone, Copy)]
struct Stats {
    cloudwatch: CloudWatchStats,
    dynamodb: DynamoStats,
    sns: SnsStats,
}

struct Bench {
    engine: Engine,
    cloudwatch: Arc<CloudWatchSource>,
    dynamo: Arc<DynamoStore>,
    sns: Arc<SnsNotifier>,
}

impl Bench {
    fn stats(&self) -> Stats {
        Stats {
            cloudwatch: self.cloudwatch.stats(),
            dynamodb: self.dynamo.stats(),
            sns: self.sns.stats(),
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
        unprocessed_retries: b.unprocessed_retries - a.unprocessed_retries,
    }
}

fn cloudwatch_diff(a: &CloudWatchStats, b: &CloudWatchStats) -> CloudWatchStats {
    CloudWatchStats {
        get_metric_data: b.get_metric_data - a.get_metric_data,
        list_metrics: b.list_metrics - a.list_metrics,
        throttle_retries: b.throttle_retries - a.throttle_retries,
        dimension_cache_hits: b.dimension_cache_hits - a.dimension_cache_hits,
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

/// Runs one cycle, prints its figures, returns whether its budgets held.
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
    let cw = cloudwatch_diff(&before.cloudwatch, &after.cloudwatch);
    let ddb = dynamo_diff(&before.dynamodb, &after.dynamodb);
    let sns = sns_diff(&before.sns, &after.sns);
    println!("{name} cycle (tick {tick}):");
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
    for e in report.errors.iter().take(5) {
        println!("  error       : {e}");
    }
    println!("  CloudWatch  : {} calls ({cw})", cw.total());
    println!(
        "  DynamoDB    : {} calls, {} writes ({ddb})",
        ddb.total(),
        ddb.writes()
    );
    println!("  SNS         : {} calls ({sns})", sns.total());
    println!("  wall time   : {:.3} s", wall.as_secs_f64());
    match peak_rss_kib() {
        Some(kib) => println!("  peak memory : {:.1} MiB (VmHWM)", kib as f64 / 1024.0),
        None => println!("  peak memory : unknown (no /proc/self/status)"),
    }
    let want_calls = METRICS.div_ceil(500) as u64;
    let calls_ok = cw.get_metric_data == want_calls;
    println!(
        "  check       : GetMetricData calls {} == ceil({METRICS}/500) = {want_calls}: {}",
        cw.get_metric_data,
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

async fn setup(aws: &Aws, tick: i64) -> anyhow::Result<Bench> {
    let table = aws.table().await?;
    let topic = aws.topic(false).await?;
    let ns = format!("Firebell/Bench/{}", unique("ns"));

    let started = Instant::now();
    let points = data(tick);
    let calls = aws.put_metric_data(&ns, &points).await?;
    println!(
        "setup: {} datapoints of {METRICS} metrics with {calls} PutMetricData calls in {:.2} s",
        points.len(),
        started.elapsed().as_secs_f64()
    );

    let mut diags = Diagnostics::new();
    let config = firebell_engine::load_texts(
        &[("bench.yaml".to_string(), config_text(&ns, &topic))],
        &mut diags,
        Vec::new(),
    );
    if diags.has_errors() {
        anyhow::bail!("bench config: {diags}");
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let cloudwatch = Arc::new(CloudWatchSource::new(aws.cloudwatch.clone(), clock.clone()));
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
    Ok(Bench {
        engine,
        cloudwatch,
        dynamo,
        sns,
    })
}

fn main() -> ExitCode {
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
        let tick = minute_now();
        println!(
            "aws_cycle: {RULES} rules over {METRICS} metrics, endpoint {}",
            std::env::var("AWS_ENDPOINT_URL").unwrap_or_default()
        );
        let bench = match setup(&aws, tick).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("aws_cycle: setup failed: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        let cold = cycle(&bench, "cold", tick, false).await;
        let quiet = cycle(&bench, "quiet", tick + 60, true).await;
        if cold && quiet {
            println!("aws_cycle: all checks OK");
            ExitCode::SUCCESS
        } else {
            println!("aws_cycle: some checks VIOLATED");
            ExitCode::FAILURE
        }
    })
}
