//! The shared `StateStore` contract (`firebell_embedded::contract`) run
//! against DynamoStore on a DynamoDB endpoint (the emulator, see
//! `scripts/emulator.sh`). All cases share one table; each case writes under
//! its own partition-key namespace.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::sync::{Arc, OnceLock};

use firebell_aws::{DynamoStore, create_table_if_missing};
use firebell_embedded::ManualClock;

/// The table of this test run (created by the first case that gets there).
fn table() -> &'static str {
    static TABLE: OnceLock<String> = OnceLock::new();
    TABLE.get_or_init(|| common::unique("firebell-contract"))
}

/// A store over the run's table. Its clock starts ten days ahead of real time
/// so that items the contract expires are still physically present (not yet
/// reaped by the service's TTL): the store's own expiry handling is tested.
async fn fixture() -> (DynamoStore, Arc<ManualClock>) {
    let config = common::sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    create_table_if_missing(&client, table())
        .await
        .expect("create the contract table");
    let clock = Arc::new(ManualClock::at_epoch(common::now_secs() + 10 * 86_400));
    (DynamoStore::new(client, table(), clock.clone()), clock)
}

firebell_embedded::store_contract_tests!(fixture());
