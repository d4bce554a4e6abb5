//! What `firebell status` shows, read from the store: the cycles that wrote
//! (from the history; a quiet cycle writes nothing, so it is not there),
//! the last recorded tick, the lease, the outbox backlog per receiver,
//! silences, failing self-monitoring checks and the config version the
//! cycles ran, with a verdict: healthy, or degraded and why.
//!
//! Liveness (is the scheduler still invoking the function?) cannot be read
//! from the store, precisely because quiet cycles write nothing: that is
//! the watchdog alarm's job (the heartbeat metric; `infra/template.yaml`).

use std::collections::BTreeMap;

use firebell_core::ports::StateStore;
use firebell_core::series::Epoch;
use firebell_notify::{SilenceState, SilenceView};

use crate::cycle::{failing_checks, read_cycle_partition};
use crate::history::{self, CycleRecord, HistoryEntry};
use crate::keys;
use crate::{EngineError, FailingCheck, Shard};

/// How far back the cycles are looked for.
pub const CYCLES_LOOKBACK_SECS: Epoch = 2 * 86_400;

/// An outbox item older than this makes the verdict degraded.
pub const OUTBOX_AGE_LIMIT_SECS: Epoch = 300;

/// Silences ending within this are listed as ending soon.
pub const ENDING_SOON_SECS: Epoch = 86_400;

/// The lease as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseView {
    pub owner: String,
    pub tick: Epoch,
    pub held: bool,
    pub expires_at: Option<Epoch>,
}

/// One receiver's undelivered notifications.
#[derive(Debug, Clone, PartialEq)]
pub struct Backlog {
    pub receiver: String,
    pub count: usize,
    /// When the oldest was decided.
    pub oldest: Epoch,
    /// Its failed delivery attempts and last error.
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// One shard of a sharded stack (the delivery stage records the shard
/// count with its tick): its own last tick, lease and failing checks.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardView {
    pub shard: Shard,
    /// Its last recorded tick (a shard records one only when it wrote).
    pub last_tick: Option<Epoch>,
    pub lease: Option<LeaseView>,
    pub failing: Vec<FailingCheck>,
}

/// Everything `firebell status` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub now: Epoch,
    /// The cycles that wrote, newest first (at most the `cycles` asked for).
    pub cycles: Vec<CycleRecord>,
    /// The last recorded tick (`cycle/last`).
    pub last_tick: Option<Epoch>,
    pub lease: Option<LeaseView>,
    /// Per receiver, oldest first.
    pub outbox: Vec<Backlog>,
    /// Active silences, and those of them ending within a day.
    pub silences: Vec<SilenceView>,
    pub failing: Vec<FailingCheck>,
    /// The shards, when the last delivery stage ran after shards.
    pub shards: Vec<ShardView>,
    /// What the last sentinel reconcile found (`None`: sentinels never
    /// kept): which sentinels are in sync and why the others are not.
    pub sentinels: Option<crate::sentinel::SyncRecord>,
    /// Why the verdict is degraded; empty when healthy.
    pub problems: Vec<String>,
}

impl Status {
    pub fn healthy(&self) -> bool {
        self.problems.is_empty()
    }

