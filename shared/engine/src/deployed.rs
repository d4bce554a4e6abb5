//! The deployed config a function runs: fetched from a [`ConfigSource`]
//! (AWS AppConfig) between cycles, never during one.
//!
//! - **Cold start** ([`Deployed::start`]): the deployed config if it can be
//!   fetched and loaded; else the last good one kept in the store
//!   ([`crate::bundle::load_good`]); else, and whenever nothing is deployed
//!   (a first deploy before any `firebell push`, or a first push rolled
//!   back), the bundled config.
//! - **Between cycles** ([`Deployed::refresh`]): at most one poll (the
//!   source keeps to its poll interval). A new config that loads (and
//!   whose topics the function may publish to) is switched to and kept as
//!   the last good one; one that does not load keeps the running config
//!   and sets [`Deployed::problem`] until a later version loads: the
//!   binary hands it to [`crate::Engine::set_config_problem`], which pages
//!   ops (`FirebellUnhealthy`, `check=config`). Fetching that fails
//!   [`FETCH_FAILURES`] polls in a row is a problem too, cleared by the
//!   next successful poll.
//! - **After a rollout settles** (its deployment time and bake, the
//!   `settle` of [`Deployed::with_settle`]): one poll as a new client
//!   would make. A deployment rolled back during its bake serves the
//!   previous version again, which an ordinary poll returns; but a first
//!   deployment rolled back leaves nothing deployed, which only a new
//!   session can tell: the function then returns to the bundled config and
//!   forgets the last good one.

use std::sync::{Arc, Mutex};

use firebell_core::ports::{ConfigPoll, ConfigSource, StateStore};
use firebell_core::series::Epoch;

use crate::bundle::{self, Bundle};
use crate::config::Config;

/// Failed polls in a row before fetching is a problem.
pub const FETCH_FAILURES: u32 = 3;
/// Errors of a config that did not load, quoted in the problem.
const QUOTED_ERRORS: usize = 5;
/// The default settle time: AppConfig's default bake (10 minutes) and a
/// minute.
pub const DEFAULT_SETTLE_SECS: Epoch = 11 * 60;

/// Loads the config bundled with the function.
pub type Bundled = Box<dyn Fn() -> Result<Config, String> + Send + Sync>;

/// The bundled config in directory `dir` (the error names the directory).
pub fn bundled_from(dir: std::path::PathBuf) -> Bundled {
    Box::new(move || {
        crate::load(&dir)
            .map(|(config, _)| config)
            .map_err(|e| format!("loading the bundled config from {}: {e}", dir.display()))
    })
}

/// Where the running config came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Deployed (with the deployment's label, if any).
    Deployed { label: Option<String> },
    /// The last good deployed config kept in the store.
    LastGood,
    /// The config bundled with the function.
    Bundled,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Deployed { label: Some(l) } => write!(f, "deployed ({l})"),
            Origin::Deployed { label: None } => f.write_str("deployed"),
            Origin::LastGood => f.write_str("last good (kept in the store)"),
            Origin::Bundled => f.write_str("bundled"),
        }
    }
}

/// A config to run, and where it came from.
#[derive(Debug)]
pub struct Running {
    pub config: Config,
    pub origin: Origin,
    /// What went wrong on the way (for the log): fetch or load failures,
    /// a failed write of the last good bundle.
    pub notes: Vec<String>,
}

/// What [`Deployed::refresh`] decided.
#[derive(Debug)]
pub enum Refresh {
    /// Keep the running config.
    Keep { notes: Vec<String> },
    /// Switch to this one before the next cycle.
    Switch(Box<Running>),
}

#[derive(Debug, Default)]
struct State {
    /// Why the newest deployed config did not load.
    load_problem: Option<String>,
    fetch_failures: u32,
    last_fetch_error: String,
    /// The last poll answered "nothing new": on a session's first poll,
    /// nothing is deployed.
    unchanged: bool,
    /// The running config's version, and whether it was deployed (not
    /// bundled).
    running: Option<(String, bool)>,
    /// When to poll as a new client (a rollout has settled).
    verify_at: Option<Epoch>,
}

/// The deployed config of one function process.
pub struct Deployed {
    source: Arc<dyn ConfigSource>,
    store: Arc<dyn StateStore>,
    allowed_topics: Option<Vec<String>>,
    bundled: Bundled,
    settle_secs: Epoch,
    keeps_good: bool,
    state: Mutex<State>,
}

