//! firebell's authoring and simulation tools. They run the runtime engine
//! (`firebell-engine`) unchanged, on the in-memory adapters of
//! `firebell-embedded`, and never re-implement what it does:
//!
//! * [`configdiff`]: what changes between the deployed config and a new
//!   one (`firebell diff`, `firebell push`);
//! * [`backtest`]: the whole pipeline over history on a simulated clock
//!   ([`backtest::Simulator`], shared by the demo and the rule unit tests),
//!   and the per-rule / per-receiver analysis of what it did;
//! * [`unittest`]: rule unit tests (`firebell test`);
//! * [`lint`]: warnings about rules that page on toast or reach nobody;
//! * [`cost`]: the monthly cost estimate (`firebell cost`);
//! * [`report`]: the noise report (`firebell report`, the reporter Lambda);
//! * [`html`]: the self-contained HTML report of a backtest (charts as
//!   inline SVG);
//! * [`validate`]: `firebell validate` as one function, shared with the
//!   AppConfig validator Lambda.

pub mod backtest;
pub mod configdiff;
pub mod cost;
pub mod html;
pub mod import;
pub mod lint;
pub mod report;
pub mod unittest;
pub mod validate;
