//! Inhibition: a firing alert matching a rule's `source_matchers` mutes the
//! firing alerts matching its `target_matchers` whose `equal` labels have
//! the same values (an absent label equals an absent label). An alert never
//! inhibits itself, and, as in Alertmanager, an alert matching both sides of
//! a rule is only inhibited by sources that do not also match the target side
//! (so two "both sides" alerts cannot mute each other).
//!
//! Only firing alerts are inhibited: a resolved alert's notice is not muted.
//! An alert inhibited until it resolved is never told, except when its
//! inhibitors resolved with it (`resolved_with_inhibitors`): then, as in
//! Alertmanager, its group's resolved notification lists it (see
//! `dispatch`, and `docs/routing.md`).

use std::collections::BTreeSet;

use firebell_core::alert::{Alert, AlertStatus};
use firebell_core::model::Labels;

use crate::matcher::matches_all;
use crate::types::InhibitRule;

fn equal_on(names: &[String], a: &Labels, b: &Labels) -> bool {
    names.iter().all(|n| a.get(n) == b.get(n))
}

/// The fingerprints of the alerts of `alerts` that are inhibited.
pub fn inhibited(rules: &[InhibitRule], alerts: &[Alert]) -> BTreeSet<String> {
    inhibited_where(rules, alerts, is_firing, |s, _| is_firing(s))
}

fn is_firing(a: &Alert) -> bool {
    a.status == AlertStatus::Firing
}

/// The resolved alerts of `alerts` that were inhibited until they resolved
/// and whose inhibitors resolved with them: no firing alert would inhibit
/// them, an alert that resolved (after they fired) would. Alertmanager
/// lists them in the resolved notification of their inhibitors.
pub(crate) fn resolved_with_inhibitors(
    rules: &[InhibitRule],
    alerts: &[Alert],
) -> BTreeSet<String> {
    let resolved = |a: &Alert| a.status == AlertStatus::Resolved;
    let still = inhibited_where(rules, alerts, resolved, |s, _| is_firing(s));
    let by_resolved = inhibited_where(rules, alerts, resolved, |s, t| {
        is_firing(s) || s.resolved_at.is_some_and(|r| r >= t.fired_at)
    });
    by_resolved.difference(&still).cloned().collect()
}

/// The fingerprints of the alerts for which `is_target` holds that an alert
/// `may_inhibit` (given the source and the target) inhibits, by the rules.
fn inhibited_where(
    rules: &[InhibitRule],
    alerts: &[Alert],
    is_target: impl Fn(&Alert) -> bool,
    may_inhibit: impl Fn(&Alert, &Alert) -> bool,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for rule in rules {
        let sources: Vec<&Alert> = alerts
            .iter()
            .filter(|a| matches_all(&rule.source_matchers, &a.labels))
            .collect();
        if sources.is_empty() {
            continue;
        }
        for t in alerts {
            if !is_target(t)
                || out.contains(&t.fingerprint)
                || !matches_all(&rule.target_matchers, &t.labels)
            {
                continue;
            }
            let two_sided = matches_all(&rule.source_matchers, &t.labels);
            let hit = sources.iter().any(|s| {
                s.fingerprint != t.fingerprint
                    && may_inhibit(s, t)
                    && equal_on(&rule.equal, &s.labels, &t.labels)
                    && !(two_sided && matches_all(&rule.target_matchers, &s.labels))
            });
            if hit {
                out.insert(t.fingerprint.clone());
            }
        }
    }
    out
}
