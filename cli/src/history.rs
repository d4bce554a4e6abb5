//! `firebell history`: what fired, resolved and was sent, from the store's
//! history (written by the cycles that wrote; see `firebell_engine::history`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use firebell_core::model::Labels;
use firebell_core::state::Event;
use firebell_engine::history::{self, HistoryEntry};
use firebell_notify::Matcher;
use serde_json::{Value, json};

use crate::backend::StoreArgs;
use crate::timefmt::{parse_at, rfc3339};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Label matchers in Alertmanager syntax (`service="payments"`,
    /// `severity=~"page|ticket"`, `{team="web"}`): transitions whose labels
    /// match, notifications listing an alert that matches.
    #[arg(value_name = "MATCHER")]
    pub matchers: Vec<String>,
    /// From this time: RFC 3339, a day, Unix seconds, or relative (`7d`, `-1d`, `now-6h`).
    #[arg(
        allow_hyphen_values = true,
        long,
        default_value = "7d",
        value_name = "TIME"
    )]
    pub since: String,
    /// Up to this time (same forms). Default: now.
    #[arg(
        allow_hyphen_values = true,
        long,
        default_value = "now",
        value_name = "TIME"
    )]
    pub until: String,
    /// Only this rule's transitions and the notifications listing it.
    #[arg(long, value_name = "RULE")]
    pub rule: Option<String>,
    /// Only notifications sent to this receiver (and, with --config, the
    /// transitions of alerts the routing tree sends it).
    #[arg(long, value_name = "NAME")]
    pub receiver: Option<String>,
    /// Also list the cycles that wrote (quiet cycles write nothing, so they are not listed).
    #[arg(long)]
    pub cycles: bool,
    /// Config file or directory, for --receiver's routing of transitions. Default: $FIREBELL_CONFIG.
    #[arg(long, short, env = crate::CONFIG_ENV, value_name = "DIR")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub output: crate::output::OutputArgs,
}

/// The history document's schema (`docs/schemas/history.schema.json`).
pub(crate) const SCHEMA: &str = "firebell.history/v1";

/// What to keep.
struct Filter {
    matchers: Vec<Matcher>,
    rule: Option<String>,
    receiver: Option<String>,
    cycles: bool,
    /// The routing tree, when --receiver is given with a config.
    notify: Option<firebell_notify::NotifyConfig>,
}

impl Filter {
    fn labels_match(&self, labels: &Labels) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }

    fn keeps(&self, e: &HistoryEntry) -> bool {
        match e {
            HistoryEntry::Transition(t) => {
                self.rule.as_ref().is_none_or(|r| &t.rule == r)
                    && self.labels_match(&t.labels)
                    && self.receiver.as_ref().is_none_or(|x| {
                        self.notify.as_ref().is_some_and(|cfg| {
                            firebell_notify::route(cfg, &t.labels)
                                .iter()
                                .any(|m| &m.receiver == x)
                        })
                    })
            }
            HistoryEntry::Notification(n) => {
                self.rule.as_ref().is_none_or(|r| n.mentions(r))
                    && self.receiver.as_ref().is_none_or(|x| &n.receiver == x)
                    && (self.matchers.is_empty()
                        || n.alerts.iter().any(|a| self.labels_match(&a.labels)))
            }
            HistoryEntry::Cycle(_) => {
                self.cycles
                    && self.rule.is_none()
                    && self.receiver.is_none()
                    && self.matchers.is_empty()
            }
        }
    }
}

pub(crate) fn main(args: &Args) -> Result<ExitCode> {
    let now = jiff::Timestamp::now().as_second();
    let since = parse_at(&args.since, now).context("--since")?;
    let until = parse_at(&args.until, now).context("--until")?;
    let mut matchers = Vec::new();
    for m in &args.matchers {
        matchers.extend(Matcher::parse_list(m).map_err(|e| anyhow::anyhow!("matcher {m:?}: {e}"))?);
    }
    let notify = match (&args.receiver, &args.config) {
        (Some(_), Some(path)) => match firebell_engine::load(path) {
            Ok((c, _)) => Some(c.notify),
            Err(e) => {
                eprintln!("{e}");
                return Ok(ExitCode::from(1));
            }
        },
        _ => None,
    };
    let filter = Filter {
        matchers,
        rule: args.rule.clone(),
        receiver: args.receiver.clone(),
        cycles: args.cycles,
        notify,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let entries = rt.block_on(async {
        match args.store.open_for_read().await? {
            None => Ok::<_, anyhow::Error>(Vec::new()),
            Some(store) => Ok(history::read(store.as_ref(), since, until).await?),
        }
    })?;
    let kept: Vec<&HistoryEntry> = entries.iter().filter(|e| filter.keeps(e)).collect();
    if args.output.json() {
        crate::json::print(&Value::Array(kept.iter().map(|e| to_json(e)).collect()));
        return Ok(ExitCode::SUCCESS);
    }
    let name = args.store.name();
    if kept.is_empty() {
        println!(
            "no history in {name} from {} to {}",
            rfc3339(since),
            rfc3339(until)
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "history in {name} from {} to {} ({} entr{})",
        rfc3339(since),
        rfc3339(until),
        kept.len(),
        if kept.len() == 1 { "y" } else { "ies" }
    );
    for e in kept {
        println!("{}", line(e));
    }
    Ok(ExitCode::SUCCESS)
}

/// `{service="payments", team="payments"}` (without `alertname`, shown apart).
fn label_text(labels: &Labels) -> String {
    let parts: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname")
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn value_text(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map(|v| {
            let text = format!("{v:.4}");
            let text = text.trim_end_matches('0').trim_end_matches('.');
            format!(" value {text}")
        })
        .unwrap_or_default()
}

/// One line for people.
fn line(e: &HistoryEntry) -> String {
    let at = rfc3339(e.at());
    match e {
        HistoryEntry::Transition(t) => {
            let value = match t.event {
                Event::Fired { value, .. } | Event::Resolved { value, .. } => value_text(value),
                _ => String::new(),
            };
            format!(
                "{at}  {:<15} {} {}{value}",
                crate::json::event_name(&t.event),
                t.rule,
                label_text(&t.labels)
            )
        }
        HistoryEntry::Notification(n) => {
            let kind = if n.wakes_someone() {
                "paged"
            } else {
                "notified"
            };
            format!("{at}  {kind:<15} {}: {}", n.receiver, n.subject)
        }
        HistoryEntry::Cycle(c) => format!(
            "{at}  {:<15} {} rules, {} instances, {} transitions, {} notifications, {} ms{}",
            "cycle",
            c.rules_evaluated,
            c.instances_evaluated,
            c.transitions,
            c.notifications,
            c.duration_ms,
            if c.errors.is_empty() {
                String::new()
            } else {
                format!(", errors: {}", c.errors.join("; "))
            }
        ),
    }
}

/// One entry as `firebell.history/v1`: its kind and the entity's own
/// document (transition, notification record, cycle).
fn to_json(e: &HistoryEntry) -> Value {
    let entry = match e {
        HistoryEntry::Transition(t) => crate::json::transition(t.event.at(), t),
        HistoryEntry::Notification(n) => crate::json::notification(n),
        HistoryEntry::Cycle(c) => crate::json::cycle_record(c),
    };
    let kind = match e {
        HistoryEntry::Transition(_) => "transition",
        HistoryEntry::Notification(_) => "notification",
        HistoryEntry::Cycle(_) => "cycle",
    };
    json!({"schema": SCHEMA, "kind": kind, "at": rfc3339(e.at()), "entry": entry})
}
