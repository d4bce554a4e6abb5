#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The deployed config a function runs: bundles, the last good one kept in
//! the store, switching between cycles, and a config that fails to load
//! keeping the previous one running while `FirebellUnhealthy check=config`
//! pages ops. The source is a scripted `ConfigSource` (the port AppConfig
//! implements; the AppConfig adapter itself is tested against the emulator
//! in `cli/tests/deploy.rs` and `scripts/lambda-test.sh`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use firebell_core::ports::{Clock, ConfigPoll, ConfigSource, ConfigSourceError, StateStore};
use firebell_core::series::Epoch;
use firebell_embedded::{ManualClock, MemoryNotifier, MemoryStore, ReplaySource};
use firebell_engine::bundle::{self, Bundle, BundleError, BundleFile};
use firebell_engine::deployed::{Deployed, Origin, Refresh};
use firebell_engine::{Engine, EngineOptions};

const T0: i64 = 1_795_392_000;

const ROUTING: &str = r#"
receivers:
  web: {topics: [arn:aws:sns:us-east-1:123456789012:web]}
  ops: {topics: [arn:aws:sns:us-east-1:123456789012:ops]}
route:
  receiver: web
  group_wait: 0s
  routes:
    - matchers: ['team="firebell"']
      receiver: ops
"#;

const RULE_A: &str = r#"
rules:
  - name: A
    metrics:
      m: {namespace: Svc, metric: Errors, stat: Sum, period: 1m}
    expression: m
    condition: {op: ">", threshold: 5}
    labels: {team: web, severity: page}
"#;

const RULE_B: &str = r#"
rules:
  - name: B
    metrics:
      m: {namespace: Svc, metric: Errors, stat: Sum, period: 1m}
    expression: m
    condition: {op: ">", threshold: 50}
    labels: {team: web, severity: page}
"#;

fn bundle(rules: &str) -> Bundle {
    Bundle {
        format: bundle::FORMAT.to_string(),
        files: vec![
            BundleFile {
                path: "cfg/routing.yaml".into(),
                text: ROUTING.into(),
            },
            BundleFile {
                path: "cfg/rules.yaml".into(),
                text: rules.into(),
            },
        ],
    }
}

/// Answers polls from a script; `NotDue` once it runs out.
#[derive(Debug, Default)]
struct Scripted {
    polls: Mutex<VecDeque<Result<ConfigPoll, ConfigSourceError>>>,
    /// Whether each poll was asked as a new client.
    fresh: Mutex<Vec<bool>>,
}

impl Scripted {
    fn push(&self, p: Result<ConfigPoll, ConfigSourceError>) {
        self.polls.lock().unwrap().push_back(p);
    }
    fn new_bundle(&self, b: &Bundle, label: &str) {
        self.push(Ok(ConfigPoll::New {
            content: b.to_json(),
            label: Some(label.to_string()),
        }));
    }
}

#[async_trait]
impl ConfigSource for Scripted {
    async fn poll(&self, _now: Epoch, fresh: bool) -> Result<ConfigPoll, ConfigSourceError> {
        self.fresh.lock().unwrap().push(fresh);
        self.polls
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Ok(ConfigPoll::NotDue))
    }
}

fn down() -> Result<ConfigPoll, ConfigSourceError> {
    Err(ConfigSourceError {
        message: "appconfig:GetLatestConfiguration: ServiceUnavailableException".into(),
        retryable: true,
    })
}

fn bundled() -> firebell_engine::deployed::Bundled {
    Box::new(|| {
        bundle(RULE_A)
            .load()
            .map(|(c, _)| c)
            .map_err(|e| e.to_string())
    })
}

async fn cycle(engine: &Engine, t: Epoch) -> firebell_engine::CycleReport {
    engine.run_cycle_at(t, t, &|| false).await.unwrap()
}

#[test]
fn a_bundle_holds_a_directory_as_validate_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("routing.yaml"), ROUTING).unwrap();
    std::fs::write(dir.path().join("rules.yaml"), RULE_A).unwrap();
    let b = Bundle::read(dir.path()).unwrap();
    let back = Bundle::from_json(&b.to_json()).unwrap();
    assert_eq!(back, b);
    let (from_bundle, _) = back.load().unwrap();
    let (from_dir, _) = firebell_engine::load(dir.path()).unwrap();
    // The same version and the same file names: diagnostics, origins and
    // `status` agree whichever way the config was read.
    assert_eq!(from_bundle.version, from_dir.version);
    assert_eq!(from_bundle.files, from_dir.files);
    assert_eq!(
        from_bundle.rules.rules[0].origin,
        from_dir.rules.rules[0].origin
    );
}

