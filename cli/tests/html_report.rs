#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `firebell backtest --html FILE` (and `firebell test --html FILE`): the page is self-contained (no script,
//! no URL outside the page), the text report is unchanged by the flag, every
//! rule has a chart and every marker links to a notification's text; its
//! structure (element skeleton, ids, headings, table headers, the pieces of
//! each chart) is kept in `cli/tests/golden/html-report-structure.txt`,
//! compared byte for byte (`UPDATE_GOLDEN=1 cargo test -p firebell --test
//! html_report` rewrites it; review the diff).

mod common;
use common::{firebell, text};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const DAY: &str = "examples/demo/day.jsonl";

/// Runs the demo-day backtest writing the page to `dir/report.html`;
/// returns (stdout, page).
fn demo_report(dir: &Path, extra: &[&str]) -> (String, String) {
    let file = dir.join("report.html");
    let f = file.to_str().unwrap();
    let mut args = vec![
        "backtest", "--config", "examples", "--source", DAY, "--html", f,
    ];
    args.extend_from_slice(extra);
    let out = firebell(&args);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(text(&out.stderr), format!("wrote {f}\n"));
    (text(&out.stdout), std::fs::read_to_string(&file).unwrap())
}

/// One tag of the page: name, attributes, closing, self-closing.
#[derive(Debug)]
enum Token {
    Open(String, BTreeMap<String, String>, bool),
    Close(String),
    Text(String),
}

/// A small tokenizer for the page firebell writes (well-formed: every
/// element closed, attributes double-quoted).
fn tokens(html: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut rest = html;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("<!") {
            rest = &r[r.find('>').unwrap() + 1..];
            continue;
        }
        if rest.starts_with('<') {
            let end = rest.find('>').unwrap();
            let inner = &rest[1..end];
            rest = &rest[end + 1..];
            // <style> content is not markup.
            if let Some(name) = inner.strip_prefix('/') {
                out.push(Token::Close(name.trim().to_string()));
                continue;
            }
            let self_closing = inner.ends_with('/');
            let inner = inner.trim_end_matches('/');
            let (name, mut attrs_src) = inner.split_once(' ').unwrap_or((inner, ""));
            let mut attrs = BTreeMap::new();
            loop {
                attrs_src = attrs_src.trim_start();
                let Some(eq) = attrs_src.find("=\"") else {
                    break;
                };
                let key = attrs_src[..eq].trim().to_string();
                let after = &attrs_src[eq + 2..];
                let close = after.find('"').unwrap();
                attrs.insert(key, after[..close].to_string());
                attrs_src = &after[close + 1..];
            }
            if name == "style" {
                let end = rest.find("</style>").unwrap();
                rest = &rest[end..];
            }
            out.push(Token::Open(name.to_string(), attrs, self_closing));
        } else {
            let end = rest.find('<').unwrap_or(rest.len());
            out.push(Token::Text(rest[..end].to_string()));
            rest = &rest[end..];
        }
    }
    out
}

const VOID: &[&str] = &["meta"];
/// Elements whose text the skeleton keeps.
const TEXT: &[&str] = &[
    "h1",
    "h2",
    "h3",
    "h4",
    "caption",
    "figcaption",
    "summary",
    "dt",
    "title",
];
/// Elements the skeleton lists (their children too).
const KEEP: &[&str] = &[
    "html",
    "head",
    "body",
    "header",
    "nav",
    "main",
    "section",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "table",
    "caption",
    "thead",
    "tbody",
    "figure",
    "figcaption",
    "details",
    "summary",
    "ol",
    "dl",
    "dt",
    "style",
    "title",
];

