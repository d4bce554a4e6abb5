//! Plan: which rules are due, their instances (wildcards expanded), and the
//! distinct metric queries they need, each from the earliest time a rule
//! using it needs.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use firebell_core::alert::fingerprint;
use firebell_core::model::{Labels, MetricSpec, Rule, SpecKey};
use firebell_core::ports::{MetricSeries, MetricsError, MetricsSource};
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

/// A planned instance: its labels and its queries, borrowed from its rule
/// unless wildcards were expanded (a cycle over 100,000 rules does not
/// copy 100,000 rules' metrics).
pub(super) struct Planned<'c> {
    pub(super) labels: Labels,
    pub(super) specs: Cow<'c, BTreeMap<String, MetricSpec>>,
}

/// A due rule: its grid as of the tick and its instances.
pub(super) struct RulePlan<'c> {
    pub(super) rule: &'c Rule,
    pub(super) grid: Grid,
    pub(super) instances: Vec<Planned<'c>>,
}

/// What a cycle evaluates.
#[derive(Default)]
pub(super) struct Plan<'c> {
    pub(super) rules: Vec<RulePlan<'c>>,
}

/// Every distinct query of a plan, once, numbered in plan order (sent as
/// ids `q0`, `q1`, ...), borrowed from the plan; each from the earliest
/// time a rule using it needs.
pub(super) struct Queries<'p> {
    specs: Vec<&'p MetricSpec>,
    start: Vec<Epoch>,
    index: HashMap<SpecKey<'p>, usize>,
}

impl<'p> Queries<'p> {
    pub(super) fn of(plan: &'p Plan<'_>) -> Queries<'p> {
        let mut q = Queries {
            specs: Vec::new(),
            start: Vec::new(),
            index: HashMap::new(),
        };
        for rp in &plan.rules {
            for inst in &rp.instances {
                for spec in inst.specs.values() {
                    let next = q.specs.len();
                    let i = *q.index.entry(spec.key()).or_insert(next);
                    if i == next {
                        q.specs.push(spec);
                        q.start.push(rp.grid.start);
                    }
                    q.start[i] = q.start[i].min(rp.grid.start);
                }
            }
        }
        q
    }

    pub(super) fn len(&self) -> usize {
        self.specs.len()
    }

    /// Queries given directly (tests of the fetch grouping).
    #[cfg(test)]
    pub(super) fn from_parts(specs: Vec<&'p MetricSpec>, start: Vec<Epoch>) -> Queries<'p> {
        let index = specs
            .iter()
            .enumerate()
            .map(|(i, s)| (s.key(), i))
            .collect();
        Queries {
            specs,
            start,
            index,
        }
    }

    /// Query `i`'s spec.
    pub(super) fn spec(&self, i: usize) -> &'p MetricSpec {
        self.specs[i]
    }

    /// The earliest time a rule using query `i` needs.
    pub(super) fn start(&self, i: usize) -> Epoch {
        self.start[i]
    }

    /// The first query of `inst` whose fetch failed (another account or
    /// region, [`super::fetch::Fetched::failed`]): its spec and error.
    pub(super) fn failed<'f>(
        &self,
        inst: &Planned<'_>,
        failed: &'f HashMap<usize, std::sync::Arc<MetricsError>>,
    ) -> Option<(&'p MetricSpec, &'f MetricsError)> {
        if failed.is_empty() {
            return None;
        }
        inst.specs.values().find_map(|spec| {
            let i = *self.index.get(&spec.key())?;
            failed.get(&i).map(|e| (self.specs[i], e.as_ref()))
        })
    }

    /// An instance's inputs aligned on `grid`, by the rule's metric ids, or
    /// `None` when a source said some of its data is partial. `series` is
    /// by query number (`None`: the source returned nothing for it).
    pub(super) fn inputs<'i>(
        &self,
        inst: &'i Planned<'_>,
        series: &[Option<MetricSeries>],
        grid: &Grid,
    ) -> Option<BTreeMap<&'i str, Series>> {
        let mut inputs = BTreeMap::new();
        let mut complete = true;
        for (id, spec) in inst.specs.iter() {
            let s = self
                .index
                .get(&spec.key())
                .and_then(|&i| series.get(i))
                .and_then(Option::as_ref);
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

/// Base labels of a rule's instances: the rule's labels plus `alertname`,
/// and `account` / `region` when its metrics name them
/// ([`Rule::reach_labels`]).
pub fn rule_labels(rule: &Rule) -> Labels {
    let mut l = rule.labels.clone();
    l.extend(rule.reach_labels());
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
    Ok(planned(metrics, rule)
        .await?
        .into_iter()
        .map(|p| Instance {
            labels: p.labels,
            specs: p.specs.into_owned(),
        })
        .collect())
}

/// [`instances`], the rule's metrics borrowed when it has no wildcard.
async fn planned<'c>(
    metrics: &dyn MetricsSource,
    rule: &'c Rule,
) -> Result<Vec<Planned<'c>>, MetricsError> {
    let base = rule_labels(rule);
    let Some(driver) = rule.wildcard_driver() else {
        return Ok(vec![Planned {
            labels: base,
            specs: Cow::Borrowed(&rule.metrics),
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
            Planned {
                labels,
                specs: Cow::Owned(specs),
            }
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
    /// the cycle is marked incomplete so the tick is evaluated again,
    /// unless the listing was of another account or region).
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
            match planned(metrics, rule).await {
                Ok(instances) => plan.rules.push(RulePlan {
                    rule,
                    grid,
                    instances,
                }),
                Err(source) => {
                    report.errors.push(CycleError::Discovery {
                        rule: rule.name.clone(),
                        source,
                    });
                    // Left out of the plan, the rule's alerts are not
                    // resolved as orphans. Another account or region
                    // failing, or a Metrics Insights query CloudWatch
                    // rejects, does not keep the tick from being recorded
                    // (as for `FetchElsewhere`): the other rules' intervals
                    // hold.
                    let elsewhere = rule.wildcard_driver().is_some_and(|d| {
                        d.account.is_some() || d.region.is_some() || d.query.is_some()
                    });
                    if !elsewhere {
                        report.incomplete = true;
                    }
                }
            }
        }
        plan
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
            account: None,
            region: None,
            query: None,
        };
        let labels: Labels = [("Service".to_string(), "api".to_string())].into();
        assert_eq!(
            expand_wildcards(&spec, &labels).dimensions["Service"],
            "api"
        );
    }
}
