//! Delivery of the outbox written by [`crate::dispatch::dispatch`] (see its
//! module documentation for the whole mechanism).
//!
//! [`deliver`] reads every outbox item (pk [`PK_OUTBOX`], ascending by sort
//! key, so by group and then by `seq`), and for each group publishes its
//! committed items in order: it renders the stored [`GroupNotification`]
//! with the receiver's current settings, publishes every message, then
//! deletes the item.
//!
//! * A retryable failure (`NotifyError::Unavailable`) stops that group so
//!   order is kept; the item remembers how many of its messages went out,
//!   and the next call resumes there. Other groups carry on.
//! * A rejected message (`NotifyError::Rejected`) would be rejected again:
//!   it is copied to the dead-letter partition [`PK_DEAD_LETTER`] and the
//!   rest of the notification goes on. So is a notification whose receiver
//!   is no longer configured, or an unreadable item.
//! * Items whose `seq` the group log does not count yet are skipped: they
//!   belong to a decision in flight or a crashed one, which the next
//!   dispatch adopts.
//!
//! Every message of a notification carries the idempotency key
//! [`idempotency_key`]`(receiver, group_key, seq)` (with `-<index>` appended
//! when a notification has several messages) and the group key as its
//! group. The renderer sets them (same scheme); `deliver` only fills in
//! what it left empty. A re-send after a crash between publish and delete is
//! dropped by SNS FIFO deduplication.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use firebell_core::ports::{Expect, Item, Key, Notifier, Outbound, StateStore, StoreError};
use firebell_core::series::Epoch;

use crate::config::NotifyConfig;
use crate::dispatch::{GroupLog, PK_GROUP, idempotency_key};
use crate::types::{GroupNotification, Receiver};

pub use crate::dispatch::PK_OUTBOX;

/// Partition of dead letters: sk = `<outbox sk>#<what>`.
pub const PK_DEAD_LETTER: &str = "outbox-dead";
/// Dead letters are kept 14 days.
pub const DEAD_LETTER_TTL: i64 = 14 * 86_400;

/// The data of an outbox item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxRecord {
    pub idempotency_key: String,
    pub notification: GroupNotification,
    /// How many of the rendered messages were already published.
    #[serde(default)]
    pub published: usize,
    /// Failed delivery attempts so far.
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub last_error: Option<String>,
}

impl OutboxRecord {
    pub fn new(notification: GroupNotification) -> Self {
        OutboxRecord {
            idempotency_key: idempotency_key(
                &notification.receiver,
                &notification.group_key,
                notification.seq,
            ),
            notification,
            published: 0,
            attempts: 0,
            last_error: None,
        }
    }
}

/// A dead letter's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub reason: String,
    pub at: Epoch,
    /// The outbox item's data, or the message that was rejected.
    pub payload: String,
}

/// What one [`deliver`] call did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryReport {
    /// Notifications fully handled and removed from the outbox.
    pub notifications_sent: usize,
    /// Messages published.
    pub messages_published: usize,
    /// The messages published, in order.
    pub published: Vec<Outbound>,
    /// Messages or notifications moved to the dead letters.
    pub dead_lettered: usize,
    /// Groups stopped by a retryable failure (retried next call).
    pub failures: usize,
    /// The failures, as `group_key: error`.
    pub errors: Vec<String>,
    /// Items skipped because their decision is not committed yet.
    pub uncommitted: usize,
    /// Items left in the outbox after this call.
    pub remaining: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DeliveryError {
    pub fn is_retryable(&self) -> bool {
        match self {
            DeliveryError::Store(e) => e.is_retryable() || e.is_conflict(),
        }
    }
}

/// The renderer: one notification to its messages.
pub type Render<'a> = &'a (dyn Fn(&Receiver, &GroupNotification) -> Vec<Outbound> + Sync);

fn group_of(sk: &str) -> &str {
    sk.rsplit_once('#').map(|(g, _)| g).unwrap_or(sk)
}

/// Fills the group and idempotency keys of messages the renderer left empty.
fn stamp(mut msgs: Vec<Outbound>, rec: &OutboxRecord) -> Vec<Outbound> {
    let several = msgs.len() > 1;
    for (i, m) in msgs.iter_mut().enumerate() {
        if m.idempotency_key.is_empty() {
            m.idempotency_key = if several {
                format!("{}-{i}", rec.idempotency_key)
            } else {
                rec.idempotency_key.clone()
            };
        }
        if m.group_key.is_empty() {
            m.group_key.clone_from(&rec.notification.group_key);
        }
        if m.receiver.is_empty() {
            m.receiver.clone_from(&rec.notification.receiver);
        }
    }
    msgs
}

