//! The one-time move of instance states from the layout before state
//! buckets (`state#<rule>`, one partition per rule, read key by key) to
//! `state/<bucket>` ([`keys::state`]). A stage moves the states of the
//! rules it evaluates, under its lease, before it evaluates; its recorded
//! tick then carries [`keys::STATE_LAYOUT`], so it happens once.
//!
//! Each state is written to its new key only when none is there yet
//! (`Expect::Absent`), then the old one is deleted: a crash in between
//! leaves both, and the next run skips the write and deletes the old one.

use firebell_core::model::Rule;
use firebell_core::ports::{Expect, Item, Key, StateStore};
use firebell_core::series::Epoch;
use futures_util::future::{BoxFuture, FutureExt};
use futures_util::stream::{self, StreamExt};

use super::{CycleReport, Stage};
use crate::config::Config;
use crate::error::EngineError;
use crate::keys::{self, StoredState};

/// Old partitions read at once.
const READS: usize = 16;

/// Moves the states of the rules `stage` evaluates.
pub(super) async fn states(
    writer: &dyn StateStore,
    config: &Config,
    stage: Stage,
    now: Epoch,
    resolved_retention: Epoch,
    report: &mut CycleReport,
) -> Result<(), EngineError> {
    let rules: Vec<_> = config
        .rules
        .rules
        .iter()
        .filter(|r| stage.evaluates(&r.name))
        .collect();
    // (Boxed futures, not a closure in a stream: see `persist::persist_all`.)
    let reads: Vec<BoxFuture<'_, Result<usize, EngineError>>> = rules
        .into_iter()
        .map(|rule| move_rule(writer, rule, now, resolved_retention).boxed())
        .collect();
    let mut moved = stream::iter(reads).buffer_unordered(READS);
    while let Some(writes) = moved.next().await {
        report.store_writes += writes?;
    }
    Ok(())
}

/// Moves one rule's states; returns the writes made.
async fn move_rule(
    writer: &dyn StateStore,
    rule: &Rule,
    now: Epoch,
    resolved_retention: Epoch,
) -> Result<usize, EngineError> {
    let items = writer
        .query(&keys::legacy_state_partition(&rule.name), "")
        .await?;
    let lookback = i64::try_from(rule.lookback().as_secs()).unwrap_or(i64::MAX / 4);
    let mut writes = 0;
    for item in items {
        let stored: StoredState = keys::decode(&item)?;
        let key = keys::state(&rule.name, &item.sk);
        let moved = Item {
            pk: key.pk,
            sk: key.sk,
            version: 1,
            expires_at: keys::state_expiry(&stored.state, now, lookback, resolved_retention),
            data: item.data.clone(),
        };
        match writer.put(moved, Expect::Absent).await {
            Ok(()) => writes += 1,
            // Moved already (a run that crashed before the delete).
            Err(e) if e.is_conflict() => {}
            Err(e) => return Err(EngineError::from(e)),
        }
        writer
            .delete(&Key::new(item.pk, item.sk), Expect::Any)
            .await?;
        writes += 1;
    }
    Ok(writes)
}
