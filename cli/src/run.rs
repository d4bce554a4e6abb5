//! `firebell run`: evaluation cycles with the same engine as the Lambda.
//!
//! Embedded (default): replay file as the metrics source, on-disk store,
//! terminal notifier. No AWS account needed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use firebell_core::ports::{Clock, MetricsSource, Notifier, StateStore};
use firebell_core::series::Epoch;
use firebell_embedded::{FileStore, JsonlNotifier, ManualClock, ReplaySource, TerminalNotifier};
use firebell_engine::{Engine, EngineOptions};

use crate::timefmt::{hhmm, parse, rfc3339};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config file or directory.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Run a single cycle and exit.
    #[arg(long)]
    pub once: bool,
    /// Time of the (first) cycle, RFC 3339. Default: now.
    #[arg(long)]
    pub at: Option<String>,
    /// With --at: run cycles minute by minute up to this time, as fast as possible.
    #[arg(long)]
    pub until: Option<String>,
    /// Replay file of datapoints (REPLAY.md). Default: the bundled demo day.
    #[arg(long)]
    pub replay: Option<PathBuf>,
    /// Directory of the on-disk state store.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Also append every notification as JSON to this file.
    #[arg(long)]
    pub jsonl: Option<PathBuf>,
}

/// Publishes to the terminal and, optionally, a JSON Lines file.
struct Tee(Vec<Arc<dyn Notifier>>);

#[async_trait::async_trait]
impl Notifier for Tee {
    async fn publish(
        &self,
        msg: &firebell_core::ports::Outbound,
    ) -> Result<(), firebell_core::ports::NotifyError> {
        for n in &self.0 {
            n.publish(msg).await?;
        }
        Ok(())
    }
}

pub fn main(args: Args) -> Result<ExitCode> {
    let (config, warnings) = match firebell_engine::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    for w in warnings.warnings() {
        eprintln!("{w}");
    }
    let source: ReplaySource = match &args.replay {
        Some(p) => {
            ReplaySource::from_path(p).with_context(|| format!("loading {}", p.display()))?
        }
        None => ReplaySource::parse(crate::bundled::DEMO_DAY_NAME, crate::bundled::DEMO_DAY)?,
    };
    let wall = || jiff::Timestamp::now().as_second();
    let start: Epoch = match &args.at {
        Some(s) => parse(s)?,
        None => wall(),
    };
    let start = start.div_euclid(60) * 60;
    let until = args.until.as_deref().map(parse).transpose()?;
    let clock = Arc::new(ManualClock::at_epoch(start));
    let state_dir = args.state.clone().unwrap_or_else(crate::default_state_dir);
    let store: Arc<dyn StateStore> = Arc::new(
        FileStore::open(&state_dir, clock.clone() as Arc<dyn Clock>)
            .with_context(|| format!("opening state store {}", state_dir.display()))?,
    );
    let mut notifiers: Vec<Arc<dyn Notifier>> = vec![Arc::new(TerminalNotifier::stdout())];
    if let Some(p) = &args.jsonl {
        notifiers.push(Arc::new(JsonlNotifier::open(p)?));
    }
    let engine = Engine::new(
        Arc::new(config),
        Arc::new(source) as Arc<dyn MetricsSource>,
        store,
        Arc::new(Tee(notifiers)),
        EngineOptions {
            owner: format!("firebell-run-{}", std::process::id()),
            ..EngineOptions::default()
        },
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut now = start;
        loop {
            clock.set_epoch(now);
            let report = engine.run_cycle(now, &|| false).await?;
            print_report(&report);
            if args.once {
                break;
            }
            now += 60;
            match until {
                Some(u) if now > u => break,
                Some(_) => {}
                None => {
                    // Live: wait for the next minute of wall-clock time.
                    let wait = (now - wall()).max(0) as u64;
                    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
                }
            }
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn print_report(r: &firebell_engine::CycleReport) {
    if let Some(skip) = r.skipped {
        println!("{} cycle skipped: {skip:?}", rfc3339(r.tick));
        return;
    }
    for t in &r.transitions {
        println!(
            "{} {} {:?} {}",
            hhmm(r.tick),
            t.rule,
            t.event,
            t.labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    for e in &r.errors {
        eprintln!("{} error: {e}", rfc3339(r.tick));
    }
    println!(
        "{} cycle: {} rules, {} instances, {} transitions, {} notifications sent, {} store writes",
        rfc3339(r.tick),
        r.rules_evaluated,
        r.instances_evaluated,
        r.transitions.len(),
        r.notifications_sent,
        r.store_writes
    );
}
