//! Backtests: the real engine — state machine, routing, grouping, silences,
//! rendering — run over history on a simulated clock, one cycle per step,
//! on an in-memory store. The demo, `firebell backtest` and the rule unit
//! tests (`crate::unittest`) all drive the engine through [`Simulator`].
//!
//! ```text
//! history (replay file | captured CloudWatch data)
//!     └─> simulate(from, to): a cycle at from+step, from+2·step, ..., to
//!             └─> Simulation: transitions + published messages, by cycle time
//!                     └─> analyze: per rule / per receiver counts, timeline
//!                     └─> compare(A, B): what a config change would alter
//! ```
//!
//! A cycle at `t` sees the datapoints labelled before `t` (a 1-minute
//! datapoint labelled `t` is complete at `t + 1m`, as CloudWatch labels
//! periods), so a backtest over `[from, to]` judges the data of that range
//! like the Lambda would have if it had run once a minute. It starts on an
//! empty store, as a fresh deployment at `from` would: the first cycle
//! judges each rule's lookback before `from`, so early state changes may be
//! dated before `from` ([`BacktestReport::warmup_transitions`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use firebell_core::alert::AlertStatus;
use firebell_core::model::Labels;
use firebell_core::ports::{
    AlarmService, Clock, MetricQuery, MetricsError, MetricsSource, Outbound,
};
use firebell_core::series::{Epoch, Point};
use firebell_core::state::Event;
use firebell_embedded::{ManualClock, MemoryNotifier, MemoryStore, ReplaySeries};

use firebell_engine::Config;
use firebell_engine::{CycleError, CycleReport, Engine, EngineError, EngineOptions, Transition};

/// One cycle per minute, as the scheduled Lambda runs.
pub const DEFAULT_STEP: i64 = 60;

/// A re-fire this soon after the instance resolved counts as a flap.
pub const FLAP_WINDOW: i64 = 3600;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Start of the range: the first cycle runs at `from + step`.
    pub from: Epoch,
    /// End of the range: the last cycle runs at the last `from + k·step <= to`.
    pub to: Epoch,
    /// Seconds between cycles (default [`DEFAULT_STEP`]).
    pub step: i64,
    /// The lease owner name of the simulated cycles.
    pub owner: String,
}

impl SimOptions {
    pub fn new(from: Epoch, to: Epoch) -> SimOptions {
        SimOptions {
            from,
            to,
            step: DEFAULT_STEP,
            owner: "backtest".to_string(),
        }
    }

    /// The cycle times: `from + step, from + 2·step, ..., <= to`.
    pub fn ticks(&self) -> impl Iterator<Item = Epoch> + use<> {
        let (from, to, step) = (self.from, self.to, self.step.max(1));
        (1..)
            .map(move |k| from + k * step)
            .take_while(move |t| *t <= to)
    }

    /// How many cycles [`SimOptions::ticks`] yields.
    pub fn cycles(&self) -> u64 {
        let step = self.step.max(1);
        u64::try_from((self.to - self.from).max(0) / step).unwrap_or(0)
    }
}

/// What one simulated cycle did.
#[derive(Debug)]
pub struct SimCycle {
    pub now: Epoch,
    pub report: CycleReport,
    /// The messages published in this cycle, in order.
    pub sent: Vec<Outbound>,
}

/// The in-memory world of one simulation: the engine over a metrics
/// source, a [`MemoryStore`], a [`MemoryNotifier`] and a [`ManualClock`]
/// that each [`Simulator::cycle`] sets to the cycle's time.
pub struct Simulator {
    engine: Engine,
    clock: Arc<ManualClock>,
    store: Arc<MemoryStore>,
    notifier: Arc<MemoryNotifier>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("engine", &self.engine)
            .field("now", &self.clock.now_epoch())
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// A fresh world (empty store) whose clock starts at `start`.
    pub fn new(
        config: Arc<Config>,
        source: Arc<dyn MetricsSource>,
        start: Epoch,
        owner: &str,
    ) -> Simulator {
        Simulator::build(config, source, start, owner, false)
    }

    /// [`Simulator::new`], its cycles' views also holding the datapoints
    /// the judge stepped through (`EngineOptions::record_points`), for
    /// [`crate::html::Charts`].
    pub fn charting(
        config: Arc<Config>,
        source: Arc<dyn MetricsSource>,
        start: Epoch,
        owner: &str,
    ) -> Simulator {
        Simulator::build(config, source, start, owner, true)
    }

