//! The dispatcher: silences, inhibition, routing, grouping and the
//! notification log, with every piece of state in the [`StateStore`] so a
//! restart, a cold start or another instance carries on where the last
//! call stopped.
//!
//! # One cycle
//!
//! [`dispatch`] gets the evaluator's snapshot: every firing alert plus the
//! alerts that resolved recently. It
//!
//! 1. marks firing alerts that are inhibited, and alerts muted by an active
//!    silence (resolved alerts pass through silences when
//!    `silences.resolved_pass_through` is set);
//! 2. routes every alert and puts it in a group per (route, values of the
//!    route's `group_by` labels): the group key;
//! 3. reads every group log (pk `group`, sk = group key) and decides
//!    for each group, Alertmanager style, at `now`:
//!    * a new group sends its first notification `group_wait` after its
//!      first visible firing alert;
//!    * afterwards, when the content changed (a firing alert not yet told,
//!      a resolved alert to tell when the receiver has `send_resolved`, or a
//!      note), at most every `group_interval` after the last notification;
//!    * unchanged and still firing: again every `repeat_interval`;
//!    * everything resolved and told: the group closes (its log is kept
//!      with a TTL so sequence numbers never repeat).
//!
//!    A due notification is held back while a `mute_time_intervals` entry
//!    holds, or while no `active_time_intervals` entry does; nothing is lost,
//!    it goes out at the first cycle when sending is allowed.
//!
//!    A notified alert that vanished from the snapshot counts as resolved.
//!    An alert inhibited until it resolved together with its inhibitors is
//!    listed among the resolved alerts when its group tells anything, as
//!    Alertmanager lists it (`docs/routing.md`, "Inhibition").
//!    A firing alert that a silence muted is remembered in its group's log;
//!    when the silence ends while the alert still fires, the group's next
//!    notification carries the note "Silence `<id>` by `<who>` ended; N
//!    alerts still firing", even when nothing else changed.
//!
//! # The outbox
//!
//! A decision becomes a [`GroupNotification`] with `seq` = the group's
//! notification count + 1, written to the outbox *before* the group log is
//! advanced; a conflict on either write re-reads and re-decides (at most
//! [`MAX_ATTEMPTS`] times per group). Why this loses and duplicates nothing
//! is told once, in `ARCHITECTURE.md`, section "Delivery: no lost, no
//! duplicate"; the keys and records are in `crate::store`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use firebell_core::alert::{Alert, AlertStatus};
use firebell_core::model::Labels;
use firebell_core::ports::{Expect, Item, Key, StateStore, StoreError};
use firebell_core::series::Epoch;

use crate::inhibit::{inhibited, resolved_with_inhibitors};
use crate::render::MAX_LISTED;
use crate::routing::{RouteMatch, route};
use crate::silence::{Silence, load_lenient, silenced_by};
use crate::store::{
    CLOSED_GROUP_TTL, GROUP_LOG_MAX_BYTES, GroupLog, GroupTiming, OUTBOX_MAX_BYTES, OUTBOX_TTL,
    OutboxRecord, PK_GROUP, PK_OUTBOX, SilenceRef, Squeeze, group_key, is_stub, outbox_sk,
};
use crate::types::{GroupNotification, NotifyConfig, secs};

/// Re-read and re-decide a group at most this often per call.
const MAX_ATTEMPTS: usize = 5;

/// What a group log remembers of its route's timing.
fn group_timing(m: &RouteMatch) -> GroupTiming {
    GroupTiming {
        timing: m.timing,
        mute_time_intervals: m.mute_time_intervals.clone(),
        active_time_intervals: m.active_time_intervals.clone(),
    }
}

