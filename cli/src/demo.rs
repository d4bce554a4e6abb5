//! `firebell demo`: a bundled day of two services (payments, checkout)
//! replayed minute by minute through the whole loop — replay source, state
//! machine, routing, grouping, rendering — on the embedded in-memory store.
//! Prints the timeline, every notification it sends, and a summary of which
//! toast it ignored and which fires it paged.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use firebell_core::ports::Outbound;
use firebell_core::series::Epoch;
use firebell_core::state::Event;
use firebell_embedded::ReplaySource;
use firebell_engine::Transition;
use firebell_tools::backtest::{SimCycle, SimOptions, simulate};

use crate::bundled;
use crate::timefmt::{hhmm, span};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print only subjects, not full message bodies.
    #[arg(long)]
    pub brief: bool,
    /// The same as `-o json`: one notification record per line (`firebell.notification-record/v1`).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub output: crate::output::OutputArgs,
}

/// What the scripted day contains, to check against what firebell did.
struct Episode {
    start: &'static str,
    end: &'static str,
    rule: &'static str,
    what: &'static str,
    /// `None`: a real fire that must page. `Some(why)`: toast that must not.
    toast: Option<&'static str>,
}

const DAY: Epoch = 1_795_392_000; // 2026-11-23T00:00:00Z

const EPISODES: &[Episode] = &[
    Episode {
        start: "02:13",
        end: "02:13",
        rule: "PaymentsHighErrorRate",
        what: "payments: a single 500 at night",
        toast: Some(
            "about 30 requests a minute: under the volume guard (500 requests in 5m), not judged",
        ),
    },
    Episode {
        start: "03:47",
        end: "03:47",
        rule: "PaymentsHighErrorRate",
        what: "payments: a single 500 at night",
        toast: Some("under the volume guard, not judged"),
    },
    Episode {
        start: "04:20",
        end: "04:20",
        rule: "PaymentsHighErrorRate",
        what: "payments: a single 500 at night",
        toast: Some("under the volume guard, not judged"),
    },
    Episode {
        start: "04:30",
        end: "04:31",
        rule: "CheckoutErrorRate",
        what: "checkout: 2-of-3 failure blip at 8 requests a minute",
        toast: Some("2 of 3 datapoints breached, but under the volume guard (300 requests in 5m)"),
    },
    Episode {
        start: "11:20",
        end: "11:21",
        rule: "PaymentsHighErrorRate",
        what: "payments: 2-minute error spike (8%)",
        toast: Some("2 of 5 datapoints breached, not the 4 of 5 that page (`datapoints`)"),
    },
    Episode {
        start: "13:05",
        end: "13:07",
        rule: "PaymentsHighErrorRate",
        what: "payments: 3-minute gap in the data",
        toast: Some("shorter than the 4m it takes to raise NoData (`missing_data: nodata`)"),
    },
    Episode {
        start: "15:42",
        end: "15:53",
        rule: "PaymentsHighErrorRate",
        what: "payments: error rate about 5% for 12 minutes",
        toast: None,
    },
    Episode {
        start: "19:05",
        end: "19:24",
        rule: "CheckoutLatencyP99",
        what: "checkout: p99 latency about 1.4s for 20 minutes",
        toast: None,
    },
];

fn at(hhmm: &str) -> Epoch {
    let (h, m) = hhmm.split_once(':').unwrap_or(("0", "0"));
    DAY + h.parse::<i64>().unwrap_or(0) * 3600 + m.parse::<i64>().unwrap_or(0) * 60
}

/// Everything the demo observed.
pub(crate) struct Outcome {
    pub transitions: Vec<(Epoch, Transition)>,
    pub messages: Vec<(Epoch, Outbound)>,
}

/// Called after every cycle with its time, report and sent messages.
pub(crate) type OnCycle<'a> = dyn FnMut(Epoch, &firebell_engine::CycleReport, &[Outbound]) + 'a;

/// Replays the bundled day through the engine.
pub(crate) async fn replay_day(on_cycle: &mut OnCycle<'_>) -> Result<Outcome> {
    let config = Arc::new(bundled::example_config()?);
    let source = ReplaySource::parse(bundled::DEMO_DAY_NAME, bundled::DEMO_DAY)
        .context("loading the demo day")?;
    // Cycle at the end of each minute, so minute m's datapoint is complete.
    let opts = SimOptions {
        owner: "demo".into(),
        ..SimOptions::new(DAY, DAY + 1440 * 60)
    };
    let sim = simulate(config, Arc::new(source), &opts, &mut |c: &SimCycle| {
        for e in &c.report.errors {
            eprintln!("{}: {e}", hhmm(c.now));
        }
        on_cycle(c.now, &c.report, &c.sent);
    })
    .await?;
    Ok(Outcome {
        transitions: sim.transitions,
        messages: sim.messages,
    })
}

fn describe(t: &Transition, config: &firebell_engine::Config) -> (String, String) {
    let rule = config.rules.get(&t.rule);
    let fmt = |v: Option<f64>| match (v, rule) {
        (Some(v), Some(r)) => format!(
            "{} {} {}",
            r.unit.format(v),
            r.condition.op,
            r.unit.format(r.condition.threshold)
        ),
        (Some(v), None) => format!("{v}"),
        (None, _) => String::new(),
    };
    let (word, detail) = match t.event {
        Event::Pending { .. } => (
            "pending",
            "condition holds; waiting for the pending period".to_string(),
        ),
        Event::PendingCleared { .. } => ("cleared", "condition cleared while pending".to_string()),
        Event::Fired { value, .. } => ("FIRING", fmt(value)),
        Event::Resolved { value, .. } => (
            "resolved",
            match (value, rule) {
                (Some(v), Some(r)) => format!("back to {}", r.unit.format(v)),
                _ => String::new(),
            },
        ),
        Event::NoDataStarted { .. } => ("NODATA", "no datapoints".to_string()),
        Event::NoDataEnded { .. } => ("data back", String::new()),
    };
    (word.to_string(), detail)
}

