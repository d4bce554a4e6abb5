//! [`SimulatedAlarms`]: sentinel alarms evaluated over any metrics source
//! (the replay file locally, generated data in tests), the way CloudWatch
//! evaluates a metric alarm with `DatapointsToAlarm` 1: in ALARM when one of
//! the last `EvaluationPeriods` complete periods breaches, a missing one
//! counting as its `TreatMissingData` says.
//!
//! Periods with no data at all among the last two are taken as not arrived
//! yet, not as missing (what firebell's arrival grace does too), so a
//! missing-data sentinel does not flap on the newest period. A new or
//! changed alarm is `INSUFFICIENT_DATA` until its first evaluation (the
//! next `alarming` or `list`), as CloudWatch's is for about a minute.
//!
//! The value of a period is the sentinel's expression in firebell's own
//! language ([`SentinelAlarm::expression`]), which for the shapes that have
//! sentinels computes what CloudWatch's metric math does wherever firebell
//! has a value (see `firebell_core::sentinel`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use firebell_core::ports::{
    AlarmError, AlarmInfo, AlarmService, AlarmState, MetricQuery, MetricsSource,
};
use firebell_core::sentinel::SentinelAlarm;
use firebell_core::series::{Epoch, Grid, align};

/// Periods at the end of the range with no data at all that are taken as
/// not arrived yet (a rule alerting on missing data sooner has no sentinel).
const NOT_ARRIVED_PERIODS: usize = firebell_core::sentinel::ALARM_ARRIVAL_PERIODS as usize;

#[derive(Debug, Clone)]
struct Kept {
    alarm: SentinelAlarm,
    state: AlarmState,
}

/// Sentinel alarms over a metrics source; counts the calls made to it.
pub struct SimulatedAlarms {
    source: Arc<dyn MetricsSource>,
    alarms: Mutex<BTreeMap<String, Kept>>,
    /// `alarming` and `list` calls (each is one DescribeAlarms, paged).
    pub describes: AtomicUsize,
    pub puts: AtomicUsize,
    pub deletes: AtomicUsize,
}

impl std::fmt::Debug for SimulatedAlarms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedAlarms").finish_non_exhaustive()
    }
}

impl SimulatedAlarms {
    pub fn new(source: Arc<dyn MetricsSource>) -> SimulatedAlarms {
        SimulatedAlarms {
            source,
            alarms: Mutex::new(BTreeMap::new()),
            describes: AtomicUsize::new(0),
            puts: AtomicUsize::new(0),
            deletes: AtomicUsize::new(0),
        }
    }

    /// Over `source`, with `alarms` already there and evaluated: a local
    /// run's sentinels, which exist as defined in every process (a run
    /// that starts from a store whose sync record trusts them finds them).
    pub fn seeded(source: Arc<dyn MetricsSource>, alarms: &[SentinelAlarm]) -> SimulatedAlarms {
        let sim = SimulatedAlarms::new(source);
        if let Ok(mut kept) = sim.alarms.lock() {
            for a in alarms {
                kept.insert(
                    a.name.clone(),
                    Kept {
                        alarm: a.clone(),
                        state: AlarmState::Ok,
                    },
                );
            }
        }
        sim
    }

    /// The alarms kept, by name (tests).
    pub fn names(&self) -> Vec<String> {
        self.kept().into_keys().collect()
    }

    /// Removes an alarm behind firebell's back (tests).
    pub fn remove(&self, name: &str) {
        if let Ok(mut a) = self.alarms.lock() {
            a.remove(name);
        }
    }

