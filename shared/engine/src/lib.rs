//! firebell-engine
