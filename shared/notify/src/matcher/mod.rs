//! Label matchers, Alertmanager style: `team="payments"`, `service!="x"`,
//! `severity=~"page|critical"`, `env!~"dev.*"`.
//!
//! Regular expressions are fully anchored (`=~"dev.*"` matches `dev-1`, not
//! `mydev`). A label that is absent counts as the empty string, so
//! `service!="x"` matches alerts without a `service` label.
//!
//! # Reading matchers
//!
//! A matcher string may hold several matchers, as in Alertmanager:
//! `{foo="bar", baz!="quux"}`, `foo=bar,dings!=bums` (two each), a trailing
//! comma allowed. Alertmanager has two parsers for this syntax, the classic
//! one (`classic`, its `pkg/labels`) and the UTF-8 one (`utf8`, its
//! `matcher/parse`), and by default takes the classic reading when both
//! read an input, else whichever reads it. firebell reads every input with
//! both and takes:
//!
//! * their reading when they agree (`team="payments"`);
//! * the one reading when only one parser reads it: the UTF-8 parser for
//!   quoted or UTF-8 label names (`"foo bar"="x"`, `foo🙂=bar`), the classic
//!   parser for unquoted values with escapes or reserved characters
//!   (`foo=bar\n` ends in a line feed, `host=~"web\.\d+"` keeps its
//!   backslashes);
//! * **an error** when both read it but differently, e.g. `a="x\ty"` (a
//!   backslash and `t` for the classic parser, a tab for the UTF-8 one).
//!   Alertmanager would take the classic reading and log a warning;
//!   firebell refuses to guess. Writing the value double-quoted with only
//!   `\\`, `\"` and `\n` escapes is read the same by both.
//!
//! Also unlike Alertmanager, an empty label name (`""="x"`) is refused, and
//! so is a string that holds no matcher where one is expected (`{}`).
//!
//! [`Matcher`]'s `Display` writes what both parsers read back as the same
//! matcher: `name="value"` with `\`, `"` and a line feed escaped, and the
//! name quoted too when it holds a character the UTF-8 parser reserves.

mod classic;
mod utf8;

use std::fmt;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use firebell_core::model::Labels;

pub use utf8::SyntaxError;

/// How a matcher compares a label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `=~` (anchored regular expression)
    Re,
    /// `!~` (anchored regular expression)
    NotRe,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::Ne => "!=",
            MatchOp::Re => "=~",
            MatchOp::NotRe => "!~",
        }
    }
}

/// One label matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    /// The value as written (the regular expression source for `=~`/`!~`).
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

/// Whether `s` is a valid firebell label name: `[A-Za-z_][A-Za-z0-9_]*`
/// (the names alerts carry; a matcher may name any non-empty label).
pub(crate) fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The longest regular expression a matcher takes, in bytes. Matching costs
/// up to its length times the label value's, every cycle, for every alert.
pub(crate) const MAX_REGEX_LEN: usize = 4096;

/// A name, operator and value as a parser read them, before the matcher is
/// built.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reading {
    name: String,
    op: MatchOp,
    value: String,
}

/// What is wrong with a matcher string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherProblem {
    /// Not matcher syntax (as the UTF-8 parser reports it).
    #[error("{0}")]
    Syntax(SyntaxError),
    /// Neither parser reads it; the classic parser stumbles on an unescaped
    /// double quote in this value.
    #[error(
        "unescaped double quote in the value {0:?} (write \\\" for a quote inside a double-quoted value)"
    )]
    Quote(String),
    #[error("the label name is empty")]
    EmptyName,
    #[error("regular expression of {len} bytes is too long (at most {MAX_REGEX_LEN})")]
    RegexTooLong { len: usize },
    #[error("bad regular expression: {0}")]
    BadRegex(String),
    /// Alertmanager's two parsers read it, differently.
    #[error(
        "Alertmanager's two parsers read it differently (classic: {classic}; UTF-8: {utf8}), so firebell refuses to guess: double-quote the value and escape only \\\\, \\\" and \\n in it"
    )]
    Ambiguous { classic: String, utf8: String },
    /// No matcher where at least one is expected.
    #[error("it holds no matcher")]
    Empty,
    /// Several matchers where exactly one is expected.
    #[error("expected one matcher, found {0}")]
    Several(usize),
}

/// A matcher string that cannot be read exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid matcher {input:?}: {problem}")]
pub struct MatcherError {
    pub input: String,
    pub problem: MatcherProblem,
}

/// Why one parser did not produce matchers.
enum Failure<E> {
    /// Its syntax rejects the input.
    Syntax(E),
    /// It read the input, but a matcher cannot be built from it.
    Build(MatcherProblem),
}

fn build_all<E>(readings: Vec<Reading>) -> Result<Vec<Matcher>, Failure<E>> {
    readings
        .into_iter()
        .map(|r| Matcher::new(&r.name, r.op, &r.value).map_err(Failure::Build))
        .collect()
}

