//! The store contract against the embedded stores.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod memory {
    use std::sync::Arc;

    use firebell_embedded::{ManualClock, MemoryStore};

    firebell_embedded::store_contract_tests!(async {
        let clock = Arc::new(ManualClock::at_epoch(1_700_000_000));
        (MemoryStore::new(clock.clone()), clock)
    });
}

mod file {
    use std::sync::Arc;

    use firebell_embedded::{FileStore, ManualClock};

    firebell_embedded::store_contract_tests!(async {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::at_epoch(1_700_000_000));
        let store = FileStore::open(dir.path(), clock.clone()).unwrap();
        (store, clock, dir)
    });
}

/// Two `FileStore`s on one directory behave like one store (as two processes would).
mod file_two_handles {
    use std::sync::Arc;

    use async_trait::async_trait;
    use firebell_core::ports::Expect;
    use firebell_core::ports::{Item, Key, StateStore, StoreError};
    use firebell_embedded::contract::Fixture;
    use firebell_embedded::{FileStore, ManualClock};

    /// Reads through one handle, writes alternately through two.
    #[derive(Debug)]
    struct TwoHandles {
        a: FileStore,
        b: FileStore,
        flip: std::sync::atomic::AtomicBool,
    }

    impl TwoHandles {
        fn pick(&self) -> &FileStore {
            if self
                .flip
                .fetch_xor(true, std::sync::atomic::Ordering::Relaxed)
            {
                &self.a
            } else {
                &self.b
            }
        }
    }

    #[async_trait]
    impl StateStore for TwoHandles {
        async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
            self.pick().get(key).await
        }
        async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
            self.pick().batch_get(keys).await
        }
        async fn put(&self, item: Item, expect: Expect) -> Result<(), StoreError> {
            self.pick().put(item, expect).await
        }
        async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
            self.pick().query(pk, sk_prefix).await
        }
        async fn delete(&self, key: &Key, expect: Expect) -> Result<(), StoreError> {
            self.pick().delete(key, expect).await
        }
    }

    firebell_embedded::store_contract_tests!(async {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::at_epoch(1_700_000_000));
        let store = TwoHandles {
            a: FileStore::open(dir.path(), clock.clone()).unwrap(),
            b: FileStore::open(dir.path(), clock.clone()).unwrap(),
            flip: Default::default(),
        };
        Fixture::new(Arc::new(store), clock).with_guard(dir)
    });
}
