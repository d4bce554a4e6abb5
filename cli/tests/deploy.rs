//! `firebell push`, `diff`, `validate --env` and `topics` against the AWS
//! wire-protocol emulator's AppConfig (control and data planes): the
//! fixture creates what the SAM template creates for an environment (the
//! application `firebell-<env>`, the environment, the `config` and `stack`
//! profiles, the strategy), then the tests push configs and read them back
//! through the data plane as the functions do (`Deployed` over
//! `DeployedConfigSource`). The tests take the endpoint from
//! `AWS_ENDPOINT_URL` and fail, never skip, when it is missing.
//!
//! The emulator does not invoke an AppConfig Lambda validator: the
//! validator function is run under the runtime emulator by
//! `scripts/lambda-test.sh`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[allow(dead_code)]
mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_appconfig::primitives::Blob;
use firebell_aws::appconfig::{ConfigIds, DeployedConfigSource};
use firebell_core::ports::Clock;
use firebell_embedded::{ManualClock, MemoryStore};
use firebell_engine::deployed::{Deployed, Origin, Refresh};

const HOW_TO_RUN: &str = "these tests need an AWS wire-protocol emulator. Run them with:\n\n    eval \"$(scripts/emulator.sh start)\"\n    cargo test -p firebell --test deploy\n    scripts/emulator.sh stop";

const TEAM: &str = "arn:aws:sns:us-east-1:123456789012:payments-oncall";
const OPS: &str = "arn:aws:sns:us-east-1:123456789012:firebell-ops";

fn firebell(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firebell"))
        .args(args)
        .current_dir(cwd)
        .env_remove("FIREBELL_CONFIG")
        .output()
        .expect("run firebell")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn unique(prefix: &str) -> String {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!(
        "{prefix}{}{}",
        std::process::id() % 1000,
        t.subsec_nanos() % 100_000
    )
}

async fn sdk() -> firebell_aws::SdkConfig {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        !endpoint.trim().is_empty(),
        "AWS_ENDPOINT_URL is not set: {HOW_TO_RUN}"
    );
    firebell_aws::load_sdk_config().await
}

/// What the template creates for environment `env`: returns the ids
/// (application, environment, config profile) for the data plane.
async fn environment(
    sdk: &firebell_aws::SdkConfig,
    env: &str,
    bake_minutes: i32,
    monitor: Option<&str>,
    strict: bool,
) -> ConfigIds {
    let ac = aws_sdk_appconfig::Client::new(sdk);
    let app = ac
        .create_application()
        .name(format!("firebell-{env}"))
        .send()
        .await
        .expect("CreateApplication");
    let app_id = app.id().unwrap().to_string();
    let mut create_env = ac.create_environment().application_id(&app_id).name(env);
    if let Some(alarm) = monitor {
        create_env = create_env.monitors(
            aws_sdk_appconfig::types::Monitor::builder()
                .alarm_arn(alarm)
                .build()
                .unwrap(),
        );
    }
    let env_out = create_env.send().await.expect("CreateEnvironment");
    let profile = ac
        .create_configuration_profile()
        .application_id(&app_id)
        .name("config")
        .location_uri("hosted")
        .r#type("AWS.Freeform")
        .send()
        .await
        .expect("CreateConfigurationProfile");
    let stack = ac
        .create_configuration_profile()
        .application_id(&app_id)
        .name("stack")
        .location_uri("hosted")
        .r#type("AWS.Freeform")
        .send()
        .await
        .expect("CreateConfigurationProfile stack");
    let doc = format!(
        r#"{{"format":"firebell.stack/v1","environment":"{env}","strict":{strict},"topics":["{TEAM}","{OPS}"]}}"#
    );
    ac.create_hosted_configuration_version()
        .application_id(&app_id)
        .configuration_profile_id(stack.id().unwrap())
        .content(Blob::new(doc.into_bytes()))
        .content_type("application/json")
        .send()
        .await
        .expect("CreateHostedConfigurationVersion stack");
    ac.create_deployment_strategy()
        .name(format!("firebell-{env}"))
        .deployment_duration_in_minutes(0)
        .final_bake_time_in_minutes(bake_minutes)
        .growth_factor(100.0)
        .growth_type(aws_sdk_appconfig::types::GrowthType::Linear)
        .replicate_to(aws_sdk_appconfig::types::ReplicateTo::None)
        .send()
        .await
        .expect("CreateDeploymentStrategy");
    ConfigIds {
        application: app_id,
        environment: env_out.id().unwrap().to_string(),
        profile: profile.id().unwrap().to_string(),
    }
}

