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
//!   call per evaluation ($0.01 per 1,000 requests). A **Metrics Insights**
//!   query is billed by the metrics it analyzes (the same $0.01 per 1,000):
//!   every metric its `FROM`/`SCHEMA` and `WHERE` match, whatever its
//!   `LIMIT` (which caps only the series returned), up to 10,000. The config
//!   cannot say how many that is, so each fetch of a distinct query (one
//!   call for all its groups) counts an assumed figure
//!   ([`Assumptions::insights_metrics_analyzed`], 500 by default), plus the
//!   discovery of its groups once per 5 minutes (the adapter's cache); its
//!   rule's instances are the assumed values per wildcard, at most the
//!   series it returns (its `LIMIT`, or 500).
//! - **Lambda** (arm64): one request per evaluator invocation ($0.20 per
//!   million) and memory × duration ($0.0000133334 per GB-second), with an
//!   assumed or measured duration per invocation. One invocation a tick;
//!   with N > 1 shards ([`Assumptions::shards`]) N + 1: one per shard, then
//!   the delivery stage. The free tier is not subtracted.
//! - **Step Functions** (shards only): the Express state machine that runs a
//!   tick's shards and then its delivery stage, one execution a tick: $1.00
//!   per million requests and $0.00001667 per GB-second, billed in 64 MB
//!   and 100 ms units; an execution lasts about a shard and then the
//!   delivery stage (twice the invocation duration) in 64 MB.
//! - **DynamoDB** on demand ($1.25 per million write units, $0.25 per
//!   million read units): a cycle that changes nothing writes nothing; a
//!   cycle that writes also takes and frees the lease and records its tick
//!   ([`SHARED_WRITES_PER_WRITING_CYCLE`], counted once per transition and
//!   notification — an upper bound, as they often share a cycle), and a rule
//!   evaluated less often than every cycle records its tick once per
//!   evaluation. Every tick reads about [`SHARED_READS_PER_CYCLE`] items or
//!   pages (its cycle partition: lease, last tick; active alerts, groups,
//!   outbox, silences; 1 read unit each, strongly consistent), each shard
//!   its own cycle partition ([`SHARD_READS_PER_CYCLE`]), and the rules'
//!   states with one eventually consistent Query per state bucket
//!   ([`STATE_BUCKETS`], split across the shards: 64/N each), 0.5 read
//!   units when empty: a constant, whatever the rule count. Only instances
//!   with state are in them: per incident an instance's state (about
//!   [`STATE_ITEM_KB`] KB, at 0.5 read units per 4 KB) is read at every
//!   evaluation while it fires and for [`STATE_KEPT_AFTER_RESOLVE_SECS`]
//!   after. Per incident (assumed count and length) the state is written at
//!   pending, firing and resolving, the alert record (about
//!   [`ALERT_ITEM_KB`] KB) at firing and resolving, and each notification
//!   takes an outbox put, a notification log update and an outbox delete.
//! - **SNS**: $0.50 per million publishes: per notification (firing,
//!   resolved, and reminders every `repeat_interval` of the route the
//!   rule's labels reach) one publish per topic of the receivers reached.
//!
//! - **Sentinel mode** (`sentinels: {mode: auto}`, or `--sentinels auto`):
//!   which rules have a sentinel alarm and which stay on polling (and why)
//!   is the engine's own decision ([`firebell_engine::sentinel::desired_with`],
//!   with the prices, the sweep and the hours hot of the estimate). A
//!   covered rule requests its metrics once per sweep and once per
//!   evaluation while hot ([`Assumptions::hot_hours`] a month) instead of
//!   once per evaluation; the sentinel adds its alarm ($0.10 per metric a
//!   month). An SLO's sentinel covers its page rules: each covered rule
//!   carries its own sweeps and hot polling and an even share of the alarm
//!   ([`SentinelShare`]), so the per-rule figures add up to the sentinel's
//!   ([`SentinelRow`], one per sentinel). Finding the hot rules takes one
//!   `DescribeAlarms` a tick (one per shard when sharded) and the
//!   reconcile lists the sentinels once per sweep (one call per 100),
//!   at the API request price; every tick also reads the sync record (1
//!   read unit in each shard and in the reconcile). `PutMetricAlarm` calls
//!   happen only when the config changes and are not counted.
//!
//! The CloudWatch side: a metric alarm is $0.10 a month at standard
//! resolution (periods of 1 minute or more) and $0.30 at high resolution;
//! a metric-math alarm is billed per metric in its expression; percentile
//! statistics are standard alarms. A rule with rolling windows (an SLO
//! burn-rate rule) needs one alarm per window and a composite alarm ($0.50)
//! to AND them. A wildcard rule needs an alarm per value; a rule reading a
//! Metrics Insights query one Metrics Insights alarm, billed per metric the
//! query analyzes (`LIMIT` or 500, as above). The SNS cost of
//! notifications is the same on both sides and not added there.

use std::collections::BTreeMap;
use std::time::Duration;

use firebell_core::model::{MetricSpec, Rule};
use firebell_core::sentinel::{CostInputs, ModeCost, Polling};
use firebell_engine::sentinel::Mode;
use firebell_notify::NotifyConfig;

use firebell_engine::Config;

