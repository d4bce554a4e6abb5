//! Alertmanager's UTF-8 matcher syntax (its `matcher/parse` parser), read
//! exactly as that parser reads it.
//!
//! * Matchers are separated by commas, optionally wrapped in `{` `}`; a
//!   trailing comma is allowed; whitespace between tokens is ignored.
//! * A name or a value is either unquoted — a run of characters other than
//!   whitespace and `{ } ! = ~ , \ " ' ` `, so `foo🙂` and `foo-bar` are
//!   names — or double-quoted with Go's escapes (`\n`, `\t`, `\"`, `\\`,
//!   `\x41`, `\101`, `\u00e9`, `\U0001f642`, ...); any other escape, a raw
//!   line feed inside quotes, or bytes that are not UTF-8 are errors.
//! * An unquoted value cannot be empty and cannot hold escapes.

use super::{MatchOp, Reading};

/// Why the UTF-8 parser refuses an input. Positions count characters from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyntaxError {
    /// A character no token starts with (`~`, `\`, `'`, `` ` ``).
    Invalid { at: usize, found: char },
    /// `!` not followed by `=` or `~`.
    Bang { at: usize },
    /// A double quote without its closing quote.
    Unclosed { at: usize },
    /// A quoted text that is not a valid Go string literal.
    Quoted {
        at: usize,
        text: String,
        reason: String,
    },
    /// A token where another was expected.
    Unexpected {
        at: usize,
        found: String,
        expected: &'static str,
    },
    /// The input ended where more was expected.
    End { expected: &'static str },
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyntaxError::Invalid { at, found } => write!(
                f,
                "unexpected {found:?} at character {at} (a value holding it must be double-quoted)"
            ),
            SyntaxError::Bang { at } => write!(
                f,
                "`!` at character {at} must be followed by `=` or `~` (operators are =, !=, =~ and !~)"
            ),
            SyntaxError::Unclosed { at } => {
                write!(f, "the double quote at character {at} is never closed")
            }
            SyntaxError::Quoted { at, text, reason } => {
                write!(f, "the quoted text {text} at character {at} {reason}")
            }
            SyntaxError::Unexpected {
                at,
                found,
                expected,
            } => write!(f, "expected {expected} at character {at}, found {found}"),
            SyntaxError::End { expected } => write!(f, "expected {expected} at the end"),
        }
    }
}

const NAME: &str = "a label name";
const OPERATOR: &str = "an operator (=, !=, =~ or !~)";
const VALUE: &str = "a value";
const COMMA_OR_CLOSE: &str = "`,` or `}`";
const CLOSE: &str = "`}` (to close the `{`)";
const NOTHING: &str = "nothing more";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Open,
    Close,
    Comma,
    Op(MatchOp),
    Quoted,
    Unquoted,
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    text: String,
    /// Character position (from 1).
    at: usize,
}

impl Token {
    fn describe(&self) -> String {
        format!("{:?}", self.text)
    }
}

pub(super) fn is_reserved(c: char) -> bool {
    c.is_whitespace() || "{}!=~,\\\"'`".contains(c)
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    input: &'a str,
    /// Characters consumed so far.
    count: usize,
    peeked: Option<Result<Option<Token>, SyntaxError>>,
}

impl<'a> Lexer<'a> {
    fn new(input: &'a str) -> Self {
        Lexer {
            chars: input.char_indices().peekable(),
            input,
            count: 0,
            peeked: None,
        }
    }

    fn bump(&mut self) -> Option<(usize, char)> {
        let next = self.chars.next();
        if next.is_some() {
            self.count += 1;
        }
        next
    }

    fn offset(&mut self) -> usize {
        self.chars.peek().map_or(self.input.len(), |&(i, _)| i)
    }

