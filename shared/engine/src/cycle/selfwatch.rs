//! Self-monitoring: firebell's own failures become alerts of the built-in
//! source [`SELF_ALERTNAME`] (`FirebellUnhealthy`, label `check=render|store|
//! fetch|outbox|config|sentinels`), written into the `active` snapshot like any rule's, so
//! routing, grouping, silences, inhibition, repeat_interval and delivery
//! apply. They resolve when the condition clears.
//!
//! | check    | fires when                                          | clears when                                   |
//! |----------|-----------------------------------------------------|-----------------------------------------------|
//! | `render` | a notification could not be rendered, or a template in it failed | none for `clear_after`         |
//! | `store`  | a store write failed (alert, orphan, dispatch, tick) | none for `clear_after`                        |
//! | `fetch`  | fetching metrics failed `fetch_failures` cycles in a row | a cycle fetches successfully              |
//! | `outbox` | an outbox item is older than `outbox_age`           | no outbox item is that old                    |
//! | `config` | the deployed config could not be fetched or loaded (the last good one runs) | a cycle runs without that problem |
//! | `sentinels` | the sentinel alarms could not be read or reconciled `fetch_failures` cycles in a row (their rules are polled meanwhile) | a cycle runs without that problem |
//!
//! State lives in the `cycle` partition (`selfwatch/<check>`), one item per
//! failing check, written only by a cycle that saw the failure (and
//! deleted, with one write, when it clears): **a healthy quiet cycle writes
//! nothing and reads nothing more** (the cycle partition is read at the
//! start of every cycle; the outbox's age comes from delivery).

use std::collections::BTreeMap;

use firebell_core::alert::{Alert, AlertStatus, fingerprint};
use firebell_core::decode::Decoder;
use firebell_core::model::{Labels, Op, Unit};
use firebell_core::ports::{Expect, Item, Key, StateStore};
use firebell_core::series::Epoch;
use marked_yaml::Node;
use serde::{Deserialize, Serialize};

use super::{CycleReport, Stage};
use crate::error::CycleError;
use crate::keys;

/// The `alertname` of firebell's own alerts.
pub use firebell_core::alert::SELF_ALERTNAME;
/// The label naming the failing check.
pub const CHECK_LABEL: &str = "check";
/// The config section (top level of any config file).
pub const SECTION: &str = "self_monitoring";
/// The failing checks live in the `cycle` partition, read at the start of
/// every cycle anyway, under this sort-key prefix (`selfwatch/fetch`).
pub(crate) const SK_PREFIX: &str = "selfwatch/";

/// The `self_monitoring:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct SelfMonitoring {
    /// Off: no self-alert fires (any firing one resolves).
    pub enabled: bool,
    /// Labels added to every self-alert, for routing (default `team: firebell`,
    /// `severity: page`).
    pub labels: Labels,
    /// Consecutive failed fetches before `check=fetch` fires.
    pub fetch_failures: u32,
    /// An outbox item older than this fires `check=outbox`, in seconds.
    pub outbox_age_secs: Epoch,
    /// `render`/`store` resolve after this long without a new failure, in seconds.
    pub clear_after_secs: Epoch,
}