/// The page's structure: the kept elements with id, class and role, the text
/// of headings and captions, each table's header cells and row count, each
/// list item's id and class, and each SVG's pieces counted by element and class.
fn skeleton(html: &str) -> String {
    let toks = tokens(html);
    let mut out = String::new();
    let mut depth = 0usize;
    let mut stack: Vec<(String, bool)> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Token::Open(name, attrs, self_closing) => {
                let in_svg = stack.iter().any(|(s, _)| s == "svg");
                if name == "svg" && !in_svg {
                    // Count the SVG's pieces up to its end.
                    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
                    let mut j = i + 1;
                    let mut nest = 1;
                    while nest > 0 {
                        match &toks[j] {
                            Token::Open(n, a, sc) => {
                                if n == "svg" && !sc {
                                    nest += 1;
                                }
                                let class = a
                                    .get("class")
                                    .map(|c| format!(".{}", c.replace(' ', ".")))
                                    .unwrap_or_default();
                                *counts.entry(format!("{n}{class}")).or_default() += 1;
                            }
                            Token::Close(n) if n == "svg" => nest -= 1,
                            _ => {}
                        }
                        j += 1;
                    }
                    let pieces: Vec<String> =
                        counts.iter().map(|(k, v)| format!("{k}x{v}")).collect();
                    out.push_str(&format!(
                        "{}svg{}{} [{}]\n",
                        "  ".repeat(depth),
                        attrs
                            .get("class")
                            .map(|c| format!(".{c}"))
                            .unwrap_or_default(),
                        attrs
                            .get("role")
                            .map(|r| format!(" role={r}"))
                            .unwrap_or_default(),
                        pieces.join(" ")
                    ));
                    i = j;
                    continue;
                }
                let keep = KEEP.contains(&name.as_str())
                    || (name == "li" && attrs.contains_key("id"))
                    || (name == "th" && stack.iter().any(|(s, _)| s == "thead"));
                if keep && !in_svg {
                    let mut line = format!("{}{name}", "  ".repeat(depth));
                    if let Some(id) = attrs.get("id") {
                        line.push_str(&format!("#{id}"));
                    }
                    if let Some(c) = attrs.get("class") {
                        line.push_str(&format!(".{}", c.replace(' ', ".")));
                    }
                    if let Some(r) = attrs.get("role") {
                        line.push_str(&format!(" role={r}"));
                    }
                    if TEXT.contains(&name.as_str()) || name == "th" {
                        // The element's text, tags dropped.
                        let mut t = String::new();
                        let mut j = i + 1;
                        let mut nest = 1;
                        while nest > 0 {
                            match &toks[j] {
                                Token::Open(n, _, sc) if n == name && !sc => nest += 1,
                                Token::Close(n) if n == name => nest -= 1,
                                Token::Text(s) => t.push_str(s),
                                _ => {}
                            }
                            j += 1;
                        }
                        line.push_str(&format!(": {}", t.trim()));
                    }
                    if name == "tbody" {
                        let mut rows = 0;
                        let mut j = i + 1;
                        while !matches!(&toks[j], Token::Close(n) if n == "tbody") {
                            if matches!(&toks[j], Token::Open(n, _, _) if n == "tr") {
                                rows += 1;
                            }
                            j += 1;
                        }
                        line.push_str(&format!(" rows={rows}"));
                    }
                    out.push_str(&line);
                    out.push('\n');
                }
                if !self_closing && !VOID.contains(&name.as_str()) {
                    let kept = keep && !in_svg;
                    stack.push((name.clone(), kept));
                    if kept {
                        depth += 1;
                    }
                }
            }
            Token::Close(name) => {
                let (popped, kept) = stack.pop().expect("a closing tag without its opening one");
                assert_eq!(&popped, name, "unbalanced </{name}>");
                if kept {
                    depth -= 1;
                }
            }
            Token::Text(_) => {}
        }
        i += 1;
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    out
}

