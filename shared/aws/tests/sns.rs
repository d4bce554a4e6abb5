//! SnsNotifier against SNS + SQS endpoints (the emulator, see
//! `scripts/emulator.sh`): topics are subscribed by SQS queues and the tests
//! read what arrives.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use common::{patience, sdk_config, unique, unreachable_config};
use firebell_aws::SnsNotifier;
use firebell_core::ports::{Notifier, NotifyError, Outbound};
use serde_json::Value;

struct Fixture {
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
}

impl Fixture {
    async fn new() -> Fixture {
        let config = sdk_config().await;
        Fixture {
            sns: aws_sdk_sns::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
        }
    }

    async fn topic(&self, fifo: bool) -> String {
        let mut req = self.sns.create_topic();
        if fifo {
            req = req
                .name(format!("{}.fifo", unique("firebell-test")))
                .attributes("FifoTopic", "true")
                .attributes("ContentBasedDeduplication", "false");
        } else {
            req = req.name(unique("firebell-test"));
        }
        req.send()
            .await
            .expect("CreateTopic")
            .topic_arn()
            .expect("topic arn")
            .to_owned()
    }

    /// A queue subscribed to `topic`; returns its URL.
    async fn subscribed_queue(&self, topic: &str, fifo: bool, raw: bool) -> String {
        let name = if fifo {
            format!("{}.fifo", unique("firebell-test"))
        } else {
            unique("firebell-test")
        };
        let mut req = self.sqs.create_queue().queue_name(name);
        if fifo {
            req = req.attributes(QueueAttributeName::FifoQueue, "true");
        }
        let url = req
            .send()
            .await
            .expect("CreateQueue")
            .queue_url()
            .expect("queue url")
            .to_owned();
        let arn = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("GetQueueAttributes")
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .expect("queue arn");
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
            .expect("SetQueueAttributes");
        let mut sub = self
            .sns
            .subscribe()
            .topic_arn(topic)
            .protocol("sqs")
            .endpoint(&arn)
            .return_subscription_arn(true);
        if raw {
            sub = sub.attributes("RawMessageDelivery", "true");
        }
        sub.send().await.expect("Subscribe");
        url
    }

    /// Waits until `n` messages arrived on `queue` (and no more within a
    /// short grace period), deleting them.
    async fn receive(&self, queue: &str, n: usize) -> Vec<aws_sdk_sqs::types::Message> {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + patience();
        while got.len() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {n} messages on {queue}, got {}",
                got.len()
            );
            self.drain_once(queue, &mut got).await;
        }
        // Anything extra (duplicates) shows up now or never.
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.drain_once(queue, &mut got).await;
        got
    }

    async fn drain_once(&self, queue: &str, got: &mut Vec<aws_sdk_sqs::types::Message>) {
        let out = self
            .sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .expect("ReceiveMessage");
        for m in out.messages() {
            if let Some(h) = m.receipt_handle() {
                self.sqs
                    .delete_message()
                    .queue_url(queue)
                    .receipt_handle(h)
                    .send()
                    .await
                    .expect("DeleteMessage");
            }
            got.push(m.clone());
        }
    }
}

