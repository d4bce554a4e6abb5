//! Strict YAML decoding that keeps going: every problem becomes a
//! [`Diagnostic`](crate::diag::Diagnostic) with its file, line and column, and decoding continues so
//! one run reports every mistake in a file.
//!
//! ```text
//! let mut d = Decoder::new("rules.yaml", &mut diags);
//! let root = d.parse(text)?;
//! let mut f = d.fields(&root, "rules file")?;
//! let rules = f.seq(&mut d, "rules", true);
//! f.finish(&mut d, &["rules"]);
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{LoadError, LoaderOptions, Node, Span};

use crate::diag::Diagnostics;

/// The longest duration any field takes: 455 days, the longest CloudWatch
/// keeps any datapoint (hourly data). Nothing firebell evaluates can look
/// further back, and every duration below it fits an `i64` of seconds (or
/// milliseconds) with room to add, so time arithmetic cannot wrap.
pub const MAX_DURATION: Duration = Duration::from_secs(455 * 86_400);

/// The largest config file (or YAML document) accepted: 4 MiB. A complete
/// config of hundreds of rules is well under 1 MiB; the cap keeps a stray
/// huge file (or a device named `*.yaml`) from exhausting memory.
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;

/// The deepest YAML nesting accepted (block indentation levels, `- `
/// entries and flow brackets together). The deepest real config, a routing
/// tree, uses two levels per route; 100 leaves room for 40-odd nested routes
/// while the loader, the decoders and dropping the tree stay far from the
/// stack limit.
pub const MAX_NESTING: usize = 100;

/// A position in a file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub fn of(span: &Span) -> Pos {
        span.start()
            .map(|m| Pos {
                line: m.line(),
                column: m.column(),
            })
            .unwrap_or(Pos { line: 1, column: 1 })
    }
}

/// A value with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct At<T> {
    pub value: T,
    pub pos: Pos,
}

/// Decoding context: the file name and the diagnostics sink.
#[derive(Debug)]
pub struct Decoder<'d> {
    pub file: String,
    pub diags: &'d mut Diagnostics,
}

fn describe(node: &Node) -> String {
    match node {
        Node::Scalar(s) => format!("{:?}", s.as_str()),
        Node::Mapping(_) => "a mapping".to_string(),
        Node::Sequence(_) => "a list".to_string(),
    }
}

impl<'d> Decoder<'d> {
    pub fn new(file: impl Into<String>, diags: &'d mut Diagnostics) -> Self {
        Decoder {
            file: file.into(),
            diags,
        }
    }

    pub fn error_at(&mut self, pos: Pos, message: impl Into<String>) {
        self.diags
            .error(&self.file, pos.line, pos.column, message.into());
    }

    pub fn warn_at(&mut self, pos: Pos, code: &str, message: impl Into<String>) {
        self.diags
            .warning(&self.file, pos.line, pos.column, code, message.into());
    }

    pub fn error(&mut self, node: &Node, message: impl Into<String>) {
        self.error_at(Pos::of(node.span()), message);
    }

