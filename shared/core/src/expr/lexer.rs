//! Tokens of the expression language.

use super::ExprError;
use super::ast::BinOp;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Tok {
    Num(f64),
    /// An identifier; its text is `src[start..end]`.
    Ident,
    LParen,
    RParen,
    Comma,
    /// An infix operator (`-` is also unary minus).
    Op(BinOp),
    Eof,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Splits `src` into tokens; the last is always [`Tok::Eof`] at `src.len()`.
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, ExprError> {
    let bytes = src.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while let Some(c) = src[i..].chars().next() {
        let start = i;
        let next = bytes.get(i + 1).copied();
        let (tok, len) = match c {
            c if c.is_whitespace() => {
                i += c.len_utf8();
                continue;
            }
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            ',' => (Tok::Comma, 1),
            '+' => (Tok::Op(BinOp::Add), 1),
            '-' => (Tok::Op(BinOp::Sub), 1),
            '*' => (Tok::Op(BinOp::Mul), 1),
            '/' => (Tok::Op(BinOp::Div), 1),
            '>' if next == Some(b'=') => (Tok::Op(BinOp::Ge), 2),
            '>' => (Tok::Op(BinOp::Gt), 1),
            '<' if next == Some(b'=') => (Tok::Op(BinOp::Le), 2),
            '<' => (Tok::Op(BinOp::Lt), 1),
            '=' if next == Some(b'=') => (Tok::Op(BinOp::Eq), 2),
            '!' if next == Some(b'=') => (Tok::Op(BinOp::Ne), 2),
            '&' if next == Some(b'&') => (Tok::Op(BinOp::And), 2),
            '|' if next == Some(b'|') => (Tok::Op(BinOp::Or), 2),
            '=' => return Err(bad_char(start, c, " (use '==' to compare)")),
            '!' => return Err(bad_char(start, c, " (use '!=' to compare)")),
            '&' => return Err(bad_char(start, c, " (use '&&' or AND)")),
            '|' => return Err(bad_char(start, c, " (use '||' or OR)")),
            c if c.is_ascii_digit() || (c == '.' && next.is_some_and(|b| b.is_ascii_digit())) => {
                let len = number_len(&src[i..]);
                let text = &src[i..i + len];
                let v: f64 = text.parse().map_err(|_| ExprError {
                    offset: start,
                    message: format!("invalid number '{text}'"),
                })?;
                if !v.is_finite() {
                    return Err(ExprError {
                        offset: start,
                        message: format!("number '{text}' is out of range"),
                    });
                }
                (Tok::Num(v), len)
            }
            c if is_ident_start(c) => {
                let len = src[i..]
                    .find(|c: char| !is_ident_char(c))
                    .unwrap_or(src.len() - i);
                let tok = match &src[i..i + len] {
                    "AND" => Tok::Op(BinOp::And),
                    "OR" => Tok::Op(BinOp::Or),
                    _ => Tok::Ident,
                };
                (tok, len)
            }
            c => return Err(bad_char(start, c, "")),
        };
        i += len;
        toks.push(Token { tok, start, end: i });
    }
    toks.push(Token {
        tok: Tok::Eof,
        start: src.len(),
        end: src.len(),
    });
    Ok(toks)
}

fn bad_char(offset: usize, c: char, hint: &str) -> ExprError {
    ExprError {
        offset,
        message: format!("unexpected character '{c}'{hint}"),
    }
}

/// Length of the number-like word at the start of `s`: digits, letters, `_`
/// and `.`, plus a sign right after an exponent marker. Anything beyond a
/// valid float literal makes the whole word an invalid number (`2x`, `1.2.3`),
/// which reads better than an error on its tail.
fn number_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut n = 0;
    while n < b.len() {
        let c = b[n];
        // A number word starts with a digit or '.', so `n > 0` here.
        let exp_sign = (c == b'+' || c == b'-') && n > 0 && matches!(b[n - 1], b'e' | b'E');
        if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || exp_sign {
            n += 1;
        } else {
            break;
        }
    }
    n
}
