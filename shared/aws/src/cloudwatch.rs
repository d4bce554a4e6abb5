//! CloudWatch metrics source: `GetMetricData` for datapoints, `ListMetrics`
//! for wildcard dimension discovery.
//!
//! A fetch groups its queries by period (start and end are aligned down to
//! each period, so only complete periods are asked for), splits every group
//! into `GetMetricData` calls of at most 500 queries, runs the calls
//! concurrently (bounded by [`CloudWatchOptions::max_concurrency`]), follows
//! `NextToken`, retries throttled calls with jittered exponential backoff and
//! sorts every series ascending itself (it asks for `TimestampAscending`, but
//! does not rely on it).
//!
//! `GetMetricData` ids must match `^[a-z][a-zA-Z0-9_]*$`, which the caller's
//! ids need not: query `i` of a fetch is sent as `q{i}` and mapped back.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    Dimension, DimensionFilter, MessageData, MetricDataQuery, MetricDataResult, MetricStat, ScanBy,
    StatusCode,
};
use firebell_core::model::{Labels, MetricSpec};
use firebell_core::ports::{Clock, MetricQuery, MetricSeries, MetricsError};
use firebell_core::series::{Epoch, Point};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::error::{AwaitClassified, Classified, Fault, Resource};
use crate::retry::Backoff;

/// `GetMetricData` accepts at most this many queries per call.
pub(crate) const MAX_QUERIES_PER_CALL: usize = 500;

/// Tuning of a [`CloudWatchSource`].
#[derive(Debug, Clone)]
pub struct CloudWatchOptions {
    /// `GetMetricData` calls of one fetch in flight at once.
    pub max_concurrency: usize,
    /// Retries of a throttled call (on top of the SDK's own retries).
    pub backoff: Backoff,
    /// How long `dimension_values` answers from its cache before asking
    /// `ListMetrics` again.
    pub dimension_cache_ttl: Duration,
    /// At most this many `GetMetricData` calls (every page and retry
    /// counts) start per second, across all concurrent calls of the source;
    /// `None`: no limit. CloudWatch's quota is [`GET_METRIC_DATA_TPS`];
    /// `firebell capture` and `backtest --source cloudwatch`, which fetch
    /// long ranges, set it.
    pub max_get_metric_data_per_second: Option<u32>,
    /// Wildcard expansion (`ListMetrics`) lists only metrics that reported
    /// in the last 3 hours (`RecentlyActive=PT3H`, measured from now): a
    /// host that is gone does not become an instance. The engine (the
    /// Lambda, `run`) keeps this; `firebell capture` and `backtest --source
    /// cloudwatch` over a range that ended more than 3 hours ago turn it
    /// off, and CloudWatch then lists the metrics of the last two weeks.
    pub list_recently_active: bool,
    /// How long one fetch or listing of another region or role may take
    /// (every page and retry included) before it fails alone as
    /// `Unavailable`: a region that hangs must not use up the cycle (the
    /// evaluator's Lambda timeout is 50 s, less its 5 s safety margin).
    /// `None`: no limit.
    pub elsewhere_timeout: Option<Duration>,
    /// The SDK's operation-attempt timeout on the clients of other regions
    /// and roles (one attempt of one call; the SDK's retries then apply).
    pub elsewhere_attempt_timeout: Duration,
}

/// How far back `RecentlyActive=PT3H` reaches.
pub const RECENTLY_ACTIVE_SECS: i64 = 3 * 3600;

/// How far back `ListMetrics` lists metrics without `RecentlyActive`.
pub const LIST_METRICS_RETENTION_SECS: i64 = 14 * 86_400;

/// [`CloudWatchOptions::elsewhere_timeout`] by default: a fetch of another
/// region or account fails after this, leaving the cycle (50 s less a 5 s
/// safety margin) the time to judge and deliver the rest.
pub const ELSEWHERE_TIMEOUT: Duration = Duration::from_secs(20);

/// [`CloudWatchOptions::elsewhere_attempt_timeout`] by default.
pub const ELSEWHERE_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(8);

/// CloudWatch's default `GetMetricData` quota: 50 transactions per second
/// per account and region.
pub const GET_METRIC_DATA_TPS: u32 = 50;

/// Spaces calls evenly: at most `per_second` start in any second.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    interval: Duration,
    next: Mutex<Option<tokio::time::Instant>>,
}

impl RateLimiter {
    pub(crate) fn new(per_second: u32) -> RateLimiter {
        RateLimiter {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: Mutex::new(None),
        }
    }

    /// Books the next free slot at or after `now` and returns it.
    pub(crate) fn reserve(&self, now: tokio::time::Instant) -> tokio::time::Instant {
        let Ok(mut next) = self.next.lock() else {
            return now;
        };
        let at = next.map_or(now, |n| n.max(now));
        *next = Some(at + self.interval);
        at
    }

    /// Waits for this call's slot.
    pub(crate) async fn acquire(&self) {
        let at = self.reserve(tokio::time::Instant::now());
        tokio::time::sleep_until(at).await;
    }
}

impl Default for CloudWatchOptions {
    fn default() -> Self {
        CloudWatchOptions {
            max_concurrency: 4,
            backoff: Backoff::default(),
            dimension_cache_ttl: Duration::from_secs(300),
            max_get_metric_data_per_second: None,
            list_recently_active: true,
            elsewhere_timeout: Some(ELSEWHERE_TIMEOUT),
            elsewhere_attempt_timeout: ELSEWHERE_ATTEMPT_TIMEOUT,
        }
    }
}

/// API calls made by a [`CloudWatchSource`] so far (every attempt counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CloudWatchStats {
    pub get_metric_data: u64,
    pub list_metrics: u64,
    /// Attempts that were throttled and retried after a backoff.
    pub throttle_retries: u64,
    /// `dimension_values` answered from the cache.
    pub dimension_cache_hits: u64,
}

impl CloudWatchStats {
    /// API calls made (retries of a throttled call count again).
    pub fn total(&self) -> u64 {
        self.get_metric_data + self.list_metrics
    }
}

impl fmt::Display for CloudWatchStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "GetMetricData={} ListMetrics={} throttle_retries={} dimension_cache_hits={}",
            self.get_metric_data,
            self.list_metrics,
            self.throttle_retries,
            self.dimension_cache_hits
        )
    }
}

#[derive(Debug, Default)]
struct Counters {
    get_metric_data: AtomicU64,
    list_metrics: AtomicU64,
    throttle_retries: AtomicU64,
    dimension_cache_hits: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

#[derive(Debug, Clone)]
struct CacheEntry {
    fetched_at: Epoch,
    values: Vec<Labels>,
}

/// [`MetricsSource`](firebell_core::ports::MetricsSource) over CloudWatch.
///
/// A query of another region (`region:`) is sent by a client of that
/// region; one of an account with a role ([`CloudWatchSource::set_account_roles`],
/// the config's `accounts:`) by a client whose credentials assume that role;
/// one of another account without a role carries `AccountId` (CloudWatch
/// cross-account observability, from the monitoring account). Those
/// clients are built on first use and kept: one per (role, region).
#[derive(Debug)]
pub struct CloudWatchSource {
    caller: Caller,
    clock: Arc<dyn Clock>,
    options: CloudWatchOptions,
    dimension_cache: Mutex<HashMap<String, CacheEntry>>,
    /// What role clients are built from (their STS calls, base credentials).
    sdk: Option<aws_config::SdkConfig>,
    /// Source account -> role ARN to assume (`accounts:`).
    roles: Mutex<BTreeMap<String, String>>,
    /// The clients of other regions and roles, built once.
    clients: Mutex<HashMap<Target, Client>>,
}

/// Where a query is sent: a role to assume (or the evaluator's own
/// credentials) and a region (or the evaluator's own).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Target {
    role: Option<String>,
    region: Option<String>,
}

impl Target {
    fn is_home(&self) -> bool {
        self.role.is_none() && self.region.is_none()
    }

    /// For messages: `region us-west-2`, `role arn:..., region us-west-2`.
    fn describe(&self) -> String {
        match (&self.role, &self.region) {
            (Some(role), Some(region)) => format!("role {role}, region {region}"),
            (Some(role), None) => format!("role {role}"),
            (None, Some(region)) => format!("region {region}"),
            (None, None) => "this account and region".to_string(),
        }
    }
}