    /// Parses YAML text whose top level is a mapping. Duplicate keys are
    /// errors. A leading UTF-8 byte order mark is skipped. Documents over
    /// [`MAX_DOCUMENT_BYTES`] or nested deeper than [`MAX_NESTING`] are
    /// errors found before parsing.
    pub fn parse(&mut self, text: &str) -> Option<Node> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.len() > MAX_DOCUMENT_BYTES {
            self.error_at(
                Pos { line: 1, column: 1 },
                format!(
                    "file is too large ({} bytes, expected at most {MAX_DOCUMENT_BYTES})",
                    text.len()
                ),
            );
            return None;
        }
        if let Some(pos) = too_deep(text) {
            self.error_at(
                pos,
                format!("YAML is nested too deeply (more than {MAX_NESTING} levels)"),
            );
            return None;
        }
        if text.trim().is_empty() {
            self.error_at(Pos { line: 1, column: 1 }, "file is empty");
            return None;
        }
        let opts = LoaderOptions::default().error_on_duplicate_keys(true);
        match marked_yaml::parse_yaml_with_options(0, text, opts) {
            Ok(n) => Some(n),
            Err(e) => {
                let (pos, msg) = match &e {
                    LoadError::TopLevelMustBeMapping(m) => (
                        Pos {
                            line: m.line(),
                            column: m.column(),
                        },
                        "the top level must be a mapping".to_string(),
                    ),
                    LoadError::DuplicateKey(inner) => {
                        let first = Pos::of(inner.prev_key.span());
                        (
                            Pos::of(inner.key.span()),
                            format!(
                                "duplicate key {:?} (first given at line {})",
                                inner.key.as_str(),
                                first.line
                            ),
                        )
                    }
                    LoadError::ScanError(m, se) => (
                        Pos {
                            line: m.line(),
                            column: m.column(),
                        },
                        format!("invalid YAML: {se}"),
                    ),
                    LoadError::UnexpectedAnchor(m)
                    | LoadError::MappingKeyMustBeScalar(m)
                    | LoadError::UnexpectedTag(m)
                    | LoadError::TopLevelMustBeSequence(m) => {
                        let text = e.to_string();
                        let msg = text.rsplit(": ").next().unwrap_or(&text).to_string();
                        (
                            Pos {
                                line: m.line(),
                                column: m.column(),
                            },
                            format!("invalid YAML: {msg}"),
                        )
                    }
                };
                self.error_at(pos, msg);
                None
            }
        }
    }

    /// Opens a mapping node for field-by-field decoding.
    pub fn fields<'n>(&mut self, node: &'n Node, what: &str) -> Option<Fields<'n>> {
        match node {
            Node::Mapping(m) => Some(Fields {
                map: m,
                used: Vec::new(),
                unlisted: Vec::new(),
                what: what.to_string(),
            }),
            other => {
                self.error(
                    other,
                    format!("{what} must be a mapping, found {}", describe(other)),
                );
                None
            }
        }
    }

    /// A scalar as a string.
    pub fn str<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n str> {
        match node {
            Node::Scalar(s) => Some(s.as_str()),
            other => {
                self.error(
                    other,
                    format!("`{what}` must be a string, found {}", describe(other)),
                );
                None
            }
        }
    }

    pub fn number(&mut self, node: &Node, what: &str) -> Option<f64> {
        let s = self.str(node, what)?;
        let t = s.trim().trim_start_matches(['+', '-']).to_ascii_lowercase();
        if matches!(t.as_str(), ".inf" | ".nan" | "inf" | "nan" | "infinity") {
            self.error(
                node,
                format!("`{what}` must be a finite number, found {s:?}"),
            );
            return None;
        }
        match s.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Some(v),
            Ok(_) => {
                self.error(
                    node,
                    format!("`{what}` must be a finite number, found {s:?}"),
                );
                None
            }
            Err(_) => {
                self.error(node, format!("`{what}` must be a number, found {s:?}"));
                None
            }
        }
    }

    pub fn uint(&mut self, node: &Node, what: &str) -> Option<u64> {
        let s = self.str(node, what)?;
        match s.trim().parse::<u64>() {
            Ok(v) => Some(v),
            Err(_) => {
                self.error(
                    node,
                    format!("`{what}` must be a whole number, found {s:?}"),
                );
                None
            }
        }
    }

    pub fn bool(&mut self, node: &Node, what: &str) -> Option<bool> {
        let s = self.str(node, what)?;
        match s.trim() {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                self.error(node, format!("`{what}` must be true or false, found {s:?}"));
                None
            }
        }
    }

    /// A human duration such as `30s`, `5m`, `1h30m`, `2d`. `0` and `0s` are
    /// zero. At most [`MAX_DURATION`].
    pub fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let s = self.str(node, what)?;
        let too_long = || {
            format!(
                "duration {s:?} for `{what}` is too long (expected at most {}: CloudWatch keeps no older data)",
                format_duration(MAX_DURATION)
            )
        };
        match parse_duration(s) {
            Some(d) if d > MAX_DURATION => {
                let msg = too_long();
                self.error(node, msg);
                None
            }
            Some(d) => Some(d),
            None if matches!(
                humantime::parse_duration(s.trim()),
                Err(humantime::DurationError::NumberOverflow)
            ) =>
            {
                let msg = too_long();
                self.error(node, msg);
                None
            }
            None => {
                self.error(
                    node,
                    format!(
                        "invalid duration {s:?} for `{what}` (expected a duration such as 30s, 5m, 1h or 1h30m)"
                    ),
                );
                None
            }
        }
    }

    /// A mapping of strings to strings (labels, dimensions, annotations).
    pub fn string_map(&mut self, node: &Node, what: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Node::Mapping(m) = node else {
            self.error(
                node,
                format!("`{what}` must be a mapping, found {}", describe(node)),
            );
            return out;
        };
        for (k, v) in m.iter() {
            if let Some(s) = self.str(v, &format!("{what}.{}", k.as_str())) {
                out.insert(k.as_str().to_string(), s.to_string());
            }
        }
        out
    }

    /// A list node's items.
    pub fn seq<'n>(&mut self, node: &'n Node, what: &str) -> &'n [Node] {
        match node {
            Node::Sequence(s) => s.as_slice(),
            other => {
                self.error(
                    other,
                    format!("`{what}` must be a list, found {}", describe(other)),
                );
                &[]
            }
        }
    }
}

