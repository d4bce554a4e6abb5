//! Opening the configured state store for commands that need one.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use firebell_core::ports::{Clock, StateStore};
use firebell_embedded::{FileStore, SystemClock};

/// Where state lives. Embedded (on-disk) by default.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Directory of the on-disk state store (embedded mode).
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
}

impl StoreArgs {
    pub fn open(&self) -> Result<Arc<dyn StateStore>> {
        let dir = self.state.clone().unwrap_or_else(crate::default_state_dir);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
        let store = FileStore::open(&dir, clock)
            .with_context(|| format!("opening state store {}", dir.display()))?;
        Ok(Arc::new(store))
    }
}
