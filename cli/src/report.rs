//! `firebell report`: the noise report (`firebell_tools::report`) of a
//! period, per team and per rule, with the noisiest rules and what to
//! change. Over the stored history (`--state DIR`, or `--backend aws
//! --table NAME`), or over a backtest (`--source FILE|cloudwatch`: the
//! engine run over the data, its transitions and notifications taken as
//! history) so a team sees the report of a rule before it ships.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use firebell_core::series::Epoch;
use firebell_embedded::ReplaySource;
use firebell_engine::Config;
use firebell_engine::history::HistoryEntry;
use firebell_notify::Silence;
use firebell_tools::backtest::{SimOptions, simulate};
use firebell_tools::report::{NoiseReport, ReportInput, entries_of, report};

use crate::backend::{Backend, StoreArgs};
use crate::output::OutputArgs;
use crate::timefmt::{parse, rfc3339};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Config file or directory (receivers, rules). Default: $FIREBELL_CONFIG.
    #[arg(long, short, env = "FIREBELL_CONFIG")]
    pub config: PathBuf,
    /// Start of the period: a duration back from --until (`30d`, `7d`,
    /// `12h`) or an RFC 3339 time. Default: 30d (a backtest of a file: the
    /// start of its data).
    #[arg(allow_hyphen_values = true, long)]
    pub since: Option<String>,
    /// End of the period, RFC 3339. Default: now (a backtest of a file: the
    /// end of its data).
    #[arg(allow_hyphen_values = true, long)]
    pub until: Option<String>,
    /// Report on a backtest instead of the stored history: `cloudwatch` or a
    /// replay file (REPLAY.md).
    #[arg(long, value_name = "cloudwatch|FILE")]
    pub source: Option<String>,
    /// Only this team's (receiver's) section.
    #[arg(long)]
    pub receiver: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Also write the report as one self-contained HTML page (pages per
    /// team per day, the noisiest rules) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// The default period: 30 days.
const DEFAULT_SINCE: &str = "30d";

/// `--since`: a duration before `until`, or a time.
fn since(arg: &str, until: Epoch) -> Result<Epoch> {
    if let Some(d) = firebell_core::decode::parse_duration(arg) {
        let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        return Ok(until.saturating_sub(secs));
    }
    parse(arg).map_err(|_| {
        anyhow!("invalid --since {arg:?} (expected a duration such as 30d or an RFC 3339 time)")
    })
}

pub(crate) fn main(args: &Args) -> Result<ExitCode> {
    crate::output::check_html_target(args.html.as_deref())?;
    let config = match firebell_engine::load(&args.config) {
        Ok((c, _)) => Arc::new(c),
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    if let Some(r) = &args.receiver
        && !config.notify.receivers.contains_key(r)
    {
        let names: Vec<&str> = config.notify.receivers.keys().map(String::as_str).collect();
        bail!(
            "--receiver {r:?} is not a receiver of the config (defined: {})",
            names.join(", ")
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (entries, silences, since, until) = match args.source.as_deref() {
        Some(source) => {
            if args.store.backend != Backend::Embedded
                || args.store.state.is_some()
                || args.store.table.is_some()
            {
                bail!(
                    "--source reports on a backtest: --backend, --state and --table are for the stored history"
                );
            }
            rt.block_on(backtest(args, &config, source))?
        }
        None => rt.block_on(stored(args))?,
    };
    let full = report(&ReportInput {
        config: &config,
        entries: &entries,
        silences: &silences,
        since,
        until,
    });
    let shown: NoiseReport = match &args.receiver {
        Some(r) => full.only(r),
        None => full,
    };
    if let Some(path) = &args.html {
        let page = firebell_tools::html::noise_page(
            &shown,
            concat!("firebell ", env!("CARGO_PKG_VERSION")),
        );
        std::fs::write(path, page).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if args.output.json() {
        println!("{}", shown.to_json());
    } else {
        print!("{}", shown.to_text());
    }
    Ok(ExitCode::SUCCESS)
}

type Period = (Vec<HistoryEntry>, Vec<Silence>, Epoch, Epoch);

/// The stored history of the period and the store's silences.
async fn stored(args: &Args) -> Result<Period> {
    let now = jiff::Timestamp::now().as_second();
    let until = args.until.as_deref().map(parse).transpose()?.unwrap_or(now);
    let since = since(args.since.as_deref().unwrap_or(DEFAULT_SINCE), until)?;
    if since > until {
        bail!(
            "--since {} is after --until {}",
            rfc3339(since),
            rfc3339(until)
        );
    }
    args.store.check()?;
    if args.store.backend == Backend::Embedded {
        // Reading never creates a state directory.
        let dir = args.store.state_dir();
        if !dir.is_dir() {
            bail!(
                "no state at {} (nothing has run there): give --state DIR, or --backend aws --table NAME, or --source FILE for a backtest",
                dir.display()
            );
        }
    }
    let store = args.store.open().await?;
    let entries = firebell_engine::history::read(store.as_ref(), since, until)
        .await
        .context("reading the history")?;
    let silences = firebell_notify::list_silences(store.as_ref(), now)
        .await
        .context("reading the silences")?
        .into_iter()
        .map(|v| v.silence)
        .collect();
    Ok((entries, silences, since, until))
}

/// A backtest over `source`: its transitions and notifications as history
/// (no silences: a backtest starts on an empty store).
async fn backtest(args: &Args, config: &Arc<Config>, source: &str) -> Result<Period> {
    let until_arg = args.until.as_deref().map(parse).transpose()?;
    let (history, from, to) = if source == "cloudwatch" {
        let until = until_arg.unwrap_or_else(|| jiff::Timestamp::now().as_second() / 60 * 60);
        let from = since(args.since.as_deref().unwrap_or(DEFAULT_SINCE), until)?;
        let h =
            crate::backtest::cloudwatch(config, None, from, until, 86_400, &args.store.aws).await?;
        let source: Arc<dyn firebell_core::ports::MetricsSource> = h.data;
        (source, from, until)
    } else {
        let replay =
            ReplaySource::from_path(source).with_context(|| format!("loading {source}"))?;
        let (first, end) = replay.time_range().unwrap_or((0, 0));
        let until = until_arg.unwrap_or(end);
        let from = match args.since.as_deref() {
            Some(s) => since(s, until)?,
            None => first,
        };
        let source: Arc<dyn firebell_core::ports::MetricsSource> = Arc::new(replay);
        (source, from, until)
    };
    if to <= from {
        bail!("the period is empty: {} .. {}", rfc3339(from), rfc3339(to));
    }
    let sim = simulate(
        config.clone(),
        history,
        &SimOptions::new(from, to),
        &mut |_| {},
    )
    .await?;
    if let Some((t, e)) = sim.errors.first() {
        bail!(
            "the backtest could not evaluate everything ({} problems; first at {}: {e})",
            sim.errors.len(),
            rfc3339(*t)
        );
    }
    Ok((entries_of(&sim), Vec::new(), from, to))
}
