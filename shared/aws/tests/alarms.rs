//! CloudWatchAlarms against a CloudWatch endpoint (the emulator, see
//! `scripts/emulator.sh`): sentinels put, listed, found in ALARM and
//! deleted through the AlarmService port, by name prefix only.
//!
//! The emulator stores and evaluates plain metric alarms (one metric,
//! `Statistic`/`ExtendedStatistic`), but neither stores nor evaluates the
//! metric-math form (`Metrics`): for that form the test checks the request
//! the adapter sends (captured by an SDK interceptor) and what the
//! emulator keeps of it.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_cloudwatch::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_cloudwatch::error::BoxError;
use aws_sdk_cloudwatch::operation::put_metric_alarm::PutMetricAlarmInput;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, MetricAlarm, MetricDatum, StateValue, Statistic,
};
use common::{now_secs, sdk_config, unique, unreachable_config};
use firebell_aws::{CloudWatchAlarms, DESCRIBE_PAGE};
use firebell_core::ports::{AlarmError, AlarmService, AlarmState};
use firebell_core::sentinel::{SentinelAlarm, for_rule};

/// Records every `PutMetricAlarm` request as the adapter built it.
#[derive(Debug, Clone, Default)]
struct Captured(Arc<Mutex<Vec<PutMetricAlarmInput>>>);

impl Intercept for Captured {
    fn name(&self) -> &'static str {
        "CapturePutMetricAlarm"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(input) = context.input().downcast_ref::<PutMetricAlarmInput>() {
            self.0.lock().unwrap().push(input.clone());
        }
        Ok(())
    }
}

struct World {
    client: Client,
    alarms: CloudWatchAlarms,
    captured: Captured,
    /// This test's sentinel name prefix.
    prefix: String,
    ns: String,
}

impl World {
    async fn new() -> World {
        let sdk = sdk_config().await;
        let captured = Captured::default();
        let conf = aws_sdk_cloudwatch::config::Builder::from(&sdk)
            .interceptor(captured.clone())
            .build();
        World {
            client: Client::new(&sdk),
            alarms: CloudWatchAlarms::new(Client::from_conf(conf)),
            captured,
            prefix: format!("{}-", unique("fb-sentinel")),
            ns: format!("Firebell/Alarms/{}", unique("ns")),
        }
    }

    /// The sentinel of a rule of this test's namespace.
    fn sentinel(&self, name: &str, metrics: &str, expression: &str) -> SentinelAlarm {
        let text = format!(
            "rules:
  - name: {name}
    metrics:
{metrics}
    expression: {expression}
    condition: {{op: '>', threshold: 100}}
"
        )
        .replace("NS", &self.ns);
        let rules = firebell_core::config::parse_rules("r.yaml", &text).expect("rule");
        for_rule(&rules.rules[0], &self.prefix).expect("a sentinel")
    }

    fn plain(&self, name: &str) -> SentinelAlarm {
        self.sentinel(
            name,
            "      m: {namespace: NS, metric: Latency, dimensions: {Service: api}, stat: p99, period: 1m}",
            "m",
        )
    }

    async fn describe(&self, name: &str) -> Option<MetricAlarm> {
        let out = self
            .client
            .describe_alarms()
            .alarm_names(name)
            .send()
            .await
            .expect("DescribeAlarms");
        out.metric_alarms().first().cloned()
    }

    async fn set_state(&self, name: &str, state: StateValue) {
        self.client
            .set_alarm_state()
            .alarm_name(name)
            .state_value(state)
            .state_reason("test")
            .send()
            .await
            .expect("SetAlarmState");
    }

    async fn put_data(&self, value: f64) {
        self.client
            .put_metric_data()
            .namespace(&self.ns)
            .metric_data(
                MetricDatum::builder()
                    .metric_name("Latency")
                    .dimensions(Dimension::builder().name("Service").value("api").build())
                    .timestamp(DateTime::from_secs(now_secs()))
                    .value(value)
                    .build(),
            )
            .send()
            .await
            .expect("PutMetricData");
    }

    async fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .alarms
            .list(&self.prefix, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.name)
            .collect();
        names.sort();
        names
    }
}