    fn scan(&mut self) -> Result<Option<Token>, SyntaxError> {
        while let Some(&(start, c)) = self.chars.peek() {
            let at = self.count + 1;
            let one = |kind| Token {
                kind,
                text: c.to_string(),
                at,
            };
            match c {
                '{' | '}' | ',' => {
                    self.bump();
                    let kind = match c {
                        '{' => Kind::Open,
                        '}' => Kind::Close,
                        _ => Kind::Comma,
                    };
                    return Ok(Some(one(kind)));
                }
                '=' | '!' => {
                    self.bump();
                    let tilde = self.chars.peek().map(|&(_, n)| n);
                    let (op, text) = match (c, tilde) {
                        ('=', Some('~')) => (MatchOp::Re, "=~"),
                        ('=', _) => (MatchOp::Eq, "="),
                        ('!', Some('=')) => (MatchOp::Ne, "!="),
                        ('!', Some('~')) => (MatchOp::NotRe, "!~"),
                        _ => return Err(SyntaxError::Bang { at }),
                    };
                    if text.len() == 2 {
                        self.bump();
                    }
                    return Ok(Some(Token {
                        kind: Kind::Op(op),
                        text: text.to_string(),
                        at,
                    }));
                }
                '"' => {
                    self.bump();
                    let mut escaped = false;
                    let mut closed = false;
                    while let Some((_, n)) = self.bump() {
                        if escaped {
                            escaped = false;
                        } else if n == '\\' {
                            escaped = true;
                        } else if n == '"' {
                            closed = true;
                            break;
                        }
                    }
                    if !closed {
                        return Err(SyntaxError::Unclosed { at });
                    }
                    let end = self.offset();
                    return Ok(Some(Token {
                        kind: Kind::Quoted,
                        text: self.input[start..end].to_string(),
                        at,
                    }));
                }
                c if c.is_whitespace() => {
                    self.bump();
                }
                c if !is_reserved(c) => {
                    while self.chars.peek().is_some_and(|&(_, n)| !is_reserved(n)) {
                        self.bump();
                    }
                    let end = self.offset();
                    return Ok(Some(Token {
                        kind: Kind::Unquoted,
                        text: self.input[start..end].to_string(),
                        at,
                    }));
                }
                found => return Err(SyntaxError::Invalid { at, found }),
            }
        }
        Ok(None)
    }

    fn peek(&mut self) -> Result<Option<Token>, SyntaxError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.scan());
        }
        self.peeked.clone().unwrap_or(Ok(None))
    }

    fn next(&mut self) -> Result<Option<Token>, SyntaxError> {
        match self.peeked.take() {
            Some(t) => t,
            None => self.scan(),
        }
    }
}

/// The next token, which must be one of `kinds` (described as `expected`).
fn expect(
    l: &mut Lexer<'_>,
    ok: impl Fn(&Kind) -> bool,
    expected: &'static str,
) -> Result<Token, SyntaxError> {
    match l.next()? {
        Some(t) if ok(&t.kind) => Ok(t),
        Some(t) => Err(SyntaxError::Unexpected {
            at: t.at,
            found: t.describe(),
            expected,
        }),
        None => Err(SyntaxError::End { expected }),
    }
}

fn is_text(k: &Kind) -> bool {
    matches!(k, Kind::Quoted | Kind::Unquoted)
}

