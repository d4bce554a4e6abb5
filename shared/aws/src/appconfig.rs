//! AWS AppConfig: where the deployed firebell config lives.
//!
//! - [`DeployedConfigSource`] (data plane, the functions): one configuration
//!   session per process, its token kept across invocations;
//!   `GetLatestConfiguration` at most once per [`DeployedConfigSource::poll`]
//!   and never before the poll interval AppConfig asked for has passed. The
//!   content comes back only when it changed (AppConfig sends an empty body
//!   otherwise): [`ConfigPoll::New`] or [`ConfigPoll::Unchanged`].
//! - [`ConfigAdmin`] (control plane, `firebell push` / `diff` / `validate
//!   --env`): resolve an environment by name, read the deployed version and
//!   the stack's topic list, create a hosted version, start a deployment
//!   with the environment's strategy and follow it.
//!
//! Content is bytes here: what it means (a firebell bundle) is the
//! engine's business.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_appconfig::primitives::Blob;
use aws_sdk_appconfig::types::DeploymentState;
use firebell_core::ports::ConfigPoll;
use firebell_core::series::Epoch;

use crate::SdkConfig;
use crate::error::{Fault, classify};

/// The smallest poll interval AppConfig accepts, in seconds (the functions
/// run a cycle a minute: every cycle may poll).
pub const MIN_POLL_SECS: i32 = 15;

/// The longest a poll may take (both calls, retries included).
pub const POLL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A failed AppConfig call, as one line; whether retrying makes sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppConfigError {
    pub message: String,
    pub retryable: bool,
    /// The resource asked for does not exist.
    pub not_found: bool,
}

impl std::fmt::Display for AppConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AppConfigError {}

impl AppConfigError {
    fn new(message: impl Into<String>) -> AppConfigError {
        AppConfigError {
            message: message.into(),
            retryable: false,
            not_found: false,
        }
    }
}

fn sdk_error<E>(action: &str, e: &aws_sdk_appconfig::error::SdkError<E>) -> AppConfigError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let c = classify(e);
    AppConfigError {
        message: format!("appconfig:{action}: {}", c.message),
        retryable: matches!(c.fault, Fault::Throttled | Fault::Transient),
        not_found: c.code.as_deref() == Some("ResourceNotFoundException"),
    }
}

/// The id of the item named `name` among `(name, id)` pairs.
fn named<'a>(
    mut items: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
    name: &str,
) -> Option<String> {
    items
        .find(|(n, _)| *n == Some(name))
        .and_then(|(_, id)| id.map(str::to_owned))
}

fn not_found(message: String) -> AppConfigError {
    AppConfigError {
        not_found: true,
        ..AppConfigError::new(message)
    }
}

/// Which configuration: identifiers (ids or names) of the application, the
/// environment and the configuration profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIds {
    pub application: String,
    pub environment: String,
    pub profile: String,
}

/// The AppConfig identifiers from `FIREBELL_APPCONFIG_APPLICATION`,
/// `FIREBELL_APPCONFIG_ENVIRONMENT` and `FIREBELL_APPCONFIG_PROFILE`: all
/// three, or none (the bundled config only); some but not all is an error.
pub fn ids_from_env(get: &impl Fn(&str) -> Option<String>) -> Result<Option<ConfigIds>, String> {
    const NAMES: [&str; 3] = [
        "FIREBELL_APPCONFIG_APPLICATION",
        "FIREBELL_APPCONFIG_ENVIRONMENT",
        "FIREBELL_APPCONFIG_PROFILE",
    ];
    let values: Vec<Option<String>> = NAMES
        .iter()
        .map(|k| get(k).filter(|v| !v.trim().is_empty()))
        .collect();
    match &values[..] {
        [Some(a), Some(e), Some(p)] => Ok(Some(ConfigIds {
            application: a.clone(),
            environment: e.clone(),
            profile: p.clone(),
        })),
        [None, None, None] => Ok(None),
        _ => {
            let missing: Vec<&str> = NAMES
                .iter()
                .zip(&values)
                .filter(|(_, v)| v.is_none())
                .map(|(k, _)| *k)
                .collect();
            Err(format!(
                "{} not set: the AppConfig application, environment and profile go together",
                missing.join(", ")
            ))
        }
    }
}

