//! firebell's engine: loads a config directory and runs evaluation cycles
//! over the ports (metrics source, state store, notifier). The same engine
//! runs in the Lambda, in `firebell run`, in the demo and in backtests.

pub mod config;
pub mod cycle;
pub mod keys;

pub use config::{Config, load};
pub use cycle::{CycleReport, Engine, EngineError, EngineOptions, Skip, Transition, rule_labels};