#[tokio::test]
async fn put_list_alarming_delete_round_trip() {
    let w = World::new().await;
    let a = w.plain("Latency");
    let b = w.plain("Latency2");
    w.alarms.put(&a).await.unwrap();
    w.alarms.put(&b).await.unwrap();
    let listed = w.alarms.list(&w.prefix, 0).await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let first = listed.iter().find(|i| i.name == a.name).unwrap();
    assert_eq!(first.description, a.description);
    // No data yet: not evaluated.
    assert_eq!(first.state, AlarmState::InsufficientData);
    assert!(w.alarms.alarming(&w.prefix, 0).await.unwrap().is_empty());

    // Put again (an update): still two, same description.
    w.alarms.put(&a).await.unwrap();
    assert_eq!(w.names().await, [a.name.clone(), b.name.clone()]);

    w.set_state(&b.name, StateValue::Alarm).await;
    assert_eq!(
        w.alarms.alarming(&w.prefix, 0).await.unwrap(),
        vec![b.name.clone()]
    );
    let states: Vec<AlarmState> = w
        .alarms
        .list(&w.prefix, 0)
        .await
        .unwrap()
        .iter()
        .map(|i| i.state)
        .collect();
    assert_eq!(states, [AlarmState::InsufficientData, AlarmState::Alarm]);

    w.alarms
        .delete(std::slice::from_ref(&a.name))
        .await
        .unwrap();
    assert_eq!(w.names().await, vec![b.name.clone()]);
    // Deleting a name that is gone already is no error.
    w.alarms
        .delete(&[a.name.clone(), b.name.clone()])
        .await
        .unwrap();
    assert!(w.names().await.is_empty());
    let stats = w.alarms.stats();
    assert_eq!(stats.put_metric_alarm, 3);
    assert_eq!(stats.describe_alarms, 7);
    assert!(stats.delete_alarms >= 2, "{stats}");
    assert_eq!(stats.throttle_retries, 0);
}

#[tokio::test]
async fn the_emulator_evaluates_a_plain_sentinel_on_new_data() {
    let w = World::new().await;
    let a = w.plain("Slow");
    w.put_data(20.0).await;
    w.alarms.put(&a).await.unwrap();
    // Evaluated at once on the quiet datapoint: OK.
    let listed = w.alarms.list(&w.prefix, 0).await.unwrap();
    assert_eq!(listed[0].state, AlarmState::Ok);
    // A breaching datapoint (p99 over the alarm's range above 100).
    w.put_data(500.0).await;
    assert_eq!(w.alarms.alarming(&w.prefix, 0).await.unwrap(), [a.name]);
}

#[tokio::test]
async fn listings_page_through_more_than_100_alarms() {
    let w = World::new().await;
    let n = 2 * DESCRIBE_PAGE as usize + 5;
    let sentinels: Vec<SentinelAlarm> = (0..n).map(|i| w.plain(&format!("r{i:03}"))).collect();
    for s in &sentinels {
        w.alarms.put(s).await.unwrap();
    }
    let before = w.alarms.stats().describe_alarms;
    let names = w.names().await;
    assert_eq!(names.len(), n);
    assert_eq!(w.alarms.stats().describe_alarms - before, 3, "three pages");
    let mut want: Vec<String> = sentinels.iter().map(|s| s.name.clone()).collect();
    want.sort();
    assert_eq!(names, want);

    // 101 in ALARM: two pages of the state-filtered listing.
    for s in &sentinels[..101] {
        w.set_state(&s.name, StateValue::Alarm).await;
    }
    let before = w.alarms.stats().describe_alarms;
    let mut alarming = w.alarms.alarming(&w.prefix, 0).await.unwrap();
    alarming.sort();
    assert_eq!(w.alarms.stats().describe_alarms - before, 2);
    let mut first: Vec<String> = sentinels[..101].iter().map(|s| s.name.clone()).collect();
    first.sort();
    assert_eq!(alarming, first);

    // Deleted 100 a call.
    let before = w.alarms.stats().delete_alarms;
    w.alarms.delete(&names).await.unwrap();
    assert_eq!(w.alarms.stats().delete_alarms - before, 3);
    assert!(w.names().await.is_empty());
}

