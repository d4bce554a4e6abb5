//! Decoding of the notification config into a [`NotifyConfig`] (its types
//! are in `types`): `receivers`, `route`, `inhibit_rules`, `time_intervals`,
//! `silences` (policy) and `routing_tests`, spread over the YAML files of a
//! config directory.
//!
//! The engine hands every top-level section named in [`SECTIONS`] to
//! [`NotifyConfigBuilder::section`], then calls [`NotifyConfigBuilder::build`]
//! once, which checks references across files (receivers, time intervals)
//! and runs the routing tests. Every problem becomes a diagnostic with its
//! file, line and column; decoding keeps going so one run reports them all.
//!
//! ```yaml
//! receivers:
//!   default:
//!     topics: [arn:aws:sns:eu-west-1:123456789012:alerts-default.fifo]
//!   payments:
//!     topics: [arn:aws:sns:eu-west-1:123456789012:payments.fifo]
//!     time_zone: Europe/Berlin
//!     working_hours: office   # pages outside it count as out of hours (noise report)
//!     send_resolved: true
//!     message: {chatbot: true, console_region: eu-west-1}
//! route:
//!   receiver: default
//!   group_by: [alertname]
//!   routes:
//!     - matchers: ['team="payments"']
//!       receiver: payments
//!       group_by: [alertname, service]
//!       mute_time_intervals: [maintenance]
//! time_intervals:
//!   office:
//!     - weekdays: ['monday:friday']
//!       times: [{start_time: "08:00", end_time: "20:00"}]
//!       location: Europe/Berlin
//!   maintenance:
//!     - weekdays: [sunday]
//!       times: [{start_time: "02:00", end_time: "04:00"}]
//!       location: Europe/Berlin
//! inhibit_rules:
//!   - source_matchers: ['severity="page"']
//!     target_matchers: ['severity="ticket"']
//!     equal: [alertname, service]
//! silences:
//!   max_duration: 7d
//!   resolved_pass_through: true
//! routing_tests:
//!   - labels: {team: payments, severity: page}
//!     receivers: [payments]
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use marked_yaml::Node;

use firebell_core::decode::{Decoder, Fields, Pos, closest};
use firebell_core::diag::Diagnostics;
use firebell_core::model::Origin;

use crate::matcher::{MatchOp, Matcher, is_label_name, parse_entry, quote};
use crate::routing::{describe_receivers, route};
use crate::timeinterval::{
    TimeInterval, TimeSpec, parse_day_of_month_range, parse_month_range, parse_time_of_day,
    parse_time_zone, parse_weekday_range, parse_year_range,
};
use crate::types::{
    GroupBy, InhibitRule, MessageOptions, NotifyConfig, Receiver, Route, RoutingTest,
    SilencePolicy, TopicRef,
};

/// The top-level keys this crate decodes.
pub const SECTIONS: &[&str] = &[
    "receivers",
    "route",
    "inhibit_rules",
    "time_intervals",
    "silences",
    "routing_tests",
];

/// Collects the sections of every file, then builds a [`NotifyConfig`].
#[derive(Debug, Default)]
pub struct NotifyConfigBuilder {
    receivers: BTreeMap<String, (Receiver, Origin)>,
    route: Option<(Route, Origin)>,
    inhibit_rules: Vec<InhibitRule>,
    time_intervals: BTreeMap<String, (TimeInterval, Origin)>,
    silence_policy: Option<(SilencePolicy, Origin)>,
    routing_tests: Vec<RoutingTest>,
    /// Receiver names used by routes and routing tests, where written.
    receiver_refs: Vec<(String, Origin)>,
    /// Receiver names expected by routing tests, where written.
    test_receiver_refs: Vec<(String, Origin)>,
    /// Time interval names used by routes, where written.
    interval_refs: Vec<(String, Origin)>,
    /// Every receiver topic, where written.
    topic_refs: Vec<TopicRef>,
    /// Where the first notification section was seen.
    first_section: Option<Origin>,
    /// Whether decoding reported errors (routing tests are then skipped:
    /// a broken tree would only make them fail confusingly).
    had_errors: bool,
}