/// Parses `30s`, `5m`, `1h30m`, `2d`, `1w`, `0`. Rejects bare numbers other than 0.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() || !s.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    humantime::parse_duration(s).ok()
}

/// Where `text` first nests deeper than [`MAX_NESTING`], if it does: a
/// cheap line scan, run before the parser, that over-estimates the depth
/// (block indentation levels, each leading `- ` / `? ` entry, open flow
/// brackets outside quotes), so it never misses a deep document.
fn too_deep(text: &str) -> Option<Pos> {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    for (i, line) in text.lines().enumerate() {
        let bytes = line.as_bytes();
        let indent = bytes.iter().take_while(|&&b| b == b' ').count();
        let rest = &bytes[indent..];
        if flow == 0 {
            if rest.is_empty() || rest[0] == b'#' {
                continue;
            }
            while indents.last().is_some_and(|&top| top >= indent) {
                indents.pop();
            }
            indents.push(indent);
            // `- - - x`: every entry indicator opens a level.
            let mut j = 0;
            while j + 1 < rest.len() && matches!(rest[j], b'-' | b'?') && rest[j + 1] == b' ' {
                j += 2;
                while j < rest.len() && rest[j] == b' ' {
                    j += 1;
                }
                indents.push(indent + j);
            }
            if rest.len() == j + 1 && rest[j] == b'-' {
                indents.push(indent + j + 1);
            }
        }
        let mut quote: Option<u8> = None;
        let mut inline = 0usize;
        let mut prev = b' ';
        // The last non-blank byte before this one on the line: in block
        // context a bracket opens a flow collection only where a value
        // starts (line start, after `:`, `-` or `?`); elsewhere it is text.
        let mut last: Option<u8> = None;
        for (c, &b) in bytes.iter().enumerate() {
            match quote {
                Some(q) => {
                    if b == q && !(q == b'"' && prev == b'\\') {
                        quote = None;
                    }
                }
                None => match b {
                    b'#' if prev == b' ' => break,
                    b'"' | b'\'' if matches!(prev, b' ' | b'[' | b'{' | b',' | b':') => {
                        quote = Some(b)
                    }
                    b'[' | b'{' if flow > 0 || matches!(last, None | Some(b':' | b'-' | b'?')) => {
                        flow += 1;
                        if indents.len() + flow > MAX_NESTING {
                            return Some(Pos {
                                line: i + 1,
                                column: c + 1,
                            });
                        }
                    }
                    b']' | b'}' => flow = flow.saturating_sub(1),
                    // `- : : : x`: a mapping indicator with no key right
                    // after another indicator opens one more level each.
                    b':' if flow == 0
                        && matches!(last, None | Some(b':' | b'-' | b'?'))
                        && bytes.get(c + 1).is_none_or(|n| *n == b' ') =>
                    {
                        inline += 1;
                        if indents.len() + inline > MAX_NESTING {
                            return Some(Pos {
                                line: i + 1,
                                column: c + 1,
                            });
                        }
                    }
                    _ => {}
                },
            }
            prev = b;
            if b != b' ' {
                last = Some(b);
            }
        }
        if indents.len() + flow > MAX_NESTING {
            return Some(Pos {
                line: i + 1,
                column: indent + 1,
            });
        }
    }
    None
}

/// Formats a duration compactly: `90s` -> `1m30s`, `3600s` -> `1h`.
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, n) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= n {
            out.push_str(&format!("{}{unit}", secs / n));
            secs %= n;
        }
    }
    out
}

/// The fields of one YAML mapping being decoded. Call [`Fields::finish`] to
/// report fields nobody asked for.
#[derive(Debug)]
pub struct Fields<'n> {
    map: &'n MarkedMappingNode,
    used: Vec<String>,
    /// Fields handled but not offered in "expected one of" (e.g. a
    /// deprecated spelling answered with its own message).
    unlisted: Vec<String>,
    what: String,
}

