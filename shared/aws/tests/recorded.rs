//! CloudWatchSource's requests for what the emulator cannot serve, checked
//! against recorded responses.
//!
//! The emulator (ministack) answers a `MetricDataQuery` with an
//! `Expression` (Metrics Insights SQL) with `StatusCode: InternalError`,
//! "Expressions not implemented", and computes no extended statistic but
//! the `pNN` percentiles (any other `Stat`, such as `PR(:300)` or
//! `TM(10%:90%)`, comes back as the Average). So these tests stand up a
//! local HTTP endpoint that records each request the SDK sends and answers
//! with a recorded `GetMetricData` response (the rpc-v2-cbor protocol
//! CloudWatch speaks), and check what the adapter sent and how it read the
//! answer. What they cannot check: that CloudWatch computes those values
//! and labels Metrics Insights groups as recorded here (values separated by
//! a space, in GROUP BY order).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_cloudwatch::Client;
use aws_smithy_cbor::Encoder;
use aws_smithy_types::DateTime;
use firebell_aws::CloudWatchSource;
use firebell_core::model::{Labels, MetricSpec, Stat};
use firebell_core::ports::{MetricQuery, MetricsSource};
use firebell_core::series::Point;
use firebell_embedded::ManualClock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One recorded result series: label, (time, value) points.
type Recorded = Vec<(&'static str, Vec<(i64, f64)>)>;

/// The CBOR body of a `GetMetricData` response: every series under `id`.
fn response(id: &str, series: &Recorded) -> Vec<u8> {
    response_with_messages(id, series, &[])
}

/// [`response`] with the page's `Messages` (code, value).
fn response_with_messages(id: &str, series: &Recorded, messages: &[(&str, &str)]) -> Vec<u8> {
    let mut e = Encoder::new(Vec::new());
    e.begin_map().str("MetricDataResults").begin_array();
    for (label, points) in series {
        e.begin_map()
            .str("Id")
            .str(id)
            .str("Label")
            .str(label)
            .str("StatusCode")
            .str("Complete")
            .str("Timestamps")
            .begin_array();
        for (t, _) in points {
            e.timestamp(&DateTime::from_secs(*t));
        }
        e.end().str("Values").begin_array();
        for (_, v) in points {
            e.double(*v);
        }
        e.end().end();
    }
    e.end().str("Messages").begin_array();
    for (code, value) in messages {
        e.begin_map()
            .str("Code")
            .str(code)
            .str("Value")
            .str(value)
            .end();
    }
    e.end().end();
    e.into_writer()
}

/// A reply of [`endpoint_with`]: HTTP status and CBOR body.
type Reply = Arc<dyn Fn(&[u8]) -> (u16, Vec<u8>) + Send + Sync>;

/// A local endpoint answering every request with `body`; the request
/// bodies it received.
async fn endpoint(body: Vec<u8>) -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    endpoint_with(Arc::new(move |_: &[u8]| (200, body.clone()))).await
}

/// A local endpoint answering each request with `reply(request body)`;
/// the request bodies it received.
async fn endpoint_with(reply: Reply) -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let record = Arc::clone(&record);
            let reply_to = Arc::clone(&reply);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // Headers, then Content-Length bytes of body.
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        let mut chunk = [0u8; 4096];
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let request = buf[head_end..head_end + len].to_vec();
                    let (status, body) = reply_to(&request);
                    record.lock().unwrap().push(request);
                    buf.drain(..head_end + len);
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/cbor\r\nsmithy-protocol: rpc-v2-cbor\r\nx-amzn-requestid: recorded\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    );
                    if conn.write_all(reply.as_bytes()).await.is_err()
                        || conn.write_all(&body).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (url, seen)
}

