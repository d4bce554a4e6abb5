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
use firebell_core::decode::{Decoder, MAX_DOCUMENT_BYTES, Pos, closest};
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
    /// The `history:` section (what firebell remembers, and for how long).
    pub history: crate::history::HistorySettings,
    /// The `sentinels:` section (sentinel alarms, polling only when it matters).
    pub sentinels: crate::sentinel::SentinelSettings,
    /// The `accounts:` section (roles to assume in source accounts).
    pub accounts: crate::accounts::Accounts,
    /// The SLOs the burn-rate rules in `rules` were generated from.
    pub slos: Vec<firebell_core::slo::Slo>,
    /// The files it was read from, in reading order.
    pub files: Vec<PathBuf>,
    /// The config version: a content hash of its files (12 hex digits of
    /// SHA-256 over their texts in reading order; test files left out).
    /// Shown by `validate`, recorded by every cycle that writes (`status`).
    pub version: String,
}

/// The config files under `path`: the file itself, or every YAML file below
/// the directory, sorted by path (hidden entries skipped). The first problem
/// [`config_files_checked`] finds is the error.
pub fn config_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    let (files, problems) = config_files_checked(path)?;
    match problems.into_iter().next() {
        Some((p, e)) => Err(format!("{}: {e}", p.display())),
        None => Ok(files),
    }
}

/// A file or directory the loader refused, and why.
pub type LoadProblem = (PathBuf, String);

/// The config files under `path`, and every entry refused on the way:
/// - a directory symlink leading outside the config directory is not
///   followed, nor one leading back to a directory already read (a loop);
/// - an entry named `*.yaml` / `*.yml` that is not a regular file (a FIFO,
///   a device, a socket) is refused, so reading can neither hang nor run
///   out of memory.
///
/// `Err` only when `path` itself cannot be read.
pub fn config_files_checked(path: &Path) -> Result<(Vec<PathBuf>, Vec<LoadProblem>), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_dir() {
        return Ok((vec![path.to_path_buf()], Vec::new()));
    }
    let root = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let mut visited = std::collections::BTreeSet::new();
    visited.insert(root.clone());
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) => {
                problems.push((dir, format!("cannot read directory: {e}")));
                continue;
            }
        };
        for entry in rd {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    problems.push((dir.clone(), format!("cannot read directory: {e}")));
                    continue;
                }
            };
            let p = entry.path();
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let is_yaml = matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml") | Some("yml")
            );
            // Follows symlinks; a dangling one is a problem only if it
            // names a YAML file.
            let meta = match std::fs::metadata(&p) {
                Ok(m) => m,
                Err(e) => {
                    if is_yaml {
                        problems.push((p, format!("cannot read: {e}")));
                    }
                    continue;
                }
            };
            if meta.is_dir() {
                let canon = match std::fs::canonicalize(&p) {
                    Ok(c) => c,
                    Err(e) => {
                        problems.push((p, format!("cannot read directory: {e}")));
                        continue;
                    }
                };
                if !canon.starts_with(&root) {
                    problems.push((
                        p,
                        format!(
                            "symlink leads outside the config directory (to {}; expected a directory inside {})",
                            canon.display(),
                            root.display()
                        ),
                    ));
                } else if !visited.insert(canon.clone()) {
                    problems.push((
                        p,
                        format!(
                            "symlink loop: {} is already read (expected each directory once)",
                            canon.display()
                        ),
                    ));
                } else {
                    stack.push(p);
                }
            } else if is_yaml {
                if meta.is_file() {
                    out.push(p);
                } else {
                    problems.push((p, not_regular(&meta)));
                }
            }
        }
    }
    out.sort();
    problems.sort();
    Ok((out, problems))
}

fn not_regular(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    let kind = if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    format!("is {kind} (expected a regular file)")
}

