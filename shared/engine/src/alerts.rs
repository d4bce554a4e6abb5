//! The alerts active now, as people ask about them (`firebell alerts`):
//! every pending, firing, NoData and recently resolved alert, with where it
//! goes (receivers, group) and what mutes it (a silence, an inhibiting
//! alert).
//!
//! [`read`] gathers them from the store: the `active` partition (firing,
//! NoData and recently resolved alert records, kept until their TTL) and the
//! state partitions of the configured rules (pending instances,
//! which have no alert record yet), plus the silences. [`annotate`] (pure)
//! decides routing, grouping, silences and inhibition with
//! `firebell_notify`'s own functions ([`firebell_notify::route`],
//! [`firebell_notify::group_key`], [`firebell_notify::silenced_by`],
//! [`firebell_notify::inhibitors`]), exactly as the dispatcher does:
//! inhibition before silences; a resolved alert passes through silences
//! when `silences.resolved_pass_through` is set. A pending alert is shown
//! as the dispatcher would treat it were it firing now. Reading writes
//! nothing.

use std::collections::BTreeMap;

use firebell_core::alert::{ALERTSTATE_LABEL, Alert, AlertStatus, NODATA};
use firebell_core::model::Labels;
use firebell_core::ports::StateStore;
use firebell_core::series::Epoch;
use firebell_core::state::Status;
use firebell_notify::{Matcher, Silence, group_key, inhibitors, route, silenced_by};

use crate::config::Config;
use crate::error::EngineError;
use crate::keys::{self, StoredState};

/// Where an alert is in its life, as listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertState {
    /// The condition holds, waiting for `for` / M of N: nobody is told yet.
    Pending,
    Firing,
    /// An instance without data (`missing_data: nodata`): its NoData alert fires.
    NoData,
    /// Resolved recently (kept until the record's TTL).
    Resolved,
}

impl AlertState {
    pub const ALL: [AlertState; 4] = [
        AlertState::Pending,
        AlertState::Firing,
        AlertState::NoData,
        AlertState::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::NoData => "nodata",
            AlertState::Resolved => "resolved",
        }
    }
}

/// One route an alert reaches, with the group it joins there.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRoute {
    pub receiver: String,
    /// The receiver's time zone (IANA name; `UTC` by default).
    pub time_zone: String,
    /// `root`, `root/0`, ...
    pub route_path: String,
    /// The group key, as the notification log and the outbox know it.
    pub group_key: String,
    /// The route's `group_by` labels with the alert's values.
    pub group_labels: Labels,
}

/// The silence muting an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Muting {
    pub id: String,
    pub created_by: String,
    pub comment: String,
    pub ends_at: Epoch,
}

/// The alert inhibiting another.
#[derive(Debug, Clone, PartialEq)]
pub struct Inhibitor {
    pub fingerprint: String,
    pub rule: String,
    pub labels: Labels,
}

/// An alert active now, annotated.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveAlert {
    /// The alert record (for a pending alert, the record it would fire with).
    pub alert: Alert,
    pub state: AlertState,
    /// When it entered `state`: pending since the first breach, firing since
    /// it fired, NoData since data went missing, resolved since it resolved.
    pub since: Epoch,
    /// The routes it reaches, in tree order (never empty with a routing tree).
    pub routes: Vec<AlertRoute>,
    /// The silence muting it, if any.
    pub silenced_by: Option<Muting>,
    /// The alert inhibiting it, if any (inhibition wins over silences, as
    /// in the dispatcher; only a firing or pending alert can be inhibited).
    pub inhibited_by: Option<Inhibitor>,
}

impl ActiveAlert {
    /// The `severity` label, if any.
    pub fn severity(&self) -> Option<&str> {
        self.alert.labels.get("severity").map(String::as_str)
    }
}

/// What to list: every matcher holds on the alert's labels, its state is
/// one of `states` (all when empty), one of its routes goes to `receiver`.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub matchers: Vec<Matcher>,
    pub states: Vec<AlertState>,
    pub receiver: Option<String>,
}

impl Filter {
    pub fn accepts(&self, a: &ActiveAlert) -> bool {
        self.matchers.iter().all(|m| m.matches(&a.alert.labels))
            && (self.states.is_empty() || self.states.contains(&a.state))
            && self
                .receiver
                .as_ref()
                .is_none_or(|r| a.routes.iter().any(|x| &x.receiver == r))
    }
}

/// The state of an alert record: NoData alerts carry `alertstate=nodata`.
fn record_state(a: &Alert) -> AlertState {
    match a.status {
        AlertStatus::Resolved => AlertState::Resolved,
        AlertStatus::Firing
            if a.labels.get(ALERTSTATE_LABEL).map(String::as_str) == Some(NODATA) =>
        {
            AlertState::NoData
        }
        AlertStatus::Firing => AlertState::Firing,
    }
}

