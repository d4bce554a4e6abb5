//! `firebell silence add|list|expire` against the configured store.
//! `-o json`: `add` and `expire` print the silence, `list` an array of them
//! (`firebell.silence/v1`).
//!
//! Reading never creates state: `list` and `expire` on an embedded store
//! whose directory does not exist report no silences (or none to expire)
//! without creating `.firebell/state`.

use std::process::ExitCode;

use anyhow::Result;
use firebell_notify::{SilenceSpec, add_silence, expire_silence, list_silences};

use crate::backend::{Backend, StoreArgs};
use crate::output::OutputArgs;
use crate::timefmt::{parse, rfc3339};

/// Where silences were read: `.firebell/state (embedded)`, `DynamoDB table T`.
fn store_name(store: &StoreArgs) -> String {
    match store.backend {
        Backend::Embedded => format!("{} (embedded)", store.state_dir().display()),
        Backend::Aws => match store.table_name() {
            Ok(t) => format!("DynamoDB table {t}"),
            Err(_) => "DynamoDB".to_string(),
        },
    }
}

/// An embedded store that was never written: nothing to read, and opening
/// it would create its directory.
fn never_written(store: &StoreArgs) -> bool {
    store.backend == Backend::Embedded && !store.state_dir().exists()
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Action {
    /// Mute alerts matching every matcher, for a while.
    Add {
        /// Config file or directory (for the silence policy, e.g. the maximum
        /// duration). Default: $FIREBELL_CONFIG.
        #[arg(long, short, env = crate::CONFIG_ENV, value_name = "DIR")]
        config: std::path::PathBuf,
        /// A matcher such as `team="payments"` or `alertname=~"Checkout.*"`, or several
        /// (`{team="payments", env!="dev"}`); repeat for more.
        #[arg(long = "matcher", short = 'm', required = true)]
        matchers: Vec<String>,
        /// How long, e.g. `2h`.
        #[arg(long, default_value = "1h")]
        duration: String,
        /// Start time (RFC 3339); default now.
        #[arg(long)]
        starts_at: Option<String>,
        /// Who creates the silence (required).
        #[arg(long)]
        created_by: String,
        /// Why (required).
        #[arg(long)]
        comment: String,
        /// Accept matchers that match every alert (e.g. `alertname=~".+"`);
        /// the comment says why.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// List silences with their state.
    List {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// End a silence now.
    Expire {
        id: String,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
}

pub(crate) fn main(args: Args) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let now = jiff::Timestamp::now().as_second();
    rt.block_on(async {
        match args.action {
            Action::Add {
                config,
                matchers,
                duration,
                starts_at,
                created_by,
                comment,
                force,
                store,
                output,
            } => {
                let (cfg, _) = match firebell_engine::load(&config) {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("{e}");
                        return Ok(ExitCode::from(1));
                    }
                };
                let Some(d) = firebell_core::decode::parse_duration(&duration) else {
                    eprintln!(
                        "error: --duration {duration:?}: expected a duration such as 30m or 2h"
                    );
                    return Ok(ExitCode::from(2));
                };
                let starts_at = starts_at.as_deref().map(parse).transpose()?;
                let start = starts_at.unwrap_or(now);
                let spec = SilenceSpec {
                    matchers,
                    starts_at,
                    ends_at: start + d.as_secs() as i64,
                    created_by,
                    comment,
                    force,
                };
                let store = store.open().await?;
                match add_silence(store.as_ref(), &cfg.notify.silence_policy, now, spec).await {
                    Ok(s) if output.json() => {
                        let state = s.state(now);
                        crate::json::print(&crate::json::silence(&firebell_notify::SilenceView {
                            silence: s,
                            state,
                        }));
                        Ok(ExitCode::SUCCESS)
                    }
                    Ok(s) => {
                        println!(
                            "silence {} added: {} until {}",
                            s.id,
                            s.matchers
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(", "),
                            rfc3339(s.ends_at)
                        );
                        Ok(ExitCode::SUCCESS)
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        Ok(ExitCode::from(1))
                    }
                }
            }
            Action::List { store, output } => {
                let name = store_name(&store);
                let list = if never_written(&store) {
                    store.check()?;
                    Vec::new()
                } else {
                    let store = store.open().await?;
                    list_silences(store.as_ref(), now).await?
                };
                if output.json() {
                    crate::json::print(&serde_json::Value::Array(
                        list.iter().map(crate::json::silence).collect(),
                    ));
                    return Ok(ExitCode::SUCCESS);
                }
                if list.is_empty() {
                    println!("no silences in {name}");
                } else {
                    println!(
                        "{} silence{} in {name}",
                        list.len(),
                        if list.len() == 1 { "" } else { "s" }
                    );
                }
                for v in list {
                    let s = &v.silence;
                    println!(
                        "{}  {:<8} {} -> {}  by {}: {}  [{}]",
                        s.id,
                        v.state.as_str(),
                        rfc3339(s.starts_at),
                        rfc3339(s.ends_at),
                        s.created_by,
                        s.comment,
                        s.matchers
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            Action::Expire { id, store, output } => {
                if never_written(&store) {
                    store.check()?;
                    eprintln!(
                        "error: no silence with id \"{id}\" in {}",
                        store_name(&store)
                    );
                    return Ok(ExitCode::from(1));
                }
                let store = store.open().await?;
                match expire_silence(store.as_ref(), now, &id).await {
                    Ok(s) if output.json() => {
                        let state = s.state(now);
                        crate::json::print(&crate::json::silence(&firebell_notify::SilenceView {
                            silence: s,
                            state,
                        }));
                        Ok(ExitCode::SUCCESS)
                    }
                    Ok(s) => {
                        println!("silence {} expired at {}", s.id, rfc3339(s.ends_at));
                        Ok(ExitCode::SUCCESS)
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        Ok(ExitCode::from(1))
                    }
                }
            }
        }
    })
}
