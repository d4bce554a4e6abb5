//! Ports: the small traits the engine talks to. Adapters live at the edge
//! (`firebell-embedded` for the local mode, `firebell-aws` for AWS). Every
//! error says whether retrying the same call may succeed.

use std::collections::BTreeMap;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::{Labels, MetricSpec};
use crate::series::{Epoch, Point};

// ---------------------------------------------------------------- clock

/// The only place time comes from. The core never reads the clock itself.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// The wall clock: the [`Clock`] port's real adapter.
///
/// Only binaries (the Lambda's and the CLI's wiring) and adapter tests
/// construct it, and hand it to the adapters as an `Arc<dyn Clock>`; the
/// core's logic never calls it (time reaches the core as an argument).
/// Tests, replays and demos use `firebell_embedded::ManualClock` instead.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        // A clock before 1970 reads as 1970, one past jiff's range as its
        // end: never a panic (jiff's `Timestamp::now` panics there).
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
        Timestamp::new(secs, since.subsec_nanos() as i32).unwrap_or(Timestamp::MAX)
    }
}

// ---------------------------------------------------------------- metrics

/// One query of a fetch: `id` is unique within the fetch.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    pub id: String,
    pub spec: MetricSpec,
}

/// The datapoints of one query, ascending by time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricSeries {
    pub id: String,
    pub points: Vec<Point>,
    /// False when the source said the data is partial (CloudWatch `PartialData`)
    /// or could not be fetched completely: the engine must not resolve on it.
    pub complete: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("metrics source throttled: {0}")]
    Throttled(String),
    #[error("metrics source unavailable: {0}")]
    Unavailable(String),
    #[error("bad metrics query: {0}")]
    BadQuery(String),
}

impl MetricsError {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, MetricsError::BadQuery(_))
    }
}

/// Reads metric datapoints for `[start, end)`.
#[async_trait]
pub trait MetricsSource: Send + Sync {
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: Epoch,
        end: Epoch,
    ) -> Result<Vec<MetricSeries>, MetricsError>;

    /// The values of `spec`'s wildcard dimensions (`*`) for every metric the
    /// source reports for it (same namespace and metric, exactly the spec's
    /// dimension names, equal fixed dimensions): one map from wildcard
    /// dimension to value per metric, sorted and distinct. Only the
    /// combinations that exist, never their cross product. Sources without
    /// discovery return an empty list.
    async fn dimension_values(&self, spec: &MetricSpec) -> Result<Vec<Labels>, MetricsError> {
        let _ = spec;
        Ok(Vec::new())
    }

    /// The roles to assume per source account (account id -> role ARN, the
    /// config's `accounts:` section), handed over before every cycle's
    /// plan: a metric naming an account listed is read with that role.
    /// Sources without accounts (replay files) ignore it.
    fn use_account_roles(&self, roles: &BTreeMap<String, String>) {
        let _ = roles;
    }
}

// ---------------------------------------------------------------- alarms

/// A CloudWatch alarm's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlarmState {
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "ALARM")]
    Alarm,
    #[serde(rename = "INSUFFICIENT_DATA")]
    InsufficientData,
}

impl AlarmState {
    /// CloudWatch's name: `OK`, `ALARM`, `INSUFFICIENT_DATA`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

/// An existing alarm, as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmInfo {
    pub name: String,
    pub description: String,
    pub state: AlarmState,
}

#[derive(Debug, thiserror::Error)]
pub enum AlarmError {
    #[error("alarms throttled: {0}")]
    Throttled(String),
    #[error("alarms unavailable: {0}")]
    Unavailable(String),
    /// The request was refused (permissions, validation): retrying the
    /// same request cannot help.
    #[error("alarm request refused: {0}")]
    Refused(String),
}

impl AlarmError {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, AlarmError::Refused(_))
    }
}

/// Where sentinel alarms live (CloudWatch alarms in the functions; a
/// simulation over the replay source locally). Only alarms whose names
/// start with the deployment's prefix are ever read or written.
#[async_trait]
pub trait AlarmService: Send + Sync {
    /// The names of the alarms starting with `prefix` that are in ALARM as
    /// of `now` (one `DescribeAlarms` with `StateValue` ALARM, paged).
    async fn alarming(&self, prefix: &str, now: Epoch) -> Result<Vec<String>, AlarmError>;

    /// Every alarm starting with `prefix`, with its description and state.
    async fn list(&self, prefix: &str, now: Epoch) -> Result<Vec<AlarmInfo>, AlarmError>;

    /// Creates or replaces one sentinel (`PutMetricAlarm`).
    async fn put(&self, alarm: &crate::sentinel::SentinelAlarm) -> Result<(), AlarmError>;

    /// Deletes alarms by name (`DeleteAlarms`, 100 at a time).
    async fn delete(&self, names: &[String]) -> Result<(), AlarmError>;
}

// ---------------------------------------------------------------- store

