//! SNS notifier: `Publish` with `MessageStructure=json`.
//!
//! The message is [`Outbound::bodies`] serialised as a JSON object (SNS picks
//! the body of each subscription's protocol, or `default`, which must be
//! there). The subject is sanitised to what SNS accepts, attributes are sent
//! as `String` message attributes (at most 10). For FIFO topics (ARN ending in
//! `.fifo`) the group key becomes the `MessageGroupId` and the SHA-256 of the
//! idempotency key the `MessageDeduplicationId`, so a retried notification is
//! delivered once within SNS's five-minute deduplication window.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use firebell_core::ports::{
    Notifier, NotifyError, Outbound, SNS_MAX_MESSAGE_ATTRIBUTES as MAX_ATTRIBUTES,
    SNS_MAX_MESSAGE_BYTES as MAX_PAYLOAD_BYTES, SNS_MAX_SUBJECT_CHARS as MAX_SUBJECT_CHARS,
};
use firebell_core::text::sha256_hex;

use crate::error::{AwaitClassified, Classified, Fault, Resource};

const MAX_BATCH_ENTRIES: usize = 10;
const MAX_GROUP_ID_CHARS: usize = 128;

/// API calls made by an [`SnsNotifier`] so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnsStats {
    pub publish: u64,
    pub publish_batch: u64,
    /// Messages sent through `PublishBatch`.
    pub batch_entries: u64,
}

impl SnsStats {
    /// API calls made.
    pub fn total(&self) -> u64 {
        self.publish + self.publish_batch
    }
}

impl fmt::Display for SnsStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Publish={} PublishBatch={} batch_entries={}",
            self.publish, self.publish_batch, self.batch_entries
        )
    }
}

#[derive(Debug, Default)]
struct Counters {
    publish: AtomicU64,
    publish_batch: AtomicU64,
    batch_entries: AtomicU64,
}

/// [`Notifier`] publishing to SNS topics; [`Outbound::destination`] is the topic ARN.
#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: Client,
    counters: Arc<Counters>,
}

/// A message checked and shaped for SNS.
#[derive(Debug)]
struct Prepared {
    topic_arn: String,
    message: String,
    subject: Option<String>,
    attributes: HashMap<String, MessageAttributeValue>,
    group_id: Option<String>,
    dedup_id: Option<String>,
    /// Message plus attributes, as SNS counts them against its size limit.
    size: usize,
}

fn is_fifo(topic_arn: &str) -> bool {
    topic_arn.ends_with(".fifo")
}

/// Makes `s` a valid SNS subject: ASCII printable characters only (a few
/// common typographic characters are transliterated, others dropped), no line
/// breaks or control characters (whitespace runs become one space), starts
/// with a letter, digit or punctuation mark, at most 100 characters (longer
/// subjects are cut and end in `...`). May return an empty string.
pub fn sanitize_subject(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_SUBJECT_CHARS + 3));
    let mut space = false;
    for c in s.chars() {
        let mapped: &str = match c {
            c if c.is_whitespace() || c.is_control() => {
                space = true;
                continue;
            }
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{2032}' => "'",
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{2033}' => "\"",
            '\u{2010}'..='\u{2015}' | '\u{2212}' => "-",
            '\u{2026}' => "...",
            '\u{2022}' | '\u{00B7}' => "*",
            '\u{00D7}' => "x",
            '\u{2264}' => "<=",
            '\u{2265}' => ">=",
            '\u{2192}' => "->",
            c if c.is_ascii_graphic() => {
                if space && !out.is_empty() {
                    out.push(' ');
                }
                space = false;
                out.push(c);
                continue;
            }
            _ => continue,
        };
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push_str(mapped);
    }
    if out.len() > MAX_SUBJECT_CHARS {
        // All ASCII: byte offsets are character offsets.
        out.truncate(MAX_SUBJECT_CHARS - 3);
        let kept = out.trim_end().len();
        out.truncate(kept);
        out.push_str("...");
    }
    out
}

/// Whether `name` is a valid SNS message attribute name.
fn valid_attribute_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !lower.starts_with("aws.")
        && !lower.starts_with("amazon.")
}