fn client(url: &str) -> Client {
    let config = aws_sdk_cloudwatch::Config::builder()
        .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
        .region(aws_sdk_cloudwatch::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_cloudwatch::config::Credentials::new(
            "test", "test", None, None, "recorded",
        ))
        .endpoint_url(url)
        .build();
    Client::from_conf(config)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

const T0: i64 = 1_795_392_000;
const QUERY: &str = r#"SELECT AVG(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId, AvailabilityZone) GROUP BY InstanceId, AvailabilityZone"#;

fn insights(dims: &[(&str, &str)]) -> MetricSpec {
    MetricSpec {
        namespace: "AWS/EC2".into(),
        metric_name: "CPUUtilization".into(),
        dimensions: dims
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        stat: Stat::Average,
        period: Duration::from_secs(60),
        account: None,
        region: None,
        query: Some(QUERY.into()),
    }
}

/// Discovery runs the query over the last 3 hours and reads the groups
/// from the labels; a fetch of two groups is one call with the SQL as its
/// `Expression`, each group's series found by its label.
#[tokio::test]
async fn a_metrics_insights_query_is_sent_once_and_split_by_group() {
    let recorded: Recorded = vec![
        ("i-1 us-east-1a", vec![(T0, 20.0), (T0 + 60, 25.0)]),
        ("i-2 us-east-1b", vec![(T0 + 60, 97.0), (T0, 95.0)]),
        ("i-3 us-east-1a", vec![(T0, 1.0)]),
    ];
    let (url, seen) = endpoint(response("q0", &recorded)).await;
    let clock = Arc::new(ManualClock::at_epoch(T0 + 600));
    let source = CloudWatchSource::new(client(&url), clock);

    let groups = source
        .dimension_values(&insights(&[("InstanceId", "*"), ("AvailabilityZone", "*")]))
        .await
        .unwrap();
    let group = |id: &str, az: &str| -> Labels {
        Labels::from([
            ("AvailabilityZone".to_string(), az.to_string()),
            ("InstanceId".to_string(), id.to_string()),
        ])
    };
    assert_eq!(
        groups,
        vec![
            group("i-1", "us-east-1a"),
            group("i-3", "us-east-1a"),
            group("i-2", "us-east-1b")
        ]
    );

    let queries = [
        MetricQuery {
            id: "hot".into(),
            spec: insights(&[("InstanceId", "i-2"), ("AvailabilityZone", "us-east-1b")]),
        },
        MetricQuery {
            id: "cold".into(),
            spec: insights(&[("InstanceId", "i-1"), ("AvailabilityZone", "us-east-1a")]),
        },
        MetricQuery {
            id: "gone".into(),
            spec: insights(&[("InstanceId", "i-9"), ("AvailabilityZone", "us-east-1c")]),
        },
    ];
    let out = source.fetch(&queries, T0, T0 + 120).await.unwrap();
    let got: Vec<(&str, Vec<Point>, bool)> = out
        .iter()
        .map(|s| (s.id.as_str(), s.points.clone(), s.complete))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "hot",
                vec![
                    Point { t: T0, v: 95.0 },
                    Point {
                        t: T0 + 60,
                        v: 97.0
                    }
                ],
                true
            ),
            (
                "cold",
                vec![
                    Point { t: T0, v: 20.0 },
                    Point {
                        t: T0 + 60,
                        v: 25.0
                    }
                ],
                true
            ),
            // A group the query no longer returns: no data.
            ("gone", vec![], true),
        ]
    );
    // One call to discover, one to fetch: each the query as `Expression`,
    // never a `MetricStat`.
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    for body in seen.iter() {
        assert!(contains(body, "Expression"));
        assert!(contains(body, QUERY));
        assert!(!contains(body, "MetricStat"));
    }
    assert_eq!(source.stats().get_metric_data, 2);
}

/// An extended statistic is sent as CloudWatch spells it in `Stat`.
#[tokio::test]
async fn extended_statistics_are_sent_as_cloudwatch_spells_them() {
    let recorded: Recorded = vec![("Latency", vec![(T0, 97.5)])];
    let (url, seen) = endpoint(response("q0", &recorded)).await;
    let source = CloudWatchSource::new(client(&url), Arc::new(ManualClock::at_epoch(T0)));
    for stat in ["PR(:300)", "TM(10%:90%)", "tc90", "IQM"] {
        let spec = MetricSpec {
            namespace: "Shop".into(),
            metric_name: "Latency".into(),
            dimensions: BTreeMap::from([("Service".to_string(), "checkout".to_string())]),
            stat: Stat::parse(stat).unwrap(),
            period: Duration::from_secs(60),
            account: None,
            region: None,
            query: None,
        };
        let out = source
            .fetch(
                &[MetricQuery {
                    id: "m".into(),
                    spec,
                }],
                T0,
                T0 + 60,
            )
            .await
            .unwrap();
        assert_eq!(out[0].points, vec![Point { t: T0, v: 97.5 }], "{stat}");
        let last = seen.lock().unwrap().last().cloned().unwrap();
        assert!(contains(&last, stat), "{stat} not in the request");
    }
}

/// The CBOR body of an error response of type `code`.
fn error_body(code: &str, message: &str) -> Vec<u8> {
    let mut e = Encoder::new(Vec::new());
    e.begin_map()
        .str("__type")
        .str(code)
        .str("message")
        .str(message)
        .end();
    e.into_writer()
}