impl std::fmt::Debug for Deployed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployed")
            .field("source", &self.source)
            .field("allowed_topics", &self.allowed_topics)
            .field("settle_secs", &self.settle_secs)
            .field("keeps_good", &self.keeps_good)
            .finish_non_exhaustive()
    }
}

impl Deployed {
    /// `allowed_topics`: the topics the function may publish to; a deployed
    /// config naming another does not load (`None`: not checked).
    /// `bundled`: the fallback.
    pub fn new(
        source: Arc<dyn ConfigSource>,
        store: Arc<dyn StateStore>,
        allowed_topics: Option<Vec<String>>,
        bundled: Bundled,
    ) -> Deployed {
        Deployed {
            source,
            store,
            allowed_topics,
            bundled,
            settle_secs: DEFAULT_SETTLE_SECS,
            keeps_good: true,
            state: Mutex::new(State::default()),
        }
    }

    /// How long after switching to a deployed config a rollback can still
    /// come (the strategy's deployment time and bake, and a minute).
    pub fn with_settle(mut self, secs: Epoch) -> Deployed {
        self.settle_secs = secs.max(0);
        self
    }

    /// Reads the last good config but never writes it (a function whose
    /// role may only read the store: the reporter).
    pub fn read_only(mut self) -> Deployed {
        self.keeps_good = false;
        self
    }

    /// The problem to report while it lasts: the newest deployed config did
    /// not load, or fetching failed [`FETCH_FAILURES`] times in a row.
    pub fn problem(&self) -> Option<String> {
        let s = self.state.lock().ok()?;
        if let Some(p) = &s.load_problem {
            return Some(p.clone());
        }
        (s.fetch_failures >= FETCH_FAILURES).then(|| {
            format!(
                "fetching the deployed config failed {} times in a row: {}",
                s.fetch_failures, s.last_fetch_error
            )
        })
    }

    /// The config a cold start runs: the deployed one; else, when it could
    /// not be fetched or loaded, the last good one in the store; else (and
    /// when nothing is deployed: a new stack, or its first push rolled
    /// back) the bundled one.
    pub async fn start(&self, now: Epoch) -> Result<Running, String> {
        let mut notes = Vec::new();
        match self.refresh(now).await {
            Refresh::Switch(running) => return Ok(*running),
            Refresh::Keep { notes: n } => notes.extend(n),
        }
        let nothing_deployed = self.state.lock().is_ok_and(|s| s.unchanged);
        let good = if nothing_deployed {
            Ok(None)
        } else {
            bundle::load_good(self.store.as_ref()).await
        };
        match good {
            Ok(Some((bundle, _))) => match self.load(&bundle) {
                Ok(config) => {
                    let version = config.version.clone();
                    self.with_state(|s| s.running = Some((version, true)));
                    return Ok(Running {
                        config,
                        origin: Origin::LastGood,
                        notes,
                    });
                }
                Err(e) => notes.push(format!("the last good config no longer loads: {e}")),
            },
            Ok(None) => {}
            Err(e) => notes.push(format!("reading the last good config: {e}")),
        }
        let config = (self.bundled)()?;
        let version = config.version.clone();
        self.with_state(|s| s.running = Some((version, false)));
        Ok(Running {
            config,
            origin: Origin::Bundled,
            notes,
        })
    }

