//! Sentinel alarms as CloudWatch metric alarms
//! ([`AlarmService`](firebell_core::ports::AlarmService)).
//!
//! - `alarming`: `DescribeAlarms` with `AlarmNamePrefix`, `StateValue`
//!   ALARM and `AlarmTypes` MetricAlarm, 100 a page: one call a cycle for
//!   any number of sentinels up to 100 in ALARM.
//! - `list`: the same without the state filter (name, description, state).
//! - `put`: one `PutMetricAlarm`: a plain metric alarm when the sentinel
//!   watches one metric ([`SentinelAlarm::metric_math`] `None`), else the
//!   metric-math form (`Metrics`: one `MetricStat` query per metric, not
//!   returned, and the expression, returned). Always `DatapointsToAlarm` 1,
//!   no actions (`ActionsEnabled` false: firebell reads the state), tagged
//!   `firebell:managed=sentinel` and `firebell:rules`.
//! - `delete`: `DeleteAlarms`, 100 names a call.
//!
//! Only names under a non-empty prefix are ever listed (an empty prefix
//! would cover every alarm of the account and is refused). Throttled calls
//! are retried with jittered backoff ([`Backoff`]); a request CloudWatch
//! refuses (access denied, validation, a quota) is
//! [`AlarmError::Refused`], throttling [`AlarmError::Throttled`], anything
//! else [`AlarmError::Unavailable`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::operation::put_metric_alarm::builders::PutMetricAlarmInputBuilder;
use aws_sdk_cloudwatch::types::{
    AlarmType, ComparisonOperator, Dimension, Metric, MetricDataQuery, MetricStat, StateValue,
    Statistic, Tag,
};
use firebell_core::model::{MetricSpec, Stat};
use firebell_core::ports::{AlarmError, AlarmInfo, AlarmService, AlarmState};
use firebell_core::sentinel::SentinelAlarm;
use firebell_core::series::Epoch;

use crate::error::{AwaitClassified, Classified, Fault, Resource};
use crate::retry::Backoff;

/// `DescribeAlarms` page size (its maximum).
pub const DESCRIBE_PAGE: i32 = 100;
/// Names per `DeleteAlarms` call (its maximum).
pub(crate) const DELETE_BATCH: usize = 100;
/// The tag every sentinel carries: `firebell:managed` = `sentinel`.
pub const MANAGED_TAG: (&str, &str) = ("firebell:managed", "sentinel");
/// The tag listing the rules a sentinel covers (space-separated, at most
/// [`TAG_VALUE_MAX`] characters).
pub const RULES_TAG: &str = "firebell:rules";
/// The longest tag value CloudWatch accepts.
pub(crate) const TAG_VALUE_MAX: usize = 256;
/// The id of the expression query of a metric-math sentinel (another one
/// when a metric has that id: [`expression_id`]).
pub(crate) const EXPRESSION_ID: &str = "sentinel";
/// The environment variable naming the deployment's sentinel prefix.
pub const SENTINEL_PREFIX_ENV: &str = "FIREBELL_SENTINEL_PREFIX";
/// The longest sentinel prefix (an alarm name is at most 255 characters).
pub(crate) const MAX_PREFIX_LEN: usize = 128;
/// Pages one listing follows at most.
const MAX_PAGES: u32 = 1000;

/// API calls made by a [`CloudWatchAlarms`] so far (every attempt counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlarmStats {
    pub describe_alarms: u64,
    pub put_metric_alarm: u64,
    pub delete_alarms: u64,
    /// Attempts that were throttled and retried after a backoff.
    pub throttle_retries: u64,
}

impl AlarmStats {
    /// API calls made (retries of a throttled call count again).
    pub fn total(&self) -> u64 {
        self.describe_alarms + self.put_metric_alarm + self.delete_alarms
    }
}

impl fmt::Display for AlarmStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DescribeAlarms={} PutMetricAlarm={} DeleteAlarms={} throttle_retries={}",
            self.describe_alarms, self.put_metric_alarm, self.delete_alarms, self.throttle_retries
        )
    }
}

