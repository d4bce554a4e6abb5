//! `firebell sentinels plan|apply`: the sentinel alarms a config wants
//! (`firebell_engine::sentinel`), compared with those under the prefix in
//! CloudWatch, and made so. `plan` changes nothing; `apply` creates, updates
//! and deletes (paced by CloudWatch's throttling) and records what it found
//! in the state table, so the next cycle trusts them at once. The cycles do
//! the same by themselves after each config change and every sweep; this is
//! for seeing and doing it by hand. `-o json`: `firebell.sentinels/v1`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use firebell_core::decode::format_duration;
use firebell_core::ports::{AlarmService, Clock, SystemClock};
use firebell_core::sentinel::SentinelAlarm;
use firebell_engine::Config;
use firebell_engine::sentinel::{self, Changes, Desired};
use serde_json::{Value, json};

use crate::backend::{Backend, StoreArgs};

/// The document's schema (`docs/schemas/sentinels.schema.json`).
pub(crate) const SCHEMA: &str = "firebell.sentinels/v1";

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Action {
    /// Show the sentinels the config wants and what would change in CloudWatch (with --backend aws).
    Plan(Common),
    /// Create, update and delete the sentinels under the prefix to match the config (--backend aws).
    Apply(Common),
}

#[derive(Debug, clap::Args)]
pub(crate) struct Common {
    #[command(flatten)]
    pub config: crate::ConfigArgs,
    /// The deployment's sentinel name prefix (the stack's). Default: $FIREBELL_SENTINEL_PREFIX, else `firebell-sentinel-`.
    #[arg(long, env = firebell_aws::SENTINEL_PREFIX_ENV, value_name = "PREFIX")]
    pub prefix: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub output: crate::output::OutputArgs,
}

impl Common {
    fn prefix(&self) -> Result<String> {
        firebell_aws::sentinel_prefix(self.prefix.as_deref())
            .map_err(|e| anyhow::anyhow!("--prefix: {e}"))
    }
}

