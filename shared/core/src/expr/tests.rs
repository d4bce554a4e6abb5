use super::*;

/// Marks a missing datapoint in [`ser`].
const N: f64 = f64::NAN;

/// A series from values, NaN meaning missing.
fn ser(xs: &[f64]) -> Series {
    xs.iter().map(|&x| (!x.is_nan()).then_some(x)).collect()
}

fn grid(len: usize) -> Grid {
    Grid {
        start: 1_000_020,
        step: 60,
        len,
    }
}

/// Evaluates `src` over a 60 s grid as long as the inputs (or `len` if none).
fn eval_len(src: &str, len: usize, inputs: &[(&str, &[f64])]) -> Result<Series, EvalError> {
    let series: Vec<(String, Series)> = inputs
        .iter()
        .map(|(id, xs)| (id.to_string(), ser(xs)))
        .collect();
    let lookup = |id: &str| {
        series
            .iter()
            .find(|(n, _)| n == id)
            .map(|(_, s)| s.as_slice())
    };
    Expr::parse(src).unwrap().eval(&grid(len), &lookup)
}

fn ev(src: &str, inputs: &[(&str, &[f64])]) -> Series {
    let len = inputs.first().map_or(3, |(_, xs)| xs.len());
    eval_len(src, len, inputs).unwrap()
}

fn err(src: &str) -> (String, usize) {
    let e = Expr::parse(src).unwrap_err();
    (e.message, e.offset)
}

fn check_err(src: &str, message: &str, offset: usize) {
    assert_eq!(err(src), (message.to_string(), offset), "for {src:?}");
}

// ---------------------------------------------------------------- parsing

#[test]
fn parse_errors_are_precise() {
    check_err(
        "FOO(a)",
        "unknown function FOO (expected one of FILL, IF, ABS, CEIL, FLOOR, LOG, LOG10, SQRT, MIN, MAX, AVG, SUM, RATE, DIFF, RSUM)",
        0,
    );
    check_err(
        "1 + fill(a, 0)",
        "unknown function fill (function names are upper case: FILL)",
        4,
    );
    check_err(
        "ABS(a",
        "expected ',' or ')' but found end of expression",
        5,
    );
    check_err("(a + b", "expected ')' but found end of expression", 6);
    check_err("(a + b c)", "expected ')' but found 'c'", 7);
    check_err("a + * b", "unexpected token '*'", 4);
    check_err("* b", "unexpected token '*'", 0);
    check_err("a +", "unexpected end of expression", 3);
    check_err("FILL(a)", "FILL takes 2 arguments, got 1", 0);
    check_err("x + ABS(a, b)", "ABS takes 1 argument, got 2", 4);
    check_err("IF(a)", "IF takes 2 or 3 arguments, got 1", 0);
    check_err("IF(a, b, c, d)", "IF takes 2 or 3 arguments, got 4", 0);
    check_err("MAX()", "MAX takes at least 1 argument, got 0", 0);
    check_err("MAX(a, )", "unexpected token ')'", 7);
    check_err("", "empty expression", 0);
    check_err("   ", "empty expression", 0);
    check_err(
        "a b",
        "expected an operator or end of expression but found 'b'",
        2,
    );
    check_err(
        "a > 1 and b",
        "expected an operator or end of expression but found 'and' (logical operators are upper case: AND)",
        6,
    );
    check_err("a)", "unmatched ')'", 1);
    check_err("a = 1", "unexpected character '=' (use '==' to compare)", 2);
    check_err("a & b", "unexpected character '&' (use '&&' or AND)", 2);
    check_err("a # b", "unexpected character '#'", 2);
    check_err("é + a", "unexpected character 'é'", 0);
    check_err("a + é", "unexpected character 'é'", 4);
    check_err("2x", "invalid number '2x'", 0);
    check_err("a * 1.2.3", "invalid number '1.2.3'", 4);
    check_err("1e", "invalid number '1e'", 0);
    check_err("1e999", "number '1e999' is out of range", 0);
    check_err(
        "a < b < c",
        "comparisons cannot be chained: '<' follows '<' (combine comparisons with AND)",
        6,
    );
    check_err(
        "ABS + 1",
        "expected '(' after function ABS but found '+'",
        4,
    );
    check_err(
        "REPEAT",
        "REPEAT is only valid as the second argument of FILL",
        0,
    );
    check_err(
        "FILL(LINEAR, a)",
        "LINEAR is only valid as the second argument of FILL",
        5,
    );
    check_err(
        "FILL(a, REPEAT + 1)",
        "expected ',' or ')' but found '+'",
        15,
    );
    check_err("a AND", "unexpected end of expression", 5);
    check_err("AND b", "unexpected token 'AND'", 0);
}

