//! ReplaySource: loading, matching, re-aggregation, wildcards, errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use firebell_core::model::{MetricSpec, Stat};
use firebell_core::ports::{MetricQuery, MetricsError, MetricsSource};
use firebell_core::series::Point;
use firebell_embedded::{LineProblem, ReplayError, ReplaySource};

const T0: i64 = 1_700_000_400; // a multiple of 600 (so of 60, 120 and 300)

/// The example of REPLAY.md, so the documentation stays loadable.
fn doc_example() -> String {
    let doc = include_str!("../REPLAY.md");
    let start = doc.find("```jsonl\n").unwrap() + "```jsonl\n".len();
    let len = doc[start..].find("```").unwrap();
    doc[start..start + len].to_string()
}

fn spec(metric: &str, dims: &[(&str, &str)], stat: &str, period: u64) -> MetricSpec {
    MetricSpec {
        namespace: "Shop/Payments".into(),
        metric_name: metric.into(),
        dimensions: dims
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        stat: Stat::parse(stat).unwrap(),
        period: Duration::from_secs(period),
        account: None,
        region: None,
        query: None,
    }
}

async fn fetch_one(
    src: &ReplaySource,
    spec: MetricSpec,
    start: i64,
    end: i64,
) -> Result<Vec<(i64, f64)>, MetricsError> {
    let out = src
        .fetch(
            &[MetricQuery {
                id: "m".into(),
                spec,
            }],
            start,
            end,
        )
        .await?;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].id, "m");
    assert!(out[0].complete);
    Ok(out[0].points.iter().map(|p| (p.t, p.v)).collect())
}

fn line(metric: &str, service: &str, stat: &str, period: i64, points: &[(i64, f64)]) -> String {
    let pts: Vec<String> = points.iter().map(|(t, v)| format!("[{t},{v}]")).collect();
    format!(
        r#"{{"namespace":"Shop/Payments","metric":"{metric}","dimensions":{{"Service":"{service}"}},"stat":"{stat}","period":{period},"points":[{}]}}"#,
        pts.join(",")
    )
}

/// Ten minutes of 1-minute data starting at T0: value i+1 at minute i.
fn minutes(f: impl Fn(i64) -> f64) -> Vec<(i64, f64)> {
    (0..10).map(|i| (T0 + 60 * i, f(i))).collect()
}

#[tokio::test]
async fn doc_example_loads_and_answers() {
    let src = ReplaySource::parse("REPLAY.md", &doc_example()).unwrap();
    assert_eq!(src.series().len(), 6);
    assert_eq!(src.time_range(), Some((1_700_000_000, 1_700_000_300)));
    let got = fetch_one(
        &src,
        spec("Errors", &[("Service", "payments")], "Sum", 60),
        1_700_000_060,
        1_700_000_180,
    )
    .await
    .unwrap();
    assert_eq!(got, [(1_700_000_060, 41.0), (1_700_000_120, 57.0)]);
    let got = fetch_one(
        &src,
        spec("Latency", &[("Service", "payments")], "p99", 60),
        0,
        i64::MAX,
    )
    .await
    .unwrap();
    assert_eq!(got.len(), 5);
}