fn describe(node: &Node) -> String {
    match node {
        Node::Scalar(s) => format!("{:?}", s.as_str()),
        Node::Mapping(_) => "a mapping".to_string(),
        Node::Sequence(_) => "a list".to_string(),
    }
}

fn origin_at(d: &Decoder<'_>, pos: Pos) -> Origin {
    Origin {
        file: d.file.clone(),
        line: pos.line,
        column: pos.column,
    }
}

/// Where a node starts; for a mapping, its first key (the loader starts a
/// block mapping's span at its first value).
fn node_pos(node: &Node) -> Pos {
    match node {
        Node::Mapping(m) => m
            .keys()
            .next()
            .map(|k| Pos::of(k.span()))
            .unwrap_or_else(|| Pos::of(m.span())),
        other => Pos::of(other.span()),
    }
}

fn origin(d: &Decoder<'_>, node: &Node) -> Origin {
    origin_at(d, node_pos(node))
}

fn err(d: &mut Decoder<'_>, node: &Node, message: impl Into<String>) {
    d.error_at(node_pos(node), message);
}

fn error_at_origin(diags: &mut Diagnostics, o: &Origin, message: impl Into<String>) {
    diags.error(&o.file, o.line, o.column, message);
}

fn is_receiver_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A list of strings.
fn strings(d: &mut Decoder<'_>, node: &Node, what: &str) -> Vec<(String, Origin)> {
    let mut out = Vec::new();
    for item in d.seq(node, what) {
        if let Some(s) = d.str(item, what) {
            out.push((s.to_string(), origin(d, item)));
        }
    }
    out
}

/// A list of matcher strings; an entry may hold several matchers
/// (`'{team="payments", severity="page"}'`), as in Alertmanager.
fn matchers(d: &mut Decoder<'_>, node: &Node, what: &str) -> Vec<Matcher> {
    let mut out = Vec::new();
    for item in d.seq(node, what) {
        if let Some(s) = d.str(item, what) {
            match parse_entry(s) {
                Ok(m) => out.extend(m),
                Err(e) => err(d, item, e.to_string()),
            }
        }
    }
    out
}

/// Alertmanager's retired matcher maps, which firebell does not read: the
/// key, the operator its entries mean, and the list that replaced it.
const RETIRED_ROUTE: &[(&str, MatchOp, &str)] = &[
    ("match", MatchOp::Eq, "matchers"),
    ("match_re", MatchOp::Re, "matchers"),
];
const RETIRED_INHIBIT: &[(&str, MatchOp, &str)] = &[
    ("source_match", MatchOp::Eq, "source_matchers"),
    ("source_match_re", MatchOp::Re, "source_matchers"),
    ("target_match", MatchOp::Eq, "target_matchers"),
    ("target_match_re", MatchOp::Re, "target_matchers"),
];

/// `'text'` in YAML (a quote doubled).
fn yaml_single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Reports each retired key of `retired` present in `f` with the list that
/// says the same (`match: {service: api}` -> `matchers: ['service="api"']`);
/// `hint` replaces that advice when given. Returns the replacing lists
/// whose retired form was present.
fn retired_matchers<'a>(
    d: &mut Decoder<'_>,
    f: &mut Fields<'_>,
    retired: &[(&str, MatchOp, &'a str)],
    hint: Option<&str>,
) -> Vec<&'a str> {
    let mut found = Vec::new();
    for &(key, op, new) in retired {
        let Some((k, v)) = f.unlisted(key) else {
            continue;
        };
        found.push(new);
        let advice = match (hint, v) {
            (Some(h), _) => h.to_string(),
            (None, Node::Mapping(map)) => {
                let entries: Vec<String> = map
                    .iter()
                    .map(|(name, value)| {
                        let value = match value {
                            Node::Scalar(s) => s.as_str().to_string(),
                            other => describe(other),
                        };
                        let text = Matcher::new(name.as_str(), op, &value)
                            .map(|m| m.to_string())
                            .unwrap_or_else(|_| {
                                format!("{}{}{}", name.as_str(), op.as_str(), quote(&value))
                            });
                        yaml_single_quoted(&text)
                    })
                    .collect();
                format!("use `{new}: [{}]`", entries.join(", "))
            }
            (None, _) => format!("use `{new}`, a list of matchers such as ['service=\"api\"']"),
        };
        d.error_at(
            Pos::of(k.span()),
            format!("`{key}` is Alertmanager's retired form of `{new}`, which firebell does not read: {advice}"),
        );
    }
    found
}