impl Default for SelfMonitoring {
    fn default() -> Self {
        SelfMonitoring {
            enabled: true,
            labels: [("team", "firebell"), ("severity", "page")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            fetch_failures: 3,
            outbox_age_secs: 15 * 60,
            clear_after_secs: 30 * 60,
        }
    }
}

/// Longest accepted `outbox_age` / `clear_after`: 7 days.
const MAX_DURATION_SECS: u64 = 7 * 86_400;

impl SelfMonitoring {
    /// Decodes one `self_monitoring:` section over the defaults.
    pub fn decode(d: &mut Decoder<'_>, node: &Node) -> SelfMonitoring {
        let mut out = SelfMonitoring::default();
        let Some(mut f) = d.fields(node, SECTION) else {
            return out;
        };
        if let Some(n) = f.opt("enabled")
            && let Some(b) = d.bool(n, "enabled")
        {
            out.enabled = b;
        }
        if let Some(n) = f.opt("labels") {
            let labels = d.string_map(n, "labels");
            for reserved in ["alertname", CHECK_LABEL] {
                if labels.contains_key(reserved) {
                    d.error(
                        n,
                        format!(
                            "self_monitoring labels must not set `{reserved}` (firebell sets it)"
                        ),
                    );
                }
            }
            out.labels = labels;
        }
        if let Some(n) = f.opt("fetch_failures")
            && let Some(v) = d.uint(n, "fetch_failures")
        {
            match u32::try_from(v) {
                Ok(v) if (1..=1440).contains(&v) => out.fetch_failures = v,
                _ => d.error(
                    n,
                    format!("fetch_failures must be between 1 and 1440 cycles, found {v}"),
                ),
            }
        }
        for (key, slot) in [
            ("outbox_age", &mut out.outbox_age_secs),
            ("clear_after", &mut out.clear_after_secs),
        ] {
            if let Some(n) = f.opt(key)
                && let Some(v) = d.duration(n, key)
            {
                let secs = v.as_secs();
                if (60..=MAX_DURATION_SECS).contains(&secs) {
                    *slot = secs as Epoch;
                } else {
                    d.error(
                        n,
                        format!(
                            "{key} must be between 1m and 7d, found {}",
                            firebell_core::decode::format_duration(v)
                        ),
                    );
                }
            }
        }
        f.finish(d);
        out
    }
}

/// One of firebell's own health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Render,
    Store,
    Fetch,
    Outbox,
    Config,
    Sentinels,
}

const CHECKS: [Check; 6] = [
    Check::Render,
    Check::Store,
    Check::Fetch,
    Check::Outbox,
    Check::Config,
    Check::Sentinels,
];

impl Check {
    fn name(self) -> &'static str {
        match self {
            Check::Render => "render",
            Check::Store => "store",
            Check::Fetch => "fetch",
            Check::Outbox => "outbox",
            Check::Config => "config",
            Check::Sentinels => "sentinels",
        }
    }

    fn summary(self) -> &'static str {
        match self {
            Check::Render => "firebell unhealthy (render): a notification or template failed",
            Check::Store => "firebell unhealthy (store): a state store write failed",
            Check::Fetch => "firebell unhealthy (fetch): rules are not being evaluated",
            Check::Outbox => "firebell unhealthy (outbox): notifications are not being delivered",
            Check::Config => {
                "firebell unhealthy (config): the deployed config cannot be fetched or loaded; the last good one runs"
            }
            Check::Sentinels => {
                "firebell unhealthy (sentinels): the sentinel alarms cannot be read or kept in step; their rules are polled"
            }
        }
    }

    /// The check this cycle problem belongs to, if any.
    fn of(e: &CycleError) -> Option<Check> {
        match e {
            CycleError::Render(_) | CycleError::Template(_) => Some(Check::Render),
            CycleError::Fetch(_)
            | CycleError::Discovery { .. }
            | CycleError::FetchElsewhere { .. } => Some(Check::Fetch),
            CycleError::Config { .. } => Some(Check::Config),
            CycleError::Sentinels(_) => Some(Check::Sentinels),
            // Losing a race (a conditional write, the lease) is how
            // concurrent cycles stay correct, not a failing store.
            CycleError::WriteAlert { source, .. }
            | CycleError::WriteState { source, .. }
            | CycleError::ResolveOrphan { source, .. }
            | CycleError::RecordTick { source, .. } => store_failure(source),
            CycleError::DispatchGroup { source, .. } | CycleError::Dispatch(source) => match source
            {
                firebell_notify::DispatchError::Store(e) => store_failure(e),
                firebell_notify::DispatchError::Contention(_) => None,
                _ => Some(Check::Store),
            },
            _ => None,
        }
    }
}

/// A store error that is a real failure (not a lost race), as a check.
fn store_failure(e: &firebell_core::ports::StoreError) -> Option<Check> {
    (!e.is_conflict() && !e.is_lease_lost()).then_some(Check::Store)
}

/// The `selfwatch/<check>` item: a failing check.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Health {
    /// Cycles in a row that saw the failure.
    failures: u32,
    /// The first failure of this run, and the latest.
    first: Epoch,
    last: Epoch,
    /// The latest failure, as text.
    error: String,
    /// Whether the self-alert is firing, and since when.
    firing: bool,
    #[serde(default)]
    fired: Epoch,
}

