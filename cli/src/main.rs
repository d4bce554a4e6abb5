//! The `firebell` command. Thin: parses arguments and hands off to the
//! library crates; each subcommand lives in its own module.

mod alerts;
mod backend;
mod backtest;
mod bundled;
mod capture;
mod cost;
mod demo;
mod deploy;
mod history;
mod import;
mod json;
mod lint;
mod output;
mod report;
mod routes;
mod run;
mod sentinels;
mod silence;
mod status;
mod test;
mod timefmt;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// `firebell --version`: the version, the git commit and the build date
/// (`cli/build.rs`).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("FIREBELL_GIT_COMMIT"),
    ", built ",
    env!("FIREBELL_BUILD_DATE"),
    ")"
);

/// The environment variable naming the config directory, as the Lambda reads it.
pub(crate) const CONFIG_ENV: &str = "FIREBELL_CONFIG";

/// `--config DIR` (`-c`), default `$FIREBELL_CONFIG`: flattened into every
/// command that reads a config.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ConfigArgs {
    /// Config file or directory (every *.yaml / *.yml below it). Default: $FIREBELL_CONFIG.
    #[arg(long, short, env = CONFIG_ENV, value_name = "DIR")]
    pub config: PathBuf,
}

/// A config path given either as a positional argument (`firebell validate
/// DIR`, kept for compatibility) or as `--config` / `$FIREBELL_CONFIG`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ConfigPathArgs {
    /// A config file or directory (every *.yaml / *.yml below it); the same as
    /// --config, and used over it when both are given.
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// Config file or directory. Default: $FIREBELL_CONFIG.
    #[arg(long, short, env = CONFIG_ENV, value_name = "DIR")]
    pub config: Option<PathBuf>,
}

impl ConfigPathArgs {
    /// The positional path, else `--config`, else `$FIREBELL_CONFIG`.
    pub(crate) fn path(&self) -> anyhow::Result<&std::path::Path> {
        self.path
            .as_deref()
            .or(self.config.as_deref())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no config given: pass a config file or directory (PATH or --config DIR), or set {CONFIG_ENV}"
                )
            })
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "firebell",
    version = VERSION,
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
    /// Record the history of every query a config uses from CloudWatch into a replay file.
    Capture(capture::Args),
    /// Turn existing alerting into firebell config: `import cloudwatch-alarms [--prefix P] [--out DIR]`.
    Import(import::Args),
    /// What fired, resolved and was sent: the store's history (`--since 7d`, matchers, --rule, --receiver).
    History(history::Args),
    /// Is firebell healthy? Recent cycles, lease, outbox backlog, silences, config version; exit 1 when degraded.
    Status(status::Args),
    /// Print a shell completion script: `firebell completions bash > /etc/bash_completion.d/firebell`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// List active alerts (pending, firing, nodata, recently resolved): routes, groups, silences, inhibition.
    Alerts(alerts::Args),
    /// The noise report: pages, out-of-hours pages, flaps, toast and the noisiest rules per team.
    Report(report::Args),
    /// Ship a config to a deployed environment (AppConfig): validate, diff, deploy, follow to the end or rollback.
    Push(deploy::PushArgs),
    /// What a push would change against the deployed config (`--backtest 7d`: and to notifications).
    Diff(deploy::DiffArgs),
    /// The config's SNS topics, comma-joined: the stack's TeamTopicArns parameter.
    Topics(deploy::TopicsArgs),
    /// Sentinel alarms: which rules have one, and `plan` / `apply` them in CloudWatch.
    Sentinels(sentinels::Args),
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
        Command::Capture(a) => capture::main(&a),
        Command::Import(a) => import::main(&a),
        Command::History(a) => history::main(&a),
        Command::Status(a) => status::main(&a),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "firebell",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Alerts(a) => alerts::main(&a),
        Command::Report(a) => report::main(&a),
        Command::Push(a) => deploy::push(&a),
        Command::Diff(a) => deploy::diff(&a),
        Command::Topics(a) => deploy::topics(&a),
        Command::Sentinels(a) => sentinels::main(&a),
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
