//! [`ReplaySource`]: a [`MetricsSource`] that replays datapoints from a JSON
//! Lines file, one series per line. The format is documented in `REPLAY.md`
//! at the root of this crate:
//!
//! ```text
//! # comments and blank lines are ignored
//! {"namespace":"Shop/Payments","metric":"Requests","dimensions":{"Service":"payments"},"stat":"Sum","period":60,"points":[[1700000000,412.0],[1700000060,398.0]]}
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;

use async_trait::async_trait;
use firebell_core::model::{Labels, MetricSpec, Stat};
use firebell_core::ports::{MetricQuery, MetricSeries, MetricsError, MetricsSource};
use firebell_core::series::{Epoch, Point};
use serde::{Deserialize, Serialize};

/// The stats a replay file may name, for error messages.
const EXPECTED_STATS: &str = firebell_core::model::EXPECTED_STATS;

/// Why a replay file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// Line `line` (1-based) of `file` is not a valid series.
    #[error("{file}:{line}: {problem}")]
    Line {
        file: String,
        line: usize,
        problem: LineProblem,
    },
}

/// What is wrong with one line of a replay file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LineProblem {
    #[error("invalid series: {0}")]
    Json(String),
    #[error("unknown stat {0:?} (expected {EXPECTED_STATS})")]
    UnknownStat(String),
    #[error("period must be a positive number of seconds, at most 86400 (1 day), got {0}")]
    BadPeriod(i64),
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("dimension {name:?} has an empty {what}")]
    EmptyDimension { name: String, what: &'static str },
    #[error("dimension {0:?} has the wildcard value \"*\": replay files hold concrete series")]
    WildcardDimension(String),
    #[error(
        "point time {0} is out of range (expected Unix seconds from 0 to 253402300799, 9999-12-31)"
    )]
    BadTime(Epoch),
    #[error("point value {value} at time {time} is not a finite number")]
    NotFinite { time: Epoch, value: f64 },
    #[error("second point at time {time} for this series (first on line {first_line})")]
    DuplicatePoint { time: Epoch, first_line: usize },
}

/// One series of a replay file.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplaySeries {
    pub namespace: String,
    pub metric: String,
    pub dimensions: BTreeMap<String, String>,
    pub stat: Stat,
    /// Seconds.
    pub period: i64,
    /// Ascending by time, one per time.
    pub points: Vec<Point>,
    /// The owning account, region and Metrics Insights query of the series,
    /// as [`MetricSpec`] names them (`None`: not named).
    pub account: Option<String>,
    pub region: Option<String>,
    pub query: Option<String>,
}

impl ReplaySeries {
    /// The query that fetches exactly this series.
    pub fn spec(&self) -> MetricSpec {
        MetricSpec {
            namespace: self.namespace.clone(),
            metric_name: self.metric.clone(),
            dimensions: self.dimensions.clone(),
            stat: self.stat,
            period: std::time::Duration::from_secs(self.period.unsigned_abs()),
            account: self.account.clone(),
            region: self.region.clone(),
            query: self.query.clone(),
        }
    }

    /// Whether the series is of this account, region and query.
    fn same_place(
        &self,
        account: &Option<String>,
        region: &Option<String>,
        query: &Option<String>,
    ) -> bool {
        &self.account == account && &self.region == region && &self.query == query
    }