#[tokio::test]
async fn exact_match_returns_half_open_range_ascending() {
    let mut pts = minutes(|i| (i + 1) as f64);
    pts.reverse(); // unsorted in the file
    let src = ReplaySource::parse("t", &line("Requests", "payments", "Sum", 60, &pts)).unwrap();
    let s = spec("Requests", &[("Service", "payments")], "Sum", 60);
    let got = fetch_one(&src, s.clone(), T0 + 60, T0 + 240).await.unwrap();
    assert_eq!(got, [(T0 + 60, 2.0), (T0 + 120, 3.0), (T0 + 180, 4.0)]);
    // Unaligned range bounds.
    let got = fetch_one(&src, s.clone(), T0 + 1, T0 + 121).await.unwrap();
    assert_eq!(got, [(T0 + 60, 2.0), (T0 + 120, 3.0)]);
    assert!(
        fetch_one(&src, s, T0 + 100, T0 + 100)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn matching_needs_every_field_equal() {
    let src = ReplaySource::parse(
        "t",
        &line("Requests", "payments", "Sum", 60, &minutes(|_| 1.0)),
    )
    .unwrap();
    for s in [
        spec("Requests", &[("Service", "search")], "Sum", 60),
        spec("Requests", &[], "Sum", 60),
        spec(
            "Requests",
            &[("Service", "payments"), ("Region", "eu")],
            "Sum",
            60,
        ),
        spec("Errors", &[("Service", "payments")], "Sum", 60),
        spec("Requests", &[("Service", "payments")], "Maximum", 60),
        MetricSpec {
            namespace: "Other".into(),
            ..spec("Requests", &[("Service", "payments")], "Sum", 60)
        },
    ] {
        let got = fetch_one(&src, s.clone(), 0, i64::MAX).await.unwrap();
        assert!(got.is_empty(), "{s:?} matched");
    }
}

#[tokio::test]
async fn sum_min_max_count_reaggregate_to_a_multiple_period() {
    let text = [
        line(
            "Requests",
            "payments",
            "Sum",
            60,
            &minutes(|i| (i + 1) as f64),
        ),
        line("Requests", "payments", "SampleCount", 60, &minutes(|_| 2.0)),
        line(
            "Latency",
            "payments",
            "Minimum",
            60,
            &minutes(|i| (10 - i) as f64),
        ),
        line(
            "Latency",
            "payments",
            "Maximum",
            60,
            &minutes(|i| (i * i) as f64),
        ),
    ]
    .join("\n");
    let src = ReplaySource::parse("t", &text).unwrap();
    let d = [("Service", "payments")];
    let got = fetch_one(&src, spec("Requests", &d, "Sum", 300), T0, T0 + 600)
        .await
        .unwrap();
    assert_eq!(got, [(T0, 15.0), (T0 + 300, 40.0)]);
    let got = fetch_one(&src, spec("Requests", &d, "SampleCount", 300), T0, T0 + 600)
        .await
        .unwrap();
    assert_eq!(got, [(T0, 10.0), (T0 + 300, 10.0)]);
    let got = fetch_one(&src, spec("Latency", &d, "Minimum", 300), T0, T0 + 600)
        .await
        .unwrap();
    assert_eq!(got, [(T0, 6.0), (T0 + 300, 1.0)]);
    let got = fetch_one(&src, spec("Latency", &d, "Maximum", 120), T0, T0 + 600)
        .await
        .unwrap();
    assert_eq!(
        got,
        [
            (T0, 1.0),
            (T0 + 120, 9.0),
            (T0 + 240, 25.0),
            (T0 + 360, 49.0),
            (T0 + 480, 81.0)
        ]
    );
    // The bucket in progress at `end` only uses points before `end`;
    // buckets starting before `start` are left out.
    let got = fetch_one(&src, spec("Requests", &d, "Sum", 300), T0 + 1, T0 + 420)
        .await
        .unwrap();
    assert_eq!(got, [(T0 + 300, 6.0 + 7.0)]);
}

#[tokio::test]
async fn average_reaggregates_weighted_by_sample_count() {
    // Averages 10 (n=1) and 40 (n=3) -> (10 + 120) / 4 = 32.5 per 2 minutes.
    let text = [
        line(
            "Latency",
            "payments",
            "Average",
            60,
            &minutes(|i| if i % 2 == 0 { 10.0 } else { 40.0 }),
        ),
        line(
            "Latency",
            "payments",
            "SampleCount",
            60,
            &minutes(|i| if i % 2 == 0 { 1.0 } else { 3.0 }),
        ),
    ]
    .join("\n");
    let src = ReplaySource::parse("t", &text).unwrap();
    let got = fetch_one(
        &src,
        spec("Latency", &[("Service", "payments")], "Average", 120),
        T0,
        T0 + 240,
    )
    .await
    .unwrap();
    assert_eq!(got, [(T0, 32.5), (T0 + 120, 32.5)]);
}

#[tokio::test]
async fn average_derives_from_sum_and_sample_count() {
    let text = [
        line(
            "Latency",
            "payments",
            "Sum",
            60,
            &minutes(|i| 100.0 * (i + 1) as f64),
        ),
        line(
            "Latency",
            "payments",
            "SampleCount",
            60,
            &minutes(|i| (i + 1) as f64),
        ),
    ]
    .join("\n");
    let src = ReplaySource::parse("t", &text).unwrap();
    let d = [("Service", "payments")];
    // Same period: Sum / SampleCount.
    let got = fetch_one(&src, spec("Latency", &d, "Average", 60), T0, T0 + 120)
        .await
        .unwrap();
    assert_eq!(got, [(T0, 100.0), (T0 + 60, 100.0)]);
    let got = fetch_one(&src, spec("Latency", &d, "Average", 300), T0, T0 + 300)
        .await
        .unwrap();
    assert_eq!(got, [(T0, 100.0)]);
}

#[tokio::test]
async fn average_without_sample_count_is_a_bad_query() {
    let src = ReplaySource::parse(
        "t",
        &line("Latency", "payments", "Average", 60, &minutes(|_| 1.0)),
    )
    .unwrap();
    let err = fetch_one(
        &src,
        spec("Latency", &[("Service", "payments")], "Average", 300),
        T0,
        T0 + 600,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, MetricsError::BadQuery(_)));
    assert!(!err.is_retryable());
    assert!(
        err.to_string().contains("needs a SampleCount series"),
        "{err}"
    );
}

#[tokio::test]
async fn percentiles_are_not_reaggregated() {
    let src = ReplaySource::parse(
        "t",
        &line("Latency", "payments", "p99", 60, &minutes(|_| 1.0)),
    )
    .unwrap();
    let d = [("Service", "payments")];
    let err = fetch_one(&src, spec("Latency", &d, "p99", 300), T0, T0 + 600)
        .await
        .unwrap_err();
    assert!(matches!(err, MetricsError::BadQuery(_)));
    assert!(
        err.to_string()
            .contains("percentiles cannot be re-aggregated"),
        "{err}"
    );
    // p99.0 is p99.
    assert_eq!(
        fetch_one(&src, spec("Latency", &d, "p99.0", 60), T0, T0 + 120)
            .await
            .unwrap()
            .len(),
        2
    );
    // Another percentile is simply not in the data.
    assert!(
        fetch_one(&src, spec("Latency", &d, "p50", 300), T0, T0 + 600)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn extended_statistics_are_served_as_written_and_not_reaggregated() {
    let text = [
        line("Latency", "payments", "PR(:300)", 60, &minutes(|_| 97.5)),
        line("Latency", "payments", "tm99", 60, &minutes(|_| 120.0)),
    ]
    .join("\n");
    let src = ReplaySource::parse("t", &text).unwrap();
    let d = [("Service", "payments")];
    assert_eq!(
        fetch_one(&src, spec("Latency", &d, "PR(:300)", 60), T0, T0 + 120)
            .await
            .unwrap(),
        vec![(T0, 97.5), (T0 + 60, 97.5)]
    );
    // The same statistic spelled differently is another series.
    assert!(
        fetch_one(&src, spec("Latency", &d, "TM(:99%)", 60), T0, T0 + 120)
            .await
            .unwrap()
            .is_empty()
    );
    let err = fetch_one(&src, spec("Latency", &d, "PR(:300)", 300), T0, T0 + 600)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "bad metrics query: Shop/Payments Latency {Service=payments} PR(:300) period 300 s: the replay data has this extended statistic at period 60 s only, and extended statistics cannot be re-aggregated to 300 s"
    );
}

#[tokio::test]
async fn a_period_that_is_no_multiple_is_a_bad_query() {
    let src =
        ReplaySource::parse("t", &line("Requests", "payments", "Sum", 300, &[(T0, 5.0)])).unwrap();
    let err = fetch_one(
        &src,
        spec("Requests", &[("Service", "payments")], "Sum", 60),
        T0,
        T0 + 600,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("does not divide the query period 60 s"),
        "{err}"
    );
}

#[tokio::test]
async fn wildcard_and_zero_period_queries_are_bad() {
    let src = ReplaySource::parse("REPLAY.md", &doc_example()).unwrap();
    let err = fetch_one(
        &src,
        spec("Requests", &[("Service", "*")], "Sum", 60),
        0,
        i64::MAX,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("wildcard"), "{err}");
    let zero = MetricSpec {
        period: Duration::ZERO,
        ..spec("Requests", &[("Service", "payments")], "Sum", 60)
    };
    assert!(matches!(
        fetch_one(&src, zero, 0, 1).await,
        Err(MetricsError::BadQuery(_))
    ));
}

#[tokio::test]
async fn dimension_values_expand_wildcards() {
    let text = [
        doc_example(),
        r#"{"namespace":"Shop/Payments","metric":"Requests","dimensions":{"Service":"cart","Region":"eu"},"stat":"Sum","period":60}"#.into(),
        r#"{"namespace":"Shop/Payments","metric":"Requests","dimensions":{"Service":"orders","Region":"us"},"stat":"Maximum","period":300}"#.into(),
    ]
    .join("\n");
    let src = ReplaySource::parse("t", &text).unwrap();
    let combos = |pairs: &[&[(&str, &str)]]| -> Vec<firebell_core::model::Labels> {
        pairs
            .iter()
            .map(|p| {
                p.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .collect()
    };
    let vals = src
        .dimension_values(&spec("Requests", &[("Service", "*")], "Sum", 60))
        .await
        .unwrap();
    assert_eq!(
        vals,
        combos(&[&[("Service", "payments")], &[("Service", "search")]])
    );
    let vals = src
        .dimension_values(&spec(
            "Requests",
            &[("Service", "*"), ("Region", "eu")],
            "Sum",
            60,
        ))
        .await
        .unwrap();
    assert_eq!(vals, combos(&[&[("Service", "cart")]]));
    // Two wildcards: the combinations that exist, not their cross product.
    let vals = src
        .dimension_values(&spec(
            "Requests",
            &[("Service", "*"), ("Region", "*")],
            "p99",
            60,
        ))
        .await
        .unwrap();
    assert_eq!(
        vals,
        combos(&[
            &[("Region", "eu"), ("Service", "cart")],
            &[("Region", "us"), ("Service", "orders")],
        ])
    );
    // A dimension set no series has: nothing.
    let vals = src
        .dimension_values(&spec("Requests", &[("Host", "*")], "Sum", 60))
        .await
        .unwrap();
    assert!(vals.is_empty());
}

fn load_error(text: &str) -> (usize, LineProblem, String) {
    match ReplaySource::parse("demo.jsonl", text).unwrap_err() {
        e @ ReplayError::Line { .. } => {
            let msg = e.to_string();
            let ReplayError::Line { line, problem, .. } = e else {
                unreachable!()
            };
            (line, problem, msg)
        }
        e => panic!("unexpected {e}"),
    }
}

#[test]
fn load_errors_name_file_line_and_value() {
    let ok = line("Requests", "payments", "Sum", 60, &[(T0, 1.0)]);
    let text = format!(
        "# comment\n\n{ok}\n{}\n",
        line("Requests", "payments", "p1000", 60, &[])
    );
    let (n, problem, msg) = load_error(&text);
    assert_eq!(n, 4);
    assert_eq!(problem, LineProblem::UnknownStat("p1000".into()));
    assert_eq!(
        msg,
        r#"demo.jsonl:4: unknown stat "p1000" (expected Sum, Average, Minimum, Maximum, SampleCount, a percentile such as p99, or an extended statistic: PR(:300), PR(100:300), TC/TM/TS/WM(10%:90%) or (10:90), tm99, tc90, ts90, wm99, IQM)"#
    );

    let (_, _, msg) = load_error(r#"{"namespace":"N","metric":"M","stat":"Sum","points":[]}"#);
    assert!(
        msg.starts_with("demo.jsonl:1: invalid series: missing field `period` (column"),
        "{msg}"
    );

    let (_, _, msg) = load_error(r#"{"namespace":"N","metric_name":"M","stat":"Sum","period":60}"#);
    assert!(msg.contains("unknown field `metric_name`"), "{msg}");

    let (_, _, msg) = load_error("{not json");
    assert!(msg.starts_with("demo.jsonl:1: invalid series:"), "{msg}");

    let (_, _, msg) =
        load_error(&line("Requests", "payments", "Sum", 60, &[(T0, 1.0)]).replace("[[", "[[1.5,"));
    assert!(msg.contains("invalid series:"), "{msg}");

    let (_, problem, _) = load_error(&line("Requests", "payments", "Sum", 0, &[]));
    assert_eq!(problem, LineProblem::BadPeriod(0));

    // A huge period or time: a clear error naming the line, no overflow.
    let (_, problem, msg) =
        load_error(&line("Requests", "payments", "Sum", i64::MAX, &[(T0, 1.0)]));
    assert_eq!(problem, LineProblem::BadPeriod(i64::MAX));
    assert_eq!(
        msg,
        "demo.jsonl:1: period must be a positive number of seconds, at most 86400 (1 day), got 9223372036854775807"
    );
    let (_, problem, msg) = load_error(&line(
        "Requests",
        "payments",
        "Sum",
        60,
        &[(i64::MAX - 10, 1.0)],
    ));
    assert_eq!(problem, LineProblem::BadTime(i64::MAX - 10));
    assert_eq!(
        msg,
        "demo.jsonl:1: point time 9223372036854775797 is out of range (expected Unix seconds from 0 to 253402300799, 9999-12-31)"
    );

    let (_, problem, _) = load_error(&line("Requests", "*", "Sum", 60, &[]));
    assert_eq!(problem, LineProblem::WildcardDimension("Service".into()));

    let (_, problem, _) = load_error(&line("", "payments", "Sum", 60, &[]));
    assert_eq!(problem, LineProblem::Empty("metric"));

    let dup = format!(
        "{ok}\n{}",
        line(
            "Requests",
            "payments",
            "Sum",
            60,
            &[(T0 + 60, 2.0), (T0, 3.0)]
        )
    );
    let (n, problem, _) = load_error(&dup);
    assert_eq!(n, 2);
    assert_eq!(
        problem,
        LineProblem::DuplicatePoint {
            time: T0,
            first_line: 1
        }
    );
}

#[test]
fn series_split_over_lines_are_merged() {
    let text = format!(
        "{}\n{}",
        line("Requests", "payments", "Sum", 60, &[(T0 + 60, 2.0)]),
        line("Requests", "payments", "Sum", 60, &[(T0, 1.0)])
    );
    let src = ReplaySource::parse("t", &text).unwrap();
    assert_eq!(src.series().len(), 1);
    assert_eq!(
        src.series()[0].points,
        [Point { t: T0, v: 1.0 }, Point { t: T0 + 60, v: 2.0 }]
    );
}

#[test]
fn to_text_round_trips() {
    let src = ReplaySource::parse("REPLAY.md", &doc_example()).unwrap();
    let again = ReplaySource::parse("again", &src.to_text()).unwrap();
    assert_eq!(src.series(), again.series());
    assert_eq!(
        src.series()[2].to_line(),
        r#"{"namespace":"Shop/Payments","metric":"Latency","dimensions":{"Service":"payments"},"stat":"p99","period":60,"points":[[1700000000,310.5],[1700000060,1250.0],[1700000120,1480.2],[1700000180,330.0],[1700000240,298.7]]}"#
    );
    assert_eq!(
        src.series()[0].spec(),
        spec("Requests", &[("Service", "payments")], "Sum", 60)
    );
}

#[test]
fn from_path_reads_files_and_reports_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.jsonl");
    std::fs::write(&path, doc_example()).unwrap();
    assert_eq!(ReplaySource::from_path(&path).unwrap().series().len(), 6);
    std::fs::write(&path, "{}\n").unwrap();
    let err = ReplaySource::from_path(&path).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}:1: ", path.display())),
        "{err}"
    );
    let err = ReplaySource::from_path(dir.path().join("missing.jsonl")).unwrap_err();
    assert!(matches!(err, ReplayError::Io { .. }));
    assert!(err.to_string().contains("missing.jsonl"), "{err}");
}
