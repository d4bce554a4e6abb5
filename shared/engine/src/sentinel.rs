//! Sentinel mode: poll a rule only while it matters.
//!
//! With `sentinels: {mode: auto}`, every rule (or SLO) that has a sound
//! sentinel alarm ([`firebell_core::sentinel`]) and is cheaper watched by one
//! ([`firebell_core::sentinel::mode_cost`]) is *covered*. A cycle evaluates
//! a covered rule only when it is **hot** ([`Gate::polls`]):
//!
//! - its sentinel is in ALARM (one `DescribeAlarms` a cycle finds them all:
//!   [`AlarmService::alarming`]); or
//! - one of its instances has a stored state that is not at rest (pending,
//!   firing, NoData, a breach in an M-of-N window, a gap being timed); or
//! - its **sweep** is due: every rule is evaluated at least once per `sweep`
//!   (default 25 minutes: [`firebell_core::sentinel::DEFAULT_SWEEP`] says why) whatever its sentinel says, staggered by rule so a
//!   sweep is spread over the interval ([`sweep_due`]); or
//! - its sentinel is not known to be in sync: not created yet, changed,
//!   not evaluated by CloudWatch yet, or the alarms could not be read.
//!
//! Every other rule is **cold**: the cycle skips it, which changes nothing,
//! because a judgement of a cold rule would change nothing either (the core
//! module's argument) and a cycle writes only what changes.
//!
//! **Sentinels follow the config.** firebell reconciles them itself after
//! each config change and at every sweep ([`reconcile`]), rather than
//! generating them as infrastructure as code: a rule change ships as an
//! AppConfig deployment in seconds, without a stack update, and the alarms
//! must follow it at once. The reconcile lists the alarms under the
//! deployment's prefix (never any other), creates the missing ones, updates
//! the changed ones (their description carries a definition hash) and
//! deletes those no longer wanted, at most [`MAX_PUTS_PER_CYCLE`] puts a
//! cycle (CloudWatch's `PutMetricAlarm` quota is a few a second): the rest
//! follow in the next cycles, their rules polled meanwhile. What it found
//! is kept in the `sentinel/sync` item (written only when it changes), which
//! every cycle reads to know which sentinels it may trust and `firebell
//! status` reports. `firebell sentinels plan|apply` runs the same
//! reconcile by hand.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use firebell_core::decode::{Decoder, format_duration};
use firebell_core::model::Rule;
use firebell_core::ports::{
    AlarmError, AlarmInfo, AlarmService, AlarmState, Item, Key, StateStore,
};
use firebell_core::sentinel::{
    self, CostInputs, DEFINITION_MARKER, ModeCost, Polling, SentinelAlarm,
};
use firebell_core::series::Epoch;
use firebell_core::state::{InstanceState, Status};
use serde::{Deserialize, Serialize};

use crate::Config;

/// The config section.
pub const SECTION: &str = "sentinels";
/// Why a sentinel listed as `INSUFFICIENT_DATA` is not trusted yet.
const NOT_EVALUATED: &str = "not evaluated by CloudWatch yet";
/// How long after a listing found a sentinel not evaluated the next cycles
/// list again.
const NOT_EVALUATED_RECHECK_SECS: Epoch = 600;
/// Puts (creates and updates) one reconcile makes at most.
pub const MAX_PUTS_PER_CYCLE: usize = 20;
/// The shortest and longest sweep.
pub const MIN_SWEEP: Duration = Duration::from_secs(60);
pub const MAX_SWEEP: Duration = Duration::from_secs(86_400);

/// Whether firebell keeps sentinels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every rule is polled every interval.
    #[default]
    Off,
    /// A sentinel for every rule where it is sound and cheaper.
    Auto,
}

/// The `sentinels:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct SentinelSettings {
    pub mode: Mode,
    /// Every rule is evaluated at least this often.
    pub sweep: Duration,
}

impl Default for SentinelSettings {
    fn default() -> Self {
        SentinelSettings {
            mode: Mode::Off,
            sweep: sentinel::DEFAULT_SWEEP,
        }
    }
}

