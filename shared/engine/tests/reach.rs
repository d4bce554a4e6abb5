#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Metrics of other accounts and regions (`account:`, `region:` on a
//! metric): the labels they give, the `accounts:` section, and a failing
//! account or region failing only its own rules.

use std::sync::Arc;

use async_trait::async_trait;
use firebell_core::diag::Diagnostics;
use firebell_core::model::{Labels, MetricSpec};
use firebell_core::ports::{
    Clock, MetricQuery, MetricSeries, MetricsError, MetricsSource, StateStore,
};
use firebell_core::series::Epoch;
use firebell_embedded::{ManualClock, MemoryNotifier, MemoryStore, ReplaySource};
use firebell_engine::{Config, CycleError, Engine, EngineOptions};

const T0: i64 = 1_795_392_000;

const RULES: &str = r#"
rules:
  - name: RemoteErrors
    metrics:
      errors: {namespace: Shop, metric: Errors, dimensions: {Service: pay}, stat: Sum, account: "111122223333", region: eu-west-1}
    expression: errors
    condition: {op: ">", threshold: 10}
    labels: {team: web}
  - name: LocalErrors
    metrics:
      errors: {namespace: Shop, metric: Errors, dimensions: {Service: pay}, stat: Sum}
    expression: errors
    condition: {op: ">", threshold: 10}
    labels: {team: web}
receivers:
  web: {topics: [arn:aws:sns:us-east-1:123456789012:web-topic]}
route:
  receiver: web
  group_by: [alertname]
  group_wait: 0s
"#;

fn config(text: &str) -> Arc<Config> {
    let mut diags = Diagnostics::new();
    let c = firebell_engine::load_texts(
        &[("test.yaml".to_string(), text.to_string())],
        &mut diags,
        Vec::new(),
    );
    assert!(!diags.has_errors(), "{diags}");
    Arc::new(c)
}

fn diagnostics(text: &str) -> Vec<String> {
    let mut diags = Diagnostics::new();
    firebell_engine::load_texts(
        &[("bad.yaml".to_string(), text.to_string())],
        &mut diags,
        Vec::new(),
    );
    diags.sort();
    diags
        .errors()
        .chain(diags.warnings())
        .map(|d| d.to_string())
        .collect()
}

/// The same metric in the local account (quiet: 1 error a minute) and in
/// account 111122223333, eu-west-1 (50 a minute from minute 5): the replay
/// matches `account` and `region` exactly.
fn source() -> ReplaySource {
    let line = |extra: &str, v: &dyn Fn(i64) -> f64| {
        let points: Vec<String> = (0..30)
            .map(|m| format!("[{},{}]", T0 + 60 * m, v(m)))
            .collect();
        format!(
            "{{\"namespace\":\"Shop\",\"metric\":\"Errors\",\"dimensions\":{{\"Service\":\"pay\"}},\"stat\":\"Sum\",\"period\":60{extra},\"points\":[{}]}}\n",
            points.join(",")
        )
    };
    let text = line("", &|_| 1.0)
        + &line(
            ",\"account\":\"111122223333\",\"region\":\"eu-west-1\"",
            &|m| if m >= 5 { 50.0 } else { 1.0 },
        );
    ReplaySource::parse("reach.jsonl", &text).unwrap()
}

struct World {
    clock: Arc<ManualClock>,
    store: Arc<MemoryStore>,
    notifier: Arc<MemoryNotifier>,
}

impl World {
    fn new() -> World {
        let clock = Arc::new(ManualClock::at_epoch(T0));
        World {
            store: Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>)),
            clock,
            notifier: Arc::new(MemoryNotifier::new()),
        }
    }

    fn engine(&self, cfg: Arc<Config>, src: Arc<dyn MetricsSource>) -> Engine {
        Engine::new(
            cfg,
            src,
            self.store.clone() as Arc<dyn StateStore>,
            self.notifier.clone(),
            EngineOptions {
                owner: "t".into(),
                ..EngineOptions::default()
            },
        )
    }
}

