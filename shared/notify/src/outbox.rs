//! Delivery of the outbox written by `dispatch`.
//!
//! [`deliver`] reads every outbox item (ascending by sort key, so by group
//! and then by `seq`), and for each group publishes its committed items in
//! order: it renders the stored [`GroupNotification`] with the receiver's
//! current settings, publishes every message, then deletes the item.
//!
//! * A retryable failure (`NotifyError::Unavailable`) stops that group so
//!   order is kept; the item remembers how many of its messages went out,
//!   and the next call resumes there. Other groups carry on.
//! * A rejected message (`NotifyError::Rejected`) would be rejected again:
//!   it is copied to the dead letters and the rest of the notification goes
//!   on. A notification that cannot be rendered, whose receiver is no longer
//!   configured, or an unreadable item is dead-lettered whole: never counted
//!   as sent.
//! * Items whose `seq` the group log does not count yet are skipped: they
//!   belong to a decision in flight or a crashed one, which the next
//!   dispatch adopts.
//!
//! Why this loses and duplicates nothing is told in `ARCHITECTURE.md`,
//! section "Delivery: no lost, no duplicate".

use std::collections::BTreeMap;

use firebell_core::ports::{
    Expect, Item, Key, Notifier, NotifyError, Outbound, StateStore, StoreError,
};
use firebell_core::series::Epoch;

use crate::render::{RenderError, Rendered};
use crate::store::{
    DEAD_LETTER_TTL, DeadLetter, GroupLog, OutboxRecord, PK_DEAD_LETTER, PK_GROUP, PK_OUTBOX,
    group_of_outbox_sk, message_key,
};
use crate::types::{GroupNotification, NotifyConfig, Receiver};

/// What one [`deliver`] call did.
#[derive(Debug, Clone, Default)]
pub struct DeliveryReport {
    /// Notifications fully handled and removed from the outbox.
    pub notifications_sent: usize,
    /// Messages published.
    pub messages_published: usize,
    /// The notifications this call published messages of, in order, each
    /// with the messages published for it in this call (a notification
    /// resumed after a failure lists only the rest).
    pub delivered: Vec<Delivered>,
    /// Messages or notifications moved to the dead letters.
    pub dead_lettered: usize,
    /// Groups stopped by a retryable failure (retried next call).
    pub failures: usize,
    /// Those failures, one per stopped group.
    pub errors: Vec<PublishFailure>,
    /// Notifications that could not be rendered: dead-lettered, not sent
    /// (also counted in `dead_lettered`).
    pub render_failures: Vec<RenderFailure>,
    /// Templates that failed in notifications that were sent (each fell
    /// back to the default text, with a note in the message).
    pub template_failures: Vec<TemplateFailure>,
    /// Items skipped because their decision is not committed yet.
    pub uncommitted: usize,
    /// Items left in the outbox after this call.
    pub remaining: usize,
    /// The oldest notification left in the outbox (undelivered or not yet
    /// committed), as stored after this call.
    pub oldest_remaining: Option<OutboxRecord>,
}

impl DeliveryReport {
    /// The messages published, in order.
    pub fn published(&self) -> Vec<Outbound> {
        self.delivered
            .iter()
            .flat_map(|d| d.messages.iter().cloned())
            .collect()
    }
}

/// A notification and the messages published for it by one [`deliver`] call.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    pub notification: GroupNotification,
    /// In publishing order.
    pub messages: Vec<Outbound>,
}

/// A group whose delivery stopped on a retryable publish failure; the
/// notification stays in the outbox and is retried at the next call.
/// Displays as `<group_key>: notification <seq>: <error>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{group_key}: notification {seq}: {error}")]
pub struct PublishFailure {
    pub group_key: String,
    pub seq: u64,
    pub error: NotifyError,
}

/// A notification that could not be rendered; it was dead-lettered with
/// the error's text as the reason. Displays as
/// `rendering <group_key> #<seq> for <receiver>: <error>`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("rendering {group_key} #{seq} for {receiver}: {error}")]
pub struct RenderFailure {
    pub group_key: String,
    pub seq: u64,
    pub receiver: String,
    pub error: RenderError,
}

/// A template that failed while a notification was rendered; the message
/// went out with the default text there. Displays as
/// `template in <group_key> #<seq> for <receiver>: <what>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template in {group_key} #{seq} for {receiver}: {what}")]
pub struct TemplateFailure {
    pub group_key: String,
    pub seq: u64,
    pub receiver: String,
    /// Which template failed, why, and what was used instead.
    pub what: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A record could not be encoded; retrying will not help.
    #[error("cannot encode {pk}/{sk}: {source}")]
    Encode {
        pk: String,
        sk: String,
        source: serde_json::Error,
    },
}

