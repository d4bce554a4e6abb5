//! `firebell test FILE...`: rule unit tests (see `firebell_tools::unittest`
//! and the commented examples in `examples/tests/`).
//!
//! Every test file is decoded first and every mistake of every file is
//! reported at once (file:line:column); the files that decode run through
//! the engine. Prints a line per test, a diff per failed check, and
//! `N passed, M failed`. Exit 0 when everything passed, 1 otherwise.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use firebell_core::diag::Diagnostics;
use firebell_tools::unittest;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Test files, or directories whose YAML test files (top-level `tests:`) to run.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// The test files named: files as given, directories searched for YAML
/// files that are test files.
fn expand(paths: &[PathBuf], diags: &mut Diagnostics) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if !p.is_dir() {
            out.push(p.clone());
            continue;
        }
        match firebell_engine::config_files(p) {
            Ok(files) => {
                out.extend(files.into_iter().filter(|f| {
                    std::fs::read_to_string(f).is_ok_and(|t| unittest::is_test_file(&t))
                }))
            }
            Err(e) => diags.error(&p.display().to_string(), 1, 1, e),
        }
    }
    out
}

pub(crate) fn main(args: &Args) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut diags = Diagnostics::new();
    let files = expand(&args.files, &mut diags);
    let mut loaded = Vec::new();
    let mut broken = 0;
    for f in &files {
        let before = diags.errors().count();
        match unittest::load(Path::new(f), &mut diags) {
            Some(ok) => loaded.push(ok),
            None if diags.errors().count() > before => broken += 1,
            None => {}
        }
    }
    if files.is_empty() && !diags.has_errors() {
        diags.error(
            &args
                .files
                .first()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            1,
            1,
            "no test files (YAML files with a top-level `tests:`) found",
        );
        broken += 1;
    }
    if diags.has_errors() {
        diags.sort();
        for d in diags.errors() {
            eprintln!("{d}");
        }
        let n = diags.errors().count();
        eprintln!("{n} error{} in test files\n", if n == 1 { "" } else { "s" });
    }
    let (mut passed, mut failed) = (0, 0);
    for (tf, config) in &loaded {
        let result = rt.block_on(unittest::run(tf, config.clone()));
        print!("{}", result.render());
        passed += result.passed();
        failed += result.failed();
    }
    let unloaded = if broken > 0 {
        format!(
            ", {broken} file{} not run (errors above)",
            if broken == 1 { "" } else { "s" }
        )
    } else {
        String::new()
    };
    println!("{passed} passed, {failed} failed{unloaded}");
    Ok(if failed == 0 && broken == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
