//! Decoding and validating the `slos:` section (strict, keep-going, every
//! error with file:line:column, like [`crate::config`]).

use std::collections::BTreeMap;
use std::time::Duration;

use marked_yaml::Node;

use super::{DAY, Sli, Slo, SloVolume};
use crate::config::{decode_metric, valid_rule_name};
use crate::decode::{Decoder, Pos, format_duration};
use crate::diag::{ConfigError, Diagnostics};
use crate::model::{MetricSpec, Origin, Rule, Stat};

/// The default SLO window.
const DEFAULT_WINDOW: Duration = Duration::from_secs(30 * DAY);
/// The longest SLO window accepted.
const MAX_WINDOW: Duration = Duration::from_secs(366 * DAY);

/// Labels the generated rules set themselves.
const SET_BY_FIREBELL: &[&str] = &[
    "alertname",
    crate::alert::ALERTSTATE_LABEL,
    "severity",
    "slo",
    "team",
];

/// Collects SLOs from any number of files, then cross-checks them.
#[derive(Debug, Default)]
pub struct SloBuilder {
    slos: Vec<Slo>,
}

impl SloBuilder {
    /// Decodes one `slos:` section.
    pub fn section(&mut self, d: &mut Decoder<'_>, node: &Node) {
        for item in d.seq(node, "slos") {
            if let Some(slo) = decode_slo(d, item) {
                self.slos.push(slo);
            }
        }
    }

    /// Cross-file checks (duplicate names), then the SLOs.
    pub fn build(self, diags: &mut Diagnostics) -> Vec<Slo> {
        let mut seen: BTreeMap<&str, &Origin> = BTreeMap::new();
        let mut dup = Vec::new();
        for (i, s) in self.slos.iter().enumerate() {
            if let Some(first) = seen.get(s.name.as_str()) {
                diags.error(
                    &s.origin.file,
                    s.origin.line,
                    s.origin.column,
                    format!("duplicate SLO name {:?} (first defined at {first})", s.name),
                );
                dup.push(i);
            } else {
                seen.insert(&s.name, &s.origin);
            }
        }
        self.slos
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !dup.contains(i))
            .map(|(_, s)| s)
            .collect()
    }

    /// [`SloBuilder::build`], then the generated rules, each handed to
    /// `push` (the rules builder, so they take part in its checks).
    pub fn build_rules(self, diags: &mut Diagnostics, push: &mut dyn FnMut(Rule)) -> Vec<Slo> {
        let slos = self.build(diags);
        for s in &slos {
            match s.rules() {
                Ok(rules) => rules.into_iter().for_each(&mut *push),
                Err(e) => diags.error(
                    &s.origin.file,
                    s.origin.line,
                    s.origin.column,
                    format!("SLO {:?}: {e}", s.name),
                ),
            }
        }
        slos
    }
}

/// Decodes SLOs from one YAML text (a whole file with a `slos:` section).
/// Convenience for tests and tools; config directories go through the engine's loader.
pub fn parse_slos(file: &str, text: &str) -> Result<Vec<Slo>, ConfigError> {
    let mut diags = Diagnostics::new();
    let mut b = SloBuilder::default();
    {
        let mut d = Decoder::new(file, &mut diags);
        if let Some(root) = d.parse(text)
            && let Some(mut f) = d.fields(&root, "SLO file")
        {
            if let Some(n) = f.req(&mut d, "slos") {
                b.section(&mut d, n);
            }
            f.finish(&mut d);
        }
    }
    let slos = b.build_rules(&mut diags, &mut |_| {});
    diags.sort();
    if diags.has_errors() {
        Err(ConfigError(diags))
    } else {
        Ok(slos)
    }
}

fn decode_slo(d: &mut Decoder<'_>, node: &Node) -> Option<Slo> {
    let mut f = d.fields(node, "SLO")?;

    let name = f.req(d, "name").and_then(|n| {
        let s = d.str(n, "name")?;
        if valid_rule_name(s) {
            Some((s.to_string(), Pos::of(n.span())))
        } else {
            d.error(
                n,
                format!(
                    "invalid SLO name {s:?} (expected letters, digits, '_', '-' or '.', at most 128 characters)"
                ),
            );
            None
        }
    });

    let team = f.req(d, "team").and_then(|n| {
        let s = d.str(n, "team")?;
        if s.trim().is_empty() {
            d.error(n, "`team` is empty (expected the team the alerts go to)");
            None
        } else {
            Some(s.to_string())
        }
    });

    let objective = f.req(d, "objective").and_then(|n| {
        let v = d.number(n, "objective")?;
        if v > 0.0 && v < 100.0 {
            Some(v)
        } else {
            d.error(
                n,
                format!(
                    "`objective` {v} is out of range (expected a percentage of good events above 0 and below 100, such as 99.9)"
                ),
            );
            None
        }
    });

    let window = match f.opt("window") {
        Some(n) => d.duration(n, "window").and_then(|w| {
            if w < Duration::from_secs(DAY) {
                d.error(
                    n,
                    format!(
                        "`window` {} is too short (expected at least 1d, such as 30d or 28d)",
                        format_duration(w)
                    ),
                );
                None
            } else if w > MAX_WINDOW {
                d.error(
                    n,
                    format!(
                        "`window` {} is too long (expected at most 366d)",
                        format_duration(w)
                    ),
                );
                None
            } else {
                Some(w)
            }
        }),
        None => Some(DEFAULT_WINDOW),
    };

    let sli = f.req(d, "sli").and_then(|n| decode_sli(d, n));

    let ticket_fast = match f.opt("ticket_fast") {
        Some(n) => d.bool(n, "ticket_fast"),
        None => Some(false),
    };

    let min_volume = match f.opt("min_volume") {
        Some(n) => decode_volume(d, n).map(Some),
        None => Some(None),
    };

    let labels = match f.opt("labels") {
        Some(n) => crate::config::decode_labels(d, n, SET_BY_FIREBELL, |k| {
            format!(
                "label {k:?} is set by firebell for SLO alerts (alertname, severity: page or ticket, slo, and team from `team`)"
            )
        }),
        None => Some(BTreeMap::new()),
    };

    let annotations = match f.opt("annotations") {
        Some(n) => d.string_map(n, "annotations"),
        None => BTreeMap::new(),
    };

    f.finish(d);

    let (name, pos) = name?;
    Some(Slo {
        name,
        origin: Origin {
            file: d.file.clone(),
            line: pos.line,
            column: pos.column,
        },
        team: team?,
        objective: objective?,
        window: window?,
        sli: sli?,
        ticket_fast: ticket_fast?,
        min_volume: min_volume?,
        labels: labels?,
        annotations,
    })
}

