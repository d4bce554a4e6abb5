//! Silences: mute the alerts matching all of a silence's matchers between
//! `starts_at` and `ends_at`.
//!
//! Stored in the state store, one item per silence: pk [`PK_SILENCE`], sk =
//! the silence id, data = the [`Silence`] as JSON, expiring
//! [`SILENCE_RETENTION`] after `ends_at` (expired silences stay listable, and
//! the dispatcher can still name who created a silence that just ended).
//!
//! Ids are the first 12 hex digits of a SHA-256 over the content and the
//! creation time, so adding the same silence twice in the same second is
//! idempotent (the second add returns the first). `expire` accepts a unique
//! id prefix of at least 4 characters.
//!
//! A silence must not mute everything by accident: matchers that all match
//! an absent label, or that all match every alert ([`matches_every_alert`]:
//! `alertname=~".+"`, `alertname!~""`, `alertname!=""` — every alert has a
//! non-empty `alertname` — or `x=~".*"`), are refused unless the spec is
//! forced ([`SilenceSpec::force`]; its comment says why).

use serde::{Deserialize, Serialize};

use firebell_core::decode::format_duration;
use firebell_core::model::Labels;
use firebell_core::ports::{Expect, Item, Key, StateStore, StoreError};
use firebell_core::series::Epoch;
use firebell_core::text::sha256_hex;

use crate::matcher::{Matcher, matches_all, parse_entry};
use crate::store::{PK_SILENCE, SILENCE_RETENTION};
use crate::types::SilencePolicy;

/// A stored silence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<Matcher>,
    pub starts_at: Epoch,
    pub ends_at: Epoch,
    pub created_by: String,
    pub comment: String,
    pub created_at: Epoch,
    pub updated_at: Epoch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    Active,
    Pending,
    Expired,
}

impl SilenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Active => "active",
            SilenceState::Pending => "pending",
            SilenceState::Expired => "expired",
        }
    }
}

impl Silence {
    pub fn state(&self, now: Epoch) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now < self.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    pub fn is_active(&self, now: Epoch) -> bool {
        self.state(now) == SilenceState::Active
    }

    /// Whether the silence's matchers all hold (whatever its state).
    pub fn matches(&self, labels: &Labels) -> bool {
        matches_all(&self.matchers, labels)
    }
}

/// A silence with its state at the time of listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SilenceView {
    pub silence: Silence,
    pub state: SilenceState,
}

/// What `add` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceSpec {
    /// Matcher strings, e.g. `team="payments"`, `alertname=~"Disk.*"`; one
    /// string may hold several (`{team="payments", env="prod"}`).
    pub matchers: Vec<String>,
    /// Default: now. A start in the past is moved to now.
    pub starts_at: Option<Epoch>,
    pub ends_at: Epoch,
    pub created_by: String,
    pub comment: String,
    /// Accept matchers that silence every alert (`firebell silence add
    /// --force`); the comment, required anyway, is the reason.
    pub force: bool,
}

/// The label every alert has, with a non-empty value (the rule name).
const ALWAYS_PRESENT: &str = "alertname";

/// Label values a matcher is tried on to decide whether it matches every
/// value: one of every printable ASCII character, and some longer values
/// (names, dimension values, non-ASCII). A regular expression that accepts
/// all of these is taken as accepting everything; control characters (which
/// `.` does not match) are left out.
fn probes() -> impl Iterator<Item = String> {
    let singles = (0x20u8..0x7f).map(|b| char::from(b).to_string());
    let longer = [
        "HighErrorRate",
        "payments-api",
        "i-0123456789abcdef0",
        "arn:aws:sqs:us-east-1:123456789012:q",
        "a b",
        "ünïcödé ✓",
        "0",
        "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
    ]
    .map(String::from);
    singles.chain(longer)
}

/// Whether `m` matches every alert: every value of its label (non-empty
/// ones for `alertname`, which every alert has; also absence otherwise).
fn matches_every_value(m: &Matcher) -> bool {
    (m.name == ALWAYS_PRESENT || m.matches_empty()) && probes().all(|v| m.matches_value(&v))
}

/// Whether `matchers` match every possible alert (an empty set does).
pub fn matches_every_alert(matchers: &[Matcher]) -> bool {
    matchers.iter().all(matches_every_value)
}

#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    /// The request is wrong; retrying it will fail again.
    #[error("invalid silence: {0}")]
    Invalid(String),
    #[error("no silence with id {0:?}")]
    NotFound(String),
    #[error("silence id prefix {prefix:?} is ambiguous: {}", .ids.join(", "))]
    Ambiguous { prefix: String, ids: Vec<String> },
    #[error("silence {0} has already expired")]
    AlreadyExpired(String),
    #[error("silence item {sk:?} is unreadable: {reason}")]
    Corrupt { sk: String, reason: String },
    /// Too many concurrent writers changed the silence meanwhile; retry.
    #[error("silence {0} kept changing concurrently; try again")]
    Contention(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SilenceError {
    pub fn is_retryable(&self) -> bool {
        match self {
            SilenceError::Store(e) => e.is_retryable(),
            SilenceError::Contention(_) => true,
            _ => false,
        }
    }
}

fn ts(t: Epoch) -> String {
    jiff::Timestamp::from_second(t)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| t.to_string())
}

