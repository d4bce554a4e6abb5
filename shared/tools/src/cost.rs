//! Monthly cost estimate of running a config with firebell, beside the cost
//! of the equivalent CloudWatch alarms (`firebell cost`).
//!
//! Prices are us-east-1 list prices ([`Prices::default`], recorded
//! [`PRICES_RECORDED`]; every one can be overridden). A month is 730 hours,
//! as AWS prices it. What is counted:
//!
//! - **GetMetricData**: $0.01 per 1,000 metrics requested. A rule requests
//!   each of its metrics (per wildcard value) at every evaluation, once per
//!   `interval` (never more often than the evaluator runs). Across rules the
//!   engine fetches each distinct query once per cycle, so the total counts a
//!   query shared by several rules once, at the most frequent of their
//!   intervals; the per-rule figures are each rule on its own. Rules with
//!   context values (an SLO's budget) also fetch those metrics at each alert
//!   event and evaluation while firing. Wildcard rules add a `ListMetrics`
//!   call per evaluation ($0.01 per 1,000 requests).
//! - **Lambda** (arm64): one request per cycle ($0.20 per million) and
//!   memory × duration ($0.0000133334 per GB-second), with an assumed or
//!   measured duration per cycle. The free tier is not subtracted.
//! - **DynamoDB** on demand ($1.25 per million write units, $0.25 per
//!   million read units; strongly consistent reads of items under 4 KB, 1
//!   read unit each): a cycle that changes nothing writes nothing; a cycle
//!   that writes also takes and frees the lease and records its tick
//!   ([`SHARED_WRITES_PER_WRITING_CYCLE`], counted once per transition and
//!   notification — an upper bound, as they often share a cycle), and a rule
//!   evaluated less often than every cycle records its tick once per
//!   evaluation. Every cycle reads about [`SHARED_READS_PER_CYCLE`] items or
//!   pages (lease, last tick, active alerts, groups, outbox, silences); per
//!   evaluation each instance's state is read; per incident (assumed count
//!   and length) the state is written at pending, firing and resolving, the
//!   alert record (about [`ALERT_ITEM_KB`] KB) at firing and resolving, and
//!   each notification takes an outbox put, a notification log update and
//!   an outbox delete.
//! - **SNS**: $0.50 per million publishes: per notification (firing,
//!   resolved, and reminders every `repeat_interval` of the route the
//!   rule's labels reach) one publish per topic of the receivers reached.
//!
//! The CloudWatch side: a metric alarm is $0.10 a month at standard
//! resolution (periods of 1 minute or more) and $0.30 at high resolution;
//! a metric-math alarm is billed per metric in its expression; percentile
//! statistics are standard alarms. A rule with rolling windows (an SLO
//! burn-rate rule) needs one alarm per window and a composite alarm ($0.50)
//! to AND them. A wildcard rule needs an alarm per value. The SNS cost of
//! notifications is the same on both sides and not added there.

use std::collections::BTreeMap;
use std::time::Duration;

use firebell_core::model::Rule;
use firebell_notify::NotifyConfig;

use firebell_engine::Config;

/// When the default prices were recorded.
pub const PRICES_RECORDED: &str = "2026-11-24";
/// Hours in a billing month.
pub const HOURS_PER_MONTH: f64 = 730.0;
/// Items or query pages read by every cycle besides the rules' states.
pub const SHARED_READS_PER_CYCLE: f64 = 5.0;
/// Items written by a cycle that writes anything: lease taken, lease freed,
/// last tick. A quiet cycle writes nothing.
pub const SHARED_WRITES_PER_WRITING_CYCLE: f64 = 3.0;
/// Size of an alert record (labels, annotations, 30 recent values), in KB:
/// the write units of one write.
pub const ALERT_ITEM_KB: f64 = 3.0;
/// The default `repeat_interval` when no route says otherwise.
const DEFAULT_REPEAT: Duration = Duration::from_secs(4 * 3600);

