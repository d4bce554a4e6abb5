//! `firebell import cloudwatch-alarms`, the pure part: CloudWatch alarm
//! definitions ([`AlarmDefinition`], as `DescribeAlarms` returns them) in,
//! firebell rules YAML and a routing config out, plus what could not be
//! translated and why. The AWS reader (`firebell_aws::alarm_definitions`) fills the
//! definitions; the CLI writes the files and validates them
//! ([`crate::validate::check`]).
//!
//! | CloudWatch | firebell |
//! |---|---|
//! | metric alarm: Namespace, MetricName, Dimensions, Period | one metric `m` |
//! | Statistic / ExtendedStatistic | `stat` (when [`Stat::parse`] reads it) |
//! | Metrics (metric math): MetricStat queries, the ReturnData expression | metrics by id; the expression, other expressions inlined, `MIN([a, b])` as `MIN(a, b)`, kept only when it means the same ([`Expr::to_metric_math`] translates it back) |
//! | Threshold, ComparisonOperator | `condition` |
//! | DatapointsToAlarm of EvaluationPeriods | `datapoints: {breaching: M, out_of: N}` (N > 1) |
//! | TreatMissingData breaching / notBreaching / ignore | `missing_data` breaching / ok / keep |
//! | TreatMissingData missing (or none) | `nodata` when InsufficientDataActions notify an SNS topic, else `ok` |
//! | AlarmActions (SNS topics) | a receiver of those topics; a route `alertname="<rule>"` to it |
//! | OKActions | the receiver's `send_resolved` |
//! | AlarmDescription | `annotations.description`; the alarm name is the label `alarm` and the title (both literal text, [`literal`]) |
//! | composite `ALARM(a) AND NOT ALARM(b) ...` (a without actions) | a routed to the composite's receiver; inhibit rules b -> a |
//!
//! Not translated, with the reason: anomaly-detection bands
//! (ThresholdMetricId, the band operators), statistics firebell does not
//! read, expressions with no firebell equivalent (SEARCH, METRICS(),
//! RUNNING_SUM, ...) or a different meaning (`MIN(m)` of one series),
//! alarms that name no metric, `Unit` filters, other composite rules,
//! composites with an ActionsSuppressor or over a target another composite
//! routes, rules the config loader rejects on their own ([`rejected`]),
//! alarms that notify no one in CloudWatch (unless a translated composite
//! inhibits with them). Skipped: firebell's own sentinel alarms (the
//! sentinel prefix or the `firebell:managed` tag).

use std::collections::{BTreeMap, BTreeSet};

use firebell_core::expr::Expr;
use firebell_core::model::Stat;

pub use firebell_core::alarm_definition::{
    AlarmDefinition, AlarmKind, AlarmMetric, AlarmQuery, MetricAlarm,
};

/// What to skip.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Alarms named with this prefix are firebell's sentinels.
    pub sentinel_prefix: String,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            sentinel_prefix: firebell_core::sentinel::DEFAULT_PREFIX.to_string(),
        }
    }
}

/// One alarm and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub alarm: String,
    /// The rule it became (translated), else `None`.
    pub rule: Option<String>,
    /// Why it was not translated or skipped, or what differs (one line each).
    pub notes: Vec<String>,
}

/// The result of [`translate`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Imported {
    /// `rules.yaml`.
    pub rules_yaml: String,
    /// `routing.yaml`.
    pub routing_yaml: String,
    /// Alarms that became rules (with what differs, if anything), and
    /// composite alarms that became inhibitions (`rule` None, notes say how).
    pub translated: Vec<Outcome>,
    /// Alarms that were not translated, with the reason.
    pub not_translated: Vec<Outcome>,
    /// firebell's own sentinel alarms.
    pub skipped: Vec<Outcome>,
    /// The receivers of `routing_yaml`, by name (none: nothing to route to).
    pub receivers: Vec<String>,
}