    /// The config version the latest cycle ran.
    pub fn config_version(&self) -> Option<&str> {
        self.cycles
            .first()
            .map(|c| c.config_version.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Active silences ending within [`ENDING_SOON_SECS`].
    pub fn ending_soon(&self) -> impl Iterator<Item = &SilenceView> {
        self.silences
            .iter()
            .filter(|v| v.silence.ends_at <= self.now + ENDING_SOON_SECS)
    }

    /// `healthy` or `degraded: <why>; <why>`.
    pub fn verdict(&self) -> String {
        if self.healthy() {
            "healthy".to_string()
        } else {
            format!("degraded: {}", self.problems.join("; "))
        }
    }
}

/// Reads the status as of `now`, with up to `cycles` recent cycles.
pub async fn read(
    store: &dyn StateStore,
    now: Epoch,
    cycles: usize,
) -> Result<Status, EngineError> {
    let mut records: Vec<CycleRecord> = history::read(store, now - CYCLES_LOOKBACK_SECS, now)
        .await?
        .into_iter()
        .filter_map(|e| match e {
            HistoryEntry::Cycle(c) => Some(c),
            _ => None,
        })
        .collect();
    records.reverse();
    records.truncate(cycles);

    let main = read_partition(store, keys::CYCLE).await?;
    let (last_tick, lease, failing) = (main.last_tick, main.lease, main.failing);
    let mut shards = Vec::new();
    if let Some(n) = main.shards.filter(|&n| n > 1) {
        for k in 1..=n {
            let Ok(shard) = Shard::new(k, n) else {
                break;
            };
            let p = read_partition(store, &shard.cycle_pk()).await?;
            shards.push(ShardView {
                shard,
                last_tick: p.last_tick,
                lease: p.lease,
                failing: p.failing,
            });
        }
    }

    let sentinels = crate::sentinel::read_sync(store).await?.map(|(r, _)| r);

    let mut by_receiver: BTreeMap<String, Backlog> = BTreeMap::new();
    let outbox = firebell_notify::pending(store).await?;
    for r in outbox {
        let n = &r.notification;
        let b = by_receiver
            .entry(n.receiver.clone())
            .or_insert_with(|| Backlog {
                receiver: n.receiver.clone(),
                count: 0,
                oldest: n.at,
                attempts: r.attempts,
                last_error: r.last_error.clone(),
            });
        b.count += 1;
        if n.at < b.oldest {
            b.oldest = n.at;
            b.attempts = r.attempts;
            b.last_error = r.last_error.clone();
        }
    }
    let mut outbox: Vec<Backlog> = by_receiver.into_values().collect();
    outbox.sort_by_key(|b| b.oldest);

    let silences: Vec<SilenceView> = match firebell_notify::list_silences(store, now).await {
        Ok(list) => list,
        Err(firebell_notify::SilenceError::Store(e)) => return Err(e.into()),
        Err(e) => {
            return Err(EngineError::Corrupt {
                pk: firebell_notify::PK_SILENCE.to_string(),
                sk: String::new(),
                reason: e.to_string(),
            });
        }
    }
    .into_iter()
    .filter(|v| v.state == SilenceState::Active)
    .collect();

    let mut problems = Vec::new();
    for b in &outbox {
        let age = now - b.oldest;
        if age > OUTBOX_AGE_LIMIT_SECS {
            problems.push(format!(
                "{} notification{} to {} undelivered for {}",
                b.count,
                if b.count == 1 { "" } else { "s" },
                b.receiver,
                span(age)
            ));
        }
    }
    for f in &failing {
        problems.push(format!(
            "self-monitoring check {} failing for {} cycle{}: {}",
            f.check,
            f.failures,
            if f.failures == 1 { "" } else { "s" },
            f.error
        ));
    }
    for v in &shards {
        for f in &v.failing {
            problems.push(format!(
                "{}: self-monitoring check {} failing for {} cycle{}: {}",
                v.shard,
                f.check,
                f.failures,
                if f.failures == 1 { "" } else { "s" },
                f.error
            ));
        }
        if let Some(why) = v.lease.as_ref().and_then(|l| unfinished(l, now)) {
            problems.push(format!("the lease of {}: {why}", v.shard));
        }
    }
    if let Some(c) = records.first()
        && !c.errors.is_empty()
    {
        problems.push(format!(
            "the last cycle that wrote ({}) reported {} error{}",
            firebell_core::text::rfc3339(c.tick),
            c.errors.len(),
            if c.errors.len() == 1 { "" } else { "s" }
        ));
    }
    if let Some(why) = lease.as_ref().and_then(|l| unfinished(l, now)) {
        problems.push(format!("the lease: {why}"));
    }
    Ok(Status {
        now,
        cycles: records,
        last_tick,
        lease,
        outbox,
        silences,
        failing,
        shards,
        sentinels,
        problems,
    })
}

/// A held lease older than this (two ticks; a run ends within a tick) is
/// a run that is stuck or died. (Once it expires the store no longer
/// returns it, and the next run takes it.)
pub const LEASE_STUCK_SECS: Epoch = 120;

/// Why a lease read at `now` tells of a run that did not finish, if so.
fn unfinished(l: &LeaseView, now: Epoch) -> Option<String> {
    if !l.held {
        return None;
    }
    let tick = firebell_core::text::rfc3339(l.tick);
    if l.expires_at.is_some_and(|e| e < now) {
        return Some(format!(
            "held by {} (tick {tick}) and expired: that run did not finish",
            l.owner
        ));
    }
    (now - l.tick > LEASE_STUCK_SECS).then(|| {
        format!(
            "held by {} for tick {tick}, {} ago: that run is stuck or did not finish",
            l.owner,
            span(now - l.tick)
        )
    })
}

/// What one cycle partition holds, as status shows it.
struct Partition {
    last_tick: Option<Epoch>,
    /// The shard count the delivery stage recorded.
    shards: Option<u32>,
    lease: Option<LeaseView>,
    failing: Vec<FailingCheck>,
}

async fn read_partition(store: &dyn StateStore, pk: &str) -> Result<Partition, EngineError> {
    let r = read_cycle_partition(store, pk).await?;
    Ok(Partition {
        last_tick: r.last,
        shards: r.shards,
        lease: r.lease.map(|(l, _, expires_at)| LeaseView {
            owner: l.owner,
            tick: l.tick,
            held: l.held,
            expires_at,
        }),
        failing: failing_checks(&r.selfwatch),
    })
}

fn span(secs: Epoch) -> String {
    firebell_core::decode::format_duration(std::time::Duration::from_secs(secs.max(0) as u64))
}