/// How long after a deployment reaches the function it may still roll
/// back, in seconds: `FIREBELL_APPCONFIG_DEPLOY_MINUTES` and
/// `FIREBELL_APPCONFIG_BAKE_MINUTES` (the strategy's deployment time and
/// bake, default 0 and 10) and a minute.
pub fn settle_secs_from_env(get: &impl Fn(&str) -> Option<String>) -> Result<Epoch, String> {
    let minutes = |k: &str, default: Epoch| -> Result<Epoch, String> {
        match get(k).filter(|v| !v.trim().is_empty()) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<Epoch>()
                .ok()
                .filter(|m| (0..=1440).contains(m))
                .ok_or_else(|| format!("{k}={v:?} is not a number of minutes (0 to 1440)")),
        }
    };
    let deploy = minutes("FIREBELL_APPCONFIG_DEPLOY_MINUTES", 0)?;
    let bake = minutes("FIREBELL_APPCONFIG_BAKE_MINUTES", 10)?;
    Ok((deploy + bake + 1) * 60)
}

/// `FIREBELL_ALLOWED_TOPICS`: comma-separated topic ARNs.
pub fn allowed_topics_from_env(get: &impl Fn(&str) -> Option<String>) -> Option<Vec<String>> {
    get("FIREBELL_ALLOWED_TOPICS").map(|raw| firebell_core::text::comma_list(&raw))
}

#[derive(Debug, Default)]
struct Session {
    token: Option<String>,
    next_poll_at: Epoch,
}

/// The deployed configuration, through the AppConfig data plane.
#[derive(Debug)]
pub struct DeployedConfigSource {
    client: aws_sdk_appconfigdata::Client,
    ids: ConfigIds,
    session: tokio::sync::Mutex<Session>,
    calls: AtomicU64,
}

impl DeployedConfigSource {
    pub fn from_sdk_config(sdk: &SdkConfig, ids: ConfigIds) -> DeployedConfigSource {
        DeployedConfigSource {
            client: aws_sdk_appconfigdata::Client::new(sdk),
            ids,
            session: tokio::sync::Mutex::new(Session::default()),
            calls: AtomicU64::new(0),
        }
    }

    /// AppConfig calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Polls for a new configuration as of `now` (Unix seconds): no call
    /// before the poll interval has passed; otherwise one
    /// `GetLatestConfiguration` (preceded, on the first poll or after a
    /// token was refused, by `StartConfigurationSession`). `fresh`: start a
    /// new session whatever the interval (its first answer is the deployed
    /// configuration, or nothing when nothing is deployed). At most
    /// [`POLL_TIMEOUT`]: a slow AppConfig never holds a cycle up.
    pub async fn poll(&self, now: Epoch, fresh: bool) -> Result<ConfigPoll, AppConfigError> {
        match tokio::time::timeout(POLL_TIMEOUT, self.poll_once(now, fresh)).await {
            Ok(result) => result,
            // The session's token went with the abandoned call: the next
            // poll starts a new session.
            Err(_) => Err(AppConfigError {
                retryable: true,
                ..AppConfigError::new(format!(
                    "appconfig: no answer within {} s",
                    POLL_TIMEOUT.as_secs()
                ))
            }),
        }
    }

    async fn poll_once(&self, now: Epoch, fresh: bool) -> Result<ConfigPoll, AppConfigError> {
        let mut session = self.session.lock().await;
        if fresh {
            session.token = None;
        }
        if session.token.is_some() && now < session.next_poll_at {
            return Ok(ConfigPoll::NotDue);
        }
        let token = match session.token.take() {
            Some(t) => t,
            None => {
                self.calls.fetch_add(1, Ordering::Relaxed);
                let out = self
                    .client
                    .start_configuration_session()
                    .application_identifier(&self.ids.application)
                    .environment_identifier(&self.ids.environment)
                    .configuration_profile_identifier(&self.ids.profile)
                    .required_minimum_poll_interval_in_seconds(MIN_POLL_SECS)
                    .send()
                    .await
                    .map_err(|e| sdk_error("StartConfigurationSession", &e))?;
                out.initial_configuration_token()
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        AppConfigError::new("appconfig:StartConfigurationSession returned no token")
                    })?
            }
        };
        self.calls.fetch_add(1, Ordering::Relaxed);
        let out = match self
            .client
            .get_latest_configuration()
            .configuration_token(&token)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                let err = sdk_error("GetLatestConfiguration", &e);
                // A token is good for one call (and expires in 24 hours): a
                // refused one starts a new session next time; after a
                // transient failure the same token is tried again.
                if err.retryable {
                    session.token = Some(token);
                }
                return Err(err);
            }
        };
        session.token = out.next_poll_configuration_token().map(str::to_owned);
        let interval = Epoch::from(out.next_poll_interval_in_seconds().max(MIN_POLL_SECS));
        // A little early: the next cycle (a minute on) must not find it
        // still a second short.
        session.next_poll_at = now + interval - 1;
        let content = out
            .configuration()
            .map(|b| b.as_ref().to_vec())
            .unwrap_or_default();
        if content.is_empty() {
            return Ok(ConfigPoll::Unchanged);
        }
        Ok(ConfigPoll::New {
            content,
            label: out.version_label().map(str::to_owned),
        })
    }
}

