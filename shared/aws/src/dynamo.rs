//! DynamoDB state store.
//!
//! # Table layout
//!
//! One table holds every record; [`create_table_if_missing`] creates it.
//!
//! | attribute    | type | role                                                        |
//! |--------------|------|-------------------------------------------------------------|
//! | `pk`         | S    | partition (hash) key: [`Item::pk`]                          |
//! | `sk`         | S    | sort (range) key: [`Item::sk`]                              |
//! | `version`    | N    | optimistic-concurrency counter, bumped by the caller        |
//! | `data`       | S    | the record as JSON text                                     |
//! | `expires_at` | N    | Unix seconds; the table's TTL attribute; absent = no expiry |
//!
//! - Billing: on demand (`PAY_PER_REQUEST`); no secondary indexes.
//! - TTL: enabled on `expires_at`. DynamoDB deletes expired items lazily (up to
//!   days late), so the store also treats an item with `expires_at <= now` as
//!   gone: reads filter it out client-side and conditions see it as gone.
//! - Writes are conditional on `version`:
//!   [`Expect::Absent`] → `attribute_not_exists(pk) OR expires_at <= :now`,
//!   [`Expect::Version`] → `version = :v AND (attribute_not_exists(expires_at) OR expires_at > :now)`;
//!   a failed condition (`ConditionalCheckFailedException`) is
//!   [`StoreError::Conflict`].
//! - Reads are strongly consistent (`GetItem`, `BatchGetItem` in chunks of 100
//!   with `UnprocessedKeys` retried, `Query` on `pk = :pk AND begins_with(sk, :p)`
//!   following `LastEvaluatedKey`).
//! - Throttling, 5xx and network errors are [`StoreError::Unavailable`]
//!   (retryable); validation and missing-table errors are [`StoreError::Invalid`].
//! - Before a write, the item's size is computed as DynamoDB counts it
//!   ([`item_size`]: UTF-8 bytes of every attribute name and string value,
//!   numbers at most 21 bytes); over [`MAX_ITEM_BYTES`] (400 KB) the write is
//!   not sent and fails with [`StoreError::TooLarge`] (not retryable: the
//!   writer shrinks the item).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, KeysAndAttributes,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};
use firebell_core::ports::{Clock, Expect, Item, Key, StateStore, StoreError};
use firebell_core::series::Epoch;

use crate::error::{AwaitClassified, Classified, Fault, Resource, classify};
use crate::retry::Backoff;

const PK: &str = "pk";
const SK: &str = "sk";
const VERSION: &str = "version";
const DATA: &str = "data";
const EXPIRES_AT: &str = "expires_at";

/// `BatchGetItem` accepts at most this many keys per call.
const BATCH_GET_MAX: usize = 100;

/// API calls made by a [`DynamoStore`] so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DynamoStats {
    pub get_item: u64,
    pub batch_get_item: u64,
    pub put_item: u64,
    pub delete_item: u64,
    pub query: u64,
    /// Of the `Query` calls (pages), those eventually consistent
    /// (`StateStore::query_eventually`: `ConsistentRead` false).
    pub query_eventually: u64,
    /// `BatchGetItem` calls made only to retry `UnprocessedKeys`.
    pub unprocessed_retries: u64,
    /// Read capacity consumed, in half units (so an eventually consistent
    /// read of up to 4 KB counts 1): see [`read_half_units`]. DynamoDB's
    /// billing, worked out here from the item sizes ([`billed_size`]), so
    /// it is the same against AWS and an emulator (ministack bills every
    /// read request 1 unit whatever it reads).
    pub read_half_units: u64,
    /// Write capacity consumed: one unit per started KB of each item
    /// written (a delete counts 1: the deleted item's size is not known).
    pub write_units: u64,
}

impl DynamoStats {
    /// API calls made.
    pub fn total(&self) -> u64 {
        self.get_item + self.batch_get_item + self.put_item + self.delete_item + self.query
    }

    /// Write calls made (PutItem, DeleteItem).
    pub fn writes(&self) -> u64 {
        self.put_item + self.delete_item
    }

    /// Read capacity units consumed (whole units, halves for eventually
    /// consistent reads).
    pub fn read_units(&self) -> f64 {
        self.read_half_units as f64 / 2.0
    }
}

/// DynamoDB bills reads per 4 KB and writes per 1 KB of item.
const READ_UNIT_BYTES: usize = 4 * 1024;
const WRITE_UNIT_BYTES: usize = 1024;

