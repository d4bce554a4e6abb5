//! Decoding and validating the `rules:` section of config files.
//!
//! A config directory holds YAML files whose top-level mapping has sections
//! (`rules`, `receivers`, `route`, ...). This module owns `rules`; the
//! notification pipeline owns the routing sections. Each section is decoded
//! with [`crate::decode`], so every mistake is reported at once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use marked_yaml::Node;

use crate::decode::{Decoder, Pos, format_duration};
use crate::diag::Diagnostics;
use crate::expr::Expr;
use crate::model::{
    ACCOUNT_LABEL, Condition, MetricSpec, MissingData, Op, Origin, Pending, REGION_LABEL, Rule,
    RuleSet, Stat, Unit, VolumeGuard, valid_account, valid_region,
};

/// Top-level keys this module decodes.
pub const SECTIONS: &[&str] = &["rules"];

const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// The longest label value, in characters: CloudWatch's limit for a
/// dimension value (labels become alert labels, SNS attributes and keys).
pub const MAX_LABEL_VALUE_CHARS: usize = 1024;
/// The longest annotation template, in characters (a rendered annotation is
/// cut at 4 KiB; alert records must stay far below the 400 KB store item).
pub const MAX_ANNOTATION_CHARS: usize = 4096;

/// The most `labels` a rule may set (its dimensions add at most
/// CloudWatch's 30 more): with the value limits, an alert record stays
/// well under the store's 400 KB item.
pub const MAX_LABELS: usize = 30;
/// The most `annotations` a rule may set.
pub const MAX_ANNOTATIONS: usize = 30;
/// The longest label name, in characters.
pub const MAX_LABEL_NAME_CHARS: usize = 128;

/// Reports mapping `n` when it has more than `max` entries.
fn check_count(d: &mut Decoder<'_>, n: &Node, what: &str, max: usize) -> bool {
    let Node::Mapping(m) = n else { return true };
    if m.len() > max {
        d.error(n, format!("{} {what} (expected at most {max})", m.len()));
        return false;
    }
    true
}

/// Reports every value of mapping `n` longer than `max` characters.
fn check_lengths(d: &mut Decoder<'_>, n: &Node, what: &str, max: usize, why: &str) -> bool {
    let Node::Mapping(m) = n else { return true };
    let mut good = true;
    for (k, v) in m.iter() {
        let Node::Scalar(s) = v else { continue };
        let chars = s.as_str().chars().count();
        if chars > max {
            d.error(
                v,
                format!(
                    "{what} {:?} is {chars} characters long (expected at most {max}{why})",
                    k.as_str()
                ),
            );
            good = false;
        }
    }
    good
}

pub(crate) fn valid_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

pub(crate) fn valid_rule_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-' || ch == '.')
}

/// Collects rules from any number of files, then cross-checks them.
#[derive(Debug, Default)]
pub struct RulesBuilder {
    rules: Vec<Rule>,
}

impl RulesBuilder {
    /// Decodes one `rules:` section.
    pub fn section(&mut self, d: &mut Decoder<'_>, node: &Node) {
        for item in d.seq(node, "rules") {
            if let Some(rule) = decode_rule(d, item) {
                self.rules.push(rule);
            }
        }
    }

    /// Adds a rule made elsewhere (e.g. generated from an SLO); it takes part
    /// in the cross-file checks like a decoded one.
    pub fn push(&mut self, rule: Rule) {
        self.rules.push(rule);
    }

    /// Cross-file checks (duplicate names), then the rule set.
    pub fn build(self, diags: &mut Diagnostics) -> RuleSet {
        let mut seen: BTreeMap<&str, &Origin> = BTreeMap::new();
        for r in &self.rules {
            if r.name == crate::alert::SELF_ALERTNAME {
                diags.error(
                    &r.origin.file,
                    r.origin.line,
                    r.origin.column,
                    format!(
                        "rule name {:?} is reserved: firebell's own alerts use it (see `self_monitoring`)",
                        r.name
                    ),
                );
            }
            let reach = r.reach_labels();
            for key in [ACCOUNT_LABEL, REGION_LABEL] {
                if let (Some(set), Some(from)) = (r.labels.get(key), reach.get(key)) {
                    diags.error(
                        &r.origin.file,
                        r.origin.line,
                        r.origin.column,
                        format!(
                            "rule {:?}: label {key:?} is {set:?} but its metrics' `{key}` sets it to {from:?} (remove the label: firebell sets it)",
                            r.name
                        ),
                    );
                }
            }
            let wildcards = r.wildcards();
            for key in [ACCOUNT_LABEL, REGION_LABEL] {
                if let (true, Some(from)) = (wildcards.contains(key), reach.get(key)) {
                    diags.error(
                        &r.origin.file,
                        r.origin.line,
                        r.origin.column,
                        format!(
                            "rule {:?}: wildcard dimension {key:?} would overwrite the label {key:?} its metrics' `{key}` sets to {from:?} (expected a rule on another account's or region's metrics to have no wildcard dimension named {key:?})",
                            r.name
                        ),
                    );
                }
            }
            if !wildcards.is_empty() && r.wildcard_driver().is_none() {
                let per_metric: Vec<String> = r
                    .metrics
                    .iter()
                    .filter(|(_, m)| m.has_wildcard())
                    .map(|(id, m)| {
                        format!(
                            "`{id}` has {}",
                            m.wildcards().collect::<Vec<_>>().join(", ")
                        )
                    })
                    .collect();
                diags.error(
                    &r.origin.file,
                    r.origin.line,
                    r.origin.column,
                    format!(
                        "rule {:?}: no metric has every wildcard dimension ({}; {}): one metric must have them all, its reported dimension values list the instances",
                        r.name,
                        wildcards.into_iter().collect::<Vec<_>>().join(", "),
                        per_metric.join(", ")
                    ),
                );
            }
            if let Some(first) = seen.get(r.name.as_str()) {
                diags.error(
                    &r.origin.file,
                    r.origin.line,
                    r.origin.column,
                    format!(
                        "duplicate rule name {:?} (first defined at {first})",
                        r.name
                    ),
                );
            } else {
                seen.insert(&r.name, &r.origin);
            }
        }
        RuleSet { rules: self.rules }
    }
}

