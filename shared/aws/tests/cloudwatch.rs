//! CloudWatchSource against a CloudWatch endpoint (the emulator, see
//! `scripts/emulator.sh`): data is written with PutMetricData, read back
//! through the MetricsSource port.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use common::{eventually, manual_clock, now_secs, sdk_config, unique, unreachable_config};
use firebell_aws::{CloudWatchOptions, CloudWatchSource};
use firebell_core::model::{Labels, MetricSpec, Stat};
use firebell_core::ports::{MetricQuery, MetricSeries, MetricsError, MetricsSource, SystemClock};
use firebell_core::series::Point;

const METRIC: &str = "Latency";

fn spec(ns: &str, dims: &[(&str, &str)], stat: Stat, period: u64) -> MetricSpec {
    MetricSpec {
        namespace: ns.to_owned(),
        metric_name: METRIC.to_owned(),
        dimensions: dims
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        stat,
        period: Duration::from_secs(period),
        account: None,
        region: None,
        query: None,
    }
}

fn query(id: &str, spec: MetricSpec) -> MetricQuery {
    MetricQuery {
        id: id.to_owned(),
        spec,
    }
}

/// Writes `values` (each once) as one datum at `t` with dimensions `dims`.
async fn put(client: &Client, ns: &str, dims: &[(&str, &str)], t: i64, values: Vec<f64>) {
    let mut datum = MetricDatum::builder()
        .metric_name(METRIC)
        .timestamp(DateTime::from_secs(t))
        .set_counts(Some(vec![1.0; values.len()]))
        .set_values(Some(values));
    for (k, v) in dims {
        datum = datum.dimensions(Dimension::builder().name(*k).value(*v).build());
    }
    client
        .put_metric_data()
        .namespace(ns)
        .metric_data(datum.build())
        .send()
        .await
        .expect("PutMetricData");
}

/// A minute-aligned time about 15 minutes ago: recent enough for CloudWatch.
fn base_minute() -> i64 {
    (now_secs() - 900).div_euclid(60) * 60
}

fn values(s: &MetricSeries) -> Vec<f64> {
    s.points.iter().map(|p| p.v).collect()
}

#[tokio::test]
async fn fetches_sum_average_p99_for_several_queries() {
    let config = sdk_config().await;
    let client = Client::new(&config);
    let ns = format!("Firebell/Test/{}", unique("cw"));
    let t0 = base_minute();
    // Minute k holds 1..=100 scaled by k+1; `web` holds one value per minute.
    for k in 0..3i64 {
        let scale = (k + 1) as f64;
        put(
            &client,
            &ns,
            &[("Service", "api")],
            t0 + 60 * k + 7,
            (1..=100).map(|v| v as f64 * scale).collect(),
        )
        .await;
        put(
            &client,
            &ns,
            &[("Service", "web")],
            t0 + 60 * k,
            vec![10.0 + k as f64],
        )
        .await;
    }

    let source = CloudWatchSource::new(client.clone(), Arc::new(SystemClock));
    let api = [("Service", "api")];
    let queries = vec![
        // Caller ids that GetMetricData itself would reject.
        query("Sum of API!", spec(&ns, &api, Stat::Sum, 60)),
        query("avg", spec(&ns, &api, Stat::Average, 60)),
        query("API p99", spec(&ns, &api, Stat::Percentile(99.0), 60)),
        query("9-count", spec(&ns, &api, Stat::SampleCount, 60)),
        query(
            "web.max",
            spec(&ns, &[("Service", "web")], Stat::Maximum, 60),
        ),
        query("none", spec(&ns, &[("Service", "nope")], Stat::Sum, 60)),
        query("five-minutes", spec(&ns, &api, Stat::Sum, 300)),
    ];
    // Unaligned range: asks for the periods starting t0, t0+60, t0+120.
    let (start, end) = (t0 + 5, t0 + 185);
    let series = eventually("the three minutes of data", || async {
        let s = source.fetch(&queries, start, end).await.expect("fetch");
        (s[0].points.len() == 3).then_some(s)
    })
    .await;

    let ids: Vec<&str> = series.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "Sum of API!",
            "avg",
            "API p99",
            "9-count",
            "web.max",
            "none",
            "five-minutes"
        ]
    );
    let times: Vec<i64> = series[0].points.iter().map(|p| p.t).collect();
    assert_eq!(times, [t0, t0 + 60, t0 + 120], "ascending, period-aligned");
    assert_eq!(values(&series[0]), [5050.0, 10100.0, 15150.0]);
    assert_eq!(values(&series[1]), [50.5, 101.0, 151.5]);
    for (i, p) in series[2].points.iter().enumerate() {
        let want = 99.0 * (i + 1) as f64;
        assert!(
            (p.v - want).abs() <= 1.0 * (i + 1) as f64,
            "p99 of minute {i}: {} (want about {want})",
            p.v
        );
    }
    assert_eq!(values(&series[3]), [100.0, 100.0, 100.0]);
    assert_eq!(values(&series[4]), [10.0, 11.0, 12.0]);
    assert!(
        series[5].points.is_empty(),
        "no data for an unknown dimension"
    );
    assert!(series.iter().all(|s| s.complete), "{series:?}");
    // The 300 s query covers [floor5(t0+5), floor5(t0+185)): whole 5-minute
    // periods only, each summing whatever of the data falls in it.
    let total: f64 = values(&series[6]).iter().sum();
    assert!(total <= 30300.0, "{total}");
    assert!(series[6].points.iter().all(|p| p.t % 300 == 0));

    // Two periods: two calls per fetch (the last fetch only, eventually() may have polled).
    let before = source.stats().get_metric_data;
    source.fetch(&queries, start, end).await.expect("fetch");
    assert_eq!(source.stats().get_metric_data - before, 2);
}