    fn build(
        config: Arc<Config>,
        source: Arc<dyn MetricsSource>,
        start: Epoch,
        owner: &str,
        record_points: bool,
    ) -> Simulator {
        let clock = Arc::new(ManualClock::at_epoch(start));
        let store = Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>));
        let notifier = Arc::new(MemoryNotifier::new());
        let engine = Engine::new(
            config,
            source,
            store.clone(),
            notifier.clone(),
            EngineOptions {
                owner: owner.to_string(),
                record_views: true,
                record_points,
                ..EngineOptions::default()
            },
        );
        Simulator {
            engine,
            clock,
            store,
            notifier,
        }
    }

    /// The same world with sentinel alarms kept in `alarms`: with
    /// `sentinels: {mode: auto}` in the config, cycles skip the cold rules
    /// (without it, or without this, every rule is polled).
    pub fn with_alarms(self, alarms: Arc<dyn AlarmService>) -> Simulator {
        Simulator {
            engine: self.engine.with_alarms(alarms),
            ..self
        }
    }

    /// Moves the clock to `now` and runs one cycle.
    pub async fn cycle(&self, now: Epoch) -> Result<SimCycle, EngineError> {
        self.clock.set_epoch(now);
        let report = self.engine.run_cycle(now, &|| false).await?;
        let sent = self.notifier.take();
        Ok(SimCycle { now, report, sent })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn store(&self) -> &Arc<MemoryStore> {
        &self.store
    }
}

/// Everything a simulation observed, by cycle time.
#[derive(Debug, Clone, Default)]
pub struct Simulation {
    pub from: Epoch,
    pub to: Epoch,
    pub step: i64,
    pub cycles: usize,
    pub transitions: Vec<(Epoch, Transition)>,
    /// Every message published, with the cycle that published it.
    pub messages: Vec<(Epoch, Outbound)>,
    /// Every notification delivered (one per group and receiver, whatever
    /// the number of topics), as the engine reported it.
    pub notifications: Vec<Notification>,
    /// Problems that did not stop a cycle (fetch failures, ...).
    pub errors: Vec<(Epoch, Arc<CycleError>)>,
}

/// Runs the engine over `[opts.from, opts.to]` on a fresh in-memory world,
/// one cycle per `opts.step`; `on_cycle` sees every cycle as it completes
/// (for progress and live output).
pub async fn simulate(
    config: Arc<Config>,
    source: Arc<dyn MetricsSource>,
    opts: &SimOptions,
    on_cycle: &mut dyn FnMut(&SimCycle),
) -> Result<Simulation, EngineError> {
    simulate_charted(config, source, opts, on_cycle, None).await
}

/// [`simulate`], also filling `charts` (the HTML report's) from every
/// cycle: what it judged, its transitions and messages, and, while
/// something fires, the silences and inhibitions `firebell alerts` would
/// show after it.
pub async fn simulate_charted(
    config: Arc<Config>,
    source: Arc<dyn MetricsSource>,
    opts: &SimOptions,
    on_cycle: &mut dyn FnMut(&SimCycle),
    mut charts: Option<&mut crate::html::Charts>,
) -> Result<Simulation, EngineError> {
    let sim = if charts.is_some() {
        Simulator::charting(config.clone(), source, opts.from, &opts.owner)
    } else {
        Simulator::new(config.clone(), source, opts.from, &opts.owner)
    };
    let mut out = Simulation {
        from: opts.from,
        to: opts.to,
        step: opts.step.max(1),
        ..Simulation::default()
    };
    for now in opts.ticks() {
        let cycle = sim.cycle(now).await?;
        on_cycle(&cycle);
        if let Some(charts) = charts.as_deref_mut() {
            charts.observe(&cycle);
            charts
                .read_muting(sim.store().as_ref(), &config, now, out.step)
                .await;
        }
        out.cycles += 1;
        let SimCycle { report, sent, .. } = cycle;
        out.notifications
            .extend(report.delivered.iter().map(|d| Notification::of(now, d)));
        out.errors
            .extend(report.errors.into_iter().map(|e| (now, Arc::new(e))));
        out.transitions
            .extend(report.transitions.into_iter().map(|t| (now, t)));
        out.messages.extend(sent.into_iter().map(|m| (now, m)));
    }
    if let Some(charts) = charts {
        charts.finish();
    }
    Ok(out)
}

// ------------------------------------------------------------ notifications

pub use firebell_engine::history::{Notification, NotifiedAlert, PAGE_SEVERITY};

pub use firebell_core::text::rfc3339;

// ------------------------------------------------------------------ analysis

/// What a rule did over the backtest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleStats {
    pub rule: String,
    /// Times an instance started firing.
    pub fires: usize,
    /// Times an instance raised NoData.
    pub nodata: usize,
    /// Notifications that list an alert of the rule.
    pub notifications: usize,
    /// Of those, firing notifications of severity `page`.
    pub pages: usize,
    /// Re-fires within [`FLAP_WINDOW`] of the same instance resolving.
    pub flaps: usize,
    /// Seconds any instance was firing within `[from, to]`, summed over
    /// instances (datapoint times; an alert still firing at the end counts
    /// up to the end).
    pub firing_secs: i64,
    /// Instances still firing at the end.
    pub firing_at_end: usize,
}

/// What a receiver got over the backtest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReceiverStats {
    pub receiver: String,
    pub notifications: usize,
    pub pages: usize,
    pub firing: usize,
    pub resolved: usize,
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub enum TimelineEntry {
    /// An alert instance changed state (pending changes are left out).
    Transition { at: Epoch, transition: Transition },
    /// A notification went out (index into [`BacktestReport::notifications`]).
    Notification { at: Epoch, index: usize },
}

impl TimelineEntry {
    pub fn at(&self) -> Epoch {
        match self {
            TimelineEntry::Transition { at, .. } | TimelineEntry::Notification { at, .. } => *at,
        }
    }
}