fn outbound(topic: &str, n: u32) -> Outbound {
    Outbound {
        idempotency_key: format!("rule#HighErrors|svc=api|firing|{n}"),
        group_key: "rule#HighErrors|svc=api".to_owned(),
        receiver: "payments".to_owned(),
        destination: topic.to_owned(),
        subject: format!("[FIRING] HighErrors — api\nerror rate 5.2% #{n}"),
        bodies: BTreeMap::from([
            ("default".to_owned(), format!("HighErrors firing #{n}")),
            (
                "sqs".to_owned(),
                format!(r#"{{"alert":"HighErrors","n":{n}}}"#),
            ),
            ("email".to_owned(), format!("Dear team, #{n}")),
        ]),
        attributes: BTreeMap::from([
            ("alertname".to_owned(), "HighErrors".to_owned()),
            ("severity".to_owned(), "critical".to_owned()),
            ("status".to_owned(), "firing".to_owned()),
            ("team".to_owned(), "payments".to_owned()),
        ]),
    }
}

fn body_json(m: &aws_sdk_sqs::types::Message) -> Value {
    serde_json::from_str(m.body().expect("body")).expect("JSON body")
}

#[tokio::test]
async fn publishes_to_a_standard_topic() {
    let f = Fixture::new().await;
    let topic = f.topic(false).await;
    let enveloped = f.subscribed_queue(&topic, false, false).await;
    let raw = f.subscribed_queue(&topic, false, true).await;
    let notifier = SnsNotifier::new(f.sns.clone());

    notifier
        .publish(&outbound(&topic, 1))
        .await
        .expect("publish");
    assert_eq!(notifier.stats().publish, 1);

    // Without raw delivery SQS gets SNS's JSON envelope, with the `sqs` body.
    let msgs = f.receive(&enveloped, 1).await;
    assert_eq!(msgs.len(), 1);
    let env = body_json(&msgs[0]);
    assert_eq!(env["Type"], "Notification");
    assert_eq!(env["TopicArn"], topic.as_str());
    assert_eq!(env["Message"], r#"{"alert":"HighErrors","n":1}"#);
    assert_eq!(
        env["Subject"],
        "[FIRING] HighErrors - api error rate 5.2% #1"
    );
    let attrs = &env["MessageAttributes"];
    for (k, v) in [
        ("alertname", "HighErrors"),
        ("severity", "critical"),
        ("status", "firing"),
        ("team", "payments"),
    ] {
        assert_eq!(attrs[k]["Type"], "String", "{k}");
        assert_eq!(attrs[k]["Value"], v, "{k}");
    }

    // With raw delivery the body is the `sqs` body itself and the attributes
    // become SQS message attributes.
    let msgs = f.receive(&raw, 1).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].body(), Some(r#"{"alert":"HighErrors","n":1}"#));
    let attrs = msgs[0].message_attributes().expect("message attributes");
    assert_eq!(
        attrs.get("severity").and_then(|a| a.string_value()),
        Some("critical")
    );
    assert_eq!(attrs.get("team").map(|a| a.data_type()), Some("String"));
}

#[tokio::test]
async fn publishes_to_a_fifo_topic_in_order_without_duplicates() {
    let f = Fixture::new().await;
    let topic = f.topic(true).await;
    let queue = f.subscribed_queue(&topic, true, false).await;
    let notifier = SnsNotifier::new(f.sns.clone());

    let first = outbound(&topic, 1);
    notifier.publish(&first).await.expect("publish 1");
    // A retry of the same notification: deduplicated by SNS.
    notifier.publish(&first).await.expect("publish 1 again");
    notifier
        .publish(&outbound(&topic, 2))
        .await
        .expect("publish 2");
    let mut other = outbound(&topic, 3);
    other.group_key = "rule#Other|".repeat(20); // over 128 chars: hashed
    notifier.publish(&other).await.expect("publish 3");

    let msgs = f.receive(&queue, 3).await;
    let ns: Vec<Value> = msgs
        .iter()
        .map(|m| {
            let env = body_json(m);
            let inner: Value =
                serde_json::from_str(env["Message"].as_str().expect("Message")).expect("inner");
            inner["n"].clone()
        })
        .collect();
    assert_eq!(ns.len(), 3, "the duplicate was dropped: {ns:?}");
    let pos = |n: i64| ns.iter().position(|v| *v == n).expect("delivered");
    assert!(pos(1) < pos(2), "order kept within the group: {ns:?}");

    let group_of = |n: usize| {
        msgs[n]
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId).cloned())
    };
    assert_eq!(group_of(pos(1)).as_deref(), Some("rule#HighErrors|svc=api"));
    let hashed = group_of(pos(3)).expect("group id");
    assert_eq!(hashed.len(), 64);
}