/// The read capacity, in half units, of reading `bytes` in one unit of
/// billing (one item of `GetItem` or `BatchGetItem`, or one `Query` page,
/// whose item sizes are summed first): rounded up to 4 KB, at least one
/// unit; a strongly consistent read costs 1 unit per 4 KB, an eventually
/// consistent one half. A key that does not exist still costs the minimum.
pub(crate) fn read_half_units(bytes: usize, consistent: bool) -> u64 {
    let units = bytes.div_ceil(READ_UNIT_BYTES).max(1) as u64;
    if consistent { 2 * units } else { units }
}

/// The write capacity of writing an item of `bytes`: 1 KB units, at least 1.
pub(crate) fn write_units(bytes: usize) -> u64 {
    bytes.div_ceil(WRITE_UNIT_BYTES).max(1) as u64
}

/// An item's size as DynamoDB bills it: attribute names plus values
/// (strings: their UTF-8 bytes; numbers: 1 byte plus 1 per two significant
/// digits, as DynamoDB documents it).
pub(crate) fn billed_size(item: &Item) -> usize {
    fn number(v: i128) -> usize {
        let digits = v
            .unsigned_abs()
            .to_string()
            .trim_end_matches('0')
            .len()
            .max(1);
        1 + digits.div_ceil(2) + usize::from(v < 0)
    }
    let mut size = PK.len() + item.pk.len() + SK.len() + item.sk.len();
    size += VERSION.len() + number(item.version.into()) + DATA.len() + item.data.len();
    if let Some(e) = item.expires_at {
        size += EXPIRES_AT.len() + number(e.into());
    }
    size
}

impl fmt::Display for DynamoStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "GetItem={} BatchGetItem={} PutItem={} DeleteItem={} Query={} (eventually consistent {}) unprocessed_retries={} read_units={} write_units={}",
            self.get_item,
            self.batch_get_item,
            self.put_item,
            self.delete_item,
            self.query,
            self.query_eventually,
            self.unprocessed_retries,
            self.read_units(),
            self.write_units
        )
    }
}

#[derive(Debug, Default)]
struct Counters {
    get_item: AtomicU64,
    batch_get_item: AtomicU64,
    put_item: AtomicU64,
    delete_item: AtomicU64,
    query: AtomicU64,
    query_eventually: AtomicU64,
    unprocessed_retries: AtomicU64,
    read_half_units: AtomicU64,
    write_units: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// [`StateStore`] over one DynamoDB table (layout in the module docs).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    clock: Arc<dyn Clock>,
    backoff: Backoff,
    counters: Arc<Counters>,
}

impl DynamoStore {
    /// A store over the existing table `table`; `clock` decides expiry.
    pub fn new(client: Client, table: impl Into<String>, clock: Arc<dyn Clock>) -> DynamoStore {
        DynamoStore {
            client,
            table: table.into(),
            clock,
            backoff: Backoff {
                max_attempts: 8,
                base: Duration::from_millis(50),
                max_delay: Duration::from_secs(2),
            },
            counters: Arc::new(Counters::default()),
        }
    }

