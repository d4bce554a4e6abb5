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

use std::collections::{BTreeMap, BTreeSet};

use firebell_core::alert::{Alert, AlertStatus};
use firebell_core::model::Labels;

use crate::matcher::matches_all;
use crate::types::InhibitRule;

fn equal_on(names: &[String], a: &Labels, b: &Labels) -> bool {
    names.iter().all(|n| a.get(n) == b.get(n))
}

/// The fingerprints of the alerts of `alerts` that are inhibited.
pub fn inhibited(rules: &[InhibitRule], alerts: &[Alert]) -> BTreeSet<String> {
    inhibited_where(rules, alerts, alerts, is_firing, |s, _| is_firing(s))
        .into_keys()
        .collect()
}

/// Of `targets`, those the firing alerts of `alerts` inhibit (whatever the
/// targets' own status: a tool asks for a pending alert too), each with the
/// fingerprint of one alert inhibiting it (the first, by rule order, then
/// `alerts` order). [`inhibited`] is this with the firing alerts of `alerts`
/// as targets; the same rules decide both.
pub fn inhibitors(
    rules: &[InhibitRule],
    alerts: &[Alert],
    targets: &[Alert],
) -> BTreeMap<String, String> {
    inhibited_where(rules, alerts, targets, |_| true, |s, _| is_firing(s))
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
    let still = inhibited_where(rules, alerts, alerts, resolved, |s, _| is_firing(s));
    let by_resolved = inhibited_where(rules, alerts, alerts, resolved, |s, t| {
        is_firing(s) || s.resolved_at.is_some_and(|r| r >= t.fired_at)
    });
    by_resolved
        .into_keys()
        .filter(|fp| !still.contains_key(fp))
        .collect()
}

/// The fingerprints of the alerts of `targets` for which `is_target` holds
/// that an alert of `alerts` that `may_inhibit` (given the source and the
/// target) inhibits, by the rules, each with its (first) inhibitor's.
fn inhibited_where(
    rules: &[InhibitRule],
    alerts: &[Alert],
    targets: &[Alert],
    is_target: impl Fn(&Alert) -> bool,
    may_inhibit: impl Fn(&Alert, &Alert) -> bool,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for rule in rules {
        let sources: Vec<&Alert> = alerts
            .iter()
            .filter(|a| matches_all(&rule.source_matchers, &a.labels))
            .collect();
        if sources.is_empty() {
            continue;
        }
        for t in targets {
            if !is_target(t)
                || out.contains_key(&t.fingerprint)
                || !matches_all(&rule.target_matchers, &t.labels)
            {
                continue;
            }
            let two_sided = matches_all(&rule.source_matchers, &t.labels);
            let hit = sources.iter().find(|s| {
                s.fingerprint != t.fingerprint
                    && may_inhibit(s, t)
                    && equal_on(&rule.equal, &s.labels, &t.labels)
                    && !(two_sided && matches_all(&rule.target_matchers, &s.labels))
            });
            if let Some(s) = hit {
                out.insert(t.fingerprint.clone(), s.fingerprint.clone());
            }
        }
    }
    out
}
