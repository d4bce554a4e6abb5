//! The alert state machine: one [`InstanceState`] per alert instance (rule +
//! labels), advanced one datapoint at a time by [`Machine::step`]. Pure: the
//! datapoint's time is the only clock.
//!
//! ```text
//!            breach                 held for `for` / M of N
//! Inactive ---------> Pending ----------------------------> Firing
//!    ^                  | clear                               | clear (after keep_firing_for,
//!    |<-----------------+                                     |        judged against `recovery`)
//!    |                                                        v
//!    +----------- (next breach starts a new episode) ---- Resolved
//!
//! missing data with `missing_data: nodata`, for as long as the pending period:
//!   any state ------> NoData ------(data returns)------> Inactive
//! ```
//!
//! Rules of judgement:
//! - a datapoint breaches when `value OP threshold`; while Firing, when
//!   `value OP recovery` (hysteresis);
//! - a missing datapoint counts as `missing_data` says (ok / breaching / keep = hold / nodata);
//! - a datapoint under the minimum-volume guard is not judged: it counts as
//!   not breaching unless the alert fires, in which case it holds;
//! - `for`: fires when every datapoint breached from the first breach for at least `for`;
//! - M of N: fires when at least M of the last N judged datapoints breached; resolves when fewer do,
//!   on a datapoint that does not breach;
//! - `keep_firing_for`: a firing alert resolves only once the condition has
//!   been clear for that long, counted from the first clear datapoint (as Prometheus).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::model::{Condition, MissingData, Pending, Rule};
use crate::series::Epoch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Inactive,
    Pending,
    Firing,
    Resolved,
    NoData,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Inactive => "inactive",
            Status::Pending => "pending",
            Status::Firing => "firing",
            Status::Resolved => "resolved",
            Status::NoData => "nodata",
        }
    }
}

/// A state change caused by one datapoint.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The condition started to hold; waiting for `for` / M of N.
    Pending {
        at: Epoch,
    },
    /// Pending ended without firing.
    PendingCleared {
        at: Epoch,
    },
    Fired {
        at: Epoch,
        value: Option<f64>,
    },
    Resolved {
        at: Epoch,
        value: Option<f64>,
    },
    NoDataStarted {
        at: Epoch,
    },
    NoDataEnded {
        at: Epoch,
    },
}

impl Event {
    /// The time of the datapoint that caused the event.
    pub fn at(&self) -> Epoch {
        match *self {
            Event::Pending { at }
            | Event::PendingCleared { at }
            | Event::Fired { at, .. }
            | Event::Resolved { at, .. }
            | Event::NoDataStarted { at }
            | Event::NoDataEnded { at } => at,
        }
    }
}

/// One line for people: `fired (datapoint 2026-11-23T15:45:00Z, value 5.23)`.
impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self {
            Event::Pending { .. } => "pending",
            Event::PendingCleared { .. } => "pending cleared",
            Event::Fired { .. } => "fired",
            Event::Resolved { .. } => "resolved",
            Event::NoDataStarted { .. } => "no data",
            Event::NoDataEnded { .. } => "data back",
        };
        write!(f, "{what} (datapoint {}", crate::text::rfc3339(self.at()))?;
        if let Event::Fired { value: Some(v), .. } | Event::Resolved { value: Some(v), .. } = self {
            write!(f, ", value {}", crate::slo::number(*v))?;
        }
        f.write_str(")")
    }
}

/// Everything remembered about one alert instance between cycles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct InstanceState {
    pub status: Status,
    /// Time of the last datapoint processed; older or equal ones are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_t: Option<Epoch>,
    /// First breaching datapoint of the current episode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_since: Option<Epoch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_at: Option<Epoch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_breach: Option<Epoch>,
    /// First clear datapoint while firing (starts the `keep_firing_for` window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_since: Option<Epoch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Epoch>,
    /// First missing datapoint of the current gap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_since: Option<Epoch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodata_since: Option<Epoch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Most extreme value while firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak: Option<f64>,
    /// M-of-N window: (time, breached) of the last N judged datapoints.
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    pub window: VecDeque<(Epoch, bool)>,
}