impl SentinelSettings {
    /// Decodes the section: `mode` (`off` or `auto`), `sweep` (1m to 1d,
    /// whole minutes).
    pub fn decode(d: &mut Decoder<'_>, node: &marked_yaml::Node) -> SentinelSettings {
        let mut out = SentinelSettings::default();
        let Some(mut f) = d.fields(node, SECTION) else {
            return out;
        };
        if let Some(n) = f.opt("mode")
            && let Some(s) = d.str(n, "mode")
        {
            match s {
                "off" => out.mode = Mode::Off,
                "auto" => out.mode = Mode::Auto,
                other => d.error(
                    n,
                    format!("invalid `mode` {other:?} (expected one of: off, auto)"),
                ),
            }
        }
        if let Some(n) = f.opt("sweep")
            && let Some(v) = d.duration(n, "sweep")
        {
            if (MIN_SWEEP..=MAX_SWEEP).contains(&v) && v.as_secs() % 60 == 0 {
                out.sweep = v;
            } else {
                d.error(
                    n,
                    format!(
                        "sweep must be whole minutes between 1m and 1d, found {}",
                        format_duration(v)
                    ),
                );
            }
        }
        f.finish(d);
        out
    }

    /// The cost inputs the choice of mode uses.
    pub fn cost_inputs(&self) -> CostInputs {
        CostInputs {
            sweep: self.sweep,
            ..CostInputs::default()
        }
    }
}

/// The sentinels a config wants, and why the other rules are polled.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    pub alarms: Vec<SentinelAlarm>,
    /// Per sentinel (by name): what each mode costs a month.
    pub costs: BTreeMap<String, ModeCost>,
    /// Rule -> index in `alarms`.
    by_rule: HashMap<String, usize>,
    /// Rules on polling, and why.
    pub polling: BTreeMap<String, Polling>,
}

impl Desired {
    /// The sentinel covering `rule`, if any.
    pub fn sentinel_of(&self, rule: &str) -> Option<&SentinelAlarm> {
        self.by_rule.get(rule).map(|&i| &self.alarms[i])
    }

    pub fn by_name(&self, name: &str) -> Option<&SentinelAlarm> {
        self.alarms.iter().find(|a| a.name == name)
    }

    fn add(&mut self, alarm: SentinelAlarm, cost: ModeCost) {
        let i = self.alarms.len();
        for r in &alarm.rules {
            self.by_rule.insert(r.clone(), i);
        }
        self.costs.insert(alarm.name.clone(), cost);
        self.alarms.push(alarm);
    }
}

/// The sentinels `config` wants under `prefix`, decided with
/// `inputs` (prices, sweep, hours hot): every SLO's, then every other
/// rule's, each where it is sound and cheaper than polling.
pub fn desired_with(config: &Config, prefix: &str, inputs: &CostInputs) -> Desired {
    let mut out = Desired::default();
    let off = config.sentinels.mode == Mode::Off;
    let mut slo_rules: HashSet<&str> = HashSet::new();
    for slo in &config.slos {
        let marker = format!("{}:", slo.name);
        let rules: Vec<&Rule> = config
            .rules
            .rules
            .iter()
            .filter(|r| {
                r.name.starts_with(&marker)
                    && r.labels.get("slo").map(String::as_str) == Some(slo.name.as_str())
            })
            .collect();
        slo_rules.extend(rules.iter().map(|r| r.name.as_str()));
        if off {
            continue;
        }
        match sentinel::for_slo(slo, &rules, prefix) {
            Ok(alarm) => {
                let covered: Vec<&Rule> = rules
                    .iter()
                    .copied()
                    .filter(|r| alarm.rules.contains(&r.name))
                    .collect();
                let cost = sentinel::mode_cost(&covered, &alarm, inputs);
                if cost.sentinel < cost.polling {
                    out.add(alarm, cost);
                } else {
                    for r in covered {
                        out.polling.insert(
                            r.name.clone(),
                            Polling::Cheaper {
                                polling: cost.polling,
                                sentinel: cost.sentinel,
                            },
                        );
                    }
                }
            }
            Err(why) => {
                for r in &rules {
                    out.polling.insert(r.name.clone(), why.clone());
                }
            }
        }
    }
    for rule in &config.rules.rules {
        if out.by_rule.contains_key(&rule.name) || out.polling.contains_key(&rule.name) {
            continue;
        }
        if off {
            out.polling.insert(rule.name.clone(), Polling::Off);
            continue;
        }
        if slo_rules.contains(rule.name.as_str()) {
            // An SLO's coarser rules: polled (cheap, every few minutes).
            out.polling.insert(rule.name.clone(), Polling::SloCoarse);
            continue;
        }
        match sentinel::for_rule(rule, prefix) {
            Ok(alarm) => {
                let cost = sentinel::mode_cost(&[rule], &alarm, inputs);
                if cost.sentinel < cost.polling {
                    out.add(alarm, cost);
                } else {
                    out.polling.insert(
                        rule.name.clone(),
                        Polling::Cheaper {
                            polling: cost.polling,
                            sentinel: cost.sentinel,
                        },
                    );
                }
            }
            Err(why) => {
                out.polling.insert(rule.name.clone(), why);
            }
        }
    }
    out
}

