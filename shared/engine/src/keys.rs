//! The store layout (single table, DynamoDB style). Partition keys:
//!
//! | pk                 | sk                      | what                                              |
//! |--------------------|-------------------------|---------------------------------------------------|
//! | `state#<rule>`     | `<fingerprint>`         | durable state of one alert instance               |
//! | `active`           | `<fingerprint>`         | an alert the pipeline must know: firing, or resolved (TTL) |
//! | `cycle`            | `lease`                 | the lease: held by the cycle that writes (TTL), else free (see `cycle`) |
//! | `cycle`            | `last`                  | the last completed tick that wrote (or paced a long-interval rule) |
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
