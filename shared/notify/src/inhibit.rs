//! Inhibition: a firing alert matching a rule's `source_matchers` mutes the
//! firing alerts matching its `target_matchers` whose `equal` labels have
//! the same values (an absent label equals an absent label). An alert never
//! inhibits itself, and, as in Alertmanager, an alert matching both sides of
//! a rule is only inhibited by sources that do not also match the target side
//! (so two "both sides" alerts cannot mute each other).
//!
//! Only firing alerts are inhibited: a resolved alert's notice is not muted.

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
    let mut out = BTreeSet::new();
    for rule in rules {
        let sources: Vec<&Alert> = alerts
            .iter()
            .filter(|a| {
                a.status == AlertStatus::Firing && matches_all(&rule.source_matchers, &a.labels)
            })
            .collect();
        if sources.is_empty() {
            continue;
        }
        for t in alerts {
            if t.status != AlertStatus::Firing
                || out.contains(&t.fingerprint)
                || !matches_all(&rule.target_matchers, &t.labels)
            {
                continue;
            }
            let two_sided = matches_all(&rule.source_matchers, &t.labels);
            let hit = sources.iter().any(|s| {
                s.fingerprint != t.fingerprint
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