#[tokio::test]
async fn more_than_500_queries_are_split_into_concurrent_calls() {
    let config = sdk_config().await;
    let client = Client::new(&config);
    let ns = format!("Firebell/Test/{}", unique("cw-many"));
    let t0 = base_minute();
    for k in 0..2 {
        put(
            &client,
            &ns,
            &[("Service", "api")],
            t0 + 60 * k,
            vec![1.0, 2.0],
        )
        .await;
    }
    let source = CloudWatchSource::with_options(
        client,
        Arc::new(SystemClock),
        CloudWatchOptions {
            max_concurrency: 2,
            ..CloudWatchOptions::default()
        },
    );
    let stats = [Stat::Sum, Stat::Average, Stat::Maximum];
    let n = 1201;
    let queries: Vec<MetricQuery> = (0..n)
        .map(|i| {
            query(
                &format!("rule/{i}"),
                spec(&ns, &[("Service", "api")], stats[i % 3], 60),
            )
        })
        .collect();
    // Wait until the data is visible, with a small fetch.
    eventually("data", || async {
        let s = source
            .fetch(&queries[..1], t0, t0 + 120)
            .await
            .expect("fetch");
        (s[0].points.len() == 2).then_some(())
    })
    .await;

    let before = source.stats();
    let series = source.fetch(&queries, t0, t0 + 120).await.expect("fetch");
    let after = source.stats();
    assert_eq!(
        after.get_metric_data - before.get_metric_data,
        n.div_ceil(500) as u64,
        "ceil({n}/500) GetMetricData calls"
    );
    assert_eq!(series.len(), n);
    for (i, s) in series.iter().enumerate() {
        assert_eq!(s.id, format!("rule/{i}"));
        assert!(s.complete);
        let want = match i % 3 {
            0 => [3.0, 3.0],
            1 => [1.5, 1.5],
            _ => [2.0, 2.0],
        };
        assert_eq!(values(s), want, "query {i}");
    }
}

#[tokio::test]
async fn dimension_values_are_listed_filtered_and_cached() {
    let config = sdk_config().await;
    let client = Client::new(&config);
    let ns = format!("Firebell/Test/{}", unique("cw-dims"));
    let t0 = base_minute();
    for svc in ["web", "api", "worker"] {
        put(&client, &ns, &[("Service", svc)], t0, vec![1.0]).await;
    }
    // Other dimension sets: not instances of a {Service} spec.
    put(
        &client,
        &ns,
        &[("Service", "extra"), ("Region", "eu")],
        t0,
        vec![1.0],
    )
    .await;
    put(&client, &ns, &[("Host", "h1")], t0, vec![1.0]).await;
    for (svc, env) in [("a", "prod"), ("b", "dev"), ("c", "prod")] {
        put(
            &client,
            &ns,
            &[("Service", svc), ("Env", env)],
            t0,
            vec![1.0],
        )
        .await;
    }

    let clock = manual_clock(now_secs());
    let source = CloudWatchSource::with_options(
        client.clone(),
        clock.clone(),
        CloudWatchOptions {
            dimension_cache_ttl: Duration::from_secs(300),
            ..CloudWatchOptions::default()
        },
    );
    let wildcard = spec(&ns, &[("Service", "*")], Stat::Sum, 60);
    // The Service values of the listed combinations.
    let services =
        |v: Vec<Labels>| -> Vec<String> { v.into_iter().map(|l| l["Service"].clone()).collect() };
    let found = eventually("three services", || async {
        source.clear_dimension_cache();
        let v = source
            .dimension_values(&wildcard)
            .await
            .expect("dimension_values");
        (v.len() >= 3).then_some(v)
    })
    .await;
    let found = services(found);
    assert_eq!(found, ["api", "web", "worker"]);

    let calls = source.stats().list_metrics;
    let again = source.dimension_values(&wildcard).await.expect("cached");
    assert_eq!(services(again), found);
    assert_eq!(
        source.stats().list_metrics,
        calls,
        "answered from the cache"
    );
    assert_eq!(source.stats().dimension_cache_hits, 1);

    // A new instance shows up once the cache entry is older than its TTL.
    put(&client, &ns, &[("Service", "batch")], t0, vec![1.0]).await;
    clock.advance_secs(299);
    let cached = source.dimension_values(&wildcard).await.expect("cached");
    assert_eq!(cached.len(), 3);
    clock.advance_secs(1);
    let refreshed = eventually("the new service", || async {
        let v = source.dimension_values(&wildcard).await.expect("refresh");
        if v.len() < 4 {
            source.clear_dimension_cache();
        }
        (v.len() == 4).then_some(v)
    })
    .await;
    let refreshed = services(refreshed);
    assert_eq!(refreshed, ["api", "batch", "web", "worker"]);
    assert!(source.stats().list_metrics > calls);

    // A fixed dimension next to the wildcard narrows the instances.
    let prod = spec(&ns, &[("Env", "prod"), ("Service", "*")], Stat::Sum, 60);
    let v = eventually("prod services", || async {
        let v = source.dimension_values(&prod).await.expect("prod");
        (v.len() == 2).then_some(v)
    })
    .await;
    assert_eq!(services(v), ["a", "c"]);

    // Two wildcards: the (Env, Service) combinations that were reported,
    // not their cross product.
    let both = spec(&ns, &[("Env", "*"), ("Service", "*")], Stat::Sum, 60);
    let v = eventually("env and service pairs", || async {
        let v = source.dimension_values(&both).await.expect("pairs");
        (v.len() == 3).then_some(v)
    })
    .await;
    let pairs: Vec<(String, String)> = v
        .into_iter()
        .map(|l| (l["Env"].clone(), l["Service"].clone()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("dev".to_string(), "b".to_string()),
            ("prod".to_string(), "a".to_string()),
            ("prod".to_string(), "c".to_string()),
        ]
    );

    // Expanded instances fetch like any other query.
    let expanded: Vec<MetricQuery> = refreshed
        .iter()
        .map(|svc| query(svc, spec(&ns, &[("Service", svc)], Stat::Sum, 60)))
        .collect();
    let series = source
        .fetch(&expanded, t0, t0 + 60)
        .await
        .expect("fetch expanded");
    assert!(
        series.iter().all(|s| s.points == [Point { t: t0, v: 1.0 }]),
        "{series:?}"
    );
}

