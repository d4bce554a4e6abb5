//! DynamoStore against a DynamoDB endpoint (the emulator, see
//! `scripts/emulator.sh`). Every test works in its own table.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use common::{ManualClock, manual_clock, now_secs, sdk_config, unique, unreachable_config};
use firebell_aws::{DynamoStore, create_table_if_missing};
use firebell_core::ports::{Expect, Item, Key, StateStore, StoreError};

/// A store over a fresh table, with a clock the test controls. The clock
/// starts ten days ahead of real time, so items that are expired for the
/// store are not yet expired for the service's own TTL reaper: the store's
/// client-side filtering is what the tests see.
async fn fresh_store() -> (DynamoStore, Arc<ManualClock>) {
    let config = sdk_config().await;
    let client = Client::new(&config);
    let table = unique("firebell-test");
    create_table_if_missing(&client, &table)
        .await
        .expect("create table");
    let clock = manual_clock(now_secs() + 10 * 86_400);
    (DynamoStore::new(client, table, clock.clone()), clock)
}

fn item(pk: &str, sk: &str, version: u64, expires_at: Option<i64>) -> Item {
    Item {
        pk: pk.to_owned(),
        sk: sk.to_owned(),
        version,
        data: format!(r#"{{"pk":"{pk}","sk":"{sk}","v":{version}}}"#),
        expires_at,
    }
}

fn key(pk: &str, sk: &str) -> Key {
    Key::new(pk, sk)
}

fn is_conflict(r: Result<(), StoreError>) -> bool {
    r.is_err_and(|e| e.is_conflict())
}

#[tokio::test]
async fn table_creation_is_idempotent_and_enables_ttl() {
    let (store, _clock) = fresh_store().await;
    create_table_if_missing(store.client(), store.table())
        .await
        .expect("second create");
    let table = store
        .client()
        .describe_table()
        .table_name(store.table())
        .send()
        .await
        .expect("describe");
    let keys: Vec<(String, String)> = table
        .table()
        .expect("table")
        .key_schema()
        .iter()
        .map(|k| {
            (
                k.attribute_name().to_owned(),
                k.key_type().as_str().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("pk".to_owned(), "HASH".to_owned()),
            ("sk".to_owned(), "RANGE".to_owned())
        ]
    );
    let ttl = store
        .client()
        .describe_time_to_live()
        .table_name(store.table())
        .send()
        .await
        .expect("describe ttl");
    let desc = ttl.time_to_live_description().expect("ttl description");
    assert_eq!(desc.attribute_name(), Some("expires_at"));
}

#[tokio::test]
async fn put_get_round_trip_and_conditions() {
    let (store, clock) = fresh_store().await;
    let now = clock.now_epoch();
    let k = key("rule#cpu", "inst#host=a");

    assert_eq!(store.get(&k).await.expect("get missing"), None);
    let v1 = item("rule#cpu", "inst#host=a", 1, Some(now + 3600));
    store.put(v1.clone(), Expect::Absent).await.expect("create");
    assert_eq!(store.get(&k).await.expect("get"), Some(v1.clone()));

    // Absent fails on a live item.
    assert!(is_conflict(
        store
            .put(item("rule#cpu", "inst#host=a", 9, None), Expect::Absent)
            .await
    ));
    // Version must match.
    assert!(is_conflict(
        store
            .put(item("rule#cpu", "inst#host=a", 3, None), Expect::Version(2))
            .await
    ));
    let v2 = item("rule#cpu", "inst#host=a", 2, None);
    store
        .put(v2.clone(), Expect::Version(1))
        .await
        .expect("v1 -> v2");
    assert_eq!(store.get(&k).await.expect("get"), Some(v2.clone()));
    assert!(is_conflict(
        store
            .put(item("rule#cpu", "inst#host=a", 3, None), Expect::Version(1))
            .await
    ));
    // Version on a missing item fails.
    assert!(is_conflict(
        store
            .put(item("rule#cpu", "missing", 2, None), Expect::Version(1))
            .await
    ));
    // Any overwrites unconditionally.
    let v7 = item("rule#cpu", "inst#host=a", 7, None);
    store.put(v7.clone(), Expect::Any).await.expect("any");
    assert_eq!(store.get(&k).await.expect("get"), Some(v7));

    let conflict = store
        .put(item("rule#cpu", "inst#host=a", 8, None), Expect::Absent)
        .await
        .expect_err("conflict");
    assert!(conflict.is_conflict() && !conflict.is_retryable());
    match conflict {
        StoreError::Conflict { pk, sk } => {
            assert_eq!((pk.as_str(), sk.as_str()), ("rule#cpu", "inst#host=a"))
        }
        other => panic!("{other}"),
    }

    // Data is opaque text: unicode, quotes and large bodies survive.
    let mut big = item("rule#cpu", "big", 1, None);
    big.data = format!(
        "{{\"s\":\"héllo \\\"wörld\\\" 🔥\",\"pad\":\"{}\"}}",
        "x".repeat(100_000)
    );
    store.put(big.clone(), Expect::Absent).await.expect("big");
    assert_eq!(
        store.get(&key("rule#cpu", "big")).await.expect("get big"),
        Some(big)
    );
    assert_eq!(store.stats().put_item, 9);
}

#[tokio::test]
async fn expired_items_are_gone() {
    let (store, clock) = fresh_store().await;
    let now = clock.now_epoch();
    store
        .put(item("p", "a-expired", 1, Some(now - 1)), Expect::Any)
        .await
        .expect("put");
    store
        .put(item("p", "b-expires-now", 1, Some(now)), Expect::Any)
        .await
        .expect("put");
    store
        .put(item("p", "b2-next-second", 1, Some(now + 1)), Expect::Any)
        .await
        .expect("put");
    store
        .put(item("p", "c-later", 1, Some(now + 60)), Expect::Any)
        .await
        .expect("put");
    store
        .put(item("p", "d-forever", 1, None), Expect::Any)
        .await
        .expect("put");

    assert_eq!(store.get(&key("p", "a-expired")).await.expect("get"), None);
    assert_eq!(
        store.get(&key("p", "b-expires-now")).await.expect("get"),
        None,
        "gone at its expiry second"
    );
    assert!(
        store
            .get(&key("p", "b2-next-second"))
            .await
            .expect("get")
            .is_some(),
        "live until its expiry second"
    );
    let sks = |items: Vec<Item>| items.into_iter().map(|i| i.sk).collect::<Vec<_>>();
    assert_eq!(
        sks(store.query("p", "").await.expect("query")),
        ["b2-next-second", "c-later", "d-forever"]
    );
    let keys: Vec<Key> = [
        "a-expired",
        "b-expires-now",
        "b2-next-second",
        "c-later",
        "d-forever",
    ]
    .iter()
    .map(|sk| key("p", sk))
    .collect();
    let mut got = sks(store.batch_get(&keys).await.expect("batch"));
    got.sort();
    assert_eq!(got, ["b2-next-second", "c-later", "d-forever"]);

    // An expired item counts as absent for writes...
    assert!(is_conflict(
        store
            .put(item("p", "a-expired", 2, None), Expect::Version(1))
            .await
    ));
    store
        .put(item("p", "a-expired", 5, None), Expect::Absent)
        .await
        .expect("absent over expired");
    assert_eq!(
        store
            .get(&key("p", "a-expired"))
            .await
            .expect("get")
            .map(|i| i.version),
        Some(5)
    );

    // ...and time moves on.
    clock.advance_secs(60);
    assert_eq!(store.get(&key("p", "c-later")).await.expect("get"), None);
    assert_eq!(
        sks(store.query("p", "").await.expect("query")),
        ["a-expired", "d-forever"]
    );
    assert!(is_conflict(
        store.delete(&key("p", "c-later"), Expect::Version(1)).await
    ));
    store
        .delete(&key("p", "c-later"), Expect::Absent)
        .await
        .expect("delete expired with Absent");
}

#[tokio::test]
async fn delete_conditions() {
    let (store, _clock) = fresh_store().await;
    let k = key("p", "s");
    store.delete(&k, Expect::Any).await.expect("delete missing");
    store
        .delete(&k, Expect::Absent)
        .await
        .expect("delete missing, absent");
    assert!(is_conflict(store.delete(&k, Expect::Version(1)).await));

    store
        .put(item("p", "s", 3, None), Expect::Absent)
        .await
        .expect("put");
    assert!(is_conflict(store.delete(&k, Expect::Absent).await));
    assert!(is_conflict(store.delete(&k, Expect::Version(2)).await));
    store
        .delete(&k, Expect::Version(3))
        .await
        .expect("delete v3");
    assert_eq!(store.get(&k).await.expect("get"), None);

    store
        .put(item("p", "s", 4, None), Expect::Absent)
        .await
        .expect("put again");
    store.delete(&k, Expect::Any).await.expect("delete any");
    assert_eq!(store.get(&k).await.expect("get"), None);
}

#[tokio::test]
async fn batch_get_chunks_dedupes_and_skips_missing() {
    let (store, _clock) = fresh_store().await;
    for i in 0..230 {
        store
            .put(
                item(&format!("pk{}", i % 7), &format!("sk{i:03}"), i, None),
                Expect::Any,
            )
            .await
            .expect("put");
    }
    let mut keys: Vec<Key> = (0..230)
        .map(|i| key(&format!("pk{}", i % 7), &format!("sk{i:03}")))
        .collect();
    keys.extend(keys[..20].to_vec()); // duplicates
    keys.push(key("pk0", "missing"));
    keys.push(key("nope", "sk000"));

    let before = store.stats().batch_get_item;
    let mut got = store.batch_get(&keys).await.expect("batch_get");
    got.sort_by_key(|i| i.version);
    assert_eq!(got.len(), 230);
    for (i, it) in got.iter().enumerate() {
        assert_eq!(
            *it,
            item(
                &format!("pk{}", i % 7),
                &format!("sk{i:03}"),
                i as u64,
                None
            )
        );
    }
    // 232 distinct keys: three chunks of at most 100.
    assert_eq!(store.stats().batch_get_item - before, 3);
    assert!(store.batch_get(&[]).await.expect("empty").is_empty());
}

#[tokio::test]
async fn query_filters_by_prefix_sorts_and_paginates() {
    let (store, _clock) = fresh_store().await;
    for sk in ["inst#b", "inst#a", "inst#c", "meta", "inst", "insta"] {
        store
            .put(item("rule#x", sk, 1, None), Expect::Any)
            .await
            .expect("put");
    }
    store
        .put(item("rule#y", "inst#a", 1, None), Expect::Any)
        .await
        .expect("put");
    let sks = |items: Vec<Item>| items.into_iter().map(|i| i.sk).collect::<Vec<_>>();
    assert_eq!(
        sks(store.query("rule#x", "inst#").await.expect("query")),
        ["inst#a", "inst#b", "inst#c"]
    );
    assert_eq!(
        sks(store.query("rule#x", "inst").await.expect("query")),
        ["inst", "inst#a", "inst#b", "inst#c", "insta"]
    );
    assert_eq!(
        sks(store.query("rule#x", "").await.expect("query")),
        ["inst", "inst#a", "inst#b", "inst#c", "insta", "meta"]
    );
    assert!(store.query("rule#z", "").await.expect("query").is_empty());

    // Over 1 MB in one partition: DynamoDB pages the result.
    let pad = "p".repeat(200_000);
    for i in 0..8 {
        let mut it = item("big", &format!("s{i}"), 1, None);
        it.data = format!("{{\"pad\":\"{pad}\"}}");
        store.put(it, Expect::Any).await.expect("put big");
    }
    let before = store.stats().query;
    let all = store.query("big", "s").await.expect("query big");
    assert_eq!(sks(all), ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"]);
    assert!(
        store.stats().query - before >= 2,
        "expected more than one page, made {} calls",
        store.stats().query - before
    );
}

/// The engine reads instance states eventually consistently: the Query is
/// sent with `ConsistentRead` false (counted apart; the emulator answers
/// both kinds alike, so the request kind is what is checked) and billed
/// half: an eventually consistent read of up to 4 KB is half a unit.
#[tokio::test]
async fn query_eventually_is_an_eventually_consistent_query_billed_half() {
    let (store, _clock) = fresh_store().await;
    for sk in ["a", "b"] {
        store
            .put(item("state/07", sk, 1, None), Expect::Any)
            .await
            .expect("put");
    }
    let before = store.stats();
    let strong = store.query("state/07", "").await.expect("query");
    let mid = store.stats();
    let relaxed = store.query_eventually("state/07", "").await.expect("query");
    let after = store.stats();
    assert_eq!(relaxed, strong);
    assert_eq!(
        (
            mid.query - before.query,
            mid.query_eventually - before.query_eventually
        ),
        (1, 0)
    );
    assert_eq!(
        (
            after.query - mid.query,
            after.query_eventually - mid.query_eventually
        ),
        (1, 1)
    );
    // Two small items (under 4 KB together): 1 unit strongly, 0.5 eventually.
    assert_eq!(mid.read_half_units - before.read_half_units, 2);
    assert_eq!(after.read_half_units - mid.read_half_units, 1);
    // An empty partition still costs the minimum.
    let empty_before = store.stats().read_half_units;
    assert!(
        store
            .query_eventually("state/08", "")
            .await
            .expect("query")
            .is_empty()
    );
    assert_eq!(store.stats().read_half_units - empty_before, 1);
}

#[tokio::test]
async fn invalid_requests_and_outages_are_classified() {
    let (store, _clock) = fresh_store().await;
    let err = store
        .put(item("", "s", 1, None), Expect::Any)
        .await
        .expect_err("empty pk");
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert!(matches!(
        store.get(&key("p", "")).await,
        Err(StoreError::Invalid(_))
    ));

    // A missing table is a permanent error.
    let config = sdk_config().await;
    let missing = DynamoStore::new(
        Client::new(&config),
        unique("no-such-table"),
        manual_clock(0),
    );
    let err = missing
        .get(&key("p", "s"))
        .await
        .expect_err("missing table");
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");

    // An unreachable service is temporary.
    let down = DynamoStore::new(
        Client::new(&unreachable_config().await),
        "t",
        manual_clock(0),
    );
    for err in [
        down.get(&key("p", "s")).await.expect_err("get"),
        down.put(item("p", "s", 1, None), Expect::Absent)
            .await
            .expect_err("put"),
        down.query("p", "").await.expect_err("query"),
        down.batch_get(&[key("p", "s")]).await.expect_err("batch"),
        down.delete(&key("p", "s"), Expect::Any)
            .await
            .expect_err("delete"),
    ] {
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        assert!(err.is_retryable());
    }
}
