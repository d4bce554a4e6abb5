//! `firebell routes --config PATH --labels team=payments,severity=page`:
//! which receivers a label set reaches, and the route path that matched.
//! `-o json`: an array of routes (`firebell.route/v1`), in tree order.

use std::process::ExitCode;

use anyhow::Result;

use crate::output::OutputArgs;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub config: crate::ConfigArgs,
    /// The alert's labels: `name=value,name=value` (or `{name="value", ...}`).
    #[arg(long, short)]
    pub labels: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub(crate) fn main(args: &Args) -> Result<ExitCode> {
    let (config, _) = match firebell_engine::load(&args.config.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    let labels = match firebell_notify::parse_label_arg(&args.labels) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: --labels {:?}: {e}", args.labels);
            return Ok(ExitCode::from(2));
        }
    };
    if args.output.json() {
        let routes = firebell_notify::route(&config.notify, &labels);
        crate::json::print(&serde_json::Value::Array(
            routes
                .iter()
                .map(|m| crate::json::route(m, &labels))
                .collect(),
        ));
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", firebell_notify::explain(&config.notify, &labels));
    Ok(ExitCode::SUCCESS)
}