    /// The series as one line of the replay format (without the newline).
    pub fn to_line(&self) -> String {
        let line = LineOut {
            namespace: &self.namespace,
            metric: &self.metric,
            dimensions: &self.dimensions,
            stat: self.stat.to_string(),
            period: self.period,
            points: self.points.iter().map(|p| (p.t, p.v)).collect(),
            account: self.account.as_deref(),
            region: self.region.as_deref(),
            query: self.query.as_deref(),
        };
        // Strings, integers and finite floats always serialize.
        serde_json::to_string(&line).unwrap_or_default()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineIn {
    namespace: String,
    metric: String,
    #[serde(default)]
    dimensions: BTreeMap<String, String>,
    stat: String,
    period: i64,
    #[serde(default)]
    points: Vec<(Epoch, f64)>,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    query: Option<String>,
}

#[derive(Serialize)]
struct LineOut<'a> {
    namespace: &'a str,
    metric: &'a str,
    dimensions: &'a BTreeMap<String, String>,
    stat: String,
    period: i64,
    points: Vec<(Epoch, f64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query: Option<&'a str>,
}

/// A [`MetricsSource`] answering from replay data held in memory.
///
/// A query is answered by the series with the same namespace, metric,
/// dimensions, stat and period. Failing that, by re-aggregating a series of
/// the same metric whose period divides the query's (the largest such):
/// `Sum` and `SampleCount` add up, `Minimum`/`Maximum` take the extreme, and
/// `Average` is weighted by a `SampleCount` series of the same period
/// (`Average` x `SampleCount`, or `Sum` / `SampleCount`). Percentiles and
/// extended statistics (`PR(:300)`, `TM(10%:90%)`, `IQM`, ...) cannot be
/// re-aggregated. When the data has the metric and stat but cannot answer,
/// the query is a [`MetricsError::BadQuery`] saying why; when it has no such
/// metric at all, the series is empty (as CloudWatch answers for an unknown
/// metric). Points are those labelled in `[start, end)`, ascending; a
/// re-aggregated bucket only uses source points before `end`. Every series is
/// `complete`.
#[derive(Debug, Clone, Default)]
pub struct ReplaySource {
    series: Vec<ReplaySeries>,
}

impl ReplaySource {
    /// Loads a replay file; errors name the file and line.
    pub fn from_path(path: impl AsRef<Path>) -> Result<ReplaySource, ReplayError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ReplayError::Io {
            file: file.clone(),
            source,
        })?;
        ReplaySource::parse(&file, &text)
    }

    /// Parses replay text; `name` stands for the file in error messages.
    pub fn parse(name: &str, text: &str) -> Result<ReplaySource, ReplayError> {
        let mut builder = Builder::default();
        for (index, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            builder
                .add(trimmed, index + 1)
                .map_err(|problem| ReplayError::Line {
                    file: name.to_string(),
                    line: index + 1,
                    problem,
                })?;
        }
        Ok(builder.finish())
    }

    /// Builds a source from series (points are sorted; for the same time the last wins).
    pub fn from_series(series: impl IntoIterator<Item = ReplaySeries>) -> ReplaySource {
        let series = series
            .into_iter()
            .map(|mut s| {
                s.points.sort_by_key(|p| p.t);
                s.points.reverse();
                s.points.dedup_by_key(|p| p.t);
                s.points.reverse();
                s
            })
            .collect();
        ReplaySource { series }
    }