/// Runs `fut` (a call of `what` sent to `target`) under `limit` when the
/// target is another region or role: one that does not answer in time
/// fails alone, retryable.
async fn bounded<T>(
    target: &Target,
    limit: Option<Duration>,
    what: &str,
    fut: impl Future<Output = Result<T, MetricsError>>,
) -> Result<T, MetricsError> {
    let Some(limit) = limit.filter(|_| !target.is_home()) else {
        return fut.await;
    };
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(MetricsError::Unavailable(format!(
            "cloudwatch {what}: {} did not answer within {}",
            target.describe(),
            humantime(limit)
        ))),
    }
}

/// `20s`, `300ms`.
fn humantime(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// How one spec is read: the client's target and the `AccountId` /
/// `OwningAccount` to send (another account read through cross-account
/// observability; none when a role reads it in its own account).
fn route(spec: &MetricSpec, roles: &BTreeMap<String, String>) -> (Target, Option<String>) {
    let role = spec.account.as_ref().and_then(|a| roles.get(a)).cloned();
    let account_id = match (&spec.account, &role) {
        (Some(a), None) => Some(a.clone()),
        _ => None,
    };
    (
        Target {
            role,
            region: spec.region.clone(),
        },
        account_id,
    )
}

/// What a spawned `GetMetricData` task needs: cheap to clone.
#[derive(Debug, Clone)]
struct Caller {
    client: Client,
    counters: Arc<Counters>,
    backoff: Backoff,
    limiter: Option<Arc<RateLimiter>>,
    /// The role the client's credentials assume, if any (for messages).
    role: Option<String>,
}

impl CloudWatchSource {
    /// A source over `client`; `clock` drives the dimension cache.
    pub fn new(client: Client, clock: Arc<dyn Clock>) -> CloudWatchSource {
        CloudWatchSource::with_options(client, clock, CloudWatchOptions::default())
    }

    pub fn with_options(
        client: Client,
        clock: Arc<dyn Clock>,
        options: CloudWatchOptions,
    ) -> CloudWatchSource {
        CloudWatchSource {
            caller: Caller {
                client,
                counters: Arc::new(Counters::default()),
                backoff: options.backoff,
                limiter: options
                    .max_get_metric_data_per_second
                    .map(|n| Arc::new(RateLimiter::new(n))),
                role: None,
            },
            clock,
            options,
            dimension_cache: Mutex::new(HashMap::new()),
            sdk: None,
            roles: Mutex::new(BTreeMap::new()),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// A source with a client built from `config` (see [`crate::load_sdk_config`]);
    /// the clients that assume a role (`accounts:`) are built from it too.
    pub fn from_sdk_config(config: &aws_config::SdkConfig, clock: Arc<dyn Clock>) -> Self {
        let mut source = CloudWatchSource::new(Client::new(config), clock);
        source.sdk = Some(config.clone());
        source
    }

    /// The roles to assume per source account (the config's `accounts:`
    /// section, `Accounts::roles` in the engine): a metric of an
    /// account listed is read with a client assuming its role; one of an
    /// account not listed through cross-account observability (`AccountId`).
    /// Clients of roles that changed are dropped (built again on use).
    pub fn set_account_roles(&self, roles: BTreeMap<String, String>) {
        let Ok(mut current) = self.roles.lock() else {
            return;
        };
        if *current == roles {
            return;
        }
        let kept: BTreeSet<&String> = roles.values().collect();
        if let Ok(mut clients) = self.clients.lock() {
            clients.retain(|t, _| t.role.as_ref().is_none_or(|r| kept.contains(r)));
        }
        *current = roles;
    }

    /// How many clients of other regions and roles have been built (each
    /// once, then reused).
    pub fn clients_built(&self) -> usize {
        self.clients.lock().map(|c| c.len()).unwrap_or(0)
    }

    fn roles(&self) -> BTreeMap<String, String> {
        self.roles.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The caller of `target`: the evaluator's own, or a client of another
    /// region or role, built on first use and kept.
    async fn caller_for(&self, target: &Target) -> Result<Caller, MetricsError> {
        if target.is_home() {
            return Ok(self.caller.clone());
        }
        let known = self
            .clients
            .lock()
            .ok()
            .and_then(|c| c.get(target).cloned());
        let client = match known {
            Some(c) => c,
            None => {
                let client = self.build_client(target).await?;
                if let Ok(mut clients) = self.clients.lock() {
                    clients.entry(target.clone()).or_insert(client).clone()
                } else {
                    client
                }
            }
        };
        Ok(Caller {
            client,
            counters: Arc::clone(&self.caller.counters),
            backoff: self.caller.backoff,
            // One limit for all the clients (conservative: CloudWatch's
            // quota is per account and region).
            limiter: self.caller.limiter.clone(),
            role: target.role.clone(),
        })
    }

    /// A client like the evaluator's (endpoint, retries, timeouts) for
    /// another region, with credentials assuming `target.role` when set.
    async fn build_client(&self, target: &Target) -> Result<Client, MetricsError> {
        let mut conf = self.caller.client.config().to_builder();
        // One attempt of a call to another region or role gives up in time
        // (the evaluator's own timeouts are kept otherwise).
        let mut timeouts = aws_sdk_cloudwatch::config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(self.options.elsewhere_attempt_timeout)
            .build();
        if let Some(own) = self.caller.client.config().timeout_config() {
            timeouts.take_defaults_from(own);
        }
        conf = conf.timeout_config(timeouts);
        if let Some(region) = &target.region {
            conf = conf.region(aws_config::Region::new(region.clone()));
        }
        if let Some(role) = &target.role {
            let Some(sdk) = &self.sdk else {
                return Err(MetricsError::BadQuery(format!(
                    "cannot assume role {role}: this metrics source was built without an SDK config (CloudWatchSource::from_sdk_config)"
                )));
            };
            if sdk.time_source().is_none() {
                return Err(MetricsError::BadQuery(format!(
                    "cannot assume role {role}: the SDK config has no time source"
                )));
            }
            let mut b = aws_config::sts::AssumeRoleProvider::builder(role.clone())
                .configure(sdk)
                .session_name("firebell");
            if let Some(region) = sdk.region() {
                b = b.region(region.clone());
            }
            conf = conf.credentials_provider(b.build().await);
        }
        Ok(Client::from_conf(conf.build()))
    }

    /// [`CloudWatchSource::from_sdk_config`] with `options`.
    pub fn from_sdk_config_with_options(
        config: &aws_config::SdkConfig,
        clock: Arc<dyn Clock>,
        options: CloudWatchOptions,
    ) -> Self {
        let mut source = CloudWatchSource::with_options(Client::new(config), clock, options);
        source.sdk = Some(config.clone());
        source
    }

    pub fn client(&self) -> &Client {
        &self.caller.client
    }

    /// API calls made so far.
    pub fn stats(&self) -> CloudWatchStats {
        let c = &self.caller.counters;
        CloudWatchStats {
            get_metric_data: c.get_metric_data.load(Ordering::Relaxed),
            list_metrics: c.list_metrics.load(Ordering::Relaxed),
            throttle_retries: c.throttle_retries.load(Ordering::Relaxed),
            dimension_cache_hits: c.dimension_cache_hits.load(Ordering::Relaxed),
        }
    }

    /// Forgets every cached `dimension_values` answer.
    pub fn clear_dimension_cache(&self) {
        if let Ok(mut cache) = self.dimension_cache.lock() {
            cache.clear();
        }
    }

    /// For a spec of another account or region: how many values the cache
    /// held for `key` when it held some (a listing that now comes back
    /// empty is suspect).
    fn emptied_elsewhere(&self, spec: &MetricSpec, key: &str) -> Option<usize> {
        if spec.account.is_none() && spec.region.is_none() {
            return None;
        }
        let cache = self.dimension_cache.lock().ok()?;
        let n = cache.get(key)?.values.len();
        (n > 0).then_some(n)
    }

    fn cached_dimension_values(&self, key: &str, now: Epoch) -> Option<Vec<Labels>> {
        let cache = self.dimension_cache.lock().ok()?;
        let entry = cache.get(key)?;
        let ttl = i64::try_from(self.options.dimension_cache_ttl.as_secs()).unwrap_or(i64::MAX);
        (now >= entry.fetched_at && now - entry.fetched_at < ttl).then(|| entry.values.clone())
    }
}

/// CloudWatch's messages on a page or a result, each as `code: text`.
fn messages_text<'m>(messages: impl IntoIterator<Item = &'m MessageData>) -> Vec<String> {
    messages
        .into_iter()
        .map(|m| format!("{}: {}", m.code().unwrap_or("?"), m.value().unwrap_or("")))
        .collect()
}

/// One `GetMetricData` call (before pagination): queries of one period, or
/// one Metrics Insights query.
#[derive(Debug)]
struct Call {
    /// Where the call is sent.
    target: Target,
    /// (index of the query in the fetch, the query as sent). A Metrics
    /// Insights call sends one query (`q{first member}`): CloudWatch takes
    /// one per call.
    queries: Vec<(usize, MetricDataQuery)>,
    /// The members of a Metrics Insights call; `None` for plain queries.
    insights: Option<Insights>,
    start: Epoch,
    end: Epoch,
}

/// The fetch's queries answered by one Metrics Insights query: each is one
/// of its groups, told apart by the result's label.
#[derive(Debug)]
struct Insights {
    /// (index of the query in the fetch, the label of its group's series).
    members: Vec<(usize, String)>,
}

/// The label CloudWatch gives a Metrics Insights result series: its `GROUP
/// BY` values in the query's order, separated by a space (the value itself
/// with one label; none without `GROUP BY`).
fn group_label(group_by: &[String], dims: &BTreeMap<String, String>) -> Option<String> {
    let values: Option<Vec<&str>> = group_by
        .iter()
        .map(|l| dims.get(l).map(String::as_str))
        .collect();
    Some(values?.join(" "))
}

/// The `GROUP BY` values of a result label, for discovery: the label itself
/// with one label, else its space-separated words when there are as many as
/// labels; `None` when a value has a space (ambiguous: the group is skipped
/// and logged).
fn group_values(group_by: &[String], label: &str) -> Option<Labels> {
    match group_by.len() {
        0 => Some(Labels::new()),
        1 => Some(Labels::from([(group_by[0].clone(), label.to_string())])),
        n => {
            let words: Vec<&str> = label.split(' ').collect();
            (words.len() == n).then(|| {
                group_by
                    .iter()
                    .cloned()
                    .zip(words.into_iter().map(str::to_string))
                    .collect()
            })
        }
    }
}

/// Whether a result label is CloudWatch's null group: the metrics the
/// query matched that lack a `GROUP BY` label get the value `Other` for it.
/// (A dimension whose real value is `Other` looks the same and is skipped
/// too: CloudWatch's label cannot tell them apart.)
fn is_other_group(group_by: &[String], label: &str) -> bool {
    match group_by.len() {
        0 => false,
        1 => label == "Other",
        _ => label.split(' ').any(|w| w == "Other"),
    }
}

/// A Metrics Insights query's `GROUP BY` labels, in order.
fn group_by_of(sql: &str) -> Result<Vec<String>, MetricsError> {
    firebell_core::insights::parse(sql)
        .map(|q| q.group_by)
        .map_err(|e| MetricsError::BadQuery(format!("Metrics Insights query {sql:?}: {e}")))
}

fn insights_query(index: usize, sql: &str, period: i64) -> MetricDataQuery {
    MetricDataQuery::builder()
        .id(safe_id(index))
        .expression(sql)
        .period(period as i32)
        .return_data(true)
        .build()
}

#[derive(Debug, Clone, PartialEq)]
enum Status {
    Complete,
    Partial,
    Failed(String),
    /// `StatusCode::Forbidden`: the caller may not read the metric (an
    /// account not linked to the monitoring account, a role without
    /// `cloudwatch:GetMetricData`).
    Forbidden(String),
}

/// What the pages of one call said about one query.
#[derive(Debug, Default)]
struct Acc {
    points: Vec<Point>,
    /// Status of the latest page that mentioned the query.
    status: Option<Status>,
}

fn period_secs(spec: &MetricSpec) -> Result<i64, MetricsError> {
    let p = spec.period.as_secs();
    let valid = matches!(p, 1 | 5 | 10 | 20 | 30) || (p >= 60 && p.is_multiple_of(60));
    if !valid || spec.period.subsec_nanos() != 0 || p > i32::MAX as u64 {
        return Err(MetricsError::BadQuery(format!(
            "{}/{}: period {:?} is not 1, 5, 10, 20, 30 or a multiple of 60 seconds",
            spec.namespace, spec.metric_name, spec.period
        )));
    }
    Ok(p as i64)
}

fn safe_id(index: usize) -> String {
    format!("q{index}")
}

fn parse_safe_id(id: &str) -> Option<usize> {
    id.strip_prefix('q')?.parse().ok()
}

fn to_query(
    index: usize,
    spec: &MetricSpec,
    period: i64,
    account_id: Option<String>,
) -> Result<MetricDataQuery, MetricsError> {
    let mut metric = aws_sdk_cloudwatch::types::Metric::builder()
        .namespace(&spec.namespace)
        .metric_name(&spec.metric_name);
    for (name, value) in &spec.dimensions {
        if value == "*" {
            return Err(MetricsError::BadQuery(format!(
                "{}/{}: dimension {name} is a wildcard; expand it with dimension_values first",
                spec.namespace, spec.metric_name
            )));
        }
        metric = metric.dimensions(Dimension::builder().name(name).value(value).build());
    }
    let stat = MetricStat::builder()
        .metric(metric.build())
        .period(period as i32)
        .stat(spec.stat.to_string())
        .build();
    Ok(MetricDataQuery::builder()
        .id(safe_id(index))
        .metric_stat(stat)
        .set_account_id(account_id)
        .return_data(true)
        .build())
}

/// Splits a fetch into `GetMetricData` calls: grouped by target (role and
/// region) and period, at most [`MAX_QUERIES_PER_CALL`] per call, times
/// aligned down to the period.
fn plan_calls(
    queries: &[MetricQuery],
    start: Epoch,
    end: Epoch,
    roles: &BTreeMap<String, String>,
) -> Result<Vec<Call>, MetricsError> {
    let mut by_period: BTreeMap<(Target, i64), Vec<(usize, MetricDataQuery)>> = BTreeMap::new();
    // Metrics Insights: one call per distinct (query, period), whatever
    // number of its groups the fetch asks for.
    let mut by_query: BTreeMap<(&str, i64), Vec<(usize, String)>> = BTreeMap::new();
    let mut group_bys: HashMap<&str, Vec<String>> = HashMap::new();
    for (i, q) in queries.iter().enumerate() {
        let period = period_secs(&q.spec)?;
        if let Some(sql) = q.spec.query.as_deref() {
            if let Some((name, _)) = q.spec.dimensions.iter().find(|(_, v)| v.as_str() == "*") {
                return Err(MetricsError::BadQuery(format!(
                    "Metrics Insights query {sql:?}: group {name} is a wildcard; expand it with dimension_values first"
                )));
            }
            if !group_bys.contains_key(sql) {
                group_bys.insert(sql, group_by_of(sql)?);
            }
            let group_by = group_bys.get(sql).map(Vec::as_slice).unwrap_or_default();
            let label = group_label(group_by, &q.spec.dimensions).ok_or_else(|| {
                MetricsError::BadQuery(format!(
                    "Metrics Insights query {sql:?}: the query's dimensions {:?} are not its GROUP BY labels {group_by:?}",
                    q.spec.dimensions
                ))
            })?;
            by_query.entry((sql, period)).or_default().push((i, label));
            continue;
        }
        let (target, account_id) = route(&q.spec, roles);
        by_period
            .entry((target, period))
            .or_default()
            .push((i, to_query(i, &q.spec, period, account_id)?));
    }
    let mut calls = Vec::new();
    for ((sql, period), members) in by_query {
        let aligned_start = start.div_euclid(period) * period;
        let mut aligned_end = end.div_euclid(period) * period;
        if aligned_end <= aligned_start {
            aligned_end = aligned_start + period;
        }
        let first = members.first().map_or(0, |(i, _)| *i);
        calls.push(Call {
            // A query names no account or region (decoding refuses them).
            target: Target::default(),
            queries: vec![(first, insights_query(first, sql, period))],
            insights: Some(Insights { members }),
            start: aligned_start,
            end: aligned_end,
        });
    }
    for ((target, period), group) in by_period {
        let aligned_start = start.div_euclid(period) * period;
        let mut aligned_end = end.div_euclid(period) * period;
        if aligned_end <= aligned_start {
            aligned_end = aligned_start + period;
        }
        // Each call owns a vector of its own queries only (`split_off`
        // would leave every chunk holding the whole remaining capacity
        // until its call runs: memory quadratic in the query count).
        let mut queries = group.into_iter().peekable();
        while queries.peek().is_some() {
            calls.push(Call {
                target: target.clone(),
                queries: queries.by_ref().take(MAX_QUERIES_PER_CALL).collect(),
                insights: None,
                start: aligned_start,
                end: aligned_end,
            });
        }
    }
    Ok(calls)
}

/// How many `GetMetricData` calls (before pagination) a fetch of `queries`
/// over `[start, end)` makes: the same plan as [`CloudWatchSource`]'s
/// fetch (grouped by period, at most 500 queries per call). For benchmarks
/// that serve the data in-process and still count what CloudWatch would
/// be asked.
pub fn get_metric_data_calls(
    queries: &[MetricQuery],
    start: Epoch,
    end: Epoch,
) -> Result<usize, MetricsError> {
    Ok(plan_calls(queries, start, end, &BTreeMap::new())?.len())
}

/// Folds one page of results into the accumulators of a call: by id, or
/// for a Metrics Insights call, by the label of each group's series (a
/// group no member asked for is ignored).
fn merge_page(
    accs: &mut HashMap<usize, Acc>,
    results: &[MetricDataResult],
    insights: Option<&Insights>,
) {
    for r in results {
        let index = match insights {
            Some(ins) => {
                let label = r.label().unwrap_or_default();
                // Without GROUP BY the one series is the one member's.
                let member = if ins.members.len() == 1 && ins.members[0].1.is_empty() {
                    Some(ins.members[0].0)
                } else {
                    ins.members
                        .iter()
                        .find(|(_, l)| l == label)
                        .map(|(i, _)| *i)
                };
                let Some(index) = member else {
                    if !matches!(
                        r.status_code(),
                        Some(StatusCode::Complete | StatusCode::PartialData)
                    ) {
                        // The query itself failed (bad SQL, no access): no
                        // group's silence is an answer.
                        let why = format!(
                            "Metrics Insights query: status {:?} {}",
                            r.status_code(),
                            messages_text(r.messages()).join("; ")
                        );
                        for acc in accs.values_mut() {
                            acc.status.get_or_insert(Status::Failed(why.clone()));
                        }
                    }
                    tracing::debug!(label, "Metrics Insights group not asked for");
                    continue;
                };
                Some(index)
            }
            None => r.id().and_then(parse_safe_id),
        };
        let Some(index) = index else {
            tracing::warn!(id = ?r.id(), "GetMetricData returned an unknown id");
            continue;
        };
        let Some(acc) = accs.get_mut(&index) else {
            tracing::warn!(id = ?r.id(), "GetMetricData returned an id that was not asked for");
            continue;
        };
        let ts = r.timestamps();
        let vs = r.values();
        if ts.len() != vs.len() {
            acc.status = Some(Status::Failed(format!(
                "{} timestamps but {} values",
                ts.len(),
                vs.len()
            )));
            continue;
        }
        acc.points
            .extend(ts.iter().zip(vs).map(|(t, v)| Point { t: t.secs(), v: *v }));
        acc.status = Some(match r.status_code() {
            Some(StatusCode::Complete) => Status::Complete,
            Some(StatusCode::PartialData) => Status::Partial,
            other => {
                let detail = messages_text(r.messages());
                let status = other.map_or("missing", |s| s.as_str());
                let why = if detail.is_empty() {
                    format!("status {status}")
                } else {
                    format!("status {status}: {}", detail.join("; "))
                };
                match other {
                    Some(StatusCode::Forbidden) => Status::Forbidden(why),
                    _ => Status::Failed(why),
                }
            }
        });
    }
}

/// Sorts ascending and keeps the last value seen for a timestamp.
fn finish_points(mut points: Vec<Point>) -> Vec<Point> {
    points.sort_by_key(|p| p.t);
    let mut out: Vec<Point> = Vec::with_capacity(points.len());
    for p in points {
        match out.last_mut() {
            Some(last) if last.t == p.t => *last = p,
            _ => out.push(p),
        }
    }
    out
}

/// The port error of a failed call `what`: its one-line message names the
/// problem and the fix when recognised (`crate::AwsProblem`).
fn metrics_error(c: &Classified, what: &str, region: Option<&str>) -> MetricsError {
    let message = c.describe("cloudwatch", what, Resource::Metrics, region);
    match c.fault {
        Fault::Throttled => MetricsError::Throttled(message),
        Fault::Transient => MetricsError::Unavailable(message),
        Fault::Client | Fault::ConditionFailed => MetricsError::BadQuery(message),
    }
}

impl Caller {
    /// [`crate::retry::retry_throttled`] with this caller's backoff and
    /// counter; the error as a [`MetricsError`] naming `what` and the region.
    async fn retry_throttled<T, F, Fut>(&self, what: &str, op: F) -> Result<T, MetricsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Classified>>,
    {
        crate::retry::retry_throttled(&self.backoff, &self.counters.throttle_retries, what, op)
            .await
            .map_err(|c| {
                let region = self
                    .client
                    .config()
                    .region()
                    .map(|r| r.as_ref().to_string());
                match (&self.role, c.kind) {
                    // The role could not be assumed: say which, and what
                    // it needs (not the evaluator's own credentials' fix).
                    // STS slowed down or failed for a moment: retryable
                    // (the next cycle assumes the role again).
                    (Some(role), Some(crate::error::Kind::NoCredentials))
                        if crate::error::credentials_fault(&c.message)
                            == Some(Fault::Throttled) =>
                    {
                        MetricsError::Throttled(format!(
                            "cloudwatch {what}: assuming role {role}: STS throttled the call ({})",
                            c.message
                        ))
                    }
                    (Some(role), Some(crate::error::Kind::NoCredentials))
                        if crate::error::credentials_fault(&c.message)
                            == Some(Fault::Transient) =>
                    {
                        MetricsError::Unavailable(format!(
                            "cloudwatch {what}: assuming role {role}: STS did not answer ({})",
                            c.message
                        ))
                    }
                    (Some(role), Some(crate::error::Kind::NoCredentials)) => {
                        MetricsError::BadQuery(format!(
                            "cloudwatch {what}: cannot assume role {role}: its trust policy must name the evaluator's role, and the evaluator must be allowed sts:AssumeRole on it (stack parameter SourceAccountRoleArns) ({})",
                            c.message
                        ))
                    }
                    _ => metrics_error(&c, what, region.as_deref()),
                }
            })
    }

    /// Runs one planned call through all its pages.
    async fn run(self, call: Call) -> Result<HashMap<usize, Acc>, MetricsError> {
        let mut accs: HashMap<usize, Acc> = match &call.insights {
            Some(ins) => ins
                .members
                .iter()
                .map(|(i, _)| (*i, Acc::default()))
                .collect(),
            None => call
                .queries
                .iter()
                .map(|(i, _)| (*i, Acc::default()))
                .collect(),
        };
        let queries: Vec<MetricDataQuery> = call.queries.into_iter().map(|(_, q)| q).collect();
        let mut next_token: Option<String> = None;
        let mut pages = 0u32;
        // A page's messages (a limit reached, a warning): the groups it did
        // not return may have been left out, not be without data.
        let mut warned = false;
        loop {
            pages += 1;
            let out = self
                .retry_throttled("GetMetricData", || async {
                    if let Some(limiter) = &self.limiter {
                        limiter.acquire().await;
                    }
                    bump(&self.counters.get_metric_data);
                    self.client
                        .get_metric_data()
                        .set_metric_data_queries(Some(queries.clone()))
                        .start_time(DateTime::from_secs(call.start))
                        .end_time(DateTime::from_secs(call.end))
                        .scan_by(ScanBy::TimestampAscending)
                        .set_next_token(next_token.clone())
                        .send()
                        .await_classified()
                        .await
                })
                .await?;
            for m in out.messages() {
                tracing::warn!(code = ?m.code(), value = ?m.value(), "GetMetricData message");
                warned = true;
            }
            merge_page(&mut accs, out.metric_data_results(), call.insights.as_ref());
            match out.next_token() {
                Some(t) if !t.is_empty() && Some(t) != next_token.as_deref() => {
                    next_token = Some(t.to_owned());
                }
                _ => break,
            }
            if pages >= 1000 {
                tracing::warn!("GetMetricData: giving up after {pages} pages");
                for acc in accs.values_mut() {
                    acc.status = Some(Status::Partial);
                }
                break;
            }
        }
        if call.insights.is_some() {
            // A group the query did not return had no data in the range:
            // an answer (empty), as for a metric without datapoints;
            // unless CloudWatch said something (a limit, a warning): then
            // it may have been left out, and its silence is no answer.
            for acc in accs.values_mut() {
                acc.status.get_or_insert(if warned {
                    Status::Partial
                } else {
                    Status::Complete
                });
            }
        }
        Ok(accs)
    }
}

#[async_trait]
impl firebell_core::ports::MetricsSource for CloudWatchSource {
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: Epoch,
        end: Epoch,
    ) -> Result<Vec<MetricSeries>, MetricsError> {
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        if end <= start {
            return Err(MetricsError::BadQuery(format!(
                "empty time range [{start}, {end})"
            )));
        }
        let calls = plan_calls(queries, start, end, &self.roles())?;
        let mut accs: HashMap<usize, Acc> = HashMap::with_capacity(queries.len());
        let limit = self.options.elsewhere_timeout;
        if calls.len() == 1 {
            for call in calls {
                let target = call.target.clone();
                let run = async {
                    let caller = self.caller_for(&call.target).await?;
                    caller.run(call).await
                };
                accs.extend(bounded(&target, limit, "GetMetricData", run).await?);
            }
        } else {
            let permits = Arc::new(Semaphore::new(self.options.max_concurrency.max(1)));
            let mut tasks = JoinSet::new();
            for call in calls {
                let caller = self.caller_for(&call.target).await?;
                let permits = Arc::clone(&permits);
                // A Metrics Insights call's members: its failure (SQL
                // CloudWatch rejects, a limit, throttling past the
                // retries) fails only them, never the other calls.
                let members: Option<Vec<usize>> = call
                    .insights
                    .as_ref()
                    .map(|ins| ins.members.iter().map(|(i, _)| *i).collect());
                tasks.spawn(async move {
                    let target = call.target.clone();
                    let run = async {
                        let _permit = permits
                            .acquire_owned()
                            .await
                            .map_err(|e| MetricsError::Unavailable(e.to_string()))?;
                        caller.run(call).await
                    };
                    (members, bounded(&target, limit, "GetMetricData", run).await)
                });
            }
            while let Some(joined) = tasks.join_next().await {
                let (members, part) = joined
                    .map_err(|e| MetricsError::Unavailable(format!("GetMetricData task: {e}")))?;
                match (members, part) {
                    (_, Ok(part)) => accs.extend(part),
                    (Some(members), Err(e)) => {
                        for i in members {
                            accs.insert(
                                i,
                                Acc {
                                    points: Vec::new(),
                                    status: Some(Status::Failed(e.to_string())),
                                },
                            );
                        }
                    }
                    (None, Err(e)) => return Err(e),
                }
            }
        }
        // A query of another account or region that CloudWatch refused or
        // failed is an error of that target (an account whose link was
        // removed answers `Forbidden` per query, not with an API error):
        // not a partial series that would leave its rules unjudged and
        // nobody told.
        for (i, q) in queries.iter().enumerate() {
            if q.spec.account.is_none() && q.spec.region.is_none() {
                continue;
            }
            let whose = match (&q.spec.account, &q.spec.region) {
                (Some(a), Some(r)) => format!("account {a}, region {r}"),
                (Some(a), None) => format!("account {a}"),
                (None, _) => format!("region {}", q.spec.region.as_deref().unwrap_or("")),
            };
            let what = format!("{}/{}", q.spec.namespace, q.spec.metric_name);
            match accs.get(&i).and_then(|a| a.status.as_ref()) {
                Some(Status::Forbidden(why)) => {
                    return Err(MetricsError::BadQuery(format!(
                        "cloudwatch GetMetricData: {what} of {whose}: {why}: the account must be linked to this monitoring account (CloudWatch cross-account observability) or have a role in `accounts:` that may read its metrics"
                    )));
                }
                Some(Status::Failed(why)) => {
                    return Err(MetricsError::Unavailable(format!(
                        "cloudwatch GetMetricData: {what} of {whose}: {why}"
                    )));
                }
                _ => {}
            }
        }
        let out = queries
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let acc = accs.remove(&i).unwrap_or_default();
                let complete = match &acc.status {
                    Some(Status::Complete) => true,
                    Some(Status::Partial) => false,
                    Some(Status::Failed(why) | Status::Forbidden(why)) => {
                        tracing::warn!(id = %q.id, %why, "GetMetricData query failed");
                        false
                    }
                    None => {
                        tracing::warn!(id = %q.id, "GetMetricData returned no result for query");
                        false
                    }
                };
                MetricSeries {
                    id: q.id.clone(),
                    points: finish_points(acc.points),
                    complete,
                }
            })
            .collect();
        Ok(out)
    }

    fn use_account_roles(&self, roles: &BTreeMap<String, String>) {
        let same = self.roles.lock().map(|r| *r == *roles).unwrap_or(true);
        if !same {
            self.set_account_roles(roles.clone());
        }
    }

    async fn dimension_values(&self, spec: &MetricSpec) -> Result<Vec<Labels>, MetricsError> {
        let mut key = match &spec.query {
            Some(sql) => format!("query|{sql}|{}", spec.period.as_secs()),
            None => format!(
                "{}|{}|{:?}",
                spec.namespace, spec.metric_name, spec.dimensions
            ),
        };
        if spec.account.is_some() || spec.region.is_some() {
            key.push_str(&format!("|{:?}|{:?}", spec.account, spec.region));
        }
        let now = self.clock.now().as_second();
        if let Some(values) = self.cached_dimension_values(&key, now) {
            bump(&self.caller.counters.dimension_cache_hits);
            return Ok(values);
        }
        let listed = match &spec.query {
            Some(sql) => self.query_groups(sql, spec, now).await,
            None => self.list_dimension_values(spec).await,
        };
        match listed {
            Ok(values) => {
                if values.is_empty()
                    && let Some(before) = self.emptied_elsewhere(spec, &key)
                {
                    // Another account's or region's listing that empties
                    // (a link removed, a role that lost its rights) must
                    // not resolve the rule's alerts as "instance gone":
                    // the cached values stay, and the listing is an error.
                    let whose = match (&spec.account, &spec.region) {
                        (Some(a), Some(r)) => format!("account {a}, region {r}"),
                        (Some(a), None) => format!("account {a}"),
                        (None, r) => format!("region {}", r.as_deref().unwrap_or("")),
                    };
                    return Err(MetricsError::Unavailable(format!(
                        "cloudwatch ListMetrics: {}/{} of {whose} lists no metrics where it listed {before} before: is the account still linked to this monitoring account, or its role still allowed cloudwatch:ListMetrics? The rule's instances are kept until it lists them again",
                        spec.namespace, spec.metric_name
                    )));
                }
                if let Ok(mut cache) = self.dimension_cache.lock() {
                    cache.insert(
                        key,
                        CacheEntry {
                            fetched_at: now,
                            values: values.clone(),
                        },
                    );
                }
                Ok(values)
            }
            Err(e) => {
                // A stale answer beats none for discovery.
                let stale = self
                    .dimension_cache
                    .lock()
                    .ok()
                    .and_then(|c| c.get(&key).map(|e| e.values.clone()));
                match stale {
                    Some(values) if e.is_retryable() => {
                        tracing::warn!(error = %e, "ListMetrics failed; using cached dimension values");
                        Ok(values)
                    }
                    _ => Err(e),
                }
            }
        }
    }
}

