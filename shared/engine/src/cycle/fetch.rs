//! Fetch: every planned query once, grouped by the start its rules need;
//! and a rule's context values (e.g. an SLO's error budget), fetched only
//! for instances that have an alert to show them in.

use std::collections::{BTreeMap, HashMap};

use firebell_core::model::Rule;
use firebell_core::ports::{MetricQuery, MetricSeries, MetricsError, MetricsSource};
use firebell_core::series::{Epoch, Grid, Series, align};

use super::plan::{Instance, expand_wildcards};
use crate::error::CycleError;

/// Queries whose start times lie within this of each other are fetched together.
const FETCH_GROUP_SPAN: Epoch = 3600;

/// Fetches every query from the start its rules need, not all from the
/// earliest: a rule with a long lookback (an SLO's 3-day window at
/// 15-minute periods) must not stretch the 1-minute queries of the
/// others to days. Queries whose starts lie within [`FETCH_GROUP_SPAN`]
/// share one fetch from the earliest of them.
pub(super) async fn fetch_grouped(
    metrics: &dyn MetricsSource,
    queries: &[MetricQuery],
    start_of: &HashMap<String, Epoch>,
    now: Epoch,
) -> Result<Vec<MetricSeries>, MetricsError> {
    let mut out = Vec::new();
    for (start, group) in &fetch_groups(queries, start_of, now) {
        out.extend(metrics.fetch(group, *start, now).await?);
    }
    Ok(out)
}

/// The fetches of [`fetch_grouped`]: `(start, queries)`, latest
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

/// Computes a rule's context values (see
/// [`firebell_core::model::ContextValue`]) for one instance: its own fetch,
/// over its own window. A value that cannot be computed is `None` (the
/// templates say "unknown"); the error is reported and the cycle goes on.
pub(super) async fn context_values(
    metrics: &dyn MetricsSource,
    rule: &Rule,
    inst: &Instance,
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
                spec: expand_wildcards(spec, &inst.labels),
            })
            .collect();
        let mut covered = None;
        let value = match metrics.fetch(&queries, grid.start, now).await {
            Ok(series) => {
                let inputs: BTreeMap<&str, Series> = series
                    .iter()
                    .map(|s| (s.id.as_str(), align(&s.points, &grid)))
                    .collect();
                covered = Some(coverage(&grid, &inputs, now, cv.window.as_secs()));
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
/// of any input on.
fn coverage(grid: &Grid, inputs: &BTreeMap<&str, Series>, now: Epoch, window: u64) -> f64 {
    let first = (0..grid.len).find(|&i| {
        inputs
            .values()
            .any(|s| s.get(i).copied().flatten().is_some())
    });
    let Some(i) = first else { return 0.0 };
    let window = window.max(1) as f64;
    ((now - grid.time(i)) as f64 / window).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use firebell_core::model::MetricSpec;

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
}