/// Decodes rules from one YAML text (a whole file with a `rules:` section).
/// Convenience for tests and tools; config directories go through the engine's loader.
pub fn parse_rules(file: &str, text: &str) -> Result<RuleSet, crate::diag::ConfigError> {
    let mut diags = Diagnostics::new();
    let mut b = RulesBuilder::default();
    {
        let mut d = Decoder::new(file, &mut diags);
        if let Some(root) = d.parse(text)
            && let Some(mut f) = d.fields(&root, "rules file")
        {
            if let Some(n) = f.req(&mut d, "rules") {
                b.section(&mut d, n);
            }
            f.finish(&mut d);
        }
    }
    let set = b.build(&mut diags);
    diags.sort();
    if diags.has_errors() {
        Err(crate::diag::ConfigError(diags))
    } else {
        Ok(set)
    }
}

fn decode_rule(d: &mut Decoder<'_>, node: &Node) -> Option<Rule> {
    let mut f = d.fields(node, "rule")?;
    let pos = f.pos();
    let mut ok = true;

    let name = f.req(d, "name").and_then(|n| {
        let s = d.str(n, "name")?;
        if valid_rule_name(s) {
            Some((s.to_string(), Pos::of(n.span())))
        } else {
            d.error(
                n,
                format!(
                    "invalid rule name {s:?} (expected letters, digits, '_', '-' or '.', at most 128 characters)"
                ),
            );
            None
        }
    });
    let what = match &name {
        Some((n, _)) => format!("rule {n:?}"),
        None => "rule".to_string(),
    };

    let interval = match f.opt("interval") {
        Some(n) => d.duration(n, "interval").and_then(|v| {
            if v < Duration::from_secs(10) {
                d.error(
                    n,
                    format!(
                        "`interval` {} is too short (expected at least 10s)",
                        format_duration(v)
                    ),
                );
                None
            } else {
                Some(v)
            }
        }),
        None => Some(DEFAULT_INTERVAL),
    };

    let metrics_node = f.req(d, "metrics");
    let metrics = metrics_node
        .map(|n| decode_metrics(d, n))
        .unwrap_or_default();
    // One grid per rule: metrics of different periods would be sampled, not
    // aggregated, onto the coarsest one.
    let periods: BTreeSet<Duration> = metrics.values().map(|m| m.period).collect();
    if periods.len() > 1
        && let Some(n) = metrics_node
    {
        let each: Vec<String> = metrics
            .iter()
            .map(|(id, m)| format!("{id}: {}", format_duration(m.period)))
            .collect();
        d.error(
            n,
            format!(
                "all metrics of a rule must have the same period (found {})",
                each.join(", ")
            ),
        );
        ok = false;
    }
    if metrics.is_empty() {
        ok = false;
    }

    let expression = f.req(d, "expression").and_then(|n| {
        let src = d.str(n, "expression")?;
        match Expr::parse(src) {
            Ok(e) => {
                let mut good = true;
                for id in e.metric_ids() {
                    if !metrics.contains_key(&id) && !metrics.is_empty() {
                        let defined: Vec<&str> = metrics.keys().map(String::as_str).collect();
                        d.error(
                            n,
                            format!(
                                "expression {src:?} uses undefined metric `{id}` (defined: {})",
                                defined.join(", ")
                            ),
                        );
                        good = false;
                    }
                }
                good.then(|| (src.to_string(), e))
            }
            Err(e) => {
                d.error(
                    n,
                    format!(
                        "invalid expression {src:?}: {} at offset {}",
                        e.message, e.offset
                    ),
                );
                None
            }
        }
    });

    let condition = f.req(d, "condition").and_then(|n| decode_condition(d, n));

    let step = metrics
        .values()
        .map(|m| m.period)
        .max()
        .unwrap_or(Duration::from_secs(60));

    let for_node = f.opt("for");
    let dp_node = f.opt("datapoints");
    let pending = match (for_node, dp_node) {
        (Some(a), Some(_)) => {
            d.error(
                a,
                "`for` and `datapoints` are alternatives: give one or the other".to_string(),
            );
            None
        }
        (Some(n), None) => d.duration(n, "for").and_then(|v| {
            if v > Duration::ZERO && v < step {
                d.error(
                    n,
                    format!(
                        "`for` {} is shorter than the metric period {} (expected 0 or at least one period)",
                        format_duration(v),
                        format_duration(step)
                    ),
                );
                None
            } else {
                Some(Pending::For(v))
            }
        }),
        (None, Some(n)) => decode_datapoints(d, n),
        (None, None) => Some(Pending::For(Duration::ZERO)),
    };

    let keep_firing_for = match f.opt("keep_firing_for") {
        Some(n) => d.duration(n, "keep_firing_for"),
        None => Some(Duration::ZERO),
    };

    let mut arrival_wait = |key: &str| {
        match f.opt(key) {
        Some(n) => d.duration(n, key).and_then(|v| {
            if v > crate::model::MAX_ARRIVAL_WAIT {
                d.error(
                    n,
                    format!(
                        "`{key}` {} is too long (expected at most 1h: every alert of the rule would be that late)",
                        crate::decode::format_duration(v)
                    ),
                );
                None
            } else {
                Some(Some(v))
            }
        }),
        None => Some(None),
    }
    };
    let evaluation_delay = arrival_wait("evaluation_delay");
    let arrival_grace = arrival_wait("arrival_grace");

    let missing_data = match f.opt("missing_data") {
        Some(n) => d.str(n, "missing_data").and_then(|s| {
            MissingData::parse(s).or_else(|| {
                d.error(
                    n,
                    format!(
                        "invalid `missing_data` {s:?} (expected one of: nodata, ok, breaching, keep)"
                    ),
                );
                None
            })
        }),
        None => Some(MissingData::default()),
    };

    let min_volume = match f.opt("min_volume") {
        Some(n) => decode_guard(d, n, &metrics).map(Some),
        None => Some(None),
    };

    let unit = match f.opt("unit") {
        Some(n) => d.str(n, "unit").and_then(|s| {
            Unit::parse(s).or_else(|| {
                d.error(
                    n,
                    format!(
                        "invalid `unit` {s:?} (expected one of: percent, ratio, ms, seconds, count, none)"
                    ),
                );
                None
            })
        }),
        None => Some(Unit::None),
    };

    let labels = match f.opt("labels") {
        Some(n) => decode_labels(d, n, &["alertname", crate::alert::ALERTSTATE_LABEL], |k| {
            format!("label {k:?} is reserved: firebell sets it")
        }),
        None => Some(BTreeMap::new()),
    };

    let annotations = match f.opt("annotations") {
        Some(n) => {
            check_count(d, n, "annotations", MAX_ANNOTATIONS);
            check_lengths(d, n, "annotation", MAX_ANNOTATION_CHARS, "");
            d.string_map(n, "annotations")
        }
        None => BTreeMap::new(),
    };

    f.finish(d);
    let _ = &what;

    if !ok {
        return None;
    }
    let (name, name_pos) = name?;
    let (expression_src, expression) = expression?;
    let rule = Rule {
        name,
        origin: Origin {
            file: d.file.clone(),
            line: name_pos.line,
            column: name_pos.column,
        },
        interval: interval?,
        metrics,
        expression_src,
        expression,
        condition: condition?,
        pending: pending?,
        keep_firing_for: keep_firing_for?,
        evaluation_delay: evaluation_delay?.unwrap_or_default(),
        arrival_grace: arrival_grace?,
        missing_data: missing_data?,
        min_volume: min_volume?,
        unit: unit?,
        labels: labels?,
        annotations,
        context: Vec::new(),
    };
    let _ = pos;
    if !check_queries(d, &rule, name_pos) {
        return None;
    }
    let (lookback, retention) = (rule.lookback(), rule.retention());
    if lookback > retention {
        d.error_at(
            name_pos,
            format!(
                "rule {:?} looks back {} (`for`/`datapoints` or `keep_firing_for`, `min_volume.window`, the expression's history, `interval` and 5 periods of margin), beyond the {} CloudWatch keeps data of period {} (expected a lookback of at most {})",
                rule.name,
                format_duration(lookback),
                format_duration(retention),
                format_duration(rule.step()),
                format_duration(retention),
            ),
        );
        return None;
    }
    Some(rule)
}

