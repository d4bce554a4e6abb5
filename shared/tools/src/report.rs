//! The noise report: what alerting cost each team over a period, and which
//! rules to fix first. Pure: it reads history entries (stored by the engine,
//! [`firebell_engine::history::read`], or made by a backtest,
//! [`entries_of`]), the silences of the store and the config, and never
//! re-judges anything.
//!
//! Per team (receiver) and per rule:
//! - **notifications** and **pages**: a page is the first notification of
//!   an incident that pages ([`Notification::wakes_someone`]); updates of an
//!   incident already paged are notifications, not pages;
//! - **out of hours**: pages sent outside the receiver's working hours
//!   ([`firebell_notify::NotifyConfig::working_hours`]: its `working_hours`
//!   time interval, default 09:00-18:00 Monday to Friday in its `time_zone`,
//!   wall clock, so right across daylight-saving changes);
//! - **flaps**: an instance firing again within [`FLAP_WINDOW`] (an hour)
//!   of resolving, from the transitions;
//! - **time to resolve**: median and p90 (nearest rank) of the fire ->
//!   resolve durations of the instances that fired and resolved within the
//!   period;
//! - **toast**: pages whose every firing alert resolved within
//!   [`TOAST_SECS`] (5 minutes) of firing: the page that got through and
//!   needed nobody;
//! - **time firing**: summed over instances, clipped to the period (an
//!   instance firing at the start counts from the start, one still firing
//!   at the end up to the end);
//! - **silences** created in the period, and by whom (a silence counts for a
//!   team when the labels of its `=` matchers route to it).
//!
//! Transition figures (flaps, resolve times, time firing) are the rule's,
//! whichever teams it reached; notification figures are the team's.
//!
//! The noisiest rules are ranked by pages, then notifications, then flaps,
//! each with the change that fits it best ([`Suggestion`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use firebell_core::model::{Labels, Pending, Rule};
use firebell_core::series::Epoch;
use firebell_core::state::Event;
use firebell_core::text::rfc3339;
use firebell_engine::Config;
use firebell_engine::history::{HistoryEntry, Notification};
use firebell_notify::{MatchOp, Silence};
use serde_json::{Value, json};

pub use crate::backtest::FLAP_WINDOW;
use crate::backtest::Simulation;

/// A page whose alerts all resolved this soon after firing is toast.
pub const TOAST_SECS: Epoch = 300;

/// The JSON document's schema name (`docs/schemas/report.schema.json`).
pub const SCHEMA: &str = "firebell.report/v1";

/// How many rules the noisiest list shows.
pub const NOISIEST: usize = 10;

/// What the report reads.
#[derive(Debug, Clone, Copy)]
pub struct ReportInput<'a> {
    pub config: &'a Config,
    /// The period's history, any order.
    pub entries: &'a [HistoryEntry],
    /// The store's silences (those created in the period are counted).
    pub silences: &'a [Silence],
    pub since: Epoch,
    pub until: Epoch,
}

/// What a rule did over the period (for a team: its notifications to it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleNoise {
    pub rule: String,
    pub notifications: usize,
    /// First notifications of paging incidents.
    pub pages: usize,
    pub pages_out_of_hours: usize,
    /// Pages whose alerts all resolved within [`TOAST_SECS`].
    pub toast_pages: usize,
    /// Times an instance started firing.
    pub fires: usize,
    /// Re-fires within [`FLAP_WINDOW`] of the same instance resolving.
    pub flaps: usize,
    /// Fire -> resolve durations within the period, ascending (seconds).
    pub resolve_secs: Vec<Epoch>,
    /// Seconds firing, summed over instances, clipped to the period.
    pub firing_secs: Epoch,
}

impl RuleNoise {
    /// The median time to resolve (nearest rank).
    pub fn median_resolve(&self) -> Option<Epoch> {
        percentile(&self.resolve_secs, 50)
    }

    /// The 90th percentile time to resolve (nearest rank).
    pub fn p90_resolve(&self) -> Option<Epoch> {
        percentile(&self.resolve_secs, 90)
    }

    /// The share of pages that were toast (`None` without pages).
    pub fn toast_share(&self) -> Option<f64> {
        share(self.toast_pages, self.pages)
    }
}

/// Silences created in the period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SilenceStats {
    pub created: usize,
    /// Created, by `created_by`.
    pub by: BTreeMap<String, usize>,
}

impl SilenceStats {
    fn add(&mut self, s: &Silence) {
        self.created += 1;
        *self.by.entry(s.created_by.clone()).or_default() += 1;
    }
}

