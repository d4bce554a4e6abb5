//! Shared helpers of firebell's emulator-backed delivery tests and AWS
//! benchmark (`tests/tests/delivery.rs`, `tests/benches/aws_cycle.rs`).
//!
//! Everything talks to whatever `AWS_ENDPOINT_URL` points at: the local
//! emulator (`scripts/emulator.sh`, ministack) or another AWS wire-protocol
//! endpoint. Without it, [`aws`] fails with instructions: the tests never
//! skip.
//!
//! The helpers create what a test needs under unique names (a DynamoDB
//! table, SNS topics each subscribed by an SQS queue, a CloudWatch
//! namespace), put metric data in batches, and drain queues so a test can
//! count what was really published.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use aws_sdk_dynamodb::types::TimeToLiveSpecification;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use firebell_aws::{SdkConfig, create_table_if_missing, load_sdk_config};
use serde_json::Value;

/// How to run what needs the emulator.
pub const HOW_TO_RUN: &str = "firebell-tests talks to an AWS wire-protocol emulator. Run it with:\n\n    eval \"$(scripts/emulator.sh start)\"\n    cargo test -p firebell-tests                        # the delivery tests\n    cargo bench -p firebell-tests --bench aws_cycle     # the benchmark\n\n(scripts/test.sh does this for the tests)";

/// `PutMetricData` accepts at most this many datums per call.
pub const PUT_METRIC_DATA_MAX: usize = 1000;

/// The clients of every service the tests use.
#[derive(Debug, Clone)]
pub struct Aws {
    pub config: SdkConfig,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
}

/// The endpoint from `AWS_ENDPOINT_URL`, or an error saying how to start one.
pub fn endpoint() -> Result<String> {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.trim().is_empty() => Ok(url),
        _ => bail!("AWS_ENDPOINT_URL is not set: {HOW_TO_RUN}"),
    }
}

/// Clients for the endpoint in `AWS_ENDPOINT_URL` (fails when it is unset).
pub async fn aws() -> Result<Aws> {
    endpoint()?;
    let config = load_sdk_config().await;
    Ok(Aws {
        cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
        dynamodb: aws_sdk_dynamodb::Client::new(&config),
        sns: aws_sdk_sns::Client::new(&config),
        sqs: aws_sdk_sqs::Client::new(&config),
        config,
    })
}

/// An SDK config whose endpoint refuses connections and whose SDK does not
/// retry: an SNS (or any) outage, classified as temporary by the adapters.
pub async fn unreachable_config() -> Result<SdkConfig> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    drop(listener);
    Ok(aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await)
}

/// A name unique across runs and tests: `prefix-<pid>-<nanos>-<n>`.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() % 1_000_000_000_000)
        .unwrap_or_default();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Unix seconds now.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// The current minute (Unix seconds, aligned down to 60).
pub fn minute_now() -> i64 {
    now_secs().div_euclid(60) * 60
}

/// One metric datapoint to put.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    pub metric: String,
    pub dimensions: Vec<(String, String)>,
    pub t: i64,
    pub value: f64,
}

/// One message read from a queue subscribed (without raw delivery) to a
/// topic firebell published to.
#[derive(Debug, Clone)]
pub struct Received {
    /// The queue URL it was read from.
    pub queue: String,
    pub subject: Option<String>,
    /// The `firebell.notification/v1` payload (the `sqs` body).
    pub payload: Value,
    /// FIFO queues: the message group id.
    pub group_id: Option<String>,
    /// FIFO queues: the deduplication id.
    pub dedup_id: Option<String>,
}

impl Received {
    pub fn receiver(&self) -> &str {
        self.payload["receiver"].as_str().unwrap_or_default()
    }
    pub fn group_key(&self) -> &str {
        self.payload["group_key"].as_str().unwrap_or_default()
    }
    pub fn seq(&self) -> u64 {
        self.payload["seq"].as_u64().unwrap_or_default()
    }
    pub fn status(&self) -> &str {
        self.payload["status"].as_str().unwrap_or_default()
    }
    /// `(receiver, group key, seq)`: what identifies a notification (its
    /// idempotency key is a hash of it).
    pub fn identity(&self) -> (String, String, u64) {
        (
            self.receiver().to_string(),
            self.group_key().to_string(),
            self.seq(),
        )
    }
    /// The alerts listed in the payload.
    pub fn alerts(&self) -> &[Value] {
        self.payload["alerts"].as_array().map_or(&[], Vec::as_slice)
    }
}

impl Aws {
    /// A fresh state table (the store's layout, from
    /// [`create_table_if_missing`]) with the service's TTL reaper turned
    /// off: the tests run cycles at ticks some minutes in the past (the
    /// stores judge expiry by the test's clock), and a reaper working on the
    /// wall clock would delete leases the test's clock still sees as held.
    pub async fn table(&self) -> Result<String> {
        let name = unique("firebell-delivery");
        create_table_if_missing(&self.dynamodb, &name)
            .await
            .map_err(|e| anyhow!("creating table {name}: {e}"))?;
        let off = TimeToLiveSpecification::builder()
            .enabled(false)
            .attribute_name("expires_at")
            .build()?;
        // Emulators without TTL support have no reaper either.
        let _ = self
            .dynamodb
            .update_time_to_live()
            .table_name(&name)
            .time_to_live_specification(off)
            .send()
            .await;
        Ok(name)
    }

