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

/// Checks `doc` against the published schema `docs/schemas/<entity>.schema.json`
/// (JSON Schema draft 2020-12), panicking with every violation.
#[allow(dead_code)]
pub(crate) fn assert_schema(entity: &str, doc: &serde_json::Value) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/schemas/").to_string()
        + entity
        + ".schema.json";
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let schema: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    // Formats (`date-time`) are checked too: times are RFC 3339.
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{entity} document does not follow {path}:\n{}\n{doc:#}",
        errors.join("\n")
    );
}
