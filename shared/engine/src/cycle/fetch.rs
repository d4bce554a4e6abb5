//! Fetch: every planned query once, grouped by the start its rules need;
//! and a rule's context values (e.g. an SLO's error budget), fetched only
//! for instances that have an alert to show them in.

use std::collections::{BTreeMap, HashMap};

use firebell_core::model::{Labels, MetricSpec, Rule};
use firebell_core::ports::{MetricQuery, MetricSeries, MetricsError, MetricsSource};
use firebell_core::series::{Epoch, Grid, Series, align};

use super::plan::{Queries, expand_wildcards};
use crate::error::CycleError;

/// Queries whose start times lie within this of each other are fetched together.
const FETCH_GROUP_SPAN: Epoch = 3600;

/// A group of more queries than this is fetched in parts of this many
/// queries of one period (a multiple of `GetMetricData`'s 500, so the
/// parts make as many calls as the whole): only a part's queries are
/// copied out of the plan at a time.
const FETCH_PART: usize = 10_000;

/// Where a query's metrics live: `(account, region)`, `None` for the
/// evaluator's own.
pub(super) type Target<'s> = (Option<&'s str>, Option<&'s str>);

/// The target of `spec`.
pub(super) fn target_of(spec: &MetricSpec) -> Target<'_> {
    (spec.account.as_deref(), spec.region.as_deref())
}

/// Where a failed query's metrics were read from, for messages: its
/// Metrics Insights query, or its target ([`describe_target`]).
pub(super) fn describe_source(spec: &MetricSpec) -> String {
    match &spec.query {
        Some(_) => match describe_target(target_of(spec)).as_str() {
            "this account and region" => "its Metrics Insights query".to_string(),
            other => format!("its Metrics Insights query ({other})"),
        },
        None => describe_target(target_of(spec)),
    }
}

/// A target for messages: `account 123456789012, region eu-west-1`.
pub(super) fn describe_target(target: Target<'_>) -> String {
    match target {
        (Some(a), Some(r)) => format!("account {a}, region {r}"),
        (Some(a), None) => format!("account {a}"),
        (None, Some(r)) => format!("region {r}"),
        (None, None) => "this account and region".to_string(),
    }
}

/// A copy of a metrics error (one failed target fails each of its rules).
pub(super) fn copy_error(e: &MetricsError) -> MetricsError {
    match e {
        MetricsError::Throttled(m) => MetricsError::Throttled(m.clone()),
        MetricsError::Unavailable(m) => MetricsError::Unavailable(m.clone()),
        MetricsError::BadQuery(m) => MetricsError::BadQuery(m.clone()),
    }
}

/// What a fetch got: the series by query number (`None` where the source
/// returned nothing) and the queries of another account or region whose
/// fetch failed, by query number, with the error.
#[derive(Default)]
pub(super) struct Fetched {
    pub(super) series: Vec<Option<MetricSeries>>,
    pub(super) failed: HashMap<usize, std::sync::Arc<MetricsError>>,
}

