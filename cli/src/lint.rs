//! `firebell lint [PATH | --config DIR]`: rules that load fine but are
//! likely to page badly (see `firebell_tools::lint`). Warnings by default;
//! with `--strict` they are errors and the exit status is 1. `-o json`: one
//! array of diagnostics (`firebell.diagnostic/v1`).

use std::process::ExitCode;

use anyhow::Result;
use firebell_core::diag::Severity;

use crate::output::OutputArgs;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub config: crate::ConfigPathArgs,
    /// Report findings as errors and exit 1 if there are any.
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub(crate) fn main(args: &Args) -> Result<ExitCode> {
    let json = args.output.json();
    let config = match firebell_engine::load(args.config.path()?) {
        Ok((config, _)) => config,
        Err(e) => {
            if json {
                crate::validate::print_json(&e.0.list);
            } else {
                eprintln!("{e}");
            }
            return Ok(ExitCode::from(1));
        }
    };
    let mut found = firebell_tools::lint::lint(&config);
    if args.strict {
        for d in &mut found.list {
            d.severity = Severity::Error;
        }
    }
    let n = found.list.len();
    let code = if args.strict && n > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    if json {
        crate::validate::print_json(&found.list);
        return Ok(code);
    }
    for d in &found.list {
        println!("{d}");
    }
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
    Ok(code)
}
