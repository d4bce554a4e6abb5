//! Big incidents, measured: wall time and peak memory (VmHWM) of
//!
//! 1. a local run on the file store: one rule over 3,000 hosts, all firing
//!    in one cycle (3,000 transitions), then all resolving (3,000 more),
//!    with the in-memory notifier;
//! 2. against the emulator (real DynamoDB store and SNS notifier): one group
//!    of 10,000 firing alerts delivered in one cycle, then its resolution
//!    (the scenario of `tests/big_incident.rs`).
//!
//! ```sh
//! eval "$(scripts/emulator.sh start)"
//! cargo bench -p firebell-tests --bench big_incident
//! ```
//!
//! VmHWM is the process's peak so far: the local run goes first. Exits 1
//! when a cycle fails or does not send exactly one notification.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/big/mod.rs"]
mod big;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use firebell_core::diag::Diagnostics;
use firebell_core::ports::Clock;
use firebell_embedded::{FileStore, ManualClock, MemoryNotifier};
use firebell_engine::{CycleReport, Engine, EngineOptions};
use firebell_tests::{aws, minute_now, peak_rss_kib, unique};

const LOCAL_HOSTS: usize = 3_000;

fn memory() -> String {
    match peak_rss_kib() {
        Some(kib) => format!("{:.1} MiB (VmHWM)", kib as f64 / 1024.0),
        None => "unknown (no /proc/self/status)".to_string(),
    }
}

/// Runs one cycle, prints its figures; whether it sent one notification
/// with no error.
async fn cycle(engine: &Engine, clock: &ManualClock, name: &str, tick: i64) -> bool {
    clock.set_epoch(tick);
    let started = Instant::now();
    let report: CycleReport = match engine.run_cycle(tick, &|| false).await {
        Ok(r) => r,
        Err(e) => {
            println!("{name}: cycle failed: {e}");
            return false;
        }
    };
    let wall = started.elapsed();
    println!(
        "{name}: {} instances, {} transitions, {} store writes, {} notifications sent ({} messages), {} errors",
        report.instances_evaluated,
        report.transitions.len(),
        report.store_writes,
        report.notifications_sent,
        report.messages_published,
        report.errors.len(),
    );
    for e in report.errors.iter().take(3) {
        println!("  error       : {e}");
    }
    if let Some(m) = report.delivered.iter().flat_map(|d| &d.messages).next() {
        let size = serde_json::to_string(&m.bodies).map_or(0, |s| s.len());
        println!("  message     : {size} bytes, subject {:?}", m.subject);
    }
    println!("  wall time   : {:.3} s", wall.as_secs_f64());
    println!("  peak memory : {}", memory());
    report.errors.is_empty() && report.notifications_sent == 1
}

async fn local() -> bool {
    let dir = std::env::temp_dir().join(unique("firebell-big-local"));
    let base = minute_now() - 30 * 60;
    let clock = Arc::new(ManualClock::at_epoch(base));
    let store = match FileStore::open(&dir, clock.clone() as Arc<dyn Clock>) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            println!("local: cannot open the file store: {e}");
            return false;
        }
    };
    let mut diags = Diagnostics::new();
    let config = firebell_engine::load_texts(
        &[("big.yaml".to_string(), big::config_text("local"))],
        &mut diags,
        Vec::new(),
    );
    if diags.has_errors() {
        println!("local: config: {diags}");
        return false;
    }
    let source = Arc::new(big::Synthetic {
        breaching: AtomicBool::new(true),
        hosts: LOCAL_HOSTS,
    });
    let engine = Engine::new(
        Arc::new(config),
        source.clone(),
        store,
        Arc::new(MemoryNotifier::new()),
        EngineOptions {
            owner: "bench".to_string(),
            ..EngineOptions::default()
        },
    );
    println!(
        "local: {LOCAL_HOSTS} hosts on the file store in {}",
        dir.display()
    );
    let fire = cycle(&engine, &clock, "local fire", base + 60).await;
    source.breaching.store(false, Ordering::SeqCst);
    let resolve = cycle(&engine, &clock, "local resolve", base + 120).await;
    let _ = std::fs::remove_dir_all(&dir);
    fire && resolve
}

async fn emulator() -> bool {
    let aws = match aws().await {
        Ok(a) => a,
        Err(e) => {
            println!("emulator: {e}");
            return false;
        }
    };
    let b = match big::setup(&aws).await {
        Ok(b) => b,
        Err(e) => {
            println!("emulator: setup failed: {e:#}");
            return false;
        }
    };
    println!(
        "emulator: one group of {} alerts, endpoint {}",
        big::HOSTS,
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_default()
    );
    let fire = cycle(&b.engine, &b.clock, "emulator fire", b.base + 60).await;
    b.source.breaching.store(false, Ordering::SeqCst);
    let resolve = cycle(&b.engine, &b.clock, "emulator resolve", b.base + 120).await;
    let received = aws.drain(&b.queue).await.map_or(0, |m| m.len());
    println!("emulator: {received} messages received at the queue (want 2)");
    fire && resolve && received == 2
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("big_incident: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let local = local().await;
        let emulator = emulator().await;
        if local && emulator {
            println!("big_incident: all OK");
            ExitCode::SUCCESS
        } else {
            println!("big_incident: some cycles FAILED");
            ExitCode::FAILURE
        }
    })
}