fn decode_metrics(d: &mut Decoder<'_>, node: &Node) -> BTreeMap<String, MetricSpec> {
    let mut out = BTreeMap::new();
    let Node::Mapping(m) = node else {
        d.error(
            node,
            "`metrics` must be a mapping of metric id to query".to_string(),
        );
        return out;
    };
    if m.is_empty() {
        d.error(
            node,
            "`metrics` is empty (expected at least one metric)".to_string(),
        );
    }
    for (id, spec) in m.iter() {
        let id_s = id.as_str();
        let valid_id = id_s
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && id_s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && Expr::parse(id_s)
                .ok()
                .and_then(|e| e.as_metric().map(str::to_string))
                == Some(id_s.to_string());
        if !valid_id {
            d.error_at(
                Pos::of(id.span()),
                format!(
                    "invalid metric id {id_s:?} (expected a name like `errors`: letters, digits and '_', not a function name)"
                ),
            );
            continue;
        }
        if let Some(ms) = decode_metric(d, spec, id_s) {
            out.insert(id_s.to_string(), ms);
        }
    }
    out
}

pub(crate) fn decode_metric(d: &mut Decoder<'_>, node: &Node, id: &str) -> Option<MetricSpec> {
    let mut f = d.fields(node, &format!("metric `{id}`"))?;
    if let Some(q) = f.opt("query") {
        return decode_query(d, f, q, id);
    }
    let namespace = f
        .req(d, "namespace")
        .and_then(|n| d.str(n, "namespace").map(str::to_string));
    let metric_name = f
        .req(d, "metric")
        .and_then(|n| d.str(n, "metric").map(str::to_string));
    let dimensions = f
        .opt("dimensions")
        .map(|n| d.string_map(n, "dimensions"))
        .unwrap_or_default();
    let stat = f.req(d, "stat").and_then(|n| decode_stat(d, n));
    let period = match f.opt("period") {
        Some(n) => decode_period(d, n),
        None => Some(Duration::from_secs(60)),
    };
    let account = decode_reach(
        d,
        f.opt("account"),
        "account",
        valid_account,
        ACCOUNT_EXPECTED,
    );
    let region = decode_reach(d, f.opt("region"), "region", valid_region, REGION_EXPECTED);
    f.finish(d);
    Some(MetricSpec {
        namespace: namespace?,
        metric_name: metric_name?,
        dimensions,
        stat: stat?,
        period: period?,
        account: account?,
        region: region?,
        query: None,
    })
}

/// What an `account` must look like, for error messages.
pub const ACCOUNT_EXPECTED: &str =
    "expected a 12-digit AWS account id such as \"123456789012\", quoted";
/// What a `region` must look like, for error messages.
pub const REGION_EXPECTED: &str = "expected an AWS region name such as eu-west-1";

/// An optional metric `account` or `region`: `Some(None)` when absent,
/// `None` when malformed (reported).
fn decode_reach(
    d: &mut Decoder<'_>,
    n: Option<&Node>,
    key: &str,
    valid: fn(&str) -> bool,
    expected: &str,
) -> Option<Option<String>> {
    let Some(n) = n else { return Some(None) };
    let s = d.str(n, key)?;
    if valid(s) {
        Some(Some(s.to_string()))
    } else {
        d.error(n, format!("invalid `{key}` {s:?} ({expected})"));
        None
    }
}