/// [`desired_with`] with the config's own sweep and the default prices.
pub fn desired(config: &Config, prefix: &str) -> Desired {
    desired_with(config, prefix, &config.sentinels.cost_inputs())
}

// ------------------------------------------------------------ the sync record

/// The partition and sort key of the sync record.
pub const SYNC_PK: &str = "sentinel";
pub const SYNC_SK: &str = "sync";

pub fn sync_key() -> Key {
    Key::new(SYNC_PK, SYNC_SK)
}

/// What the last reconcile found: which sentinels can be trusted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncRecord {
    /// The config version it reconciled.
    pub config_version: String,
    pub prefix: String,
    /// Sentinel name -> definition hash, for those that exist as defined
    /// and that CloudWatch has evaluated.
    pub in_sync: BTreeMap<String, String>,
    /// Sentinel name -> why it cannot be trusted yet.
    pub out_of_sync: BTreeMap<String, String>,
    /// When it last changed.
    pub at: Epoch,
    /// Why the stored item could not be read (it trusts nothing then, and
    /// the next reconcile rewrites it).
    #[serde(skip)]
    pub corrupt: Option<String>,
}

impl SyncRecord {
    /// Whether `alarm` is known to exist as defined.
    pub fn trusts(&self, alarm: &SentinelAlarm) -> bool {
        self.corrupt.is_none() && self.in_sync.get(&alarm.name) == Some(&alarm.hash)
    }

    fn same_findings(&self, other: &SyncRecord) -> bool {
        self.corrupt.is_none()
            && other.corrupt.is_none()
            && self.config_version == other.config_version
            && self.prefix == other.prefix
            && self.in_sync == other.in_sync
            && self.out_of_sync == other.out_of_sync
    }
}

/// Reads the sync record (strongly consistent: one read unit). A record
/// that cannot be decoded is not an error that stops the cycle: it comes
/// back as one that trusts nothing (`corrupt` says why), so every covered
/// rule is polled until the next reconcile overwrites it.
pub async fn read_sync(
    store: &dyn StateStore,
) -> Result<Option<(SyncRecord, u64)>, crate::EngineError> {
    match store.get(&sync_key()).await? {
        Some(item) => {
            let record = crate::keys::decode::<SyncRecord>(&item).unwrap_or_else(|e| SyncRecord {
                corrupt: Some(e.to_string()),
                ..SyncRecord::default()
            });
            Ok(Some((record, item.version)))
        }
        None => Ok(None),
    }
}

// ------------------------------------------------------------ reconcile

/// What a reconcile finds and does.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Changes {
    /// Sentinels to create (names).
    pub create: Vec<String>,
    /// Sentinels whose definition changed (or was changed behind firebell's back).
    pub update: Vec<String>,
    /// Alarms under the prefix no longer wanted.
    pub delete: Vec<String>,
    /// Up to date and evaluated.
    pub in_sync: Vec<String>,
    /// Up to date, not evaluated by CloudWatch yet (`INSUFFICIENT_DATA`).
    pub not_evaluated: Vec<String>,
    /// Of `create` and `update`, those left for a later cycle (the put
    /// budget, or the cycle's deadline).
    pub deferred: Vec<String>,
    /// Puts and deletes CloudWatch refused (`name: why`); the others went on.
    pub refused: Vec<String>,
}