/// A FIFO `MessageGroupId`: the group key when SNS accepts it as one (1-128
/// printable ASCII characters), else its SHA-256 hex.
fn group_id(key: &str) -> String {
    if !key.is_empty()
        && key.len() <= MAX_GROUP_ID_CHARS
        && key.bytes().all(|b| b.is_ascii_graphic())
    {
        key.to_owned()
    } else {
        sha256_hex(key)
    }
}

fn rejected(msg: &Outbound, why: impl fmt::Display) -> NotifyError {
    NotifyError::Rejected(format!(
        "{} -> {}: {why}",
        msg.idempotency_key, msg.destination
    ))
}

fn prepare(msg: &Outbound) -> Result<Prepared, NotifyError> {
    if msg.destination.is_empty() {
        return Err(rejected(msg, "empty destination topic ARN"));
    }
    if !msg.bodies.contains_key("default") {
        return Err(rejected(
            msg,
            "bodies have no `default` entry (required by MessageStructure=json)",
        ));
    }
    let message = serde_json::to_string(&msg.bodies).map_err(|e| rejected(msg, e))?;
    let mut size = message.len();
    let mut attributes = HashMap::new();
    for (name, value) in &msg.attributes {
        if attributes.len() == MAX_ATTRIBUTES {
            tracing::warn!(attribute = %name, "more than {MAX_ATTRIBUTES} message attributes: dropped");
            continue;
        }
        if !valid_attribute_name(name) || value.is_empty() {
            tracing::warn!(attribute = %name, "invalid message attribute name or empty value: dropped");
            continue;
        }
        let attr = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|e| rejected(msg, e))?;
        size += name.len() + "String".len() + value.len();
        attributes.insert(name.clone(), attr);
    }
    if size > MAX_PAYLOAD_BYTES {
        return Err(rejected(
            msg,
            format!("message is {size} bytes, over SNS's {MAX_PAYLOAD_BYTES}"),
        ));
    }
    let subject = Some(sanitize_subject(&msg.subject)).filter(|s| !s.is_empty());
    let (group, dedup) = if is_fifo(&msg.destination) {
        (
            Some(group_id(&msg.group_key)),
            Some(sha256_hex(&msg.idempotency_key)),
        )
    } else {
        (None, None)
    };
    Ok(Prepared {
        topic_arn: msg.destination.clone(),
        message,
        subject,
        attributes,
        group_id: group,
        dedup_id: dedup,
        size,
    })
}

/// The port error of a failed call `what` to `topic`: its one-line message
/// names the problem and the fix when recognised (`crate::AwsProblem`).
fn notify_error(c: &Classified, what: &str, client: &Client, topic: &str) -> NotifyError {
    let region = client.config().region().map(|r| r.as_ref().to_string());
    let message = c.describe("sns", what, Resource::Topic(topic), region.as_deref());
    match c.fault {
        Fault::Throttled | Fault::Transient => NotifyError::Unavailable(message),
        // InvalidParameter (AWS), InvalidParameterException (emulators),
        // NotFound, AuthorizationError, ...: the same message fails again.
        Fault::Client | Fault::ConditionFailed => NotifyError::Rejected(message),
    }
}

impl SnsNotifier {
    pub fn new(client: Client) -> SnsNotifier {
        SnsNotifier {
            client,
            counters: Arc::new(Counters::default()),
        }
    }