impl Matcher {
    /// Builds a matcher; fails on an empty label name or a bad regular
    /// expression.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher, MatcherProblem> {
        if name.is_empty() {
            return Err(MatcherProblem::EmptyName);
        }
        if matches!(op, MatchOp::Re | MatchOp::NotRe) && value.len() > MAX_REGEX_LEN {
            return Err(MatcherProblem::RegexTooLong { len: value.len() });
        }
        let regex = match op {
            MatchOp::Re | MatchOp::NotRe => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| MatcherProblem::BadRegex(regex_error(&e)))?,
            ),
            MatchOp::Eq | MatchOp::Ne => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    /// Every matcher of `input` (none for `""` or `{}`), read as the module
    /// documentation says: Alertmanager's reading, or an error.
    pub fn parse_list(input: &str) -> Result<Vec<Matcher>, MatcherError> {
        let fail = |problem| MatcherError {
            input: input.to_string(),
            problem,
        };
        let utf8 = utf8::parse(input)
            .map_err(Failure::Syntax)
            .and_then(build_all);
        let classic = classic::parse(input)
            .map_err(Failure::Syntax)
            .and_then(build_all);
        match (utf8, classic) {
            (Ok(u), Ok(c)) if u == c => Ok(u),
            (Ok(u), Ok(c)) => Err(fail(MatcherProblem::Ambiguous {
                classic: visible(&c),
                utf8: visible(&u),
            })),
            (Ok(u), Err(_)) => Ok(u),
            (Err(_), Ok(c)) => Ok(c),
            (Err(Failure::Build(p)), _) | (_, Err(Failure::Build(p))) => Err(fail(p)),
            // An unclosed quote is the clearer story; else the classic
            // parser's unescaped quote; else where the UTF-8 parser stopped.
            (Err(Failure::Syntax(u)), Err(Failure::Syntax(c))) => Err(fail(match c {
                classic::ClassicError::Quote(v) if !matches!(u, SyntaxError::Unclosed { .. }) => {
                    MatcherProblem::Quote(v)
                }
                _ => MatcherProblem::Syntax(u),
            })),
        }
    }

    /// Exactly one matcher (`team="payments"`, also `{team="payments"}`).
    pub fn parse(input: &str) -> Result<Matcher, MatcherError> {
        let mut list = Matcher::parse_list(input)?;
        match list.len() {
            1 => Ok(list.remove(0)),
            n => Err(MatcherError {
                input: input.to_string(),
                problem: if n == 0 {
                    MatcherProblem::Empty
                } else {
                    MatcherProblem::Several(n)
                },
            }),
        }
    }

    /// Whether the label set satisfies the matcher (absent labels are "").
    pub fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.name).map(String::as_str).unwrap_or("");
        self.matches_value(v)
    }

    pub fn matches_value(&self, v: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Eq, _) => v == self.value,
            (MatchOp::Ne, _) => v != self.value,
            (MatchOp::Re, Some(r)) => r.is_match(v),
            (MatchOp::NotRe, Some(r)) => !r.is_match(v),
            (MatchOp::Re | MatchOp::NotRe, None) => false,
        }
    }

    /// Whether the matcher matches an absent label.
    pub fn matches_empty(&self) -> bool {
        self.matches_value("")
    }
}

/// The matchers of one entry of a matcher list (a `matchers` item, a
/// silence's `--matcher`): at least one.
pub(crate) fn parse_entry(input: &str) -> Result<Vec<Matcher>, MatcherError> {
    let list = Matcher::parse_list(input)?;
    if list.is_empty() {
        return Err(MatcherError {
            input: input.to_string(),
            problem: MatcherProblem::Empty,
        });
    }
    Ok(list)
}

/// All matchers hold.
pub(crate) fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

/// `{a="b", c=~"d"}`, or `{}` for none.
pub(crate) fn format_matchers(matchers: &[Matcher]) -> String {
    let parts: Vec<String> = matchers.iter().map(Matcher::to_string).collect();
    format!("{{{}}}", parts.join(", "))
}

/// `{a="b\tc"}`: the matchers with Go escapes for control characters, to
/// show readings side by side.
fn visible(matchers: &[Matcher]) -> String {
    let parts: Vec<String> = matchers
        .iter()
        .map(|m| {
            let name = if m.name.chars().any(utf8::is_reserved) {
                go_quote(&m.name)
            } else {
                m.name.clone()
            };
            format!("{name}{}{}", m.op.as_str(), go_quote(&m.value))
        })
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// The last line of a regex error, without its `error: ` prefix.
fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text.lines().last().unwrap_or(&text).trim();
    last.strip_prefix("error: ").unwrap_or(last).to_string()
}

/// Writes `"value"` with `\`, `"` and a line feed escaped (`\\`, `\"`,
/// `\n`), which both of Alertmanager's parsers read back as `value`.
pub(crate) fn quote(value: &str) -> String {
    let mut s = String::with_capacity(value.len() + 2);
    s.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                s.push('\\');
                s.push(c);
            }
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Writes `"text"` as a Go string literal for the UTF-8 parser: `\`, `"`
/// and ASCII control characters escaped (other characters as themselves,
/// which Go's reader takes as written).
fn go_quote(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                s.push('\\');
                s.push(c);
            }
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            c if c.is_ascii_control() => s.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

