//! Rule unit tests (`firebell test`), in the spirit of `promtool test rules`:
//! invented datapoints go through the real engine — expression, volume
//! guard, state machine, routing, grouping, rendering — on the in-memory
//! adapters, and the alerts and notifications it produces are compared with
//! what the test expects.
//!
//! A test file is YAML whose top level has `tests:` (the config loader skips
//! such files, see [`firebell_engine::TEST_FILE_MARKER`]); `examples/tests/`
//! documents the format with commented examples. In short:
//!
//! ```yaml
//! config: ../                 # the config under test, relative to this file
//! tests:
//!   - name: fires after 5 minutes
//!     interval: 1m            # spacing of the input values
//!     start: 2026-11-23T12:00:00Z
//!     input_series:
//!       - {namespace: Shop, metric: Requests, dimensions: {Service: payments}, stat: Sum, period: 1m,
//!          values: "1000x30"}
//!     alert_rule_test:
//!       - eval_time: 6m
//!         alertname: PaymentsHighErrorRate
//!         exp_alerts:
//!           - status: firing
//!             exp_labels: {team: payments, service: payments, severity: page}
//!             exp_annotations: {summary: "Payments error rate is 5% (threshold 1%)"}
//!     notification_test:
//!       - until: 10m
//!         exp_notifications:
//!           - {receiver: payments-oncall, status: firing, subject: "Payments error rate"}
//! ```
//!
//! Semantics:
//!
//! - value `i` of an input series is the datapoint labelled `start + i·interval`;
//! - `input_replay: FILE` (relative to the test file: a replay file, e.g. an
//!   incident `firebell capture` recorded) feeds its series as they are, at
//!   their own times, beside `input_series` (which then may be left out; a
//!   value of `input_series` at the same time as the file's wins);
//! - a cycle runs every `evaluation_interval` (default 1m) from
//!   `start + evaluation_interval` on; the cycle at `t` sees the datapoints
//!   labelled before `t` (a 1-minute datapoint is complete at the end of its
//!   minute, as CloudWatch labels periods);
//! - `alert_rule_test` at `eval_time` checks the alerts of `alertname` after
//!   the cycle at `start + eval_time`: every instance that is `pending`,
//!   `firing` or `nodata` (inactive and resolved ones are not alerts). An
//!   expected alert matches a got one when the status is equal, the labels are
//!   exactly equal (the rule's labels and expanded dimensions, without
//!   `alertname` and `alertstate`), and every annotation it names renders to
//!   exactly the given text (`{{ value }}` is the latest value at eval time);
//! - `notification_test` compares, in order, every notification sent by the
//!   cycles up to `start + until` (one per group and receiver, whatever the
//!   number of topics) with the expected ones: `receiver` always, `status`,
//!   `alertname`, `at` (the offset of the sending cycle) and `subject` (a
//!   substring) when given.
//!
//! Decoding is strict and keeps going: every mistake of every file is a
//! diagnostic with its file, line and column, including names that do not
//! exist in the config under test (alerts, receivers, input series no rule
//! reads).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use firebell_core::alert::{Alert, AlertStatus};
use firebell_core::decode::{Decoder, Fields, Pos, closest, format_duration};
use firebell_core::diag::Diagnostics;
use firebell_core::model::{Labels, MetricSpec};
use firebell_core::series::{Epoch, Point};
use firebell_core::state::Status;
use firebell_embedded::{ReplaySeries, ReplaySource};
use marked_yaml::Node;

use crate::backtest::{Notification, Simulator};
use firebell_engine::Config;
use firebell_engine::TEST_FILE_MARKER;
use firebell_engine::keys::{self, StoredState};
use firebell_engine::{InstanceView, judge};

/// Where input series start when a test does not say (a Monday, 00:00 UTC).
pub const DEFAULT_START: &str = "2026-01-05T00:00:00Z";

const DEFAULT_INTERVAL: i64 = 60;
/// A guard against `1x100000000`.
const MAX_VALUES: usize = 1_000_000;
/// Cycles a test may run at most (a year of minutes).
const MAX_CYCLES: i64 = 525_600;

// ------------------------------------------------------------------ model

/// A decoded test file.
#[derive(Debug, Clone)]
pub struct TestFile {
    /// The file as named on the command line, for messages.
    pub file: String,
    /// The config under test: directories or files, resolved against the
    /// test file's directory.
    pub config: Vec<PathBuf>,
    /// Where `config` / `rule_files` was written.
    pub config_pos: Pos,
    /// Only these rules are evaluated (all when empty), with where each was named.
    pub rules: Vec<(String, Pos)>,
    /// Seconds between cycles.
    pub evaluation_interval: i64,
    pub tests: Vec<TestGroup>,
}

/// One entry of `tests:`: input series and what to expect of them.
#[derive(Debug, Clone)]
pub struct TestGroup {
    pub name: String,
    pub pos: Pos,
    /// Seconds between input values.
    pub interval: i64,
    pub start: Epoch,
    pub input_series: Vec<InputSeries>,
    /// The series of `input_replay`, a replay file (relative to the test
    /// file; e.g. what `firebell capture` recorded of an incident), as
    /// they are: absolute times, beside `input_series`.
    pub input_replay: Vec<ReplaySeries>,
    pub alert_rule_tests: Vec<AlertRuleTest>,
    pub notification_tests: Vec<NotificationTest>,
}

#[derive(Debug, Clone)]
pub struct InputSeries {
    pub pos: Pos,
    pub spec: MetricSpec,
    /// Value `i` is the datapoint at `start + i·interval`; `None` is missing.
    pub values: Vec<Option<f64>>,
}

#[derive(Debug, Clone)]
pub struct AlertRuleTest {
    pub pos: Pos,
    /// Seconds after `start`.
    pub eval_time: i64,
    pub alertname: String,
    pub alertname_pos: Pos,
    pub exp_alerts: Vec<ExpAlert>,
}

/// The state of an alert instance a test can expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExpStatus {
    Pending,
    Firing,
    NoData,
}

