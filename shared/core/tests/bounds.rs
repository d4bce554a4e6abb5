//! Issue #10, "validate guarantees run" and "bounded parsers": every
//! duration is bounded by what CloudWatch can serve, time arithmetic cannot
//! wrap, expressions and YAML documents are bounded before they can exhaust
//! the stack. Each case asserts the exact error: file:line:column, the
//! offending value and what was expected.

use firebell_core::config::parse_rules;
use firebell_core::decode::Decoder;
use firebell_core::diag::Diagnostics;

fn errors(text: &str) -> Vec<String> {
    match parse_rules("bad.yaml", text) {
        Ok(_) => vec![],
        Err(e) => e.0.errors().map(|d| d.to_string()).collect(),
    }
}

/// One rule with `extra` appended (indented as a rule field) and `period`.
fn rule(period: &str, extra: &str) -> String {
    format!(
        "rules:\n  - name: R\n    metrics:\n      m: {{namespace: N, metric: M, stat: Sum, period: {period}}}\n    expression: m\n    condition: {{op: \">\", threshold: 1}}\n{extra}"
    )
}

#[test]
fn every_duration_field_is_bounded_with_position_value_and_limit() {
    let limit = "(expected at most 455d: CloudWatch keeps no older data)";
    for (field, extra, col) in [
        ("for", "    for: 99999999999d\n", 10),
        ("interval", "    interval: 99999999999d\n", 15),
        ("keep_firing_for", "    keep_firing_for: 99999999999d\n", 22),
        (
            "window",
            "    min_volume: {metric: m, at_least: 1, window: 99999999999d}\n",
            50,
        ),
    ] {
        assert_eq!(
            errors(&rule("1m", extra)),
            vec![format!(
                "bad.yaml:7:{col}: error: duration \"99999999999d\" for `{field}` is too long {limit}"
            )],
            "{field}"
        );
    }
    assert_eq!(
        errors(&rule("99999999999d", "")),
        vec![format!(
            "bad.yaml:4:55: error: duration \"99999999999d\" for `period` is too long {limit}"
        )]
    );
}

#[test]
fn a_duration_that_would_wrap_an_i64_is_an_error_not_a_silent_never() {
    // 200000000000000d fits a u64 of seconds but wraps i64 milliseconds.
    assert_eq!(
        errors(&rule("1m", "    for: 200000000000000d\n")),
        vec![
            "bad.yaml:7:10: error: duration \"200000000000000d\" for `for` is too long (expected at most 455d: CloudWatch keeps no older data)"
        ]
    );
}

#[test]
fn huge_periods_are_errors_and_never_panic() {
    // 10000000000000w * 5 overflowed a Duration in `lookback`; larger ones
    // overflow the duration parser itself.
    for p in ["10000000000000w", "100000000000000000000w"] {
        assert_eq!(
            errors(&rule(p, "")),
            vec![format!(
                "bad.yaml:4:55: error: duration \"{p}\" for `period` is too long (expected at most 455d: CloudWatch keeps no older data)"
            )]
        );
    }
    // Under the duration cap but over the period limit.
    assert_eq!(
        errors(&rule("2d", "")),
        vec!["bad.yaml:4:55: error: `period` 2d is too long (expected at most 1d)"]
    );
    // The longest period is accepted.
    assert_eq!(errors(&rule("1d", "")), Vec::<String>::new());
}

#[test]
fn a_lookback_beyond_cloudwatch_retention_is_an_error() {
    assert_eq!(
        errors(&rule("1m", "    for: 20d\n")),
        vec![
            "bad.yaml:2:11: error: rule \"R\" looks back 20d6m (`for`/`datapoints` or `keep_firing_for`, `min_volume.window`, the expression's history, `interval` and 5 periods of margin), beyond the 15d CloudWatch keeps data of period 1m (expected a lookback of at most 15d)"
        ]
    );
    assert_eq!(
        errors(&rule("5m", "    keep_firing_for: 63d\n")),
        vec![
            "bad.yaml:2:11: error: rule \"R\" looks back 63d26m (`for`/`datapoints` or `keep_firing_for`, `min_volume.window`, the expression's history, `interval` and 5 periods of margin), beyond the 63d CloudWatch keeps data of period 5m (expected a lookback of at most 63d)"
        ]
    );
    // Within retention: hourly data for 400 days.
    assert_eq!(errors(&rule("1h", "    for: 400d\n")), Vec::<String>::new());
}

