//! The `firebell` command. Thin: parses arguments and hands off to the
//! library crates; each subcommand lives in its own module.

mod backend;
mod backtest;
mod bundled;
mod cost;
mod demo;
mod lint;
mod output;
mod report;
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
    /// The noise report: pages, out-of-hours pages, flaps, toast and the noisiest rules per team.
    Report(report::Args),
}

/// A closed pipe on stdout (`firebell demo --json | head -1`) ends the
/// command quietly with exit code 0: the reader has what it wanted. Any
/// other panic keeps Rust's default report.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_closed_pipe();
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
        Command::Report(a) => report::main(&a),
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
