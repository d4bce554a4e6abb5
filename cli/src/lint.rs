//! `firebell lint PATH`: rules that load fine but are likely to page badly
//! (see `firebell_tools::lint`). Warnings by default; with `--strict` they
//! are errors and the exit status is 1.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use firebell_core::diag::Severity;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A config file or directory (every *.yaml / *.yml below it).
    pub path: PathBuf,
    /// Report findings as errors and exit 1 if there are any.
    #[arg(long)]
    pub strict: bool,
}

pub(crate) fn main(args: &Args) -> Result<ExitCode> {
    let config = match firebell_engine::load(&args.path) {
        Ok((config, _)) => config,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    let mut found = firebell_tools::lint::lint(&config);
    if args.strict {
        for d in &mut found.list {
            d.severity = Severity::Error;
        }
    }
    for d in &found.list {
        println!("{d}");
    }
    let n = found.list.len();
    let rules = config.rules.rules.len();
    if n == 0 {
        println!("ok: {rules} rule(s), nothing to report");
        return Ok(ExitCode::SUCCESS);
    }
    let what = if args.strict { "error" } else { "warning" };
    println!(
        "{n} {what}{} in {rules} rule(s)",
        if n == 1 { "" } else { "s" }
    );
    Ok(if args.strict {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