impl Changes {
    pub fn is_noop(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

/// The difference between the sentinels wanted and the alarms listed
/// under the prefix (pure).
pub fn diff(desired: &Desired, existing: &[AlarmInfo]) -> Changes {
    let by_name: HashMap<&str, &AlarmInfo> =
        existing.iter().map(|a| (a.name.as_str(), a)).collect();
    let mut out = Changes::default();
    for alarm in &desired.alarms {
        match by_name.get(alarm.name.as_str()) {
            None => out.create.push(alarm.name.clone()),
            Some(info) if info.description != alarm.description => {
                out.update.push(alarm.name.clone())
            }
            Some(info) if info.state == AlarmState::InsufficientData => {
                out.not_evaluated.push(alarm.name.clone())
            }
            Some(_) => out.in_sync.push(alarm.name.clone()),
        }
    }
    let wanted: HashSet<&str> = desired.alarms.iter().map(|a| a.name.as_str()).collect();
    for a in existing {
        // Only firebell's own sentinels: the prefix and the marker.
        if !wanted.contains(a.name.as_str()) && a.description.contains(DEFINITION_MARKER) {
            out.delete.push(a.name.clone());
        }
    }
    out.delete.sort();
    out
}

/// Lists the sentinels under `prefix`, works out the [`Changes`] and, with
/// `apply`, makes them: at most `max_puts` creates and updates (the rest
/// are `deferred`), deletes 100 at a time. Returns the changes and the
/// sync record they leave (what a cycle may trust: only sentinels listed
/// up to date and evaluated; those just put are trusted once a later
/// reconcile sees CloudWatch evaluate them).
#[allow(clippy::too_many_arguments)]
pub async fn reconcile(
    desired: &Desired,
    service: &dyn AlarmService,
    prefix: &str,
    config_version: &str,
    now: Epoch,
    max_puts: usize,
    apply: bool,
    should_stop: &(dyn Fn() -> bool + Sync),
) -> Result<(Changes, SyncRecord), AlarmError> {
    let existing = service.list(prefix, now).await?;
    let mut changes = diff(desired, &existing);
    let mut record = SyncRecord {
        config_version: config_version.to_string(),
        prefix: prefix.to_string(),
        at: now,
        ..SyncRecord::default()
    };
    for name in &changes.in_sync {
        if let Some(a) = desired.by_name(name) {
            record.in_sync.insert(name.clone(), a.hash.clone());
        }
    }
    for name in &changes.not_evaluated {
        record
            .out_of_sync
            .insert(name.clone(), NOT_EVALUATED.to_string());
    }
    let mut puts = 0;
    let to_put: Vec<(String, &str)> = changes
        .create
        .iter()
        .map(|n| (n.clone(), "missing"))
        .chain(
            changes
                .update
                .iter()
                .map(|n| (n.clone(), "definition changed")),
        )
        .collect();
    for (name, why) in to_put {
        let Some(alarm) = desired.by_name(&name) else {
            continue;
        };
        if !apply || puts >= max_puts || should_stop() {
            if apply {
                changes.deferred.push(name.clone());
            }
            record
                .out_of_sync
                .insert(name, format!("{why}; not put yet"));
            continue;
        }
        match service.put(alarm).await {
            Ok(()) => {
                puts += 1;
                record
                    .out_of_sync
                    .insert(name, format!("{why}; put, not evaluated yet"));
            }
            // Refused (a quota, a validation): this one alone; the next
            // sweep tries again.
            Err(e) if !e.is_retryable() => {
                changes.refused.push(format!("{name}: {e}"));
                record
                    .out_of_sync
                    .insert(name, format!("{why}; refused: {e}"));
            }
            Err(e) => return Err(e),
        }
    }
    if apply {
        for chunk in changes.delete.chunks(100) {
            if should_stop() {
                break;
            }
            match service.delete(chunk).await {
                Ok(()) => {}
                Err(e) if !e.is_retryable() => {
                    changes.refused.push(format!("{}: {e}", chunk.join(", ")))
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok((changes, record))
}

/// Writes `record` when its findings differ from `stored` (a reconcile
/// that finds what the last one found writes nothing).
pub async fn store_sync(
    store: &dyn StateStore,
    record: &SyncRecord,
    stored: Option<&(SyncRecord, u64)>,
) -> Result<bool, firebell_core::ports::StoreError> {
    if let Some((old, _)) = stored
        && old.same_findings(record)
    {
        return Ok(false);
    }
    let expect = match stored {
        Some((_, v)) => firebell_core::ports::Expect::Version(*v),
        None => firebell_core::ports::Expect::Absent,
    };
    let key = sync_key();
    store
        .put(
            Item {
                pk: key.pk,
                sk: key.sk,
                version: stored.map_or(1, |(_, v)| v + 1),
                data: crate::keys::encode(record),
                expires_at: None,
            },
            expect,
        )
        .await?;
    Ok(true)
}

// ------------------------------------------------------------ the gate

/// Whether the sweep of `rule` falls in this evaluation: its minute of the
/// sweep (a hash of its name) lies in the rule's interval ending `now`.
/// Every rule is swept once per `sweep`, the rules spread over it. (A
/// cycle that did not run postpones the sweeps of its minute by one sweep;
/// the tick heartbeat alarm pages about cycles that do not run.)
pub fn sweep_due(rule: &Rule, now: Epoch, sweep: Duration) -> bool {
    let k = i64::try_from((sweep.as_secs() / 60).max(1)).unwrap_or(1);
    let m = now.div_euclid(60);
    let interval = i64::try_from((rule.interval.as_secs() / 60).max(1)).unwrap_or(1);
    if interval >= k {
        return true;
    }
    let from = m - interval;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in rule.name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let phase = i64::try_from(h % k.unsigned_abs()).unwrap_or(0);
    // The first minute after `from` whose (minute + phase) is a multiple of k.
    let next = from + 1 + (k - (from + 1 + phase).rem_euclid(k)).rem_euclid(k);
    next <= m
}

/// Whether a stored state is at rest: inactive or resolved, no breach in
/// its M-of-N window, no gap being timed. A rule with a state not at rest
/// is hot. (A resolved alert's notice shows the values it resolved with,
/// whenever it goes out: a cold rule changes nothing there either.)
pub fn at_rest(state: &InstanceState) -> bool {
    matches!(state.status, Status::Inactive | Status::Resolved)
        && state.active_since.is_none()
        && state.missing_since.is_none()
        && state.nodata_since.is_none()
        && !state.window.iter().any(|&(_, breached)| breached)
}

/// Why a rule is evaluated this cycle, or that it is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Poll {
    /// No sentinel (polling mode for it).
    Uncovered,
    /// Its sentinel is not known to be in sync (or the alarms could not be read).
    Unsynced,
    /// Its sentinel is in ALARM.
    Alarm,
    /// A stored state not at rest.
    Active,
    /// Its sweep is due.
    Sweep,
    /// Cold: skipped.
    Cold,
}

/// What a cycle knows to decide which covered rules it skips.
#[derive(Debug)]
pub struct Gate<'a> {
    pub desired: &'a Desired,
    /// The running config's version: a record of another version is not
    /// trusted (labels or routes may have changed with it) until the
    /// reconcile of this cycle records this one.
    pub config_version: &'a str,

    pub sync: Option<&'a SyncRecord>,
    /// The sentinels in ALARM; `None` when they could not be read (every
    /// covered rule is then polled).
    pub alarming: Option<HashSet<String>>,
    pub sweep: Duration,
}

impl Gate<'_> {
    /// Whether (and why) `rule` is evaluated at `now`; `active`: one of its
    /// instances has a stored state not at rest.
    pub fn polls(&self, rule: &Rule, now: Epoch, active: bool) -> Poll {
        let Some(alarm) = self.desired.sentinel_of(&rule.name) else {
            return Poll::Uncovered;
        };
        let Some(alarming) = &self.alarming else {
            return Poll::Unsynced;
        };
        if !self
            .sync
            .is_some_and(|s| s.config_version == self.config_version && s.trusts(alarm))
        {
            return Poll::Unsynced;
        }
        if alarming.contains(&alarm.name) {
            return Poll::Alarm;
        }
        if active {
            return Poll::Active;
        }
        if sweep_due(rule, now, self.sweep) {
            return Poll::Sweep;
        }
        Poll::Cold
    }
}

/// Whether a reconcile is due at `now`: the config or the prefix changed
/// since the last one, sentinels wait to be put, or `now` is the first
/// tick of a sweep interval.
pub fn reconcile_due(
    config_version: &str,
    prefix: &str,
    sync: Option<&SyncRecord>,
    desired: &Desired,
    now: Epoch,
    sweep: Duration,
) -> bool {
    let Some(sync) = sync else {
        return !desired.alarms.is_empty();
    };
    if sync.config_version != config_version || sync.prefix != prefix {
        return true;
    }
    // Waiting to be put, or just put (the next listing sees them
    // evaluated); not evaluated by CloudWatch at the last listing, for a
    // few minutes after (CloudWatch evaluates a new alarm within a minute
    // or two; one that stays unevaluated waits for the sweep).
    if sync.out_of_sync.values().any(|why| {
        why.ends_with("not put yet")
            || why.ends_with("put, not evaluated yet")
            || (why.starts_with(NOT_EVALUATED) && now - sync.at < NOT_EVALUATED_RECHECK_SECS)
    }) {
        return true;
    }
    let s = i64::try_from(sweep.as_secs().max(60)).unwrap_or(900);
    now.div_euclid(s) > (now - 60).div_euclid(s)
}

/// What sentinels did in a cycle.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CycleSentinels {
    /// Covered rules evaluated: their sentinel was in ALARM.
    pub alarm: usize,
    /// ... a stored state was not at rest.
    pub active: usize,
    /// ... their sweep was due.
    pub swept: usize,
    /// ... their sentinel was not known to be in sync.
    pub unsynced: usize,
    /// Covered rules skipped (cold).
    pub cold: usize,
    /// The reconcile this cycle ran, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconciled: Option<Changes>,
}

impl CycleSentinels {
    pub(crate) fn count(&mut self, p: Poll) {
        match p {
            Poll::Uncovered => {}
            Poll::Unsynced => self.unsynced += 1,
            Poll::Alarm => self.alarm += 1,
            Poll::Active => self.active += 1,
            Poll::Sweep => self.swept += 1,
            Poll::Cold => self.cold += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, interval: u64) -> Rule {
        let text = format!(
            "rules:
  - name: {name}
    interval: {interval}s
    metrics:
      m: {{namespace: N, metric: M, stat: Sum}}
    expression: m
    condition: {{op: '>', threshold: 1}}
"
        );
        firebell_core::config::parse_rules("r.yaml", &text)
            .expect("rule")
            .rules
            .remove(0)
    }

    #[test]
    fn every_rule_is_swept_once_per_sweep_spread_over_it() {
        let sweep = Duration::from_secs(15 * 60);
        let rules: Vec<Rule> = (0..200).map(|i| rule(&format!("r{i}"), 60)).collect();
        let mut per_minute = vec![0usize; 15];
        for r in &rules {
            let swept: Vec<i64> = (1..=45i64)
                .filter(|m| sweep_due(r, m * 60, sweep))
                .collect();
            assert_eq!(swept.len(), 3, "{}: {swept:?}", r.name);
            assert_eq!(swept[1] - swept[0], 15);
            per_minute[(swept[0] % 15) as usize] += 1;
        }
        // Spread: no minute takes more than a quarter of the rules.
        assert!(per_minute.iter().all(|&n| n < 50), "{per_minute:?}");
    }

    #[test]
    fn a_rule_evaluated_every_five_minutes_is_swept_at_one_of_its_evaluations() {
        let sweep = Duration::from_secs(15 * 60);
        for i in 0..50 {
            let r = rule(&format!("five{i}"), 300);
            let swept: Vec<i64> = (1..=18i64)
                .map(|k| k * 5)
                .filter(|m| sweep_due(&r, m * 60, sweep))
                .collect();
            assert_eq!(swept.len(), 6, "{}: {swept:?}", r.name);
        }
        // An interval at least the sweep: every evaluation sweeps.
        assert!(sweep_due(&rule("hourly", 3600), 7 * 3600, sweep));
    }

    #[test]
    fn a_reconcile_is_due_on_a_config_change_and_once_per_sweep() {
        let desired = Desired::default();
        let sweep = Duration::from_secs(900);
        let record = SyncRecord {
            config_version: "v1".into(),
            prefix: "p-".into(),
            ..SyncRecord::default()
        };
        let due = |v: &str, now: Epoch| reconcile_due(v, "p-", Some(&record), &desired, now, sweep);
        assert!(due("v2", 960));
        assert!(!due("v1", 960));
        assert!(due("v1", 900));
        assert_eq!((0..3600).step_by(60).filter(|&t| due("v1", t)).count(), 4);
        // Nothing wanted and nothing kept: nothing to do.
        assert!(!reconcile_due("v1", "p-", None, &desired, 900, sweep));
        // A sentinel CloudWatch had not evaluated: listed again every cycle
        // for ten minutes, then at the sweeps.
        let waiting = SyncRecord {
            out_of_sync: [("p-rule.R".to_string(), NOT_EVALUATED.to_string())].into(),
            at: 960,
            ..record.clone()
        };
        let due = |now| reconcile_due("v1", "p-", Some(&waiting), &desired, now, sweep);
        assert!(due(1020) && due(1500));
        assert!(!due(1560) && due(1800));
    }
}