/// A Metrics Insights query CloudWatch rejects (here: bad SQL, 400) fails
/// only its own groups' series; a plain metric fetched with it is read.
/// (The emulator answers every Metrics Insights query with an error, so
/// only a recorded response can tell one query's failure from another's.)
#[tokio::test]
async fn a_rejected_metrics_insights_query_fails_only_its_groups() {
    let plain: Recorded = vec![("Errors", vec![(T0, 3.0)])];
    let plain = response("q1", &plain);
    let (url, seen) = endpoint_with(Arc::new(move |req: &[u8]| {
        if contains(req, "Expression") {
            (
                400,
                error_body("InvalidParameterValueException", "Syntax error near SELEKT"),
            )
        } else {
            (200, plain.clone())
        }
    }))
    .await;
    let source = CloudWatchSource::new(client(&url), Arc::new(ManualClock::at_epoch(T0 + 600)));
    let queries = [
        MetricQuery {
            id: "cpu".into(),
            spec: insights(&[("InstanceId", "i-1"), ("AvailabilityZone", "us-east-1a")]),
        },
        MetricQuery {
            id: "errors".into(),
            spec: MetricSpec {
                namespace: "Shop".into(),
                metric_name: "Errors".into(),
                dimensions: BTreeMap::new(),
                stat: Stat::Sum,
                period: Duration::from_secs(60),
                account: None,
                region: None,
                query: None,
            },
        },
    ];
    let out = source.fetch(&queries, T0, T0 + 60).await.unwrap();
    let got: Vec<(&str, Vec<Point>, bool)> = out
        .iter()
        .map(|s| (s.id.as_str(), s.points.clone(), s.complete))
        .collect();
    assert_eq!(
        got,
        vec![
            ("cpu", vec![], false),
            ("errors", vec![Point { t: T0, v: 3.0 }], true),
        ]
    );
    assert_eq!(seen.lock().unwrap().len(), 2);
    // Alone, the query's failure is the fetch's, with CloudWatch's reason.
    let err = source.fetch(&queries[..1], T0, T0 + 60).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "bad metrics query: GetMetricData: InvalidParameterValueException: Syntax error near SELEKT"
    );
    assert!(!err.is_retryable());
}

/// A page with `Messages` (here: CloudWatch says the query matched more
/// series than it returns): a group it did not return may have been left
/// out, so its empty series is partial (not judged, never resolved on);
/// the groups it returned are complete.
#[tokio::test]
async fn a_page_with_messages_leaves_unanswered_groups_partial() {
    let recorded: Recorded = vec![("i-1 us-east-1a", vec![(T0, 20.0)])];
    let body = response_with_messages(
        "q0",
        &recorded,
        &[(
            "MaxQueryResults",
            "The query returned the maximum number of series",
        )],
    );
    let (url, _seen) = endpoint(body).await;
    let source = CloudWatchSource::new(client(&url), Arc::new(ManualClock::at_epoch(T0 + 600)));
    let queries = [
        MetricQuery {
            id: "answered".into(),
            spec: insights(&[("InstanceId", "i-1"), ("AvailabilityZone", "us-east-1a")]),
        },
        MetricQuery {
            id: "unanswered".into(),
            spec: insights(&[("InstanceId", "i-2"), ("AvailabilityZone", "us-east-1b")]),
        },
    ];
    let out = source.fetch(&queries, T0, T0 + 60).await.unwrap();
    let got: Vec<(&str, Vec<Point>, bool)> = out
        .iter()
        .map(|s| (s.id.as_str(), s.points.clone(), s.complete))
        .collect();
    assert_eq!(
        got,
        vec![
            ("answered", vec![Point { t: T0, v: 20.0 }], true),
            ("unanswered", vec![], false),
        ]
    );
}

/// CloudWatch's null group `Other` (metrics the query matched without a
/// `GROUP BY` label) is no instance: discovery skips it (with a warning).
#[tokio::test]
async fn the_other_group_is_not_an_instance() {
    let recorded: Recorded = vec![
        ("i-1 us-east-1a", vec![(T0, 20.0)]),
        ("Other us-east-1a", vec![(T0, 50.0)]),
        ("i-2 Other", vec![(T0, 50.0)]),
    ];
    let (url, _seen) = endpoint(response("q0", &recorded)).await;
    let source = CloudWatchSource::new(client(&url), Arc::new(ManualClock::at_epoch(T0 + 600)));
    let groups = source
        .dimension_values(&insights(&[("InstanceId", "*"), ("AvailabilityZone", "*")]))
        .await
        .unwrap();
    assert_eq!(
        groups,
        vec![Labels::from([
            ("AvailabilityZone".to_string(), "us-east-1a".to_string()),
            ("InstanceId".to_string(), "i-1".to_string()),
        ])]
    );
}

/// A discovery page that hit a limit lists only some groups: not taken as
/// the whole (instances would be dropped and their alerts resolved), but an
/// error that says so (the cached groups, when any, stand in).
#[tokio::test]
async fn a_discovery_answered_in_part_is_an_error_not_fewer_instances() {
    let recorded: Recorded = vec![("i-1 us-east-1a", vec![(T0, 20.0)])];
    let body = response_with_messages(
        "q0",
        &recorded,
        &[(
            "MaxQueryResults",
            "The query returned the maximum number of series",
        )],
    );
    let (url, _seen) = endpoint(body).await;
    let source = CloudWatchSource::new(client(&url), Arc::new(ManualClock::at_epoch(T0 + 600)));
    let err = source
        .dimension_values(&insights(&[("InstanceId", "*"), ("AvailabilityZone", "*")]))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        err.to_string().contains(
            "discovery answered in part (MaxQueryResults: The query returned the maximum number of series)"
        ),
        "{err}"
    );
}
