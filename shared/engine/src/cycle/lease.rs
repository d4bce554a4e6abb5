//! The lease, taken lazily: a cycle's view of the store and the notifier
//! whose first write or publish takes `cycle/lease`, conditional on the
//! lease item being exactly as the cycle read it at its start. See
//! ARCHITECTURE.md, "Delivery: no lost, no duplicate", step 2.

use firebell_core::ports::{
    Expect, Item, Key, Notifier, NotifyError, Outbound, StateStore, StoreError,
};
use firebell_core::series::Epoch;

use crate::keys::{self, Lease};

/// Where the lease stands in a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LeaseState {
    /// Nothing written or published yet.
    Untaken,
    /// Taken: the lease item's version.
    Held(u64),
    /// Another cycle wrote since this one read the lease: this cycle writes
    /// and publishes nothing.
    Lost,
}

/// A cycle's view of the store and the notifier: reads go straight
/// through; the first write or publish takes the lease.
pub(super) struct Guarded<'a> {
    store: &'a dyn StateStore,
    notifier: &'a dyn Notifier,
    /// Version of the free lease item read at the start; `None` when there
    /// was none (or it had expired).
    seen: Option<u64>,
    /// The cycle partition whose lease it takes (`cycle`, or a shard's).
    partition: &'a str,
    owner: &'a str,
    tick: Epoch,
    expires_at: Epoch,
    state: std::sync::Mutex<LeaseState>,
    /// Held while the lease is being taken: concurrent writes of one cycle
    /// wait for it rather than race each other for the lease item.
    taking: futures_util::lock::Mutex<()>,
}

impl<'a> Guarded<'a> {
    pub(super) fn new(
        store: &'a dyn StateStore,
        notifier: &'a dyn Notifier,
        seen: Option<u64>,
        partition: &'a str,
        owner: &'a str,
        tick: Epoch,
        expires_at: Epoch,
    ) -> Guarded<'a> {
        Guarded {
            store,
            notifier,
            seen,
            partition,
            owner,
            tick,
            expires_at,
            state: std::sync::Mutex::new(LeaseState::Untaken),
            taking: futures_util::lock::Mutex::new(()),
        }
    }

    pub(super) fn state(&self) -> LeaseState {
        self.state.lock().map_or(LeaseState::Lost, |s| *s)
    }

    fn set(&self, state: LeaseState) {
        if let Ok(mut s) = self.state.lock() {
            *s = state;
        }
    }

    pub(super) fn is_lost(&self) -> bool {
        self.state() == LeaseState::Lost
    }

    fn lease_item(&self, held: bool, version: u64) -> Item {
        let key = keys::lease_in(self.partition);
        Item {
            pk: key.pk,
            sk: key.sk,
            version,
            data: keys::encode(&Lease {
                owner: self.owner.to_string(),
                tick: self.tick,
                held,
            }),
            expires_at: held.then_some(self.expires_at),
        }
    }

    /// Takes the lease unless held; fails for good once lost.
    async fn take(&self) -> Result<(), StoreError> {
        if let LeaseState::Held(_) = self.state() {
            return Ok(());
        }
        let _taking = self.taking.lock().await;
        match self.state() {
            LeaseState::Held(_) => return Ok(()),
            LeaseState::Lost => return Err(StoreError::LeaseLost),
            LeaseState::Untaken => {}
        }
        let version = self.seen.map_or(1, |v| v + 1);
        let expect = self.seen.map_or(Expect::Absent, Expect::Version);
        match self.store.put(self.lease_item(true, version), expect).await {
            Ok(()) => {
                self.set(LeaseState::Held(version));
                Ok(())
            }
            Err(e) if e.is_conflict() => {
                self.set(LeaseState::Lost);
                Err(StoreError::LeaseLost)
            }
            Err(e) => Err(e),
        }
    }

    /// Frees a held lease; returns whether it wrote.
    pub(super) async fn release(&self) -> Result<bool, StoreError> {
        let LeaseState::Held(version) = self.state() else {
            return Ok(false);
        };
        self.store
            .put(
                self.lease_item(false, version + 1),
                Expect::Version(version),
            )
            .await?;
        self.set(LeaseState::Untaken);
        Ok(true)
    }
}

#[async_trait::async_trait]
impl StateStore for Guarded<'_> {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.store.get(key).await
    }
    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        self.store.batch_get(keys).await
    }
    async fn put(&self, item: Item, expect: Expect) -> Result<(), StoreError> {
        self.take().await?;
        self.store.put(item, expect).await
    }
    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.store.query(pk, sk_prefix).await
    }
    async fn query_eventually(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.store.query_eventually(pk, sk_prefix).await
    }
    async fn delete(&self, key: &Key, expect: Expect) -> Result<(), StoreError> {
        self.take().await?;
        self.store.delete(key, expect).await
    }
}

#[async_trait::async_trait]
impl Notifier for Guarded<'_> {
    async fn publish(&self, msg: &Outbound) -> Result<(), NotifyError> {
        match self.take().await {
            Ok(()) => self.notifier.publish(msg).await,
            Err(StoreError::LeaseLost) => Err(NotifyError::LeaseLost),
            // The lease could not be taken: the message itself is fine (not
            // `Rejected`, which would dead-letter it), the publisher is not
            // available now; the group stops and the next cycle retries.
            Err(e) => Err(NotifyError::Unavailable(e.to_string())),
        }
    }
}
