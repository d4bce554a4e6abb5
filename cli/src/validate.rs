//! `firebell validate [PATH | --config DIR] [--env NAME]`: every error of
//! every file at once, exit 1 on any; then the lint warnings (`firebell
//! lint`), errors with `--strict`. With `--env`, every receiver topic must
//! be one the environment's stack may publish to. `-o json`: one array of
//! diagnostics (`firebell.diagnostic/v1`). The checks are
//! `firebell_tools::validate::check`, which the AppConfig validator Lambda
//! runs too.

use std::process::ExitCode;

use anyhow::Result;
use firebell_core::diag::Diagnostic;
use firebell_tools::validate::{Options, check};

use crate::output::OutputArgs;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub config: crate::ConfigPathArgs,
    /// Treat warnings as errors.
    #[arg(long)]
    pub strict: bool,
    /// Also check the receiver topics against the topics this environment's
    /// stack may publish to (read from AppConfig; see `firebell push`).
    #[command(flatten)]
    pub env: crate::deploy::EnvArgs,
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
    // With --env: the stack's topics, and its validator's strictness.
    let stack = match &args.env.env {
        Some(_) => Some(crate::deploy::runtime()?.block_on(crate::deploy::stack_facts(&args.env))?),
        None => None,
    };
    let opts = Options {
        strict: args.strict || stack.as_ref().is_some_and(|s| s.strict),
        allowed_topics: stack.map(|s| s.topics),
    };
    let checked = check(firebell_engine::load(path), &opts);
    if args.output.json() {
        print_json(&checked.json_list());
    } else {
        eprint!("{}", checked.report());
        if let Some(ok) = checked.summary() {
            println!("{ok}");
        }
    }
    Ok(if checked.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
