//! Plan: which rules are due, their instances (wildcards expanded), and the
//! distinct metric queries they need, each from the earliest time a rule
//! using it needs.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};

use firebell_core::alert::fingerprint;
use firebell_core::model::{Labels, MetricSpec, Rule};
use firebell_core::ports::{MetricQuery, MetricSeries, MetricsError, MetricsSource};
use firebell_core::series::{Epoch, Grid, Series, align};

use super::{CycleReport, TICK_SECS};
use crate::error::CycleError;
use firebell_core::alert::nodata_labels;

/// One alert instance of a rule: its labels and concrete metric queries.
#[derive(Debug, Clone)]
pub struct Instance {
    pub labels: Labels,
    pub specs: BTreeMap<String, MetricSpec>,
}

/// A due rule: its grid as of the tick and its instances.
pub(super) struct RulePlan<'c> {
    pub(super) rule: &'c Rule,
    pub(super) grid: Grid,
    pub(super) instances: Vec<Instance>,
}

/// What a cycle evaluates.
#[derive(Default)]
pub(super) struct Plan<'c> {
    pub(super) rules: Vec<RulePlan<'c>>,
    /// Every distinct query, once (ids `q0`, `q1`, ...).
    pub(super) queries: Vec<MetricQuery>,
    /// A spec's dedup key -> its query id.
    query_ids: HashMap<String, String>,
    /// Query id -> the earliest time a rule using it needs.
    pub(super) start_of: HashMap<String, Epoch>,
}

/// Base labels of a rule's instances: the rule's labels plus `alertname`.
pub fn rule_labels(rule: &Rule) -> Labels {
    let mut l = rule.labels.clone();
    l.insert("alertname".to_string(), rule.name.clone());
    l
}

/// Whether `rule` is due at `now` when the last recorded tick is `last`.
pub(super) fn due(rule: &Rule, now: Epoch, last: Option<Epoch>) -> bool {
    let iv = rule.interval.as_secs().max(1) as i64;
    match last {
        None => true,
        Some(l) => now.div_euclid(iv) > l.div_euclid(iv),
    }
}

/// Expands a rule into instances. The rule's wildcard dimensions (`*`)
/// become one instance per combination of their values that the metrics
/// source reports, labelled with each dimension. The combinations come from
/// the metric with every wildcard dimension of the rule (validate makes sure
/// there is one: [`firebell_core::model::Rule::wildcard_driver`]); the
/// other metrics take their wildcard values from the instance's labels.
pub(super) async fn instances(
    metrics: &dyn MetricsSource,
    rule: &Rule,
) -> Result<Vec<Instance>, MetricsError> {
    let base = rule_labels(rule);
    let Some(driver) = rule.wildcard_driver() else {
        return Ok(vec![Instance {
            labels: base,
            specs: rule.metrics.clone(),
        }]);
    };
    let mut combos = metrics.dimension_values(driver).await?;
    combos.sort();
    combos.dedup();
    Ok(combos
        .into_iter()
        .filter(|combo| driver.wildcards().all(|w| combo.contains_key(w)))
        .map(|combo| {
            let mut labels = base.clone();
            labels.extend(combo);
            let specs = rule
                .metrics
                .iter()
                .map(|(id, m)| (id.clone(), expand_wildcards(m, &labels)))
                .collect();
            Instance { labels, specs }
        })
        .collect())
}

/// A metric spec with its wildcard dimensions (`*`) set from an instance's labels.
pub(super) fn expand_wildcards(spec: &MetricSpec, labels: &Labels) -> MetricSpec {
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

impl<'c> Plan<'c> {
    /// The due rules of `rules` at `now`, their instances and queries. A
    /// rule whose instances cannot be listed is left out (reported, and
    /// the cycle is marked incomplete so the tick is evaluated again).
    pub(super) async fn make(
        metrics: &dyn MetricsSource,
        rules: impl IntoIterator<Item = &'c Rule>,
        now: Epoch,
        last: Option<Epoch>,
        report: &mut CycleReport,
    ) -> Plan<'c> {
        let mut plan = Plan::default();
        for rule in rules {
            if !due(rule, now, last) {
                continue;
            }
            let grid = match Grid::checked_ending_at(now, rule.lookback(), rule.step()) {
                Ok(g) => g,
                Err(reason) => {
                    report.errors.push(CycleError::Unevaluable {
                        rule: rule.name.clone(),
                        reason,
                    });
                    continue;
                }
            };
            if !rule.wildcards().is_empty() && rule.wildcard_driver().is_none() {
                // (validate rejects this; a config built in code may not be validated.)
                report.errors.push(CycleError::Unevaluable {
                    rule: rule.name.clone(),
                    reason: "no metric has every wildcard dimension of the rule".to_string(),
                });
                continue;
            }
            match instances(metrics, rule).await {
                Ok(instances) => plan.add(rule, instances, grid),
                Err(source) => {
                    report.errors.push(CycleError::Discovery {
                        rule: rule.name.clone(),
                        source,
                    });
                    report.incomplete = true;
                }
            }
        }
        plan
    }

    fn add(&mut self, rule: &'c Rule, instances: Vec<Instance>, grid: Grid) {
        for inst in &instances {
            for spec in inst.specs.values() {
                let id = match self.query_ids.entry(spec.dedup_key()) {
                    Entry::Vacant(slot) => {
                        let id = format!("q{}", self.queries.len());
                        slot.insert(id.clone());
                        self.queries.push(MetricQuery {
                            id: id.clone(),
                            spec: spec.clone(),
                        });
                        id
                    }
                    Entry::Occupied(slot) => slot.get().clone(),
                };
                let s = self.start_of.entry(id).or_insert(grid.start);
                *s = (*s).min(grid.start);
            }
        }
        self.rules.push(RulePlan {
            rule,
            grid,
            instances,
        });
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether a rule is planned whose interval goes on past the next tick:
    /// evaluated now, its next evaluation counts from this tick.
    pub(super) fn paced(&self, now: Epoch) -> bool {
        self.rules
            .iter()
            .any(|rp| !due(rp.rule, now + TICK_SECS, Some(now)))
    }

    /// Per planned rule: the fingerprints of its current instances (and of
    /// their NoData alerts).
    pub(super) fn covered(&self) -> HashMap<String, HashSet<String>> {
        let mut covered: HashMap<String, HashSet<String>> = HashMap::new();
        for rp in &self.rules {
            let set = covered.entry(rp.rule.name.clone()).or_default();
            for inst in &rp.instances {
                set.insert(fingerprint(&inst.labels));
                set.insert(fingerprint(&nodata_labels(&inst.labels)));
            }
        }
        covered
    }

    /// An instance's inputs aligned on `grid`, by the rule's metric ids, or
    /// `None` when a source said some of its data is partial.
    pub(super) fn inputs<'i>(
        &self,
        inst: &'i Instance,
        series: &HashMap<&str, &MetricSeries>,
        grid: &Grid,
    ) -> Option<BTreeMap<&'i str, Series>> {
        let mut inputs = BTreeMap::new();
        let mut complete = true;
        for (id, spec) in &inst.specs {
            let s = self
                .query_ids
                .get(&spec.dedup_key())
                .and_then(|q| series.get(q.as_str()));
            let aligned = match s {
                Some(ms) => {
                    complete &= ms.complete;
                    align(&ms.points, grid)
                }
                None => vec![None; grid.len],
            };
            inputs.insert(id.as_str(), aligned);
        }
        complete.then_some(inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
