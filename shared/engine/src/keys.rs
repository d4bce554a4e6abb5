//! The store layout (single table, DynamoDB style). Partition keys:
//!
//! | pk                 | sk                      | what                                              |
//! |--------------------|-------------------------|---------------------------------------------------|
//! | `state#<rule>`     | `<fingerprint>`         | durable state of one alert instance               |
//! | `active`           | `<fingerprint>`         | an alert the pipeline must know: firing, or resolved (TTL) |
//! | `cycle`            | `lease`                 | the lease: held by the cycle that writes (TTL), else free (see `cycle`) |
//! | `cycle`            | `last`                  | the last completed tick that wrote (or paced a long-interval rule) |
//! | `cycle`            | `selfwatch/<check>`     | a failing self-monitoring check: `render` `store` `fetch` `outbox` (written only on failure; see `cycle::selfwatch`) |
//! | notify's own keys  | (see `firebell_notify`) | silences, groups (notification log), outbox       |

use firebell_core::ports::Key;

pub const ACTIVE: &str = "active";
pub const CYCLE: &str = "cycle";

pub fn state(rule: &str, fingerprint: &str) -> Key {
    Key::new(format!("state#{rule}"), fingerprint)
}

pub fn active(fingerprint: &str) -> Key {
    Key::new(ACTIVE, fingerprint)
}

pub fn lease() -> Key {
    Key::new(CYCLE, "lease")
}

pub fn last_tick() -> Key {
    Key::new(CYCLE, "last")
}

// ------------------------------------------------------------------ records

use firebell_core::model::Labels;
use firebell_core::series::Epoch;
use firebell_core::state::InstanceState;
use serde::{Deserialize, Serialize};

/// A `state#<rule>` item: one alert instance's labels and durable state.
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
