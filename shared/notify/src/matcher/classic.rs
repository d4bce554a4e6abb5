//! Alertmanager's classic matcher syntax (its `pkg/labels` parser), read
//! exactly as that parser reads it.
//!
//! * One optional `{` at the start and one optional `}` at the end are
//!   dropped; the rest is cut at commas outside double quotes (a quote
//!   preceded by a backslash does not open or close a quoted part). The last
//!   piece is trimmed and left out when empty; the others are kept as they
//!   are, so `,` alone is an empty matcher.
//! * A piece is `name op value`, whitespace allowed around each part; the
//!   name is `[a-zA-Z_:][a-zA-Z0-9_:]*`, the operator the longest of `=~`,
//!   `=`, `!=`, `!~`, and the value everything after it (trailing
//!   whitespace dropped).
//! * A value may be wrapped in double quotes. Inside it `\"`, `\\` and `\n`
//!   are a quote, a backslash and a line feed; a backslash before anything
//!   else, or as the last character, is kept; a double quote anywhere but
//!   at the ends is an error. This holds for unquoted values too, so
//!   `foo=bar\n` ends in a line feed.

use super::{MatchOp, Reading};

/// Why the classic parser refuses an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ClassicError {
    /// A piece is not `name op value`.
    Format,
    /// The value has a double quote that is neither escaped nor at its ends.
    Quote(String),
}

/// The whitespace of the classic parser's regular expression (`\s` in Go's
/// RE2: tab, line feed, form feed, carriage return, space).
fn is_re_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0C' | '\r' | ' ')
}

/// The matchers of `input`, as the classic parser reads them.
pub(super) fn parse(input: &str) -> Result<Vec<Reading>, ClassicError> {
    let s = input.strip_prefix('{').unwrap_or(input);
    let s = s.strip_suffix('}').unwrap_or(s);
    let mut pieces = Vec::new();
    let mut piece = String::new();
    let mut inside_quotes = false;
    let mut escaped = false;
    for c in s.chars() {
        match c {
            ',' if !inside_quotes => {
                pieces.push(std::mem::take(&mut piece));
                continue;
            }
            // A comma inside quotes is text and leaves `escaped` as it was.
            ',' => {}
            '"' => {
                if escaped {
                    escaped = false;
                } else {
                    inside_quotes = !inside_quotes;
                }
            }
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
        piece.push(c);
    }
    let last = piece.trim();
    if !last.is_empty() {
        pieces.push(last.to_string());
    }
    pieces.iter().map(|p| parse_one(p)).collect()
}

fn parse_one(piece: &str) -> Result<Reading, ClassicError> {
    let bad = || ClassicError::Format;
    let s = piece.trim_start_matches(is_re_space);
    let mut name_len = 0;
    for (i, c) in s.char_indices() {
        let ok = c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit());
        if !ok {
            break;
        }
        name_len = i + c.len_utf8();
    }
    if name_len == 0 {
        return Err(bad());
    }
    let name = &s[..name_len];
    let rest = s[name_len..].trim_start_matches(is_re_space);
    let (op, rest) = if let Some(r) = rest.strip_prefix("=~") {
        (MatchOp::Re, r)
    } else if let Some(r) = rest.strip_prefix('=') {
        (MatchOp::Eq, r)
    } else if let Some(r) = rest.strip_prefix("!=") {
        (MatchOp::Ne, r)
    } else if let Some(r) = rest.strip_prefix("!~") {
        (MatchOp::NotRe, r)
    } else {
        return Err(bad());
    };
    let raw = rest.trim_matches(is_re_space);
    Ok(Reading {
        name: name.to_string(),
        op,
        value: unescape(raw)?,
    })
}

/// The value of `raw` (see the module documentation).
fn unescape(raw: &str) -> Result<String, ClassicError> {
    let bad = || ClassicError::Quote(raw.to_string());
    let (body, mut expect_closing) = match raw.strip_prefix('"') {
        Some(b) => (b, true),
        None => (raw, false),
    };
    let mut out = String::with_capacity(body.len());
    let mut escaped = false;
    let last = body.len().saturating_sub(1);
    for (i, c) in body.char_indices() {
        if escaped {
            escaped = false;
            match c {
                'n' => out.push('\n'),
                '"' | '\\' => out.push(c),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
            continue;
        }
        match c {
            '\\' if i < last => escaped = true,
            '\\' => out.push('\\'),
            '"' => {
                if !expect_closing || i < last {
                    return Err(bad());
                }
                expect_closing = false;
            }
            c => out.push(c),
        }
    }
    if expect_closing {
        return Err(bad());
    }
    Ok(out)
}