impl CloudWatchSource {
    /// The groups a Metrics Insights query returns over the last 3 hours
    /// (all it can read): one `GetMetricData` call with the query, the
    /// `GROUP BY` values read from each series' label ([`group_values`]).
    async fn query_groups(
        &self,
        sql: &str,
        spec: &MetricSpec,
        now: Epoch,
    ) -> Result<Vec<Labels>, MetricsError> {
        let group_by = group_by_of(sql)?;
        let period = period_secs(spec)?;
        let end = now.div_euclid(period) * period;
        let start = end - 3 * 3600;
        let caller = &self.caller;
        let mut values: BTreeSet<Labels> = BTreeSet::new();
        let mut next_token: Option<String> = None;
        let query = insights_query(0, sql, period);
        for _ in 0..1000 {
            let out = caller
                .retry_throttled("GetMetricData", || async {
                    // Discovery shares the fetches' GetMetricData budget.
                    if let Some(limiter) = &caller.limiter {
                        limiter.acquire().await;
                    }
                    bump(&caller.counters.get_metric_data);
                    caller
                        .client
                        .get_metric_data()
                        .metric_data_queries(query.clone())
                        .start_time(DateTime::from_secs(start))
                        .end_time(DateTime::from_secs(end))
                        .scan_by(ScanBy::TimestampAscending)
                        .set_next_token(next_token.clone())
                        .send()
                        .await_classified()
                        .await
                })
                .await?;
            // A page that hit a limit lists only some groups: taking it as
            // the whole would drop instances (and resolve their alerts as
            // gone). Unavailable, so the cached groups stand in.
            let partial: Vec<&MetricDataResult> = out
                .metric_data_results()
                .iter()
                .filter(|r| r.status_code() == Some(&StatusCode::PartialData))
                .collect();
            let limited = messages_text(
                out.messages()
                    .iter()
                    .chain(partial.iter().flat_map(|r| r.messages())),
            );
            if !partial.is_empty() || !limited.is_empty() {
                return Err(MetricsError::Unavailable(format!(
                    "Metrics Insights query {sql:?}: discovery answered in part ({})",
                    if limited.is_empty() {
                        "PartialData".to_string()
                    } else {
                        limited.join("; ")
                    }
                )));
            }
            for r in out.metric_data_results() {
                if let Some(StatusCode::InternalError | StatusCode::Forbidden) = r.status_code() {
                    return Err(MetricsError::BadQuery(format!(
                        "Metrics Insights query {sql:?}: {}",
                        messages_text(r.messages()).join("; ")
                    )));
                }
                let label = r.label().unwrap_or_default();
                if is_other_group(&group_by, label) {
                    tracing::warn!(
                        label,
                        query = sql,
                        "Metrics Insights group `Other` (metrics without a GROUP BY label): not an alert instance; add the label to SCHEMA(...) to leave them out"
                    );
                    continue;
                }
                match group_values(&group_by, label) {
                    Some(v) => {
                        values.insert(v);
                    }
                    None => tracing::warn!(
                        label,
                        "Metrics Insights group label with a space in a value: skipped"
                    ),
                }
            }
            match out.next_token() {
                Some(t) if !t.is_empty() && Some(t) != next_token.as_deref() => {
                    next_token = Some(t.to_owned());
                }
                _ => break,
            }
        }
        Ok(values.into_iter().collect())
    }