    pub fn series(&self) -> &[ReplaySeries] {
        &self.series
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// `(first point time, end of the last point's period)` over all series.
    pub fn time_range(&self) -> Option<(Epoch, Epoch)> {
        let first = self
            .series
            .iter()
            .filter_map(|s| s.points.first())
            .map(|p| p.t)
            .min()?;
        let end = self
            .series
            .iter()
            .filter_map(|s| s.points.last().map(|p| p.t + s.period))
            .max()?;
        Some((first, end))
    }

    /// The whole data in the replay format.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for s in &self.series {
            out.push_str(&s.to_line());
            out.push('\n');
        }
        out
    }

    fn same_metric<'a>(
        &'a self,
        spec: &MetricSpec,
    ) -> impl Iterator<Item = &'a ReplaySeries> + use<'a> {
        let (namespace, metric, dimensions) = (
            spec.namespace.clone(),
            spec.metric_name.clone(),
            spec.dimensions.clone(),
        );
        let place = (
            spec.account.clone(),
            spec.region.clone(),
            spec.query.clone(),
        );
        self.series.iter().filter(move |s| {
            s.namespace == namespace
                && s.metric == metric
                && s.dimensions == dimensions
                && s.same_place(&place.0, &place.1, &place.2)
        })
    }

    fn find(&self, spec: &MetricSpec, stat: Stat, period: i64) -> Option<&ReplaySeries> {
        self.same_metric(spec)
            .find(|s| s.stat == stat && s.period == period)
    }

    fn answer(
        &self,
        spec: &MetricSpec,
        start: Epoch,
        end: Epoch,
    ) -> Result<Vec<Point>, MetricsError> {
        let period = query_period(spec)?;
        if let Some((name, _)) = spec.dimensions.iter().find(|(_, v)| v.as_str() == "*") {
            return Err(MetricsError::BadQuery(format!(
                "{}: dimension {name:?} is a wildcard; expand it with dimension_values first",
                describe(spec)
            )));
        }
        if start >= end {
            return Ok(Vec::new());
        }
        if let Some(s) = self.find(spec, spec.stat, period) {
            return Ok(in_range(&s.points, start, end).to_vec());
        }
        // Periods of this metric that divide the query's, largest first.
        let mut divisors: Vec<i64> = self
            .same_metric(spec)
            .map(|s| s.period)
            .filter(|p| period % p == 0)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        divisors.reverse();
        match spec.stat {
            Stat::Sum | Stat::SampleCount => {
                if let Some(s) = divisors.iter().find_map(|&p| self.find(spec, spec.stat, p)) {
                    return Ok(aggregate(&s.points, period, start, end, |a, b| a + b));
                }
            }
            Stat::Minimum => {
                if let Some(s) = divisors.iter().find_map(|&p| self.find(spec, spec.stat, p)) {
                    return Ok(aggregate(&s.points, period, start, end, f64::min));
                }
            }
            Stat::Maximum => {
                if let Some(s) = divisors.iter().find_map(|&p| self.find(spec, spec.stat, p)) {
                    return Ok(aggregate(&s.points, period, start, end, f64::max));
                }
            }
            Stat::Average => {
                for &p in &divisors {
                    let Some(counts) = self.find(spec, Stat::SampleCount, p) else {
                        continue;
                    };
                    if let Some(avg) = self.find(spec, Stat::Average, p) {
                        return Ok(weighted(
                            &avg.points,
                            &counts.points,
                            true,
                            period,
                            start,
                            end,
                        ));
                    }
                    if let Some(sum) = self.find(spec, Stat::Sum, p) {
                        return Ok(weighted(
                            &sum.points,
                            &counts.points,
                            false,
                            period,
                            start,
                            end,
                        ));
                    }
                }
            }
            Stat::Percentile(_) | Stat::Range(_) | Stat::Iqm => {}
        }
        let periods: Vec<i64> = self
            .same_metric(spec)
            .filter(|s| s.stat == spec.stat)
            .map(|s| s.period)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if periods.is_empty() {
            return Ok(Vec::new());
        }
        let what = describe(spec);
        let have = list(&periods);
        Err(MetricsError::BadQuery(match spec.stat {
            Stat::Percentile(_) => format!(
                "{what}: the replay data has this percentile at period {have} only, and percentiles cannot be re-aggregated to {period} s"
            ),
            Stat::Range(_) | Stat::Iqm => format!(
                "{what}: the replay data has this extended statistic at period {have} only, and extended statistics cannot be re-aggregated to {period} s"
            ),
            Stat::Average if periods.iter().any(|p| period % p == 0) => format!(
                "{what}: the replay data has Average at period {have}, but re-aggregating it to {period} s needs a SampleCount series of the same period"
            ),
            _ => format!(
                "{what}: the replay data has this stat at period {have}, which does not divide the query period {period} s"
            ),
        }))
    }
}

