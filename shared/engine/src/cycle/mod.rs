//! One evaluation cycle, in stages:
//!
//! ```text
//! tick T ──> read the `cycle` partition: duplicate tick? lease held? ──> skip
//!        ──> plan     due rules, instances (wildcards expanded), distinct queries  (plan.rs)
//!        ──> fetch    every query once, grouped by start                           (fetch.rs)
//!        ──> judge    per instance, pure: expression, guard, state machine         (crate::judge)
//!        ──> persist  `active` records, then the state (Version)                   (persist.rs)
//!        ──> decide   `active` snapshot, orphans, dispatch into the outbox         (decide.rs)
//!        ──> deliver  publish the outbox in order, then delete                     (decide.rs)
//!        ──> if it wrote: cycle/last = T, release the lease                        (lease.rs)
//! ```
//!
//! Nothing is written for an instance whose durable state did not change,
//! and the lease is taken lazily by the first write or publish, so **a
//! quiet cycle writes nothing**. Every decision is re-derivable from the
//! data and the store, so a crash anywhere is repaired by the next cycle.
//! The whole mechanism, with its trade-offs, is described once in
//! ARCHITECTURE.md, "Delivery: no lost, no duplicate".

mod decide;
mod fetch;
mod lease;
mod migrate;
mod persist;
mod plan;
mod selfwatch;
mod stage;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use firebell_core::alert::fingerprint;
use firebell_core::model::{Labels, Rule};
use firebell_core::ports::{Expect, Item, Key, MetricsSource, Notifier, StateStore, StoreError};
use firebell_core::series::Epoch;
use firebell_core::state::{Event, InstanceState};
use futures_util::future::{BoxFuture, FutureExt};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{CycleError, EngineError};
use crate::judge::{self, JudgeInput, Judgement};
use crate::keys::{self, LastTick, Lease, StoredState};
use lease::{Guarded, LeaseState};
use persist::Judged;
pub use plan::{Instance, rule_labels};
pub(crate) use selfwatch::failing_checks;
pub use selfwatch::{
    CHECK_LABEL, FailingCheck, SECTION as SELF_MONITORING_SECTION, SELF_ALERTNAME, SHARD_LABEL,
    SelfMonitoring,
};
pub use stage::{Shard, Stage};

/// Judged instances with changes are written this many at a time.
const WRITE_CHUNK: usize = 1024;

/// State partitions read at once.
const STATE_READS: usize = 16;

/// One state partition, eventually consistent unless `consistent` (see
/// `Engine::load_states`).
async fn read_partition(
    store: &dyn StateStore,
    pk: String,
    consistent: bool,
) -> Result<Vec<Item>, StoreError> {
    if consistent {
        store.query(&pk, "").await
    } else {
        store.query_eventually(&pk, "").await
    }
}

/// Tunables of the engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Who runs the cycle (for the lease): a process or invocation id.
    pub owner: String,
    /// How long a lease is held at most, in seconds.
    pub lease_secs: i64,
    /// How long a resolved alert stays in the snapshot, in seconds.
    pub resolved_retention_secs: i64,
    /// Trailing buckets with no data at all are taken as "not arrived yet"
    /// (not as missing) for this many periods.
    pub arrival_grace_periods: i64,
    /// Keep every judged instance's view in [`CycleReport::views`] (for
    /// tools that show the current alerts; off in the Lambda).
    pub record_views: bool,
    /// With `record_views`, also keep in each view the datapoints the judge
    /// stepped through ([`InstanceView::points`], for the HTML report's
    /// charts; a quiet instance re-steps its lookback every cycle, so this
    /// costs an allocation per instance and cycle).
    pub record_points: bool,
    /// The names of this deployment's sentinel alarms start with it (the
    /// stack's; its role may touch no other alarm).
    pub sentinel_prefix: String,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            owner: "firebell".to_string(),
            lease_secs: 300,
            resolved_retention_secs: 6 * 3600,
            arrival_grace_periods: 2,
            record_views: false,
            record_points: false,
            sentinel_prefix: firebell_core::sentinel::DEFAULT_PREFIX.to_string(),
        }
    }
}

/// Why a cycle did nothing.
///
/// Displays as one line for people: `duplicate tick (already evaluated)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    /// The tick was already completed (a duplicate delivery).
    Duplicate,
    /// Another cycle holds the lease, or wrote since this one started (this
    /// one then wrote and published nothing).
    Overlap,
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Skip::Duplicate => "duplicate tick (already evaluated)",
            Skip::Overlap => "overlap (another cycle holds the lease or wrote first)",
        })
    }
}

/// One state change, for timelines and logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub rule: String,
    pub labels: Labels,
    pub event: Event,
}

/// One judged instance as the cycle left it (see [`EngineOptions::record_views`]).
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceView {
    pub rule: String,
    pub labels: Labels,
    pub state: InstanceState,
    /// The latest judged value.
    pub value: Option<f64>,
    /// The events of this cycle.
    pub events: Vec<Event>,
    /// The datapoints the judge stepped through this cycle, in order, with
    /// the guard's verdict (a quiet instance's are stepped again by the
    /// next cycle: its state is re-derived, not stored); empty unless
    /// [`EngineOptions::record_points`].
    pub points: Vec<firebell_core::state::Observation>,
}