    /// A store with a client built from `config` (see [`crate::load_sdk_config`]).
    pub fn from_sdk_config(
        config: &aws_config::SdkConfig,
        table: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> DynamoStore {
        DynamoStore::new(Client::new(config), table, clock)
    }

    /// How `UnprocessedKeys` of `BatchGetItem` are retried.
    pub fn with_backoff(mut self, backoff: Backoff) -> DynamoStore {
        self.backoff = backoff;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// API calls made so far.
    pub fn stats(&self) -> DynamoStats {
        let c = &self.counters;
        DynamoStats {
            get_item: c.get_item.load(Ordering::Relaxed),
            batch_get_item: c.batch_get_item.load(Ordering::Relaxed),
            put_item: c.put_item.load(Ordering::Relaxed),
            delete_item: c.delete_item.load(Ordering::Relaxed),
            query: c.query.load(Ordering::Relaxed),
            query_eventually: c.query_eventually.load(Ordering::Relaxed),
            unprocessed_retries: c.unprocessed_retries.load(Ordering::Relaxed),
            read_half_units: c.read_half_units.load(Ordering::Relaxed),
            write_units: c.write_units.load(Ordering::Relaxed),
        }
    }

    fn consumed(&self, counter: &AtomicU64, units: u64) {
        counter.fetch_add(units, Ordering::Relaxed);
    }

    fn now(&self) -> Epoch {
        self.clock.now().as_second()
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: i128) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key_map(key: &Key) -> HashMap<String, AttributeValue> {
    HashMap::from([(PK.to_owned(), s(&key.pk)), (SK.to_owned(), s(&key.sk))])
}

fn encode(item: &Item) -> HashMap<String, AttributeValue> {
    let mut m = HashMap::with_capacity(5);
    m.insert(PK.to_owned(), s(&item.pk));
    m.insert(SK.to_owned(), s(&item.sk));
    m.insert(VERSION.to_owned(), n(item.version.into()));
    m.insert(DATA.to_owned(), s(&item.data));
    if let Some(e) = item.expires_at {
        m.insert(EXPIRES_AT.to_owned(), n(e.into()));
    }
    m
}

/// DynamoDB's item size limit: 400 KB, attribute names and values counted.
pub(crate) const MAX_ITEM_BYTES: usize = 400 * 1024;

/// The size of `item` as DynamoDB counts it against [`MAX_ITEM_BYTES`]: the
/// UTF-8 bytes of each attribute name plus its value (strings: their bytes;
/// numbers: counted at their 21-byte maximum, an upper bound).
pub(crate) fn item_size(item: &Item) -> usize {
    const NUMBER: usize = 21;
    let mut size = PK.len() + item.pk.len() + SK.len() + item.sk.len();
    size += VERSION.len() + NUMBER + DATA.len() + item.data.len();
    if item.expires_at.is_some() {
        size += EXPIRES_AT.len() + NUMBER;
    }
    size
}

fn check_size(item: &Item) -> Result<(), StoreError> {
    let bytes = item_size(item);
    if bytes > MAX_ITEM_BYTES {
        return Err(StoreError::TooLarge {
            pk: item.pk.clone(),
            sk: item.sk.clone(),
            bytes,
            limit: MAX_ITEM_BYTES,
        });
    }
    Ok(())
}

fn decode(m: &HashMap<String, AttributeValue>) -> Result<Item, StoreError> {
    fn get_s(m: &HashMap<String, AttributeValue>, name: &str) -> Result<String, StoreError> {
        match m.get(name) {
            Some(AttributeValue::S(v)) => Ok(v.clone()),
            other => Err(StoreError::Invalid(format!(
                "item attribute {name}: expected a string, found {other:?}"
            ))),
        }
    }
    fn get_n<T: std::str::FromStr>(
        m: &HashMap<String, AttributeValue>,
        name: &str,
    ) -> Result<Option<T>, StoreError> {
        match m.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| {
                StoreError::Invalid(format!("item attribute {name}: bad number {v:?}"))
            }),
            Some(other) => Err(StoreError::Invalid(format!(
                "item attribute {name}: expected a number, found {other:?}"
            ))),
        }
    }
    Ok(Item {
        pk: get_s(m, PK)?,
        sk: get_s(m, SK)?,
        version: get_n(m, VERSION)?
            .ok_or_else(|| StoreError::Invalid("item attribute version: missing".to_owned()))?,
        data: get_s(m, DATA)?,
        expires_at: get_n(m, EXPIRES_AT)?,
    })
}

/// An item is live while `now < expires_at`: it is gone at its expiry second
/// (the `firebell_embedded::contract` rule, shared by every store).
fn is_live(item: &Item, now: Epoch) -> bool {
    item.expires_at.is_none_or(|e| e > now)
}

fn check_key(pk: &str, sk: &str) -> Result<(), StoreError> {
    if pk.is_empty() || sk.is_empty() {
        return Err(StoreError::Invalid(format!(
            "empty key component: pk={pk:?} sk={sk:?}"
        )));
    }
    Ok(())
}

/// The port error of a failed call `what` on `table`: its one-line message
/// names the problem and the fix when recognised (`crate::AwsProblem`).
fn store_error(
    c: &Classified,
    what: &str,
    key: Option<&Key>,
    client: &Client,
    table: &str,
) -> StoreError {
    let region = client.config().region().map(|r| r.as_ref().to_string());
    let message = || c.describe("dynamodb", what, Resource::Table(table), region.as_deref());
    match (c.fault, key) {
        (Fault::ConditionFailed, Some(k)) => StoreError::Conflict {
            pk: k.pk.clone(),
            sk: k.sk.clone(),
        },
        (Fault::Throttled | Fault::Transient, _) => StoreError::Unavailable(message()),
        _ => StoreError::Invalid(message()),
    }
}

/// The condition expression, names and values of a write's expectation.
struct Condition {
    expression: &'static str,
    names: Vec<(&'static str, &'static str)>,
    values: Vec<(&'static str, AttributeValue)>,
}

fn condition(expect: Expect, now: Epoch) -> Option<Condition> {
    match expect {
        Expect::Any => None,
        Expect::Absent => Some(Condition {
            expression: "attribute_not_exists(#pk) OR #e <= :now",
            names: vec![("#pk", PK), ("#e", EXPIRES_AT)],
            values: vec![(":now", n(now.into()))],
        }),
        Expect::Version(v) => Some(Condition {
            expression: "#v = :v AND (attribute_not_exists(#e) OR #e > :now)",
            names: vec![("#v", VERSION), ("#e", EXPIRES_AT)],
            values: vec![(":v", n(v.into())), (":now", n(now.into()))],
        }),
    }
}

#[async_trait]
impl StateStore for DynamoStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        check_key(&key.pk, &key.sk)?;
        bump(&self.counters.get_item);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_map(key)))
            .consistent_read(true)
            .send()
            .await_classified()
            .await
            .map_err(|c| store_error(&c, "GetItem", None, &self.client, &self.table))?;
        let now = self.now();
        let item = out.item().map(decode).transpose()?;
        let bytes = item.as_ref().map_or(0, billed_size);
        self.consumed(&self.counters.read_half_units, read_half_units(bytes, true));
        Ok(item.filter(|i| is_live(i, now)))
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        // BatchGetItem rejects duplicate keys in one request.
        let unique: BTreeSet<&Key> = keys.iter().collect();
        for k in &unique {
            check_key(&k.pk, &k.sk)?;
        }
        let unique: Vec<&Key> = unique.into_iter().collect();
        let mut items = Vec::with_capacity(unique.len());
        for chunk in unique.chunks(BATCH_GET_MAX) {
            let mut pending = KeysAndAttributes::builder()
                .set_keys(Some(chunk.iter().map(|k| key_map(k)).collect()))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Invalid(format!("BatchGetItem request: {e}")))?;
            let mut attempts = 0u32;
            loop {
                attempts += 1;
                bump(&self.counters.batch_get_item);
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, pending.clone())
                    .send()
                    .await_classified()
                    .await
                    .map_err(|c| {
                        store_error(&c, "BatchGetItem", None, &self.client, &self.table)
                    })?;
                let mut read = 0;
                if let Some(found) = out.responses().and_then(|r| r.get(&self.table)) {
                    for m in found {
                        let item = decode(m)?;
                        read += 1;
                        self.consumed(
                            &self.counters.read_half_units,
                            read_half_units(billed_size(&item), true),
                        );
                        items.push(item);
                    }
                }
                // Keys asked for and not found still cost the minimum each.
                let unprocessed = out
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .map_or(0, |k| k.keys().len());
                let missing = pending.keys().len().saturating_sub(read + unprocessed) as u64;
                self.consumed(
                    &self.counters.read_half_units,
                    missing * read_half_units(0, true),
                );
                match out
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .filter(|k| !k.keys().is_empty())
                {
                    None => break,
                    Some(rest) => {
                        if !self.backoff.may_retry(attempts) {
                            return Err(StoreError::Unavailable(format!(
                                "BatchGetItem: {} keys still unprocessed after {attempts} attempts",
                                rest.keys().len()
                            )));
                        }
                        bump(&self.counters.unprocessed_retries);
                        tokio::time::sleep(self.backoff.delay(attempts - 1)).await;
                        pending = rest.clone();
                    }
                }
            }
        }
        let now = self.now();
        items.retain(|i| is_live(i, now));
        Ok(items)
    }

    async fn put(&self, item: Item, expect: Expect) -> Result<(), StoreError> {
        check_key(&item.pk, &item.sk)?;
        check_size(&item)?;
        let key = Key::new(item.pk.clone(), item.sk.clone());
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(encode(&item)));
        if let Some(c) = condition(expect, self.now()) {
            req = req.condition_expression(c.expression);
            for (k, v) in c.names {
                req = req.expression_attribute_names(k, v);
            }
            for (k, v) in c.values {
                req = req.expression_attribute_values(k, v);
            }
        }
        bump(&self.counters.put_item);
        self.consumed(&self.counters.write_units, write_units(billed_size(&item)));
        req.send()
            .await_classified()
            .await
            .map_err(|c| store_error(&c, "PutItem", Some(&key), &self.client, &self.table))?;
        Ok(())
    }

    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.query_with(pk, sk_prefix, true).await
    }

    async fn query_eventually(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.query_with(pk, sk_prefix, false).await
    }

    async fn delete(&self, key: &Key, expect: Expect) -> Result<(), StoreError> {
        self.delete_with(key, expect).await
    }
}

