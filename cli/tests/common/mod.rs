//! Helpers shared by the CLI's integration tests.

use std::process::{Command, Output};

/// Runs the built `firebell` binary from the repository root.
pub(crate) fn firebell(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firebell"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("run firebell")
}

/// Output bytes as text.
pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
