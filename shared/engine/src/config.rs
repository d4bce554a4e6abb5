//! Loading a config directory (or one file): every `*.yaml`/`*.yml` file,
//! each a mapping of sections. `rules` goes to the core decoder, `slos` to
//! the core's SLO decoder (each SLO adds its generated burn-rate rules to the
//! rules), the routing sections to the notification pipeline. Every error
//! of every file is reported at once.
//!
//! A file whose top-level mapping has a [`TEST_FILE_MARKER`] key (`tests`) is
//! a rule unit test file (`firebell test`, see [`crate::unittest`]), not
//! config: the loader skips it, so test files can live beside the rules
//! (e.g. `examples/tests/`).

use std::path::{Path, PathBuf};

use firebell_core::config::RulesBuilder;
use firebell_core::decode::{Decoder, Pos, closest};
use firebell_core::diag::{ConfigError, Diagnostics};
use firebell_core::model::RuleSet;
use firebell_notify::{NotifyConfig, NotifyConfigBuilder};

/// Everything firebell is configured with.
#[derive(Debug, Clone)]
pub struct Config {
    pub rules: RuleSet,
    pub notify: NotifyConfig,
    /// The `self_monitoring:` section (firebell's own failures as alerts).
    pub self_monitoring: crate::SelfMonitoring,
    /// The files it was read from, in reading order.
    pub files: Vec<PathBuf>,
}

/// The config files under `path`: the file itself, or every YAML file below
/// the directory, sorted by path (hidden entries skipped).
pub fn config_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let rd = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in rd {
            let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
            let p = entry.path();
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml") | Some("yml")
            ) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The top-level key that makes a YAML file a rule unit test file, which
/// the config loader skips.
pub const TEST_FILE_MARKER: &str = "tests";

/// Sections each config file may hold, and who owns them.
pub(crate) fn sections() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = firebell_core::config::SECTIONS.to_vec();
    all.extend_from_slice(firebell_core::slo::SECTIONS);
    all.extend_from_slice(firebell_notify::SECTIONS);
    all.push(crate::cycle::SELF_MONITORING_SECTION);
    all.sort_unstable();
    all
}

/// Loads and validates; on any error returns every diagnostic.
/// Warnings (lint) are returned beside the config.
pub fn load(path: &Path) -> Result<(Config, Diagnostics), ConfigError> {
    let mut diags = Diagnostics::new();
    let files = match config_files(path) {
        Ok(f) => f,
        Err(e) => {
            diags.error(&path.display().to_string(), 1, 1, e);
            return Err(ConfigError(diags));
        }
    };
    if files.is_empty() {
        diags.error(
            &path.display().to_string(),
            1,
            1,
            "no config files (*.yaml, *.yml) found",
        );
        return Err(ConfigError(diags));
    }
    let mut texts = Vec::with_capacity(files.len());
    for f in &files {
        match std::fs::read_to_string(f) {
            Ok(t) => texts.push((f.display().to_string(), t)),
            Err(e) => diags.error(&f.display().to_string(), 1, 1, format!("cannot read: {e}")),
        }
    }
    let config = load_texts(&texts, &mut diags, files);
    diags.sort();
    if diags.has_errors() {
        Err(ConfigError(diags))
    } else {
        Ok((config, diags))
    }
}

/// Loads from in-memory `(file name, text)` pairs (tests, bundled configs).
pub fn load_texts(
    texts: &[(String, String)],
    diags: &mut Diagnostics,
    files: Vec<PathBuf>,
) -> Config {
    let all_sections = sections();
    let mut rules = RulesBuilder::default();
    let mut slos = firebell_core::slo::SloBuilder::default();
    let mut notify = NotifyConfigBuilder::default();
    let mut test_files: Vec<&str> = Vec::new();
    let mut self_monitoring: Option<crate::SelfMonitoring> = None;
    for (file, text) in texts {
        let mut d = Decoder::new(file.clone(), diags);
        let Some(root) = d.parse(text) else { continue };
        let marked_yaml::Node::Mapping(map) = &root else {
            d.error(
                &root,
                "a config file must be a mapping of sections".to_string(),
            );
            continue;
        };
        if map.get_node(TEST_FILE_MARKER).is_some() {
            test_files.push(file);
            continue;
        }
        for (key, node) in map.iter() {
            let k = key.as_str();
            if firebell_core::config::SECTIONS.contains(&k) {
                rules.section(&mut d, node);
            } else if firebell_core::slo::SECTIONS.contains(&k) {
                slos.section(&mut d, node);
            } else if firebell_notify::SECTIONS.contains(&k) {
                notify.section(&mut d, k, node);
            } else if k == crate::cycle::SELF_MONITORING_SECTION {
                if self_monitoring.is_some() {
                    d.error_at(
                        Pos::of(key.span()),
                        format!("`{k}` is defined more than once (define it in one file)"),
                    );
                }
                self_monitoring = Some(crate::SelfMonitoring::decode(&mut d, node));
            } else {
                let hint = closest(k, &all_sections)
                    .map(|c| format!("; did you mean `{c}`?"))
                    .unwrap_or_default();
                d.error_at(
                    Pos::of(key.span()),
                    format!(
                        "unknown section `{k}` (expected one of: {}){hint}",
                        all_sections.join(", ")
                    ),
                );
            }
        }
    }
    slos.build_rules(diags, &mut |r| rules.push(r));
    let rules = rules.build(diags);
    let notify = notify.build(diags);
    let files = files
        .into_iter()
        .filter(|f| !test_files.contains(&f.display().to_string().as_str()))
        .collect();
    Config {
        rules,
        notify,
        self_monitoring: self_monitoring.unwrap_or_default(),
        files,
    }
}
