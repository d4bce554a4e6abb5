//! What changes between the deployed config and a new one (`firebell diff`,
//! `firebell push`), like `terraform plan`: rules, receivers, the routing
//! tree, inhibit rules, time intervals, the silence policy and the
//! `self_monitoring` / `history` settings, each added, removed or changed.
//! Pure: it compares two loaded [`Config`]s and reads nothing else.
//!
//! **How "changed" is decided.** Field by field, with each field's own
//! `PartialEq` (every field type has one; no derive was added to the
//! model), over an *exhaustive* destructuring of each config struct (no
//! `..`): a field added to [`Rule`], [`Receiver`], [`Route`], ... later
//! fails to compile here until someone decides whether it changes
//! behaviour. Comparing `format!("{:?}")` would have needed no upkeep, but
//! it would count what does not change behaviour (positions, a compiled
//! regex, a time zone's internals) and name no YAML field. What is left out:
//!
//! - **positions** (`origin` of rules, routes, inhibit rules): a rule that
//!   only moved to another file or line is not changed;
//! - a rule's parsed `expression`: its source text (`expression`) is
//!   compared instead, as written, since alert records and messages show it
//!   (an edit of its spacing is a change);
//! - `routing_tests`: checked by `validate`, they change no behaviour;
//! - the config `files`: listed (relative to each config's directory, the
//!   deepest one holding all its files) as added / removed, for the reader,
//!   but they never make a diff non-empty ([`ConfigDiff::is_empty`]).
//!
//! Order does not matter where firebell does not read it in order: route
//! matchers, `group_by` labels and `mute_time_intervals` /
//! `active_time_intervals` are compared as sets,
//! inhibit rules as a multiset (matched by content, so they are only ever
//! added or removed). Topics are compared as lists (their publishing order).
//!
//! **What is compared by what.** Rules, receivers and time intervals by
//! name. Routes by path (`root`, `root/0`, `root/0/1`: child indices, as
//! `firebell routes` prints them) with their *effective* settings (the tree
//! holds inherited values): a route inserted before its siblings shows them
//! as changed, and a `group_wait` changed on the root shows on every route
//! inheriting it. Both are real changes: a group's key includes its route
//! path, so a route that moved starts new groups.
//!
//! Changed fields are named as written in YAML: `interval`,
//! `metrics.<id>`, `expression`, `op`, `threshold`, `recovery`, `for`,
//! `datapoints`, `keep_firing_for`, `evaluation_delay`, `arrival_grace`,
//! `missing_data`, `min_volume`, `unit`, `labels.<name>`,
//! `annotations.<name>`, `context.<name>` (an SLO's budget values) for
//! rules; `topics`, `time_zone`, `working_hours`, `send_resolved`,
//! `message.<option>` for receivers; `receiver`, `matchers`, `group_by`,
//! `group_wait`, `group_interval`, `repeat_interval`, `continue`,
//! `mute_time_intervals`, `active_time_intervals` for routes; `specs` (their
//! number) or `times`, `weekdays`, `days_of_month`, `months`, `years`,
//! `location` for time intervals. Silence policy and settings changes carry
//! their old and new values (`history.retention: 90d -> 30d`).
//!
//! **Text** ([`ConfigDiff::to_text`]): nothing differs at all:
//! `no changes (config 676f1be839f5)`. Otherwise a header
//! `config <old> -> <new>` (`config <version>` when the versions are equal),
//! then each non-empty section in a fixed order (files, rules, receivers,
//! routes, inhibit_rules, time_intervals, silences, settings): a count line,
//! then `+ added`, `- removed`, `~ changed: fields`, each list in a stable
//! order (names sorted; routes in tree order). When only the files or the
//! version differ, the last line is `no changes in behaviour`.
//!
//! ```text
//! config 676f1be839f5 -> 1c2d3e4f5a6b
//! rules: 1 added, 1 removed, 1 changed
//!   + CheckoutLatencyHigh
//!   - OldRule
//!   ~ PaymentsErrorRate: threshold, for
//! receivers: 1 changed
//!   ~ payments: topics
//! routes: 1 changed
//!   ~ root/0 {team="payments"} -> payments: group_wait
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use firebell_core::decode::format_duration;
use firebell_core::model::{Condition, ContextValue, Labels, Pending, Rule};
use firebell_core::series::Epoch;
use firebell_engine::history::HistorySettings;
use firebell_engine::sentinel::SentinelSettings;
use firebell_engine::{Config, SelfMonitoring};
use firebell_notify::{
    GroupBy, InhibitRule, Matcher, MessageOptions, NotifyConfig, Receiver, Route, SilencePolicy,
    TimeInterval, TimeSpec, Timing,
};