impl ExpStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExpStatus::Pending => "pending",
            ExpStatus::Firing => "firing",
            ExpStatus::NoData => firebell_core::alert::NODATA,
        }
    }

    fn of(status: Status) -> Option<ExpStatus> {
        match status {
            Status::Pending => Some(ExpStatus::Pending),
            Status::Firing => Some(ExpStatus::Firing),
            Status::NoData => Some(ExpStatus::NoData),
            Status::Inactive | Status::Resolved => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExpAlert {
    pub pos: Pos,
    pub status: ExpStatus,
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct NotificationTest {
    pub pos: Pos,
    /// Seconds after `start`.
    pub until: i64,
    pub exp_notifications: Vec<ExpNotification>,
}

#[derive(Debug, Clone)]
pub struct ExpNotification {
    pub pos: Pos,
    pub receiver: String,
    pub receiver_pos: Pos,
    pub status: Option<AlertStatus>,
    pub alertname: Option<(String, Pos)>,
    /// A substring of the subject.
    pub subject: Option<String>,
    /// Offset of the cycle that sends it.
    pub at: Option<i64>,
}

// ------------------------------------------------------------------ values

/// Expands the compact series notation (as `promtool`'s):
///
/// | token | values |
/// |---|---|
/// | `5` | 5 |
/// | `_` | missing |
/// | `a+bxn` | `a, a+b, ..., a+n·b` (n+1 values): `0+10x3` is 0 10 20 30 |
/// | `a-bxn` | `a, a-b, ..., a-n·b` |
/// | `axn` | `a` n+1 times: `1x2` is 1 1 1 |
/// | `_xn` | n missing values |
///
/// Tokens are separated by blanks: `1 2 _ 0+5x3 _x2`.
pub fn expand_values(text: &str) -> Result<Vec<Option<f64>>, String> {
    let mut out = Vec::new();
    for token in text.split_whitespace() {
        expand_token(token, &mut out)?;
        if out.len() > MAX_VALUES {
            return Err(format!("more than {MAX_VALUES} values"));
        }
    }
    Ok(out)
}

fn number(s: &str, token: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && !s.is_empty() => Ok(v),
        _ => Err(format!(
            "invalid value {token:?} (expected a number, `_`, `a+bxn`, `a-bxn`, `axn` or `_xn`)"
        )),
    }
}

fn expand_token(token: &str, out: &mut Vec<Option<f64>>) -> Result<(), String> {
    let bad = || {
        format!(
            "invalid value {token:?} (expected a number, `_`, `a+bxn`, `a-bxn`, `axn` or `_xn`)"
        )
    };
    if token == "_" {
        out.push(None);
        return Ok(());
    }
    let Some((left, n)) = token.rsplit_once('x') else {
        out.push(Some(number(token, token)?));
        return Ok(());
    };
    let n: usize = n.parse().map_err(|_| bad())?;
    if n > MAX_VALUES {
        return Err(format!("{token:?} repeats more than {MAX_VALUES} times"));
    }
    if left == "_" {
        out.extend(std::iter::repeat_n(None, n));
        return Ok(());
    }
    // The operator: a `+` or `-` after the first character that does not
    // belong to an exponent (`1e-3+1x2`).
    let bytes = left.as_bytes();
    let op = (1..bytes.len())
        .find(|&i| matches!(bytes[i], b'+' | b'-') && !matches!(bytes[i - 1], b'e' | b'E'));
    let (a, b) = match op {
        Some(i) => {
            let a = number(&left[..i], token)?;
            let b = number(&left[i + 1..], token)?;
            (a, if bytes[i] == b'-' { -b } else { b })
        }
        None => (number(left, token)?, 0.0),
    };
    out.extend((0..=n).map(|k| Some(a + k as f64 * b)));
    Ok(())
}

// ------------------------------------------------------------------ decoding

fn duration_secs(d: &mut Decoder<'_>, node: &Node, what: &str) -> Option<i64> {
    let v: Duration = d.duration(node, what)?;
    if v.subsec_nanos() != 0 {
        d.error(
            node,
            format!(
                "`{what}` must be whole seconds, found {}",
                format_duration(v)
            ),
        );
        return None;
    }
    i64::try_from(v.as_secs()).ok()
}

/// A positive duration that is a multiple of `step` seconds.
fn offset(d: &mut Decoder<'_>, node: &Node, what: &str, step: i64) -> Option<i64> {
    let v = duration_secs(d, node, what)?;
    if v <= 0 || v % step != 0 {
        d.error(
            node,
            format!(
                "`{what}` {} must be a positive multiple of the evaluation interval {}",
                fmt_secs(v),
                fmt_secs(step)
            ),
        );
        return None;
    }
    if v / step > MAX_CYCLES {
        d.error(
            node,
            format!("`{what}` {} is too long (at most a year)", fmt_secs(v)),
        );
        return None;
    }
    Some(v)
}

fn fmt_secs(s: i64) -> String {
    format_duration(Duration::from_secs(s.max(0).unsigned_abs()))
}

/// Decodes a test file. `file` names it in diagnostics; relative config
/// paths are resolved against `dir` (the test file's directory).
pub fn decode(file: &str, dir: &Path, text: &str, diags: &mut Diagnostics) -> Option<TestFile> {
    let errors_before = diags.errors().count();
    let mut d = Decoder::new(file, diags);
    let root = d.parse(text)?;
    let mut f = d.fields(&root, "test file")?;

    let mut config = Vec::new();
    let config_pos;
    match (f.opt("config"), f.opt("rule_files")) {
        (Some(c), Some(_)) => {
            config_pos = Pos::of(c.span());
            d.error(
                c,
                "`config` and `rule_files` are alternatives: give one or the other",
            );
        }
        (Some(c), None) => {
            config_pos = Pos::of(c.span());
            if let Some(s) = d.str(c, "config") {
                config.push(dir.join(s));
            }
        }
        (None, Some(list)) => {
            config_pos = Pos::of(list.span());
            for item in d.seq(list, "rule_files") {
                if let Some(s) = d.str(item, "rule_files") {
                    config.push(dir.join(s));
                }
            }
            if config.is_empty() {
                d.error(
                    list,
                    "`rule_files` is empty (expected config files or directories)",
                );
            }
        }
        (None, None) => {
            config_pos = f.pos();
            d.error_at(
                f.pos(),
                "test file is missing required field `config` (the config directory under test, relative to this file) or `rule_files`",
            );
        }
    }

    let mut rules = Vec::new();
    if let Some(n) = f.opt("rules") {
        for item in d.seq(n, "rules") {
            if let Some(s) = d.str(item, "rules") {
                rules.push((s.to_string(), Pos::of(item.span())));
            }
        }
    }

    let evaluation_interval = match f.opt("evaluation_interval") {
        Some(n) => duration_secs(&mut d, n, "evaluation_interval").and_then(|v| {
            if v < 1 {
                d.error(n, "`evaluation_interval` must be at least 1s");
                None
            } else {
                Some(v)
            }
        }),
        None => Some(DEFAULT_INTERVAL),
    };
    let step = evaluation_interval.unwrap_or(DEFAULT_INTERVAL);

    let mut tests = Vec::new();
    if let Some(n) = f.req(&mut d, TEST_FILE_MARKER) {
        let items = d.seq(n, TEST_FILE_MARKER);
        if items.is_empty() && matches!(n, Node::Sequence(_)) {
            d.error(n, "`tests` is empty (expected at least one test)");
        }
        for (i, item) in items.iter().enumerate() {
            if let Some(g) = decode_group(&mut d, dir, item, i + 1, step) {
                tests.push(g);
            }
        }
    }
    f.finish(&mut d);
    drop(d);
    if diags.errors().count() > errors_before {
        return None;
    }
    Some(TestFile {
        file: file.to_string(),
        config,
        config_pos,
        rules,
        evaluation_interval: evaluation_interval?,
        tests,
    })
}

fn decode_group(
    d: &mut Decoder<'_>,
    dir: &Path,
    node: &Node,
    index: usize,
    step: i64,
) -> Option<TestGroup> {
    let mut f = d.fields(node, "test")?;
    let pos = f.pos();
    let name = f
        .opt("name")
        .and_then(|n| d.str(n, "name"))
        .map(str::to_string)
        .unwrap_or_else(|| format!("test #{index}"));
    let interval = match f.opt("interval") {
        Some(n) => duration_secs(d, n, "interval").and_then(|v| {
            if v < 1 {
                d.error(n, "`interval` must be at least 1s");
                None
            } else {
                Some(v)
            }
        }),
        None => Some(step),
    };
    let start_pos = f.key_node("start").map(|k| Pos::of(k.span()));
    let start = match f.opt("start") {
        Some(n) => d.str(n, "start").and_then(|s| {
            match s.trim().parse::<firebell_core::Timestamp>() {
                Ok(ts) => Some(ts.as_second()),
                Err(_) => {
                    d.error(
                        n,
                        format!(
                            "invalid `start` {s:?} (expected an RFC 3339 time such as 2026-11-23T12:00:00Z)"
                        ),
                    );
                    None
                }
            }
        }),
        None => DEFAULT_START
            .parse::<firebell_core::Timestamp>()
            .ok()
            .map(|t| t.as_second()),
    };
    let mut input_replay = Vec::new();
    let replay_node = f.opt("input_replay");
    if let Some(n) = replay_node
        && let Some(file) = d.str(n, "input_replay")
    {
        match ReplaySource::from_path(dir.join(file)) {
            Ok(src) => input_replay = src.series().to_vec(),
            Err(e) => d.error(
                n,
                format!("invalid `input_replay` {file:?}: {e} (expected a replay file, relative to this test file)"),
            ),
        }
    }
    let mut input_series = Vec::new();
    let series_node = if replay_node.is_some() {
        f.opt("input_series")
    } else {
        f.req(d, "input_series")
    };
    if let Some(n) = series_node {
        let mut seen: BTreeMap<String, Pos> = BTreeMap::new();
        for item in d.seq(n, "input_series") {
            if let Some(s) = decode_series(d, item) {
                let key = s.spec.dedup_key();
                if let Some(first) = seen.get(&key) {
                    d.error_at(
                        s.pos,
                        format!(
                            "the same input series twice (first at line {}): give one series its values once",
                            first.line
                        ),
                    );
                } else {
                    seen.insert(key, s.pos);
                    input_series.push(s);
                }
            }
        }
    }
    // Datapoints sit on their period's grid, as CloudWatch labels them.
    for s in &input_series {
        let period = s.spec.period.as_secs() as i64;
        if let Some(iv) = interval
            && iv % period != 0
        {
            d.error_at(
                s.pos,
                format!(
                    "the values are {} apart (`interval`), not a multiple of the series' period {}",
                    fmt_secs(iv),
                    fmt_secs(period)
                ),
            );
        }
        if let Some(t) = start
            && t.rem_euclid(period) != 0
        {
            d.error_at(
                start_pos.unwrap_or(pos),
                format!(
                    "`start` is not on the {} grid of the series at line {} (datapoints are labelled at multiples of their period)",
                    fmt_secs(period),
                    s.pos.line
                ),
            );
        }
    }
    let mut alert_rule_tests = Vec::new();
    if let Some(n) = f.opt("alert_rule_test") {
        for item in d.seq(n, "alert_rule_test") {
            if let Some(t) = decode_alert_test(d, item, step) {
                alert_rule_tests.push(t);
            }
        }
    }
    let mut notification_tests = Vec::new();
    if let Some(n) = f.opt("notification_test") {
        for item in d.seq(n, "notification_test") {
            if let Some(t) = decode_notification_test(d, item, step) {
                notification_tests.push(t);
            }
        }
    }
    if !f.has("alert_rule_test") && !f.has("notification_test") {
        d.error_at(
            pos,
            "test has neither `alert_rule_test` nor `notification_test`: it checks nothing",
        );
    }
    f.finish(d);
    Some(TestGroup {
        name,
        pos,
        interval: interval?,
        start: start?,
        input_series,
        input_replay,
        alert_rule_tests,
        notification_tests,
    })
}

fn decode_series(d: &mut Decoder<'_>, node: &Node) -> Option<InputSeries> {
    let mut f = d.fields(node, "input series")?;
    let pos = f.pos();
    // A Metrics Insights query's group: the query (as the rule writes it)
    // and the group's values as `dimensions`; the query names the
    // namespace, metric and function.
    let query = f.opt("query").and_then(|n| {
        let src = d.str(n, "query")?.trim();
        match firebell_core::insights::parse(src) {
            Ok(q) => Some((src.to_string(), q)),
            Err(e) => {
                d.error(n, format!("invalid Metrics Insights `query`: {e}"));
                None
            }
        }
    });
    if query.is_some() {
        for other in ["namespace", "metric", "stat"] {
            if let Some(k) = f.key_node(other) {
                d.error_at(
                    firebell_core::decode::Pos::of(k.span()),
                    format!(
                        "an input series with a `query` has no `{other}` (the query names its metric, namespace and function)"
                    ),
                );
                let _ = f.opt(other);
            }
        }
    }
    let (namespace, metric) = match &query {
        Some((_, q)) => (Some(q.namespace.clone()), Some(q.metric.clone())),
        None => (
            f.req(d, "namespace")
                .and_then(|n| d.str(n, "namespace").map(str::to_string)),
            f.req(d, "metric")
                .and_then(|n| d.str(n, "metric").map(str::to_string)),
        ),
    };
    let dims_node = f.opt("dimensions");
    let dimensions = match dims_node {
        Some(n) => {
            let m = d.string_map(n, "dimensions");
            if let Some((k, _)) = m.iter().find(|(_, v)| v.as_str() == "*") {
                d.error(
                    n,
                    format!(
                        "dimension {k:?} is the wildcard \"*\": input series are concrete (give one series per value)"
                    ),
                );
                None
            } else {
                Some(m)
            }
        }
        None => Some(BTreeMap::new()),
    };
    // A query's series is one of its groups: one value per GROUP BY label.
    let dimensions = match (&query, dimensions) {
        (Some((_, q)), Some(dims))
            if dims.keys().collect::<BTreeSet<_>>() != q.group_by.iter().collect() =>
        {
            let names: Vec<&String> = dims.keys().collect();
            let msg = format!(
                "the `dimensions` of an input series with a `query` are the query's GROUP BY labels {:?}, not {names:?} (give one value for each)",
                q.group_by
            );
            match dims_node {
                Some(n) => d.error(n, msg),
                None => d.error_at(pos, msg),
            }
            None
        }
        (_, dims) => dims,
    };
    let stat = match &query {
        Some((_, q)) => Some(q.func.stat()),
        None => f
            .req(d, "stat")
            .and_then(|n| firebell_core::config::decode_stat(d, n)),
    };
    let period = match f.opt("period") {
        Some(n) => firebell_core::config::decode_period(d, n),
        None => Some(Duration::from_secs(60)),
    };
    let values = f.req(d, "values").and_then(|n| decode_values(d, n));
    f.finish(d);
    Some(InputSeries {
        pos,
        spec: MetricSpec {
            namespace: namespace?,
            metric_name: metric?,
            dimensions: dimensions?,
            stat: stat?,
            period: period?,
            account: None,
            region: None,
            query: query.map(|(src, _)| src),
        },
        values: values?,
    })
}

fn decode_values(d: &mut Decoder<'_>, node: &Node) -> Option<Vec<Option<f64>>> {
    match node {
        Node::Scalar(s) => match expand_values(s.as_str()) {
            Ok(v) if v.is_empty() => {
                d.error(node, "`values` is empty");
                None
            }
            Ok(v) => Some(v),
            Err(e) => {
                d.error(node, format!("`values`: {e}"));
                None
            }
        },
        Node::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut ok = true;
            for item in items.iter() {
                let Some(s) = d.str(item, "values") else {
                    ok = false;
                    continue;
                };
                match s.trim() {
                    "_" | "~" | "null" | "" => out.push(None),
                    t => match number(t, t) {
                        Ok(v) => out.push(Some(v)),
                        Err(e) => {
                            d.error(item, format!("`values`: {e}"));
                            ok = false;
                        }
                    },
                }
            }
            ok.then_some(out)
        }
        Node::Mapping(_) => {
            d.error(
                node,
                "`values` must be a string such as \"0+10x30\" or a list, found a mapping",
            );
            None
        }
    }
}

fn decode_alert_test(d: &mut Decoder<'_>, node: &Node, step: i64) -> Option<AlertRuleTest> {
    let mut f = d.fields(node, "alert_rule_test")?;
    let pos = f.pos();
    let eval_time = f
        .req(d, "eval_time")
        .and_then(|n| offset(d, n, "eval_time", step));
    let alertname = f.req(d, "alertname").and_then(|n| {
        d.str(n, "alertname")
            .map(|s| (s.to_string(), Pos::of(n.span())))
    });
    let mut exp_alerts = Vec::new();
    let mut ok = true;
    if let Some(n) = f.opt("exp_alerts") {
        for item in d.seq(n, "exp_alerts") {
            match decode_exp_alert(d, item) {
                Some(a) => exp_alerts.push(a),
                None => ok = false,
            }
        }
    }
    f.finish(d);
    let (alertname, alertname_pos) = alertname?;
    ok.then_some(AlertRuleTest {
        pos,
        eval_time: eval_time?,
        alertname,
        alertname_pos,
        exp_alerts,
    })
}

fn decode_exp_alert(d: &mut Decoder<'_>, node: &Node) -> Option<ExpAlert> {
    let mut f: Fields<'_> = d.fields(node, "expected alert")?;
    let pos = f.pos();
    let status = match f.opt("status") {
        Some(n) => d.str(n, "status").and_then(|s| match s {
            "firing" => Some(ExpStatus::Firing),
            "pending" => Some(ExpStatus::Pending),
            "nodata" => Some(ExpStatus::NoData),
            _ => {
                d.error(
                    n,
                    format!("invalid `status` {s:?} (expected one of: firing, pending, nodata)"),
                );
                None
            }
        }),
        None => Some(ExpStatus::Firing),
    };
    let labels = match f.opt("exp_labels") {
        Some(n) => {
            let m = d.string_map(n, "exp_labels");
            let mut good = true;
            for k in ["alertname", firebell_core::alert::ALERTSTATE_LABEL] {
                if m.contains_key(k) {
                    d.error(
                        n,
                        format!(
                            "`exp_labels` must not hold {k:?}: it is given by `alertname` / `status`"
                        ),
                    );
                    good = false;
                }
            }
            good.then_some(m)
        }
        None => Some(BTreeMap::new()),
    };
    let annotations = f
        .opt("exp_annotations")
        .map(|n| d.string_map(n, "exp_annotations"))
        .unwrap_or_default();
    f.finish(d);
    Some(ExpAlert {
        pos,
        status: status?,
        labels: labels?,
        annotations,
    })
}

fn decode_notification_test(
    d: &mut Decoder<'_>,
    node: &Node,
    step: i64,
) -> Option<NotificationTest> {
    let mut f = d.fields(node, "notification_test")?;
    let pos = f.pos();
    let until = f.req(d, "until").and_then(|n| offset(d, n, "until", step));
    let mut exp = Vec::new();
    let mut ok = true;
    if let Some(n) = f.opt("exp_notifications") {
        for item in d.seq(n, "exp_notifications") {
            match decode_exp_notification(d, item, step) {
                Some(e) => exp.push(e),
                None => ok = false,
            }
        }
    }
    f.finish(d);
    ok.then_some(NotificationTest {
        pos,
        until: until?,
        exp_notifications: exp,
    })
}

fn decode_exp_notification(d: &mut Decoder<'_>, node: &Node, step: i64) -> Option<ExpNotification> {
    let mut f = d.fields(node, "expected notification")?;
    let pos = f.pos();
    let receiver = f.req(d, "receiver").and_then(|n| {
        d.str(n, "receiver")
            .map(|s| (s.to_string(), Pos::of(n.span())))
    });
    let status = match f.opt("status") {
        Some(n) => d.str(n, "status").and_then(|s| match s {
            "firing" => Some(Some(AlertStatus::Firing)),
            "resolved" => Some(Some(AlertStatus::Resolved)),
            _ => {
                d.error(
                    n,
                    format!("invalid `status` {s:?} (expected one of: firing, resolved)"),
                );
                None
            }
        }),
        None => Some(None),
    };
    let alertname = f.opt("alertname").and_then(|n| {
        d.str(n, "alertname")
            .map(|s| (s.to_string(), Pos::of(n.span())))
    });
    let subject = f
        .opt("subject")
        .and_then(|n| d.str(n, "subject").map(str::to_string));
    let at = match f.opt("at") {
        Some(n) => offset(d, n, "at", step).map(Some),
        None => Some(None),
    };
    f.finish(d);
    let (receiver, receiver_pos) = receiver?;
    Some(ExpNotification {
        pos,
        receiver,
        receiver_pos,
        status: status?,
        alertname,
        subject,
        at: at?,
    })
}

// ------------------------------------------------------------------ config

/// Loads the config a test file names (its `config` directory or its
/// `rule_files`, skipping test files), keeping only the rules it names.
/// Config errors are reported as they are, plus one at the test file's
/// `config` field; names that do not exist in the config are errors at the
/// test file's positions.
pub fn load_config(tf: &TestFile, diags: &mut Diagnostics) -> Option<Arc<Config>> {
    let mut texts = Vec::new();
    let mut files = Vec::new();
    let mut local = Diagnostics::new();
    for path in &tf.config {
        match firebell_engine::config_files(path) {
            Ok(list) => {
                for p in list {
                    match firebell_engine::read_config_file(&p) {
                        Ok(t) => {
                            texts.push((p.display().to_string(), t));
                            files.push(p);
                        }
                        Err((pos, e)) => {
                            local.error(&p.display().to_string(), pos.line, pos.column, e)
                        }
                    }
                }
            }
            Err(e) => local.error(
                &tf.file,
                tf.config_pos.line,
                tf.config_pos.column,
                format!("config: {e}"),
            ),
        }
    }
    let mut config = firebell_engine::load_texts(&texts, &mut local, files);
    let shown: Vec<String> = tf.config.iter().map(|p| p.display().to_string()).collect();
    if local.has_errors() {
        let n = local.errors().count();
        local.sort();
        diags.extend(local);
        diags.error(
            &tf.file,
            tf.config_pos.line,
            tf.config_pos.column,
            format!(
                "the config under test ({}) has {n} error{}",
                shown.join(", "),
                if n == 1 { "" } else { "s" }
            ),
        );
        return None;
    }
    if config.rules.rules.is_empty() {
        diags.error(
            &tf.file,
            tf.config_pos.line,
            tf.config_pos.column,
            format!("the config under test ({}) has no rules", shown.join(", ")),
        );
        return None;
    }
    let errors_before = diags.errors().count();
    let names: Vec<&str> = config.rules.rules.iter().map(|r| r.name.as_str()).collect();
    let unknown_rule = |diags: &mut Diagnostics, name: &str, pos: Pos, what: &str| {
        let hint = closest(name, &names)
            .map(|c| format!("; did you mean `{c}`?"))
            .unwrap_or_default();
        diags.error(
            &tf.file,
            pos.line,
            pos.column,
            format!(
                "{what} {name:?} is not a rule of the config under test (rules: {}){hint}",
                names.join(", ")
            ),
        );
    };
    for (name, pos) in &tf.rules {
        if !names.contains(&name.as_str()) {
            unknown_rule(diags, name, *pos, "`rules` names");
        }
    }
    let selected: Vec<String> = if tf.rules.is_empty() {
        names.iter().map(|n| n.to_string()).collect()
    } else {
        tf.rules.iter().map(|(n, _)| n.clone()).collect()
    };
    let selected: Vec<&str> = selected.iter().map(String::as_str).collect();
    let receivers: Vec<&str> = config.notify.receivers.keys().map(String::as_str).collect();
    for g in &tf.tests {
        for t in &g.alert_rule_tests {
            if !names.contains(&t.alertname.as_str()) {
                unknown_rule(diags, &t.alertname, t.alertname_pos, "alertname");
            } else if !selected.contains(&t.alertname.as_str()) {
                diags.error(
                    &tf.file,
                    t.alertname_pos.line,
                    t.alertname_pos.column,
                    format!(
                        "alertname {:?} is not among the `rules` this file evaluates",
                        t.alertname
                    ),
                );
            }
        }
        for t in &g.notification_tests {
            for e in &t.exp_notifications {
                if !receivers.contains(&e.receiver.as_str()) {
                    let hint = closest(&e.receiver, &receivers)
                        .map(|c| format!("; did you mean `{c}`?"))
                        .unwrap_or_default();
                    diags.error(
                        &tf.file,
                        e.receiver_pos.line,
                        e.receiver_pos.column,
                        format!(
                            "receiver {:?} is not in the config under test (receivers: {}){hint}",
                            e.receiver,
                            receivers.join(", ")
                        ),
                    );
                }
                if let Some((name, pos)) = &e.alertname
                    && !names.contains(&name.as_str())
                {
                    unknown_rule(diags, name, *pos, "alertname");
                }
            }
        }
        for s in &g.input_series {
            let read = config
                .rules
                .rules
                .iter()
                .filter(|r| selected.contains(&r.name.as_str()))
                .flat_map(|r| r.metrics.values())
                .any(|m| reads(m, &s.spec));
            if !read {
                diags.error(
                    &tf.file,
                    s.pos.line,
                    s.pos.column,
                    format!(
                        "input series {} matches no metric of the rules under test{}",
                        describe_spec(&s.spec),
                        similar(&config, &s.spec)
                    ),
                );
            }
        }
    }
    if diags.errors().count() > errors_before {
        return None;
    }
    if !tf.rules.is_empty() {
        config
            .rules
            .rules
            .retain(|r| selected.contains(&r.name.as_str()));
    }
    Some(Arc::new(config))
}

/// Whether a rule's metric `m` reads the concrete series `s` (a query's
/// series only for the same query, as the replay source matches).
fn reads(m: &MetricSpec, s: &MetricSpec) -> bool {
    m.query == s.query
        && m.namespace == s.namespace
        && m.metric_name == s.metric_name
        && m.stat == s.stat
        && m.period == s.period
        && m.dimensions.len() == s.dimensions.len()
        && m.dimensions
            .iter()
            .all(|(k, v)| s.dimensions.get(k).is_some_and(|sv| v == "*" || v == sv))
}

fn describe_spec(s: &MetricSpec) -> String {
    let dims: Vec<String> = s
        .dimensions
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if let Some(q) = &s.query {
        return format!(
            "query {q:?} {{{}}} {}",
            dims.join(","),
            format_duration(s.period)
        );
    }
    format!(
        "{}/{}{{{}}} {} {}",
        s.namespace,
        s.metric_name,
        dims.join(","),
        s.stat,
        format_duration(s.period)
    )
}

/// ` (rules read: ...)` listing the rules' metrics of the same name.
fn similar(config: &Config, s: &MetricSpec) -> String {
    let metrics = || config.rules.rules.iter().flat_map(|r| r.metrics.values());
    let mut same: BTreeSet<String> = metrics()
        .filter(|m| m.namespace == s.namespace && m.metric_name == s.metric_name)
        .map(describe_spec)
        .collect();
    if same.is_empty() {
        same = metrics()
            .filter(|m| m.namespace == s.namespace)
            .map(describe_spec)
            .collect();
    }
    if same.is_empty() {
        String::new()
    } else {
        format!(
            " (the rules read: {})",
            same.into_iter().collect::<Vec<_>>().join(", ")
        )
    }
}

/// Reads and decodes a test file, then loads and checks its config.
pub fn load(path: &Path, diags: &mut Diagnostics) -> Option<(TestFile, Arc<Config>)> {
    let file = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            diags.error(&file, 1, 1, format!("cannot read: {e}"));
            return None;
        }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let tf = decode(&file, dir, &text, diags)?;
    let config = load_config(&tf, diags)?;
    Some((tf, config))
}