    /// Polls once (if due) and decides whether to switch.
    pub async fn refresh(&self, now: Epoch) -> Refresh {
        let fresh = self
            .state
            .lock()
            .is_ok_and(|s| s.verify_at.is_some_and(|t| now >= t));
        let polled = self.source.poll(now, fresh).await;
        let mut notes = Vec::new();
        let (content, label) = match polled {
            Ok(ConfigPoll::NotDue) => return Refresh::Keep { notes },
            Ok(ConfigPoll::Unchanged) => {
                let mut back_to_bundled = false;
                self.with_state(|s| {
                    s.fetch_failures = 0;
                    s.unchanged = true;
                    if fresh {
                        s.verify_at = None;
                        back_to_bundled = s.running.as_ref().is_some_and(|(_, d)| *d);
                    }
                });
                if back_to_bundled {
                    return self.back_to_bundled(notes).await;
                }
                return Refresh::Keep { notes };
            }
            Ok(ConfigPoll::New { content, label }) => {
                self.with_state(|s| {
                    s.fetch_failures = 0;
                    s.unchanged = false;
                    if fresh {
                        s.verify_at = None;
                    }
                });
                (content, label)
            }
            Err(e) => {
                notes.push(format!("fetching the deployed config: {e}"));
                self.with_state(|s| {
                    s.unchanged = false;
                    s.fetch_failures = s.fetch_failures.saturating_add(1);
                    s.last_fetch_error = e.message.clone();
                });
                return Refresh::Keep { notes };
            }
        };
        let shown = label
            .as_deref()
            .map(|l| format!(" {l}"))
            .unwrap_or_default();
        let bundle = match Bundle::from_json(&content) {
            Ok(b) => b,
            Err(e) => {
                let p = format!("the deployed config{shown} is not usable: {e}");
                notes.push(p.clone());
                self.with_state(|s| s.load_problem = Some(p));
                return Refresh::Keep { notes };
            }
        };
        let config = match self.load(&bundle) {
            Ok(config) => config,
            Err(e) => {
                let p = format!("the deployed config{shown} did not load: {e}");
                notes.push(p.clone());
                self.with_state(|s| s.load_problem = Some(p));
                return Refresh::Keep { notes };
            }
        };
        let same = self.state.lock().is_ok_and(|s| {
            s.running
                .as_ref()
                .is_some_and(|(v, d)| *d && *v == config.version)
        });
        self.with_state(|s| {
            s.load_problem = None;
            s.running = Some((config.version.clone(), true));
            // After a new rollout, look again once it has settled.
            if !same {
                s.verify_at = Some(now + self.settle_secs);
            }
        });
        if same {
            // (A new session's first answer: what already runs.)
            return Refresh::Keep { notes };
        }
        if self.keeps_good
            && let Err(e) =
                bundle::save_good(self.store.as_ref(), &bundle, &config.version, now).await
        {
            notes.push(format!("keeping the last good config: {e}"));
        }
        Refresh::Switch(Box::new(Running {
            config,
            origin: Origin::Deployed { label },
            notes,
        }))
    }

    /// Nothing is deployed any more (a first deployment rolled back): the
    /// bundled config, and the last good one forgotten (it was rolled back).
    async fn back_to_bundled(&self, mut notes: Vec<String>) -> Refresh {
        if self.keeps_good
            && let Err(e) = bundle::forget_good(self.store.as_ref()).await
        {
            notes.push(format!("forgetting the last good config: {e}"));
        }
        match (self.bundled)() {
            Ok(config) => {
                let version = config.version.clone();
                self.with_state(|s| s.running = Some((version, false)));
                notes.push(
                    "nothing is deployed any more (the deployment was rolled back): back to the bundled config"
                        .to_string(),
                );
                Refresh::Switch(Box::new(Running {
                    config,
                    origin: Origin::Bundled,
                    notes,
                }))
            }
            Err(e) => {
                notes.push(format!("nothing is deployed any more, but {e}"));
                Refresh::Keep { notes }
            }
        }
    }

    fn with_state(&self, f: impl FnOnce(&mut State)) {
        if let Ok(mut s) = self.state.lock() {
            f(&mut s);
        }
    }

    /// Loads a bundle as the function would run it: every loader check, and
    /// the topics against the allowed ones. The error quotes the first
    /// errors, one line.
    fn load(&self, bundle: &Bundle) -> Result<Config, String> {
        let config = match bundle.load() {
            Ok((config, _)) => config,
            Err(e) => {
                let errors: Vec<String> = e.0.errors().map(ToString::to_string).collect();
                let more = (e.0.errors().count() + e.0.omitted).saturating_sub(QUOTED_ERRORS);
                let mut s = errors
                    .into_iter()
                    .take(QUOTED_ERRORS)
                    .collect::<Vec<_>>()
                    .join("; ");
                if more > 0 {
                    s.push_str(&format!("; ... and {more} more"));
                }
                return Err(s);
            }
        };
        if let Some(allowed) = &self.allowed_topics {
            let outside: Vec<String> =
                firebell_notify::arn::outside(&config.notify.topic_refs, allowed)
                    .into_iter()
                    .map(|r| format!("{}: receiver {:?}: topic {}", r.origin, r.receiver, r.topic))
                    .collect();
            if !outside.is_empty() {
                return Err(format!(
                    "topics this function may not publish to: {}",
                    outside.join("; ")
                ));
            }
        }
        Ok(config)
    }
}