impl DynamoStore {
    /// A paginated Query, strongly consistent or not.
    async fn query_with(
        &self,
        pk: &str,
        sk_prefix: &str,
        consistent: bool,
    ) -> Result<Vec<Item>, StoreError> {
        if pk.is_empty() {
            return Err(StoreError::Invalid("query: empty partition key".to_owned()));
        }
        let mut items = Vec::new();
        let mut start_key: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let mut req = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(consistent)
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(pk))
                .set_exclusive_start_key(start_key.take());
            req = if sk_prefix.is_empty() {
                req.key_condition_expression("#pk = :pk")
            } else {
                req.key_condition_expression("#pk = :pk AND begins_with(#sk, :p)")
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(":p", s(sk_prefix))
            };
            bump(&self.counters.query);
            if !consistent {
                bump(&self.counters.query_eventually);
            }
            let out = req
                .send()
                .await_classified()
                .await
                .map_err(|c| store_error(&c, "Query", None, &self.client, &self.table))?;
            let mut bytes = 0;
            for m in out.items() {
                let item = decode(m)?;
                bytes += billed_size(&item);
                items.push(item);
            }
            self.consumed(
                &self.counters.read_half_units,
                read_half_units(bytes, consistent),
            );
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start_key = Some(k.clone()),
                _ => break,
            }
        }
        let now = self.now();
        items.retain(|i| is_live(i, now));
        items.sort_by(|a, b| a.sk.cmp(&b.sk));
        Ok(items)
    }

    async fn delete_with(&self, key: &Key, expect: Expect) -> Result<(), StoreError> {
        check_key(&key.pk, &key.sk)?;
        let mut req = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_map(key)));
        if let Some(c) = condition(expect, self.now()) {
            req = req.condition_expression(c.expression);
            for (k, v) in c.names {
                req = req.expression_attribute_names(k, v);
            }
            for (k, v) in c.values {
                req = req.expression_attribute_values(k, v);
            }
        }
        bump(&self.counters.delete_item);
        self.consumed(&self.counters.write_units, write_units(0));
        req.send()
            .await_classified()
            .await
            .map_err(|c| store_error(&c, "DeleteItem", Some(key), &self.client, &self.table))?;
        Ok(())
    }
}

