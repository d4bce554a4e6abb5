//! firebell's pure core.
//!
//! Rules model and validation ([`config`], [`model`]), metric-math expressions
//! ([`expr`]) over aligned series ([`series`]), the alert state machine
//! ([`state`]), service level objectives and their burn-rate alerts ([`slo`])
//! and the ports the engine talks to ([`ports`]).
//!
//! Invariant: this crate depends on no AWS, Lambda or tokio crate, and never
//! reads the clock: time is always an argument.

pub mod alert;
pub mod config;
pub mod decode;
pub mod diag;
pub mod expr;
pub mod model;
pub mod ports;
pub mod series;
pub mod slo;
pub mod state;

pub use jiff::Timestamp;