/// What a cycle did.
#[derive(Debug, Default, Serialize)]
pub struct CycleReport {
    pub tick: Epoch,
    pub skipped: Option<Skip>,
    pub rules_evaluated: usize,
    pub instances_evaluated: usize,
    /// Instances not judged because a source said its data was partial.
    pub instances_partial: usize,
    pub queries: usize,
    pub transitions: Vec<Transition>,
    pub store_writes: usize,
    pub conflicts: usize,
    pub notifications_enqueued: usize,
    pub notifications_sent: usize,
    pub messages_published: usize,
    pub publish_failures: usize,
    /// The notifications delivered this cycle, with their messages.
    #[serde(skip)]
    pub delivered: Vec<firebell_notify::Delivered>,
    /// The oldest notification the outbox still holds after delivery.
    #[serde(skip)]
    pub oldest_undelivered: Option<firebell_notify::OutboxRecord>,
    /// Problems that did not stop the cycle (fetch failures, conflicts).
    pub errors: Vec<CycleError>,
    /// True when the deadline stopped the cycle early (the rest is done next cycle).
    pub stopped_early: bool,
    /// Firing alerts resolved because their rule or instance is gone.
    pub orphans_resolved: usize,
    /// Some due rule could not be evaluated (fetch or discovery failed): the
    /// tick is not recorded, so the next cycle evaluates it again. A failed
    /// fetch or listing of another account or region (`FetchElsewhere`, a
    /// `Discovery` error that kept the cached instances) does not count:
    /// its instances' states hold and the next good fetch catches up.
    pub incomplete: bool,
    /// Every judged instance, when [`EngineOptions::record_views`] is on.
    #[serde(skip)]
    pub views: Vec<InstanceView>,
    /// Which covered rules sentinels let the cycle skip, and the reconcile.
    pub sentinels: crate::sentinel::CycleSentinels,
}

/// Ticks are whole minutes (the schedule's and the Lambda's unit): a rule
/// with a longer `interval` may be due at a later tick of the same interval.
pub const TICK_SECS: Epoch = 60;

/// The cycle's tick and, when the caller has one, the clock's now.
#[derive(Debug, Clone, Copy)]
struct Now {
    tick: Epoch,
    clock: Option<Epoch>,
}

/// Drops the times of `state` later than `clock` (a cycle once judged it at
/// a future tick): the instance is judged again from the datapoints of its
/// lookback window, as a fresh one would be, keeping its status.
fn rewind(state: &mut InstanceState, clock: Epoch) {
    for t in [
        &mut state.last_t,
        &mut state.active_since,
        &mut state.fired_at,
        &mut state.last_breach,
        &mut state.clear_since,
        &mut state.resolved_at,
        &mut state.missing_since,
        &mut state.nodata_since,
    ] {
        if t.is_some_and(|t| t > clock) {
            *t = None;
        }
    }
    state.window.retain(|(t, _)| *t <= clock);
}

/// A fresh view of an evaluated instance, overlaid on its stored alert.
#[derive(Debug, Clone)]
struct Fresh {
    value: Option<f64>,
    recent: Vec<(Epoch, Option<f64>)>,
    /// Annotations with context values bound, for rules that have them.
    annotations: Option<BTreeMap<String, String>>,
}

/// What a cycle partition (`cycle`, or a shard's) holds: read by a cycle
/// at its start, and by `status`.
pub(crate) struct CycleRecords {
    /// The last recorded tick, and its item's version.
    pub(crate) last: Option<Epoch>,
    pub(crate) last_version: Option<u64>,
    /// The state layout of the last recorded tick ([`keys::STATE_LAYOUT`]
    /// without one).
    pub(crate) layout: u32,
    /// The shard count a delivery stage recorded with its tick.
    pub(crate) shards: Option<u32>,
    /// The lease item, its version and expiry. (An expired lease is not
    /// returned.)
    pub(crate) lease: Option<(Lease, u64, Option<Epoch>)>,
    /// The failing self-monitoring checks (`selfwatch/<check>` items).
    pub(crate) selfwatch: Vec<Item>,
}

/// One read of a cycle partition: the last recorded tick, the lease and
/// the failing self-monitoring checks.
pub(crate) async fn read_cycle_partition(
    store: &dyn StateStore,
    pk: &str,
) -> Result<CycleRecords, EngineError> {
    let mut records = CycleRecords {
        last: None,
        last_version: None,
        layout: keys::STATE_LAYOUT,
        shards: None,
        lease: None,
        selfwatch: Vec::new(),
    };
    for item in store.query(pk, "").await? {
        if item.sk == keys::last_tick().sk {
            let last = keys::decode::<LastTick>(&item)?;
            records.last = Some(last.tick);
            records.layout = last.layout;
            records.shards = last.shards;
            records.last_version = Some(item.version);
        } else if item.sk == keys::lease().sk {
            records.lease = Some((keys::decode(&item)?, item.version, item.expires_at));
        } else if item.sk.starts_with(selfwatch::SK_PREFIX) {
            records.selfwatch.push(item);
        }
    }
    Ok(records)
}

