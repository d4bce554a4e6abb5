//! Persist: one instance's judgement into the store. Alert-visible changes
//! first (the `active` records, unconditional and idempotent), then the
//! instance state (`Expect::Version`): a crash or a lost race in between
//! leaves the old state, so the next cycle derives the same events and
//! rewrites the same records (ARCHITECTURE.md, "Delivery", step 4).

use firebell_core::alert::Alert;
use firebell_core::model::{Labels, Rule};
use firebell_core::ports::{Expect, Item, StateStore};
use firebell_core::series::Epoch;
use firebell_core::state::Event;

use super::{CycleReport, Transition};
use crate::error::{CycleError, EngineError};
use crate::judge::Judgement;
use crate::keys::{self, StoredState};

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

/// Writes the alert records, then the state (unless a record failed).
/// How long a resolved alert stays in the snapshot is `resolved_retention`.
pub(super) async fn persist(
    writer: &dyn StateStore,
    judged: Judged<'_>,
    resolved_retention: Epoch,
    report: &mut CycleReport,
) -> Result<(), EngineError> {
    let Judged {
        rule,
        labels,
        judgement,
        version,
        records,
    } = judged;
    let mut wrote_active = true;
    for (event, alert) in records {
        if let Some(alert) = alert {
            let k = keys::active(&alert.fingerprint);
            let item = Item {
                pk: k.pk,
                sk: k.sk,
                version: 1,
                data: keys::encode(&alert),
                expires_at: alert.resolved_at.map(|r| r + resolved_retention),
            };
            match writer.put(item, Expect::Any).await {
                Ok(()) => report.store_writes += 1,
                Err(source) => {
                    report.errors.push(CycleError::WriteAlert {
                        rule: rule.name.clone(),
                        source,
                    });
                    wrote_active = false;
                }
            }
        }
        report.transitions.push(Transition {
            rule: rule.name.clone(),
            labels: labels.clone(),
            event,
        });
    }
    if !wrote_active {
        return Ok(());
    }
    let key = keys::state(&rule.name, &firebell_core::alert::fingerprint(labels));
    let item = Item {
        pk: key.pk,
        sk: key.sk,
        version: version.map_or(1, |v| v + 1),
        data: keys::encode(&StoredState {
            labels: labels.clone(),
            state: judgement.state,
        }),
        expires_at: None,
    };
    let expect = version.map_or(Expect::Absent, Expect::Version);
    match writer.put(item, expect).await {
        Ok(()) => report.store_writes += 1,
        Err(e) if e.is_conflict() => {
            report.conflicts += 1;
            report.errors.push(CycleError::StateConflict {
                rule: rule.name.clone(),
            });
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