/// Whether `text` is a test file (its top-level mapping has `tests`).
pub fn is_test_file(text: &str) -> bool {
    let mut diags = Diagnostics::new();
    let mut d = Decoder::new("", &mut diags);
    matches!(d.parse(text), Some(Node::Mapping(m)) if m.get_node(TEST_FILE_MARKER).is_some())
}

// ------------------------------------------------------------------ running

/// The outcome of one check (one `alert_rule_test` or `notification_test` entry).
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub pos: Pos,
    /// `alerts of PaymentsHighErrorRate at 6m`.
    pub title: String,
    pub passed: bool,
    /// Expected (`-`) vs got (`+`); unchanged lines start with two spaces.
    pub diff: Vec<String>,
}

/// The outcome of one test (one entry of `tests:`).
#[derive(Debug, Clone)]
pub struct GroupResult {
    pub name: String,
    pub pos: Pos,
    pub checks: Vec<CheckResult>,
    /// Problems of the run itself (a failed cycle, fetch errors).
    pub errors: Vec<String>,
    /// What the engine judged, for the HTML report ([`run_charted`] only).
    pub charts: Option<crate::html::Charts>,
}

impl GroupResult {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
}

/// The outcome of a test file.
#[derive(Debug, Clone)]
pub struct FileResult {
    pub file: String,
    pub groups: Vec<GroupResult>,
}

