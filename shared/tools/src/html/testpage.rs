//! The HTML report of rule unit tests (`firebell test --html FILE`): the
//! failing tests first, each with its checks (a failed one with its
//! expected-vs-got diff), a chart per rule instance the test's series
//! reached (the states the engine went through, and a marker at each
//! `alert_rule_test`'s eval time: passed or failed, linking to the check)
//! and the text of every notification the test's cycles sent.

use std::fmt::Write as _;

use firebell_engine::Config;

use super::svg::{self, Mark, Side};
use super::{CSS, brace, esc, legend, when};
use crate::unittest::{FileResult, TestFile};

/// One test file, run with [`crate::unittest::run_charted`].
#[derive(Debug, Clone, Copy)]
pub struct TestRun<'a> {
    pub file: &'a TestFile,
    pub config: &'a Config,
    pub result: &'a FileResult,
}

/// Writes the page of `firebell test` over `runs`.
pub fn test_page(runs: &[TestRun<'_>], generator: &str) -> String {
    let mut o = String::with_capacity(64 * 1024);
    let passed: usize = runs.iter().map(|r| r.result.passed()).sum();
    let failed: usize = runs.iter().map(|r| r.result.failed()).sum();
    let _ = write!(
        o,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light dark"><title>firebell test: {passed} passed, {failed} failed</title><style>{CSS}</style></head><body>"#
    );
    o.push_str(&svg::defs());
    let _ = write!(
        o,
        "<header><h1>firebell test: {passed} passed, {failed} failed</h1></header><main>"
    );

    // Every test, the failing first (stable otherwise).
    let mut tests: Vec<(usize, usize)> = Vec::new();
    for (fi, r) in runs.iter().enumerate() {
        for gi in 0..r.result.groups.len() {
            tests.push((fi, gi));
        }
    }
    tests.sort_by_key(|&(fi, gi)| runs[fi].result.groups[gi].passed());

    o.push_str("<section id=\"summary\"><h2>Summary</h2><table class=\"tests\"><thead><tr><th scope=\"col\">test</th><th scope=\"col\">file</th><th scope=\"col\">checks</th><th scope=\"col\">result</th></tr></thead><tbody>");
    for (ti, &(fi, gi)) in tests.iter().enumerate() {
        let r = &runs[fi].result;
        let g = &r.groups[gi];
        let failed = g.checks.iter().filter(|c| !c.passed).count();
        let _ = write!(
            o,
            "<tr{}><th scope=\"row\"><a href=\"#test-{ti}\">{}</a></th><td>{}:{}</td><td>{}</td><td>{}</td></tr>",
            if g.passed() { "" } else { " class=\"changed\"" },
            esc(&g.name),
            esc(&r.file),
            g.pos.line,
            g.checks.len(),
            if g.passed() {
                "ok".to_string()
            } else {
                format!("FAIL ({failed} failed)")
            }
        );
    }
    o.push_str("</tbody></table></section>");
    legend(&mut o);
    o.push_str("<p class=\"hint\">On a test's chart, a marker stands at each alert check's eval time: green when it passed, red when it failed (hover: the check; click: its diff).</p>");

    o.push_str("<section id=\"tests\"><h2>Tests</h2>");
    let mut chart_no = 0usize;
    for (ti, &(fi, gi)) in tests.iter().enumerate() {
        let run = &runs[fi];
        let g = &run.result.groups[gi];
        let def = run.file.tests.get(gi);
        let _ = write!(
            o,
            "<section class=\"test\" id=\"test-{ti}\" aria-labelledby=\"test-{ti}-h\"><h3 id=\"test-{ti}-h\">{} {}</h3><p class=\"rule-def\">{}:{}</p>",
            if g.passed() { "ok" } else { "FAIL" },
            esc(&g.name),
            esc(&run.result.file),
            g.pos.line
        );
        for e in &g.errors {
            let _ = write!(o, "<p class=\"problem\">note: {}</p>", esc(e));
        }
        o.push_str("<ol class=\"checks\">");
        for (ci, c) in g.checks.iter().enumerate() {
            let _ = write!(
                o,
                "<li id=\"test-{ti}-c{ci}\" class=\"{}\"><h4>{} {}:{}: {}</h4>",
                if c.passed { "resolved" } else { "page" },
                if c.passed { "ok" } else { "FAIL" },
                esc(&run.result.file),
                c.pos.line,
                esc(&c.title)
            );
            if !c.passed {
                let _ = write!(
                    o,
                    "<p>expected (-) vs got (+):</p><pre>{}</pre>",
                    esc(&c.diff.join("\n"))
                );
            }
            o.push_str("</li>");
        }
        o.push_str("</ol>");

        let Some(charts) = &g.charts else {
            o.push_str("</section>");
            continue;
        };
        for chart in &charts.instances {
            let rule = run.config.rules.get(&chart.rule);
            // A marker at each alert check of this rule: passed or failed.
            let marks: Vec<Mark> = def
                .map(|d| {
                    d.alert_rule_tests
                        .iter()
                        .filter(|t| t.alertname == chart.rule)
                        .filter_map(|t| {
                            let ci = g.checks.iter().position(|c| c.pos == t.pos)?;
                            let c = &g.checks[ci];
                            Some(Mark {
                                at: d.start + t.eval_time,
                                class: if c.passed { "resolved" } else { "page" },
                                title: format!(
                                    "{}: {}",
                                    if c.passed { "ok" } else { "FAIL" },
                                    c.title
                                ),
                                href: format!("#test-{ti}-c{ci}"),
                                index: ci,
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            let id = format!("c{chart_no}");
            chart_no += 1;
            let distinct = super::chart::distinct_labels(
                &chart.labels,
                &rule.map(|r| r.labels.clone()).unwrap_or_default(),
            );
            let caption = if distinct.is_empty() {
                chart.rule.clone()
            } else {
                format!("{} {}", chart.rule, brace(&distinct))
            };
            let summary = format!(
                "Value of {} over the test against its threshold, the states the engine went through and a marker per alert check.",
                chart.rule
            );
            let sides = [Side {
                name: "",
                chart: Some(chart),
                rule,
                marks,
            }];
            let _ = write!(
                o,
                "<figure class=\"instance\" id=\"{id}\"><figcaption>{}</figcaption>{}</figure>",
                esc(&caption),
                svg::chart(&id, charts, &sides, &caption, &summary)
            );
        }
        if !charts.sent.is_empty() {
            o.push_str("<h4>Notifications sent</h4><ol class=\"notifications\">");
            for s in &charts.sent {
                let _ = write!(
                    o,
                    "<li><h4>{} -&gt; {}</h4><p class=\"subject\">{}</p><pre>{}</pre></li>",
                    when(s.at),
                    esc(&s.receiver),
                    esc(&s.subject),
                    esc(&s.text)
                );
            }
            o.push_str("</ol>");
        }
        o.push_str("</section>");
    }
    let _ = writeln!(
        o,
        "</section></main><footer>Written by {}. Times are UTC. Self-contained: no script, no external resource.</footer></body></html>",
        esc(generator)
    );
    o
}