/// A failing self-monitoring check as stored (`cycle/selfwatch/<check>`),
/// for `firebell status`.
#[derive(Debug, Clone, PartialEq)]
pub struct FailingCheck {
    /// `render`, `store`, `fetch` or `outbox`.
    pub check: String,
    /// Cycles in a row that saw it.
    pub failures: u32,
    pub first: Epoch,
    pub last: Epoch,
    /// The latest failure, as text.
    pub error: String,
    /// Whether its `FirebellUnhealthy` alert fires.
    pub firing: bool,
}

/// The failing checks among the `cycle` partition's items.
pub(crate) fn failing_checks(items: &[Item]) -> Vec<FailingCheck> {
    items
        .iter()
        .filter_map(|item| {
            let check = item.sk.strip_prefix(SK_PREFIX)?;
            let h = keys::decode::<Health>(item).ok()?;
            Some(FailingCheck {
                check: check.to_string(),
                failures: h.failures,
                first: h.first,
                last: h.last,
                error: h.error,
                firing: h.firing,
            })
        })
        .collect()
}

/// Longest error text carried into an alert's annotations.
const MAX_ERROR_CHARS: usize = 500;

/// The label naming the shard of a shard's self-alerts.
pub const SHARD_LABEL: &str = "shard";

/// Records this cycle's failures and raises or resolves the self-alerts.
/// `stage` keeps its checks in its cycle partition; a shard's alerts carry
/// a `shard` label (`2/4`), so each shard's failure is its own alert.
/// Returns whether an `active` record changed (the snapshot must be
/// dispatched again). Store failures here are reported, never fatal.
pub(super) async fn observe(
    writer: &dyn StateStore,
    cfg: &SelfMonitoring,
    stage: Stage,
    items: &[Item],
    now: Epoch,
    retention: Epoch,
    report: &mut CycleReport,
) -> bool {
    let mut stored: BTreeMap<&str, (Health, u64)> = BTreeMap::new();
    for item in items {
        if let (Some(name), Ok(h)) = (
            item.sk.strip_prefix(SK_PREFIX),
            keys::decode::<Health>(item),
        ) {
            stored.insert(name, (h, item.version));
        }
    }
    let mut failing: BTreeMap<&'static str, String> = BTreeMap::new();
    if cfg.enabled {
        for e in &report.errors {
            if let Some(c) = Check::of(e) {
                failing.entry(c.name()).or_insert_with(|| e.to_string());
            }
        }
        if let Some(old) = stale_outbox(report, now - cfg.outbox_age_secs) {
            failing.insert(Check::Outbox.name(), old);
        }
    }
    let fetched = report.queries > 0 && !failing.contains_key(Check::Fetch.name());
    let mut changed = false;
    let mut errors = Vec::new();
    for check in CHECKS {
        let name = check.name();
        let old = stored.get(name);
        let key = Key::new(stage.cycle_pk(), format!("{SK_PREFIX}{name}"));
        if let Some(error) = failing.get(name) {
            let mut h = match old {
                Some((h, _)) => h.clone(),
                None => Health {
                    failures: 0,
                    first: now,
                    last: now,
                    error: String::new(),
                    firing: false,
                    fired: now,
                },
            };
            h.failures = h.failures.saturating_add(1);
            h.last = now;
            h.error = error.chars().take(MAX_ERROR_CHARS).collect();
            let threshold = if matches!(check, Check::Fetch | Check::Sentinels) {
                cfg.fetch_failures
            } else {
                1
            };
            if !h.firing && h.failures >= threshold {
                h.fired = now;
                match put_alert(writer, cfg, stage, check, &h, None, retention).await {
                    Ok(()) => {
                        report.store_writes += 1;
                        h.firing = true;
                        changed = true;
                    }
                    Err(e) => errors.push(e),
                }
            }
            let item = Item {
                pk: key.pk,
                sk: key.sk,
                version: old.map_or(1, |(_, v)| v + 1),
                data: keys::encode(&h),
                expires_at: None,
            };
            match writer.put(item, Expect::Any).await {
                Ok(()) => report.store_writes += 1,
                Err(e) => errors.push(e),
            }
            continue;
        }
        let Some((h, _)) = old else { continue };
        let cleared = !cfg.enabled
            || match check {
                // (The delivery stage after shards fetches nothing: a fetch
                // failure recorded before the stack was sharded clears.)
                Check::Fetch => fetched || matches!(stage, Stage::Deliver { .. }),
                Check::Outbox | Check::Config | Check::Sentinels => true,
                Check::Render | Check::Store => now - h.last >= cfg.clear_after_secs,
            };
        if !cleared {
            continue;
        }
        if h.firing {
            match put_alert(writer, cfg, stage, check, h, Some(now), retention).await {
                Ok(()) => {
                    report.store_writes += 1;
                    changed = true;
                }
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            }
        }
        match writer.delete(&key, Expect::Any).await {
            Ok(()) => report.store_writes += 1,
            Err(e) => errors.push(e),
        }
    }
    report
        .errors
        .extend(errors.into_iter().map(|source| CycleError::WriteAlert {
            rule: SELF_ALERTNAME.to_string(),
            source,
        }));
    changed
}