    /// `ListMetrics` (all pages) for the metrics of `spec` with exactly the
    /// spec's dimension names and its fixed values: the sorted distinct
    /// combinations of the wildcard dimensions' values.
    async fn list_dimension_values(&self, spec: &MetricSpec) -> Result<Vec<Labels>, MetricsError> {
        let names: BTreeSet<&str> = spec.dimensions.keys().map(String::as_str).collect();
        let wildcards: Vec<&str> = spec
            .dimensions
            .iter()
            .filter(|(_, v)| v.as_str() == "*")
            .map(|(k, _)| k.as_str())
            .collect();
        let filters: Vec<DimensionFilter> = spec
            .dimensions
            .iter()
            .map(|(name, value)| {
                let b = DimensionFilter::builder().name(name);
                if value == "*" {
                    b.build()
                } else {
                    b.value(value).build()
                }
            })
            .collect();
        let (target, owning_account) = route(spec, &self.roles());
        let limit = self.options.elsewhere_timeout;
        bounded(
            &target,
            limit,
            "ListMetrics",
            self.list_with(spec, &target, owning_account, names, wildcards, filters),
        )
        .await
    }

    async fn list_with(
        &self,
        spec: &MetricSpec,
        target: &Target,
        owning_account: Option<String>,
        names: BTreeSet<&str>,
        wildcards: Vec<&str>,
        filters: Vec<DimensionFilter>,
    ) -> Result<Vec<Labels>, MetricsError> {
        let caller = &self.caller_for(target).await?;
        // Only values that reported in the last 3 hours: a host that is gone
        // must not become an instance (and raise NoData) for the two weeks
        // ListMetrics remembers it. Off for history that ended earlier.
        let recently_active = self
            .options
            .list_recently_active
            .then_some(aws_sdk_cloudwatch::types::RecentlyActive::Pt3H);
        let mut values: BTreeSet<Labels> = BTreeSet::new();
        let mut next_token: Option<String> = None;
        let mut pages = 0u32;
        loop {
            pages += 1;
            let out = caller
                .retry_throttled("ListMetrics", || {
                    bump(&caller.counters.list_metrics);
                    caller
                        .client
                        .list_metrics()
                        .namespace(&spec.namespace)
                        .metric_name(&spec.metric_name)
                        .set_dimensions(Some(filters.clone()))
                        .set_recently_active(recently_active.clone())
                        // Another account's metrics, from the monitoring
                        // account (cross-account observability).
                        .set_include_linked_accounts(owning_account.is_some().then_some(true))
                        .set_owning_account(owning_account.clone())
                        .set_next_token(next_token.clone())
                        .send()
                        .await_classified()
                })
                .await?;
            for metric in out.metrics() {
                let dims = metric.dimensions();
                // GetMetricData matches dimension sets exactly: a metric with
                // more or other dimensions is not an instance of this spec.
                let metric_names: BTreeSet<&str> = dims.iter().filter_map(|d| d.name()).collect();
                if metric_names != names {
                    continue;
                }
                // The filter already says so, but not every implementation
                // honours it: check the fixed dimensions' values too.
                let fixed_match = spec
                    .dimensions
                    .iter()
                    .filter(|(_, value)| *value != "*")
                    .all(|(name, value)| {
                        dims.iter()
                            .any(|d| d.name() == Some(name) && d.value() == Some(value))
                    });
                if !fixed_match {
                    continue;
                }
                let combo: Labels = wildcards
                    .iter()
                    .filter_map(|w| {
                        let v = dims.iter().find(|d| d.name() == Some(*w))?.value()?;
                        Some(((*w).to_owned(), v.to_owned()))
                    })
                    .collect();
                if combo.len() == wildcards.len() {
                    values.insert(combo);
                }
            }
            match out.next_token() {
                Some(t) if !t.is_empty() && Some(t) != next_token.as_deref() && pages < 1000 => {
                    next_token = Some(t.to_owned());
                }
                _ => break,
            }
        }
        Ok(values.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use firebell_core::model::Stat;
    use firebell_core::ports::MetricsSource;

    use super::*;

    /// Records the `RecentlyActive` of each `ListMetrics` request the SDK
    /// is about to serialize, then stops the call (nothing is sent).
    #[derive(Debug, Default)]
    struct SeenListMetrics(Arc<Mutex<Vec<Option<String>>>>);

    impl aws_sdk_cloudwatch::config::Intercept for SeenListMetrics {
        fn name(&self) -> &'static str {
            "SeenListMetrics"
        }

        fn read_before_execution(
            &self,
            context: &aws_sdk_cloudwatch::config::interceptors::BeforeSerializationInterceptorContextRef<'_>,
            _: &mut aws_sdk_cloudwatch::config::ConfigBag,
        ) -> Result<(), aws_sdk_cloudwatch::error::BoxError> {
            if let Some(input) = context
                .input()
                .downcast_ref::<aws_sdk_cloudwatch::operation::list_metrics::ListMetricsInput>(
            ) && let Ok(mut seen) = self.0.lock()
            {
                seen.push(input.recently_active().map(|r| r.as_str().to_string()));
            }
            Err("stopped by the test before sending".into())
        }
    }

    /// The ListMetrics request built for a wildcard, with and without
    /// `list_recently_active` (the request is checked in process: the
    /// emulator ignores `RecentlyActive`, so it could not tell them apart).
    #[test]
    fn list_metrics_asks_for_recent_metrics_only_when_told() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut seen = Vec::new();
        for recent in [true, false] {
            let interceptor = SeenListMetrics::default();
            let log = interceptor.0.clone();
            let config = aws_sdk_cloudwatch::Config::builder()
                .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
                .region(aws_sdk_cloudwatch::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_cloudwatch::config::Credentials::for_tests())
                .interceptor(interceptor)
                .build();
            let source = CloudWatchSource::with_options(
                Client::from_conf(config),
                Arc::new(firebell_core::ports::SystemClock),
                CloudWatchOptions {
                    list_recently_active: recent,
                    backoff: Backoff::none(),
                    ..CloudWatchOptions::default()
                },
            );
            let mut spec = q("a", 60, Stat::Sum).spec;
            spec.dimensions.insert("Service".into(), "*".into());
            let listed = rt.block_on(source.dimension_values(&spec));
            assert!(listed.is_err(), "{listed:?}");
            seen.push(log.lock().unwrap().clone());
        }
        assert_eq!(seen, [vec![Some("PT3H".to_string())], vec![None]]);
    }