pub(crate) fn main(args: &Args) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = std::time::Instant::now();
    let json = args.json || args.output.json();
    if !json {
        println!("firebell demo: replaying 2026-11-23 (UTC) for payments and checkout");
        println!(
            "  source {} · rules examples/rules/*.yaml · routing examples/routing.yaml",
            bundled::DEMO_DAY_NAME
        );
        println!("  one evaluation cycle per minute on the in-memory store\n");
        println!("Timeline (datapoint times, UTC)");
    }
    let brief = args.brief;
    let config = bundled::example_config()?;
    let mut print = |now: Epoch, report: &firebell_engine::CycleReport, sent: &[Outbound]| {
        if json {
            for d in &report.delivered {
                crate::json::print(&crate::json::notification(
                    &firebell_engine::history::Notification::of(now, d),
                ));
            }
            return;
        }
        for t in &report.transitions {
            let (word, detail) = describe(t, &config);
            println!(
                "  {}  {:<24} {:<9} {}",
                hhmm(t.event.at()),
                t.rule,
                word,
                detail
            );
        }
        for m in sent {
            println!(
                "  {}  -> notify {} ({})",
                hhmm(now),
                m.receiver,
                m.destination
            );
            println!("         subject: {}", m.subject);
            if !brief && let Some(body) = m.bodies.get("default") {
                for line in body.lines() {
                    println!("         | {line}");
                }
            }
        }
    };
    let outcome = rt.block_on(replay_day(&mut print))?;
    if json {
        return Ok(ExitCode::SUCCESS);
    }
    summary(&outcome, &config, started.elapsed());
    Ok(ExitCode::SUCCESS)
}

fn summary(outcome: &Outcome, config: &firebell_engine::Config, took: std::time::Duration) {
    println!("\nSummary");
    let mut ok = true;
    println!("  Toast ignored (nothing sent):");
    for ep in EPISODES.iter().filter(|e| e.toast.is_some()) {
        let (from, to) = (at(ep.start), at(ep.end) + 15 * 60);
        let fired = outcome.transitions.iter().any(|(_, t)| {
            t.rule == ep.rule
                && matches!(t.event, Event::Fired { .. } | Event::NoDataStarted { .. })
                && (from..=to).contains(&t.event.at())
        });
        let evidence: Vec<String> = outcome
            .transitions
            .iter()
            .filter(|(_, t)| t.rule == ep.rule && (from..=to).contains(&t.event.at()))
            .map(|(_, t)| format!("{} {}", describe(t, config).0, hhmm(t.event.at())))
            .collect();
        let mark = if fired {
            ok = false;
            "PAGED (unexpected)"
        } else {
            "ignored"
        };
        println!(
            "    {}  {:<52} {mark}: {}{}",
            ep.start,
            ep.what,
            ep.toast.unwrap_or_default(),
            if evidence.is_empty() {
                String::new()
            } else {
                format!(" [{}]", evidence.join(", "))
            }
        );
    }
    println!("  Fires paged:");
    for ep in EPISODES.iter().filter(|e| e.toast.is_none()) {
        let start = at(ep.start);
        let fired = outcome.transitions.iter().find_map(|(_, t)| match t.event {
            Event::Fired { at, .. } if t.rule == ep.rule && at >= start => Some(at),
            _ => None,
        });
        let page = outcome.messages.iter().find(|(now, m)| {
            *now >= start
                && m.attributes.get("alertname").map(String::as_str) == Some(ep.rule)
                && m.attributes.get("status").map(String::as_str) == Some("firing")
        });
        let resolved = outcome.transitions.iter().find_map(|(_, t)| match t.event {
            Event::Resolved { at, .. } if t.rule == ep.rule && at >= start => Some(at),
            _ => None,
        });
        match (fired, page) {
            (Some(f), Some((sent, m))) => println!(
                "    {}  {:<52} paged {} at {} ({} after it started; fired {}){}",
                ep.start,
                ep.what,
                m.receiver,
                hhmm(*sent),
                span(*sent - start),
                hhmm(f),
                resolved
                    .map(|r| format!(", resolved {}", hhmm(r)))
                    .unwrap_or_default()
            ),
            _ => {
                ok = false;
                println!("    {}  {:<52} NOT PAGED (unexpected)", ep.start, ep.what);
            }
        }
    }
    let mut per: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, m) in &outcome.messages {
        *per.entry(m.receiver.as_str()).or_default() += 1;
    }
    let per: Vec<String> = per.iter().map(|(r, n)| format!("{r}: {n}")).collect();
    println!(
        "  Notifications sent: {} ({})",
        outcome.messages.len(),
        per.join(", ")
    );
    println!(
        "  {} cycles in {:.2}s; {}",
        1440,
        took.as_secs_f64(),
        if ok {
            "every fire paged, no toast paged"
        } else {
            "SOMETHING WENT WRONG: see above"
        }
    );
}