#[test]
fn long_expressions_are_errors_not_stack_overflows() {
    for terms in [60_000, 200_000] {
        let src = format!("m{}", " + m".repeat(terms - 1));
        let text = rule("1m", "").replace("expression: m\n", &format!("expression: {src}\n"));
        let got = errors(&text);
        assert_eq!(got.len(), 1);
        let want = format!(
            "bad.yaml:5:17: error: invalid expression \"{src}\": expression is too long ({} bytes, expected at most 4096) at offset 4096",
            src.len()
        );
        assert!(got[0] == want, "{}", &got[0][..200]);
    }
    let src = format!("m{}", " * m".repeat(300));
    let text = rule("1m", "").replace("expression: m\n", &format!("expression: {src}\n"));
    assert_eq!(
        errors(&text),
        vec![format!(
            "bad.yaml:5:17: error: invalid expression \"{src}\": expression has too many operators (more than 256) at offset 1026"
        )]
    );
}

fn parse_errors(text: &str) -> Vec<String> {
    let mut diags = Diagnostics::new();
    let mut d = Decoder::new("f.yaml", &mut diags);
    assert!(d.parse(text).is_none());
    diags.list.iter().map(|d| d.to_string()).collect()
}

#[test]
fn deep_yaml_is_an_error_before_parsing() {
    // The issue's 100 KB of `- - - ...`, on one line and as a staircase.
    let one_line = format!("a:\n  {}x\n", "- ".repeat(50_000));
    assert_eq!(
        parse_errors(&one_line),
        vec!["f.yaml:2:3: error: YAML is nested too deeply (more than 100 levels)"]
    );
    let mut stairs = String::from("a:\n");
    for i in 0..300 {
        stairs.push_str(&" ".repeat(i * 2));
        stairs.push_str("-\n");
    }
    let got = parse_errors(&stairs);
    assert_eq!(
        got,
        vec!["f.yaml:52:101: error: YAML is nested too deeply (more than 100 levels)"]
    );
    let flow = format!("a: {}1{}\n", "[".repeat(50_000), "]".repeat(50_000));
    assert_eq!(
        parse_errors(&flow),
        vec!["f.yaml:1:103: error: YAML is nested too deeply (more than 100 levels)"]
    );
    let maps = format!("a: {}1{}\n", "{b: ".repeat(50_000), "}".repeat(50_000));
    assert_eq!(
        parse_errors(&maps),
        vec!["f.yaml:1:400: error: YAML is nested too deeply (more than 100 levels)"]
    );
    // Keyless mappings nested on one line (a fuzz finding): `- : : : ...`.
    let colons = format!("a:\n  - {}x\n", ": ".repeat(14_000));
    assert_eq!(
        parse_errors(&colons),
        vec!["f.yaml:2:199: error: YAML is nested too deeply (more than 100 levels)"]
    );
    // `key: value` and `- key: value` are one level, however many on a line.
    let mut diags = Diagnostics::new();
    let mut d = Decoder::new("f.yaml", &mut diags);
    assert!(
        d.parse("a:\n  - b: c\n  - : d\n  - e: 'x: y: z'\n")
            .is_some(),
        "{diags:?}"
    );
    // Brackets inside quotes and comments do not count.
    let mut diags = Diagnostics::new();
    let mut d = Decoder::new("f.yaml", &mut diags);
    let quoted = format!(
        "a: \"{}\" # {}\nb: '{}'\n",
        "[".repeat(500),
        "{".repeat(500),
        "[".repeat(500)
    );
    assert!(d.parse(&quoted).is_some(), "{diags:?}");
    // Nor do brackets inside plain text, on however many lines.
    let mut diags = Diagnostics::new();
    let mut d = Decoder::new("f.yaml", &mut diags);
    let mut text = String::from("a:\n");
    for i in 0..200 {
        text.push_str(&format!("  k{i}: see [docs {{x\n"));
    }
    assert!(d.parse(&text).is_some(), "{diags:?}");
}

