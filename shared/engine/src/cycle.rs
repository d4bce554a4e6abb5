//! One evaluation cycle: fetch -> evaluate -> decide -> notify.
//!
//! ```text
//! tick T ──> read the `cycle` partition (one query): last recorded tick, lease
//!        ──> already done? (cycle/last >= T) ──yes──> skip (duplicate delivery)
//!        ──> lease held by a live cycle? ──yes──> skip (overlap)
//!        ──> due rules ──> instances (wildcards expanded) ──> one fetch of every
//!            distinct query ──> expression + guard per instance ──> state machine
//!        ──> per transition: write `active` item, then the state (Version)
//!        ──> snapshot of `active` ──> notify::dispatch (outbox) ──> notify::deliver
//!        ──> if it wrote: cycle/last = T, release the lease
//! ```
//!
//! Nothing is written for an instance whose durable state did not change.
//! Every decision is re-derivable from the data and the store, so a crash
//! anywhere is repaired by the next cycle.
//!
//! # A quiet cycle writes nothing: the lease is taken lazily
//!
//! The first store write or publish of a cycle takes the lease (`cycle/lease`)
//! with a write conditional on the lease item being exactly as the cycle read
//! it at its start (`Expect::Version`, or `Absent` when there was none or it
//! had expired). The lease item is never deleted: releasing it writes it back
//! free (`held: false`, no expiry), so its version moves with every cycle that
//! wrote anything. Hence:
//!
//! * Cycles that write are serialised, as before: one holds the lease, a
//!   cycle that finds it held skips (overlap); its TTL frees it after a crash.
//! * A cycle whose reads may be stale cannot write: if any other cycle wrote
//!   (took the lease) since this one started, taking it fails; the cycle then
//!   writes and publishes nothing and reports an overlap. So every cycle that
//!   writes has read everything after the previous writer finished.
//! * A cycle with nothing to write never takes the lease and records no
//!   tick: **zero writes**. A writing cycle costs three more (take, `last`,
//!   release), like the former lease + last-tick records of every cycle.
//!
//! The trade-offs:
//!
//! * `cycle/last` (duplicate detection, and when rules with a longer
//!   `interval` are due) only moves on cycles that wrote. A duplicate
//!   delivery of a quiet tick runs again: reads only, and it finds what the
//!   first run found (or newly arrived data, which the next tick would
//!   judge the same way). Overlapping quiet cycles are not skipped, they just
//!   read.
//! * So that a rule with an `interval` longer than the one-minute tick
//!   spacing ([`TICK_SECS`]) is not evaluated at every quiet tick of its
//!   interval, a cycle that evaluated such a rule records its tick (one
//!   conditional write, without the lease, at most once per such interval).
//!   With one-minute rules only, quiet cycles write nothing at all.
//! * A cycle that runs longer than the lease (`lease_secs`) can overlap the
//!   next writer, as before; the conditional writes of states, outbox and
//!   group logs still keep it from duplicating a decision.
//!
//! A cycle must not write concurrently with itself (it does not): the
//! lease is taken by whichever write comes first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use firebell_core::alert::{Alert, AlertStatus, fingerprint};
use firebell_core::model::{Labels, MetricSpec, Rule};
use firebell_core::ports::{
    Expect, Item, Key, MetricQuery, MetricsError, MetricsSource, Notifier, StateStore, StoreError,
};
use firebell_core::series::{Epoch, Grid, Series, align, window_at_least};
use firebell_core::state::{Event, InstanceState, Machine, Observation, Status};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::keys;

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
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            owner: "firebell".to_string(),
            lease_secs: 300,
            resolved_retention_secs: 6 * 3600,
            arrival_grace_periods: 2,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("corrupt record {pk}/{sk}: {reason}")]
    Corrupt {
        pk: String,
        sk: String,
        reason: String,
    },
    #[error("notification pipeline: {0}")]
    Notify(String),
}

impl EngineError {
    pub fn is_retryable(&self) -> bool {
        match self {
            EngineError::Store(e) => e.is_retryable(),
            EngineError::Corrupt { .. } => false,
            EngineError::Notify(_) => true,
        }
    }
}

/// Why a cycle did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    /// The tick was already completed (a duplicate delivery).
    Duplicate,
    /// Another cycle holds the lease, or wrote since this one started (this
    /// one then wrote and published nothing).
    Overlap,
}

/// One state change, for timelines and logs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    pub rule: String,
    pub labels: Labels,
    pub event: Event,
}

/// What a cycle did.
#[derive(Debug, Clone, Default, Serialize)]
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
    /// The rendered messages published this cycle (for the terminal timeline).
    #[serde(skip)]
    pub published: Vec<firebell_core::ports::Outbound>,
    /// Problems that did not stop the cycle (fetch failures, conflicts).
    pub errors: Vec<String>,
    /// True when the deadline stopped the cycle early (the rest is done next cycle).
    pub stopped_early: bool,
    /// Firing alerts resolved because their rule or instance is gone.
    pub orphans_resolved: usize,
    /// Some due rule could not be evaluated (fetch or discovery failed): the
    /// tick is not recorded, so the next cycle evaluates it again.
    pub incomplete: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredState {
    labels: Labels,
    state: InstanceState,
}

