//! Shipping a config to a deployed stack, through AWS AppConfig:
//!
//! - `firebell push --config DIR --env NAME`: validate (exactly `firebell
//!   validate`, with the stack's topics), show what changes against the
//!   deployed version, create a hosted configuration version, deploy it with
//!   the environment's strategy and follow the deployment to its end
//!   (`COMPLETE`: exit 0; rolled back: exit 1);
//! - `firebell diff --config DIR --env NAME [--backtest 7d]`: the change
//!   alone, and what it would have done to notifications over CloudWatch's
//!   last days (the `backtest --compare` machinery);
//! - `firebell topics --config DIR`: the config's topics, one comma-joined
//!   line, for the stack's `TeamTopicArns` parameter.
//!
//! `--env NAME` names the stack's `Environment`: AppConfig application
//! `firebell-NAME`, environment `NAME`, profile `config` (the bundle) and
//! profile `stack` (the stack's topics, written by the template), strategy
//! `firebell-NAME`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use firebell_aws::appconfig::{ConfigAdmin, DeploymentStatus, Target};
use firebell_engine::Config;
use firebell_engine::bundle::{self, Bundle};
use firebell_tools::configdiff;
use firebell_tools::validate::{AllowedTopics, Options, check};

use crate::backend::AwsArgs;
use crate::output::OutputArgs;

/// The profile holding the firebell bundle.
pub(crate) const CONFIG_PROFILE: &str = "config";
/// The profile holding the stack's facts (its topics), written by the template.
pub(crate) const STACK_PROFILE: &str = "stack";
/// The format of the `stack` profile's document.
pub(crate) const STACK_FORMAT: &str = "firebell.stack/v1";

/// `--env NAME` and where it lives.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct EnvArgs {
    /// The deployed environment (the stack's `Environment` parameter):
    /// AppConfig application firebell-NAME, environment NAME.
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// The AppConfig application. Default: firebell-<env>.
    #[arg(long, value_name = "NAME", requires = "env")]
    pub app: Option<String>,
    #[command(flatten)]
    pub aws: AwsArgs,
}

impl EnvArgs {
    fn env(&self) -> Result<&str> {
        self.env
            .as_deref()
            .ok_or_else(|| anyhow!("--env NAME is required (the stack's Environment)"))
    }

    fn app(&self) -> Result<String> {
        Ok(match &self.app {
            Some(a) => a.clone(),
            None => format!("firebell-{}", self.env()?),
        })
    }

    /// The control plane client and the environment's ids.
    async fn target(&self) -> Result<(ConfigAdmin, Target)> {
        let sdk = self.aws.sdk_config().await?;
        let admin = ConfigAdmin::from_sdk_config(&sdk);
        let env = self.env()?;
        let target = admin
            .resolve(&self.app()?, env, CONFIG_PROFILE)
            .await
            .map_err(|e| {
                if e.not_found {
                    anyhow!(
                        "{e}: deploy the stack with Environment={env} first (see infra/README.md)"
                    )
                } else {
                    anyhow!(e)
                }
            })?;
        Ok((admin, target))
    }
}

/// What the environment's stack says of itself (its `stack` profile): the
/// topics it may publish to, and whether its validator treats lint warnings
/// as errors (`StrictValidation`).
#[derive(Debug)]
pub(crate) struct StackFacts {
    pub topics: AllowedTopics,
    pub strict: bool,
}

/// The environment's [`StackFacts`].
pub(crate) async fn stack_facts(env: &EnvArgs) -> Result<StackFacts> {
    let (admin, target) = env.target().await?;
    read_stack(&admin, &target).await
}

async fn read_stack(admin: &ConfigAdmin, target: &Target) -> Result<StackFacts> {
    let profile = target.profile_id_of(STACK_PROFILE)?;
    let Some((_, content)) = admin.latest_hosted(&target.application_id, profile).await? else {
        bail!(
            "AppConfig application {:?} has no version of profile {STACK_PROFILE:?}: redeploy the stack",
            target.application
        );
    };
    parse_stack(&content).map(|(topics, strict)| StackFacts {
        topics: AllowedTopics {
            topics,
            source: format!("the stack of environment {:?}", target.environment),
        },
        strict,
    })
}

