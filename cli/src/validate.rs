//! `firebell validate [PATH | --config DIR]`: every error of every file at
//! once, exit 1 on any; then the lint warnings (`firebell lint`), errors
//! with `--strict`. `-o json`: one array of diagnostics (`firebell.diagnostic/v1`).

use std::process::ExitCode;

use anyhow::Result;
use firebell_core::diag::{Diagnostic, Severity};

use crate::output::OutputArgs;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub config: crate::ConfigPathArgs,
    /// Treat warnings as errors.
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Prints diagnostics as one JSON array.
pub(crate) fn print_json(list: &[Diagnostic]) {
    crate::json::print(&serde_json::Value::Array(
        list.iter().map(crate::json::diagnostic).collect(),
    ));
}

pub(crate) fn main(args: &Args) -> Result<ExitCode> {
    let path = args.config.path()?;
    let json = args.output.json();
    match firebell_engine::load(path) {
        Ok((config, mut warnings)) => {
            warnings.extend(firebell_tools::lint::lint(&config));
            let n_warn = warnings.warnings().count();
            let failed = args.strict && n_warn > 0;
            if json {
                let mut list: Vec<Diagnostic> = warnings.warnings().cloned().collect();
                if args.strict {
                    for d in &mut list {
                        d.severity = Severity::Error;
                    }
                }
                print_json(&list);
                return Ok(if failed {
                    ExitCode::from(1)
                } else {
                    ExitCode::SUCCESS
                });
            }
            for w in warnings.warnings() {
                eprintln!("{w}");
            }
            if failed {
                eprintln!("{n_warn} warning(s) (errors with --strict)");
                return Ok(ExitCode::from(1));
            }
            println!(
                "ok: {} file(s), {} rule(s), {} receiver(s){}; config version {}",
                config.files.len(),
                config.rules.rules.len(),
                config.notify.receivers.len(),
                if n_warn > 0 {
                    format!(", {n_warn} warning(s)")
                } else {
                    String::new()
                },
                config.version
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if json {
                print_json(&e.0.list);
            } else {
                eprintln!("{e}");
            }
            Ok(ExitCode::from(1))
        }
    }
}