impl<'n> Fields<'n> {
    /// Where the mapping starts: its first key (a mapping's own span starts
    /// at its first value in the loader).
    pub fn pos(&self) -> Pos {
        self.map
            .keys()
            .next()
            .map(|k| Pos::of(k.span()))
            .unwrap_or_else(|| Pos::of(self.map.span()))
    }

    /// The node of an optional field.
    pub fn opt(&mut self, key: &str) -> Option<&'n Node> {
        self.used.push(key.to_string());
        self.map.get_node(key)
    }

    /// The node of a required field; reports it missing.
    pub fn req(&mut self, d: &mut Decoder<'_>, key: &str) -> Option<&'n Node> {
        let n = self.opt(key);
        if n.is_none() {
            d.error_at(
                self.pos(),
                format!("{} is missing required field `{key}`", self.what),
            );
        }
        n
    }

    /// The key and value of a field the caller reports on itself, such as a
    /// retired spelling: not reported as unknown by [`Fields::finish`], and
    /// not listed among the expected fields.
    pub fn unlisted(&mut self, key: &str) -> Option<(&'n MarkedScalarNode, &'n Node)> {
        self.unlisted.push(key.to_string());
        let k = self.key_node(key)?;
        Some((k, self.map.get_node(key)?))
    }

    /// Whether `key` is present (does not mark it used).
    pub fn has(&self, key: &str) -> bool {
        self.map.get_node(key).is_some()
    }

    /// The key node of a field, for positions.
    pub fn key_node(&self, key: &str) -> Option<&'n MarkedScalarNode> {
        self.map.keys().find(|k| k.as_str() == key)
    }

    /// Reports every field that was not asked for, naming what is allowed.
    pub fn finish(self, d: &mut Decoder<'_>) {
        for k in self.map.keys() {
            if !self
                .used
                .iter()
                .chain(&self.unlisted)
                .any(|u| u == k.as_str())
            {
                if d.diags.is_full() {
                    // Counted only: skip the typo search and the message.
                    d.diags.omitted += 1;
                    continue;
                }
                let mut allowed: Vec<&str> = self.used.iter().map(String::as_str).collect();
                allowed.sort_unstable();
                allowed.dedup();
                let hint = closest(k.as_str(), &allowed)
                    .map(|c| format!("; did you mean `{c}`?"))
                    .unwrap_or_default();
                d.error_at(
                    Pos::of(k.span()),
                    format!(
                        "unknown field `{}` in {} (expected one of: {}){hint}",
                        k.as_str(),
                        self.what,
                        allowed.join(", ")
                    ),
                );
            }
        }
    }
}

/// The allowed name closest to `s` by edit distance, if close enough to be a typo.
pub fn closest<'a>(s: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    for a in allowed {
        let dist = levenshtein(s, a);
        if dist <= 2.max(a.len() / 4) && best.is_none_or(|(b, _)| dist < b) {
            best = Some((dist, a));
        }
    }
    best.map(|(_, a)| a)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration("-5m"), None);
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
    }

    #[test]
    fn unknown_fields_and_missing_fields_are_all_reported() {
        let mut diags = Diagnostics::new();
        let mut d = Decoder::new("f.yaml", &mut diags);
        let root = d.parse("name: x\ntreshold: 3\nextra: 1\n").unwrap();
        let mut f = d.fields(&root, "rule").unwrap();
        f.req(&mut d, "name");
        f.opt("threshold");
        f.req(&mut d, "expression");
        f.finish(&mut d);
        let got: Vec<String> = diags.list.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            got,
            vec![
                "f.yaml:1:1: error: rule is missing required field `expression`",
                "f.yaml:2:1: error: unknown field `treshold` in rule (expected one of: expression, name, threshold); did you mean `threshold`?",
                "f.yaml:3:1: error: unknown field `extra` in rule (expected one of: expression, name, threshold)",
            ]
        );
    }

    #[test]
    fn yaml_syntax_and_duplicate_keys_have_positions() {
        let mut diags = Diagnostics::new();
        let mut d = Decoder::new("f.yaml", &mut diags);
        assert!(d.parse("a: 1\na: 2\n").is_none());
        assert!(d.parse("a: [1, 2\n").is_none());
        assert_eq!(
            diags.list[0].to_string(),
            "f.yaml:2:1: error: duplicate key \"a\" (first given at line 1)"
        );
        assert_eq!(diags.list[1].line, 2);
    }
}