const ROUTING: &str = r#"
receivers:
  ops: {topics: [arn:aws:sns:us-east-1:123456789012:firebell-ops]}
  payments: {topics: [arn:aws:sns:us-east-1:123456789012:payments-oncall]}
route:
  receiver: ops
  group_wait: 0s
  routes:
    - matchers: ['team="payments"']
      receiver: payments
"#;

fn rule(name: &str, threshold: u32) -> String {
    format!(
        r#"
  - name: {name}
    metrics:
      errors: {{namespace: Payments, metric: Errors, stat: Sum, period: 1m}}
    expression: errors
    condition: {{op: ">", threshold: {threshold}}}
    labels: {{team: payments, severity: ticket}}
    annotations: {{runbook_url: "https://runbooks.example.com/{name}"}}
"#
    )
}

/// A config directory `dir/name` with the routing and `rules` (over the
/// metric namespace named in `dir/namespace`, when there is one).
fn config_dir(dir: &Path, name: &str, rules: &[String]) -> String {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("routing.yaml"), ROUTING).unwrap();
    let mut text = format!("rules:{}", rules.concat());
    if let Ok(ns) = std::fs::read_to_string(dir.join("namespace")) {
        text = text.replace("namespace: Payments", &format!("namespace: {ns}"));
    }
    std::fs::write(d.join("rules.yaml"), text).unwrap();
    name.to_string()
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

#[tokio::test]
async fn push_deploys_a_rule_change_the_functions_switch_to_between_cycles() {
    let sdk = sdk().await;
    let env = unique("stg");
    let ids = environment(&sdk, &env, 0, None, false).await;
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let namespace = format!("Firebell/DeployTest/{env}");
    std::fs::write(cwd.join("namespace"), &namespace).unwrap();

    // Nothing deployed yet: a cold start runs the bundled config.
    let clock = Arc::new(ManualClock::at_epoch(now()));
    let store = Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>));
    let source = Arc::new(DeployedConfigSource::from_sdk_config(&sdk, ids.clone()));
    let allowed = Some(vec![TEAM.to_string(), OPS.to_string()]);
    let one = config_dir(cwd, "one", &[rule("PaymentsErrors", 5)]);
    let bundled = firebell_engine::deployed::bundled_from(cwd.join(&one));
    let deployed = Deployed::new(source.clone(), store.clone(), allowed, bundled);
    let running = deployed.start(now()).await.unwrap();
    assert_eq!(running.origin, Origin::Bundled);
    // The poll interval: a second poll at once asks nothing.
    let calls = source.calls();
    assert!(matches!(
        deployed.refresh(now()).await,
        Refresh::Keep { .. }
    ));
    assert_eq!(source.calls(), calls, "no call before the poll interval");

    // `topics`: what the stack's TeamTopicArns takes.
    let out = firebell(&["topics", "--config", &one], cwd);
    assert_eq!(text(&out.stdout), format!("{OPS},{TEAM}\n"));

    // The first push: validated, diffed against nothing, deployed, followed.
    let out = firebell(&["push", "--config", &one, "--env", &env], cwd);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("rules: 1 added\n  + PaymentsErrors\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "deployment 1 to {env} started (strategy firebell-{env})"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("deployment 1: COMPLETE: {env} runs config ")),
        "{stdout}"
    );

    // The next poll switches to it.
    let Refresh::Switch(first) = deployed.refresh(now() + 60).await else {
        panic!("the pushed config is served");
    };
    assert_eq!(first.config.rules.rules.len(), 1);

    // A rule added: `diff` shows it, `push` ships it, the next poll (one
    // call, after the poll interval) switches to it.
    let two = config_dir(
        cwd,
        "two",
        &[rule("PaymentsErrors", 5), rule("PaymentsErrorsHigh", 50)],
    );
    // `--backtest`: the last two hours of CloudWatch through both configs.
    // 60 errors a minute for the last 30 minutes: only the new rule fires.
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    let minute = now() / 60 * 60;
    let data: Vec<aws_sdk_cloudwatch::types::MetricDatum> = (1..=30)
        .map(|k| {
            aws_sdk_cloudwatch::types::MetricDatum::builder()
                .metric_name("Errors")
                .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
                    minute - 60 * k,
                ))
                .value(60.0)
                .build()
        })
        .collect();
    cw.put_metric_data()
        .namespace(&namespace)
        .set_metric_data(Some(data))
        .send()
        .await
        .expect("PutMetricData");
    let out = firebell(
        &["diff", "--config", &two, "--env", &env, "--backtest", "2h"],
        cwd,
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout
            .contains("firebell backtest: A = deployed (version 1 (deployment 1)), B = two over "),
        "{stdout}"
    );
    assert!(stdout.contains("PaymentsErrorsHigh"), "{stdout}");
    let out = firebell(&["diff", "--config", &two, "--env", &env], cwd);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with(&format!(
            "environment {env}: version 1 (deployment 1)\nconfig "
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("rules: 1 added\n  + PaymentsErrorsHigh\n"),
        "{stdout}"
    );
    let t = now() + 120;
    assert!(matches!(deployed.refresh(t).await, Refresh::Keep { .. }));
    let calls = source.calls();
    let started = std::time::Instant::now();
    let out = firebell(&["push", "--config", &two, "--env", &env], cwd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let Refresh::Switch(second) = deployed.refresh(t + 60).await else {
        panic!("the second push is served");
    };
    let took = started.elapsed();
    assert_eq!(source.calls(), calls + 1, "one GetLatestConfiguration");
    assert_eq!(second.config.rules.rules.len(), 2);
    assert_eq!(deployed.problem(), None);
    eprintln!("push -> served to the next poll: {took:?}");

    // The same config again: nothing to push.
    let out = firebell(&["push", "--config", &two, "--env", &env], cwd);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains(&format!(
            "{env} already runs config {}",
            second.config.version
        )),
        "{}",
        text(&out.stdout)
    );

    // An invalid config: refused with validate's errors, nothing deployed.
    let bad = config_dir(
        cwd,
        "bad",
        &[rule("Broken", 5).replace("op: \">\"", "op: \">>\"")],
    );
    let out = firebell(&["push", "--config", &bad, "--env", &env], cwd);
    assert_eq!(out.status.code(), Some(1));
    let validate = firebell(&["validate", "--config", &bad], cwd);
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&text(&validate.stderr)),
        "push prints validate's errors:\n{stderr}\nvalidate:\n{}",
        text(&validate.stderr)
    );
    assert!(
        stderr.ends_with(&format!("push: not deployed: {env} runs what it ran\n")),
        "{stderr}"
    );
    let ac = aws_sdk_appconfig::Client::new(&sdk);
    let deployments = ac
        .list_deployments()
        .application_id(&ids.application)
        .environment_id(&ids.environment)
        .send()
        .await
        .unwrap();
    assert_eq!(deployments.items().len(), 2, "no third deployment");
    assert!(matches!(
        deployed.refresh(t + 180).await,
        Refresh::Keep { .. }
    ));
    assert_eq!(deployed.problem(), None);
}

