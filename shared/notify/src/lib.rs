//! firebell-notify