#[test]
fn parse_error_display_includes_offset() {
    let e = Expr::parse("a + * b").unwrap_err();
    assert_eq!(e.to_string(), "unexpected token '*' at offset 4");
}

#[test]
fn nesting_is_limited() {
    let deep = format!("{}a{}", "(".repeat(200), ")".repeat(200));
    let (msg, _) = err(&deep);
    assert!(msg.starts_with("expression is nested too deeply"), "{msg}");
    let minus = format!("{}a", "-".repeat(200));
    assert!(err(&minus).0.starts_with("expression is nested too deeply"));
    let ok = format!("{}a{}", "(".repeat(50), ")".repeat(50));
    assert!(Expr::parse(&ok).is_ok());
}

#[test]
fn numbers() {
    for (src, v) in [
        ("1", 1.0),
        ("0.5", 0.5),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("2.5E-1", 0.25),
        ("1e+2", 100.0),
    ] {
        assert_eq!(ev(src, &[]), vec![Some(v); 3], "{src}");
    }
}

#[test]
fn metric_ids_are_collected() {
    let e =
        Expr::parse("FILL(errors, 0) * 100 / MAX(requests, errors) + IF(x > 1, y) + 2").unwrap();
    let ids: Vec<String> = e.metric_ids().into_iter().collect();
    assert_eq!(ids, ["errors", "requests", "x", "y"]);
    assert!(Expr::parse("1 + 2").unwrap().metric_ids().is_empty());
    assert_eq!(
        Expr::parse("FILL(m_1, REPEAT)").unwrap().metric_ids(),
        BTreeSet::from(["m_1".to_string()])
    );
}

#[test]
fn display_is_canonical_and_round_trips() {
    for (src, shown) in [
        ("a+b*c", "a + b * c"),
        ("(a+b)*c", "(a + b) * c"),
        ("a-(b-c)", "a - (b - c)"),
        ("(a-b)-c", "a - b - c"),
        ("a/(b*c)", "a / (b * c)"),
        ("-(a+b)", "-(a + b)"),
        ("--a", "--a"),
        ("-a*b", "-a * b"),
        ("a>1&&b<2||c", "a > 1 AND b < 2 OR c"),
        ("a OR (b AND c)", "a OR b AND c"),
        ("(a OR b) AND c", "(a OR b) AND c"),
        ("(a > b) == 1", "(a > b) == 1"),
        ("FILL(a,REPEAT)", "FILL(a, REPEAT)"),
        ("FILL(a , -1)", "FILL(a, -1)"),
        ("IF(a>=1,b,c)", "IF(a >= 1, b, c)"),
        ("MAX(a)+1e3+0.25+1e300", "MAX(a) + 1000 + 0.25 + 1e300"),
    ] {
        let e = Expr::parse(src).unwrap();
        assert_eq!(e.to_string(), shown, "{src}");
        assert_eq!(Expr::parse(shown).unwrap(), e, "{src}");
        assert_eq!(e.source(), src);
    }
    let e: Expr = "a + b".parse().unwrap();
    assert_eq!(e, Expr::parse("(a)+b").unwrap());
    assert_ne!(e, Expr::parse("b + a").unwrap());
}

#[test]
fn as_metric() {
    assert_eq!(
        Expr::parse(" latency ").unwrap().as_metric(),
        Some("latency")
    );
    assert_eq!(Expr::parse("latency * 1").unwrap().as_metric(), None);
}

// ---------------------------------------------------------------- evaluation

#[test]
fn bare_metric_is_copied() {
    assert_eq!(
        ev("latency", &[("latency", &[1.0, N, 3.0])]),
        ser(&[1.0, N, 3.0])
    );
}