/// One team's report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TeamNoise {
    pub receiver: String,
    /// The name of its working hours' interval.
    pub working_hours: String,
    pub notifications: usize,
    pub pages: usize,
    pub pages_out_of_hours: usize,
    pub toast_pages: usize,
    /// The rules that notified it, noisiest first.
    pub rules: Vec<RuleNoise>,
    pub silences: SilenceStats,
    /// Pages per UTC day (the day's start -> pages, of which out of hours),
    /// days without a page left out (for the HTML report's chart).
    pub pages_by_day: BTreeMap<Epoch, (usize, usize)>,
}

impl TeamNoise {
    pub fn toast_share(&self) -> Option<f64> {
        share(self.toast_pages, self.pages)
    }
}

/// The change that fits a noisy rule best (the lint's view of its fields
/// and what it did).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suggestion {
    /// A ratio without `min_volume`: one bad request at low traffic pages.
    VolumeGuard,
    /// It flapped with a `for`: any clear datapoint restarts it.
    MofN,
    /// Most of its pages resolved within five minutes.
    RaiseFor,
    /// A per-datapoint threshold that pages often: page on burn rate.
    Slo,
}

impl Suggestion {
    pub fn code(self) -> &'static str {
        match self {
            Suggestion::VolumeGuard => "min-volume",
            Suggestion::MofN => "m-of-n",
            Suggestion::RaiseFor => "raise-for",
            Suggestion::Slo => "slo",
        }
    }
}

/// One line of the noisiest-rules list.
#[derive(Debug, Clone, PartialEq)]
pub struct Noisy {
    pub stats: RuleNoise,
    /// The teams it notified.
    pub receivers: Vec<String>,
    pub suggestion: Option<Suggestion>,
    /// Why, in words.
    pub advice: String,
}

/// The whole report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NoiseReport {
    pub since: Epoch,
    pub until: Epoch,
    pub teams: Vec<TeamNoise>,
    /// Every rule that did something, by name.
    pub rules: Vec<RuleNoise>,
    /// The rules that notified, noisiest first (at most [`NOISIEST`]).
    pub noisiest: Vec<Noisy>,
    pub silences: SilenceStats,
}

/// The nearest-rank percentile `p` (1..=100) of ascending `sorted`.
pub fn percentile(sorted: &[Epoch], p: usize) -> Option<Epoch> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).clamp(1, sorted.len());
    sorted.get(rank - 1).copied()
}