/// The result of a backtest.
#[derive(Debug, Clone, Default)]
pub struct BacktestReport {
    pub from: Epoch,
    pub to: Epoch,
    pub cycles: usize,
    /// Every rule of the config, in config order.
    pub rules: Vec<RuleStats>,
    /// Every receiver that got something, by name.
    pub receivers: Vec<ReceiverStats>,
    pub notifications: Vec<Notification>,
    /// Transitions (at their datapoint's time) and notifications (at their
    /// cycle's time), in time order.
    pub timeline: Vec<TimelineEntry>,
    pub errors: Vec<(Epoch, Arc<CycleError>)>,
}

impl BacktestReport {
    pub fn rule(&self, name: &str) -> Option<&RuleStats> {
        self.rules.iter().find(|r| r.rule == name)
    }

    pub fn receiver(&self, name: &str) -> Option<&ReceiverStats> {
        self.receivers.iter().find(|r| r.receiver == name)
    }

    pub fn pages(&self) -> usize {
        self.notifications.iter().filter(|n| n.is_page()).count()
    }

    /// When a cycle met a problem (a rule that could not be evaluated, a
    /// failed fetch...): one line saying how many and which rules. The
    /// report is then incomplete and `firebell backtest` exits non-zero.
    pub fn problems(&self) -> Option<String> {
        if self.errors.is_empty() {
            return None;
        }
        let rules: std::collections::BTreeSet<&str> =
            self.errors.iter().filter_map(|(_, e)| e.rule()).collect();
        let which = if rules.is_empty() {
            String::new()
        } else {
            format!(
                " (rules: {})",
                rules.into_iter().collect::<Vec<_>>().join(", ")
            )
        };
        Some(format!(
            "{} cycle error(s){which}; the report is incomplete",
            self.errors.len()
        ))
    }

    /// State changes dated before `from`: the first cycle judged the
    /// rules' lookback before the range (as a fresh deployment would).
    pub fn warmup_transitions(&self) -> usize {
        self.timeline
            .iter()
            .filter(|e| matches!(e, TimelineEntry::Transition { at, .. } if *at < self.from))
            .count()
    }
}

/// `slo payments-availability` for an SLO's rules, `rule X` otherwise.
fn who(rule: &firebell_core::model::Rule) -> String {
    match rule.labels.get("slo") {
        Some(slo) => format!("slo {slo}"),
        None => format!("rule {}", rule.name),
    }
}

/// What a history (a replay file, or the history fetched from CloudWatch)
/// cannot back, said per rule before the results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryNotes {
    /// One line each, without a `note: ` prefix, in config order.
    pub notes: Vec<String>,
    /// Rules whose values or context values (an SLO's error budget) are
    /// computed from less history than their window: rule -> `2h of 30d`.
    pub partial: BTreeMap<String, String>,
}

/// `Shop/Errors {Service="payments"}`.
fn describe_metric(m: &firebell_core::model::MetricSpec) -> String {
    let dims: Vec<String> = m
        .dimensions
        .iter()
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    format!("{}/{} {{{}}}", m.namespace, m.metric_name, dims.join(", "))
}

/// The series of `data` that `m` reads (a wildcard dimension matches any value).
fn series_of<'a>(
    data: &'a [ReplaySeries],
    m: &'a firebell_core::model::MetricSpec,
) -> impl Iterator<Item = &'a ReplaySeries> + 'a {
    data.iter().filter(move |s| {
        s.namespace == m.namespace
            && s.metric == m.metric_name
            && s.dimensions.len() == m.dimensions.len()
            && m.dimensions
                .iter()
                .all(|(k, v)| s.dimensions.get(k).is_some_and(|sv| v == "*" || sv == v))
    })
}