#[test]
fn precedence() {
    assert_eq!(ev("2 + 3 * 4", &[]), vec![Some(14.0); 3]);
    assert_eq!(ev("(2 + 3) * 4", &[]), vec![Some(20.0); 3]);
    assert_eq!(ev("10 - 4 - 3", &[]), vec![Some(3.0); 3]);
    assert_eq!(ev("64 / 4 / 2", &[]), vec![Some(8.0); 3]);
    assert_eq!(ev("-2 * 3 + 10", &[]), vec![Some(4.0); 3]);
    assert_eq!(ev("2 - -3", &[]), vec![Some(5.0); 3]);
    // Comparison binds looser than arithmetic, AND looser than comparison, OR loosest.
    assert_eq!(ev("1 + 1 > 1", &[]), vec![Some(1.0); 3]);
    assert_eq!(ev("1 > 2 AND 1 OR 1", &[]), vec![Some(1.0); 3]);
    assert_eq!(ev("1 OR 1 AND 0", &[]), vec![Some(1.0); 3]);
    assert_eq!(ev("(1 OR 1) AND 0", &[]), vec![Some(0.0); 3]);
}

#[test]
fn arithmetic_broadcast_and_missing() {
    let inputs: &[(&str, &[f64])] = &[
        ("errors", &[1.0, 2.0, N, 0.0, 5.0]),
        ("requests", &[10.0, 0.0, 4.0, 0.0, N]),
    ];
    assert_eq!(
        ev("100 * errors / requests", inputs),
        ser(&[10.0, N, N, N, N])
    );
    assert_eq!(ev("errors + 1", inputs), ser(&[2.0, 3.0, N, 1.0, 6.0]));
    assert_eq!(ev("1 - errors", inputs), ser(&[0.0, -1.0, N, 1.0, -4.0]));
    assert_eq!(
        ev("errors - requests", inputs),
        ser(&[-9.0, 2.0, N, 0.0, N])
    );
    assert_eq!(ev("-errors", inputs), ser(&[-1.0, -2.0, N, -0.0, -5.0]));
    // Both operands owned.
    assert_eq!(
        ev("(errors * 2) + (requests * 1)", inputs),
        ser(&[12.0, 4.0, N, 0.0, N])
    );
    // Division by a zero scalar, and overflow, give missing.
    assert_eq!(ev("errors / 0", inputs), ser(&[N, N, N, N, N]));
    assert_eq!(ev("errors * 1e308 * 10", inputs), ser(&[N, N, N, 0.0, N]));
}

#[test]
fn scalar_only_expression_fills_grid() {
    assert_eq!(eval_len("1 / 0", 2, &[]).unwrap(), ser(&[N, N]));
    assert_eq!(eval_len("42", 0, &[]).unwrap(), ser(&[]));
}

#[test]
fn non_finite_inputs_become_missing() {
    let s = vec![Some(f64::INFINITY), Some(f64::NAN), Some(1.0)];
    let lookup = |_: &str| Some(s.as_slice());
    let e = Expr::parse("m").unwrap();
    assert_eq!(e.eval(&grid(3), &lookup).unwrap(), ser(&[N, N, 1.0]));
}

#[test]
fn comparisons_and_logic() {
    let inputs: &[(&str, &[f64])] = &[("a", &[1.0, 2.0, 3.0, N]), ("b", &[2.0, 2.0, 2.0, 2.0])];
    assert_eq!(ev("a > b", inputs), ser(&[0.0, 0.0, 1.0, N]));
    assert_eq!(ev("a >= b", inputs), ser(&[0.0, 1.0, 1.0, N]));
    assert_eq!(ev("a < b", inputs), ser(&[1.0, 0.0, 0.0, N]));
    assert_eq!(ev("a <= b", inputs), ser(&[1.0, 1.0, 0.0, N]));
    assert_eq!(ev("a == b", inputs), ser(&[0.0, 1.0, 0.0, N]));
    assert_eq!(ev("a != b", inputs), ser(&[1.0, 0.0, 1.0, N]));
    assert_eq!(ev("a > 1 AND b > 1", inputs), ser(&[0.0, 1.0, 1.0, N]));
    assert_eq!(ev("a > 1 && b > 1", inputs), ser(&[0.0, 1.0, 1.0, N]));
    assert_eq!(ev("a > 2 OR b > 5", inputs), ser(&[0.0, 0.0, 1.0, N]));
    assert_eq!(ev("a > 2 || b > 5", inputs), ser(&[0.0, 0.0, 1.0, N]));
    // Three-valued logic with a missing side.
    assert_eq!(ev("a > 0 OR b > 1", inputs), ser(&[1.0, 1.0, 1.0, 1.0]));
    assert_eq!(ev("a > 0 AND b > 5", inputs), ser(&[0.0, 0.0, 0.0, 0.0]));
    assert_eq!(ev("a > 0 AND b > 1", inputs), ser(&[1.0, 1.0, 1.0, N]));
    assert_eq!(ev("a > 0 OR b > 5", inputs), ser(&[1.0, 1.0, 1.0, N]));
    // Non-zero is true.
    assert_eq!(ev("a - 2 AND 1", inputs), ser(&[1.0, 0.0, 1.0, N]));
}