    /// A new topic (FIFO without content-based deduplication, or standard);
    /// returns its ARN.
    pub async fn topic(&self, fifo: bool) -> Result<String> {
        let mut req = self.sns.create_topic();
        if fifo {
            req = req
                .name(format!("{}.fifo", unique("firebell-delivery")))
                .attributes("FifoTopic", "true")
                .attributes("ContentBasedDeduplication", "false");
        } else {
            req = req.name(unique("firebell-delivery"));
        }
        let out = req.send().await.context("CreateTopic")?;
        out.topic_arn()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("CreateTopic returned no ARN"))
    }

    /// A new queue (FIFO for a FIFO topic) subscribed to `topic` without raw
    /// delivery; returns its URL.
    pub async fn subscribed_queue(&self, topic: &str) -> Result<String> {
        let fifo = topic.ends_with(".fifo");
        let name = if fifo {
            format!("{}.fifo", unique("firebell-delivery"))
        } else {
            unique("firebell-delivery")
        };
        let mut req = self.sqs.create_queue().queue_name(name);
        if fifo {
            req = req.attributes(QueueAttributeName::FifoQueue, "true");
        }
        let url = req
            .send()
            .await
            .context("CreateQueue")?
            .queue_url()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("CreateQueue returned no URL"))?;
        let arn = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .context("GetQueueAttributes")?
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .ok_or_else(|| anyhow!("no queue ARN for {url}"))?;
        // Needed on AWS (SNS may send to the queue); harmless on the emulator.
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic}}
            }]
        });
        self.sqs
            .set_queue_attributes()
            .queue_url(&url)
            .attributes(QueueAttributeName::Policy, policy.to_string())
            .send()
            .await
            .context("SetQueueAttributes")?;
        self.sns
            .subscribe()
            .topic_arn(topic)
            .protocol("sqs")
            .endpoint(&arn)
            .return_subscription_arn(true)
            .send()
            .await
            .context("Subscribe")?;
        Ok(url)
    }

    /// Puts `data` into namespace `ns` with `PutMetricData`, at most
    /// [`PUT_METRIC_DATA_MAX`] datums per call; returns the number of calls.
    pub async fn put_metric_data(&self, ns: &str, data: &[Datum]) -> Result<usize> {
        let mut calls = 0;
        for chunk in data.chunks(PUT_METRIC_DATA_MAX) {
            let datums = chunk
                .iter()
                .map(|d| {
                    let mut datum = MetricDatum::builder()
                        .metric_name(&d.metric)
                        .timestamp(DateTime::from_secs(d.t))
                        .value(d.value);
                    for (k, v) in &d.dimensions {
                        datum = datum.dimensions(Dimension::builder().name(k).value(v).build());
                    }
                    datum.build()
                })
                .collect();
            self.cloudwatch
                .put_metric_data()
                .namespace(ns)
                .set_metric_data(Some(datums))
                .send()
                .await
                .with_context(|| format!("PutMetricData into {ns}"))?;
            calls += 1;
        }
        Ok(calls)
    }

    /// Reads and deletes every message of `queue` until it stays empty for
    /// a receive of one second.
    pub async fn drain(&self, queue: &str) -> Result<Vec<Received>> {
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(queue)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .context("ReceiveMessage")?;
            let msgs = out.messages();
            if msgs.is_empty() {
                return Ok(got);
            }
            for m in msgs {
                if let Some(h) = m.receipt_handle() {
                    self.sqs
                        .delete_message()
                        .queue_url(queue)
                        .receipt_handle(h)
                        .send()
                        .await
                        .context("DeleteMessage")?;
                }
                got.push(parse_message(queue, m)?);
            }
            if Instant::now() >= deadline {
                bail!("{queue} did not run dry within 60 s");
            }
        }
    }
}

fn parse_message(queue: &str, m: &aws_sdk_sqs::types::Message) -> Result<Received> {
    let body = m.body().ok_or_else(|| anyhow!("message without body"))?;
    let envelope: Value =
        serde_json::from_str(body).with_context(|| format!("SNS envelope: {body}"))?;
    let inner = envelope["Message"]
        .as_str()
        .ok_or_else(|| anyhow!("no Message in {body}"))?;
    let payload: Value =
        serde_json::from_str(inner).with_context(|| format!("payload: {inner}"))?;
    let attr =
        |name: MessageSystemAttributeName| m.attributes().and_then(|a| a.get(&name).cloned());
    Ok(Received {
        queue: queue.to_string(),
        subject: envelope["Subject"].as_str().map(str::to_owned),
        payload,
        group_id: attr(MessageSystemAttributeName::MessageGroupId),
        dedup_id: attr(MessageSystemAttributeName::MessageDeduplicationId),
    })
}

/// How often each notification arrived: `(receiver, group key, seq)` to count.
pub fn counts(msgs: &[Received]) -> BTreeMap<(String, String, u64), usize> {
    let mut out = BTreeMap::new();
    for m in msgs {
        *out.entry(m.identity()).or_insert(0) += 1;
    }
    out
}

/// Peak resident set size of this process in KiB (`VmHWM` of
/// `/proc/self/status`); `None` where there is no such file.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