/// Unit prices in US dollars.
#[derive(Debug, Clone, PartialEq)]
pub struct Prices {
    /// Per 1,000 metrics requested with GetMetricData.
    pub get_metric_data_per_1000_metrics: f64,
    /// Per 1,000 ListMetrics (and other CloudWatch API) requests.
    pub api_per_1000_requests: f64,
    /// Per million Lambda requests.
    pub lambda_per_million_requests: f64,
    /// Per Lambda GB-second (arm64).
    pub lambda_per_gb_second: f64,
    /// Per million DynamoDB on-demand write request units.
    pub dynamodb_per_million_wru: f64,
    /// Per million DynamoDB on-demand read request units.
    pub dynamodb_per_million_rru: f64,
    /// Per million SNS publishes.
    pub sns_per_million_publishes: f64,
    /// Per standard-resolution alarm metric per month.
    pub alarm_standard: f64,
    /// Per high-resolution alarm metric per month.
    pub alarm_high_resolution: f64,
    /// Per composite alarm per month.
    pub alarm_composite: f64,
}

impl Default for Prices {
    /// us-east-1 list prices, recorded [`PRICES_RECORDED`].
    fn default() -> Self {
        Prices {
            get_metric_data_per_1000_metrics: 0.01,
            api_per_1000_requests: 0.01,
            lambda_per_million_requests: 0.20,
            lambda_per_gb_second: 0.000_013_333_4,
            dynamodb_per_million_wru: 1.25,
            dynamodb_per_million_rru: 0.25,
            sns_per_million_publishes: 0.50,
            alarm_standard: 0.10,
            alarm_high_resolution: 0.30,
            alarm_composite: 0.50,
        }
    }
}

/// What the estimate cannot know from the config.
#[derive(Debug, Clone, PartialEq)]
pub struct Assumptions {
    /// Lambda memory in MB.
    pub memory_mb: f64,
    /// Duration of one cycle in milliseconds (measure it: the Lambda's
    /// `Billed Duration`).
    pub cycle_ms: f64,
    /// How often the evaluator runs.
    pub cycle_every: Duration,
    /// Incidents (fire, then resolve) per rule instance per month.
    pub incidents_per_rule: f64,
    /// How long an incident fires, in minutes.
    pub incident_minutes: f64,
    /// Values a wildcard dimension expands to.
    pub wildcard_values: f64,
}

impl Default for Assumptions {
    fn default() -> Self {
        Assumptions {
            memory_mb: 256.0,
            cycle_ms: 300.0,
            cycle_every: Duration::from_secs(60),
            incidents_per_rule: 2.0,
            incident_minutes: 30.0,
            wildcard_values: 1.0,
        }
    }
}

/// The equivalent CloudWatch alarms of one rule.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmEquivalent {
    /// Metric (or metric-math) alarms.
    pub alarms: f64,
    /// Metrics billed across them.
    pub metrics: f64,
    /// Composite alarms.
    pub composite: f64,
    pub high_resolution: bool,
    /// Per month.
    pub cost: f64,
}

impl AlarmEquivalent {
    /// `1 alarm, 2 metrics`, `2 alarms, 4 metrics + 1 composite`.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} alarm{}, {} metric{}",
            count(self.alarms),
            plural(self.alarms),
            count(self.metrics),
            plural(self.metrics)
        );
        if self.high_resolution {
            s.push_str(" (high-res)");
        }
        if self.composite > 0.0 {
            s.push_str(&format!(" + {} composite", count(self.composite)));
        }
        s
    }
}

/// The monthly cost of one rule on its own.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleCost {
    pub rule: String,
    pub interval: Duration,
    /// Alert instances (wildcard values).
    pub instances: f64,
    /// Metrics requested per evaluation.
    pub metrics_per_evaluation: f64,
    pub evaluations: f64,
    /// GetMetricData, context fetches included.
    pub get_metric_data: f64,
    /// ListMetrics for wildcards.
    pub list_metrics: f64,
    pub dynamodb: f64,
    pub sns: f64,
    pub notifications: f64,
    pub alarm: AlarmEquivalent,
}

