//! The fuzz targets: one `fn(&[u8])` per input format firebell reads.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use firebell_core::alert::{Alert, AlertStatus, fingerprint};
use firebell_core::decode::{Decoder, format_duration, parse_duration};
use firebell_core::diag::Diagnostics;
use firebell_core::expr::Expr;
use firebell_core::model::{Labels, Op, Unit};
use firebell_core::series::Grid;
use firebell_embedded::ReplaySource;
use firebell_notify::Matcher;
use firebell_tools::backtest::Simulator;

/// What a target reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// A config file through `firebell_engine::load_texts` (decode, rules, SLOs, routing).
    Config,
    /// An expression: `Expr::parse`, its analyses, `Display` and `eval` over a small grid.
    Expr,
    /// Label matchers: `Matcher::parse_list`, each matcher's `Display` read
    /// back, and matching against sample labels.
    Matcher,
    /// A duration: `parse_duration`, `format_duration`, and the decoder's `duration`.
    Duration,
    /// An annotation template rendered by `render_annotation` on a sample alert.
    Template,
    /// A replay file (JSON lines) through `ReplaySource::parse`, `to_text` and back.
    Replay,
    /// What `validate` then `run` do with a config: `load_texts` on the files of
    /// the input (split at lines `#--- NAME`), then — when it loads without
    /// errors — `lint`, then two engine cycles over the demo replay data.
    Run,
}

/// Separates the files of a [`Target::Run`] input: a line `#--- NAME`.
pub const FILE_SEPARATOR: &str = "#--- ";

impl Target {
    pub const ALL: [Target; 7] = [
        Target::Config,
        Target::Expr,
        Target::Matcher,
        Target::Duration,
        Target::Template,
        Target::Replay,
        Target::Run,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Target::Config => "config",
            Target::Expr => "expr",
            Target::Matcher => "matcher",
            Target::Duration => "duration",
            Target::Template => "template",
            Target::Replay => "replay",
            Target::Run => "run",
        }
    }

    pub fn from_name(s: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == s)
    }

    /// Runs the target on one input and describes the outcome (the errors
    /// reported, or what was produced), for regression tests to assert on.
    /// A panic (or an abort, a stack overflow, a hang) is a finding; any
    /// error the code returns is an expected outcome.
    pub fn exec(self, input: &[u8]) -> String {
        let text = String::from_utf8_lossy(input);
        match self {
            Target::Config => config(&text),
            Target::Expr => expr(&text),
            Target::Matcher => matcher(&text),
            Target::Duration => duration(&text),
            Target::Template => template(&text),
            Target::Replay => replay(&text),
            Target::Run => run(&text),
        }
    }
}

fn config(text: &str) -> String {
    let mut diags = Diagnostics::new();
    let texts = vec![("fuzz.yaml".to_string(), text.to_string())];
    let config = firebell_engine::load_texts(&texts, &mut diags, Vec::new());
    let _ = format!("{config:?}");
    diags.sort();
    diags.to_string()
}

fn expr(text: &str) -> String {
    let e = match Expr::parse(text) {
        Ok(e) => e,
        Err(err) => return format!("error: {err}"),
    };
    let _ = (
        e.divisors(),
        e.rolling_windows(),
        e.history(),
        e.as_metric(),
    );
    let _ = e.to_string();
    let grid = Grid {
        start: 1_795_392_000,
        step: 60,
        len: 16,
    };
    let inputs: BTreeMap<String, Vec<Option<f64>>> = e
        .metric_ids()
        .into_iter()
        .enumerate()
        .map(|(k, id)| {
            let s = (0..grid.len)
                .map(|i| match (i + k) % 5 {
                    0 => None,
                    1 => Some(0.0),
                    2 => Some(-1.5),
                    3 => Some(1e300),
                    _ => Some(i as f64),
                })
                .collect();
            (id, s)
        })
        .collect();
    let input = |id: &str| inputs.get(id).map(Vec::as_slice);
    match e.eval(&grid, &input) {
        Ok(series) => format!("ok: {} bucket(s)", series.len()),
        Err(err) => format!("error: {err}"),
    }
}

fn sample_labels() -> Labels {
    Labels::from([
        ("alertname".to_string(), "PaymentsErrorRate".to_string()),
        ("service".to_string(), "payments".to_string()),
        ("severity".to_string(), "page".to_string()),
        ("team".to_string(), "payments".to_string()),
        ("empty".to_string(), String::new()),
    ])
}

fn matcher(text: &str) -> String {
    let list = match Matcher::parse_list(text) {
        Ok(list) => list,
        Err(err) => return format!("error: {err}"),
    };
    let sample = sample_labels();
    for m in &list {
        // What a matcher displays reads back as the same matcher.
        let shown = m.to_string();
        match Matcher::parse(&shown) {
            Ok(back) if back == *m => {}
            other => panic!("matcher {shown:?} (read from {text:?}) reads back as {other:?}"),
        }
        let _ = (
            m.matches_value(""),
            m.matches_value("payments"),
            m.matches_value(text),
        );
    }
    format!(
        "ok: {} matcher(s); match the sample: {}, match empty: {}",
        list.len(),
        list.iter().all(|m| m.matches(&sample)),
        list.iter().all(Matcher::matches_empty)
    )
}