/// Creates the store's table `name` (layout in the module docs, on-demand
/// billing) unless it exists, waits until it is `ACTIVE`, and enables TTL on
/// `expires_at` where the service supports it. For tests and local use;
/// production tables come from infrastructure code.
pub async fn create_table_if_missing(client: &Client, name: &str) -> Result<(), StoreError> {
    let exists = match client.describe_table().table_name(name).send().await {
        Ok(_) => true,
        Err(e) if e.code() == Some("ResourceNotFoundException") => false,
        Err(e) => {
            return Err(store_error(
                &classify(&e),
                "DescribeTable",
                None,
                client,
                name,
            ));
        }
    };
    if !exists {
        let attr = |n: &str| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |n: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(n)
                .key_type(t)
                .build()
        };
        let build_err = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Invalid(e.to_string());
        let created = client
            .create_table()
            .table_name(name)
            .attribute_definitions(attr(PK).map_err(build_err)?)
            .attribute_definitions(attr(SK).map_err(build_err)?)
            .key_schema(key(PK, KeyType::Hash).map_err(build_err)?)
            .key_schema(key(SK, KeyType::Range).map_err(build_err)?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match created {
            Ok(_) => tracing::info!(table = name, "created DynamoDB table"),
            // Created concurrently by someone else: fine.
            Err(e) if e.code() == Some("ResourceInUseException") => {}
            Err(e) => {
                return Err(store_error(
                    &classify(&e),
                    "CreateTable",
                    None,
                    client,
                    name,
                ));
            }
        }
    }
    wait_active(client, name).await?;
    enable_ttl(client, name).await;
    Ok(())
}