impl Imported {
    /// The `not-translated.txt` text: one `alarm: reason` line per reason.
    pub fn not_translated_text(&self) -> String {
        let mut out = String::new();
        for o in &self.not_translated {
            for n in &o.notes {
                out.push_str(&format!("{}: {n}\n", o.alarm));
            }
        }
        out
    }
}

/// The longest `datapoints.out_of` firebell accepts.
const MAX_OUT_OF: u32 = 1440;

/// The label holding the CloudWatch alarm's name.
pub const ALARM_LABEL: &str = "alarm";

/// A string as a YAML (JSON-compatible) double-quoted scalar.
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

/// A number as YAML.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn is_sns(arn: &str) -> bool {
    arn.starts_with("arn:aws:sns:")
        || arn.starts_with("arn:aws-cn:sns:")
        || arn.starts_with("arn:aws-us-gov:sns:")
}

/// A rule name from an alarm name: letters, digits, `_`, `-`, `.` kept,
/// anything else `-`, at most 128 characters.
fn rule_name(alarm: &str) -> String {
    let mut s: String = alarm
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.truncate(128);
    if s.is_empty() { "alarm".to_string() } else { s }
}

/// `Service: api` as YAML flow mapping entries.
fn dims_yaml(d: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = d
        .iter()
        .map(|(k, v)| format!("{}: {}", q(k), q(v)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn period_text(secs: u32) -> String {
    firebell_core::decode::format_duration(std::time::Duration::from_secs(u64::from(secs)))
}

/// One `metrics:` entry, or why the metric cannot be read.
fn metric_yaml(id: &str, m: &AlarmMetric) -> Result<String, String> {
    if Stat::parse(&m.stat).is_none() {
        return Err(format!(
            "statistic {:?} of metric {}/{} is not one firebell reads ({})",
            m.stat,
            m.namespace,
            m.metric_name,
            firebell_core::model::EXPECTED_STATS
        ));
    }
    if m.period == 0 {
        return Err(format!(
            "metric {}/{} has no period",
            m.namespace, m.metric_name
        ));
    }
    if let Some(unit) = &m.unit {
        return Err(format!(
            "metric {}/{} is read only in unit {unit:?} (Unit): firebell reads a metric's datapoints of every unit",
            m.namespace, m.metric_name
        ));
    }
    let account = m
        .account
        .as_deref()
        .map(|a| format!(", account: {}", q(a)))
        .unwrap_or_default();
    Ok(format!(
        "      {id}: {{namespace: {}, metric: {}, dimensions: {}, stat: {}, period: {}{account}}}\n",
        q(&m.namespace),
        q(&m.metric_name),
        dims_yaml(&m.dimensions),
        q(&m.stat),
        period_text(m.period)
    ))
}

fn op_of(comparison: &str) -> Result<&'static str, String> {
    Ok(match comparison {
        "GreaterThanThreshold" => ">",
        "GreaterThanOrEqualToThreshold" => ">=",
        "LessThanThreshold" => "<",
        "LessThanOrEqualToThreshold" => "<=",
        "LessThanLowerOrGreaterThanUpperThreshold"
        | "LessThanLowerThreshold"
        | "GreaterThanUpperThreshold" => {
            return Err(format!(
                "anomaly-detection band ({comparison}): firebell has no anomaly detection"
            ));
        }
        other => return Err(format!("unknown comparison operator {other:?}")),
    })
}

/// Replaces every identifier of `text` found in `defs` by `(its text)`,
/// recursively (at most `depth` levels).
fn inline(text: &str, defs: &BTreeMap<&str, &str>, depth: u32) -> Result<String, String> {
    if depth == 0 {
        return Err("expressions refer to each other too deeply".to_string());
    }
    let mut out = String::new();
    let mut chars = text.char_indices().peekable();
    let mut in_string = false;
    while let Some((i, c)) = chars.next() {
        if c == '"' {
            in_string = !in_string;
            out.push(c);
            continue;
        }
        if !in_string && (c.is_ascii_alphabetic() || c == '_') {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if d.is_ascii_alphanumeric() || d == '_' {
                    end = j + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let word = &text[i..end];
            match defs.get(word) {
                Some(def) => {
                    out.push('(');
                    out.push_str(&inline(def, defs, depth - 1)?);
                    out.push(')');
                }
                None => out.push_str(word),
            }
            continue;
        }
        out.push(c);
    }
    Ok(out)
}

/// A CloudWatch metric-math expression as a firebell expression with the
/// same meaning, or why not.
fn translate_expression(text: &str) -> Result<String, String> {
    // `MIN([a, b])`: firebell's MIN/MAX/AVG/SUM take the series as arguments.
    let plain = text.replace(['[', ']'], "");
    let expr = Expr::parse(&plain)
        .map_err(|e| format!("expression {text:?} has no firebell equivalent: {e}"))?;
    if expr.to_metric_math().is_none() {
        return Err(format!(
            "expression {text:?} means something else in firebell (an aggregate of one series, a function without a CloudWatch twin)"
        ));
    }
    Ok(plain)
}

/// A translated metric alarm: the rule's `metrics:` lines and expression.
struct Metrics {
    lines: String,
    expression: String,
}

fn alarm_metrics(a: &MetricAlarm) -> Result<Metrics, String> {
    if let Some(id) = &a.threshold_metric_id {
        return Err(format!(
            "anomaly-detection band (threshold from {id:?}): firebell has no anomaly detection"
        ));
    }
    if let Some(m) = &a.metric {
        return Ok(Metrics {
            lines: metric_yaml("m", m)?,
            expression: "m".to_string(),
        });
    }
    if a.queries.is_empty() {
        return Err("the alarm names no metric".to_string());
    }
    let returned: Vec<&AlarmQuery> = a.queries.iter().filter(|q| q.return_data).collect();
    let [ret] = returned.as_slice() else {
        return Err(format!(
            "{} queries return data (an alarm's metric math returns exactly one)",
            returned.len()
        ));
    };
    let defs: BTreeMap<&str, &str> = a
        .queries
        .iter()
        .filter_map(|q| q.expression.as_deref().map(|e| (q.id.as_str(), e)))
        .collect();
    let expression = match (&ret.expression, &ret.metric) {
        (Some(e), _) => {
            let inlined = inline(e, &defs, 10)?;
            if inlined.contains("ANOMALY_DETECTION_BAND") {
                return Err("anomaly-detection band: firebell has no anomaly detection".to_string());
            }
            translate_expression(&inlined).map_err(|why| {
                if inlined == *e {
                    why
                } else {
                    format!("{why} (inlined from {e:?})")
                }
            })?
        }
        (None, Some(_)) => ret.id.clone(),
        (None, None) => {
            return Err(format!(
                "query {:?} has neither a metric nor an expression",
                ret.id
            ));
        }
    };
    let used = Expr::parse(&expression)
        .map(|e| e.metric_ids())
        .unwrap_or_default();
    let mut lines = String::new();
    for query in &a.queries {
        if let Some(m) = &query.metric
            && used.contains(&query.id)
        {
            lines.push_str(&metric_yaml(&query.id, m)?);
        }
    }
    if let Some(missing) = used
        .iter()
        .find(|id| !a.queries.iter().any(|q| &q.id == *id && q.metric.is_some()))
    {
        return Err(format!(
            "expression {expression:?} reads {missing:?}, which is no metric of the alarm"
        ));
    }
    Ok(Metrics { lines, expression })
}

/// The receiver an alarm's actions make: its SNS topics and whether OK
/// notices go out.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ReceiverKey {
    topics: Vec<String>,
    send_resolved: bool,
}

fn sns_topics(actions: &[String]) -> Vec<String> {
    let set: BTreeSet<&String> = actions.iter().filter(|a| is_sns(a)).collect();
    set.into_iter().cloned().collect()
}

fn topic_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// A translated rule and its routing.
struct RuleOut {
    alarm: String,
    rule: String,
    yaml: String,
    receiver: Option<ReceiverKey>,
    /// Where the route's receiver came from, for the comment.
    via: String,
    /// Why the alarm notifies no one in CloudWatch, if it does not: such a
    /// rule is kept only when a composite routes or inhibits with it.
    silent: Option<String>,
}

/// `text` as a firebell annotation template that renders as `text`
/// itself: every `{` opening a Jinja delimiter (`{{`, `{%`, `{#`) is
/// written as the expression `{{ "{" }}`, and a trailing newline (which
/// the template engine drops) is kept by an empty expression after it.
fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '{' && matches!(chars.peek(), Some('{' | '%' | '#')) {
            out.push_str("{{ \"{\" }}");
        } else {
            out.push(c);
        }
    }
    if out.ends_with('\n') {
        out.push_str("{{ \"\" }}");
    }
    out
}

