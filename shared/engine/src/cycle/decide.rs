//! Decide and deliver: the snapshot of every alert the pipeline must know
//! (`active`), overlaid with this cycle's fresh values; alerts whose rule or
//! instance is gone resolved; then `firebell_notify`'s dispatch (outbox
//! before notification log) and delivery (publish, then delete). See
//! ARCHITECTURE.md, "Delivery: no lost, no duplicate", steps 5-7.

use std::collections::{HashMap, HashSet};

use firebell_core::alert::{ALERTSTATE_LABEL, Alert, AlertStatus, fingerprint};
use firebell_core::model::{Labels, Rule};
use firebell_core::ports::{Expect, Item, Notifier, StateStore};
use firebell_core::series::Epoch;
use firebell_notify::DispatchError;

use super::{CycleReport, Fresh, Stage};
use crate::config::Config;
use crate::error::{CycleError, EngineError};
use crate::keys;

/// The `active` snapshot, sorted by fingerprint: firing alerts nothing
/// evaluates any more are resolved (and written) when `stage` evaluates
/// their rule ([`Stage::evaluates`]), evaluated ones carry
/// this cycle's values.
#[allow(clippy::too_many_arguments)]
pub(super) async fn snapshot(
    writer: &dyn StateStore,
    config: &Config,
    stage: Stage,
    fresh: &HashMap<String, Fresh>,
    covered: &HashMap<String, HashSet<String>>,
    now: Epoch,
    resolved_retention: Epoch,
    report: &mut CycleReport,
) -> Result<Vec<Alert>, EngineError> {
    let mut alerts: Vec<Alert> = Vec::new();
    for item in writer.query(keys::ACTIVE, "").await? {
        let mut a: Alert = keys::decode(&item)?;
        if a.status == AlertStatus::Firing
            && let Some(why) = gone_shard(&a, stage.shards_now())
        {
            resolve_orphan(writer, &mut a, now, &why, resolved_retention, report).await;
        }
        if a.status == AlertStatus::Firing
            && stage.evaluates(a.name())
            && let Some(why) = orphaned(config, &a, covered)
        {
            resolve_orphan(writer, &mut a, now, &why, resolved_retention, report).await;
        }
        // Fresh values overlay alerts that still fire; a resolved alert
        // keeps the values it resolved with, so its notice reads the same
        // whenever it goes out (and whether or not sentinels let a cycle
        // skip its rule since).
        if a.status != AlertStatus::Resolved
            && let Some(f) = fresh.get(&a.fingerprint)
        {
            a.value = f.value;
            a.recent = f.recent.clone();
            if let Some(ann) = &f.annotations {
                a.annotations = ann.clone();
            }
        }
        alerts.push(a);
    }
    alerts.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
    Ok(alerts)
}

/// Why a firing self-alert of a shard (`shard: k/m`) has nothing behind
/// it any more, if so: the stack now runs `shards_now` shards (1: the
/// whole cycle), not `m`, so nothing runs shard k/m to resolve it.
/// (`None`: a shard's own stage, which judges no self-alert.)
fn gone_shard(a: &Alert, shards_now: Option<u32>) -> Option<String> {
    let n = shards_now?;
    if a.name() != super::SELF_ALERTNAME {
        return None;
    }
    let label = a.labels.get(super::SHARD_LABEL)?;
    let of = label.rsplit('/').next().unwrap_or_default();
    (n == 1 || of != n.to_string())
        .then(|| format!("shard {label} is no longer run (the stack runs {n} shard(s) now)"))
}

/// Why a firing alert no longer has a rule or instance behind it, if so:
/// its rule was removed, its rule's labels changed (the alert is a new
/// instance under its new labels), or its dimension value is gone.
fn orphaned(
    config: &Config,
    a: &Alert,
    covered: &HashMap<String, HashSet<String>>,
) -> Option<String> {
    let name = a.name();
    if name == super::SELF_ALERTNAME {
        return None; // resolved by selfwatch
    }
    let Some(rule) = config.rules.get(name) else {
        return Some("its rule was removed from the config".to_string());
    };
    match covered.get(name) {
        Some(set) if !set.contains(&a.fingerprint) => Some(match label_change(rule, &a.labels) {
            Some(change) => format!("its rule's labels changed ({change})"),
            None => "its instance is gone (the dimension value no longer exists)".to_string(),
        }),
        _ => None,
    }
}