/// Per rule, what `data` (named `what`: `replay`, `CloudWatch`) cannot
/// back for results up to `to`: a metric with no datapoints at all (the
/// rule then sees missing data), an expression whose rolling windows
/// (`RSUM` over 3d) reach back before the data, and a context value (an
/// SLO's error budget) whose window does (its figures are computed from
/// less history, and marked so: "Partial" in the messages). Both are
/// listed in [`HistoryNotes::partial`] for reports to mark.
pub fn history_notes(
    config: &Config,
    data: &[ReplaySeries],
    what: &str,
    to: Epoch,
) -> HistoryNotes {
    let mut out = HistoryNotes::default();
    let span = |secs: i64| {
        firebell_core::decode::format_duration(std::time::Duration::from_secs(secs.unsigned_abs()))
    };
    let push = |out: &mut HistoryNotes, note: String| {
        if !out.notes.contains(&note) {
            out.notes.push(note);
        }
    };
    for rule in &config.rules.rules {
        for (name, m) in &rule.metrics {
            if !series_of(data, m).any(|s| !s.points.is_empty()) {
                push(
                    &mut out,
                    format!(
                        "rule {}: {what} has no datapoints for metric {} (`{name}`)",
                        rule.name,
                        describe_metric(m)
                    ),
                );
            }
        }
        // The expression's rolling windows (RSUM over 3d): every judged
        // value needs that much history before it.
        let step = rule.step();
        let window = u32::try_from(rule.expression.history().saturating_add(1))
            .ok()
            .and_then(|n| step.checked_mul(n))
            .map_or(i64::MAX, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let first = rule
            .metrics
            .values()
            .flat_map(|m| series_of(data, m))
            .filter_map(|s| s.points.first())
            .map(|p| p.t)
            .min();
        if let Some(first) = first
            && to - first < window
        {
            let (covered, window) = (span((to - first).max(0)), span(window));
            out.partial
                .insert(rule.name.clone(), format!("{covered} of {window}"));
            push(
                &mut out,
                format!(
                    "rule {}: {what} covers {covered} of the {window} its expression looks back; its values are computed from less history",
                    rule.name
                ),
            );
        }
        for cv in &rule.context {
            let window = i64::try_from(cv.window.as_secs()).unwrap_or(i64::MAX);
            let first = cv
                .metrics
                .values()
                .flat_map(|m| series_of(data, m))
                .filter_map(|s| s.points.first())
                .map(|p| p.t)
                .min();
            let covered = match first {
                Some(first) => (to - first.max(to.saturating_sub(window))).clamp(0, window),
                None => 0,
            };
            if covered >= window {
                continue;
            }
            let (covered, window) = (span(covered), span(window));
            out.partial
                .insert(rule.name.clone(), format!("{covered} of {window}"));
            push(
                &mut out,
                format!(
                    "{}: {what} covers {covered} of its {window} window (`{}`); figures computed from less history are marked Partial",
                    who(rule),
                    cv.name
                ),
            );
        }
    }
    out
}

/// Counts, flaps, time firing and the timeline of a simulation.
pub fn analyze(config: &Config, sim: &Simulation) -> BacktestReport {
    let notifications = sim.notifications.clone();
    let mut rules: Vec<RuleStats> = config
        .rules
        .rules
        .iter()
        .map(|r| RuleStats {
            rule: r.name.clone(),
            ..RuleStats::default()
        })
        .collect();
    let mut index: HashMap<String, usize> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| (r.rule.clone(), i))
        .collect();
    let mut stats_of = |rule: &str, rules: &mut Vec<RuleStats>| -> usize {
        *index.entry(rule.to_string()).or_insert_with(|| {
            rules.push(RuleStats {
                rule: rule.to_string(),
                ..RuleStats::default()
            });
            rules.len() - 1
        })
    };

    // Per instance: when it fired, when it last resolved.
    let mut firing_since: BTreeMap<(String, Labels), Epoch> = BTreeMap::new();
    let mut last_resolved: BTreeMap<(String, Labels), Epoch> = BTreeMap::new();
    let mut timeline = Vec::new();
    for (_, t) in &sim.transitions {
        let i = stats_of(&t.rule, &mut rules);
        let key = (t.rule.clone(), t.labels.clone());
        match t.event {
            Event::Fired { at, .. } => {
                rules[i].fires += 1;
                if last_resolved
                    .get(&key)
                    .is_some_and(|r| at - r <= FLAP_WINDOW)
                {
                    rules[i].flaps += 1;
                }
                firing_since.insert(key, at);
            }
            Event::Resolved { at, .. } => {
                if let Some(since) = firing_since.remove(&key) {
                    rules[i].firing_secs += (at - since.max(sim.from)).max(0);
                }
                last_resolved.insert(key, at);
            }
            Event::NoDataStarted { .. } => rules[i].nodata += 1,
            Event::NoDataEnded { .. } | Event::Pending { .. } | Event::PendingCleared { .. } => {}
        }
        if !matches!(
            t.event,
            Event::Pending { .. } | Event::PendingCleared { .. }
        ) {
            timeline.push(TimelineEntry::Transition {
                at: t.event.at(),
                transition: t.clone(),
            });
        }
    }
    for ((rule, _), since) in firing_since {
        let i = stats_of(&rule, &mut rules);
        rules[i].firing_secs += (sim.to - since.max(sim.from)).max(0);
        rules[i].firing_at_end += 1;
    }

    let mut receivers: BTreeMap<String, ReceiverStats> = BTreeMap::new();
    for (idx, n) in notifications.iter().enumerate() {
        let r = receivers
            .entry(n.receiver.clone())
            .or_insert_with(|| ReceiverStats {
                receiver: n.receiver.clone(),
                ..ReceiverStats::default()
            });
        r.notifications += 1;
        if n.is_page() {
            r.pages += 1;
        }
        if n.status == AlertStatus::Firing {
            r.firing += 1;
        } else {
            r.resolved += 1;
        }
        let mut named: BTreeSet<&str> = n.alerts.iter().map(|a| a.alertname.as_str()).collect();
        if !n.alertname.is_empty() {
            named.insert(&n.alertname);
        }
        for rule in named {
            let i = stats_of(rule, &mut rules);
            rules[i].notifications += 1;
            if n.is_page() {
                rules[i].pages += 1;
            }
        }
        timeline.push(TimelineEntry::Notification {
            at: n.at,
            index: idx,
        });
    }
    // Stable: transitions of a cycle come before what the cycle sent.
    timeline.sort_by_key(TimelineEntry::at);

    BacktestReport {
        from: sim.from,
        to: sim.to,
        cycles: sim.cycles,
        rules,
        receivers: receivers.into_values().collect(),
        notifications,
        timeline,
        errors: sim.errors.clone(),
    }
}

