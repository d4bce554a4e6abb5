//! What the HTML report charts, collected from the engine's own reports
//! cycle by cycle ([`Charts::observe`]): per instance, the datapoints the
//! judge stepped through (value, and whether the volume guard let it be
//! judged: `InstanceView::points`), downsampled into pixel columns as they
//! arrive (min and max per column, for drawing), with exact summary figures
//! beside; the state bands from the engine's transitions; silences and
//! inhibition as `firebell alerts` decides them (`firebell_engine::alerts`);
//! the text of every message published. Nothing here judges.

use std::collections::{BTreeMap, HashMap};

use firebell_core::alert::ALERTSTATE_LABEL;
use firebell_core::model::Labels;
use firebell_core::series::Epoch;
use firebell_core::state::Event;
use firebell_engine::alerts::{ActiveAlert, AlertState};

use crate::backtest::SimCycle;

/// Pixel columns of a chart's plot area: two weeks of minutes are drawn as
/// the min and max of about 28 datapoints per column.
pub const COLUMNS: usize = 720;

/// A state an instance was in, drawn as a band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BandKind {
    Pending,
    Firing,
    NoData,
    /// Firing or NoData, muted by a silence.
    Silenced,
    /// Firing or NoData, inhibited by another alert.
    Inhibited,
}

impl BandKind {
    /// The CSS / pattern name.
    pub fn name(self) -> &'static str {
        match self {
            BandKind::Pending => "pending",
            BandKind::Firing => "firing",
            BandKind::NoData => "nodata",
            BandKind::Silenced => "silenced",
            BandKind::Inhibited => "inhibited",
        }
    }
}

/// `kind` over `[from, to)` (datapoint times for states, cycle times for
/// muting); `by` says which silence or inhibiting alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    pub kind: BandKind,
    pub from: Epoch,
    pub to: Epoch,
    pub by: String,
}

/// One pixel column: the extremes of its finite values, and whether any of
/// its datapoints was missing or not judged (volume guard).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Column {
    pub lo: f64,
    pub hi: f64,
    pub values: u32,
    pub missing: bool,
    pub unjudged: bool,
}

/// Exact figures over every datapoint charted (never downsampled).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PointStats {
    /// Datapoints stepped through within the range.
    pub points: usize,
    /// Of those, missing (no value).
    pub missing: usize,
    /// Of those, not judged: the volume guard was not met.
    pub unjudged: usize,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub first: Option<Epoch>,
    /// The last datapoint with a value.
    pub last: Option<(Epoch, f64)>,
    /// Of the datapoints, values that are not finite numbers (a ratio over
    /// zero): counted here, neither missing nor in min / max / last.
    pub not_finite: usize,
}

/// One rule instance over the range.
#[derive(Debug, Clone)]
pub struct InstanceChart {
    pub rule: String,
    pub labels: Labels,
    pub columns: Vec<Column>,
    pub stats: PointStats,
    /// Closed bands, in the order they ended ([`Charts::finish`] closes the open ones).
    pub bands: Vec<Band>,
    /// Every state change, pending ones included, at its datapoint's time.
    pub events: Vec<Event>,
    last_t: Option<Epoch>,
    open: BTreeMap<BandKind, (Epoch, String)>,
}

impl InstanceChart {
    fn new(rule: &str, labels: &Labels) -> InstanceChart {
        InstanceChart {
            rule: rule.to_string(),
            labels: labels.clone(),
            columns: vec![Column::default(); COLUMNS],
            stats: PointStats::default(),
            bands: Vec::new(),
            events: Vec::new(),
            last_t: None,
            open: BTreeMap::new(),
        }
    }

    fn open(&mut self, kind: BandKind, at: Epoch, by: String) {
        self.open.entry(kind).or_insert((at, by));
    }

    fn close(&mut self, kind: BandKind, at: Epoch) {
        if let Some((from, by)) = self.open.remove(&kind) {
            self.bands.push(Band {
                kind,
                from,
                to: at,
                by,
            });
        }
    }

    /// Whether it ever left the inactive state.
    pub fn eventful(&self) -> bool {
        !self.events.is_empty()
    }
}