/// A metric given as a Metrics Insights query (`{query: 'SELECT ...',
/// period: 1m}`): the query names the metric, namespace, labels and
/// function, so `namespace`, `metric`, `dimensions` and `stat` are refused;
/// the spec's `namespace`/`metric_name`/`stat` describe it (for display and
/// replay matching) and its `GROUP BY` labels are wildcard dimensions: one
/// instance per group.
fn decode_query(
    d: &mut Decoder<'_>,
    mut f: crate::decode::Fields<'_>,
    q: &Node,
    id: &str,
) -> Option<MetricSpec> {
    let mut ok = true;
    for other in ["namespace", "metric", "dimensions", "stat"] {
        if let Some(k) = f.key_node(other) {
            d.error_at(
                Pos::of(k.span()),
                format!(
                    "metric `{id}` has a `query`, so no `{other}` (the query names its metric, namespace, labels and function)"
                ),
            );
            let _ = f.opt(other);
            ok = false;
        }
    }
    for other in ["account", "region"] {
        if let Some(k) = f.key_node(other) {
            d.error_at(
                Pos::of(k.span()),
                format!(
                    "metric `{id}` has a `query`, so no `{other}` (a Metrics Insights query reads the evaluator's own account and region)"
                ),
            );
            let _ = f.opt(other);
            ok = false;
        }
    }
    let period = match f.opt("period") {
        Some(n) => decode_period(d, n).and_then(|p| {
            if p.as_secs() % 60 == 0 {
                Some(p)
            } else {
                d.error(
                    n,
                    format!(
                        "`period` {} of Metrics Insights query `{id}` is not a whole number of minutes (Metrics Insights has no high-resolution data; expected 1m, 5m, ...)",
                        format_duration(p)
                    ),
                );
                None
            }
        }),
        None => Some(Duration::from_secs(60)),
    };
    let src = d.str(q, "query").map(str::trim);
    f.finish(d);
    let src = src?;
    let parsed = match crate::insights::parse(src).and_then(|p| match p.grouped_order_error() {
        Some(e) => Err(e),
        None => Ok(p),
    }) {
        Ok(parsed) => parsed,
        Err(e) => {
            d.error(
                q,
                format!("invalid Metrics Insights `query` of metric `{id}`: {e}"),
            );
            return None;
        }
    };
    if !ok {
        return None;
    }
    Some(MetricSpec {
        namespace: parsed.namespace,
        metric_name: parsed.metric,
        dimensions: parsed
            .group_by
            .into_iter()
            .map(|l| (l, "*".to_string()))
            .collect(),
        stat: parsed.func.stat(),
        period: period?,
        account: None,
        region: None,
        query: Some(src.to_string()),
    })
}

/// A rule's Metrics Insights constraints: its lookback within the 3 hours
/// a query reads; a query grouped into instances beside no metric with
/// wildcards of its own (the instances come from one place).
fn check_queries(d: &mut Decoder<'_>, rule: &Rule, at: Pos) -> bool {
    let queries: Vec<&String> = rule
        .metrics
        .iter()
        .filter(|(_, m)| m.query.is_some())
        .map(|(id, _)| id)
        .collect();
    let Some(first) = queries.first() else {
        return true;
    };
    let lookback = rule.lookback();
    if lookback > crate::insights::MAX_HISTORY {
        d.error_at(
            at,
            format!(
                "rule {:?} looks back {} (`for`/`datapoints` or `keep_firing_for`, `min_volume.window`, the expression's history, `interval` and 5 periods of margin), beyond the 3h a Metrics Insights query (`{first}`) reads (expected a lookback of at most 3h)",
                rule.name,
                format_duration(lookback),
            ),
        );
        return false;
    }
    let grouped = rule
        .metrics
        .iter()
        .find(|(_, m)| m.query.is_some() && m.has_wildcard());
    let wild = rule
        .metrics
        .iter()
        .find(|(_, m)| m.query.is_none() && m.has_wildcard());
    if let (Some((q, qm)), Some((w, wm))) = (grouped, wild) {
        d.error_at(
            at,
            format!(
                "rule {:?}: metric `{q}` is a Metrics Insights query grouped by {} and metric `{w}` has wildcard dimensions ({}): the instances come from the query's groups or from ListMetrics, not both (expected fixed dimensions beside a grouped query, or queries for both)",
                rule.name,
                qm.wildcards().collect::<Vec<_>>().join(", "),
                wm.wildcards().collect::<Vec<_>>().join(", "),
            ),
        );
        return false;
    }
    true
}

/// A `labels` mapping: valid label names, none of `reserved` (which
/// `reserved_msg` explains). `None` when any is wrong (all are reported).
pub fn decode_labels(
    d: &mut Decoder<'_>,
    n: &Node,
    reserved: &[&str],
    reserved_msg: impl Fn(&str) -> String,
) -> Option<BTreeMap<String, String>> {
    let m = d.string_map(n, "labels");
    let mut good = check_count(d, n, "labels", MAX_LABELS);
    good &= check_lengths(
        d,
        n,
        "value of label",
        MAX_LABEL_VALUE_CHARS,
        ", as a CloudWatch dimension value",
    );
    for k in m.keys() {
        if !valid_label_name(k) {
            d.error(
                n,
                format!("invalid label name {k:?} (expected [A-Za-z_][A-Za-z0-9_]*)"),
            );
            good = false;
        } else if k.len() > MAX_LABEL_NAME_CHARS {
            d.error(
                n,
                format!(
                    "label name {:?}… is {} characters long (expected at most {MAX_LABEL_NAME_CHARS})",
                    k.chars().take(20).collect::<String>(),
                    k.len()
                ),
            );
            good = false;
        } else if reserved.contains(&k.as_str()) {
            d.error(n, reserved_msg(k));
            good = false;
        }
    }
    good.then_some(m)
}

/// A CloudWatch statistic: `Sum`, `Average`, `Minimum`, `Maximum`,
/// `SampleCount` or a percentile such as `p99`.
pub fn decode_stat(d: &mut Decoder<'_>, n: &Node) -> Option<Stat> {
    let s = d.str(n, "stat")?;
    Stat::parse(s).or_else(|| {
        d.error(
            n,
            format!(
                "invalid `stat` {s:?} (expected {})",
                crate::model::EXPECTED_STATS
            ),
        );
        None
    })
}