impl FileResult {
    /// Checks that passed.
    pub fn passed(&self) -> usize {
        self.groups
            .iter()
            .flat_map(|g| &g.checks)
            .filter(|c| c.passed)
            .count()
    }

    /// Checks that failed.
    pub fn failed(&self) -> usize {
        self.groups
            .iter()
            .flat_map(|g| &g.checks)
            .filter(|c| !c.passed)
            .count()
    }

    /// The readable report: a line per test, and every failed check with
    /// its position and its expected-vs-got diff.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for g in &self.groups {
            let n = g.checks.len();
            let word = if g.passed() { "ok  " } else { "FAIL" };
            let _ = writeln!(
                s,
                "{word} {}:{}: {} ({n} check{})",
                self.file,
                g.pos.line,
                g.name,
                if n == 1 { "" } else { "s" }
            );
            for e in &g.errors {
                let _ = writeln!(s, "       note: {e}");
            }
            for c in g.checks.iter().filter(|c| !c.passed) {
                let _ = writeln!(
                    s,
                    "  {}:{}:{}: {}",
                    self.file, c.pos.line, c.pos.column, c.title
                );
                let _ = writeln!(s, "    expected (-) vs got (+):");
                for line in &c.diff {
                    let _ = writeln!(s, "    {line}");
                }
            }
        }
        s
    }
}