#[test]
fn fill() {
    let inputs: &[(&str, &[f64])] = &[
        ("a", &[N, 1.0, N, N, 4.0, N]),
        ("b", &[7.0, 7.0, N, 8.0, 8.0, 9.0]),
    ];
    assert_eq!(
        ev("FILL(a, 0)", inputs),
        ser(&[0.0, 1.0, 0.0, 0.0, 4.0, 0.0])
    );
    assert_eq!(
        ev("FILL(a, -1)", inputs),
        ser(&[-1.0, 1.0, -1.0, -1.0, 4.0, -1.0])
    );
    assert_eq!(ev("FILL(a, b)", inputs), ser(&[7.0, 1.0, N, 8.0, 4.0, 9.0]));
    assert_eq!(
        ev("FILL(a * 1, b * 1)", inputs),
        ser(&[7.0, 1.0, N, 8.0, 4.0, 9.0])
    );
    assert_eq!(
        ev("FILL(a, REPEAT)", inputs),
        ser(&[N, 1.0, 1.0, 1.0, 4.0, 4.0])
    );
    assert_eq!(
        ev("FILL(a, LINEAR)", inputs),
        ser(&[N, 1.0, 2.0, 3.0, 4.0, N])
    );
    assert_eq!(
        ev("FILL(FILL(a, LINEAR), 0)", inputs),
        ser(&[0.0, 1.0, 2.0, 3.0, 4.0, 0.0])
    );
    // A missing scalar is filled; a present one is kept.
    assert_eq!(ev("FILL(1 / 0, 5)", inputs), vec![Some(5.0); 6]);
    assert_eq!(
        ev("FILL(1 / 0, b)", inputs),
        ser(&[7.0, 7.0, N, 8.0, 8.0, 9.0])
    );
    assert_eq!(ev("FILL(3, b)", inputs), vec![Some(3.0); 6]);
    assert_eq!(ev("FILL(3, REPEAT)", inputs), vec![Some(3.0); 6]);
}

#[test]
fn if_() {
    let inputs: &[(&str, &[f64])] = &[
        ("c", &[1.0, 0.0, N, 2.0]),
        ("a", &[10.0, 20.0, 30.0, N]),
        ("b", &[-1.0, -2.0, -3.0, -4.0]),
    ];
    assert_eq!(ev("IF(c, a, b)", inputs), ser(&[10.0, -2.0, N, N]));
    assert_eq!(ev("IF(c, a)", inputs), ser(&[10.0, N, N, N]));
    assert_eq!(ev("IF(c > 0, 1, 0)", inputs), ser(&[1.0, 0.0, N, 1.0]));
    assert_eq!(ev("IF(c, 5, b)", inputs), ser(&[5.0, -2.0, N, 5.0]));
    assert_eq!(ev("IF(1, a, b)", inputs), ser(&[10.0, 20.0, 30.0, N]));
    assert_eq!(ev("IF(0, 1, 2)", inputs), vec![Some(2.0); 4]);
    assert_eq!(ev("IF(0, 1)", inputs), vec![None; 4]);
}

