//! `firebell alerts`: every active alert (pending, firing, NoData, recently
//! resolved) with its value and threshold, since when (in its receiver's
//! time zone), where it goes (receivers, group) and what mutes it (a
//! silence, an inhibiting alert). Gathering and annotating is
//! `firebell_engine::alerts` (over the `StateStore` port, with
//! `firebell_notify`'s routing, silences and inhibition); this module
//! parses the filters and formats.
//!
//! Reading writes nothing and never creates a store: without one at
//! `--state DIR` it says so and exits 1. No active alert prints
//! `no active alerts` (`[]` with `-o json`) and exits 0.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use firebell_core::alert::ALERTSTATE_LABEL;
use firebell_core::model::Labels;
use firebell_core::ports::{Clock, StateStore};
use firebell_core::series::Epoch;
use firebell_embedded::{FileStore, ManualClock};
use firebell_engine::alerts::{ActiveAlert, AlertState, Filter};
use firebell_notify::Matcher;
use serde_json::{Value, json};

use crate::backend::{Backend, StoreArgs};
use crate::output::OutputArgs;
use crate::timefmt::{parse, rfc3339, span};

/// The schema of each JSON object (`docs/schemas/alert.schema.json`).
pub(crate) const SCHEMA: &str = "firebell.alert/v1";

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Label matchers, Alertmanager syntax (`'service="payments"'`, `severity=page`,
    /// `'alertname=~"Pay.*"'`, `'{team="checkout", env!="dev"}'`); all must hold.
    #[arg(value_name = "MATCHER")]
    pub matchers: Vec<String>,
    /// Config file or directory (routing, inhibition, receivers' time zones, the rules).
    #[arg(long, short)]
    pub config: PathBuf,
    /// Only alerts in these states (repeat or comma-separate).
    #[arg(
        long = "status",
        value_enum,
        value_delimiter = ',',
        value_name = "STATE"
    )]
    pub status: Vec<StateArg>,
    /// Only alerts routed to this receiver.
    #[arg(long, value_name = "NAME")]
    pub receiver: Option<String>,
    /// Show the alerts as of this time (RFC 3339): silences, ages and expiry. Default: now.
    #[arg(allow_hyphen_values = true, long)]
    pub at: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `--status pending|firing|nodata|resolved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum StateArg {
    Pending,
    Firing,
    Nodata,
    Resolved,
}

impl From<StateArg> for AlertState {
    fn from(s: StateArg) -> AlertState {
        match s {
            StateArg::Pending => AlertState::Pending,
            StateArg::Firing => AlertState::Firing,
            StateArg::Nodata => AlertState::NoData,
            StateArg::Resolved => AlertState::Resolved,
        }
    }
}

pub(crate) fn main(args: &Args) -> Result<ExitCode> {
    args.store.check()?;
    let mut matchers: Vec<Matcher> = Vec::new();
    for m in &args.matchers {
        matchers.extend(Matcher::parse_list(m).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    let now = match &args.at {
        Some(t) => parse(t)?,
        None => jiff::Timestamp::now().as_second(),
    };
    let (config, _warnings) = match firebell_engine::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    if let Some(r) = &args.receiver
        && !config.notify.receivers.contains_key(r)
    {
        bail!(
            "--receiver {r}: no such receiver in {} (receivers: {})",
            args.config.display(),
            config
                .notify
                .receivers
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let filter = Filter {
        matchers,
        states: args.status.iter().map(|s| (*s).into()).collect(),
        receiver: args.receiver.clone(),
    };
    // Expiry as of `--at`, so resolved alerts show as they were then.
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::at_epoch(now));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let store: Arc<dyn StateStore> = match args.store.backend {
        Backend::Embedded => {
            let dir = args.store.state_dir();
            if !dir.is_dir() {
                eprintln!(
                    "no state store at {}; run `firebell run` first or pass --state/--backend aws",
                    dir.display()
                );
                return Ok(ExitCode::from(1));
            }
            Arc::new(
                FileStore::open(&dir, clock)
                    .with_context(|| format!("opening state store {}", dir.display()))?,
            )
        }
        Backend::Aws => {
            let sdk = rt.block_on(args.store.aws.sdk_config())?;
            Arc::new(firebell_aws::DynamoStore::from_sdk_config(
                &sdk,
                args.store.table_name()?,
                clock,
            ))
        }
    };
    let alerts = rt.block_on(firebell_engine::alerts::list(
        store.as_ref(),
        &config,
        &filter,
        now,
    ))?;
    if args.output.json() {
        let docs: Vec<Value> = alerts.iter().map(|a| to_json(a, now)).collect();
        println!("{}", serde_json::to_string_pretty(&Value::Array(docs))?);
    } else if alerts.is_empty() {
        println!("no active alerts");
    } else {
        print!("{}", text(&alerts, now));
    }
    Ok(ExitCode::SUCCESS)
}

/// `{service="payments", team="payments"}`.
fn labels_text(labels: &Labels) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", serde_json::Value::String(v.clone())))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// `t` in the time zone `zone` (IANA name; UTC when unknown): `2026-11-23 16:42 CET`.
fn local(t: Epoch, zone: &str) -> String {
    let tz = jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
    jiff::Timestamp::from_second(t)
        .map(|ts| {
            ts.to_zoned_datetime(tz)
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339(t))
}

/// The same, as RFC 3339 with the zone's offset: `2026-11-23T16:42:00+01:00`.
fn local_rfc3339(t: Epoch, zone: &str) -> String {
    let tz = jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
    jiff::Timestamp::from_second(t)
        .map(|ts| {
            ts.to_zoned_datetime(tz)
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339(t))
}

/// The time zone an alert's times are shown in: its first receiver's.
fn zone(a: &ActiveAlert) -> &str {
    a.routes.first().map_or("UTC", |r| r.time_zone.as_str())
}

/// The alert's labels without `alertname` (shown as the rule) and
/// `alertstate` (shown as the state).
fn shown_labels(a: &ActiveAlert) -> Labels {
    let mut l = a.alert.labels.clone();
    l.remove("alertname");
    l.remove(ALERTSTATE_LABEL);
    l
}

/// For people: one block per alert.
///
/// ```text
/// firing   PaymentsHighErrorRate {service="payments", severity="page"}
///   value 5.2% (threshold > 1%), firing since 2026-11-23 15:46 UTC (for 14m)
///   -> payments-oncall via root/0, group {service="payments"} (payments-oncall:0123456789abcdef)
///   silenced by 3f2a1b2c3d4e (alice, until 2026-11-23 17:46 UTC): provider maintenance
///   inhibited by PaymentsSlo {service="payments", slo="availability"}
/// ```
pub(crate) fn text(alerts: &[ActiveAlert], now: Epoch) -> String {
    let mut out = String::new();
    for a in alerts {
        let al = &a.alert;
        let z = zone(a);
        out.push_str(&format!(
            "{:<8} {} {}\n",
            a.state.as_str(),
            al.name(),
            labels_text(&shown_labels(a))
        ));
        let threshold = format!("threshold {} {}", al.op, al.unit.format(al.threshold));
        let value = match (a.state, al.value) {
            (AlertState::NoData, _) => "no data".to_string(),
            (_, Some(v)) => format!("value {} ({threshold})", al.unit.format(v)),
            (_, None) => format!("no value ({threshold})"),
        };
        let when = if a.state == AlertState::Resolved {
            format!(
                "resolved at {} ({} ago)",
                local(a.since, z),
                span(now - a.since)
            )
        } else {
            format!(
                "{} since {} (for {})",
                a.state.as_str(),
                local(a.since, z),
                span(now - a.since)
            )
        };
        out.push_str(&format!("  {value}, {when}\n"));
        if a.routes.is_empty() {
            out.push_str("  -> no route (the config has no routing tree)\n");
        }
        for r in &a.routes {
            out.push_str(&format!(
                "  -> {} via {}, group {} ({})\n",
                r.receiver,
                r.route_path,
                labels_text(&r.group_labels),
                r.group_key
            ));
        }
        if let Some(s) = &a.silenced_by {
            out.push_str(&format!(
                "  silenced by {} ({}, until {}): {}\n",
                s.id,
                s.created_by,
                local(s.ends_at, z),
                s.comment
            ));
        }
        if let Some(i) = &a.inhibited_by {
            let mut labels = i.labels.clone();
            labels.remove("alertname");
            out.push_str(&format!(
                "  inhibited by {} {}\n",
                i.rule,
                labels_text(&labels)
            ));
        }
        out.push('\n');
    }
    let n = alerts.len();
    out.push_str(&format!("{n} alert{}\n", if n == 1 { "" } else { "s" }));
    out
}