/// What changes between two configs. See the module docs for what counts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConfigDiff {
    /// The deployed config's version ([`Config::version`]).
    pub old_version: String,
    /// The new config's version.
    pub new_version: String,
    /// Config files added / removed, relative to each config's directory.
    /// Informational: never part of [`ConfigDiff::is_empty`].
    pub files: Changes,
    /// By rule name (SLO burn-rate rules included).
    pub rules: Changes,
    /// By receiver name.
    pub receivers: Changes,
    /// By route path, each shown as `<path> <matchers> -> <receiver>`.
    pub routes: Changes,
    /// By content, each shown as `<source> inhibits <target> equal [...]`;
    /// never `changed`.
    pub inhibit_rules: Changes,
    /// By interval name.
    pub time_intervals: Changes,
    /// The `silences:` policy: `max_duration`, `resolved_pass_through`.
    pub silences: Vec<SettingChange>,
    /// `self_monitoring.*` and `history.*`.
    pub settings: Vec<SettingChange>,
}

/// Items of one kind added, removed or changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<Changed>,
}

/// An item in both configs that differs, and the fields that do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub name: String,
    pub fields: Vec<String>,
}

/// A setting whose value changed, both values as written in YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingChange {
    pub name: String,
    pub old: String,
    pub new: String,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// `1 added, 2 changed`: the counts that are not zero.
    fn counts(&self) -> String {
        let parts: Vec<String> = [
            (self.added.len(), "added"),
            (self.removed.len(), "removed"),
            (self.changed.len(), "changed"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        parts.join(", ")
    }

    fn to_json(&self) -> Value {
        json!({
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed.iter().map(|c| json!({
                "name": c.name,
                "fields": c.fields,
            })).collect::<Vec<_>>(),
        })
    }
}

/// What changes from `old` (deployed) to `new`.
pub fn diff(old: &Config, new: &Config) -> ConfigDiff {
    // Exhaustive: a new section must be placed here.
    let Config {
        rules,
        notify,
        self_monitoring,
        history,
        sentinels,
        accounts,
        // The SLOs' rules are compared as rules.
        slos: _,
        files,
        version,
    } = old;
    let NotifyConfig {
        receivers,
        route,
        inhibit_rules,
        time_intervals,
        silence_policy,
        routing_tests: _,
        topic_refs: _,
    } = notify;
    let mut settings = self_monitoring_changes(self_monitoring, &new.self_monitoring);
    settings.extend(history_changes(history, &new.history));
    settings.extend(sentinel_changes(sentinels, &new.sentinels));
    settings.extend(account_changes(accounts, &new.accounts));
    ConfigDiff {
        old_version: version.clone(),
        new_version: new.version.clone(),
        files: file_changes(files, &new.files),
        rules: by_name(
            rules.rules.iter().map(|r| (r.name.as_str(), r)),
            new.rules.rules.iter().map(|r| (r.name.as_str(), r)),
            rule_fields,
        ),
        receivers: by_name(
            receivers.iter().map(|(k, v)| (k.as_str(), v)),
            new.notify.receivers.iter().map(|(k, v)| (k.as_str(), v)),
            receiver_fields,
        ),
        routes: route_changes(route, &new.notify.route),
        inhibit_rules: inhibit_changes(inhibit_rules, &new.notify.inhibit_rules),
        time_intervals: by_name(
            time_intervals.iter().map(|(k, v)| (k.as_str(), v)),
            new.notify
                .time_intervals
                .iter()
                .map(|(k, v)| (k.as_str(), v)),
            interval_fields,
        ),
        silences: silence_changes(silence_policy, &new.notify.silence_policy),
        settings,
    }
}

impl ConfigDiff {
    /// Nothing that changes behaviour changed: every section but `files`
    /// is empty (the versions may still differ: comments, file names).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
            && self.receivers.is_empty()
            && self.routes.is_empty()
            && self.inhibit_rules.is_empty()
            && self.time_intervals.is_empty()
            && self.silences.is_empty()
            && self.settings.is_empty()
    }

    /// The text shown before a deploy (format in the module docs). Never
    /// empty; ends with a newline.
    pub fn to_text(&self) -> String {
        let same_version = self.old_version == self.new_version;
        if self.is_empty() && self.files.is_empty() && same_version {
            return format!("no changes (config {})\n", self.old_version);
        }
        let mut s = if same_version {
            format!("config {}\n", self.old_version)
        } else {
            format!("config {} -> {}\n", self.old_version, self.new_version)
        };
        for (title, c) in [
            ("files", &self.files),
            ("rules", &self.rules),
            ("receivers", &self.receivers),
            ("routes", &self.routes),
            ("inhibit_rules", &self.inhibit_rules),
            ("time_intervals", &self.time_intervals),
        ] {
            if c.is_empty() {
                continue;
            }
            s.push_str(&format!("{title}: {}\n", c.counts()));
            for a in &c.added {
                s.push_str(&format!("  + {a}\n"));
            }
            for r in &c.removed {
                s.push_str(&format!("  - {r}\n"));
            }
            for ch in &c.changed {
                s.push_str(&format!("  ~ {}: {}\n", ch.name, ch.fields.join(", ")));
            }
        }
        for (title, list) in [("silences", &self.silences), ("settings", &self.settings)] {
            if list.is_empty() {
                continue;
            }
            s.push_str(&format!("{title}: {} changed\n", list.len()));
            for c in list {
                s.push_str(&format!("  ~ {}: {} -> {}\n", c.name, c.old, c.new));
            }
        }
        if self.is_empty() {
            s.push_str("no changes in behaviour\n");
        }
        s
    }

    /// `{"version": {"old", "new"}, "empty": bool, "files" | "rules" |
    /// "receivers" | "routes" | "inhibit_rules" | "time_intervals":
    /// {"added": [name], "removed": [name], "changed": [{"name", "fields"}]},
    /// "silences" | "settings": [{"name", "old", "new"}]}`; names as in the
    /// text.
    pub fn to_json(&self) -> Value {
        let settings = |list: &[SettingChange]| {
            list.iter()
                .map(|c| json!({"name": c.name, "old": c.old, "new": c.new}))
                .collect::<Vec<_>>()
        };
        json!({
            "version": {"old": self.old_version, "new": self.new_version},
            "empty": self.is_empty(),
            "files": self.files.to_json(),
            "rules": self.rules.to_json(),
            "receivers": self.receivers.to_json(),
            "routes": self.routes.to_json(),
            "inhibit_rules": self.inhibit_rules.to_json(),
            "time_intervals": self.time_intervals.to_json(),
            "silences": settings(&self.silences),
            "settings": settings(&self.settings),
        })
    }
}