fn decode_sli(d: &mut Decoder<'_>, node: &Node) -> Option<Sli> {
    let mut f = d.fields(node, "sli")?;
    let pos = f.pos();
    if let Some(n) = f.opt("latency") {
        let latency = decode_latency(d, n);
        for other in ["errors", "good", "total"] {
            if let Some(k) = f.key_node(other) {
                d.error_at(
                    Pos::of(k.span()),
                    format!(
                        "`sli` takes `latency` alone (its request count is the metric's SampleCount), not `{other}`"
                    ),
                );
                let _ = f.opt(other);
            }
        }
        f.finish(d);
        return latency;
    }
    let errors = f.opt("errors").map(|n| counter(d, n, "errors"));
    let good = f.opt("good").map(|n| counter(d, n, "good"));
    let total = f.req(d, "total").map(|n| counter(d, n, "total"));
    f.finish(d);
    let sli = match (errors, good) {
        (Some(_), Some(_)) => {
            d.error_at(
                pos,
                "`sli` takes `errors` or `good` beside `total`, not both",
            );
            return None;
        }
        (None, None) => {
            d.error_at(
                pos,
                "`sli` is missing `errors` or `good` (the bad or the good events, beside `total`)",
            );
            return None;
        }
        (Some(e), None) => Sli::Errors {
            errors: e?,
            total: total??,
        },
        (None, Some(g)) => Sli::Good {
            good: g?,
            total: total??,
        },
    };
    Some(sli)
}

/// A latency SLI: `{namespace, metric, dimensions, under, period}`: the
/// share of the metric's datapoints at or under `under` (`PR(:under)`),
/// weighted by their count (`SampleCount`).
fn decode_latency(d: &mut Decoder<'_>, node: &Node) -> Option<Sli> {
    let mut f = d.fields(node, "latency SLI")?;
    let namespace = f
        .req(d, "namespace")
        .and_then(|n| d.str(n, "namespace").map(str::to_string));
    let metric_name = f
        .req(d, "metric")
        .and_then(|n| d.str(n, "metric").map(str::to_string));
    let dimensions = f
        .opt("dimensions")
        .map(|n| d.string_map(n, "dimensions"))
        .unwrap_or_default();
    let under = f.req(d, "under").and_then(|n| {
        let v = d.number(n, "under")?;
        if v > 0.0 && v.is_finite() {
            Some(v)
        } else {
            d.error(
                n,
                format!(
                    "`under` {v} is out of range (expected the latency threshold, a positive number in the metric's unit, such as 300)"
                ),
            );
            None
        }
    });
    let period = match f.opt("period") {
        Some(n) => crate::config::decode_period(d, n),
        None => Some(Duration::from_secs(60)),
    };
    f.finish(d);
    let total = MetricSpec {
        namespace: namespace?,
        metric_name: metric_name?,
        dimensions,
        stat: Stat::SampleCount,
        period: period?,
        account: None,
        region: None,
        query: None,
    };
    Some(Sli::latency(total, under?))
}

/// An SLI metric: a count (Sum or SampleCount), so it adds up over windows.
fn counter(d: &mut Decoder<'_>, node: &Node, id: &str) -> Option<MetricSpec> {
    let spec = decode_metric(d, node, id)?;
    if spec.query.is_some() {
        d.error(
            node,
            format!(
                "SLI metric `{id}` is a Metrics Insights query, which reads only the last 3h (an SLO's windows span days; expected namespace, metric, dimensions and stat)"
            ),
        );
        return None;
    }
    if !matches!(spec.stat, Stat::Sum | Stat::SampleCount) {
        let at = match node {
            Node::Mapping(m) => m
                .get_node("stat")
                .map(|n| Pos::of(n.span()))
                .unwrap_or_else(|| Pos::of(node.span())),
            _ => Pos::of(node.span()),
        };
        d.error_at(
            at,
            format!(
                "`stat` of SLI metric `{id}` must be Sum or SampleCount (counts that add up over windows), found {}",
                spec.stat
            ),
        );
        return None;
    }
    Some(spec)
}

fn decode_volume(d: &mut Decoder<'_>, node: &Node) -> Option<SloVolume> {
    let mut f = d.fields(node, "min_volume")?;
    let at_least = f.req(d, "at_least").and_then(|n| {
        let v = d.number(n, "at_least")?;
        if v < 0.0 {
            d.error(
                n,
                format!("`at_least` {v} is negative (expected a count of events)"),
            );
            return None;
        }
        Some(v)
    });
    let window = f.req(d, "window").and_then(|n| {
        let w = d.duration(n, "window")?;
        if w.is_zero() {
            d.error(n, "`window` is zero (expected a duration such as 1h)");
            return None;
        }
        Some(w)
    });
    f.finish(d);
    Some(SloVolume {
        at_least: at_least?,
        window: window?,
    })
}
