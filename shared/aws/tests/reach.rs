//! CloudWatchSource across regions and accounts.
//!
//! On the emulator (which keeps CloudWatch data per account and per
//! region, and attributes a request to the account of its access key, or of
//! the role an STS session assumed): metrics put into us-west-2, and into
//! account 111122223333, are read back through firebell's per-region client
//! and its client assuming a role of that account (`accounts:`).
//!
//! What the emulator cannot check: CloudWatch cross-account observability
//! (a monitoring account reading a source account's metrics with
//! `AccountId` on each `MetricDataQuery`, `IncludeLinkedAccounts` and
//! `OwningAccount` on `ListMetrics`): it ignores those fields. Those
//! requests are checked byte for byte against a local server that answers
//! with recorded CloudWatch responses (rpc-v2-cbor, as the SDK speaks it).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::config::Credentials;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use common::{eventually, now_secs, sdk_config, unique};
use firebell_aws::CloudWatchSource;
use firebell_core::model::{Labels, MetricSpec, Stat};
use firebell_core::ports::{MetricQuery, MetricsSource, SystemClock};

const SOURCE_ACCOUNT: &str = "111122223333";

fn spec(ns: &str, service: &str, account: Option<&str>, region: Option<&str>) -> MetricSpec {
    MetricSpec {
        namespace: ns.to_owned(),
        metric_name: "Errors".to_owned(),
        dimensions: BTreeMap::from([("Service".to_owned(), service.to_owned())]),
        stat: Stat::Sum,
        period: Duration::from_secs(60),
        account: account.map(str::to_owned),
        region: region.map(str::to_owned),
        query: None,
    }
}

fn query(id: &str, spec: MetricSpec) -> MetricQuery {
    MetricQuery {
        id: id.to_owned(),
        spec,
    }
}

async fn put(client: &Client, ns: &str, service: &str, t: i64, v: f64) {
    client
        .put_metric_data()
        .namespace(ns)
        .metric_data(
            MetricDatum::builder()
                .metric_name("Errors")
                .timestamp(DateTime::from_secs(t))
                .value(v)
                .dimensions(Dimension::builder().name("Service").value(service).build())
                .build(),
        )
        .send()
        .await
        .expect("PutMetricData");
}

fn base_minute() -> i64 {
    (now_secs() - 900).div_euclid(60) * 60
}

#[tokio::test]
async fn another_regions_metrics_are_read_by_its_own_client() {
    let config = sdk_config().await;
    assert_eq!(config.region().map(|r| r.as_ref()), Some("us-east-1"));
    // The test's own client in us-west-2 writes there.
    let west = Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(&config)
            .region(aws_config::Region::new("us-west-2"))
            .build(),
    );
    let ns = format!("Firebell/Test/{}", unique("west"));
    let t0 = base_minute();
    for k in 0..3 {
        put(&west, &ns, "pay", t0 + 60 * k, 10.0 + k as f64).await;
    }
    let source = CloudWatchSource::from_sdk_config(&config, Arc::new(SystemClock));
    let queries = vec![
        query("west", spec(&ns, "pay", None, Some("us-west-2"))),
        query("home", spec(&ns, "pay", None, None)),
    ];
    let series = eventually("the us-west-2 data", || async {
        let s = source.fetch(&queries, t0, t0 + 180).await.expect("fetch");
        (s[0].points.len() == 3).then_some(s)
    })
    .await;
    let values: Vec<f64> = series[0].points.iter().map(|p| p.v).collect();
    assert_eq!(values, [10.0, 11.0, 12.0]);
    // The evaluator's own region has none of it.
    assert!(series[1].points.is_empty(), "{series:?}");
    // Wildcards are listed in the metric's region.
    let values = source
        .dimension_values(&spec(&ns, "*", None, Some("us-west-2")))
        .await
        .expect("ListMetrics");
    assert_eq!(
        values,
        vec![Labels::from([("Service".to_owned(), "pay".to_owned())])]
    );
    assert!(
        source
            .dimension_values(&spec(&ns, "*", None, None))
            .await
            .expect("ListMetrics")
            .is_empty()
    );
    // One client for us-west-2, built once and reused.
    assert_eq!(source.clients_built(), 1);
    source.fetch(&queries, t0, t0 + 180).await.expect("fetch");
    assert_eq!(source.clients_built(), 1);
}