/// Items keyed by name (the first of a duplicated name counts), in name order.
fn by_name<'a, T: 'a>(
    old: impl Iterator<Item = (&'a str, &'a T)>,
    new: impl Iterator<Item = (&'a str, &'a T)>,
    fields: impl Fn(&T, &T) -> Vec<String>,
) -> Changes {
    let mut o: BTreeMap<&str, &T> = BTreeMap::new();
    for (k, v) in old {
        o.entry(k).or_insert(v);
    }
    let mut n: BTreeMap<&str, &T> = BTreeMap::new();
    for (k, v) in new {
        n.entry(k).or_insert(v);
    }
    let mut out = Changes::default();
    for (name, a) in &o {
        match n.get(name) {
            None => out.removed.push(name.to_string()),
            Some(b) => {
                let f = fields(a, b);
                if !f.is_empty() {
                    out.changed.push(Changed {
                        name: name.to_string(),
                        fields: f,
                    });
                }
            }
        }
    }
    out.added = n
        .keys()
        .filter(|k| !o.contains_key(*k))
        .map(|k| k.to_string())
        .collect();
    out
}

/// The names of the fields that differ, in the order checked.
#[derive(Default)]
struct Fields(Vec<String>);

impl Fields {
    fn check(&mut self, name: &str, same: bool) {
        if !same {
            self.0.push(name.to_string());
        }
    }

