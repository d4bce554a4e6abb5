//! The example config and the demo day, compiled into the binary so
//! `firebell demo` works from anywhere.

use anyhow::{Result, anyhow};
use firebell_core::diag::Diagnostics;
use firebell_engine::Config;

/// `(path as shown in messages, text)` of every bundled example config file.
pub(crate) const EXAMPLE_FILES: &[(&str, &str)] = &[
    (
        "examples/rules/payments.yaml",
        include_str!("../../examples/rules/payments.yaml"),
    ),
    (
        "examples/rules/checkout.yaml",
        include_str!("../../examples/rules/checkout.yaml"),
    ),
    (
        "examples/slos.yaml",
        include_str!("../../examples/slos.yaml"),
    ),
    (
        "examples/routing.yaml",
        include_str!("../../examples/routing.yaml"),
    ),
];

/// The replayed day (see `examples/demo/generate.py`).
pub(crate) const DEMO_DAY: &str = include_str!("../../examples/demo/day.jsonl");
pub(crate) const DEMO_DAY_NAME: &str = "examples/demo/day.jsonl";

/// Loads the bundled example config.
pub(crate) fn example_config() -> Result<Config> {
    let texts: Vec<(String, String)> = EXAMPLE_FILES
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    let mut diags = Diagnostics::new();
    let config = firebell_engine::load_texts(&texts, &mut diags, Vec::new());
    if diags.has_errors() {
        return Err(anyhow!("bundled example config is invalid:\n{diags}"));
    }
    Ok(config)
}