#[test]
fn abs_and_math() {
    let inputs: &[(&str, &[f64])] = &[("a", &[-2.5, N, 4.0, 0.0])];
    assert_eq!(ev("ABS(a)", inputs), ser(&[2.5, N, 4.0, 0.0]));
    assert_eq!(ev("CEIL(a)", inputs), ser(&[-2.0, N, 4.0, 0.0]));
    assert_eq!(ev("FLOOR(a)", inputs), ser(&[-3.0, N, 4.0, 0.0]));
    assert_eq!(ev("SQRT(a)", inputs), ser(&[N, N, 2.0, 0.0]));
    assert_eq!(ev("LOG10(a * 25)", inputs), ser(&[N, N, 2.0, N]));
    assert_eq!(ev("LOG(a - 3)", inputs), ser(&[N, N, 0.0, N]));
    assert_eq!(ev("ABS(-3)", inputs), vec![Some(3.0); 4]);
}

#[test]
fn variadic_min_max_avg_sum_are_elementwise() {
    let inputs: &[(&str, &[f64])] = &[
        ("a", &[1.0, N, 5.0, N]),
        ("b", &[3.0, 2.0, N, N]),
        ("c", &[2.0, 4.0, 1.0, N]),
    ];
    assert_eq!(ev("MIN(a, b, c)", inputs), ser(&[1.0, 2.0, 1.0, N]));
    assert_eq!(ev("MAX(a, b, c)", inputs), ser(&[3.0, 4.0, 5.0, N]));
    assert_eq!(ev("SUM(a, b, c)", inputs), ser(&[6.0, 6.0, 6.0, N]));
    assert_eq!(ev("AVG(a, b, c)", inputs), ser(&[2.0, 3.0, 3.0, N]));
    assert_eq!(ev("MAX(a, 2)", inputs), ser(&[2.0, 2.0, 5.0, 2.0]));
    assert_eq!(ev("AVG(a, 3)", inputs), ser(&[2.0, 3.0, 4.0, 3.0]));
    assert_eq!(ev("MIN(4, 2, 8)", inputs), vec![Some(2.0); 4]);
    assert_eq!(ev("AVG(1, 2)", inputs), vec![Some(1.5); 4]);
    assert_eq!(ev("SUM(a, 1 / 0)", inputs), ser(&[1.0, N, 5.0, N]));
}

#[test]
fn single_argument_aggregates_broadcast() {
    let inputs: &[(&str, &[f64])] = &[("a", &[1.0, N, 5.0, 2.0]), ("none", &[N, N, N, N])];
    assert_eq!(ev("MAX(a)", inputs), vec![Some(5.0); 4]);
    assert_eq!(ev("MIN(a)", inputs), vec![Some(1.0); 4]);
    assert_eq!(ev("SUM(a)", inputs), vec![Some(8.0); 4]);
    assert_eq!(ev("AVG(a)", inputs), ser(&[8.0 / 3.0; 4]));
    assert_eq!(ev("a / MAX(a)", inputs), ser(&[0.2, N, 1.0, 0.4]));
    assert_eq!(ev("MAX(none)", inputs), vec![None; 4]);
    assert_eq!(ev("SUM(none)", inputs), vec![None; 4]);
    assert_eq!(ev("MAX(7)", inputs), vec![Some(7.0); 4]);
}