async fn wait_active(client: &Client, name: &str) -> Result<(), StoreError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let out = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| store_error(&classify(&e), "DescribeTable", None, client, name))?;
        let status = out.table().and_then(|t| t.table_status()).cloned();
        // An emulator may not report a status at all: take that as ready.
        if matches!(status, None | Some(TableStatus::Active)) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(StoreError::Unavailable(format!(
                "table {name} not ACTIVE after 120 s (status {status:?})"
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Enables TTL on `expires_at`; failures (already enabled, unsupported) are
/// logged, not returned: expiry is also enforced client-side.
async fn enable_ttl(client: &Client, name: &str) {
    let spec = match TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(EXPIRES_AT)
        .build()
    {
        Ok(spec) => spec,
        Err(e) => {
            tracing::warn!(error = %e, "TTL specification");
            return;
        }
    };
    match client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(spec)
        .send()
        .await
    {
        Ok(_) => tracing::info!(table = name, "enabled TTL on {EXPIRES_AT}"),
        Err(e) => {
            let c = classify(&e);
            tracing::info!(table = name, code = ?c.code, "TTL not enabled: {}", c.message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(expires_at: Option<Epoch>) -> Item {
        Item {
            pk: "rule#a".into(),
            sk: "inst#1".into(),
            version: 7,
            data: r#"{"x":1}"#.into(),
            expires_at,
        }
    }

    #[test]
    fn encode_decode_round_trip() {
        for e in [None, Some(1_700_000_000)] {
            let i = item(e);
            let m = encode(&i);
            assert_eq!(m.get(VERSION), Some(&AttributeValue::N("7".into())));
            assert_eq!(m.contains_key(EXPIRES_AT), e.is_some());
            assert_eq!(decode(&m).unwrap(), i);
        }
    }

    #[test]
    fn oversized_items_are_refused_before_sending() {
        let mut i = item(Some(1_700_000_000));
        i.data = "x".repeat(MAX_ITEM_BYTES);
        let err = check_size(&i).unwrap_err();
        assert!(err.is_too_large() && !err.is_retryable(), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "item {}/{} is {} bytes, over the 409600-byte item limit",
                i.pk,
                i.sk,
                item_size(&i)
            )
        );
        // Names count: the attribute names and numbers push a data string
        // of exactly the limit over it.
        assert!(item_size(&i) > MAX_ITEM_BYTES);
        i.data = "x".repeat(300 * 1024);
        assert!(check_size(&i).is_ok());
    }

    #[test]
    fn decode_rejects_corrupt_items() {
        let mut m = encode(&item(None));
        m.insert(VERSION.into(), AttributeValue::S("7".into()));
        assert!(matches!(decode(&m), Err(StoreError::Invalid(_))));
        let mut m = encode(&item(None));
        m.remove(DATA);
        assert!(matches!(decode(&m), Err(StoreError::Invalid(_))));
    }

    #[test]
    fn items_are_gone_from_their_expiry_second() {
        assert!(is_live(&item(None), 100));
        assert!(is_live(&item(Some(101)), 100));
        assert!(!is_live(&item(Some(100)), 100));
    }

    #[test]
    fn capacity_units_as_dynamodb_bills_them() {
        // Reads: 4 KB units, at least one, halved when eventually consistent.
        assert_eq!(read_half_units(0, true), 2);
        assert_eq!(read_half_units(0, false), 1);
        assert_eq!(read_half_units(4096, true), 2);
        assert_eq!(read_half_units(4097, true), 4);
        assert_eq!(read_half_units(10_000, false), 3);
        // Writes: 1 KB units, at least one.
        assert_eq!(write_units(1), 1);
        assert_eq!(write_units(1024), 1);
        assert_eq!(write_units(1025), 2);
        // Names and values; numbers by their significant digits.
        let i = item(Some(1_700_000_000));
        let fixed = "pk".len() + 6 + "sk".len() + 6 + "version".len() + "data".len() + 7;
        assert_eq!(billed_size(&i), fixed + 2 + "expires_at".len() + 2);
        assert_eq!(billed_size(&item(None)), fixed + 2);
    }

    #[test]
    fn conditions() {
        assert!(condition(Expect::Any, 5).is_none());
        let c = condition(Expect::Version(3), 5).unwrap();
        assert!(c.expression.starts_with("#v = :v"));
        assert_eq!(c.values[0].1, AttributeValue::N("3".into()));
    }
}