fn label_names(d: &mut Decoder<'_>, node: &Node, what: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (s, o) in strings(d, node, what) {
        if is_label_name(&s) {
            out.push(s);
        } else {
            d.error_at(
                Pos {
                    line: o.line,
                    column: o.column,
                },
                format!("invalid label name {s:?} in `{what}` (expected letters, digits and `_`, not starting with a digit)"),
            );
        }
    }
    out
}

fn check_template(d: &mut Decoder<'_>, node: &Node, what: &str, src: &str) {
    let env = minijinja::Environment::new();
    if let Err(e) = env.template_from_str(src) {
        let detail = e.detail().unwrap_or("syntax error").to_string();
        let line = e.line().unwrap_or(1);
        err(
            d,
            node,
            format!("invalid template in `{what}`: {detail} (line {line} of the template)"),
        );
    } else if let Err(e) = crate::render::check_receiver_template(what, src) {
        err(d, node, format!("template in `{what}` fails: {e}"));
    }
}

fn positive_duration(d: &mut Decoder<'_>, node: &Node, what: &str) -> Option<Duration> {
    let v = d.duration(node, what)?;
    if v.is_zero() {
        let s = d.str(node, what).unwrap_or("");
        err(
            d,
            node,
            format!("`{what}` must be longer than 0, found {s:?}"),
        );
        return None;
    }
    Some(v)
}