    /// `<prefix>.<key>` for each key whose value differs or is on one side only.
    fn map<V>(
        &mut self,
        prefix: &str,
        a: &BTreeMap<String, V>,
        b: &BTreeMap<String, V>,
        eq: impl Fn(&V, &V) -> bool,
    ) {
        let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for k in keys {
            let same = match (a.get(k), b.get(k)) {
                (Some(x), Some(y)) => eq(x, y),
                _ => false,
            };
            self.check(&format!("{prefix}.{k}"), same);
        }
    }
}

fn rule_fields(a: &Rule, b: &Rule) -> Vec<String> {
    let Rule {
        name: _,
        origin: _,
        interval,
        metrics,
        expression_src,
        // Parsed from `expression_src`, which is compared.
        expression: _,
        condition,
        pending,
        keep_firing_for,
        evaluation_delay,
        arrival_grace,
        missing_data,
        min_volume,
        unit,
        labels,
        annotations,
        context,
    } = a;
    let Condition {
        op,
        threshold,
        recovery,
    } = condition;
    let mut f = Fields::default();
    f.check("interval", *interval == b.interval);
    f.map("metrics", metrics, &b.metrics, PartialEq::eq);
    f.check("expression", *expression_src == b.expression_src);
    f.check("op", *op == b.condition.op);
    f.check("threshold", *threshold == b.condition.threshold);
    f.check("recovery", *recovery == b.condition.recovery);
    if *pending != b.pending {
        let both = [pending, &b.pending];
        if both.iter().any(|p| matches!(p, Pending::For(_))) {
            f.0.push("for".to_string());
        }
        if both.iter().any(|p| matches!(p, Pending::MofN { .. })) {
            f.0.push("datapoints".to_string());
        }
    }
    f.check("keep_firing_for", *keep_firing_for == b.keep_firing_for);
    f.check("evaluation_delay", *evaluation_delay == b.evaluation_delay);
    f.check("arrival_grace", *arrival_grace == b.arrival_grace);
    f.check("missing_data", *missing_data == b.missing_data);
    f.check("min_volume", *min_volume == b.min_volume);
    f.check("unit", *unit == b.unit);
    f.map("labels", labels, &b.labels, PartialEq::eq);
    f.map("annotations", annotations, &b.annotations, PartialEq::eq);
    // By name, the first of a duplicated name counting.
    let by_name = |c: &[ContextValue]| -> BTreeMap<String, ContextValue> {
        c.iter()
            .rev()
            .map(|v| (v.name.clone(), v.clone()))
            .collect()
    };
    f.map(
        "context",
        &by_name(context),
        &by_name(&b.context),
        context_eq,
    );
    f.0
}

fn context_eq(a: &ContextValue, b: &ContextValue) -> bool {
    let ContextValue {
        name: _,
        metrics,
        expression,
        window,
        required,
    } = a;
    *metrics == b.metrics
        && *expression == b.expression
        && *window == b.window
        && *required == b.required
}

