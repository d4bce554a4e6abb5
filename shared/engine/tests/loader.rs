#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Issue #10, "Loading": the config loader neither hangs, nor runs out of
//! memory, nor leaves the config directory, whatever the directory holds;
//! every problem is an error with its file and position.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

const RULE: &str = r#"rules:
  - name: R
    metrics: {m: {namespace: N, metric: M, stat: Sum}}
    expression: m
    condition: {op: ">", threshold: 1}
receivers:
  web: {topics: [arn:aws:sns:us-east-1:123456789012:web-topic]}
route:
  receiver: web
"#;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("firebell-loader-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn write(&self, rel: &str, text: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The errors of loading `dir`, with the directory written as `DIR`.
fn errors(dir: &TempDir) -> Vec<String> {
    let root = dir.path().display().to_string();
    let canon = std::fs::canonicalize(dir.path())
        .unwrap()
        .display()
        .to_string();
    match firebell_engine::load(dir.path()) {
        Ok(_) => Vec::new(),
        Err(e) => {
            e.0.errors()
                .map(|d| d.to_string().replace(&canon, "DIR").replace(&root, "DIR"))
                .collect()
        }
    }
}

#[test]
fn directory_symlinks_out_of_the_root_are_not_followed() {
    let outside = TempDir::new("outside");
    outside.write("secret.yaml", RULE);
    let dir = TempDir::new("root");
    dir.write("rules.yaml", RULE);
    symlink(outside.path(), dir.path().join("ext")).unwrap();
    let out = std::fs::canonicalize(outside.path())
        .unwrap()
        .display()
        .to_string();
    assert_eq!(
        errors(&dir),
        vec![format!(
            "DIR/ext:1:1: error: symlink leads outside the config directory (to {out}; expected a directory inside DIR)"
        )]
    );
}

#[test]
fn symlink_loops_are_detected() {
    let dir = TempDir::new("loop");
    dir.write("a/rules.yaml", RULE);
    symlink(dir.path().join("a"), dir.path().join("a/again")).unwrap();
    symlink(dir.path(), dir.path().join("a/top")).unwrap();
    assert_eq!(
        errors(&dir),
        vec![
            "DIR/a/again:1:1: error: symlink loop: DIR/a is already read (expected each directory once)",
            "DIR/a/top:1:1: error: symlink loop: DIR is already read (expected each directory once)",
        ]
    );
}

#[test]
fn only_regular_files_are_read() {
    let dir = TempDir::new("special");
    dir.write("rules.yaml", RULE);
    let fifo = dir.path().join("x.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    symlink("/dev/zero", dir.path().join("z.yaml")).unwrap();
    assert_eq!(
        errors(&dir),
        vec![
            "DIR/x.yaml:1:1: error: is a FIFO (expected a regular file)",
            "DIR/z.yaml:1:1: error: is a device (expected a regular file)",
        ]
    );
    // Named directly, too.
    let direct = firebell_engine::load(&fifo).unwrap_err().0;
    assert_eq!(
        direct.list[0].message,
        "is a FIFO (expected a regular file)"
    );
}

#[test]
fn files_over_the_size_cap_are_an_error() {
    let dir = TempDir::new("big");
    dir.write("rules.yaml", RULE);
    dir.write("big.yaml", vec![b'#'; 4 * 1024 * 1024 + 1]);
    assert_eq!(
        errors(&dir),
        vec![
            "DIR/big.yaml:1:1: error: file is too large (4194305 bytes, expected at most 4194304)"
        ]
    );
}

#[test]
fn invalid_utf8_is_reported_at_its_byte() {
    let dir = TempDir::new("utf8");
    let mut bytes = RULE.as_bytes().to_vec();
    // Line 2 is `  - name: R`: break the R.
    let at = RULE.find("R\n").unwrap();
    bytes[at] = 0xff;
    dir.write("rules.yaml", bytes);
    assert_eq!(
        errors(&dir),
        vec!["DIR/rules.yaml:2:11: error: invalid UTF-8: byte 0xff (expected UTF-8 text)"]
    );
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let dir = TempDir::new("bom");
    dir.write("rules.yaml", format!("\u{feff}{RULE}"));
    let (config, _) = firebell_engine::load(dir.path()).unwrap();
    assert_eq!(config.rules.rules.len(), 1);
    assert_eq!(config.notify.receivers.len(), 1);
}

#[test]
fn tests_beside_config_sections_is_an_error_and_test_files_are_skipped() {
    let dir = TempDir::new("tests-key");
    dir.write("rules.yaml", format!("{RULE}tests: []\n"));
    assert_eq!(
        errors(&dir),
        vec![
            "DIR/rules.yaml:10:1: error: `tests` in a config file with config sections (rules, receivers, route): rule unit tests belong in their own file (`tests:` with `config:` or `rule_files:`, run by `firebell test`)"
        ]
    );
    // A test file (no config sections) is still skipped.
    let dir = TempDir::new("test-file");
    dir.write("rules.yaml", RULE);
    dir.write("tests/t.yaml", "config: ..\ntests: []\n");
    let (config, _) = firebell_engine::load(dir.path()).unwrap();
    assert_eq!(config.rules.rules.len(), 1);
    assert_eq!(config.files.len(), 1);
}

#[test]
fn a_test_file_with_a_config_section_is_an_error_naming_only_that_section() {
    let dir = TempDir::new("test-plus-route");
    dir.write("rules.yaml", RULE);
    dir.write(
        "t.yaml",
        "config: .\nrules: [R]\nevaluation_interval: 1m\nreceivers:\n  ops: {topics: [arn:aws:sns:us-east-1:123456789012:ops-topic]}\ntests: []\n",
    );
    assert_eq!(
        errors(&dir),
        vec![
            "DIR/t.yaml:6:1: error: `tests` in a config file with config sections (receivers): rule unit tests belong in their own file (`tests:` with `config:` or `rule_files:`, run by `firebell test`)"
        ]
    );
}
