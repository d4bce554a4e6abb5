//! `firebell validate PATH`: every error of every file at once, exit 1 on any;
//! then the lint warnings (`firebell lint`), errors with `--strict`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A config file or directory (every *.yaml / *.yml below it).
    pub path: PathBuf,
    /// Treat warnings as errors.
    #[arg(long)]
    pub strict: bool,
}

pub(crate) fn main(args: &Args) -> Result<ExitCode> {
    match firebell_engine::load(&args.path) {
        Ok((config, mut warnings)) => {
            warnings.extend(firebell_tools::lint::lint(&config));
            for w in warnings.warnings() {
                eprintln!("{w}");
            }
            let n_warn = warnings.warnings().count();
            if args.strict && n_warn > 0 {
                eprintln!("{n_warn} warning(s) (errors with --strict)");
                return Ok(ExitCode::from(1));
            }
            println!(
                "ok: {} file(s), {} rule(s), {} receiver(s){}",
                config.files.len(),
                config.rules.rules.len(),
                config.notify.receivers.len(),
                if n_warn > 0 {
                    format!(", {n_warn} warning(s)")
                } else {
                    String::new()
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::from(1))
        }
    }
}