impl NotifyConfigBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one section (`key` is one of [`SECTIONS`]) of one file.
    pub fn section(&mut self, d: &mut Decoder<'_>, key: &str, node: &Node) {
        if self.first_section.is_none() {
            self.first_section = Some(origin(d, node));
        }
        let before = d.diags.errors().count();
        self.decode_section(d, key, node);
        if d.diags.errors().count() > before {
            self.had_errors = true;
        }
    }

    fn decode_section(&mut self, d: &mut Decoder<'_>, key: &str, node: &Node) {
        match key {
            "receivers" => self.receivers_section(d, node),
            "route" => {
                if let Some((_, first)) = &self.route {
                    let msg = format!(
                        "`route` is already defined at {first}; only one file may define the routing tree"
                    );
                    err(d, node, msg);
                    return;
                }
                let at = origin(d, node);
                if let Some(r) = self.decode_route(d, node, None, "root") {
                    self.route = Some((r, at));
                }
            }
            "inhibit_rules" => {
                for item in d.seq(node, "inhibit_rules") {
                    if let Some(r) = decode_inhibit_rule(d, item) {
                        self.inhibit_rules.push(r);
                    }
                }
            }
            "time_intervals" => self.time_intervals_section(d, node),
            "silences" => {
                if let Some((_, first)) = &self.silence_policy {
                    let msg = format!("`silences` is already defined at {first}");
                    err(d, node, msg);
                    return;
                }
                let at = origin(d, node);
                if let Some(p) = decode_silence_policy(d, node) {
                    self.silence_policy = Some((p, at));
                }
            }
            "routing_tests" => {
                for item in d.seq(node, "routing_tests") {
                    if let Some(t) = self.decode_routing_test(d, item) {
                        self.routing_tests.push(t);
                    }
                }
            }
            other => err(
                d,
                node,
                format!(
                    "`{other}` is not a notification section (expected one of: {})",
                    SECTIONS.join(", ")
                ),
            ),
        }
    }

    fn receivers_section(&mut self, d: &mut Decoder<'_>, node: &Node) {
        let Node::Mapping(map) = node else {
            err(
                d,
                node,
                format!(
                    "`receivers` must be a mapping of receiver name to settings, found {}",
                    describe(node)
                ),
            );
            return;
        };
        for (k, v) in map.iter() {
            let name = k.as_str();
            let at = origin_at(d, Pos::of(k.span()));
            if !is_receiver_name(name) {
                d.error_at(
                    Pos::of(k.span()),
                    format!("invalid receiver name {name:?} (use 1 to 64 letters, digits, `_`, `.` or `-`)"),
                );
                continue;
            }
            let receiver =
                decode_receiver(d, name, v, &mut self.interval_refs, &mut self.topic_refs);
            if let Some((_, first)) = self.receivers.get(name) {
                let msg = format!("duplicate receiver {name:?} (first defined at {first})");
                d.error_at(Pos::of(k.span()), msg);
                continue;
            }
            if let Some(r) = receiver {
                self.receivers.insert(name.to_string(), (r, at));
            }
        }
    }

    fn time_intervals_section(&mut self, d: &mut Decoder<'_>, node: &Node) {
        let Node::Mapping(map) = node else {
            err(
                d,
                node,
                format!(
                    "`time_intervals` must be a mapping of interval name to a list of times, found {}",
                    describe(node)
                ),
            );
            return;
        };
        for (k, v) in map.iter() {
            let name = k.as_str();
            let at = origin_at(d, Pos::of(k.span()));
            if name.is_empty() {
                d.error_at(
                    Pos::of(k.span()),
                    "a time interval needs a name (found an empty one)",
                );
                continue;
            }
            let mut specs = Vec::new();
            let items = d.seq(v, &format!("time_intervals.{name}"));
            if items.is_empty() && matches!(v, Node::Sequence(_)) {
                err(d, v, format!("time interval {name:?} has no entries"));
            }
            for item in items {
                if let Some(s) = decode_time_spec(d, name, item) {
                    specs.push(s);
                }
            }
            if let Some((_, first)) = self.time_intervals.get(name) {
                let msg = format!("duplicate time interval {name:?} (first defined at {first})");
                d.error_at(Pos::of(k.span()), msg);
                continue;
            }
            self.time_intervals.insert(
                name.to_string(),
                (
                    TimeInterval {
                        name: name.to_string(),
                        specs,
                    },
                    at,
                ),
            );
        }
    }

    fn decode_route(
        &mut self,
        d: &mut Decoder<'_>,
        node: &Node,
        parent: Option<&Route>,
        path: &str,
    ) -> Option<Route> {
        let what = if parent.is_none() {
            "the root route".to_string()
        } else {
            format!("route {path}")
        };
        let mut f = d.fields(node, &what)?;
        let at = origin_at(d, f.pos());
        let mut r = match parent {
            Some(p) => Route {
                receiver: p.receiver.clone(),
                group_by: p.group_by.clone(),
                timing: p.timing,
                origin: at.clone(),
                ..Route::default()
            },
            None => Route {
                origin: at.clone(),
                ..Route::default()
            },
        };
        match (f.opt("receiver"), parent) {
            (Some(n), _) => {
                if let Some(s) = d.str(n, "receiver") {
                    r.receiver = s.to_string();
                    self.receiver_refs.push((s.to_string(), origin(d, n)));
                }
            }
            (None, None) => {
                d.error_at(
                    Pos {
                        line: at.line,
                        column: at.column,
                    },
                    "the root route must have a `receiver` (it receives every alert no other route takes)",
                );
            }
            (None, Some(_)) => {}
        }
        retired_matchers(
            d,
            &mut f,
            RETIRED_ROUTE,
            parent
                .is_none()
                .then_some("the root route must match every alert, so leave it out"),
        );
        if let Some(n) = f.opt("matchers") {
            if parent.is_none() {
                err(
                    d,
                    n,
                    "the root route cannot have `matchers`: it must match every alert",
                );
            } else {
                r.matchers = matchers(d, n, "matchers");
            }
        }
        if let Some(n) = f.opt("continue") {
            if parent.is_none() {
                err(
                    d,
                    n,
                    "the root route cannot have `continue`: it has no sibling routes to continue to",
                );
            } else {
                r.continue_matching = d.bool(n, "continue").unwrap_or(false);
            }
        }
        if let Some(n) = f.opt("group_by") {
            let names = strings(d, n, "group_by");
            if names.iter().any(|(s, _)| s == "...") {
                if names.len() > 1 {
                    err(
                        d,
                        n,
                        "`...` (group by every label) must be the only entry of `group_by`",
                    );
                }
                r.group_by = GroupBy::All;
            } else {
                let mut ok: Vec<String> = Vec::new();
                for (s, o) in names {
                    if ok.contains(&s) {
                        d.error_at(
                            Pos {
                                line: o.line,
                                column: o.column,
                            },
                            format!("label {s:?} appears twice in `group_by`"),
                        );
                    } else if is_label_name(&s) {
                        ok.push(s);
                    } else {
                        d.error_at(
                            Pos {
                                line: o.line,
                                column: o.column,
                            },
                            format!("invalid label name {s:?} in `group_by` (expected letters, digits and `_`, or `...` for every label)"),
                        );
                    }
                }
                r.group_by = GroupBy::Labels(ok);
            }
        }
        if let Some(n) = f.opt("group_wait")
            && let Some(v) = d.duration(n, "group_wait")
        {
            r.timing.group_wait = v;
        }
        if let Some(n) = f.opt("group_interval")
            && let Some(v) = positive_duration(d, n, "group_interval")
        {
            r.timing.group_interval = v;
        }
        if let Some(n) = f.opt("repeat_interval")
            && let Some(v) = positive_duration(d, n, "repeat_interval")
        {
            r.timing.repeat_interval = v;
        }
        for (key, is_mute) in [
            ("mute_time_intervals", true),
            ("active_time_intervals", false),
        ] {
            if let Some(n) = f.opt(key) {
                if parent.is_none() {
                    err(
                        d,
                        n,
                        format!(
                            "the root route cannot have `{key}`: it takes every alert no other route takes (set time intervals on child routes)"
                        ),
                    );
                    continue;
                }
                let names = strings(d, n, key);
                let list: Vec<String> = names.iter().map(|(s, _)| s.clone()).collect();
                self.interval_refs.extend(names);
                if is_mute {
                    r.mute_time_intervals = list;
                } else {
                    r.active_time_intervals = list;
                }
            }
        }
        if let Some(n) = f.opt("routes") {
            let children = d.seq(n, "routes");
            let mut out = Vec::new();
            for (i, c) in children.iter().enumerate() {
                if let Some(child) = self.decode_route(d, c, Some(&r), &format!("{path}/{i}")) {
                    out.push(child);
                }
            }
            r.routes = out;
        }
        f.finish(d);
        Some(r)
    }

    fn decode_routing_test(&mut self, d: &mut Decoder<'_>, node: &Node) -> Option<RoutingTest> {
        let mut f = d.fields(node, "routing test")?;
        let at = origin_at(d, f.pos());
        let labels = f.req(d, "labels").map(|n| d.string_map(n, "labels"));
        let receivers = f.req(d, "receivers").map(|n| strings(d, n, "receivers"));
        f.finish(d);
        let receivers = receivers?;
        self.test_receiver_refs.extend(receivers.iter().cloned());
        Some(RoutingTest {
            labels: labels?,
            receivers: receivers.into_iter().map(|(s, _)| s).collect(),
            origin: at,
        })
    }

    /// Checks references across files and runs the routing tests.
    pub fn build(self, diags: &mut Diagnostics) -> NotifyConfig {
        let Some(first) = self.first_section else {
            return NotifyConfig::default();
        };
        let receivers: BTreeMap<String, Receiver> = self
            .receivers
            .iter()
            .map(|(k, (r, _))| (k.clone(), r.clone()))
            .collect();
        let names: Vec<&str> = receivers.keys().map(String::as_str).collect();
        let mut had_errors = self.had_errors;
        for (name, o) in &self.receiver_refs {
            if !receivers.contains_key(name) {
                had_errors = true;
                let msg = undefined("receiver", name, "receivers", &names);
                error_at_origin(diags, o, msg);
            }
        }
        let intervals: BTreeMap<String, TimeInterval> = self
            .time_intervals
            .into_iter()
            .map(|(k, (t, _))| (k, t))
            .collect();
        let interval_names: Vec<&str> = intervals.keys().map(String::as_str).collect();
        let mut bad_tests = BTreeSet::new();
        for (name, o) in &self.test_receiver_refs {
            if !receivers.contains_key(name) {
                bad_tests.insert(name.as_str());
                let msg = undefined("receiver", name, "receivers", &names);
                error_at_origin(diags, o, msg);
            }
        }
        for (name, o) in &self.interval_refs {
            if !intervals.contains_key(name) {
                had_errors = true;
                let msg = undefined("time interval", name, "time_intervals", &interval_names);
                error_at_origin(diags, o, msg);
            }
        }
        let root = match self.route {
            Some((r, _)) => r,
            None => {
                error_at_origin(
                    diags,
                    &first,
                    "no `route` is defined: notifications need a routing tree whose root names a receiver",
                );
                Route::default()
            }
        };
        let cfg = NotifyConfig {
            receivers,
            route: root,
            inhibit_rules: self.inhibit_rules,
            time_intervals: intervals,
            silence_policy: self.silence_policy.map(|(p, _)| p).unwrap_or_default(),
            routing_tests: self.routing_tests,
            topic_refs: self.topic_refs,
        };
        if !had_errors && !cfg.route.receiver.is_empty() {
            for t in &cfg.routing_tests {
                if t.receivers.iter().any(|r| bad_tests.contains(r.as_str())) {
                    continue;
                }
                let got = route(&cfg, &t.labels);
                let mut got_names: Vec<&str> = got.iter().map(|m| m.receiver.as_str()).collect();
                let mut want: Vec<&str> = t.receivers.iter().map(String::as_str).collect();
                let shown_got = format!("[{}]", got_names.join(", "));
                got_names.sort_unstable();
                want.sort_unstable();
                if got_names != want {
                    let labels: Vec<String> = t
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}={}", quote(v)))
                        .collect();
                    error_at_origin(
                        diags,
                        &t.origin,
                        format!(
                            "routing test failed for {{{}}}: expected receivers [{}] but got {shown_got} (matched {})",
                            labels.join(", "),
                            t.receivers.join(", "),
                            describe_receivers(&got)
                        ),
                    );
                }
            }
        }
        cfg
    }
}