/// A CloudWatch period: 1s, 5s, 10s, 30s or a multiple of 1m up to
/// [`crate::model::MAX_PERIOD`] (1d).
pub fn decode_period(d: &mut Decoder<'_>, n: &Node) -> Option<Duration> {
    let p = d.duration(n, "period")?;
    let s = p.as_secs();
    if p > crate::model::MAX_PERIOD {
        d.error(
            n,
            format!(
                "`period` {} is too long (expected at most {})",
                format_duration(p),
                format_duration(crate::model::MAX_PERIOD)
            ),
        );
        return None;
    }
    let ok = p.subsec_nanos() == 0 && (matches!(s, 1 | 5 | 10 | 30) || (s >= 60 && s % 60 == 0));
    if ok {
        Some(p)
    } else {
        d.error(
            n,
            format!(
                "invalid `period` {} (CloudWatch periods are 1s, 5s, 10s, 30s or a multiple of 1m)",
                format_duration(p)
            ),
        );
        None
    }
}

fn decode_condition(d: &mut Decoder<'_>, node: &Node) -> Option<Condition> {
    let mut f = d.fields(node, "condition")?;
    let op = f.req(d, "op").and_then(|n| {
        let s = d.str(n, "op")?;
        Op::parse(s).or_else(|| {
            d.error(
                n,
                format!("invalid `op` {s:?} (expected one of: >, >=, <, <=)"),
            );
            None
        })
    });
    let threshold = f.req(d, "threshold").and_then(|n| d.number(n, "threshold"));
    let recovery_node = f.opt("recovery");
    let recovery = match recovery_node {
        Some(n) => d.number(n, "recovery").map(Some),
        None => Some(None),
    };
    f.finish(d);
    let (op, threshold, recovery) = (op?, threshold?, recovery?);
    if let (Some(r), Some(n)) = (recovery, recovery_node) {
        let wrong_side = if op.is_upper() {
            r > threshold
        } else {
            r < threshold
        };
        if wrong_side {
            d.error(
                n,
                format!(
                    "`recovery` {r} is on the wrong side of the threshold {threshold} (for `{op}` expected a value {} the threshold)",
                    if op.is_upper() { "at or below" } else { "at or above" }
                ),
            );
            return None;
        }
    }
    Some(Condition {
        op,
        threshold,
        recovery,
    })
}

fn decode_datapoints(d: &mut Decoder<'_>, node: &Node) -> Option<Pending> {
    let mut f = d.fields(node, "datapoints")?;
    let m = f.req(d, "breaching").and_then(|n| d.uint(n, "breaching"));
    let n_node = f.req(d, "out_of");
    let n = n_node.and_then(|n| d.uint(n, "out_of"));
    f.finish(d);
    let (m, n) = (m?, n?);
    if m == 0 || n == 0 || m > n || n > 1440 {
        if let Some(nn) = n_node {
            d.error(
                nn,
                format!(
                    "invalid `datapoints` {m} out of {n} (expected 1 <= breaching <= out_of <= 1440)"
                ),
            );
        }
        return None;
    }
    Some(Pending::MofN {
        m: u32::try_from(m).ok()?,
        n: u32::try_from(n).ok()?,
    })
}

fn decode_guard(
    d: &mut Decoder<'_>,
    node: &Node,
    metrics: &BTreeMap<String, MetricSpec>,
) -> Option<VolumeGuard> {
    let mut f = d.fields(node, "min_volume")?;
    let metric = f.req(d, "metric").and_then(|n| {
        let s = d.str(n, "metric")?;
        if !metrics.is_empty() && !metrics.contains_key(s) {
            let defined: Vec<&str> = metrics.keys().map(String::as_str).collect();
            d.error(
                n,
                format!(
                    "`min_volume.metric` names undefined metric `{s}` (defined: {})",
                    defined.join(", ")
                ),
            );
            return None;
        }
        Some(s.to_string())
    });
    let at_least = f.req(d, "at_least").and_then(|n| d.number(n, "at_least"));
    let window = f.req(d, "window").and_then(|n| d.duration(n, "window"));
    f.finish(d);
    Some(VolumeGuard {
        metric: metric?,
        at_least: at_least?,
        window: window?,
    })
}