#[tokio::test]
async fn bad_queries_and_unreachable_endpoints_are_classified() {
    // A wildcard or an invalid period never reaches CloudWatch.
    let config = sdk_config().await;
    let source = CloudWatchSource::new(Client::new(&config), Arc::new(SystemClock));
    let ns = "Firebell/Test/bad";
    let wildcard = query("w", spec(ns, &[("Service", "*")], Stat::Sum, 60));
    let odd_period = query("p", spec(ns, &[], Stat::Sum, 90));
    for q in [wildcard, odd_period] {
        let err = source.fetch(&[q], 0, 600).await.expect_err("bad query");
        assert!(matches!(err, MetricsError::BadQuery(_)), "{err}");
        assert!(!err.is_retryable());
    }
    assert_eq!(source.stats().get_metric_data, 0);
    assert!(source.fetch(&[], 0, 600).await.expect("empty").is_empty());

    // A network failure is retryable.
    let down = CloudWatchSource::new(
        Client::new(&unreachable_config().await),
        Arc::new(SystemClock),
    );
    let q = query("q", spec(ns, &[], Stat::Sum, 60));
    let err = down.fetch(&[q], 0, 600).await.expect_err("unreachable");
    assert!(matches!(err, MetricsError::Unavailable(_)), "{err}");
    assert!(err.is_retryable());
}

/// A Metrics Insights query against the endpoint. The emulator has no SQL
/// (it answers an `Expression` with `InternalError`, "Expressions not
/// implemented"), so there this checks that a failed query is an error for
/// discovery and an incomplete series for a fetch, never "no data"; what a
/// query returns is checked against recorded responses in
/// `tests/recorded.rs`. Against AWS (FIREBELL_AWS_TEST_REAL=1) the query
/// over a namespace of nothing finds no group.
#[tokio::test]
async fn a_metrics_insights_query_that_fails_is_never_no_data() {
    let config = sdk_config().await;
    let source = CloudWatchSource::new(Client::new(&config), Arc::new(SystemClock));
    let ns = unique("Firebell/Test/insights");
    let sql = format!("SELECT AVG({METRIC}) FROM \"{ns}\" GROUP BY Service");
    let mut group = spec(&ns, &[("Service", "*")], Stat::Average, 60);
    group.query = Some(sql.clone());
    let found = source.dimension_values(&group).await;
    let mut one = group.clone();
    one.dimensions.insert("Service".into(), "api".into());
    let now = now_secs();
    let fetched = source
        .fetch(&[query("q", one)], now - 600, now)
        .await
        .expect("a fetch");
    if common::is_emulator() {
        let err = found.expect_err("the emulator has no Metrics Insights");
        assert!(matches!(err, MetricsError::BadQuery(_)), "{err}");
        assert!(
            err.to_string()
                .ends_with("Unsupported: Expressions not implemented"),
            "{err}"
        );
        assert!(!fetched[0].complete);
    } else {
        assert_eq!(found.expect("groups"), Vec::<Labels>::new());
        assert!(fetched[0].points.is_empty());
    }
}
