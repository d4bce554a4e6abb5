//! The [`StateStore`] contract: one public async function per behaviour every
//! store must have (in-memory, on-disk, DynamoDB). Each takes
//! `(store, clock, ns)`: the store under test, the [`ManualClock`] the store
//! reads (TTL cases move it) and a namespace unique to the run that starts
//! every partition key the case writes, so runs against a shared real table
//! do not collide. Items written by the cases expire a day after the clock's
//! time (unless a case is about expiry), so a real table cleans itself up.
//!
//! The functions panic, like `assert!`, when the store breaks the contract.
//! [`store_contract_tests!`](crate::store_contract_tests) turns them into one
//! `#[tokio::test]` each:
//!
//! ```text
//! mod memory {
//!     use std::sync::Arc;
//!     use firebell_embedded::{ManualClock, MemoryStore};
//!
//!     firebell_embedded::store_contract_tests!(async {
//!         let clock = Arc::new(ManualClock::at_epoch(1_700_000_000));
//!         (MemoryStore::new(clock.clone()), clock)
//!     });
//! }
//! ```
//!
//! The setup expression is an async expression evaluated once per test. Its
//! value is anything [`IntoFixture`]: `(store, Arc<ManualClock>)`,
//! `(store, Arc<ManualClock>, guard)` where `guard` (a `TempDir`, say) is kept
//! alive until the test ends, or a [`Fixture`] (needed for an
//! `Arc<dyn StateStore>`). There is no way to skip a case. The
//! consuming crate needs `tokio` (features `macros`, `rt-multi-thread`) as a
//! dev-dependency.
//!
//! What the contract requires beyond the trait's documentation:
//!
//! - an item with `expires_at <= now` is gone: not returned by `get`,
//!   `batch_get` or `query`, absent for [`Expect::Absent`] and a conflict for
//!   [`Expect::Version`];
//! - `batch_get` takes any number of keys (150 here, beyond DynamoDB's 100 per
//!   call), repeated keys, and an empty list, and returns each existing item once;
//! - `query` returns a whole partition even when it exceeds one DynamoDB page
//!   (1 MB), sorted by the sort key's UTF-8 bytes, and only that partition
//!   (not partitions whose key merely starts with the same text);
//! - a failed conditional write is [`StoreError::Conflict`] naming the key and
//!   changes nothing; `delete` of a missing item without condition is `Ok`;
//! - keys (within DynamoDB's 2048-byte partition and 1024-byte sort key
//!   limits) and data of any Unicode text round-trip byte for byte, and `version`
//!   keeps all 64 bits (no detour through `f64`);
//! - items of up to 300 KB of data are accepted; an item beyond DynamoDB's
//!   400 KB limit (1 MiB here) is [`StoreError::TooLarge`] (not retryable,
//!   nothing stored), and an empty partition or sort key is
//!   [`StoreError::Invalid`];
//! - of 8 concurrent `put`s with the same [`Expect::Version`] exactly one wins.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;

use firebell_core::ports::{Expect, Item, Key, StateStore, StoreError};

use crate::clock::ManualClock;

const DAY: i64 = 86_400;
/// The data size every store must accept.
pub const REQUIRED_DATA_BYTES: usize = 300 * 1024;
/// A version beyond `f64`'s exact integers.
const BIG_VERSION: u64 = (1 << 53) + 1;

// ------------------------------------------------------------------ fixture

/// What a contract test runs against: the store, its clock, and anything that
/// must live as long as the test (a temporary directory, a container...).
pub struct Fixture {
    store: Arc<dyn StateStore>,
    clock: Arc<ManualClock>,
    _guard: Option<Box<dyn Any + Send>>,
}

impl Fixture {
    pub fn new(store: Arc<dyn StateStore>, clock: Arc<ManualClock>) -> Fixture {
        Fixture {
            store,
            clock,
            _guard: None,
        }
    }

    /// Keeps `guard` alive until the fixture is dropped (after the store).
    pub fn with_guard(mut self, guard: impl Any + Send) -> Fixture {
        self._guard = Some(Box::new(guard));
        self
    }

    pub fn store(&self) -> &dyn StateStore {
        &*self.store
    }

    pub fn shared_store(&self) -> Arc<dyn StateStore> {
        self.store.clone()
    }

    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }
}

impl fmt::Debug for Fixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fixture")
            .field("clock", &self.clock)
            .field("guard", &self._guard.is_some())
            .finish_non_exhaustive()
    }
}

/// Values a contract setup expression may produce. There is no way to
/// skip: a suite whose store cannot be set up fails.
pub trait IntoFixture {
    fn into_fixture(self) -> Fixture;
}

impl IntoFixture for Fixture {
    fn into_fixture(self) -> Fixture {
        self
    }
}

impl<S: StateStore + 'static> IntoFixture for (S, Arc<ManualClock>) {
    fn into_fixture(self) -> Fixture {
        Fixture::new(Arc::new(self.0), self.1)
    }
}