/// Every way a page could reach the network: none may appear.
fn assert_self_contained(page: &str) {
    for bad in [
        "src=", "<script", "<link", "@import", "url(http", "url(//", "srcset", "<iframe",
        "<object", "<embed",
    ] {
        assert!(!page.contains(bad), "the page contains {bad:?}");
    }
    for tok in tokens(page) {
        if let Token::Open(name, attrs, _) = tok {
            for (k, v) in &attrs {
                if k == "href" {
                    assert!(v.starts_with('#'), "<{name} href={v:?}> leaves the page");
                }
                if v.contains("url(") {
                    assert!(
                        v.starts_with("url(#"),
                        "<{name} {k}={v:?}> is not a page-local url"
                    );
                }
            }
        }
    }
    let css = &page[page.find("<style>").unwrap()..page.find("</style>").unwrap()];
    for (i, _) in css.match_indices("url(") {
        assert!(
            css[i..].starts_with("url(#"),
            "CSS url outside the page: {}",
            &css[i..i + 30]
        );
    }
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

#[test]
fn the_demo_report_keeps_its_structure() {
    let dir = tempfile::tempdir().unwrap();
    let (_, page) = demo_report(dir.path(), &[]);
    let actual = skeleton(&page);
    let path = golden_path("html-report-structure.txt");
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    if actual != expected {
        let first = actual
            .lines()
            .zip(expected.lines())
            .position(|(a, e)| a != e)
            .unwrap_or(actual.lines().count().min(expected.lines().count()));
        panic!(
            "the report's structure changed at line {} of {}:\n  expected: {:?}\n  actual:   {:?}\n(UPDATE_GOLDEN=1 rewrites it; review the diff)",
            first + 1,
            path.display(),
            expected.lines().nth(first),
            actual.lines().nth(first)
        );
    }
}

#[test]
fn the_page_is_self_contained_and_the_text_report_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, page) = demo_report(dir.path(), &[]);
    let plain = firebell(&["backtest", "--config", "examples", "--source", DAY]);
    assert_eq!(
        stdout,
        text(&plain.stdout),
        "--html changes the text report"
    );
    assert_self_contained(&page);
    assert!(page.len() < 500_000, "{} bytes", page.len());

    // A section and a chart for every rule of the text report.
    let rules: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Rules"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(rules.len(), 9);
    let sections: Vec<&str> = page.split("<section class=\"rule\"").skip(1).collect();
    assert_eq!(sections.len(), rules.len());
    for (rule, section) in rules.iter().zip(&sections) {
        assert!(section.contains(&format!(">{rule}</h3>")), "{rule}");
        assert!(
            section.contains("<svg class=\"chart\" role=\"img\""),
            "{rule} has no chart"
        );
        assert!(
            section.contains("<details><summary>Numbers</summary><table"),
            "{rule} has no table"
        );
    }

    // Every marker links to a notification's text, which is there.
    let markers: Vec<&str> = page
        .match_indices("<a href=\"#a-n")
        .map(|(i, _)| &page[i + 10..])
        .filter_map(|rest| {
            let id = &rest[..rest.find('"').unwrap()];
            rest[id.len()..].starts_with("\"><title>").then_some(id)
        })
        .collect();
    // 5 notifications, one of them (the checkout group's `[RESOLVED:2]`)
    // about two alerts.
    assert_eq!(markers.len(), 6, "one marker per notification and alert");
    for m in &markers {
        let item = page
            .split(&format!("<li id=\"{m}\""))
            .nth(1)
            .unwrap_or_else(|| panic!("no #{m}"));
        assert!(
            item.split("</li>").next().unwrap().contains("<pre>"),
            "{m} without text"
        );
    }
    // Hover: the marker's title is its notification's subject.
    assert!(page.contains("<title>2026-11-23 15:46 -&gt; payments-oncall PAGE: [FIRING] Payments error rate 5.23% &gt; 1% (payments, page)</title>"));
    // The exact figures beside the payments chart: every minute of the day
    // judged, 3 missing, 559 not judged (too few requests at night), and
    // its pending and firing stretches (the text report's 15m firing).
    let payments = sections[2];
    assert!(payments.contains("<tbody><tr><td>1440</td><td>3</td><td>559</td><td>0%</td><td>8.02%</td><td>0% at 2026-11-23 23:59</td></tr></tbody>"));
    assert!(payments.contains("<tr><td>2026-11-23 15:42</td><td>2026-11-23 15:45</td><td>pending</td><td></td></tr><tr><td>2026-11-23 15:45</td><td>2026-11-23 16:00</td><td>firing</td><td>5.23%</td></tr>"));
    // States by pattern as well as colour; dark mode.
    for p in [
        "p-pending",
        "p-firing",
        "p-nodata",
        "p-silenced",
        "p-inhibited",
        "p-guard",
    ] {
        assert!(page.contains(&format!("<pattern id=\"{p}\"")), "{p}");
    }
    assert!(page.contains("@media (prefers-color-scheme: dark)"));
}

#[test]
fn compare_draws_both_configs_bands() {
    let dir = tempfile::tempdir().unwrap();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let rules = std::fs::read_to_string(format!("{root}/examples/rules/checkout.yaml")).unwrap();
    let b = dir.path().join("b");
    std::fs::create_dir_all(b.join("rules")).unwrap();
    for f in ["routing.yaml", "slos.yaml", "rules/payments.yaml"] {
        std::fs::copy(format!("{root}/examples/{f}"), b.join(f)).unwrap();
    }
    std::fs::write(
        b.join("rules/checkout.yaml"),
        rules.replace("threshold: 800", "threshold: 2000"),
    )
    .unwrap();
    let (stdout, page) = demo_report(dir.path(), &["--compare", b.to_str().unwrap()]);
    assert!(
        stdout.starts_with("firebell backtest: A = examples, B = "),
        "{stdout}"
    );
    assert_self_contained(&page);
    assert!(page.contains("<h3 id=\"notifications-a\">Config A (examples)</h3>"));
    assert!(page.contains("<h3 id=\"notifications-b\">"));
    // Every chart has a lane per config.
    let charts = page.matches("<svg class=\"chart\"").count();
    assert_eq!(page.matches(">A</text>").count(), charts);
    assert_eq!(page.matches(">B</text>").count(), charts);
    // The stricter rule's row is marked changed.
    assert!(
        page.contains(
            "<tr class=\"changed\"><th scope=\"row\"><a href=\"#rule-1\">* CheckoutLatencyP99</a>"
        ),
        "{}",
        &page[page.find("<table").unwrap()..][..2000]
    );
}