#[async_trait::async_trait]
impl firebell_core::ports::ConfigSource for DeployedConfigSource {
    async fn poll(
        &self,
        now: Epoch,
        fresh: bool,
    ) -> Result<ConfigPoll, firebell_core::ports::ConfigSourceError> {
        DeployedConfigSource::poll(self, now, fresh)
            .await
            .map_err(|e| firebell_core::ports::ConfigSourceError {
                message: e.message,
                retryable: e.retryable,
            })
    }
}

/// An environment resolved to ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub application_id: String,
    pub application: String,
    pub environment_id: String,
    pub environment: String,
    pub profile_id: String,
    pub profile: String,
    /// Every profile of the application: name -> id.
    pub profiles: BTreeMap<String, String>,
}

impl Target {
    /// The id of the application's profile `name`.
    pub fn profile_id_of(&self, name: &str) -> Result<&str, AppConfigError> {
        self.profiles.get(name).map(String::as_str).ok_or_else(|| {
            not_found(format!(
                "AppConfig application {:?} has no configuration profile {name:?}",
                self.application
            ))
        })
    }
}

/// A deployment's progress.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentStatus {
    pub number: i32,
    /// The configuration version it deploys.
    pub version: String,
    /// `DEPLOYING`, `BAKING`, `COMPLETE`, `ROLLED_BACK`, `REVERTED`, ...
    pub state: String,
    pub percent: f32,
    /// The event log, oldest first: `<type> (<triggered by>): <description>`.
    pub events: Vec<String>,
}

impl DeploymentStatus {
    /// Whether the deployment is over (completed, rolled back, reverted);
    /// any other state, known or not, is still going.
    pub fn finished(&self) -> bool {
        matches!(self.state.as_str(), "COMPLETE" | "ROLLED_BACK" | "REVERTED")
    }
}

/// The AppConfig control plane.
#[derive(Debug, Clone)]
pub struct ConfigAdmin {
    client: aws_sdk_appconfig::Client,
}

impl ConfigAdmin {
    pub fn from_sdk_config(sdk: &SdkConfig) -> ConfigAdmin {
        ConfigAdmin {
            client: aws_sdk_appconfig::Client::new(sdk),
        }
    }