impl<S: StateStore + 'static, G: Any + Send> IntoFixture for (S, Arc<ManualClock>, G) {
    fn into_fixture(self) -> Fixture {
        Fixture::new(Arc::new(self.0), self.1).with_guard(self.2)
    }
}

/// A namespace unique to this process, moment and call: `fbct-<case>-<pid>-<nanos>-<n>`.
pub fn unique_ns(case: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("fbct-{case}-{}-{nanos}-{n}", std::process::id())
}

// ------------------------------------------------------------------ helpers

#[track_caller]
fn must<T>(result: Result<T, StoreError>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{what}: expected success, got error: {e} ({e:?})"),
    }
}

#[track_caller]
fn must_conflict<T: fmt::Debug>(result: Result<T, StoreError>, key: &Key, what: &str) {
    match result {
        Err(StoreError::Conflict { pk, sk }) => {
            assert!(
                pk == key.pk && sk == key.sk,
                "{what}: conflict names {pk:?}/{sk:?}, expected {:?}/{:?}",
                key.pk,
                key.sk
            );
        }
        other => panic!("{what}: expected StoreError::Conflict, got {other:?}"),
    }
}

#[track_caller]
fn must_invalid<T: fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::Invalid(_)) => {}
        other => panic!("{what}: expected StoreError::Invalid, got {other:?}"),
    }
}

/// An item that expires a day after the clock's time.
fn item(clock: &ManualClock, pk: &str, sk: &str, version: u64, data: &str) -> Item {
    Item {
        pk: pk.to_string(),
        sk: sk.to_string(),
        version,
        data: data.to_string(),
        expires_at: Some(clock.now_epoch() + DAY),
    }
}

fn key_of(item: &Item) -> Key {
    Key::new(item.pk.clone(), item.sk.clone())
}

/// `len` bytes of JSON (a string of pseudo-random, barely compressible characters).
fn bulky_json(len: usize, seed: u64) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut s = String::with_capacity(len);
    s.push('"');
    while s.len() < len.saturating_sub(1) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        s.push(char::from(ALPHABET[(state >> 58) as usize]));
    }
    s.push('"');
    s
}

fn sorted(mut items: Vec<Item>) -> Vec<Item> {
    items.sort_by(|a, b| (&a.pk, &a.sk).cmp(&(&b.pk, &b.sk)));
    items
}

fn sks(items: &[Item]) -> Vec<&str> {
    items.iter().map(|i| i.sk.as_str()).collect()
}

/// Polls all futures concurrently on the current task (no runtime needed).
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *output = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

// ------------------------------------------------------------------ get / put

/// `get` of a key never written is `None`.
pub async fn get_missing_returns_none(store: &dyn StateStore, _clock: &ManualClock, ns: &str) {
    let got = must(
        store
            .get(&Key::new(format!("{ns}#missing"), "nothing"))
            .await,
        "get",
    );
    assert_eq!(got, None, "get of a missing key");
}

/// Every field survives `put` then `get`, with and without an expiry, and a
/// version beyond `f64` precision.
pub async fn put_get_round_trip(store: &dyn StateStore, clock: &ManualClock, ns: &str) {
    let pk = format!("{ns}#roundtrip");
    let with_expiry = Item {
        pk: pk.clone(),
        sk: "with-expiry".into(),
        version: BIG_VERSION,
        data: r#"{"state":"firing","since":1700000000,"values":[1.5,2.25]}"#.into(),
        expires_at: Some(clock.now_epoch() + 10 * 365 * DAY),
    };
    let without_expiry = Item {
        pk: pk.clone(),
        sk: "without-expiry".into(),
        version: u64::MAX,
        data: "{}".into(),
        expires_at: None,
    };
    for it in [&with_expiry, &without_expiry] {
        must(store.put(it.clone(), Expect::Absent).await, "put");
        let got = must(store.get(&key_of(it)).await, "get");
        assert_eq!(got.as_ref(), Some(it), "get returns the item as written");
    }
    // Leave nothing without an expiry behind on a shared table.
    must(
        store.delete(&key_of(&without_expiry), Expect::Any).await,
        "delete",
    );
}