/// The oldest outbox item decided before `cutoff`, described, if any.
fn stale_outbox(report: &CycleReport, cutoff: Epoch) -> Option<String> {
    report
        .oldest_undelivered
        .as_ref()
        .filter(|r| r.notification.at <= cutoff)
        .map(|r| {
            let mut s = format!(
                "notification for receiver `{}` (group {}) undelivered since {} after {} attempt(s)",
                r.notification.receiver,
                r.notification.group_key,
                r.notification.at,
                r.attempts
            );
            if let Some(e) = &r.last_error {
                s.push_str(": ");
                s.push_str(e);
            }
            s
        })
}

/// Template delimiters taken apart, so an error text (often about a
/// template) renders as plain text.
fn untemplated(s: &str) -> String {
    s.replace("{{", "{ {")
        .replace("}}", "} }")
        .replace("{%", "{ %")
        .replace("%}", "% }")
        .replace("{#", "{ #")
        .replace("#}", "# }")
}

/// The self-alert's labels for `check`.
pub(crate) fn labels(cfg: &SelfMonitoring, check: &str) -> Labels {
    let mut l = cfg.labels.clone();
    l.insert("alertname".to_string(), SELF_ALERTNAME.to_string());
    l.insert(CHECK_LABEL.to_string(), check.to_string());
    l
}

/// Writes the self-alert of `check`: firing, or resolved at `resolved`.
async fn put_alert(
    writer: &dyn StateStore,
    cfg: &SelfMonitoring,
    stage: Stage,
    check: Check,
    h: &Health,
    resolved: Option<Epoch>,
    retention: Epoch,
) -> Result<(), firebell_core::ports::StoreError> {
    let mut labels = labels(cfg, check.name());
    if let Some(shard) = stage.shard() {
        labels.insert(SHARD_LABEL.to_string(), shard.label());
    }
    let fp = fingerprint(&labels);
    let mut annotations = BTreeMap::new();
    annotations.insert("summary".to_string(), check.summary().to_string());
    annotations.insert(
        "description".to_string(),
        format!(
            "{} failure(s) in a row since {}; latest: {}",
            h.failures,
            h.first,
            untemplated(&h.error)
        ),
    );
    if resolved.is_some() {
        annotations.insert(
            "resolved_because".to_string(),
            "the condition cleared".to_string(),
        );
    }
    let alert = Alert {
        fingerprint: fp.clone(),
        labels,
        annotations,
        status: if resolved.is_some() {
            AlertStatus::Resolved
        } else {
            AlertStatus::Firing
        },
        active_since: h.first,
        fired_at: h.fired,
        resolved_at: resolved,
        value: Some(f64::from(h.failures)),
        peak: Some(f64::from(h.failures)),
        op: Op::Ge,
        threshold: 1.0,
        unit: Unit::Count,
        recent: Vec::new(),
        expression: String::new(),
        metrics: BTreeMap::new(),
    };
    let k = keys::active(&fp);
    let item = Item {
        pk: k.pk,
        sk: k.sk,
        version: 1,
        data: keys::encode(&alert),
        expires_at: resolved.map(|r| r + retention),
    };
    writer.put(item, Expect::Any).await
}
