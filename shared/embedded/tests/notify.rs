//! Terminal, JSON Lines and memory notifiers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use firebell_core::ports::{Notifier, NotifyError, Outbound};
use firebell_embedded::{JsonlNotifier, MemoryNotifier, TerminalNotifier};

fn msg(n: u32) -> Outbound {
    Outbound {
        idempotency_key: format!("key-{n}"),
        group_key: "payments/HighErrorRate".into(),
        receiver: "payments-team".into(),
        destination: "ops-pager".into(),
        subject: format!("[FIRING] HighErrorRate payments #{n}"),
        bodies: BTreeMap::from([
            (
                "default".into(),
                "Error rate 5.2% > 5%\nrunbook: https://x/rb\n".into(),
            ),
            ("email".into(), "<p>\"quoted\" é</p>".into()),
        ]),
        attributes: BTreeMap::from([
            ("severity".into(), "page".into()),
            ("status".into(), "firing".into()),
        ]),
    }
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Broken;

impl Write for Broken {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::new(
            std::io::ErrorKind::BrokenPipe,
            "closed",
        ))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn terminal_writes_a_readable_block() {
    let buf = Shared::default();
    let n = TerminalNotifier::new(Box::new(buf.clone()));
    n.publish(&msg(1)).await.unwrap();
    let mut bare = msg(2);
    bare.bodies.clear();
    bare.attributes.clear();
    n.publish(&bare).await.unwrap();
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let expected = format!(
        "── ops-pager · receiver payments-team {}\n\
         Subject: [FIRING] HighErrorRate payments #1\n\
         severity=page status=firing\n\
         \n\
         Error rate 5.2% > 5%\nrunbook: https://x/rb\n\
         \n\
         ── ops-pager · receiver payments-team {}\n\
         Subject: [FIRING] HighErrorRate payments #2\n\
         \n\
         (no default body)\n\n",
        "─".repeat(22),
        "─".repeat(22),
    );
    assert_eq!(text, expected);
}

#[tokio::test]
async fn terminal_write_failure_is_unavailable() {
    let n = TerminalNotifier::new(Box::new(Broken));
    let err = n.publish(&msg(1)).await.unwrap_err();
    assert!(matches!(err, NotifyError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn jsonl_appends_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notifications.jsonl");
    std::fs::write(&path, "").unwrap();
    {
        let n = JsonlNotifier::open(&path).unwrap();
        n.publish(&msg(1)).await.unwrap();
    }
    let n = JsonlNotifier::open(&path).unwrap();
    assert_eq!(n.path(), path);
    n.publish(&msg(2)).await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Outbound> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, [msg(1), msg(2)]);
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for field in [
        "idempotency_key",
        "group_key",
        "receiver",
        "destination",
        "subject",
        "bodies",
        "attributes",
    ] {
        assert!(keys.contains(&field), "{field} missing in {keys:?}");
    }
}

#[test]
fn jsonl_open_error_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("n.jsonl");
    let err = JsonlNotifier::open(&path).unwrap_err();
    assert!(err.to_string().contains("no-such-dir"), "{err}");
}

#[tokio::test]
async fn memory_records_and_injects_failures() {
    let n = MemoryNotifier::new();
    assert!(n.is_empty());
    n.publish(&msg(1)).await.unwrap();
    n.fail_next(2);
    for _ in 0..2 {
        let err = n.publish(&msg(2)).await.unwrap_err();
        assert!(err.is_retryable(), "{err:?}");
    }
    n.publish(&msg(2)).await.unwrap();
    assert_eq!(n.messages(), [msg(1), msg(2)]);
    assert_eq!(n.attempts(), 4);
    assert_eq!(n.len(), 2);
    assert_eq!(n.take(), [msg(1), msg(2)]);
    assert!(n.is_empty());
    n.publish(&msg(3)).await.unwrap();
    n.clear();
    assert!(n.is_empty());
}
