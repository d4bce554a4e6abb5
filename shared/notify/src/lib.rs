//! firebell's notification pipeline (pure core; time is an argument).
//!
//! alerts -> silences/inhibition -> routing tree -> groups (+ notification
//! log in the store) -> outbox -> rendered messages
//! ([`firebell_core::ports::Outbound`]).
//!
//! The modules, each depending only on those listed before it:
//!
//! * `matcher`: label matchers ([`Matcher`]); `timeinterval`: named time
//!   intervals ([`TimeInterval`]).
//! * `types`: the validated config ([`NotifyConfig`]: receivers, the routing
//!   tree of [`Route`]s with their [`Timing`], inhibit rules, the silence
//!   policy) and the [`GroupNotification`] the dispatcher hands to the
//!   renderer.
//! * `store`: the store layout (below: partitions, keys, TTLs, records) and
//!   THE [`idempotency_key`] of a notification.
//! * `routing`: [`route`], [`explain`], [`parse_label_arg`].
//! * `config`: decoding of the `receivers`, `route`, `inhibit_rules`,
//!   `time_intervals`, `silences` and `routing_tests` sections
//!   ([`NotifyConfigBuilder`], [`SECTIONS`]).
//! * `silence`: silences in the store ([`add_silence`], [`list_silences`],
//!   [`expire_silence`], [`silenced_by`]); `inhibit`: [`inhibited`], [`inhibitors`].
//! * `dispatch`: grouping, timing and the notification log ([`dispatch`]),
//!   writing decisions to the outbox.
//! * `render`: messages with sandboxed templates and the
//!   `firebell.notification/v1` payload (`PAYLOAD.md`) ([`render`]).
//! * `outbox`: delivery from the outbox ([`deliver`]).
//!
//! How dispatch and delivery lose and duplicate nothing is told in
//! `ARCHITECTURE.md`, section "Delivery: no lost, no duplicate".
//!
//! # Store layout
//!
//! The pipeline's items in the engine's table (`store`):
//!
//! | pk | sk | data | expires |
//! |---|---|---|---|
//! | `silence` ([`PK_SILENCE`]) | silence id | [`Silence`] | [`SILENCE_RETENTION`] (5 days) after it ends |
//! | `group` ([`PK_GROUP`]) | group key `<receiver>:<16 hex>` | [`GroupLog`] | [`CLOSED_GROUP_TTL`] (8 days) after the group closed |
//! | `outbox` ([`PK_OUTBOX`]) | `<group key>#<seq, 10 digits>` | [`OutboxRecord`] | 7 days after the decision |
//! | `outbox-dead` ([`PK_DEAD_LETTER`]) | `<outbox sk>#item` or `#<message index>` | reason, time, payload | 14 days |

pub mod arn;
mod config;
mod dispatch;
mod inhibit;
mod matcher;
mod outbox;
mod render;
mod routing;
mod silence;
mod store;
mod timeinterval;
mod types;

pub use config::{NotifyConfigBuilder, SECTIONS};
pub use dispatch::{DispatchError, DispatchReport, dispatch, group_logs};
pub use inhibit::{inhibited, inhibitors};
pub use matcher::{MatchOp, Matcher, MatcherError, MatcherProblem, SyntaxError};
pub use outbox::{
    Delivered, DeliveryError, DeliveryReport, PublishFailure, Render, RenderFailure,
    TemplateFailure, deliver, pending,
};
pub use render::{
    MAX_TEMPLATE_FAILURES, RenderError, Rendered, check_annotation, render, render_annotation,
    sample_alert,
};
pub use routing::{RouteMatch, explain, parse_label_arg, route};
pub use silence::{
    Silence, SilenceError, SilenceSpec, SilenceState, SilenceView, active as active_silences,
    add as add_silence, expire as expire_silence, list as list_silences,
    load_lenient as load_silences, matches_every_alert, silenced_by,
};
pub use store::{
    CLOSED_GROUP_TTL, GroupLog, GroupTiming, OutboxRecord, PK_DEAD_LETTER, PK_GROUP, PK_OUTBOX,
    PK_SILENCE, SILENCE_RETENTION, SilenceRef, group_key, idempotency_key,
};
pub use timeinterval::{TimeInterval, TimeSpec};
pub use types::{
    GroupBy, GroupNotification, InhibitRule, MessageOptions, NotifyConfig, Receiver, Route,
    RoutingTest, SilencePolicy, Timing, TopicRef,
};
