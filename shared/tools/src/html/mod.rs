//! The HTML report of a backtest (`firebell backtest --html FILE`; rule
//! unit tests have theirs, [`test_page`], and the noise report,
//! [`noise_page`]): one
//! self-contained page (inline CSS, inline SVG, no script, no external
//! URL) with the text report's numbers per rule and receiver, a chart per
//! rule instance and every notification's text.
//!
//! The charts show what the engine reported while the backtest ran
//! ([`Charts`], filled by `backtest::simulate_charted`): the values the
//! judge stepped through, with the threshold and recovery threshold, the
//! stretches the volume guard kept from being judged, the pending / firing /
//! NoData bands, silences and inhibitions, and a marker per notification
//! (hover: its subject; click: its text further down). With `--compare`,
//! both configs' bands one above the other.
//!
//! Drawing is downsampled (min and max per pixel column, [`COLUMNS`] per
//! chart); numbers never are: beside each chart, in a `<details>`, a table
//! of its exact figures (datapoints, missing, not judged, min, max, last),
//! its state changes and its notifications. The datapoints themselves are
//! not tabled: two weeks of minutes are 20,160 rows per instance, which
//! the figures and the changes summarise.

mod chart;
mod noisepage;
mod svg;
mod testpage;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use firebell_core::alert::{ALERTSTATE_LABEL, AlertStatus};
use firebell_core::model::{Labels, Rule};
use firebell_core::series::Epoch;
use firebell_core::state::Event;
use firebell_core::text::rfc3339;
use firebell_engine::Config;

pub use chart::{Band, BandKind, COLUMNS, Charts, Column, InstanceChart, PointStats, Sent, brace};
pub use noisepage::noise_page;
pub use testpage::{TestRun, test_page};

use crate::backtest::{BacktestReport, RuleStats, compare};
use svg::{Mark, Side};

/// HTML-escapes text (element content and attribute values).
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// HTML-escapes element content only (`&`, `<`, `>`): quotes stay as they
/// are, which keeps long message texts (console links) small.
fn esc_text(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            c => o.push(c),
        }
    }
    o
}

/// One config's backtest, as the report shows it.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    /// The config's name (its path).
    pub name: &'a str,
    pub config: &'a Config,
    pub report: &'a BacktestReport,
    pub charts: &'a Charts,
}

/// What the backtest page shows.
#[derive(Debug, Clone, Copy)]
pub struct BacktestPage<'a> {
    /// Where the history came from.
    pub source: &'a str,
    /// What the history cannot back (as the text report's notes).
    pub notes: &'a [String],
    /// Rules whose figures come from less history than their window.
    pub partial: &'a BTreeMap<String, String>,
    /// `firebell 0.1.0`, in the footer.
    pub generator: &'a str,
    pub a: Run<'a>,
    /// The `--compare` config.
    pub b: Option<Run<'a>>,
}

const CSS: &str = include_str!("report.css");

fn duration(secs: i64) -> String {
    if secs == 0 {
        return "-".to_string();
    }
    firebell_core::decode::format_duration(std::time::Duration::from_secs(secs.unsigned_abs()))
}

/// `2026-11-23 15:42` (UTC).
fn when(t: Epoch) -> String {
    let s = rfc3339(t);
    format!(
        "{} {}",
        s.get(..10).unwrap_or(&s),
        s.get(11..16).unwrap_or("")
    )
}

fn side_prefix(side: usize) -> &'static str {
    if side == 0 { "a" } else { "b" }
}

/// Instance key of a notified alert: its rule and labels (a NoData alert's
/// `alertstate` dropped).
fn alert_key(labels: &Labels) -> (String, Labels) {
    let mut l = labels.clone();
    l.remove(ALERTSTATE_LABEL);
    (l.get("alertname").cloned().unwrap_or_default(), l)
}

/// The notifications of a run by instance, as markers.
fn marks_of(run: &Run<'_>, side: usize) -> BTreeMap<(String, Labels), Vec<Mark>> {
    let mut out: BTreeMap<(String, Labels), Vec<Mark>> = BTreeMap::new();
    for (i, n) in run.report.notifications.iter().enumerate() {
        let class = if n.status == AlertStatus::Resolved {
            "resolved"
        } else if n.is_page() {
            "page"
        } else {
            "notice"
        };
        let title = format!(
            "{} -> {}{}: {}",
            when(n.at),
            n.receiver,
            if n.is_page() { " PAGE" } else { "" },
            n.subject
        );
        for a in &n.alerts {
            let key = alert_key(&a.labels);
            let list = out.entry(key).or_default();
            if list.iter().any(|m| m.index == i) {
                continue;
            }
            list.push(Mark {
                at: n.at,
                class,
                title: title.clone(),
                href: format!("#{}-n{i}", side_prefix(side)),
                index: i,
            });
        }
    }
    out
}