/// Fetches every query from the start its rules need, not all from the
/// earliest: a rule with a long lookback (an SLO's 3-day window at
/// 15-minute periods) must not stretch the 1-minute queries of the
/// others to days. Queries whose starts lie within [`FETCH_GROUP_SPAN`]
/// share one fetch from the earliest of them (in parts of at most
/// [`FETCH_PART`] queries). Each fetch holds the queries of one target
/// (account and region); a group's targets are fetched concurrently, so a
/// slow region does not hold up the others (the adapter bounds each
/// region's and account's time). When another account's or region's fetch
/// fails, only its queries fail ([`Fetched::failed`]), the cycle goes on,
/// and its queries of later groups fail with the same error without being
/// asked again; when the evaluator's own fails, the fetch fails. The series
/// come back by query number, their ids dropped.
pub(super) async fn fetch_grouped(
    metrics: &dyn MetricsSource,
    queries: &Queries<'_>,
    now: Epoch,
) -> Result<Fetched, MetricsError> {
    let mut out = Fetched::default();
    out.series.resize_with(queries.len(), || None);
    let mut broken: BTreeMap<Key<'_>, std::sync::Arc<MetricsError>> = BTreeMap::new();
    for (start, group) in fetch_groups(queries) {
        // By target, and each Metrics Insights query apart: CloudWatch
        // answers it in a call of its own anyway, and a query it rejects
        // (bad SQL, a limit, throttling) fails only its own rules.
        // (A query at two periods is two calls: fetched apart too, so its
        // error comes back whole rather than as partial series.)
        let mut by_key: BTreeMap<Key<'_>, Vec<usize>> = BTreeMap::new();
        for i in group {
            let spec = queries.spec(i);
            let query = spec.query.as_deref().map(|q| (q, spec.period.as_secs()));
            by_key.entry((target_of(spec), query)).or_default().push(i);
        }
        let mut asked = Vec::new();
        for (key, group) in by_key {
            match broken.get(&key) {
                // Failed in an earlier group this cycle: not asked again.
                Some(e) => {
                    for i in group {
                        out.failed.insert(i, e.clone());
                    }
                }
                None => asked.push(fetch_target(metrics, queries, key, group, start, now)),
            }
        }
        for (key, result) in futures_util::future::join_all(asked).await {
            match result {
                Ok(got) => {
                    for mut s in got {
                        let i = s.id.strip_prefix('q').and_then(|n| n.parse::<usize>().ok());
                        if let Some(slot) = i.and_then(|i| out.series.get_mut(i)) {
                            s.id = String::new();
                            *slot = Some(s);
                        }
                    }
                }
                // The evaluator's own metrics (not a query): the fetch fails.
                Err((e, _)) if key == ((None, None), None) => return Err(e),
                Err((e, group)) => {
                    let e = std::sync::Arc::new(e);
                    for i in group {
                        out.failed.insert(i, e.clone());
                    }
                    broken.insert(key, e);
                }
            }
        }
    }
    Ok(out)
}

/// How [`fetch_grouped`] splits a group: the target (account and region),
/// and the Metrics Insights query and its period (`None`: plain metrics).
type Key<'k> = (Target<'k>, Option<(&'k str, u64)>);

/// What [`fetch_target`] returns: its key, and its series or the error
/// with the query numbers it failed.
type TargetResult<'s> = (
    Key<'s>,
    Result<Vec<MetricSeries>, (MetricsError, Vec<usize>)>,
);

/// One key's queries of a group, part after part; the first failure fails
/// them all.
async fn fetch_target<'s>(
    metrics: &dyn MetricsSource,
    queries: &Queries<'s>,
    key: Key<'s>,
    group: Vec<usize>,
    start: Epoch,
    now: Epoch,
) -> TargetResult<'s> {
    let mut got = Vec::new();
    for part in parts(queries, group.clone()) {
        let asked: Vec<MetricQuery> = part
            .iter()
            .map(|&i| MetricQuery {
                id: format!("q{i}"),
                spec: queries.spec(i).clone(),
            })
            .collect();
        match metrics.fetch(&asked, start, now).await {
            Ok(series) => got.extend(series),
            Err(e) => return (key, Err((e, group))),
        }
    }
    (key, Ok(got))
}

/// The fetches of [`fetch_grouped`]: `(start, query numbers)`, latest
/// start first; a group spans at most [`FETCH_GROUP_SPAN`] of starts and is
/// fetched from its earliest.
fn fetch_groups(queries: &Queries<'_>) -> Vec<(Epoch, Vec<usize>)> {
    let mut by_start: Vec<(Epoch, usize)> =
        (0..queries.len()).map(|i| (queries.start(i), i)).collect();
    // Latest start (shortest lookback) first.
    by_start.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut groups: Vec<(Epoch, Vec<usize>)> = Vec::new();
    let mut latest = None;
    for (start, q) in by_start {
        match (groups.last_mut(), latest) {
            (Some((group_start, group)), Some(l)) if l - start <= FETCH_GROUP_SPAN => {
                *group_start = start;
                group.push(q);
            }
            _ => {
                latest = Some(start);
                groups.push((start, vec![q]));
            }
        }
    }
    groups
}

