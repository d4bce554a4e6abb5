//! Persist: the judged instances' changes into the store. Per instance,
//! alert-visible changes first (the `active` records, unconditional and
//! idempotent), then the instance state (`Expect::Version`): a crash or a
//! lost race in between leaves the old state, so the next cycle derives the
//! same events and rewrites the same records (ARCHITECTURE.md, "Delivery",
//! step 4).
//!
//! Instances are independent, so up to [`CONCURRENCY`] are written at once
//! (a 10,000-alert incident is 20,000 writes: one at a time they would not
//! fit the Lambda's timeout). Results are merged in the instances' order.
//!
//! An alert record over the store's item limit ([`StoreError::TooLarge`])
//! is shrunk step by step ([`shrink`]: recent datapoints, then long
//! annotations, then long label values) and written; it never fails every
//! cycle.

use firebell_core::alert::Alert;
use firebell_core::model::{Labels, Rule};
use firebell_core::ports::{Expect, Item, StateStore, StoreError};
use firebell_core::series::Epoch;
use firebell_core::state::Event;
use futures_util::future::{BoxFuture, FutureExt};
use futures_util::stream::{self, StreamExt};

use super::{CycleReport, Transition};
use crate::error::{CycleError, EngineError};
use crate::judge::Judgement;
use crate::keys::{self, StoredState};

/// Instances written at once.
pub(super) const CONCURRENCY: usize = 32;

/// One judged instance to write.
pub(super) struct Judged<'a> {
    pub(super) rule: &'a Rule,
    pub(super) labels: &'a Labels,
    pub(super) judgement: Judgement,
    /// The stored state's version, `None` when the instance had none.
    pub(super) version: Option<u64>,
    /// The alert records of the judgement's events.
    pub(super) records: Vec<(Event, Option<Alert>)>,
}

/// What writing one instance did, merged into the report in order.
#[derive(Default)]
struct Outcome {
    store_writes: usize,
    conflicts: usize,
    errors: Vec<CycleError>,
    transitions: Vec<Transition>,
}

/// Writes every judged instance (see the module docs). The lease is taken
/// by whichever write comes first; the others wait for it
/// (`lease::Guarded::take` holds a lock while taking it).
pub(super) async fn persist_all(
    writer: &dyn StateStore,
    judged: Vec<Judged<'_>>,
    now: Epoch,
    resolved_retention: Epoch,
    report: &mut CycleReport,
) -> Result<(), EngineError> {
    // (Boxed futures, not a closure over `persist`: a stream of closures
    // is not provably `Send` to the Lambda's runtime.)
    let futures: Vec<BoxFuture<'_, Result<Outcome, EngineError>>> = judged
        .into_iter()
        .map(|j| persist(writer, j, now, resolved_retention).boxed())
        .collect();
    let mut outcomes = stream::iter(futures).buffered(CONCURRENCY);
    let mut failed = None;
    while let Some(outcome) = outcomes.next().await {
        if let Err(e) = merge(outcome, report) {
            failed.get_or_insert(e);
        }
    }
    failed.map_or(Ok(()), Err)
}

fn merge(
    outcome: Result<Outcome, EngineError>,
    report: &mut CycleReport,
) -> Result<(), EngineError> {
    let o = outcome?;
    report.store_writes += o.store_writes;
    report.conflicts += o.conflicts;
    report.errors.extend(o.errors);
    report.transitions.extend(o.transitions);
    Ok(())
}

/// Writes one instance's alert records, then its state (unless a record
/// failed). How long a resolved alert stays in the snapshot is
/// `resolved_retention`.
async fn persist(
    writer: &dyn StateStore,
    judged: Judged<'_>,
    now: Epoch,
    resolved_retention: Epoch,
) -> Result<Outcome, EngineError> {
    let Judged {
        rule,
        labels,
        judgement,
        version,
        records,
    } = judged;
    let mut out = Outcome::default();
    let mut wrote_active = true;
    for (event, alert) in records {
        if let Some(alert) = alert {
            match write_alert(writer, alert, resolved_retention).await {
                Ok(()) => out.store_writes += 1,
                Err(source) => {
                    out.errors.push(CycleError::WriteAlert {
                        rule: rule.name.clone(),
                        source,
                    });
                    wrote_active = false;
                }
            }
        }
        out.transitions.push(Transition {
            rule: rule.name.clone(),
            labels: labels.clone(),
            event,
        });
    }
    if !wrote_active {
        return Ok(out);
    }
    let key = keys::state(&rule.name, &firebell_core::alert::fingerprint(labels));
    let lookback = i64::try_from(rule.lookback().as_secs()).unwrap_or(i64::MAX / 4);
    let expires_at = keys::state_expiry(&judgement.state, now, lookback, resolved_retention);
    let item = Item {
        pk: key.pk,
        sk: key.sk,
        version: version.map_or(1, |v| v + 1),
        data: keys::encode(&StoredState {
            labels: labels.clone(),
            state: judgement.state,
        }),
        expires_at,
    };
    let expect = version.map_or(Expect::Absent, Expect::Version);
    match writer.put(item, expect).await {
        Ok(()) => out.store_writes += 1,
        Err(e) if e.is_conflict() => {
            out.conflicts += 1;
            out.errors.push(CycleError::StateConflict {
                rule: rule.name.clone(),
            });
        }
        // This instance's state cannot be stored (its labels are bounded at
        // validate, so this is not expected): it fails alone.
        Err(source) if source.is_too_large() => out.errors.push(CycleError::WriteState {
            rule: rule.name.clone(),
            source,
        }),
        Err(e) => return Err(e.into()),
    }
    Ok(out)
}