/// What firebell's config loader says against one rule on its own (its
/// errors, `; `-joined), the checks `firebell validate` makes: reserved
/// names, metrics of different periods, lookback, templates, ...
fn rejected(rule_yaml: &str) -> Option<String> {
    let mut diags = firebell_core::diag::Diagnostics::new();
    let texts = [("rules.yaml".to_string(), format!("rules:\n{rule_yaml}"))];
    firebell_engine::load_texts(&texts, &mut diags, Vec::new());
    let errors: Vec<String> = diags.errors().map(|e| e.message.clone()).collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

/// Why an alarm with these actions notifies no one when it goes to ALARM,
/// or `None` when it notifies an SNS topic.
fn notifies_no_one(a: &AlarmDefinition, alarm_topics: &[String]) -> Option<String> {
    if !alarm_topics.is_empty() {
        return None;
    }
    Some(if !a.actions_enabled {
        "its actions are disabled (ActionsEnabled false)".to_string()
    } else if a.alarm_actions.is_empty() {
        if sns_topics(&a.ok_actions).is_empty()
            && sns_topics(&a.insufficient_data_actions).is_empty()
        {
            "it has no AlarmActions".to_string()
        } else {
            "it has no AlarmActions, only OK or INSUFFICIENT_DATA actions".to_string()
        }
    } else {
        format!(
            "its AlarmActions are no SNS topics ({})",
            a.alarm_actions.join(", ")
        )
    })
}

/// Translates `alarms` (see the module docs).
pub fn translate(alarms: &[AlarmDefinition], opts: &ImportOptions) -> Imported {
    let mut out = Imported::default();
    let mut rules: Vec<RuleOut> = Vec::new();
    let mut names = BTreeSet::new();
    let mut by_alarm: BTreeMap<String, usize> = BTreeMap::new();
    let mut alarm_has_actions: BTreeMap<String, bool> = BTreeMap::new();
    let mut sorted: Vec<&AlarmDefinition> = alarms.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));

    for a in &sorted {
        let sentinel = (!opts.sentinel_prefix.is_empty()
            && a.name.starts_with(&opts.sentinel_prefix))
            || a.tags
                .get("firebell:managed")
                .is_some_and(|v| v == "sentinel");
        if sentinel {
            out.skipped.push(Outcome {
                alarm: a.name.clone(),
                rule: None,
                notes: vec!["a firebell sentinel alarm".to_string()],
            });
            continue;
        }
        let AlarmKind::Metric(m) = &a.kind else {
            continue;
        };
        let mut notes = Vec::new();
        let translated = alarm_metrics(m).and_then(|metrics| {
            let op = op_of(&m.comparison)?;
            let threshold = m
                .threshold
                .ok_or_else(|| "the alarm has no threshold".to_string())?;
            if m.evaluation_periods > MAX_OUT_OF {
                return Err(format!(
                    "EvaluationPeriods {} is more than firebell's M of N allows (N <= {MAX_OUT_OF})",
                    m.evaluation_periods
                ));
            }
            Ok((metrics, op, threshold))
        });
        let (metrics, op, threshold) = match translated {
            Ok(t) => t,
            Err(why) => {
                out.not_translated.push(Outcome {
                    alarm: a.name.clone(),
                    rule: None,
                    notes: vec![why],
                });
                continue;
            }
        };
        let mut rule = rule_name(&a.name);
        let base = rule.clone();
        let mut k = 2;
        while names.contains(&rule) {
            rule = format!("{}-{k}", base.chars().take(120).collect::<String>());
            k += 1;
        }
        names.insert(rule.clone());

        let enabled = a.actions_enabled;
        let alarm_topics = if enabled {
            sns_topics(&a.alarm_actions)
        } else {
            Vec::new()
        };
        let ok_topics = if enabled {
            sns_topics(&a.ok_actions)
        } else {
            Vec::new()
        };
        let nodata_topics = if enabled {
            sns_topics(&a.insufficient_data_actions)
        } else {
            Vec::new()
        };
        for other in a
            .alarm_actions
            .iter()
            .chain(&a.ok_actions)
            .chain(&a.insufficient_data_actions)
            .filter(|x| !is_sns(x))
            .collect::<BTreeSet<_>>()
        {
            notes.push(format!(
                "action {other:?} not translated (firebell notifies SNS topics only)"
            ));
        }
        if !ok_topics.is_empty() && !alarm_topics.is_empty() && ok_topics != alarm_topics {
            notes.push(format!(
                "OK actions go to {}, not the alarm's topics: resolved notices go to the alarm's receiver",
                ok_topics.join(", ")
            ));
        }
        if !nodata_topics.is_empty() && !alarm_topics.is_empty() && nodata_topics != alarm_topics {
            notes.push(format!(
                "INSUFFICIENT_DATA actions go to {}: NoData alerts go to the alarm's receiver",
                nodata_topics.join(", ")
            ));
        }
        // CloudWatch's `missing` (the default) leaves ALARM for
        // INSUFFICIENT_DATA when the data stops: firebell's `nodata` when
        // that state notifies someone, else `ok` (the alert ends).
        let missing = match (m.treat_missing_data.as_deref(), nodata_topics.is_empty()) {
            (Some("breaching"), _) => "breaching",
            (Some("notBreaching"), _) => "ok",
            (Some("ignore"), _) => "keep",
            (_, false) => "nodata",
            (_, true) => "ok",
        };
        let n = m.evaluation_periods.max(1);
        let mm = m.datapoints_to_alarm.unwrap_or(n).clamp(1, n);

        let mut y = String::new();
        y.push_str(&format!("  # From CloudWatch alarm {}.\n", q(&a.name)));
        for note in &notes {
            y.push_str(&format!("  # Note: {note}.\n"));
        }
        y.push_str(&format!("  - name: {}\n    metrics:\n", q(&rule)));
        y.push_str(&metrics.lines);
        y.push_str(&format!("    expression: {}\n", q(&metrics.expression)));
        y.push_str(&format!(
            "    condition: {{op: {}, threshold: {}}}\n",
            q(op),
            num(threshold)
        ));
        if n > 1 {
            y.push_str(&format!(
                "    datapoints: {{breaching: {mm}, out_of: {n}}}\n"
            ));
        }
        y.push_str(&format!("    missing_data: {missing}\n"));
        y.push_str(&format!("    labels: {{{ALARM_LABEL}: {}}}\n", q(&a.name)));
        y.push_str(&format!(
            "    annotations:\n      title: {}\n",
            q(&literal(&a.name))
        ));
        if let Some(d) = a.description.as_deref().filter(|d| !d.trim().is_empty()) {
            y.push_str(&format!("      description: {}\n", q(&literal(d))));
        }
        if let Some(why) = rejected(&y) {
            names.remove(&rule);
            out.not_translated.push(Outcome {
                alarm: a.name.clone(),
                rule: None,
                notes: vec![format!("firebell rejects the rule: {why}")],
            });
            continue;
        }
        let receiver = if alarm_topics.is_empty() {
            None
        } else {
            Some(ReceiverKey {
                topics: alarm_topics,
                send_resolved: !ok_topics.is_empty(),
            })
        };
        alarm_has_actions.insert(a.name.clone(), receiver.is_some());
        by_alarm.insert(a.name.clone(), rules.len());
        let silent = notifies_no_one(
            a,
            &receiver
                .as_ref()
                .map(|r| r.topics.clone())
                .unwrap_or_default(),
        );
        rules.push(RuleOut {
            alarm: a.name.clone(),
            rule: rule.clone(),
            yaml: y,
            receiver,
            via: "AlarmActions".to_string(),
            silent,
        });
        out.translated.push(Outcome {
            alarm: a.name.clone(),
            rule: Some(rule),
            notes,
        });
    }

    // Composite alarms: `ALARM(a) AND NOT ALARM(b) ...` as inhibition.
    let mut inhibits: Vec<(String, String, String)> = Vec::new();
    // Target alarm -> the composite routing it; source alarm -> a composite
    // inhibiting with it.
    let mut claimed: BTreeMap<String, String> = BTreeMap::new();
    let mut inhibiting: BTreeMap<String, String> = BTreeMap::new();
    for a in &sorted {
        let AlarmKind::Composite {
            rule,
            actions_suppressor,
        } = &a.kind
        else {
            continue;
        };
        if out.skipped.iter().any(|s| s.alarm == a.name) {
            continue;
        }
        let result = (|| -> Result<(String, Vec<String>, ReceiverKey), String> {
            if let Some(suppressor) = actions_suppressor {
                return Err(format!(
                    "composite alarm with ActionsSuppressor {suppressor:?}: firebell would send the notifications that alarm suppresses"
                ));
            }
            let (target, sources) = parse_inhibition(rule).ok_or_else(|| {
                format!(
                    "composite rule {rule:?}: only `ALARM(a) AND NOT ALARM(b)` (and more `AND NOT ALARM(...)`) maps to firebell (inhibition)"
                )
            })?;
            for name in std::iter::once(&target).chain(&sources) {
                if !by_alarm.contains_key(name) {
                    return Err(format!(
                        "composite rule {rule:?}: alarm {name:?} is not among the translated alarms"
                    ));
                }
            }
            if let Some(other) = claimed.get(&target) {
                return Err(format!(
                    "composite rule {rule:?}: alarm {target:?} is already routed by composite alarm {other:?} (a rule has one receiver)"
                ));
            }
            if alarm_has_actions.get(&target).copied().unwrap_or(false) {
                return Err(format!(
                    "composite rule {rule:?}: alarm {target:?} has actions of its own, which inhibiting it would mute too"
                ));
            }
            let topics = if a.actions_enabled {
                sns_topics(&a.alarm_actions)
            } else {
                Vec::new()
            };
            if topics.is_empty() {
                return Err(format!(
                    "composite rule {rule:?}: the composite alarm notifies no SNS topic"
                ));
            }
            let ok = if a.actions_enabled {
                sns_topics(&a.ok_actions)
            } else {
                Vec::new()
            };
            Ok((
                target,
                sources,
                ReceiverKey {
                    topics,
                    send_resolved: !ok.is_empty(),
                },
            ))
        })();
        match result {
            Ok((target, sources, key)) => {
                if let Some(r) = by_alarm.get(&target).and_then(|i| rules.get_mut(*i)) {
                    r.receiver = Some(key);
                    r.via = format!("composite alarm {}", q(&a.name));
                    r.silent = None;
                }
                claimed.insert(target.clone(), a.name.clone());
                for s in &sources {
                    inhibiting
                        .entry(s.clone())
                        .or_insert_with(|| a.name.clone());
                }
                let target_rule = by_alarm
                    .get(&target)
                    .and_then(|i| rules.get(*i))
                    .map(|r| r.rule.clone())
                    .unwrap_or_default();
                for s in &sources {
                    let source_rule = by_alarm
                        .get(s)
                        .and_then(|i| rules.get(*i))
                        .map(|r| r.rule.clone())
                        .unwrap_or_default();
                    inhibits.push((a.name.clone(), source_rule, target_rule.clone()));
                }
                out.translated.push(Outcome {
                    alarm: a.name.clone(),
                    rule: None,
                    notes: vec![format!(
                        "composite: {} routed to its topics while {} not firing (inhibition)",
                        q(&target),
                        sources.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ")
                    )],
                });
            }
            Err(why) => out.not_translated.push(Outcome {
                alarm: a.name.clone(),
                rule: None,
                notes: vec![why],
            }),
        }
    }

    // Alarms that notify no one: not translated (the rule would page where
    // CloudWatch stays silent), unless a composite inhibits with them.
    let mut dropped: BTreeMap<String, String> = BTreeMap::new();
    for r in &mut rules {
        let Some(why) = r.silent.take() else {
            continue;
        };
        match inhibiting.get(&r.alarm) {
            Some(composite) => {
                let note = format!(
                    "notifies no one in CloudWatch ({why}), but composite alarm {} inhibits with it: translated for the inhibition, its own alerts go to the default receiver",
                    q(composite)
                );
                if let Some((first, rest)) = r.yaml.split_once('\n') {
                    r.yaml = format!("{first}\n  # Note: {note}.\n{rest}");
                }
                if let Some(o) = out.translated.iter_mut().find(|o| o.alarm == r.alarm) {
                    o.notes.push(note);
                }
            }
            None => {
                dropped.insert(
                    r.alarm.clone(),
                    format!("notifies no one in CloudWatch: {why}"),
                );
            }
        }
    }
    rules.retain(|r| !dropped.contains_key(&r.alarm));
    out.translated
        .retain(|o| !dropped.contains_key(&o.alarm) || o.rule.is_none());
    for (alarm, why) in dropped {
        out.not_translated.push(Outcome {
            alarm,
            rule: None,
            notes: vec![why],
        });
    }

    // Receivers: one per distinct (topics, send_resolved).
    let keys: BTreeSet<ReceiverKey> = rules.iter().filter_map(|r| r.receiver.clone()).collect();
    let mut receiver_names: BTreeMap<ReceiverKey, String> = BTreeMap::new();
    let mut taken = BTreeSet::new();
    for key in &keys {
        let base: String = key
            .topics
            .iter()
            .map(|t| topic_name(t))
            .collect::<Vec<_>>()
            .join("_")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .take(48)
            .collect();
        let both = keys.iter().any(|k| k.topics == key.topics && k != key);
        let mut name = if both && !key.send_resolved {
            format!("{base}-no-resolved")
        } else {
            base.clone()
        };
        let mut k = 2;
        while taken.contains(&name) {
            name = format!("{base}-{k}");
            k += 1;
        }
        taken.insert(name.clone());
        receiver_names.insert(key.clone(), name);
    }

    out.receivers = receiver_names.values().cloned().collect();
    // rules.yaml
    let mut ry = String::from(
        "# Imported from CloudWatch alarms by `firebell import cloudwatch-alarms`.\n# Each rule names the alarm it came from (label `alarm`); routing.yaml routes it.\nrules:\n",
    );
    for (i, r) in rules.iter().enumerate() {
        if i > 0 {
            ry.push('\n');
        }
        ry.push_str(&r.yaml);
    }
    if rules.is_empty() {
        ry = "# Imported from CloudWatch alarms by `firebell import cloudwatch-alarms`: no alarm was translated.\nrules: []\n".to_string();
    }
    out.rules_yaml = ry;

    // routing.yaml
    let mut counts: BTreeMap<&ReceiverKey, usize> = BTreeMap::new();
    for r in &rules {
        if let Some(k) = &r.receiver {
            *counts.entry(k).or_default() += 1;
        }
    }
    let default = counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
        .map(|(k, _)| (*k).clone());
    let mut y = String::from(
        "# Imported from CloudWatch alarms by `firebell import cloudwatch-alarms`:\n# one receiver per set of SNS topics the alarms notify (send_resolved when\n# they have OK actions), one route per alarm.\n",
    );
    if let Some(default) = default {
        y.push_str("receivers:\n");
        for (key, name) in &receiver_names {
            let users: Vec<String> = rules
                .iter()
                .filter(|r| r.receiver.as_ref() == Some(key))
                .map(|r| q(&r.alarm))
                .collect();
            y.push_str(&format!("  # The topics of alarms {}.\n", users.join(", ")));
            y.push_str(&format!(
                "  {name}:\n    topics: [{}]\n    send_resolved: {}\n",
                key.topics
                    .iter()
                    .map(|t| q(t))
                    .collect::<Vec<_>>()
                    .join(", "),
                key.send_resolved
            ));
        }
        let default_name = receiver_names.get(&default).cloned().unwrap_or_default();
        y.push_str(&format!(
            "route:\n  # The receiver of most alarms (alarms that notify no one are not imported).\n  receiver: {default_name}\n  # A CloudWatch alarm notifies once per state change: one group per rule\n  # and alarm, sent at once, and a long repeat.\n  group_by: [alertname, {ALARM_LABEL}]\n  group_wait: 0s\n  group_interval: 1m\n  repeat_interval: 24h\n  routes:\n"
        ));
        for r in &rules {
            let Some(key) = &r.receiver else {
                continue;
            };
            let name = receiver_names.get(key).cloned().unwrap_or_default();
            y.push_str(&format!(
                "    # CloudWatch alarm {} ({}).\n    - matchers: [{}]\n      receiver: {name}\n",
                q(&r.alarm),
                r.via,
                q(&format!("alertname=\"{}\"", r.rule))
            ));
        }
        if !inhibits.is_empty() {
            y.push_str("inhibit_rules:\n");
            for (composite, source, target) in &inhibits {
                y.push_str(&format!(
                    "  # Composite alarm {}: no {target} notice while {source} fires.\n  - source_matchers: [{}]\n    target_matchers: [{}]\n",
                    q(composite),
                    q(&format!("alertname=\"{source}\"")),
                    q(&format!("alertname=\"{target}\""))
                ));
            }
        }
    } else if !rules.is_empty() {
        y.push_str("# No alarm notifies an SNS topic: add a receiver and a route before using these rules.\n");
    }
    out.routing_yaml = y;
    out
}

