//! `firebell capture`: records the history of every query a config uses
//! from CloudWatch into a replay file (`shared/embedded/REPLAY.md`), so a
//! real incident becomes a backtest that runs offline (in CI, without AWS).
//!
//! The fetch is the one `backtest --source cloudwatch` makes
//! ([`crate::backtest::fetch_cloudwatch`]): wildcards resolved as the
//! engine does, from the rules' warmup before `--from` (so a backtest of
//! the file over `--from .. --to` judges its first cycle as a backtest on
//! CloudWatch would) to `--to`, in `--chunk` time ranges, at most 50
//! GetMetricData calls a second, a progress bar on stderr. The plan and its
//! GetMetricData cost are printed before the first datapoint is fetched.
//! The file is written to a temporary file beside `--out` and renamed over
//! it at the end: a failed capture leaves no half file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use firebell_embedded::ReplaySeries;
use firebell_tools::cost::{Prices, dollars, thousands};

use crate::timefmt::{parse, rfc3339};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub config: crate::ConfigArgs,
    /// Start of the range to record (RFC 3339, a day, Unix seconds or relative: -6h).
    #[arg(allow_hyphen_values = true, long)]
    pub from: String,
    /// End of the range to record (same forms as --from).
    #[arg(allow_hyphen_values = true, long)]
    pub to: String,
    /// The replay file to write (replaced atomically when the capture succeeds).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// History fetched per GetMetricData round.
    #[arg(long, default_value = "1d", value_parser = crate::backtest::humantime_secs)]
    pub chunk: i64,
    /// Write the file even when CloudWatch marked answers partial (it is then incomplete).
    #[arg(long)]
    pub allow_partial: bool,
    /// `--region`, `--profile`.
    #[command(flatten)]
    pub aws: crate::backend::AwsArgs,
}

