//! The contract suite fails stores that break it: each test wraps a
//! `MemoryStore` with one deliberate bug and expects the matching case to panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use async_trait::async_trait;
use firebell_core::ports::{Expect, Item, Key, StateStore, StoreError};
use firebell_embedded::{ManualClock, MemoryStore, contract};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Bug {
    DuplicateBatchResults,
    BatchGetFirst100,
    VersionIgnored,
    QueryDescending,
    QueryPkPrefix,
    ReadThenWrite,
    NoSizeLimit,
    ConflictAsUnavailable,
}

#[derive(Debug)]
struct Buggy {
    inner: MemoryStore,
    bug: Bug,
}

/// Yields once to the executor, so concurrently polled futures interleave.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

#[async_trait]
impl StateStore for Buggy {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        match self.bug {
            Bug::DuplicateBatchResults => {
                let mut out = Vec::new();
                for k in keys {
                    out.extend(self.inner.get(k).await?);
                }
                Ok(out)
            }
            Bug::BatchGetFirst100 => self.inner.batch_get(&keys[..keys.len().min(100)]).await,
            _ => self.inner.batch_get(keys).await,
        }
    }

    async fn put(&self, item: Item, expect: Expect) -> Result<(), StoreError> {
        match (self.bug, expect) {
            (Bug::VersionIgnored, Expect::Version(_)) => self.inner.put(item, Expect::Any).await,
            (Bug::ReadThenWrite, Expect::Version(v)) => {
                let key = Key::new(item.pk.clone(), item.sk.clone());
                let current = self.inner.get(&key).await?;
                yield_now().await;
                if current.is_some_and(|c| c.version == v) {
                    self.inner.put(item, Expect::Any).await
                } else {
                    Err(StoreError::Conflict {
                        pk: key.pk,
                        sk: key.sk,
                    })
                }
            }
            (Bug::NoSizeLimit, _) if item.data.len() > 400 * 1024 => Ok(()),
            (Bug::ConflictAsUnavailable, _) => {
                self.inner.put(item, expect).await.map_err(|e| match e {
                    StoreError::Conflict { .. } => StoreError::Unavailable("throttled".into()),
                    e => e,
                })
            }
            _ => self.inner.put(item, expect).await,
        }
    }

    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = self.inner.query(pk, sk_prefix).await?;
        match self.bug {
            Bug::QueryDescending => items.reverse(),
            Bug::QueryPkPrefix => {
                // Also returns partitions whose key extends `pk`.
                for item in self.inner.items() {
                    if item.pk != pk && item.pk.starts_with(pk) && item.sk.starts_with(sk_prefix) {
                        items.push(item);
                    }
                }
            }
            _ => {}
        }
        Ok(items)
    }

    async fn delete(&self, key: &Key, expect: Expect) -> Result<(), StoreError> {
        self.inner.delete(key, expect).await
    }
}

fn setup(bug: Bug) -> (Buggy, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::at_epoch(1_700_000_000));
    let inner = MemoryStore::new(clock.clone());
    (Buggy { inner, bug }, clock)
}

/// A store whose clock is not the contract's: it never sees items expire.
fn stale_clock_store() -> (MemoryStore, Arc<ManualClock>) {
    let store_clock = Arc::new(ManualClock::at_epoch(0));
    (
        MemoryStore::new(store_clock),
        Arc::new(ManualClock::at_epoch(1_700_000_000)),
    )
}

macro_rules! detects {
    ($name:ident, $setup:expr, $case:ident, $expected:literal) => {
        #[tokio::test]
        #[should_panic(expected = $expected)]
        async fn $name() {
            let (store, clock) = $setup;
            contract::$case(&store, &clock, &contract::unique_ns("detects")).await;
        }
    };
}

detects!(
    duplicate_batch_results,
    setup(Bug::DuplicateBatchResults),
    batch_get_duplicate_keys,
    "each existing item exactly once"
);
detects!(
    batch_get_capped_at_100,
    setup(Bug::BatchGetFirst100),
    batch_get_many_keys,
    "batch_get of 150 existing keys"
);
detects!(
    version_condition_ignored,
    setup(Bug::VersionIgnored),
    put_version_mismatch_conflicts,
    "expected StoreError::Conflict"
);
detects!(
    query_unsorted,
    setup(Bug::QueryDescending),
    query_prefix_filters_and_sorts,
    "ascending"
);
detects!(
    query_leaks_other_partitions,
    setup(Bug::QueryPkPrefix),
    query_prefix_filters_and_sorts,
    "ascending"
);
detects!(
    lost_update_race,
    setup(Bug::ReadThenWrite),
    concurrent_versioned_puts_one_wins,
    "exactly one of 8 versioned puts wins"
);
detects!(
    oversize_silently_accepted,
    setup(Bug::NoSizeLimit),
    oversized_item_is_invalid,
    "expected StoreError::TooLarge"
);
detects!(
    conflict_reported_as_unavailable,
    setup(Bug::ConflictAsUnavailable),
    put_absent_succeeds_once,
    "expected StoreError::Conflict"
);
detects!(
    expiry_ignored,
    stale_clock_store(),
    ttl_expired_item_is_hidden,
    "get of an item with expires_at"
);
detects!(
    expiry_ignored_for_absent,
    stale_clock_store(),
    ttl_expired_item_counts_as_absent,
    "expected StoreError::Conflict"
);