impl RuleCost {
    pub fn total(&self) -> f64 {
        self.get_metric_data + self.list_metrics + self.dynamodb + self.sns
    }
}

/// The estimate for a whole config.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub rules: Vec<RuleCost>,
    pub cycles: f64,
    /// Metric queries per month with and without de-duplication.
    pub metrics_requested: f64,
    pub metrics_requested_without_dedup: f64,
    /// GetMetricData after de-duplication (context fetches included).
    pub get_metric_data: f64,
    pub list_metrics: f64,
    pub lambda_requests: f64,
    pub lambda_gb_seconds: f64,
    pub lambda: f64,
    pub dynamodb: f64,
    pub sns: f64,
    pub total: f64,
    pub cloudwatch_alarms: f64,
}

fn count(v: f64) -> String {
    if v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn plural(v: f64) -> &'static str {
    if v == 1.0 { "" } else { "s" }
}

/// Seconds in a billing month.
pub fn month_secs() -> f64 {
    HOURS_PER_MONTH * 3600.0
}

/// Evaluations of a rule per month: once per interval, at most once a cycle.
pub fn evaluations(interval: Duration, a: &Assumptions) -> f64 {
    let every = interval.max(a.cycle_every).as_secs_f64().max(1.0);
    (month_secs() / every).floor()
}

fn instances(rule: &Rule, a: &Assumptions) -> f64 {
    if rule.metrics.values().any(|m| m.has_wildcard()) {
        a.wildcard_values.max(0.0)
    } else {
        1.0
    }
}

/// The equivalent CloudWatch alarms of a rule.
pub fn alarm_equivalent(rule: &Rule, prices: &Prices, a: &Assumptions) -> AlarmEquivalent {
    let high_resolution = rule.metrics.values().any(|m| m.period.as_secs() < 60);
    let per_metric = if high_resolution {
        prices.alarm_high_resolution
    } else {
        prices.alarm_standard
    };
    let n = instances(rule, a);
    let metrics_per_alarm = if rule.expression.as_metric().is_some() {
        1.0
    } else {
        rule.metrics.len() as f64
    };
    let windows = rule.expression.rolling_windows().len();
    let (alarms, composite) = if windows >= 2 {
        (windows as f64, 1.0)
    } else {
        (1.0, 0.0)
    };
    let metrics = alarms * metrics_per_alarm;
    AlarmEquivalent {
        alarms: alarms * n,
        metrics: metrics * n,
        composite: composite * n,
        high_resolution,
        cost: n * (metrics * per_metric + composite * prices.alarm_composite),
    }
}

/// Notifications per incident and SNS topics per notification, from the
/// route the rule's labels reach.
fn notifications(rule: &Rule, notify: &NotifyConfig, a: &Assumptions) -> (f64, f64) {
    let labels = firebell_engine::rule_labels(rule);
    let matches = if notify.route.receiver.is_empty() {
        Vec::new()
    } else {
        firebell_notify::route(notify, &labels)
    };
    let repeat = matches
        .first()
        .map(|m| m.timing.repeat_interval)
        .unwrap_or(DEFAULT_REPEAT)
        .as_secs_f64()
        .max(60.0);
    let reminders = (a.incident_minutes * 60.0 / repeat).floor();
    let topics: f64 = matches
        .iter()
        .map(|m| {
            notify
                .receivers
                .get(&m.receiver)
                .map_or(0.0, |r| r.topics.len() as f64)
        })
        .sum();
    (2.0 + reminders, topics.max(1.0))
}