fn undefined(kind: &str, name: &str, section: &str, defined: &[&str]) -> String {
    let list = if defined.is_empty() {
        format!("no {kind}s are defined")
    } else {
        format!("defined: {}", defined.join(", "))
    };
    let hint = closest(name, defined)
        .map(|c| format!("; did you mean {c:?}?"))
        .unwrap_or_default();
    format!("{kind} {name:?} is not defined in `{section}` ({list}){hint}")
}

fn decode_receiver(
    d: &mut Decoder<'_>,
    name: &str,
    node: &Node,
    interval_refs: &mut Vec<(String, Origin)>,
    topic_refs: &mut Vec<TopicRef>,
) -> Option<Receiver> {
    let mut f = d.fields(node, &format!("receiver {name:?}"))?;
    let mut topics = Vec::new();
    if let Some(n) = f.req(d, "topics") {
        let written = strings(d, n, "topics");
        if written.is_empty() && matches!(n, Node::Sequence(_)) {
            err(d, n, format!("receiver {name:?} needs at least one topic"));
        }
        for (topic, at) in written {
            if topic.trim().is_empty() {
                let pos = Pos {
                    line: at.line,
                    column: at.column,
                };
                d.error_at(pos, format!("receiver {name:?} has an empty topic"));
            } else if let Err(why) = crate::arn::check_sns_topic_arn(&topic) {
                let pos = Pos {
                    line: at.line,
                    column: at.column,
                };
                d.error_at(pos, format!("receiver {name:?}: topic {topic:?} {why}"));
            }
            topic_refs.push(TopicRef {
                receiver: name.to_string(),
                topic: topic.clone(),
                origin: at,
            });
            topics.push(topic);
        }
    }
    let mut time_zone = "UTC".to_string();
    if let Some(n) = f.opt("time_zone")
        && let Some(s) = d.str(n, "time_zone")
    {
        if parse_time_zone(s).is_some() {
            time_zone = s.to_string();
        } else {
            err(d, n, bad_zone(s, "time_zone"));
        }
    }
    let mut working_hours = None;
    if let Some(n) = f.opt("working_hours")
        && let Some(s) = d.str(n, "working_hours")
    {
        interval_refs.push((s.to_string(), origin(d, n)));
        working_hours = Some(s.to_string());
    }
    let send_resolved = f
        .opt("send_resolved")
        .and_then(|n| d.bool(n, "send_resolved"))
        .unwrap_or(true);
    let mut message = MessageOptions::default();
    if let Some(n) = f.opt("message")
        && let Some(mut m) = d.fields(n, "`message`")
    {
        if let Some(n) = m.opt("chatbot") {
            message.chatbot = d.bool(n, "chatbot").unwrap_or(false);
        }
        for key in ["subject_template", "body_template"] {
            if let Some(n) = m.opt(key)
                && let Some(s) = d.str(n, key)
            {
                check_template(d, n, key, s);
                if key == "subject_template" {
                    message.subject_template = Some(s.to_string());
                } else {
                    message.body_template = Some(s.to_string());
                }
            }
        }
        if let Some(n) = m.opt("console_region")
            && let Some(s) = d.str(n, "console_region")
        {
            if is_region(s) {
                message.console_region = Some(s.to_string());
            } else {
                err(
                    d,
                    n,
                    format!(
                        "invalid AWS region {s:?} for `console_region` (expected a region such as \"eu-west-1\")"
                    ),
                );
            }
        }
        m.finish(d);
    }
    f.finish(d);
    Some(Receiver {
        name: name.to_string(),
        topics,
        time_zone,
        working_hours,
        send_resolved,
        message,
    })
}

fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

fn bad_zone(s: &str, what: &str) -> String {
    format!(
        "unknown time zone {s:?} for `{what}` (expected an IANA name such as \"Europe/Berlin\" or \"UTC\")"
    )
}

fn decode_time_spec(d: &mut Decoder<'_>, name: &str, node: &Node) -> Option<TimeSpec> {
    let mut f = d.fields(node, &format!("time interval {name:?}"))?;
    let mut spec = TimeSpec::default();
    let mut ok = true;
    if let Some(n) = f.opt("times") {
        for item in d.seq(n, "times") {
            let Some(mut t) = d.fields(item, "a `times` entry") else {
                ok = false;
                continue;
            };
            let mut get = |d: &mut Decoder<'_>, key: &str, allow_24: bool| -> Option<u16> {
                let n = t.req(d, key)?;
                let s = d.str(n, key)?;
                let v = parse_time_of_day(s, allow_24);
                if v.is_none() {
                    err(
                        d,
                        n,
                        format!(
                            "invalid time of day {s:?} for `{key}` (expected HH:MM between 00:00 and 24:00)"
                        ),
                    );
                }
                v
            };
            let start = get(d, "start_time", false);
            let end = get(d, "end_time", true);
            match (start, end) {
                (Some(a), Some(b)) if a < b => spec.times.push((a, b)),
                (Some(_), Some(_)) => {
                    ok = false;
                    err(d, item, "`start_time` must be before `end_time`");
                }
                _ => ok = false,
            }
            t.finish(d);
        }
    }
    fn ranges<T>(
        d: &mut Decoder<'_>,
        node: &Node,
        what: &str,
        parse: fn(&str) -> Result<T, String>,
        ok: &mut bool,
    ) -> Vec<T> {
        let mut out = Vec::new();
        for item in d.seq(node, what) {
            let Some(s) = d.str(item, what) else {
                *ok = false;
                continue;
            };
            match parse(s) {
                Ok(v) => out.push(v),
                Err(e) => {
                    *ok = false;
                    err(d, item, e);
                }
            }
        }
        out
    }
    if let Some(n) = f.opt("weekdays") {
        spec.weekdays = ranges(d, n, "weekdays", parse_weekday_range, &mut ok);
    }
    if let Some(n) = f.opt("days_of_month") {
        spec.days_of_month = ranges(d, n, "days_of_month", parse_day_of_month_range, &mut ok);
    }
    if let Some(n) = f.opt("months") {
        spec.months = ranges(d, n, "months", parse_month_range, &mut ok);
    }
    if let Some(n) = f.opt("years") {
        spec.years = ranges(d, n, "years", parse_year_range, &mut ok);
    }
    if let Some(n) = f.opt("location")
        && let Some(s) = d.str(n, "location")
    {
        match parse_time_zone(s) {
            Some(tz) => {
                spec.location = tz;
                spec.location_name = s.to_string();
            }
            None => {
                ok = false;
                err(d, n, bad_zone(s, "location"));
            }
        }
    }
    f.finish(d);
    ok.then_some(spec)
}