/// A group's fetches: the whole group, or, over [`FETCH_PART`] queries,
/// parts of at most that many queries of one period each.
fn parts(queries: &Queries<'_>, mut group: Vec<usize>) -> Vec<Vec<usize>> {
    if group.len() <= FETCH_PART {
        return vec![group];
    }
    group.sort_by_key(|&i| (queries.spec(i).period, i));
    let mut out: Vec<Vec<usize>> = Vec::new();
    for i in group {
        let period = queries.spec(i).period;
        match out.last_mut() {
            Some(part)
                if part.len() < FETCH_PART
                    && part.first().map(|&f| queries.spec(f).period) == Some(period) =>
            {
                part.push(i);
            }
            _ => out.push(vec![i]),
        }
    }
    out
}

/// Computes a rule's context values (see
/// [`firebell_core::model::ContextValue`]) for one instance: its own fetch,
/// over its own window. A value that cannot be computed is `None` (the
/// templates say "unknown"); the error is reported and the cycle goes on.
pub(super) async fn context_values(
    metrics: &dyn MetricsSource,
    rule: &Rule,
    labels: &Labels,
    now: Epoch,
    errors: &mut Vec<CycleError>,
) -> Vec<(String, Option<f64>)> {
    let mut out = Vec::with_capacity(rule.context.len());
    for cv in &rule.context {
        let mut grid = match Grid::checked_ending_at(now, cv.window, cv.step()) {
            Ok(g) => g,
            Err(reason) => {
                errors.push(CycleError::Unevaluable {
                    rule: rule.name.clone(),
                    reason: format!("`{}`: {reason}", cv.name),
                });
                out.push((cv.name.clone(), None));
                continue;
            }
        };
        // And the period in progress: an hourly budget counts the
        // errors of the last minutes too.
        grid.len += 1;
        let queries: Vec<MetricQuery> = cv
            .metrics
            .iter()
            .map(|(id, spec)| MetricQuery {
                id: id.clone(),
                spec: expand_wildcards(spec, labels),
            })
            .collect();
        let mut covered = None;
        let value = match metrics.fetch(&queries, grid.start, now).await {
            Ok(series) => {
                let inputs: BTreeMap<&str, Series> = series
                    .iter()
                    .map(|s| (s.id.as_str(), align(&s.points, &grid)))
                    .collect();
                covered = Some(coverage(
                    &grid,
                    &inputs,
                    &cv.required,
                    now,
                    cv.window.as_secs(),
                ));
                let empty = vec![None; grid.len];
                let eval = cv.expression.eval(&grid, &|id| {
                    Some(inputs.get(id).map_or(empty.as_slice(), Vec::as_slice))
                });
                match eval {
                    Ok(v) => v.iter().rev().find_map(|x| *x),
                    Err(source) => {
                        errors.push(CycleError::ContextExpression {
                            rule: rule.name.clone(),
                            value: cv.name.clone(),
                            source,
                        });
                        None
                    }
                }
            }
            Err(source) => {
                errors.push(CycleError::ContextFetch {
                    rule: rule.name.clone(),
                    value: cv.name.clone(),
                    source,
                });
                None
            }
        };
        out.push((cv.name.clone(), value));
        out.push((format!("{}{COVERED_SUFFIX}", cv.name), covered));
    }
    out
}

/// The template variable beside each context value `x`: `x_covered`, the
/// share (0 to 1) of the value's window that had data. A value computed
/// from less than its window (a new service, a short backtest) says so.
pub(crate) const COVERED_SUFFIX: &str = "_covered";