impl InstanceState {
    /// Whether `other` differs in what must be stored. Everything else (the
    /// last datapoint seen, the M-of-N window, the start of a gap or of a
    /// clear stretch) is re-derived by replaying the datapoints after
    /// `last_t`, which the lookback window always covers; so a cycle in which
    /// no alert changes writes nothing.
    pub fn durably_differs(&self, other: &InstanceState) -> bool {
        self.status != other.status
            || self.active_since != other.active_since
            || self.fired_at != other.fired_at
            || self.resolved_at != other.resolved_at
            || self.nodata_since != other.nodata_since
            || self.peak != other.peak
    }
}

/// One evaluated datapoint of an instance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    pub t: Epoch,
    /// The expression's value; `None` is missing data.
    pub value: Option<f64>,
    /// False when the minimum-volume guard was not met.
    pub judged: bool,
}

impl Observation {
    pub fn new(t: Epoch, value: Option<f64>) -> Self {
        Observation {
            t,
            value,
            judged: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Breach,
    Clear,
    Hold,
    Missing,
}

/// The judgement settings of a rule, copied out of it so stepping is cheap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Machine {
    pub condition: Condition,
    pub pending: Pending,
    pub keep_firing_for: i64,
    pub missing_data: MissingData,
    pub step: i64,
}

impl Machine {
    pub fn for_rule(rule: &Rule) -> Machine {
        Machine {
            condition: rule.condition,
            pending: rule.pending,
            keep_firing_for: rule.keep_firing_for.as_secs() as i64,
            missing_data: rule.missing_data,
            step: rule.step().as_secs() as i64,
        }
    }

    /// How long data must be missing before NoData.
    /// At least three periods, so one late or lost datapoint does not
    /// resolve a firing alert into NoData and fire it again a minute later.
    fn nodata_after(&self) -> i64 {
        let pending = match self.pending {
            Pending::For(d) => d.as_secs() as i64,
            Pending::MofN { m, .. } => i64::from(m) * self.step,
        };
        pending.max(3 * self.step)
    }

    fn outcome(&self, st: &InstanceState, obs: &Observation) -> Outcome {
        match obs.value {
            None => match self.missing_data {
                MissingData::Ok => Outcome::Clear,
                MissingData::Breaching => Outcome::Breach,
                MissingData::Keep => Outcome::Hold,
                MissingData::NoData => Outcome::Missing,
            },
            Some(_) if !obs.judged => {
                if st.status == Status::Firing {
                    Outcome::Hold
                } else {
                    Outcome::Clear
                }
            }
            Some(v) => {
                let breach = if st.status == Status::Firing {
                    self.condition.still_breaching(v)
                } else {
                    self.condition.breaches(v)
                };
                if breach {
                    Outcome::Breach
                } else {
                    Outcome::Clear
                }
            }
        }
    }

    /// Advances `st` by one datapoint and returns what changed (usually nothing).
    /// Datapoints at or before the last one processed are ignored, so replaying
    /// a window is idempotent.
    pub fn step(&self, st: &mut InstanceState, obs: Observation) -> Vec<Event> {
        let mut events = Vec::new();
        self.step_into(st, obs, &mut events);
        events
    }

    /// [`Machine::step`], appending the events to `events` (no allocation
    /// on the common path where nothing changes).
    pub fn step_into(&self, st: &mut InstanceState, obs: Observation, events: &mut Vec<Event>) {
        if st.last_t.is_some_and(|l| obs.t <= l) {
            return;
        }
        st.last_t = Some(obs.t);
        if obs.value.is_some() {
            st.value = obs.value;
        }
        let t = obs.t;
        let outcome = self.outcome(st, &obs);

        if outcome == Outcome::Missing {
            let since = *st.missing_since.get_or_insert(t);
            if st.status != Status::NoData && t - since + self.step >= self.nodata_after() {
                if st.status == Status::Firing {
                    st.resolved_at = Some(t);
                    events.push(Event::Resolved { at: t, value: None });
                }
                if st.status == Status::Pending {
                    events.push(Event::PendingCleared { at: t });
                }
                st.status = Status::NoData;
                st.nodata_since = Some(since);
                st.active_since = None;
                st.window.clear();
                events.push(Event::NoDataStarted { at: t });
            }
            return;
        }
        st.missing_since = None;
        if st.status == Status::NoData && outcome != Outcome::Hold {
            st.status = Status::Inactive;
            st.nodata_since = None;
            events.push(Event::NoDataEnded { at: t });
        }
        if outcome == Outcome::Hold {
            return;
        }
        let breach = outcome == Outcome::Breach;
        if breach {
            st.last_breach = Some(t);
            // For `for`, a breach ends a clear stretch; for M of N only
            // enough breaches do (see `step_m_of_n`).
            if matches!(self.pending, Pending::For(_)) {
                st.clear_since = None;
            }
        }
        match self.pending {
            Pending::For(d) => self.step_for(st, t, breach, d.as_secs() as i64, events),
            Pending::MofN { m, n } => self.step_m_of_n(st, t, breach, m, n, events),
        }
        if st.status == Status::Firing
            && let Some(v) = obs.value
        {
            let up = self.condition.op.is_upper();
            st.peak = Some(match st.peak {
                Some(p) if (up && p >= v) || (!up && p <= v) => p,
                _ => v,
            });
        }
    }

