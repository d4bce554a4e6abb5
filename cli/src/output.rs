//! The one output contract: every command takes `--output text|json`
//! (`-o`). JSON documents follow the versioned schemas published under
//! `docs/schemas/` (`firebell.<entity>/v1`), checked by `cli/tests/schemas.rs`.

/// How a command writes its results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// For people.
    #[default]
    Text,
    /// One JSON document (or, for streams, one JSON object per line),
    /// following the published schemas.
    Json,
}

/// `--output text|json` (`-o`), flattened into every command's arguments.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub(crate) struct OutputArgs {
    /// Output format: `text` for people, `json` for machines (schemas under docs/schemas/).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

impl OutputArgs {
    pub(crate) fn json(&self) -> bool {
        self.output == Format::Json
    }
}

/// Checks up front that an `--html FILE` can be written (creating it), so a
/// bad path fails before a long backtest or fetch, not after it.
pub(crate) fn check_html_target(path: Option<&std::path::Path>) -> anyhow::Result<()> {
    if let Some(path) = path {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| anyhow::anyhow!("--html {}: {e}", path.display()))?;
    }
    Ok(())
}