#[tokio::test]
async fn an_alarm_outside_the_prefix_is_never_listed_or_deleted() {
    let w = World::new().await;
    let mine = w.plain("Mine");
    w.alarms.put(&mine).await.unwrap();
    // Alarms of others: the prefix without its last character, a sibling
    // prefix, and an unrelated name; all in ALARM.
    let others = [
        w.prefix.trim_end_matches('-').to_string(),
        format!("{}x", w.prefix.trim_end_matches('-')),
        unique("someone-elses-alarm"),
    ];
    for name in &others {
        w.client
            .put_metric_alarm()
            .alarm_name(name)
            .namespace(&w.ns)
            .metric_name("Latency")
            .statistic(Statistic::Maximum)
            .period(60)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .send()
            .await
            .unwrap();
        w.set_state(name, StateValue::Alarm).await;
    }
    w.set_state(&mine.name, StateValue::Alarm).await;
    assert_eq!(w.names().await, vec![mine.name.clone()]);
    assert_eq!(
        w.alarms.alarming(&w.prefix, 0).await.unwrap(),
        vec![mine.name.clone()]
    );
    // Deleting everything listed leaves the others alone.
    let listed = w.names().await;
    w.alarms.delete(&listed).await.unwrap();
    for name in &others {
        assert!(w.describe(name).await.is_some(), "{name} was deleted");
    }
    // An empty prefix (every alarm of the account) is refused, without a call.
    let calls = w.alarms.stats().total();
    assert!(matches!(
        w.alarms.list("", 0).await,
        Err(AlarmError::Refused(_))
    ));
    assert!(matches!(
        w.alarms.alarming("", 0).await,
        Err(AlarmError::Refused(_))
    ));
    assert_eq!(w.alarms.stats().total(), calls);
    w.client
        .delete_alarms()
        .set_alarm_names(Some(others.to_vec()))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_plain_sentinel_is_a_single_metric_alarm_without_actions_tagged_as_firebells() {
    let w = World::new().await;
    let a = w.plain("Latency");
    w.alarms.put(&a).await.unwrap();
    // What was sent.
    let sent = w.captured.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    let req = &sent[0];
    assert!(req.metrics().is_empty());
    assert_eq!(req.extended_statistic(), Some("p99"));
    // What CloudWatch keeps.
    let d = w.describe(&a.name).await.expect("the alarm");
    assert_eq!(d.alarm_description(), Some(a.description.as_str()));
    assert_eq!(d.namespace(), Some(w.ns.as_str()));
    assert_eq!(d.metric_name(), Some("Latency"));
    assert_eq!(d.extended_statistic(), Some("p99"));
    let dims: Vec<(&str, &str)> = d
        .dimensions()
        .iter()
        .map(|x| (x.name().unwrap(), x.value().unwrap()))
        .collect();
    assert_eq!(dims, [("Service", "api")]);
    assert_eq!(d.period(), Some(60));
    assert_eq!(
        d.evaluation_periods(),
        Some(i32::try_from(a.evaluation_periods).unwrap())
    );
    assert_eq!(d.datapoints_to_alarm(), Some(1));
    assert_eq!(d.threshold(), Some(100.0));
    assert_eq!(
        d.comparison_operator(),
        Some(&ComparisonOperator::GreaterThanThreshold)
    );
    assert_eq!(d.treat_missing_data(), Some("notBreaching"));
    assert_eq!(d.actions_enabled(), Some(false));
    assert!(d.alarm_actions().is_empty() && d.ok_actions().is_empty());
    let tags = w
        .client
        .list_tags_for_resource()
        .resource_arn(d.alarm_arn().unwrap())
        .send()
        .await
        .unwrap();
    let mut tags: Vec<(String, String)> = tags
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().into(), t.value().unwrap().into()))
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        [
            ("firebell:managed".to_string(), "sentinel".to_string()),
            ("firebell:rules".to_string(), "Latency".to_string())
        ]
    );
}

