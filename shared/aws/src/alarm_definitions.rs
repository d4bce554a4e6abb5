//! Reading the account's CloudWatch alarms as plain definitions
//! ([`AlarmDefinition`]) for `firebell import cloudwatch-alarms`.
//!
//! [`describe_all`]: `DescribeAlarms` of metric and composite alarms (100 a
//! page, every page; optionally under a name prefix), then
//! `ListTagsForResource` only for alarms without any action (a firebell
//! sentinel has none, and is tagged `firebell:managed=sentinel`), so an
//! account of a thousand alarms with actions costs ten calls. Throttled
//! calls are retried with jittered backoff; errors are [`AlarmError`]s
//! (refused, throttled, unavailable: whether a retry makes sense).
//! [`metric_alarm`] and [`composite_alarm`] convert one SDK alarm.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{AlarmType, CompositeAlarm, MetricAlarm as SdkMetricAlarm};
use firebell_core::alarm_definition::{
    AlarmDefinition, AlarmKind, AlarmMetric, AlarmQuery, MetricAlarm,
};
use firebell_core::ports::AlarmError;

use crate::alarms::DESCRIBE_PAGE;
use crate::error::{AwaitClassified, Classified, Fault, Resource};
use crate::retry::Backoff;

/// Pages one listing follows at most (100,000 alarms).
const MAX_PAGES: u32 = 1000;

fn error(c: &Classified, what: &str, client: &Client) -> AlarmError {
    let region = client.config().region().map(|r| r.as_ref().to_string());
    let message = c.describe("cloudwatch", what, Resource::Metrics, region.as_deref());
    match c.fault {
        Fault::Throttled => AlarmError::Throttled(message),
        Fault::Transient => AlarmError::Unavailable(message),
        Fault::Client | Fault::ConditionFailed => AlarmError::Refused(message),
    }
}

/// Every metric and composite alarm (under `prefix` when given), as plain
/// definitions, in the order CloudWatch lists them.
pub async fn describe_all(
    client: &Client,
    prefix: Option<&str>,
) -> Result<Vec<AlarmDefinition>, AlarmError> {
    let backoff = Backoff::default();
    let retries = AtomicU64::new(0);
    let mut out = Vec::new();
    let mut arns: Vec<Option<String>> = Vec::new();
    let mut next_token: Option<String> = None;
    let mut pages = 0u32;
    loop {
        pages += 1;
        let page = crate::retry::retry_throttled(&backoff, &retries, "alarms", || {
            client
                .describe_alarms()
                .set_alarm_name_prefix(prefix.map(str::to_string))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .max_records(DESCRIBE_PAGE)
                .set_next_token(next_token.clone())
                .send()
                .await_classified()
        })
        .await
        .map_err(|c| error(&c, "DescribeAlarms", client))?;
        for a in page.metric_alarms() {
            out.push(metric_alarm(a));
            arns.push(a.alarm_arn().map(str::to_string));
        }
        for a in page.composite_alarms() {
            out.push(composite_alarm(a));
            arns.push(a.alarm_arn().map(str::to_string));
        }
        match page.next_token() {
            Some(t) if !t.is_empty() && Some(t) != next_token.as_deref() => {
                if pages >= MAX_PAGES {
                    return Err(AlarmError::Unavailable(format!(
                        "DescribeAlarms: more than {MAX_PAGES} pages"
                    )));
                }
                next_token = Some(t.to_string());
            }
            _ => break,
        }
    }
    for (def, arn) in out.iter_mut().zip(arns) {
        let silent = def.alarm_actions.is_empty()
            && def.ok_actions.is_empty()
            && def.insufficient_data_actions.is_empty();
        let Some(arn) = arn.filter(|_| silent) else {
            continue;
        };
        let tags = crate::retry::retry_throttled(&backoff, &retries, "alarms", || {
            client
                .list_tags_for_resource()
                .resource_arn(&arn)
                .send()
                .await_classified()
        })
        .await
        .map_err(|c| error(&c, "ListTagsForResource", client))?;
        def.tags = tags
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect();
    }
    Ok(out)
}