/// When the default prices were recorded.
pub const PRICES_RECORDED: &str = "2026-11-24";
/// Hours in a billing month.
pub const HOURS_PER_MONTH: f64 = 730.0;
/// Items or query pages read by every tick besides the rules' states: the
/// cycle partition (lease, last tick), active alerts, groups, outbox,
/// silences (the whole cycle, or the delivery stage of a sharded one).
pub const SHARED_READS_PER_CYCLE: f64 = 5.0;
/// Read by each shard of a sharded tick: its own cycle partition.
pub const SHARD_READS_PER_CYCLE: f64 = 1.0;
/// The state partitions (the engine's fixed bucket count): one Query each
/// per tick, whatever the rule or shard count (a shard reads its 64/N).
pub const STATE_BUCKETS: f64 = firebell_engine::keys::STATE_BUCKETS as f64;
/// Read units of an eventually consistent Query per 4 KB read, and of an
/// empty one.
pub const QUERY_READ_UNITS: f64 = 0.5;
/// Size of an alert instance's stored state, in KB.
pub const STATE_ITEM_KB: f64 = 1.0;
/// How long a resolved instance's state is kept (and read) after it
/// resolves: the engine's default resolved-alert retention.
pub const STATE_KEPT_AFTER_RESOLVE_SECS: f64 = 6.0 * 3600.0;
/// The memory an Express execution of the tick state machine is billed
/// for: its smallest unit (a small definition and payloads).
pub const STEP_FUNCTIONS_BILLED_MB: f64 = 64.0;
/// The most shards a stack can have (the state buckets).
pub const MAX_SHARDS: u32 = 64;
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
    /// Per million Step Functions Express requests (executions).
    pub step_functions_per_million_requests: f64,
    /// Per Step Functions Express GB-second (the first 1,000 GB-hours a
    /// month; 64 MB and 100 ms units).
    pub step_functions_per_gb_second: f64,
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
            step_functions_per_million_requests: 1.00,
            step_functions_per_gb_second: 0.000_016_67,
            dynamodb_per_million_wru: 1.25,
            dynamodb_per_million_rru: 0.25,
            sns_per_million_publishes: 0.50,
            alarm_standard: 0.10,
            alarm_high_resolution: 0.30,
            alarm_composite: 0.50,
        }
    }
}

/// The assumed metrics a Metrics Insights query analyzes per fetch.
pub const DEFAULT_INSIGHTS_ANALYZED: f64 = 500.0;
/// The most metrics a Metrics Insights query analyzes.
pub const INSIGHTS_MAX_ANALYZED: f64 = 10_000.0;

/// What the estimate cannot know from the config.
#[derive(Debug, Clone, PartialEq)]
pub struct Assumptions {
    /// Lambda memory in MB.
    pub memory_mb: f64,
    /// Duration of one evaluator invocation in milliseconds: the cycle, or
    /// with shards a shard or the delivery stage (measure it: the Lambda's
    /// `Billed Duration`).
    pub cycle_ms: f64,
    /// Shards the rules are split into (the stack's `ShardCount`, 1 to
    /// [`MAX_SHARDS`]): above 1, N + 1 invocations a tick and a Step
    /// Functions Express execution.
    pub shards: u32,
    /// How often the evaluator runs.
    pub cycle_every: Duration,
    /// Incidents (fire, then resolve) per rule instance per month.
    pub incidents_per_rule: f64,
    /// How long an incident fires, in minutes.
    pub incident_minutes: f64,
    /// Values a wildcard dimension expands to.
    pub wildcard_values: f64,
    /// Metrics a Metrics Insights query analyzes per fetch: every metric
    /// it matches (a `LIMIT` caps the series returned, not this), at most
    /// [`INSIGHTS_MAX_ANALYZED`].
    pub insights_metrics_analyzed: f64,
    /// Whether to estimate with sentinels: as the config says, or as if
    /// `mode: auto` / `mode: off`.
    pub sentinels: SentinelsAs,
    /// Hours a month a covered rule is hot (polled every interval).
    pub hot_hours: f64,
    /// How often every rule is swept; `None`: the config's `sweep`.
    pub sweep: Option<Duration>,
}

impl Default for Assumptions {
    fn default() -> Self {
        Assumptions {
            memory_mb: 256.0,
            cycle_ms: 300.0,
            shards: 1,
            cycle_every: Duration::from_secs(60),
            incidents_per_rule: 2.0,
            incident_minutes: 30.0,
            wildcard_values: 1.0,
            insights_metrics_analyzed: DEFAULT_INSIGHTS_ANALYZED,
            sentinels: SentinelsAs::Config,
            hot_hours: firebell_core::sentinel::DEFAULT_HOT_HOURS,
            sweep: None,
        }
    }
}

/// Which sentinel mode the estimate assumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SentinelsAs {
    /// The config's `sentinels: {mode}` (off when the section is absent).
    #[default]
    Config,
    /// As if `mode: auto`.
    Auto,
    /// As if `mode: off`.
    Off,
}

/// How firebell watches a rule.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleMode {
    /// Polled every interval, and why.
    Polling(Polling),
    /// Watched by the sentinel alarm of that name, polled while hot and at sweeps.
    Sentinel(String),
}

impl RuleMode {
    pub fn is_sentinel(&self) -> bool {
        matches!(self, RuleMode::Sentinel(_))
    }

    /// `polling` or `sentinel`.
    pub fn name(&self) -> &'static str {
        match self {
            RuleMode::Polling(_) => "polling",
            RuleMode::Sentinel(_) => "sentinel",
        }
    }
}

/// A rule's part of a sentinel's monthly cost: its own sweeps and hot
/// polling, and an even share of the alarm among the rules it covers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SentinelShare {
    pub alarm: f64,
    pub sweeps: f64,
    pub hot: f64,
}

impl SentinelShare {
    pub fn total(&self) -> f64 {
        self.alarm + self.sweeps + self.hot
    }
}

/// One sentinel alarm `mode: auto` keeps (sound and cheaper than polling);
/// `used` when the estimate counts it (the mode estimated is auto).
#[derive(Debug, Clone, PartialEq)]
pub struct SentinelRow {
    pub name: String,
    pub rules: Vec<String>,
    /// Metrics the alarm is billed for.
    pub metrics: usize,
    /// Polling (of the rules covered) against the sentinel, per month.
    pub cost: ModeCost,
    /// The CloudWatch alarm equivalent of the rules covered.
    pub alarm_equivalent: f64,
    /// Whether firebell uses it (sentinels on, and cheaper than polling).
    pub used: bool,
}