/// Extended statistics go to CloudWatch as written: a plain sentinel's
/// `ExtendedStatistic` (the emulator stores it and gives it back; it cannot
/// compute it, see `tests/recorded.rs`), and the latency SLO sentinel's
/// `PR(:800)` in its metric-math `MetricStat` (captured: the emulator does
/// not keep the metric-math form).
#[tokio::test]
async fn extended_statistics_are_sent_as_written() {
    let w = World::new().await;
    let a = w.sentinel(
        "Trimmed",
        "      m: {namespace: NS, metric: Latency, dimensions: {Service: api}, stat: TM(10%:90%), period: 1m}",
        "m",
    );
    w.alarms.put(&a).await.unwrap();
    {
        let sent = w.captured.0.lock().unwrap();
        assert_eq!(sent[0].extended_statistic(), Some("TM(10%:90%)"));
        assert_eq!(sent[0].statistic(), None);
    }
    let d = w.describe(&a.name).await.expect("the alarm");
    assert_eq!(d.extended_statistic(), Some("TM(10%:90%)"));

    let slos = firebell_core::slo::parse_slos(
        "s.yaml",
        &"slos:
  - name: Latency
    team: api
    objective: 99
    sli:
      latency: {namespace: NS, metric: Latency, dimensions: {Service: api}, under: 800}
"
        .replace("NS", &w.ns),
    )
    .expect("slo");
    let rules = slos[0].rules().expect("rules");
    let refs: Vec<&firebell_core::model::Rule> = rules.iter().collect();
    let slo = firebell_core::sentinel::for_slo(&slos[0], &refs, &w.prefix).expect("a sentinel");
    w.alarms.put(&slo).await.unwrap();
    let sent = w.captured.0.lock().unwrap().clone();
    let stats: Vec<(String, Option<String>)> = sent[1]
        .metrics()
        .iter()
        .map(|q| {
            (
                q.id().unwrap_or_default().to_string(),
                q.metric_stat().and_then(|s| s.stat()).map(str::to_string),
            )
        })
        .collect();
    assert_eq!(
        stats,
        [
            ("fast".to_string(), Some("PR(:800)".to_string())),
            ("total".to_string(), Some("SampleCount".to_string())),
            ("sentinel".to_string(), None),
        ]
    );
    w.alarms.delete(&[a.name, slo.name]).await.unwrap();
}

#[tokio::test]
async fn a_metric_math_sentinel_sends_its_metrics_and_expression() {
    let w = World::new().await;
    let a = w.sentinel(
        "ErrorRate",
        "      errors: {namespace: NS, metric: Errors, dimensions: {Service: api}, stat: Sum, period: 1m}
      requests: {namespace: NS, metric: Requests, dimensions: {Service: api}, stat: Sum, period: 1m}",
        "errors / requests * 100",
    );
    let math = a.metric_math.clone().expect("metric math");
    w.alarms.put(&a).await.unwrap();
    let sent = w.captured.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    let req = &sent[0];
    assert_eq!(req.metric_name(), None);
    assert_eq!(req.namespace(), None);
    assert_eq!(req.statistic(), None);
    let queries: Vec<(String, Option<String>, Option<String>, bool)> = req
        .metrics()
        .iter()
        .map(|q| {
            let metric = q
                .metric_stat()
                .and_then(|s| s.metric())
                .and_then(|m| m.metric_name())
                .map(str::to_string);
            (
                q.id().unwrap().to_string(),
                metric,
                q.expression().map(str::to_string),
                q.return_data().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        queries,
        [
            (
                "errors".to_string(),
                Some("Errors".to_string()),
                None,
                false
            ),
            (
                "requests".to_string(),
                Some("Requests".to_string()),
                None,
                false
            ),
            ("sentinel".to_string(), None, Some(math), true),
        ]
    );
    for q in &req.metrics()[..2] {
        let stat = q.metric_stat().unwrap();
        assert_eq!((stat.period(), stat.stat()), (Some(60), Some("Sum")));
    }
    assert_eq!(req.datapoints_to_alarm(), Some(1));
    assert_eq!(req.actions_enabled(), Some(false));
    // The emulator keeps the alarm and its common fields (not its
    // `Metrics`: it cannot evaluate a metric-math alarm, which stays
    // INSUFFICIENT_DATA there).
    let d = w.describe(&a.name).await.expect("the alarm");
    assert_eq!(d.alarm_description(), Some(a.description.as_str()));
    assert_eq!(d.threshold(), Some(100.0));
    assert_eq!(d.datapoints_to_alarm(), Some(1));
    assert_eq!(d.state_value(), Some(&StateValue::InsufficientData));
    let listed = w.alarms.list(&w.prefix, 0).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, AlarmState::InsufficientData);
    w.alarms.delete(&[a.name]).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_endpoint_is_unavailable_and_retryable() {
    let alarms = CloudWatchAlarms::new(Client::new(&unreachable_config().await));
    let e = alarms.alarming("fb-", 0).await.unwrap_err();
    assert!(matches!(e, AlarmError::Unavailable(_)), "{e}");
    assert!(e.is_retryable());
    assert!(e.to_string().contains("DescribeAlarms"), "{e}");
}