#[tokio::test]
async fn validate_env_refuses_topics_the_stack_cannot_publish_to() {
    let sdk = sdk().await;
    let env = unique("top");
    environment(&sdk, &env, 0, None, false).await;
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let name = config_dir(cwd, "cfg", &[rule("PaymentsErrors", 5)]);
    std::fs::write(
        cwd.join(&name).join("routing.yaml"),
        ROUTING.replace("payments-oncall", "payments-new"),
    )
    .unwrap();
    let out = firebell(&["validate", "--config", &name, "--env", &env], cwd);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "cfg/routing.yaml:4:23: error: receiver \"payments\": topic \"arn:aws:sns:us-east-1:123456789012:payments-new\" is not one the stack of environment \"{env}\" may publish to (its topics: {TEAM}, {OPS}); deploy the stack with TeamTopicArns=\"$(firebell topics --config DIR)\" first\n1 error\n"
        )
    );
    // Without --env, the ARN is well formed: valid.
    let out = firebell(&["validate", "--config", &name], cwd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // An environment that does not exist: the fix in one line.
    let out = firebell(&["validate", "--config", &name, "--env", "nosuchenv"], cwd);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: no AppConfig application \"firebell-nosuchenv\": deploy the stack with Environment=nosuchenv first (see infra/README.md)\n"
    );
}

