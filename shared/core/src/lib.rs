//! firebell's pure core.
//!
//! Rules model and validation ([`config`], [`model`]), metric-math expressions
//! ([`expr`]) over aligned series ([`series`]), the alert state machine
//! ([`state`]), service level objectives and their burn-rate alerts ([`slo`]),
//! the ports the engine talks to ([`ports`]) and small text helpers shared by
//! the pipeline and the adapters ([`text`]: SHA-256 hex, RFC 3339).
//!
//! Invariant: this crate depends on no AWS, Lambda or tokio crate, and its
//! logic never reads the clock: time is always an argument. The one clock
//! adapter, [`ports::SystemClock`], lives here so every binary shares it;
//! only binaries construct it.

pub mod alarm_definition;
pub mod alert;
pub mod config;
pub mod decode;
pub mod diag;
pub mod expr;
pub mod insights;
pub mod model;
pub mod ports;
pub mod sentinel;
pub mod series;
pub mod slo;
pub mod state;
pub mod text;

pub use jiff::Timestamp;