fn share(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The history entries of a backtest: its transitions and notifications,
/// as the engine would have stored them.
pub fn entries_of(sim: &Simulation) -> Vec<HistoryEntry> {
    let mut out: Vec<HistoryEntry> = sim
        .transitions
        .iter()
        .map(|(_, t)| HistoryEntry::Transition(t.clone()))
        .chain(
            sim.notifications
                .iter()
                .map(|n| HistoryEntry::Notification(n.clone())),
        )
        .collect();
    out.sort_by_key(HistoryEntry::at);
    out
}

/// One firing episode of an instance.
struct Episode {
    rule: String,
    labels: Labels,
    fired: Epoch,
    resolved: Option<Epoch>,
}

/// Whether `alert_labels` are those of an instance with `instance` labels.
fn same_instance(instance: &Labels, alert_labels: &Labels) -> bool {
    instance.iter().all(|(k, v)| alert_labels.get(k) == Some(v))
}

/// Builds the report.
pub fn report(input: &ReportInput<'_>) -> NoiseReport {
    let (since, until) = (input.since, input.until);
    let notify = &input.config.notify;
    let mut rules: BTreeMap<String, RuleNoise> = BTreeMap::new();

    // Transitions, in time order: episodes, flaps, resolve times, firing time.
    let mut transitions: Vec<_> = input
        .entries
        .iter()
        .filter_map(|e| match e {
            HistoryEntry::Transition(t) if (since..=until).contains(&t.event.at()) => Some(t),
            _ => None,
        })
        .collect();
    transitions.sort_by_key(|t| t.event.at());
    let mut open: BTreeMap<(String, Labels), Epoch> = BTreeMap::new();
    let mut last_resolved: BTreeMap<(String, Labels), Epoch> = BTreeMap::new();
    let mut episodes: Vec<Episode> = Vec::new();
    for t in transitions {
        let key = (t.rule.clone(), t.labels.clone());
        let r = rule_entry(&mut rules, &t.rule);
        match t.event {
            Event::Fired { at, .. } => {
                r.fires += 1;
                if last_resolved
                    .get(&key)
                    .is_some_and(|res| at - res <= FLAP_WINDOW)
                {
                    r.flaps += 1;
                }
                open.insert(key, at);
            }
            Event::Resolved { at, .. } => {
                match open.remove(&key) {
                    Some(fired) => {
                        r.resolve_secs.push(at - fired);
                        r.firing_secs += at - fired;
                        episodes.push(Episode {
                            rule: t.rule.clone(),
                            labels: t.labels.clone(),
                            fired,
                            resolved: Some(at),
                        });
                    }
                    // Firing since before the period.
                    None => r.firing_secs += (at - since).max(0),
                }
                last_resolved.insert(key, at);
            }
            _ => {}
        }
    }
    for ((rule, labels), fired) in open {
        rule_entry(&mut rules, &rule).firing_secs += (until - fired).max(0);
        episodes.push(Episode {
            rule,
            labels,
            fired,
            resolved: None,
        });
    }
    for r in rules.values_mut() {
        r.resolve_secs.sort_unstable();
    }

    // Notifications, per team and per rule.
    let mut teams: BTreeMap<String, TeamNoise> = notify
        .receivers
        .keys()
        .map(|name| (name.clone(), team(input.config, name)))
        .collect();
    let mut team_rules: BTreeMap<(String, String), RuleNoise> = BTreeMap::new();
    let mut notifications: Vec<&Notification> = input
        .entries
        .iter()
        .filter_map(|e| match e {
            HistoryEntry::Notification(n) if (since..=until).contains(&n.at) => Some(n),
            _ => None,
        })
        .collect();
    notifications.sort_by_key(|n| n.at);
    for n in notifications {
        let t = teams
            .entry(n.receiver.clone())
            .or_insert_with(|| team(input.config, &n.receiver));
        let page = n.wakes_someone();
        let out_of_hours = page && !notify.working_hours(&n.receiver).contains(n.at);
        let toast = page && is_toast(n, &episodes);
        t.notifications += 1;
        t.pages += usize::from(page);
        t.pages_out_of_hours += usize::from(out_of_hours);
        t.toast_pages += usize::from(toast);
        if page {
            let day = t
                .pages_by_day
                .entry(n.at.div_euclid(86_400) * 86_400)
                .or_default();
            day.0 += 1;
            day.1 += usize::from(out_of_hours);
        }
        let mut named: BTreeSet<&str> = n.alerts.iter().map(|a| a.alertname.as_str()).collect();
        if !n.alertname.is_empty() {
            named.insert(&n.alertname);
        }
        for rule in named {
            for r in [
                rule_entry(&mut rules, rule),
                team_rules
                    .entry((n.receiver.clone(), rule.to_string()))
                    .or_insert_with(|| RuleNoise {
                        rule: rule.to_string(),
                        ..RuleNoise::default()
                    }),
            ] {
                r.notifications += 1;
                r.pages += usize::from(page);
                r.pages_out_of_hours += usize::from(out_of_hours);
                r.toast_pages += usize::from(toast);
            }
        }
    }
    for ((receiver, rule), mut r) in team_rules {
        if let Some(all) = rules.get(&rule) {
            r.fires = all.fires;
            r.flaps = all.flaps;
            r.resolve_secs = all.resolve_secs.clone();
            r.firing_secs = all.firing_secs;
        }
        if let Some(t) = teams.get_mut(&receiver) {
            t.rules.push(r);
        }
    }

    // Silences created in the period.
    let mut silences = SilenceStats::default();
    for s in input
        .silences
        .iter()
        .filter(|s| (since..=until).contains(&s.created_at))
    {
        silences.add(s);
        let labels: Labels = s
            .matchers
            .iter()
            .filter(|m| m.op == MatchOp::Eq)
            .map(|m| (m.name.clone(), m.value.clone()))
            .collect();
        let reached: BTreeSet<String> = firebell_notify::route(notify, &labels)
            .into_iter()
            .map(|m| m.receiver)
            .filter(|r| !r.is_empty())
            .collect();
        for r in reached {
            if let Some(t) = teams.get_mut(&r) {
                t.silences.add(s);
            }
        }
    }

    let mut teams: Vec<TeamNoise> = teams.into_values().collect();
    for t in &mut teams {
        t.rules.sort_by(noisier);
    }
    let mut ranked: Vec<&RuleNoise> = rules.values().filter(|r| r.notifications > 0).collect();
    ranked.sort_by(|a, b| noisier(a, b));
    let noisiest = ranked
        .into_iter()
        .take(NOISIEST)
        .map(|r| {
            let rule = input.config.rules.rules.iter().find(|x| x.name == r.rule);
            let (suggestion, advice) = suggest(rule, r);
            Noisy {
                stats: r.clone(),
                receivers: teams
                    .iter()
                    .filter(|t| t.rules.iter().any(|x| x.rule == r.rule))
                    .map(|t| t.receiver.clone())
                    .collect(),
                suggestion,
                advice,
            }
        })
        .collect();
    NoiseReport {
        since,
        until,
        teams,
        rules: rules.into_values().collect(),
        noisiest,
        silences,
    }
}

fn rule_entry<'a>(rules: &'a mut BTreeMap<String, RuleNoise>, name: &str) -> &'a mut RuleNoise {
    rules.entry(name.to_string()).or_insert_with(|| RuleNoise {
        rule: name.to_string(),
        ..RuleNoise::default()
    })
}

