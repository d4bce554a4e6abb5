//! `firebell test FILE...`: rule unit tests (see `firebell_tools::unittest`
//! and the commented examples in `examples/tests/`).
//!
//! Every test file is decoded first and every mistake of every file is
//! reported at once (file:line:column); the files that decode run through
//! the engine. Prints a line per test, a diff per failed check, and
//! `N passed, M failed`. Exit 0 when everything passed, 1 otherwise.
//!
//! `-o json`: one array of diagnostics (`firebell.diagnostic/v1`): the test
//! files' errors and every failed check (with its test and diff).
//! `--html FILE`: also a self-contained HTML page (`firebell_tools::html::test_page`).
//! `--junit FILE`: also a JUnit XML report for CI systems, one testsuite per
//! file and one testcase per test (a file that cannot be run is a testsuite
//! with one errored testcase).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use firebell_core::diag::{Diagnostic, Diagnostics, Severity};
use firebell_tools::unittest::{self, FileResult};

use crate::output::OutputArgs;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Test files, or directories whose YAML test files (top-level `tests:`) to run.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Also write a JUnit XML report to this file (for CI systems).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write a self-contained HTML report to this file: the failing
    /// tests first, each check, and a chart per rule instance of each test.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
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
    crate::output::check_html_target(args.html.as_deref())?;
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
    let json = args.output.json();
    diags.sort();
    if diags.has_errors() && !json {
        for d in diags.errors() {
            eprintln!("{d}");
        }
        let n = diags.errors().count();
        eprintln!("{n} error{} in test files\n", if n == 1 { "" } else { "s" });
    }
    let (mut passed, mut failed) = (0, 0);
    let mut results = Vec::new();
    for (tf, config) in &loaded {
        let result = if args.html.is_some() {
            rt.block_on(unittest::run_charted(tf, config.clone()))
        } else {
            rt.block_on(unittest::run(tf, config.clone()))
        };
        if !json {
            print!("{}", result.render());
        }
        passed += result.passed();
        failed += result.failed();
        results.push(result);
    }
    if let Some(path) = &args.html {
        let runs: Vec<firebell_tools::html::TestRun<'_>> = loaded
            .iter()
            .zip(&results)
            .map(|((file, config), result)| firebell_tools::html::TestRun {
                file,
                config,
                result,
            })
            .collect();
        let page =
            firebell_tools::html::test_page(&runs, concat!("firebell ", env!("CARGO_PKG_VERSION")));
        std::fs::write(path, page).with_context(|| format!("writing {}", path.display()))?;
        if !json {
            eprintln!("wrote {}", path.display());
        }
    }
    if let Some(path) = &args.junit {
        let errors: Vec<&Diagnostic> = diags.errors().collect();
        std::fs::write(path, junit(&results, &errors))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let code = if failed == 0 && broken == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    if json {
        let mut list: Vec<serde_json::Value> =
            diags.errors().map(crate::json::diagnostic).collect();
        list.extend(results.iter().flat_map(failures));
        crate::json::print(&serde_json::Value::Array(list));
        return Ok(code);
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
    Ok(code)
}

/// Every failed check of a file as a diagnostic, with its test and diff.
fn failures(r: &FileResult) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for g in &r.groups {
        for c in g.checks.iter().filter(|c| !c.passed) {
            let mut v = crate::json::diagnostic(&Diagnostic {
                file: r.file.clone(),
                line: c.pos.line,
                column: c.pos.column,
                severity: Severity::Error,
                code: String::new(),
                message: format!("{}: {}", g.name, c.title),
            });
            if let Some(o) = v.as_object_mut() {
                o.insert("test".into(), g.name.clone().into());
                o.insert("diff".into(), c.diff.clone().into());
            }
            out.push(v);
        }
    }
    out
}

