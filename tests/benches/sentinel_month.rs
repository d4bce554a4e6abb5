//! Sentinel mode over a simulated month: what 1,000 rules cost in
//! GetMetricData and alarms when polled every minute, when watched by
//! sentinel alarms (`sentinels: {mode: auto}`), and as plain CloudWatch
//! alarms.
//!
//! ```sh
//! cargo bench -p firebell-tests --bench sentinel_month
//! ```
//!
//! **What is simulated.** 1,000 rules in three kinds, each over metrics of
//! its own: 400 simple threshold rules (a `Latency` p99 above 800 ms for
//! 5 minutes), 402 ratio rules (`100 * FILL(errors, 0) / requests` above 1%
//! for 5 minutes) and 66 SLOs (99.9% over 30 days; each generates 3
//! burn-rate rules: 198 rules). Their data is generated per minute,
//! deterministically: quiet values (latencies of 200-500 ms, error ratios
//! under 0.4%, SLO error ratios of about 0.03%), and per rule (or SLO) in
//! the month **2 incidents of 30 minutes** (1,500 ms; 10% errors), which
//! fire, and **6 noisy minutes** (one minute at 1,000 ms, 3% errors, 1% SLO
//! errors), which trip the sentinel without firing the rule.
//!
//! **Sentinel mode is the real engine over the whole month**: 43,800
//! one-minute cycles of `Engine::run_cycle` on a `MemoryStore`, a
//! generated in-process `MetricsSource` that counts the metrics it is asked
//! for (what GetMetricData bills), and `FastAlarms`, an alarm service over
//! the same generated data: it keeps the `SentinelAlarm`s the engine puts
//! and evaluates each as CloudWatch does (ALARM while one of the last
//! `EvaluationPeriods` periods breaches), its expression in firebell's
//! language on each new period once (incrementally, which is what makes a
//! month fit in minutes). Every 4,380 cycles every alarm's state is
//! checked against `SimulatedAlarms::evaluate` (the embedded adapter's
//! full-range evaluation) on the same data; a difference fails the bench.
//! DescribeAlarms requests are counted as CloudWatch pages them (100 alarms
//! a page, at least one a call), PutMetricAlarm and DeleteAlarms calls too.
//!
//! **Polling mode** requests the same metrics every cycle (the 3-day SLO
//! ticket every 15 minutes), so it runs the same engine with `mode: off`
//! for 120 cycles (a multiple of 15) and multiplies by 43,800 / 120; its
//! context fetches at incidents (an SLO's budget) are left out.
//!
//! **The bill** here is what differs between the three: GetMetricData
//! ($0.01 per 1,000 metrics), the alarms ($0.10 per metric; the CloudWatch
//! side as `firebell cost` counts it: `alarm_equivalent`, with the
//! multi-window SLO alarms and composites) and the alarm API calls ($0.01
//! per 1,000, shared by the sentinels and split among the kinds by their
//! number of sentinels). Lambda, DynamoDB and SNS are the same in both
//! firebell modes and not counted.
//!
//! The target (issue 15): sentinel mode within 1.2x of the CloudWatch
//! alarms for threshold and ratio rules, below them for SLOs. A 15-minute
//! sweep requests each metric 2,920 times a month ($0.029) against $0.10
//! for its alarm, so the month is simulated again at the shortest sweep
//! that meets the target for both (worked out from the first month: the
//! sweep requests scale with 1 / sweep, the rest is measured).
//!
//! Exits 1 when a cycle fails, an alarm state differs from
//! `SimulatedAlarms`, or an incident does not fire.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use firebell_core::diag::Diagnostics;
use firebell_core::ports::{
    AlarmError, AlarmInfo, AlarmService, AlarmState, Clock, MetricQuery, MetricSeries,
    MetricsError, MetricsSource,
};
use firebell_core::sentinel::SentinelAlarm;
use firebell_core::series::{Epoch, Grid, Point};
use firebell_core::state::Event;
use firebell_embedded::{ManualClock, MemoryNotifier, MemoryStore, SimulatedAlarms};
use firebell_engine::{Config, Engine, EngineOptions};
use firebell_tools::cost::{Assumptions, Prices, alarm_equivalent};

/// 2026-01-01T00:00:00Z.
const BASE: Epoch = 1_767_225_600;
const MONTH_MINUTES: i64 = 43_800;
const THRESHOLD_RULES: usize = 400;
const RATIO_RULES: usize = 402;
const SLOS: usize = 66;
const INCIDENTS: usize = 2;
const INCIDENT_MINUTES: i64 = 30;
const NOISY_MINUTES: usize = 6;
const POLLING_CYCLES: i64 = 120;
/// Every so many cycles, every alarm's state is checked against `SimulatedAlarms`.
const CHECK_EVERY: i64 = 4_380;
/// Minutes of data before the month (the 3-day SLO ticket's lookback).
const HISTORY_MINUTES: i64 = 4 * 1440;
const PER_METRIC: f64 = 0.01 / 1000.0;
const PER_API_REQUEST: f64 = 0.01 / 1000.0;
const PER_ALARM_METRIC: f64 = 0.10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Threshold,
    Ratio,
    Slo,
}