fn team(config: &Config, receiver: &str) -> TeamNoise {
    TeamNoise {
        receiver: receiver.to_string(),
        working_hours: config.notify.working_hours(receiver).name,
        ..TeamNoise::default()
    }
}

/// Pages first, then notifications, then flaps, then by name.
fn noisier(a: &RuleNoise, b: &RuleNoise) -> std::cmp::Ordering {
    (b.pages, b.notifications, b.flaps)
        .cmp(&(a.pages, a.notifications, a.flaps))
        .then_with(|| a.rule.cmp(&b.rule))
}

/// Whether every firing alert of the page resolved within [`TOAST_SECS`]
/// of firing (the episode of its instance that was firing when it was sent).
fn is_toast(n: &Notification, episodes: &[Episode]) -> bool {
    let firing: Vec<_> = n
        .alerts
        .iter()
        .filter(|a| a.status == firebell_core::alert::AlertStatus::Firing)
        .collect();
    !firing.is_empty()
        && firing.iter().all(|a| {
            episodes
                .iter()
                .filter(|e| {
                    e.rule == a.alertname && e.fired <= n.at && same_instance(&e.labels, &a.labels)
                })
                .max_by_key(|e| e.fired)
                .and_then(|e| e.resolved.map(|r| r - e.fired))
                .is_some_and(|d| d <= TOAST_SECS)
        })
}

/// The change that fits `rule` given what it did, and why, in words.
pub fn suggest(rule: Option<&Rule>, r: &RuleNoise) -> (Option<Suggestion>, String) {
    let Some(rule) = rule else {
        return (None, "no longer in the config".to_string());
    };
    let divisors = rule.expression.divisors();
    let per_period = rule.expression.history() == 0;
    if rule.min_volume.is_none() && !divisors.is_empty() {
        let ids: Vec<String> = divisors.iter().map(|d| format!("`{d}`")).collect();
        return (
            Some(Suggestion::VolumeGuard),
            format!(
                "add a volume guard (`min_volume`): it divides by {} with none, so one bad request at low traffic fires it",
                ids.join(", ")
            ),
        );
    }
    if r.flaps > 0 && per_period && matches!(rule.pending, Pending::For(_)) {
        return (
            Some(Suggestion::MofN),
            format!(
                "use M-of-N (`datapoints`, with `keep_firing_for`): it flapped {} time{} with `for`, which any clear datapoint restarts",
                r.flaps,
                plural(r.flaps)
            ),
        );
    }
    if r.pages > 0 && r.toast_pages * 2 >= r.pages {
        return (
            Some(Suggestion::RaiseFor),
            format!(
                "raise `for`: {} of {} pages resolved within 5 minutes",
                r.toast_pages, r.pages
            ),
        );
    }
    if per_period && r.pages > 0 {
        return (
            Some(Suggestion::Slo),
            format!(
                "move to an SLO: a threshold on single datapoints that paged {} time{}; page on error-budget burn instead",
                r.pages,
                plural(r.pages)
            ),
        );
    }
    (None, "no change suggested".to_string())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `1h 5m`, `4m 30s`, `45s`.
pub fn duration(secs: Epoch) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m, s) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{:.0}%", v * 100.0))
}

fn opt_duration(v: Option<Epoch>) -> String {
    v.map_or_else(|| "-".to_string(), duration)
}

fn silences_line(s: &SilenceStats) -> String {
    if s.created == 0 {
        return "none".to_string();
    }
    let by: Vec<String> = s.by.iter().map(|(who, n)| format!("{who} {n}")).collect();
    format!("{} ({})", s.created, by.join(", "))
}

impl NoiseReport {
    /// The report of one team: its section, the noisiest rules that reached
    /// it, its silences.
    pub fn only(&self, receiver: &str) -> NoiseReport {
        let teams: Vec<TeamNoise> = self
            .teams
            .iter()
            .filter(|t| t.receiver == receiver)
            .cloned()
            .collect();
        let silences = teams
            .first()
            .map(|t| t.silences.clone())
            .unwrap_or_default();
        NoiseReport {
            since: self.since,
            until: self.until,
            rules: teams.first().map(|t| t.rules.clone()).unwrap_or_default(),
            noisiest: self
                .noisiest
                .iter()
                .filter(|n| n.receivers.iter().any(|r| r == receiver))
                .cloned()
                .collect(),
            teams,
            silences,
        }
    }