impl DeliveryError {
    /// Whether the next call may succeed where this one failed.
    pub fn is_retryable(&self) -> bool {
        match self {
            DeliveryError::Store(e) => e.is_retryable() || e.is_conflict(),
            DeliveryError::Encode { .. } => false,
        }
    }
}

/// The renderer: one notification to its messages, or why it cannot be
/// rendered (then it is dead-lettered, never retried).
pub type Render<'a> =
    &'a (dyn Fn(&Receiver, &GroupNotification) -> Result<Rendered, RenderError> + Sync);

/// Fills the group and idempotency keys of messages the renderer left empty.
fn stamp(mut msgs: Vec<Outbound>, rec: &OutboxRecord) -> Vec<Outbound> {
    let count = msgs.len();
    for (i, m) in msgs.iter_mut().enumerate() {
        if m.idempotency_key.is_empty() {
            m.idempotency_key = message_key(&rec.idempotency_key, i, count);
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
) -> Result<(), DeliveryError> {
    let letter = DeadLetter {
        reason,
        at: now,
        payload,
    };
    let data = serde_json::to_string(&letter).map_err(|source| DeliveryError::Encode {
        pk: PK_DEAD_LETTER.to_string(),
        sk: sk.clone(),
        source,
    })?;
    Ok(store
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
        .await?)
}

/// Moves a whole outbox item to the dead letters (`<sk>#item`, with `why`)
/// and removes it: it can never be delivered.
async fn drop_item(
    store: &dyn StateStore,
    item: &Item,
    why: String,
    now: Epoch,
) -> Result<(), DeliveryError> {
    dead_letter(
        store,
        format!("{}#item", item.sk),
        why,
        item.data.clone(),
        now,
    )
    .await?;
    remove(store, item).await?;
    Ok(())
}

/// `rec` (the first item a group leaves in the outbox, so its oldest) if it
/// is older than the oldest kept so far.
fn keep_oldest(oldest: &mut Option<OutboxRecord>, rec: OutboxRecord) {
    if oldest
        .as_ref()
        .is_none_or(|o| rec.notification.at < o.notification.at)
    {
        *oldest = Some(rec);
    }
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
            .entry(group_of_outbox_sk(&item.sk).to_string())
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
                    drop_item(store, item, format!("unreadable outbox item: {e}"), now).await?;
                    report.dead_lettered += 1;
                    done += 1;
                    continue;
                }
            };
            let seq = rec.notification.seq;
            if seq > committed_seq {
                report.uncommitted += 1;
                keep_oldest(&mut report.oldest_remaining, rec);
                break;
            }
            let Some(receiver) = cfg.receivers.get(&rec.notification.receiver) else {
                let why = format!(
                    "receiver {:?} is no longer configured",
                    rec.notification.receiver
                );
                drop_item(store, item, why, now).await?;
                report.dead_lettered += 1;
                done += 1;
                continue;
            };
            let msgs = match render(receiver, &rec.notification) {
                Ok(rendered) => {
                    report
                        .template_failures
                        .extend(rendered.template_failures.into_iter().map(|what| {
                            TemplateFailure {
                                group_key: rec.notification.group_key.clone(),
                                seq,
                                receiver: receiver.name.clone(),
                                what,
                            }
                        }));
                    stamp(rendered.messages, &rec)
                }
                Err(error) => {
                    drop_item(store, item, error.to_string(), now).await?;
                    report.dead_lettered += 1;
                    report.render_failures.push(RenderFailure {
                        group_key: rec.notification.group_key.clone(),
                        seq,
                        receiver: receiver.name.clone(),
                        error,
                    });
                    done += 1;
                    continue;
                }
            };
            let mut published = rec.published;
            let mut failure = None;
            let mut sent = Vec::new();
            for (i, m) in msgs.iter().enumerate().skip(rec.published) {
                match notifier.publish(m).await {
                    Ok(()) => {
                        report.messages_published += 1;
                        sent.push(m.clone());
                        published = i + 1;
                    }
                    Err(e) if e.is_retryable() => {
                        failure = Some(e);
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
            if !sent.is_empty() {
                report.delivered.push(Delivered {
                    notification: rec.notification.clone(),
                    messages: sent,
                });
            }
            if let Some(error) = failure {
                rec.published = published;
                rec.attempts += 1;
                rec.last_error = Some(error.to_string());
                report.errors.push(PublishFailure {
                    group_key: group.clone(),
                    seq,
                    error,
                });
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
                keep_oldest(&mut report.oldest_remaining, rec);
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
