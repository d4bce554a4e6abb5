//! Silences in the store: validation, states, expiry, idempotent adds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cloned_ref_to_slice_refs
)]

mod common;

use std::time::Duration;

use common::{T0, World, labels};
use firebell_notify::{
    NotifyConfig, PK_SILENCE, SILENCE_RETENTION, SilenceError, SilencePolicy, SilenceSpec,
    SilenceState, active_silences, add_silence, expire_silence, list_silences,
};

fn spec(matchers: &[&str], starts_at: Option<i64>, ends_at: i64) -> SilenceSpec {
    SilenceSpec {
        matchers: matchers.iter().map(|s| s.to_string()).collect(),
        starts_at,
        ends_at,
        created_by: "alice".to_string(),
        comment: "deploying the new ledger".to_string(),
        force: false,
    }
}

fn policy() -> SilencePolicy {
    SilencePolicy {
        max_duration: Duration::from_secs(86_400),
        resolved_pass_through: true,
    }
}

#[tokio::test]
async fn add_validates_everything_at_once() {
    let w = World::new(NotifyConfig::default());
    let bad = SilenceSpec {
        matchers: vec!["team payments".to_string(), "env=~\".*\"".to_string()],
        starts_at: None,
        ends_at: T0 + 2 * 86_400,
        created_by: " ".to_string(),
        comment: String::new(),
        force: false,
    };
    let e = add_silence(w.store.as_ref(), &policy(), T0, bad)
        .await
        .unwrap_err();
    assert!(!e.is_retryable());
    assert_eq!(
        e.to_string(),
        "invalid silence: invalid matcher \"team payments\": expected an operator (=, !=, =~ or !~) at character 6, found \"payments\"; `created_by` must not be empty; `comment` must not be empty; the silence lasts 2d, longer than the maximum of 1d (`silences.max_duration`)"
    );

    let e = add_silence(
        w.store.as_ref(),
        &policy(),
        T0,
        spec(&["env=~\".*\""], None, T0 + 60),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid silence: the matchers would silence every alert: at least one must not match an absent label"
    );

    let e = add_silence(w.store.as_ref(), &policy(), T0, spec(&[], None, T0 - 60))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid silence: at least one matcher is required; the silence must end after it starts (starts 2024-06-03T00:00:00Z, ends 2024-06-02T23:59:00Z)"
    );
    assert!(w.items(PK_SILENCE).is_empty());
}

#[tokio::test]
async fn states_listing_and_expiry() {
    let w = World::new(NotifyConfig::default());
    let store = w.store.as_ref();
    let active = add_silence(
        store,
        &policy(),
        T0,
        spec(&["team=\"payments\""], None, T0 + 3600),
    )
    .await
    .unwrap();
    let pending = add_silence(
        store,
        &policy(),
        T0,
        spec(&["team=\"search\""], Some(T0 + 600), T0 + 1200),
    )
    .await
    .unwrap();
    assert_eq!(active.id.len(), 12);
    assert_ne!(active.id, pending.id);
    assert_eq!(active.starts_at, T0);
    assert_eq!(active.created_by, "alice");

    // Item layout: pk `silence`, sk = id, kept 5 days after the end.
    let items = w.items(PK_SILENCE);
    assert_eq!(items.len(), 2);
    let item = items.iter().find(|i| i.sk == active.id).unwrap();
    assert_eq!(item.expires_at, Some(T0 + 3600 + SILENCE_RETENTION));

    let listed = list_silences(store, T0 + 60).await.unwrap();
    let states: Vec<(String, SilenceState)> = listed
        .iter()
        .map(|v| (v.silence.id.clone(), v.state))
        .collect();
    assert_eq!(
        states,
        vec![
            (active.id.clone(), SilenceState::Active),
            (pending.id.clone(), SilenceState::Pending)
        ]
    );
    let act = active_silences(store, T0 + 60).await.unwrap();
    assert_eq!(act.len(), 1);
    assert!(act[0].matches(&labels(&[("team", "payments"), ("x", "y")])));
    assert!(!act[0].matches(&labels(&[("team", "search")])));

    // Expire by a prefix of the id.
    let expired = expire_silence(store, T0 + 120, &active.id[..6])
        .await
        .unwrap();
    assert_eq!(expired.ends_at, T0 + 120);
    assert_eq!(expired.state(T0 + 120), SilenceState::Expired);
    let e = expire_silence(store, T0 + 180, &active.id)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("silence {} has already expired", active.id)
    );

    // Expiring a pending silence ends it before it starts.
    let p = expire_silence(store, T0 + 180, &pending.id).await.unwrap();
    assert_eq!((p.starts_at, p.ends_at), (T0 + 180, T0 + 180));

    let listed = list_silences(store, T0 + 200).await.unwrap();
    assert!(listed.iter().all(|v| v.state == SilenceState::Expired));
    // Most recently ended first.
    assert_eq!(listed[0].silence.id, pending.id);

    let e = expire_silence(store, T0, "nope").await.unwrap_err();
    assert!(matches!(e, SilenceError::NotFound(_)));
}

#[tokio::test]
async fn adding_the_same_silence_twice_in_a_second_is_idempotent() {
    let w = World::new(NotifyConfig::default());
    let s = spec(&["alertname=\"DiskFull\""], None, T0 + 600);
    let a = add_silence(w.store.as_ref(), &policy(), T0, s.clone())
        .await
        .unwrap();
    let b = add_silence(w.store.as_ref(), &policy(), T0, s.clone())
        .await
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(w.items(PK_SILENCE).len(), 1);
    // A second later it is a new silence.
    let c = add_silence(w.store.as_ref(), &policy(), T0 + 1, s)
        .await
        .unwrap();
    assert_ne!(a.id, c.id);
}