/// The estimate for `config`.
pub fn estimate(config: &Config, prices: &Prices, a: &Assumptions) -> Estimate {
    let gmd = prices.get_metric_data_per_1000_metrics / 1000.0;
    let api = prices.api_per_1000_requests / 1000.0;
    let wru = prices.dynamodb_per_million_wru / 1e6;
    let rru = prices.dynamodb_per_million_rru / 1e6;
    let sns = prices.sns_per_million_publishes / 1e6;

    let mut rules = Vec::new();
    // Distinct query -> (metrics per fetch, fetches per month): the most
    // frequent rule using it sets how often it is fetched.
    let mut distinct: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut context_metrics = 0.0;
    let mut list_metrics = 0.0;
    let mut dynamodb_rules = 0.0;
    let mut sns_total = 0.0;
    for rule in &config.rules.rules {
        let n = instances(rule, a);
        let evals = evaluations(rule.interval, a);
        let per_eval = rule.metrics.len() as f64 * n;
        for spec in rule.metrics.values() {
            let e = distinct.entry(spec.dedup_key()).or_insert((n, 0.0));
            e.0 = e.0.max(n);
            e.1 = e.1.max(evals);
        }
        let incidents = a.incidents_per_rule * n;
        // Context values: fetched at firing and resolving and at every
        // evaluation while firing.
        let firing_evals = (a.incident_minutes * 60.0 / rule.interval.as_secs_f64().max(1.0))
            .min(evals)
            .ceil();
        let ctx: f64 = rule
            .context
            .iter()
            .map(|c| c.metrics.len() as f64)
            .sum::<f64>()
            * incidents
            * (2.0 + firing_evals);
        context_metrics += ctx;
        let lm = if rule.metrics.values().any(|m| m.has_wildcard()) {
            evals
        } else {
            0.0
        };
        list_metrics += lm;
        let (per_incident, topics) = notifications(rule, &config.notify, a);
        let notes = incidents * per_incident;
        let writing_cycles = incidents * 3.0 + notes;
        let tick_records = if rule.interval.as_secs_f64() > a.cycle_every.as_secs_f64() {
            evals
        } else {
            0.0
        };
        let writes = incidents * (3.0 + 2.0 * ALERT_ITEM_KB)
            + notes * 3.0
            + writing_cycles * SHARED_WRITES_PER_WRITING_CYCLE
            + tick_records;
        let reads = evals * n;
        let dynamodb = writes * wru + reads * rru;
        dynamodb_rules += dynamodb;
        let sns_cost = notes * topics * sns;
        sns_total += sns_cost;
        rules.push(RuleCost {
            rule: rule.name.clone(),
            interval: rule.interval,
            instances: n,
            metrics_per_evaluation: per_eval,
            evaluations: evals,
            get_metric_data: (per_eval * evals + ctx) * gmd,
            list_metrics: lm * api,
            dynamodb,
            sns: sns_cost,
            notifications: notes,
            alarm: alarm_equivalent(rule, prices, a),
        });
    }

    let cycles = (month_secs() / a.cycle_every.as_secs_f64().max(1.0)).floor();
    let metrics_requested: f64 = distinct.values().map(|(n, f)| n * f).sum();
    let metrics_requested_without_dedup: f64 = rules
        .iter()
        .map(|r| r.metrics_per_evaluation * r.evaluations)
        .sum();
    let get_metric_data = (metrics_requested + context_metrics) * gmd;
    let lambda_requests = cycles;
    let lambda_gb_seconds = cycles * a.cycle_ms / 1000.0 * a.memory_mb / 1024.0;
    let lambda = lambda_requests * prices.lambda_per_million_requests / 1e6
        + lambda_gb_seconds * prices.lambda_per_gb_second;
    let dynamodb = dynamodb_rules + cycles * SHARED_READS_PER_CYCLE * rru;
    let list_metrics = list_metrics * api;
    let total = get_metric_data + list_metrics + lambda + dynamodb + sns_total;
    let cloudwatch_alarms = rules.iter().map(|r| r.alarm.cost).sum();
    Estimate {
        rules,
        cycles,
        metrics_requested,
        metrics_requested_without_dedup,
        get_metric_data,
        list_metrics,
        lambda_requests,
        lambda_gb_seconds,
        lambda,
        dynamodb,
        sns: sns_total,
        total,
        cloudwatch_alarms,
    }
}