/// Runs every test of a file through the engine.
pub async fn run(tf: &TestFile, config: Arc<Config>) -> FileResult {
    run_with(tf, config, false).await
}

/// [`run`], also charting what the engine judged in every test
/// ([`GroupResult::charts`], for `firebell test --html`).
pub async fn run_charted(tf: &TestFile, config: Arc<Config>) -> FileResult {
    run_with(tf, config, true).await
}

async fn run_with(tf: &TestFile, config: Arc<Config>, chart: bool) -> FileResult {
    let mut groups = Vec::new();
    for g in &tf.tests {
        groups.push(run_group(tf, g, config.clone(), chart).await);
    }
    FileResult {
        file: tf.file.clone(),
        groups,
    }
}

/// An alert instance as a test sees it.
#[derive(Debug, Clone, PartialEq)]
struct GotAlert {
    status: ExpStatus,
    /// Without `alertname` and `alertstate`.
    labels: Labels,
    /// Rendered.
    annotations: BTreeMap<String, String>,
}

fn input_source(g: &TestGroup) -> ReplaySource {
    let replay = g.input_replay.iter().cloned();
    ReplaySource::from_series(replay.chain(g.input_series.iter().map(|s| {
        ReplaySeries {
            namespace: s.spec.namespace.clone(),
            metric: s.spec.metric_name.clone(),
            dimensions: s.spec.dimensions.clone(),
            stat: s.spec.stat,
            period: s.spec.period.as_secs() as i64,
            account: s.spec.account.clone(),
            region: s.spec.region.clone(),
            query: s.spec.query.clone(),
            points: s
                .values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    v.map(|v| Point {
                        t: g.start + i as i64 * g.interval,
                        v,
                    })
                })
                .collect(),
        }
    })))
}