/// What a cycle knows of its tick when its body starts.
struct Tick {
    now: Epoch,
    /// The clock's now, when the tick was checked against it.
    clock_now: Option<Epoch>,
    /// The last recorded tick (`None` after clock skew).
    last: Option<Epoch>,
    /// The `selfwatch/<check>` items read with the cycle partition.
    selfwatch: Vec<Item>,
    /// The states are still in the layout before buckets: move them first.
    migrate: bool,
    /// Record the tick even if nothing is written (see `paced`).
    record: bool,
}

/// One planned instance to judge: its judge input, its stored state item.
struct InstanceWork<'a, 'p> {
    input: JudgeInput<'a>,
    /// The rule and the instance's labels, borrowed from the plan (for the write).
    rule: &'p Rule,
    labels: &'p Labels,
    stored: Option<&'a Item>,
}

/// What evaluation learned this cycle.
#[derive(Default)]
struct Evaluated {
    /// Fresh values of evaluated instances, by alert fingerprint.
    fresh: HashMap<String, Fresh>,
    /// Per due rule whose data was fetched: the fingerprints of its current instances.
    covered: HashMap<String, HashSet<String>>,
    /// A rule was evaluated whose next evaluation counts from this tick.
    paced: bool,
}

/// The engine: config plus ports. Build once, run many cycles.
pub struct Engine {
    /// Measures a cycle's duration for its history record (binaries set
    /// the wall clock; time stays an argument of the cycle itself).
    stopwatch: Option<Arc<dyn firebell_core::ports::Clock>>,
    config: Arc<Config>,
    metrics: Arc<dyn MetricsSource>,
    store: Arc<dyn StateStore>,
    notifier: Arc<dyn Notifier>,
    opts: EngineOptions,
    /// Why the config the binary was told to run could not be loaded (it
    /// runs the last good one): reported by every cycle as
    /// [`CycleError::Config`], the `config` self-monitoring check.
    config_problem: std::sync::Mutex<Option<String>>,
    /// Where the sentinel alarms live; without it every rule is polled.
    alarms: Option<Arc<dyn firebell_core::ports::AlarmService>>,
    /// The sentinels this config wants, worked out once.
    desired: std::sync::OnceLock<crate::sentinel::Desired>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("rules", &self.config.rules.rules.len())
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl Engine {
    pub fn new(
        config: Arc<Config>,
        metrics: Arc<dyn MetricsSource>,
        store: Arc<dyn StateStore>,
        notifier: Arc<dyn Notifier>,
        opts: EngineOptions,
    ) -> Engine {
        Engine {
            stopwatch: None,
            config,
            metrics,
            store,
            notifier,
            opts,
            config_problem: std::sync::Mutex::new(None),
            alarms: None,
            desired: std::sync::OnceLock::new(),
        }
    }

    /// The same engine (adapters, options, stopwatch, config problem) over
    /// another config: how a binary switches to a newly deployed config
    /// between cycles, never during one.
    pub fn with_config(&self, config: Arc<Config>) -> Engine {
        Engine {
            stopwatch: self.stopwatch.clone(),
            config,
            metrics: self.metrics.clone(),
            store: self.store.clone(),
            notifier: self.notifier.clone(),
            opts: self.opts.clone(),
            config_problem: std::sync::Mutex::new(self.config_problem()),
            alarms: self.alarms.clone(),
            desired: std::sync::OnceLock::new(),
        }
    }

    /// Keeps sentinel alarms in `alarms` (used when the config says
    /// `sentinels: {mode: auto}`).
    pub fn with_alarms(mut self, alarms: Arc<dyn firebell_core::ports::AlarmService>) -> Engine {
        self.alarms = Some(alarms);
        self
    }

    /// The sentinels the config wants (worked out on first use).
    pub fn desired_sentinels(&self) -> &crate::sentinel::Desired {
        self.desired
            .get_or_init(|| crate::sentinel::desired(&self.config, &self.opts.sentinel_prefix))
    }

    /// The alarm service when sentinels are on (the config's mode is
    /// `auto` and the engine has one).
    fn sentinel_service(&self) -> Option<&dyn firebell_core::ports::AlarmService> {
        (self.config.sentinels.mode == crate::sentinel::Mode::Auto)
            .then_some(self.alarms.as_deref())
            .flatten()
    }

    /// Sets (or, with `None`, clears) the config problem every cycle
    /// reports until cleared: a deployed config that failed to load while
    /// this engine keeps running its own. It fires `FirebellUnhealthy`
    /// `check=config`, which resolves on the first cycle after it clears.
    pub fn set_config_problem(&self, problem: Option<String>) {
        if let Ok(mut p) = self.config_problem.lock() {
            *p = problem;
        }
    }

    /// The config problem set by [`Engine::set_config_problem`].
    pub fn config_problem(&self) -> Option<String> {
        self.config_problem.lock().ok().and_then(|p| p.clone())
    }

    /// Times each cycle with `clock` for its history record
    /// ([`crate::history::CycleRecord::duration_ms`]; 0 without one).
    pub fn with_stopwatch(mut self, clock: Arc<dyn firebell_core::ports::Clock>) -> Engine {
        self.stopwatch = Some(clock);
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    /// The instances of `rule`: one, or one per value of its wildcard
    /// dimension that the metrics source knows.
    pub async fn instances(
        &self,
        rule: &Rule,
    ) -> Result<Vec<Instance>, firebell_core::ports::MetricsError> {
        plan::instances(self.metrics.as_ref(), rule).await
    }

    /// Runs one cycle as of `now`. `should_stop` is polled between stages; when
    /// it returns true the cycle stops cleanly (the outbox and the next cycle
    /// finish the work).
    ///
    /// Without a clock, a recorded tick at or after `now` makes this a
    /// duplicate; callers that have a clock use [`Engine::run_cycle_at`].
    pub async fn run_cycle(
        &self,
        now: Epoch,
        should_stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<CycleReport, EngineError> {
        self.run(now, None, should_stop).await
    }

    /// Runs one cycle as of the tick `now`, the clock reading `clock_now`
    /// (time stays an argument). A recorded last tick at or after `now` makes
    /// the tick a duplicate, unless it is later than `clock_now`: then it is
    /// clock skew, or a cycle once ran at a future tick, and would skip every
    /// tick until that future arrives. It is reported
    /// ([`CycleError::ClockSkew`]), the cycle evaluates as if no tick were
    /// recorded, and a completed cycle records its own tick over it.
    pub async fn run_cycle_at(
        &self,
        now: Epoch,
        clock_now: Epoch,
        should_stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<CycleReport, EngineError> {
        self.run(now, Some(clock_now), should_stop).await
    }

    /// Runs one stage of the cycle of tick `now` (the whole cycle, a
    /// shard's evaluation, or the delivery stage after the shards), the
    /// clock reading `clock_now`, as [`Engine::run_cycle_at`] does.
    pub async fn run_stage_at(
        &self,
        now: Epoch,
        clock_now: Epoch,
        stage: Stage,
        should_stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<CycleReport, EngineError> {
        self.run_stage(now, Some(clock_now), stage, should_stop)
            .await
    }

    async fn run(
        &self,
        now: Epoch,
        clock_now: Option<Epoch>,
        should_stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<CycleReport, EngineError> {
        self.run_stage(now, clock_now, Stage::Whole, should_stop)
            .await
    }

    async fn run_stage(
        &self,
        now: Epoch,
        clock_now: Option<Epoch>,
        stage: Stage,
        should_stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<CycleReport, EngineError> {
        let started = self.stopwatch.as_ref().map(|c| c.now());
        let mut report = CycleReport {
            tick: now,
            ..CycleReport::default()
        };
        if let Some(problem) = self.config_problem() {
            report.errors.push(CycleError::Config {
                running: self.config.version.clone(),
                problem,
            });
        }
        let partition = stage.cycle_pk();
        let CycleRecords {
            mut last,
            last_version,
            layout,
            lease,
            selfwatch,
            ..
        } = read_cycle_partition(self.store.as_ref(), &partition).await?;
        let mut skewed = false;
        if let Some(l) = last
            && l >= now
        {
            match clock_now {
                Some(wall) if l > wall => {
                    // Reported; the binaries log the report's errors.
                    report.errors.push(CycleError::ClockSkew {
                        recorded: l,
                        now: wall,
                        tick: now,
                    });
                    last = None;
                    skewed = true;
                }
                _ => {
                    report.skipped = Some(Skip::Duplicate);
                    return Ok(report);
                }
            }
        }
        let seen = match lease {
            // (An expired lease is not returned by the store.)
            Some((l, _, _)) if l.held => {
                report.skipped = Some(Skip::Overlap);
                return Ok(report);
            }
            Some((_, version, _)) => Some(version),
            None => None,
        };
        let guard = Guarded::new(
            self.store.as_ref(),
            self.notifier.as_ref(),
            seen,
            &partition,
            &self.opts.owner,
            now,
            now + self.opts.lease_secs,
        );
        // A table a version before state buckets ran on: the states of the
        // rules this stage evaluates move first. A stage records layout 2 only once its states moved: the whole
        // cycle and a shard after their move (a run that does not complete
        // records nothing, so the next one moves again: the move is
        // idempotent), the delivery stage (which moves nothing) only what it
        // read. (`last_version`, not `last`: a skewed tick still counts.)
        let migrate = match stage {
            Stage::Whole => last_version.is_some() && layout < keys::STATE_LAYOUT,
            // Until a shard has recorded a tick of its own: the layout the
            // `cycle` partition records (the whole cycle's, kept as it was
            // by delivery stages).
            Stage::Shard(_) if last_version.is_none() => {
                match self.store.get(&keys::last_tick()).await? {
                    Some(item) => keys::decode::<LastTick>(&item)?.layout < keys::STATE_LAYOUT,
                    None => false,
                }
            }
            Stage::Shard(_) | Stage::Deliver { .. } => false,
        };
        let recorded_layout = match stage {
            Stage::Deliver { .. } => layout,
            Stage::Whole | Stage::Shard(_) => keys::STATE_LAYOUT,
        };
        // A shard records its first tick even when quiet, so it looks the
        // layout up once, not every quiet tick.
        let first_run = matches!(stage, Stage::Shard(_)) && last_version.is_none();
        let result = self
            .cycle_body(
                &guard,
                Tick {
                    now,
                    clock_now,
                    last,
                    selfwatch,
                    migrate,
                    record: migrate || first_run,
                },
                stage,
                should_stop,
                &mut report,
            )
            .await;
        let wrote = match guard.state() {
            LeaseState::Lost => {
                // Another cycle wrote since this one read: this one wrote
                // and published nothing, and its view may be stale.
                return Ok(CycleReport {
                    tick: now,
                    skipped: Some(Skip::Overlap),
                    ..CycleReport::default()
                });
            }
            LeaseState::Held(_) => {
                report.store_writes += 1;
                true
            }
            LeaseState::Untaken => false,
        };
        // History, only from a cycle that wrote (a quiet cycle writes
        // nothing), through the lease; a failure is reported, never fatal.
        if wrote && self.config.history.enabled {
            let duration_ms = match (&self.stopwatch, started) {
                (Some(c), Some(t0)) => {
                    u64::try_from(c.now().duration_since(t0).as_millis()).unwrap_or(0)
                }
                _ => 0,
            };
            let entries = crate::history::entries_of(&report, duration_ms, &self.config.version);
            let retention = self.config.history.retention_secs;
            let writer = stage.history_writer();
            match crate::history::record(&guard, entries, now, &writer, retention).await {
                Ok(n) => report.store_writes += n,
                Err(source) => report
                    .errors
                    .push(CycleError::History { tick: now, source }),
            }
        }
        let completed = result.is_ok() && !report.stopped_early && !report.incomplete;
        let paced = matches!(result, Ok(true));
        if completed && (wrote || paced || skewed) {
            // (Over a skewed record: its version is `last_version`, so the
            // write replaces it with this tick.)
            let shards = match stage {
                Stage::Deliver { shards } => Some(shards),
                Stage::Whole | Stage::Shard(_) => None,
            };
            match self
                .record_tick(&partition, now, recorded_layout, shards, last_version)
                .await
            {
                Ok(true) => report.store_writes += 1,
                Ok(false) => {}
                Err(source) => report
                    .errors
                    .push(CycleError::RecordTick { tick: now, source }),
            }
        }
        // Release the lease whatever happened; its TTL frees it if this fails too.
        match guard.release().await {
            Ok(true) => report.store_writes += 1,
            Ok(false) => {}
            Err(e) => report.errors.push(CycleError::ReleaseLease(e)),
        }
        result.map(|_| report)
    }

    /// Records `now` as the last tick (`cycle/last`), unless a later one is
    /// recorded already. Returns whether it wrote.
    async fn record_tick(
        &self,
        partition: &str,
        now: Epoch,
        layout: u32,
        shards: Option<u32>,
        mut version: Option<u64>,
    ) -> Result<bool, StoreError> {
        let key = keys::last_tick_in(partition);
        for _ in 0..3 {
            let item = Item {
                pk: key.pk.clone(),
                sk: key.sk.clone(),
                version: version.map_or(1, |v| v + 1),
                data: keys::encode(&LastTick {
                    tick: now,
                    layout,
                    shards,
                }),
                expires_at: None,
            };
            let expect = version.map_or(Expect::Absent, Expect::Version);
            match self.store.put(item, expect).await {
                Ok(()) => return Ok(true),
                Err(e) if e.is_conflict() => match self.store.get(&key).await? {
                    Some(item) if keys::decode::<LastTick>(&item).is_ok_and(|l| l.tick >= now) => {
                        return Ok(false);
                    }
                    Some(item) => version = Some(item.version),
                    None => version = None,
                },
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// The cycle's stages after the lease check, writing and publishing
    /// through `guard`. Returns whether a rule was evaluated whose next
    /// evaluation counts from this tick (see [`TICK_SECS`]).
    async fn cycle_body(
        &self,
        guard: &Guarded<'_>,
        tick: Tick,
        stage: Stage,
        should_stop: &(dyn Fn() -> bool + Sync),
        report: &mut CycleReport,
    ) -> Result<bool, EngineError> {
        let Tick {
            now,
            clock_now,
            last,
            selfwatch,
            migrate,
            record,
        } = tick;
        let retention = self.opts.resolved_retention_secs;
        if migrate {
            migrate::states(guard, &self.config, stage, now, retention, report).await?;
        }
        let Evaluated {
            fresh,
            covered,
            paced,
        } = if let Stage::Deliver { .. } = stage {
            Evaluated::default()
        } else {
            // (Just after a move, the states are read consistently: the
            // moved ones were written a moment ago.)
            self.evaluate(guard, stage, now, clock_now, last, migrate, report)
                .await?
        };
        // (A migration is recorded with the tick, so it is done once.)
        let paced = paced || record;
        if guard.is_lost() {
            return Ok(paced);
        }
        if should_stop() {
            report.stopped_early = true;
            return Ok(paced);
        }
        let sw = &self.config.self_monitoring;
        if !stage.delivers() {
            // A shard resolves the orphans of its own rules (it alone knows
            // their instances) and records its own failures; the delivery
            // stage notifies.
            decide::snapshot(
                guard,
                &self.config,
                stage,
                &fresh,
                &covered,
                now,
                retention,
                report,
            )
            .await?;
            if !guard.is_lost() {
                selfwatch::observe(guard, sw, stage, &selfwatch, now, retention, report).await;
            }
            return Ok(paced);
        }
        if !self
            .decide_and_deliver(guard, stage, &fresh, &covered, now, should_stop, report)
            .await?
        {
            return Ok(paced);
        }
        if !should_stop() && !guard.is_lost() {
            self.maintain_sentinels(guard, now, should_stop, report)
                .await?;
        }
        // firebell's own failures, as alerts through the same pipeline.
        if selfwatch::observe(guard, sw, stage, &selfwatch, now, retention, report).await
            && !guard.is_lost()
        {
            self.decide_and_deliver(guard, stage, &fresh, &covered, now, should_stop, report)
                .await?;
        }
        Ok(paced)
    }

    /// Decide (the `active` snapshot, dispatch into the outbox), then
    /// deliver. Returns false when it stopped before delivering (the lease
    /// was lost, or the deadline is near).
    #[allow(clippy::too_many_arguments)]
    async fn decide_and_deliver(
        &self,
        guard: &Guarded<'_>,
        stage: Stage,
        fresh: &HashMap<String, Fresh>,
        covered: &HashMap<String, HashSet<String>>,
        now: Epoch,
        should_stop: &(dyn Fn() -> bool + Sync),
        report: &mut CycleReport,
    ) -> Result<bool, EngineError> {
        let retention = self.opts.resolved_retention_secs;
        let alerts = decide::snapshot(
            guard,
            &self.config,
            stage,
            fresh,
            covered,
            now,
            retention,
            report,
        )
        .await?;
        decide::dispatch(guard, &self.config, &alerts, now, report).await;
        if guard.is_lost() {
            return Ok(false);
        }
        if should_stop() {
            report.stopped_early = true;
            return Ok(false);
        }
        decide::deliver(guard, &self.config, now, report).await?;
        Ok(true)
    }

    /// Plan, fetch, judge and persist the due rules.
    #[allow(clippy::too_many_arguments)]
    async fn evaluate(
        &self,
        writer: &dyn StateStore,
        stage: Stage,
        now: Epoch,
        clock_now: Option<Epoch>,
        last: Option<Epoch>,
        consistent: bool,
        report: &mut CycleReport,
    ) -> Result<Evaluated, EngineError> {
        let metrics = self.metrics.as_ref();
        // The roles of the config running now (`accounts:`; a switched
        // config may list others).
        metrics.use_account_roles(&self.config.accounts.roles);
        let rules: Vec<&Rule> = self
            .config
            .rules
            .rules
            .iter()
            .filter(|r| stage.evaluates(&r.name))
            .collect();
        let plan = plan::Plan::make(metrics, rules, now, last, report).await;
        if plan.is_empty() {
            return Ok(Evaluated::default());
        }
        // (Worked out before sentinels skip cold rules: a skipped rule was
        // judged to change nothing, so its next evaluation counts from now.)
        let paced = plan.paced(now);
        let stored = self.load_states(&plan, consistent).await?;
        let plan = self.gate(plan, &stored, now, report).await?;
        if plan.is_empty() {
            return Ok(Evaluated {
                paced,
                ..Evaluated::default()
            });
        }
        let queries = plan::Queries::of(&plan);
        report.queries = queries.len();
        let fetch::Fetched { series, failed } =
            match fetch::fetch_grouped(metrics, &queries, now).await {
                Ok(s) => s,
                Err(e) => {
                    // No data, no judgement: states stay as they are (no false resolve).
                    report.errors.push(CycleError::Fetch(e));
                    report.incomplete = true;
                    return Ok(Evaluated::default());
                }
            };
        // The fetch worked: the due rules are evaluated as of this tick.
        let mut evaluated = Evaluated {
            paced,
            covered: plan.covered(),
            ..Evaluated::default()
        };
        // Judged instances with changes, written a chunk at a time (the
        // writes of a chunk run concurrently; memory stays bounded).
        let mut to_write: Vec<Judged<'_>> = Vec::new();
        let retention = self.opts.resolved_retention_secs;
        for rp in &plan.rules {
            report.rules_evaluated += 1;
            let mut reported = false;
            for inst in &rp.instances {
                // Another account's or region's metrics could not be read:
                // this instance is not judged (its state holds), the
                // others are.
                if let Some((spec, e)) = queries.failed(inst, &failed) {
                    if !reported {
                        report.errors.push(CycleError::FetchElsewhere {
                            rule: rp.rule.name.clone(),
                            target: fetch::describe_source(spec),
                            source: fetch::copy_error(e),
                        });
                        reported = true;
                    }
                    // Not `incomplete`: the tick is recorded, so the other
                    // rules keep their intervals while an account or region
                    // is broken; this instance's state holds, and the next
                    // good fetch steps through the datapoints it missed.
                    continue;
                }
                let Some(inputs) = queries.inputs(inst, &series, &rp.grid) else {
                    report.instances_partial += 1;
                    report.incomplete = true;
                    continue;
                };
                let work = InstanceWork {
                    input: JudgeInput {
                        rule: rp.rule,
                        grid: &rp.grid,
                        inputs: &inputs,
                        arrival_grace_periods: self.opts.arrival_grace_periods,
                    },
                    rule: rp.rule,
                    labels: &inst.labels,
                    stored: stored.get(&keys::state(&rp.rule.name, &fingerprint(&inst.labels))),
                };
                let at = Now {
                    tick: now,
                    clock: clock_now,
                };
                if let Some(judged) = self.judge(work, at, &mut evaluated, report).await? {
                    to_write.push(judged);
                    if to_write.len() >= WRITE_CHUNK {
                        let chunk = std::mem::take(&mut to_write);
                        persist::persist_all(writer, chunk, now, retention, report).await?;
                    }
                }
            }
        }
        persist::persist_all(writer, to_write, now, retention, report).await?;
        Ok(evaluated)
    }

    /// Drops the cold rules from `plan` when sentinels are on: those whose
    /// sentinel is trusted, not in ALARM, whose instances' stored states
    /// are at rest and whose sweep is not due ([`crate::sentinel::Gate`]).
    /// When the alarms cannot be read, nothing is dropped.
    async fn gate<'c>(
        &self,
        plan: plan::Plan<'c>,
        stored: &HashMap<Key, Item>,
        now: Epoch,
        report: &mut CycleReport,
    ) -> Result<plan::Plan<'c>, EngineError> {
        let Some(service) = self.sentinel_service() else {
            return Ok(plan);
        };
        let desired = self.desired_sentinels();
        if desired.alarms.is_empty() {
            return Ok(plan);
        }
        let sync = crate::sentinel::read_sync(self.store.as_ref()).await?;
        if let Some(why) = sync.as_ref().and_then(|(r, _)| r.corrupt.as_ref()) {
            report.errors.push(CycleError::Sentinels(
                firebell_core::ports::AlarmError::Refused(format!(
                    "the sentinel sync record cannot be read ({why}): every covered rule is polled until the next reconcile rewrites it"
                )),
            ));
        }
        let alarming = match service.alarming(&self.opts.sentinel_prefix, now).await {
            Ok(names) => Some(names.into_iter().collect()),
            Err(e) => {
                report.errors.push(CycleError::Sentinels(e));
                None
            }
        };
        let gate = crate::sentinel::Gate {
            desired,
            config_version: &self.config.version,
            sync: sync.as_ref().map(|(r, _)| r),
            alarming,
            sweep: self.config.sentinels.sweep,
        };
        let sweep = self.config.sentinels.sweep;
        let mut kept = Vec::with_capacity(plan.rules.len());
        for mut rp in plan.rules {
            let active = rp.instances.iter().any(|inst| {
                stored
                    .get(&keys::state(&rp.rule.name, &fingerprint(&inst.labels)))
                    // (A corrupt state is judged, which reports it.)
                    .is_some_and(|item| {
                        keys::decode::<StoredState>(item)
                            .map_or(true, |s| !crate::sentinel::at_rest(&s.state))
                    })
            });
            let poll = gate.polls(rp.rule, now, active);
            report.sentinels.count(poll);
            if poll == crate::sentinel::Poll::Sweep {
                // A sweep looks back over the whole sweep interval too (the
                // same metrics, billed the same): a breach its sentinel
                // missed in that time (deleted, changed behind firebell's
                // back, data later than its range) fires late, not never.
                if let Ok(grid) = firebell_core::series::Grid::checked_ending_at(
                    now,
                    rp.rule.lookback().saturating_add(sweep),
                    rp.rule.step(),
                ) {
                    rp.grid = grid;
                }
            }
            if poll != crate::sentinel::Poll::Cold {
                kept.push(rp);
            }
        }
        Ok(plan::Plan { rules: kept })
    }

    /// Keeps the sentinel alarms in step with the config (when a reconcile
    /// is due: [`crate::sentinel::reconcile_due`]), and records what it
    /// found when that changed. Also removes the sentinels of a config that
    /// turned them off.
    async fn maintain_sentinels(
        &self,
        writer: &dyn StateStore,
        now: Epoch,
        should_stop: &(dyn Fn() -> bool + Sync),
        report: &mut CycleReport,
    ) -> Result<(), EngineError> {
        let Some(service) = self.alarms.as_deref() else {
            return Ok(());
        };
        let prefix = &self.opts.sentinel_prefix;
        let stored = crate::sentinel::read_sync(writer).await?;
        let kept = stored
            .as_ref()
            .is_some_and(|(r, _)| !r.in_sync.is_empty() || !r.out_of_sync.is_empty());
        if self.sentinel_service().is_none() && !kept {
            return Ok(());
        }
        let desired = self.desired_sentinels();
        if !crate::sentinel::reconcile_due(
            &self.config.version,
            prefix,
            stored.as_ref().map(|(r, _)| r),
            desired,
            now,
            self.config.sentinels.sweep,
        ) {
            return Ok(());
        }
        match crate::sentinel::reconcile(
            desired,
            service,
            prefix,
            &self.config.version,
            now,
            crate::sentinel::MAX_PUTS_PER_CYCLE,
            true,
            should_stop,
        )
        .await
        {
            Ok((changes, record)) => {
                if let Some(first) = changes.refused.first() {
                    report.errors.push(CycleError::Sentinels(
                        firebell_core::ports::AlarmError::Refused(format!(
                            "{} refused (their rules are polled): {first}",
                            changes.refused.len()
                        )),
                    ));
                }
                report.sentinels.reconciled = Some(changes);
                match crate::sentinel::store_sync(writer, &record, stored.as_ref()).await {
                    Ok(true) => report.store_writes += 1,
                    Ok(false) => {}
                    Err(e) if e.is_lease_lost() || e.is_conflict() => {}
                    Err(e) => report.errors.push(CycleError::Sentinels(
                        firebell_core::ports::AlarmError::Unavailable(format!(
                            "recording what the reconcile found: {e}"
                        )),
                    )),
                }
            }
            Err(e) => report.errors.push(CycleError::Sentinels(e)),
        }
        Ok(())
    }

    /// The stored states of the planned rules: one Query per state bucket
    /// holding a planned rule, [`STATE_READS`] at a time. Only instances
    /// that have state are read (those not inactive, and inactive ones for
    /// a while: [`keys::state_expiry`]), so the cost follows them, not the
    /// rule count. Eventually consistent: every state write is conditional
    /// on the version read (`Expect::Version`), so a stale read ends in a
    /// reported conflict and the next cycle, never in a lost update; and
    /// the writes it could miss were made a tick ago, under the lease.
    async fn load_states(
        &self,
        plan: &plan::Plan<'_>,
        consistent: bool,
    ) -> Result<HashMap<Key, Item>, EngineError> {
        let buckets: std::collections::BTreeSet<u32> = plan
            .rules
            .iter()
            .map(|rp| keys::bucket(&rp.rule.name))
            .collect();
        // (Boxed futures, not a closure in a stream: see `persist_all`.)
        let reads: Vec<BoxFuture<'_, Result<Vec<Item>, StoreError>>> = buckets
            .into_iter()
            .map(|b| {
                read_partition(self.store.as_ref(), keys::state_partition(b), consistent).boxed()
            })
            .collect();
        let mut pages = futures_util::StreamExt::buffer_unordered(
            futures_util::stream::iter(reads),
            STATE_READS,
        );
        let mut stored = HashMap::new();
        while let Some(items) = futures_util::StreamExt::next(&mut pages).await {
            for item in items? {
                stored.insert(Key::new(item.pk.clone(), item.sk.clone()), item);
            }
        }
        Ok(stored)
    }

    /// Judges one instance and records its fresh view; what changed, to be
    /// persisted.
    async fn judge<'p>(
        &self,
        work: InstanceWork<'_, 'p>,
        at: Now,
        evaluated: &mut Evaluated,
        report: &mut CycleReport,
    ) -> Result<Option<Judged<'p>>, EngineError> {
        let InstanceWork {
            input,
            rule,
            labels,
            stored,
        } = work;
        let now = at.tick;
        let (mut state, version) =
            match stored.map(|item| (keys::decode::<StoredState>(item), item)) {
                None => (InstanceState::default(), None),
                Some((Ok(s), item)) => (s.state, Some(item.version)),
                Some((Err(corrupt), _)) => {
                    // An expression that cannot be evaluated is reported (and the
                    // instance skipped) before its stored state is even read.
                    if let Err(source) = judge::judge(input, &InstanceState::default()) {
                        report.errors.push(CycleError::Expression {
                            rule: rule.name.clone(),
                            source,
                        });
                        return Ok(None);
                    }
                    return Err(corrupt);
                }
            };
        let mut rewound = false;
        if let Some(clock) = at.clock
            && let Some(judged) = state.last_t.filter(|&t| t > clock)
        {
            report.errors.push(CycleError::StateClockSkew {
                rule: rule.name.clone(),
                judged,
                now: clock,
            });
            rewind(&mut state, clock);
            rewound = true;
        }
        let mut points = Vec::new();
        let judged = if self.opts.record_views && self.opts.record_points {
            judge::judge_observing(input, &state, &mut |o| points.push(o))
        } else {
            judge::judge(input, &state)
        };
        let judgement: Judgement = match judged {
            Ok(j) => j,
            Err(source) => {
                report.errors.push(CycleError::Expression {
                    rule: rule.name.clone(),
                    source,
                });
                return Ok(None);
            }
        };
        report.instances_evaluated += 1;
        let annotations = if judge::needs_context(rule, &judgement) {
            let values =
                fetch::context_values(self.metrics.as_ref(), rule, labels, now, &mut report.errors)
                    .await;
            Some(judge::with_context(&rule.annotations, &values))
        } else {
            None
        };
        // Fresh values overlay the `active` alerts of the snapshot, which
        // exist only for instances that fired or resolved: those with a
        // stored state, events, or a state other than inactive. The others
        // (nearly all, in a big config) keep none.
        if stored.is_some()
            || !judgement.events.is_empty()
            || judgement.state.status != firebell_core::state::Status::Inactive
        {
            let fresh = Fresh {
                value: judgement.value,
                recent: judgement.recent.clone(),
                annotations: annotations.clone(),
            };
            // A NoData alert has no value: only the recent datapoints (which show the gap).
            let nodata = Fresh {
                value: None,
                ..fresh.clone()
            };
            evaluated.fresh.insert(fingerprint(labels), fresh);
            evaluated.fresh.insert(
                fingerprint(&firebell_core::alert::nodata_labels(labels)),
                nodata,
            );
        }
        if self.opts.record_views {
            report.views.push(InstanceView {
                rule: rule.name.clone(),
                labels: labels.clone(),
                state: judgement.state.clone(),
                value: judgement.value,
                events: judgement.events.clone(),
                points,
            });
        }
        if !judgement.changed && !rewound {
            return Ok(None);
        }
        let annotations = annotations.unwrap_or_else(|| rule.annotations.clone());
        let records = judge::alert_records(rule, labels, &judgement, &annotations);
        Ok(Some(Judged {
            rule,
            labels,
            judgement,
            version,
            records,
        }))
    }
}