pub(crate) fn main(args: &Args) -> Result<ExitCode> {
    let (common, apply) = match &args.action {
        Action::Plan(c) => (c, false),
        Action::Apply(c) => (c, true),
    };
    let config = match firebell_engine::load(&common.config.config) {
        Ok((config, _)) => config,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    if apply && common.store.backend != Backend::Aws {
        bail!(
            "`sentinels apply` needs --backend aws: the embedded backend keeps no alarms (`firebell run` simulates them in each run)"
        );
    }
    common.store.check()?;
    if common.store.backend == Backend::Aws && common.prefix.is_none() {
        bail!(
            "--backend aws needs the stack's sentinel prefix: --prefix P or {} (the stack's output SentinelAlarmPrefix); a wrong one would keep a second set of alarms",
            firebell_aws::SENTINEL_PREFIX_ENV
        );
    }
    let prefix = common.prefix()?;
    let desired = sentinel::desired(&config, &prefix);
    let now = SystemClock.now().as_second();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let changes = match common.store.backend {
        Backend::Embedded => None,
        Backend::Aws => Some(rt.block_on(async {
            let sdk = common.store.aws.sdk_config().await?;
            let alarms: Arc<dyn AlarmService> =
                Arc::new(firebell_aws::CloudWatchAlarms::from_sdk_config(&sdk));
            let (changes, record) = sentinel::reconcile(
                &desired,
                alarms.as_ref(),
                &prefix,
                &config.version,
                now,
                usize::MAX,
                apply,
                &|| false,
            )
            .await?;
            if apply {
                let store = common.store.open().await?;
                let stored = sentinel::read_sync(store.as_ref()).await?;
                sentinel::store_sync(store.as_ref(), &record, stored.as_ref()).await?;
            }
            Ok::<_, anyhow::Error>(changes)
        })?),
    };
    if common.output.json() {
        crate::json::print(&to_json(
            &config,
            &desired,
            &prefix,
            changes.as_ref(),
            apply,
        ));
    } else {
        print!(
            "{}",
            text(&config, &desired, &prefix, changes.as_ref(), apply)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The action on one wanted sentinel: `create`, `update`, `in_sync`,
/// `not_evaluated`, or `want` when nothing was compared.
fn action(name: &str, changes: Option<&Changes>) -> &'static str {
    let Some(c) = changes else { return "want" };
    let has = |v: &Vec<String>| v.iter().any(|n| n == name);
    if has(&c.create) {
        "create"
    } else if has(&c.update) {
        "update"
    } else if has(&c.not_evaluated) {
        "not_evaluated"
    } else {
        "in_sync"
    }
}

fn symbol(action: &str) -> char {
    match action {
        "create" => '+',
        "update" => '~',
        "not_evaluated" => '?',
        "in_sync" => '=',
        _ => ' ',
    }
}

/// `100 * FILL(errors, 0) / requests > 1, 1 of 15 x 1m, missing: notBreaching`.
fn condition(a: &SentinelAlarm) -> String {
    let value = a.metric_math.clone().unwrap_or_else(|| {
        a.metrics
            .values()
            .next()
            .map(|m| format!("{}/{} {}", m.namespace, m.metric_name, m.stat))
            .unwrap_or_default()
    });
    format!(
        "{value} {} {}, 1 of {} x {}, missing: {}",
        a.op,
        a.threshold,
        a.evaluation_periods,
        format_duration(std::time::Duration::from_secs(a.period_secs)),
        a.treat_missing_data()
    )
}

/// The plan for people.
fn text(
    config: &Config,
    desired: &Desired,
    prefix: &str,
    changes: Option<&Changes>,
    applied: bool,
) -> String {
    let covered: usize = desired.alarms.iter().map(|a| a.rules.len()).sum();
    let mut out = format!(
        "sentinels of config {} (mode {}, prefix {prefix}, sweep {}): {} sentinel{} cover {covered} of {} rules\n",
        config.version,
        match config.sentinels.mode {
            sentinel::Mode::Off => "off",
            sentinel::Mode::Auto => "auto",
        },
        format_duration(config.sentinels.sweep),
        desired.alarms.len(),
        if desired.alarms.len() == 1 { "" } else { "s" },
        config.rules.rules.len()
    );
    for a in &desired.alarms {
        let act = action(&a.name, changes);
        let cost = desired.costs.get(&a.name);
        out += &format!(
            "{} {}  ({})\n    {}\n",
            symbol(act),
            a.name,
            a.rules.join(", "),
            condition(a)
        );
        if let Some(c) = cost {
            out += &format!(
                "    ${:.3} a month (alarm ${:.3}, sweeps ${:.3}, hot ${:.3}) instead of ${:.3} polling\n",
                c.sentinel, c.alarm, c.sweeps, c.hot, c.polling
            );
        }
    }
    if let Some(c) = changes {
        for name in &c.delete {
            out += &format!("- {name}  (no longer wanted)\n");
        }
    }
    if !desired.polling.is_empty() {
        out += &format!("polled ({} rules):\n", desired.polling.len());
        for (rule, why) in &desired.polling {
            out += &format!("  {rule}: {why}\n");
        }
    }
    out += &match changes {
        None => "(not compared with CloudWatch: use --backend aws)\n".to_string(),
        Some(c) if c.is_noop() => "CloudWatch matches the config\n".to_string(),
        Some(c) => format!(
            "{} {} to create, {} to update, {} to delete{}\n",
            if applied { "applied:" } else { "plan:" },
            c.create.len(),
            c.update.len(),
            c.delete.len(),
            if c.refused.is_empty() {
                String::new()
            } else {
                format!("; refused: {}", c.refused.join("; "))
            }
        ),
    };
    out
}

/// The plan as `firebell.sentinels/v1`.
fn to_json(
    config: &Config,
    desired: &Desired,
    prefix: &str,
    changes: Option<&Changes>,
    applied: bool,
) -> Value {
    json!({
        "schema": SCHEMA,
        "config_version": config.version,
        "mode": match config.sentinels.mode {
            sentinel::Mode::Off => "off",
            sentinel::Mode::Auto => "auto",
        },
        "prefix": prefix,
        "sweep_secs": config.sentinels.sweep.as_secs(),
        "compared": changes.is_some(),
        "applied": applied,
        "sentinels": desired.alarms.iter().map(|a| {
            let cost = desired.costs.get(&a.name);
            json!({
                "name": a.name,
                "action": action(&a.name, changes),
                "rules": a.rules,
                "metrics": a.metrics.iter().map(|(id, m)| json!({
                    "id": id,
                    "namespace": m.namespace,
                    "metric": m.metric_name,
                    "dimensions": m.dimensions,
                    "stat": m.stat.to_string(),
                    "period_secs": m.period.as_secs(),
                })).collect::<Vec<_>>(),
                "metric_math": a.metric_math,
                "op": a.op.to_string(),
                "threshold": a.threshold,
                "period_secs": a.period_secs,
                "evaluation_periods": a.evaluation_periods,
                "treat_missing_data": a.treat_missing_data(),
                "definition": a.hash,
                "cost": cost.map(|c| json!({
                    "polling": c.polling,
                    "sentinel": c.sentinel,
                    "alarm": c.alarm,
                    "sweeps": c.sweeps,
                    "hot": c.hot,
                })),
            })
        }).collect::<Vec<_>>(),
        "delete": changes.map(|c| c.delete.clone()).unwrap_or_default(),
        "polled": desired.polling.iter().map(|(rule, why)| json!({
            "rule": rule,
            "reason": why.to_string(),
        })).collect::<Vec<_>>(),
    })
}