fn dims(d: &[aws_sdk_cloudwatch::types::Dimension]) -> BTreeMap<String, String> {
    d.iter()
        .map(|d| {
            (
                d.name().unwrap_or_default().to_string(),
                d.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn count(v: Option<i32>) -> u32 {
    v.and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
}

/// One metric alarm of a `DescribeAlarms` answer as a plain definition.
pub fn metric_alarm(a: &SdkMetricAlarm) -> AlarmDefinition {
    let stat = a
        .extended_statistic()
        .map(str::to_string)
        .or_else(|| a.statistic().map(|s| s.as_str().to_string()));
    let metric = match (a.namespace(), a.metric_name()) {
        (Some(ns), Some(name)) if a.metrics().is_empty() => Some(AlarmMetric {
            namespace: ns.to_string(),
            metric_name: name.to_string(),
            dimensions: dims(a.dimensions()),
            period: count(a.period()),
            stat: stat.unwrap_or_default(),
            account: None,
            unit: a.unit().map(|u| u.as_str().to_string()),
        }),
        _ => None,
    };
    let queries = a
        .metrics()
        .iter()
        .map(|q| AlarmQuery {
            id: q.id().unwrap_or_default().to_string(),
            expression: q.expression().map(str::to_string),
            metric: q.metric_stat().map(|s| {
                let m = s.metric();
                AlarmMetric {
                    namespace: m
                        .and_then(|m| m.namespace())
                        .unwrap_or_default()
                        .to_string(),
                    metric_name: m
                        .and_then(|m| m.metric_name())
                        .unwrap_or_default()
                        .to_string(),
                    dimensions: m.map(|m| dims(m.dimensions())).unwrap_or_default(),
                    period: count(s.period()),
                    stat: s.stat().unwrap_or_default().to_string(),
                    account: q.account_id().map(str::to_string),
                    unit: s.unit().map(|u| u.as_str().to_string()),
                }
            }),
            // CloudWatch's default is true.
            return_data: q.return_data().unwrap_or(true),
        })
        .collect();
    AlarmDefinition {
        name: a.alarm_name().unwrap_or_default().to_string(),
        description: a.alarm_description().map(str::to_string),
        actions_enabled: a.actions_enabled().unwrap_or(true),
        alarm_actions: a.alarm_actions().to_vec(),
        ok_actions: a.ok_actions().to_vec(),
        insufficient_data_actions: a.insufficient_data_actions().to_vec(),
        tags: BTreeMap::new(),
        kind: AlarmKind::Metric(Box::new(MetricAlarm {
            metric,
            queries,
            threshold: a.threshold(),
            threshold_metric_id: a.threshold_metric_id().map(str::to_string),
            comparison: a
                .comparison_operator()
                .map(|c| c.as_str().to_string())
                .unwrap_or_default(),
            evaluation_periods: count(a.evaluation_periods()),
            datapoints_to_alarm: a.datapoints_to_alarm().and_then(|n| u32::try_from(n).ok()),
            treat_missing_data: a.treat_missing_data().map(str::to_string),
        })),
    }
}

/// One composite alarm of a `DescribeAlarms` answer as a plain definition.
pub fn composite_alarm(a: &CompositeAlarm) -> AlarmDefinition {
    AlarmDefinition {
        name: a.alarm_name().unwrap_or_default().to_string(),
        description: a.alarm_description().map(str::to_string),
        actions_enabled: a.actions_enabled().unwrap_or(true),
        alarm_actions: a.alarm_actions().to_vec(),
        ok_actions: a.ok_actions().to_vec(),
        insufficient_data_actions: a.insufficient_data_actions().to_vec(),
        tags: BTreeMap::new(),
        kind: AlarmKind::Composite {
            rule: a.alarm_rule().unwrap_or_default().to_string(),
            actions_suppressor: a.actions_suppressor().map(str::to_string),
        },
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudwatch::types::{
        ComparisonOperator, Dimension, Metric, MetricDataQuery, MetricStat, Statistic,
    };

    use super::*;

    /// A metric-math alarm as `DescribeAlarms` returns it. The emulator
    /// does not keep an alarm's `Metrics`, so this conversion is checked
    /// here on the SDK's typed answer rather than against it.
    #[test]
    fn a_metric_math_alarm_keeps_its_queries() {
        let stat = |name: &str| {
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace("Shop")
                        .metric_name(name)
                        .dimensions(Dimension::builder().name("Service").value("api").build())
                        .build(),
                )
                .period(60)
                .stat("Sum")
                .build()
        };
        let a = SdkMetricAlarm::builder()
            .alarm_name("api-error-rate")
            .alarm_arn("arn:aws:cloudwatch:us-east-1:123456789012:alarm:api-error-rate")
            .actions_enabled(true)
            .alarm_actions("arn:aws:sns:us-east-1:123456789012:ops")
            .metrics(
                MetricDataQuery::builder()
                    .id("e")
                    .metric_stat(stat("Errors"))
                    .return_data(false)
                    .build(),
            )
            .metrics(
                MetricDataQuery::builder()
                    .id("r")
                    .metric_stat(stat("Requests"))
                    .account_id("111122223333")
                    .return_data(false)
                    .build(),
            )
            .metrics(
                MetricDataQuery::builder()
                    .id("pct")
                    .expression("100 * e / r")
                    .build(),
            )
            .threshold(1.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .evaluation_periods(5)
            .datapoints_to_alarm(3)
            .treat_missing_data("notBreaching")
            .build();
        let d = metric_alarm(&a);
        let AlarmKind::Metric(m) = &d.kind else {
            panic!("{d:?}");
        };
        assert_eq!(d.name, "api-error-rate");
        assert_eq!(d.alarm_actions, ["arn:aws:sns:us-east-1:123456789012:ops"]);
        assert_eq!(m.metric, None);
        let ids: Vec<(&str, bool, Option<&str>)> = m
            .queries
            .iter()
            .map(|q| (q.id.as_str(), q.return_data, q.expression.as_deref()))
            .collect();
        assert_eq!(
            ids,
            [
                ("e", false, None),
                ("r", false, None),
                ("pct", true, Some("100 * e / r"))
            ]
        );
        let r = m.queries[1].metric.as_ref().unwrap();
        assert_eq!(
            (
                r.metric_name.as_str(),
                r.period,
                r.stat.as_str(),
                r.account.as_deref()
            ),
            ("Requests", 60, "Sum", Some("111122223333"))
        );
        assert_eq!(r.dimensions.get("Service").map(String::as_str), Some("api"));
        assert_eq!(
            (
                m.evaluation_periods,
                m.datapoints_to_alarm,
                m.treat_missing_data.as_deref()
            ),
            (5, Some(3), Some("notBreaching"))
        );
        assert_eq!(m.comparison, "GreaterThanThreshold");
    }

    #[test]
    fn a_plain_alarm_reads_its_extended_statistic() {
        let a = SdkMetricAlarm::builder()
            .alarm_name("p99")
            .namespace("Shop")
            .metric_name("Latency")
            .extended_statistic("p99")
            .period(300)
            .threshold(800.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .evaluation_periods(1)
            .build();
        let AlarmKind::Metric(m) = metric_alarm(&a).kind else {
            panic!()
        };
        let metric = m.metric.unwrap();
        assert_eq!((metric.stat.as_str(), metric.period), ("p99", 300));
        let b = SdkMetricAlarm::builder()
            .alarm_name("avg")
            .namespace("Shop")
            .metric_name("Latency")
            .statistic(Statistic::Average)
            .period(60)
            .build();
        let AlarmKind::Metric(m) = metric_alarm(&b).kind else {
            panic!()
        };
        assert_eq!(m.metric.unwrap().stat, "Average");
    }
}
