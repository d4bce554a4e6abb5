//! Label matchers, Alertmanager style: `team="payments"`, `service!="x"`,
//! `severity=~"page|critical"`, `env!~"dev.*"`.
//!
//! Regular expressions are fully anchored (`=~"dev.*"` matches `dev-1`, not
//! `mydev`). A label that is absent counts as the empty string, so
//! `service!="x"` matches alerts without a `service` label.
//!
//! Values may be double-quoted or bare (`team=payments`). Inside quotes `\"`
//! is a quote and `\\` a backslash; any other backslash is kept as written,
//! so `host=~"web\.\d+"` is the regular expression `web\.\d+`.

use std::fmt;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use firebell_core::model::Labels;

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

/// Whether `s` is a valid label name: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The longest regular expression a matcher takes, in bytes. Matching costs
/// up to its length times the label value's, every cycle, for every alert.
pub(crate) const MAX_REGEX_LEN: usize = 4096;

const SYNTAX_HINT: &str =
    "expected name=\"value\", name!=\"value\", name=~\"regex\" or name!~\"regex\"";

impl Matcher {
    /// Builds a matcher; fails on a bad label name or regular expression.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher, String> {
        if !is_label_name(name) {
            return Err(format!("invalid label name {name:?}"));
        }
        if matches!(op, MatchOp::Re | MatchOp::NotRe) && value.len() > MAX_REGEX_LEN {
            return Err(format!(
                "regular expression of {} bytes is too long (at most {MAX_REGEX_LEN})",
                value.len()
            ));
        }
        let regex = match op {
            MatchOp::Re | MatchOp::NotRe => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("bad regular expression: {}", regex_error(&e)))?,
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

    /// Parses `name<op>value`. The error is a complete message naming the input.
    pub fn parse(input: &str) -> Result<Matcher, String> {
        let s = input.trim();
        let bad = |detail: &str| format!("invalid matcher {input:?}: {detail}");
        let name_len = s
            .char_indices()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_'))
            .map(|(i, _)| i)
            .unwrap_or(s.len());
        let name = &s[..name_len];
        if name.is_empty() || !is_label_name(name) {
            return Err(bad(&format!(
                "expected a label name at the start ({SYNTAX_HINT})"
            )));
        }
        let rest = s[name_len..].trim_start();
        let (op, rest) = if let Some(r) = rest.strip_prefix("=~") {
            (MatchOp::Re, r)
        } else if let Some(r) = rest.strip_prefix("!~") {
            (MatchOp::NotRe, r)
        } else if let Some(r) = rest.strip_prefix("!=") {
            (MatchOp::Ne, r)
        } else if let Some(r) = rest.strip_prefix('=') {
            (MatchOp::Eq, r)
        } else {
            return Err(bad(&format!(
                "expected an operator after the label name ({SYNTAX_HINT})"
            )));
        };
        let rest = rest.trim();
        let value = if let Some(body) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = body.chars();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some('"') => out.push('"'),
                        Some('\\') => out.push('\\'),
                        Some(other) => {
                            out.push('\\');
                            out.push(other);
                        }
                        None => out.push('\\'),
                    },
                    c => out.push(c),
                }
            }
            if !closed {
                return Err(bad("the quoted value has no closing quote"));
            }
            if !chars.as_str().trim().is_empty() {
                return Err(bad("unexpected text after the quoted value"));
            }
            out
        } else {
            if rest.contains('"') {
                return Err(bad(&format!(
                    "unbalanced quote in the value ({SYNTAX_HINT})"
                )));
            }
            rest.to_string()
        };
        Matcher::new(name, op, &value).map_err(|e| bad(&e))
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

/// All matchers hold.
pub(crate) fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

/// `{a="b", c=~"d"}`, or `{}` for none.
pub(crate) fn format_matchers(matchers: &[Matcher]) -> String {
    let parts: Vec<String> = matchers.iter().map(Matcher::to_string).collect();
    format!("{{{}}}", parts.join(", "))
}

/// The last line of a regex error, without its `error: ` prefix.
fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text.lines().last().unwrap_or(&text).trim();
    last.strip_prefix("error: ").unwrap_or(last).to_string()
}

/// Writes `"value"` with `\` and `"` escaped.
pub(crate) fn quote(value: &str) -> String {
    let mut s = String::with_capacity(value.len() + 2);
    s.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.name, self.op.as_str(), quote(&self.value))
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
            Matcher::parse(&long).unwrap_err(),
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
        assert_eq!(
            Matcher::parse("team payments").unwrap_err(),
            "invalid matcher \"team payments\": expected an operator after the label name (expected name=\"value\", name!=\"value\", name=~\"regex\" or name!~\"regex\")"
        );
        assert_eq!(
            Matcher::parse("=x").unwrap_err(),
            "invalid matcher \"=x\": expected a label name at the start (expected name=\"value\", name!=\"value\", name=~\"regex\" or name!~\"regex\")"
        );
        assert_eq!(
            Matcher::parse("a=\"x").unwrap_err(),
            "invalid matcher \"a=\\\"x\": the quoted value has no closing quote"
        );
        assert_eq!(
            Matcher::parse("a=~\"(\"").unwrap_err(),
            "invalid matcher \"a=~\\\"(\\\"\": bad regular expression: unclosed group"
        );
    }
}