/// Writes one `active` record, shrinking it while the store says it is too
/// large.
async fn write_alert(
    writer: &dyn StateStore,
    mut alert: Alert,
    resolved_retention: Epoch,
) -> Result<(), StoreError> {
    let mut step = 0;
    loop {
        let k = keys::active(&alert.fingerprint);
        let item = Item {
            pk: k.pk,
            sk: k.sk,
            version: 1,
            data: keys::encode(&alert),
            expires_at: alert.resolved_at.map(|r| r + resolved_retention),
        };
        match writer.put(item, Expect::Any).await {
            Err(e) if e.is_too_large() && shrink(&mut alert, step) => step += 1,
            other => return other,
        }
    }
}

/// Longest annotation or label value kept once an alert record had to be shrunk.
const SHRUNK_VALUE_CHARS: usize = 256;
/// What a shrunk annotation says instead.
pub(crate) const LEFT_OUT: &str = "(left out: the alert was too large to store)";

/// Makes an alert record smaller, one step at a time; `false` when there is
/// nothing left to take away. The fingerprint (the alert's identity) stays.
///
/// 0. the recent datapoints, the metric specs and a long expression;
/// 1. annotations longer than [`SHRUNK_VALUE_CHARS`] (replaced by [`LEFT_OUT`]);
/// 2. label values longer than that (cut, ending in `…`).
pub(crate) fn shrink(alert: &mut Alert, step: usize) -> bool {
    let cut = |s: &str| -> String {
        let mut out: String = s.chars().take(SHRUNK_VALUE_CHARS - 1).collect();
        out.push('…');
        out
    };
    let long = |s: &String| s.chars().count() > SHRUNK_VALUE_CHARS;
    match step {
        0 => {
            alert.recent.clear();
            alert.metrics.clear();
            if long(&alert.expression) {
                alert.expression = cut(&alert.expression);
            }
            true
        }
        1 => {
            for v in alert.annotations.values_mut() {
                if long(v) {
                    *v = LEFT_OUT.to_string();
                }
            }
            true
        }
        2 => {
            for v in alert.labels.values_mut() {
                if long(v) {
                    *v = cut(v);
                }
            }
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use firebell_core::alert::AlertStatus;
    use firebell_core::model::{Op, Unit};
    use std::collections::BTreeMap;

    fn alert() -> Alert {
        Alert {
            fingerprint: "0123456789abcdef".into(),
            labels: BTreeMap::from([
                ("alertname".into(), "Big".into()),
                ("Host".into(), "h".repeat(1000)),
            ]),
            annotations: BTreeMap::from([
                ("summary".into(), "s".repeat(4000)),
                ("runbook_url".into(), "https://wiki/x".into()),
            ]),
            status: AlertStatus::Firing,
            active_since: 0,
            fired_at: 60,
            resolved_at: None,
            value: Some(1.0),
            peak: Some(1.0),
            op: Op::Gt,
            threshold: 0.0,
            unit: Unit::None,
            recent: vec![(0, Some(1.0)); 60],
            expression: "m".repeat(4000),
            metrics: BTreeMap::new(),
        }
    }

    #[test]
    fn shrinking_takes_the_bulky_parts_in_order_and_keeps_the_identity() {
        let mut a = alert();
        assert!(shrink(&mut a, 0));
        assert!(a.recent.is_empty());
        assert_eq!(a.expression.chars().count(), SHRUNK_VALUE_CHARS);
        assert!(a.expression.ends_with('…'));
        assert_eq!(a.annotations["summary"].len(), 4000, "not yet");
        assert!(shrink(&mut a, 1));
        assert_eq!(a.annotations["summary"], LEFT_OUT);
        assert_eq!(
            a.annotations["runbook_url"], "https://wiki/x",
            "short ones stay"
        );
        assert_eq!(a.labels["Host"].len(), 1000, "not yet");
        assert!(shrink(&mut a, 2));
        assert_eq!(a.labels["Host"].chars().count(), SHRUNK_VALUE_CHARS);
        assert_eq!(a.labels["alertname"], "Big");
        assert_eq!(a.fingerprint, "0123456789abcdef");
        assert!(!shrink(&mut a, 3), "nothing left to take");
    }
}