/// `$0.8760` under a dollar, `$12.34` from a dollar, `<$0.0001` for
/// amounts that would print as zero but are not.
pub fn dollars(v: f64) -> String {
    if v > 0.0 && v < 0.000_05 {
        "<$0.0001".to_string()
    } else if v.abs() < 1.0 {
        format!("${v:.4}")
    } else {
        format!("${v:.2}")
    }
}

/// A whole number with thousands separators: `224,840`.
pub fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firebell_core::diag::Diagnostics;

    fn config(text: &str) -> Config {
        let mut diags = Diagnostics::new();
        let c = firebell_engine::load_texts(
            &[("c.yaml".to_string(), text.to_string())],
            &mut diags,
            Vec::new(),
        );
        assert!(!diags.has_errors(), "{diags}");
        c
    }

    const TWO: &str = r#"
rules:
  - name: Ratio
    metrics:
      errors: {namespace: Shop, metric: Errors, dimensions: {Service: a}, stat: Sum}
      requests: {namespace: Shop, metric: Requests, dimensions: {Service: a}, stat: Sum}
    expression: errors / requests
    condition: {op: ">", threshold: 0.01}
    labels: {team: a}
  - name: Volume
    interval: 5m
    metrics:
      requests: {namespace: Shop, metric: Requests, dimensions: {Service: a}, stat: Sum}
    expression: requests
    condition: {op: "<", threshold: 10}
    labels: {team: a}
  - name: Fast
    metrics:
      p99: {namespace: Shop, metric: Latency, stat: p99, period: 10s}
    expression: p99
    condition: {op: ">", threshold: 800}
receivers:
  ops: {topics: ["arn:aws:sns:us-east-1:123456789012:ops"]}
  a: {topics: ["arn:aws:sns:us-east-1:123456789012:a", "arn:aws:sns:us-east-1:123456789012:a2"]}
route:
  receiver: ops
  repeat_interval: 10m
  routes:
    - matchers: ['team="a"']
      receiver: a