impl fmt::Display for Matcher {
    /// `name="value"`; `"name"="value"` (both as Go string literals) when
    /// the name holds a character only a quoted name can hold, as
    /// Alertmanager writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.chars().any(utf8::is_reserved) {
            write!(
                f,
                "{}{}{}",
                go_quote(&self.name),
                self.op.as_str(),
                go_quote(&self.value)
            )
        } else {
            write!(f, "{}{}{}", self.name, self.op.as_str(), quote(&self.value))
        }
    }
}

impl Serialize for Matcher {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Matcher::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Fuzz finding (matcher target, seed 7, exec 321432): a 28 KB regex
    /// matched against a 28 KB value took 19 s.
    #[test]
    fn rejects_a_regex_longer_than_the_cap() {
        let long = format!("alertname=~\".+{}\"", "n".repeat(MAX_REGEX_LEN));
        assert_eq!(
            Matcher::parse(&long).unwrap_err().to_string(),
            format!(
                "invalid matcher {long:?}: regular expression of 4098 bytes is too long (at most 4096)"
            )
        );
        let at_cap = format!("alertname=~\"{}\"", "n".repeat(MAX_REGEX_LEN));
        assert!(Matcher::parse(&at_cap).is_ok());
        assert!(
            Matcher::parse(&format!("alertname=\"{}\"", "n".repeat(2 * MAX_REGEX_LEN))).is_ok()
        );
    }

    #[test]
    fn parses_all_operators() {
        let l = labels(&[("team", "payments"), ("severity", "page"), ("env", "prod")]);
        for (src, want) in [
            ("team=\"payments\"", true),
            ("team = payments", true),
            ("team!=\"payments\"", false),
            ("severity=~\"page|critical\"", true),
            ("severity=~\"pag\"", false),
            ("env!~\"dev.*\"", true),
            ("service!=\"x\"", true),
            ("service=\"\"", true),
            ("service=~\".+\"", false),
        ] {
            let m = Matcher::parse(src).unwrap();
            assert_eq!(m.matches(&l), want, "{src}");
        }
    }

    #[test]
    fn round_trips_through_display() {
        for src in [
            r#"a="x\"y""#,
            r#"host=~"web\.\d+""#,
            r#"a!="b\\c""#,
            r#"a!="""#,
        ] {
            let m = Matcher::parse(src).unwrap();
            let again = Matcher::parse(&m.to_string()).unwrap();
            assert_eq!(m, again, "{src} -> {m}");
        }
        let m = Matcher::parse(r#"host=~"web\.\d+""#).unwrap();
        assert_eq!(m.value, r"web\.\d+");
        assert!(m.matches_value("web.12"));
        assert!(!m.matches_value("webx12"));
    }

    #[test]
    fn syntax_errors() {
        let err = |s: &str| Matcher::parse(s).unwrap_err().to_string();
        assert_eq!(
            err("team payments"),
            r#"invalid matcher "team payments": expected an operator (=, !=, =~ or !~) at character 6, found "payments""#
        );
        assert_eq!(
            err("=x"),
            r#"invalid matcher "=x": expected a label name at character 1, found "=""#
        );
        assert_eq!(
            err("a=\"x"),
            r#"invalid matcher "a=\"x": the double quote at character 3 is never closed"#
        );
        assert_eq!(
            err("a=~\"(\""),
            r#"invalid matcher "a=~\"(\"": bad regular expression: unclosed group"#
        );
        assert_eq!(err(""), r#"invalid matcher "": it holds no matcher"#);
        assert_eq!(
            err("a=b,c=d"),
            r#"invalid matcher "a=b,c=d": expected one matcher, found 2"#
        );
    }

    #[test]
    fn display_reads_back_as_the_same_matcher() {
        for (name, value) in [
            ("a", "plain"),
            ("a", "new\nline"),
            ("a", "tab\tstop"),
            ("a", "back\\slash \\n \\t \\x41"),
            ("a", "quote \" inside"),
            ("a", "ctrl \u{1} \u{7f} cr\r"),
            ("a", ""),
            ("a", "🙂 {a=b}, c"),
            ("foo🙂", "x"),
            ("foo bar", "new\nline\ttab \\ \" \u{1}"),
            ("foo!", "x"),
            ("1a", "x"),
            ("a-b", "x"),
            ("a\u{1}b", "x"),
        ] {
            for op in [MatchOp::Eq, MatchOp::Ne, MatchOp::Re, MatchOp::NotRe] {
                let Ok(m) = Matcher::new(name, op, value) else {
                    continue;
                };
                let text = m.to_string();
                let back = Matcher::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
                assert_eq!(
                    (&back.name, back.op, &back.value),
                    (&m.name, m.op, &m.value),
                    "{text}"
                );
            }
        }
        let m = Matcher::new("a", MatchOp::Eq, "x\ny").unwrap();
        assert_eq!(m.to_string(), r#"a="x\ny""#);
        let m = Matcher::new("foo bar", MatchOp::Eq, "x\ty").unwrap();
        assert_eq!(m.to_string(), r#""foo bar"="x\ty""#);
    }
}
