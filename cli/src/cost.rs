//! `firebell cost --config PATH`: the monthly cost of running a config with
//! firebell, per rule and in total, beside the equivalent CloudWatch alarms.
//! The model and its assumptions: `firebell_tools::cost`. `-o json`: one
//! object (`firebell.cost/v1`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use firebell_core::decode::format_duration;
use firebell_tools::cost::{
    ALERT_ITEM_KB, Assumptions, Estimate, HOURS_PER_MONTH, MAX_SHARDS, PRICES_RECORDED, Prices,
    QUERY_READ_UNITS, RuleMode, SHARED_READS_PER_CYCLE, SHARED_WRITES_PER_WRITING_CYCLE,
    STATE_BUCKETS, SentinelsAs, dollars, estimate, thousands,
};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub config: crate::ConfigArgs,
    #[command(flatten)]
    pub output: crate::output::OutputArgs,
    /// Lambda memory, in MB.
    #[arg(long, default_value_t = 256.0)]
    pub memory_mb: f64,
    /// Duration of one evaluator invocation, in milliseconds: the cycle, or
    /// with --shards a shard or the delivery stage (measure it: the
    /// Lambda's billed duration).
    #[arg(long, default_value_t = 300.0)]
    pub cycle_ms: f64,
    /// Shards the rules are split into (the stack's ShardCount, 1 to 64):
    /// above 1, each tick invokes the evaluator once per shard and once to
    /// deliver, through a Step Functions Express execution.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_SHARDS)))]
    pub shards: u32,
    /// Incidents (fire, then resolve) per rule instance per month.
    #[arg(long, default_value_t = 2.0)]
    pub incidents: f64,
    /// How long an incident fires, in minutes.
    #[arg(long, default_value_t = 30.0)]
    pub incident_minutes: f64,
    /// Values a wildcard dimension (`*`) expands to.
    #[arg(long, default_value_t = 1.0)]
    pub wildcard_values: f64,
    /// Metrics a Metrics Insights query analyzes per fetch: every metric
    /// it matches (a LIMIT caps only the series returned), at most 10,000.
    #[arg(long, default_value_t = firebell_tools::cost::DEFAULT_INSIGHTS_ANALYZED)]
    pub insights_analyzed: f64,
    /// Estimate with sentinel alarms as the config says (`sentinels:
    /// {mode}`), or as if `auto` or `off`.
    #[arg(long, value_enum, default_value_t = SentinelsArg::Config)]
    pub sentinels: SentinelsArg,
    /// Hours a month a rule watched by a sentinel is hot (polled every
    /// interval).
    #[arg(long, default_value_t = firebell_core::sentinel::DEFAULT_HOT_HOURS, value_parser = hours)]
    pub hot_hours: f64,
    /// How often every rule is evaluated whatever its sentinel says
    /// (whole minutes, 1m to 1d; default: the config's `sweep`, 25m).
    #[arg(long, value_parser = sweep)]
    pub sweep: Option<Duration>,
    /// $ per 1,000 metrics requested with GetMetricData.
    #[arg(long, default_value_t = 0.01)]
    pub price_get_metric_data: f64,
    /// $ per 1,000 CloudWatch API requests (ListMetrics).
    #[arg(long, default_value_t = 0.01)]
    pub price_api_requests: f64,
    /// $ per million Lambda requests.
    #[arg(long, default_value_t = 0.20)]
    pub price_lambda_requests: f64,
    /// $ per Lambda GB-second (arm64).
    #[arg(long, default_value_t = 0.000_013_333_4)]
    pub price_lambda_gb_second: f64,
    /// $ per million Step Functions Express requests (with --shards).
    #[arg(long, default_value_t = 1.00)]
    pub price_step_functions_requests: f64,
    /// $ per Step Functions Express GB-second (with --shards).
    #[arg(long, default_value_t = 0.000_016_67)]
    pub price_step_functions_gb_second: f64,
    /// $ per million DynamoDB write request units.
    #[arg(long, default_value_t = 1.25)]
    pub price_dynamodb_wru: f64,
    /// $ per million DynamoDB read request units.
    #[arg(long, default_value_t = 0.25)]
    pub price_dynamodb_rru: f64,
    /// $ per million SNS publishes.
    #[arg(long, default_value_t = 0.50)]
    pub price_sns: f64,
    /// $ per standard-resolution alarm metric per month.
    #[arg(long, default_value_t = 0.10)]
    pub price_alarm: f64,
    /// $ per high-resolution alarm metric per month.
    #[arg(long, default_value_t = 0.30)]
    pub price_alarm_high_res: f64,
    /// $ per composite alarm per month.
    #[arg(long, default_value_t = 0.50)]
    pub price_alarm_composite: f64,
}