fn duration(text: &str) -> String {
    let parsed = parse_duration(text).map(format_duration);
    let mut diags = Diagnostics::new();
    let mut d = Decoder::new("fuzz.yaml", &mut diags);
    let yaml = format!("x: {text}\n");
    if let Some(marked_yaml::Node::Mapping(map)) = d.parse(&yaml)
        && let Some(node) = map.get_node("x")
        && let Some(dur) = d.duration(node, "x")
    {
        let _ = format_duration(dur);
    }
    diags.sort();
    format!("parse_duration: {parsed:?}\n{diags}")
}

/// The alert templates render against: every field set, as in a page.
pub fn sample_alert() -> Alert {
    let labels = sample_labels();
    Alert {
        fingerprint: fingerprint(&labels),
        labels,
        annotations: BTreeMap::from([(
            "summary".to_string(),
            "{{ value }} > {{ threshold }}".to_string(),
        )]),
        status: AlertStatus::Firing,
        active_since: 1_795_392_000,
        fired_at: 1_795_392_300,
        resolved_at: None,
        value: Some(5.2),
        peak: Some(5.9),
        op: Op::Gt,
        threshold: 1.0,
        unit: Unit::Percent,
        recent: (0..10)
            .map(|i| (1_795_392_000 + 60 * i, Some(i as f64 / 2.0)))
            .collect(),
        expression: "100 * FILL(errors, 0) / requests".to_string(),
        metrics: BTreeMap::new(),
    }
}

fn template(text: &str) -> String {
    let out = firebell_notify::render_annotation(text, &sample_alert());
    // Large outputs are described, not printed.
    if out.len() > 4096 {
        format!(
            "{} bytes: {}...",
            out.len(),
            out.chars().take(200).collect::<String>()
        )
    } else {
        out
    }
}

fn replay(text: &str) -> String {
    let src = match ReplaySource::parse("fuzz.jsonl", text) {
        Ok(s) => s,
        Err(err) => return format!("error: {err}"),
    };
    let _ = (src.time_range(), src.is_empty());
    for s in src.series() {
        let _ = (s.spec(), s.to_line());
    }
    match ReplaySource::parse("fuzz.jsonl", &src.to_text()) {
        Ok(again) => format!("ok: {} series", again.series().len()),
        Err(err) => format!("error on the re-parse of to_text: {err}"),
    }
}

/// The files of a [`Target::Run`] input.
pub fn split_files(text: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = Vec::new();
    for line in text.split_inclusive('\n') {
        if let Some(name) = line.strip_prefix(FILE_SEPARATOR) {
            files.push((name.trim().to_string(), String::new()));
        } else if let Some((_, body)) = files.last_mut() {
            body.push_str(line);
        } else {
            files.push(("fuzz.yaml".to_string(), line.to_string()));
        }
    }
    files
}

/// The demo's replay data, parsed once per process.
fn demo_source() -> Option<Arc<ReplaySource>> {
    static DEMO: OnceLock<Option<Arc<ReplaySource>>> = OnceLock::new();
    DEMO.get_or_init(|| {
        let path = crate::corpus::repo_root().join("examples/demo/day.jsonl");
        ReplaySource::from_path(path).ok().map(Arc::new)
    })
    .clone()
}

/// Noon of the demo day, and a minute later.
const DEMO_TICKS: [i64; 2] = [1_795_392_000 + 43_200, 1_795_392_000 + 43_260];

fn run(text: &str) -> String {
    let mut diags = Diagnostics::new();
    let config = firebell_engine::load_texts(&split_files(text), &mut diags, Vec::new());
    if diags.has_errors() {
        diags.sort();
        return diags.to_string();
    }
    let lint = firebell_tools::lint::lint(&config);
    let Some(source) = demo_source() else {
        return "no demo data".to_string();
    };
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else {
        return "no runtime".to_string();
    };
    let sim = Simulator::new(Arc::new(config), source, DEMO_TICKS[0] - 60, "fuzz");
    let mut out = format!("{} lint finding(s)\n", lint.list.len());
    for now in DEMO_TICKS {
        match rt.block_on(sim.cycle(now)) {
            Ok(c) => {
                out.push_str(&format!(
                    "cycle {now}: {} rule(s), {} transition(s), {} error(s)\n",
                    c.report.rules_evaluated,
                    c.report.transitions.len(),
                    c.report.errors.len()
                ));
                for e in &c.report.errors {
                    out.push_str(&format!("  {e}\n"));
                }
            }
            Err(e) => out.push_str(&format!("cycle {now}: error: {e}\n")),
        }
    }
    out
}