/// The topics of a `stack` profile document, and its strictness (absent:
/// not strict).
fn parse_stack(content: &[u8]) -> Result<(Vec<String>, bool)> {
    let v: serde_json::Value =
        serde_json::from_slice(content).context("the stack profile is not JSON")?;
    if v["format"] != STACK_FORMAT {
        bail!(
            "the stack profile's format is {}, expected {STACK_FORMAT:?}",
            v["format"]
        );
    }
    let topics = v["topics"]
        .as_array()
        .ok_or_else(|| anyhow!("the stack profile has no topics list"))?;
    let topics = topics
        .iter()
        .filter_map(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    Ok((topics, v["strict"].as_bool().unwrap_or(false)))
}

/// The deployed config: its deployment and the config (`None`: nothing
/// deployed yet).
async fn deployed(
    admin: &ConfigAdmin,
    target: &Target,
) -> Result<Option<(DeploymentStatus, Config)>> {
    let Some(d) = admin.deployed(target).await? else {
        return Ok(None);
    };
    let version: i32 = d
        .version
        .parse()
        .with_context(|| format!("deployment {} has version {:?}", d.number, d.version))?;
    let content = admin
        .hosted_content(&target.application_id, &target.profile_id, version)
        .await?;
    // A deployed version this firebell cannot read (an older format, or
    // checks it did not make) must not block shipping the fix: compared as
    // nothing, with a warning.
    let loaded = Bundle::from_json(&content)
        .map_err(|e| e.to_string())
        .and_then(|b| b.load().map_err(|e| e.to_string()));
    match loaded {
        Ok((config, _)) => Ok(Some((d, config))),
        Err(e) => {
            eprintln!(
                "warning: the deployed version {version} does not load with this firebell (compared as nothing):\n{}",
                e.trim_end()
            );
            Ok(None)
        }
    }
}

// ------------------------------------------------------------------ topics

#[derive(Debug, clap::Args)]
pub(crate) struct TopicsArgs {
    #[command(flatten)]
    pub config: crate::ConfigArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `firebell topics`: every receiver topic, comma-joined (the stack's
/// `TeamTopicArns`), or a JSON array.
pub(crate) fn topics(args: &TopicsArgs) -> Result<ExitCode> {
    let config = match firebell_engine::load(&args.config.config) {
        Ok((c, _)) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    let topics = config.notify.topics();
    if args.output.json() {
        crate::json::print(&serde_json::json!(topics));
    } else {
        println!("{}", topics.join(","));
    }
    Ok(ExitCode::SUCCESS)
}

// -------------------------------------------------------------------- diff

#[derive(Debug, clap::Args)]
pub(crate) struct DiffArgs {
    #[command(flatten)]
    pub config: crate::ConfigArgs,
    #[command(flatten)]
    pub env: EnvArgs,
    /// Also replay this much of CloudWatch's history (e.g. 7d) through the
    /// deployed config (A) and the new one (B) and compare what they would
    /// have sent.
    #[arg(long, value_name = "DURATION")]
    pub backtest: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub(crate) fn diff(args: &DiffArgs) -> Result<ExitCode> {
    let new = match firebell_engine::load(&args.config.config) {
        Ok((c, _)) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    let rt = runtime()?;
    let (admin, target) = rt.block_on(args.env.target())?;
    let old = rt.block_on(deployed(&admin, &target))?;
    let label = old
        .as_ref()
        .map(|(d, _)| format!("version {} (deployment {})", d.version, d.number))
        .unwrap_or_else(|| "nothing deployed".to_string());
    let empty = empty_like(&new);
    let old_config = old.as_ref().map_or(&empty, |(_, c)| c);
    let d = configdiff::diff(old_config, &new);
    if args.output.json() {
        crate::json::print(&serde_json::json!({
            "schema": "firebell.diff/v1",
            "environment": target.environment,
            "deployed": old.as_ref().map(|(d, _)| d.version.clone()),
            "diff": d.to_json(),
        }));
    } else {
        println!("environment {}: {label}", target.environment);
        print!("{}", d.to_text());
    }
    if let Some(span) = &args.backtest {
        let Some((_, old)) = old else {
            eprintln!("backtest: nothing deployed to compare with");
            return Ok(ExitCode::SUCCESS);
        };
        let secs = firebell_core::decode::parse_duration(span)
            .and_then(|d| i64::try_from(d.as_secs()).ok())
            .filter(|s| *s >= 3600)
            .ok_or_else(|| {
                anyhow!("--backtest {span:?}: expected a duration of at least 1h, such as 7d")
            })?;
        let to = (jiff::Timestamp::now().as_second() / 60) * 60;
        let from = to - secs;
        let (a, b) = (Arc::new(old), Arc::new(new));
        let history = rt.block_on(crate::backtest::cloudwatch(
            &a,
            Some(&b),
            from,
            to,
            86_400,
            &args.env.aws,
        ))?;
        println!();
        return crate::backtest::simulate_and_print(
            &rt,
            history,
            crate::backtest::Sides {
                a,
                a_name: format!("deployed ({label})"),
                b: Some(b),
                b_name: Some(args.config.config.display().to_string()),
            },
            from,
            to,
            args.output.json(),
            false,
            None,
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A config with nothing in it (what "nothing deployed" compares as).
fn empty_like(c: &Config) -> Config {
    let mut e = c.clone();
    e.rules.rules.clear();
    e.notify = Default::default();
    e.files.clear();
    e.version = "(none)".to_string();
    e
}

// -------------------------------------------------------------------- push

#[derive(Debug, clap::Args)]
pub(crate) struct PushArgs {
    #[command(flatten)]
    pub config: crate::ConfigArgs,
    #[command(flatten)]
    pub env: EnvArgs,
    /// Treat lint warnings as errors (they are anyway when the stack's
    /// StrictValidation is true: its validator would refuse them).
    #[arg(long)]
    pub strict: bool,
    /// The deployment strategy. Default: firebell-<env> (the stack's).
    #[arg(long, value_name = "NAME")]
    pub strategy: Option<String>,
    /// Start the deployment and return without following it.
    #[arg(long)]
    pub no_wait: bool,
    /// Give up following the deployment after this long (it goes on).
    #[arg(long, default_value = "2h", value_name = "DURATION")]
    pub timeout: String,
}

pub(crate) fn push(args: &PushArgs) -> Result<ExitCode> {
    let rt = runtime()?;
    let env = args.env.env()?.to_string();
    let (admin, target) = rt.block_on(args.env.target())?;
    let stack = rt.block_on(read_stack(&admin, &target))?;
    // 1. Exactly `firebell validate --env` (as strict as the stack's
    //    validator, which AppConfig runs on the deployment too).
    let checked = check(
        firebell_engine::load(&args.config.config),
        &Options {
            strict: args.strict || stack.strict,
            allowed_topics: Some(stack.topics),
        },
    );
    eprint!("{}", checked.report());
    let (true, Some(config)) = (checked.passed(), checked.config) else {
        eprintln!("push: not deployed: {env} runs what it ran");
        return Ok(ExitCode::from(1));
    };
    let bundle = Bundle::read(&args.config.config).map_err(|e| anyhow!("{e}"))?;
    let content = bundle.to_json();
    if content.len() > bundle::MAX_BYTES {
        bail!(
            "the bundle is {} bytes; AppConfig hosted configurations hold at most {} bytes",
            content.len(),
            bundle::MAX_BYTES
        );
    }
    // 2. What changes.
    let old = rt.block_on(deployed(&admin, &target))?;
    let empty = empty_like(&config);
    let old_config = old.as_ref().map_or(&empty, |(_, c)| c);
    if old_config.version == config.version {
        println!(
            "{env} already runs config {} (deployment {}): nothing to push",
            config.version,
            old.as_ref().map_or(0, |(d, _)| d.number)
        );
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", configdiff::diff(old_config, &config).to_text());
    // 3. A hosted version, deployed with the environment's strategy.
    let strategy_name = args
        .strategy
        .clone()
        .unwrap_or_else(|| format!("firebell-{env}"));
    let strategy = rt.block_on(admin.strategy_id(&strategy_name))?;
    let description = format!("firebell push of config {}", config.version);
    let version = rt.block_on(admin.create_version(
        &target,
        content,
        bundle::CONTENT_TYPE,
        &description,
        &config.version,
    ))?;
    let number = rt.block_on(admin.start_deployment(&target, &strategy, version, &description))?;
    println!(
        "pushed config {} as version {version}; deployment {number} to {env} started (strategy {strategy_name})",
        config.version
    );
    if args.no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    // 4. Follow it.
    let timeout = firebell_core::decode::parse_duration(&args.timeout).ok_or_else(|| {
        anyhow!(
            "--timeout {:?}: expected a duration such as 30m",
            args.timeout
        )
    })?;
    let status = rt.block_on(follow(&admin, &target, number, timeout))?;
    for e in &status.events {
        println!("  {e}");
    }
    match status.state.as_str() {
        "COMPLETE" => {
            println!(
                "deployment {number}: COMPLETE: {env} runs config {} from its next cycle",
                config.version
            );
            Ok(ExitCode::SUCCESS)
        }
        s if status.finished() => {
            println!(
                "deployment {number}: {s}: {env} runs {}",
                old.as_ref()
                    .map(|(_, c)| format!("config {} again", c.version))
                    .unwrap_or_else(|| "its bundled config".to_string())
            );
            Ok(ExitCode::from(1))
        }
        s => {
            println!(
                "deployment {number}: still {s} ({:.0}%) after {}; it goes on",
                status.percent, args.timeout
            );
            Ok(ExitCode::from(1))
        }
    }
}

/// Polls a deployment until it ends or `timeout` passes, printing each new state.
async fn follow(
    admin: &ConfigAdmin,
    target: &Target,
    number: i32,
    timeout: Duration,
) -> Result<DeploymentStatus> {
    let started = std::time::Instant::now();
    let mut last = String::new();
    loop {
        let status = admin.deployment(target, number).await?;
        if status.state != last {
            eprintln!(
                "deployment {number}: {} ({:.0}%)",
                status.state, status.percent
            );
            last.clone_from(&status.state);
        }
        if status.finished() || started.elapsed() >= timeout {
            return Ok(status);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_profile_lists_topics() {
        let doc = br#"{"format":"firebell.stack/v1","environment":"staging","strict":true,"topics":["arn:aws:sns:us-east-1:123456789012:a",""]}"#;
        assert_eq!(
            parse_stack(doc).unwrap(),
            (
                vec!["arn:aws:sns:us-east-1:123456789012:a".to_string()],
                true
            )
        );
        let lax = br#"{"format":"firebell.stack/v1","topics":[]}"#;
        assert_eq!(parse_stack(lax).unwrap(), (vec![], false));
        let err = parse_stack(br#"{"format":"x/v9","topics":[]}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the stack profile's format is \"x/v9\", expected \"firebell.stack/v1\""
        );
    }
}
