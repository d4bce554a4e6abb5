//! firebell's notification pipeline (pure core; time is an argument).
//!
//! alerts -> silences/inhibition -> routing tree -> groups (+ notification
//! log in the store) -> rendered messages ([`firebell_core::ports::Outbound`]).

pub mod types;
