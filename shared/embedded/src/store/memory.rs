//! An in-memory state store.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use firebell_core::ports::{Clock, Expect, Item, Key, StateStore, StoreError};
use firebell_core::series::Epoch;

use super::{check_expect, is_live, validate_item};

type Map = BTreeMap<(String, String), Item>;

/// A [`StateStore`] held in memory: fast, and gone when the process ends.
/// Cheap to share (`Arc<MemoryStore>`); every operation takes a short
/// synchronous lock and never awaits while holding it.
#[derive(Debug)]
pub struct MemoryStore {
    clock: Arc<dyn Clock>,
    items: Mutex<Map>,
}

impl MemoryStore {
    /// An empty store; `clock` decides which items have expired.
    pub fn new(clock: Arc<dyn Clock>) -> MemoryStore {
        MemoryStore {
            clock,
            items: Mutex::new(BTreeMap::new()),
        }
    }

    /// Every live item, ordered by partition then sort key (for debugging and demos).
    pub fn items(&self) -> Vec<Item> {
        let now = self.now();
        let mut map = self.lock();
        map.retain(|_, item| is_live(item, now));
        map.values().cloned().collect()
    }

    fn now(&self) -> Epoch {
        self.clock.now().as_second()
    }

    fn lock(&self) -> MutexGuard<'_, Map> {
        // Every mutation is a single map operation: a poisoned map is consistent.
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The live item at `key`, purging it when expired.
    fn live(map: &mut Map, key: &Key, now: Epoch) -> Option<Item> {
        let k = (key.pk.clone(), key.sk.clone());
        match map.get(&k) {
            Some(item) if is_live(item, now) => Some(item.clone()),
            Some(_) => {
                map.remove(&k);
                None
            }
            None => None,
        }
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let now = self.now();
        Ok(Self::live(&mut self.lock(), key, now))
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        let now = self.now();
        let mut map = self.lock();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for key in keys {
            if seen.insert(key) {
                out.extend(Self::live(&mut map, key, now));
            }
        }
        Ok(out)
    }

    async fn put(&self, item: Item, expect: Expect) -> Result<(), StoreError> {
        validate_item(&item)?;
        let now = self.now();
        let key = Key::new(item.pk.clone(), item.sk.clone());
        let mut map = self.lock();
        let current = Self::live(&mut map, &key, now);
        check_expect(expect, current.as_ref(), &key)?;
        map.insert((key.pk, key.sk), item);
        Ok(())
    }

    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        let now = self.now();
        let mut map = self.lock();
        let mut out = Vec::new();
        let mut expired = Vec::new();
        let from = (pk.to_string(), sk_prefix.to_string());
        for (k, item) in map.range(from..) {
            if k.0 != pk || !k.1.starts_with(sk_prefix) {
                break;
            }
            if is_live(item, now) {
                out.push(item.clone());
            } else {
                expired.push(k.clone());
            }
        }
        for k in expired {
            map.remove(&k);
        }
        Ok(out)
    }

    async fn delete(&self, key: &Key, expect: Expect) -> Result<(), StoreError> {
        let now = self.now();
        let mut map = self.lock();
        let current = Self::live(&mut map, key, now);
        check_expect(expect, current.as_ref(), key)?;
        if current.is_some() {
            map.remove(&(key.pk.clone(), key.sk.clone()));
        }
        Ok(())
    }
}