fn receiver_fields(a: &Receiver, b: &Receiver) -> Vec<String> {
    let Receiver {
        name: _,
        topics,
        time_zone,
        working_hours,
        send_resolved,
        message,
    } = a;
    let MessageOptions {
        chatbot,
        subject_template,
        body_template,
        console_region,
        // Derived from `accounts:`, whose changes show as settings.
        role_accounts: _,
    } = message;
    let m = &b.message;
    let mut f = Fields::default();
    f.check("topics", *topics == b.topics);
    f.check("time_zone", *time_zone == b.time_zone);
    f.check("working_hours", *working_hours == b.working_hours);
    f.check("send_resolved", *send_resolved == b.send_resolved);
    f.check("message.chatbot", *chatbot == m.chatbot);
    f.check(
        "message.subject_template",
        *subject_template == m.subject_template,
    );
    f.check("message.body_template", *body_template == m.body_template);
    f.check(
        "message.console_region",
        *console_region == m.console_region,
    );
    f.0
}

fn interval_fields(a: &TimeInterval, b: &TimeInterval) -> Vec<String> {
    let TimeInterval { name: _, specs } = a;
    if specs.len() != b.specs.len() {
        return vec!["specs".to_string()];
    }
    let mut differ = [false; 6];
    for (x, y) in specs.iter().zip(&b.specs) {
        let TimeSpec {
            times,
            weekdays,
            days_of_month,
            months,
            years,
            location_name,
            // Built from `location_name`, which is compared.
            location: _,
        } = x;
        for (i, same) in [
            *times == y.times,
            *weekdays == y.weekdays,
            *days_of_month == y.days_of_month,
            *months == y.months,
            *years == y.years,
            *location_name == y.location_name,
        ]
        .into_iter()
        .enumerate()
        {
            differ[i] |= !same;
        }
    }
    [
        "times",
        "weekdays",
        "days_of_month",
        "months",
        "years",
        "location",
    ]
    .into_iter()
    .zip(differ)
    .filter(|(_, d)| *d)
    .map(|(n, _)| n.to_string())
    .collect()
}

/// `{a="b", c!="d"}`, as written.
fn matchers_text(m: &[Matcher]) -> String {
    let parts: Vec<String> = m.iter().map(Matcher::to_string).collect();
    format!("{{{}}}", parts.join(", "))
}

/// The matchers as a set (order does not matter: all must match).
fn matcher_set(m: &[Matcher]) -> BTreeSet<String> {
    m.iter().map(Matcher::to_string).collect()
}

fn string_set(v: &[String]) -> BTreeSet<&str> {
    v.iter().map(String::as_str).collect()
}

/// Every route of the tree with its path, depth first (tree order).
fn flatten<'a>(r: &'a Route, path: &str, out: &mut Vec<(String, &'a Route)>) {
    out.push((path.to_string(), r));
    for (i, c) in r.routes.iter().enumerate() {
        flatten(c, &format!("{path}/{i}"), out);
    }
}

/// `root/0 {team="payments"} -> payments`.
fn route_text(path: &str, r: &Route) -> String {
    format!("{path} {} -> {}", matchers_text(&r.matchers), r.receiver)
}

fn route_changes(old: &Route, new: &Route) -> Changes {
    let mut o = Vec::new();
    flatten(old, "root", &mut o);
    let mut n = Vec::new();
    flatten(new, "root", &mut n);
    let o_map: BTreeMap<&str, &Route> = o.iter().map(|(p, r)| (p.as_str(), *r)).collect();
    let n_map: BTreeMap<&str, &Route> = n.iter().map(|(p, r)| (p.as_str(), *r)).collect();
    let mut out = Changes::default();
    for (path, b) in &n {
        match o_map.get(path.as_str()) {
            None => out.added.push(route_text(path, b)),
            Some(a) => {
                let f = route_fields(a, b);
                if !f.is_empty() {
                    out.changed.push(Changed {
                        name: route_text(path, b),
                        fields: f,
                    });
                }
            }
        }
    }
    out.removed = o
        .iter()
        .filter(|(p, _)| !n_map.contains_key(p.as_str()))
        .map(|(p, r)| route_text(p, r))
        .collect();
    out
}

