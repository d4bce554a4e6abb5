//! `firebell backtest`: the whole pipeline (state machine, routing,
//! grouping, silences, rendering) over history, one cycle per minute on an
//! in-memory store; see `firebell_tools::backtest`. Prints per rule and per
//! receiver what would have been sent, and the timeline; `--compare` shows
//! what changing the config would alter; `-o json` (or `--format json`)
//! prints one notification record per line (`firebell.notification-record/v1`).
//!
//! The history is a replay file or CloudWatch; the bundled demo day only
//! for the bundled example config (its own history). Before the results, a
//! note per rule says what the history cannot back: a metric with no
//! datapoints, an SLO window longer than the data (those SLO figures are
//! marked partial).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use firebell_core::ports::{Clock, MetricsSource, SystemClock};
use firebell_core::series::Epoch;
use firebell_core::state::Event;
use firebell_embedded::ReplaySource;
use firebell_engine::Config;
use firebell_tools::backtest::{
    BacktestReport, Capture, CapturePlan, Comparison, Notification, RuleStats, SimOptions,
    TimelineEntry, analyze, compare, plan_capture, simulate_charted, warmup,
};
use firebell_tools::html::{self, Charts};
use indicatif::{ProgressBar, ProgressStyle};
use jiff::Timestamp;

use crate::bundled;
use crate::output::Format;
use crate::timefmt::{parse, rfc3339, span};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub config: crate::ConfigArgs,
    /// Start of the history, RFC 3339 (default: the start of a replay file's data).
    #[arg(allow_hyphen_values = true, long)]
    pub from: Option<String>,
    /// End of the history, RFC 3339 (default: the end of a replay file's data).
    #[arg(allow_hyphen_values = true, long)]
    pub to: Option<String>,
    /// `cloudwatch`, or a replay file (REPLAY.md). Required unless the config
    /// is the bundled examples (whose history is the bundled demo day).
    #[arg(long, value_name = "cloudwatch|FILE")]
    pub source: Option<String>,
    /// The same as `-o`: a readable report, or one notification record per line.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    #[command(flatten)]
    pub output: crate::output::OutputArgs,
    /// Also run this config over the same history and show what changes.
    #[arg(long, value_name = "OTHER_CONFIG")]
    pub compare: Option<PathBuf>,
    /// Leave the timeline out of the text report.
    #[arg(long)]
    pub no_timeline: bool,
    /// Also write the report as one self-contained HTML page (charts per
    /// rule instance, every notification's text) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// With `--source cloudwatch`: history fetched per GetMetricData round.
    #[arg(long, default_value = "1d", value_parser = humantime_secs)]
    pub chunk: i64,
    /// `--region`, `--profile` for `--source cloudwatch`.
    #[command(flatten)]
    pub aws: crate::backend::AwsArgs,
}

pub(crate) fn humantime_secs(s: &str) -> Result<i64, String> {
    firebell_core::decode::parse_duration(s)
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .filter(|s| *s >= 60)
        .ok_or_else(|| format!("invalid duration {s:?} (expected e.g. 6h or 1d, at least 1m)"))
}

fn load_config(path: &Path) -> Result<Config, ExitCode> {
    match firebell_engine::load(path) {
        Ok((config, _warnings)) => Ok(config),
        Err(e) => {
            eprintln!("{e}");
            Err(ExitCode::from(1))
        }
    }
}

