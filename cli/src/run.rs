//! `firebell run`: evaluation cycles with the same engine as the Lambda.
//!
//! - `--backend embedded` (default): replay file as the metrics source,
//!   on-disk store, terminal notifier. No AWS account needed. With `--at` and
//!   `--until`, cycles run minute by minute as fast as possible.
//! - `--backend aws`: CloudWatch, DynamoDB (`--table` or `FIREBELL_TABLE`)
//!   and SNS, with clients from the standard AWS environment (credentials,
//!   profiles, `AWS_REGION`, `AWS_ENDPOINT_URL`; `--region`, `--profile`),
//!   built as the Lambda builds them, sentinel alarms included (under
//!   `--sentinel-prefix`, default `$FIREBELL_SENTINEL_PREFIX`, when the
//!   config says `sentinels: {mode: auto}`). `--once [--at T]` runs one cycle as of T; without `--once` cycles
//!   follow the wall clock, one a minute, until Ctrl-C.
//!
//! With a config other than the bundled examples, the embedded backend
//! needs `--replay FILE`: the bundled demo day is only the examples'
//! history. Before the cycles, a note per rule says what the replay cannot
//! back (a metric with no datapoints, an SLO window longer than the data).
//!
//! `-o json`: one JSON object per line, in order: each cycle's state
//! changes (`firebell.transition/v1`), the notifications it sent
//! (`firebell.notification-record/v1`), then its summary
//! (`firebell.cycle/v1`). `--jsonl FILE` appends the same notification
//! records to a file.
//!
//! A time (`--at`, `--until`) more than [`MAX_TICK_SKEW_SECS`] ahead of the
//! clock is refused unless `--force`: a cycle at a future tick is recorded
//! as the last tick. The engine gets the clock's now next to every tick, so
//! a future last tick already in the store is reported as clock skew and
//! evaluation goes on.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use firebell_aws::AwsAdapters;
use firebell_core::ports::{AlarmService, Clock, MetricsSource, Notifier, StateStore, SystemClock};
use firebell_core::series::Epoch;
use firebell_embedded::{FileStore, ManualClock, ReplaySource, TerminalNotifier};
use firebell_engine::{Engine, EngineOptions};

use crate::backend::{Backend, StoreArgs};
use crate::timefmt::{hhmm, parse, rfc3339};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub config: crate::ConfigArgs,
    /// Run a single cycle and exit.
    #[arg(long)]
    pub once: bool,
    /// Time of the (first) cycle, RFC 3339. Default: now.
    #[arg(allow_hyphen_values = true, long)]
    pub at: Option<String>,
    /// With --at: run cycles minute by minute up to this time, as fast as possible (embedded).
    #[arg(allow_hyphen_values = true, long)]
    pub until: Option<String>,
    /// Replay file of datapoints (REPLAY.md), embedded. Required unless the
    /// config is the bundled examples (whose history is the bundled demo day).
    #[arg(long)]
    pub replay: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Also append every notification to this file, one record a line
    /// (`firebell.notification-record/v1`, as `-o json` prints them).
    #[arg(long, value_name = "FILE")]
    pub jsonl: Option<PathBuf>,
    #[command(flatten)]
    pub output: crate::output::OutputArgs,
    /// Run cycles at ticks ahead of the clock (`--at`/`--until` in the future).
    #[arg(long)]
    pub force: bool,
    /// Start of the names of the stack's sentinel alarms (aws backend, with
    /// `sentinels: {mode: auto}`): the only alarms listed, created or
    /// deleted. Default: $FIREBELL_SENTINEL_PREFIX, else `firebell-sentinel-`.
    #[arg(long, value_name = "PREFIX")]
    pub sentinel_prefix: Option<String>,
}

/// How far ahead of the clock `--at` and `--until` may be without
/// `--force`: five minutes, as the Lambda's default `FIREBELL_MAX_TICK_SKEW_SECS`.
pub(crate) const MAX_TICK_SKEW_SECS: Epoch = 300;

/// The refusal of a time `flag` = `value` (at `t`) ahead of the clock's `now`.
fn ahead_of_the_clock(flag: &str, value: &str, t: Epoch, now: Epoch) -> Option<String> {
    (t.saturating_sub(now) > MAX_TICK_SKEW_SECS).then(|| {
        format!(
            "{flag} {value} is more than {} ahead of the clock: a cycle at a future tick is recorded as the last tick, and the ticks before it would look done. Check the time, or pass --force to run it anyway",
            crate::timefmt::span(MAX_TICK_SKEW_SECS)
        )
    })
}

/// Publishes to every notifier in turn (terminal, SNS, JSON Lines).
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