/// The lease item's data (see the module documentation).
#[derive(Debug, Serialize, Deserialize)]
struct Lease {
    owner: String,
    tick: Epoch,
    /// False once released. (Items of the former layout, deleted on
    /// release, have no such field and were held.)
    #[serde(default = "held")]
    held: bool,
}

fn held() -> bool {
    true
}

/// Ticks are whole minutes (the schedule's and the Lambda's unit): a rule
/// with a longer `interval` may be due at a later tick of the same interval.
pub const TICK_SECS: Epoch = 60;

#[derive(Debug, Serialize, Deserialize)]
struct LastTick {
    tick: Epoch,
}

/// One alert instance of a rule: its labels and concrete metric queries.
#[derive(Debug, Clone)]
pub struct Instance {
    pub labels: Labels,
    pub specs: BTreeMap<String, MetricSpec>,
}

/// The engine: config plus ports. Build once, run many cycles.
pub struct Engine {
    config: Arc<Config>,
    metrics: Arc<dyn MetricsSource>,
    store: Arc<dyn StateStore>,
    notifier: Arc<dyn Notifier>,
    opts: EngineOptions,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("rules", &self.config.rules.rules.len())
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

fn decode<T: for<'de> Deserialize<'de>>(item: &Item) -> Result<T, EngineError> {
    serde_json::from_str(&item.data).map_err(|e| EngineError::Corrupt {
        pk: item.pk.clone(),
        sk: item.sk.clone(),
        reason: e.to_string(),
    })
}

fn encode<T: Serialize>(v: &T) -> String {
    // Serialising our own plain structs cannot fail (no maps with non-string keys).
    serde_json::to_string(v).unwrap_or_default()
}

/// Base labels of a rule's instances: the rule's labels plus `alertname`.
pub fn rule_labels(rule: &Rule) -> Labels {
    let mut l = rule.labels.clone();
    l.insert("alertname".to_string(), rule.name.clone());
    l
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
            config,
            metrics,
            store,
            notifier,
            opts,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    /// Expands a rule into instances. Wildcard dimensions (`*`) become one
    /// instance per value the metrics source knows, labelled with the dimension.
    pub async fn instances(&self, rule: &Rule) -> Result<Vec<Instance>, MetricsError> {
        let base = rule_labels(rule);
        let wildcard = rule.metrics.values().find_map(|m| {
            m.dimensions
                .iter()
                .find(|(_, v)| v.as_str() == "*")
                .map(|(k, _)| (k.clone(), m.clone()))
        });
        let Some((dim, spec)) = wildcard else {
            return Ok(vec![Instance {
                labels: base,
                specs: rule.metrics.clone(),
            }]);
        };
        let mut values = self.metrics.dimension_values(&spec, &dim).await?;
        values.sort();
        values.dedup();
        Ok(values
            .into_iter()
            .map(|v| {
                let mut labels = base.clone();
                labels.insert(dim.clone(), v.clone());
                let specs = rule
                    .metrics
                    .iter()
                    .map(|(id, m)| {
                        let mut m = m.clone();
                        if let Some(slot) = m.dimensions.get_mut(&dim)
                            && slot == "*"
                        {
                            *slot = v.clone();
                        }
                        (id.clone(), m)
                    })
                    .collect();
                Instance { labels, specs }
            })
            .collect())
    }

    fn due(rule: &Rule, now: Epoch, last: Option<Epoch>) -> bool {
        let iv = rule.interval.as_secs().max(1) as i64;
        match last {
            None => true,
            Some(l) => now.div_euclid(iv) > l.div_euclid(iv),
        }
    }

    /// Runs one cycle as of `now`. `should_stop` is polled between phases; when
    /// it returns true the cycle stops cleanly (the outbox and the next cycle
    /// finish the work).
    pub async fn run_cycle(
        &self,
        now: Epoch,
        should_stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<CycleReport, EngineError> {
        let mut report = CycleReport {
            tick: now,
            ..CycleReport::default()
        };
        // One read of the cycle partition: the last recorded tick and the lease.
        let (mut last, mut last_version, mut lease) = (None, None, None);
        for item in self.store.query(keys::CYCLE, "").await? {
            if item.sk == keys::last_tick().sk {
                last = Some(decode::<LastTick>(&item)?.tick);
                last_version = Some(item.version);
            } else if item.sk == keys::lease().sk {
                lease = Some((decode::<Lease>(&item)?.held, item.version));
            }
        }
        if last.is_some_and(|l| l >= now) {
            report.skipped = Some(Skip::Duplicate);
            return Ok(report);
        }
        let seen = match lease {
            // (An expired lease is not returned by the store.)
            Some((true, _)) => {
                report.skipped = Some(Skip::Overlap);
                return Ok(report);
            }
            Some((false, version)) => Some(version),
            None => None,
        };
        let guard = Guarded {
            store: self.store.as_ref(),
            notifier: self.notifier.as_ref(),
            seen,
            owner: &self.opts.owner,
            tick: now,
            expires_at: now + self.opts.lease_secs,
            state: std::sync::Mutex::new(LeaseState::Untaken),
        };
        let result = self
            .cycle_body(&guard, now, last, should_stop, &mut report)
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
        let completed = result.is_ok() && !report.stopped_early && !report.incomplete;
        let paced = matches!(result, Ok(true));
        if completed && (wrote || paced) {
            match self.record_tick(now, last_version).await {
                Ok(true) => report.store_writes += 1,
                Ok(false) => {}
                Err(e) => report.errors.push(format!("recording tick {now}: {e}")),
            }
        }
        // Release the lease whatever happened; its TTL frees it if this fails too.
        match guard.release().await {
            Ok(true) => report.store_writes += 1,
            Ok(false) => {}
            Err(e) => report.errors.push(format!("releasing the lease: {e}")),
        }
        result.map(|_| report)
    }

    /// Records `now` as the last tick (`cycle/last`), unless a later one is
    /// recorded already. Returns whether it wrote.
    async fn record_tick(&self, now: Epoch, mut version: Option<u64>) -> Result<bool, StoreError> {
        for _ in 0..3 {
            let item = Item {
                pk: keys::last_tick().pk,
                sk: keys::last_tick().sk,
                version: version.map_or(1, |v| v + 1),
                data: encode(&LastTick { tick: now }),
                expires_at: None,
            };
            let expect = version.map_or(Expect::Absent, Expect::Version);
            match self.store.put(item, expect).await {
                Ok(()) => return Ok(true),
                Err(e) if e.is_conflict() => match self.store.get(&keys::last_tick()).await? {
                    Some(item) if decode::<LastTick>(&item).is_ok_and(|l| l.tick >= now) => {
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

    /// The cycle's work, writing and publishing through `guard`. Returns
    /// whether a rule was evaluated whose next evaluation counts from this
    /// tick (see [`TICK_SECS`]).
    async fn cycle_body(
        &self,
        guard: &Guarded<'_>,
        now: Epoch,
        last: Option<Epoch>,
        should_stop: &(dyn Fn() -> bool + Sync),
        report: &mut CycleReport,
    ) -> Result<bool, EngineError> {
        let Evaluated {
            fresh,
            covered,
            paced,
        } = self.evaluate(guard, now, last, report).await?;
        if guard.is_lost() {
            return Ok(paced);
        }
        if should_stop() {
            report.stopped_early = true;
            return Ok(paced);
        }

        // The snapshot of everything the pipeline must know about.
        let mut alerts: Vec<Alert> = Vec::new();
        for item in self.store.query(keys::ACTIVE, "").await? {
            let mut a: Alert = decode(&item)?;
            if a.status == AlertStatus::Firing
                && let Some(why) = self.orphaned(&a, &covered)
            {
                self.resolve_orphan(guard, &mut a, now, why, report).await;
            }
            if let Some(f) = fresh.get(&a.fingerprint) {
                a.value = f.value;
                a.recent = f.recent.clone();
                if let Some(ann) = &f.annotations {
                    a.annotations = ann.clone();
                }
            }
            alerts.push(a);
        }
        alerts.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));

        // A failure in some groups must not hold back delivery of the others.
        match firebell_notify::dispatch(&self.config.notify, guard, now, &alerts).await {
            Ok(d) => report.notifications_enqueued += d.enqueued,
            Err(firebell_notify::DispatchError::Partial {
                report: d,
                failures,
            }) => {
                report.notifications_enqueued += d.enqueued;
                for (group, e) in failures {
                    report
                        .errors
                        .push(format!("dispatching group {group}: {e}"));
                }
            }
            Err(e) => report.errors.push(format!("dispatching: {e}")),
        }
        if guard.is_lost() {
            return Ok(paced);
        }
        if should_stop() {
            report.stopped_early = true;
            return Ok(paced);
        }
        let delivered = firebell_notify::deliver(
            guard,
            guard,
            &firebell_notify::render,
            &self.config.notify,
            now,
        )
        .await
        .map_err(|e| EngineError::Notify(e.to_string()))?;
        report.notifications_sent += delivered.notifications_sent;
        report.messages_published += delivered.messages_published;
        report.publish_failures += delivered.failures;
        report.published.extend(delivered.published);
        // Dead-lettered, not sent: `rendering <group> #<seq> for <receiver>: <error>`.
        report
            .errors
            .extend(delivered.render_failures.iter().map(ToString::to_string));
        Ok(paced)
    }

    /// Evaluates the due rules and persists transitions. Returns the fresh
    /// view (value, recent datapoints) of every evaluated instance.
    async fn evaluate(
        &self,
        writer: &dyn StateStore,
        now: Epoch,
        last: Option<Epoch>,
        report: &mut CycleReport,
    ) -> Result<Evaluated, EngineError> {
        let mut fresh = HashMap::new();
        let mut covered: HashMap<String, HashSet<String>> = HashMap::new();
        // 1. Due rules and their instances.
        let mut work: Vec<(&Rule, Vec<Instance>)> = Vec::new();
        for rule in &self.config.rules.rules {
            if !Self::due(rule, now, last) {
                continue;
            }
            match self.instances(rule).await {
                Ok(inst) => work.push((rule, inst)),
                Err(e) => {
                    report
                        .errors
                        .push(format!("rule {}: listing dimension values: {e}", rule.name));
                    report.incomplete = true;
                }
            }
        }
        if work.is_empty() {
            return Ok(Evaluated {
                fresh,
                covered,
                paced: false,
            });
        }
        // 2. One query per distinct metric across all instances.
        let mut query_ids: HashMap<String, String> = HashMap::new();
        let mut queries: Vec<MetricQuery> = Vec::new();
        // Query id -> the earliest time a rule using it needs.
        let mut start_of: HashMap<String, Epoch> = HashMap::new();
        for (rule, insts) in &work {
            let step = rule.step().as_secs() as i64;
            let grid = Grid::ending_at(now, rule.lookback().as_secs() as i64, step);
            for inst in insts {
                for spec in inst.specs.values() {
                    let id = match query_ids.entry(spec.dedup_key()) {
                        std::collections::hash_map::Entry::Vacant(slot) => {
                            let id = format!("q{}", queries.len());
                            slot.insert(id.clone());
                            queries.push(MetricQuery {
                                id: id.clone(),
                                spec: spec.clone(),
                            });
                            id
                        }
                        std::collections::hash_map::Entry::Occupied(slot) => slot.get().clone(),
                    };
                    let s = start_of.entry(id).or_insert(grid.start);
                    *s = (*s).min(grid.start);
                }
            }
        }
        report.queries = queries.len();
        let fetched = self.fetch_grouped(&queries, &start_of, now).await;
        let series = match fetched {
            Ok(s) => s,
            Err(e) => {
                // No data, no judgement: states stay as they are (no false resolve).
                report.errors.push(format!("fetching metrics: {e}"));
                report.incomplete = true;
                return Ok(Evaluated {
                    fresh,
                    covered,
                    paced: false,
                });
            }
        };
        // The fetch worked: the due rules are evaluated as of this tick; one
        // whose interval goes on past the next tick must count from it.
        let paced = work
            .iter()
            .any(|(rule, _)| !Self::due(rule, now + TICK_SECS, Some(now)));
        // These rules' instance sets are known this cycle.
        for (rule, insts) in &work {
            let set = covered.entry(rule.name.clone()).or_default();
            for inst in insts {
                set.insert(fingerprint(&inst.labels));
                let mut nodata = inst.labels.clone();
                nodata.insert("alertstate".to_string(), "nodata".to_string());
                set.insert(fingerprint(&nodata));
            }
        }
        let by_id: HashMap<&str, &firebell_core::ports::MetricSeries> =
            series.iter().map(|s| (s.id.as_str(), s)).collect();

        // 3. Load every instance state at once.
        let mut keys_needed = Vec::new();
        for (rule, insts) in &work {
            for inst in insts {
                keys_needed.push(keys::state(&rule.name, &fingerprint(&inst.labels)));
            }
        }
        let mut stored: HashMap<Key, Item> = HashMap::new();
        for item in self.store.batch_get(&keys_needed).await? {
            stored.insert(Key::new(item.pk.clone(), item.sk.clone()), item);
        }

        // 4. Evaluate and step.
        for (rule, insts) in &work {
            report.rules_evaluated += 1;
            let machine = Machine::for_rule(rule);
            let step = rule.step().as_secs() as i64;
            let grid = Grid::ending_at(now, rule.lookback().as_secs() as i64, step);
            for inst in insts {
                let fp = fingerprint(&inst.labels);
                let mut inputs: BTreeMap<&str, Series> = BTreeMap::new();
                let mut complete = true;
                for (id, spec) in &inst.specs {
                    let qid = query_ids.get(&spec.dedup_key());
                    let s = qid.and_then(|q| by_id.get(q.as_str()));
                    match s {
                        Some(ms) => {
                            complete &= ms.complete;
                            inputs.insert(id.as_str(), align(&ms.points, &grid));
                        }
                        None => {
                            inputs.insert(id.as_str(), vec![None; grid.len]);
                        }
                    }
                }
                if !complete {
                    report.instances_partial += 1;
                    report.incomplete = true;
                    continue;
                }
                let values = match rule
                    .expression
                    .eval(&grid, &|id| inputs.get(id).map(|s| s.as_slice()))
                {
                    Ok(v) => v,
                    Err(e) => {
                        report
                            .errors
                            .push(format!("rule {}: evaluating expression: {e}", rule.name));
                        continue;
                    }
                };
                report.instances_evaluated += 1;
                let key = keys::state(&rule.name, &fp);
                let (mut state, version) = match stored.get(&key) {
                    Some(item) => (decode::<StoredState>(item)?.state, Some(item.version)),
                    None => (InstanceState::default(), None),
                };
                let before = state.clone();
                let judge_until = judge_until(&grid, &inputs, self.opts.arrival_grace_periods);
                let guard: Option<Vec<bool>> = rule.min_volume.as_ref().map(|g| {
                    inputs
                        .get(g.metric.as_str())
                        .map(|s| window_at_least(&grid, s, g.window.as_secs() as i64, g.at_least))
                        .unwrap_or_else(|| vec![false; grid.len])
                });
                // A fresh instance starts at its first datapoint: the empty
                // stretch before it is history it never saw, not missing data.
                // (A window with no data at all is still judged as missing.)
                // A wildcard instance that never had data (a dimension value
                // ListMetrics still lists but that stopped reporting) is not judged.
                // Never judge the warm-up points, whose expression history or
                // guard window would reach before the fetched data.
                let first = if state.last_t.is_none() {
                    let no_data = if inst.specs.values().any(|m| m.has_wildcard())
                        || rule.metrics.values().any(|m| m.has_wildcard())
                    {
                        grid.len
                    } else {
                        0
                    };
                    values.iter().position(Option::is_some).unwrap_or(no_data)
                } else {
                    0
                }
                .max(rule.warmup_points());
                let mut events = Vec::new();
                for (i, t) in grid.times().enumerate().skip(first) {
                    if t > judge_until {
                        break;
                    }
                    let judged = guard
                        .as_ref()
                        .is_none_or(|g| g.get(i).copied().unwrap_or(false));
                    let obs = Observation {
                        t,
                        value: values.get(i).copied().flatten(),
                        judged,
                    };
                    machine.step_into(&mut state, obs, &mut events);
                }
                let judged_points: Vec<(Epoch, Option<f64>)> = grid
                    .times()
                    .zip(values.iter().copied())
                    .filter(|(t, _)| *t <= judge_until)
                    .collect();
                let recent = judged_points[judged_points.len().saturating_sub(30)..].to_vec();
                let value = recent.iter().rev().find_map(|(_, v)| *v);
                // Context values (e.g. an SLO's budget) for an alert to
                // record, and fresh ones while firing so reminders are
                // current; quiet instances fetch nothing.
                let annotations = if !rule.context.is_empty()
                    && (events.iter().any(makes_alert) || is_firing(&state))
                {
                    let values = self.context_values(rule, inst, now, report).await;
                    Some(with_context(&rule.annotations, &values))
                } else {
                    None
                };
                fresh.insert(
                    fp.clone(),
                    Fresh {
                        value,
                        recent: recent.clone(),
                        annotations: annotations.clone(),
                    },
                );
                let nodata_labels = {
                    let mut l = inst.labels.clone();
                    l.insert("alertstate".to_string(), "nodata".to_string());
                    l
                };
                // A NoData alert has no value: only the recent datapoints
                // (which show the gap).
                fresh.insert(
                    fingerprint(&nodata_labels),
                    Fresh {
                        value: None,
                        recent: recent.clone(),
                        annotations: annotations.clone(),
                    },
                );
                if !state.durably_differs(&before) && events.is_empty() {
                    continue;
                }
                // Alert-visible changes first, then the state: a crash in
                // between re-derives the same events next cycle.
                let mut wrote_active = true;
                let annotations = annotations.unwrap_or_else(|| rule.annotations.clone());
                for ev in &events {
                    if let Some(alert) = alert_for_event(
                        rule,
                        &annotations,
                        &inst.labels,
                        &nodata_labels,
                        &state,
                        ev,
                        &recent,
                    ) {
                        let expires_at = alert
                            .resolved_at
                            .map(|r| r + self.opts.resolved_retention_secs);
                        let k = keys::active(&alert.fingerprint);
                        let item = Item {
                            pk: k.pk,
                            sk: k.sk,
                            version: 1,
                            data: encode(&alert),
                            expires_at,
                        };
                        match writer.put(item, Expect::Any).await {
                            Ok(()) => report.store_writes += 1,
                            Err(e) => {
                                report.errors.push(format!("writing alert: {e}"));
                                wrote_active = false;
                            }
                        }
                    }
                    report.transitions.push(Transition {
                        rule: rule.name.clone(),
                        labels: inst.labels.clone(),
                        event: *ev,
                    });
                }
                if !wrote_active {
                    continue;
                }
                let item = Item {
                    pk: key.pk.clone(),
                    sk: key.sk.clone(),
                    version: version.map_or(1, |v| v + 1),
                    data: encode(&StoredState {
                        labels: inst.labels.clone(),
                        state,
                    }),
                    expires_at: None,
                };
                let expect = version.map_or(Expect::Absent, Expect::Version);
                match writer.put(item, expect).await {
                    Ok(()) => report.store_writes += 1,
                    Err(e) if e.is_conflict() => {
                        report.conflicts += 1;
                        report.errors.push(format!(
                            "rule {}: state changed concurrently; re-evaluated next cycle",
                            rule.name
                        ));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(Evaluated {
            fresh,
            covered,
            paced,
        })
    }
}

impl Engine {
    /// Computes a rule's context values for one instance (see
    /// [`firebell_core::model::ContextValue`]): its own fetch, over its own
    /// window, only when the instance has an alert to record. A value that
    /// cannot be computed is `None` (the templates say "unknown"); the error
    /// is reported and the cycle goes on.
    async fn context_values(
        &self,
        rule: &Rule,
        inst: &Instance,
        now: Epoch,
        report: &mut CycleReport,
    ) -> Vec<(String, Option<f64>)> {
        let mut out = Vec::with_capacity(rule.context.len());
        for cv in &rule.context {
            let step = cv.step().as_secs().max(1) as i64;
            let mut grid = Grid::ending_at(now, cv.window.as_secs() as i64, step);
            // And the period in progress: an hourly budget counts the
            // errors of the last minutes too.
            grid.len += 1;
            let queries: Vec<MetricQuery> = cv
                .metrics
                .iter()
                .map(|(id, spec)| MetricQuery {
                    id: id.clone(),
                    spec: expand_wildcards(spec, &inst.labels),
                })
                .collect();
            let value = match self.metrics.fetch(&queries, grid.start, now).await {
                Ok(series) => {
                    let inputs: BTreeMap<&str, Series> = series
                        .iter()
                        .map(|s| (s.id.as_str(), align(&s.points, &grid)))
                        .collect();
                    let empty = vec![None; grid.len];
                    let eval = cv.expression.eval(&grid, &|id| {
                        Some(inputs.get(id).map_or(empty.as_slice(), Vec::as_slice))
                    });
                    match eval {
                        Ok(v) => v.iter().rev().find_map(|x| *x),
                        Err(e) => {
                            report
                                .errors
                                .push(format!("rule {}: evaluating `{}`: {e}", rule.name, cv.name));
                            None
                        }
                    }
                }
                Err(e) => {
                    report.errors.push(format!(
                        "rule {}: fetching metrics of `{}`: {e}",
                        rule.name, cv.name
                    ));
                    None
                }
            };
            out.push((cv.name.clone(), value));
        }
        out
    }
}

/// Queries whose start times lie within this of each other are fetched together.
const FETCH_GROUP_SPAN: Epoch = 3600;

impl Engine {
    /// Fetches every query from the start its rules need, not all from the
    /// earliest: a rule with a long lookback (an SLO's 3-day window at
    /// 15-minute periods) must not stretch the 1-minute queries of the
    /// others to days. Queries whose starts lie within
    /// [`FETCH_GROUP_SPAN`] share one fetch from the earliest of them.
    async fn fetch_grouped(
        &self,
        queries: &[MetricQuery],
        start_of: &HashMap<String, Epoch>,
        now: Epoch,
    ) -> Result<Vec<firebell_core::ports::MetricSeries>, MetricsError> {
        let mut out = Vec::new();
        for (start, group) in &fetch_groups(queries, start_of, now) {
            out.extend(self.metrics.fetch(group, *start, now).await?);
        }
        Ok(out)
    }
}

/// The fetches of [`Engine::fetch_grouped`]: `(start, queries)`, latest
/// start first; a group spans at most [`FETCH_GROUP_SPAN`] of starts and is
/// fetched from its earliest.
fn fetch_groups(
    queries: &[MetricQuery],
    start_of: &HashMap<String, Epoch>,
    now: Epoch,
) -> Vec<(Epoch, Vec<MetricQuery>)> {
    let mut by_start: Vec<(Epoch, &MetricQuery)> = queries
        .iter()
        .map(|q| (start_of.get(&q.id).copied().unwrap_or(now), q))
        .collect();
    // Latest start (shortest lookback) first.
    by_start.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
    let mut groups: Vec<(Epoch, Vec<MetricQuery>)> = Vec::new();
    let mut latest = None;
    for (start, q) in by_start {
        match (groups.last_mut(), latest) {
            (Some((group_start, group)), Some(l)) if l - start <= FETCH_GROUP_SPAN => {
                *group_start = start;
                group.push(q.clone());
            }
            _ => {
                latest = Some(start);
                groups.push((start, vec![q.clone()]));
            }
        }
    }
    groups
}

/// A metric spec with its wildcard dimensions (`*`) set from an instance's labels.
fn expand_wildcards(spec: &MetricSpec, labels: &Labels) -> MetricSpec {
    let mut spec = spec.clone();
    for (dim, v) in spec.dimensions.iter_mut() {
        if v == "*"
            && let Some(l) = labels.get(dim)
        {
            *v = l.clone();
        }
    }
    spec
}

/// Whether an event makes an alert record (and so needs the context values).
fn makes_alert(ev: &Event) -> bool {
    !matches!(ev, Event::Pending { .. } | Event::PendingCleared { .. })
}

/// The annotation templates with context values bound: a template that
/// mentions a value's name starts with `{% set name = value %}` (`none` when
/// unknown), so the renderer's templates can use it like any variable.
/// Templates that mention none are left as they are.
pub fn with_context(
    annotations: &BTreeMap<String, String>,
    values: &[(String, Option<f64>)],
) -> BTreeMap<String, String> {
    annotations
        .iter()
        .map(|(k, t)| {
            let mut prefix = String::new();
            for (name, v) in values {
                if t.contains(name.as_str()) {
                    let lit = match v {
                        Some(x) if x.is_finite() => {
                            let s = format!("{x:.9}");
                            let s = s.trim_end_matches('0').trim_end_matches('.');
                            if s.is_empty() || s == "-" {
                                "0".to_string()
                            } else {
                                s.to_string()
                            }
                        }
                        _ => "none".to_string(),
                    };
                    prefix.push_str(&format!("{{% set {name} = {lit} %}}"));
                }
            }
            (k.clone(), format!("{prefix}{t}"))
        })
        .collect()
}

impl Engine {
    /// Why a firing alert no longer has a rule or instance behind it, if so.
    fn orphaned(
        &self,
        a: &Alert,
        covered: &HashMap<String, HashSet<String>>,
    ) -> Option<&'static str> {
        let rule = a.name();
        if self.config.rules.get(rule).is_none() {
            return Some("its rule was removed from the config");
        }
        match covered.get(rule) {
            Some(set) if !set.contains(&a.fingerprint) => {
                Some("its instance is gone (the dimension value no longer exists)")
            }
            _ => None,
        }
    }

    /// Resolves an alert nothing evaluates any more, so it does not fire forever.
    async fn resolve_orphan(
        &self,
        writer: &dyn StateStore,
        a: &mut Alert,
        now: Epoch,
        why: &str,
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
            data: encode(&*a),
            expires_at: Some(now + self.opts.resolved_retention_secs),
        };
        match writer.put(item, Expect::Any).await {
            Ok(()) => report.store_writes += 1,
            Err(e) => report.errors.push(format!("resolving {}: {e}", a.name())),
        }
        let mut base = a.labels.clone();
        base.remove("alertstate");
        if writer
            .delete(&keys::state(a.name(), &fingerprint(&base)), Expect::Any)
            .await
            .is_ok()
        {
            report.store_writes += 1;
        }
        report.orphans_resolved += 1;
    }
}

/// What evaluation learned this cycle.
struct Evaluated {
    /// Fresh values of evaluated instances, by alert fingerprint.
    fresh: HashMap<String, Fresh>,
    /// Per due rule whose data was fetched: the fingerprints of its current instances.
    covered: HashMap<String, HashSet<String>>,
    /// A rule was evaluated whose next evaluation counts from this tick.
    paced: bool,
}

/// Where the lease stands in a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaseState {
    /// Nothing written or published yet.
    Untaken,
    /// Taken: the lease item's version.
    Held(u64),
    /// Another cycle wrote since this one read the lease: this cycle writes
    /// and publishes nothing.
    Lost,
}

/// A cycle's view of the store and the notifier: reads go straight
/// through; the first write or publish takes the lease, conditional on the
/// lease item being as the cycle read it at its start (module documentation).
struct Guarded<'a> {
    store: &'a dyn StateStore,
    notifier: &'a dyn Notifier,
    /// Version of the free lease item read at the start; `None` when there
    /// was none (or it had expired).
    seen: Option<u64>,
    owner: &'a str,
    tick: Epoch,
    expires_at: Epoch,
    state: std::sync::Mutex<LeaseState>,
}

impl Guarded<'_> {
    fn state(&self) -> LeaseState {
        self.state.lock().map_or(LeaseState::Lost, |s| *s)
    }

    fn set(&self, state: LeaseState) {
        if let Ok(mut s) = self.state.lock() {
            *s = state;
        }
    }

    fn is_lost(&self) -> bool {
        self.state() == LeaseState::Lost
    }

    fn lease_item(&self, held: bool, version: u64) -> Item {
        Item {
            pk: keys::lease().pk,
            sk: keys::lease().sk,
            version,
            data: encode(&Lease {
                owner: self.owner.to_string(),
                tick: self.tick,
                held,
            }),
            expires_at: held.then_some(self.expires_at),
        }
    }

    /// Takes the lease unless held; fails for good once lost.
    async fn take(&self) -> Result<(), StoreError> {
        match self.state() {
            LeaseState::Held(_) => return Ok(()),
            LeaseState::Lost => return Err(lost()),
            LeaseState::Untaken => {}
        }
        let version = self.seen.map_or(1, |v| v + 1);
        let expect = self.seen.map_or(Expect::Absent, Expect::Version);
        match self.store.put(self.lease_item(true, version), expect).await {
            Ok(()) => {
                self.set(LeaseState::Held(version));
                Ok(())
            }
            Err(e) if e.is_conflict() => {
                self.set(LeaseState::Lost);
                Err(lost())
            }
            Err(e) => Err(e),
        }
    }

    /// Frees a held lease; returns whether it wrote.
    async fn release(&self) -> Result<bool, StoreError> {
        let LeaseState::Held(version) = self.state() else {
            return Ok(false);
        };
        self.store
            .put(
                self.lease_item(false, version + 1),
                Expect::Version(version),
            )
            .await?;
        self.set(LeaseState::Untaken);
        Ok(true)
    }
}

fn lost() -> StoreError {
    StoreError::Unavailable(
        "another cycle wrote since this one started; it writes nothing".to_string(),
    )
}

#[async_trait::async_trait]
impl StateStore for Guarded<'_> {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.store.get(key).await
    }
    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        self.store.batch_get(keys).await
    }
    async fn put(&self, item: Item, expect: Expect) -> Result<(), StoreError> {
        self.take().await?;
        self.store.put(item, expect).await
    }
    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.store.query(pk, sk_prefix).await
    }
    async fn delete(&self, key: &Key, expect: Expect) -> Result<(), StoreError> {
        self.take().await?;
        self.store.delete(key, expect).await
    }
}