async fn dead_letter(
    store: &dyn StateStore,
    sk: String,
    reason: String,
    payload: String,
    now: Epoch,
) -> Result<(), StoreError> {
    let letter = DeadLetter {
        reason,
        at: now,
        payload,
    };
    let data = serde_json::to_string(&letter).map_err(|e| StoreError::Invalid(e.to_string()))?;
    store
        .put(
            Item {
                pk: PK_DEAD_LETTER.to_string(),
                sk,
                version: 1,
                data,
                expires_at: Some(now.saturating_add(DEAD_LETTER_TTL)),
            },
            Expect::Any,
        )
        .await
}

/// Removes a handled outbox item; losing to a concurrent writer is fine.
async fn remove(store: &dyn StateStore, item: &Item) -> Result<(), StoreError> {
    match store
        .delete(
            &Key::new(item.pk.clone(), item.sk.clone()),
            Expect::Version(item.version),
        )
        .await
    {
        Err(e) if !e.is_conflict() => Err(e),
        _ => Ok(()),
    }
}

/// Publishes the outbox. See the module documentation.
pub async fn deliver(
    store: &dyn StateStore,
    notifier: &dyn Notifier,
    render: Render<'_>,
    cfg: &NotifyConfig,
    now: Epoch,
) -> Result<DeliveryReport, DeliveryError> {
    let mut report = DeliveryReport::default();
    let items = store.query(PK_OUTBOX, "").await?;
    let mut by_group: BTreeMap<String, Vec<Item>> = BTreeMap::new();
    for item in items {
        by_group
            .entry(group_of(&item.sk).to_string())
            .or_default()
            .push(item);
    }
    let keys: Vec<Key> = by_group
        .keys()
        .map(|g| Key::new(PK_GROUP, g.clone()))
        .collect();
    let mut committed: BTreeMap<String, u64> = BTreeMap::new();
    for chunk in keys.chunks(100) {
        for item in store.batch_get(chunk).await? {
            if let Ok(log) = serde_json::from_str::<GroupLog>(&item.data) {
                committed.insert(item.sk, log.seq);
            }
        }
    }
    for (group, mut items) in by_group {
        items.sort_by(|a, b| a.sk.cmp(&b.sk));
        let committed_seq = committed.get(&group).copied().unwrap_or(0);
        let total = items.len();
        let mut done = 0;
        for item in &items {
            let mut rec: OutboxRecord = match serde_json::from_str(&item.data) {
                Ok(r) => r,
                Err(e) => {
                    dead_letter(
                        store,
                        format!("{}#item", item.sk),
                        format!("unreadable outbox item: {e}"),
                        item.data.clone(),
                        now,
                    )
                    .await?;
                    remove(store, item).await?;
                    report.dead_lettered += 1;
                    done += 1;
                    continue;
                }
            };
            let seq = rec.notification.seq;
            if seq > committed_seq {
                report.uncommitted += 1;
                break;
            }
            let Some(receiver) = cfg.receivers.get(&rec.notification.receiver) else {
                dead_letter(
                    store,
                    format!("{}#item", item.sk),
                    format!(
                        "receiver {:?} is no longer configured",
                        rec.notification.receiver
                    ),
                    item.data.clone(),
                    now,
                )
                .await?;
                remove(store, item).await?;
                report.dead_lettered += 1;
                done += 1;
                continue;
            };
            let msgs = stamp(render(receiver, &rec.notification), &rec);
            let mut published = rec.published;
            let mut failure = None;
            for (i, m) in msgs.iter().enumerate().skip(rec.published) {
                match notifier.publish(m).await {
                    Ok(()) => {
                        report.messages_published += 1;
                        report.published.push(m.clone());
                        published = i + 1;
                    }
                    Err(e) if e.is_retryable() => {
                        failure = Some(e.to_string());
                        break;
                    }
                    Err(e) => {
                        let payload = serde_json::to_string(m).unwrap_or_default();
                        dead_letter(
                            store,
                            format!("{}#{i}", item.sk),
                            e.to_string(),
                            payload,
                            now,
                        )
                        .await?;
                        report.dead_lettered += 1;
                        published = i + 1;
                    }
                }
            }
            if let Some(err) = failure {
                rec.published = published;
                rec.attempts += 1;
                report
                    .errors
                    .push(format!("{group}: notification {seq}: {err}"));
                rec.last_error = Some(err);
                report.failures += 1;
                if let Ok(data) = serde_json::to_string(&rec) {
                    let updated = Item {
                        data,
                        version: item.version + 1,
                        ..item.clone()
                    };
                    match store.put(updated, Expect::Version(item.version)).await {
                        Err(e) if !e.is_conflict() => return Err(e.into()),
                        _ => {}
                    }
                }
                break;
            }
            remove(store, item).await?;
            report.notifications_sent += 1;
            done += 1;
        }
        report.remaining += total - done;
    }
    Ok(report)
}

/// The outbox as stored (for status commands and tests).
pub async fn pending(store: &dyn StateStore) -> Result<Vec<OutboxRecord>, DeliveryError> {
    let items = store.query(PK_OUTBOX, "").await?;
    Ok(items
        .iter()
        .filter_map(|i| serde_json::from_str(&i.data).ok())
        .collect())
}