#[test]
fn huge_documents_are_an_error() {
    let big = format!("a: \"{}\"\n", "x".repeat(5 * 1024 * 1024));
    assert_eq!(
        parse_errors(&big),
        vec![format!(
            "f.yaml:1:1: error: file is too large ({} bytes, expected at most 4194304)",
            big.len()
        )]
    );
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let text = "\u{feff}rules:\n  - name: R\n    metrics: {m: {namespace: N, metric: M, stat: Sum}}\n    expression: m\n    condition: {op: \">\", threshold: 1}\n";
    let set = parse_rules("bom.yaml", text).unwrap();
    assert_eq!(set.rules[0].origin.to_string(), "bom.yaml:2:11");
}

#[test]
fn yaml_just_under_the_nesting_limit_parses_on_a_small_stack() {
    // Run on a 256 KiB stack: far below a test thread's 2 MiB.
    let h = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let text = format!("a: {}1{}\n", "[".repeat(98), "]".repeat(98));
            let mut diags = Diagnostics::new();
            let mut d = Decoder::new("f.yaml", &mut diags);
            d.parse(&text).is_some()
        })
        .unwrap();
    assert!(h.join().unwrap());
}

#[test]
fn slo_windows_are_bounded_too() {
    let text = r#"slos:
  - name: A
    team: payments
    objective: 99.9
    window: 99999999999d
    sli:
      errors: {namespace: Shop, metric: Errors, stat: Sum}
      total: {namespace: Shop, metric: Requests, stat: Sum}
    min_volume: {at_least: 500, window: 200000000000000d}
"#;
    let got: Vec<String> = match firebell_core::slo::parse_slos("slo.yaml", text) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.errors().map(|d| d.to_string()).collect(),
    };
    assert_eq!(
        got,
        vec![
            "slo.yaml:5:13: error: duration \"99999999999d\" for `window` is too long (expected at most 455d: CloudWatch keeps no older data)",
            "slo.yaml:9:41: error: duration \"200000000000000d\" for `window` is too long (expected at most 455d: CloudWatch keeps no older data)",
        ]
    );
}

#[test]
fn label_and_annotation_counts_and_label_names_are_bounded() {
    let many = |n: usize, prefix: &str| {
        (0..n)
            .map(|i| format!("{prefix}{i}: x"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let text = rule(
        "1m",
        &format!(
            "    labels: {{{}}}\n    annotations: {{{}}}\n",
            many(31, "l"),
            many(31, "a")
        ),
    );
    assert_eq!(
        errors(&text),
        vec![
            "bad.yaml:7:13: error: 31 labels (expected at most 30)",
            "bad.yaml:8:18: error: 31 annotations (expected at most 30)",
        ]
    );
    // The limits themselves are accepted.
    let text = rule(
        "1m",
        &format!(
            "    labels: {{{}}}\n    annotations: {{{}}}\n",
            many(30, "l"),
            many(30, "a")
        ),
    );
    assert_eq!(errors(&text), Vec::<String>::new());
    let name = "n".repeat(129);
    assert_eq!(
        errors(&rule("1m", &format!("    labels: {{{name}: x}}\n"))),
        vec![
            "bad.yaml:7:13: error: label name \"nnnnnnnnnnnnnnnnnnnn\"… is 129 characters long (expected at most 128)"
        ]
    );
}

#[test]
fn evaluation_delay_and_arrival_grace_are_bounded() {
    assert_eq!(
        errors(&rule(
            "1m",
            "    evaluation_delay: 2h\n    arrival_grace: 61m\n"
        )),
        vec![
            "bad.yaml:7:23: error: `evaluation_delay` 2h is too long (expected at most 1h: every alert of the rule would be that late)",
            "bad.yaml:8:20: error: `arrival_grace` 1h1m is too long (expected at most 1h: every alert of the rule would be that late)",
        ]
    );
    assert_eq!(
        errors(&rule(
            "1m",
            "    evaluation_delay: 1h\n    arrival_grace: 5m\n"
        )),
        Vec::<String>::new()
    );
}
