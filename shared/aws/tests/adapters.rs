//! AwsAdapters against the emulator: one SDK config builds the three
//! adapters, `warm` reads once from each service that is read, and the
//! call counters are reported by service.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{sdk_config, unique, unreachable_config};
use firebell_aws::{AwsAdapters, create_table_if_missing};
use firebell_core::ports::{AlarmService, Key, StateStore, SystemClock};

#[tokio::test]
async fn warming_reads_once_from_dynamodb_and_cloudwatch() {
    let sdk = sdk_config().await;
    let table = unique("firebell-test");
    let aws = AwsAdapters::from_sdk_config(&sdk, table.clone(), Arc::new(SystemClock));
    create_table_if_missing(aws.store.client(), &table)
        .await
        .expect("create table");
    assert_eq!(aws.store.table(), table);
    assert_eq!(
        aws.api_calls(),
        BTreeMap::from([("CloudWatch", 0), ("DynamoDB", 0), ("SNS", 0)])
    );
    aws.warm(&Key::new("cycle", "last")).await;
    assert_eq!(
        aws.api_calls(),
        BTreeMap::from([("CloudWatch", 1), ("DynamoDB", 1), ("SNS", 0)])
    );
    // The parts are the engine's ports, sharing the counters.
    let store: Arc<dyn StateStore> = aws.store.clone();
    assert_eq!(store.get(&Key::new("cycle", "last")).await.unwrap(), None);
    assert_eq!(aws.api_calls()["DynamoDB"], 2);
    // The sentinel alarms' calls are CloudWatch's too.
    let alarms: Arc<dyn AlarmService> = aws.alarms.clone();
    let prefix = format!("{}-", unique("fb-adapters"));
    assert!(alarms.alarming(&prefix, 0).await.unwrap().is_empty());
    assert_eq!(aws.alarms.stats().describe_alarms, 1);
    assert_eq!(aws.api_calls()["CloudWatch"], 2);
}

#[tokio::test]
async fn warming_unreachable_services_only_warns() {
    let sdk = unreachable_config().await;
    let aws = AwsAdapters::from_sdk_config(&sdk, "no-such-table", Arc::new(SystemClock));
    // Both reads fail (logged); the attempts count.
    aws.warm(&Key::new("cycle", "last")).await;
    assert_eq!(
        aws.api_calls(),
        BTreeMap::from([("CloudWatch", 1), ("DynamoDB", 1), ("SNS", 0)])
    );
}