    /// The ids of application `application`, its environment `environment`
    /// and its profile `profile` (names). Not found: an error naming what
    /// is missing.
    pub async fn resolve(
        &self,
        application: &str,
        environment: &str,
        profile: &str,
    ) -> Result<Target, AppConfigError> {
        let application_id = self.application_id(application).await?;
        let environments = self
            .client
            .list_environments()
            .application_id(&application_id)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error("ListEnvironments", &e))?;
        let environment_id = named(environments.iter().map(|e| (e.name(), e.id())), environment)
            .ok_or_else(|| {
                not_found(format!(
                    "AppConfig application {application:?} has no environment {environment:?}"
                ))
            })?;
        // Every profile at once: the CLI wants the `stack` profile too.
        let all = self
            .client
            .list_configuration_profiles()
            .application_id(&application_id)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error("ListConfigurationProfiles", &e))?;
        let profiles: BTreeMap<String, String> = all
            .iter()
            .filter_map(|p| Some((p.name()?.to_string(), p.id()?.to_string())))
            .collect();
        let mut target = Target {
            application_id,
            application: application.to_string(),
            environment_id,
            environment: environment.to_string(),
            profile_id: String::new(),
            profile: profile.to_string(),
            profiles,
        };
        target.profile_id = target.profile_id_of(profile)?.to_string();
        Ok(target)
    }

    async fn application_id(&self, name: &str) -> Result<String, AppConfigError> {
        let all = self
            .client
            .list_applications()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error("ListApplications", &e))?;
        named(all.iter().map(|a| (a.name(), a.id())), name)
            .ok_or_else(|| not_found(format!("no AppConfig application {name:?}")))
    }

    /// The id of the deployment strategy named `name`.
    pub async fn strategy_id(&self, name: &str) -> Result<String, AppConfigError> {
        let all = self
            .client
            .list_deployment_strategies()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error("ListDeploymentStrategies", &e))?;
        named(all.iter().map(|s| (s.name(), s.id())), name)
            .ok_or_else(|| not_found(format!("no AppConfig deployment strategy {name:?}")))
    }

    /// The environment's deployments of the target's profile, newest first.
    pub async fn deployments(&self, t: &Target) -> Result<Vec<DeploymentStatus>, AppConfigError> {
        let all = self
            .client
            .list_deployments()
            .application_id(&t.application_id)
            .environment_id(&t.environment_id)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error("ListDeployments", &e))?;
        let mut ours: Vec<DeploymentStatus> = all
            .iter()
            .filter(|d| match d.configuration_profile_id() {
                Some(id) => id == t.profile_id,
                None => d.configuration_name() == Some(t.profile.as_str()),
            })
            .map(|d| DeploymentStatus {
                number: d.deployment_number(),
                version: d.configuration_version().unwrap_or_default().to_string(),
                state: d
                    .state()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                percent: d.percentage_complete().unwrap_or(0.0),
                events: Vec::new(),
            })
            .collect();
        ours.sort_by_key(|d| std::cmp::Reverse(d.number));
        Ok(ours)
    }

    /// The deployment the environment serves: the newest that is complete,
    /// baking or deploying (a rolled back or reverted one serves its
    /// predecessor). `None`: nothing deployed yet.
    pub async fn deployed(&self, t: &Target) -> Result<Option<DeploymentStatus>, AppConfigError> {
        Ok(self
            .deployments(t)
            .await?
            .into_iter()
            .find(|d| matches!(d.state.as_str(), "COMPLETE" | "BAKING" | "DEPLOYING")))
    }

    /// A hosted version's content.
    pub async fn hosted_content(
        &self,
        application_id: &str,
        profile_id: &str,
        version: i32,
    ) -> Result<Vec<u8>, AppConfigError> {
        let out = self
            .client
            .get_hosted_configuration_version()
            .application_id(application_id)
            .configuration_profile_id(profile_id)
            .version_number(version)
            .send()
            .await
            .map_err(|e| sdk_error("GetHostedConfigurationVersion", &e))?;
        Ok(out
            .content()
            .map(|b| b.as_ref().to_vec())
            .unwrap_or_default())
    }

    /// The newest hosted version of a profile, with its number.
    pub async fn latest_hosted(
        &self,
        application_id: &str,
        profile_id: &str,
    ) -> Result<Option<(i32, Vec<u8>)>, AppConfigError> {
        let all = self
            .client
            .list_hosted_configuration_versions()
            .application_id(application_id)
            .configuration_profile_id(profile_id)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error("ListHostedConfigurationVersions", &e))?;
        match all.iter().map(|v| v.version_number()).max() {
            None => Ok(None),
            Some(n) => Ok(Some((
                n,
                self.hosted_content(application_id, profile_id, n).await?,
            ))),
        }
    }

    /// Creates a hosted version of the target's profile; its number.
    pub async fn create_version(
        &self,
        t: &Target,
        content: Vec<u8>,
        content_type: &str,
        description: &str,
        label: &str,
    ) -> Result<i32, AppConfigError> {
        let out = self
            .client
            .create_hosted_configuration_version()
            .application_id(&t.application_id)
            .configuration_profile_id(&t.profile_id)
            .content(Blob::new(content))
            .content_type(content_type)
            .description(description)
            .version_label(label)
            .send()
            .await
            .map_err(|e| sdk_error("CreateHostedConfigurationVersion", &e))?;
        Ok(out.version_number())
    }

    /// Starts deploying `version` of the target's profile with a strategy;
    /// the deployment's number.
    pub async fn start_deployment(
        &self,
        t: &Target,
        strategy_id: &str,
        version: i32,
        description: &str,
    ) -> Result<i32, AppConfigError> {
        let out = self
            .client
            .start_deployment()
            .application_id(&t.application_id)
            .environment_id(&t.environment_id)
            .configuration_profile_id(&t.profile_id)
            .deployment_strategy_id(strategy_id)
            .configuration_version(version.to_string())
            .description(description)
            .send()
            .await
            .map_err(|e| sdk_error("StartDeployment", &e))?;
        Ok(out.deployment_number())
    }

    /// A deployment's state and event log.
    pub async fn deployment(
        &self,
        t: &Target,
        number: i32,
    ) -> Result<DeploymentStatus, AppConfigError> {
        let out = self
            .client
            .get_deployment()
            .application_id(&t.application_id)
            .environment_id(&t.environment_id)
            .deployment_number(number)
            .send()
            .await
            .map_err(|e| sdk_error("GetDeployment", &e))?;
        let mut events: Vec<(String, String)> = out
            .event_log()
            .iter()
            .map(|e| {
                let at = e.occurred_at().map(|t| t.to_string()).unwrap_or_default();
                let line = format!(
                    "{} ({}): {}",
                    e.event_type().map(|t| t.as_str()).unwrap_or("?"),
                    e.triggered_by().map(|t| t.as_str()).unwrap_or("?"),
                    e.description().unwrap_or_default()
                );
                (at, line)
            })
            .collect();
        // The log is newest first; oldest first reads as a story.
        events.reverse();
        Ok(DeploymentStatus {
            number,
            version: out.configuration_version().unwrap_or_default().to_string(),
            state: out
                .state()
                .map(DeploymentState::as_str)
                .unwrap_or_default()
                .to_string(),
            percent: out.percentage_complete().unwrap_or(0.0),
            events: events.into_iter().map(|(_, l)| l).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_appconfig_settings_go_together() {
        assert_eq!(ids_from_env(&env(&[])).unwrap(), None);
        assert_eq!(
            ids_from_env(&env(&[
                ("FIREBELL_APPCONFIG_APPLICATION", "a1"),
                ("FIREBELL_APPCONFIG_ENVIRONMENT", "e1"),
                ("FIREBELL_APPCONFIG_PROFILE", "p1"),
            ]))
            .unwrap(),
            Some(ConfigIds {
                application: "a1".into(),
                environment: "e1".into(),
                profile: "p1".into(),
            })
        );
        assert_eq!(
            ids_from_env(&env(&[
                ("FIREBELL_APPCONFIG_APPLICATION", "a1"),
                ("FIREBELL_APPCONFIG_PROFILE", " "),
            ]))
            .unwrap_err(),
            "FIREBELL_APPCONFIG_ENVIRONMENT, FIREBELL_APPCONFIG_PROFILE not set: the AppConfig application, environment and profile go together"
        );
        assert_eq!(settle_secs_from_env(&env(&[])).unwrap(), 11 * 60);
        assert_eq!(
            settle_secs_from_env(&env(&[
                ("FIREBELL_APPCONFIG_DEPLOY_MINUTES", "5"),
                ("FIREBELL_APPCONFIG_BAKE_MINUTES", "0")
            ]))
            .unwrap(),
            6 * 60
        );
        assert_eq!(
            settle_secs_from_env(&env(&[("FIREBELL_APPCONFIG_BAKE_MINUTES", "-1")])).unwrap_err(),
            "FIREBELL_APPCONFIG_BAKE_MINUTES=\"-1\" is not a number of minutes (0 to 1440)"
        );
        assert_eq!(allowed_topics_from_env(&env(&[])), None);
        assert_eq!(
            allowed_topics_from_env(&env(&[("FIREBELL_ALLOWED_TOPICS", "a, b,,")])),
            Some(vec!["a".to_string(), "b".to_string()])
        );
    }

    #[test]
    fn a_deployment_is_over_when_it_completed_or_rolled_back() {
        let d = |state: &str| DeploymentStatus {
            number: 1,
            version: "1".into(),
            state: state.into(),
            percent: 0.0,
            events: vec![],
        };
        for s in ["COMPLETE", "ROLLED_BACK", "REVERTED"] {
            assert!(d(s).finished(), "{s}");
        }
        for s in ["DEPLOYING", "BAKING", "VALIDATING", "ROLLING_BACK", ""] {
            assert!(!d(s).finished(), "{s}");
        }
    }
}