#[derive(Debug, Default)]
struct Counters {
    describe_alarms: AtomicU64,
    put_metric_alarm: AtomicU64,
    delete_alarms: AtomicU64,
    throttle_retries: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// [`AlarmService`] over CloudWatch alarms.
#[derive(Debug)]
pub struct CloudWatchAlarms {
    client: Client,
    counters: Arc<Counters>,
    backoff: Backoff,
}

impl CloudWatchAlarms {
    pub fn new(client: Client) -> CloudWatchAlarms {
        CloudWatchAlarms::with_backoff(client, Backoff::default())
    }

    pub fn with_backoff(client: Client, backoff: Backoff) -> CloudWatchAlarms {
        CloudWatchAlarms {
            client,
            counters: Arc::new(Counters::default()),
            backoff,
        }
    }

    /// Alarms with a client built from `config` (see [`crate::load_sdk_config`]).
    pub fn from_sdk_config(config: &aws_config::SdkConfig) -> CloudWatchAlarms {
        CloudWatchAlarms::new(Client::new(config))
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// API calls made so far.
    pub fn stats(&self) -> AlarmStats {
        let c = &self.counters;
        AlarmStats {
            describe_alarms: c.describe_alarms.load(Ordering::Relaxed),
            put_metric_alarm: c.put_metric_alarm.load(Ordering::Relaxed),
            delete_alarms: c.delete_alarms.load(Ordering::Relaxed),
            throttle_retries: c.throttle_retries.load(Ordering::Relaxed),
        }
    }

    fn region(&self) -> Option<String> {
        self.client
            .config()
            .region()
            .map(|r| r.as_ref().to_string())
    }

    /// [`crate::retry::retry_throttled`] with this adapter's backoff and counter.
    async fn retry_throttled<T, F, Fut>(&self, op: F) -> Result<T, Classified>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Classified>>,
    {
        crate::retry::retry_throttled(&self.backoff, &self.counters.throttle_retries, "alarms", op)
            .await
    }

    fn error(&self, c: &Classified, what: &str) -> AlarmError {
        alarm_error(c, what, self.region().as_deref())
    }

    /// Every metric alarm under `prefix` (all pages), optionally only those
    /// in `state`.
    async fn describe(
        &self,
        prefix: &str,
        state: Option<StateValue>,
    ) -> Result<Vec<AlarmInfo>, AlarmError> {
        check_prefix(prefix)?;
        let mut out = Vec::new();
        let mut next_token: Option<String> = None;
        let mut pages = 0u32;
        loop {
            pages += 1;
            let page = self
                .retry_throttled(|| {
                    bump(&self.counters.describe_alarms);
                    self.client
                        .describe_alarms()
                        .alarm_name_prefix(prefix)
                        .alarm_types(AlarmType::MetricAlarm)
                        .set_state_value(state.clone())
                        .max_records(DESCRIBE_PAGE)
                        .set_next_token(next_token.clone())
                        .send()
                        .await_classified()
                })
                .await
                .map_err(|c| self.error(&c, "DescribeAlarms"))?;
            for a in page.metric_alarms() {
                let Some(name) = a.alarm_name() else {
                    continue;
                };
                // The filter says so; never trust an alarm outside the prefix.
                if !name.starts_with(prefix) {
                    continue;
                }
                out.push(AlarmInfo {
                    name: name.to_string(),
                    description: a.alarm_description().unwrap_or_default().to_string(),
                    state: state_of(a.state_value()),
                });
            }
            match page.next_token() {
                Some(t) if !t.is_empty() && Some(t) != next_token.as_deref() => {
                    if pages >= MAX_PAGES {
                        return Err(AlarmError::Unavailable(format!(
                            "DescribeAlarms: more than {MAX_PAGES} pages under {prefix:?}"
                        )));
                    }
                    next_token = Some(t.to_string());
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// One `DeleteAlarms` of at most [`DELETE_BATCH`] names.
    async fn delete_batch(&self, names: &[String]) -> Result<(), Classified> {
        self.retry_throttled(|| {
            bump(&self.counters.delete_alarms);
            self.client
                .delete_alarms()
                .set_alarm_names(Some(names.to_vec()))
                .send()
                .await_classified()
        })
        .await
        .map(drop)
    }
}

/// The port error of a failed call `what`, with the one-line message of
/// the problem when recognised.
fn alarm_error(c: &Classified, what: &str, region: Option<&str>) -> AlarmError {
    let message = c.describe("cloudwatch", what, Resource::Metrics, region);
    match c.fault {
        Fault::Throttled => AlarmError::Throttled(message),
        Fault::Transient => AlarmError::Unavailable(message),
        Fault::Client | Fault::ConditionFailed => AlarmError::Refused(message),
    }
}

fn check_prefix(prefix: &str) -> Result<(), AlarmError> {
    if prefix.is_empty() {
        return Err(AlarmError::Refused(
            "an empty sentinel name prefix would cover every alarm of the account".to_string(),
        ));
    }
    Ok(())
}

/// The sentinel name prefix from a setting (`--sentinel-prefix`,
/// [`SENTINEL_PREFIX_ENV`]): unset or blank is
/// [`firebell_core::sentinel::DEFAULT_PREFIX`]; otherwise 1 to
/// [`MAX_PREFIX_LEN`] printable ASCII characters, no spaces.
pub fn sentinel_prefix(value: Option<&str>) -> Result<String, String> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(firebell_core::sentinel::DEFAULT_PREFIX.to_string());
    };
    if v.len() > MAX_PREFIX_LEN || !v.chars().all(|c| c.is_ascii_graphic()) {
        return Err(format!(
            "sentinel prefix {v:?}: expected 1 to {MAX_PREFIX_LEN} printable ASCII characters without spaces (the start of every sentinel alarm's name)"
        ));
    }
    Ok(v.to_string())
}

fn state_of(v: Option<&StateValue>) -> AlarmState {
    match v {
        Some(StateValue::Alarm) => AlarmState::Alarm,
        Some(StateValue::Ok) => AlarmState::Ok,
        _ => AlarmState::InsufficientData,
    }
}

fn is_not_found(c: &Classified) -> bool {
    matches!(
        c.code.as_deref(),
        Some("ResourceNotFound" | "ResourceNotFoundException")
    )
}

/// The value of the [`RULES_TAG`]: the rules, space-separated, characters
/// a tag value may not hold replaced by `_`, cut at [`TAG_VALUE_MAX`].
pub(crate) fn rules_tag_value(rules: &[String]) -> String {
    let allowed = |c: char| c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c);
    rules
        .iter()
        .map(|r| {
            r.chars()
                .map(|c| if allowed(c) && c != ' ' { c } else { '_' })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(TAG_VALUE_MAX)
        .collect()
}

/// The id of the expression query: [`EXPRESSION_ID`], or it with a number
/// when a metric already has that id.
pub(crate) fn expression_id(alarm: &SentinelAlarm) -> String {
    let mut id = EXPRESSION_ID.to_string();
    let mut n = 1;
    while alarm.metrics.contains_key(&id) {
        id = format!("{EXPRESSION_ID}_{n}");
        n += 1;
    }
    id
}

fn comparison(alarm: &SentinelAlarm) -> ComparisonOperator {
    ComparisonOperator::from(alarm.comparison_operator())
}

fn metric(spec: &MetricSpec) -> Result<Metric, AlarmError> {
    let mut m = Metric::builder()
        .namespace(&spec.namespace)
        .metric_name(&spec.metric_name);
    for (name, value) in &spec.dimensions {
        if value == "*" {
            return Err(AlarmError::Refused(format!(
                "{}/{}: dimension {name} is a wildcard: a sentinel watches fixed dimensions",
                spec.namespace, spec.metric_name
            )));
        }
        m = m.dimensions(Dimension::builder().name(name).value(value).build());
    }
    Ok(m.build())
}

fn period(alarm: &SentinelAlarm) -> Result<i32, AlarmError> {
    i32::try_from(alarm.period_secs)
        .ok()
        .filter(|p| *p >= 60 && p % 60 == 0)
        .ok_or_else(|| {
            AlarmError::Refused(format!(
                "{}: period {}s is not a whole number of minutes",
                alarm.name, alarm.period_secs
            ))
        })
}

/// The `PutMetricAlarm` request of `alarm` (see the module docs for its
/// two forms).
pub fn put_request(alarm: &SentinelAlarm) -> Result<PutMetricAlarmInputBuilder, AlarmError> {
    let period = period(alarm)?;
    let evaluation_periods = i32::try_from(alarm.evaluation_periods)
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            AlarmError::Refused(format!(
                "{}: {} evaluation periods",
                alarm.name, alarm.evaluation_periods
            ))
        })?;
    let mut req = aws_sdk_cloudwatch::operation::put_metric_alarm::PutMetricAlarmInput::builder()
        .alarm_name(&alarm.name)
        .alarm_description(&alarm.description)
        .actions_enabled(false)
        .threshold(alarm.threshold)
        .comparison_operator(comparison(alarm))
        .evaluation_periods(evaluation_periods)
        .datapoints_to_alarm(1)
        .treat_missing_data(alarm.treat_missing_data())
        .tags(
            Tag::builder()
                .key(MANAGED_TAG.0)
                .value(MANAGED_TAG.1)
                .build(),
        )
        .tags(
            Tag::builder()
                .key(RULES_TAG)
                .value(rules_tag_value(&alarm.rules))
                .build(),
        );
    match &alarm.metric_math {
        None => {
            let mut metrics = alarm.metrics.values();
            let (Some(spec), None) = (metrics.next(), metrics.next()) else {
                return Err(AlarmError::Refused(format!(
                    "{}: a plain metric alarm watches one metric, not {}",
                    alarm.name,
                    alarm.metrics.len()
                )));
            };
            let m = metric(spec)?;
            req = req
                .namespace(&spec.namespace)
                .metric_name(&spec.metric_name)
                .set_dimensions(Some(m.dimensions().to_vec()))
                .period(period);
            req = match spec.stat {
                Stat::Percentile(_) | Stat::Range(_) | Stat::Iqm => {
                    req.extended_statistic(spec.stat.to_string())
                }
                Stat::Sum => req.statistic(Statistic::Sum),
                Stat::Average => req.statistic(Statistic::Average),
                Stat::Minimum => req.statistic(Statistic::Minimum),
                Stat::Maximum => req.statistic(Statistic::Maximum),
                Stat::SampleCount => req.statistic(Statistic::SampleCount),
            };
        }
        Some(expression) => {
            if alarm.metrics.is_empty() {
                return Err(AlarmError::Refused(format!(
                    "{}: a metric-math sentinel without metrics",
                    alarm.name
                )));
            }
            for (id, spec) in &alarm.metrics {
                req = req.metrics(
                    MetricDataQuery::builder()
                        .id(id)
                        .metric_stat(
                            MetricStat::builder()
                                .metric(metric(spec)?)
                                .period(period)
                                .stat(spec.stat.to_string())
                                .build(),
                        )
                        .return_data(false)
                        .build(),
                );
            }
            req = req.metrics(
                MetricDataQuery::builder()
                    .id(expression_id(alarm))
                    .expression(expression)
                    .label(&alarm.name)
                    .return_data(true)
                    .build(),
            );
        }
    }
    Ok(req)
}

#[async_trait]
impl AlarmService for CloudWatchAlarms {
    async fn alarming(&self, prefix: &str, _now: Epoch) -> Result<Vec<String>, AlarmError> {
        Ok(self
            .describe(prefix, Some(StateValue::Alarm))
            .await?
            .into_iter()
            .map(|a| a.name)
            .collect())
    }

    async fn list(&self, prefix: &str, _now: Epoch) -> Result<Vec<AlarmInfo>, AlarmError> {
        self.describe(prefix, None).await
    }

    async fn put(&self, alarm: &SentinelAlarm) -> Result<(), AlarmError> {
        let req = put_request(alarm)?;
        self.retry_throttled(|| {
            bump(&self.counters.put_metric_alarm);
            req.clone().send_with(&self.client).await_classified()
        })
        .await
        .map(drop)
        .map_err(|c| self.error(&c, "PutMetricAlarm"))
    }

    async fn delete(&self, names: &[String]) -> Result<(), AlarmError> {
        for chunk in names.chunks(DELETE_BATCH) {
            match self.delete_batch(chunk).await {
                Ok(()) => {}
                // One of them is gone already (and, on AWS, none of the
                // batch was deleted): one at a time, the gone ones skipped.
                Err(c) if is_not_found(&c) && chunk.len() > 1 => {
                    for name in chunk {
                        match self.delete_batch(std::slice::from_ref(name)).await {
                            Ok(()) => {}
                            Err(c) if is_not_found(&c) => {}
                            Err(c) => return Err(self.error(&c, "DeleteAlarms")),
                        }
                    }
                }
                Err(c) if is_not_found(&c) => {}
                Err(c) => return Err(self.error(&c, "DeleteAlarms")),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use firebell_core::expr::Expr;
    use firebell_core::model::Op;

    use super::*;

    fn spec(metric: &str, stat: Stat) -> MetricSpec {
        MetricSpec {
            namespace: "Shop".into(),
            metric_name: metric.into(),
            dimensions: BTreeMap::from([("Service".into(), "api".into())]),
            stat,
            period: Duration::from_secs(60),
            account: None,
            region: None,
            query: None,
        }
    }

    fn alarm(metrics: &[(&str, MetricSpec)], math: Option<&str>) -> SentinelAlarm {
        SentinelAlarm {
            name: "fb-rule.R".into(),
            description: "firebell sentinel; definition abc".into(),
            rules: vec!["R".into(), "slo:page (fast)".into()],
            metrics: metrics
                .iter()
                .map(|(id, s)| ((*id).to_string(), s.clone()))
                .collect(),
            metric_math: math.map(str::to_string),
            expression: Expr::parse("m").unwrap(),
            op: Op::Ge,
            threshold: 5.0,
            period_secs: 60,
            evaluation_periods: 7,
            missing_breaches: true,
            hash: "abc".into(),
        }
    }

    #[test]
    fn a_single_metric_is_a_plain_alarm() {
        let a = alarm(&[("m", spec("Latency", Stat::Percentile(99.0)))], None);
        let req = put_request(&a).unwrap().build().unwrap();
        assert_eq!(req.alarm_name(), Some("fb-rule.R"));
        assert_eq!(req.namespace(), Some("Shop"));
        assert_eq!(req.metric_name(), Some("Latency"));
        assert_eq!(req.extended_statistic(), Some("p99"));
        assert_eq!(req.statistic(), None);
        assert_eq!(req.period(), Some(60));
        assert_eq!(req.dimensions().len(), 1);
        assert_eq!(req.evaluation_periods(), Some(7));
        assert_eq!(req.datapoints_to_alarm(), Some(1));
        assert_eq!(req.threshold(), Some(5.0));
        assert_eq!(
            req.comparison_operator(),
            Some(&ComparisonOperator::GreaterThanOrEqualToThreshold)
        );
        assert_eq!(req.treat_missing_data(), Some("breaching"));
        assert_eq!(req.actions_enabled(), Some(false));
        assert!(req.metrics().is_empty());
        let tags: Vec<(&str, &str)> = req
            .tags()
            .iter()
            .map(|t| (t.key().unwrap(), t.value().unwrap()))
            .collect();
        assert_eq!(
            tags,
            [
                ("firebell:managed", "sentinel"),
                ("firebell:rules", "R slo:page__fast_")
            ]
        );
        let sum = alarm(&[("m", spec("Errors", Stat::Sum))], None);
        let req = put_request(&sum).unwrap().build().unwrap();
        assert_eq!(req.statistic(), Some(&Statistic::Sum));
        assert_eq!(req.extended_statistic(), None);
    }

    #[test]
    fn an_expression_is_a_metric_math_alarm_with_an_id_of_its_own() {
        let a = alarm(
            &[
                ("sentinel", spec("Errors", Stat::Sum)),
                ("total", spec("Requests", Stat::Sum)),
            ],
            Some("sentinel / total"),
        );
        let req = put_request(&a).unwrap().build().unwrap();
        assert_eq!(req.metric_name(), None);
        assert_eq!(req.namespace(), None);
        assert_eq!(req.period(), None);
        let qs = req.metrics();
        assert_eq!(qs.len(), 3);
        let ids: Vec<&str> = qs.iter().filter_map(|q| q.id()).collect();
        assert_eq!(ids, ["sentinel", "total", "sentinel_1"]);
        for q in &qs[..2] {
            assert_eq!(q.return_data(), Some(false));
            let stat = q.metric_stat().unwrap();
            assert_eq!((stat.period(), stat.stat()), (Some(60), Some("Sum")));
            assert_eq!(stat.metric().unwrap().namespace(), Some("Shop"));
        }
        assert_eq!(qs[2].expression(), Some("sentinel / total"));
        assert_eq!(qs[2].return_data(), Some(true));
        assert_eq!(req.datapoints_to_alarm(), Some(1));
    }

    #[test]
    fn malformed_sentinels_are_refused_before_any_call() {
        let two = alarm(
            &[
                ("a", spec("Errors", Stat::Sum)),
                ("b", spec("Requests", Stat::Sum)),
            ],
            None,
        );
        assert!(matches!(put_request(&two), Err(AlarmError::Refused(_))));
        let mut wild = spec("Errors", Stat::Sum);
        wild.dimensions.insert("Service".into(), "*".into());
        assert!(matches!(
            put_request(&alarm(&[("m", wild)], None)),
            Err(AlarmError::Refused(_))
        ));
        let mut short = alarm(&[("m", spec("Errors", Stat::Sum))], None);
        short.period_secs = 30;
        assert!(matches!(put_request(&short), Err(AlarmError::Refused(_))));
        assert!(check_prefix("").is_err());
    }

    #[test]
    fn the_prefix_setting_defaults_and_is_checked() {
        let default = firebell_core::sentinel::DEFAULT_PREFIX;
        assert_eq!(sentinel_prefix(None).unwrap(), default);
        assert_eq!(sentinel_prefix(Some("  ")).unwrap(), default);
        assert_eq!(sentinel_prefix(Some("prod-fb-")).unwrap(), "prod-fb-");
        assert!(sentinel_prefix(Some("a b")).is_err());
        assert!(sentinel_prefix(Some("é")).is_err());
        assert!(sentinel_prefix(Some(&"x".repeat(129))).is_err());
    }

    #[test]
    fn the_rules_tag_is_a_valid_tag_value_of_at_most_256_characters() {
        let many: Vec<String> = (0..100).map(|i| format!("rule-{i},x")).collect();
        let v = rules_tag_value(&many);
        assert_eq!(v.chars().count(), TAG_VALUE_MAX);
        assert!(v.starts_with("rule-0_x rule-1_x "));
    }

    #[test]
    fn faults_map_to_alarm_errors() {
        let c = |fault, code: &str| Classified {
            fault,
            code: Some(code.into()),
            message: format!("{code}: no"),
            kind: None,
        };
        let region = Some("us-east-1");
        assert!(matches!(
            alarm_error(&c(Fault::Throttled, "Throttling"), "PutMetricAlarm", region),
            AlarmError::Throttled(_)
        ));
        assert!(matches!(
            alarm_error(&c(Fault::Transient, "InternalFailure"), "x", region),
            AlarmError::Unavailable(_)
        ));
        for code in ["LimitExceeded", "ValidationError", "AccessDenied"] {
            let e = alarm_error(&c(Fault::Client, code), "PutMetricAlarm", region);
            assert!(matches!(e, AlarmError::Refused(_)), "{code}: {e}");
            assert!(!e.is_retryable());
        }
    }
}