#[tokio::test]
async fn a_strict_stack_makes_lint_warnings_errors_before_anything_is_deployed() {
    let sdk = sdk().await;
    let env = unique("strict");
    let ids = environment(&sdk, &env, 0, None, true).await;
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    // A paging rule without a runbook: a lint warning.
    let paging = rule("PaymentsDown", 5)
        .replace("severity: ticket", "severity: page")
        .replace(
            "    annotations: {runbook_url: \"https://runbooks.example.com/PaymentsDown\"}\n",
            "",
        );
    let name = config_dir(cwd, "cfg", &[paging]);
    let plain = firebell(&["validate", "--config", &name], cwd);
    assert!(plain.status.success(), "{}", text(&plain.stderr));
    let warnings = text(&plain.stderr);
    assert!(warnings.contains("[page-without-runbook]"), "{warnings}");
    let out = firebell(&["validate", "--config", &name, "--env", &env], cwd);
    assert_eq!(out.status.code(), Some(1));
    let n = warnings.lines().count();
    assert_eq!(
        text(&out.stderr),
        format!("{warnings}{n} warning(s) (errors with --strict)\n")
    );
    let out = firebell(&["push", "--config", &name, "--env", &env], cwd);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).ends_with(&format!(
            "{n} warning(s) (errors with --strict)\npush: not deployed: {env} runs what it ran\n"
        )),
        "{}",
        text(&out.stderr)
    );
    let ac = aws_sdk_appconfig::Client::new(&sdk);
    let deployments = ac
        .list_deployments()
        .application_id(&ids.application)
        .environment_id(&ids.environment)
        .send()
        .await
        .unwrap();
    assert!(deployments.items().is_empty());
}

#[tokio::test]
async fn an_alarm_during_the_bake_rolls_the_push_back() {
    let sdk = sdk().await;
    let env = unique("rb");
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    let alarm = format!("{env}-watchdog");
    cw.put_metric_alarm()
        .alarm_name(&alarm)
        .namespace("Firebell")
        .metric_name("Heartbeat")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(60)
        .evaluation_periods(3)
        .threshold(1.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::LessThanThreshold)
        .send()
        .await
        .expect("PutMetricAlarm");
    let alarm_arn = cw
        .describe_alarms()
        .alarm_names(&alarm)
        .send()
        .await
        .unwrap()
        .metric_alarms()[0]
        .alarm_arn()
        .unwrap()
        .to_string();
    let ids = environment(&sdk, &env, 1, Some(&alarm_arn), false).await;
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let name = config_dir(cwd, "cfg", &[rule("PaymentsErrors", 5)]);
    let bundled_dir = config_dir(cwd, "bundled", &[rule("Bundled", 5)]);
    // A function, on its bundled config; settled as soon as it has switched.
    let clock = Arc::new(ManualClock::at_epoch(now()));
    let store = Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>));
    let source = Arc::new(DeployedConfigSource::from_sdk_config(&sdk, ids.clone()));
    let function = Deployed::new(
        source.clone(),
        store.clone(),
        None,
        firebell_engine::deployed::bundled_from(cwd.join(&bundled_dir)),
    )
    .with_settle(0);
    assert_eq!(function.start(now()).await.unwrap().origin, Origin::Bundled);
    let child = Command::new(env!("CARGO_BIN_EXE_firebell"))
        .args(["push", "--config", &name, "--env", &env])
        .current_dir(cwd)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the bake, then the watchdog fires.
    let ac = aws_sdk_appconfig::Client::new(&sdk);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let d = ac
            .list_deployments()
            .application_id(&ids.application)
            .environment_id(&ids.environment)
            .send()
            .await
            .unwrap();
        if d.items()
            .first()
            .and_then(|d| d.state())
            .is_some_and(|s| s.as_str() == "BAKING")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never baking");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Baking: the function runs the pushed config.
    let Refresh::Switch(r) = function.refresh(now() + 60).await else {
        panic!("the baking config is served");
    };
    assert_eq!(r.config.rules.rules[0].name, "PaymentsErrors");
    cw.set_alarm_state()
        .alarm_name(&alarm)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason("no heartbeat")
        .send()
        .await
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!(
            "deployment 1: ROLLED_BACK: {env} runs its bundled config\n"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("ROLLBACK_COMPLETED (CLOUDWATCH_ALARM)"),
        "{stdout}"
    );
    // Nothing is deployed now; a new client is served nothing...
    let fresh = DeployedConfigSource::from_sdk_config(&sdk, ids);
    assert_eq!(
        fresh.poll(now(), false).await.unwrap(),
        firebell_core::ports::ConfigPoll::Unchanged
    );
    // ... and the function, once the rollout settled, goes back to its
    // bundled config (an ordinary poll could not tell).
    let Refresh::Switch(r) = function.refresh(now() + 120).await else {
        panic!("back to the bundled config after the rollback");
    };
    assert_eq!(r.origin, Origin::Bundled);
    assert_eq!(r.config.rules.rules[0].name, "Bundled");
    assert_eq!(
        firebell_engine::bundle::load_good(store.as_ref())
            .await
            .unwrap(),
        None
    );
}