/// `--sentinels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SentinelsArg {
    /// The config's `sentinels: {mode}`.
    Config,
    /// As if `sentinels: {mode: auto}`.
    Auto,
    /// As if `sentinels: {mode: off}`.
    Off,
}

fn hours(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|h| h.is_finite() && (0.0..=HOURS_PER_MONTH).contains(h))
        .ok_or_else(|| format!("invalid hours {s:?} (expected 0 to {HOURS_PER_MONTH})"))
}

fn sweep(s: &str) -> Result<Duration, String> {
    use firebell_engine::sentinel::{MAX_SWEEP, MIN_SWEEP};
    firebell_core::decode::parse_duration(s)
        .filter(|d| (MIN_SWEEP..=MAX_SWEEP).contains(d) && d.as_secs() % 60 == 0)
        .ok_or_else(|| format!("invalid sweep {s:?} (expected whole minutes from 1m to 1d)"))
}

pub(crate) fn main(args: &Args) -> Result<ExitCode> {
    let config = match firebell_engine::load(&args.config.config) {
        Ok((config, _)) => config,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    let prices = Prices {
        get_metric_data_per_1000_metrics: args.price_get_metric_data,
        api_per_1000_requests: args.price_api_requests,
        lambda_per_million_requests: args.price_lambda_requests,
        lambda_per_gb_second: args.price_lambda_gb_second,
        step_functions_per_million_requests: args.price_step_functions_requests,
        step_functions_per_gb_second: args.price_step_functions_gb_second,
        dynamodb_per_million_wru: args.price_dynamodb_wru,
        dynamodb_per_million_rru: args.price_dynamodb_rru,
        sns_per_million_publishes: args.price_sns,
        alarm_standard: args.price_alarm,
        alarm_high_resolution: args.price_alarm_high_res,
        alarm_composite: args.price_alarm_composite,
    };
    let a = Assumptions {
        memory_mb: args.memory_mb,
        cycle_ms: args.cycle_ms,
        shards: args.shards,
        cycle_every: Duration::from_secs(60),
        incidents_per_rule: args.incidents,
        incident_minutes: args.incident_minutes,
        wildcard_values: args.wildcard_values,
        insights_metrics_analyzed: args.insights_analyzed,
        sentinels: match args.sentinels {
            SentinelsArg::Config => SentinelsAs::Config,
            SentinelsArg::Auto => SentinelsAs::Auto,
            SentinelsArg::Off => SentinelsAs::Off,
        },
        hot_hours: args.hot_hours,
        sweep: args.sweep,
    };
    let e = estimate(&config, &prices, &a);
    let source = args.config.config.display().to_string();
    if args.output.json() {
        crate::json::print(&crate::json::cost(&source, &e));
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", report(&source, &e, &prices, &a));
    Ok(ExitCode::SUCCESS)
}

/// The printed estimate.
pub(crate) fn report(source: &str, e: &Estimate, p: &Prices, a: &Assumptions) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "firebell cost: {source}, {} rule(s), per month ({} hours)\n\n",
        e.rules.len(),
        HOURS_PER_MONTH
    ));
    let name_w = e
        .rules
        .iter()
        .map(|r| r.rule.len())
        .max()
        .unwrap_or(4)
        .max(28);
    s.push_str(&format!(
        "  {:<name_w$}  {:>5}  {:>7}  {:>13}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  {:<8}   {}\n",
        "rule",
        "every",
        "metrics",
        "GetMetricData",
        "DynamoDB",
        "SNS",
        "firebell",
        "alarms",
        "polling",
        "sentinel",
        "mode",
        "CloudWatch alarm equivalent"
    ));
    for r in &e.rules {
        s.push_str(&format!(
            "  {:<name_w$}  {:>5}  {:>7}  {:>13}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  {:<8}   {}\n",
            r.rule,
            format_duration(r.interval),
            r.metrics_per_evaluation,
            dollars(r.get_metric_data + r.list_metrics),
            dollars(r.dynamodb),
            dollars(r.sns),
            dollars(r.total()),
            dollars(r.alarm.cost),
            dollars(r.polling),
            r.sentinel.map_or("-".to_string(), |c| dollars(c.total())),
            r.mode.name(),
            r.alarm.describe()
        ));
    }
    s.push_str(&sentinel_lines(e));
    let saved = e.metrics_requested_without_dedup - e.metrics_requested;
    s.push_str(&format!(
        "\n  Shared: Lambda {} ({} requests, {} GB-s); DynamoDB per cycle {} ({} read units a tick; a quiet cycle writes nothing)\n",
        dollars(e.lambda),
        thousands(e.lambda_requests),
        thousands(e.lambda_gb_seconds),
        dollars(
            e.dynamodb
                - e.rules.iter().map(|r| r.dynamodb).sum::<f64>()
        ),
        e.read_units_per_tick,
    ));
    if e.shards > 1 {
        s.push_str(&format!(
            "  Shards: {} ({} evaluator invocations a tick: the shards, then delivery); Step Functions Express {} ({} executions, {} GB-s)\n",
            e.shards,
            e.invocations_per_tick,
            dollars(e.step_functions),
            thousands(e.step_functions_requests),
            thousands(e.step_functions_gb_seconds),
        ));
    }
    s.push_str(&format!(
        "  GetMetricData: {} metrics requested a month after de-duplication ({} saved by fetching shared queries once)\n",
        thousands(e.metrics_requested),
        thousands(saved)
    ));
    for q in &e.insights {
        s.push_str(&format!(
            "  Metrics Insights: {} metrics analyzed a month by {} (assumed {} metrics analyzed a fetch, --insights-analyzed: every metric the query matches is billed, its LIMIT caps only the {} series returned; {} fetches and discoveries)
",
            thousands(q.analyzed * q.fetches),
            q.query,
            count_of(q.analyzed),
            count_of(q.series),
            thousands(q.fetches),
        ));
    }
    let step_functions = if e.shards > 1 {
        format!(", Step Functions {}", dollars(e.step_functions))
    } else {
        String::new()
    };
    let sentinels = if e.sentinels.mode == firebell_engine::sentinel::Mode::Auto {
        format!(
            ", sentinel alarms {}, DescribeAlarms {}",
            dollars(e.sentinels.alarm_cost),
            dollars(e.sentinels.describe_alarms)
        )
    } else {
        String::new()
    };
    s.push_str(&format!(
        "\n  Total firebell:          {:>9} a month (GetMetricData {}, ListMetrics {}, Lambda {}{step_functions}, DynamoDB {}, SNS {}{sentinels})\n",
        dollars(e.total),
        dollars(e.get_metric_data),
        dollars(e.list_metrics),
        dollars(e.lambda),
        dollars(e.dynamodb),
        dollars(e.sns),
    ));
    s.push_str(&format!(
        "  Total CloudWatch alarms: {:>9} a month (plus the same SNS publishes)\n",
        dollars(e.cloudwatch_alarms)
    ));
    s.push('\n');
    s.push_str(&wrap(&format!(
        "Prices: us-east-1 list prices recorded {PRICES_RECORDED} (override with --price-*): GetMetricData ${} per 1,000 metrics; \
ListMetrics and DescribeAlarms ${} per 1,000 requests; Lambda arm64 ${} per million requests and ${} per GB-s (free tier not subtracted); \
{}DynamoDB on demand ${} per million writes, ${} per million reads; SNS ${} per million publishes; \
alarms ${} per metric (standard), ${} (high resolution), ${} per composite alarm.\n",
        p.get_metric_data_per_1000_metrics,
        p.api_per_1000_requests,
        p.lambda_per_million_requests,
        p.lambda_per_gb_second,
        if e.shards > 1 {
            format!(
                "Step Functions Express ${} per million requests and ${} per GB-s (64 MB, 100 ms units); ",
                p.step_functions_per_million_requests, p.step_functions_per_gb_second
            )
        } else {
            String::new()
        },
        p.dynamodb_per_million_wru,
        p.dynamodb_per_million_rru,
        p.sns_per_million_publishes,
        p.alarm_standard,
        p.alarm_high_resolution,
        p.alarm_composite,
    )));
    s.push_str(&wrap(&format!(
        "Assumptions (override with flags): a cycle every {} ({} a month) of {} ms at {} MB{}; \
{} incident(s) per rule a month, {} minutes each; {} value(s) per wildcard; \
{} lease/tick writes per cycle that writes, {} reads per cycle besides rule states{}, \
{} state bucket Queries a tick at {} read units each when empty; alert records {} KB. \
Per-rule figures are each rule on its own; the totals fetch shared queries once.\n",
        format_duration(a.cycle_every),
        thousands(e.cycles),
        a.cycle_ms,
        a.memory_mb,
        if e.shards > 1 {
            format!(
                " per invocation, {} shards ({} invocations a tick; an execution lasts a shard then delivery)",
                e.shards, e.invocations_per_tick
            )
        } else {
            String::new()
        },
        a.incidents_per_rule,
        a.incident_minutes,
        a.wildcard_values,
        SHARED_WRITES_PER_WRITING_CYCLE,
        SHARED_READS_PER_CYCLE,
        if e.shards > 1 {
            " and 1 per shard"
        } else {
            ""
        },
        STATE_BUCKETS.min(e.rules.len() as f64),
        QUERY_READ_UNITS,
        ALERT_ITEM_KB,
    )));
    s
}