#[test]
fn what_is_not_a_bundle_says_why() {
    assert_eq!(Bundle::from_json(b""), Err(BundleError::Empty));
    assert_eq!(
        Bundle::from_json(br#"{"format":"firebell.bundle/v9","files":[]}"#)
            .unwrap_err()
            .to_string(),
        "the bundle's format is \"firebell.bundle/v9\"; this firebell reads \"firebell.bundle/v1\" (a newer firebell pushed it?)"
    );
    assert!(
        Bundle::from_json(b"rules: []")
            .unwrap_err()
            .to_string()
            .starts_with("the configuration is not a firebell bundle (JSON {\"format\":\"firebell.bundle/v1\",\"files\":[...]}): ")
    );
    let big = vec![b' '; bundle::MAX_BYTES + 1];
    assert_eq!(
        Bundle::from_json(&big),
        Err(BundleError::TooLarge(bundle::MAX_BYTES + 1))
    );
    // Errors keep the bundle's file names and positions.
    let mut bad = bundle(RULE_A);
    bad.files[1].text = "rules:\n  - name: A\n    expression: [\n".into();
    let e = bad.load().unwrap_err().to_string();
    assert!(
        e.starts_with("cfg/rules.yaml:4:1: error: invalid YAML"),
        "{e}"
    );
}

#[tokio::test]
async fn the_last_good_bundle_survives_in_the_store_in_pages() {
    let clock = Arc::new(ManualClock::at_epoch(T0));
    let store = MemoryStore::new(clock.clone() as Arc<dyn Clock>);
    assert_eq!(bundle::load_good(&store).await.unwrap(), None);
    // Large enough for several pages.
    let mut big = bundle(RULE_A);
    big.files[1].text = format!("{RULE_A}\n#{}\n", "é".repeat(200_000));
    let writes = bundle::save_good(&store, &big, "v1", T0).await.unwrap();
    assert_eq!(writes, 4, "3 pages and the head");
    assert_eq!(
        bundle::load_good(&store).await.unwrap(),
        Some((big.clone(), "v1".to_string()))
    );
    // The same version again writes nothing.
    assert_eq!(bundle::save_good(&store, &big, "v1", T0).await.unwrap(), 0);
    // A new one replaces it, and the old pages go.
    let small = bundle(RULE_B);
    assert_eq!(
        bundle::save_good(&store, &small, "v2", T0).await.unwrap(),
        1 + 1 + 3
    );
    assert_eq!(
        bundle::load_good(&store).await.unwrap(),
        Some((small, "v2".to_string()))
    );
    assert_eq!(store.query("config", "good#v1").await.unwrap().len(), 0);
}

#[tokio::test]
async fn a_cold_start_runs_deployed_else_last_good_else_bundled() {
    let clock = Arc::new(ManualClock::at_epoch(T0));
    let store = Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>));
    // Nothing deployed, nothing kept: the bundled config.
    let source = Arc::new(Scripted::default());
    source.push(Ok(ConfigPoll::Unchanged));
    let d = Deployed::new(source.clone(), store.clone(), None, bundled());
    let r = d.start(T0).await.unwrap();
    assert_eq!(r.origin, Origin::Bundled);
    // Deployed: that one, kept as the last good one.
    source.new_bundle(&bundle(RULE_B), "v7");
    let d = Deployed::new(source.clone(), store.clone(), None, bundled());
    let r = d.start(T0).await.unwrap();
    assert_eq!(
        r.origin,
        Origin::Deployed {
            label: Some("v7".into())
        }
    );
    assert_eq!(r.config.rules.rules[0].name, "B");
    // AppConfig down at the next cold start: the last good one, not the
    // (older) bundled one.
    source.push(down());
    let d = Deployed::new(source.clone(), store.clone(), None, bundled());
    let r = d.start(T0 + 60).await.unwrap();
    assert_eq!(r.origin, Origin::LastGood);
    assert_eq!(r.config.rules.rules[0].name, "B");
    assert_eq!(
        r.notes,
        vec![
            "fetching the deployed config: appconfig:GetLatestConfiguration: ServiceUnavailableException"
                .to_string()
        ]
    );
    assert_eq!(d.problem(), None, "one failed fetch is not yet a problem");
    // Nothing deployed any more (the first push was rolled back): the
    // bundled config, not the last good one (what was rolled back).
    source.push(Ok(ConfigPoll::Unchanged));
    let d = Deployed::new(source.clone(), store.clone(), None, bundled());
    let r = d.start(T0 + 120).await.unwrap();
    assert_eq!(r.origin, Origin::Bundled);
    assert_eq!(r.config.rules.rules[0].name, "A");
}