fn wall() -> Epoch {
    jiff::Timestamp::now().as_second()
}

pub(crate) fn main(args: Args) -> Result<ExitCode> {
    let Args {
        config: crate::ConfigArgs {
            config: config_path,
        },
        once,
        at,
        until,
        replay,
        store: store_args,
        jsonl,
        force,
        output,
        sentinel_prefix,
    } = args;
    let json = output.json();
    store_args.check()?;
    let flag_given = sentinel_prefix.is_some();
    let sentinel_prefix_given = sentinel_prefix
        .or_else(|| std::env::var(firebell_aws::SENTINEL_PREFIX_ENV).ok())
        .filter(|p| !p.trim().is_empty());
    let aws_without_prefix = store_args.backend == Backend::Aws && sentinel_prefix_given.is_none();
    let sentinel_prefix = match store_args.backend {
        Backend::Aws => firebell_aws::sentinel_prefix(sentinel_prefix_given.as_deref())
            .map_err(|e| anyhow::anyhow!("--sentinel-prefix: {e}"))?,
        Backend::Embedded if flag_given => {
            bail!("--sentinel-prefix is for --backend aws (the sentinel alarms of a stack)")
        }
        Backend::Embedded => firebell_core::sentinel::DEFAULT_PREFIX.to_string(),
    };
    if store_args.backend == Backend::Aws {
        if replay.is_some() {
            bail!("--replay is for --backend embedded (the aws backend reads CloudWatch)");
        }
        if until.is_some() {
            bail!(
                "--until is for --backend embedded (with --backend aws, cycles follow the wall clock; use --once --at T for one cycle as of T)"
            );
        }
    }
    let (config, warnings) = match firebell_engine::load(&config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    for w in warnings.warnings() {
        eprintln!("{w}");
    }
    if aws_without_prefix && config.sentinels.mode == firebell_engine::sentinel::Mode::Auto {
        bail!(
            "--backend aws with `sentinels: {{mode: auto}}` needs the stack's sentinel prefix: --sentinel-prefix P or {} (the stack's output SentinelAlarmPrefix); a wrong one would keep a second set of alarms",
            firebell_aws::SENTINEL_PREFIX_ENV
        );
    }
    let start: Epoch = match &at {
        Some(s) => parse(s)?,
        None => wall(),
    };
    let start = start.div_euclid(60) * 60;
    let until_text = until;
    let until = until_text.as_deref().map(parse).transpose()?;
    if !force {
        let now = wall();
        let refusals = [("--at", &at, Some(start)), ("--until", &until_text, until)];
        for (flag, value, t) in refusals {
            if let (Some(value), Some(t)) = (value, t)
                && let Some(why) = ahead_of_the_clock(flag, value, t, now)
            {
                eprintln!("error: {why}");
                return Ok(ExitCode::from(2));
            }
        }
    }
    // The history of an embedded run: the replay file, else the demo day
    // (the examples' own history only).
    let source = match (store_args.backend, &replay) {
        (Backend::Aws, _) => None,
        (Backend::Embedded, Some(p)) => {
            Some(ReplaySource::from_path(p).with_context(|| format!("loading {}", p.display()))?)
        }
        (Backend::Embedded, None) if crate::bundled::is_example_config(&config) => Some(
            ReplaySource::parse(crate::bundled::DEMO_DAY_NAME, crate::bundled::DEMO_DAY)?,
        ),
        (Backend::Embedded, None) => {
            bail!(
                "{}",
                crate::bundled::no_history(&config_path, "--replay FILE")
            )
        }
    };
    if let Some(source) = &source {
        let to = until.unwrap_or(start);
        let what = if replay.is_some() {
            "replay"
        } else {
            "the demo day"
        };
        for note in
            firebell_tools::backtest::history_notes(&config, source.series(), what, to).notes
        {
            eprintln!("note: {note}");
        }
    }
    let mut records = match &jsonl {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening {}", p.display()))?,
        ),
        None => None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut notifiers: Vec<Arc<dyn Notifier>> = Vec::new();
        let owner = format!("firebell-run-{}", std::process::id());
        let mut alarms: Option<Arc<dyn AlarmService>> = None;
        // Locally, sentinels are simulated over the replay (they exist as
        // the config defines them in every run).
        let mut simulated: Option<Arc<firebell_embedded::ReplaySource>> = None;
        let (source, store, clock): (Arc<dyn MetricsSource>, Arc<dyn StateStore>, _) =
            match store_args.backend {
                Backend::Embedded => {
                    let source = Arc::new(source.unwrap_or_default());
                    simulated = Some(source.clone());
                    let clock = Arc::new(ManualClock::at_epoch(start));
                    let state_dir = store_args.state_dir();
                    let store = FileStore::open(&state_dir, clock.clone() as Arc<dyn Clock>)
                        .with_context(|| format!("opening state store {}", state_dir.display()))?;
                    if !json {
                        notifiers.push(Arc::new(TerminalNotifier::stdout()));
                    }
                    (
                        source as Arc<dyn MetricsSource>,
                        Arc::new(store) as Arc<dyn StateStore>,
                        Some(clock),
                    )
                }
                Backend::Aws => {
                    // The Lambda's wiring: one SDK config, the wall clock.
                    let sdk = store_args.aws.sdk_config().await?;
                    let aws = AwsAdapters::from_sdk_config(
                        &sdk,
                        store_args.table_name()?,
                        Arc::new(SystemClock),
                    );
                    notifiers.push(aws.notifier);
                    alarms = Some(aws.alarms);
                    (
                        aws.metrics as Arc<dyn MetricsSource>,
                        aws.store as Arc<dyn StateStore>,
                        None,
                    )
                }
            };
        let mut engine = Engine::new(
            Arc::new(config),
            source,
            store,
            Arc::new(Tee(notifiers)),
            EngineOptions {
                owner,
                sentinel_prefix,
                ..EngineOptions::default()
            },
        )
        .with_stopwatch(Arc::new(SystemClock));
        if let Some(replay) = simulated {
            let sim = firebell_embedded::SimulatedAlarms::seeded(
                replay,
                &engine.desired_sentinels().alarms,
            );
            alarms = Some(Arc::new(sim));
        }
        if let Some(alarms) = alarms {
            engine = engine.with_alarms(alarms);
        }
        // Ctrl-C: the running cycle stops cleanly (the outbox and the next
        // cycle finish its work) and no further cycle starts.
        let interrupted = Arc::new(AtomicBool::new(false));
        if !once {
            let flag = interrupted.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    flag.store(true, Ordering::SeqCst);
                }
            });
        }
        let stop = interrupted.clone();
        let should_stop = move || stop.load(Ordering::SeqCst);
        let mut now = start;
        loop {
            if let Some(c) = &clock {
                c.set_epoch(now);
            }
            // The clock's now next to the tick: a later recorded tick is
            // skew, not a duplicate (a forced future tick is its own now).
            let began = std::time::Instant::now();
            let report = engine
                .run_cycle_at(now, wall().max(now), &should_stop)
                .await?;
            let took = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
            if let Some(f) = &mut records {
                for d in &report.delivered {
                    let n = firebell_engine::history::Notification::of(report.tick, d);
                    writeln!(f, "{}", crate::json::notification(&n)).context("writing --jsonl")?;
                }
            }
            if json {
                print_json(&report, took);
            } else {
                print_report(&report);
            }
            if once || interrupted.load(Ordering::SeqCst) {
                break;
            }
            now += 60;
            match until {
                Some(u) if now > u => break,
                Some(_) => {}
                None => {
                    // Live: the next minute of wall-clock time. On AWS a
                    // cycle that overran by whole minutes skips them, as the
                    // Lambda refuses stale ticks (the next cycle replays
                    // every datapoint it has not seen); a replay catches up.
                    let current = wall().div_euclid(60) * 60;
                    if store_args.backend == Backend::Aws && current > now {
                        eprintln!(
                            "{} behind the wall clock: skipping to {}",
                            rfc3339(now),
                            rfc3339(current)
                        );
                        now = current;
                    }
                    let wait = (now - wall()).max(0) as u64;
                    tokio::select! {
                        () = tokio::time::sleep(std::time::Duration::from_secs(wait)) => {}
                        _ = tokio::signal::ctrl_c() => break,
                    }
                    if interrupted.load(Ordering::SeqCst) {
                        break;
                    }
                }
            }
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// A cycle as JSON Lines: its state changes, the notifications it sent,
/// its summary.
fn print_json(r: &firebell_engine::CycleReport, took_ms: u64) {
    for t in &r.transitions {
        crate::json::print(&crate::json::transition(r.tick, t));
    }
    for d in &r.delivered {
        let n = firebell_engine::history::Notification::of(r.tick, d);
        crate::json::print(&crate::json::notification(&n));
    }
    crate::json::print(&crate::json::cycle(r, took_ms));
    for e in &r.errors {
        eprintln!("{} error: {e}", rfc3339(r.tick));
    }
}

fn print_report(r: &firebell_engine::CycleReport) {
    if let Some(skip) = r.skipped {
        println!("{} cycle skipped: {skip}", rfc3339(r.tick));
        return;
    }
    for t in &r.transitions {
        println!(
            "{} {} {} {}",
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