/// What sentinels do to the estimate: the mode and why, the sentinels,
/// the rules polled and why.
fn sentinel_lines(e: &Estimate) -> String {
    let st = &e.sentinels;
    let mut s = String::from("\n");
    let whence = if st.from_config {
        "the config's `sentinels:`"
    } else {
        "--sentinels"
    };
    let assumed = format!(
        "sweep every {}, {} hour(s) hot a month",
        format_duration(st.sweep),
        st.hot_hours
    );
    match st.mode {
        firebell_engine::sentinel::Mode::Off => {
            s.push_str(&wrap(&format!(
                "Sentinels: off ({whence}): every rule is polled every interval. \
The `sentinel` column is what a sentinel alarm would cost with `sentinels: {{mode: auto}}` \
(or --sentinels auto; {assumed}).\n"
            )));
        }
        firebell_engine::sentinel::Mode::Auto => {
            let polled = e.rules.len() - st.covered_rules;
            s.push_str(&wrap(&format!(
                "Sentinels: auto ({whence}; {assumed}): {} rule(s) watched by {} sentinel alarm(s) \
({} a month), polled while hot and at each sweep; {polled} polled every interval. \
DescribeAlarms {} ({} requests: one a tick{}, and the reconcile's listing once per sweep). \
GetMetricData {} against {} if every rule were polled.\n",
                st.covered_rules,
                st.alarms.len(),
                dollars(st.alarm_cost),
                dollars(st.describe_alarms),
                thousands(st.describe_alarms_requests),
                if e.shards > 1 { " per shard" } else { "" },
                dollars(e.get_metric_data),
                dollars(st.polling_get_metric_data),
            )));
        }
    }
    for row in &st.alarms {
        s.push_str(&format!(
            "  {} ({} metric(s), covers {}): polling {}, sentinel {} (alarm {}, sweeps {}, hot {}), CloudWatch alarms {}\n",
            row.name,
            row.metrics,
            row.rules.join(", "),
            dollars(row.cost.polling),
            dollars(row.cost.sentinel),
            dollars(row.cost.alarm),
            dollars(row.cost.sweeps),
            dollars(row.cost.hot),
            dollars(row.alarm_equivalent),
        ));
    }
    if st.alarms.iter().any(|row| row.rules.len() > 1) {
        s.push_str(&wrap(
            "An SLO's sentinel covers several rules: each shows its own sweeps and hot polling and an even share of the alarm.\n",
        ));
    }
    if st.mode == firebell_engine::sentinel::Mode::Auto {
        for r in &e.rules {
            if let RuleMode::Polling(why) = &r.mode {
                s.push_str(&format!("  polled: {}: {why}\n", r.rule));
            }
        }
    }
    s
}

/// Wraps a paragraph at 100 columns, continuation lines indented.
fn wrap(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > 100 {
            out.push_str(&line);
            out.push('\n');
            line = "  ".to_string();
        } else if !line.is_empty() && line != "  " {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.trim().is_empty() {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// A count without float noise: `500`, `2.5`.
fn count_of(v: f64) -> String {
    if v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}