/// The labels of an instance that tell it from the rule's other instances.
pub(super) fn distinct_labels(labels: &Labels, rule_labels: &Labels) -> Labels {
    labels
        .iter()
        .filter(|(k, v)| k.as_str() != "alertname" && rule_labels.get(k.as_str()) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A published message's text, by the cycle that sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub at: Epoch,
    pub receiver: String,
    pub group_key: String,
    pub subject: String,
    pub text: String,
}

/// The charts of one simulation over `[from, to]`.
#[derive(Debug, Clone)]
pub struct Charts {
    pub from: Epoch,
    pub to: Epoch,
    /// In the order instances were first judged.
    pub instances: Vec<InstanceChart>,
    /// The first message of every notification.
    pub sent: Vec<Sent>,
    /// What the charts could not show (the alerts read for silences and
    /// inhibitions failed): said on the page, never in the text report.
    pub problems: Vec<String>,
    index: HashMap<(String, Labels), usize>,
    step: i64,
}

impl Charts {
    /// Empty charts of the range `[from, to]` (`to > from`).
    pub fn new(from: Epoch, to: Epoch) -> Charts {
        Charts {
            from,
            to: to.max(from + 1),
            instances: Vec::new(),
            sent: Vec::new(),
            problems: Vec::new(),
            index: HashMap::new(),
            step: 60,
        }
    }

    /// The pixel column of `t` (within the range).
    pub fn column(&self, t: Epoch) -> usize {
        let span = (self.to - self.from).max(1) as i128;
        let c = (i128::from(t - self.from) * COLUMNS as i128) / (span + 1);
        usize::try_from(c.clamp(0, COLUMNS as i128 - 1)).unwrap_or(0)
    }

    fn slot(&mut self, rule: &str, labels: &Labels) -> usize {
        if let Some(&i) = self.index.get(&(rule.to_string(), labels.clone())) {
            return i;
        }
        self.instances.push(InstanceChart::new(rule, labels));
        let i = self.instances.len() - 1;
        self.index.insert((rule.to_string(), labels.clone()), i);
        i
    }

    /// The chart of an instance, by rule and labels.
    pub fn get(&self, rule: &str, labels: &Labels) -> Option<&InstanceChart> {
        self.index
            .get(&(rule.to_string(), labels.clone()))
            .and_then(|&i| self.instances.get(i))
    }

    /// Takes in one cycle: the datapoints its judge stepped through for the
    /// first time (a quiet instance's are stepped again every cycle: the
    /// first judgement of each is kept), its transitions and its messages.
    pub fn observe(&mut self, cycle: &SimCycle) {
        for view in &cycle.report.views {
            let i = self.slot(&view.rule, &view.labels);
            let column: Vec<usize> = view.points.iter().map(|p| self.column(p.t)).collect();
            let (from, to) = (self.from, self.to);
            let chart = &mut self.instances[i];
            for (p, c) in view.points.iter().zip(column) {
                if chart.last_t.is_some_and(|l| p.t <= l) {
                    continue;
                }
                chart.last_t = Some(p.t);
                if p.t < from || p.t > to {
                    continue;
                }
                let s = &mut chart.stats;
                s.points += 1;
                s.first.get_or_insert(p.t);
                let col = &mut chart.columns[c];
                if !p.judged {
                    s.unjudged += 1;
                    col.unjudged = true;
                }
                match p.value {
                    None => {
                        s.missing += 1;
                        col.missing = true;
                    }
                    Some(v) if v.is_finite() => {
                        s.min = Some(s.min.map_or(v, |m| m.min(v)));
                        s.max = Some(s.max.map_or(v, |m| m.max(v)));
                        s.last = Some((p.t, v));
                        if col.values == 0 {
                            col.lo = v;
                            col.hi = v;
                        } else {
                            col.lo = col.lo.min(v);
                            col.hi = col.hi.max(v);
                        }
                        col.values += 1;
                    }
                    Some(_) => s.not_finite += 1,
                }
            }
        }
        for t in &cycle.report.transitions {
            let i = self.slot(&t.rule, &t.labels);
            let chart = &mut self.instances[i];
            chart.events.push(t.event);
            match t.event {
                Event::Pending { at } => chart.open(BandKind::Pending, at, String::new()),
                Event::PendingCleared { at } => chart.close(BandKind::Pending, at),
                Event::Fired { at, .. } => {
                    chart.close(BandKind::Pending, at);
                    chart.open(BandKind::Firing, at, String::new());
                }
                Event::Resolved { at, .. } => {
                    chart.close(BandKind::Pending, at);
                    chart.close(BandKind::Firing, at);
                }
                Event::NoDataStarted { at } => chart.open(BandKind::NoData, at, String::new()),
                Event::NoDataEnded { at } => chart.close(BandKind::NoData, at),
            }
        }
        for m in &cycle.sent {
            let seen = self
                .sent
                .iter()
                .rev()
                .take_while(|s| s.at == cycle.now)
                .any(|s| s.receiver == m.receiver && s.group_key == m.group_key);
            if seen {
                continue;
            }
            let text = m
                .bodies
                .get("email")
                .or_else(|| m.bodies.get("default"))
                .cloned()
                .unwrap_or_default();
            self.sent.push(Sent {
                at: cycle.now,
                receiver: m.receiver.clone(),
                group_key: m.group_key.clone(),
                subject: m.subject.clone(),
                text,
            });
        }
    }

    /// Whether some instance is firing or NoData, or still marked muted:
    /// only then can a silence or an inhibition start or end, so only then
    /// [`Charts::muting`] is worth reading.
    pub fn alerting(&self) -> bool {
        self.instances
            .iter()
            .any(|c| !c.open.is_empty() && !c.open.keys().all(|k| *k == BandKind::Pending))
    }

    /// Takes in the alerts as `firebell alerts` would list them after the
    /// cycle at `now` (`step` seconds after the previous one): the firing
    /// and NoData ones that a silence or an inhibition mutes.
    pub fn muting(&mut self, now: Epoch, step: i64, alerts: &[ActiveAlert]) {
        self.step = step.max(1);
        let mut muted: BTreeMap<(String, Labels), (BandKind, String)> = BTreeMap::new();
        for a in alerts {
            if !matches!(a.state, AlertState::Firing | AlertState::NoData) {
                continue;
            }
            let (kind, by) = match (&a.silenced_by, &a.inhibited_by) {
                (_, Some(i)) => (
                    BandKind::Inhibited,
                    format!("inhibited by {} {}", i.rule, brace(&i.labels)),
                ),
                (Some(s), None) => (
                    BandKind::Silenced,
                    format!("silenced by {} ({}: {})", s.id, s.created_by, s.comment),
                ),
                (None, None) => continue,
            };
            let mut labels = a.alert.labels.clone();
            labels.remove(ALERTSTATE_LABEL);
            muted.insert((a.alert.name().to_string(), labels), (kind, by));
        }
        for chart in &mut self.instances {
            let now_muted = muted.get(&(chart.rule.clone(), chart.labels.clone()));
            for kind in [BandKind::Silenced, BandKind::Inhibited] {
                let open = chart.open.get(&kind).map(|(_, by)| by.clone());
                let closed_now = match (open, now_muted) {
                    (Some(by), Some((k, b))) if *k == kind && *b == by => false,
                    (Some(_), _) => {
                        chart.close(kind, now);
                        true
                    }
                    (None, _) => false,
                };
                if let Some((k, b)) = now_muted
                    && *k == kind
                {
                    // A new reason right after another starts where that
                    // one ended: the bands do not overlap.
                    let from = if closed_now { now } else { now - self.step };
                    chart.open(kind, from, b.clone());
                }
            }
        }
    }

    /// After [`Charts::observe`] of the cycle at `now`: while anything is
    /// alerting, reads the alerts (with their silences and inhibitors)
    /// from `store` and marks the muting. A failure is kept in
    /// [`Charts::problems`], said on the page only.
    pub async fn read_muting(
        &mut self,
        store: &dyn firebell_core::ports::StateStore,
        config: &firebell_engine::Config,
        now: Epoch,
        step: i64,
    ) {
        if !self.alerting() {
            return;
        }
        let filter = firebell_engine::alerts::Filter::default();
        match firebell_engine::alerts::list(store, config, &filter, now).await {
            Ok(alerts) => self.muting(now, step, &alerts),
            Err(e) => self.problems.push(format!(
                "{}: silences and inhibitions not charted: {e}",
                firebell_core::text::rfc3339(now)
            )),
        }
    }

    /// Closes every band still open at the end of the range.
    pub fn finish(&mut self) {
        let to = self.to;
        for chart in &mut self.instances {
            let kinds: Vec<BandKind> = chart.open.keys().copied().collect();
            for k in kinds {
                chart.close(k, to);
            }
            chart.bands.sort_by_key(|b| (b.from, b.kind));
        }
    }

    /// The published text of a notification sent at `at` to `receiver` for `group_key`.
    pub fn text_of(&self, at: Epoch, receiver: &str, group_key: &str) -> Option<&Sent> {
        self.sent
            .iter()
            .find(|s| s.at == at && s.receiver == receiver && s.group_key == group_key)
    }
}

/// `{k="v", ...}`.
pub fn brace(labels: &Labels) -> String {
    let inner: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname")
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    format!("{{{}}}", inner.join(", "))
}