    /// A notifier with a client built from `config` (see [`crate::load_sdk_config`]).
    pub fn from_sdk_config(config: &aws_config::SdkConfig) -> SnsNotifier {
        SnsNotifier::new(Client::new(config))
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// API calls made so far.
    pub fn stats(&self) -> SnsStats {
        let c = &self.counters;
        SnsStats {
            publish: c.publish.load(Ordering::Relaxed),
            publish_batch: c.publish_batch.load(Ordering::Relaxed),
            batch_entries: c.batch_entries.load(Ordering::Relaxed),
        }
    }

    /// Publishes `msgs` with `PublishBatch` (per destination topic, at most 10
    /// messages and 256 KiB per call). Returns one result per message, in
    /// order; messages are independent: some may fail while others succeed.
    pub async fn publish_batch(&self, msgs: &[Outbound]) -> Vec<Result<(), NotifyError>> {
        let mut results: Vec<Option<Result<(), NotifyError>>> = Vec::with_capacity(msgs.len());
        // Topic ARN -> indexes of its prepared messages, in first-seen order.
        let mut topics: Vec<(String, Vec<(usize, Prepared)>)> = Vec::new();
        for (i, msg) in msgs.iter().enumerate() {
            match prepare(msg) {
                Ok(p) => {
                    results.push(None);
                    match topics.iter_mut().find(|(t, _)| *t == p.topic_arn) {
                        Some((_, v)) => v.push((i, p)),
                        None => topics.push((p.topic_arn.clone(), vec![(i, p)])),
                    }
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        for (topic, prepared) in topics {
            let mut batch: Vec<(usize, Prepared)> = Vec::new();
            let mut batch_size = 0;
            for (i, p) in prepared {
                if batch.len() == MAX_BATCH_ENTRIES
                    || (!batch.is_empty() && batch_size + p.size > MAX_PAYLOAD_BYTES)
                {
                    self.send_batch(&topic, std::mem::take(&mut batch), &mut results)
                        .await;
                    batch_size = 0;
                }
                batch_size += p.size;
                batch.push((i, p));
            }
            if !batch.is_empty() {
                self.send_batch(&topic, batch, &mut results).await;
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(NotifyError::Unavailable("not sent".to_owned()))))
            .collect()
    }

    async fn send_batch(
        &self,
        topic: &str,
        batch: Vec<(usize, Prepared)>,
        results: &mut [Option<Result<(), NotifyError>>],
    ) {
        let mut entries = Vec::with_capacity(batch.len());
        let mut ids: HashMap<String, usize> = HashMap::with_capacity(batch.len());
        for (i, p) in batch {
            let id = format!("m{i}");
            let entry = PublishBatchRequestEntry::builder()
                .id(&id)
                .message(p.message)
                .message_structure("json")
                .set_subject(p.subject)
                .set_message_attributes(Some(p.attributes).filter(|a| !a.is_empty()))
                .set_message_group_id(p.group_id)
                .set_message_deduplication_id(p.dedup_id)
                .build();
            match entry {
                Ok(entry) => {
                    entries.push(entry);
                    ids.insert(id, i);
                }
                Err(e) => results[i] = Some(Err(NotifyError::Rejected(e.to_string()))),
            }
        }
        if entries.is_empty() {
            return;
        }
        self.counters.publish_batch.fetch_add(1, Ordering::Relaxed);
        self.counters
            .batch_entries
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        let out = self
            .client
            .publish_batch()
            .topic_arn(topic)
            .set_publish_batch_request_entries(Some(entries))
            .send()
            .await_classified()
            .await;
        match out {
            Ok(out) => {
                for ok in out.successful() {
                    if let Some(&i) = ok.id().and_then(|id| ids.get(id)) {
                        results[i] = Some(Ok(()));
                    }
                }
                for failed in out.failed() {
                    if let Some(&i) = ids.get(failed.id()) {
                        let why = format!(
                            "PublishBatch entry: {}: {}",
                            failed.code(),
                            failed.message().unwrap_or("")
                        );
                        results[i] = Some(Err(if failed.sender_fault() {
                            NotifyError::Rejected(why)
                        } else {
                            NotifyError::Unavailable(why)
                        }));
                    }
                }
                for &i in ids.values() {
                    if results[i].is_none() {
                        results[i] = Some(Err(NotifyError::Unavailable(
                            "PublishBatch returned no result for the entry".to_owned(),
                        )));
                    }
                }
            }
            Err(c) => {
                let why = notify_error(&c, "PublishBatch", &self.client, topic);
                for &i in ids.values() {
                    results[i] = Some(Err(why.clone()));
                }
            }
        }
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn publish(&self, msg: &Outbound) -> Result<(), NotifyError> {
        let p = prepare(msg)?;
        let topic = p.topic_arn.clone();
        self.counters.publish.fetch_add(1, Ordering::Relaxed);
        self.client
            .publish()
            .topic_arn(p.topic_arn)
            .message(p.message)
            .message_structure("json")
            .set_subject(p.subject)
            .set_message_attributes(Some(p.attributes).filter(|a| !a.is_empty()))
            .set_message_group_id(p.group_id)
            .set_message_deduplication_id(p.dedup_id)
            .send()
            .await_classified()
            .await
            .map_err(|c| notify_error(&c, "Publish", &self.client, &topic))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn outbound(dest: &str) -> Outbound {
        Outbound {
            idempotency_key: "rule#a|inst|firing|1700000000".into(),
            group_key: "rule#a|inst".into(),
            receiver: "team".into(),
            destination: dest.into(),
            subject: "[FIRING] High error rate".into(),
            bodies: BTreeMap::from([
                ("default".into(), "plain".into()),
                ("sqs".into(), "{\"a\":1}".into()),
            ]),
            attributes: BTreeMap::from([
                ("severity".into(), "critical".into()),
                ("team".into(), "payments".into()),
            ]),
        }
    }

    #[test]
    fn subjects_are_sanitised() {
        assert_eq!(sanitize_subject("  a\nb\r\n\tc  "), "a b c");
        assert_eq!(sanitize_subject("🔥 Fire — “now”…"), "Fire - \"now\"...");
        assert_eq!(sanitize_subject("\u{7}\u{1b}"), "");
        let long = "x".repeat(150);
        let s = sanitize_subject(&long);
        assert_eq!(s.len(), 100);
        assert!(s.ends_with("..."));
        let s = sanitize_subject(&format!("{} tail", "y".repeat(96)));
        assert!(s.len() <= 100 && s.ends_with("y..."), "{s}");
        assert!(sanitize_subject(&"é".repeat(300)).is_empty());
    }

    #[test]
    fn fifo_ids() {
        let p = prepare(&outbound("arn:aws:sns:us-east-1:1:alerts.fifo")).unwrap();
        assert_eq!(p.group_id.as_deref(), Some("rule#a|inst"));
        let dedup = p.dedup_id.unwrap();
        assert_eq!(dedup.len(), 64);
        assert!(dedup.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(dedup, sha256_hex("rule#a|inst|firing|1700000000"));
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let p = prepare(&outbound("arn:aws:sns:us-east-1:1:alerts")).unwrap();
        assert!(p.group_id.is_none() && p.dedup_id.is_none());
        assert_eq!(group_id(&"g".repeat(200)).len(), 64);
        assert_eq!(group_id("a b").len(), 64);
    }

    #[test]
    fn message_is_json_of_bodies() {
        let p = prepare(&outbound("arn:aws:sns:us-east-1:1:t")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&p.message).unwrap();
        assert_eq!(v["default"], "plain");
        assert_eq!(p.attributes.len(), 2);
        assert_eq!(p.subject.as_deref(), Some("[FIRING] High error rate"));
    }

    #[test]
    fn bad_messages_are_rejected_or_trimmed() {
        let mut m = outbound("arn:aws:sns:us-east-1:1:t");
        m.bodies.remove("default");
        assert!(matches!(prepare(&m), Err(NotifyError::Rejected(_))));

        let mut m = outbound("arn:aws:sns:us-east-1:1:t");
        for i in 0..15 {
            m.attributes.insert(format!("a{i:02}"), "v".into());
        }
        m.attributes.insert("AWS.reserved".into(), "v".into());
        m.attributes.insert("empty".into(), String::new());
        let p = prepare(&m).unwrap();
        assert_eq!(p.attributes.len(), 10);
        assert!(!p.attributes.contains_key("AWS.reserved"));

        let mut m = outbound("arn:aws:sns:us-east-1:1:t");
        m.bodies
            .insert("default".into(), "x".repeat(MAX_PAYLOAD_BYTES));
        assert!(matches!(prepare(&m), Err(NotifyError::Rejected(_))));
    }

    #[test]
    fn attribute_names() {
        assert!(valid_attribute_name("alert.name-1_x"));
        assert!(!valid_attribute_name("a..b"));
        assert!(!valid_attribute_name(".a"));
        assert!(!valid_attribute_name("amazon.x"));
        assert!(!valid_attribute_name("has space"));
    }
}