#[tokio::test]
async fn publish_batch_splits_into_calls_of_ten() {
    let f = Fixture::new().await;
    let topic = f.topic(false).await;
    let queue = f.subscribed_queue(&topic, false, true).await;
    let notifier = SnsNotifier::new(f.sns.clone());

    let mut msgs: Vec<Outbound> = (0..12).map(|n| outbound(&topic, n)).collect();
    let mut bad = outbound(&topic, 99);
    bad.bodies.remove("default");
    msgs.insert(5, bad);
    let results = notifier.publish_batch(&msgs).await;
    assert_eq!(results.len(), 13);
    for (i, r) in results.iter().enumerate() {
        if i == 5 {
            assert!(matches!(r, Err(NotifyError::Rejected(_))), "{r:?}");
        } else {
            assert!(r.is_ok(), "{i}: {r:?}");
        }
    }
    assert_eq!(notifier.stats().publish_batch, 2);
    assert_eq!(notifier.stats().batch_entries, 12);

    let got = f.receive(&queue, 12).await;
    let mut ns: Vec<i64> = got
        .iter()
        .map(|m| body_json(m)["n"].as_i64().expect("n"))
        .collect();
    ns.sort();
    assert_eq!(ns, (0..12).collect::<Vec<_>>());
}

#[tokio::test]
async fn rejections_and_outages_are_classified() {
    let f = Fixture::new().await;
    let topic = f.topic(false).await;
    let notifier = SnsNotifier::new(f.sns.clone());

    // No `default` body: rejected before any call.
    let mut m = outbound(&topic, 1);
    m.bodies.remove("default");
    let err = notifier.publish(&m).await.expect_err("no default");
    assert!(matches!(err, NotifyError::Rejected(_)), "{err}");
    assert_eq!(notifier.stats().publish, 0);

    // A topic that does not exist: rejected by the service, not retryable.
    let gone = format!("{}-gone", topic);
    let err = notifier
        .publish(&outbound(&gone, 1))
        .await
        .expect_err("missing topic");
    assert!(matches!(err, NotifyError::Rejected(_)), "{err}");
    assert!(!err.is_retryable());
    // One line with the fix, from the service's NotFound code.
    let region = f.sns.config().region().unwrap().to_string();
    assert_eq!(
        err.to_string(),
        format!(
            "message rejected: SNS topic {gone} not found in region {region}: check the receiver's topics in the config (and --region)"
        )
    );

    // A malformed ARN: a validation error (AWS says InvalidParameter, the
    // emulator InvalidParameterException), rejected either way.
    let err = notifier
        .publish(&outbound("not-an-arn", 1))
        .await
        .expect_err("bad arn");
    assert!(matches!(err, NotifyError::Rejected(_)), "{err}");

    // The service's own validation codes, as the notifier sees them: a FIFO
    // publish without a group id (the notifier always sets one).
    let fifo = f.topic(true).await;
    let err = f
        .sns
        .publish()
        .topic_arn(&fifo)
        .message("plain")
        .send()
        .await
        .expect_err("FIFO publish without MessageGroupId");
    let code = aws_sdk_sns::error::ProvideErrorMetadata::code(&err).map(str::to_owned);
    assert!(
        matches!(
            code.as_deref(),
            Some("InvalidParameter" | "InvalidParameterException")
        ),
        "{code:?}"
    );

    // An unreachable service is temporary.
    let down = SnsNotifier::new(aws_sdk_sns::Client::new(&unreachable_config().await));
    let err = down.publish(&outbound(&topic, 1)).await.expect_err("down");
    assert!(matches!(err, NotifyError::Unavailable(_)), "{err}");
    assert!(err.is_retryable());
    let results = down.publish_batch(&[outbound(&topic, 1)]).await;
    assert!(
        matches!(results[0], Err(NotifyError::Unavailable(_))),
        "{results:?}"
    );
}