#[tokio::test]
async fn a_config_that_does_not_load_keeps_the_last_good_one_and_pages_ops() {
    let clock = Arc::new(ManualClock::at_epoch(T0));
    let store = Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>));
    let notifier = Arc::new(MemoryNotifier::new());
    let source = Arc::new(Scripted::default());
    let allowed = vec![
        "arn:aws:sns:us-east-1:123456789012:web".to_string(),
        "arn:aws:sns:us-east-1:123456789012:ops".to_string(),
    ];
    let d = Deployed::new(source.clone(), store.clone(), Some(allowed), bundled());
    source.new_bundle(&bundle(RULE_A), "v1");
    let running = d.start(T0).await.unwrap();
    let metrics = Arc::new(ReplaySource::parse("empty.jsonl", "").unwrap());
    let engine = Engine::new(
        Arc::new(running.config),
        metrics,
        store.clone(),
        notifier.clone(),
        EngineOptions::default(),
    );
    let r = cycle(&engine, T0 + 60).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);

    // A broken deployment: it does not load; the running config stays.
    let mut broken = bundle(RULE_B);
    broken.files[1].text = RULE_B.replace("threshold: 50", "threshold: lots");
    source.new_bundle(&broken, "v2");
    let Refresh::Keep { notes } = d.refresh(T0 + 90).await else {
        panic!("a config that does not load must not be switched to");
    };
    assert_eq!(notes.len(), 1);
    let problem = d.problem().unwrap();
    assert!(
        problem.starts_with("the deployed config v2 did not load: cfg/rules.yaml:"),
        "{problem}"
    );
    engine.set_config_problem(d.problem());
    let r = cycle(&engine, T0 + 120).await;
    assert!(
        r.errors.iter().any(|e| e.to_string()
            == format!(
                "config: {problem}; running config version {}",
                engine.config().version
            )),
        "{:?}",
        r.errors
    );
    assert_eq!(engine.config().rules.rules[0].name, "A");
    // Ops is paged: FirebellUnhealthy check=config, to the ops topic.
    let sent = notifier.take();
    let page = sent
        .iter()
        .find(|m| m.subject.contains("FirebellUnhealthy"))
        .expect("a self-alert");
    assert_eq!(page.destination, "arn:aws:sns:us-east-1:123456789012:ops");
    assert!(
        page.bodies["default"].contains(
            "firebell unhealthy (config): the deployed config cannot be fetched or loaded; the last good one runs"
        ),
        "{}",
        page.bodies["default"]
    );
    assert_eq!(
        page.attributes.get("severity").map(String::as_str),
        Some("page")
    );

    // Polls with nothing new keep the problem (the broken version is still
    // the deployed one).
    source.push(Ok(ConfigPoll::Unchanged));
    assert!(matches!(d.refresh(T0 + 150).await, Refresh::Keep { .. }));
    assert!(d.problem().is_some());

    // A topic the function may not publish to does not load either.
    let outside = bundle(RULE_B).files[0].text.replace(":web]", ":elsewhere]");
    let mut b = bundle(RULE_B);
    b.files[0].text = outside;
    source.new_bundle(&b, "v3");
    assert!(matches!(d.refresh(T0 + 170).await, Refresh::Keep { .. }));
    assert!(
        d.problem()
            .unwrap()
            .contains("topics this function may not publish to: cfg/routing.yaml:3:"),
        "{:?}",
        d.problem()
    );

    // A good version: switched to between cycles; the problem clears and
    // the self-alert resolves.
    source.new_bundle(&bundle(RULE_B), "v4");
    let Refresh::Switch(next) = d.refresh(T0 + 180).await else {
        panic!("a good config is switched to");
    };
    assert_eq!(
        next.origin,
        Origin::Deployed {
            label: Some("v4".into())
        }
    );
    let engine = engine.with_config(Arc::new(next.config));
    engine.set_config_problem(d.problem());
    assert_eq!(d.problem(), None);
    let r = cycle(&engine, T0 + 240).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.rules_evaluated, 1);
    assert_eq!(engine.config().rules.rules[0].name, "B");
    // (The resolved notice goes out at the group's next interval.)
    cycle(&engine, T0 + 480).await;
    let resolved = notifier.take();
    assert!(
        resolved
            .iter()
            .any(|m| m.subject.contains("RESOLVED") || m.subject.contains("resolved")),
        "{:?}",
        resolved.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    // The last good one is now v4's.
    let (kept, _) = bundle::load_good(store.as_ref()).await.unwrap().unwrap();
    assert_eq!(kept, bundle(RULE_B));
}