/// The route's own settings (its children are routes of their own).
fn route_fields(a: &Route, b: &Route) -> Vec<String> {
    let Route {
        receiver,
        matchers,
        routes: _,
        continue_matching,
        group_by,
        timing,
        mute_time_intervals,
        active_time_intervals,
        origin: _,
    } = a;
    let Timing {
        group_wait,
        group_interval,
        repeat_interval,
    } = timing;
    let group_set = |g: &GroupBy| match g {
        GroupBy::All => None,
        GroupBy::Labels(l) => Some(l.iter().cloned().collect::<BTreeSet<String>>()),
    };
    let mut f = Fields::default();
    f.check("receiver", *receiver == b.receiver);
    f.check(
        "matchers",
        matcher_set(matchers) == matcher_set(&b.matchers),
    );
    f.check("group_by", group_set(group_by) == group_set(&b.group_by));
    f.check("group_wait", *group_wait == b.timing.group_wait);
    f.check("group_interval", *group_interval == b.timing.group_interval);
    f.check(
        "repeat_interval",
        *repeat_interval == b.timing.repeat_interval,
    );
    f.check("continue", *continue_matching == b.continue_matching);
    f.check(
        "mute_time_intervals",
        string_set(mute_time_intervals) == string_set(&b.mute_time_intervals),
    );
    f.check(
        "active_time_intervals",
        string_set(active_time_intervals) == string_set(&b.active_time_intervals),
    );
    f.0
}

/// What an inhibit rule does, order left out: its source and target
/// matchers and its `equal` labels.
type InhibitKey<'a> = (BTreeSet<String>, BTreeSet<String>, BTreeSet<&'a str>);

/// What an inhibit rule does, and how it reads.
fn inhibit_key(r: &InhibitRule) -> (InhibitKey<'_>, String) {
    let InhibitRule {
        source_matchers,
        target_matchers,
        equal,
        origin: _,
    } = r;
    let mut text = format!(
        "{} inhibits {}",
        matchers_text(source_matchers),
        matchers_text(target_matchers)
    );
    if !equal.is_empty() {
        text.push_str(&format!(" equal [{}]", equal.join(", ")));
    }
    (
        (
            matcher_set(source_matchers),
            matcher_set(target_matchers),
            string_set(equal),
        ),
        text,
    )
}

fn inhibit_changes(old: &[InhibitRule], new: &[InhibitRule]) -> Changes {
    let o: Vec<_> = old.iter().map(inhibit_key).collect();
    let n: Vec<_> = new.iter().map(inhibit_key).collect();
    let mut used = vec![false; n.len()];
    let mut out = Changes::default();
    for (key, text) in &o {
        let found = n
            .iter()
            .enumerate()
            .position(|(i, (k, _))| !used[i] && k == key);
        match found {
            Some(i) => used[i] = true,
            None => out.removed.push(text.clone()),
        }
    }
    out.added = n
        .into_iter()
        .zip(used)
        .filter(|(_, u)| !u)
        .map(|((_, text), _)| text)
        .collect();
    out
}

/// Records a setting change when `old != new`.
fn setting(out: &mut Vec<SettingChange>, name: &str, old: String, new: String) {
    if old != new {
        out.push(SettingChange {
            name: name.to_string(),
            old,
            new,
        });
    }
}

fn secs(s: Epoch) -> String {
    format_duration(Duration::from_secs(u64::try_from(s).unwrap_or(0)))
}

fn labels_text(l: &Labels) -> String {
    let parts: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", parts.join(", "))
}

fn silence_changes(a: &SilencePolicy, b: &SilencePolicy) -> Vec<SettingChange> {
    let SilencePolicy {
        max_duration,
        resolved_pass_through,
    } = a;
    let mut out = Vec::new();
    setting(
        &mut out,
        "max_duration",
        format_duration(*max_duration),
        format_duration(b.max_duration),
    );
    setting(
        &mut out,
        "resolved_pass_through",
        resolved_pass_through.to_string(),
        b.resolved_pass_through.to_string(),
    );
    out
}