/// The matchers of `input`, as the UTF-8 parser reads them.
pub(crate) fn parse(input: &str) -> Result<Vec<Reading>, SyntaxError> {
    let mut l = Lexer::new(input);
    let mut out = Vec::new();
    let open = match l.peek()? {
        None => return Ok(out),
        Some(t) if t.kind == Kind::Open => {
            l.next()?;
            true
        }
        Some(_) => false,
    };
    loop {
        // Here: at the start, or after a comma.
        match l.peek()? {
            None => break,
            Some(t) if t.kind == Kind::Close => break,
            Some(t) if is_text(&t.kind) => {}
            Some(t) => {
                return Err(SyntaxError::Unexpected {
                    at: t.at,
                    found: t.describe(),
                    expected: NAME,
                });
            }
        }
        let name = expect(&mut l, is_text, NAME)?;
        let op = expect(&mut l, |k| matches!(k, Kind::Op(_)), OPERATOR)?;
        let value = expect(&mut l, is_text, VALUE)?;
        let Kind::Op(op) = op.kind else {
            return Err(SyntaxError::End { expected: OPERATOR });
        };
        out.push(Reading {
            name: unquote(&name)?,
            op,
            value: unquote(&value)?,
        });
        match l.peek()? {
            None => break,
            Some(t) if t.kind == Kind::Close => break,
            Some(t) if t.kind == Kind::Comma => {
                l.next()?;
            }
            Some(t) => {
                return Err(SyntaxError::Unexpected {
                    at: t.at,
                    found: t.describe(),
                    expected: COMMA_OR_CLOSE,
                });
            }
        }
    }
    // At the end, or at a `}`.
    match (open, l.next()?) {
        (true, Some(t)) if t.kind == Kind::Close => {}
        (true, Some(t)) => {
            return Err(SyntaxError::Unexpected {
                at: t.at,
                found: t.describe(),
                expected: CLOSE,
            });
        }
        (true, None) => return Err(SyntaxError::End { expected: CLOSE }),
        (false, Some(t)) => {
            return Err(SyntaxError::Unexpected {
                at: t.at,
                found: t.describe(),
                expected: "no `}` (there is no `{` to close)",
            });
        }
        (false, None) => {}
    }
    match l.next()? {
        None => Ok(out),
        Some(t) => Err(SyntaxError::Unexpected {
            at: t.at,
            found: t.describe(),
            expected: NOTHING,
        }),
    }
}

/// The text of a name or value token: unquoted as written, quoted read as a
/// Go string literal.
fn unquote(t: &Token) -> Result<String, SyntaxError> {
    if t.kind != Kind::Quoted {
        return Ok(t.text.clone());
    }
    let bad = |reason: &str| SyntaxError::Quoted {
        at: t.at,
        text: t.text.clone(),
        reason: reason.to_string(),
    };
    let inner = t
        .text
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or_else(|| bad("is not closed"))?;
    if inner.contains('\n') {
        return Err(bad("holds a line feed (write it as \\n)"));
    }
    let mut out: Vec<u8> = Vec::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let Some(e) = chars.next() else {
            return Err(bad("ends in a lone backslash"));
        };
        let simple = match e {
            'a' => Some(0x07),
            'b' => Some(0x08),
            'f' => Some(0x0C),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(0x0B),
            '\\' => Some(b'\\'),
            '"' => Some(b'"'),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            continue;
        }
        let mut digits = |n: usize, radix: u32| -> Option<u32> {
            let mut v: u32 = 0;
            for _ in 0..n {
                let d = chars.next()?.to_digit(radix)?;
                v = v.checked_mul(radix)?.checked_add(d)?;
            }
            Some(v)
        };
        match e {
            '0'..='7' => {
                let rest = digits(2, 8).ok_or_else(|| bad("has a bad octal escape"))?;
                let v = (e as u32 - '0' as u32) * 64 + rest;
                let b = u8::try_from(v).map_err(|_| bad("has an octal escape above \\377"))?;
                out.push(b);
            }
            'x' => {
                let v = digits(2, 16).ok_or_else(|| bad("has a bad \\x escape"))?;
                out.push(u8::try_from(v).map_err(|_| bad("has a bad \\x escape"))?);
            }
            'u' | 'U' => {
                let n = if e == 'u' { 4 } else { 8 };
                let c = digits(n, 16)
                    .and_then(char::from_u32)
                    .ok_or_else(|| bad("has a bad Unicode escape"))?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            other => {
                return Err(bad(&format!(
                    "has the unknown escape \\{other} (write \\\\ for a backslash)"
                )));
            }
        }
    }
    String::from_utf8(out).map_err(|_| bad("makes bytes that are not UTF-8"))
}