/// `ALARM(a) AND NOT ALARM(b) AND NOT ALARM("c")`: `(a, [b, c])`.
fn parse_inhibition(rule: &str) -> Option<(String, Vec<String>)> {
    let mut terms = split_and(rule)?.into_iter();
    let target = alarm_ref(terms.next()?)?;
    let mut sources = Vec::new();
    for t in terms {
        let rest = t.strip_prefix("NOT")?;
        if !rest.starts_with([' ', '(']) {
            return None;
        }
        sources.push(alarm_ref(rest.trim())?);
    }
    if sources.is_empty() {
        return None;
    }
    Some((target, sources))
}

/// Splits on top-level ` AND ` (outside parentheses and quotes).
fn split_and(rule: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0usize);
    let bytes = rule.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => quoted = !quoted,
            b'(' if !quoted => depth += 1,
            b')' if !quoted => depth -= 1,
            b' ' if !quoted && depth == 0 && rule[i..].starts_with(" AND ") => {
                out.push(rule[start..i].trim());
                i += 5;
                start = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    if depth != 0 || quoted {
        return None;
    }
    out.push(rule[start..].trim());
    Some(out)
}

/// `ALARM(name)`, `ALARM("name")` or `ALARM(arn:...:alarm:name)`: the name.
fn alarm_ref(term: &str) -> Option<String> {
    let inner = term.strip_prefix("ALARM(")?.strip_suffix(')')?.trim();
    let name = inner
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(inner);
    if name.is_empty() || name.contains(['(', ')']) {
        return None;
    }
    let name = match name.find(":alarm:") {
        Some(i) if name.starts_with("arn:") => &name[i + 7..],
        _ => name,
    };
    Some(name.to_string())
}

#[cfg(test)]
mod tests;