#[async_trait::async_trait]
impl Notifier for Guarded<'_> {
    async fn publish(
        &self,
        msg: &firebell_core::ports::Outbound,
    ) -> Result<(), firebell_core::ports::NotifyError> {
        self.take()
            .await
            .map_err(|e| firebell_core::ports::NotifyError::Unavailable(e.to_string()))?;
        self.notifier.publish(msg).await
    }
}

/// The latest datapoint time to judge: trailing buckets where no input has
/// any data are "not arrived yet" for `grace` periods, then they count as missing.
fn judge_until(grid: &Grid, inputs: &BTreeMap<&str, Series>, grace: i64) -> Epoch {
    let last_bucket = grid.time(grid.len.saturating_sub(1));
    // Within the grace window a bucket is judged only once every input has
    // its datapoint: a bucket with requests but not yet errors is not 0%.
    let last_present = (0..grid.len)
        .rev()
        .find(|&i| {
            inputs
                .values()
                .all(|s| s.get(i).copied().flatten().is_some())
        })
        .map(|i| grid.time(i));
    let floor = last_bucket - grace * grid.step;
    match last_present {
        Some(t) => t.max(floor),
        None => floor,
    }
}

/// A fresh view of an evaluated instance, overlaid on its stored alert.
#[derive(Debug, Clone)]
struct Fresh {
    value: Option<f64>,
    recent: Vec<(Epoch, Option<f64>)>,
    /// Annotations with context values bound, for rules that have them.
    annotations: Option<BTreeMap<String, String>>,
}