/// What one [`dispatch`] call did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DispatchReport {
    /// Alerts in the snapshot.
    pub alerts: usize,
    /// Alerts muted by a silence.
    pub silenced: usize,
    /// Firing alerts inhibited by another alert.
    pub inhibited: usize,
    /// Groups looked at (with alerts, or open in the store).
    pub groups: usize,
    /// How many notifications this call wrote to the outbox.
    pub enqueued: usize,
    /// Those notifications.
    pub notifications: Vec<GroupNotification>,
    /// Decisions found already in the outbox (a crashed or concurrent
    /// dispatch wrote them); adopted, not written again.
    pub already_enqueued: usize,
    /// Due notifications held back by mute/active time intervals.
    pub deferred: usize,
    /// Conditional writes that lost to another writer (then re-decided).
    pub conflicts: usize,
    /// Unreadable silence items, ignored.
    pub corrupt_silences: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored item could not be read (or a record not encoded); retrying
    /// will not help.
    #[error("corrupt item {pk}/{sk}: {source}")]
    Corrupt {
        pk: String,
        sk: String,
        source: serde_json::Error,
    },
    /// Not even the smallest outbox record of a notification (one alert,
    /// without annotations) fits in a store item: its labels are too
    /// large. Retrying will not help.
    #[error(
        "outbox item {sk}: the notification does not fit in a store item even listing one alert"
    )]
    TooLarge { sk: String },
    /// Other writers kept changing the group; retry at the next cycle.
    #[error("group {0}: gave up after {MAX_ATTEMPTS} conflicting writes")]
    Contention(String),
    /// Some groups failed; the others were dispatched (see `report`).
    #[error("{} group(s) failed: {}", .failures.len(), describe_failures(.failures))]
    Partial {
        report: Box<DispatchReport>,
        failures: Vec<(String, DispatchError)>,
    },
}

fn describe_failures(f: &[(String, DispatchError)]) -> String {
    let parts: Vec<String> = f.iter().map(|(k, e)| format!("{k}: {e}")).collect();
    parts.join("; ")
}

impl DispatchError {
    /// Whether the next cycle may succeed where this one failed.
    pub fn is_retryable(&self) -> bool {
        match self {
            DispatchError::Store(e) => e.is_retryable() || e.is_conflict(),
            DispatchError::Corrupt { .. } | DispatchError::TooLarge { .. } => false,
            DispatchError::Contention(_) => true,
            DispatchError::Partial { failures, .. } => {
                failures.iter().all(|(_, e)| e.is_retryable())
            }
        }
    }
}

/// Why a member of a group is not shown.
#[derive(Debug, Clone)]
enum Mute {
    Silenced(SilenceRef),
    Inhibited,
}

#[derive(Debug)]
struct Member<'a> {
    alert: &'a Alert,
    mute: Option<Mute>,
    /// Resolved, inhibited until then, and its inhibitors resolved with it
    /// (`inhibit::resolved_with_inhibitors`).
    resolved_with_inhibitors: bool,
}

impl Member<'_> {
    fn firing(&self) -> bool {
        self.alert.status == AlertStatus::Firing
    }
    fn visible_firing(&self) -> bool {
        self.firing() && self.mute.is_none()
    }
}

#[derive(Debug)]
struct GroupInput<'a> {
    route: RouteMatch,
    labels: Labels,
    members: BTreeMap<String, Member<'a>>,
}

#[derive(Debug)]
struct Ctx<'a> {
    cfg: &'a NotifyConfig,
    now: Epoch,
    silences: &'a [Silence],
    snapshot: BTreeSet<&'a str>,
}

#[derive(Debug)]
struct Decision {
    log: GroupLog,
    notification: Option<GroupNotification>,
    deferred: bool,
}

fn slim(a: &Alert) -> Alert {
    Alert {
        recent: Vec::new(),
        ..a.clone()
    }
}

