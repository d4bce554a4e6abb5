//! State stores of the local mode: [`MemoryStore`] and [`FileStore`].
//!
//! Both behave like the DynamoDB store so that the local mode finds the same
//! problems before deployment:
//!
//! - an item whose `expires_at <= now` (the store's clock, in Unix seconds) is
//!   gone: never returned, absent for [`Expect::Absent`], a conflict for
//!   [`Expect::Version`]; it is purged lazily;
//! - the partition and sort keys must not be empty ([`StoreError::Invalid`]),
//!   and an item may not be larger than [`MAX_ITEM_BYTES`] (DynamoDB's 400 KB
//!   item limit; [`StoreError::TooLarge`]);
//! - `batch_get` returns each existing item once, even when a key is repeated.

mod file;
mod memory;

pub use file::FileStore;
pub use memory::MemoryStore;

use firebell_core::ports::{Expect, Item, Key, StoreError};
use firebell_core::series::Epoch;

/// The largest item the embedded stores accept, counted as the bytes of
/// `pk`, `sk` and `data` plus [`ITEM_OVERHEAD_BYTES`]: DynamoDB's limit is
/// 400 KB per item, attribute names included. Callers should keep items well
/// below it; the store contract requires every store to accept 300 KB of data.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// What the embedded stores count for attribute names, the version and the expiry.
pub const ITEM_OVERHEAD_BYTES: usize = 64;

/// The size an item is counted as against [`MAX_ITEM_BYTES`].
pub fn item_size(item: &Item) -> usize {
    item.pk.len() + item.sk.len() + item.data.len() + ITEM_OVERHEAD_BYTES
}

pub(crate) fn validate_item(item: &Item) -> Result<(), StoreError> {
    if item.pk.is_empty() || item.sk.is_empty() {
        return Err(StoreError::Invalid(format!(
            "item keys must not be empty (pk {:?}, sk {:?})",
            item.pk, item.sk
        )));
    }
    let size = item_size(item);
    if size > MAX_ITEM_BYTES {
        return Err(StoreError::TooLarge {
            pk: item.pk.clone(),
            sk: item.sk.clone(),
            bytes: size,
            limit: MAX_ITEM_BYTES,
        });
    }
    Ok(())
}

/// Whether `item` is still visible at `now` (Unix seconds).
pub(crate) fn is_live(item: &Item, now: Epoch) -> bool {
    item.expires_at.is_none_or(|at| at > now)
}

/// Checks a write condition against the live current item (`None` when absent or expired).
pub(crate) fn check_expect(
    expect: Expect,
    current: Option<&Item>,
    key: &Key,
) -> Result<(), StoreError> {
    let ok = match expect {
        Expect::Any => true,
        Expect::Absent => current.is_none(),
        Expect::Version(v) => current.is_some_and(|c| c.version == v),
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            pk: key.pk.clone(),
            sk: key.sk.clone(),
        })
    }
}