    fn fire(&self, st: &mut InstanceState, t: Epoch, events: &mut Vec<Event>) {
        st.status = Status::Firing;
        st.fired_at = Some(t);
        st.resolved_at = None;
        st.peak = None;
        events.push(Event::Fired {
            at: t,
            value: st.value,
        });
    }

    /// A clear datapoint on a firing alert: resolve unless `keep_firing_for` holds it.
    fn maybe_resolve(&self, st: &mut InstanceState, t: Epoch, events: &mut Vec<Event>) {
        let since = *st.clear_since.get_or_insert(t);
        let kept = self.keep_firing_for > 0 && t - since < self.keep_firing_for;
        if !kept {
            st.clear_since = None;
            st.status = Status::Resolved;
            st.resolved_at = Some(t);
            st.active_since = None;
            events.push(Event::Resolved {
                at: t,
                value: st.value,
            });
        }
    }

    fn step_for(
        &self,
        st: &mut InstanceState,
        t: Epoch,
        breach: bool,
        for_secs: i64,
        events: &mut Vec<Event>,
    ) {
        match (st.status, breach) {
            (Status::Inactive | Status::Resolved | Status::NoData, true) => {
                st.active_since = Some(t);
                if for_secs == 0 {
                    self.fire(st, t, events);
                } else {
                    st.status = Status::Pending;
                    events.push(Event::Pending { at: t });
                }
            }
            (Status::Pending, true) => {
                let since = *st.active_since.get_or_insert(t);
                if t - since >= for_secs {
                    self.fire(st, t, events);
                }
            }
            (Status::Pending, false) => {
                st.status = Status::Inactive;
                st.active_since = None;
                events.push(Event::PendingCleared { at: t });
            }
            (Status::Firing, false) => self.maybe_resolve(st, t, events),
            (Status::Firing, true)
            | (Status::Inactive | Status::Resolved | Status::NoData, false) => {}
        }
    }

    fn step_m_of_n(
        &self,
        st: &mut InstanceState,
        t: Epoch,
        breach: bool,
        m: u32,
        n: u32,
        events: &mut Vec<Event>,
    ) {
        // The last N datapoints, and no older than N periods: after a gap the
        // window does not reach back to hours-old breaches.
        let oldest = t - i64::from(n) * self.step;
        while st.window.front().is_some_and(|(wt, _)| *wt <= oldest)
            || st.window.len() >= n as usize
        {
            st.window.pop_front();
        }
        st.window.push_back((t, breach));
        let count = st.window.iter().filter(|(_, b)| *b).count() as u32;
        if count >= m {
            st.clear_since = None;
        }
        let first_breach = st.window.iter().find(|(_, b)| *b).map(|(t, _)| *t);
        match st.status {
            Status::Firing => {
                // Never resolved on a breaching datapoint: a fire that
                // flaps back within `keep_firing_for` reaches M of N again
                // and stays one alert. (A breach does not renew
                // `keep_firing_for` by itself: sparse breaches that never
                // make M of N still resolve.)
                if count < m && !breach {
                    self.maybe_resolve(st, t, events);
                    if st.status == Status::Resolved {
                        st.window.clear();
                    }
                }
            }
            Status::Pending => {
                if count >= m {
                    self.fire(st, t, events);
                } else if count == 0 {
                    st.status = Status::Inactive;
                    st.active_since = None;
                    events.push(Event::PendingCleared { at: t });
                }
            }
            Status::Inactive | Status::Resolved | Status::NoData => {
                if count >= 1 {
                    st.active_since = first_breach;
                    if count >= m {
                        self.fire(st, t, events);
                    } else {
                        st.status = Status::Pending;
                        events.push(Event::Pending { at: t });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