fn decode_inhibit_rule(d: &mut Decoder<'_>, node: &Node) -> Option<InhibitRule> {
    let mut f = d.fields(node, "inhibit rule")?;
    let at = origin_at(d, f.pos());
    let retired = retired_matchers(d, &mut f, RETIRED_INHIBIT, None);
    fn list<'n>(
        d: &mut Decoder<'_>,
        f: &mut Fields<'n>,
        key: &str,
        retired: &[&str],
    ) -> Option<&'n Node> {
        if retired.contains(&key) {
            // Its retired form was reported; not missing as well.
            f.opt(key)
        } else {
            f.req(d, key)
        }
    }
    let source = list(d, &mut f, "source_matchers", &retired).map(|n| {
        let m = matchers(d, n, "source_matchers");
        if m.is_empty() && matches!(n, Node::Sequence(s) if s.is_empty()) {
            err(d, n, "`source_matchers` needs at least one matcher");
        }
        m
    });
    let target = list(d, &mut f, "target_matchers", &retired).map(|n| {
        let m = matchers(d, n, "target_matchers");
        if m.is_empty() && matches!(n, Node::Sequence(s) if s.is_empty()) {
            err(d, n, "`target_matchers` needs at least one matcher");
        }
        m
    });
    let equal = f
        .opt("equal")
        .map(|n| label_names(d, n, "equal"))
        .unwrap_or_default();
    f.finish(d);
    Some(InhibitRule {
        source_matchers: source?,
        target_matchers: target?,
        equal,
        origin: at,
    })
}

fn decode_silence_policy(d: &mut Decoder<'_>, node: &Node) -> Option<SilencePolicy> {
    let mut f = d.fields(node, "`silences`")?;
    let mut p = SilencePolicy::default();
    if let Some(n) = f.opt("max_duration")
        && let Some(v) = positive_duration(d, n, "max_duration")
    {
        p.max_duration = v;
    }
    if let Some(n) = f.opt("resolved_pass_through")
        && let Some(v) = d.bool(n, "resolved_pass_through")
    {
        p.resolved_pass_through = v;
    }
    f.finish(d);
    Some(p)
}