fn time_muted(cfg: &NotifyConfig, t: &GroupTiming, now: Epoch) -> bool {
    let holds = |name: &String| {
        cfg.time_intervals
            .get(name)
            .is_some_and(|i| i.contains(now))
    };
    t.mute_time_intervals.iter().any(holds)
        || (!t.active_time_intervals.is_empty() && !t.active_time_intervals.iter().any(holds))
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Updates the log as if `n` was sent.
fn apply(log: &mut GroupLog, n: &GroupNotification) {
    log.seq = log.seq.max(n.seq);
    log.last_notified = Some(n.at);
    for a in &n.resolved {
        log.notified.remove(&a.fingerprint);
        log.resolved_told.insert(a.fingerprint.clone(), a.fired_at);
    }
    for a in &n.firing {
        log.notified.insert(a.fingerprint.clone(), slim(a));
    }
    log.notes.retain(|x| !n.notes.contains(x));
}

/// The pure decision for one group at `ctx.now`.
fn decide(
    ctx: &Ctx<'_>,
    key: &str,
    input: Option<&GroupInput<'_>>,
    old: Option<GroupLog>,
) -> Option<Decision> {
    let now = ctx.now;
    let mut log = match (old, input) {
        (Some(l), _) => l,
        (None, Some(i)) => GroupLog {
            group_key: key.to_string(),
            receiver: i.route.receiver.clone(),
            route_path: i.route.path.clone(),
            group_labels: i.labels.clone(),
            timing: group_timing(&i.route),
            seq: 0,
            open_since: None,
            last_notified: None,
            notified: BTreeMap::new(),
            silenced: BTreeMap::new(),
            notes: Vec::new(),
            resolved_told: BTreeMap::new(),
            muted_seen: BTreeMap::new(),
            notified_refs: String::new(),
            resolved_told_refs: String::new(),
            muted_seen_refs: String::new(),
        },
        (None, None) => return None,
    };
    if let Some(i) = input {
        log.route_path.clone_from(&i.route.path);
        log.group_labels.clone_from(&i.labels);
        log.timing = group_timing(&i.route);
    }
    // Times later than now (a cycle once ran at a future tick, or the clock
    // went back) would hold every notification of the group until then.
    if log.last_notified.is_some_and(|t| t > now) {
        log.last_notified = Some(now);
    }
    if log.open_since.is_some_and(|t| t > now) {
        log.open_since = Some(now);
    }
    let empty = BTreeMap::new();
    let members = input.map(|i| &i.members).unwrap_or(&empty);
    let Some(receiver) = ctx.cfg.receivers.get(&log.receiver) else {
        // The receiver is gone from the config: forget the group.
        log.notified.clear();
        log.silenced.clear();
        log.notes.clear();
        log.open_since = None;
        log.last_notified = None;
        return Some(Decision {
            log,
            notification: None,
            deferred: false,
        });
    };

    // 1. Silences that ended while their alerts still fire.
    let now_silenced: BTreeMap<String, SilenceRef> = members
        .iter()
        .filter_map(|(fp, m)| match &m.mute {
            Some(Mute::Silenced(s)) if m.firing() => Some((fp.clone(), s.clone())),
            _ => None,
        })
        .collect();
    let mut ended: BTreeMap<&str, (&str, usize)> = BTreeMap::new();
    for (fp, s) in &log.silenced {
        if now_silenced.contains_key(fp) {
            continue;
        }
        if members.get(fp).is_some_and(Member::visible_firing) {
            ended.entry(&s.id).or_insert((&s.created_by, 0)).1 += 1;
        }
    }
    let new_notes: Vec<String> = ended
        .iter()
        .map(|(id, (by, n))| {
            format!(
                "Silence {id} by {by} ended; {} still firing",
                plural(*n, "alert")
            )
        })
        .collect();
    log.notes.extend(new_notes);
    log.silenced = now_silenced;

    // 2. Notified alerts that resolved (or vanished from the snapshot).
    let send_resolved = receiver.send_resolved;
    let pass = ctx.cfg.silence_policy.resolved_pass_through;
    let mut to_tell: Vec<Alert> = Vec::new();
    let fps: Vec<String> = log.notified.keys().cloned().collect();
    for fp in fps {
        match members.get(&fp) {
            Some(m) if m.firing() => {}
            Some(m) => {
                if m.mute.is_some() || !send_resolved {
                    // Not to be told, on purpose: not a missed fire either.
                    log.notified.remove(&fp);
                    log.resolved_told.insert(fp.clone(), m.alert.fired_at);
                } else {
                    // Remember the resolution once (not every cycle).
                    if log
                        .notified
                        .get(&fp)
                        .is_some_and(|a| a.status == AlertStatus::Firing)
                    {
                        log.notified.insert(fp.clone(), slim(m.alert));
                    }
                    to_tell.push(m.alert.clone());
                }
            }
            None if ctx.snapshot.contains(fp.as_str()) => {
                // Still around, but routed elsewhere now (config change).
                log.notified.remove(&fp);
            }
            None => {
                let Some(stored) = log.notified.get_mut(&fp) else {
                    continue;
                };
                if stored.status == AlertStatus::Firing {
                    stored.status = AlertStatus::Resolved;
                    stored.resolved_at = Some(now);
                }
                let muted = !pass && silenced_by(ctx.silences, &stored.labels, now).is_some();
                // A big group remembers some alerts by fingerprint only
                // (`is_stub`): one that vanished cannot be told.
                if muted || !send_resolved || is_stub(stored) {
                    let fired_at = stored.fired_at;
                    log.notified.remove(&fp);
                    log.resolved_told.insert(fp.clone(), fired_at);
                } else {
                    to_tell.push(stored.clone());
                }
            }
        }
    }

    // 2b. Alerts that fired and resolved before anyone was told: a page
    // must not be lost because it was short or arrived late.
    log.resolved_told.retain(|fp, _| members.contains_key(fp));
    log.muted_seen.retain(|fp, _| members.contains_key(fp));
    let mut missed_notes = Vec::new();
    // Muted until they resolved, never told: their inhibitors resolved with
    // them, or not.
    let mut muted_resolved: Vec<&Member<'_>> = Vec::new();
    for (fp, m) in members {
        let a = m.alert;
        if m.firing() && m.mute.is_some() {
            log.muted_seen.insert(fp.clone(), a.fired_at);
        }
        let untold_resolution = !m.firing()
            && m.mute.is_none()
            && a.resolved_at.is_some()
            && !log.notified.contains_key(fp)
            && log.resolved_told.get(fp) != Some(&a.fired_at);
        if untold_resolution && log.muted_seen.get(fp) == Some(&a.fired_at) {
            muted_resolved.push(m);
        } else if untold_resolution {
            let when = |t: Epoch| {
                jiff::Timestamp::from_second(t)
                    .map(|ts| ts.strftime("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_else(|_| t.to_string())
            };
            missed_notes.push(format!(
                "{} fired at {} and resolved at {} before a notification could go out",
                a.name(),
                when(a.fired_at),
                when(a.resolved_at.unwrap_or(a.fired_at))
            ));
            to_tell.push(a.clone());
        }
    }

    // 2c. Alerts inhibited until they resolved together with their
    // inhibitors are listed with them, as Alertmanager lists them: in the
    // group's resolved notice, when the group tells anything (it did in
    // this episode, or it does now). Decided once, at the first cycle that
    // sees them resolved; every other muted alert's resolution is never told.
    let group_tells = log.last_notified.is_some()
        || !to_tell.is_empty()
        || members.values().any(Member::visible_firing);
    for m in muted_resolved {
        let a = m.alert;
        let tell = m.resolved_with_inhibitors
            && group_tells
            && send_resolved
            && silenced_by(ctx.silences, &a.labels, now).is_none();
        if tell {
            // Told like a notified alert that resolved (step 2 from now on).
            log.notified.insert(a.fingerprint.clone(), slim(a));
            to_tell.push(a.clone());
        } else {
            log.resolved_told.insert(a.fingerprint.clone(), a.fired_at);
        }
    }

    // 3. What fires now, and when the next notification is due.
    let mut firing: Vec<&Alert> = members
        .values()
        .filter(|m| m.visible_firing())
        .map(|m| m.alert)
        .collect();
    firing.sort_by(|a, b| a.labels.cmp(&b.labels));
    to_tell.sort_by(|a, b| a.labels.cmp(&b.labels));
    if firing.is_empty() {
        // Notes only say what still fires.
        log.notes.clear();
    } else if log.open_since.is_none() {
        log.open_since = Some(now);
    }
    log.notes.extend(missed_notes);
    let new_firing = firing
        .iter()
        .any(|a| !log.notified.contains_key(&a.fingerprint));
    let changed = new_firing || !to_tell.is_empty() || !log.notes.is_empty();
    let t = &log.timing;
    let due = match log.last_notified {
        // Only missed fires to tell: no reason to wait.
        None if firing.is_empty() => (!to_tell.is_empty()).then_some(now),
        None => log
            .open_since
            .map(|s| s.saturating_add(secs(t.timing.group_wait))),
        Some(last) if changed => Some(last.saturating_add(secs(t.timing.group_interval))),
        Some(last) if !firing.is_empty() => {
            Some(last.saturating_add(secs(t.timing.repeat_interval)))
        }
        Some(_) => None,
    };
    let mut notification = None;
    let mut deferred = false;
    if due.is_some_and(|d| now >= d) {
        if time_muted(ctx.cfg, t, now) {
            deferred = true;
        } else {
            notification = Some(GroupNotification {
                receiver: log.receiver.clone(),
                group_key: log.group_key.clone(),
                group_labels: log.group_labels.clone(),
                status: if firing.is_empty() {
                    AlertStatus::Resolved
                } else {
                    AlertStatus::Firing
                },
                firing: firing.iter().map(|a| (*a).clone()).collect(),
                resolved: to_tell,
                more_firing: 0,
                more_resolved: 0,
                notes: log.notes.clone(),
                seq: log.seq + 1,
                at: now,
                update: log.last_notified.is_some(),
            });
        }
    }
    if firing.is_empty() && log.last_notified.is_none() {
        // Nothing was told in this episode and nothing is to tell.
        log.open_since = None;
    }
    Some(Decision {
        log,
        notification,
        deferred,
    })
}

/// Closes the log when nothing is left to tell or track.
fn settle(log: &mut GroupLog, has_firing: bool) -> bool {
    if !has_firing && log.notified.is_empty() && log.silenced.is_empty() && log.notes.is_empty() {
        log.open_since = None;
        log.last_notified = None;
        true
    } else {
        false
    }
}

fn corrupt(item: &Item, source: serde_json::Error) -> DispatchError {
    DispatchError::Corrupt {
        pk: item.pk.clone(),
        sk: item.sk.clone(),
        source,
    }
}

fn to_json<T: Serialize>(v: &T, pk: &str, sk: &str) -> Result<String, DispatchError> {
    serde_json::to_string(v).map_err(|source| DispatchError::Corrupt {
        pk: pk.to_string(),
        sk: sk.to_string(),
        source,
    })
}

/// Runs one dispatch cycle at `now` over the evaluator's snapshot `alerts`.
/// See the module documentation. Groups fail independently: when some fail,
/// the others are still dispatched and the error is
/// [`DispatchError::Partial`], carrying the report.
pub async fn dispatch(
    cfg: &NotifyConfig,
    store: &dyn StateStore,
    now: Epoch,
    alerts: &[Alert],
) -> Result<DispatchReport, DispatchError> {
    let mut report = DispatchReport {
        alerts: alerts.len(),
        ..DispatchReport::default()
    };
    if cfg.route.receiver.is_empty() {
        return Ok(report);
    }
    let (silences, bad) = load_lenient(store).await?;
    report.corrupt_silences = bad;
    let pass = cfg.silence_policy.resolved_pass_through;
    let inhibited = inhibited(&cfg.inhibit_rules, alerts);
    let with_inhibitors = resolved_with_inhibitors(&cfg.inhibit_rules, alerts);

    let mut groups: BTreeMap<String, GroupInput<'_>> = BTreeMap::new();
    for a in alerts {
        let firing = a.status == AlertStatus::Firing;
        let mute = if firing && inhibited.contains(&a.fingerprint) {
            report.inhibited += 1;
            Some(Mute::Inhibited)
        } else if firing || !pass {
            silenced_by(&silences, &a.labels, now).map(|s| {
                report.silenced += 1;
                Mute::Silenced(SilenceRef {
                    id: s.id.clone(),
                    created_by: s.created_by.clone(),
                })
            })
        } else {
            None
        };
        for m in route(cfg, &a.labels) {
            let labels = m.group_by.group_labels(&a.labels);
            let key = group_key(&m.receiver, &m.path, &labels);
            let g = groups.entry(key).or_insert_with(|| GroupInput {
                route: m,
                labels,
                members: BTreeMap::new(),
            });
            g.members.insert(
                a.fingerprint.clone(),
                Member {
                    alert: a,
                    mute: mute.clone(),
                    resolved_with_inhibitors: with_inhibitors.contains(&a.fingerprint),
                },
            );
        }
    }

    let mut logs: BTreeMap<String, Item> = store
        .query(PK_GROUP, "")
        .await?
        .into_iter()
        .map(|i| (i.sk.clone(), i))
        .collect();
    let keys: BTreeSet<String> = groups.keys().chain(logs.keys()).cloned().collect();
    let ctx = Ctx {
        cfg,
        now,
        silences: &silences,
        snapshot: alerts.iter().map(|a| a.fingerprint.as_str()).collect(),
    };
    let mut failures = Vec::new();
    for key in keys {
        let input = groups.get(&key);
        let current = logs.remove(&key);
        if input.is_none()
            && let Some(item) = &current
            && serde_json::from_str::<GroupLog>(&item.data).is_ok_and(|l| l.is_idle())
        {
            continue;
        }
        report.groups += 1;
        if let Err(e) = process_group(&ctx, store, &key, input, current, &mut report).await {
            failures.push((key, e));
        }
    }
    if failures.is_empty() {
        Ok(report)
    } else {
        Err(DispatchError::Partial {
            report: Box::new(report),
            failures,
        })
    }
}

async fn process_group(
    ctx: &Ctx<'_>,
    store: &dyn StateStore,
    key: &str,
    input: Option<&GroupInput<'_>>,
    mut current: Option<Item>,
    report: &mut DispatchReport,
) -> Result<(), DispatchError> {
    let now = ctx.now;
    let log_key = Key::new(PK_GROUP, key);
    for _ in 0..MAX_ATTEMPTS {
        let old = match &current {
            Some(item) => Some(
                serde_json::from_str::<GroupLog>(&item.data)
                    .map_err(|e| corrupt(item, e))?
                    .unpack(),
            ),
            None => None,
        };
        let Some(decision) = decide(ctx, key, input, old) else {
            return Ok(());
        };
        let has_firing = decision
            .notification
            .as_ref()
            .is_some_and(|n| !n.firing.is_empty())
            || input.is_some_and(|i| i.members.values().any(Member::visible_firing));
        let mut log = decision.log;
        if let Some(n) = decision.notification {
            let sk = outbox_sk(key, n.seq);
            match enqueue(store, &n, &sk, now).await {
                Ok(record) => {
                    apply(&mut log, &n);
                    report.enqueued += 1;
                    report.notifications.push(record.notification);
                }
                Err(DispatchError::Store(e)) if e.is_conflict() => {
                    match store.get(&Key::new(PK_OUTBOX, sk)).await? {
                        Some(stored) => {
                            let stored_rec: OutboxRecord = serde_json::from_str(&stored.data)
                                .map_err(|e| corrupt(&stored, e))?;
                            let told = &stored_rec.notification;
                            apply(&mut log, told);
                            if told.more_firing > 0 {
                                // Counted, not listed: told as well.
                                for a in &n.firing {
                                    log.notified
                                        .entry(a.fingerprint.clone())
                                        .or_insert_with(|| slim(a));
                                }
                            }
                            report.already_enqueued += 1;
                        }
                        None => {
                            // Delivered and deleted meanwhile: the log moved on.
                            report.conflicts += 1;
                            current = store.get(&log_key).await?;
                            continue;
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        } else if decision.deferred {
            report.deferred += 1;
        }
        let closed = settle(&mut log, has_firing);
        if current.is_none() && closed && log.seq == 0 && log.muted_seen.is_empty() {
            // Nothing ever happened in this group: no need to remember it.
            // (A group of muted alerts remembers them, so that their
            // resolution is not taken for a fire nobody was told about.)
            return Ok(());
        }
        let mut squeeze = Squeeze::Normal;
        let mut data = to_json(&log.pack(squeeze), PK_GROUP, key)?;
        while data.len() > GROUP_LOG_MAX_BYTES && squeeze < Squeeze::Forget {
            squeeze = harder(squeeze);
            data = to_json(&log.pack(squeeze), PK_GROUP, key)?;
        }
        if current.as_ref().is_some_and(|c| c.data == data) {
            return Ok(());
        }
        let (version, expect) = match &current {
            Some(c) => (c.version + 1, Expect::Version(c.version)),
            None => (1, Expect::Absent),
        };
        let mut item = Item {
            pk: PK_GROUP.to_string(),
            sk: key.to_string(),
            version,
            data,
            expires_at: closed.then(|| now.saturating_add(CLOSED_GROUP_TTL)),
        };
        let written = loop {
            match store.put(item.clone(), expect).await {
                // The store counts differently: squeeze harder.
                Err(e) if e.is_too_large() && squeeze < Squeeze::Forget => {
                    squeeze = harder(squeeze);
                    item.data = to_json(&log.pack(squeeze), PK_GROUP, key)?;
                }
                other => break other,
            }
        };
        match written {
            Ok(()) => return Ok(()),
            Err(e) if e.is_conflict() => {
                report.conflicts += 1;
                current = store.get(&log_key).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(DispatchError::Contention(key.to_string()))
}

fn harder(s: Squeeze) -> Squeeze {
    match s {
        Squeeze::Normal => Squeeze::RefsOnly,
        Squeeze::RefsOnly | Squeeze::Forget => Squeeze::Forget,
    }
}

/// The ways an outbox record is made smaller, in order: all listed alerts
/// with their recent datapoints; without them; then half as many listed
/// alerts each time (the rest counted, "… and N more"); last, one alert
/// without annotations or metrics.
fn shrunk(n: &GroupNotification, step: usize) -> Option<GroupNotification> {
    let mut out = n.clone();
    out.cap_listed(MAX_LISTED);
    let strip = |out: &mut GroupNotification| {
        for a in out.firing.iter_mut().chain(out.resolved.iter_mut()) {
            a.recent = Vec::new();
        }
    };
    match step {
        0 => {}
        1 => strip(&mut out),
        _ => {
            strip(&mut out);
            let halvings = u32::try_from(step - 1).unwrap_or(u32::MAX);
            let listed = MAX_LISTED.checked_shr(halvings).unwrap_or(0);
            if listed == 0 {
                if step > 2 + MAX_LISTED.ilog2() as usize {
                    return None;
                }
                out.cap_listed(1);
                for a in out.firing.iter_mut().chain(out.resolved.iter_mut()) {
                    a.annotations.clear();
                    a.metrics.clear();
                }
            } else {
                out.cap_listed(listed);
            }
        }
    }
    Some(out)
}

/// Writes the outbox record of `n` (`Expect::Absent`), as large as the store
/// takes: at most [`MAX_LISTED`] alerts and [`OUTBOX_MAX_BYTES`], smaller
/// when the store says it is too large (see [`shrunk`]). Returns the record
/// written.
async fn enqueue(
    store: &dyn StateStore,
    n: &GroupNotification,
    sk: &str,
    now: Epoch,
) -> Result<OutboxRecord, DispatchError> {
    let mut step = 0;
    let mut last_error = None;
    while let Some(candidate) = shrunk(n, step) {
        step += 1;
        let record = OutboxRecord::new(candidate);
        let data = to_json(&record, PK_OUTBOX, sk)?;
        if data.len() > OUTBOX_MAX_BYTES {
            continue;
        }
        let item = Item {
            pk: PK_OUTBOX.to_string(),
            sk: sk.to_string(),
            version: 1,
            data,
            expires_at: Some(now.saturating_add(OUTBOX_TTL)),
        };
        match store.put(item, Expect::Absent).await {
            Ok(()) => return Ok(record),
            Err(e) if e.is_too_large() => last_error = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(match last_error {
        Some(e) => e.into(),
        None => DispatchError::TooLarge { sk: sk.to_string() },
    })
}

/// The group logs in the store (for `firebell status`-like commands).
pub async fn group_logs(store: &dyn StateStore) -> Result<Vec<GroupLog>, DispatchError> {
    let items = store.query(PK_GROUP, "").await?;
    items
        .iter()
        .map(|i| {
            serde_json::from_str::<GroupLog>(&i.data)
                .map(GroupLog::unpack)
                .map_err(|e| corrupt(i, e))
        })
        .collect()
}
