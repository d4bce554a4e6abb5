//! firebell's runtime engine: loads a config directory and runs evaluation
//! cycles over the ports (metrics source, state store, notifier). The
//! Lambda, `firebell run`, the demo, backtests and rule unit tests all run
//! this one engine; only the adapters differ. It depends on no adapter.
//!
//! * `config`: loading a config directory (rules, SLOs, routing): [`load`],
//!   [`load_texts`], [`Config`].
//! * `cycle`: one cycle in stages — plan, fetch, judge, persist, decide,
//!   deliver — and the lease: [`Engine::run_cycle`].
//! * [`judge`]: the pure judgement of one instance, shared by every path.
//! * [`keys`]: the store layout and its records.
//! * [`status`]: what `firebell status` reads: recent cycles, the lease,
//!   the outbox backlog, silences, failing checks, and the verdict.
//! * [`alerts`]: the alerts active now, annotated with routes, groups,
//!   silences and inhibition (`firebell alerts`).
//! * [`bundle`]: a config directory as one document (what `firebell push`
//!   deploys to AppConfig), and the last good one kept in the store.
//! * [`deployed`]: the deployed config a function runs, switched between
//!   cycles, with the last good one and the bundled one as fallbacks.
//! * [`sentinel`]: sentinel alarms: which rules have one, keeping them in
//!   step with the config, and which rules a cycle may skip.
//! * [`history`]: transitions, notifications and cycles remembered, and the
//!   notification record every output shares.

pub mod accounts;
pub mod alerts;
pub mod bundle;
mod config;
mod cycle;
pub mod deployed;
mod error;
pub mod history;
pub mod judge;
pub mod keys;
pub mod sentinel;
pub mod status;

pub use config::{
    Config, LoadProblem, TEST_FILE_MARKER, config_files, config_files_checked, load, load_texts,
    read_config_file,
};
pub use cycle::{
    CHECK_LABEL, CycleReport, Engine, EngineOptions, FailingCheck, Instance, InstanceView,
    SELF_ALERTNAME, SELF_MONITORING_SECTION, SHARD_LABEL, SelfMonitoring, Shard, Skip, Stage,
    TICK_SECS, Transition, rule_labels,
};
pub use error::{CycleError, EngineError};
