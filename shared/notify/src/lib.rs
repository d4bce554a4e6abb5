//! firebell's notification pipeline (pure core; time is an argument).
//!
//! alerts -> silences/inhibition -> routing tree -> groups (+ notification
//! log in the store) -> outbox -> rendered messages
//! ([`firebell_core::ports::Outbound`]).
//!
//! * [`config`]: the `receivers`, `route`, `inhibit_rules`, `time_intervals`,
//!   `silences` and `routing_tests` sections ([`config::NotifyConfigBuilder`]).
//! * [`routing`]: [`routing::route`], [`routing::explain`], [`routing::parse_label_arg`].
//! * [`timeinterval`], [`silence`], [`inhibit`].
//! * [`dispatch`]: grouping, timing and the notification log; [`outbox`]:
//!   delivery without loss or duplicates.

pub mod config;
pub mod dispatch;
pub mod inhibit;
pub mod matcher;
pub mod outbox;
pub mod render;
pub mod routing;
pub mod silence;
pub mod timeinterval;
pub mod types;

pub use config::{NotifyConfig, NotifyConfigBuilder, SECTIONS};
pub use dispatch::{DispatchError, DispatchReport, dispatch};
pub use outbox::{DeliveryError, DeliveryReport, deliver};
pub use routing::{RouteMatch, explain, parse_label_arg, route};