#[tokio::test]
async fn fetching_that_keeps_failing_is_a_problem_until_a_poll_succeeds() {
    let clock = Arc::new(ManualClock::at_epoch(T0));
    let store = Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>));
    let source = Arc::new(Scripted::default());
    let d = Deployed::new(source.clone(), store, None, bundled());
    for i in 0..3 {
        assert_eq!(d.problem(), None, "after {i} failures");
        source.push(down());
        assert!(matches!(d.refresh(T0).await, Refresh::Keep { .. }));
    }
    assert_eq!(
        d.problem().unwrap(),
        "fetching the deployed config failed 3 times in a row: appconfig:GetLatestConfiguration: ServiceUnavailableException"
    );
    source.push(Ok(ConfigPoll::Unchanged));
    d.refresh(T0).await;
    assert_eq!(d.problem(), None);
}

#[tokio::test]
async fn a_rolled_back_first_deployment_returns_the_function_to_its_bundled_config() {
    let clock = Arc::new(ManualClock::at_epoch(T0));
    let store = Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>));
    let source = Arc::new(Scripted::default());
    let d = Deployed::new(source.clone(), store.clone(), None, bundled()).with_settle(600);
    source.push(Ok(ConfigPoll::Unchanged));
    assert_eq!(d.start(T0).await.unwrap().origin, Origin::Bundled);
    // The first push reaches the function...
    source.new_bundle(&bundle(RULE_B), "v1");
    let Refresh::Switch(r) = d.refresh(T0 + 60).await else {
        panic!("switched to the first push");
    };
    assert_eq!(r.config.rules.rules[0].name, "B");
    assert!(bundle::load_good(store.as_ref()).await.unwrap().is_some());
    // ... is rolled back during its bake: nothing is deployed, and an
    // ordinary poll cannot tell ("nothing new").
    source.push(Ok(ConfigPoll::Unchanged));
    assert!(matches!(d.refresh(T0 + 120).await, Refresh::Keep { .. }));
    // Once the rollout has settled, one poll as a new client: nothing
    // deployed, so back to the bundled config, and the last good one is
    // forgotten (a cold start must not run what was rolled back).
    source.push(Ok(ConfigPoll::Unchanged));
    let Refresh::Switch(r) = d.refresh(T0 + 660).await else {
        panic!("back to the bundled config");
    };
    assert_eq!(r.origin, Origin::Bundled);
    assert_eq!(r.config.rules.rules[0].name, "A");
    assert_eq!(
        r.notes,
        vec!["nothing is deployed any more (the deployment was rolled back): back to the bundled config".to_string()]
    );
    assert_eq!(bundle::load_good(store.as_ref()).await.unwrap(), None);
    assert_eq!(
        *source.fresh.lock().unwrap(),
        vec![false, false, false, true]
    );
    // Settled: ordinary polls from now on.
    source.push(Ok(ConfigPoll::Unchanged));
    assert!(matches!(d.refresh(T0 + 720).await, Refresh::Keep { .. }));
    assert_eq!(source.fresh.lock().unwrap().last(), Some(&false));
}

#[tokio::test]
async fn a_settled_rollout_that_stayed_is_kept_without_a_switch_or_a_write() {
    let clock = Arc::new(ManualClock::at_epoch(T0));
    let store = Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>));
    let source = Arc::new(Scripted::default());
    let d = Deployed::new(source.clone(), store.clone(), None, bundled()).with_settle(600);
    source.new_bundle(&bundle(RULE_B), "v1");
    assert!(matches!(
        d.start(T0).await.unwrap().origin,
        Origin::Deployed { .. }
    ));
    // The new client's first answer is what already runs: no switch.
    source.new_bundle(&bundle(RULE_B), "v1");
    assert!(matches!(d.refresh(T0 + 600).await, Refresh::Keep { .. }));
    assert_eq!(*source.fresh.lock().unwrap(), vec![false, true]);
    // A poll that is not due does not reset the failure count.
    for _ in 0..2 {
        source.push(down());
        d.refresh(T0 + 660).await;
        source.push(Ok(ConfigPoll::NotDue));
        d.refresh(T0 + 670).await;
    }
    source.push(down());
    d.refresh(T0 + 680).await;
    assert!(
        d.problem().is_some(),
        "three failed polls in a row, not-due ones between"
    );
}

#[tokio::test]
async fn the_reporter_reads_the_last_good_config_but_never_writes_it() {
    let clock = Arc::new(ManualClock::at_epoch(T0));
    let store = Arc::new(MemoryStore::new(clock.clone() as Arc<dyn Clock>));
    let source = Arc::new(Scripted::default());
    let d = Deployed::new(source.clone(), store.clone(), None, bundled()).read_only();
    source.new_bundle(&bundle(RULE_B), "v1");
    assert!(matches!(
        d.start(T0).await.unwrap().origin,
        Origin::Deployed { .. }
    ));
    assert_eq!(bundle::load_good(store.as_ref()).await.unwrap(), None);
}