    fn kept(&self) -> BTreeMap<String, Kept> {
        self.alarms.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// The alarm's value at each period of `grid` (its metrics fetched
    /// over it, its expression evaluated), and per period whether any of
    /// its metrics has a datapoint there.
    pub async fn values(
        &self,
        alarm: &SentinelAlarm,
        grid: &Grid,
    ) -> Result<(Vec<Option<f64>>, Vec<bool>), AlarmError> {
        let queries: Vec<MetricQuery> = alarm
            .metrics
            .iter()
            .map(|(id, spec)| MetricQuery {
                id: id.clone(),
                spec: spec.clone(),
            })
            .collect();
        let series = self
            .source
            .fetch(&queries, grid.start, grid.end())
            .await
            .map_err(|e| AlarmError::Unavailable(e.to_string()))?;
        let aligned: BTreeMap<String, Vec<Option<f64>>> = series
            .iter()
            .map(|s| (s.id.clone(), align(&s.points, grid)))
            .collect();
        let empty = vec![None; grid.len];
        let input = |id: &str| -> Option<&[Option<f64>]> {
            Some(aligned.get(id).map_or(empty.as_slice(), Vec::as_slice))
        };
        let values = alarm
            .expression
            .eval(grid, &input)
            .map_err(|e| AlarmError::Refused(e.to_string()))?;
        let data = (0..grid.len)
            .map(|i| aligned.values().any(|s| s[i].is_some()))
            .collect();
        Ok((values, data))
    }

    /// The state of `alarm` as of `now`.
    pub async fn evaluate(
        &self,
        alarm: &SentinelAlarm,
        now: Epoch,
    ) -> Result<AlarmState, AlarmError> {
        let period = i64::try_from(alarm.period_secs).unwrap_or(60).max(1);
        let range = period * i64::from(alarm.evaluation_periods);
        let grid = Grid::ending_at(now, range, period);
        let (values, data) = self.values(alarm, &grid).await?;
        // Trailing periods where no metric has any datapoint: not arrived.
        let mut end = grid.len;
        while end > 0 && grid.len - end < NOT_ARRIVED_PERIODS && !data[end - 1] {
            end -= 1;
        }
        let breaching = values[..end].iter().any(|v| alarm.breaches(*v));
        Ok(if breaching {
            AlarmState::Alarm
        } else {
            AlarmState::Ok
        })
    }

    async fn evaluate_all(&self, prefix: &str, now: Epoch) -> Result<Vec<AlarmInfo>, AlarmError> {
        self.describes.fetch_add(1, Ordering::Relaxed);
        let mut out = Vec::new();
        for (name, kept) in self.kept() {
            if !name.starts_with(prefix) {
                continue;
            }
            // The state before this evaluation is what a listing shows for
            // a brand-new alarm (not evaluated yet).
            let state = self.evaluate(&kept.alarm, now).await?;
            let shown = if kept.state == AlarmState::InsufficientData {
                AlarmState::InsufficientData
            } else {
                state
            };
            if let Ok(mut a) = self.alarms.lock()
                && let Some(k) = a.get_mut(&name)
            {
                k.state = state;
            }
            out.push(AlarmInfo {
                name,
                description: kept.alarm.description.clone(),
                state: shown,
            });
        }
        Ok(out)
    }
}

#[async_trait]
impl AlarmService for SimulatedAlarms {
    async fn alarming(&self, prefix: &str, now: Epoch) -> Result<Vec<String>, AlarmError> {
        Ok(self
            .evaluate_all(prefix, now)
            .await?
            .into_iter()
            .filter(|a| a.state == AlarmState::Alarm)
            .map(|a| a.name)
            .collect())
    }

    async fn list(&self, prefix: &str, now: Epoch) -> Result<Vec<AlarmInfo>, AlarmError> {
        self.evaluate_all(prefix, now).await
    }

    async fn put(&self, alarm: &SentinelAlarm) -> Result<(), AlarmError> {
        self.puts.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut a) = self.alarms.lock() {
            a.insert(
                alarm.name.clone(),
                Kept {
                    alarm: alarm.clone(),
                    state: AlarmState::InsufficientData,
                },
            );
        }
        Ok(())
    }

    async fn delete(&self, names: &[String]) -> Result<(), AlarmError> {
        self.deletes.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut a) = self.alarms.lock() {
            for n in names {
                a.remove(n);
            }
        }
        Ok(())
    }
}