/// A DynamoDB-style item: partition key, sort key, a version for optimistic
/// concurrency, an opaque JSON body and an optional expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub pk: String,
    pub sk: String,
    /// Bumped by the caller on every write; conditions compare against it.
    pub version: u64,
    /// JSON text of the record.
    pub data: String,
    /// Unix seconds after which the item is gone (DynamoDB TTL). Stores never
    /// return an expired item, even before it is physically deleted.
    pub expires_at: Option<Epoch>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Key {
        Key {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

/// Condition of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Unconditional.
    Any,
    /// The item must not exist (or be expired).
    Absent,
    /// The stored item must exist with exactly this version.
    Version(u64),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The write's condition did not hold. Retrying the same write will fail
    /// again: re-read, re-decide, then write.
    #[error("conditional write failed for {pk}/{sk}")]
    Conflict { pk: String, sk: String },
    /// Temporary: throttling, network, service errors. Retry with backoff.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Permanent: bad data, bad request, corrupt file.
    #[error("store error: {0}")]
    Invalid(String),
    /// The writer lost its lease: another writer wrote since this one read,
    /// so this one may write nothing more. Its work is left to the next
    /// cycle, which reads afresh (so it counts as retryable).
    #[error("store unavailable: another cycle wrote since this one started; it writes nothing")]
    LeaseLost,
    /// The item is over the store's item size limit (DynamoDB: 400 KB,
    /// attribute names and values counted). Retrying the same write fails
    /// again: the writer must shrink the item.
    #[error("item {pk}/{sk} is {bytes} bytes, over the {limit}-byte item limit")]
    TooLarge {
        pk: String,
        sk: String,
        bytes: usize,
        limit: usize,
    },
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::LeaseLost)
    }
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, StoreError::LeaseLost)
    }
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }
    /// The item was too large: shrink it, then write again.
    pub fn is_too_large(&self) -> bool {
        matches!(self, StoreError::TooLarge { .. })
    }
}

/// The state store. Implementations: in-memory and on-disk (embedded),
/// DynamoDB (AWS). All pass `firebell_embedded::contract`.
#[async_trait]
pub trait StateStore: Send + Sync {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError>;
    /// Items for the keys that exist, in no particular order.
    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError>;
    async fn put(&self, item: Item, expect: Expect) -> Result<(), StoreError>;
    /// Items of partition `pk` whose sort key starts with `sk_prefix`, ascending by sort key.
    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError>;
    /// As [`StateStore::query`], but the store may answer from a view a
    /// moment old (DynamoDB: an eventually consistent read, half the read
    /// units). Only for reads whose staleness a later conditional write
    /// catches (`Expect::Version` fails on a stale version). Stores that
    /// are always consistent need not implement it.
    async fn query_eventually(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.query(pk, sk_prefix).await
    }
    async fn delete(&self, key: &Key, expect: Expect) -> Result<(), StoreError>;
}

// ---------------------------------------------------------------- notifier

/// SNS's limit on one message: the `MessageStructure=json` bodies, the
/// subject and the message attributes (256 KiB); also the limit of a whole
/// `PublishBatch`.
pub const SNS_MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// The longest subject the SNS notifier sends (it cuts longer ones); the
/// renderer keeps subjects shorter than this.
pub const SNS_MAX_SUBJECT_CHARS: usize = 100;
/// SNS accepts at most this many message attributes per message.
pub const SNS_MAX_MESSAGE_ATTRIBUTES: usize = 10;

/// One message ready to publish to one destination (an SNS topic ARN, or a
/// terminal/file name in the local mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outbound {
    /// Stable across retries of the same notification: used for FIFO
    /// deduplication and to recognise a re-send.
    pub idempotency_key: String,
    /// The notification group (FIFO MessageGroupId; order is kept within it).
    pub group_key: String,
    pub receiver: String,
    pub destination: String,
    /// At most [`SNS_MAX_SUBJECT_CHARS`] characters.
    pub subject: String,
    /// Per-protocol bodies (`default`, `email`, `sqs`, `lambda`, `https`), as
    /// SNS `MessageStructure=json` expects.
    pub bodies: BTreeMap<String, String>,
    /// At most [`SNS_MAX_MESSAGE_ATTRIBUTES`] message attributes (team,
    /// severity, status, alertname).
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("notifier unavailable: {0}")]
    Unavailable(String),
    #[error("message rejected: {0}")]
    Rejected(String),
    /// The publisher lost its lease (see [`StoreError::LeaseLost`]): nothing
    /// more may be published by it; the next cycle delivers.
    #[error(
        "notifier unavailable: store unavailable: another cycle wrote since this one started; it writes nothing"
    )]
    LeaseLost,
}

impl NotifyError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, NotifyError::Unavailable(_) | NotifyError::LeaseLost)
    }
}

#[async_trait]
pub trait Notifier: Send + Sync {
    async fn publish(&self, msg: &Outbound) -> Result<(), NotifyError>;
}

// ---------------------------------------------------------------- deployed config

/// What a [`ConfigSource`] poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigPoll {
    /// Not time to ask yet (the source's poll interval): nothing was asked.
    NotDue,
    /// Nothing newer than what this source already returned (or, on a first
    /// poll, nothing deployed).
    Unchanged,
    /// A deployed configuration not returned before: its bytes, and the
    /// deployment's label for it, if any.
    New {
        content: Vec<u8>,
        label: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigSourceError {
    pub message: String,
    /// The same poll may succeed later.
    pub retryable: bool,
}

/// Where the deployed config comes from (AWS AppConfig in the functions):
/// polled between cycles, never during one.
#[async_trait]
pub trait ConfigSource: Send + Sync + std::fmt::Debug {
    /// Polls as of `now` (Unix seconds). `fresh`: as a new client would,
    /// whatever the poll interval: the deployed configuration
    /// ([`ConfigPoll::New`]), or [`ConfigPoll::Unchanged`] when nothing is
    /// deployed.
    async fn poll(&self, now: Epoch, fresh: bool) -> Result<ConfigPoll, ConfigSourceError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_recent() {
        assert!(SystemClock.now().as_second() > 1_700_000_000);
    }
}
