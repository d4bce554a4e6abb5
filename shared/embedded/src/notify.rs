//! Notifiers of the local mode: to a terminal, to a JSON Lines file, and to
//! memory (tests and demos).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use firebell_core::ports::{Notifier, NotifyError, Outbound};

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ------------------------------------------------------------------ terminal

/// Writes each message as a readable block:
///
/// ```text
/// ── ops-pager · receiver payments-team ──────────────
/// Subject: [FIRING] HighErrorRate payments
/// severity=page status=firing
///
/// <the `default` body>
///
/// ```
///
/// The attributes line is left out when there are none.
pub struct TerminalNotifier {
    out: Mutex<Box<dyn Write + Send>>,
}

impl TerminalNotifier {
    pub fn new(out: Box<dyn Write + Send>) -> TerminalNotifier {
        TerminalNotifier {
            out: Mutex::new(out),
        }
    }

    pub fn stdout() -> TerminalNotifier {
        TerminalNotifier::new(Box::new(io::stdout()))
    }

    /// The block [`publish`](Notifier::publish) writes for `msg`.
    pub fn render(msg: &Outbound) -> String {
        let mut head = format!("── {} · receiver {} ", msg.destination, msg.receiver);
        let width = head.chars().count();
        if width < 60 {
            head.push_str(&"─".repeat(60 - width));
        }
        let mut text = format!("{head}\nSubject: {}\n", msg.subject);
        if !msg.attributes.is_empty() {
            let attrs: Vec<String> = msg
                .attributes
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            text.push_str(&attrs.join(" "));
            text.push('\n');
        }
        text.push('\n');
        match msg.bodies.get("default") {
            Some(body) => text.push_str(body.trim_end()),
            None => text.push_str("(no default body)"),
        }
        text.push_str("\n\n");
        text
    }
}

impl fmt::Debug for TerminalNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TerminalNotifier").finish_non_exhaustive()
    }
}

#[async_trait]
impl Notifier for TerminalNotifier {
    async fn publish(&self, msg: &Outbound) -> Result<(), NotifyError> {
        let text = TerminalNotifier::render(msg);
        let mut out = lock(&self.out);
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| NotifyError::Unavailable(format!("cannot write to the terminal: {e}")))
    }
}

// ------------------------------------------------------------------ jsonl

/// A notifier file could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open {}: {source}", path.display())]
pub struct OpenError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// Appends each message to a file as one JSON object per line: the serde form
/// of [`Outbound`] (`idempotency_key`, `group_key`, `receiver`,
/// `destination`, `subject`, `bodies`, `attributes`), so a line reads back
/// with `serde_json::from_str::<Outbound>`. Each line is written with a
/// single append.
#[derive(Debug)]
pub struct JsonlNotifier {
    path: PathBuf,
    file: Mutex<File>,
}

impl JsonlNotifier {
    /// Opens `path` for appending, creating it (not its directory) if needed.
    pub fn open(path: impl Into<PathBuf>) -> Result<JsonlNotifier, OpenError> {
        let path = path.into();
        match OpenOptions::new().create(true).append(true).open(&path) {
            Ok(file) => Ok(JsonlNotifier {
                path,
                file: Mutex::new(file),
            }),
            Err(source) => Err(OpenError { path, source }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl Notifier for JsonlNotifier {
    async fn publish(&self, msg: &Outbound) -> Result<(), NotifyError> {
        let mut line = serde_json::to_string(msg)
            .map_err(|e| NotifyError::Rejected(format!("cannot encode message: {e}")))?;
        line.push('\n');
        let mut file = lock(&self.file);
        file.write_all(line.as_bytes()).map_err(|e| {
            NotifyError::Unavailable(format!("cannot write {}: {e}", self.path.display()))
        })
    }
}

// ------------------------------------------------------------------ memory

#[derive(Debug, Default)]
struct Recorded {
    messages: Vec<Outbound>,
    fail_next: usize,
    attempts: usize,
}

/// Records published messages in memory. [`fail_next`](MemoryNotifier::fail_next)
/// makes the next publishes fail with [`NotifyError::Unavailable`] (failed
/// publishes are not recorded), to test retries.
#[derive(Debug, Default)]
pub struct MemoryNotifier {
    state: Mutex<Recorded>,
}

impl MemoryNotifier {
    pub fn new() -> MemoryNotifier {
        MemoryNotifier::default()
    }

    /// The next `n` publishes fail (replacing any failures still pending).
    pub fn fail_next(&self, n: usize) {
        lock(&self.state).fail_next = n;
    }

    /// Messages published successfully so far, in order.
    pub fn messages(&self) -> Vec<Outbound> {
        lock(&self.state).messages.clone()
    }

    /// Returns and forgets the recorded messages.
    pub fn take(&self) -> Vec<Outbound> {
        std::mem::take(&mut lock(&self.state).messages)
    }

    pub fn len(&self) -> usize {
        lock(&self.state).messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Publish calls so far, failed ones included.
    pub fn attempts(&self) -> usize {
        lock(&self.state).attempts
    }

    pub fn clear(&self) {
        lock(&self.state).messages.clear();
    }
}

#[async_trait]
impl Notifier for MemoryNotifier {
    async fn publish(&self, msg: &Outbound) -> Result<(), NotifyError> {
        let mut state = lock(&self.state);
        state.attempts += 1;
        if state.fail_next > 0 {
            state.fail_next -= 1;
            return Err(NotifyError::Unavailable(format!(
                "injected failure ({} more to come)",
                state.fail_next
            )));
        }
        state.messages.push(msg.clone());
        Ok(())
    }
}