/// The alert record an event makes visible to the pipeline.
fn alert_for_event(
    rule: &Rule,
    annotations: &BTreeMap<String, String>,
    labels: &Labels,
    nodata_labels: &Labels,
    st: &InstanceState,
    ev: &Event,
    recent: &[(Epoch, Option<f64>)],
) -> Option<Alert> {
    let base = |labels: &Labels, status: AlertStatus| Alert {
        fingerprint: fingerprint(labels),
        labels: labels.clone(),
        annotations: annotations.clone(),
        status,
        active_since: st.active_since.or(st.fired_at).unwrap_or(0),
        fired_at: st.fired_at.unwrap_or(0),
        resolved_at: None,
        value: st.value,
        peak: st.peak,
        op: rule.condition.op,
        threshold: rule.condition.threshold,
        unit: rule.unit,
        recent: recent.to_vec(),
        expression: rule.expression_src.clone(),
        metrics: rule.metrics.clone(),
    };
    match *ev {
        Event::Fired { .. } => Some(base(labels, AlertStatus::Firing)),
        Event::Resolved { at, value } => {
            let mut a = base(labels, AlertStatus::Resolved);
            a.resolved_at = Some(at);
            a.value = value.or(st.value);
            Some(a)
        }
        Event::NoDataStarted { at } => {
            let mut a = base(nodata_labels, AlertStatus::Firing);
            a.active_since = st.nodata_since.unwrap_or(at);
            a.fired_at = at;
            a.value = None;
            Some(a)
        }
        Event::NoDataEnded { at } => {
            let mut a = base(nodata_labels, AlertStatus::Resolved);
            a.active_since = at;
            a.fired_at = at;
            a.resolved_at = Some(at);
            Some(a)
        }
        Event::Pending { .. } | Event::PendingCleared { .. } => None,
    }
}

