//! Alertmanager's matcher test cases (its `matcher/parse`, `pkg/labels` and
//! `matcher/compliance` tests), ported as one table: for each input,
//! firebell gives the matchers Alertmanager reads by default, or refuses
//! the input with the error shown, saying why where Alertmanager reads it
//! (see `shared/notify/src/matcher/mod.rs` and `docs/routing.md`).
//!
//! Alertmanager's default reading: when both of its parsers (classic and
//! UTF-8) read an input, the classic reading; else the one that reads it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use firebell_notify::{MatchOp, Matcher, parse_label_arg};

/// `(name, op, value)`.
type M = (&'static str, &'static str, &'static str);

enum Want {
    /// Alertmanager reads these matchers; so does firebell.
    Same(&'static [M]),
    /// Alertmanager refuses it too; firebell's message.
    Rejected(&'static str),
    /// A deliberate difference: Alertmanager reads `am`, firebell refuses it
    /// with `message` (`why` says why).
    Refused {
        am: &'static [M],
        why: &'static str,
        message: &'static str,
    },
}

use Want::{Refused, Rejected, Same};

/// `(where the case comes from, input, what firebell does)`.
const CASES: &[(&str, &str, Want)] = &[
    // matcher/parse: the UTF-8 parser's cases.
    ("parse: no braces", "", Same(&[])),
    ("parse: open and close braces", "{}", Same(&[])),
    ("parse: equals", "{foo=bar}", Same(&[("foo", "=", "bar")])),
    (
        "parse: trailing comma",
        "{foo=bar,}",
        Same(&[("foo", "=", "bar")]),
    ),
    (
        "parse: not equals",
        "{foo!=bar}",
        Same(&[("foo", "!=", "bar")]),
    ),
    (
        "parse: regex",
        "{foo=~[a-z]+}",
        Same(&[("foo", "=~", "[a-z]+")]),
    ),
    (
        "parse: not regex",
        "{foo!~[a-z]+}",
        Same(&[("foo", "!~", "[a-z]+")]),
    ),
    (
        "parse: emoji value",
        "{foo=🙂}",
        Same(&[("foo", "=", "🙂")]),
    ),
    (
        "parse: emoji sentence",
        "{foo=🙂bar}",
        Same(&[("foo", "=", "🙂bar")]),
    ),
    (
        "parse: no braces, equals",
        "foo=bar",
        Same(&[("foo", "=", "bar")]),
    ),
    (
        "parse: no braces, trailing comma",
        "foo=bar,",
        Same(&[("foo", "=", "bar")]),
    ),
    (
        "parse: no braces, not equals",
        "foo!=bar",
        Same(&[("foo", "!=", "bar")]),
    ),
    (
        "parse: no braces, regex",
        "foo=~[a-z]+",
        Same(&[("foo", "=~", "[a-z]+")]),
    ),
    (
        "parse: no braces, not regex",
        "foo!~[a-z]+",
        Same(&[("foo", "!~", "[a-z]+")]),
    ),
    (
        "parse: quoted name",
        r#"{"foo"="bar"}"#,
        Same(&[("foo", "=", "bar")]),
    ),
    (
        "parse: quoted name, trailing comma",
        r#"{"foo"="bar",}"#,
        Same(&[("foo", "=", "bar")]),
    ),
    (
        "parse: quoted, not equals",
        r#"{"foo"!="bar"}"#,
        Same(&[("foo", "!=", "bar")]),
    ),
    (
        "parse: quoted regex",
        r#"{"foo"=~"[a-z]+"}"#,
        Same(&[("foo", "=~", "[a-z]+")]),
    ),
    (
        "parse: quoted regex, escaped backslash",
        r#"{"foo"=~"\\d+"}"#,
        Same(&[("foo", "=~", r"\d+")]),
    ),
    (
        "parse: quoted not regex",
        r#"{"foo"!~"[a-z]+"}"#,
        Same(&[("foo", "!~", "[a-z]+")]),
    ),
    (
        "parse: quoted emoji",
        r#"{"foo"="🙂"}"#,
        Same(&[("foo", "=", "🙂")]),
    ),
    (
        "parse: emoji as \\x bytes",
        r#"{"foo"="\xf0\x9f\x99\x82"}"#,
        Same(&[("foo", "=", "🙂")]),
    ),
    (
        "parse: emoji as \\U code point",
        r#"{"foo"="\U0001f642"}"#,
        Same(&[("foo", "=", "🙂")]),
    ),
    (
        "parse: quoted emoji sentence",
        r#"{"foo"="🙂bar"}"#,
        Same(&[("foo", "=", "🙂bar")]),
    ),
    (
        "parse: quoted line feed",
        r#"{"foo"="bar\n"}"#,
        Same(&[("foo", "=", "bar\n")]),
    ),
    (
        "parse: quoted tab",
        r#"{"foo"="bar\t"}"#,
        Same(&[("foo", "=", "bar\t")]),
    ),
    (
        "parse: escaped quotes",
        r#"{"foo"="\"bar\""}"#,
        Same(&[("foo", "=", "\"bar\"")]),
    ),
    (
        "parse: escaped backslash",
        r#"{"foo"="bar\\"}"#,
        Same(&[("foo", "=", "bar\\")]),
    ),
    (
        "parse: quoted, no braces",
        r#""foo"="bar""#,
        Same(&[("foo", "=", "bar")]),
    ),
    (
        "parse: quoted, no braces, trailing comma",
        r#""foo"="bar","#,
        Same(&[("foo", "=", "bar")]),
    ),
    (
        "parse: two",
        "{foo=bar,bar!=baz}",
        Same(&[("foo", "=", "bar"), ("bar", "!=", "baz")]),
    ),
    (
        "parse: two quoted",
        r#"{foo="bar",bar!="baz"}"#,
        Same(&[("foo", "=", "bar"), ("bar", "!=", "baz")]),
    ),
    (
        "parse: two, no braces",
        "foo=bar,bar!=baz",
        Same(&[("foo", "=", "bar"), ("bar", "!=", "baz")]),
    ),
    (
        "parse: two quoted, no braces",
        r#"foo="bar",bar!="baz""#,
        Same(&[("foo", "=", "bar"), ("bar", "!=", "baz")]),
    ),
    (
        "parse: comma",
        ",",
        Rejected(r#"invalid matcher ",": expected a label name at character 1, found ",""#),
    ),
    (
        "parse: comma in braces",
        "{,}",
        Rejected(r#"invalid matcher "{,}": expected a label name at character 2, found ",""#),
    ),
    // The classic parser drops a lone `{` or `}`: no matchers (an entry
    // that holds none is an error where matchers are expected).
    ("parse: open brace", "{", Same(&[])),
    ("parse: close brace", "}", Same(&[])),
    (
        "parse: no open brace",
        "foo=bar}",
        Same(&[("foo", "=", "bar")]),
    ),
    (
        "parse: no close brace",
        "{foo=bar",
        Same(&[("foo", "=", "bar")]),
    ),
    (
        "parse: text between operator and quotes",
        r#"{foo=:"bar"}"#,
        Rejected(
            r#"invalid matcher "{foo=:\"bar\"}": unescaped double quote in the value ":\"bar\"" (write \" for a quote inside a double-quoted value)"#,
        ),
    ),
    // Read by the classic parser only: an unknown escape keeps its backslash.
    (
        "parse: unknown escape",
        r#"{foo="bar\w"}"#,
        Same(&[("foo", "=", r"bar\w")]),
    ),
    (
        "parse: unknown escape, quoted name",
        r#"{"foo"=~"\d+"}"#,
        Rejected(
            r#"invalid matcher "{\"foo\"=~\"\\d+\"}": the quoted text "\d+" at character 9 has the unknown escape \d (write \\ for a backslash)"#,
        ),
    ),
    (
        "parse: escape in an unquoted value",
        r"{foo=bar\n}",
        Same(&[("foo", "=", "bar\n")]),
    ),
    (
        "parse: bytes that are not UTF-8, quoted name",
        r#"{"foo"="\xf0\x9f"}"#,
        Rejected(
            r#"invalid matcher "{\"foo\"=\"\\xf0\\x9f\"}": the quoted text "\xf0\x9f" at character 8 makes bytes that are not UTF-8"#,
        ),
    ),
    (
        "parse: bytes that are not UTF-8",
        r#"foo="\xf0\x9f""#,
        Same(&[("foo", "=", r"\xf0\x9f")]),
    ),
    // pkg/labels: the classic parser's cases.
    ("labels: empty braces", "{}", Same(&[])),
    (
        "labels: single quote",
        "{foo='}",
        Same(&[("foo", "=", "'")]),
    ),
    ("labels: backquote", "{foo=`}", Same(&[("foo", "=", "`")])),
    (
        "labels: escaped quote, unquoted",
        r#"{foo=\"}"#,
        Same(&[("foo", "=", "\"")]),
    ),
    ("labels: equals", "{foo=bar}", Same(&[("foo", "=", "bar")])),
    (
        "labels: quoted",
        r#"{foo="bar"}"#,
        Same(&[("foo", "=", "bar")]),
    ),
    (
        "labels: regex",
        "{foo=~bar.*}",
        Same(&[("foo", "=~", "bar.*")]),
    ),
    (
        "labels: quoted regex",
        r#"{foo=~"bar.*"}"#,
        Same(&[("foo", "=~", "bar.*")]),
    ),
    (
        "labels: not equals",
        "{foo!=bar}",
        Same(&[("foo", "!=", "bar")]),
    ),
    (
        "labels: quoted not equals",
        r#"{foo!="bar"}"#,
        Same(&[("foo", "!=", "bar")]),
    ),
    (
        "labels: not regex",
        "{foo!~bar.*}",
        Same(&[("foo", "!~", "bar.*")]),
    ),
    (
        "labels: quoted not regex",
        r#"{foo!~"bar.*"}"#,
        Same(&[("foo", "!~", "bar.*")]),
    ),
    (
        "labels: two",
        r#"{foo="bar", baz!="quux"}"#,
        Same(&[("foo", "=", "bar"), ("baz", "!=", "quux")]),
    ),
    (
        "labels: two, regex",
        r#"{foo="bar", baz!~"quux.*"}"#,
        Same(&[("foo", "=", "bar"), ("baz", "!~", "quux.*")]),
    ),
    (
        "labels: three",
        r#"{foo="bar",baz!~".*quux", derp="wat"}"#,
        Same(&[
            ("foo", "=", "bar"),
            ("baz", "!~", ".*quux"),
            ("derp", "=", "wat"),
        ]),
    ),
    (
        "labels: three, not equals",
        r#"{foo="bar", baz!="quux", derp="wat"}"#,
        Same(&[
            ("foo", "=", "bar"),
            ("baz", "!=", "quux"),
            ("derp", "=", "wat"),
        ]),
    ),
    (
        "labels: three, regex",
        r#"{foo="bar", baz!~".*quux.*", derp="wat"}"#,
        Same(&[
            ("foo", "=", "bar"),
            ("baz", "!~", ".*quux.*"),
            ("derp", "=", "wat"),
        ]),
    ),
    (
        "labels: instance regex",
        r#"{foo="bar", instance=~"some-api.*"}"#,
        Same(&[("foo", "=", "bar"), ("instance", "=~", "some-api.*")]),
    ),
    (
        "labels: empty value",
        r#"{foo=""}"#,
        Same(&[("foo", "=", "")]),
    ),
    (
        "labels: comma in quotes",
        r#"{foo="bar,quux", job="job1"}"#,
        Same(&[("foo", "=", "bar,quux"), ("job", "=", "job1")]),
    ),
    (
        "labels: spaces, trailing comma",
        r#"{foo = "bar", dings != "bums", }"#,
        Same(&[("foo", "=", "bar"), ("dings", "!=", "bums")]),
    ),
    (
        "labels: no braces",
        "foo=bar,dings!=bums",
        Same(&[("foo", "=", "bar"), ("dings", "!=", "bums")]),
    ),
    (
        "labels: escaped quotes and a comma",
        r#"{quote="She said: \"Hi, ladies! That's gender-neutral…\""}"#,
        Same(&[(
            "quote",
            "=",
            "She said: \"Hi, ladies! That's gender-neutral…\"",
        )]),
    ),
    (
        "labels: status regex",
        r#"statuscode=~"5..""#,
        Same(&[("statuscode", "=~", "5..")]),
    ),
    (
        "labels: tildes",
        "tricky=~~~",
        Same(&[("tricky", "=~", "~~")]),
    ),
    (
        "labels: equals signs and escapes",
        r#"trickier==\\=\=\""#,
        Same(&[("trickier", "=", r#"=\=\=""#)]),
    ),
    (
        "labels: quote, comma, spaces",
        r#"contains_quote != "\"" , contains_comma !~ "foo,bar" , "#,
        Same(&[
            ("contains_quote", "!=", "\""),
            ("contains_comma", "!~", "foo,bar"),
        ]),
    ),
    (
        "labels: extra close brace",
        "{foo=bar}}",
        Same(&[("foo", "=", "bar}")]),
    ),
    (
        "labels: extra close braces and comma",
        "{foo=bar}},}",
        Same(&[("foo", "=", "bar}}")]),
    ),
    (
        "labels: empty values",
        "{foo=,bar=}}",
        Same(&[("foo", "=", ""), ("bar", "=", "}")]),
    ),
    (
        "labels: \\t unquoted",
        r"{foo=bar\t}",
        Same(&[("foo", "=", r"bar\t")]),
    ),
    (
        "labels: \\n unquoted",
        r"{foo=bar\n}",
        Same(&[("foo", "=", "bar\n")]),
    ),
    (
        "labels: trailing backslash",
        r"{foo=bar\}",
        Same(&[("foo", "=", "bar\\")]),
    ),
    (
        "labels: escaped backslash",
        r"{foo=bar\\}",
        Same(&[("foo", "=", "bar\\")]),
    ),
    (
        "labels: escaped quote at the end",
        r#"{foo=bar\"}"#,
        Same(&[("foo", "=", "bar\"")]),
    ),
    (
        "labels: nothing after the operator",
        "job=",
        Same(&[("job", "=", "")]),
    ),
    (
        "labels: unclosed quote",
        r#"job="value"#,
        Rejected(
            r#"invalid matcher "job=\"value": the double quote at character 5 is never closed"#,
        ),
    ),
    (
        "labels: quote at the end only",
        r#"job=value""#,
        Rejected(
            r#"invalid matcher "job=value\"": the double quote at character 10 is never closed"#,
        ),
    ),
    (
        "labels: extra quote",
        r#"trickier==\\=\=\"""#,
        Rejected(
            r#"invalid matcher "trickier==\\\\=\\=\\\"\"": unescaped double quote in the value "=\\\\=\\=\\\"\"" (write \" for a quote inside a double-quoted value)"#,
        ),
    ),
    (
        "labels: quote inside",
        r#"contains_unescaped_quote = foo"bar"#,
        Rejected(
            r#"invalid matcher "contains_unescaped_quote = foo\"bar": the double quote at character 31 is never closed"#,
        ),
    ),
    // Not a classic label name, but a UTF-8 one.
    (
        "labels: dashes in the name",
        r#"{invalid-name = "valid label"}"#,
        Same(&[("invalid-name", "=", "valid label")]),
    ),
    (
        "labels: bad regex",
        r#"{foo=~"invalid[regexp"}"#,
        Rejected(
            r#"invalid matcher "{foo=~\"invalid[regexp\"}": bad regular expression: unclosed character class"#,
        ),
    ),
    (
        "labels: doubly escaped 1",
        r#""{foo=\"bar"}"#,
        Rejected(
            r#"invalid matcher "\"{foo=\\\"bar\"}": expected an operator (=, !=, =~ or !~) at character 13, found "}""#,
        ),
    ),
    (
        "labels: doubly escaped 2",
        r#""foo=\"bar""#,
        Rejected(
            r#"invalid matcher "\"foo=\\\"bar\"": expected an operator (=, !=, =~ or !~) at the end"#,
        ),
    ),
    (
        "labels: doubly escaped 3",
        r#""foo=\"bar\"""#,
        Rejected(
            r#"invalid matcher "\"foo=\\\"bar\\\"\"": expected an operator (=, !=, =~ or !~) at the end"#,
        ),
    ),
    (
        "labels: doubly escaped 4",
        r#""foo=\"bar\""#,
        Rejected(
            r#"invalid matcher "\"foo=\\\"bar\\\"": the double quote at character 1 is never closed"#,
        ),
    ),
    (
        "labels: doubly escaped 5",
        r#""{foo=\"bar\"}""#,
        Rejected(
            r#"invalid matcher "\"{foo=\\\"bar\\\"}\"": expected an operator (=, !=, =~ or !~) at the end"#,
        ),
    ),
    (
        "labels: doubly escaped 6",
        r#""foo="bar"""#,
        Rejected(
            r#"invalid matcher "\"foo=\"bar\"\"": expected an operator (=, !=, =~ or !~) at character 7, found "bar""#,
        ),
    ),
    (
        "labels: two open braces",
        "{{foo=",
        Rejected(r#"invalid matcher "{{foo=": expected a label name at character 2, found "{""#),
    ),
    (
        "labels: open brace, no value",
        "{foo=",
        Same(&[("foo", "=", "")]),
    ),
    (
        "labels: close brace then text",
        "{foo=}b",
        Same(&[("foo", "=", "}b")]),
    ),
    // matcher/compliance: where the two parsers part.
    (
        "compliance: \\n alone",
        r"{foo=\n}",
        Same(&[("foo", "=", "\n")]),
    ),
    (
        "compliance: \\t alone",
        r"{foo=\t}",
        Same(&[("foo", "=", r"\t")]),
    ),
    (
        "compliance: dashes",
        r#"{name-with-dashes = "bar"}"#,
        Same(&[("name-with-dashes", "=", "bar")]),
    ),
    // The issue's cases.
    (
        "issue: escapes in an unquoted value",
        r"foo=!bar\n",
        Same(&[("foo", "=", "!bar\n")]),
    ),
    (
        "issue: escaped quotes, unquoted",
        r#"foo=\"bar\""#,
        Same(&[("foo", "=", "\"bar\"")]),
    ),
    (
        "issue: UTF-8 label name",
        "foo🙂=bar",
        Same(&[("foo🙂", "=", "bar")]),
    ),
    (
        "issue: UTF-8 label name, quoted value",
        r#"foo🙂="bar""#,
        Same(&[("foo🙂", "=", "bar")]),
    ),
    (
        "issue: quoted UTF-8 label name",
        r#""foo bar"!="baz""#,
        Same(&[("foo bar", "!=", "baz")]),
    ),
    (
        "issue: regex escapes kept",
        r#"host=~"web\.\d+""#,
        Same(&[("host", "=~", r"web\.\d+")]),
    ),
    // Where the two parsers read the same input differently.
    (
        "differ: \\t quoted",
        r#"foo="bar\t""#,
        Refused {
            am: &[("foo", "=", r"bar\t")],
            why: "the UTF-8 parser reads a tab",
            message: r#"invalid matcher "foo=\"bar\\t\"": Alertmanager's two parsers read it differently (classic: {foo="bar\\t"}; UTF-8: {foo="bar\t"}), so firebell refuses to guess: double-quote the value and escape only \\, \" and \n in it"#,
        },
    ),
    (
        "differ: \\U quoted",
        r#"{foo="\U0001f642"}"#,
        Refused {
            am: &[("foo", "=", r"\U0001f642")],
            why: "the UTF-8 parser reads 🙂",
            message: r#"invalid matcher "{foo=\"\\U0001f642\"}": Alertmanager's two parsers read it differently (classic: {foo="\\U0001f642"}; UTF-8: {foo="🙂"}), so firebell refuses to guess: double-quote the value and escape only \\, \" and \n in it"#,
        },
    ),
    (
        "differ: \\b in a regex",
        r#"alertname=~"\bDisk""#,
        Refused {
            am: &[("alertname", "=~", r"\bDisk")],
            why: "the UTF-8 parser reads a backspace character",
            message: r#"invalid matcher "alertname=~\"\\bDisk\"": Alertmanager's two parsers read it differently (classic: {alertname=~"\\bDisk"}; UTF-8: {alertname=~"\x08Disk"}), so firebell refuses to guess: double-quote the value and escape only \\, \" and \n in it"#,
        },
    ),
    (
        "differ: \\x quoted",
        r#"foo="\x41",bar=baz"#,
        Refused {
            am: &[("foo", "=", r"\x41"), ("bar", "=", "baz")],
            why: "the UTF-8 parser reads A",
            message: r#"invalid matcher "foo=\"\\x41\",bar=baz": Alertmanager's two parsers read it differently (classic: {foo="\\x41", bar="baz"}; UTF-8: {foo="A", bar="baz"}), so firebell refuses to guess: double-quote the value and escape only \\, \" and \n in it"#,
        },
    ),
    // firebell's own refusals.
    (
        "firebell: empty label name",
        r#"""="x""#,
        Refused {
            am: &[("", "=", "x")],
            why: "an empty label name is never meant",
            message: r#"invalid matcher "\"\"=\"x\"": the label name is empty"#,
        },
    ),
];

fn op(s: &str) -> MatchOp {
    match s {
        "=" => MatchOp::Eq,
        "!=" => MatchOp::Ne,
        "=~" => MatchOp::Re,
        "!~" => MatchOp::NotRe,
        other => panic!("bad op {other}"),
    }
}

fn triples(ms: &[Matcher]) -> Vec<(String, MatchOp, String)> {
    ms.iter()
        .map(|m| (m.name.clone(), m.op, m.value.clone()))
        .collect()
}

fn want(ms: &[M]) -> Vec<(String, MatchOp, String)> {
    ms.iter()
        .map(|(n, o, v)| (n.to_string(), op(o), v.to_string()))
        .collect()
}

#[test]
fn alertmanager_matcher_cases() {
    let mut failures = Vec::new();
    for (source, input, expected) in CASES {
        let got = Matcher::parse_list(input);
        let ok = match (expected, &got) {
            (Same(ms), Ok(list)) => triples(list) == want(ms),
            (Rejected(msg) | Refused { message: msg, .. }, Err(e)) => e.to_string() == *msg,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{source}: {input:?} -> {:?}",
                got.as_ref()
                    .map(|l| triples(l))
                    .map_err(ToString::to_string)
            ));
        }
        // What firebell reads, it writes back to the same matchers.
        if let Ok(list) = &got {
            for m in list {
                let again = Matcher::parse(&m.to_string())
                    .unwrap_or_else(|e| panic!("{source}: {m} does not read back: {e}"));
                assert_eq!(
                    triples(&[again]),
                    triples(std::slice::from_ref(m)),
                    "{source}"
                );
            }
        }
        if let Refused { am, why, .. } = expected {
            assert!(!am.is_empty() && !why.is_empty(), "{source}");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `matcher/parse`'s single-matcher cases: exactly one, braces allowed.
#[test]
fn exactly_one_matcher() {
    for input in [
        "{foo=bar}",
        "{foo=bar,}",
        "foo=bar",
        "foo=bar,",
        r#"{"foo"="bar"}"#,
        r#""foo"="bar","#,
    ] {
        let m = Matcher::parse(input).unwrap();
        assert_eq!(triples(&[m]), want(&[("foo", "=", "bar")]), "{input}");
    }
    let err = |s: &str| Matcher::parse(s).unwrap_err().to_string();
    assert_eq!(err(""), r#"invalid matcher "": it holds no matcher"#);
    assert_eq!(err("{}"), r#"invalid matcher "{}": it holds no matcher"#);
    assert_eq!(
        err("foo=bar,bar=baz"),
        r#"invalid matcher "foo=bar,bar=baz": expected one matcher, found 2"#
    );
}

/// `pkg/labels`' matching cases: equality is exact, regular expressions
/// are anchored, `.` does not match a line feed unless `(?s)`.
#[test]
fn matching() {
    for (o, value, label, matches) in [
        ("=", "bar", "bar", true),
        ("=", "bar", "foo-bar", false),
        ("!=", "bar", "bar", false),
        ("!=", "bar", "foo-bar", true),
        ("=~", "bar", "bar", true),
        ("=~", "bar", "foo-bar", false),
        ("=~", ".*bar", "foo-bar", true),
        ("!~", "bar", "bar", false),
        ("!~", "bar", "foo-bar", true),
        ("!~", ".*bar", "foo-bar", false),
        ("=~", "foo.bar", "foo-bar", true),
        ("=~", r"foo\.bar", "foo-bar", false),
        ("=~", r"foo\.bar", "foo.bar", true),
        ("=", "foo\nbar", "foo\nbar", true),
        ("=~", "foo.bar", "foo\nbar", false),
        ("=~", "(?s)foo.bar", "foo\nbar", true),
        ("=", "~!=\"", "~!=\"", true),
    ] {
        let m = Matcher::new("x", op(o), value).unwrap();
        assert_eq!(m.matches_value(label), matches, "{m} on {label:?}");
    }
}

/// `pkg/labels`' display cases, plus what each reads back as.
#[test]
fn display() {
    for (name, o, value, text) in [
        ("foo", "=", "bar", r#"foo="bar""#),
        ("foo", "!=", "bar", r#"foo!="bar""#),
        ("foo", "=~", "bar", r#"foo=~"bar""#),
        ("foo", "!~", "bar", r#"foo!~"bar""#),
        ("foo", "=", r"back\slash", r#"foo="back\\slash""#),
        ("foo", "=", r#"double"quote"#, r#"foo="double\"quote""#),
        ("foo", "=", "new\nline", r#"foo="new\nline""#),
        ("foo", "=", "tab\tstop", "foo=\"tab\tstop\""),
        ("foo", "=", "🙂", r#"foo="🙂""#),
        ("foo!", "!=", "bar", r#""foo!"!="bar""#),
        ("foo🙂", "=", "bar", r#"foo🙂="bar""#),
        ("foo bar", "=", "baz", r#""foo bar"="baz""#),
        ("foo bar", "=", "new\nline", r#""foo bar"="new\nline""#),
    ] {
        let m = Matcher::new(name, op(o), value).unwrap();
        assert_eq!(m.to_string(), text);
        let back = Matcher::parse(text).unwrap();
        assert_eq!(triples(&[back]), triples(&[m]), "{text}");
    }
}

/// `firebell routes --labels` reads matcher syntax too (every one an `=`).
#[test]
fn label_arguments_read_matcher_syntax() {
    let l = parse_label_arg(r#"{team="payments", summary="a, b\nc"}"#).unwrap();
    assert_eq!(l.get("summary").map(String::as_str), Some("a, b\nc"));
    let l = parse_label_arg("team=payments,severity=page").unwrap();
    assert_eq!(l.len(), 2);
    assert_eq!(
        parse_label_arg(r#"team="a\tb""#).unwrap_err(),
        r#"invalid labels "team=\"a\\tb\"": Alertmanager's two parsers read it differently (classic: {team="a\\tb"}; UTF-8: {team="a\tb"}), so firebell refuses to guess: double-quote the value and escape only \\, \" and \n in it (labels look like team=payments,severity=page)"#
    );
    assert_eq!(
        parse_label_arg("team=~pay.*").unwrap_err(),
        "label \"team\" is given with `=~`: labels take `=` (labels look like team=payments,severity=page)"
    );
    assert_eq!(
        parse_label_arg("foo🙂=bar").unwrap_err(),
        "invalid label name \"foo🙂\""
    );
}