/// Names used by every rule's labels, for lint and routing checks.
pub fn label_names(set: &RuleSet) -> BTreeSet<String> {
    set.rules
        .iter()
        .flat_map(|r| r.labels.keys().cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Labels;

    const GOOD: &str = r#"
rules:
  - name: PaymentsErrorRate
    metrics:
      errors: {namespace: Shop/Payments, metric: Errors, dimensions: {Service: payments}, stat: Sum, period: 1m}
      requests: {namespace: Shop/Payments, metric: Requests, dimensions: {Service: payments}, stat: Sum}
    expression: 100 * FILL(errors, 0) / requests
    unit: percent
    condition: {op: ">", threshold: 1, recovery: 0.5}
    for: 5m
    keep_firing_for: 2m
    missing_data: ok
    min_volume: {metric: requests, at_least: 100, window: 5m}
    labels: {team: payments, severity: page}
    annotations:
      summary: "Payments error rate {{ value }}"
"#;

    #[test]
    fn decodes_a_complete_rule() {
        let set = parse_rules("r.yaml", GOOD).unwrap();
        let r = &set.rules[0];
        assert_eq!(r.name, "PaymentsErrorRate");
        assert_eq!(r.origin.to_string(), "r.yaml:3:11");
        assert_eq!(r.pending, Pending::For(Duration::from_secs(300)));
        assert_eq!(r.condition.recovery, Some(0.5));
        assert_eq!(r.metrics["requests"].period, Duration::from_secs(60));
        assert_eq!(r.missing_data, MissingData::Ok);
        assert_eq!(r.min_volume.as_ref().unwrap().at_least, 100.0);
        assert_eq!(r.interval, Duration::from_secs(60));
    }

    fn errors(text: &str) -> Vec<String> {
        match parse_rules("bad.yaml", text) {
            Ok(_) => vec![],
            Err(e) => e.0.errors().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn three_mistakes_in_one_rule_are_all_reported() {
        let text = r#"rules:
  - name: Latency
    metrics:
      p99: {namespace: Shop, metric: Latency, stat: p99, period: 1m}
    expression: p99 + lat
    condition: {op: ">", threshold: .inf}
    for: 5x
"#;
        assert_eq!(
            errors(text),
            vec![
                "bad.yaml:5:17: error: expression \"p99 + lat\" uses undefined metric `lat` (defined: p99)",
                "bad.yaml:6:37: error: `threshold` must be a finite number, found \".inf\"",
                "bad.yaml:7:10: error: invalid duration \"5x\" for `for` (expected a duration such as 30s, 5m, 1h or 1h30m)",
            ]
        );
    }

    #[test]
    fn cross_checks() {
        let text = r#"rules:
  - name: A
    metrics: {m: {namespace: N, metric: M, stat: Sum, period: 5m}}
    expression: m
    condition: {op: ">", threshold: 1, recovery: 2}
    for: 1m
  - name: A
    metrics: {m: {namespace: N, metric: M, stat: p1000}}
    expression: m
    condition: {op: "=>", threshold: 1}
    datapoints: {breaching: 4, out_of: 3}
    colour: red
"#;
        assert_eq!(
            errors(text),
            vec![
                "bad.yaml:5:50: error: `recovery` 2 is on the wrong side of the threshold 1 (for `>` expected a value at or below the threshold)",
                "bad.yaml:6:10: error: `for` 1m is shorter than the metric period 5m (expected 0 or at least one period)",
                "bad.yaml:8:50: error: invalid `stat` \"p1000\" (expected Sum, Average, Minimum, Maximum, SampleCount, a percentile such as p99, or an extended statistic: PR(:300), PR(100:300), TC/TM/TS/WM(10%:90%) or (10:90), tm99, tc90, ts90, wm99, IQM)",
                "bad.yaml:10:21: error: invalid `op` \"=>\" (expected one of: >, >=, <, <=)",
                "bad.yaml:11:40: error: invalid `datapoints` 4 out of 3 (expected 1 <= breaching <= out_of <= 1440)",
                "bad.yaml:12:5: error: unknown field `colour` in rule (expected one of: annotations, arrival_grace, condition, datapoints, evaluation_delay, expression, for, interval, keep_firing_for, labels, metrics, min_volume, missing_data, name, unit)",
            ]
        );
    }

    #[test]
    fn account_and_region_are_checked() {
        let text = r#"rules:
  - name: Remote
    metrics:
      a: {namespace: N, metric: M, stat: Sum, account: "123456789012", region: eu-west-1}
      b: {namespace: N, metric: M, stat: Sum, account: 12345, region: eu_west_1}
      c: {namespace: N, metric: M, stat: Sum, account: "12345678901x", region: [eu-west-1]}
    expression: a
    condition: {op: ">", threshold: 1}
"#;
        assert_eq!(
            errors(text),
            vec![
                "bad.yaml:5:56: error: invalid `account` \"12345\" (expected a 12-digit AWS account id such as \"123456789012\", quoted)",
                "bad.yaml:5:71: error: invalid `region` \"eu_west_1\" (expected an AWS region name such as eu-west-1)",
                "bad.yaml:6:56: error: invalid `account` \"12345678901x\" (expected a 12-digit AWS account id such as \"123456789012\", quoted)",
                "bad.yaml:6:80: error: `region` must be a string, found a list",
            ]
        );
        let good = "rules:\n  - name: Remote\n    metrics:\n      a: {namespace: N, metric: M, stat: Sum, account: \"012345678901\", region: us-gov-west-1}\n      b: {namespace: N, metric: M, stat: Sum}\n    expression: a + b\n    condition: {op: \">\", threshold: 1}\n";
        let set = parse_rules("ok.yaml", good).unwrap();
        let r = &set.rules[0];
        assert_eq!(r.metrics["a"].account.as_deref(), Some("012345678901"));
        assert_eq!(r.metrics["a"].region.as_deref(), Some("us-gov-west-1"));
        assert_eq!(r.metrics["b"].account, None);
        assert_eq!(
            r.reach_labels(),
            Labels::from([
                ("account".to_string(), "012345678901".to_string()),
                ("region".to_string(), "us-gov-west-1".to_string()),
            ])
        );
        // A rule on local metrics gets no label.
        assert!(
            parse_rules("g.yaml", GOOD).unwrap().rules[0]
                .reach_labels()
                .is_empty()
        );
        // Setting the label by hand beside a metric's account is an error.
        let clash = good.replace(
            "    condition:",
            "    labels: {account: prod}\n    condition:",
        );
        assert_eq!(
            errors(&clash),
            vec![
                "bad.yaml:2:11: error: rule \"Remote\": label \"account\" is \"prod\" but its metrics' `account` sets it to \"012345678901\" (remove the label: firebell sets it)"
            ]
        );
        // So is a wildcard dimension of the same name (its values would
        // overwrite the label); without `region:` it is a plain dimension.
        let dims = |extra: &str| {
            format!(
                "rules:\n  - name: Remote\n    metrics:\n      a: {{namespace: N, metric: M, stat: Sum, dimensions: {{region: \"*\", account: \"*\"}}{extra}}}\n    expression: a\n    condition: {{op: \">\", threshold: 1}}\n"
            )
        };
        assert_eq!(
            errors(&dims(", region: eu-west-1")),
            vec![
                "bad.yaml:2:11: error: rule \"Remote\": wildcard dimension \"region\" would overwrite the label \"region\" its metrics' `region` sets to \"eu-west-1\" (expected a rule on another account's or region's metrics to have no wildcard dimension named \"region\")"
            ]
        );
        assert_eq!(
            errors(&dims(", account: \"012345678901\"")),
            vec![
                "bad.yaml:2:11: error: rule \"Remote\": wildcard dimension \"account\" would overwrite the label \"account\" its metrics' `account` sets to \"012345678901\" (expected a rule on another account's or region's metrics to have no wildcard dimension named \"account\")"
            ]
        );
        assert!(errors(&dims("")).is_empty());
    }

    #[test]
    fn region_and_account_shapes() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "ap-southeast-4",
            "us-gov-west-1",
            "cn-north-1",
            "il-central-1",
            "ap-southeast-5",
            "eusc-de-east-1",
            "us-isob-east-1",
        ] {
            assert!(valid_region(ok), "{ok}");
        }
        for bad in [
            "",
            "us-east",
            "US-EAST-1",
            "us-east-1a",
            "useast1",
            "us--1",
            "u-east-1",
            "us-east-123",
            "us-a-b-c-1",
            "europe-west-1",
            "us-1",
        ] {
            assert!(!valid_region(bad), "{bad}");
        }
        assert!(valid_account("000000000000"));
        assert!(!valid_account("1234567890123"));
        assert!(!valid_account("１２３４５６７８９０１２"));
    }

    #[test]
    fn metrics_of_one_rule_share_a_period() {
        let text = r#"rules:
  - name: Mixed
    metrics:
      errors: {namespace: N, metric: E, stat: Sum, period: 1m}
      requests: {namespace: N, metric: R, stat: Sum, period: 5m}
    expression: errors / requests
    condition: {op: ">", threshold: 1}
"#;
        assert_eq!(
            errors(text),
            vec![
                "bad.yaml:4:13: error: all metrics of a rule must have the same period (found errors: 1m, requests: 5m)"
            ]
        );
    }

    #[test]
    fn wildcards_need_one_metric_with_all_of_them() {
        let text = "rules:\n  - name: Mixed\n    metrics:\n      errors: {namespace: N, metric: E, dimensions: {Service: \"*\"}, stat: Sum, period: 1m}\n      requests: {namespace: N, metric: R, dimensions: {Instance: \"*\"}, stat: Sum, period: 1m}\n    expression: errors / requests\n    condition: {op: \">\", threshold: 1}\n";
        let err = parse_rules("bad.yaml", text).unwrap_err();
        let errors: Vec<String> = err.0.errors().map(|d| d.to_string()).collect();
        assert_eq!(
            errors,
            vec![
                "bad.yaml:2:11: error: rule \"Mixed\": no metric has every wildcard dimension (Instance, Service; `errors` has Service, `requests` has Instance): one metric must have them all, its reported dimension values list the instances"
            ]
        );
        // A metric with a subset of the wildcards is fine next to one with all.
        let ok = text.replace("{Instance: \"*\"}", "{Instance: \"*\", Service: \"*\"}");
        assert!(parse_rules("ok.yaml", &ok).is_ok());
    }

    #[test]
    fn the_self_monitoring_alertname_is_reserved() {
        let text = "rules:\n  - name: FirebellUnhealthy\n    metrics: {m: {namespace: N, metric: M, stat: Sum, period: 1m}}\n    expression: m\n    condition: {op: \">\", threshold: 1}\n";
        let err = parse_rules("bad.yaml", text).unwrap_err();
        let errors: Vec<String> = err.0.errors().map(|d| d.to_string()).collect();
        assert_eq!(
            errors,
            vec![
                "bad.yaml:2:11: error: rule name \"FirebellUnhealthy\" is reserved: firebell's own alerts use it (see `self_monitoring`)"
            ]
        );
    }

    #[test]
    fn duplicate_names_point_at_the_first() {
        let text = r#"rules:
  - name: A
    metrics: {m: {namespace: N, metric: M, stat: Sum}}
    expression: m
    condition: {op: ">", threshold: 1}
  - name: A
    metrics: {m: {namespace: N, metric: M, stat: Sum}}
    expression: m
    condition: {op: ">", threshold: 1}
"#;
        assert_eq!(
            errors(text),
            vec![
                "bad.yaml:6:11: error: duplicate rule name \"A\" (first defined at bad.yaml:2:11)"
            ]
        );
    }

    #[test]
    fn label_values_and_annotations_are_bounded() {
        let text = format!(
            "rules:\n  - name: B\n    metrics: {{m: {{namespace: N, metric: M, stat: Sum}}}}\n    expression: m\n    condition: {{op: \">\", threshold: 1}}\n    labels: {{ok: \"{}\", team: \"{}\"}}\n    annotations:\n      summary: \"{}\"\n      runbook: fine\n",
            "v".repeat(1024),
            "x".repeat(1025),
            "y".repeat(4097)
        );
        assert_eq!(
            errors(&text),
            vec![
                "bad.yaml:6:1052: error: value of label \"team\" is 1025 characters long (expected at most 1024, as a CloudWatch dimension value)",
                "bad.yaml:8:16: error: annotation \"summary\" is 4097 characters long (expected at most 4096)",
            ]
        );
    }

    #[test]
    fn missing_fields_and_bad_labels() {
        let text = r#"rules:
  - name: B
    metrics: {m: {namespace: N, stat: Sum}}
    expression: FILL(m)
    labels: {alertname: x, "bad-label": y}
"#;
        assert_eq!(
            errors(text),
            vec![
                "bad.yaml:2:5: error: rule is missing required field `condition`",
                "bad.yaml:3:19: error: metric `m` is missing required field `metric`",
                "bad.yaml:4:17: error: invalid expression \"FILL(m)\": FILL takes 2 arguments, got 1 at offset 0",
                "bad.yaml:5:13: error: label \"alertname\" is reserved: firebell sets it",
                "bad.yaml:5:13: error: invalid label name \"bad-label\" (expected [A-Za-z_][A-Za-z0-9_]*)",
            ]
        );
    }
}

#[cfg(test)]
mod query_tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match parse_rules("bad.yaml", text) {
            Ok(_) => vec![],
            Err(e) => e.0.errors().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn a_query_metric_is_described_by_its_query_and_grouped_into_wildcards() {
        let text = r#"rules:
  - name: HotInstances
    metrics:
      cpu: {query: 'SELECT AVG(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId) GROUP BY InstanceId', period: 1m}
    expression: cpu
    condition: {op: ">", threshold: 90}
"#;
        let rules = parse_rules("ok.yaml", text).unwrap();
        let cpu = &rules.rules[0].metrics["cpu"];
        assert_eq!(cpu.namespace, "AWS/EC2");
        assert_eq!(cpu.metric_name, "CPUUtilization");
        assert_eq!(cpu.stat, Stat::Average);
        assert_eq!(
            cpu.query.as_deref(),
            Some(
                r#"SELECT AVG(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId) GROUP BY InstanceId"#
            )
        );
        assert_eq!(
            cpu.dimensions,
            BTreeMap::from([("InstanceId".to_string(), "*".to_string())])
        );
        assert_eq!(
            rules.rules[0].wildcard_driver().map(|m| m.query.is_some()),
            Some(true)
        );
        // A query rule stays on polling.
        assert_eq!(
            crate::sentinel::for_rule(&rules.rules[0], "fb-").err(),
            Some(crate::sentinel::Polling::Query)
        );
        assert_eq!(
            crate::sentinel::Polling::Query.to_string(),
            "a Metrics Insights query (its alarms are another kind, at most 200 a region)"
        );
        // With fixed-dimension metrics beside it: allowed.
        let mixed = r#"rules:
  - name: Mixed
    metrics:
      cpu: {query: 'SELECT MAX(CPUUtilization) FROM "AWS/EC2" GROUP BY InstanceId LIMIT 20'}
      budget: {namespace: Shop, metric: CpuBudget, stat: Maximum}
    expression: cpu / budget
    condition: {op: ">", threshold: 1}
"#;
        assert!(errors(mixed).is_empty(), "{:?}", errors(mixed));
    }

    #[test]
    fn query_mistakes_are_reported_with_their_position() {
        let text = r#"rules:
  - name: Bad
    metrics:
      a: {query: 'SELECT MEDIAN(Latency) FROM Shop'}
      b: {query: 'SELECT SUM(Errors) FROM Shop', namespace: Shop, stat: Sum, period: 30s}
      c: {query: 'SELECT SUM(Errors) FROM Shop GROUP BY Service LIMIT 1000'}
    expression: a + b + c
    condition: {op: ">", threshold: 1}
"#;
        assert_eq!(
            errors(text),
            vec![
                "bad.yaml:4:18: error: invalid Metrics Insights `query` of metric `a`: at character 8: expected a function: AVG, COUNT, MAX, MIN or SUM, found `MEDIAN`",
                "bad.yaml:5:50: error: metric `b` has a `query`, so no `namespace` (the query names its metric, namespace, labels and function)",
                "bad.yaml:5:67: error: metric `b` has a `query`, so no `stat` (the query names its metric, namespace, labels and function)",
                "bad.yaml:5:86: error: `period` 30s of Metrics Insights query `b` is not a whole number of minutes (Metrics Insights has no high-resolution data; expected 1m, 5m, ...)",
                "bad.yaml:6:18: error: invalid Metrics Insights `query` of metric `c`: at character 53: LIMIT must be a whole number from 1 to 500 (a query returns at most 500 series)",
            ]
        );
    }

    #[test]
    fn a_grouped_query_takes_no_order_by() {
        let text = r#"rules:
  - name: Top
    metrics:
      a: {query: 'SELECT MAX(Latency) FROM Shop GROUP BY Service ORDER BY MAX() DESC LIMIT 5'}
    expression: a
    condition: {op: ">", threshold: 1}
"#;
        assert_eq!(
            errors(text),
            vec![
                "bad.yaml:4:18: error: invalid Metrics Insights `query` of metric `a`: at character 48: ORDER BY in a grouped query picks its top groups anew over each time range (firebell discovers the groups over the last 3h and fetches the rule's lookback), so the instances would not be the series judged (expected no ORDER BY: groups then come in label order, and LIMIT keeps the first n)",
            ]
        );
        let limited = text.replace(" ORDER BY MAX() DESC", "");
        assert!(errors(&limited).is_empty(), "{:?}", errors(&limited));
    }

    #[test]
    fn a_query_names_no_account_or_region() {
        let text = r#"rules:
  - name: Far
    metrics:
      a: {query: 'SELECT SUM(Errors) FROM Shop', account: "111122223333", region: eu-west-1}
    expression: a
    condition: {op: ">", threshold: 1}
"#;
        assert_eq!(
            errors(text),
            vec![
                "bad.yaml:4:50: error: metric `a` has a `query`, so no `account` (a Metrics Insights query reads the evaluator's own account and region)",
                "bad.yaml:4:75: error: metric `a` has a `query`, so no `region` (a Metrics Insights query reads the evaluator's own account and region)",
            ]
        );
    }

    #[test]
    fn a_query_rule_must_fit_three_hours_and_take_its_instances_from_one_place() {
        let long = r#"rules:
  - name: Slow
    metrics:
      cpu: {query: 'SELECT AVG(CPUUtilization) FROM "AWS/EC2"', period: 5m}
    expression: cpu
    condition: {op: ">", threshold: 90}
    for: 3h
"#;
        assert_eq!(
            errors(long),
            vec![
                "bad.yaml:2:11: error: rule \"Slow\" looks back 3h26m (`for`/`datapoints` or `keep_firing_for`, `min_volume.window`, the expression's history, `interval` and 5 periods of margin), beyond the 3h a Metrics Insights query (`cpu`) reads (expected a lookback of at most 3h)",
            ]
        );
        let both = r#"rules:
  - name: Both
    metrics:
      cpu: {query: 'SELECT AVG(CPUUtilization) FROM "AWS/EC2" GROUP BY InstanceId'}
      credits: {namespace: AWS/EC2, metric: CPUCreditBalance, dimensions: {InstanceId: "*"}, stat: Minimum}
    expression: cpu / credits
    condition: {op: ">", threshold: 1}
"#;
        assert_eq!(
            errors(both),
            vec![
                "bad.yaml:2:11: error: rule \"Both\": metric `cpu` is a Metrics Insights query grouped by InstanceId and metric `credits` has wildcard dimensions (InstanceId): the instances come from the query's groups or from ListMetrics, not both (expected fixed dimensions beside a grouped query, or queries for both)",
            ]
        );
    }
}