/// One `firebell.alert/v1` object (`docs/schemas/alert.schema.json`).
pub(crate) fn to_json(a: &ActiveAlert, now: Epoch) -> Value {
    let al = &a.alert;
    let finite = |v: Option<f64>| v.filter(|v| v.is_finite());
    json!({
        "schema": SCHEMA,
        "fingerprint": al.fingerprint,
        "rule": al.name(),
        "state": a.state.as_str(),
        "labels": al.labels,
        "severity": a.severity(),
        "value": finite(al.value),
        "op": al.op.to_string(),
        "threshold": finite(Some(al.threshold)),
        "unit": al.unit,
        "since": rfc3339(a.since),
        "age_seconds": (now - a.since).max(0),
        "active_since": (al.active_since > 0).then(|| rfc3339(al.active_since)),
        "fired_at": (a.state != AlertState::Pending && al.fired_at > 0).then(|| rfc3339(al.fired_at)),
        "resolved_at": al.resolved_at.map(rfc3339),
        "receivers": a.routes.iter().map(|r| json!({
            "receiver": r.receiver,
            "time_zone": r.time_zone,
            "since_local": local_rfc3339(a.since, &r.time_zone),
            "route": r.route_path,
            "group_key": r.group_key,
            "group_labels": r.group_labels,
        })).collect::<Vec<_>>(),
        "silenced_by": a.silenced_by.as_ref().map(|s| json!({
            "id": s.id,
            "created_by": s.created_by,
            "comment": s.comment,
            "ends_at": rfc3339(s.ends_at),
        })),
        "inhibited_by": a.inhibited_by.as_ref().map(|i| json!({
            "fingerprint": i.fingerprint,
            "rule": i.rule,
            "labels": i.labels,
        })),
    })
}
