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

/// Whether `config` was read from the bundled example files (the demo
/// day's config, wherever the files are): its config files, test files
/// aside, are exactly those texts. Only then is the demo day its history.
pub(crate) fn is_example_config(config: &Config) -> bool {
    let mut texts: Vec<String> = Vec::new();
    for f in &config.files {
        match std::fs::read_to_string(f) {
            Ok(t) if firebell_tools::unittest::is_test_file(&t) => {}
            Ok(t) => texts.push(t),
            Err(_) => return false,
        }
    }
    let mut bundled: Vec<&str> = EXAMPLE_FILES.iter().map(|(_, t)| *t).collect();
    texts.sort();
    bundled.sort_unstable();
    texts == bundled
}

/// The refusal of a local run (`run`, `backtest`) of a config other than
/// the examples with no history named: the demo day is the examples' data.
pub(crate) fn no_history(config_path: &std::path::Path, flag: &str) -> String {
    format!(
        "{} is not the bundled example config, so the bundled demo day is not its history: pass {flag} (a replay file, REPLAY.md){}",
        config_path.display(),
        if flag == "--source FILE" {
            " or --source cloudwatch --from T --to T"
        } else {
            ", or --backend aws to read CloudWatch"
        }
    )
}