/// How `rule`'s labels differ from those an alert of it was made with
/// (`alert_labels`: the rule's labels then, `alertname`, the wildcard
/// dimension's value, perhaps `alertstate`): `team: payments -> checkout`,
/// `tier: (none) -> 1` for an added label, `env: prod -> (none)` for a
/// dropped one; `None` when they agree.
fn label_change(rule: &Rule, alert_labels: &Labels) -> Option<String> {
    let current = super::plan::rule_labels(rule);
    let is_dimension = |k: &str| {
        rule.metrics
            .values()
            .any(|m| m.dimensions.get(k).is_some_and(|v| v == "*"))
    };
    let mut changes = Vec::new();
    for (k, v) in &current {
        match alert_labels.get(k) {
            Some(old) if old == v => {}
            Some(old) => changes.push(format!("{k}: {old} -> {v}")),
            None => changes.push(format!("{k}: (none) -> {v}")),
        }
    }
    for (k, old) in alert_labels {
        if k != ALERTSTATE_LABEL && !current.contains_key(k) && !is_dimension(k) {
            changes.push(format!("{k}: {old} -> (none)"));
        }
    }
    (!changes.is_empty()).then(|| changes.join(", "))
}

/// Resolves an alert nothing evaluates any more, so it does not fire forever.
async fn resolve_orphan(
    writer: &dyn StateStore,
    a: &mut Alert,
    now: Epoch,
    why: &str,
    resolved_retention: Epoch,
    report: &mut CycleReport,
) {
    a.status = AlertStatus::Resolved;
    a.resolved_at = Some(now);
    a.value = None;
    a.annotations
        .insert("resolved_because".to_string(), why.to_string());
    let k = keys::active(&a.fingerprint);
    let item = Item {
        pk: k.pk,
        sk: k.sk,
        version: 1,
        data: keys::encode(&*a),
        expires_at: Some(now + resolved_retention),
    };
    match writer.put(item, Expect::Any).await {
        Ok(()) => report.store_writes += 1,
        Err(source) => report.errors.push(CycleError::ResolveOrphan {
            rule: a.name().to_string(),
            source,
        }),
    }
    let mut base = a.labels.clone();
    base.remove(firebell_core::alert::ALERTSTATE_LABEL);
    if writer
        .delete(&keys::state(a.name(), &fingerprint(&base)), Expect::Any)
        .await
        .is_ok()
    {
        report.store_writes += 1;
    }
    report.orphans_resolved += 1;
}

/// Groups the snapshot and writes the due decisions to the outbox. A
/// failure in some groups does not hold back the others.
pub(super) async fn dispatch(
    writer: &dyn StateStore,
    config: &Config,
    alerts: &[Alert],
    now: Epoch,
    report: &mut CycleReport,
) {
    match firebell_notify::dispatch(&config.notify, writer, now, alerts).await {
        Ok(d) => report.notifications_enqueued += d.enqueued,
        Err(DispatchError::Partial {
            report: d,
            failures,
        }) => {
            report.notifications_enqueued += d.enqueued;
            for (group, source) in failures {
                report
                    .errors
                    .push(CycleError::DispatchGroup { group, source });
            }
        }
        Err(e) => report.errors.push(CycleError::Dispatch(e)),
    }
}

/// Publishes the outbox in order per group, rendering at send time. A
/// notification that cannot be rendered is dead-lettered, never counted as sent.
pub(super) async fn deliver<W: StateStore + Notifier>(
    writer: &W,
    config: &Config,
    now: Epoch,
    report: &mut CycleReport,
) -> Result<(), EngineError> {
    let delivered = firebell_notify::deliver(
        writer,
        writer,
        &firebell_notify::render,
        &config.notify,
        now,
    )
    .await?;
    report.notifications_sent += delivered.notifications_sent;
    report.messages_published += delivered.messages_published;
    report.publish_failures += delivered.failures;
    report.delivered.extend(delivered.delivered);
    report.oldest_undelivered = delivered.oldest_remaining;
    report.errors.extend(
        delivered
            .render_failures
            .into_iter()
            .map(CycleError::Render)
            .chain(
                delivered
                    .template_failures
                    .into_iter()
                    .map(CycleError::Template),
            ),
    );
    Ok(())
}