/// Every alert active in `store` with its state: the `active` records and
/// the pending instances of `config`'s rules, and the stored silences
/// (unreadable ones skipped, as the dispatcher skips them). Reads only.
pub async fn read(
    store: &dyn StateStore,
    config: &Config,
) -> Result<(Vec<(Alert, AlertState)>, Vec<Silence>), EngineError> {
    let mut out = Vec::new();
    for item in store.query(keys::ACTIVE, "").await? {
        let a: Alert = keys::decode(&item)?;
        let state = record_state(&a);
        out.push((a, state));
    }
    let buckets: std::collections::BTreeSet<u32> = config
        .rules
        .rules
        .iter()
        .map(|r| keys::bucket(&r.name))
        .collect();
    let pending = futures_util::future::try_join_all(buckets.into_iter().map(|b| {
        let pk = keys::state_partition(b);
        async move { store.query(&pk, "").await }
    }))
    .await?;
    for items in pending {
        for item in items {
            let s: StoredState = keys::decode(&item)?;
            if s.state.status != Status::Pending {
                continue;
            }
            let Some(rule) = s
                .labels
                .get("alertname")
                .and_then(|name| config.rules.get(name))
            else {
                continue;
            };
            if let Some(a) = crate::judge::current_alert(
                rule,
                &s.labels,
                &s.state,
                s.state.value,
                &rule.annotations,
            ) {
                out.push((a, AlertState::Pending));
            }
        }
    }
    let (silences, _unreadable) = firebell_notify::load_silences(store).await?;
    Ok((out, silences))
}

/// Severity order: `page`, then `ticket`, then any other or none.
fn severity_rank(s: Option<&str>) -> u8 {
    match s {
        Some("page") => 0,
        Some("ticket") => 1,
        _ => 2,
    }
}

/// Routes, groups, silences and inhibition of `alerts` at `now`, decided as
/// the dispatcher decides them (see the module documentation); sorted by
/// severity (page, ticket, the rest) then age (oldest `since` first).
pub fn annotate(
    config: &Config,
    alerts: Vec<(Alert, AlertState)>,
    silences: &[Silence],
    now: Epoch,
) -> Vec<ActiveAlert> {
    let cfg = &config.notify;
    // The dispatcher's snapshot: the `active` records. Pending alerts are
    // only ever targets, never inhibitors.
    let snapshot: Vec<Alert> = alerts
        .iter()
        .filter(|(_, s)| *s != AlertState::Pending)
        .map(|(a, _)| a.clone())
        .collect();
    let targets: Vec<Alert> = alerts
        .iter()
        .filter(|(_, s)| *s != AlertState::Resolved)
        .map(|(a, _)| a.clone())
        .collect();
    let inhibited = inhibitors(&cfg.inhibit_rules, &snapshot, &targets);
    let by_fingerprint: BTreeMap<&str, &Alert> = snapshot
        .iter()
        .filter(|a| a.status == AlertStatus::Firing)
        .map(|a| (a.fingerprint.as_str(), a))
        .collect();
    let pass = cfg.silence_policy.resolved_pass_through;
    let mut out: Vec<ActiveAlert> = alerts
        .into_iter()
        .map(|(alert, state)| {
            let since = match state {
                AlertState::Pending => alert.active_since,
                AlertState::Firing | AlertState::NoData => alert.fired_at,
                AlertState::Resolved => alert.resolved_at.unwrap_or(alert.fired_at),
            };
            let inhibited_by = (state != AlertState::Resolved)
                .then(|| inhibited.get(&alert.fingerprint))
                .flatten()
                .and_then(|fp| by_fingerprint.get(fp.as_str()))
                .map(|s| Inhibitor {
                    fingerprint: s.fingerprint.clone(),
                    rule: s.name().to_string(),
                    labels: s.labels.clone(),
                });
            let silenced_by = if inhibited_by.is_none() && (state != AlertState::Resolved || !pass)
            {
                silenced_by(silences, &alert.labels, now).map(|s| Muting {
                    id: s.id.clone(),
                    created_by: s.created_by.clone(),
                    comment: s.comment.clone(),
                    ends_at: s.ends_at,
                })
            } else {
                None
            };
            let routes = if cfg.route.receiver.is_empty() {
                Vec::new()
            } else {
                route(cfg, &alert.labels)
                    .into_iter()
                    .map(|m| {
                        let group_labels = m.group_by.group_labels(&alert.labels);
                        AlertRoute {
                            time_zone: cfg
                                .receivers
                                .get(&m.receiver)
                                .map(|r| r.time_zone.trim())
                                .filter(|z| !z.is_empty())
                                .unwrap_or("UTC")
                                .to_string(),
                            group_key: group_key(&m.receiver, &m.path, &group_labels),
                            route_path: m.path,
                            receiver: m.receiver,
                            group_labels,
                        }
                    })
                    .collect()
            };
            ActiveAlert {
                alert,
                state,
                since,
                routes,
                silenced_by,
                inhibited_by,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (
            severity_rank(a.severity()),
            a.since,
            &a.alert.labels,
            a.state,
        )
            .cmp(&(
                severity_rank(b.severity()),
                b.since,
                &b.alert.labels,
                b.state,
            ))
    });
    out
}

/// [`read`], [`annotate`] and `filter`: what `firebell alerts` lists.
pub async fn list(
    store: &dyn StateStore,
    config: &Config,
    filter: &Filter,
    now: Epoch,
) -> Result<Vec<ActiveAlert>, EngineError> {
    let (alerts, silences) = read(store, config).await?;
    let mut out = annotate(config, alerts, &silences, now);
    out.retain(|a| filter.accepts(a));
    Ok(out)
}