/// Reads one config file: only a regular file (checked before opening, so
/// a FIFO cannot block), at most [`MAX_DOCUMENT_BYTES`], valid UTF-8. The
/// error is `(line, column, message)`: invalid UTF-8 at its byte.
pub fn read_config_file(path: &Path) -> Result<String, (Pos, String)> {
    use std::io::Read;
    let at_start = Pos { line: 1, column: 1 };
    let meta = std::fs::metadata(path).map_err(|e| (at_start, format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err((at_start, not_regular(&meta)));
    }
    let too_large = |n: u64| {
        (
            at_start,
            format!("file is too large ({n} bytes, expected at most {MAX_DOCUMENT_BYTES})"),
        )
    };
    if meta.len() > MAX_DOCUMENT_BYTES as u64 {
        return Err(too_large(meta.len()));
    }
    let file = std::fs::File::open(path).map_err(|e| (at_start, format!("cannot read: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_DOCUMENT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| (at_start, format!("cannot read: {e}")))?;
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let good = e.utf8_error().valid_up_to();
        let before = String::from_utf8_lossy(&bytes[..good]);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let bad = bytes.get(good).copied().unwrap_or(0);
        (
            Pos { line, column },
            format!("invalid UTF-8: byte 0x{bad:02x} (expected UTF-8 text)"),
        )
    })
}

/// The top-level key that makes a YAML file a rule unit test file, which
/// the config loader skips.
pub const TEST_FILE_MARKER: &str = "tests";

/// The top-level keys of a rule unit test file: the marker, then what
/// names its config, then the rest.
const TEST_FILE_KEYS: &[&str] = &[
    TEST_FILE_MARKER,
    "config",
    "rule_files",
    "rules",
    "evaluation_interval",
];

/// Sections each config file may hold, and who owns them.
pub(crate) fn sections() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = firebell_core::config::SECTIONS.to_vec();
    all.extend_from_slice(firebell_core::slo::SECTIONS);
    all.extend_from_slice(firebell_notify::SECTIONS);
    all.push(crate::cycle::SELF_MONITORING_SECTION);
    all.push(crate::history::SECTION);
    all.push(crate::sentinel::SECTION);
    all.push(crate::accounts::SECTION);
    all.sort_unstable();
    all
}

/// The `(name, text)` pairs of the files read, and their paths.
pub(crate) type FilesRead = (Vec<(String, String)>, Vec<PathBuf>);

/// Reads the config files under `path` as `(name, text)` pairs, named as
/// given (`examples/rules/payments.yaml`), with their paths; every problem
/// into `diags`. `None` when there is nothing to read (`path` itself cannot
/// be read, or holds no config file). Shared by [`load`] and
/// [`crate::bundle::Bundle::read`], so a bundle holds exactly what `load`
/// reads.
pub(crate) fn read_files(path: &Path, diags: &mut Diagnostics) -> Option<FilesRead> {
    let (files, problems) = match config_files_checked(path) {
        Ok(f) => f,
        Err(e) => {
            diags.error(&path.display().to_string(), 1, 1, e);
            return None;
        }
    };
    for (p, e) in &problems {
        diags.error(&p.display().to_string(), 1, 1, e.clone());
    }
    if files.is_empty() && problems.is_empty() {
        diags.error(
            &path.display().to_string(),
            1,
            1,
            "no config files (*.yaml, *.yml) found",
        );
        return None;
    }
    let mut texts = Vec::with_capacity(files.len());
    for f in &files {
        match read_config_file(f) {
            Ok(t) => texts.push((f.display().to_string(), t)),
            Err((pos, e)) => diags.error(&f.display().to_string(), pos.line, pos.column, e),
        }
    }
    Some((texts, files))
}

/// Loads and validates; on any error returns every diagnostic.
/// Warnings (lint) are returned beside the config.
pub fn load(path: &Path) -> Result<(Config, Diagnostics), ConfigError> {
    let mut diags = Diagnostics::new();
    let Some((texts, files)) = read_files(path, &mut diags) else {
        return Err(ConfigError(diags));
    };
    load_read(&texts, files, diags)
}

/// Loads what was read (`diags` holds the reading's problems): every
/// diagnostic sorted; any error makes it an error. Shared by [`load`] and
/// [`crate::bundle::Bundle::load`].
pub(crate) fn load_read(
    texts: &[(String, String)],
    files: Vec<PathBuf>,
    mut diags: Diagnostics,
) -> Result<(Config, Diagnostics), ConfigError> {
    let config = load_texts(texts, &mut diags, files);
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
    let mut annotations: Vec<Annotations> = Vec::new();
    let mut self_monitoring: Option<crate::SelfMonitoring> = None;
    let mut history: Option<crate::history::HistorySettings> = None;
    let mut sentinels: Option<crate::sentinel::SentinelSettings> = None;
    let mut accounts: Option<crate::accounts::Accounts> = None;
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
        // In a test file (one naming its `config` or `rule_files`), `rules`
        // lists the rule names under test: not a config section.
        let names_config = TEST_FILE_KEYS[1..3]
            .iter()
            .any(|k| map.get_node(k).is_some());
        let test_key = |k: &str| TEST_FILE_KEYS.contains(&k) && (names_config || k != "rules");
        let config_sections: Vec<&str> = map
            .keys()
            .map(|k| k.as_str())
            .filter(|k| all_sections.contains(k) && !test_key(k))
            .collect();
        let tests_key = map.keys().find(|k| k.as_str() == TEST_FILE_MARKER);
        if let Some(tests_key) = tests_key {
            if config_sections.is_empty() {
                test_files.push(file);
                continue;
            }
            // Config sections beside `tests`: neither skip the config
            // silently nor run the tests; say where tests belong.
            d.error_at(
                Pos::of(tests_key.span()),
                format!(
                    "`{TEST_FILE_MARKER}` in a config file with config sections ({}): rule unit tests belong in their own file (`{TEST_FILE_MARKER}:` with `config:` or `rule_files:`, run by `firebell test`)",
                    config_sections.join(", ")
                ),
            );
        }
        for (key, node) in map.iter() {
            let k = key.as_str();
            if tests_key.is_some() && test_key(k) {
                continue;
            }
            if firebell_core::config::SECTIONS.contains(&k) {
                rules.section(&mut d, node);
                annotation_templates(file, node, &mut annotations);
            } else if firebell_core::slo::SECTIONS.contains(&k) {
                slos.section(&mut d, node);
                annotation_templates(file, node, &mut annotations);
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
            } else if k == crate::history::SECTION {
                if history.is_some() {
                    d.error_at(
                        Pos::of(key.span()),
                        format!("`{k}` is defined more than once (define it in one file)"),
                    );
                }
                history = Some(crate::history::HistorySettings::decode(&mut d, node));
            } else if k == crate::sentinel::SECTION {
                if sentinels.is_some() {
                    d.error_at(
                        Pos::of(key.span()),
                        format!("`{k}` is defined more than once (define it in one file)"),
                    );
                }
                sentinels = Some(crate::sentinel::SentinelSettings::decode(&mut d, node));
            } else if k == crate::accounts::SECTION {
                if accounts.is_some() {
                    d.error_at(
                        Pos::of(key.span()),
                        format!("`{k}` is defined more than once (define it in one file)"),
                    );
                }
                accounts = Some(crate::accounts::Accounts::decode(&mut d, node));
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
    let slos = slos.build_rules(diags, &mut |r| rules.push(r));
    let rules = rules.build(diags);
    check_annotations(&rules, &annotations, diags);
    let accounts = accounts.unwrap_or_default();
    accounts.check(&rules, diags);
    let mut notify = notify.build(diags);
    // Console links of accounts read through a role carry no `accountId`.
    if !accounts.roles.is_empty() {
        let role_accounts: std::collections::BTreeSet<String> =
            accounts.roles.keys().cloned().collect();
        for receiver in notify.receivers.values_mut() {
            receiver.message.role_accounts = role_accounts.clone();
        }
    }
    // The texts hashed in place (not copied into one string first: a
    // 100,000-rule config is 46 MB of YAML).
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    for (file, text) in texts {
        if !test_files.contains(&file.as_str()) {
            sha2::Digest::update(&mut hasher, text.as_bytes());
            sha2::Digest::update(&mut hasher, b"\0");
        }
    }
    let digest = sha2::Digest::finalize(hasher);
    let version = firebell_core::text::hex(&digest)[..12].to_string();
    let files = files
        .into_iter()
        .filter(|f| !test_files.contains(&f.display().to_string().as_str()))
        .collect();
    Config {
        rules,
        notify,
        self_monitoring: self_monitoring.unwrap_or_default(),
        history: history.unwrap_or_default(),
        sentinels: sentinels.unwrap_or_default(),
        accounts,
        slos,
        files,
        version,
    }
}

/// The annotations written in one `rules` or `slos` item: the file, the
/// line of its `name`, and each annotation's key, position and template.
#[derive(Debug)]
struct Annotations {
    file: String,
    name_line: usize,
    items: Vec<(String, Pos, String)>,
}

/// Collects the annotation templates of a `rules` or `slos` section (the
/// decoders report its shape errors).
fn annotation_templates(file: &str, section: &marked_yaml::Node, out: &mut Vec<Annotations>) {
    let marked_yaml::Node::Sequence(items) = section else {
        return;
    };
    for item in items.iter() {
        let marked_yaml::Node::Mapping(m) = item else {
            continue;
        };
        let (Some(name), Some(marked_yaml::Node::Mapping(ann))) =
            (m.get_node("name"), m.get_node("annotations"))
        else {
            continue;
        };
        let items = ann
            .iter()
            .filter_map(|(k, v)| match v {
                marked_yaml::Node::Scalar(s) => Some((
                    k.as_str().to_string(),
                    Pos::of(v.span()),
                    s.as_str().to_string(),
                )),
                _ => None,
            })
            .collect();
        out.push(Annotations {
            file: file.to_string(),
            name_line: Pos::of(name.span()).line,
            items,
        });
    }
}

/// A fixed time for sample alerts: validation does not depend on the clock.
const SAMPLE_AT: firebell_core::series::Epoch = 1_700_000_000;

/// Compiles and trial-renders every annotation template written in the
/// config over a sample alert of each rule it belongs to (an SLO's
/// annotations go to each of its burn-rate rules): a template that cannot
/// render is an error at the template, never a `[template error]` page.
fn check_annotations(rules: &RuleSet, written: &[Annotations], diags: &mut Diagnostics) {
    // The rules written at each (file, line of `name`), in config order:
    // one pass, not one scan of every rule per annotated item.
    let mut at: std::collections::HashMap<(&str, usize), Vec<&firebell_core::model::Rule>> =
        std::collections::HashMap::new();
    for r in &rules.rules {
        at.entry((r.origin.file.as_str(), r.origin.line))
            .or_default()
            .push(r);
    }
    for w in written {
        let mut failed: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
        let written_at = at.get(&(w.file.as_str(), w.name_line));
        for rule in written_at.into_iter().flatten().copied() {
            for (key, pos, template) in &w.items {
                if failed.contains(key.as_str()) {
                    continue;
                }
                if let Err(e) = firebell_notify::check_annotation(rule, template, SAMPLE_AT) {
                    failed.insert(key);
                    diags.error(
                        &w.file,
                        pos.line,
                        pos.column,
                        format!("annotation `{key}` of rule {:?}: {e}", rule.name),
                    );
                }
            }
        }
    }
}