const KINDS: [Kind; 3] = [Kind::Threshold, Kind::Ratio, Kind::Slo];

impl Kind {
    fn index(self) -> usize {
        self as usize
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Threshold => "threshold",
            Kind::Ratio => "ratio",
            Kind::Slo => "SLO",
        }
    }

    fn namespace(self) -> &'static str {
        match self {
            Kind::Threshold => "Bench/Threshold",
            Kind::Ratio => "Bench/Ratio",
            Kind::Slo => "Bench/Slo",
        }
    }

    fn of_namespace(ns: &str) -> Option<Kind> {
        KINDS.into_iter().find(|k| k.namespace() == ns)
    }

    /// The kind of a rule, by its name.
    fn of_rule(rule: &str) -> Option<Kind> {
        if rule.starts_with("thr-") {
            Some(Kind::Threshold)
        } else if rule.starts_with("ratio-") {
            Some(Kind::Ratio)
        } else if rule.starts_with("slo-") {
            Some(Kind::Slo)
        } else {
            None
        }
    }

    fn count(self) -> usize {
        match self {
            Kind::Threshold => THRESHOLD_RULES,
            Kind::Ratio => RATIO_RULES,
            Kind::Slo => SLOS,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    Latency,
    Errors,
    Requests,
}

impl Metric {
    fn of_name(name: &str) -> Option<Metric> {
        match name {
            "Latency" => Some(Metric::Latency),
            "Errors" => Some(Metric::Errors),
            "Requests" => Some(Metric::Requests),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Quiet,
    Noisy,
    Incident,
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The generated month: per kind and id, its incidents and noisy minutes
/// (absolute minutes), and the SLOs' per-minute prefix sums (their
/// 15-minute ticket queries sum 15 minutes).
struct Data {
    /// [kind][id] -> (first minute, minutes, phase).
    events: [Vec<Vec<(i64, i64, Phase)>>; 3],
    first_minute: i64,
    /// [id] -> (errors, requests) prefix sums from `first_minute`.
    slo_sums: Vec<(Vec<f64>, Vec<f64>)>,
}

impl Data {
    fn new() -> Data {
        let base_minute = BASE / 60;
        let mut events: [Vec<Vec<(i64, i64, Phase)>>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        for kind in KINDS {
            for id in 0..kind.count() {
                let mut seed = ((kind.index() as u64) << 40) ^ (id as u64) ^ 0x5eed;
                let mut next = |span: i64| {
                    seed = splitmix(seed);
                    (seed % span.unsigned_abs()) as i64
                };
                // One event per eighth of the month (past the polling
                // sample), so that none overlaps another: the incidents
                // in the second and sixth.
                let events_n = (INCIDENTS + NOISY_MINUTES) as i64;
                let segment = (MONTH_MINUTES - POLLING_CYCLES - 60) / events_n;
                let mut ev = Vec::new();
                for e in 0..events_n {
                    let incident = e == 1 || (e == 5 && INCIDENTS > 1);
                    let at = POLLING_CYCLES + 60 + e * segment + next(segment - 240);
                    if incident {
                        ev.push((base_minute + at, INCIDENT_MINUTES, Phase::Incident));
                    } else {
                        ev.push((base_minute + at, 1, Phase::Noisy));
                    }
                }
                ev.sort_unstable_by_key(|e| e.0);
                events[kind.index()].push(ev);
            }
        }
        let first_minute = base_minute - HISTORY_MINUTES;
        let mut data = Data {
            events,
            first_minute,
            slo_sums: Vec::new(),
        };
        let minutes = HISTORY_MINUTES + MONTH_MINUTES + 60;
        for id in 0..SLOS {
            let mut errors = Vec::with_capacity(minutes as usize + 1);
            let mut requests = Vec::with_capacity(minutes as usize + 1);
            let (mut e, mut r) = (0.0, 0.0);
            errors.push(0.0);
            requests.push(0.0);
            for m in first_minute..first_minute + minutes {
                e += data.minute(Kind::Slo, id, Metric::Errors, m);
                r += data.minute(Kind::Slo, id, Metric::Requests, m);
                errors.push(e);
                requests.push(r);
            }
            data.slo_sums.push((errors, requests));
        }
        data
    }

    fn phase(&self, kind: Kind, id: usize, minute: i64) -> Phase {
        let Some(ev) = self.events[kind.index()].get(id) else {
            return Phase::Quiet;
        };
        let mut phase = Phase::Quiet;
        for &(at, len, p) in ev {
            if at > minute {
                break;
            }
            if minute < at + len {
                if p == Phase::Incident {
                    return p;
                }
                phase = p;
            }
        }
        phase
    }

    /// One minute's value.
    fn minute(&self, kind: Kind, id: usize, metric: Metric, minute: i64) -> f64 {
        let h = splitmix(
            ((kind.index() as u64) << 56)
                ^ ((id as u64) << 36)
                ^ ((metric as u64) << 32)
                ^ (minute as u64),
        );
        let requests = 800.0 + (h % 400) as f64;
        let phase = self.phase(kind, id, minute);
        match (kind, metric) {
            (_, Metric::Latency) => match phase {
                Phase::Quiet => 200.0 + (h % 300) as f64 + 0.5,
                Phase::Noisy => 1_000.0,
                Phase::Incident => 1_500.0,
            },
            (_, Metric::Requests) => requests,
            (Kind::Slo, Metric::Errors) => {
                // The requests of the same minute (their own hash).
                let total = self.minute(kind, id, Metric::Requests, minute);
                match phase {
                    Phase::Quiet => f64::from(u8::from(h % 1000 < 300)),
                    Phase::Noisy => (total * 0.01).round(),
                    Phase::Incident => (total * 0.10).round(),
                }
            }
            (_, Metric::Errors) => {
                let total = self.minute(kind, id, Metric::Requests, minute);
                match phase {
                    Phase::Quiet => (h % 4) as f64,
                    Phase::Noisy => (total * 0.03).round(),
                    Phase::Incident => (total * 0.10).round(),
                }
            }
        }
    }

    /// The value of a period of `period` seconds starting at `t`: one
    /// minute, or (for the SLOs' Sum queries) the sum of its minutes.
    fn value(&self, kind: Kind, id: usize, metric: Metric, t: Epoch, period: i64) -> f64 {
        let minute = t.div_euclid(60);
        if period <= 60 {
            return self.minute(kind, id, metric, minute);
        }
        let n = period / 60;
        if kind == Kind::Slo && metric != Metric::Latency {
            let (e, r) = &self.slo_sums[id];
            let sums = if metric == Metric::Errors { e } else { r };
            let i = usize::try_from(minute - self.first_minute).unwrap_or(0);
            let j = (i + n as usize).min(sums.len() - 1);
            return sums[j] - sums[i.min(j)];
        }
        (minute..minute + n)
            .map(|m| self.minute(kind, id, metric, m))
            .sum()
    }

    /// The kind, id and metric a query asks for.
    fn parse(spec: &firebell_core::model::MetricSpec) -> Option<(Kind, usize, Metric)> {
        Some((
            Kind::of_namespace(&spec.namespace)?,
            spec.dimensions.get("Id")?.parse().ok()?,
            Metric::of_name(&spec.metric_name)?,
        ))
    }
}

/// The generated CloudWatch: counts the metrics requested, per kind.
struct Generated {
    data: Arc<Data>,
    counted: bool,
    requested: [AtomicU64; 3],
}

impl Generated {
    fn new(data: Arc<Data>, counted: bool) -> Generated {
        Generated {
            data,
            counted,
            requested: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    fn requested(&self) -> [u64; 3] {
        [0, 1, 2].map(|i| self.requested[i].load(Ordering::Relaxed))
    }
}

#[async_trait]
impl MetricsSource for Generated {
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: Epoch,
        end: Epoch,
    ) -> Result<Vec<MetricSeries>, MetricsError> {
        let mut out = Vec::with_capacity(queries.len());
        for q in queries {
            let mut points = Vec::new();
            if let Some((kind, id, metric)) = Data::parse(&q.spec) {
                if self.counted {
                    self.requested[kind.index()].fetch_add(1, Ordering::Relaxed);
                }
                let p = i64::try_from(q.spec.period.as_secs()).unwrap_or(60).max(60);
                let mut t = start.div_euclid(p) * p;
                if t < start {
                    t += p;
                }
                while t + p <= end {
                    points.push(Point {
                        t,
                        v: self.data.value(kind, id, metric, t, p),
                    });
                    t += p;
                }
            }
            out.push(MetricSeries {
                id: q.id.clone(),
                points,
                complete: true,
            });
        }
        Ok(out)
    }
}

/// One sentinel as CloudWatch keeps it.
struct Kept {
    alarm: SentinelAlarm,
    /// Metric id -> what it reads.
    inputs: Vec<(String, Kind, usize, Metric)>,
    state: AlarmState,
    /// The end of the last period evaluated.
    evaluated_to: Epoch,
    /// The start of the last breaching period.
    last_breach: Option<Epoch>,
}

/// Sentinel alarms evaluated as CloudWatch does (`DatapointsToAlarm` 1 of
/// `EvaluationPeriods`), incrementally: each period's datapoint once, the
/// sentinel's expression over the generated data.
struct FastAlarms {
    data: Arc<Data>,
    alarms: Mutex<BTreeMap<String, Kept>>,
    /// DescribeAlarms requests (pages of 100).
    describes: AtomicU64,
    puts: AtomicU64,
    deletes: AtomicU64,
}

impl FastAlarms {
    fn new(data: Arc<Data>) -> FastAlarms {
        FastAlarms {
            data,
            alarms: Mutex::new(BTreeMap::new()),
            describes: AtomicU64::new(0),
            puts: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
        }
    }

    /// The alarm's state at `now`, evaluating the periods not seen yet.
    fn advance(data: &Data, k: &mut Kept, now: Epoch) -> Result<AlarmState, AlarmError> {
        let p = i64::try_from(k.alarm.period_secs).unwrap_or(60).max(1);
        let grid = Grid::ending_at(now, p * i64::from(k.alarm.evaluation_periods), p);
        let mut b = grid.start.max(k.evaluated_to);
        let mut values: Vec<(String, [Option<f64>; 1])> = k
            .inputs
            .iter()
            .map(|(id, ..)| (id.clone(), [None]))
            .collect();
        while b < grid.end() {
            for (slot, (_, kind, id, metric)) in values.iter_mut().zip(&k.inputs) {
                slot.1[0] = Some(data.value(*kind, *id, *metric, b, p));
            }
            let one = Grid {
                start: b,
                step: p,
                len: 1,
            };
            let input = |id: &str| -> Option<&[Option<f64>]> {
                values
                    .iter()
                    .find(|(i, _)| i == id)
                    .map(|(_, v)| v.as_slice())
                    .or(Some(&[None][..]))
            };
            let v = k
                .alarm
                .expression
                .eval(&one, &input)
                .map_err(|e| AlarmError::Refused(e.to_string()))?;
            if k.alarm.breaches(v.first().copied().flatten()) {
                k.last_breach = Some(b);
            }
            b += p;
        }
        k.evaluated_to = k.evaluated_to.max(grid.end());
        Ok(if k.last_breach.is_some_and(|t| t >= grid.start) {
            AlarmState::Alarm
        } else {
            AlarmState::Ok
        })
    }

    fn evaluate_all(&self, prefix: &str, now: Epoch) -> Result<Vec<AlarmInfo>, AlarmError> {
        let mut alarms = self
            .alarms
            .lock()
            .map_err(|_| AlarmError::Unavailable("poisoned".into()))?;
        let mut out = Vec::with_capacity(alarms.len());
        for (name, k) in alarms.iter_mut() {
            if !name.starts_with(prefix) {
                continue;
            }
            let state = FastAlarms::advance(&self.data, k, now)?;
            let shown = if k.state == AlarmState::InsufficientData {
                AlarmState::InsufficientData
            } else {
                state
            };
            k.state = state;
            out.push(AlarmInfo {
                name: name.clone(),
                description: k.alarm.description.clone(),
                state: shown,
            });
        }
        Ok(out)
    }

    fn pages(n: usize) -> u64 {
        (n as u64).div_ceil(100).max(1)
    }

    /// The states of every alarm kept (as last evaluated).
    fn kept(&self) -> Vec<(SentinelAlarm, AlarmState)> {
        self.alarms
            .lock()
            .map(|a| a.values().map(|k| (k.alarm.clone(), k.state)).collect())
            .unwrap_or_default()
    }

    fn sentinels_by_kind(&self) -> [usize; 3] {
        let mut n = [0; 3];
        for (alarm, _) in self.kept() {
            if let Some(k) = alarm.rules.first().and_then(|r| Kind::of_rule(r)) {
                n[k.index()] += 1;
            }
        }
        n
    }

    fn alarm_metrics_by_kind(&self) -> [usize; 3] {
        let mut n = [0; 3];
        for (alarm, _) in self.kept() {
            if let Some(k) = alarm.rules.first().and_then(|r| Kind::of_rule(r)) {
                n[k.index()] += alarm.billed_metrics();
            }
        }
        n
    }
}

#[async_trait]
impl AlarmService for FastAlarms {
    async fn alarming(&self, prefix: &str, now: Epoch) -> Result<Vec<String>, AlarmError> {
        let names: Vec<String> = self
            .evaluate_all(prefix, now)?
            .into_iter()
            .filter(|a| a.state == AlarmState::Alarm)
            .map(|a| a.name)
            .collect();
        self.describes
            .fetch_add(FastAlarms::pages(names.len()), Ordering::Relaxed);
        Ok(names)
    }

    async fn list(&self, prefix: &str, now: Epoch) -> Result<Vec<AlarmInfo>, AlarmError> {
        let all = self.evaluate_all(prefix, now)?;
        self.describes
            .fetch_add(FastAlarms::pages(all.len()), Ordering::Relaxed);
        Ok(all)
    }

    async fn put(&self, alarm: &SentinelAlarm) -> Result<(), AlarmError> {
        self.puts.fetch_add(1, Ordering::Relaxed);
        let inputs = alarm
            .metrics
            .iter()
            .map(|(id, spec)| {
                let (kind, n, metric) = Data::parse(spec)
                    .ok_or_else(|| AlarmError::Refused(format!("unknown metric {spec:?}")))?;
                Ok((id.clone(), kind, n, metric))
            })
            .collect::<Result<Vec<_>, AlarmError>>()?;
        let mut alarms = self
            .alarms
            .lock()
            .map_err(|_| AlarmError::Unavailable("poisoned".into()))?;
        alarms.insert(
            alarm.name.clone(),
            Kept {
                alarm: alarm.clone(),
                inputs,
                state: AlarmState::InsufficientData,
                evaluated_to: Epoch::MIN,
                last_breach: None,
            },
        );
        Ok(())
    }

    async fn delete(&self, names: &[String]) -> Result<(), AlarmError> {
        self.deletes.fetch_add(1, Ordering::Relaxed);
        let mut alarms = self
            .alarms
            .lock()
            .map_err(|_| AlarmError::Unavailable("poisoned".into()))?;
        for n in names {
            alarms.remove(n);
        }
        Ok(())
    }
}

fn config_text(mode: &str, sweep: Duration) -> String {
    let mut s = format!(
        "sentinels: {{mode: {mode}, sweep: {}m}}
receivers:
  ops: {{topics: [\"arn:aws:sns:us-east-1:123456789012:ops\"]}}
route:
  receiver: ops
rules:
",
        sweep.as_secs() / 60
    );
    let ns = Kind::Threshold.namespace();
    for id in 0..THRESHOLD_RULES {
        s.push_str(&format!(
            "  - name: thr-{id:04}
    metrics:
      m: {{namespace: {ns}, metric: Latency, dimensions: {{Id: \"{id}\"}}, stat: p99, period: 1m}}
    expression: m
    condition: {{op: \">\", threshold: 800}}
    for: 5m
    labels: {{team: a}}
"
        ));
    }
    let ns = Kind::Ratio.namespace();
    for id in 0..RATIO_RULES {
        s.push_str(&format!(
            "  - name: ratio-{id:04}
    metrics:
      errors: {{namespace: {ns}, metric: Errors, dimensions: {{Id: \"{id}\"}}, stat: Sum, period: 1m}}
      requests: {{namespace: {ns}, metric: Requests, dimensions: {{Id: \"{id}\"}}, stat: Sum, period: 1m}}
    expression: 100 * FILL(errors, 0) / requests
    condition: {{op: \">\", threshold: 1}}
    for: 5m
    labels: {{team: a}}
"
        ));
    }
    s.push_str("slos:\n");
    let ns = Kind::Slo.namespace();
    for id in 0..SLOS {
        s.push_str(&format!(
            "  - name: slo-{id:04}
    team: a
    objective: 99.9
    sli:
      errors: {{namespace: {ns}, metric: Errors, dimensions: {{Id: \"{id}\"}}, stat: Sum, period: 1m}}
      total: {{namespace: {ns}, metric: Requests, dimensions: {{Id: \"{id}\"}}, stat: Sum, period: 1m}}
"
        ));
    }
    s
}

fn load(mode: &str, sweep: Duration) -> Result<Config, String> {
    let mut diags = Diagnostics::new();
    let config = firebell_engine::load_texts(
        &[("bench.yaml".to_string(), config_text(mode, sweep))],
        &mut diags,
        Vec::new(),
    );
    if diags.has_errors() {
        return Err(diags.to_string());
    }
    Ok(config)
}

/// What a run counted.
#[derive(Debug, Default, Clone)]
struct Counts {
    cycles: i64,
    requested: [u64; 3],
    describes: u64,
    puts: u64,
    deletes: u64,
    sentinels: [usize; 3],
    alarm_metrics: [usize; 3],
    /// Alerts fired, per kind.
    fired: [usize; 3],
    /// Rule evaluations by why (sentinel mode): alarm, active, swept, unsynced, cold.
    polls: [u64; 5],
    wall: Duration,
}

async fn run(
    data: &Arc<Data>,
    mode: &str,
    sweep: Duration,
    cycles: i64,
    check: bool,
) -> Result<Counts, String> {
    let started = Instant::now();
    let config = Arc::new(load(mode, sweep)?);
    let clock = Arc::new(ManualClock::at_epoch(BASE));
    let store = Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>));
    let source = Arc::new(Generated::new(data.clone(), true));
    let alarms = Arc::new(FastAlarms::new(data.clone()));
    let engine = Engine::new(
        config,
        source.clone(),
        store,
        Arc::new(MemoryNotifier::new()),
        EngineOptions {
            owner: "bench".to_string(),
            ..EngineOptions::default()
        },
    )
    .with_alarms(alarms.clone());
    let reference = SimulatedAlarms::new(Arc::new(Generated::new(data.clone(), false)));
    let mut counts = Counts::default();
    for k in 1..=cycles {
        let now = BASE + k * 60;
        clock.set_epoch(now);
        let report = engine
            .run_cycle(now, &|| false)
            .await
            .map_err(|e| format!("cycle {k}: {e}"))?;
        if let Some(e) = report.errors.first() {
            return Err(format!("cycle {k}: {e}"));
        }
        for t in &report.transitions {
            if matches!(t.event, Event::Fired { .. })
                && let Some(kind) = Kind::of_rule(&t.rule)
            {
                counts.fired[kind.index()] += 1;
            }
        }
        let s = &report.sentinels;
        for (i, n) in [s.alarm, s.active, s.swept, s.unsynced, s.cold]
            .into_iter()
            .enumerate()
        {
            counts.polls[i] += n as u64;
        }
        if check && k % CHECK_EVERY == 0 {
            for (alarm, state) in alarms.kept() {
                if state == AlarmState::InsufficientData {
                    continue;
                }
                let want = reference
                    .evaluate(&alarm, now)
                    .await
                    .map_err(|e| format!("SimulatedAlarms: {e}"))?;
                if want != state {
                    return Err(format!(
                        "cycle {k}: {} is {state:?}, SimulatedAlarms says {want:?}",
                        alarm.name
                    ));
                }
            }
        }
    }
    counts.cycles = cycles;
    counts.requested = source.requested();
    counts.describes = alarms.describes.load(Ordering::Relaxed);
    counts.puts = alarms.puts.load(Ordering::Relaxed);
    counts.deletes = alarms.deletes.load(Ordering::Relaxed);
    counts.sentinels = alarms.sentinels_by_kind();
    counts.alarm_metrics = alarms.alarm_metrics_by_kind();
    counts.wall = started.elapsed();
    Ok(counts)
}

/// Per kind: what the CloudWatch alarms cost, and the rules.
fn alarm_side() -> Result<([f64; 3], [usize; 3]), String> {
    let config = load("off", Duration::from_secs(900))?;
    let mut cost = [0.0; 3];
    let mut rules = [0; 3];
    for r in &config.rules.rules {
        if let Some(k) = Kind::of_rule(&r.name) {
            cost[k.index()] +=
                alarm_equivalent(r, &Prices::default(), &Assumptions::default()).cost;
            rules[k.index()] += 1;
        }
    }
    Ok((cost, rules))
}

/// The sentinel mode's bill per kind: its metrics requested, its alarms,
/// and its share of the alarm API calls (by sentinels).
fn sentinel_bill(c: &Counts, kind: Kind) -> (f64, f64, f64) {
    let i = kind.index();
    let total_sentinels: usize = c.sentinels.iter().sum();
    let share = if total_sentinels == 0 {
        0.0
    } else {
        c.sentinels[i] as f64 / total_sentinels as f64
    };
    let gmd = c.requested[i] as f64 * PER_METRIC;
    let alarms = c.alarm_metrics[i] as f64 * PER_ALARM_METRIC;
    let api = (c.describes + c.puts + c.deletes) as f64 * PER_API_REQUEST * share;
    (gmd, alarms, api)
}

fn target(kind: Kind) -> (f64, &'static str) {
    match kind {
        Kind::Slo => (1.0, "< 1.0x"),
        _ => (1.2, "<= 1.2x"),
    }
}

fn met(kind: Kind, ratio: f64) -> bool {
    match kind {
        Kind::Slo => ratio < 1.0,
        _ => ratio <= 1.2,
    }
}

fn thousands(v: f64) -> String {
    firebell_tools::cost::thousands(v)
}

fn print_month(
    title: &str,
    polling: &Counts,
    s: &Counts,
    cw: &[f64; 3],
    rules: &[usize; 3],
) -> bool {
    let scale = MONTH_MINUTES as f64 / polling.cycles as f64;
    println!("\n{title}");
    println!(
        "  {:<9} {:>5} {:>9} | {:>14} {:>9} | {:>12} {:>9} {:>8} {:>7} {:>9} | {:>9} | {:>9} {:>7} met",
        "kind",
        "rules",
        "sentinels",
        "polling: req.",
        "bill",
        "sentinel: req.",
        "GMD",
        "alarms",
        "API",
        "bill",
        "CW alarms",
        "sent/CW",
        "target",
    );
    let mut all = true;
    let mut totals = [0.0; 6];
    for kind in KINDS {
        let i = kind.index();
        let poll_req = polling.requested[i] as f64 * scale;
        let poll_bill = poll_req * PER_METRIC;
        let (gmd, alarms, api) = sentinel_bill(s, kind);
        let bill = gmd + alarms + api;
        let ratio = bill / cw[i];
        let ok = met(kind, ratio);
        all &= ok;
        totals[0] += poll_req;
        totals[1] += poll_bill;
        totals[2] += s.requested[i] as f64;
        totals[3] += bill;
        totals[4] += cw[i];
        totals[5] += alarms;
        println!(
            "  {:<9} {:>5} {:>9} | {:>14} {:>9.2} | {:>12} {:>9.2} {:>8.2} {:>7.2} {:>9.2} | {:>9.2} | {:>7.3}x {:>7} {}",
            kind.name(),
            rules[i],
            s.sentinels[i],
            thousands(poll_req),
            poll_bill,
            thousands(s.requested[i] as f64),
            gmd,
            alarms,
            api,
            bill,
            cw[i],
            ratio,
            target(kind).1,
            if ok { "yes" } else { "NO" }
        );
    }
    println!(
        "  {:<9} {:>5} {:>9} | {:>14} {:>9.2} | {:>12} {:>9} {:>8.2} {:>7} {:>9.2} | {:>9.2} | {:>7.3}x",
        "total",
        rules.iter().sum::<usize>(),
        s.sentinels.iter().sum::<usize>(),
        thousands(totals[0]),
        totals[1],
        thousands(totals[2]),
        "",
        totals[5],
        "",
        totals[3],
        totals[4],
        totals[3] / totals[4],
    );
    println!(
        "  alarm API calls: {} DescribeAlarms (pages), {} PutMetricAlarm, {} DeleteAlarms; \
         rule evaluations by why: {} alarm, {} active, {} sweep, {} unsynced; {} skipped cold",
        thousands(s.describes as f64),
        thousands(s.puts as f64),
        thousands(s.deletes as f64),
        thousands(s.polls[0] as f64),
        thousands(s.polls[1] as f64),
        thousands(s.polls[2] as f64),
        thousands(s.polls[3] as f64),
        thousands(s.polls[4] as f64),
    );
    println!(
        "  alerts fired: threshold {} (of {} incidents), ratio {} (of {}), SLO {} (pages and tickets of {} incidents); {} cycles in {:.1} s",
        s.fired[0],
        THRESHOLD_RULES * INCIDENTS,
        s.fired[1],
        RATIO_RULES * INCIDENTS,
        s.fired[2],
        SLOS * INCIDENTS,
        thousands(s.cycles as f64),
        s.wall.as_secs_f64()
    );
    all
}

/// What `firebell cost --sentinels auto --sweep S` estimates per kind
/// (GetMetricData and the sentinels' alarms), beside the simulation.
fn estimated(sweep: Duration) -> Result<String, String> {
    let config = load("auto", sweep)?;
    let a = Assumptions {
        sweep: Some(sweep),
        ..Assumptions::default()
    };
    let e = firebell_tools::cost::estimate(&config, &Prices::default(), &a);
    let mut per = [0.0; 3];
    for r in &e.rules {
        if let Some(k) = Kind::of_rule(&r.rule) {
            let alarm = match (&r.mode, &r.sentinel) {
                (firebell_tools::cost::RuleMode::Sentinel(_), Some(share)) => share.alarm,
                _ => 0.0,
            };
            per[k.index()] += r.get_metric_data + alarm;
        }
    }
    Ok(format!(
        "  `firebell cost --sentinels auto --sweep {}m` estimates ({} hours hot a month, per rule alone): threshold ${:.2}, ratio ${:.2}, SLO ${:.2}",
        sweep.as_secs() / 60,
        a.hot_hours,
        per[0],
        per[1],
        per[2]
    ))
}

/// The shortest sweep (whole minutes) at which threshold and ratio rules
/// meet the target, from a month at `sweep`: the sweep requests (each
/// covered rule's metrics once per sweep) scale with 1 / sweep; the rest
/// (hot polling, the SLOs, unsynced cycles at the start) is as measured.
fn sweep_meeting_target(
    s: &Counts,
    sweep: Duration,
    cw: &[f64; 3],
    config: &Config,
) -> Option<u64> {
    let minutes = sweep.as_secs() / 60;
    let per_rule_metrics = |kind: Kind| -> f64 {
        config
            .rules
            .rules
            .iter()
            .filter(|r| Kind::of_rule(&r.name) == Some(kind))
            .map(|r| r.metrics.len() as f64)
            .sum()
    };
    (minutes..=1440).find(|&m| {
        [Kind::Threshold, Kind::Ratio].into_iter().all(|kind| {
            let (gmd, alarms, api) = sentinel_bill(s, kind);
            let sweeps_now = per_rule_metrics(kind) * (MONTH_MINUTES as f64 / minutes as f64);
            let sweeps_then = per_rule_metrics(kind) * (MONTH_MINUTES as f64 / m as f64);
            let gmd = gmd + (sweeps_then - sweeps_now) * PER_METRIC;
            met(kind, (gmd + alarms + api) / cw[kind.index()])
        })
    })
}

async fn bench() -> Result<bool, String> {
    let started = Instant::now();
    let data = Arc::new(Data::new());
    let (cw, rules) = alarm_side()?;
    let default_sweep = firebell_core::sentinel::DEFAULT_SWEEP;
    println!(
        "sentinel_month: {} rules ({} threshold, {} ratio, {} SLOs of 3 rules), {} incidents of {} minutes and {} noisy minutes per rule (or SLO) a month; data generated in {:.1} s",
        rules.iter().sum::<usize>(),
        rules[0],
        rules[1],
        SLOS,
        INCIDENTS,
        INCIDENT_MINUTES,
        NOISY_MINUTES,
        started.elapsed().as_secs_f64()
    );
    let polling = run(&data, "off", default_sweep, POLLING_CYCLES, false).await?;
    println!(
        "polling mode: {} cycles in {:.1} s, {} metrics requested a cycle (x {} for the month: the same every cycle, the 15-minute SLO ticket averaged)",
        POLLING_CYCLES,
        polling.wall.as_secs_f64(),
        thousands(polling.requested.iter().sum::<u64>() as f64 / POLLING_CYCLES as f64),
        thousands(MONTH_MINUTES as f64),
    );
    // FIREBELL_BENCH_MINUTES: a shorter run (to time it; its figures are
    // not a month's).
    let minutes = std::env::var("FIREBELL_BENCH_MINUTES")
        .ok()
        .and_then(|m| m.parse::<i64>().ok())
        .filter(|m| (1..=MONTH_MINUTES).contains(m))
        .unwrap_or(MONTH_MINUTES);
    if minutes < MONTH_MINUTES {
        println!(
            "FIREBELL_BENCH_MINUTES={minutes}: a partial month, the figures below are not a month's"
        );
    }
    let month = run(&data, "auto", default_sweep, minutes, true).await?;
    let mut ok = true;
    let fired_ok = |c: &Counts| {
        c.fired[0] >= THRESHOLD_RULES * INCIDENTS
            && c.fired[1] >= RATIO_RULES * INCIDENTS
            && c.fired[2] >= SLOS * INCIDENTS
    };
    ok &= minutes < MONTH_MINUTES || fired_ok(&month);
    let met_default = print_month(
        &format!(
            "sentinel mode, sweep {}m (default), simulated over {} cycles; $ a month",
            default_sweep.as_secs() / 60,
            thousands(MONTH_MINUTES as f64)
        ),
        &polling,
        &month,
        &cw,
        &rules,
    );
    println!("{}", estimated(default_sweep)?);
    if met_default {
        println!("\ntarget met at the default sweep");
    } else {
        let config = load("auto", default_sweep)?;
        match sweep_meeting_target(&month, default_sweep, &cw, &config) {
            Some(m) => {
                println!(
                    "\ntarget not met at the default sweep: each sweep requests every covered metric \
                     (2,920 times a month at 15m: $0.029 against $0.10 for its alarm); the shortest sweep \
                     meeting it (worked out from this month) is {m}m: simulated again"
                );
                let slower = run(&data, "auto", Duration::from_secs(m * 60), minutes, true).await?;
                ok &= minutes < MONTH_MINUTES || fired_ok(&slower);
                print_month(
                    &format!(
                        "sentinel mode, sweep {m}m, simulated over {} cycles; $ a month",
                        thousands(MONTH_MINUTES as f64)
                    ),
                    &polling,
                    &slower,
                    &cw,
                    &rules,
                );
                println!("{}", estimated(Duration::from_secs(m * 60))?);
            }
            None => println!("\ntarget not met at any sweep up to 1d"),
        }
    }
    println!(
        "\nbill = GetMetricData ($0.01 per 1,000 metrics) + alarms ($0.10 per metric; CloudWatch side: `firebell cost`'s alarm_equivalent, \
         SLOs as 2 windows x 2 metrics + a composite per burn-rate rule) + alarm API calls ($0.01 per 1,000, split by sentinels); \
         Lambda, DynamoDB and SNS are the same in both firebell modes and left out. Polling: {POLLING_CYCLES} cycles x {}. \
         Alarm states checked against SimulatedAlarms every {} cycles. Total {:.1} s.",
        MONTH_MINUTES / POLLING_CYCLES,
        thousands(CHECK_EVERY as f64),
        started.elapsed().as_secs_f64()
    );
    Ok(ok)
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sentinel_month: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            println!("sentinel_month: an incident did not fire");
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("sentinel_month: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