#[tokio::test]
async fn a_rule_on_another_accounts_metric_fires_with_its_account_and_region() {
    let w = World::new();
    let e = w.engine(config(RULES), Arc::new(source()));
    let mut sent = Vec::new();
    for m in 1..12 {
        let now = T0 + 60 * m;
        w.clock.set_epoch(now);
        let r = e.run_cycle(now, &|| false).await.unwrap();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        sent.extend(w.notifier.take().into_iter().map(|o| (m, o)));
    }
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (m, o) = &sent[0];
    assert_eq!(*m, 6);
    assert_eq!(o.subject, "[FIRING] RemoteErrors 50 > 10");
    // The labels are in the message, and the link opens eu-west-1's
    // console with the metric of account 111122223333.
    assert!(
        o.bodies["default"].contains("account=111122223333"),
        "{}",
        o.bodies["default"]
    );
    assert!(
        o.bodies["default"].contains("region=eu-west-1"),
        "{}",
        o.bodies["default"]
    );
    assert!(
        o.bodies["default"].contains("https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#metricsV2:graph="),
        "{}",
        o.bodies["default"]
    );
    assert!(
        o.bodies["default"].contains("accountId~'111122223333"),
        "{}",
        o.bodies["default"]
    );
    // The local rule's labels do not change.
    let rules = &e.config().rules;
    let local = firebell_engine::rule_labels(rules.get("LocalErrors").unwrap());
    assert_eq!(
        local,
        Labels::from([
            ("alertname".to_string(), "LocalErrors".to_string()),
            ("team".to_string(), "web".to_string()),
        ])
    );
    let remote = firebell_engine::rule_labels(rules.get("RemoteErrors").unwrap());
    assert_eq!(remote["account"], "111122223333");
    assert_eq!(remote["region"], "eu-west-1");
}

/// A source whose region `down` fails (as a region's endpoint or an
/// account's role that cannot be assumed would).
#[derive(Debug)]
struct RegionDown {
    inner: ReplaySource,
    down: &'static str,
}

#[async_trait]
impl MetricsSource for RegionDown {
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: Epoch,
        end: Epoch,
    ) -> Result<Vec<MetricSeries>, MetricsError> {
        if queries
            .iter()
            .any(|q| q.spec.region.as_deref() == Some(self.down))
        {
            return Err(MetricsError::Unavailable(format!("{} is down", self.down)));
        }
        self.inner.fetch(queries, start, end).await
    }

    async fn dimension_values(&self, spec: &MetricSpec) -> Result<Vec<Labels>, MetricsError> {
        self.inner.dimension_values(spec).await
    }
}

#[tokio::test]
async fn a_failing_region_fails_only_its_rules() {
    let w = World::new();
    // The local metric fires too here (threshold 0).
    let cfg = config(&RULES.replace(
        "    condition: {op: \">\", threshold: 10}\n    labels: {team: web}\nreceivers",
        "    condition: {op: \">\", threshold: 0}\n    labels: {team: web}\nreceivers",
    ));
    let e = w.engine(
        cfg,
        Arc::new(RegionDown {
            inner: source(),
            down: "eu-west-1",
        }),
    );
    let now = T0 + 60 * 7;
    w.clock.set_epoch(now);
    let r = e.run_cycle(now, &|| false).await.unwrap();
    let errors: Vec<String> = r.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        errors,
        vec![
            "rule RemoteErrors: fetching metrics of account 111122223333, region eu-west-1: metrics source unavailable: eu-west-1 is down"
        ]
    );
    assert!(
        matches!(&r.errors[0], CycleError::FetchElsewhere { rule, .. } if rule == "RemoteErrors")
    );
    assert!(r.errors[0].is_retryable());
    assert_eq!(r.errors[0].rule(), Some("RemoteErrors"));
    // The local rule was judged and fired.
    let subjects: Vec<String> = w.notifier.take().into_iter().map(|o| o.subject).collect();
    assert_eq!(subjects, vec!["[FIRING] LocalErrors 1 > 0"]);
}

#[test]
fn the_accounts_section_is_checked() {
    let text = r#"
accounts:
  "111122223333": {role_arn: "arn:aws:iam::111122223333:role/firebell-read"}
  "444455556666": {role_arn: "arn:aws:iam::111122223333:role/firebell-read"}
  "12345": {role_arn: "arn:aws:iam::12345:role/x"}
  "777788889999": {role_arn: "arn:aws:iam::777788889999:user/x"}
  "000011112222": {role: x}
rules:
  - name: Remote
    metrics:
      e: {namespace: N, metric: M, stat: Sum, account: "111122223333"}
    expression: e
    condition: {op: ">", threshold: 1}
"#;
    assert_eq!(
        diagnostics(text),
        vec![
            "bad.yaml:4:30: error: `role_arn` \"arn:aws:iam::111122223333:role/firebell-read\" is a role of account 111122223333, not 444455556666 (expected a role in the account whose metrics it reads)",
            "bad.yaml:5:3: error: invalid account \"12345\" in `accounts` (expected a 12-digit AWS account id such as \"123456789012\", quoted)",
            "bad.yaml:6:30: error: invalid `role_arn` \"arn:aws:iam::777788889999:user/x\" (expected an IAM role ARN such as \"arn:aws:iam::777788889999:role/firebell-read\")",
            "bad.yaml:7:20: error: account \"000011112222\" is missing required field `role_arn`",
            "bad.yaml:7:20: error: unknown field `role` in account \"000011112222\" (expected one of: role_arn)",
        ]
    );
    // A good section: the role of each account; an account no metric
    // names is a warning.
    let good = r#"
accounts:
  "111122223333": {role_arn: "arn:aws:iam::111122223333:role/firebell-read"}
  "444455556666": {role_arn: "arn:aws-cn:iam::444455556666:role/ops/firebell-read"}
rules:
  - name: Remote
    metrics:
      e: {namespace: N, metric: M, stat: Sum, account: "111122223333"}
    expression: e
    condition: {op: ">", threshold: 1}
"#;
    assert_eq!(
        diagnostics(good),
        vec![
            "bad.yaml:4:3: warning: account \"444455556666\" in `accounts` is named by no metric (`account: \"444455556666\"`): its role is never assumed [unused-account]"
        ]
    );
    let c = config(good);
    assert_eq!(
        c.accounts.role_for("111122223333"),
        Some("arn:aws:iam::111122223333:role/firebell-read")
    );
    assert_eq!(c.accounts.role_for("999999999999"), None);
}