#[test]
fn rate_and_diff_across_gaps() {
    let inputs: &[(&str, &[f64])] = &[("c", &[N, 100.0, 220.0, N, N, 400.0, 340.0])];
    // 60 s step: 120/60, then a gap of 3 buckets (180 s): 180/180.
    assert_eq!(ev("RATE(c)", inputs), ser(&[N, N, 2.0, N, N, 1.0, -1.0]));
    assert_eq!(
        ev("DIFF(c)", inputs),
        ser(&[N, N, 120.0, N, N, 180.0, -60.0])
    );
    assert_eq!(
        ev("DIFF(c * 2)", inputs),
        ser(&[N, N, 240.0, N, N, 360.0, -120.0])
    );
    assert_eq!(
        ev("DIFF(5)", inputs),
        ser(&[N, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    );
    assert_eq!(ev("RATE(1 / 0)", inputs), vec![None; 7]);
    // The input itself is not modified.
    assert_eq!(
        ev("c - DIFF(c)", inputs),
        ser(&[N, N, 100.0, N, N, 220.0, 400.0])
    );
}

#[test]
fn eval_errors() {
    let e = eval_len("a + zzz", 2, &[("a", &[1.0, 2.0])]).unwrap_err();
    assert_eq!(e, EvalError("no series for metric 'zzz'".to_string()));
    let e = eval_len("a", 3, &[("a", &[1.0, 2.0])]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "series for metric 'a' has 2 datapoints but the grid has 3"
    );
}

// ---------------------------------------------------------------- RSUM

#[test]
fn rsum_parse_errors() {
    check_err("RSUM(a)", "RSUM takes 2 arguments, got 1", 0);
    check_err(
        "1 + RSUM(a, 2.5)",
        "RSUM's window must be a whole number of datapoints from 1 to 60480, found 2.5",
        4,
    );
    check_err(
        "RSUM(a, 0)",
        "RSUM's window must be a whole number of datapoints from 1 to 60480, found 0",
        0,
    );
    check_err(
        "RSUM(a, -3)",
        "RSUM's window must be a whole number of datapoints from 1 to 60480, found -3",
        0,
    );
    check_err(
        "RSUM(a, b)",
        "RSUM's window must be a whole number of datapoints from 1 to 60480, found b",
        0,
    );
    check_err(
        "RSUM(a, 100000)",
        "RSUM's window must be a whole number of datapoints from 1 to 60480, found 100000",
        0,
    );
    let e = Expr::parse("RSUM( FILL(e,0) ,60)/RSUM(t,60)").unwrap();
    assert_eq!(e.to_string(), "RSUM(FILL(e, 0), 60) / RSUM(t, 60)");
    assert_eq!(e.metric_ids().into_iter().collect::<Vec<_>>(), ["e", "t"]);
}

#[test]
fn rsum_sums_a_trailing_window_of_buckets() {
    let inputs: &[(&str, &[f64])] = &[("a", &[1.0, 2.0, N, 4.0, N, N, N, 8.0])];
    // Partial windows at the start are missing; gaps count as nothing; a
    // window with no datapoint at all is missing.
    assert_eq!(
        ev("RSUM(a, 3)", inputs),
        ser(&[N, N, 3.0, 6.0, 4.0, 4.0, N, 8.0])
    );
    assert_eq!(
        ev("RSUM(a, 1)", inputs),
        ser(&[1.0, 2.0, N, 4.0, N, N, N, 8.0])
    );
    assert_eq!(ev("RSUM(a, 8)", inputs), ser(&[N, N, N, N, N, N, N, 15.0]));
    assert_eq!(ev("RSUM(a, 9)", inputs), vec![None; 8]);
    // Of an expression, and of a scalar (broadcast, then summed).
    assert_eq!(
        ev("RSUM(FILL(a, 0), 2)", inputs),
        ser(&[N, 3.0, 2.0, 4.0, 4.0, 0.0, 0.0, 8.0])
    );
    assert_eq!(
        ev("RSUM(2, 4)", inputs),
        ser(&[N, N, N, 8.0, 8.0, 8.0, 8.0, 8.0])
    );
    // The input is not modified.
    assert_eq!(
        ev("a - RSUM(a, 1)", inputs),
        ser(&[0.0, 0.0, N, 0.0, N, N, N, 0.0])
    );
}

#[test]
fn rsum_ratio_is_a_windowed_error_ratio() {
    let inputs: &[(&str, &[f64])] = &[
        ("errors", &[N, 5.0, N, 10.0, N]),
        ("total", &[100.0, 100.0, 100.0, 100.0, 100.0]),
    ];
    assert_eq!(
        ev("RSUM(FILL(errors, 0), 2) / RSUM(total, 2)", inputs),
        ser(&[N, 0.025, 0.025, 0.05, 0.05])
    );
}

#[test]
fn rsum_matches_a_naive_sum_over_long_series() {
    // Long enough to cross the re-anchoring points; values with fractions
    // and gaps so drift and missing handling are both exercised.
    let len = 5000;
    let xs: Vec<f64> = (0..len)
        .map(|i| {
            if i % 7 == 3 {
                N
            } else {
                (i % 13) as f64 * 0.1 + 1e6 * ((i % 101 == 0) as u8 as f64)
            }
        })
        .collect();
    for n in [1usize, 5, 60, 1024, 1500] {
        let got = eval_len(&format!("RSUM(x, {n})"), len, &[("x", &xs)]).unwrap();
        for i in 0..len {
            let want = if i + 1 < n {
                None
            } else {
                let w: Vec<f64> = xs[i + 1 - n..=i]
                    .iter()
                    .copied()
                    .filter(|x| !x.is_nan())
                    .collect();
                (!w.is_empty()).then(|| w.iter().sum::<f64>())
            };
            match (got[i], want) {
                (Some(g), Some(w)) => assert!(
                    (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                    "n {n} i {i}: {g} vs {w}"
                ),
                (g, w) => assert_eq!(g, w, "n {n} i {i}"),
            }
        }
    }
}

#[test]
fn history_counts_rolling_windows() {
    let h = |src: &str| Expr::parse(src).unwrap().history();
    assert_eq!(h("a + 1"), 0);
    assert_eq!(h("RATE(a)"), 0);
    assert_eq!(h("RSUM(a, 60)"), 59);
    assert_eq!(h("RSUM(a, 1)"), 0);
    assert_eq!(h("IF(RSUM(a, 5) > 1, RSUM(a, 60), 0)"), 59);
    assert_eq!(h("RSUM(RSUM(a, 3), 4)"), 5);
    assert_eq!(h("FILL(a, RSUM(b, 10))"), 9);
    let w = |src: &str| {
        Expr::parse(src)
            .unwrap()
            .rolling_windows()
            .into_iter()
            .collect::<Vec<_>>()
    };
    assert_eq!(w("a + 1"), Vec::<usize>::new());
    assert_eq!(
        w("IF(RSUM(a, 5) / RSUM(b, 5) > 1, RSUM(a, 60), MIN(RSUM(-a, 60), 1))"),
        [5, 60]
    );
}

#[test]
fn divisors_are_the_metrics_divided_by() {
    let d = |src: &str| {
        Expr::parse(src)
            .unwrap()
            .divisors()
            .into_iter()
            .collect::<Vec<_>>()
    };
    assert_eq!(d("100 * FILL(errors, 0) / requests"), ["requests"]);
    assert_eq!(d("p99 / 1000"), Vec::<String>::new());
    assert_eq!(d("a / (b + c) + IF(x, y / z)"), ["b", "c", "z"]);
    assert_eq!(d("RSUM(e, 5) / RSUM(total, 5) / 0.001"), ["total"]);
    assert_eq!(d("-(a / FILL(b, c))"), ["b", "c"]);
}

#[test]
fn every_operator_counts_toward_the_size_limit() {
    // 257 binary operators, left-deep: parsed by a loop but as deep as long.
    let chain = format!("m{}", " + m".repeat(257));
    let (msg, offset) = err(&chain);
    assert_eq!(msg, "expression has too many operators (more than 256)");
    assert_eq!(offset, 1 + 256 * 4 + 1);
    assert!(Expr::parse(&format!("m{}", " + m".repeat(256))).is_ok());
    // Calls and unary minus count too.
    let calls = format!("m{}", " + ABS(m)".repeat(130));
    assert_eq!(
        err(&calls).0,
        "expression has too many operators (more than 256)"
    );
    // The 60k- and 200k-term chains of the issue: rejected before tokenizing.
    for terms in [60_000, 200_000] {
        let src = format!("m{}", " + m".repeat(terms - 1));
        let (msg, offset) = err(&src);
        assert_eq!(
            msg,
            format!(
                "expression is too long ({} bytes, expected at most 4096)",
                src.len()
            )
        );
        assert_eq!(offset, 4096);
    }
}

#[test]
fn the_largest_accepted_expression_evaluates_on_a_small_stack() {
    // 256 operators inside 60 parentheses: the deepest tree the limits let
    // through, parsed, printed and evaluated on a 1 MiB stack (half a test thread's or a tokio
    // worker's 2 MiB), in a debug build.
    let h = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(|| {
            let src = format!(
                "{}m{}{}",
                "(".repeat(60),
                " + m".repeat(196),
                ")".repeat(60)
            );
            let src = format!("{src}{}", " - m".repeat(60));
            let e = Expr::parse(&src).unwrap();
            let _ = e.to_string();
            let m = vec![Some(1.0); 3];
            let lookup = |_: &str| Some(m.as_slice());
            e.eval(&grid(3), &lookup).unwrap()
        })
        .unwrap();
    assert_eq!(h.join().unwrap(), ser(&[137.0, 137.0, 137.0]));
}