pub(crate) fn main(args: &Args) -> Result<ExitCode> {
    let config = match firebell_engine::load(&args.config.config) {
        Ok((config, _warnings)) => Arc::new(config),
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    let from = parse(&args.from)?;
    let to = parse(&args.to)?;
    if to <= from {
        return Err(anyhow!(
            "--to {} is not after --from {}",
            rfc3339(to),
            rfc3339(from)
        ));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let prices = Prices::default();
    let mut start = from;
    // A missing region or credentials is said as is, not as a capture error.
    let sdk = rt.block_on(args.aws.sdk_config())?;
    let crate::backtest::Fetched {
        captured, stats, ..
    } = rt
        .block_on(crate::backtest::fetch_cloudwatch(
            config,
            from,
            to,
            args.chunk,
            &sdk,
            &mut |plan| {
                start = plan.start;
                eprintln!("{}", announce(plan, &prices));
            },
        ))
        .context("capturing history from CloudWatch")?;
    eprintln!(
        "capture: CloudWatch calls GetMetricData={} ListMetrics={} throttle_retries={}",
        stats.get_metric_data, stats.list_metrics, stats.throttle_retries
    );
    if let Some((message, fatal)) = partial(captured.partial, args.allow_partial, &args.out) {
        eprintln!("{message}");
        if fatal {
            return Ok(ExitCode::from(1));
        }
    }
    let points: usize = captured.series.iter().map(|s| s.points.len()).sum();
    write_atomically(&args.out, &captured.series)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "wrote {}: {} series, {points} datapoints, {} .. {}",
        args.out.display(),
        captured.series.len(),
        rfc3339(start),
        rfc3339(to)
    );
    Ok(ExitCode::SUCCESS)
}

/// What to say when CloudWatch marked `partial` answers partial, and
/// whether the capture stops there (nothing written, exit 1): unless
/// `allow` (`--allow-partial`), an incomplete file is not written.
fn partial(partial: usize, allow: bool, out: &Path) -> Option<(String, bool)> {
    if partial == 0 {
        return None;
    }
    Some(if allow {
        (
            format!(
                "warning: CloudWatch marked {partial} answer(s) partial: {} is incomplete (written because of --allow-partial)",
                out.display()
            ),
            false,
        )
    } else {
        (
            format!(
                "capture: CloudWatch marked {partial} answer(s) partial, so the history is incomplete; {} not written (--allow-partial writes it anyway)",
                out.display()
            ),
            true,
        )
    })
}

/// `capture: 3 queries × 2 chunks = 6 metrics requested from
/// 2026-11-23T00:00:00Z to ...; GetMetricData cost <$0.0001 ($0.01 per
/// 1,000 metrics)`; when answers take more than one NextToken page (each
/// requesting its queries again), `= 6 metrics, 48 requested with
/// NextToken pages`.
pub(crate) fn announce(plan: &firebell_tools::backtest::CapturePlan, prices: &Prices) -> String {
    let requested = plan.metrics_requested();
    let without = plan.metrics_without_pages();
    format!(
        "capture: {} quer{} × {} chunk{} = {}, {} .. {}; GetMetricData cost {} ({} per 1,000 metrics)",
        plan.queries(),
        if plan.queries() == 1 { "y" } else { "ies" },
        plan.chunks(),
        if plan.chunks() == 1 { "" } else { "s" },
        if requested > without {
            format!(
                "{} metrics, {} requested with NextToken pages (a page holds 100,800 datapoints and requests its queries again)",
                thousands(without as f64),
                thousands(requested as f64)
            )
        } else {
            format!("{} metrics requested", thousands(requested as f64))
        },
        rfc3339(plan.start),
        rfc3339(plan.to),
        dollars(plan.cost(prices)),
        dollars(prices.get_metric_data_per_1000_metrics),
    )
}

/// Writes the series (one replay line each) to a temporary file in `out`'s
/// directory, then renames it over `out`; on any error the temporary file
/// is removed and `out` is left as it was.
fn write_atomically(out: &Path, series: &[ReplaySeries]) -> Result<()> {
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = out
        .file_name()
        .ok_or_else(|| anyhow!("--out {} names no file", out.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        for s in series {
            writeln!(f, "{}", s.to_line())?;
        }
        let f = f.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(&tmp, out)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use firebell_core::model::Stat;
    use firebell_core::series::Point;
    use firebell_embedded::ReplaySource;

    fn series() -> ReplaySeries {
        ReplaySeries {
            namespace: "N".into(),
            metric: "Errors".into(),
            dimensions: [("Service".to_string(), "a".to_string())].into(),
            stat: Stat::Sum,
            period: 60,
            points: vec![Point {
                t: 1_800_000_000,
                v: 3.0,
            }],
            account: None,
            region: None,
            query: None,
        }
    }

    #[test]
    fn the_announcement_counts_queries_chunks_and_cost() {
        let mut diags = firebell_core::diag::Diagnostics::new();
        let config = firebell_engine::load_texts(
            &[(
                "c.yaml".to_string(),
                "rules:\n  - name: E\n    metrics:\n      e: {namespace: N, metric: Errors, dimensions: {Service: a}, stat: Sum, period: 1m}\n    expression: e\n    condition: {op: \">\", threshold: 5}\nreceivers:\n  a: {topics: [arn:aws:sns:us-east-1:123456789012:a]}\nroute: {receiver: a}\n".to_string(),
            )],
            &mut diags,
            Vec::new(),
        );
        assert!(!diags.has_errors(), "{diags}");
        let source = Arc::new(ReplaySource::from_series([series()]));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let config = Arc::new(config);
        let plan = rt
            .block_on(firebell_tools::backtest::plan_capture(
                config.clone(),
                source,
                1_800_000_000,
                1_800_003_600,
                86_400,
            ))
            .unwrap();
        assert_eq!(
            announce(&plan, &Prices::default()),
            "capture: 1 query × 1 chunk = 1 metrics requested, 2027-01-15T08:00:00Z .. 2027-01-15T09:00:00Z; GetMetricData cost <$0.0001 ($0.0100 per 1,000 metrics)"
        );
        // 100 days of one-minute datapoints in one chunk: 144,000
        // datapoints, two NextToken pages.
        let plan = rt
            .block_on(firebell_tools::backtest::plan_capture(
                config,
                Arc::new(ReplaySource::from_series([series()])),
                1_800_000_000,
                1_800_000_000 + 100 * 86_400,
                100 * 86_400,
            ))
            .unwrap();
        assert_eq!(
            announce(&plan, &Prices::default()),
            "capture: 1 query × 1 chunk = 1 metrics, 2 requested with NextToken pages (a page holds 100,800 datapoints and requests its queries again), 2027-01-15T08:00:00Z .. 2027-04-25T08:00:00Z; GetMetricData cost <$0.0001 ($0.0100 per 1,000 metrics)"
        );
    }

    #[test]
    fn partial_answers_stop_the_capture_unless_allowed() {
        let out = Path::new("h.jsonl");
        assert_eq!(partial(0, false, out), None);
        assert_eq!(
            partial(2, false, out),
            Some((
                "capture: CloudWatch marked 2 answer(s) partial, so the history is incomplete; h.jsonl not written (--allow-partial writes it anyway)".to_string(),
                true
            ))
        );
        assert_eq!(
            partial(1, true, out),
            Some((
                "warning: CloudWatch marked 1 answer(s) partial: h.jsonl is incomplete (written because of --allow-partial)".to_string(),
                false
            ))
        );
    }

    #[test]
    fn a_file_is_replaced_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("h.jsonl");
        write_atomically(&out, &[series()]).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text, format!("{}\n", series().to_line()));
        // Renaming over a directory fails: the directory stays, and no
        // temporary file is left.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("keep"), "x").unwrap();
        assert!(write_atomically(&blocked, &[series()]).is_err());
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["blocked", "h.jsonl"]);
    }
}