/// What sentinels change in the estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct SentinelEstimate {
    /// The mode estimated (the config's, or the flag's).
    pub mode: Mode,
    /// Whether the mode came from the config (else a flag).
    pub from_config: bool,
    pub sweep: Duration,
    pub hot_hours: f64,
    /// Every sentinel `mode: auto` keeps (with mode off: what it would keep).
    pub alarms: Vec<SentinelRow>,
    /// Rules watched by a sentinel.
    pub covered_rules: usize,
    /// The sentinel alarms firebell keeps, per month.
    pub alarm_cost: f64,
    /// DescribeAlarms requests a month: one a tick per shard, and the
    /// reconcile's listing once per sweep.
    pub describe_alarms_requests: f64,
    pub describe_alarms: f64,
    /// GetMetricData a month if every rule were polled (after de-duplication).
    pub polling_get_metric_data: f64,
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
    /// GetMetricData polling every interval (context fetches left out).
    pub polling: f64,
    /// What its sentinel costs (its share), when it has a sound one.
    pub sentinel: Option<SentinelShare>,
    /// How firebell watches it.
    pub mode: RuleMode,
    /// Evaluations a month that fetch its metrics in that mode: every
    /// evaluation, or the sweeps and the evaluations while hot.
    pub fetches: f64,
    /// Metrics analyzed a month discovering its Metrics Insights queries'
    /// groups (0 without a query).
    pub discovery_metrics: f64,
}

impl RuleCost {
    /// Its monthly cost in the mode firebell uses (with a sentinel: its
    /// share of the alarm; `get_metric_data` is then the sweeps and the
    /// hot polling).
    pub fn total(&self) -> f64 {
        let alarm = match (&self.mode, &self.sentinel) {
            (RuleMode::Sentinel(_), Some(share)) => share.alarm,
            _ => 0.0,
        };
        self.get_metric_data + self.list_metrics + self.dynamodb + self.sns + alarm
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
    /// Shards (1: unsharded).
    pub shards: u32,
    /// Evaluator invocations a tick: 1, or N shards + 1 delivery stage.
    pub invocations_per_tick: f64,
    pub lambda_requests: f64,
    pub lambda_gb_seconds: f64,
    pub lambda: f64,
    /// Express executions (one a tick when sharded, else none).
    pub step_functions_requests: f64,
    pub step_functions_gb_seconds: f64,
    pub step_functions: f64,
    /// Read units every tick takes whatever happens: the shared reads, the
    /// shards' cycle partitions, the empty state bucket Queries.
    pub read_units_per_tick: f64,
    pub dynamodb: f64,
    pub sns: f64,
    pub total: f64,
    pub cloudwatch_alarms: f64,
    /// Sentinel mode: the choice per rule, the alarms and their API calls.
    pub sentinels: SentinelEstimate,
    /// The Metrics Insights queries, with the metrics each is assumed to
    /// analyze (counted in `metrics_requested`).
    pub insights: Vec<InsightsQueryCost>,
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
        let cap = rule
            .metrics
            .values()
            .filter_map(|m| series_returned(m).filter(|_| m.has_wildcard()))
            .fold(f64::INFINITY, f64::min);
        a.wildcard_values.max(0.0).min(cap)
    } else {
        1.0
    }
}

/// Metrics a fetch of a Metrics Insights query analyzes (the assumption
/// [`Assumptions::insights_metrics_analyzed`], at most 10,000: the config
/// cannot say how many metrics the query matches); `None` for a plain
/// metric.
pub fn analyzed(spec: &MetricSpec, a: &Assumptions) -> Option<f64> {
    spec.query.as_ref()?;
    Some(
        a.insights_metrics_analyzed
            .clamp(0.0, INSIGHTS_MAX_ANALYZED),
    )
}

/// The most series a fetch of a Metrics Insights query returns: its
/// `LIMIT`, or 500 when grouped, 1 when not; `None` for a plain metric.
pub fn series_returned(spec: &MetricSpec) -> Option<f64> {
    let sql = spec.query.as_deref()?;
    Some(match firebell_core::insights::parse(sql) {
        Ok(q) => f64::from(q.max_series()),
        Err(_) => f64::from(firebell_core::insights::MAX_SERIES),
    })
}

/// The discoveries of a Metrics Insights query's groups a month: one per
/// 5 minutes (the CloudWatch adapter's cache), at most one per evaluation.
fn discoveries(evals: f64) -> f64 {
    (month_secs() / 300.0).min(evals)
}

/// A Metrics Insights query of the config in the estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct InsightsQueryCost {
    pub query: String,
    /// Metrics analyzed per fetch (assumed:
    /// [`Assumptions::insights_metrics_analyzed`]).
    pub analyzed: f64,
    /// The most series a fetch returns (its `LIMIT`, or 500 when grouped,
    /// 1 when not).
    pub series: f64,
    /// Fetches and discoveries a month.
    pub fetches: f64,
}