"#;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9 * b.abs().max(1.0), "{a} vs {b}");
    }

    #[test]
    fn get_metric_data_per_rule_and_deduplicated() {
        let e = estimate(&config(TWO), &Prices::default(), &Assumptions::default());
        // 730 h = 43,800 one-minute cycles; a 5-minute rule runs 8,760 times.
        assert_eq!(e.cycles, 43_800.0);
        let r = &e.rules[0];
        assert_eq!((r.evaluations, r.metrics_per_evaluation), (43_800.0, 2.0));
        // 2 metrics × 43,800 × $0.01 / 1,000.
        close(r.get_metric_data, 0.876);
        close(e.rules[1].get_metric_data, 8_760.0 * 0.01 / 1000.0);
        // A 10-second period still runs once a cycle.
        assert_eq!(e.rules[2].evaluations, 43_800.0);
        // Shop/Requests is shared: fetched once a minute for both rules.
        assert_eq!(e.metrics_requested_without_dedup, 43_800.0 * 3.0 + 8_760.0);
        assert_eq!(e.metrics_requested, 43_800.0 * 3.0);
        close(e.get_metric_data, 1.314);
    }

    #[test]
    fn lambda_dynamodb_and_sns() {
        let a = Assumptions::default();
        let e = estimate(&config(TWO), &Prices::default(), &a);
        // 43,800 requests; 43,800 × 0.3 s × 0.25 GB = 3,285 GB-s.
        close(e.lambda_gb_seconds, 3_285.0);
        close(e.lambda, 43_800.0 * 0.2 / 1e6 + 3_285.0 * 0.000_013_333_4);
        // Ratio: 2 incidents of 30 minutes; reminders every 10m: 3, plus
        // firing and resolved: 5 notifications each, to 2 topics.
        let r = &e.rules[0];
        assert_eq!(r.notifications, 10.0);
        close(r.sns, 10.0 * 2.0 * 0.5 / 1e6);
        // Writes: per incident 3 state + 2 × 3 KB alert = 9; per
        // notification 3; lease and tick (3) in each writing cycle: 3 per
        // incident (pending, firing, resolved) plus one per notification.
        // Reads: one state per evaluation.
        let writes = 2.0 * 9.0 + 10.0 * 3.0 + (2.0 * 3.0 + 10.0) * 3.0;
        close(r.dynamodb, writes * 1.25 / 1e6 + 43_800.0 * 0.25 / 1e6);
        // Fast reaches the root: its repeat_interval (10m) and its 1 topic.
        assert_eq!(e.rules[2].notifications, 10.0);
        close(e.rules[2].sns, 10.0 * 0.5 / 1e6);
        // Shared per cycle: 5 reads; a quiet cycle writes nothing.
        let shared = 43_800.0 * 5.0 * 0.25 / 1e6;
        let rules: f64 = e.rules.iter().map(|r| r.dynamodb).sum();
        close(e.dynamodb, rules + shared);
        close(
            e.total,
            e.get_metric_data + e.list_metrics + e.lambda + e.dynamodb + e.sns,
        );
    }

    #[test]
    fn cloudwatch_alarm_equivalents() {
        let e = estimate(&config(TWO), &Prices::default(), &Assumptions::default());
        // Metric math: billed per metric; a plain metric: one; 10s: high-res.
        let shown: Vec<(String, f64)> = e
            .rules
            .iter()
            .map(|r| (r.alarm.describe(), r.alarm.cost))
            .collect();
        assert_eq!(
            shown,
            [
                ("1 alarm, 2 metrics".to_string(), 0.2),
                ("1 alarm, 1 metric".to_string(), 0.1),
                ("1 alarm, 1 metric (high-res)".to_string(), 0.3),
            ]
        );
        close(e.cloudwatch_alarms, 0.6);
    }

    #[test]
    fn slo_rules_and_wildcards() {
        let text = r#"
slos:
  - name: Api
    team: a
    objective: 99.9
    sli:
      errors: {namespace: App, metric: Errors, dimensions: {Service: "*"}, stat: Sum}
      total: {namespace: App, metric: Requests, dimensions: {Service: "*"}, stat: Sum}
"#;
        let a = Assumptions {
            wildcard_values: 3.0,
            ..Assumptions::default()
        };
        let e = estimate(&config(text), &Prices::default(), &a);
        let page = &e.rules[0];
        assert_eq!(page.rule, "Api:page:1h");
        assert_eq!(page.instances, 3.0);
        // Two windows: two metric-math alarms of 2 metrics and a composite,
        // per value: 3 × (4 × $0.10 + $0.50).
        assert_eq!(page.alarm.describe(), "6 alarms, 12 metrics + 3 composite");
        close(page.alarm.cost, 3.0 * 0.9);
        // The budget: 2 metrics at firing, resolving and 30 evaluations
        // while firing, for 2 incidents of each of 3 instances.
        let ctx = 2.0 * 6.0 * 32.0;
        close(page.get_metric_data, (6.0 * 43_800.0 + ctx) * 0.01 / 1000.0);
        // ListMetrics once per evaluation.
        close(page.list_metrics, 43_800.0 * 0.01 / 1000.0);
        // The 3-day ticket runs every 15 minutes.
        assert_eq!(e.rules[2].evaluations, 2_920.0);
        // The two pages share their 1-minute queries; the ticket's are
        // 15-minute queries of their own.
        assert_eq!(e.metrics_requested, 6.0 * 43_800.0 + 6.0 * 2_920.0);
        assert_eq!(
            e.metrics_requested_without_dedup,
            2.0 * 6.0 * 43_800.0 + 6.0 * 2_920.0
        );
    }

    #[test]
    fn money_formats() {
        assert_eq!(dollars(0.876), "$0.8760");
        assert_eq!(dollars(12.3456), "$12.35");
        assert_eq!(dollars(0.000_005), "<$0.0001");
        assert_eq!(dollars(0.0), "$0.0000");
        assert_eq!(thousands(224_840.0), "224,840");
        assert_eq!(thousands(43_800.4), "43,800");
        assert_eq!(thousands(12.0), "12");
    }
}