#[test]
fn test_html_shows_the_failing_tests_first_with_their_charts() {
    let dir = tempfile::tempdir().unwrap();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    // A copy of the checkout tests expecting firing where the rule is pending.
    let tests = std::fs::read_to_string(format!("{root}/examples/tests/checkout_test.yaml"))
        .unwrap()
        .replace("config: ../", &format!("config: {root}/examples"))
        .replacen(
            "          - status: pending\n",
            "          - status: firing\n",
            1,
        );
    let failing = dir.path().join("failing_test.yaml");
    std::fs::write(&failing, tests).unwrap();
    let page_path = dir.path().join("tests.html");
    let out = firebell(&[
        "test",
        "examples/tests/payments_test.yaml",
        failing.to_str().unwrap(),
        "--html",
        page_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stdout = text(&out.stdout);
    assert!(stdout.ends_with("36 passed, 1 failed\n"), "{stdout}");
    let page = std::fs::read_to_string(&page_path).unwrap();
    assert_self_contained(&page);
    assert!(page.contains("<title>firebell test: 36 passed, 1 failed</title>"));
    let tests: Vec<&str> = page.split("<section class=\"test\"").skip(1).collect();
    assert_eq!(tests.len(), 10, "one section per test");
    // The failing test first, with its diff and a red marker at its eval time.
    assert!(
        tests[0].contains(">FAIL error rate fires on 2 of 3 breaching minutes</h3>"),
        "{}",
        &tests[0][..300]
    );
    assert!(tests[0].contains("<pre>- firing  {service=&quot;checkout&quot;, severity=&quot;page&quot;, team=&quot;checkout&quot;}\n+ pending {service=&quot;checkout&quot;"), "{}", tests[0]);
    assert!(tests[0].contains("<a href=\"#test-0-c0\"><title>FAIL: alerts of CheckoutErrorRate at eval_time 6m</title><path class=\"mark page\""));
    assert!(
        tests[1..]
            .iter()
            .all(|t| t.contains("<h3") && t.contains(">ok "))
    );
    // Every test charts the instances its series reached, with the engine's line.
    for t in &tests {
        assert!(t.contains("<svg class=\"chart\" role=\"img\""));
        assert!(t.contains("<path class=\"series\" d=\"M"));
    }
}

#[test]
fn report_html_charts_pages_per_team_per_day() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("noise.html");
    let f = file.to_str().unwrap();
    let args = ["report", "--config", "examples", "--source", DAY];
    let plain = firebell(&args);
    let mut with = args.to_vec();
    with.extend(["--html", f]);
    let out = firebell(&with);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        text(&plain.stdout),
        "--html changes the text report"
    );
    let page = std::fs::read_to_string(&file).unwrap();
    assert_self_contained(&page);
    // One chart per team, with its numbers beside; the demo's two pages.
    for team in ["checkout-oncall", "ops", "payments-oncall"] {
        assert!(
            page.contains(&format!(
                "<figcaption>{team}: pages per day</figcaption><svg class=\"chart\" role=\"img\""
            )),
            "{team}"
        );
    }
    assert_eq!(
        page.matches("<g><title>2026-11-23: 1 page(s), 0 out of hours</title>")
            .count(),
        2
    );
    assert_eq!(
        page.matches("<tr><th scope=\"row\">2026-11-23</th><td>1</td><td>0</td></tr>")
            .count(),
        2
    );
    assert!(
        page.contains("<tr><td colspan=\"3\">no page</td></tr>"),
        "ops got none"
    );
    assert!(page.contains("<section id=\"noisiest\"><h2>Noisiest rules</h2>"));
    assert!(page.contains(
        "<th scope=\"row\">CheckoutLatencyP99</th><td class=\"text\">checkout-oncall</td><td>1</td>"
    ));
}