fn secs_to_duration(s: i64) -> std::time::Duration {
    std::time::Duration::from_secs(u64::try_from(s).unwrap_or(0))
}

/// Validates `spec` against `policy` at `now`; every problem, joined by `; `.
pub(crate) fn validate(
    policy: &SilencePolicy,
    now: Epoch,
    spec: &SilenceSpec,
) -> Result<(Vec<Matcher>, Epoch, Epoch), String> {
    let mut problems = Vec::new();
    let mut matchers = Vec::new();
    if spec.matchers.is_empty() {
        problems.push("at least one matcher is required".to_string());
    }
    let mut parsed = !spec.matchers.is_empty();
    for m in &spec.matchers {
        // One `--matcher` may hold several: `{team="payments", env="prod"}`.
        match parse_entry(m) {
            Ok(m) => matchers.extend(m),
            Err(e) => {
                parsed = false;
                problems.push(e.to_string());
            }
        }
    }
    if parsed && !spec.force {
        if matchers.iter().all(Matcher::matches_empty) {
            problems.push(
                "the matchers would silence every alert: at least one must not match an absent label"
                    .to_string(),
            );
        } else if matches_every_alert(&matchers) {
            let every: Vec<String> = matchers.iter().map(ToString::to_string).collect();
            problems.push(format!(
                "the matchers would silence every alert: {} {} every alert (every alert has a non-empty `{ALWAYS_PRESENT}`); to silence everything anyway, force it (`firebell silence add --force`) with a comment saying why",
                every.join(", "),
                if every.len() == 1 { "matches" } else { "match" }
            ));
        }
    }
    if spec.created_by.trim().is_empty() {
        problems.push("`created_by` must not be empty".to_string());
    }
    if spec.comment.trim().is_empty() {
        problems.push("`comment` must not be empty".to_string());
    }
    let starts_at = spec.starts_at.unwrap_or(now).max(now);
    let ends_at = spec.ends_at;
    if ends_at <= starts_at {
        problems.push(format!(
            "the silence must end after it starts (starts {}, ends {})",
            ts(starts_at),
            ts(ends_at)
        ));
    } else {
        let max = i64::try_from(policy.max_duration.as_secs()).unwrap_or(i64::MAX);
        if ends_at - starts_at > max {
            problems.push(format!(
                "the silence lasts {}, longer than the maximum of {} (`silences.max_duration`)",
                format_duration(secs_to_duration(ends_at - starts_at)),
                format_duration(policy.max_duration)
            ));
        }
    }
    if problems.is_empty() {
        Ok((matchers, starts_at, ends_at))
    } else {
        Err(problems.join("; "))
    }
}

/// The first 12 hex digits of the SHA-256 of the matchers, the times, the
/// author and the comment, each followed by a NUL.
fn silence_id(s: &Silence) -> String {
    let mut content = String::new();
    for m in &s.matchers {
        content.push_str(&m.to_string());
        content.push('\0');
    }
    for part in [
        s.starts_at.to_string(),
        s.ends_at.to_string(),
        s.created_by.clone(),
        s.comment.clone(),
        s.created_at.to_string(),
    ] {
        content.push_str(&part);
        content.push('\0');
    }
    let mut id = sha256_hex(&content);
    id.truncate(12);
    id
}

fn to_item(s: &Silence, version: u64) -> Result<Item, SilenceError> {
    let data = serde_json::to_string(s).map_err(|e| SilenceError::Corrupt {
        sk: s.id.clone(),
        reason: e.to_string(),
    })?;
    Ok(Item {
        pk: PK_SILENCE.to_string(),
        sk: s.id.clone(),
        version,
        data,
        expires_at: Some(s.ends_at.saturating_add(SILENCE_RETENTION)),
    })
}

fn from_item(item: &Item) -> Result<Silence, SilenceError> {
    serde_json::from_str(&item.data).map_err(|e| SilenceError::Corrupt {
        sk: item.sk.clone(),
        reason: e.to_string(),
    })
}

