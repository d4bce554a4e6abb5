//! `firebell routes --config PATH --labels team=payments,severity=page`:
//! which receivers a label set reaches, and the route path that matched.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Config file or directory.
    #[arg(long, short)]
    pub config: PathBuf,
    /// The alert's labels: `name=value,name=value` (or `{name="value", ...}`).
    #[arg(long, short)]
    pub labels: String,
}

pub(crate) fn main(args: &Args) -> Result<ExitCode> {
    let (config, _) = match firebell_engine::load(&args.config) {
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
    print!("{}", firebell_notify::explain(&config.notify, &labels));
    Ok(ExitCode::SUCCESS)
}