    #[test]
    fn the_limiter_spaces_calls_evenly() {
        let limiter = RateLimiter::new(GET_METRIC_DATA_TPS);
        let t0 = tokio::time::Instant::now();
        let ms = |at: tokio::time::Instant| (at - t0).as_millis();
        // Three calls at once: 20 ms apart (50 per second).
        let booked: Vec<u128> = (0..3).map(|_| ms(limiter.reserve(t0))).collect();
        assert_eq!(booked, [0, 20, 40]);
        // A call after a quiet second starts at once.
        let later = t0 + Duration::from_secs(2);
        assert_eq!(ms(limiter.reserve(later)), 2000);
        assert_eq!(ms(limiter.reserve(later)), 2020);
        // 50 calls booked at once span just under one second.
        let fresh = RateLimiter::new(GET_METRIC_DATA_TPS);
        let last = (0..50).map(|_| fresh.reserve(t0)).last().map(ms);
        assert_eq!(last, Some(980));
    }

    fn q(id: &str, period: u64, stat: Stat) -> MetricQuery {
        MetricQuery {
            id: id.into(),
            spec: MetricSpec {
                namespace: "NS".into(),
                metric_name: "M".into(),
                dimensions: BTreeMap::from([("Service".into(), "api".into())]),
                stat,
                period: Duration::from_secs(period),
                account: None,
                region: None,
                query: None,
            },
        }
    }