async fn run_group(tf: &TestFile, g: &TestGroup, config: Arc<Config>, chart: bool) -> GroupResult {
    let source = Arc::new(input_source(g));
    let sim = if chart {
        Simulator::charting(config.clone(), source.clone(), g.start, "firebell-test")
    } else {
        Simulator::new(config.clone(), source.clone(), g.start, "firebell-test")
    };
    let step = tf.evaluation_interval;
    let end = g
        .alert_rule_tests
        .iter()
        .map(|t| t.eval_time)
        .chain(g.notification_tests.iter().map(|t| t.until))
        .max()
        .unwrap_or(0);
    let mut result = GroupResult {
        name: g.name.clone(),
        pos: g.pos,
        checks: Vec::new(),
        errors: Vec::new(),
        charts: chart.then(|| crate::html::Charts::new(g.start, g.start + end)),
    };
    let mut alert_checks: Vec<Option<CheckResult>> = vec![None; g.alert_rule_tests.len()];
    let mut sent = Vec::new();
    let mut failure: Option<String> = None;
    let mut k = 1;
    while k * step <= end {
        let now = g.start + k * step;
        let views = match sim.cycle(now).await {
            Ok(c) => {
                for e in &c.report.errors {
                    result
                        .errors
                        .push(format!("cycle at {}: {e}", fmt_secs(k * step)));
                }
                sent.extend(c.report.delivered.iter().map(|d| Notification::of(now, d)));
                if let Some(charts) = result.charts.as_mut() {
                    charts.observe(&c);
                    // Said on the page only: the test's verdict and text
                    // output do not depend on --html.
                    charts
                        .read_muting(sim.store().as_ref(), &config, now, step)
                        .await;
                }
                c.report.views
            }
            Err(e) => {
                failure = Some(format!("cycle at {} failed: {e}", fmt_secs(k * step)));
                break;
            }
        };
        for (i, t) in g.alert_rule_tests.iter().enumerate() {
            if t.eval_time == k * step {
                alert_checks[i] = Some(
                    match got_alerts(&sim, &config, &views, &t.alertname).await {
                        Ok(got) => check_alerts(t, &got),
                        Err(e) => failed_check(t.pos, alert_title(t), &e),
                    },
                );
            }
        }
        k += 1;
    }
    if let Some(charts) = result.charts.as_mut() {
        charts.finish();
    }
    let why = failure.unwrap_or_else(|| "not evaluated".to_string());
    for (i, t) in g.alert_rule_tests.iter().enumerate() {
        result.checks.push(
            alert_checks[i]
                .take()
                .unwrap_or_else(|| failed_check(t.pos, alert_title(t), &why)),
        );
    }
    for t in &g.notification_tests {
        let got: Vec<&Notification> = sent.iter().filter(|n| n.at <= g.start + t.until).collect();
        result.checks.push(check_notifications(t, g.start, &got));
    }
    result.checks.sort_by_key(|c| (c.pos.line, c.pos.column));
    result
}

fn failed_check(pos: Pos, title: String, why: &str) -> CheckResult {
    CheckResult {
        pos,
        title,
        passed: false,
        diff: vec![format!("! {why}")],
    }
}

fn alert_title(t: &AlertRuleTest) -> String {
    format!(
        "alerts of {} at eval_time {}",
        t.alertname,
        fmt_secs(t.eval_time)
    )
}

/// The pending, firing and nodata instances of `rule` after a cycle: the
/// stored states, with the values the engine judged in that cycle
/// (`views`) and the alerts the engine builds for them
/// ([`firebell_engine::judge::current_alert`]).
async fn got_alerts(
    sim: &Simulator,
    config: &Config,
    views: &[InstanceView],
    rule_name: &str,
) -> Result<Vec<GotAlert>, String> {
    use firebell_core::ports::StateStore;
    let Some(rule) = config.rules.get(rule_name) else {
        return Err(format!("no rule {rule_name:?}"));
    };
    let pk = keys::state(rule_name, "").pk;
    let of_rule =
        |s: &StoredState| s.labels.get("alertname").map(String::as_str) == Some(rule_name);
    let items = sim
        .store()
        .query(&pk, "")
        .await
        .map_err(|e| format!("reading alert states: {e}"))?;
    let mut out = Vec::new();
    for item in items {
        let stored: StoredState = serde_json::from_str(&item.data)
            .map_err(|e| format!("corrupt state {}/{}: {e}", item.pk, item.sk))?;
        if !of_rule(&stored) {
            continue;
        }
        let Some(status) = ExpStatus::of(stored.state.status) else {
            continue;
        };
        // The value the engine judged this cycle; an instance not due in
        // it keeps the value of its last judgement.
        let value = views
            .iter()
            .find(|v| v.rule == rule_name && v.labels == stored.labels)
            .map_or(stored.state.value, |v| v.value);
        // A firing or nodata alert's record holds its annotation templates
        // with the rule's context values bound; a pending one has none yet.
        let probe = judge::current_alert(
            rule,
            &stored.labels,
            &stored.state,
            value,
            &rule.annotations,
        );
        let templates = match &probe {
            Some(a) => match sim.store().get(&keys::active(&a.fingerprint)).await {
                Ok(Some(item)) => serde_json::from_str::<Alert>(&item.data)
                    .map(|a| a.annotations)
                    .unwrap_or_else(|_| rule.annotations.clone()),
                _ => rule.annotations.clone(),
            },
            None => continue,
        };
        let Some(alert) =
            judge::current_alert(rule, &stored.labels, &stored.state, value, &templates)
        else {
            continue;
        };
        let annotations = templates
            .iter()
            .map(|(k, t)| (k.clone(), firebell_notify::render_annotation(t, &alert)))
            .collect();
        let mut labels = stored.labels;
        labels.remove("alertname");
        out.push(GotAlert {
            status,
            labels,
            annotations,
        });
    }
    out.sort_by(|a, b| (a.status, &a.labels).cmp(&(b.status, &b.labels)));
    Ok(out)
}

