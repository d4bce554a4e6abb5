//! firebell-embedded