#[async_trait]
impl MetricsSource for ReplaySource {
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: Epoch,
        end: Epoch,
    ) -> Result<Vec<MetricSeries>, MetricsError> {
        queries
            .iter()
            .map(|q| {
                Ok(MetricSeries {
                    id: q.id.clone(),
                    points: self.answer(&q.spec, start, end)?,
                    complete: true,
                })
            })
            .collect()
    }

    /// The wildcard dimensions' values of every series with the query's
    /// namespace, metric and dimension names whose fixed dimensions match
    /// (see the port). Like CloudWatch's ListMetrics, stat and period are
    /// ignored.
    async fn dimension_values(&self, spec: &MetricSpec) -> Result<Vec<Labels>, MetricsError> {
        let combos: BTreeSet<Labels> = self
            .series
            .iter()
            .filter(|s| {
                s.namespace == spec.namespace
                    && s.metric == spec.metric_name
                    && s.same_place(&spec.account, &spec.region, &spec.query)
                    && s.dimensions.len() == spec.dimensions.len()
                    && spec.dimensions.iter().all(|(k, v)| {
                        s.dimensions
                            .get(k)
                            .is_some_and(|have| v == "*" || have == v)
                    })
            })
            .map(|s| {
                spec.dimensions
                    .iter()
                    .filter(|(_, v)| v.as_str() == "*")
                    .filter_map(|(k, _)| Some((k.clone(), s.dimensions.get(k)?.clone())))
                    .collect()
            })
            .collect();
        Ok(combos.into_iter().collect())
    }
}

// ------------------------------------------------------------------ loading

/// Points of a series being loaded: time -> (value, line it came from).
type LoadedPoints = BTreeMap<Epoch, (f64, usize)>;

#[derive(Default)]
struct Builder {
    index: HashMap<String, usize>,
    series: Vec<(ReplaySeries, LoadedPoints)>,
}

/// The latest point time a replay file may hold (9999-12-31T23:59:59Z):
/// with periods of at most a day, no time computation can overflow.
const MAX_TIME: Epoch = 253_402_300_799;

impl Builder {
    fn add(&mut self, line: &str, line_no: usize) -> Result<(), LineProblem> {
        let raw: LineIn =
            serde_json::from_str(line).map_err(|e| LineProblem::Json(json_message(&e)))?;
        if raw.namespace.is_empty() {
            return Err(LineProblem::Empty("namespace"));
        }
        if raw.metric.is_empty() {
            return Err(LineProblem::Empty("metric"));
        }
        let stat =
            Stat::parse(&raw.stat).ok_or_else(|| LineProblem::UnknownStat(raw.stat.clone()))?;
        if raw.period <= 0 || raw.period > 86_400 {
            return Err(LineProblem::BadPeriod(raw.period));
        }
        for (name, value) in &raw.dimensions {
            if name.is_empty() {
                return Err(LineProblem::EmptyDimension {
                    name: name.clone(),
                    what: "name",
                });
            }
            if value.is_empty() {
                return Err(LineProblem::EmptyDimension {
                    name: name.clone(),
                    what: "value",
                });
            }
            if value == "*" {
                return Err(LineProblem::WildcardDimension(name.clone()));
            }
        }
        let series = ReplaySeries {
            namespace: raw.namespace,
            metric: raw.metric,
            dimensions: raw.dimensions,
            stat,
            period: raw.period,
            points: Vec::new(),
            account: raw.account,
            region: raw.region,
            query: raw.query,
        };
        let key = identity(&series);
        let next = self.series.len();
        let at = *self.index.entry(key).or_insert(next);
        if at == next {
            self.series.push((series, BTreeMap::new()));
        }
        let Some((_, points)) = self.series.get_mut(at) else {
            return Ok(());
        };
        for (time, value) in raw.points {
            if !(0..=MAX_TIME).contains(&time) {
                return Err(LineProblem::BadTime(time));
            }
            if !value.is_finite() {
                return Err(LineProblem::NotFinite { time, value });
            }
            if let Some(&(_, first_line)) = points.get(&time) {
                return Err(LineProblem::DuplicatePoint { time, first_line });
            }
            points.insert(time, (value, line_no));
        }
        Ok(())
    }