#[tokio::test]
async fn matchers_that_match_every_alert_are_refused_unless_forced() {
    let w = World::new(NotifyConfig::default());
    let cases: [(&[&str], &str); 5] = [
        (
            &["alertname=~\".+\""],
            "alertname=~\".+\" matches every alert",
        ),
        (&["alertname!~\"\""], "alertname!~\"\" matches every alert"),
        (&["alertname!=\"\""], "alertname!=\"\" matches every alert"),
        (
            &["alertname=~\".+\"", "env=~\".*\""],
            "alertname=~\".+\", env=~\".*\" match every alert",
        ),
        (
            &["alertname=~\"(?s).+\"", "team!~\"\\\\b\""],
            "alertname=~\"(?s).+\", team!~\"\\\\b\" match every alert",
        ),
    ];
    for (matchers, what) in cases {
        let e = add_silence(
            w.store.as_ref(),
            &policy(),
            T0,
            spec(matchers, None, T0 + 60),
        )
        .await
        .unwrap_err();
        assert!(!e.is_retryable());
        assert_eq!(
            e.to_string(),
            format!(
                "invalid silence: the matchers would silence every alert: {what} (every alert has a non-empty `alertname`); to silence everything anyway, force it (`firebell silence add --force`) with a comment saying why"
            ),
            "{matchers:?}"
        );
    }
    // `=~".*"` and an empty set: refused as before.
    let e = add_silence(
        w.store.as_ref(),
        &policy(),
        T0,
        spec(&["alertname=~\".*\""], None, T0 + 60),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid silence: the matchers would silence every alert: at least one must not match an absent label"
    );
    assert!(w.items(PK_SILENCE).is_empty());

    // Not everything: a name that is not every name, a value of another label.
    for ok in [
        &["alertname=~\"[^q].*\""][..],
        &["alertname!=\"Watchdog\"", "team!=\"\""],
        &["alertname=~\".+\"", "team=\"payments\""],
        &["alertname=~\"[a-z]+\""],
    ] {
        add_silence(w.store.as_ref(), &policy(), T0, spec(ok, None, T0 + 60))
            .await
            .unwrap_or_else(|e| panic!("{ok:?}: {e}"));
    }

    // Forced, with a reason: accepted.
    for forced in [&["alertname=~\".+\""][..], &["alertname=~\".*\""]] {
        let mut s = spec(forced, None, T0 + 60);
        s.force = true;
        s.comment = "planned full outage of the region".to_string();
        let added = add_silence(w.store.as_ref(), &policy(), T0, s)
            .await
            .unwrap();
        assert_eq!(added.matchers[0].to_string(), forced[0]);
    }
    // Forcing does not waive the reason.
    let mut s = spec(&["alertname=~\".+\""], None, T0 + 60);
    s.force = true;
    s.comment = " ".to_string();
    let e = add_silence(w.store.as_ref(), &policy(), T0, s)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid silence: `comment` must not be empty"
    );
}

#[test]
fn matches_every_alert_is_about_every_possible_alert() {
    use firebell_notify::{Matcher, matches_every_alert};
    let m = |s: &str| Matcher::parse(s).unwrap();
    assert!(matches_every_alert(&[]));
    assert!(matches_every_alert(&[m("alertname=~\".+\"")]));
    assert!(matches_every_alert(&[m("alertname=~\".*\"")]));
    assert!(matches_every_alert(&[m("severity=~\".*\"")]));
    assert!(matches_every_alert(&[m("severity!=\"\\\\x00\"")]));
    // `severity` may be absent: `.+` does not match absence.
    assert!(!matches_every_alert(&[m("severity=~\".+\"")]));
    assert!(!matches_every_alert(&[m("alertname=~\"[^q].*\"")]));
    assert!(!matches_every_alert(&[m("alertname=\"X\"")]));
}

/// One matcher string may hold several, as in Alertmanager; one that holds
/// none, or that Alertmanager's parsers read differently, is refused.
#[tokio::test]
async fn a_matcher_string_may_hold_a_list() {
    let w = World::new(NotifyConfig::default());
    let added = add_silence(
        w.store.as_ref(),
        &policy(),
        T0,
        spec(
            &[r#"{team="payments", env!="dev"}"#, "service=api"],
            None,
            T0 + 60,
        ),
    )
    .await
    .unwrap();
    let shown: Vec<String> = added.matchers.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [r#"team="payments""#, r#"env!="dev""#, r#"service="api""#]
    );
    assert!(added.matches(&labels(&[("team", "payments"), ("service", "api")])));
    assert!(!added.matches(&labels(&[("team", "payments"), ("service", "web")])));
    // `foo=bar,dings!=bums` is two matchers, not one value with a comma.
    let added = add_silence(
        w.store.as_ref(),
        &policy(),
        T0,
        spec(&["team=payments,env!=dev"], None, T0 + 60),
    )
    .await
    .unwrap();
    assert_eq!(added.matchers.len(), 2);
    let e = add_silence(
        w.store.as_ref(),
        &policy(),
        T0,
        spec(&["team=payments", "{}", r#"a="x\ty""#], None, T0 + 60),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"invalid silence: invalid matcher "{}": it holds no matcher; invalid matcher "a=\"x\\ty\"": Alertmanager's two parsers read it differently (classic: {a="x\\ty"}; UTF-8: {a="x\ty"}), so firebell refuses to guess: double-quote the value and escape only \\, \" and \n in it"#
    );
}