#[tokio::test]
async fn an_account_with_a_role_is_read_by_assuming_it() {
    let config = sdk_config().await;
    // The emulator takes a 12-digit access key as the caller's account:
    // this client writes into account 111122223333.
    let source_account = Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(&config)
            .credentials_provider(Credentials::new(
                SOURCE_ACCOUNT,
                "test",
                None,
                None,
                "tests",
            ))
            .build(),
    );
    let ns = format!("Firebell/Test/{}", unique("acct"));
    let t0 = base_minute();
    for k in 0..2 {
        put(&source_account, &ns, "pay", t0 + 60 * k, 5.0 + k as f64).await;
    }
    let source = CloudWatchSource::from_sdk_config(&config, Arc::new(SystemClock));
    let remote = vec![query(
        "remote",
        spec(&ns, "pay", Some(SOURCE_ACCOUNT), None),
    )];
    // The evaluator's own credentials see nothing of it (the emulator
    // ignores `AccountId`: without a role the query reads the own account).
    let own = source.fetch(&remote, t0, t0 + 120).await.expect("fetch");
    assert!(own[0].points.is_empty(), "{own:?}");
    // With the account's role (as `accounts:` names it), a client assuming
    // it reads the source account's metrics.
    source.use_account_roles(&BTreeMap::from([(
        SOURCE_ACCOUNT.to_owned(),
        format!("arn:aws:iam::{SOURCE_ACCOUNT}:role/firebell-read"),
    )]));
    let series = eventually("the source account's data", || async {
        let s = source.fetch(&remote, t0, t0 + 120).await.expect("fetch");
        (s[0].points.len() == 2).then_some(s)
    })
    .await;
    let values: Vec<f64> = series[0].points.iter().map(|p| p.v).collect();
    assert_eq!(values, [5.0, 6.0]);
    let listed = source
        .dimension_values(&spec(&ns, "*", Some(SOURCE_ACCOUNT), None))
        .await
        .expect("ListMetrics");
    assert_eq!(
        listed,
        vec![Labels::from([("Service".to_owned(), "pay".to_owned())])]
    );
    assert_eq!(source.clients_built(), 1);
    // The same roles again keep the client; dropping the role drops it.
    source.use_account_roles(&BTreeMap::from([(
        SOURCE_ACCOUNT.to_owned(),
        format!("arn:aws:iam::{SOURCE_ACCOUNT}:role/firebell-read"),
    )]));
    assert_eq!(source.clients_built(), 1);
    source.use_account_roles(&BTreeMap::new());
    assert_eq!(source.clients_built(), 0);
}

// ------------------------------------------------ recorded responses

/// Minimal CBOR, enough to write CloudWatch's recorded responses.
mod cbor {
    pub(super) fn head(major: u8, n: u64, out: &mut Vec<u8>) {
        let m = major << 5;
        if n < 24 {
            out.push(m | n as u8);
        } else if n < 256 {
            out.extend([m | 24, n as u8]);
        } else if n < 65_536 {
            out.push(m | 25);
            out.extend((n as u16).to_be_bytes());
        } else {
            out.push(m | 26);
            out.extend((n as u32).to_be_bytes());
        }
    }

    pub(super) fn text(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        head(3, s.len() as u64, &mut out);
        out.extend(s.as_bytes());
        out
    }