    /// The report for people.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Noise report {} .. {}",
            rfc3339(self.since),
            rfc3339(self.until)
        );
        for t in &self.teams {
            let _ = writeln!(
                out,
                "\nTeam {} (working hours: {})",
                t.receiver, t.working_hours
            );
            let _ = writeln!(
                out,
                "  {} notification{}, {} page{}, {} out of hours, {} toast ({})",
                t.notifications,
                plural(t.notifications),
                t.pages,
                plural(t.pages),
                t.pages_out_of_hours,
                t.toast_pages,
                percent(t.toast_share())
            );
            let _ = writeln!(out, "  silences created: {}", silences_line(&t.silences));
            if t.rules.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "  {:<28} {:>6} {:>5} {:>4} {:>5} {:>5} {:>8} {:>8} {:>6} {:>8}",
                "rule",
                "notifs",
                "pages",
                "ooh",
                "toast",
                "flaps",
                "median",
                "p90",
                "fires",
                "firing"
            );
            for r in &t.rules {
                let _ = writeln!(
                    out,
                    "  {:<28} {:>6} {:>5} {:>4} {:>5} {:>5} {:>8} {:>8} {:>6} {:>8}",
                    r.rule,
                    r.notifications,
                    r.pages,
                    r.pages_out_of_hours,
                    r.toast_pages,
                    r.flaps,
                    opt_duration(r.median_resolve()),
                    opt_duration(r.p90_resolve()),
                    r.fires,
                    duration(r.firing_secs)
                );
            }
        }
        let _ = writeln!(out, "\nNoisiest rules");
        if self.noisiest.is_empty() {
            let _ = writeln!(out, "  none: no rule notified anyone");
        }
        for (i, n) in self.noisiest.iter().enumerate() {
            let s = &n.stats;
            let _ = writeln!(
                out,
                "  {}. {} ({}): {} page{}, {} notification{}, {} flap{}",
                i + 1,
                s.rule,
                n.receivers.join(", "),
                s.pages,
                plural(s.pages),
                s.notifications,
                plural(s.notifications),
                s.flaps,
                plural(s.flaps),
            );
            let _ = writeln!(out, "     -> {}", n.advice);
        }
        let _ = writeln!(out, "\nSilences created: {}", silences_line(&self.silences));
        out
    }

    /// The `firebell.report/v1` document.
    pub fn to_json(&self) -> Value {
        json!({
            "schema": SCHEMA,
            "since": rfc3339(self.since),
            "until": rfc3339(self.until),
            "teams": self.teams.iter().map(|t| json!({
                "receiver": t.receiver,
                "working_hours": t.working_hours,
                "notifications": t.notifications,
                "pages": t.pages,
                "pages_out_of_hours": t.pages_out_of_hours,
                "toast_pages": t.toast_pages,
                "toast_share": t.toast_share(),
                "silences": silences_json(&t.silences),
                "rules": t.rules.iter().map(rule_json).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "rules": self.rules.iter().map(rule_json).collect::<Vec<_>>(),
            "noisiest": self.noisiest.iter().enumerate().map(|(i, n)| json!({
                "rank": i + 1,
                "rule": n.stats.rule,
                "receivers": n.receivers,
                "pages": n.stats.pages,
                "notifications": n.stats.notifications,
                "flaps": n.stats.flaps,
                "toast_share": n.stats.toast_share(),
                "suggestion": n.suggestion.map(Suggestion::code),
                "advice": n.advice,
            })).collect::<Vec<_>>(),
            "silences": silences_json(&self.silences),
        })
    }
}

fn silences_json(s: &SilenceStats) -> Value {
    json!({"created": s.created, "by": s.by})
}

fn rule_json(r: &RuleNoise) -> Value {
    json!({
        "rule": r.rule,
        "notifications": r.notifications,
        "pages": r.pages,
        "pages_out_of_hours": r.pages_out_of_hours,
        "toast_pages": r.toast_pages,
        "toast_share": r.toast_share(),
        "fires": r.fires,
        "flaps": r.flaps,
        "resolved": r.resolve_secs.len(),
        "median_resolve_secs": r.median_resolve(),
        "p90_resolve_secs": r.p90_resolve(),
        "firing_secs": r.firing_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use firebell_core::alert::AlertStatus;
    use firebell_core::diag::Diagnostics;
    use firebell_engine::Transition;
    use firebell_engine::history::{CycleRecord, NotifiedAlert};
    use firebell_notify::Matcher;

    /// Monday 2026-10-19 00:00 UTC. Berlin leaves summer time on Sunday
    /// 2026-10-25 (UTC+2 before, UTC+1 after).
    const SINCE: Epoch = 1_792_368_000;
    const UNTIL: Epoch = SINCE + 14 * 86_400;

    fn at(day: Epoch, h: Epoch, m: Epoch) -> Epoch {
        SINCE + day * 86_400 + h * 3600 + m * 60
    }

    const CONFIG: &str = r#"
receivers:
  ops: {topics: [arn:aws:sns:us-east-1:123456789012:ops]}
  payments: {topics: [arn:aws:sns:us-east-1:123456789012:payments], time_zone: Europe/Berlin}
  search: {topics: [arn:aws:sns:us-east-1:123456789012:search]}
route:
  receiver: ops
  routes:
    - matchers: ['team="payments"']
      receiver: payments
    - matchers: ['team="search"']
      receiver: search
rules:
  - name: CheckoutErrors
    metrics:
      errors: {namespace: Shop, metric: Errors, stat: Sum}
      requests: {namespace: Shop, metric: Requests, stat: Sum}
    expression: errors / requests
    condition: {op: ">", threshold: 0.05}
    for: 2m
    labels: {team: payments, severity: page}
  - name: Latency
    metrics:
      p99: {namespace: Shop, metric: Latency, stat: p99}
    expression: p99
    condition: {op: ">", threshold: 2}
    for: 5m
    labels: {team: payments, severity: page}
  - name: DiskFull
    metrics:
      disk: {namespace: CWAgent, metric: disk_used_percent, stat: Maximum}
    expression: disk
    condition: {op: ">", threshold: 95}
    datapoints: {breaching: 2, out_of: 3}
    labels: {team: search, severity: page}
  - name: Slow
    metrics:
      p99: {namespace: Search, metric: Latency, stat: p99}
    expression: p99
    condition: {op: ">", threshold: 1}
    datapoints: {breaching: 3, out_of: 5}
    labels: {team: search, severity: page}
"#;

    fn config() -> Config {
        let mut diags = Diagnostics::new();
        let c = firebell_engine::load_texts(
            &[("c.yaml".to_string(), CONFIG.to_string())],
            &mut diags,
            Vec::new(),
        );
        assert!(!diags.has_errors(), "{diags}");
        c
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn fired(rule: &str, host: &str, at: Epoch) -> HistoryEntry {
        transition(rule, host, Event::Fired { at, value: None })
    }

    fn resolved(rule: &str, host: &str, at: Epoch) -> HistoryEntry {
        transition(rule, host, Event::Resolved { at, value: None })
    }

    fn transition(rule: &str, host: &str, event: Event) -> HistoryEntry {
        let labels = if host.is_empty() {
            Labels::new()
        } else {
            labels(&[("host", host)])
        };
        HistoryEntry::Transition(Transition {
            rule: rule.to_string(),
            labels,
            event,
        })
    }

    /// A notification of `rule` to `receiver` listing one alert per host.
    fn sent(
        at: Epoch,
        receiver: &str,
        rule: &str,
        severity: &str,
        status: AlertStatus,
        update: bool,
        hosts: &[&str],
    ) -> HistoryEntry {
        let alerts = hosts
            .iter()
            .map(|h| {
                let mut l = labels(&[("alertname", rule), ("severity", severity)]);
                if !h.is_empty() {
                    l.insert("host".into(), h.to_string());
                }
                NotifiedAlert {
                    alertname: rule.to_string(),
                    status,
                    labels: l,
                    value: None,
                }
            })
            .collect();
        HistoryEntry::Notification(Notification {
            at,
            receiver: receiver.to_string(),
            destinations: vec![receiver.to_string()],
            group_key: format!("{receiver}/{rule}"),
            status,
            alertname: rule.to_string(),
            severity: Some(severity.to_string()),
            subject: rule.to_string(),
            group_labels: labels(&[("alertname", rule)]),
            alerts,
            update,
            more_alerts: 0,
        })
    }

    fn silence(by: &str, created_at: Epoch, matchers: &str) -> Silence {
        Silence {
            id: format!("{by}-{created_at}"),
            matchers: Matcher::parse_list(matchers).unwrap(),
            starts_at: created_at,
            ends_at: created_at + 3600,
            created_by: by.to_string(),
            comment: String::new(),
            created_at,
            updated_at: created_at,
        }
    }

    fn history() -> Vec<HistoryEntry> {
        use AlertStatus::{Firing, Resolved};
        vec![
            // CheckoutErrors: a toast page in office hours (Mon 09:30 in
            // Berlin, summer time), then an hour-long one out of hours
            // (Mon 08:30 in Berlin, winter time: the same 07:30 UTC).
            fired("CheckoutErrors", "", at(0, 7, 28)),
            sent(
                at(0, 7, 30),
                "payments",
                "CheckoutErrors",
                "page",
                Firing,
                false,
                &[""],
            ),
            resolved("CheckoutErrors", "", at(0, 7, 31)),
            fired("CheckoutErrors", "", at(7, 7, 28)),
            sent(
                at(7, 7, 30),
                "payments",
                "CheckoutErrors",
                "page",
                Firing,
                false,
                &[""],
            ),
            sent(
                at(7, 7, 45),
                "payments",
                "CheckoutErrors",
                "page",
                Firing,
                true,
                &[""],
            ),
            resolved("CheckoutErrors", "", at(7, 8, 28)),
            sent(
                at(7, 8, 29),
                "payments",
                "CheckoutErrors",
                "page",
                Resolved,
                false,
                &[""],
            ),
            // Latency: firing since before the period; then fires, flaps
            // back 30 minutes after resolving, and fires again 90 minutes
            // after (no flap), for exactly five minutes (toast).
            resolved("Latency", "", at(0, 0, 10)),
            fired("Latency", "", at(1, 12, 0)),
            sent(
                at(1, 12, 1),
                "payments",
                "Latency",
                "page",
                Firing,
                false,
                &[""],
            ),
            resolved("Latency", "", at(1, 12, 10)),
            fired("Latency", "", at(1, 12, 40)),
            sent(
                at(1, 12, 41),
                "payments",
                "Latency",
                "page",
                Firing,
                false,
                &[""],
            ),
            resolved("Latency", "", at(1, 13, 0)),
            fired("Latency", "", at(1, 14, 30)),
            sent(
                at(1, 14, 31),
                "payments",
                "Latency",
                "page",
                Firing,
                false,
                &[""],
            ),
            resolved("Latency", "", at(1, 14, 35)),
            // DiskFull: two toast pages, one on a Saturday night.
            fired("DiskFull", "a", at(5, 3, 0)),
            fired("DiskFull", "b", at(5, 3, 0)),
            sent(
                at(5, 3, 1),
                "search",
                "DiskFull",
                "page",
                Firing,
                false,
                &["a"],
            ),
            resolved("DiskFull", "a", at(5, 3, 4)),
            resolved("DiskFull", "b", at(5, 3, 20)),
            fired("DiskFull", "b", at(8, 9, 59)),
            sent(
                at(8, 10, 0),
                "search",
                "DiskFull",
                "page",
                Firing,
                false,
                &["b"],
            ),
            resolved("DiskFull", "b", at(8, 10, 2)),
            // Slow: pages at 02:01 on a Wednesday and fires to the end.
            fired("Slow", "", at(9, 2, 0)),
            sent(at(9, 2, 1), "search", "Slow", "page", Firing, false, &[""]),
            // A ticket from a rule no longer in the config.
            sent(
                at(9, 11, 0),
                "search",
                "QueueDepth",
                "ticket",
                Firing,
                false,
                &[""],
            ),
            // Outside the period, and a cycle record: not counted.
            sent(UNTIL + 60, "search", "Slow", "page", Firing, false, &[""]),
            HistoryEntry::Cycle(CycleRecord {
                tick: at(0, 7, 30),
                duration_ms: 12,
                rules_evaluated: 4,
                instances_evaluated: 4,
                transitions: 1,
                notifications: 1,
                errors: Vec::new(),
                ..CycleRecord::default()
            }),
        ]
    }

    fn build() -> NoiseReport {
        let config = config();
        let entries = history();
        let silences = vec![
            silence("alice", at(1, 12, 5), r#"team="payments""#),
            silence("bob", at(5, 3, 2), r#"alertname="DiskFull", team="search""#),
            silence("alice", SINCE - 86_400, r#"team="payments""#),
        ];
        report(&ReportInput {
            config: &config,
            entries: &entries,
            silences: &silences,
            since: SINCE,
            until: UNTIL,
        })
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(percentile(&[180, 3600], 50), Some(180));
        assert_eq!(percentile(&[180, 3600], 90), Some(3600));
        let ten: Vec<Epoch> = (1..=10).collect();
        assert_eq!(percentile(&ten, 50), Some(5));
        assert_eq!(percentile(&ten, 90), Some(9));
        assert_eq!(percentile(&ten, 100), Some(10));
    }

    #[test]
    fn rule_figures() {
        let r = build();
        let rule = |name: &str| r.rules.iter().find(|x| x.rule == name).unwrap().clone();
        assert_eq!(
            rule("CheckoutErrors"),
            RuleNoise {
                rule: "CheckoutErrors".into(),
                notifications: 4,
                pages: 2,
                pages_out_of_hours: 1,
                toast_pages: 1,
                fires: 2,
                flaps: 0,
                resolve_secs: vec![180, 3600],
                firing_secs: 3780,
            }
        );
        let latency = rule("Latency");
        assert_eq!(
            latency,
            RuleNoise {
                rule: "Latency".into(),
                notifications: 3,
                pages: 3,
                pages_out_of_hours: 0,
                toast_pages: 1,
                fires: 3,
                flaps: 1,
                resolve_secs: vec![300, 600, 1200],
                firing_secs: 600 + 600 + 1200 + 300,
            }
        );
        assert_eq!(latency.median_resolve(), Some(600));
        assert_eq!(latency.p90_resolve(), Some(1200));
        let disk = rule("DiskFull");
        assert_eq!(
            (disk.pages, disk.pages_out_of_hours, disk.toast_pages),
            (2, 1, 2)
        );
        assert_eq!(disk.resolve_secs, vec![120 + 60, 240, 1200]);
        assert_eq!(disk.toast_share(), Some(1.0));
        let slow = rule("Slow");
        assert_eq!(
            (slow.pages, slow.pages_out_of_hours, slow.toast_pages),
            (1, 1, 0)
        );
        assert_eq!(slow.firing_secs, UNTIL - at(9, 2, 0));
        assert_eq!(slow.median_resolve(), None);
    }

    #[test]
    fn team_figures_and_silences() {
        let r = build();
        let names: Vec<&str> = r.teams.iter().map(|t| t.receiver.as_str()).collect();
        assert_eq!(names, ["ops", "payments", "search"]);
        let p = &r.teams[1];
        assert_eq!(
            (
                p.notifications,
                p.pages,
                p.pages_out_of_hours,
                p.toast_pages
            ),
            (7, 5, 1, 2)
        );
        assert_eq!(p.working_hours, "09:00-18:00 Monday-Friday Europe/Berlin");
        let rules: Vec<&str> = p.rules.iter().map(|x| x.rule.as_str()).collect();
        assert_eq!(rules, ["Latency", "CheckoutErrors"]);
        let s = &r.teams[2];
        assert_eq!(
            (
                s.notifications,
                s.pages,
                s.pages_out_of_hours,
                s.toast_pages
            ),
            (4, 3, 2, 2)
        );
        assert_eq!(r.silences.created, 2);
        assert_eq!(
            r.silences.by,
            BTreeMap::from([("alice".to_string(), 1), ("bob".to_string(), 1)])
        );
        assert_eq!(p.silences.by, BTreeMap::from([("alice".to_string(), 1)]));
        assert_eq!(s.silences.by, BTreeMap::from([("bob".to_string(), 1)]));
        assert_eq!(r.teams[0].silences.created, 0);
    }

    #[test]
    fn noisiest_rules_with_the_fitting_suggestion() {
        let r = build();
        let got: Vec<(&str, Option<&str>)> = r
            .noisiest
            .iter()
            .map(|n| (n.stats.rule.as_str(), n.suggestion.map(Suggestion::code)))
            .collect();
        assert_eq!(
            got,
            [
                ("Latency", Some("m-of-n")),
                ("CheckoutErrors", Some("min-volume")),
                ("DiskFull", Some("raise-for")),
                ("Slow", Some("slo")),
                ("QueueDepth", None),
            ]
        );
    }

    #[test]
    fn text_of_one_team() {
        let r = build().only("payments");
        assert_eq!(
            r.to_text(),
            "Noise report 2026-10-19T00:00:00Z .. 2026-11-02T00:00:00Z

Team payments (working hours: 09:00-18:00 Monday-Friday Europe/Berlin)
  7 notifications, 5 pages, 1 out of hours, 2 toast (40%)
  silences created: 1 (alice 1)
  rule                         notifs pages  ooh toast flaps   median      p90  fires   firing
  Latency                           3     3    0     1     1      10m      20m      3      45m
  CheckoutErrors                    4     2    1     1     0       3m       1h      2    1h 3m

Noisiest rules
  1. Latency (payments): 3 pages, 3 notifications, 1 flap
     -> use M-of-N (`datapoints`, with `keep_firing_for`): it flapped 1 time with `for`, which any clear datapoint restarts
  2. CheckoutErrors (payments): 2 pages, 4 notifications, 0 flaps
     -> add a volume guard (`min_volume`): it divides by `requests` with none, so one bad request at low traffic fires it

Silences created: 1 (alice 1)
"
        );
        let json = r.to_json();
        assert_eq!(json["schema"], "firebell.report/v1");
        assert_eq!(json["teams"][0]["toast_share"], 0.4);
        assert_eq!(json["noisiest"][1]["suggestion"], "min-volume");
        assert_eq!(json["rules"][0]["median_resolve_secs"], 600);
    }
}