/// The equivalent CloudWatch alarms of a rule.
pub fn alarm_equivalent(rule: &Rule, prices: &Prices, a: &Assumptions) -> AlarmEquivalent {
    let high_resolution = rule.metrics.values().any(|m| m.period.as_secs() < 60);
    let per_metric = if high_resolution {
        prices.alarm_high_resolution
    } else {
        prices.alarm_standard
    };
    // A Metrics Insights alarm is one alarm for all its groups, billed per
    // metric its query analyzes (the same assumption as the fetches).
    let has_query = rule.metrics.values().any(|m| m.query.is_some());
    let n = if has_query { 1.0 } else { instances(rule, a) };
    let metrics_per_alarm = if has_query {
        rule.metrics
            .values()
            .map(|m| analyzed(m, a).unwrap_or(1.0))
            .sum()
    } else if rule.expression.as_metric().is_some() {
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

/// Evaluator invocations a tick with `shards` shards: the cycle, or one per
/// shard and the delivery stage.
pub fn invocations_per_tick(shards: u32) -> f64 {
    if shards > 1 {
        f64::from(shards) + 1.0
    } else {
        1.0
    }
}

/// Read units every tick takes with `shards` shards whatever happens (the
/// constant of a quiet cycle): [`SHARED_READS_PER_CYCLE`], each shard's
/// cycle partition, and an empty Query of every state bucket (at most one
/// per rule: a bucket without rules is not read).
pub fn read_units_per_tick(shards: u32, rules: usize) -> f64 {
    let shard_reads = if shards > 1 {
        f64::from(shards) * SHARD_READS_PER_CYCLE
    } else {
        0.0
    };
    SHARED_READS_PER_CYCLE + shard_reads + STATE_BUCKETS.min(rules as f64) * QUERY_READ_UNITS
}

/// The estimate for `config`.
pub fn estimate(config: &Config, prices: &Prices, a: &Assumptions) -> Estimate {
    let gmd = prices.get_metric_data_per_1000_metrics / 1000.0;
    let api = prices.api_per_1000_requests / 1000.0;
    let wru = prices.dynamodb_per_million_wru / 1e6;
    let rru = prices.dynamodb_per_million_rru / 1e6;
    let sns = prices.sns_per_million_publishes / 1e6;

    let choice = choose(config, prices, a);
    let mut rules = Vec::new();
    // Distinct query -> (metrics per fetch, fetches per month): the most
    // frequent rule using it sets how often it is fetched; in the mode
    // used, and if every rule were polled.
    let mut distinct: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut distinct_polling: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut context_metrics = 0.0;
    let mut list_metrics = 0.0;
    let mut insights: BTreeMap<String, (f64, f64, f64)> = BTreeMap::new();
    let mut dynamodb_rules = 0.0;
    let mut sns_total = 0.0;
    for rule in &config.rules.rules {
        let n = instances(rule, a);
        let evals = evaluations(rule.interval, a);
        // A query is fetched once for all its groups, analyzing its
        // assumed metrics; a plain metric once per instance.
        let per_eval: f64 = rule
            .metrics
            .values()
            .map(|m| analyzed(m, a).unwrap_or(n))
            .sum();
        let (mode, sentinel) = choice.of(config, rule);
        let fetches = if mode.is_sentinel() {
            let every = rule.interval.max(a.cycle_every).as_secs_f64().max(1.0);
            (month_secs() / choice.inputs.sweep.as_secs_f64().max(every)
                + choice.inputs.hot_hours * 3600.0 / every)
                .min(evals)
        } else {
            evals
        };
        for spec in rule.metrics.values() {
            let (key, n, extra) = match (&spec.query, analyzed(spec, a)) {
                (Some(sql), Some(m)) => {
                    let series = series_returned(spec).unwrap_or(1.0);
                    let e = insights.entry(sql.clone()).or_insert((m, 0.0, series));
                    e.1 = e.1.max(evals + discoveries(evals));
                    (
                        format!("query|{sql}|{}", spec.period.as_secs()),
                        m,
                        discoveries(evals),
                    )
                }
                _ => (spec.dedup_key(), n, 0.0),
            };
            for (map, f) in [(&mut distinct, fetches), (&mut distinct_polling, evals)] {
                let e = map.entry(key.clone()).or_insert((n, 0.0));
                e.0 = e.0.max(n);
                e.1 = e.1.max(f + extra);
            }
        }
        let discovery_metrics: f64 = rule
            .metrics
            .values()
            .filter_map(|m| analyzed(m, a))
            .map(|m| m * discoveries(evals))
            .sum();
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
        let lm = if rule
            .metrics
            .values()
            .any(|m| m.has_wildcard() && m.query.is_none())
        {
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
        // The instance's state, while it has one: read in its bucket's
        // Query at every evaluation while it fires and for a while after.
        let stateful_evals = ((a.incident_minutes * 60.0 + STATE_KEPT_AFTER_RESOLVE_SECS)
            / rule.interval.max(a.cycle_every).as_secs_f64().max(1.0))
        .ceil()
        .min(evals);
        let reads = incidents * stateful_evals * STATE_ITEM_KB / 4.0 * QUERY_READ_UNITS;
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
            get_metric_data: (per_eval * fetches + ctx + discovery_metrics) * gmd,
            list_metrics: lm * api,
            dynamodb,
            sns: sns_cost,
            notifications: notes,
            alarm: alarm_equivalent(rule, prices, a),
            polling: (per_eval * evals + discovery_metrics) * gmd,
            sentinel,
            mode,
            fetches,
            discovery_metrics,
        });
    }

    let cycles = (month_secs() / a.cycle_every.as_secs_f64().max(1.0)).floor();
    let metrics_requested: f64 = distinct.values().map(|(n, f)| n * f).sum();
    let metrics_requested_without_dedup: f64 = rules
        .iter()
        .map(|r| r.metrics_per_evaluation * r.fetches + r.discovery_metrics)
        .sum();
    let get_metric_data = (metrics_requested + context_metrics) * gmd;
    let shards = a.shards.clamp(1, MAX_SHARDS);
    let invocations = invocations_per_tick(shards);
    let lambda_requests = cycles * invocations;
    let lambda_gb_seconds = lambda_requests * a.cycle_ms / 1000.0 * a.memory_mb / 1024.0;
    let lambda = lambda_requests * prices.lambda_per_million_requests / 1e6
        + lambda_gb_seconds * prices.lambda_per_gb_second;
    // An execution: the shards in parallel, then the delivery stage.
    let (step_functions_requests, step_functions_gb_seconds) = if shards > 1 {
        let billed_secs = (2.0 * a.cycle_ms / 100.0).ceil() / 10.0;
        (
            cycles,
            cycles * billed_secs * STEP_FUNCTIONS_BILLED_MB / 1024.0,
        )
    } else {
        (0.0, 0.0)
    };
    let step_functions = step_functions_requests * prices.step_functions_per_million_requests / 1e6
        + step_functions_gb_seconds * prices.step_functions_per_gb_second;
    let in_use = choice.mode == Mode::Auto && !choice.rows.is_empty();
    // Sentinels read the sync record in each shard's cycle and in the
    // reconcile (1 read unit each).
    let read_units_per_tick = read_units_per_tick(shards, config.rules.rules.len())
        + if in_use { f64::from(shards) + 1.0 } else { 0.0 };
    let dynamodb = dynamodb_rules + cycles * read_units_per_tick * rru;
    let list_metrics = list_metrics * api;
    let describe_alarms_requests = if in_use {
        let sweeps = (month_secs() / choice.inputs.sweep.as_secs_f64().max(60.0)).floor();
        cycles * f64::from(shards) + sweeps * (choice.rows.len() as f64 / 100.0).ceil()
    } else {
        0.0
    };
    let describe_alarms = describe_alarms_requests * api;
    let alarm_cost: f64 = if in_use {
        choice.rows.iter().map(|r| r.cost.alarm).sum()
    } else {
        0.0
    };
    let total = get_metric_data
        + list_metrics
        + lambda
        + step_functions
        + dynamodb
        + sns_total
        + alarm_cost
        + describe_alarms;
    let cloudwatch_alarms = rules.iter().map(|r| r.alarm.cost).sum();
    let polling_get_metric_data =
        (distinct_polling.values().map(|(n, f)| n * f).sum::<f64>() + context_metrics) * gmd;
    let covered_rules = rules.iter().filter(|r| r.mode.is_sentinel()).count();
    let alarms = choice
        .rows
        .into_iter()
        .map(|mut row| {
            row.used = choice.mode == Mode::Auto;
            row.alarm_equivalent = rules
                .iter()
                .filter(|r| row.rules.contains(&r.rule))
                .map(|r| r.alarm.cost)
                .sum();
            row
        })
        .collect();
    let sentinels = SentinelEstimate {
        mode: choice.mode,
        from_config: choice.from_config,
        sweep: choice.inputs.sweep,
        hot_hours: choice.inputs.hot_hours,
        alarms,
        covered_rules,
        alarm_cost,
        describe_alarms_requests,
        describe_alarms,
        polling_get_metric_data,
    };
    Estimate {
        rules,
        cycles,
        metrics_requested,
        metrics_requested_without_dedup,
        get_metric_data,
        list_metrics,
        shards,
        invocations_per_tick: invocations,
        lambda_requests,
        lambda_gb_seconds,
        lambda,
        step_functions_requests,
        step_functions_gb_seconds,
        step_functions,
        read_units_per_tick,
        dynamodb,
        sns: sns_total,
        total,
        cloudwatch_alarms,
        sentinels,
        insights: insights
            .into_iter()
            .map(|(query, (analyzed, fetches, series))| InsightsQueryCost {
                query,
                analyzed,
                series,
                fetches,
            })
            .collect(),
    }
}

/// The engine's choice of mode for a config, under the estimate's
/// prices and assumptions.
struct Choice {
    mode: Mode,
    from_config: bool,
    inputs: CostInputs,
    /// What `mode: auto` decides (also shown when off, for comparison).
    desired: firebell_engine::sentinel::Desired,
    rows: Vec<SentinelRow>,
}

fn choose(config: &Config, prices: &Prices, a: &Assumptions) -> Choice {
    let (mode, from_config) = match a.sentinels {
        SentinelsAs::Config => (config.sentinels.mode, true),
        SentinelsAs::Auto => (Mode::Auto, false),
        SentinelsAs::Off => (Mode::Off, false),
    };
    let inputs = CostInputs {
        per_metric_requested: prices.get_metric_data_per_1000_metrics / 1000.0,
        per_alarm_metric: prices.alarm_standard,
        cycle_every: a.cycle_every,
        sweep: a.sweep.unwrap_or(config.sentinels.sweep),
        hot_hours: a.hot_hours.max(0.0),
    };
    let mut auto = config.clone();
    auto.sentinels.mode = Mode::Auto;
    auto.sentinels.sweep = inputs.sweep;
    let desired = firebell_engine::sentinel::desired_with(
        &auto,
        firebell_core::sentinel::DEFAULT_PREFIX,
        &inputs,
    );
    let rows = desired
        .alarms
        .iter()
        .map(|alarm| SentinelRow {
            name: alarm.name.clone(),
            rules: alarm.rules.clone(),
            metrics: alarm.billed_metrics(),
            cost: desired.costs.get(&alarm.name).copied().unwrap_or(ModeCost {
                polling: 0.0,
                sentinel: 0.0,
                alarm: 0.0,
                sweeps: 0.0,
                hot: 0.0,
            }),
            alarm_equivalent: 0.0,
            used: false,
        })
        .collect();
    Choice {
        mode,
        from_config,
        inputs,
        desired,
        rows,
    }
}

impl Choice {
    /// How firebell watches `rule`, and its share of its sentinel (the one
    /// it has, or would have where polling is cheaper).
    fn of(&self, config: &Config, rule: &Rule) -> (RuleMode, Option<SentinelShare>) {
        let share = |alarm: &firebell_core::sentinel::SentinelAlarm| {
            let own = firebell_core::sentinel::mode_cost(&[rule], alarm, &self.inputs);
            SentinelShare {
                alarm: own.alarm / alarm.rules.len().max(1) as f64,
                sweeps: own.sweeps,
                hot: own.hot,
            }
        };
        if let Some(alarm) = self.desired.sentinel_of(&rule.name) {
            let mode = if self.mode == Mode::Auto {
                RuleMode::Sentinel(alarm.name.clone())
            } else {
                RuleMode::Polling(Polling::Off)
            };
            return (mode, Some(share(alarm)));
        }
        let why = self
            .desired
            .polling
            .get(&rule.name)
            .cloned()
            .unwrap_or(Polling::Expression);
        // Polling is cheaper: what the sentinel would have cost.
        let would = match why {
            Polling::Cheaper { .. } => would_be(config, rule)
                .map(|alarm| share(&alarm))
                .filter(|s| s.total() > 0.0),
            _ => None,
        };
        let why = if self.mode == Mode::Off {
            Polling::Off
        } else {
            why
        };
        (RuleMode::Polling(why), would)
    }
}

/// The sentinel `rule` would have (its own, or its SLO's).
fn would_be(config: &Config, rule: &Rule) -> Option<firebell_core::sentinel::SentinelAlarm> {
    let prefix = firebell_core::sentinel::DEFAULT_PREFIX;
    let slo = rule
        .labels
        .get("slo")
        .and_then(|name| config.slos.iter().find(|s| &s.name == name))
        .filter(|s| rule.name.starts_with(&format!("{}:", s.name)));
    match slo {
        Some(slo) => {
            let marker = format!("{}:", slo.name);
            let rules: Vec<&Rule> = config
                .rules
                .rules
                .iter()
                .filter(|r| {
                    r.name.starts_with(&marker)
                        && r.labels.get("slo").map(String::as_str) == Some(slo.name.as_str())
                })
                .collect();
            firebell_core::sentinel::for_slo(slo, &rules, prefix).ok()
        }
        None => firebell_core::sentinel::for_rule(rule, prefix).ok(),
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
        // Reads: the 1 KB state, in its bucket's Query (0.5 units per 4
        // KB), at each evaluation while it fires (30 minutes) and for 6
        // hours after: 390 evaluations per incident.
        let writes = 2.0 * 9.0 + 10.0 * 3.0 + (2.0 * 3.0 + 10.0) * 3.0;
        let reads = 2.0 * 390.0 * 0.125;
        close(r.dynamodb, writes * 1.25 / 1e6 + reads * 0.25 / 1e6);
        // Fast reaches the root: its repeat_interval (10m) and its 1 topic.
        assert_eq!(e.rules[2].notifications, 10.0);
        close(e.rules[2].sns, 10.0 * 0.5 / 1e6);
        // Shared per tick: 5 reads, and an empty Query (0.5 units) of each
        // of the 3 buckets the 3 rules can be in; a quiet cycle writes
        // nothing.
        assert_eq!(e.read_units_per_tick, 6.5);
        let shared = 43_800.0 * 6.5 * 0.25 / 1e6;
        let rules: f64 = e.rules.iter().map(|r| r.dynamodb).sum();
        close(e.dynamodb, rules + shared);
        close(
            e.total,
            e.get_metric_data + e.list_metrics + e.lambda + e.dynamodb + e.sns,
        );
        // Unsharded: one invocation a tick, no state machine.
        assert_eq!((e.shards, e.invocations_per_tick), (1, 1.0));
        assert_eq!(e.lambda_requests, 43_800.0);
        assert_eq!((e.step_functions_requests, e.step_functions), (0.0, 0.0));
    }

    #[test]
    fn shards_add_invocations_a_state_machine_and_constant_reads() {
        let one = estimate(&config(TWO), &Prices::default(), &Assumptions::default());
        let a = Assumptions {
            shards: 4,
            ..Assumptions::default()
        };
        let e = estimate(&config(TWO), &Prices::default(), &a);
        // 4 shards, then the delivery stage: 5 invocations a tick of 300 ms
        // at 256 MB.
        assert_eq!((e.shards, e.invocations_per_tick), (4, 5.0));
        assert_eq!(e.lambda_requests, 219_000.0);
        close(e.lambda_gb_seconds, 219_000.0 * 0.3 * 0.25);
        close(e.lambda, 219_000.0 * 0.2 / 1e6 + 16_425.0 * 0.000_013_333_4);
        // One Express execution a tick: a shard then delivery, 600 ms in
        // 64 MB: 0.0375 GB-s each.
        assert_eq!(e.step_functions_requests, 43_800.0);
        close(e.step_functions_gb_seconds, 1_642.5);
        close(
            e.step_functions,
            43_800.0 * 1.0 / 1e6 + 1_642.5 * 0.000_016_67,
        );
        // Each shard reads its own cycle partition: 4 more read units a
        // tick; the bucket Queries are split, not multiplied.
        assert_eq!(e.read_units_per_tick, 6.5 + 4.0);
        let rules: f64 = e.rules.iter().map(|r| r.dynamodb).sum();
        close(e.dynamodb, rules + 43_800.0 * 10.5 * 0.25 / 1e6);
        assert_eq!(
            e.rules.iter().map(|r| r.dynamodb).collect::<Vec<_>>(),
            one.rules.iter().map(|r| r.dynamodb).collect::<Vec<_>>(),
            "the rules' own reads and writes do not depend on the shards"
        );
        assert_eq!(e.get_metric_data, one.get_metric_data);
        close(
            e.total,
            e.get_metric_data + e.list_metrics + e.lambda + e.step_functions + e.dynamodb + e.sns,
        );
        close(
            e.total - one.total,
            (e.lambda - one.lambda) + e.step_functions + 43_800.0 * 4.0 * 0.25 / 1e6,
        );
    }

    #[test]
    fn step_functions_duration_is_billed_in_100_ms() {
        // 2 × 120 ms = 240 ms, billed as 300 ms.
        let a = Assumptions {
            shards: 2,
            cycle_ms: 120.0,
            ..Assumptions::default()
        };
        let e = estimate(&config(TWO), &Prices::default(), &a);
        close(e.step_functions_gb_seconds, 43_800.0 * 0.3 * 0.0625);
        assert_eq!(e.invocations_per_tick, 3.0);
        // Out of range: at most 64 shards, at least 1.
        for (asked, got) in [(0, 1), (65, 64)] {
            let a = Assumptions {
                shards: asked,
                ..Assumptions::default()
            };
            assert_eq!(estimate(&config(TWO), &Prices::default(), &a).shards, got);
        }
    }

    #[test]
    fn constant_reads_do_not_grow_with_the_rules() {
        // 5 shared reads and 64 empty bucket Queries at 0.5 units, from 64
        // rules up; plus one read per shard's cycle partition.
        assert_eq!(read_units_per_tick(1, 3), 6.5);
        assert_eq!(read_units_per_tick(1, 64), 37.0);
        assert_eq!(read_units_per_tick(1, 100_000), 37.0);
        assert_eq!(read_units_per_tick(4, 100_000), 41.0);
        assert_eq!(read_units_per_tick(64, 100_000), 101.0);
        assert_eq!(invocations_per_tick(1), 1.0);
        assert_eq!(invocations_per_tick(64), 65.0);
    }

    /// A Metrics Insights query is billed by the metrics it analyzes (an
    /// assumption: its LIMIT caps only the series returned), once per fetch
    /// for all its groups and once per 5 minutes for discovery; two rules
    /// sharing it fetch it once.
    #[test]
    fn metrics_insights_queries_count_the_metrics_they_analyze() {
        let text = r#"rules:
  - name: Hot
    metrics:
      cpu: {query: 'SELECT MAX(CPUUtilization) FROM "AWS/EC2" GROUP BY InstanceId LIMIT 20'}
    expression: cpu
    condition: {op: ">", threshold: 90}
  - name: VeryHot
    metrics:
      cpu: {query: 'SELECT MAX(CPUUtilization) FROM "AWS/EC2" GROUP BY InstanceId LIMIT 20'}
    expression: cpu
    condition: {op: ">", threshold: 99}
"#;
        let a = Assumptions {
            wildcard_values: 50.0,
            ..Assumptions::default()
        };
        let e = estimate(&config(text), &Prices::default(), &a);
        // 43,800 evaluations and 8,760 discoveries, 500 metrics analyzed
        // each (the assumption, not the LIMIT of 20).
        let month = 500.0 * (43_800.0 + 8_760.0);
        close(e.metrics_requested, month);
        close(e.metrics_requested_without_dedup, 2.0 * month);
        assert_eq!(
            e.insights,
            vec![InsightsQueryCost {
                query: r#"SELECT MAX(CPUUtilization) FROM "AWS/EC2" GROUP BY InstanceId LIMIT 20"#
                    .to_string(),
                analyzed: 500.0,
                series: 20.0,
                fetches: 43_800.0 + 8_760.0,
            }]
        );
        let hot = rule_of(&e, "Hot");
        // Instances: the assumed values, at most the LIMIT; no ListMetrics.
        assert_eq!((hot.instances, hot.metrics_per_evaluation), (20.0, 500.0));
        assert_eq!(hot.list_metrics, 0.0);
        close(hot.get_metric_data, month * 0.00001);
        // As a CloudWatch alarm: one Metrics Insights alarm, billed per
        // metric analyzed.
        assert_eq!((hot.alarm.alarms, hot.alarm.metrics), (1.0, 500.0));
        close(hot.alarm.cost, 50.0);
        // Another figure: at most 10,000.
        for (assumed, per_fetch) in [(2_000.0, 2_000.0), (50_000.0, 10_000.0)] {
            let a = Assumptions {
                insights_metrics_analyzed: assumed,
                ..a.clone()
            };
            let e = estimate(&config(text), &Prices::default(), &a);
            assert_eq!(e.insights[0].analyzed, per_fetch);
            close(e.metrics_requested, per_fetch * (43_800.0 + 8_760.0));
        }
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

    const SENTINELS: &str = r#"
sentinels: {mode: auto}
slos:
  - name: Api
    team: a
    objective: 99.9
    sli:
      errors: {namespace: App, metric: Errors, dimensions: {Service: api}, stat: Sum}
      total: {namespace: App, metric: Requests, dimensions: {Service: api}, stat: Sum}
rules:
  - name: Ratio
    metrics:
      errors: {namespace: Shop, metric: Errors, dimensions: {Service: a}, stat: Sum}
      requests: {namespace: Shop, metric: Requests, dimensions: {Service: a}, stat: Sum}
    expression: errors / requests
    condition: {op: ">", threshold: 0.01}
  - name: Hourly
    interval: 1h
    metrics:
      orders: {namespace: Shop, metric: Orders, stat: Sum, period: 1h}
    expression: orders
    condition: {op: "<", threshold: 1}
"#;

    fn rule_of<'e>(e: &'e Estimate, name: &str) -> &'e RuleCost {
        e.rules.iter().find(|r| r.rule == name).expect("rule")
    }

    #[test]
    fn sentinel_mode_per_rule() {
        let e = estimate(
            &config(SENTINELS),
            &Prices::default(),
            &Assumptions::default(),
        );
        assert_eq!(e.sentinels.mode, Mode::Auto);
        assert!(e.sentinels.from_config);
        assert_eq!(e.sentinels.sweep, Duration::from_secs(1500));
        // A 1-minute ratio rule: its sentinel ($0.20: 2 metrics), 2 metrics
        // once per 25-minute sweep (1,752 sweeps, $0.03504) and every minute
        // for 2 hours hot (120 evaluations, $0.0024): $0.23744 against
        // $0.876 polling.
        let r = rule_of(&e, "Ratio");
        assert_eq!(
            r.mode,
            RuleMode::Sentinel("firebell-sentinel-rule.Ratio".into())
        );
        let share = r.sentinel.expect("a sentinel");
        close(share.alarm, 0.2);
        close(share.sweeps, 0.03504);
        close(share.hot, 0.0024);
        close(share.total(), 0.23744);
        close(r.polling, 0.876);
        assert_eq!(r.fetches, 1_872.0);
        close(r.get_metric_data, 0.03744);
        close(r.total(), 0.03744 + 0.2 + r.dynamodb + r.sns);
        // A 1-hour rule: polling is cheaper (730 requests, $0.0073, against
        // $0.10 of alarm, 730 sweeps and 2 hot evaluations).
        let h = rule_of(&e, "Hourly");
        let RuleMode::Polling(why @ Polling::Cheaper { polling, sentinel }) = &h.mode else {
            panic!("{:?}", h.mode);
        };
        close(*polling, 0.0073);
        close(*sentinel, 0.1 + 0.0073 + 0.00002);
        assert_eq!(
            why.to_string(),
            "polling is cheaper ($0.007 against $0.107 a month)"
        );
        close(h.sentinel.expect("would be").total(), 0.10732);
        close(h.get_metric_data, 0.0073);
        assert_eq!(h.fetches, 730.0);
        // The SLO: one sentinel for its two page rules, each with its own
        // sweeps and hot polling and half the alarm; the 3-day ticket
        // (every 15 minutes) is polled.
        let rows: Vec<(&str, Vec<&str>, bool)> = e
            .sentinels
            .alarms
            .iter()
            .map(|a| {
                (
                    a.name.as_str(),
                    a.rules.iter().map(String::as_str).collect(),
                    a.used,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (
                    "firebell-sentinel-slo.Api",
                    vec!["Api:page:1h", "Api:page:6h"],
                    true
                ),
                ("firebell-sentinel-rule.Ratio", vec!["Ratio"], true),
            ]
        );
        let slo = &e.sentinels.alarms[0];
        close(slo.cost.polling, 1.752);
        close(slo.cost.sentinel, 0.2 + 0.07008 + 0.0048);
        // Against 2 × (2 alarms of 2 metrics + a composite).
        close(slo.alarm_equivalent, 1.8);
        for page in ["Api:page:1h", "Api:page:6h"] {
            let p = rule_of(&e, page);
            assert_eq!(
                p.mode,
                RuleMode::Sentinel("firebell-sentinel-slo.Api".into())
            );
            let share = p.sentinel.expect("a share");
            close(share.alarm, 0.1);
            close(share.total(), 0.1 + 0.03504 + 0.0024);
        }
        let ticket = rule_of(&e, "Api:ticket:3d");
        assert_eq!(ticket.mode, RuleMode::Polling(Polling::SloCoarse));
        assert_eq!(ticket.sentinel, None);
        assert_eq!(e.sentinels.covered_rules, 3);
    }

    #[test]
    fn sentinel_mode_totals() {
        let c = config(SENTINELS);
        let e = estimate(&c, &Prices::default(), &Assumptions::default());
        // De-duplicated: Ratio's 2 queries and the SLO's 2 one-minute ones
        // (shared by its page rules) 1,872 times each, Hourly's 730 times,
        // the ticket's 2 fifteen-minute queries 2,920 times.
        assert_eq!(e.metrics_requested, 4.0 * 1_872.0 + 730.0 + 2.0 * 2_920.0);
        // Two sentinels of 2 metrics.
        close(e.sentinels.alarm_cost, 0.4);
        // One DescribeAlarms a tick and one listing per sweep (2 sentinels:
        // one page of 100).
        assert_eq!(e.sentinels.describe_alarms_requests, 43_800.0 + 1_752.0);
        close(e.sentinels.describe_alarms, 0.45552);
        // 5 shared reads, 5 empty buckets at 0.5, and the sync record read
        // by the cycle and by the reconcile.
        assert_eq!(e.read_units_per_tick, 5.0 + 2.5 + 2.0);
        close(
            e.total,
            e.get_metric_data + e.list_metrics + e.lambda + e.dynamodb + e.sns + 0.4 + 0.45552,
        );
        // Sentinels off: every rule polled, the same queries every interval.
        let off = Assumptions {
            sentinels: SentinelsAs::Off,
            ..Assumptions::default()
        };
        let p = estimate(&c, &Prices::default(), &off);
        assert_eq!(p.sentinels.mode, Mode::Off);
        assert!(!p.sentinels.from_config);
        assert!(
            p.rules
                .iter()
                .all(|r| r.mode == RuleMode::Polling(Polling::Off))
        );
        assert!(p.sentinels.alarms.iter().all(|a| !a.used));
        assert_eq!(p.metrics_requested, 4.0 * 43_800.0 + 730.0 + 2.0 * 2_920.0);
        close(p.get_metric_data, e.sentinels.polling_get_metric_data);
        assert_eq!(
            (p.sentinels.alarm_cost, p.sentinels.describe_alarms_requests),
            (0.0, 0.0)
        );
        assert_eq!(p.read_units_per_tick, 7.5);
        close(
            p.total,
            p.get_metric_data + p.list_metrics + p.lambda + p.dynamodb + p.sns,
        );
        // The assumptions are inputs: a 30-minute sweep and 10 hours hot.
        let slower = Assumptions {
            sweep: Some(Duration::from_secs(1800)),
            hot_hours: 10.0,
            ..Assumptions::default()
        };
        let s = estimate(&c, &Prices::default(), &slower);
        let share = rule_of(&s, "Ratio").sentinel.expect("a sentinel");
        close(share.sweeps, 0.0292);
        close(share.hot, 0.012);
        assert_eq!(rule_of(&s, "Ratio").fetches, 1_460.0 + 600.0);
        assert_eq!(s.sentinels.describe_alarms_requests, 43_800.0 + 1_460.0);
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