    pub(super) enum V {
        T(&'static str),
        S(String),
        F(f64),
        Time(i64),
        A(Vec<V>),
        M(Vec<(&'static str, V)>),
    }

    pub(super) fn encode(v: &V, out: &mut Vec<u8>) {
        match v {
            V::T(s) => out.extend(text(s)),
            V::S(s) => out.extend(text(s)),
            V::F(f) => {
                out.push(0xfb);
                out.extend(f.to_be_bytes());
            }
            V::Time(t) => {
                out.push(0xc1);
                head(0, *t as u64, out);
            }
            V::A(items) => {
                head(4, items.len() as u64, out);
                for i in items {
                    encode(i, out);
                }
            }
            V::M(pairs) => {
                head(5, pairs.len() as u64, out);
                for (k, v) in pairs {
                    out.extend(text(k));
                    encode(v, out);
                }
            }
        }
    }
}

/// The requests a [`Recorded`] server saw: (operation, body).
type Requests = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A local CloudWatch that records each request (operation, body) and
/// answers with the recorded response of its operation.
struct Recorded {
    endpoint: String,
    requests: Requests,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The recorded answers of a [`serve_shared`] server, by operation: a
/// test may change them between requests.
type Answers = Arc<Mutex<BTreeMap<&'static str, Vec<u8>>>>;

fn serve(responses: BTreeMap<&'static str, Vec<u8>>) -> Recorded {
    serve_shared(Arc::new(Mutex::new(responses)))
}

fn serve_shared(responses: Answers) -> Recorded {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let requests: Requests = Arc::default();
    let seen = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let seen = seen.clone();
            let responses = responses.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    // One request: headers, then Content-Length bytes.
                    let (head_end, length) = loop {
                        if let Some(i) = find(&buf, b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            break (i + 4, length);
                        }
                        match stream.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend(&chunk[..n]),
                        }
                    };
                    while buf.len() < head_end + length {
                        match stream.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                    let op = path.rsplit('/').next().unwrap_or("").to_string();
                    let body = buf[head_end..head_end + length].to_vec();
                    buf.drain(..head_end + length);
                    // A region that never answers: `"hang"` names it (a
                    // request signed for it carries `/<region>/` in its
                    // credential scope).
                    let hang = responses.lock().unwrap().get("hang").cloned();
                    if let Some(region) = hang
                        && head.contains(&format!("/{}/", String::from_utf8_lossy(&region)))
                    {
                        std::thread::sleep(Duration::from_secs(600));
                        return;
                    }
                    let reply = responses
                        .lock()
                        .unwrap()
                        .get(op.as_str())
                        .cloned()
                        .unwrap_or_default();
                    let status = if op.is_empty() {
                        "403 Forbidden"
                    } else {
                        "200 OK"
                    };
                    let kind = if op.is_empty() {
                        "text/xml"
                    } else {
                        "application/cbor"
                    };
                    seen.lock().unwrap().push((op, body));
                    let mut response = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\nsmithy-protocol: rpc-v2-cbor\r\ncontent-length: {}\r\n\r\n",
                        reply.len()
                    )
                    .into_bytes();
                    response.extend(reply);
                    if stream.write_all(&response).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Recorded { endpoint, requests }
}

#[tokio::test]
async fn another_account_without_a_role_is_read_through_cross_account_observability() {
    use cbor::V;
    let t0 = 1_795_392_000;
    // Recorded answers: GetMetricData with the source account's two
    // datapoints for `q0`; ListMetrics with one metric of the source account.
    let mut get = Vec::new();
    cbor::encode(
        &V::M(vec![(
            "MetricDataResults",
            V::A(vec![V::M(vec![
                ("Id", V::T("q0")),
                ("Label", V::T("Errors")),
                ("Timestamps", V::A(vec![V::Time(t0 + 60), V::Time(t0)])),
                ("Values", V::A(vec![V::F(7.0), V::F(3.0)])),
                ("StatusCode", V::T("Complete")),
            ])]),
        )]),
        &mut get,
    );
    let mut list = Vec::new();
    cbor::encode(
        &V::M(vec![
            (
                "Metrics",
                V::A(vec![V::M(vec![
                    ("Namespace", V::T("Shop")),
                    ("MetricName", V::T("Errors")),
                    (
                        "Dimensions",
                        V::A(vec![V::M(vec![
                            ("Name", V::T("Service")),
                            ("Value", V::T("pay")),
                        ])]),
                    ),
                ])]),
            ),
            (
                "OwningAccounts",
                V::A(vec![V::S(SOURCE_ACCOUNT.to_owned())]),
            ),
        ]),
        &mut list,
    );
    let server = serve(BTreeMap::from([
        ("GetMetricData", get),
        ("ListMetrics", list),
    ]));
    let config = aws_sdk_cloudwatch::Config::builder()
        .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
        .endpoint_url(&server.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .build();
    let source = CloudWatchSource::new(Client::from_conf(config), Arc::new(SystemClock));

    let series = source
        .fetch(
            &[query(
                "remote",
                spec("Shop", "pay", Some(SOURCE_ACCOUNT), None),
            )],
            t0,
            t0 + 120,
        )
        .await
        .expect("fetch");
    let points: Vec<(i64, f64)> = series[0].points.iter().map(|p| (p.t, p.v)).collect();
    assert_eq!(points, [(t0, 3.0), (t0 + 60, 7.0)]);
    assert!(series[0].complete);
    let listed = source
        .dimension_values(&spec("Shop", "*", Some(SOURCE_ACCOUNT), None))
        .await
        .expect("ListMetrics");
    assert_eq!(
        listed,
        vec![Labels::from([("Service".to_owned(), "pay".to_owned())])]
    );
    // The evaluator's own metric: no AccountId, no linked accounts.
    source
        .fetch(
            &[query("home", spec("Shop", "pay", None, None))],
            t0,
            t0 + 120,
        )
        .await
        .expect("fetch");
    source
        .dimension_values(&spec("Shop", "*", None, None))
        .await
        .expect("ListMetrics");

    let requests = server.requests.lock().unwrap().clone();
    let ops: Vec<&str> = requests.iter().map(|(op, _)| op.as_str()).collect();
    assert_eq!(
        ops,
        [
            "GetMetricData",
            "ListMetrics",
            "GetMetricData",
            "ListMetrics"
        ]
    );
    let account_id = [cbor::text("AccountId"), cbor::text(SOURCE_ACCOUNT)].concat();
    let linked = [cbor::text("IncludeLinkedAccounts"), vec![0xf5]].concat();
    let owning = [cbor::text("OwningAccount"), cbor::text(SOURCE_ACCOUNT)].concat();
    assert!(
        find(&requests[0].1, &account_id).is_some(),
        "{:?}",
        requests[0].1
    );
    assert!(
        find(&requests[1].1, &linked).is_some(),
        "{:?}",
        requests[1].1
    );
    assert!(
        find(&requests[1].1, &owning).is_some(),
        "{:?}",
        requests[1].1
    );
    for (_, body) in &requests[2..] {
        for field in ["AccountId", "IncludeLinkedAccounts", "OwningAccount"] {
            assert!(
                find(body, field.as_bytes()).is_none(),
                "{field} in {body:?}"
            );
        }
    }
    // No other client was needed: the evaluator's own reads them all.
    assert_eq!(source.clients_built(), 0);
}

/// A role that cannot be assumed (STS refuses it: here the recorded server
/// answers AssumeRole with AccessDenied) fails the fetch of that account
/// with a message naming the role and what it needs.
#[tokio::test]
async fn a_role_that_cannot_be_assumed_is_named() {
    let denied = b"<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized to perform: sts:AssumeRole</Message></Error><RequestId>r</RequestId></ErrorResponse>".to_vec();
    // STS's query protocol posts to "/": the operation name is empty.
    let server = serve(BTreeMap::from([("", denied)]));
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&server.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let source = CloudWatchSource::from_sdk_config(&sdk, Arc::new(SystemClock));
    let role = format!("arn:aws:iam::{SOURCE_ACCOUNT}:role/firebell-read");
    source.use_account_roles(&BTreeMap::from([(SOURCE_ACCOUNT.to_owned(), role.clone())]));
    let err = source
        .fetch(
            &[query(
                "remote",
                spec("Shop", "pay", Some(SOURCE_ACCOUNT), None),
            )],
            1_795_392_000,
            1_795_392_120,
        )
        .await
        .unwrap_err()
        .to_string();
    let want = format!(
        "bad metrics query: cloudwatch GetMetricData: cannot assume role {role}: its trust policy must name the evaluator's role, and the evaluator must be allowed sts:AssumeRole on it (stack parameter SourceAccountRoleArns) ("
    );
    assert!(err.starts_with(&want), "{err}");
    assert!(err.contains("AccessDenied"), "{err}");
}

/// An account that is not (or no longer) linked to the monitoring account:
/// GetMetricData succeeds but answers the query `Forbidden`. For a query of
/// another account that is an error of the fetch (the engine's
/// `FetchElsewhere`, which fires the self-check), not a partial series;
/// the evaluator's own query answered so stays a partial series as before.
#[tokio::test]
async fn a_forbidden_answer_for_another_account_is_an_error() {
    use cbor::V;
    let t0 = 1_795_392_000;
    let mut get = Vec::new();
    cbor::encode(
        &V::M(vec![(
            "MetricDataResults",
            V::A(vec![V::M(vec![
                ("Id", V::T("q0")),
                ("Label", V::T("Errors")),
                ("Timestamps", V::A(vec![])),
                ("Values", V::A(vec![])),
                ("StatusCode", V::T("Forbidden")),
                (
                    "Messages",
                    V::A(vec![V::M(vec![
                        ("Code", V::T("Forbidden")),
                        ("Value", V::T("account not linked")),
                    ])]),
                ),
            ])]),
        )]),
        &mut get,
    );
    let server = serve(BTreeMap::from([("GetMetricData", get)]));
    let config = aws_sdk_cloudwatch::Config::builder()
        .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
        .endpoint_url(&server.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .build();
    let source = CloudWatchSource::new(Client::from_conf(config), Arc::new(SystemClock));
    let err = source
        .fetch(
            &[query(
                "remote",
                spec("Shop", "pay", Some(SOURCE_ACCOUNT), None),
            )],
            t0,
            t0 + 120,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "bad metrics query: cloudwatch GetMetricData: Shop/Errors of account 111122223333: status Forbidden: Forbidden: account not linked: the account must be linked to this monitoring account (CloudWatch cross-account observability) or have a role in `accounts:` that may read its metrics"
    );
    assert!(!err.is_retryable());
    // The evaluator's own metric answered Forbidden: a partial series.
    let own = source
        .fetch(
            &[query("home", spec("Shop", "pay", None, None))],
            t0,
            t0 + 120,
        )
        .await
        .expect("fetch");
    assert!(!own[0].complete);
    assert!(own[0].points.is_empty());
}

/// ListMetrics answers for [`an_emptied_listing_of_another_account_keeps_its_instances`]:
/// one metric `Service=pay`, or none.
fn list_answer(with_pay: bool) -> Vec<u8> {
    use cbor::V;
    let metrics = if with_pay {
        vec![V::M(vec![
            ("Namespace", V::T("Shop")),
            ("MetricName", V::T("Errors")),
            (
                "Dimensions",
                V::A(vec![V::M(vec![
                    ("Name", V::T("Service")),
                    ("Value", V::T("pay")),
                ])]),
            ),
        ])]
    } else {
        Vec::new()
    };
    let mut out = Vec::new();
    cbor::encode(&V::M(vec![("Metrics", V::A(metrics))]), &mut out);
    out
}

/// Another account's listing that empties (its link to the monitoring
/// account removed) is an error, and the values listed before stay: the
/// engine keeps the rule's alerts instead of resolving them as "instance
/// gone". The evaluator's own listing that empties is taken as it is.
#[tokio::test]
async fn an_emptied_listing_of_another_account_keeps_its_instances() {
    let answers: Answers = Arc::new(Mutex::new(BTreeMap::from([(
        "ListMetrics",
        list_answer(true),
    )])));
    let server = serve_shared(answers.clone());
    let config = aws_sdk_cloudwatch::Config::builder()
        .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
        .endpoint_url(&server.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .build();
    // No caching: every call lists again.
    let source = CloudWatchSource::with_options(
        Client::from_conf(config),
        Arc::new(SystemClock),
        firebell_aws::CloudWatchOptions {
            dimension_cache_ttl: Duration::ZERO,
            ..firebell_aws::CloudWatchOptions::default()
        },
    );
    let remote = spec("Shop", "*", Some(SOURCE_ACCOUNT), None);
    let home = spec("Shop", "*", None, None);
    let pay = vec![Labels::from([("Service".to_owned(), "pay".to_owned())])];
    assert_eq!(source.dimension_values(&remote).await.unwrap(), pay);
    assert_eq!(source.dimension_values(&home).await.unwrap(), pay);
    answers
        .lock()
        .unwrap()
        .insert("ListMetrics", list_answer(false));
    let want = "metrics source unavailable: cloudwatch ListMetrics: Shop/Errors of account 111122223333 lists no metrics where it listed 1 before: is the account still linked to this monitoring account, or its role still allowed cloudwatch:ListMetrics? The rule's instances are kept until it lists them again";
    for _ in 0..2 {
        let err = source.dimension_values(&remote).await.unwrap_err();
        assert_eq!(err.to_string(), want);
        assert!(err.is_retryable());
    }
    assert!(source.dimension_values(&home).await.unwrap().is_empty());
    // Listed again: the values come back.
    answers
        .lock()
        .unwrap()
        .insert("ListMetrics", list_answer(true));
    assert_eq!(source.dimension_values(&remote).await.unwrap(), pay);
}

/// A region that never answers fails its fetch and its listing alone,
/// after `elsewhere_timeout`, retryable; the evaluator's own region is
/// read as ever. (The engine fetches targets concurrently: see
/// `shared/engine/tests/reach.rs`.)
#[tokio::test]
async fn a_region_that_never_answers_times_out_alone() {
    use cbor::V;
    let t0 = 1_795_392_000;
    let mut get = Vec::new();
    cbor::encode(
        &V::M(vec![(
            "MetricDataResults",
            V::A(vec![V::M(vec![
                ("Id", V::T("q0")),
                ("Timestamps", V::A(vec![V::Time(t0)])),
                ("Values", V::A(vec![V::F(4.0)])),
                ("StatusCode", V::T("Complete")),
            ])]),
        )]),
        &mut get,
    );
    let server = serve(BTreeMap::from([
        ("GetMetricData", get),
        ("hang", b"us-west-2".to_vec()),
    ]));
    let config = aws_sdk_cloudwatch::Config::builder()
        .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
        .endpoint_url(&server.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .build();
    let source = CloudWatchSource::with_options(
        Client::from_conf(config),
        Arc::new(SystemClock),
        firebell_aws::CloudWatchOptions {
            elsewhere_timeout: Some(Duration::from_millis(300)),
            ..firebell_aws::CloudWatchOptions::default()
        },
    );
    let started = std::time::Instant::now();
    let err = source
        .fetch(
            &[query("west", spec("Shop", "pay", None, Some("us-west-2")))],
            t0,
            t0 + 60,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "metrics source unavailable: cloudwatch GetMetricData: region us-west-2 did not answer within 300ms"
    );
    assert!(err.is_retryable());
    let err = source
        .dimension_values(&spec("Shop", "*", None, Some("us-west-2")))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "metrics source unavailable: cloudwatch ListMetrics: region us-west-2 did not answer within 300ms"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let home = source
        .fetch(
            &[query("home", spec("Shop", "pay", None, None))],
            t0,
            t0 + 60,
        )
        .await
        .expect("fetch");
    assert_eq!(home[0].points.len(), 1);
    // Without the overall limit, the region's client still gives up: each
    // attempt has a timeout of its own.
    let source = CloudWatchSource::with_options(
        source.client().clone(),
        Arc::new(SystemClock),
        firebell_aws::CloudWatchOptions {
            elsewhere_timeout: None,
            elsewhere_attempt_timeout: Duration::from_millis(200),
            ..firebell_aws::CloudWatchOptions::default()
        },
    );
    let started = std::time::Instant::now();
    let err = source
        .fetch(
            &[query("west", spec("Shop", "pay", None, Some("us-west-2")))],
            t0,
            t0 + 60,
        )
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(err.is_retryable(), "{err}");
    assert_eq!(
        err.to_string(),
        "metrics source unavailable: GetMetricData: request has timed out: operation attempt timeout (single attempt) occurred after 200ms"
    );
}

/// STS throttling AssumeRole is retryable (the next cycle assumes the role
/// again), not a refused role.
#[tokio::test]
async fn sts_throttling_a_role_is_retryable() {
    let throttled = b"<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>".to_vec();
    let server = serve(BTreeMap::from([("", throttled)]));
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&server.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let source = CloudWatchSource::from_sdk_config(&sdk, Arc::new(SystemClock));
    let role = format!("arn:aws:iam::{SOURCE_ACCOUNT}:role/firebell-read");
    source.use_account_roles(&BTreeMap::from([(SOURCE_ACCOUNT.to_owned(), role.clone())]));
    let err = source
        .fetch(
            &[query(
                "remote",
                spec("Shop", "pay", Some(SOURCE_ACCOUNT), None),
            )],
            1_795_392_000,
            1_795_392_120,
        )
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let text = err.to_string();
    let want = format!(
        "metrics source throttled: cloudwatch GetMetricData: assuming role {role}: STS throttled the call ("
    );
    assert!(text.starts_with(&want), "{text}");
    assert!(text.contains("Throttling"), "{text}");
}