    #[test]
    fn plan_groups_by_period_chunks_and_aligns() {
        let mut qs: Vec<MetricQuery> = (0..1001)
            .map(|i| q(&format!("Caller-{i}"), 60, Stat::Sum))
            .collect();
        qs.push(q("five", 300, Stat::Percentile(99.0)));
        let calls = plan_calls(&qs, 1_000_030, 1_003_630, &BTreeMap::new()).unwrap();
        assert_eq!(calls.len(), 4);
        assert_eq!(
            calls.iter().map(|c| c.queries.len()).collect::<Vec<_>>(),
            vec![500, 500, 1, 1]
        );
        // No chunk keeps the rest of the list's capacity alive.
        assert!(
            calls.iter().all(|c| c.queries.capacity() <= 500),
            "{:?}",
            calls
                .iter()
                .map(|c| c.queries.capacity())
                .collect::<Vec<_>>()
        );
        assert_eq!((calls[0].start, calls[0].end), (1_000_020, 1_003_620));
        assert_eq!((calls[3].start, calls[3].end), (999_900, 1_003_500));
        let last = &calls[3].queries[0];
        assert_eq!(last.0, 1001);
        assert_eq!(last.1.id(), Some("q1001"));
        let stat = last.1.metric_stat().unwrap();
        assert_eq!(stat.stat(), Some("p99"));
        assert_eq!(stat.period(), Some(300));
    }

