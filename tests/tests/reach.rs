//! Metrics of other accounts and regions end to end: the engine with the
//! AWS adapters (CloudWatchSource from the SDK config, DynamoStore) against
//! the emulator, a config with an `accounts:` role and rules on metrics of
//! us-west-2 and of account 111122223333 in us-west-2.
//!
//! The emulator keeps CloudWatch data per account and region and takes a
//! 12-digit access key as its caller's account: the test writes the source
//! account's datapoints with such a key, and the engine reads them only by
//! assuming the role `accounts:` names (handed to the source by the cycle)
//! with a client of us-west-2. Cross-account observability (`AccountId`
//! without a role) is not checked here: the emulator ignores it (see
//! `shared/aws/tests/reach.rs` for its recorded-response test).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use aws_sdk_cloudwatch::config::Credentials;
use firebell_aws::{CloudWatchSource, DynamoStore};
use firebell_core::diag::Diagnostics;
use firebell_core::ports::Clock;
use firebell_embedded::{ManualClock, MemoryNotifier};
use firebell_engine::{Engine, EngineOptions};
use firebell_tests::{Aws, Datum, aws, minute_now, unique};

const SOURCE_ACCOUNT: &str = "111122223333";

/// An `Aws` whose CloudWatch client writes into `region`, as `account`
/// when given (the emulator's 12-digit access key convention).
fn writer(aws: &Aws, region: &str, account: Option<&str>) -> Aws {
    let mut conf = aws_sdk_cloudwatch::config::Builder::from(&aws.config)
        .region(aws_config::Region::new(region.to_string()));
    if let Some(a) = account {
        conf = conf.credentials_provider(Credentials::new(a, "test", None, None, "tests"));
    }
    Aws {
        cloudwatch: aws_sdk_cloudwatch::Client::from_conf(conf.build()),
        ..aws.clone()
    }
}

#[tokio::test]
async fn rules_on_another_account_and_region_fire_with_their_labels() {
    let aws = aws().await.expect("emulator");
    let table = aws.table().await.expect("table");
    let ns = format!("Firebell/Reach/{}", unique("ns"));
    let w0 = minute_now();
    let data = |service: &str, v: f64| -> Vec<Datum> {
        (-10..=0)
            .map(|m| Datum {
                metric: "Errors".to_string(),
                dimensions: vec![("Service".to_string(), service.to_string())],
                t: w0 + 60 * m,
                value: v,
            })
            .collect()
    };
    // Account 111122223333, us-west-2: `pay` breaches, `cart` does not.
    let source = writer(&aws, "us-west-2", Some(SOURCE_ACCOUNT));
    source
        .put_metric_data(&ns, &data("pay", 50.0))
        .await
        .unwrap();
    source
        .put_metric_data(&ns, &data("cart", 1.0))
        .await
        .unwrap();
    // The evaluator's own account, us-west-2: `search` breaches.
    let west = writer(&aws, "us-west-2", None);
    west.put_metric_data(&ns, &data("search", 70.0))
        .await
        .unwrap();

    let text = format!(
        r#"
accounts:
  "{SOURCE_ACCOUNT}": {{role_arn: "arn:aws:iam::{SOURCE_ACCOUNT}:role/firebell-read"}}
rules:
  - name: SourceAccountErrors
    metrics:
      errors: {{namespace: "{ns}", metric: Errors, dimensions: {{Service: "*"}}, stat: Sum, account: "{SOURCE_ACCOUNT}", region: us-west-2}}
    expression: errors
    condition: {{op: ">", threshold: 10}}
    labels: {{team: web}}
  - name: WestErrors
    metrics:
      errors: {{namespace: "{ns}", metric: Errors, dimensions: {{Service: search}}, stat: Sum, region: us-west-2}}
    expression: errors
    condition: {{op: ">", threshold: 10}}
    labels: {{team: web}}
  - name: HomeErrors
    metrics:
      errors: {{namespace: "{ns}", metric: Errors, dimensions: {{Service: "*"}}, stat: Sum}}
    expression: errors
    condition: {{op: ">", threshold: 10}}
    labels: {{team: web}}
receivers:
  web: {{topics: ["arn:aws:sns:us-east-1:000000000000:firebell-reach-tests"]}}
route:
  receiver: web
  group_by: [alertname, account, region, Service]
  group_wait: 0s
"#
    );
    let mut diags = Diagnostics::new();
    let config =
        firebell_engine::load_texts(&[("reach.yaml".to_string(), text)], &mut diags, Vec::new());
    assert!(!diags.has_errors(), "{diags}");
    let clock = Arc::new(ManualClock::at_epoch(w0 + 60));
    let metrics = Arc::new(CloudWatchSource::from_sdk_config(
        &aws.config,
        clock.clone() as Arc<dyn Clock>,
    ));
    let notifier = Arc::new(MemoryNotifier::new());
    let engine = Engine::new(
        Arc::new(config),
        metrics.clone(),
        Arc::new(DynamoStore::new(
            aws.dynamodb.clone(),
            table,
            clock.clone() as Arc<dyn Clock>,
        )),
        notifier.clone(),
        EngineOptions {
            owner: "reach".to_string(),
            ..EngineOptions::default()
        },
    );
    let report = engine.run_cycle(w0 + 60, &|| false).await.unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let mut sent: Vec<(String, String)> = notifier
        .take()
        .into_iter()
        .map(|o| {
            let labels = o.bodies["default"]
                .lines()
                .find(|l| l.starts_with("Labels"))
                .unwrap_or_default()
                .to_string();
            (o.subject, labels)
        })
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        vec![
            (
                "[FIRING] SourceAccountErrors 50 > 10".to_string(),
                "Labels     Service=pay, account=111122223333, alertname=SourceAccountErrors, region=us-west-2, team=web".to_string()
            ),
            (
                "[FIRING] WestErrors 70 > 10".to_string(),
                "Labels     alertname=WestErrors, region=us-west-2, team=web".to_string()
            ),
        ]
    );
    // Two clients besides the evaluator's own: us-west-2, and the role in
    // us-west-2; the next cycle builds no more.
    assert_eq!(metrics.clients_built(), 2);
    clock.set_epoch(w0 + 120);
    let report = engine.run_cycle(w0 + 120, &|| false).await.unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(metrics.clients_built(), 2);
}
