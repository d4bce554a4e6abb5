//! `firebell status`: is firebell healthy? The recent cycles, the lease,
//! the outbox backlog, silences, failing self-monitoring checks and the
//! config version, read from the store (`firebell_engine::status`), and a
//! verdict. Exit code 1 when degraded, so it can be a health check.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use firebell_core::series::Epoch;
use firebell_engine::status::{self, Status};
use serde_json::{Value, json};

use crate::backend::StoreArgs;
use crate::timefmt::{rfc3339, span};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// As of this time (RFC 3339 or relative, e.g. `now-1h`). Default: now.
    #[arg(
        allow_hyphen_values = true,
        long,
        default_value = "now",
        value_name = "TIME"
    )]
    pub at: String,
    /// How many recent cycles to list.
    #[arg(long, default_value_t = 5)]
    pub cycles: usize,
    /// Config file or directory: its version is compared with the one the
    /// cycles ran. Default: $FIREBELL_CONFIG.
    #[arg(long, short, env = crate::CONFIG_ENV, value_name = "DIR")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub output: crate::output::OutputArgs,
}

/// The status document's schema (`docs/schemas/status.schema.json`).
pub(crate) const SCHEMA: &str = "firebell.status/v1";

pub(crate) fn main(args: &Args) -> Result<ExitCode> {
    let now = crate::timefmt::parse(&args.at)?;
    let local_version = match &args.config {
        None => None,
        Some(path) => match firebell_engine::load(path) {
            Ok((c, _)) => Some(c.version),
            Err(e) => {
                eprintln!("{e}");
                return Ok(ExitCode::from(2));
            }
        },
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let name = args.store.name();
    let Some(st) = rt.block_on(async {
        match args.store.open_for_read().await? {
            None => Ok::<_, anyhow::Error>(None),
            Some(store) => Ok(Some(status::read(store.as_ref(), now, args.cycles).await?)),
        }
    })?
    else {
        if args.output.json() {
            crate::json::print(&json!({
                "schema": SCHEMA,
                "store": name,
                "verdict": "degraded",
                "problems": [format!("no state store at {name}: no cycle has written yet")],
            }));
        } else {
            println!("store: {name}");
            println!("verdict: degraded: no state store at {name}: no cycle has written yet");
        }
        return Ok(ExitCode::from(1));
    };
    if args.output.json() {
        crate::json::print(&to_json(&st, &name, local_version.as_deref()));
    } else {
        print!("{}", text(&st, &name, local_version.as_deref()));
    }
    Ok(if st.healthy() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn ago(now: Epoch, t: Epoch) -> String {
    if t <= now {
        format!("{} ago", span(now - t))
    } else {
        format!("in {}", span(t - now))
    }
}

/// The status for people.
pub(crate) fn text(st: &Status, store: &str, local_version: Option<&str>) -> String {
    let now = st.now;
    let mut out = format!("store: {store}\n");
    out += &match st.config_version() {
        Some(v) => match local_version {
            Some(l) if l == v => format!("config version: {v} (the same as --config)\n"),
            Some(l) => format!("config version: {v} (--config is {l}: not deployed yet)\n"),
            None => format!("config version: {v}\n"),
        },
        None => "config version: unknown (no cycle has recorded one)\n".to_string(),
    };
    out += &match st.last_tick {
        Some(t) => format!("last recorded tick: {} ({})\n", rfc3339(t), ago(now, t)),
        None => "last recorded tick: none\n".to_string(),
    };
    out += &match &st.lease {
        Some(l) if l.held => format!(
            "lease: held by {} for tick {}{}\n",
            l.owner,
            rfc3339(l.tick),
            l.expires_at
                .map(|e| format!(", expires {}", ago(now, e)))
                .unwrap_or_default()
        ),
        Some(l) => format!("lease: free (last held by {})\n", l.owner),
        None => "lease: free\n".to_string(),
    };
    if !st.shards.is_empty() {
        out += &format!("shards: {}\n", st.shards.len());
        for v in &st.shards {
            out += &format!(
                "  {}: last recorded tick {}; lease {}{}\n",
                v.shard.label(),
                v.last_tick
                    .map(|t| format!("{} ({})", rfc3339(t), ago(now, t)))
                    .unwrap_or_else(|| "none".to_string()),
                match &v.lease {
                    Some(l) if l.held =>
                        format!("held by {} for tick {}", l.owner, rfc3339(l.tick)),
                    _ => "free".to_string(),
                },
                if v.failing.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; failing: {}",
                        v.failing
                            .iter()
                            .map(|f| f.check.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            );
        }
    }
    out += "\nrecent cycles that wrote (a quiet cycle writes nothing, so it is not listed):\n";
    if st.cycles.is_empty() {
        out += "  none in the last 2 days\n";
    }
    for c in &st.cycles {
        out += &format!(
            "  {}  {} rules, {} instances, {} transitions, {} notifications, {} ms{}\n",
            rfc3339(c.tick),
            c.rules_evaluated,
            c.instances_evaluated,
            c.transitions,
            c.notifications,
            c.duration_ms,
            if c.errors.is_empty() {
                String::new()
            } else {
                format!(", {} errors: {}", c.errors.len(), c.errors.join("; "))
            }
        );
    }
    let total: usize = st.outbox.iter().map(|b| b.count).sum();
    out += &format!("\noutbox: {total} undelivered\n");
    for b in &st.outbox {
        out += &format!(
            "  {}: {}, oldest decided {}{}\n",
            b.receiver,
            b.count,
            ago(now, b.oldest),
            b.last_error
                .as_ref()
                .map(|e| format!(" ({} attempts; last error: {e})", b.attempts))
                .unwrap_or_default()
        );
    }
    out += &format!("\nsilences: {} active\n", st.silences.len());
    for v in st.ending_soon() {
        let s = &v.silence;
        out += &format!(
            "  {} by {} ends {} ({}): {}\n",
            s.id,
            s.created_by,
            rfc3339(s.ends_at),
            ago(now, s.ends_at),
            s.matchers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(sync) = &st.sentinels {
        out += &sentinel_lines(sync, local_version);
    }
    if !st.failing.is_empty() {
        out += "\nfailing self-monitoring checks:\n";
        for f in &st.failing {
            out += &format!(
                "  {}: {} cycles since {}{}: {}\n",
                f.check,
                f.failures,
                rfc3339(f.first),
                if f.firing { ", paging ops" } else { "" },
                f.error
            );
        }
    }
    out += &format!("\nverdict: {}\n", st.verdict());
    out
}

/// Out-of-sync sentinels listed at most.
const OUT_OF_SYNC_SHOWN: usize = 20;

/// What the last sentinel reconcile found, for people.
fn sentinel_lines(
    sync: &firebell_engine::sentinel::SyncRecord,
    local_version: Option<&str>,
) -> String {
    let mut out = format!(
        "\nsentinels: {} in sync, {} out of sync (their rules are polled), as of {} for config {}{}\n",
        sync.in_sync.len(),
        sync.out_of_sync.len(),
        rfc3339(sync.at),
        sync.config_version,
        match local_version {
            Some(l) if l != sync.config_version => format!(" (--config is {l})"),
            _ => String::new(),
        }
    );
    for (name, why) in sync.out_of_sync.iter().take(OUT_OF_SYNC_SHOWN) {
        out += &format!("  {name}: {why}\n");
    }
    if sync.out_of_sync.len() > OUT_OF_SYNC_SHOWN {
        out += &format!(
            "  ... and {} more\n",
            sync.out_of_sync.len() - OUT_OF_SYNC_SHOWN
        );
    }
    out
}

/// The status as `firebell.status/v1`.
pub(crate) fn to_json(st: &Status, store: &str, local_version: Option<&str>) -> Value {
    json!({
        "schema": SCHEMA,
        "store": store,
        "now": rfc3339(st.now),
        "config_version": st.config_version(),
        "local_config_version": local_version,
        "last_tick": st.last_tick.map(rfc3339),
        "lease": st.lease.as_ref().map(|l| json!({
            "owner": l.owner,
            "tick": rfc3339(l.tick),
            "held": l.held,
            "expires_at": l.expires_at.map(rfc3339),
        })),
        "cycles": st.cycles.iter().map(crate::json::cycle_record).collect::<Vec<_>>(),
        "outbox": st.outbox.iter().map(|b| json!({
            "receiver": b.receiver,
            "count": b.count,
            "oldest": rfc3339(b.oldest),
            "age_secs": st.now - b.oldest,
            "attempts": b.attempts,
            "last_error": b.last_error,
        })).collect::<Vec<_>>(),
        "silences": st.silences.iter().map(crate::json::silence).collect::<Vec<_>>(),
        "silences_ending_soon": st.ending_soon().map(|v| v.silence.id.clone()).collect::<Vec<_>>(),
        "failing_checks": st.failing.iter().map(|f| json!({
            "check": f.check,
            "failures": f.failures,
            "first": rfc3339(f.first),
            "last": rfc3339(f.last),
            "firing": f.firing,
            "error": f.error,
        })).collect::<Vec<_>>(),
        "shards": st.shards.iter().map(|v| json!({
            "shard": v.shard.index(),
            "of": v.shard.count(),
            "last_tick": v.last_tick.map(rfc3339),
            "lease": v.lease.as_ref().map(|l| json!({
                "owner": l.owner,
                "tick": rfc3339(l.tick),
                "held": l.held,
                "expires_at": l.expires_at.map(rfc3339),
            })),
            "failing_checks": v.failing.iter().map(|f| f.check.clone()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "sentinels": st.sentinels.as_ref().map(|s| json!({
            "config_version": s.config_version,
            "prefix": s.prefix,
            "at": rfc3339(s.at),
            "in_sync": s.in_sync.len(),
            "out_of_sync": s.out_of_sync.iter().map(|(name, why)| json!({
                "name": name,
                "reason": why,
            })).collect::<Vec<_>>(),
        })),
        "verdict": if st.healthy() { "healthy" } else { "degraded" },
        "problems": st.problems,
    })
}