/// Whether an instance currently counts as firing (for reports and tools).
pub fn is_firing(st: &InstanceState) -> bool {
    matches!(st.status, Status::Firing | Status::NoData)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_values_are_bound_only_where_mentioned() {
        let ann: BTreeMap<String, String> = [
            ("a".to_string(), "left {{ 1 - budget_spent }}".to_string()),
            ("b".to_string(), "https://runbooks.example.com".to_string()),
        ]
        .into();
        let got = with_context(&ann, &[("budget_spent".to_string(), Some(0.25))]);
        assert_eq!(
            got["a"],
            "{% set budget_spent = 0.25 %}left {{ 1 - budget_spent }}"
        );
        assert_eq!(got["b"], "https://runbooks.example.com");
        let got = with_context(&ann, &[("budget_spent".to_string(), None)]);
        assert_eq!(
            got["a"],
            "{% set budget_spent = none %}left {{ 1 - budget_spent }}"
        );
        let got = with_context(&ann, &[("budget_spent".to_string(), Some(1.0 / 3.0))]);
        assert!(got["a"].starts_with("{% set budget_spent = 0.333333333 %}"));
        let got = with_context(&ann, &[("budget_spent".to_string(), Some(-2.0))]);
        assert!(got["a"].starts_with("{% set budget_spent = -2 %}"));
        let got = with_context(&ann, &[("budget_spent".to_string(), Some(1e-12))]);
        assert!(got["a"].starts_with("{% set budget_spent = 0 %}"));
    }

    #[test]
    fn queries_are_fetched_from_the_start_their_rules_need() {
        let q = |id: &str| MetricQuery {
            id: id.to_string(),
            spec: MetricSpec {
                namespace: "N".into(),
                metric_name: id.into(),
                dimensions: BTreeMap::new(),
                stat: firebell_core::model::Stat::Sum,
                period: std::time::Duration::from_secs(60),
            },
        };
        let now = 1_000_000;
        let queries = [q("a"), q("b"), q("c"), q("d"), q("e")];
        let start_of: HashMap<String, Epoch> = [
            ("a", now - 600),
            ("b", now - 7_200),
            ("c", now - 3 * 86_400),
            ("d", now - 1_800),
            ("e", now - 600),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
        let groups: Vec<(Epoch, Vec<String>)> = fetch_groups(&queries, &start_of, now)
            .into_iter()
            .map(|(s, g)| (now - s, g.into_iter().map(|q| q.id).collect()))
            .collect();
        assert_eq!(
            groups,
            [
                (
                    1_800,
                    vec!["a".to_string(), "e".to_string(), "d".to_string()]
                ),
                (7_200, vec!["b".to_string()]),
                (3 * 86_400, vec!["c".to_string()]),
            ]
        );
    }

    #[test]
    fn wildcards_take_the_instance_value() {
        let spec = MetricSpec {
            namespace: "N".into(),
            metric_name: "M".into(),
            dimensions: [("Service".to_string(), "*".to_string())].into(),
            stat: firebell_core::model::Stat::Sum,
            period: std::time::Duration::from_secs(3600),
        };
        let labels: Labels = [("Service".to_string(), "api".to_string())].into();
        assert_eq!(
            expand_wildcards(&spec, &labels).dimensions["Service"],
            "api"
        );
    }
}