/// `FIRING 5.2% > 1%` and the like, for a state change.
fn describe(ev: &Event, rule: Option<&Rule>) -> (&'static str, String) {
    let value = |v: Option<f64>| match (v, rule) {
        (Some(v), Some(r)) => r.unit.format(v),
        (Some(v), None) => v.to_string(),
        (None, _) => String::new(),
    };
    match *ev {
        Event::Pending { .. } => ("pending", String::new()),
        Event::PendingCleared { .. } => ("pending cleared", String::new()),
        Event::Fired { value: v, .. } => ("FIRING", value(v)),
        Event::Resolved { value: v, .. } => ("resolved", value(v)),
        Event::NoDataStarted { .. } => ("NODATA", String::new()),
        Event::NoDataEnded { .. } => ("data back", String::new()),
    }
}

/// Writes the page of a backtest (or a comparison of two configs).
pub fn backtest_page(p: &BacktestPage<'_>) -> String {
    let runs: Vec<Run<'_>> = std::iter::once(p.a).chain(p.b).collect();
    let compared = runs.len() == 2;
    let a = &p.a;
    let mut o = String::with_capacity(64 * 1024);
    let title = match &p.b {
        None => format!("firebell backtest: {}", a.name),
        Some(b) => format!("firebell backtest: {} compared with {}", a.name, b.name),
    };
    let _ = write!(
        o,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light dark"><title>{}</title><style>{CSS}</style></head><body>"#,
        esc(&title)
    );
    o.push_str(&svg::defs());

    // Header.
    let _ = write!(o, "<header><h1>{}</h1><dl class=\"meta\">", esc(&title));
    if compared {
        for (i, r) in runs.iter().enumerate() {
            let _ = write!(
                o,
                "<dt>config {}</dt><dd><code>{}</code></dd>",
                ["A", "B"][i],
                esc(r.name)
            );
        }
    } else {
        let _ = write!(o, "<dt>config</dt><dd><code>{}</code></dd>", esc(a.name));
    }
    let _ = write!(
        o,
        "<dt>source</dt><dd>{}</dd><dt>range</dt><dd>{} .. {} (UTC, {} cycles)</dd><dt>sent</dt><dd>{}</dd></dl>",
        esc(p.source),
        when(a.report.from),
        when(a.report.to),
        a.report.cycles,
        runs.iter()
            .enumerate()
            .map(|(i, r)| format!(
                "{}{} notifications ({} pages) to {} receivers",
                if compared { ["A: ", "B: "][i] } else { "" },
                r.report.notifications.len(),
                r.report.pages(),
                r.report.receivers.len()
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    if !p.notes.is_empty() {
        o.push_str("<ul class=\"notes\">");
        for n in p.notes {
            let _ = write!(o, "<li>note: {}</li>", esc(n));
        }
        o.push_str("</ul>");
    }
    for r in &runs {
        for problem in &r.charts.problems {
            let _ = write!(o, "<p class=\"problem\">{}</p>", esc(problem));
        }
        if let Some(problem) = r.report.problems() {
            let _ = write!(
                o,
                "<p class=\"problem\" role=\"alert\">{}</p>",
                esc(&problem)
            );
        }
    }
    o.push_str("</header>");

    // Rule names, in config order (B's own rules after A's).
    let mut names: Vec<&str> = Vec::new();
    for r in &runs {
        for s in &r.report.rules {
            if !names.contains(&s.rule.as_str()) {
                names.push(&s.rule);
            }
        }
    }

    o.push_str("<nav aria-label=\"Rules\"><h2>Rules</h2><ul>");
    for (i, name) in names.iter().enumerate() {
        let _ = write!(o, "<li><a href=\"#rule-{i}\">{}</a></li>", esc(name));
    }
    o.push_str("<li><a href=\"#notifications\">Notifications</a></li></ul></nav><main>");

    summary(&mut o, p, &runs, &names);
    legend(&mut o);

    // One section per rule, one chart per instance.
    let marks: Vec<_> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| marks_of(r, i))
        .collect();
    o.push_str("<section id=\"charts\"><h2>Charts</h2>");
    let mut chart_no = 0usize;
    for (ri, name) in names.iter().enumerate() {
        let rules: Vec<Option<&Rule>> = runs.iter().map(|r| r.config.rules.get(name)).collect();
        let _ = write!(
            o,
            "<section class=\"rule\" id=\"rule-{ri}\" aria-labelledby=\"rule-{ri}-h\"><h3 id=\"rule-{ri}-h\">{}</h3>",
            esc(name)
        );
        for (si, rule) in rules.iter().enumerate() {
            let Some(rule) = rule else {
                let _ = write!(
                    o,
                    "<p class=\"rule-def\">not in config {}</p>",
                    ["A", "B"][si]
                );
                continue;
            };
            let recovery = rule
                .condition
                .recovery
                .map(|r| format!(", recovers past {}", rule.unit.format(r)))
                .unwrap_or_default();
            let _ = write!(
                o,
                "<p class=\"rule-def\">{}<code>{}</code> {} {}{}{}</p>",
                if compared {
                    format!("{}: ", ["A", "B"][si])
                } else {
                    String::new()
                },
                esc(&rule.expression_src),
                rule.condition.op,
                esc(&rule.unit.format(rule.condition.threshold)),
                esc(&recovery),
                rule.min_volume
                    .as_ref()
                    .map(|g| format!(
                        "; judged only where <code>{}</code> reaches {} over {}",
                        esc(&g.metric),
                        g.at_least,
                        firebell_core::decode::format_duration(g.window)
                    ))
                    .unwrap_or_default()
            );
        }
        if let Some(span) = p.partial.get(*name) {
            let _ = write!(
                o,
                "<p class=\"note\">partial: computed from {} of history</p>",
                esc(span)
            );
        }
        // The rule's instances, in either run: the eventful first.
        let mut keys: Vec<Labels> = Vec::new();
        for r in &runs {
            for c in r.charts.instances.iter().filter(|c| c.rule == *name) {
                if !keys.contains(&c.labels) {
                    keys.push(c.labels.clone());
                }
            }
        }
        let eventful = |l: &Labels| {
            runs.iter()
                .any(|r| r.charts.get(name, l).is_some_and(InstanceChart::eventful))
        };
        let (loud, quiet): (Vec<Labels>, Vec<Labels>) = keys.into_iter().partition(eventful);
        let rule_labels = rules
            .iter()
            .flatten()
            .next()
            .map(|r| r.labels.clone())
            .unwrap_or_default();
        if loud.is_empty() && quiet.is_empty() {
            // A chart all the same: the rule judged nothing in the range.
            let sides: Vec<Side<'_>> = runs
                .iter()
                .enumerate()
                .map(|(si, _)| Side {
                    name: if compared { ["A", "B"][si] } else { "" },
                    chart: None,
                    rule: rules[si],
                    marks: Vec::new(),
                })
                .collect();
            let id = format!("c{chart_no}");
            chart_no += 1;
            let _ = write!(
                o,
                "<figure class=\"instance\" id=\"{id}\"><figcaption>no instance judged</figcaption>{}</figure>",
                svg::chart(
                    &id,
                    a.charts,
                    &sides,
                    &format!("{name}: no instance judged in the range"),
                    "The rule judged no datapoint in the range."
                )
            );
        }
        let fold = loud.len() + quiet.len() > 6 && !quiet.is_empty();
        for (group, labels_list) in [(false, &loud), (true, &quiet)] {
            if group && fold {
                let _ = write!(
                    o,
                    "<details class=\"quiet\"><summary>{} instance{} that never left inactive</summary>",
                    quiet.len(),
                    if quiet.len() == 1 { "" } else { "s" }
                );
            }
            for labels in labels_list {
                let id = format!("c{chart_no}");
                chart_no += 1;
                let key = (name.to_string(), labels.clone());
                let sides: Vec<Side<'_>> = runs
                    .iter()
                    .enumerate()
                    .map(|(si, r)| Side {
                        name: if compared { ["A", "B"][si] } else { "" },
                        chart: r.charts.get(name, labels),
                        rule: rules[si],
                        marks: marks[si].get(&key).cloned().unwrap_or_default(),
                    })
                    .collect();
                instance(
                    &mut o,
                    &id,
                    name,
                    labels,
                    &rule_labels,
                    a.charts,
                    &sides,
                    &runs,
                );
            }
            if group && fold {
                o.push_str("</details>");
            }
        }
        o.push_str("</section>");
    }
    o.push_str("</section>");

    notifications(&mut o, &runs);
    let _ = writeln!(
        o,
        "</main><footer>Written by {}. Times are UTC. Self-contained: no script, no external resource.</footer></body></html>",
        esc(p.generator)
    );
    o
}

fn stats_row(o: &mut String, s: &RuleStats, partial: Option<&String>) {
    let _ = write!(
        o,
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
        s.fires,
        s.nodata,
        s.flaps,
        s.notifications,
        s.pages,
        duration(s.firing_secs),
        [
            (s.firing_at_end > 0).then(|| format!("{} still firing at the end", s.firing_at_end)),
            partial.map(|p| format!("partial: computed from {} of history", esc(p))),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ")
    );
}

fn summary(o: &mut String, p: &BacktestPage<'_>, runs: &[Run<'_>], names: &[&str]) {
    o.push_str("<section id=\"summary\"><h2>Summary</h2>");
    match runs {
        [a] => {
            o.push_str("<table class=\"rules\"><caption>Per rule</caption><thead><tr><th scope=\"col\">rule</th><th scope=\"col\">fires</th><th scope=\"col\">nodata</th><th scope=\"col\">flaps</th><th scope=\"col\">notifications</th><th scope=\"col\">pages</th><th scope=\"col\">time firing</th><th scope=\"col\">notes</th></tr></thead><tbody>");
            for (i, s) in a.report.rules.iter().enumerate() {
                let ri = names.iter().position(|n| *n == s.rule).unwrap_or(i);
                let _ = write!(
                    o,
                    "<tr><th scope=\"row\"><a href=\"#rule-{ri}\">{}</a></th>",
                    esc(&s.rule)
                );
                stats_row(o, s, p.partial.get(&s.rule));
                o.push_str("</tr>");
            }
            o.push_str("</tbody></table>");
        }
        [a, b] => {
            let c = compare(a.report, b.report);
            o.push_str("<table class=\"rules\"><caption>Per rule, A -&gt; B (changed rows marked *)</caption><thead><tr><th scope=\"col\">rule</th><th scope=\"col\">fires</th><th scope=\"col\">flaps</th><th scope=\"col\">notifications</th><th scope=\"col\">pages</th><th scope=\"col\">time firing</th></tr></thead><tbody>");
            for d in &c.rules {
                let ri = names.iter().position(|n| *n == d.rule).unwrap_or(0);
                let arrow = |f: fn(&RuleStats) -> String| match (
                    d.a.as_ref().map(f),
                    d.b.as_ref().map(f),
                ) {
                    (Some(x), Some(y)) if x == y => x,
                    (Some(x), Some(y)) => format!("{x} -> {y}"),
                    (Some(x), None) => format!("{x} -> (gone)"),
                    (None, Some(y)) => format!("(new) -> {y}"),
                    (None, None) => String::new(),
                };
                let _ = write!(
                    o,
                    "<tr{}><th scope=\"row\"><a href=\"#rule-{ri}\">{}{}</a></th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    if d.a == d.b { "" } else { " class=\"changed\"" },
                    if d.a == d.b { "" } else { "* " },
                    esc(&d.rule),
                    esc(&arrow(|s| s.fires.to_string())),
                    esc(&arrow(|s| s.flaps.to_string())),
                    esc(&arrow(|s| s.notifications.to_string())),
                    esc(&arrow(|s| s.pages.to_string())),
                    esc(&arrow(|s| duration(s.firing_secs))),
                );
            }
            let _ = write!(
                o,
                "</tbody></table><p>{} notification(s) only in A, {} only in B, {} in both.{}</p>",
                c.only_a.len(),
                c.only_b.len(),
                c.common,
                if c.is_same() {
                    " No difference: the change would not alter what is sent."
                } else {
                    ""
                }
            );
        }
        _ => {}
    }
    for (i, r) in runs.iter().enumerate() {
        let _ = write!(
            o,
            "<table class=\"receivers\"><caption>Per receiver{}</caption><thead><tr><th scope=\"col\">receiver</th><th scope=\"col\">notifications</th><th scope=\"col\">pages</th><th scope=\"col\">firing</th><th scope=\"col\">resolved</th></tr></thead><tbody>",
            if runs.len() == 2 {
                [" (A)", " (B)"][i]
            } else {
                ""
            }
        );
        if r.report.receivers.is_empty() {
            o.push_str("<tr><td colspan=\"5\">(none)</td></tr>");
        }
        for s in &r.report.receivers {
            let _ = write!(
                o,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&s.receiver),
                s.notifications,
                s.pages,
                s.firing,
                s.resolved
            );
        }
        o.push_str("</tbody></table>");
    }
    o.push_str("</section>");
}