/// Text as XML character data or an attribute value: markup escaped, and
/// the characters XML 1.0 cannot hold at all (most C0 controls, lone
/// surrogates cannot occur in a `str`, U+FFFE/U+FFFF) as U+FFFD.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The JUnit XML report: one testsuite per test file, one testcase per test
/// (failed when any of its checks failed, the failure holding every failed
/// check with its diff); a test file with errors is a testsuite whose one
/// testcase errored with them.
pub(crate) fn junit(results: &[FileResult], errors: &[&Diagnostic]) -> String {
    use std::fmt::Write as _;
    let mut broken: Vec<(&str, Vec<&Diagnostic>)> = Vec::new();
    for d in errors {
        match broken.iter_mut().find(|(f, _)| *f == d.file) {
            Some((_, list)) => list.push(d),
            None => broken.push((&d.file, vec![d])),
        }
    }
    let tests: usize = results.iter().map(|r| r.groups.len()).sum::<usize>() + broken.len();
    let failures: usize = results
        .iter()
        .map(|r| r.groups.iter().filter(|g| !g.passed()).count())
        .sum();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"firebell test\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{}\">",
        broken.len()
    );
    for r in results {
        let file = xml_escape(&r.file);
        let failed = r.groups.iter().filter(|g| !g.passed()).count();
        let _ = writeln!(
            s,
            "  <testsuite name=\"{file}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\">",
            r.groups.len()
        );
        for g in &r.groups {
            let _ = write!(
                s,
                "    <testcase name=\"{}\" classname=\"{file}\" file=\"{file}\" line=\"{}\"",
                xml_escape(&g.name),
                g.pos.line
            );
            let bad: Vec<_> = g.checks.iter().filter(|c| !c.passed).collect();
            if bad.is_empty() && g.errors.is_empty() {
                s.push_str("/>\n");
                continue;
            }
            s.push_str(">\n");
            if !bad.is_empty() {
                let mut text = String::new();
                for c in &bad {
                    let _ = writeln!(
                        text,
                        "{}:{}:{}: {}\nexpected (-) vs got (+):",
                        r.file, c.pos.line, c.pos.column, c.title
                    );
                    for line in &c.diff {
                        let _ = writeln!(text, "{line}");
                    }
                }
                let _ = writeln!(
                    s,
                    "      <failure message=\"{} of {} checks failed\">{}</failure>",
                    bad.len(),
                    g.checks.len(),
                    xml_escape(&text)
                );
            }
            if !g.errors.is_empty() {
                let _ = writeln!(
                    s,
                    "      <system-err>{}</system-err>",
                    xml_escape(&(g.errors.join("\n") + "\n"))
                );
            }
            s.push_str("    </testcase>\n");
        }
        s.push_str("  </testsuite>\n");
    }
    for (file, list) in &broken {
        let file = xml_escape(file);
        let text: String = list.iter().map(|d| format!("{d}\n")).collect();
        let _ = writeln!(
            s,
            "  <testsuite name=\"{file}\" tests=\"1\" failures=\"0\" errors=\"1\">\n    <testcase name=\"load\" classname=\"{file}\" file=\"{file}\">\n      <error message=\"{} error{} in the test file\">{}</error>\n    </testcase>\n  </testsuite>",
            list.len(),
            if list.len() == 1 { "" } else { "s" },
            xml_escape(&text)
        );
    }
    s.push_str("</testsuites>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escape_escapes_markup_and_replaces_what_xml_cannot_hold() {
        assert_eq!(
            xml_escape("a<b>&\"c\"'d'\tok\n\u{1}\u{1b}[0m\u{FFFF}é"),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;\tok\n\u{FFFD}\u{FFFD}[0m\u{FFFD}é"
        );
    }

    #[test]
    fn junit_of_no_results_is_an_empty_suite_list() {
        assert_eq!(
            junit(&[], &[]),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"firebell test\" tests=\"0\" failures=\"0\" errors=\"0\">\n</testsuites>\n"
        );
    }
}