/// The share of the window `[now - window, now]` from the first datapoint
/// of any input on, less the datapoints left out for want of a `required`
/// input (one step each: another input has a value there, a required one
/// none).
fn coverage(
    grid: &Grid,
    inputs: &BTreeMap<&str, Series>,
    required: &[String],
    now: Epoch,
    window: u64,
) -> f64 {
    let present = |id: &str, i: usize| {
        inputs
            .get(id)
            .and_then(|s| s.get(i).copied().flatten())
            .is_some()
    };
    let any = |i: usize| inputs.keys().any(|id| present(id, i));
    let Some(first) = (0..grid.len).find(|&i| any(i)) else {
        return 0.0;
    };
    let left_out = (first..grid.len)
        .filter(|&i| any(i) && required.iter().any(|id| !present(id, i)))
        .count() as f64;
    let window = window.max(1) as f64;
    let covered = (now - grid.time(first)) as f64 - left_out * grid.step as f64;
    (covered / window).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use firebell_core::model::MetricSpec;

    fn spec(name: &str, period: u64) -> MetricSpec {
        MetricSpec {
            namespace: "N".into(),
            metric_name: name.into(),
            dimensions: BTreeMap::new(),
            stat: firebell_core::model::Stat::Sum,
            period: std::time::Duration::from_secs(period),
            account: None,
            region: None,
            query: None,
        }
    }

    #[test]
    fn queries_are_fetched_from_the_start_their_rules_need() {
        let now = 1_000_000;
        let specs: Vec<MetricSpec> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|n| spec(n, 60))
            .collect();
        let starts = [
            now - 600,
            now - 7_200,
            now - 3 * 86_400,
            now - 1_800,
            now - 600,
        ];
        let queries = Queries::from_parts(specs.iter().collect(), starts.to_vec());
        let name = |i: usize| queries.spec(i).metric_name.clone();
        let groups: Vec<(Epoch, Vec<String>)> = fetch_groups(&queries)
            .into_iter()
            .map(|(s, g)| (now - s, g.into_iter().map(name).collect()))
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
    fn big_groups_are_fetched_in_parts_of_one_period() {
        // 25,000 queries of 1 minute and 3 of 5 minutes: parts of 10,000,
        // 10,000 and 5,000 (20 + 20 + 10 GetMetricData calls, as many as
        // the whole), then the 3.
        let specs: Vec<MetricSpec> = (0..25_003)
            .map(|i| spec(&format!("m{i}"), if i % 10_000 == 7 { 300 } else { 60 }))
            .collect();
        let n = specs.len();
        let queries = Queries::from_parts(specs.iter().collect(), vec![0; n]);
        let sizes: Vec<(usize, u64)> = parts(&queries, (0..n).collect())
            .iter()
            .map(|p| (p.len(), queries.spec(p[0]).period.as_secs()))
            .collect();
        assert_eq!(sizes, [(10_000, 60), (10_000, 60), (5_000, 60), (3, 300)]);
        // A small group is fetched whole, in its order.
        assert_eq!(parts(&queries, vec![3, 1, 2]), [vec![3, 1, 2]]);
    }

    /// A datapoint with `total` but no `fast` (a latency SLI's hour with
    /// requests and no percentile rank) is left out of the budget: it is
    /// not covered.
    #[test]
    fn datapoints_without_a_required_input_are_not_covered() {
        let grid = Grid {
            start: 0,
            step: 3600,
            len: 10,
        };
        let now = 36_000;
        let total: Series = vec![Some(5.0); 10];
        let mut fast: Series = vec![Some(99.0); 10];
        fast[3] = None;
        fast[4] = None;
        let inputs = BTreeMap::from([("fast", fast), ("total", total)]);
        let required = vec!["fast".to_string()];
        assert_eq!(coverage(&grid, &inputs, &required, now, 36_000), 0.8);
        // Without a required input every datapoint counts.
        assert_eq!(coverage(&grid, &inputs, &[], now, 36_000), 1.0);
        // Hours with no data at all are not left out (no requests).
        let none: BTreeMap<&str, Series> = BTreeMap::from([
            ("fast", vec![None, Some(99.0)]),
            ("total", vec![None, Some(5.0)]),
        ]);
        let grid2 = Grid {
            start: 0,
            step: 3600,
            len: 2,
        };
        assert_eq!(coverage(&grid2, &none, &required, 7200, 7200), 0.5);
    }
}