/// A broken region does not keep the tick from being recorded: a rule
/// with a 5-minute interval is not evaluated again the next minute (it
/// would be every minute while the region is down), and when the region
/// answers again its rule steps through the minutes it missed and fires.
#[tokio::test]
async fn a_failing_region_does_not_make_every_rule_due_every_minute() {
    let w = World::new();
    let text = RULES.replace(
        "receivers:",
        "  - name: SlowLocal\n    interval: 5m\n    metrics:\n      errors: {namespace: Shop, metric: Errors, dimensions: {Service: pay}, stat: Sum}\n    expression: errors\n    condition: {op: \">\", threshold: 10}\nreceivers:",
    );
    let cfg = config(&text);
    let down = w.engine(
        cfg.clone(),
        Arc::new(RegionDown {
            inner: source(),
            down: "eu-west-1",
        }),
    );
    let mut evaluated = Vec::new();
    for m in [6, 7] {
        let now = T0 + 60 * m;
        w.clock.set_epoch(now);
        let r = down.run_cycle(now, &|| false).await.unwrap();
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
        assert!(matches!(&r.errors[0], CycleError::FetchElsewhere { .. }));
        assert!(!r.incomplete);
        evaluated.push(r.rules_evaluated);
    }
    // Minute 6: all three; minute 7: not SlowLocal (due at minute 10).
    assert_eq!(evaluated, [3, 2]);
    assert!(w.notifier.take().is_empty());
    // The region is back: RemoteErrors fires (its errors began at minute 5).
    let up = w.engine(cfg, Arc::new(source()));
    let now = T0 + 60 * 8;
    w.clock.set_epoch(now);
    let r = up.run_cycle(now, &|| false).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.rules_evaluated, 2);
    let subjects: Vec<String> = w.notifier.take().into_iter().map(|o| o.subject).collect();
    assert_eq!(subjects, vec!["[FIRING] RemoteErrors 50 > 10"]);
}

/// A source whose listing of another account's metrics fails (as the
/// CloudWatch adapter's does when a listing that had values empties).
#[derive(Debug)]
struct ListingDown {
    inner: ReplaySource,
}

#[async_trait]
impl MetricsSource for ListingDown {
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: Epoch,
        end: Epoch,
    ) -> Result<Vec<MetricSeries>, MetricsError> {
        self.inner.fetch(queries, start, end).await
    }

    async fn dimension_values(&self, spec: &MetricSpec) -> Result<Vec<Labels>, MetricsError> {
        if spec.account.is_some() {
            return Err(MetricsError::Unavailable("listing emptied".to_string()));
        }
        self.inner.dimension_values(spec).await
    }
}

/// A wildcard rule of another account whose listing fails keeps its
/// firing alert (not resolved as "instance gone"), reports a discovery
/// error, and the tick is still recorded.
#[tokio::test]
async fn a_failing_listing_of_another_account_keeps_its_alerts() {
    let w = World::new();
    let cfg = config(&RULES.replace(
        "dimensions: {Service: pay}, stat: Sum, account: \"111122223333\"",
        "dimensions: {Service: \"*\"}, stat: Sum, account: \"111122223333\"",
    ));
    let up = w.engine(cfg.clone(), Arc::new(source()));
    let now = T0 + 60 * 6;
    w.clock.set_epoch(now);
    let r = up.run_cycle(now, &|| false).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let subjects: Vec<String> = w.notifier.take().into_iter().map(|o| o.subject).collect();
    assert_eq!(subjects, vec!["[FIRING] RemoteErrors 50 > 10"]);
    let down = w.engine(cfg, Arc::new(ListingDown { inner: source() }));
    for m in [7, 8] {
        let now = T0 + 60 * m;
        w.clock.set_epoch(now);
        let r = down.run_cycle(now, &|| false).await.unwrap();
        let errors: Vec<String> = r.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            errors,
            vec![
                "rule RemoteErrors: listing dimension values: metrics source unavailable: listing emptied"
            ]
        );
        assert_eq!(r.orphans_resolved, 0);
        assert!(!r.incomplete);
    }
    assert!(w.notifier.take().is_empty());
}