fn self_monitoring_changes(a: &SelfMonitoring, b: &SelfMonitoring) -> Vec<SettingChange> {
    let SelfMonitoring {
        enabled,
        labels,
        fetch_failures,
        outbox_age_secs,
        clear_after_secs,
    } = a;
    let mut out = Vec::new();
    let s = &mut out;
    setting(
        s,
        "self_monitoring.enabled",
        enabled.to_string(),
        b.enabled.to_string(),
    );
    setting(
        s,
        "self_monitoring.labels",
        labels_text(labels),
        labels_text(&b.labels),
    );
    setting(
        s,
        "self_monitoring.fetch_failures",
        fetch_failures.to_string(),
        b.fetch_failures.to_string(),
    );
    setting(
        s,
        "self_monitoring.outbox_age",
        secs(*outbox_age_secs),
        secs(b.outbox_age_secs),
    );
    setting(
        s,
        "self_monitoring.clear_after",
        secs(*clear_after_secs),
        secs(b.clear_after_secs),
    );
    out
}

fn history_changes(a: &HistorySettings, b: &HistorySettings) -> Vec<SettingChange> {
    let HistorySettings {
        enabled,
        retention_secs,
    } = a;
    let mut out = Vec::new();
    setting(
        &mut out,
        "history.enabled",
        enabled.to_string(),
        b.enabled.to_string(),
    );
    setting(
        &mut out,
        "history.retention",
        secs(*retention_secs),
        secs(b.retention_secs),
    );
    out
}

use firebell_engine::accounts::Accounts;

fn sentinel_changes(a: &SentinelSettings, b: &SentinelSettings) -> Vec<SettingChange> {
    let SentinelSettings { mode, sweep } = a;
    let name = |m: &firebell_engine::sentinel::Mode| match m {
        firebell_engine::sentinel::Mode::Off => "off".to_string(),
        firebell_engine::sentinel::Mode::Auto => "auto".to_string(),
    };
    let mut out = Vec::new();
    setting(&mut out, "sentinels.mode", name(mode), name(&b.mode));
    setting(
        &mut out,
        "sentinels.sweep",
        secs(sweep.as_secs() as i64),
        secs(b.sweep.as_secs() as i64),
    );
    out
}

fn account_changes(a: &Accounts, b: &Accounts) -> Vec<SettingChange> {
    let mut out = Vec::new();
    let names: std::collections::BTreeSet<&String> = a.roles.keys().chain(b.roles.keys()).collect();
    for account in names {
        let role = |x: &Accounts| x.role_for(account).unwrap_or("-").to_string();
        setting(
            &mut out,
            &format!("accounts.{account}.role_arn"),
            role(a),
            role(b),
        );
    }
    out
}

/// Each file relative to the deepest directory holding all of them (so a
/// config deployed from another directory compares by its own layout).
fn relative(files: &[PathBuf]) -> Vec<String> {
    fn dir(f: &Path) -> Vec<Component<'_>> {
        f.parent()
            .map(|p| p.components().collect())
            .unwrap_or_default()
    }
    let mut common: Option<Vec<Component<'_>>> = None;
    for f in files {
        let d = dir(f);
        common = Some(match common {
            None => d,
            Some(c) => {
                let n = c.iter().zip(&d).take_while(|(a, b)| a == b).count();
                d[..n].to_vec()
            }
        });
    }
    let skip = common.map_or(0, |c| c.len());
    files
        .iter()
        .map(|f| {
            f.components()
                .skip(skip)
                .collect::<PathBuf>()
                .display()
                .to_string()
        })
        .collect()
}

fn file_changes(old: &[PathBuf], new: &[PathBuf]) -> Changes {
    let o: BTreeSet<String> = relative(old).into_iter().collect();
    let n: BTreeSet<String> = relative(new).into_iter().collect();
    Changes {
        added: n.difference(&o).cloned().collect(),
        removed: o.difference(&n).cloned().collect(),
        changed: Vec::new(),
    }
}