    /// Calls are batched per (role, region): a role reads its own account
    /// (no `AccountId`); another account without a role is read with
    /// `AccountId` by the evaluator's own client.
    #[test]
    fn plan_batches_per_role_and_region() {
        let at = |id: &str, account: Option<&str>, region: Option<&str>| {
            let mut x = q(id, 60, Stat::Sum);
            x.spec.account = account.map(str::to_owned);
            x.spec.region = region.map(str::to_owned);
            x
        };
        let roles = BTreeMap::from([(
            "444455556666".to_string(),
            "arn:aws:iam::444455556666:role/r".to_string(),
        )]);
        let qs = vec![
            at("home", None, None),
            at("linked", Some("111122223333"), None),
            at("west", None, Some("us-west-2")),
            at("role", Some("444455556666"), None),
            at("role-west", Some("444455556666"), Some("us-west-2")),
            at("linked-west", Some("111122223333"), Some("us-west-2")),
        ];
        let calls = plan_calls(&qs, 0, 120, &roles).unwrap();
        type Seen<'a> = (
            Option<&'a str>,
            Option<&'a str>,
            Vec<(usize, Option<&'a str>)>,
        );
        let seen: Vec<Seen<'_>> = calls
            .iter()
            .map(|c| {
                (
                    c.target.role.as_deref(),
                    c.target.region.as_deref(),
                    c.queries
                        .iter()
                        .map(|(i, q)| (*i, q.account_id()))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (None, None, vec![(0, None), (1, Some("111122223333"))]),
                (
                    None,
                    Some("us-west-2"),
                    vec![(2, None), (5, Some("111122223333"))]
                ),
                (
                    Some("arn:aws:iam::444455556666:role/r"),
                    None,
                    vec![(3, None)]
                ),
                (
                    Some("arn:aws:iam::444455556666:role/r"),
                    Some("us-west-2"),
                    vec![(4, None)]
                ),
            ]
        );
    }

    #[test]
    fn plan_rejects_bad_periods_and_wildcards() {
        assert!(matches!(
            plan_calls(&[q("a", 0, Stat::Sum)], 0, 60, &BTreeMap::new()),
            Err(MetricsError::BadQuery(_))
        ));
        assert!(matches!(
            plan_calls(&[q("a", 90, Stat::Sum)], 0, 60, &BTreeMap::new()),
            Err(MetricsError::BadQuery(_))
        ));
        let mut w = q("a", 60, Stat::Sum);
        w.spec.dimensions.insert("Service".into(), "*".into());
        assert!(matches!(
            plan_calls(&[w], 0, 60, &BTreeMap::new()),
            Err(MetricsError::BadQuery(_))
        ));
    }

    #[test]
    fn short_range_still_covers_one_period() {
        let calls = plan_calls(&[q("a", 300, Stat::Sum)], 1010, 1020, &BTreeMap::new()).unwrap();
        assert_eq!((calls[0].start, calls[0].end), (900, 1200));
    }

    #[test]
    fn safe_ids_round_trip() {
        assert_eq!(parse_safe_id(&safe_id(42)), Some(42));
        assert_eq!(parse_safe_id("x1"), None);
        assert_eq!(parse_safe_id("q"), None);
    }

    fn result(id: &str, ts: &[i64], vs: &[f64], status: StatusCode) -> MetricDataResult {
        let mut b = MetricDataResult::builder().id(id).status_code(status);
        for t in ts {
            b = b.timestamps(DateTime::from_secs(*t));
        }
        for v in vs {
            b = b.values(*v);
        }
        b.build()
    }

    fn insights(id: &str, sql: &str, groups: &[(&str, &str)]) -> MetricQuery {
        MetricQuery {
            id: id.into(),
            spec: MetricSpec {
                namespace: "AWS/EC2".into(),
                metric_name: "CPUUtilization".into(),
                dimensions: groups
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                stat: Stat::Average,
                period: Duration::from_secs(60),
                account: None,
                region: None,
                query: Some(sql.into()),
            },
        }
    }

    const BY_AZ_AND_ID: &str = r#"SELECT AVG(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId, AvailabilityZone) GROUP BY InstanceId, AvailabilityZone"#;

    /// One call per distinct Metrics Insights query (CloudWatch takes one a
    /// call), with the SQL as its `Expression`, whatever number of groups
    /// the fetch asks for; its groups are told apart by label, in the
    /// query's GROUP BY order (not the dimensions' sorted order).
    #[test]
    fn a_metrics_insights_query_is_one_call_for_all_its_groups() {
        let whole = "SELECT SUM(Errors) FROM Shop";
        let qs = vec![
            q("plain", 60, Stat::Sum),
            insights(
                "a",
                BY_AZ_AND_ID,
                &[("InstanceId", "i-1"), ("AvailabilityZone", "us-east-1a")],
            ),
            insights("whole", whole, &[]),
            insights(
                "b",
                BY_AZ_AND_ID,
                &[("InstanceId", "i-2"), ("AvailabilityZone", "us-east-1b")],
            ),
        ];
        let calls = plan_calls(&qs, 1_000_030, 1_003_630, &BTreeMap::new()).unwrap();
        assert_eq!(calls.len(), 3);
        let sent: Vec<(Option<&str>, Option<&str>, Option<i32>)> = calls
            .iter()
            .map(|c| {
                assert_eq!(c.queries.len(), 1);
                let q = &c.queries[0].1;
                (q.id(), q.expression(), q.period())
            })
            .collect();
        assert_eq!(
            sent,
            vec![
                (Some("q1"), Some(BY_AZ_AND_ID), Some(60)),
                (Some("q2"), Some(whole), Some(60)),
                (Some("q0"), None, None),
            ]
        );
        let members = &calls[0].insights.as_ref().unwrap().members;
        assert_eq!(
            members,
            &vec![
                (1, "i-1 us-east-1a".to_string()),
                (3, "i-2 us-east-1b".to_string())
            ]
        );
        assert_eq!(
            calls[1].insights.as_ref().unwrap().members,
            vec![(2, String::new())]
        );
        // Still a wildcard: not expanded.
        let wild = insights(
            "w",
            BY_AZ_AND_ID,
            &[("InstanceId", "*"), ("AvailabilityZone", "*")],
        );
        assert_eq!(
            plan_calls(&[wild], 0, 60, &BTreeMap::new())
                .unwrap_err()
                .to_string(),
            format!(
                "bad metrics query: Metrics Insights query {BY_AZ_AND_ID:?}: group AvailabilityZone is a wildcard; expand it with dimension_values first"
            )
        );
    }

    #[test]
    fn metrics_insights_results_go_to_their_group_by_label() {
        let labelled = |label: &str, v: f64| {
            MetricDataResult::builder()
                .id("q1")
                .label(label)
                .status_code(StatusCode::Complete)
                .timestamps(DateTime::from_secs(60))
                .values(v)
                .build()
        };
        let ins = Insights {
            members: vec![
                (1, "i-1 us-east-1a".to_string()),
                (3, "i 2 us-east-1b".to_string()),
                (4, "i-9 us-east-1c".to_string()),
            ],
        };
        let mut accs: HashMap<usize, Acc> = [
            (1, Acc::default()),
            (3, Acc::default()),
            (4, Acc::default()),
        ]
        .into();
        merge_page(
            &mut accs,
            &[
                labelled("i 2 us-east-1b", 2.0),
                labelled("i-1 us-east-1a", 1.0),
                labelled("i-7 Other", 7.0),
            ],
            Some(&ins),
        );
        assert_eq!(accs[&1].points, vec![Point { t: 60, v: 1.0 }]);
        assert_eq!(accs[&3].points, vec![Point { t: 60, v: 2.0 }]);
        assert!(accs[&4].points.is_empty() && accs[&4].status.is_none());
        // A failed query (the emulator answers SQL so): the groups without
        // an answer fail, not "no data".
        let failed = MetricDataResult::builder()
            .id("q1")
            .label("q1")
            .status_code(StatusCode::InternalError)
            .messages(
                aws_sdk_cloudwatch::types::MessageData::builder()
                    .code("Unsupported")
                    .value("Expressions not implemented")
                    .build(),
            )
            .build();
        merge_page(&mut accs, &[failed], Some(&ins));
        assert_eq!(
            accs[&4].status,
            Some(Status::Failed(
                "Metrics Insights query: status Some(InternalError) Unsupported: Expressions not implemented"
                    .to_string()
            ))
        );
        assert_eq!(accs[&1].status, Some(Status::Complete));
        // Discovery reads the values back from labels; a value with a space
        // makes a label of several labels ambiguous: skipped.
        let by: Vec<String> = vec!["InstanceId".into(), "AvailabilityZone".into()];
        assert_eq!(
            group_values(&by, "i-7 Other"),
            Some(Labels::from([
                ("InstanceId".to_string(), "i-7".to_string()),
                ("AvailabilityZone".to_string(), "Other".to_string())
            ]))
        );
        assert_eq!(group_values(&by, "i 2 us-east-1b"), None);
        assert_eq!(
            group_values(&by[..1], "i 2"),
            Some(Labels::from([(
                "InstanceId".to_string(),
                "i 2".to_string()
            )]))
        );
    }

    #[test]
    fn pages_merge_and_sort() {
        let mut accs: HashMap<usize, Acc> = [(0, Acc::default()), (1, Acc::default())].into();
        merge_page(
            &mut accs,
            &[
                result("q0", &[180, 120], &[3.0, 2.0], StatusCode::PartialData),
                result("q1", &[60], &[1.0], StatusCode::PartialData),
                result("zz", &[60], &[1.0], StatusCode::Complete),
            ],
            None,
        );
        merge_page(
            &mut accs,
            &[result("q0", &[60], &[1.0], StatusCode::Complete)],
            None,
        );
        let a0 = accs.remove(&0).unwrap();
        assert_eq!(a0.status, Some(Status::Complete));
        assert_eq!(
            finish_points(a0.points),
            vec![
                Point { t: 60, v: 1.0 },
                Point { t: 120, v: 2.0 },
                Point { t: 180, v: 3.0 }
            ]
        );
        assert_eq!(accs[&1].status, Some(Status::Partial));
    }

    fn caller(backoff: Backoff) -> Caller {
        let config = aws_sdk_cloudwatch::Config::builder()
            .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
            .build();
        Caller {
            client: Client::from_conf(config),
            counters: Arc::new(Counters::default()),
            backoff,
            limiter: None,
            role: None,
        }
    }

    fn fault(fault: Fault) -> Classified {
        Classified {
            fault,
            code: Some("ThrottlingException".into()),
            message: "slow down".into(),
            kind: None,
        }
    }

    #[tokio::test]
    async fn throttling_is_retried_with_backoff_then_reported() {
        let backoff = Backoff {
            max_attempts: 4,
            base: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
        };
        // Throttled twice, then fine.
        let c = caller(backoff);
        let mut calls = 0;
        let v = c
            .retry_throttled("op", || {
                calls += 1;
                let n = calls;
                async move {
                    if n <= 2 {
                        Err(fault(Fault::Throttled))
                    } else {
                        Ok(n)
                    }
                }
            })
            .await
            .unwrap();
        assert_eq!(v, 3);
        assert_eq!(c.counters.throttle_retries.load(Ordering::Relaxed), 2);

        // Always throttled: max_attempts calls, then Throttled.
        let c = caller(backoff);
        let mut calls = 0;
        let err = c
            .retry_throttled("op", || {
                calls += 1;
                async { Err::<(), _>(fault(Fault::Throttled)) }
            })
            .await
            .unwrap_err();
        assert!(matches!(err, MetricsError::Throttled(_)), "{err}");
        assert_eq!(calls, 4);

        // Other faults are not retried here.
        for (f, retryable) in [(Fault::Transient, true), (Fault::Client, false)] {
            let c = caller(backoff);
            let mut calls = 0;
            let err = c
                .retry_throttled("op", || {
                    calls += 1;
                    async move { Err::<(), _>(fault(f)) }
                })
                .await
                .unwrap_err();
            assert_eq!(calls, 1);
            assert_eq!(err.is_retryable(), retryable, "{err}");
        }
    }

    #[test]
    fn mismatched_lengths_fail_the_query() {
        let mut accs: HashMap<usize, Acc> = [(0, Acc::default())].into();
        merge_page(
            &mut accs,
            &[result("q0", &[60, 120], &[1.0], StatusCode::Complete)],
            None,
        );
        assert!(matches!(accs[&0].status, Some(Status::Failed(_))));
    }
}