// ------------------------------------------------------------------ compare

/// Per-rule counts of two backtests side by side.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleDelta {
    pub rule: String,
    /// `None`: the rule is not in that config.
    pub a: Option<RuleStats>,
    pub b: Option<RuleStats>,
}

/// What changing config A into config B would have altered.
#[derive(Debug, Clone, Default)]
pub struct Comparison {
    pub only_a: Vec<Notification>,
    pub only_b: Vec<Notification>,
    /// Notifications both sent (same time, receiver, status, alertname, group).
    pub common: usize,
    pub rules: Vec<RuleDelta>,
}

impl Comparison {
    pub fn is_same(&self) -> bool {
        self.only_a.is_empty() && self.only_b.is_empty() && self.rules.iter().all(|r| r.a == r.b)
    }
}

/// Compares two backtests of the same history.
pub fn compare(a: &BacktestReport, b: &BacktestReport) -> Comparison {
    let mut remaining: BTreeMap<_, usize> = BTreeMap::new();
    for n in &b.notifications {
        *remaining.entry(n.key()).or_default() += 1;
    }
    let mut only_a = Vec::new();
    let mut common = 0;
    for n in &a.notifications {
        match remaining.get_mut(&n.key()) {
            Some(c) if *c > 0 => {
                *c -= 1;
                common += 1;
            }
            _ => only_a.push(n.clone()),
        }
    }
    let mut in_a: BTreeMap<_, usize> = BTreeMap::new();
    for n in &a.notifications {
        *in_a.entry(n.key()).or_default() += 1;
    }
    let mut only_b = Vec::new();
    for n in &b.notifications {
        match in_a.get_mut(&n.key()) {
            Some(c) if *c > 0 => *c -= 1,
            _ => only_b.push(n.clone()),
        }
    }
    let mut names: Vec<String> = a.rules.iter().map(|r| r.rule.clone()).collect();
    for r in &b.rules {
        if !names.contains(&r.rule) {
            names.push(r.rule.clone());
        }
    }
    let rules = names
        .into_iter()
        .map(|rule| RuleDelta {
            a: a.rule(&rule).cloned(),
            b: b.rule(&rule).cloned(),
            rule,
        })
        .collect();
    Comparison {
        only_a,
        only_b,
        common,
        rules,
    }
}

// ------------------------------------------------------------------ capture

/// History fetched from a metrics source, ready for a `ReplaySource`.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    pub series: Vec<ReplaySeries>,
    /// Fetches whose answer the source marked partial (kept anyway).
    pub partial: usize,
    pub queries: usize,
    pub chunks: usize,
}

/// How much history before `from` the rules need to judge the first cycle.
pub fn warmup(config: &Config) -> i64 {
    config
        .rules
        .rules
        .iter()
        .map(|r| (r.lookback() + r.step()).as_secs() as i64)
        .max()
        .unwrap_or(0)
}

/// What [`capture`] will fetch: every metric the rules use (wildcards
/// expanded as the engine does, each query once), over which range, in how
/// many chunks. Known before any datapoint is fetched, so a caller can say
/// what it will cost ([`CapturePlan::metrics_requested`]) before it starts.
#[derive(Debug, Clone)]
pub struct CapturePlan {
    specs: Vec<firebell_core::model::MetricSpec>,
    /// `from` aligned down to the longest period.
    pub start: Epoch,
    pub to: Epoch,
    /// Seconds of history per fetch (a multiple of the longest period).
    pub chunk: i64,
}

impl CapturePlan {
    /// The queries, in config order.
    pub fn specs(&self) -> &[firebell_core::model::MetricSpec] {
        &self.specs
    }

    pub fn queries(&self) -> usize {
        self.specs.len()
    }

    /// Fetches (time ranges) the capture makes.
    pub fn chunks(&self) -> usize {
        if self.specs.is_empty() {
            return 0;
        }
        usize::try_from(((self.to - self.start).max(0) + self.chunk - 1) / self.chunk).unwrap_or(0)
    }

    /// Metrics requested from the source (what GetMetricData bills: $0.01
    /// per 1,000, [`crate::cost::Prices`]): every query once per chunk and
    /// per NextToken page of its call, estimated as CloudWatch pages: the
    /// queries of one period in calls of [`GET_METRIC_DATA_QUERIES`], a
    /// call answering [`GET_METRIC_DATA_PAGE_POINTS`] datapoints a page,
    /// each page requesting the call's queries again.
    pub fn metrics_requested(&self) -> u64 {
        let mut by_period: BTreeMap<i64, u64> = BTreeMap::new();
        for s in &self.specs {
            *by_period
                .entry((s.period.as_secs() as i64).max(1))
                .or_default() += 1;
        }
        let mut total = 0u64;
        let mut t = self.start;
        while t < self.to && self.chunk > 0 {
            let end = (t + self.chunk).min(self.to);
            for (period, n) in &by_period {
                let per_query = ((end - t) + period - 1) / period;
                let mut left = *n;
                while left > 0 {
                    let k = left.min(GET_METRIC_DATA_QUERIES);
                    let points = k.saturating_mul(per_query.max(0) as u64);
                    let pages = points.div_ceil(GET_METRIC_DATA_PAGE_POINTS).max(1);
                    total = total.saturating_add(k.saturating_mul(pages));
                    left -= k;
                }
            }
            t = end;
        }
        total
    }