    fn finish(self) -> ReplaySource {
        ReplaySource {
            series: self
                .series
                .into_iter()
                .map(|(mut s, points)| {
                    s.points = points
                        .into_iter()
                        .map(|(t, (v, _))| Point { t, v })
                        .collect();
                    s
                })
                .collect(),
        }
    }
}

fn identity(s: &ReplaySeries) -> String {
    let dims: Vec<String> = s
        .dimensions
        .iter()
        .map(|(k, v)| format!("{k:?}={v:?}"))
        .collect();
    format!(
        "{:?}|{:?}|{}|{}|{}|{:?}",
        s.namespace,
        s.metric,
        dims.join(","),
        s.stat,
        s.period,
        (&s.account, &s.region, &s.query)
    )
}

/// serde_json's message without its "at line 1 column N" (the line is known),
/// keeping the column.
fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => format!("{} (column {})", &text[..at], e.column()),
        None => text,
    }
}

// ------------------------------------------------------------------ answering

fn query_period(spec: &MetricSpec) -> Result<i64, MetricsError> {
    let secs = spec.period.as_secs();
    if secs == 0 || spec.period.subsec_nanos() != 0 {
        return Err(MetricsError::BadQuery(format!(
            "{}: period must be a whole number of seconds, at least 1",
            describe(spec)
        )));
    }
    i64::try_from(secs)
        .map_err(|_| MetricsError::BadQuery(format!("{}: period too large", describe(spec))))
}

fn in_range(points: &[Point], start: Epoch, end: Epoch) -> &[Point] {
    let from = points.partition_point(|p| p.t < start);
    let to = points.partition_point(|p| p.t < end);
    points.get(from..to).unwrap_or(&[])
}

/// Buckets of `period` labelled in `[start, end)` from the points before `end`.
fn aggregate(
    points: &[Point],
    period: i64,
    start: Epoch,
    end: Epoch,
    combine: impl Fn(f64, f64) -> f64,
) -> Vec<Point> {
    let mut out: Vec<Point> = Vec::new();
    for p in in_range(points, start, end) {
        let label = p.t.div_euclid(period) * period;
        if label < start {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.t == label => last.v = combine(last.v, p.v),
            _ => out.push(Point { t: label, v: p.v }),
        }
    }
    out
}

/// Average per bucket from values and sample counts of the same times:
/// `values` are averages (`is_average`) or sums.
fn weighted(
    values: &[Point],
    counts: &[Point],
    is_average: bool,
    period: i64,
    start: Epoch,
    end: Epoch,
) -> Vec<Point> {
    let counts: HashMap<Epoch, f64> = counts.iter().map(|p| (p.t, p.v)).collect();
    let mut buckets: BTreeMap<Epoch, (f64, f64)> = BTreeMap::new();
    for p in in_range(values, start, end) {
        let label = p.t.div_euclid(period) * period;
        let Some(&n) = counts.get(&p.t) else { continue };
        if label < start || n <= 0.0 {
            continue;
        }
        let total = if is_average { p.v * n } else { p.v };
        let acc = buckets.entry(label).or_insert((0.0, 0.0));
        acc.0 += total;
        acc.1 += n;
    }
    buckets
        .into_iter()
        .map(|(t, (total, n))| Point { t, v: total / n })
        .collect()
}

struct Describe<'a>(&'a MetricSpec);

impl fmt::Display for Describe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        write!(f, "{} {}", s.namespace, s.metric_name)?;
        if !s.dimensions.is_empty() {
            let dims: Vec<String> = s
                .dimensions
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            write!(f, " {{{}}}", dims.join(", "))?;
        }
        write!(f, " {} period {} s", s.stat, s.period.as_secs())
    }
}

fn describe(spec: &MetricSpec) -> Describe<'_> {
    Describe(spec)
}

fn list(periods: &[i64]) -> String {
    let items: Vec<String> = periods.iter().map(|p| format!("{p} s")).collect();
    items.join(", ")
}