pub(crate) fn progress(len: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {per_sec} ({eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// `2026-11-23 15:42` (UTC).
fn when(t: Epoch) -> String {
    Timestamp::from_second(t)
        .map(|ts| ts.strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| t.to_string())
}

/// Where the history comes from, its name for the report, and what to
/// call it in notes (`replay`, `CloudWatch`).
pub(crate) struct History {
    pub(crate) data: Arc<ReplaySource>,
    name: String,
    what: &'static str,
}

fn replay(
    source: ReplaySource,
    name: String,
    what: &'static str,
) -> (History, Option<(Epoch, Epoch)>) {
    let range = source.time_range();
    (
        History {
            data: Arc::new(source),
            name,
            what,
        },
        range,
    )
}

pub(crate) fn main(args: &Args) -> Result<ExitCode> {
    let json = args.format == Some(Format::Json) || args.output.json();
    crate::output::check_html_target(args.html.as_deref())?;
    let config_path = &args.config.config;
    let a = match load_config(config_path) {
        Ok(c) => Arc::new(c),
        Err(code) => return Ok(code),
    };
    let b = match &args.compare {
        Some(p) => match load_config(p) {
            Ok(c) => Some(Arc::new(c)),
            Err(code) => return Ok(code),
        },
        None => None,
    };
    let from = args.from.as_deref().map(parse).transpose()?;
    let to = args.to.as_deref().map(parse).transpose()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    let (history, from, to) = match args.source.as_deref() {
        Some("cloudwatch") => {
            let (Some(from), Some(to)) = (from, to) else {
                return Err(anyhow!(
                    "--source cloudwatch needs --from and --to (RFC 3339)"
                ));
            };
            check_range(from, to)?;
            let history =
                rt.block_on(cloudwatch(&a, b.as_ref(), from, to, args.chunk, &args.aws))?;
            (history, from, to)
        }
        other => {
            if args.aws.given() {
                return Err(anyhow!(
                    "--region and --profile are for --source cloudwatch (a replay file needs no AWS)"
                ));
            }
            let (history, range) = match other {
                Some(file) => replay(
                    ReplaySource::from_path(file).with_context(|| format!("loading {file}"))?,
                    file.to_string(),
                    "replay",
                ),
                None if bundled::is_example_config(&a) => replay(
                    ReplaySource::parse(bundled::DEMO_DAY_NAME, bundled::DEMO_DAY)
                        .context("loading the bundled demo day")?,
                    format!("{} (bundled)", bundled::DEMO_DAY_NAME),
                    "the demo day",
                ),
                None => {
                    return Err(anyhow!(
                        "{}",
                        bundled::no_history(config_path, "--source FILE")
                    ));
                }
            };
            let mut configs = vec![a.as_ref()];
            configs.extend(b.as_deref());
            let problems = replay_query_errors(&history.name, &history.data, &configs);
            if !problems.is_empty() {
                return Err(anyhow!("{}", problems.join("\n")));
            }
            let (first, end) = range.unwrap_or((0, 0));
            let from = from.unwrap_or(first);
            let to = to.unwrap_or(end);
            check_range(from, to)?;
            (history, from, to)
        }
    };

    simulate_and_print(
        &rt,
        history,
        Sides {
            a,
            a_name: config_path.display().to_string(),
            b,
            b_name: args.compare.as_ref().map(|p| p.display().to_string()),
        },
        from,
        to,
        json,
        !args.no_timeline,
        args.html.as_deref(),
    )
}

/// The replay's Metrics Insights series that no rule could read: a query
/// that is none of the configs' rules' queries (the replay source matches
/// them exactly, so its series would be silently unused and the rule see
/// no data), or dimensions that are not the query's `GROUP BY` labels.
pub(crate) fn replay_query_errors(
    name: &str,
    source: &ReplaySource,
    configs: &[&Config],
) -> Vec<String> {
    let queries: std::collections::BTreeSet<&str> = configs
        .iter()
        .flat_map(|c| c.rules.rules.iter())
        .flat_map(|r| r.metrics.values())
        .filter_map(|m| m.query.as_deref())
        .collect();
    let mut out = Vec::new();
    for (i, s) in source.series().iter().enumerate() {
        let Some(q) = &s.query else { continue };
        let at = format!("{name}: series {} (query {q:?})", i + 1);
        if !queries.contains(q.as_str()) {
            out.push(format!(
                "{at}: no rule reads this query (expected one of the rules' queries, as written: {})",
                if queries.is_empty() {
                    "none".to_string()
                } else {
                    queries
                        .iter()
                        .map(|q| format!("{q:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ));
            continue;
        }
        let group_by = firebell_core::insights::parse(q)
            .map(|p| p.group_by)
            .unwrap_or_default();
        let names: Vec<&String> = s.dimensions.keys().collect();
        let mut labels: Vec<&String> = group_by.iter().collect();
        labels.sort();
        if names != labels {
            out.push(format!(
                "{at}: its dimensions {names:?} are not the query's GROUP BY labels {group_by:?} (expected one value for each)"
            ));
        }
    }
    out
}

/// The configs a backtest runs, and their names for the header.
pub(crate) struct Sides {
    pub a: Arc<Config>,
    pub a_name: String,
    pub b: Option<Arc<Config>>,
    pub b_name: Option<String>,
}

/// Runs one config (or two, compared) over `history` and prints the report
/// (or the comparison); exit 1 when a cycle had problems.
#[allow(clippy::too_many_arguments)]
pub(crate) fn simulate_and_print(
    rt: &tokio::runtime::Runtime,
    history: History,
    sides: Sides,
    from: Epoch,
    to: Epoch,
    json: bool,
    timeline: bool,
    html: Option<&Path>,
) -> Result<ExitCode> {
    let Sides {
        a,
        a_name,
        b,
        b_name,
    } = sides;
    let opts = SimOptions::new(from, to);
    let runs = if b.is_some() { 2 } else { 1 };
    let bar = progress(opts.cycles() * runs, "cycles");
    let run = |config: Arc<Config>| {
        let bar = bar.clone();
        let source: Arc<dyn MetricsSource> = history.data.clone();
        let opts = opts.clone();
        async move {
            let mut charts = html.map(|_| Charts::new(opts.from, opts.to));
            let sim = simulate_charted(
                config.clone(),
                source,
                &opts,
                &mut |_| bar.inc(1),
                charts.as_mut(),
            )
            .await?;
            Ok::<(BacktestReport, Option<Charts>), firebell_engine::EngineError>((
                analyze(&config, &sim),
                charts,
            ))
        }
    };
    let (ra, charts_a) = rt.block_on(run(a.clone()))?;
    let (rb, charts_b) = match &b {
        Some(b) => {
            let (r, c) = rt.block_on(run(b.clone()))?;
            (Some(r), c)
        }
        None => (None, None),
    };
    bar.finish_and_clear();

    for (t, e) in ra
        .errors
        .iter()
        .chain(rb.iter().flat_map(|r| r.errors.iter()))
    {
        eprintln!("{}: {e}", when(*t));
    }
    // A rule that could not be evaluated (or any other cycle problem) makes
    // the report incomplete: say so, and fail.
    let problems: Vec<String> = std::iter::once(&ra)
        .chain(rb.as_ref())
        .filter_map(BacktestReport::problems)
        .collect();
    let notes =
        firebell_tools::backtest::history_notes(&a, history.data.series(), history.what, to);
    let header = Header {
        config: a_name,
        other: b_name,
        source: history.name,
        from,
        to,
        notes: notes.notes,
        partial: notes.partial,
    };
    if let (Some(path), Some(charts_a)) = (html, &charts_a) {
        let page = html::backtest_page(&html::BacktestPage {
            source: &header.source,
            notes: &header.notes,
            partial: &header.partial,
            generator: concat!("firebell ", env!("CARGO_PKG_VERSION")),
            a: html::Run {
                name: &header.config,
                config: &a,
                report: &ra,
                charts: charts_a,
            },
            b: match (&b, &rb, &charts_b) {
                (Some(config), Some(report), Some(charts)) => Some(html::Run {
                    name: header.other.as_deref().unwrap_or("B"),
                    config,
                    report,
                    charts,
                }),
                _ => None,
            },
        });
        std::fs::write(path, page).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if json {
        for note in &header.notes {
            eprintln!("note: {note}");
        }
    }
    match (json, rb) {
        (true, None) => {
            for n in &ra.notifications {
                println!("{}", n.to_json());
            }
        }
        (true, Some(rb)) => {
            let c = compare(&ra, &rb);
            for (side, list) in [("a", &c.only_a), ("b", &c.only_b)] {
                for n in list {
                    let mut v = n.to_json();
                    if let Some(o) = v.as_object_mut() {
                        o.insert("only_in".to_string(), side.into());
                    }
                    println!("{v}");
                }
            }
        }
        (false, None) => print_report(&header, &ra, &a, timeline),
        (false, Some(rb)) => print_comparison(&header, &ra, &rb, &compare(&ra, &rb)),
    }
    if !problems.is_empty() {
        eprintln!("backtest: {}", problems.join("; "));
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn check_range(from: Epoch, to: Epoch) -> Result<()> {
    if to <= from {
        return Err(anyhow!(
            "--to {} is not after --from {}",
            rfc3339(to),
            rfc3339(from)
        ));
    }
    Ok(())
}

/// Fetches the history every rule of both configs needs from CloudWatch, in
/// chunks, into memory; the simulation then replays it.
pub(crate) async fn cloudwatch(
    a: &Arc<Config>,
    b: Option<&Arc<Config>>,
    from: Epoch,
    to: Epoch,
    chunk: i64,
    aws: &crate::backend::AwsArgs,
) -> Result<History> {
    let mut both = (**a).clone();
    if let Some(b) = b {
        both.rules.rules.extend(b.rules.rules.iter().cloned());
        for (account, role) in &b.accounts.roles {
            both.accounts
                .roles
                .entry(account.clone())
                .or_insert_with(|| role.clone());
        }
    }
    let Fetched {
        captured, start, ..
    } = fetch_cloudwatch(
        Arc::new(both),
        from,
        to,
        chunk,
        &aws.sdk_config().await?,
        &mut |_| {},
    )
    .await
    .context("fetching history from CloudWatch")?;
    if captured.partial > 0 {
        eprintln!(
            "warning: CloudWatch marked {} answer(s) partial; the backtest uses what it returned",
            captured.partial
        );
    }
    let points: usize = captured.series.iter().map(|s| s.points.len()).sum();
    Ok(History {
        data: Arc::new(ReplaySource::from_series(captured.series)),
        what: "CloudWatch",
        name: format!(
            "CloudWatch ({} queries, {points} datapoints from {})",
            captured.queries,
            rfc3339(start)
        ),
    })
}

/// The one CloudWatch history fetch of `backtest --source cloudwatch` and
/// `firebell capture`: every query of `config` (wildcards resolved) from
/// its warmup before `from` to `to`, in chunks, at most
/// [`firebell_aws::GET_METRIC_DATA_TPS`] GetMetricData calls a second, with
/// a progress bar on stderr (hidden when it is not a terminal). `announce`
/// sees the plan before the first datapoint is fetched.
pub(crate) async fn fetch_cloudwatch(
    config: Arc<Config>,
    from: Epoch,
    to: Epoch,
    chunk: i64,
    sdk: &firebell_aws::SdkConfig,
    announce: &mut dyn FnMut(&CapturePlan),
) -> Result<Fetched> {
    let start = from - warmup(&config);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now().as_second();
    let listing = listing(to, now);
    if let Some(warning) = &listing.warning {
        eprintln!("{warning}");
    }
    if let Some(warning) = insights_range_warning(&config, start, now) {
        eprintln!("{warning}");
    }
    let source = Arc::new(
        firebell_aws::CloudWatchSource::from_sdk_config_with_options(
            sdk,
            clock,
            firebell_aws::CloudWatchOptions {
                max_get_metric_data_per_second: Some(firebell_aws::GET_METRIC_DATA_TPS),
                list_recently_active: listing.recently_active,
                ..firebell_aws::CloudWatchOptions::default()
            },
        ),
    );
    // The roles of `accounts:`, as the evaluator's cycle hands them over.
    source.set_account_roles(config.accounts.roles.clone());
    let cw: Arc<dyn MetricsSource> = source.clone();
    let plan = plan_capture(config, cw.clone(), start, to, chunk).await?;
    announce(&plan);
    let bar = progress(plan.chunks() as u64, "fetching");
    let captured = plan
        .run(cw, &mut |done, _| bar.set_position(done as u64))
        .await?;
    bar.finish_and_clear();
    Ok(Fetched {
        captured,
        start,
        stats: source.stats(),
    })
}

/// A Metrics Insights query reads only the last 3 hours: a range that
/// starts earlier gets nothing for the rules reading one before then (and
/// nothing at all for a range that ended earlier), so say which rules.
pub(crate) fn insights_range_warning(config: &Config, start: Epoch, now: Epoch) -> Option<String> {
    let oldest = now - firebell_core::insights::MAX_HISTORY.as_secs() as i64;
    if start >= oldest {
        return None;
    }
    let rules: Vec<&str> = config
        .rules
        .rules
        .iter()
        .filter(|r| r.metrics.values().any(|m| m.query.is_some()))
        .map(|r| r.name.as_str())
        .collect();
    if rules.is_empty() {
        return None;
    }
    Some(format!(
        "warning: Metrics Insights queries read only the last 3 hours (since {}): rule(s) {} get no history before then (the range, warmup included, starts at {})",
        rfc3339(oldest),
        rules.join(", "),
        rfc3339(start)
    ))
}

/// How wildcard expansion lists metrics for history ending at `to`.
#[derive(Debug, PartialEq)]
pub(crate) struct Listing {
    /// `ListMetrics` with `RecentlyActive=PT3H` (the engine's listing).
    pub(crate) recently_active: bool,
    /// Printed on stderr before the fetch.
    pub(crate) warning: Option<String>,
}

/// `RecentlyActive=PT3H` lists what reported in the 3 hours before `now`:
/// for history that ended earlier, list without it (CloudWatch then lists
/// the metrics of the last two weeks), and warn when even that misses `to`.
pub(crate) fn listing(to: Epoch, now: Epoch) -> Listing {
    let recently_active = to >= now - firebell_aws::RECENTLY_ACTIVE_SECS;
    let oldest = now - firebell_aws::LIST_METRICS_RETENTION_SECS;
    let warning = (to < oldest).then(|| {
        format!(
            "warning: --to {} is more than 2 weeks ago: ListMetrics lists only metrics that reported since {}, so wildcard (`*`) instances that stopped before cannot be found",
            rfc3339(to),
            rfc3339(oldest)
        )
    });
    Listing {
        recently_active,
        warning,
    }
}

/// What [`fetch_cloudwatch`] fetched.
pub(crate) struct Fetched {
    pub(crate) captured: Capture,
    /// Where the history starts (`from` less the rules' warmup).
    pub(crate) start: Epoch,
    /// The CloudWatch calls made (ListMetrics for wildcards, GetMetricData).
    pub(crate) stats: firebell_aws::CloudWatchStats,
}

struct Header {
    config: String,
    other: Option<String>,
    source: String,
    from: Epoch,
    to: Epoch,
    /// What the history cannot back, per rule (printed before the results).
    notes: Vec<String>,
    /// Rules whose figures come from less history than their window.
    partial: BTreeMap<String, String>,
}

fn secs(s: i64) -> String {
    if s == 0 { "-".to_string() } else { span(s) }
}

fn print_report(h: &Header, r: &BacktestReport, config: &Config, timeline: bool) {
    println!(
        "firebell backtest: {} over {} .. {} ({} cycles)",
        h.config,
        rfc3339(h.from),
        rfc3339(h.to),
        r.cycles
    );
    println!("  source {}", h.source);
    for note in &h.notes {
        println!("  note: {note}");
    }
    println!();
    let w = r
        .rules
        .iter()
        .map(|s| s.rule.len())
        .chain(r.receivers.iter().map(|s| s.receiver.len()))
        .max()
        .unwrap_or(0)
        .max(10);
    println!(
        "{:<w$}  {:>5}  {:>6}  {:>5}  {:>13}  {:>5}  {:>11}",
        "Rules",
        "fires",
        "nodata",
        "flaps",
        "notifications",
        "pages",
        "time firing",
        w = w + 2
    );
    for s in &r.rules {
        println!(
            "  {:<w$}  {:>5}  {:>6}  {:>5}  {:>13}  {:>5}  {:>11}{}",
            s.rule,
            s.fires,
            s.nodata,
            s.flaps,
            s.notifications,
            s.pages,
            secs(s.firing_secs),
            [
                (s.firing_at_end > 0)
                    .then(|| format!("  ({} still firing at the end)", s.firing_at_end)),
                h.partial
                    .get(&s.rule)
                    .map(|p| format!("  (partial: computed from {p} of history)")),
            ]
            .into_iter()
            .flatten()
            .collect::<String>()
        );
    }
    println!(
        "\n{:<w$}  {:>13}  {:>5}  {:>6}  {:>8}",
        "Receivers",
        "notifications",
        "pages",
        "firing",
        "resolved",
        w = w + 2
    );
    if r.receivers.is_empty() {
        println!("  (none)");
    }
    for s in &r.receivers {
        println!(
            "  {:<w$}  {:>13}  {:>5}  {:>6}  {:>8}",
            s.receiver, s.notifications, s.pages, s.firing, s.resolved
        );
    }
    if timeline {
        println!("\nTimeline (UTC; state changes at their datapoint's time)");
        if r.timeline.is_empty() {
            println!("  (nothing happened)");
        }
        for e in &r.timeline {
            match e {
                TimelineEntry::Transition { at, transition: t } => {
                    let (word, detail) = describe(t, config);
                    println!("  {}  {:<w$}  {:<9} {}", when(*at), t.rule, word, detail);
                }
                TimelineEntry::Notification { at, index } => {
                    if let Some(n) = r.notifications.get(*index) {
                        println!(
                            "  {}  -> {:<w$}{} {}",
                            when(*at),
                            n.receiver,
                            if n.is_page() { " PAGE" } else { "     " },
                            n.subject,
                            w = w - 3
                        );
                    }
                }
            }
        }
    }
    let early = r.warmup_transitions();
    if early > 0 {
        println!(
            "\nnote: {early} state change{} dated before --from: the first cycle judges each rule's lookback, as a fresh deployment would",
            plural(early)
        );
    }
    println!(
        "\n{} notification{} ({} page{}) to {} receiver{}",
        r.notifications.len(),
        plural(r.notifications.len()),
        r.pages(),
        plural(r.pages()),
        r.receivers.len(),
        plural(r.receivers.len())
    );
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `FIRING` and `5.2% > 1% {Service="a"}` for a state change.
fn describe(t: &firebell_engine::Transition, config: &Config) -> (&'static str, String) {
    let rule = config.rules.get(&t.rule);
    let value = |v: Option<f64>| match (v, rule) {
        (Some(v), Some(r)) => format!(
            "{} {} {}",
            r.unit.format(v),
            r.condition.op,
            r.unit.format(r.condition.threshold)
        ),
        (Some(v), None) => v.to_string(),
        (None, _) => String::new(),
    };
    // The labels that tell instances apart (expanded dimensions).
    let extra: Vec<String> = t
        .labels
        .iter()
        .filter(|(k, v)| {
            k.as_str() != "alertname" && rule.is_none_or(|r| r.labels.get(k.as_str()) != Some(v))
        })
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(" {{{}}}", extra.join(", "))
    };
    let (word, detail) = match t.event {
        Event::Fired { value: v, .. } => ("FIRING", value(v)),
        Event::Resolved { value: v, .. } => (
            "resolved",
            match (v, rule) {
                (Some(v), Some(r)) => format!("back to {}", r.unit.format(v)),
                _ => String::new(),
            },
        ),
        Event::NoDataStarted { .. } => ("NODATA", "no datapoints".to_string()),
        Event::NoDataEnded { .. } => ("data back", String::new()),
        Event::Pending { .. } => ("pending", String::new()),
        Event::PendingCleared { .. } => ("cleared", String::new()),
    };
    (word, format!("{detail}{extra}"))
}

fn arrow<T: PartialEq + ToString>(a: Option<T>, b: Option<T>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if a == b => a.to_string(),
        (Some(a), Some(b)) => format!("{} -> {}", a.to_string(), b.to_string()),
        (Some(a), None) => format!("{} -> (gone)", a.to_string()),
        (None, Some(b)) => format!("(new) -> {}", b.to_string()),
        (None, None) => String::new(),
    }
}

fn notification_line(n: &Notification) -> String {
    format!(
        "  {}  -> {}{}  {}",
        when(n.at),
        n.receiver,
        if n.is_page() { " PAGE" } else { "" },
        n.subject
    )
}

fn print_comparison(h: &Header, a: &BacktestReport, b: &BacktestReport, c: &Comparison) {
    println!(
        "firebell backtest: A = {}, B = {} over {} .. {} ({} cycles)",
        h.config,
        h.other.as_deref().unwrap_or("?"),
        rfc3339(h.from),
        rfc3339(h.to),
        a.cycles
    );
    println!("  source {}", h.source);
    for note in &h.notes {
        println!("  note: {note}");
    }
    println!();
    let w = c
        .rules
        .iter()
        .map(|r| r.rule.len())
        .max()
        .unwrap_or(0)
        .max(10);
    println!(
        "{:<w$}  {:>14}  {:>14}  {:>14}  {:>14}  {:>18}",
        "Rules (A -> B)",
        "fires",
        "flaps",
        "notifications",
        "pages",
        "time firing",
        w = w + 2
    );
    let get = |s: &Option<RuleStats>, f: fn(&RuleStats) -> String| s.as_ref().map(f);
    for r in &c.rules {
        let mark = if r.a == r.b { " " } else { "*" };
        println!(
            "{mark} {:<w$}  {:>14}  {:>14}  {:>14}  {:>14}  {:>18}",
            r.rule,
            arrow(
                get(&r.a, |s| s.fires.to_string()),
                get(&r.b, |s| s.fires.to_string())
            ),
            arrow(
                get(&r.a, |s| s.flaps.to_string()),
                get(&r.b, |s| s.flaps.to_string())
            ),
            arrow(
                get(&r.a, |s| s.notifications.to_string()),
                get(&r.b, |s| s.notifications.to_string())
            ),
            arrow(
                get(&r.a, |s| s.pages.to_string()),
                get(&r.b, |s| s.pages.to_string())
            ),
            arrow(
                get(&r.a, |s| secs(s.firing_secs)),
                get(&r.b, |s| secs(s.firing_secs))
            ),
        );
    }
    for (label, list) in [("only in A", &c.only_a), ("only in B", &c.only_b)] {
        println!("\nNotifications {label} ({})", list.len());
        if list.is_empty() {
            println!("  (none)");
        }
        for n in list {
            println!("{}", notification_line(n));
        }
    }
    println!(
        "\nA: {} notifications ({} pages); B: {} notifications ({} pages); {} in both",
        a.notifications.len(),
        a.pages(),
        b.notifications.len(),
        b.pages(),
        c.common
    );
    if c.is_same() {
        println!("No difference: the change would not alter what is sent.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_ranges_list_without_recently_active_and_warn_past_two_weeks() {
        let now = 1_800_000_000;
        let hour = 3600;
        // Ends within the last 3 hours: the engine's listing.
        assert_eq!(
            listing(now - 3 * hour, now),
            Listing {
                recently_active: true,
                warning: None
            }
        );
        // Ended earlier: everything ListMetrics remembers.
        assert_eq!(
            listing(now - 3 * hour - 1, now),
            Listing {
                recently_active: false,
                warning: None
            }
        );
        assert_eq!(listing(now - 14 * 24 * hour, now).warning, None);
        assert_eq!(
            listing(now - 14 * 24 * hour - 60, now),
            Listing {
                recently_active: false,
                warning: Some("warning: --to 2027-01-01T07:59:00Z is more than 2 weeks ago: ListMetrics lists only metrics that reported since 2027-01-01T08:00:00Z, so wildcard (`*`) instances that stopped before cannot be found".to_string())
            }
        );
    }

    #[test]
    fn query_rules_over_ranges_past_three_hours_are_named() {
        let text = r#"rules:
  - name: HotInstance
    metrics:
      cpu: {query: 'SELECT AVG(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId) GROUP BY InstanceId'}
    expression: cpu
    condition: {op: ">", threshold: 90}
  - name: Plain
    metrics:
      e: {namespace: Shop, metric: Errors, stat: Sum}
    expression: e
    condition: {op: ">", threshold: 1}
"#;
        let mut diags = firebell_core::diag::Diagnostics::new();
        let config = firebell_engine::load_texts(
            &[("r.yaml".to_string(), text.to_string())],
            &mut diags,
            Vec::new(),
        );
        assert!(!diags.has_errors(), "{diags}");
        let now = 1_800_000_000;
        assert_eq!(insights_range_warning(&config, now - 3 * 3600, now), None);
        assert_eq!(
            insights_range_warning(&config, now - 3 * 3600 - 60, now).as_deref(),
            Some(
                "warning: Metrics Insights queries read only the last 3 hours (since 2027-01-15T05:00:00Z): rule(s) HotInstance get no history before then (the range, warmup included, starts at 2027-01-15T04:59:00Z)"
            )
        );
    }

    #[test]
    fn replay_query_series_must_be_read_by_a_rule() {
        let text = r#"rules:
  - name: HotInstance
    metrics:
      cpu: {query: 'SELECT AVG(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId) GROUP BY InstanceId'}
    expression: cpu
    condition: {op: ">", threshold: 90}
"#;
        let mut diags = firebell_core::diag::Diagnostics::new();
        let config = firebell_engine::load_texts(
            &[("r.yaml".to_string(), text.to_string())],
            &mut diags,
            Vec::new(),
        );
        assert!(!diags.has_errors(), "{diags}");
        let q = r#"SELECT AVG(CPUUtilization) FROM SCHEMA(\"AWS/EC2\", InstanceId) GROUP BY InstanceId"#;
        let other = r#"SELECT MAX(CPUUtilization) FROM SCHEMA(\"AWS/EC2\", InstanceId) GROUP BY InstanceId"#;
        let line = |query: &str, dims: &str| {
            format!(
                "{{\"namespace\":\"AWS/EC2\",\"metric\":\"CPUUtilization\",\"dimensions\":{{{dims}}},\"stat\":\"Average\",\"period\":60,\"query\":\"{query}\",\"points\":[[1800000000,1]]}}\n"
            )
        };
        let replay = line(q, "\"InstanceId\":\"i-1\"")
            + &line(other, "\"InstanceId\":\"i-1\"")
            + &line(q, "\"Host\":\"h\"");
        let source = ReplaySource::parse("r.jsonl", &replay).unwrap();
        assert_eq!(
            replay_query_errors("r.jsonl", &source, &[&config]),
            vec![
                r#"r.jsonl: series 2 (query "SELECT MAX(CPUUtilization) FROM SCHEMA(\"AWS/EC2\", InstanceId) GROUP BY InstanceId"): no rule reads this query (expected one of the rules' queries, as written: "SELECT AVG(CPUUtilization) FROM SCHEMA(\"AWS/EC2\", InstanceId) GROUP BY InstanceId")"#,
                r#"r.jsonl: series 3 (query "SELECT AVG(CPUUtilization) FROM SCHEMA(\"AWS/EC2\", InstanceId) GROUP BY InstanceId"): its dimensions ["Host"] are not the query's GROUP BY labels ["InstanceId"] (expected one value for each)"#,
            ]
        );
    }
}