/// A source whose region eu-west-1 answers only with an error (as the
/// adapter's timeout gives for a region that never answers), and whose
/// own-account fetch waits until eu-west-1 was asked: the cycle finishes
/// only if the targets are fetched concurrently.
#[derive(Debug)]
struct Concurrent {
    inner: ReplaySource,
    asked_down: std::sync::atomic::AtomicUsize,
    down_started: tokio::sync::Notify,
}

#[async_trait]
impl MetricsSource for Concurrent {
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: Epoch,
        end: Epoch,
    ) -> Result<Vec<MetricSeries>, MetricsError> {
        if queries
            .iter()
            .any(|q| q.spec.region.as_deref() == Some("eu-west-1"))
        {
            self.asked_down
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.down_started.notify_one();
            return Err(MetricsError::Unavailable(
                "region eu-west-1 did not answer within 20s".to_string(),
            ));
        }
        self.down_started.notified().await;
        self.inner.fetch(queries, start, end).await
    }

    async fn dimension_values(&self, spec: &MetricSpec) -> Result<Vec<Labels>, MetricsError> {
        self.inner.dimension_values(spec).await
    }
}

/// Targets are fetched concurrently; a region that failed is not asked
/// again in a later lookback group of the same cycle (its rules fail with
/// the same error); the evaluator's own rules are judged.
#[tokio::test]
async fn a_region_that_does_not_answer_fails_alone_and_is_asked_once() {
    let w = World::new();
    let text = RULES
        .replace(
            "    condition: {op: \">\", threshold: 10}\n    labels: {team: web}\nreceivers",
            "    condition: {op: \">\", threshold: 0}\n    labels: {team: web}\nreceivers",
        )
        .replace(
            "receivers:",
            "  - name: RemoteSlow\n    for: 3h\n    metrics:\n      errors: {namespace: Shop, metric: Errors, dimensions: {Service: pay}, stat: Maximum, account: \"111122223333\", region: eu-west-1}\n    expression: errors\n    condition: {op: \">\", threshold: 10}\nreceivers:",
        );
    let source = Arc::new(Concurrent {
        inner: source(),
        asked_down: Default::default(),
        down_started: tokio::sync::Notify::new(),
    });
    let e = w.engine(config(&text), source.clone());
    let now = T0 + 60 * 7;
    w.clock.set_epoch(now);
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        e.run_cycle(now, &|| false),
    )
    .await
    .expect("the targets are fetched one after another")
    .unwrap();
    let errors: Vec<String> = r.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        errors,
        vec![
            "rule RemoteErrors: fetching metrics of account 111122223333, region eu-west-1: metrics source unavailable: region eu-west-1 did not answer within 20s",
            "rule RemoteSlow: fetching metrics of account 111122223333, region eu-west-1: metrics source unavailable: region eu-west-1 did not answer within 20s",
        ]
    );
    assert_eq!(
        source.asked_down.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    let subjects: Vec<String> = w.notifier.take().into_iter().map(|o| o.subject).collect();
    assert_eq!(subjects, vec!["[FIRING] LocalErrors 1 > 0"]);
}

/// An account read through a role (`accounts:`): its alert's console link
/// opens that region's console without `accountId` (which works only in a
/// monitoring account); the labels still name the account.
#[tokio::test]
async fn a_role_accounts_link_has_no_account_id() {
    let w = World::new();
    let text = format!(
        "accounts:\n  \"111122223333\": {{role_arn: \"arn:aws:iam::111122223333:role/firebell-read\"}}\n{RULES}"
    );
    let e = w.engine(config(&text), Arc::new(source()));
    let now = T0 + 60 * 6;
    w.clock.set_epoch(now);
    let r = e.run_cycle(now, &|| false).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let sent = w.notifier.take();
    assert_eq!(sent.len(), 1);
    let body = &sent[0].bodies["default"];
    assert!(body.contains("account=111122223333"), "{body}");
    assert!(
        body.contains("https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#metricsV2:graph="),
        "{body}"
    );
    assert!(!body.contains("accountId"), "{body}");
}