fn fmt_labels(l: &Labels) -> String {
    let parts: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", parts.join(", "))
}

fn alert_lines(
    status: ExpStatus,
    labels: &Labels,
    annotations: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut lines = vec![format!("{:<7} {}", status.as_str(), fmt_labels(labels))];
    for (k, v) in annotations {
        lines.push(format!("          {k}: {v:?}"));
    }
    lines
}

fn check_alerts(t: &AlertRuleTest, got: &[GotAlert]) -> CheckResult {
    let matches = |e: &ExpAlert, g: &GotAlert| {
        e.status == g.status
            && e.labels == g.labels
            && e.annotations
                .iter()
                .all(|(k, v)| g.annotations.get(k) == Some(v))
    };
    // Annotations worth showing for got alerts: those some expectation names.
    let shown: BTreeSet<&String> = t
        .exp_alerts
        .iter()
        .flat_map(|e| e.annotations.keys())
        .collect();
    let mut used = vec![false; got.len()];
    let mut diff = Vec::new();
    let mut passed = true;
    for e in &t.exp_alerts {
        match (0..got.len()).find(|&i| !used[i] && matches(e, &got[i])) {
            Some(i) => {
                used[i] = true;
                for l in alert_lines(e.status, &e.labels, &e.annotations) {
                    diff.push(format!("  {l}"));
                }
            }
            None => {
                passed = false;
                for l in alert_lines(e.status, &e.labels, &e.annotations) {
                    diff.push(format!("- {l}"));
                }
            }
        }
    }
    for (i, g) in got.iter().enumerate() {
        if used[i] {
            continue;
        }
        passed = false;
        let ann: BTreeMap<String, String> = g
            .annotations
            .iter()
            .filter(|(k, _)| shown.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for l in alert_lines(g.status, &g.labels, &ann) {
            diff.push(format!("+ {l}"));
        }
    }
    if t.exp_alerts.is_empty() && got.is_empty() {
        diff.push("  (no alerts)".to_string());
    } else if !passed && got.is_empty() {
        diff.push("+ (no alerts)".to_string());
    } else if !passed && t.exp_alerts.is_empty() {
        diff.insert(0, "- (no alerts)".to_string());
    }
    CheckResult {
        pos: t.pos,
        title: alert_title(t),
        passed,
        diff,
    }
}

fn exp_line(e: &ExpNotification) -> String {
    let mut s = String::new();
    if let Some(at) = e.at {
        let _ = write!(s, "at {:<6} ", fmt_secs(at));
    }
    let _ = write!(s, "{}", e.receiver);
    if let Some(st) = e.status {
        let _ = write!(s, "  {}", st.as_str());
    }
    if let Some((a, _)) = &e.alertname {
        let _ = write!(s, "  {a}");
    }
    if let Some(sub) = &e.subject {
        let _ = write!(s, "  subject contains {sub:?}");
    }
    s
}

fn got_line(n: &Notification, start: Epoch) -> String {
    format!(
        "at {:<6} {}  {}  {}  subject {:?}",
        fmt_secs(n.at - start),
        n.receiver,
        n.status.as_str(),
        n.alertname,
        n.subject
    )
}

fn check_notifications(t: &NotificationTest, start: Epoch, got: &[&Notification]) -> CheckResult {
    let matches = |e: &ExpNotification, n: &Notification| {
        e.receiver == n.receiver
            && e.status.is_none_or(|s| s == n.status)
            && e.alertname.as_ref().is_none_or(|(a, _)| *a == n.alertname)
            && e.subject
                .as_ref()
                .is_none_or(|s| n.subject.contains(s.as_str()))
            && e.at.is_none_or(|at| start + at == n.at)
    };
    let exp = &t.exp_notifications;
    // Longest common subsequence, to line expected and got up.
    let (a, b) = (exp.len(), got.len());
    let mut lcs = vec![vec![0usize; b + 1]; a + 1];
    for i in (0..a).rev() {
        for j in (0..b).rev() {
            lcs[i][j] = if matches(&exp[i], got[j]) {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut diff = Vec::new();
    while i < a || j < b {
        if i < a && j < b && matches(&exp[i], got[j]) {
            diff.push(format!("  {}", got_line(got[j], start)));
            i += 1;
            j += 1;
        } else if i < a && (j == b || lcs[i + 1][j] >= lcs[i][j + 1]) {
            diff.push(format!("- {}", exp_line(&exp[i])));
            i += 1;
        } else {
            diff.push(format!("+ {}", got_line(got[j], start)));
            j += 1;
        }
    }
    let passed = lcs[0][0] == a && a == b;
    if a == 0 && b == 0 {
        diff.push("  (no notifications)".to_string());
    }
    CheckResult {
        pos: t.pos,
        title: format!("notifications up to {}", fmt_secs(t.until)),
        passed,
        diff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_the_series_notation() {
        let v = |s: &str| expand_values(s).unwrap();
        let some = |xs: &[f64]| xs.iter().map(|x| Some(*x)).collect::<Vec<_>>();
        assert_eq!(v("0+10x3"), some(&[0., 10., 20., 30.]));
        assert_eq!(v("0+10x30").len(), 31);
        assert_eq!(v("1x5"), some(&[1.; 6]));
        assert_eq!(v("5 _ 7"), vec![Some(5.), None, Some(7.)]);
        assert_eq!(v("_x3"), vec![None; 3]);
        assert_eq!(v("10-2x2"), some(&[10., 8., 6.]));
        assert_eq!(v("-2+4x2"), some(&[-2., 2., 6.]));
        assert_eq!(v("-1.5"), some(&[-1.5]));
        assert_eq!(v("1e-3+1e-3x1"), some(&[0.001, 0.002]));
        assert_eq!(v(" 1  2 "), some(&[1., 2.]));
        for bad in [
            "x", "1x", "1+x3", "abc", "1x-2", "_x", "1+2+3x2", "nan", "inf",
        ] {
            assert!(expand_values(bad).is_err(), "{bad} should be an error");
        }
        assert_eq!(
            expand_values("1 2 zz").unwrap_err(),
            "invalid value \"zz\" (expected a number, `_`, `a+bxn`, `a-bxn`, `axn` or `_xn`)"
        );
    }

    fn errors(text: &str) -> Vec<String> {
        let mut diags = Diagnostics::new();
        let got = decode("t.yaml", Path::new("."), text, &mut diags);
        assert_eq!(got.is_none(), diags.has_errors());
        diags.sort();
        diags.errors().map(|d| d.to_string()).collect()
    }

    #[test]
    fn every_mistake_is_reported_with_its_position() {
        let text = r#"config: ../
tests:
  - name: t
    intervall: 1m
    start: yesterday
    input_series:
      - {namespace: N, metric: M, stat: Sum, values: "1 2 zz"}
      - {namespace: N, metric: M, dimensions: {S: "*"}, stat: p1000, values: [1, x]}
    alert_rule_test:
      - eval_time: 90s
        alertname: A
        exp_alerts:
          - status: firng
            exp_labels: {alertname: A}
    notification_test:
      - until: 0s
        exp_notifications:
          - {status: resolved}
  - input_series: []
"#;
        assert_eq!(
            errors(text),
            vec![
                "t.yaml:4:5: error: unknown field `intervall` in test (expected one of: alert_rule_test, input_replay, input_series, interval, name, notification_test, start); did you mean `interval`?",
                "t.yaml:5:12: error: invalid `start` \"yesterday\" (expected an RFC 3339 time such as 2026-11-23T12:00:00Z)",
                "t.yaml:7:54: error: `values`: invalid value \"zz\" (expected a number, `_`, `a+bxn`, `a-bxn`, `axn` or `_xn`)",
                "t.yaml:8:47: error: dimension \"S\" is the wildcard \"*\": input series are concrete (give one series per value)",
                "t.yaml:8:63: error: invalid `stat` \"p1000\" (expected Sum, Average, Minimum, Maximum, SampleCount, a percentile such as p99, or an extended statistic: PR(:300), PR(100:300), TC/TM/TS/WM(10%:90%) or (10:90), tm99, tc90, ts90, wm99, IQM)",
                "t.yaml:8:82: error: `values`: invalid value \"x\" (expected a number, `_`, `a+bxn`, `a-bxn`, `axn` or `_xn`)",
                "t.yaml:10:20: error: `eval_time` 1m30s must be a positive multiple of the evaluation interval 1m",
                "t.yaml:13:21: error: invalid `status` \"firng\" (expected one of: firing, pending, nodata)",
                "t.yaml:14:25: error: `exp_labels` must not hold \"alertname\": it is given by `alertname` / `status`",
                "t.yaml:16:16: error: `until` 0s must be a positive multiple of the evaluation interval 1m",
                "t.yaml:18:14: error: expected notification is missing required field `receiver`",
                "t.yaml:19:5: error: test has neither `alert_rule_test` nor `notification_test`: it checks nothing",
            ]
        );
    }

    /// A query's input series is one of its groups: its dimensions are
    /// the query's GROUP BY labels, one value each.
    #[test]
    fn query_series_dimensions_are_the_group_by_labels() {
        let text = r#"config: ../
tests:
  - start: 2026-11-23T12:00:00Z
    input_series:
      - {query: 'SELECT MAX(CPU) FROM SCHEMA(Shop, InstanceId, Az) GROUP BY InstanceId', dimensions: {InstanceId: i-1, Az: a}, values: "1"}
      - {query: 'SELECT MAX(CPU) FROM Shop GROUP BY InstanceId', values: "1"}
      - {query: 'SELECT MAX(CPU) FROM Shop GROUP BY InstanceId', dimensions: {InstanceId: i-1}, values: "1"}
    notification_test: [{until: 5m}]
"#;
        assert_eq!(
            errors(text),
            vec![
                "t.yaml:5:102: error: the `dimensions` of an input series with a `query` are the query's GROUP BY labels [\"InstanceId\"], not [\"Az\", \"InstanceId\"] (give one value for each)",
                "t.yaml:6:10: error: the `dimensions` of an input series with a `query` are the query's GROUP BY labels [\"InstanceId\"], not [] (give one value for each)",
            ]
        );
    }

    #[test]
    fn datapoints_must_sit_on_their_period_grid() {
        let text = r#"config: ../
tests:
  - start: 2026-11-23T12:00:30Z
    interval: 90s
    input_series:
      - {namespace: N, metric: M, stat: Sum, period: 1m, values: "1x3"}
    notification_test: [{until: 5m}]
"#;
        assert_eq!(
            errors(text),
            vec![
                "t.yaml:3:5: error: `start` is not on the 1m grid of the series at line 6 (datapoints are labelled at multiples of their period)",
                "t.yaml:6:10: error: the values are 1m30s apart (`interval`), not a multiple of the series' period 1m",
            ]
        );
    }

    const WILDCARD: &str = r#"
rules:
  - name: Errs
    metrics:
      e: {namespace: N, metric: Errors, dimensions: {Service: "*"}, stat: Sum, period: 1m}
    expression: e
    condition: {op: ">", threshold: 5}
    labels: {team: a}
    annotations: {summary: "{{ labels.Service }} has {{ value }} errors"}
receivers:
  a: {topics: [arn:aws:sns:us-east-1:123456789012:t]}
route:
  receiver: a
  group_by: [alertname, Service]
  group_wait: 0s
  group_interval: 5m
  repeat_interval: 4h
"#;

    #[test]
    fn runs_wildcard_rules_and_renders_a_diff() {
        let test = r#"config: .
tests:
  - name: one service of two
    start: 2026-11-23T12:00:00Z
    input_series:
      - {namespace: N, metric: Errors, dimensions: {Service: a}, stat: Sum, values: "0 0 9x5"}
      - {namespace: N, metric: Errors, dimensions: {Service: b}, stat: Sum, values: "0x7"}
    alert_rule_test:
      - eval_time: 3m
        alertname: Errs
        exp_alerts:
          - exp_labels: {Service: a, team: a}
            exp_annotations: {summary: "a has 9 errors"}
      - eval_time: 4m
        alertname: Errs
        exp_alerts:
          - exp_labels: {Service: b, team: a}
    notification_test:
      - until: 5m
        exp_notifications:
          - {receiver: a, status: firing, at: 3m, subject: "[FIRING] a has 9 errors"}
"#;
        let mut diags = Diagnostics::new();
        let config = firebell_engine::load_texts(
            &[("c.yaml".to_string(), WILDCARD.to_string())],
            &mut diags,
            Vec::new(),
        );
        let tf = decode("t.yaml", Path::new("."), test, &mut diags).unwrap();
        assert!(!diags.has_errors(), "{diags}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let result = rt.block_on(run(&tf, Arc::new(config)));
        assert_eq!((result.passed(), result.failed()), (2, 1));
        assert_eq!(
            result.render(),
            "FAIL t.yaml:3: one service of two (3 checks)
  t.yaml:14:9: alerts of Errs at eval_time 4m
    expected (-) vs got (+):
    - firing  {Service=\"b\", team=\"a\"}
    + firing  {Service=\"a\", team=\"a\"}
"
        );
    }

    #[test]
    fn a_test_file_needs_config_and_tests() {
        assert_eq!(
            errors("tests: []\nextra: 1\n"),
            vec![
                "t.yaml:1:1: error: test file is missing required field `config` (the config directory under test, relative to this file) or `rule_files`",
                "t.yaml:1:8: error: `tests` is empty (expected at least one test)",
                "t.yaml:2:1: error: unknown field `extra` in test file (expected one of: config, evaluation_interval, rule_files, rules, tests)",
            ]
        );
        assert!(is_test_file("config: x\ntests: []\n"));
        assert!(!is_test_file("rules: []\n"));
    }
}
