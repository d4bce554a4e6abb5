//! The store layout (single table, DynamoDB style). Partition keys:
//!
//! | pk                 | sk                      | what                                              |
//! |--------------------|-------------------------|---------------------------------------------------|
//! | `state/<bucket>`   | `<fingerprint>`         | durable state of one alert instance (only instances that are not inactive, and inactive ones for a while: see [`state_expiry`]) |
//! | `active`           | `<fingerprint>`         | an alert the pipeline must know: firing, or resolved (TTL) |
//! | `cycle`            | `lease`                 | the lease: held by the cycle that writes (TTL), else free (see `cycle`) |
//! | `cycle#<k>/<n>`    | as `cycle`              | shard k of n's own lease, last tick and checks (see [`crate::Stage`]) |
//! | `cycle`            | `last`                  | the last completed tick that wrote (or paced a long-interval rule) |
//! | `cycle`            | `selfwatch/<check>`     | a failing self-monitoring check: `render` `store` `fetch` `outbox` (written only on failure; see `cycle::selfwatch`) |
//! | notify's own keys  | (see `firebell_notify`) | silences, groups (notification log), outbox       |

use firebell_core::ports::Key;

pub const ACTIVE: &str = "active";
pub const CYCLE: &str = "cycle";

/// The number of state partitions. Fixed forever: a rule's bucket is
/// where its instances' state lives, whatever the shard count.
pub const STATE_BUCKETS: u32 = 64;

/// The state bucket of a rule: FNV-1a (32 bits) of its name, modulo
/// [`STATE_BUCKETS`]. Stable across versions and platforms (it names
/// stored partitions).
pub fn bucket(rule: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in rule.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % STATE_BUCKETS
}

/// The partition of state bucket `bucket`: `state/07`.
pub fn state_partition(bucket: u32) -> String {
    format!("state/{bucket:02}")
}

/// The state item of one alert instance: its rule's bucket partition,
/// its fingerprint (which covers `alertname`, so it is unique across rules).
pub fn state(rule: &str, fingerprint: &str) -> Key {
    Key::new(state_partition(bucket(rule)), fingerprint)
}

/// The state key of the layout before buckets (`state#<rule>`), read once
/// to move it (see `cycle::migrate`).
pub(crate) fn legacy_state_partition(rule: &str) -> String {
    format!("state#{rule}")
}

/// When the state of an instance at rest (inactive, or resolved) may go:
/// it is kept (and read) while
/// it still stops a replay of the rule's lookback window from deriving
/// events again, and at least as long as its resolved alert is kept;
/// afterwards the instance is judged as a fresh one would be, which derives
/// nothing from datapoints it has seen. A pending, firing or NoData state
/// never expires.
pub fn state_expiry(
    state: &InstanceState,
    now: Epoch,
    lookback_secs: Epoch,
    resolved_retention: Epoch,
) -> Option<Epoch> {
    use firebell_core::state::Status;
    matches!(state.status, Status::Inactive | Status::Resolved).then(|| {
        now.saturating_add(
            resolved_retention.max(lookback_secs.saturating_mul(2).saturating_add(600)),
        )
    })
}

pub fn active(fingerprint: &str) -> Key {
    Key::new(ACTIVE, fingerprint)
}

pub fn lease() -> Key {
    lease_in(CYCLE)
}

pub fn last_tick() -> Key {
    last_tick_in(CYCLE)
}

/// The lease of the cycle partition `pk` (`cycle`, or a shard's).
pub fn lease_in(pk: &str) -> Key {
    Key::new(pk, "lease")
}

/// The last tick of the cycle partition `pk`.
pub fn last_tick_in(pk: &str) -> Key {
    Key::new(pk, "last")
}

// ------------------------------------------------------------------ records

use firebell_core::model::Labels;
use firebell_core::series::Epoch;
use firebell_core::state::InstanceState;
use serde::{Deserialize, Serialize};

/// A `state/<bucket>` item: one alert instance's labels and durable state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredState {
    pub labels: Labels,
    pub state: InstanceState,
}

/// The `cycle/lease` item (see `cycle::lease`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Lease {
    pub(crate) owner: String,
    pub(crate) tick: Epoch,
    /// False once released. (Items of the former layout, deleted on
    /// release, have no such field and were held.)
    #[serde(default = "held")]
    pub(crate) held: bool,
}

fn held() -> bool {
    true
}

/// The `cycle/last` item.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct LastTick {
    pub(crate) tick: Epoch,
    /// The state layout the writer used: [`STATE_LAYOUT`]. Items written
    /// before state buckets have none (layout 1, `state#<rule>`).
    #[serde(default = "layout_1")]
    pub(crate) layout: u32,
    /// Written by the delivery stage: the shard count of its tick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) shards: Option<u32>,
}

/// The state layout: 2 is `state/<bucket>`.
pub(crate) const STATE_LAYOUT: u32 = 2;

fn layout_1() -> u32 {
    1
}

/// A record's stored JSON text.
pub(crate) fn encode<T: Serialize>(v: &T) -> String {
    // Serialising our own plain structs cannot fail (no maps with non-string keys).
    serde_json::to_string(v).unwrap_or_default()
}

/// Reads a stored record, naming the item when it is corrupt.
pub(crate) fn decode<T: for<'de> Deserialize<'de>>(
    item: &firebell_core::ports::Item,
) -> Result<T, crate::EngineError> {
    serde_json::from_str(&item.data).map_err(|e| crate::EngineError::Corrupt {
        pk: item.pk.clone(),
        sk: item.sk.clone(),
        reason: e.to_string(),
    })
}
