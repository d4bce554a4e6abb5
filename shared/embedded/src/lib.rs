//! firebell's embedded (local) mode adapters: everything the engine needs to
//! run without an AWS account.
//!
//! - a clock that moves only when told: [`ManualClock`] (the wall clock is
//!   [`firebell_core::ports::SystemClock`]);
//! - state stores: [`MemoryStore`], [`FileStore`], and (with the `contract`
//!   feature, for tests only) the `contract` suite every
//!   [`StateStore`](firebell_core::ports::StateStore) must pass (see
//!   `store_contract_tests!`);
//! - metrics: [`ReplaySource`], replaying datapoints from a file (`REPLAY.md`);
//! - notifiers: [`TerminalNotifier`], [`JsonlNotifier`], [`MemoryNotifier`];
//! - sentinel alarms evaluated over a metrics source: [`SimulatedAlarms`].

pub mod alarms;
pub mod clock;
#[cfg(feature = "contract")]
pub mod contract;
pub mod notify;
pub mod replay;
pub mod store;

pub use alarms::SimulatedAlarms;
pub use clock::ManualClock;
pub use notify::{JsonlNotifier, MemoryNotifier, OpenError, TerminalNotifier};
pub use replay::{LineProblem, ReplayError, ReplaySeries, ReplaySource};
pub use store::{FileStore, MAX_ITEM_BYTES, MemoryStore};