    /// [`CapturePlan::metrics_requested`] without NextToken pages: queries
    /// × chunks.
    pub fn metrics_without_pages(&self) -> u64 {
        (self.queries() as u64).saturating_mul(self.chunks() as u64)
    }

    /// The GetMetricData cost of the capture at `prices`.
    pub fn cost(&self, prices: &crate::cost::Prices) -> f64 {
        self.metrics_requested() as f64 * prices.get_metric_data_per_1000_metrics / 1000.0
    }

    /// Fetches the planned queries from `source`, chunk by chunk, keeping
    /// each chunk's points within it (none at or after `to`);
    /// `progress(done, total)` is called after every chunk.
    pub async fn run(
        self,
        source: Arc<dyn MetricsSource>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Capture, MetricsError> {
        let total = self.chunks();
        let queries: Vec<MetricQuery> = self
            .specs
            .iter()
            .enumerate()
            .map(|(i, spec)| MetricQuery {
                id: format!("q{i}"),
                spec: spec.clone(),
            })
            .collect();
        let mut points: Vec<Vec<Point>> = vec![Vec::new(); queries.len()];
        let mut out = Capture {
            queries: queries.len(),
            chunks: total,
            ..Capture::default()
        };
        let mut t = self.start;
        let mut done = 0;
        while t < self.to && !queries.is_empty() {
            let end = (t + self.chunk).min(self.to);
            for s in source.fetch(&queries, t, end).await? {
                if !s.complete {
                    out.partial += 1;
                }
                let Some(i) = s.id.strip_prefix('q').and_then(|n| n.parse::<usize>().ok()) else {
                    continue;
                };
                // A source may answer past `end` (CloudWatch rounds the
                // range out to the period): a bucket at or after `to` is
                // still in progress, and one at `end` is the next chunk's.
                if let Some(p) = points.get_mut(i) {
                    p.extend(s.points.into_iter().filter(|p| p.t >= t && p.t < end));
                }
            }
            done += 1;
            progress(done, total);
            t = end;
        }
        out.series = self
            .specs
            .into_iter()
            .zip(points)
            .map(|(spec, points)| ReplaySeries {
                namespace: spec.namespace,
                metric: spec.metric_name,
                dimensions: spec.dimensions,
                stat: spec.stat,
                period: spec.period.as_secs() as i64,
                points,
                account: spec.account,
                region: spec.region,
                query: spec.query,
            })
            .collect();
        Ok(out)
    }
}

/// Queries one GetMetricData call takes at most.
pub const GET_METRIC_DATA_QUERIES: u64 = 500;

/// Datapoints one GetMetricData answer (page) holds at most; more come
/// with a NextToken, in another call that requests the queries again.
pub const GET_METRIC_DATA_PAGE_POINTS: u64 = 100_800;

/// Plans a [`capture`]: resolves the rules' instances (wildcards expanded
/// through `source`, as of `to`) into the set of queries to fetch over
/// `[from, to)` in chunks of `chunk_secs`.
pub async fn plan_capture(
    config: Arc<Config>,
    source: Arc<dyn MetricsSource>,
    from: Epoch,
    to: Epoch,
    chunk_secs: i64,
) -> Result<CapturePlan, MetricsError> {
    let sim = Simulator::new(config.clone(), source, to, "capture");
    let mut specs = Vec::new();
    let mut seen = BTreeSet::new();
    for rule in &config.rules.rules {
        for inst in sim.engine().instances(rule).await? {
            for spec in inst.specs.into_values() {
                if seen.insert(spec.dedup_key()) {
                    specs.push(spec);
                }
            }
        }
    }
    let align = specs
        .iter()
        .map(|s| s.period.as_secs() as i64)
        .max()
        .unwrap_or(60)
        .max(1);
    Ok(CapturePlan {
        specs,
        start: from.div_euclid(align) * align,
        to,
        chunk: (chunk_secs.max(align) / align) * align,
    })
}

/// Fetches every metric the rules use (wildcards expanded as the engine
/// does) over `[from, to)` from `source`, in chunks of `chunk_secs`, so a
/// backtest over a remote source (CloudWatch) costs a few large queries
/// instead of one per simulated minute: [`plan_capture`], then
/// [`CapturePlan::run`]. `progress(done, total)` is called after every chunk.
pub async fn capture(
    config: Arc<Config>,
    source: Arc<dyn MetricsSource>,
    from: Epoch,
    to: Epoch,
    chunk_secs: i64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Capture, MetricsError> {
    plan_capture(config, source.clone(), from, to, chunk_secs)
        .await?
        .run(source, progress)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use firebell_embedded::ReplaySource;

    const RULES: &str = r#"
rules:
  - name: Errors
    metrics:
      e: {namespace: N, metric: Errors, dimensions: {Service: "*"}, stat: Sum, period: 1m}
    expression: e
    condition: {op: ">", threshold: 5}
    labels: {team: a, severity: page}
receivers:
  a: {topics: [arn:aws:sns:us-east-1:123456789012:topic-a, arn:aws:sns:us-east-1:123456789012:topic-b]}
route:
  receiver: a
  group_by: [alertname, Service]
  group_wait: 0s
  group_interval: 5m
  repeat_interval: 4h
"#;

    fn config(text: &str) -> Arc<Config> {
        let mut diags = firebell_core::diag::Diagnostics::new();
        let c = firebell_engine::load_texts(
            &[("c.yaml".to_string(), text.to_string())],
            &mut diags,
            Vec::new(),
        );
        assert!(!diags.has_errors(), "{diags}");
        Arc::new(c)
    }

    /// `values[i]` at `T0 + 60 i`.
    fn series(service: &str, values: &[f64]) -> ReplaySeries {
        ReplaySeries {
            namespace: "N".into(),
            metric: "Errors".into(),
            dimensions: [("Service".to_string(), service.to_string())].into(),
            stat: firebell_core::model::Stat::Sum,
            period: 60,
            account: None,
            region: None,
            query: None,
            points: values
                .iter()
                .enumerate()
                .map(|(i, v)| Point {
                    t: T0 + 60 * i as i64,
                    v: *v,
                })
                .collect(),
        }
    }

    /// A whole hour.
    const T0: Epoch = 1_800_000_000;

    fn run(config: &Arc<Config>, source: ReplaySource, minutes: i64) -> BacktestReport {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let opts = SimOptions::new(T0, T0 + 60 * minutes);
        let sim = rt
            .block_on(simulate(
                config.clone(),
                Arc::new(source),
                &opts,
                &mut |_| {},
            ))
            .unwrap();
        analyze(config, &sim)
    }

    #[test]
    fn a_rule_that_cannot_be_evaluated_makes_the_report_incomplete() {
        let ok = run(
            &config(RULES),
            ReplaySource::from_series([series("a", &[0.; 5])]),
            5,
        );
        assert_eq!(ok.problems(), None);
        let mut broken = (*config(RULES)).clone();
        broken.rules.rules[0].pending =
            firebell_core::model::Pending::For(std::time::Duration::from_secs(u64::MAX));
        let report = run(
            &Arc::new(broken),
            ReplaySource::from_series([series("a", &[0.; 5])]),
            5,
        );
        assert_eq!(
            report.problems().as_deref(),
            Some("5 cycle error(s) (rules: Errors); the report is incomplete")
        );
    }

    #[test]
    fn ticks_end_at_to() {
        let o = SimOptions::new(0, 180);
        assert_eq!(o.ticks().collect::<Vec<_>>(), vec![60, 120, 180]);
        assert_eq!(o.cycles(), 3);
        assert_eq!(SimOptions::new(0, 0).ticks().count(), 0);
    }

    #[test]
    fn counts_fires_flaps_pages_and_time_firing() {
        // a: fires at 2, resolves at 5, fires again at 8 (a flap), still firing at the end.
        // b: never fires.
        let a = series("a", &[0., 0., 9., 9., 9., 0., 0., 0., 9., 9.]);
        let b = series("b", &[0.; 10]);
        let report = run(&config(RULES), ReplaySource::from_series([a, b]), 10);
        let r = report.rule("Errors").unwrap();
        assert_eq!(r.fires, 2);
        assert_eq!(r.flaps, 1);
        assert_eq!(r.firing_at_end, 1);
        // 2..5 (3m) and 8..10 (2m, up to the end of the range).
        assert_eq!(r.firing_secs, 5 * 60);
        // Two topics, one notification each time.
        assert!(
            report
                .notifications
                .iter()
                .all(|n| n.destinations.len() == 2)
        );
        let firing: Vec<&Notification> = report
            .notifications
            .iter()
            .filter(|n| n.status == AlertStatus::Firing)
            .collect();
        assert_eq!(
            firing[0].at,
            T0 + 3 * 60,
            "the cycle after the 2nd minute ends"
        );
        assert_eq!(firing[0].labels()["Service"], "a");
        assert_eq!(firing[0].value(), Some(9.0));
        assert!(firing[0].is_page());
        assert_eq!(r.pages, report.pages());
        assert_eq!(r.notifications, report.notifications.len());
        let rc = report.receiver("a").unwrap();
        assert_eq!(rc.notifications, report.notifications.len());
        assert_eq!(rc.firing + rc.resolved, rc.notifications);
        assert!(report.timeline.windows(2).all(|w| w[0].at() <= w[1].at()));
    }

    #[test]
    fn compare_shows_what_a_threshold_change_alters() {
        let a = series("a", &[0., 0., 9., 9., 9., 0., 0., 0., 7., 7.]);
        let higher = RULES.replace("threshold: 5", "threshold: 8");
        let src = ReplaySource::from_series([a]);
        let ra = run(&config(RULES), src.clone(), 10);
        let rb = run(&config(&higher), src, 10);
        let c = compare(&ra, &rb);
        assert!(!c.is_same());
        assert!(c.only_b.is_empty(), "B sends a subset of A");
        assert_eq!(c.only_a.len(), ra.notifications.len() - c.common);
        assert!(c.only_a.iter().all(|n| n.at >= T0 + 8 * 60));
        assert_eq!(c.rules[0].a.as_ref().unwrap().fires, 2);
        assert_eq!(c.rules[0].b.as_ref().unwrap().fires, 1);
        assert!(compare(&ra, &ra).is_same());
    }

    #[test]
    fn capture_reproduces_the_source() {
        let a = series("a", &[0., 0., 9., 9., 9., 0., 0., 0., 7., 7.]);
        let b = series("b", &[1.; 10]);
        let original = ReplaySource::from_series([a, b]);
        let cfg = config(RULES);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut calls = Vec::new();
        let cap = rt
            .block_on(capture(
                cfg.clone(),
                Arc::new(original.clone()),
                T0 - 3600,
                T0 + 600,
                240,
                &mut |d, t| calls.push((d, t)),
            ))
            .unwrap();
        assert_eq!(cap.queries, 2);
        assert_eq!(calls.last(), Some(&(cap.chunks, cap.chunks)));
        // 70 minutes in 4-minute chunks: 18 fetches of both series.
        assert_eq!(cap.chunks, 18);
        let plan = rt
            .block_on(plan_capture(
                cfg.clone(),
                Arc::new(original.clone()),
                T0 - 3600,
                T0 + 600,
                240,
            ))
            .unwrap();
        assert_eq!((plan.queries(), plan.chunks()), (2, 18));
        assert_eq!(plan.metrics_requested(), 36);
        assert!((plan.cost(&crate::cost::Prices::default()) - 0.000_36).abs() < 1e-12);
        let mut got = cap.series.clone();
        got.sort_by(|x, y| x.dimensions.cmp(&y.dimensions));
        assert_eq!(got, original.series());
        let direct = run(&cfg, original, 10);
        let replayed = run(&cfg, ReplaySource::from_series(cap.series), 10);
        assert!(compare(&direct, &replayed).is_same());
        assert_eq!(direct.notifications, replayed.notifications);
    }

    /// Answers every query with a point at `start` and one at `end`, as
    /// CloudWatch does when it rounds the range out to the period.
    struct PastTheEnd;

    #[async_trait::async_trait]
    impl MetricsSource for PastTheEnd {
        async fn fetch(
            &self,
            queries: &[MetricQuery],
            start: Epoch,
            end: Epoch,
        ) -> Result<Vec<firebell_core::ports::MetricSeries>, MetricsError> {
            Ok(queries
                .iter()
                .map(|q| firebell_core::ports::MetricSeries {
                    id: q.id.clone(),
                    points: vec![Point { t: start, v: 1.0 }, Point { t: end, v: 2.0 }],
                    complete: true,
                })
                .collect())
        }

        async fn dimension_values(
            &self,
            _: &firebell_core::model::MetricSpec,
        ) -> Result<Vec<firebell_core::model::Labels>, MetricsError> {
            Ok(vec![[("Service".to_string(), "a".to_string())].into()])
        }
    }

    #[test]
    fn a_capture_keeps_no_point_at_or_after_to() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let cap = rt
            .block_on(capture(
                config(RULES),
                Arc::new(PastTheEnd),
                T0,
                T0 + 600,
                240,
                &mut |_, _| {},
            ))
            .unwrap();
        let times: Vec<Epoch> = cap.series[0].points.iter().map(|p| p.t - T0).collect();
        // Chunks [0, 240), [240, 480), [480, 600): each answers its start
        // and its end; an end is the next chunk's (kept once) or `to`
        // (dropped).
        assert_eq!(times, [0, 240, 480]);
    }

    #[test]
    fn the_cost_estimate_counts_next_token_pages() {
        let spec = |i: usize, period: u64| firebell_core::model::MetricSpec {
            namespace: "N".into(),
            metric_name: format!("M{i}"),
            dimensions: BTreeMap::new(),
            stat: firebell_core::model::Stat::Sum,
            period: std::time::Duration::from_secs(period),
            account: None,
            region: None,
            query: None,
        };
        // 600 one-minute queries over two days in 1-day chunks: per chunk a
        // call of 500 (720,000 datapoints: 8 pages) and one of 100 (144,000:
        // 2 pages); one 5-minute query (288 datapoints: 1 page).
        let mut specs: Vec<_> = (0..600).map(|i| spec(i, 60)).collect();
        specs.push(spec(600, 300));
        let plan = CapturePlan {
            specs,
            start: T0,
            to: T0 + 2 * 86_400,
            chunk: 86_400,
        };
        assert_eq!(plan.metrics_without_pages(), 601 * 2);
        assert_eq!(plan.metrics_requested(), 2 * (500 * 8 + 100 * 2 + 1));
        // Small answers: one page each.
        let small = CapturePlan {
            specs: vec![spec(0, 60)],
            start: T0,
            to: T0 + 3600,
            chunk: 600,
        };
        assert_eq!(
            (small.metrics_without_pages(), small.metrics_requested()),
            (6, 6)
        );
    }
}
