//! The `firebell` command. Thin: parses arguments and hands off to the
//! library crates; each subcommand lives in its own module.

mod backend;
mod backtest;
mod bundled;
mod cost;
mod demo;
mod lint;
mod routes;
mod run;
mod silence;
mod test;
mod timefmt;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "firebell",
    version,
    about = "Alert rules as code for services on AWS: evaluate, route, notify.",
    long_about = None
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay a bundled day of two services through the whole loop, offline.
    Demo(demo::Args),
    /// Run evaluation cycles (embedded local mode by default).
    Run(run::Args),
    /// Check config files: strict schema, cross-checks, routing tests.
    Validate(validate::Args),
    /// Warn about rules likely to page badly (no runbook, unrouted, unguarded ratios, ...).
    Lint(lint::Args),
    /// Estimate the monthly AWS cost, per rule and in total, beside CloudWatch alarms.
    Cost(cost::Args),
    /// Show which receivers a label set reaches, and the route that matched.
    Routes(routes::Args),
    /// Add, list or expire silences.
    Silence(silence::Args),
    /// Run rule unit tests: input series in, expected alerts and notifications out.
    Test(test::Args),
    /// Run the whole pipeline over history and report what would have been sent.
    Backtest(backtest::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(a) => demo::main(&a),
        Command::Run(a) => run::main(a),
        Command::Validate(a) => validate::main(&a),
        Command::Lint(a) => lint::main(&a),
        Command::Cost(a) => cost::main(&a),
        Command::Routes(a) => routes::main(&a),
        Command::Silence(a) => silence::main(a),
        Command::Test(a) => test::main(&a),
        Command::Backtest(a) => backtest::main(&a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Where the default on-disk state lives.
pub(crate) fn default_state_dir() -> PathBuf {
    PathBuf::from(".firebell/state")
}