fn legend(o: &mut String) {
    o.push_str("<section id=\"legend\" aria-labelledby=\"legend-h\"><h2 id=\"legend-h\">Legend</h2><ul class=\"legend\">");
    for (k, text) in [
        (
            "pending",
            "pending: breaching, waiting for <code>for</code> / M of N",
        ),
        ("firing", "firing (the plot is tinted too)"),
        ("nodata", "NoData"),
        ("silenced", "muted by a silence (thin lane)"),
        ("inhibited", "inhibited by another alert (thin lane)"),
        ("guard", "not judged: the volume guard was not met"),
    ] {
        let _ = write!(o, "<li>{}<span>{text}</span></li>", svg::swatch(k));
    }
    o.push_str("<li><svg class=\"swatch\" width=\"28\" height=\"14\" viewBox=\"0 0 28 14\" aria-hidden=\"true\"><line class=\"thr\" x1=\"0\" x2=\"28\" y1=\"7\" y2=\"7\"/></svg><span>threshold</span></li>");
    o.push_str("<li><svg class=\"swatch\" width=\"28\" height=\"14\" viewBox=\"0 0 28 14\" aria-hidden=\"true\"><line class=\"rec\" x1=\"0\" x2=\"28\" y1=\"7\" y2=\"7\"/></svg><span>recovery threshold</span></li>");
    for (k, text) in [
        ("page", "page"),
        ("notice", "other notification"),
        ("resolved", "resolved notice"),
    ] {
        let _ = write!(
            o,
            "<li><svg class=\"swatch\" width=\"14\" height=\"14\" viewBox=\"0 0 14 14\" aria-hidden=\"true\"><path class=\"mark {k}\" d=\"M2 2h9l-4.5 9z\"/></svg><span>{text} (hover: subject; click: text)</span></li>"
        );
    }
    o.push_str("</ul><p class=\"hint\">Lines are drawn from the minimum and maximum per pixel column; the exact figures are in each chart's table.</p></section>");
}