/// Creates a silence.
pub async fn add(
    store: &dyn StateStore,
    policy: &SilencePolicy,
    now: Epoch,
    spec: SilenceSpec,
) -> Result<Silence, SilenceError> {
    let (matchers, starts_at, ends_at) =
        validate(policy, now, &spec).map_err(SilenceError::Invalid)?;
    let mut s = Silence {
        id: String::new(),
        matchers,
        starts_at,
        ends_at,
        created_by: spec.created_by.trim().to_string(),
        comment: spec.comment.trim().to_string(),
        created_at: now,
        updated_at: now,
    };
    s.id = silence_id(&s);
    match store.put(to_item(&s, 1)?, Expect::Absent).await {
        Ok(()) => Ok(s),
        Err(e) if e.is_conflict() => {
            // The same silence was added in the same second: return it.
            let key = Key::new(PK_SILENCE, s.id.clone());
            match store.get(&key).await? {
                Some(item) => from_item(&item),
                None => Err(SilenceError::Contention(s.id)),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Every stored silence, skipping unreadable items (as the dispatcher
/// does); also returns how many were skipped.
pub async fn load_lenient(store: &dyn StateStore) -> Result<(Vec<Silence>, usize), StoreError> {
    let items = store.query(PK_SILENCE, "").await?;
    let mut out = Vec::with_capacity(items.len());
    let mut bad = 0;
    for item in &items {
        match from_item(item) {
            Ok(s) => out.push(s),
            Err(_) => bad += 1,
        }
    }
    Ok((out, bad))
}

/// Every stored silence with its state: active first (ending soonest
/// first), then pending (starting soonest first), then expired (most
/// recently ended first).
pub async fn list(store: &dyn StateStore, now: Epoch) -> Result<Vec<SilenceView>, SilenceError> {
    let items = store.query(PK_SILENCE, "").await?;
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        let silence = from_item(item)?;
        let state = silence.state(now);
        out.push(SilenceView { silence, state });
    }
    out.sort_by(|a, b| {
        let key = |v: &SilenceView| match v.state {
            SilenceState::Active => v.silence.ends_at,
            SilenceState::Pending => v.silence.starts_at,
            SilenceState::Expired => -v.silence.ends_at,
        };
        (a.state, key(a), &a.silence.id).cmp(&(b.state, key(b), &b.silence.id))
    });
    Ok(out)
}

/// The silences active at `now`.
pub async fn active(store: &dyn StateStore, now: Epoch) -> Result<Vec<Silence>, SilenceError> {
    Ok(list(store, now)
        .await?
        .into_iter()
        .filter(|v| v.state == SilenceState::Active)
        .map(|v| v.silence)
        .collect())
}

/// Of `silences`, the active one muting `labels` at `now` (the one ending
/// last, if several): the silence the dispatcher names.
pub fn silenced_by<'a>(
    silences: &'a [Silence],
    labels: &Labels,
    now: Epoch,
) -> Option<&'a Silence> {
    silences
        .iter()
        .filter(|s| s.is_active(now) && s.matches(labels))
        .max_by(|a, b| (a.ends_at, &a.id).cmp(&(b.ends_at, &b.id)))
}

/// Ends a silence now (a pending one is ended before it starts). `id` may
/// be a unique prefix of at least 4 characters.
pub async fn expire(store: &dyn StateStore, now: Epoch, id: &str) -> Result<Silence, SilenceError> {
    for _ in 0..5 {
        let item = find(store, id).await?;
        let mut s = from_item(&item)?;
        if s.state(now) == SilenceState::Expired {
            return Err(SilenceError::AlreadyExpired(s.id));
        }
        s.starts_at = s.starts_at.min(now);
        s.ends_at = now;
        s.updated_at = now;
        match store
            .put(
                to_item(&s, item.version + 1)?,
                Expect::Version(item.version),
            )
            .await
        {
            Ok(()) => return Ok(s),
            Err(e) if e.is_conflict() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(SilenceError::Contention(id.to_string()))
}

async fn find(store: &dyn StateStore, id: &str) -> Result<Item, SilenceError> {
    let id = id.trim();
    if id.is_empty() {
        return Err(SilenceError::NotFound(id.to_string()));
    }
    if let Some(item) = store.get(&Key::new(PK_SILENCE, id)).await? {
        return Ok(item);
    }
    if id.len() < 4 {
        return Err(SilenceError::NotFound(id.to_string()));
    }
    let mut found = store.query(PK_SILENCE, id).await?;
    match found.len() {
        0 => Err(SilenceError::NotFound(id.to_string())),
        1 => Ok(found.remove(0)),
        _ => Err(SilenceError::Ambiguous {
            prefix: id.to_string(),
            ids: found.into_iter().map(|i| i.sk).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ids_hash_the_content_and_creation_time() {
        let s = Silence {
            id: String::new(),
            matchers: vec![Matcher::parse("team=payments").unwrap()],
            starts_at: 100,
            ends_at: 200,
            created_by: "alice".to_string(),
            comment: "maint".to_string(),
            created_at: 100,
            updated_at: 100,
        };
        // sha256("team=\"payments\"\0100\0200\0alice\0maint\0100\0"), as stored ids are.
        assert_eq!(silence_id(&s), "9ddf6405f304");
    }
}