/// `Expect::Absent` creates once; the second write conflicts and changes nothing.
pub async fn put_absent_succeeds_once(store: &dyn StateStore, clock: &ManualClock, ns: &str) {
    let first = item(clock, &format!("{ns}#absent"), "k", 1, r#"{"n":1}"#);
    let key = key_of(&first);
    must(
        store.put(first.clone(), Expect::Absent).await,
        "first put Absent",
    );
    let second = Item {
        version: 2,
        data: r#"{"n":2}"#.into(),
        ..first.clone()
    };
    must_conflict(
        store.put(second, Expect::Absent).await,
        &key,
        "second put Absent",
    );
    let got = must(store.get(&key).await, "get");
    assert_eq!(got, Some(first), "a failed put leaves the item unchanged");
}

/// `Expect::Version(v)` writes when the stored version is `v`.
pub async fn put_version_match_succeeds(store: &dyn StateStore, clock: &ManualClock, ns: &str) {
    let v1 = item(clock, &format!("{ns}#version"), "k", 1, r#"{"n":1}"#);
    must(store.put(v1.clone(), Expect::Absent).await, "put v1");
    let v2 = Item {
        version: 2,
        data: r#"{"n":2}"#.into(),
        ..v1.clone()
    };
    must(
        store.put(v2.clone(), Expect::Version(1)).await,
        "put v2 expecting 1",
    );
    let v3 = Item {
        version: 3,
        data: r#"{"n":3}"#.into(),
        ..v1.clone()
    };
    must(
        store.put(v3.clone(), Expect::Version(2)).await,
        "put v3 expecting 2",
    );
    let got = must(store.get(&key_of(&v1)).await, "get");
    assert_eq!(got, Some(v3), "the last versioned write is stored");
}

/// `Expect::Version(v)` conflicts when the stored version differs, and changes nothing.
pub async fn put_version_mismatch_conflicts(store: &dyn StateStore, clock: &ManualClock, ns: &str) {
    let v5 = item(clock, &format!("{ns}#mismatch"), "k", 5, r#"{"n":5}"#);
    let key = key_of(&v5);
    must(store.put(v5.clone(), Expect::Absent).await, "put v5");
    for stale in [4, 6, 0] {
        let next = Item {
            version: stale + 1,
            data: r#"{"n":"stale"}"#.into(),
            ..v5.clone()
        };
        must_conflict(
            store.put(next, Expect::Version(stale)).await,
            &key,
            &format!("put expecting version {stale} over version 5"),
        );
    }
    let got = must(store.get(&key).await, "get");
    assert_eq!(got, Some(v5), "failed puts leave the item unchanged");
}

/// `Expect::Version(v)` on a missing item conflicts and creates nothing.
pub async fn put_version_on_missing_conflicts(
    store: &dyn StateStore,
    clock: &ManualClock,
    ns: &str,
) {
    let it = item(clock, &format!("{ns}#vmissing"), "k", 2, "{}");
    let key = key_of(&it);
    must_conflict(
        store.put(it, Expect::Version(1)).await,
        &key,
        "put expecting version 1 of a missing item",
    );
    let got = must(store.get(&key).await, "get");
    assert_eq!(got, None, "a failed put creates nothing");
}

/// `Expect::Any` creates a missing item and overwrites an existing one, whatever its version.
pub async fn put_any_overwrites(store: &dyn StateStore, clock: &ManualClock, ns: &str) {
    let a = item(clock, &format!("{ns}#any"), "k", 7, r#"{"n":"a"}"#);
    must(store.put(a.clone(), Expect::Any).await, "put Any (create)");
    assert_eq!(must(store.get(&key_of(&a)).await, "get"), Some(a.clone()));
    let b = Item {
        version: 1,
        data: r#"{"n":"b"}"#.into(),
        expires_at: Some(clock.now_epoch() + 2 * DAY),
        ..a.clone()
    };
    must(
        store.put(b.clone(), Expect::Any).await,
        "put Any (overwrite)",
    );
    assert_eq!(
        must(store.get(&key_of(&a)).await, "get"),
        Some(b),
        "Any replaces every field"
    );
}

// ------------------------------------------------------------------ batch_get

/// `batch_get` returns the items that exist, across partitions, and nothing for missing keys.
pub async fn batch_get_returns_only_existing(
    store: &dyn StateStore,
    clock: &ManualClock,
    ns: &str,
) {
    let a = item(clock, &format!("{ns}#batch-a"), "1", 1, r#"{"k":"a1"}"#);
    let b = item(clock, &format!("{ns}#batch-b"), "1", 1, r#"{"k":"b1"}"#);
    let c = item(clock, &format!("{ns}#batch-a"), "2", 1, r#"{"k":"a2"}"#);
    for it in [&a, &b, &c] {
        must(store.put(it.clone(), Expect::Absent).await, "put");
    }
    let keys = vec![
        key_of(&a),
        Key::new(format!("{ns}#batch-a"), "missing"),
        key_of(&b),
        Key::new(format!("{ns}#batch-missing"), "1"),
        key_of(&c),
    ];
    let got = sorted(must(store.batch_get(&keys).await, "batch_get"));
    assert_eq!(
        got,
        sorted(vec![a, b, c]),
        "batch_get returns the existing items"
    );
}

/// `batch_get` of 150 keys (more than DynamoDB's 100 per call) returns all 150 items.
pub async fn batch_get_many_keys(store: &dyn StateStore, clock: &ManualClock, ns: &str) {
    let mut written = Vec::new();
    for i in 0..150 {
        // Spread over a few partitions, like alert states of several rules.
        let it = item(
            clock,
            &format!("{ns}#many-{}", i % 3),
            &format!("item-{i:03}"),
            1,
            &format!(r#"{{"i":{i}}}"#),
        );
        must(store.put(it.clone(), Expect::Absent).await, "put");
        written.push(it);
    }
    let mut keys: Vec<Key> = written.iter().map(key_of).collect();
    keys.push(Key::new(format!("{ns}#many-0"), "missing"));
    let got = sorted(must(store.batch_get(&keys).await, "batch_get of 151 keys"));
    assert_eq!(got.len(), 150, "batch_get of 150 existing keys");
    assert_eq!(got, sorted(written));
}

/// Repeated keys in a `batch_get` return each item once.
pub async fn batch_get_duplicate_keys(store: &dyn StateStore, clock: &ManualClock, ns: &str) {
    let a = item(clock, &format!("{ns}#dup"), "a", 1, "{}");
    let b = item(clock, &format!("{ns}#dup"), "b", 1, "{}");
    must(store.put(a.clone(), Expect::Absent).await, "put");
    must(store.put(b.clone(), Expect::Absent).await, "put");
    let missing = Key::new(format!("{ns}#dup"), "missing");
    let keys = vec![
        key_of(&a),
        key_of(&b),
        key_of(&a),
        missing.clone(),
        key_of(&a),
        missing,
        key_of(&b),
    ];
    let got = sorted(must(
        store.batch_get(&keys).await,
        "batch_get with repeated keys",
    ));
    assert_eq!(got, vec![a, b], "each existing item exactly once");
}

/// `batch_get` of no keys is an empty list (DynamoDB rejects an empty request:
/// the adapter must not send one).
pub async fn batch_get_no_keys(store: &dyn StateStore, _clock: &ManualClock, _ns: &str) {
    let got = must(store.batch_get(&[]).await, "batch_get of no keys");
    assert!(got.is_empty(), "batch_get of no keys returned {got:?}");
}

// ------------------------------------------------------------------ query

/// `query` returns only the partition's items whose sort key starts with the
/// prefix, ascending by sort key (UTF-8 byte order), and never items of
/// another partition, even one whose key starts with the same text.
pub async fn query_prefix_filters_and_sorts(store: &dyn StateStore, clock: &ManualClock, ns: &str) {
    let pk = format!("{ns}#q");
    // Written out of order; "é" (0xC3 0xA9) sorts after "z" by bytes.
    for sk in [
        "rule#b", "rule#é", "other", "rule#a", "rule", "rule#z", "rule#a#2", "rulf", "rul",
    ] {
        must(
            store
                .put(item(clock, &pk, sk, 1, "{}"), Expect::Absent)
                .await,
            "put",
        );
    }
    for (other_pk, sk) in [
        (format!("{ns}#q2"), "rule#a"),
        (format!("{ns}#"), "rule#a"),
        (format!("{ns}#Q"), "rule#a"),
    ] {
        must(
            store
                .put(item(clock, &other_pk, sk, 1, "{}"), Expect::Absent)
                .await,
            "put",
        );
    }
    let got = must(store.query(&pk, "rule#").await, "query rule#");
    assert_eq!(
        sks(&got),
        ["rule#a", "rule#a#2", "rule#b", "rule#z", "rule#é"],
        "query by prefix: matching items of the partition, ascending"
    );
    assert!(
        got.iter().all(|i| i.pk == pk),
        "query returned another partition"
    );
    let got = must(store.query(&pk, "rule#a").await, "query rule#a");
    assert_eq!(sks(&got), ["rule#a", "rule#a#2"]);
    let got = must(
        store.query(&pk, "rule#a#2").await,
        "query of a whole sort key",
    );
    assert_eq!(sks(&got), ["rule#a#2"]);
    let got = must(store.query(&pk, "nope").await, "query of an unused prefix");
    assert!(got.is_empty(), "query of an unused prefix returned {got:?}");
}

/// `query` with an empty prefix returns the whole partition, ascending.
pub async fn query_empty_prefix_returns_partition(
    store: &dyn StateStore,
    clock: &ManualClock,
    ns: &str,
) {
    let pk = format!("{ns}#all");
    let mut written = Vec::new();
    for sk in ["c", "a", "b#1", "B", "0"] {
        let it = item(clock, &pk, sk, 3, &format!(r#"{{"sk":"{sk}"}}"#));
        must(store.put(it.clone(), Expect::Absent).await, "put");
        written.push(it);
    }
    must(
        store
            .put(
                item(clock, &format!("{ns}#all-other"), "a", 1, "{}"),
                Expect::Absent,
            )
            .await,
        "put",
    );
    let got = must(store.query(&pk, "").await, "query with empty prefix");
    assert_eq!(
        got,
        sorted(written),
        "the whole partition with every field, ascending"
    );
}

/// `query_eventually` (a read that may be a moment stale; the engine reads
/// instance states with it) returns what `query` returns once the writes
/// are settled: the partition's live items by prefix, ascending, no expired
/// item, nothing of another partition.
pub async fn query_eventually_matches_query(store: &dyn StateStore, clock: &ManualClock, ns: &str) {
    let pk = format!("{ns}#ev");
    for sk in ["b", "a", "c#1", "c#2"] {
        must(
            store
                .put(item(clock, &pk, sk, 1, r#"{"x":1}"#), Expect::Absent)
                .await,
            "put",
        );
    }
    let mut gone = item(clock, &pk, "d", 1, "{}");
    gone.expires_at = Some(clock.now_epoch() - 1);
    must(store.put(gone, Expect::Any).await, "put expired");
    must(
        store
            .put(
                item(clock, &format!("{ns}#ev2"), "a", 1, "{}"),
                Expect::Absent,
            )
            .await,
        "put",
    );
    let strong = must(store.query(&pk, "").await, "query");
    let relaxed = must(store.query_eventually(&pk, "").await, "query_eventually");
    assert_eq!(sks(&relaxed), ["a", "b", "c#1", "c#2"]);
    assert_eq!(relaxed, strong, "query_eventually differs from query");
    let relaxed = must(
        store.query_eventually(&pk, "c#").await,
        "query_eventually c#",
    );
    assert_eq!(sks(&relaxed), ["c#1", "c#2"]);
    let none = must(
        store.query_eventually(&format!("{ns}#nobody"), "").await,
        "query_eventually of a missing partition",
    );
    assert!(none.is_empty(), "{none:?}");
}

/// `query` of a partition that does not exist is empty.
pub async fn query_missing_partition_is_empty(
    store: &dyn StateStore,
    _clock: &ManualClock,
    ns: &str,
) {
    let got = must(store.query(&format!("{ns}#nobody"), "").await, "query");
    assert!(
        got.is_empty(),
        "query of a missing partition returned {got:?}"
    );
}

/// `query` returns a partition larger than one DynamoDB page (1 MB): 5 items of 300 KB.
pub async fn query_large_partition(store: &dyn StateStore, clock: &ManualClock, ns: &str) {
    let pk = format!("{ns}#big");
    let mut written = Vec::new();
    for i in 0..5u64 {
        let it = item(
            clock,
            &pk,
            &format!("big-{i}"),
            1,
            &bulky_json(REQUIRED_DATA_BYTES, i),
        );
        must(store.put(it.clone(), Expect::Absent).await, "put 300 KB");
        written.push(it);
    }
    let got = must(store.query(&pk, "big-").await, "query of 1.5 MB");
    assert_eq!(got.len(), 5, "query returns all 5 items of 300 KB");
    assert!(
        got == written,
        "query returns the large items unchanged, in order"
    );
}

// ------------------------------------------------------------------ delete

/// `delete` with `Expect::Any` removes the item.
pub async fn delete_unconditional(store: &dyn StateStore, clock: &ManualClock, ns: &str) {
    let it = item(clock, &format!("{ns}#del"), "k", 1, "{}");
    let keep = item(clock, &format!("{ns}#del"), "keep", 1, "{}");
    must(store.put(it.clone(), Expect::Absent).await, "put");
    must(store.put(keep.clone(), Expect::Absent).await, "put");
    must(store.delete(&key_of(&it), Expect::Any).await, "delete");
    assert_eq!(
        must(store.get(&key_of(&it)).await, "get"),
        None,
        "deleted item is gone"
    );
    assert_eq!(
        must(store.query(&it.pk, "").await, "query"),
        vec![keep],
        "delete removes only its item"
    );
    // The key is free again.
    must(
        store.put(it, Expect::Absent).await,
        "put Absent after delete",
    );
}

/// `delete` of a missing item without condition is `Ok`.
pub async fn delete_missing_is_ok(store: &dyn StateStore, _clock: &ManualClock, ns: &str) {
    let key = Key::new(format!("{ns}#delmissing"), "k");
    must(
        store.delete(&key, Expect::Any).await,
        "delete of a missing item",
    );
    must(
        store.delete(&key, Expect::Any).await,
        "second delete of a missing item",
    );
}

/// `delete` with `Expect::Version(v)` removes the item when its version is `v`.
pub async fn delete_version_match(store: &dyn StateStore, clock: &ManualClock, ns: &str) {
    let it = item(clock, &format!("{ns}#delv"), "k", BIG_VERSION, "{}");
    must(store.put(it.clone(), Expect::Absent).await, "put");
    must(
        store
            .delete(&key_of(&it), Expect::Version(BIG_VERSION))
            .await,
        "delete expecting the stored version",
    );
    assert_eq!(
        must(store.get(&key_of(&it)).await, "get"),
        None,
        "deleted item is gone"
    );
}

/// `delete` with a different version, or of a missing item with a version,
/// conflicts and changes nothing.
pub async fn delete_version_mismatch_conflicts(
    store: &dyn StateStore,
    clock: &ManualClock,
    ns: &str,
) {
    let it = item(clock, &format!("{ns}#delvm"), "k", 3, "{}");
    let key = key_of(&it);
    must(store.put(it.clone(), Expect::Absent).await, "put");
    must_conflict(
        store.delete(&key, Expect::Version(2)).await,
        &key,
        "delete expecting version 2 of version 3",
    );
    assert_eq!(
        must(store.get(&key).await, "get"),
        Some(it),
        "failed delete keeps the item"
    );
    let missing = Key::new(format!("{ns}#delvm"), "missing");
    must_conflict(
        store.delete(&missing, Expect::Version(1)).await,
        &missing,
        "delete expecting a version of a missing item",
    );
}

// ------------------------------------------------------------------ TTL

/// An item whose `expires_at` is in the past is returned by neither `get`,
/// `batch_get` nor `query`.
pub async fn ttl_expired_item_is_hidden(store: &dyn StateStore, clock: &ManualClock, ns: &str) {
    let now = clock.now_epoch();
    let pk = format!("{ns}#ttl");
    let expired = Item {
        expires_at: Some(now - 10),
        ..item(clock, &pk, "a-expired", 1, "{}")
    };
    let at_now = Item {
        expires_at: Some(now),
        ..item(clock, &pk, "a-now", 1, "{}")
    };
    let live = item(clock, &pk, "a-live", 1, "{}");
    for it in [&expired, &at_now, &live] {
        must(store.put(it.clone(), Expect::Any).await, "put");
    }
    for gone in [&expired, &at_now] {
        assert_eq!(
            must(store.get(&key_of(gone)).await, "get"),
            None,
            "get of an item with expires_at {:?} at now {now}",
            gone.expires_at
        );
    }
    let keys = [key_of(&expired), key_of(&at_now), key_of(&live)];
    assert_eq!(
        must(store.batch_get(&keys).await, "batch_get"),
        vec![live.clone()],
        "batch_get skips expired items"
    );
    assert_eq!(
        must(store.query(&pk, "a-").await, "query"),
        vec![live],
        "query skips expired items"
    );
}

/// An expired item counts as absent: `Expect::Absent` writes over it,
/// `Expect::Version` conflicts, and an unconditional delete is `Ok`.
pub async fn ttl_expired_item_counts_as_absent(
    store: &dyn StateStore,
    clock: &ManualClock,
    ns: &str,
) {
    let pk = format!("{ns}#ttlabsent");
    let expired = Item {
        expires_at: Some(clock.now_epoch() - 1),
        ..item(clock, &pk, "k", 4, r#"{"old":true}"#)
    };
    let key = key_of(&expired);
    must(store.put(expired.clone(), Expect::Any).await, "put expired");
    let next = Item {
        version: 5,
        data: r#"{"old":false}"#.into(),
        ..item(clock, &pk, "k", 5, "")
    };
    must_conflict(
        store.put(next.clone(), Expect::Version(4)).await,
        &key,
        "put expecting the version of an expired item",
    );
    must_conflict(
        store.delete(&key, Expect::Version(4)).await,
        &key,
        "delete expecting the version of an expired item",
    );
    must(
        store.put(next.clone(), Expect::Absent).await,
        "put Absent over an expired item",
    );
    assert_eq!(must(store.get(&key).await, "get"), Some(next));

    let other = Item {
        expires_at: Some(clock.now_epoch() - 1),
        ..item(clock, &pk, "k2", 1, "{}")
    };
    must(store.put(other.clone(), Expect::Any).await, "put expired");
    must(
        store.delete(&key_of(&other), Expect::Any).await,
        "delete of an expired item",
    );
}

/// An item disappears once the clock reaches its `expires_at`.
pub async fn ttl_item_expires_when_clock_advances(
    store: &dyn StateStore,
    clock: &ManualClock,
    ns: &str,
) {
    let pk = format!("{ns}#ttlclock");
    let it = Item {
        expires_at: Some(clock.now_epoch() + 60),
        ..item(clock, &pk, "k", 1, "{}")
    };
    let key = key_of(&it);
    must(store.put(it.clone(), Expect::Absent).await, "put");
    clock.advance_secs(59);
    assert_eq!(
        must(store.get(&key).await, "get"),
        Some(it.clone()),
        "visible 1 s before expiry"
    );
    clock.advance_secs(1);
    assert_eq!(
        must(store.get(&key).await, "get"),
        None,
        "gone at expires_at"
    );
    assert!(
        must(store.query(&pk, "").await, "query").is_empty(),
        "query at expires_at"
    );
    assert!(
        must(
            store.batch_get(std::slice::from_ref(&key)).await,
            "batch_get"
        )
        .is_empty(),
        "batch_get at expires_at"
    );
    must(
        store.put(it, Expect::Absent).await,
        "put Absent once expired",
    );
}

// ------------------------------------------------------------------ data

/// Keys and data with Unicode, quotes, backslashes, control characters and
/// newlines round-trip byte for byte; keys differing only in case are distinct.
pub async fn special_characters_round_trip(store: &dyn StateStore, clock: &ManualClock, ns: &str) {
    let data = "{\n  \"text\": \"h\u{e9}llo \\\"quoted\\\" 'single' \\\\ back\\nslash \u{1f525} \u{4e2d}\u{6587}\",\n  \"nul\": \"\\u0000\",\n\t\"crlf\": \"a\\r\\nb\"\n}\r\n";
    let cases = [
        (
            format!("{ns}#sp\u{e9}cial/../\"q\" Case"),
            "sk \"quoted\"\nline2 \u{2713}\t%2F",
        ),
        (
            format!("{ns}#sp\u{e9}cial/../\"q\" case"),
            "sk \"quoted\"\nline2 \u{2713}\t%2F",
        ),
        (format!("{ns}#a/b\\c:d*e?f<g>h|i"), "."),
        (format!("{ns}#%41"), "A"),
        (format!("{ns}#A"), "%41"),
    ];
    for (i, (pk, sk)) in cases.iter().enumerate() {
        let it = Item {
            version: i as u64,
            ..item(clock, pk, sk, 0, data)
        };
        must(store.put(it, Expect::Absent).await, "put");
    }
    for (i, (pk, sk)) in cases.iter().enumerate() {
        let want = Item {
            version: i as u64,
            ..item(clock, pk, sk, 0, data)
        };
        let got = must(store.get(&Key::new(pk.clone(), *sk)).await, "get");
        assert_eq!(got, Some(want.clone()), "get of {pk:?}/{sk:?}");
        let got = must(store.query(pk, "").await, "query");
        assert_eq!(got, vec![want], "query of {pk:?}");
    }
}

/// 300 KB of data round-trips. (DynamoDB's item limit is 400 KB: callers keep
/// records well below it, and every store must accept 300 KB.)
pub async fn large_item_round_trip(store: &dyn StateStore, clock: &ManualClock, ns: &str) {
    let it = item(
        clock,
        &format!("{ns}#large"),
        "k",
        1,
        &bulky_json(REQUIRED_DATA_BYTES, 7),
    );
    must(store.put(it.clone(), Expect::Absent).await, "put of 300 KB");
    let got = must(store.get(&key_of(&it)).await, "get");
    assert!(got.as_ref() == Some(&it), "300 KB item did not round-trip");
    let replaced = Item {
        version: 2,
        data: bulky_json(REQUIRED_DATA_BYTES, 8),
        ..it.clone()
    };
    must(
        store.put(replaced.clone(), Expect::Version(1)).await,
        "versioned put of 300 KB",
    );
    let got = must(store.batch_get(&[key_of(&it)]).await, "batch_get");
    assert!(
        got == vec![replaced],
        "300 KB item did not round-trip through batch_get"
    );
}

/// An item far beyond DynamoDB's 400 KB limit (1 MiB) is `TooLarge` (typed,
/// so the writer can shrink it), not retryable, and is not stored.
pub async fn oversized_item_is_invalid(store: &dyn StateStore, clock: &ManualClock, ns: &str) {
    let it = item(
        clock,
        &format!("{ns}#huge"),
        "k",
        1,
        &bulky_json(1024 * 1024, 9),
    );
    match store.put(it.clone(), Expect::Any).await {
        Err(e @ StoreError::TooLarge { .. }) => {
            assert!(!e.is_retryable(), "too large is not retryable");
            assert!(!e.is_conflict(), "too large is not a conflict");
            assert!(e.to_string().contains("-byte item limit"), "{e}");
        }
        other => panic!("put of 1 MiB: expected StoreError::TooLarge, got {other:?}"),
    }
    assert_eq!(
        must(store.get(&key_of(&it)).await, "get"),
        None,
        "nothing stored"
    );
}

/// An empty partition or sort key is `Invalid` (as in DynamoDB).
pub async fn empty_key_is_invalid(store: &dyn StateStore, clock: &ManualClock, ns: &str) {
    must_invalid(
        store.put(item(clock, "", "k", 1, "{}"), Expect::Any).await,
        "put with an empty partition key",
    );
    must_invalid(
        store
            .put(
                item(clock, &format!("{ns}#empty"), "", 1, "{}"),
                Expect::Any,
            )
            .await,
        "put with an empty sort key",
    );
}

// ------------------------------------------------------------------ concurrency

/// Number of writers in the race cases.
pub const RACERS: usize = 8;

/// Writes version 1 of the race item and returns the [`RACERS`] contenders:
/// each a version-2 item expecting version 1, with its index in the data.
pub async fn race_setup(store: &dyn StateStore, clock: &ManualClock, ns: &str) -> Vec<Item> {
    let base = item(clock, &format!("{ns}#race"), "k", 1, r#"{"winner":null}"#);
    must(store.put(base.clone(), Expect::Absent).await, "put v1");
    (0..RACERS)
        .map(|i| Item {
            version: 2,
            data: format!(r#"{{"winner":{i}}}"#),
            ..base.clone()
        })
        .collect()
}

/// One racer: `put(contender, Expect::Version(1))` on a shared store (a
/// `'static` future, for `tokio::spawn`).
pub async fn race_put(store: Arc<dyn StateStore>, contender: Item) -> Result<(), StoreError> {
    store.put(contender, Expect::Version(1)).await
}

/// Checks the outcome of racing the [`race_setup`] contenders, `results[i]`
/// being contender `i`'s: exactly one succeeded, the rest conflicted, and the
/// stored item is the winner's.
pub async fn race_verify(
    store: &dyn StateStore,
    contenders: &[Item],
    results: Vec<Result<(), StoreError>>,
) {
    assert_eq!(contenders.len(), results.len(), "one result per contender");
    let Some(first) = contenders.first() else {
        panic!("no contenders");
    };
    let key = key_of(first);
    let mut winners = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(()) => winners.push(i),
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => panic!("racer {i}: expected success or Conflict, got {e:?}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one of {RACERS} versioned puts wins: {winners:?}"
    );
    let got = must(store.get(&key).await, "get");
    assert_eq!(
        got.as_ref(),
        contenders.get(winners[0]),
        "the stored item is the winner's"
    );
}

/// 8 concurrent `put(Expect::Version(1))` of the same item (polled together on
/// one task): exactly one wins, the rest conflict.
pub async fn concurrent_versioned_puts_one_wins(
    store: &dyn StateStore,
    clock: &ManualClock,
    ns: &str,
) {
    let contenders = race_setup(store, clock, ns).await;
    let results = join_all(
        contenders
            .iter()
            .map(|c| store.put(c.clone(), Expect::Version(1)))
            .collect(),
    )
    .await;
    race_verify(store, &contenders, results).await;
}

// ------------------------------------------------------------------ macro

/// Expands to one `#[tokio::test]` per contract case (named after the case
/// function), plus `concurrent_versioned_puts_across_tasks`, which races
/// [`RACERS`](crate::contract::RACERS) spawned tasks on a multi-threaded
/// runtime. The argument is an async expression producing an
/// [`IntoFixture`](crate::contract::IntoFixture) value; it is evaluated anew
/// in each test. Invoke it once per module. See [`crate::contract`].
#[macro_export]
macro_rules! store_contract_tests {
    (@cases ($setup:expr) $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $case() {
                let fixture = $crate::contract::IntoFixture::into_fixture($setup.await);
                let ns = $crate::contract::unique_ns(::std::stringify!($case));
                $crate::contract::$case(fixture.store(), fixture.clock(), &ns).await;
            }
        )*
    };
    ($setup:expr $(,)?) => {
        $crate::store_contract_tests!(@cases ($setup)
            get_missing_returns_none,
            put_get_round_trip,
            put_absent_succeeds_once,
            put_version_match_succeeds,
            put_version_mismatch_conflicts,
            put_version_on_missing_conflicts,
            put_any_overwrites,
            batch_get_returns_only_existing,
            batch_get_many_keys,
            batch_get_duplicate_keys,
            batch_get_no_keys,
            query_prefix_filters_and_sorts,
            query_empty_prefix_returns_partition,
            query_missing_partition_is_empty,
            query_eventually_matches_query,
            query_large_partition,
            delete_unconditional,
            delete_missing_is_ok,
            delete_version_match,
            delete_version_mismatch_conflicts,
            ttl_expired_item_is_hidden,
            ttl_expired_item_counts_as_absent,
            ttl_item_expires_when_clock_advances,
            special_characters_round_trip,
            large_item_round_trip,
            oversized_item_is_invalid,
            empty_key_is_invalid,
            concurrent_versioned_puts_one_wins,
        );

        #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn concurrent_versioned_puts_across_tasks() {
            let fixture = $crate::contract::IntoFixture::into_fixture($setup.await);
            let ns = $crate::contract::unique_ns("concurrent_versioned_puts_across_tasks");
            let contenders =
                $crate::contract::race_setup(fixture.store(), fixture.clock(), &ns).await;
            let handles: ::std::vec::Vec<_> = contenders
                .iter()
                .map(|contender| {
                    ::tokio::spawn($crate::contract::race_put(
                        fixture.shared_store(),
                        ::std::clone::Clone::clone(contender),
                    ))
                })
                .collect();
            let mut results = ::std::vec::Vec::new();
            for handle in handles {
                match handle.await {
                    ::std::result::Result::Ok(result) => results.push(result),
                    ::std::result::Result::Err(e) => ::std::panic!("racer task failed: {e}"),
                }
            }
            $crate::contract::race_verify(fixture.store(), &contenders, results).await;
        }
    };
}