#[allow(clippy::too_many_arguments)]
fn instance(
    o: &mut String,
    id: &str,
    rule: &str,
    labels: &Labels,
    rule_labels: &Labels,
    charts: &Charts,
    sides: &[Side<'_>],
    runs: &[Run<'_>],
) {
    let distinct = chart::distinct_labels(labels, rule_labels);
    let caption = if distinct.is_empty() {
        rule.to_string()
    } else {
        format!("{rule} {}", brace(&distinct))
    };
    let fires: usize = sides
        .iter()
        .filter_map(|s| s.chart)
        .map(|c| {
            c.events
                .iter()
                .filter(|e| matches!(e, Event::Fired { .. }))
                .count()
        })
        .sum();
    let sent: usize = sides.iter().map(|s| s.marks.len()).sum();
    let summary = format!(
        "Value of {rule} over the range against its threshold; {fires} fire(s), {sent} notification marker(s). The numbers are in the table below the chart."
    );
    let _ = write!(
        o,
        "<figure class=\"instance\" id=\"{id}\"><figcaption>{}</figcaption>{}",
        esc(&caption),
        svg::chart(id, charts, sides, &caption, &summary)
    );
    let _ = write!(o, "<details><summary>Numbers</summary>");
    // Exact figures.
    o.push_str("<table class=\"figures\"><thead><tr>");
    if sides.len() > 1 {
        o.push_str("<th scope=\"col\">config</th>");
    }
    o.push_str("<th scope=\"col\">datapoints</th><th scope=\"col\">missing</th><th scope=\"col\">not judged (volume guard)</th><th scope=\"col\">min</th><th scope=\"col\">max</th><th scope=\"col\">last</th></tr></thead><tbody>");
    for s in sides {
        let fmt = |v: Option<f64>| match (v, s.rule) {
            (Some(v), Some(r)) => r.unit.format(v),
            (Some(v), None) => v.to_string(),
            (None, _) => "-".to_string(),
        };
        o.push_str("<tr>");
        if sides.len() > 1 {
            let _ = write!(o, "<th scope=\"row\">{}</th>", esc(s.name));
        }
        match s.chart {
            Some(c) => {
                let st = &c.stats;
                let _ = write!(
                    o,
                    "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
                    st.points,
                    if st.not_finite > 0 {
                        format!("{} ({} not finite)", st.missing, st.not_finite)
                    } else {
                        st.missing.to_string()
                    },
                    st.unjudged,
                    esc(&fmt(st.min)),
                    esc(&fmt(st.max)),
                    st.last
                        .map(|(t, v)| format!("{} at {}", esc(&fmt(Some(v))), when(t)))
                        .unwrap_or_else(|| "-".to_string())
                );
            }
            None => o.push_str("<td colspan=\"6\">not judged</td>"),
        }
        o.push_str("</tr>");
    }
    o.push_str("</tbody></table>");
    // State changes and bands.
    o.push_str("<table class=\"changes\"><caption>State changes and muting</caption><thead><tr>");
    if sides.len() > 1 {
        o.push_str("<th scope=\"col\">config</th>");
    }
    o.push_str("<th scope=\"col\">from</th><th scope=\"col\">to</th><th scope=\"col\">state</th><th scope=\"col\">value / by</th></tr></thead><tbody>");
    let mut rows = 0;
    for s in sides {
        let Some(c) = s.chart else { continue };
        for b in &c.bands {
            let ends = c
                .events
                .iter()
                .find(|e| {
                    e.at() == b.from
                        && matches!((b.kind, e), (BandKind::Firing, Event::Fired { .. }))
                })
                .map(|e| describe(e, s.rule).1)
                .unwrap_or_default();
            let detail = if b.by.is_empty() { ends } else { b.by.clone() };
            o.push_str("<tr>");
            if sides.len() > 1 {
                let _ = write!(o, "<th scope=\"row\">{}</th>", esc(s.name));
            }
            let _ = write!(
                o,
                "<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                when(b.from),
                when(b.to),
                b.kind.name(),
                esc(&detail)
            );
            rows += 1;
        }
    }
    if rows == 0 {
        let _ = write!(
            o,
            "<tr><td colspan=\"{}\">stayed inactive</td></tr>",
            if sides.len() > 1 { 5 } else { 4 }
        );
    }
    o.push_str("</tbody></table>");
    // Notifications that list it.
    let any = sides.iter().any(|s| !s.marks.is_empty());
    if any {
        o.push_str("<table class=\"sent\"><caption>Notifications</caption><thead><tr><th scope=\"col\">sent</th><th scope=\"col\">subject</th></tr></thead><tbody>");
        for (si, s) in sides.iter().enumerate() {
            for m in &s.marks {
                let subject = runs
                    .get(si)
                    .and_then(|r| r.report.notifications.get(m.index))
                    .map(|n| n.subject.clone())
                    .unwrap_or_default();
                let _ = write!(
                    o,
                    "<tr><td>{}{}</td><td><a href=\"{}\">{}</a></td></tr>",
                    if sides.len() > 1 {
                        format!("{}: ", s.name)
                    } else {
                        String::new()
                    },
                    when(m.at),
                    esc(&m.href),
                    esc(&subject)
                );
            }
        }
        o.push_str("</tbody></table>");
    }
    o.push_str("</details></figure>");
}

fn notifications(o: &mut String, runs: &[Run<'_>]) {
    o.push_str("<section id=\"notifications\"><h2>Notifications</h2>");
    for (si, r) in runs.iter().enumerate() {
        let p = side_prefix(si);
        if runs.len() > 1 {
            let _ = write!(
                o,
                "<h3 id=\"notifications-{p}\">Config {} ({})</h3>",
                ["A", "B"][si],
                esc(r.name)
            );
        }
        if r.report.notifications.is_empty() {
            o.push_str("<p>None.</p>");
            continue;
        }
        o.push_str("<ol class=\"notifications\">");
        for (i, n) in r.report.notifications.iter().enumerate() {
            let text = r
                .charts
                .text_of(n.at, &n.receiver, &n.group_key)
                .map(|s| s.text.as_str())
                .unwrap_or("");
            let _ = write!(
                o,
                "<li id=\"{p}-n{i}\" class=\"{}\"><h4>{} -&gt; {}{}</h4><p class=\"subject\">{}</p><pre>{}</pre></li>",
                if n.is_page() {
                    "page"
                } else if n.status == AlertStatus::Resolved {
                    "resolved"
                } else {
                    "notice"
                },
                when(n.at),
                esc(&n.receiver),
                if n.is_page() {
                    " <strong>PAGE</strong>"
                } else {
                    ""
                },
                esc(&n.subject),
                esc_text(text)
            );
        }
        o.push_str("</ol>");
    }
    o.push_str("</section>");
}
