//! Recursive-descent parser.
//!
//! ```text
//! expr    := or
//! or      := and (('OR' | '||') and)*
//! and     := cmp (('AND' | '&&') cmp)*
//! cmp     := add (('>' | '>=' | '<' | '<=' | '==' | '!=') add)?     non-associative
//! add     := mul (('+' | '-') mul)*
//! mul     := unary (('*' | '/') unary)*
//! unary   := '-' unary | primary
//! primary := NUMBER | ID | FUNC '(' args? ')' | '(' expr ')'
//! args    := arg (',' arg)*          FILL's second arg may also be REPEAT or LINEAR
//! ```

use super::ExprError;
use super::ast::{
    Arity, BinOp, Callee, FUNCTIONS, FillWith, Func, Node, PREC_ADD, PREC_AND, PREC_CMP, PREC_MUL,
    PREC_OR, lookup_function,
};
use super::lexer::{Tok, Token, tokenize};

/// The longest `RSUM` window, in datapoints (a week of 10-second data).
pub(crate) const MAX_RSUM_WINDOW: f64 = 60_480.0;

/// Maximum nesting of parentheses, calls and unary minus. Keeps the
/// recursive parser, printer and evaluator far from the stack limit.
pub(crate) const MAX_DEPTH: usize = 64;

/// Maximum number of operators (binary operators, unary minus and function
/// calls) in one expression. A chain such as `m + m + ...` parses in a loop
/// but builds a tree as deep as it is long, which the printer and the
/// evaluator walk recursively: counting every operator bounds that depth
/// (at most `MAX_OPERATORS + MAX_DEPTH`) whatever the shape. Real rules use
/// a handful; the largest generated (SLO burn-rate) ones use a few dozen.
pub(crate) const MAX_OPERATORS: usize = 256;

/// Maximum length of an expression's source, in bytes: checked before
/// tokenizing, so a huge expression costs nothing.
pub(crate) const MAX_SOURCE_LEN: usize = 4096;

pub(crate) fn parse(src: &str) -> Result<Node, ExprError> {
    if src.len() > MAX_SOURCE_LEN {
        return Err(ExprError {
            offset: MAX_SOURCE_LEN,
            message: format!(
                "expression is too long ({} bytes, expected at most {MAX_SOURCE_LEN})",
                src.len()
            ),
        });
    }
    let toks = tokenize(src)?;
    let mut p = Parser {
        src,
        toks,
        pos: 0,
        depth: 0,
        ops: 0,
    };
    if p.peek().tok == Tok::Eof {
        return Err(ExprError {
            offset: 0,
            message: "empty expression".to_string(),
        });
    }
    let node = p.expr()?;
    let t = p.peek();
    match t.tok {
        Tok::Eof => Ok(node),
        Tok::RParen => Err(p.error(t, "unmatched ')'".to_string())),
        _ => Err(p.error(
            t,
            format!(
                "expected an operator or end of expression but found {}{}",
                p.describe(t),
                p.hint(t)
            ),
        )),
    }
}

struct Parser<'s> {
    src: &'s str,
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
    /// Operators seen so far (see [`MAX_OPERATORS`]).
    ops: usize,
}

impl<'s> Parser<'s> {
    fn peek(&self) -> Token {
        // The token list always ends with Eof, and `bump` never passes it.
        self.toks.get(self.pos).copied().unwrap_or(Token {
            tok: Tok::Eof,
            start: self.src.len(),
            end: self.src.len(),
        })
    }

    fn bump(&mut self) -> Token {
        let t = self.peek();
        if t.tok != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    fn text(&self, t: Token) -> &'s str {
        &self.src[t.start..t.end]
    }

    fn describe(&self, t: Token) -> String {
        match t.tok {
            Tok::Eof => "end of expression".to_string(),
            _ => format!("'{}'", self.text(t)),
        }
    }

    /// Extra advice for common slips at a point where an operator was expected.
    fn hint(&self, t: Token) -> String {
        match (t.tok, self.text(t)) {
            (Tok::Ident, "and" | "And") => " (logical operators are upper case: AND)".to_string(),
            (Tok::Ident, "or" | "Or") => " (logical operators are upper case: OR)".to_string(),
            _ => String::new(),
        }
    }

    fn error(&self, t: Token, message: String) -> ExprError {
        ExprError {
            offset: t.start,
            message,
        }
    }

    fn enter(&mut self, t: Token) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(
                t,
                format!("expression is nested too deeply (more than {MAX_DEPTH} levels)"),
            ));
        }
        Ok(())
    }

    /// Counts one operator at token `t`; too many is an error.
    fn operator(&mut self, t: Token) -> Result<(), ExprError> {
        self.ops += 1;
        if self.ops > MAX_OPERATORS {
            return Err(self.error(
                t,
                format!("expression has too many operators (more than {MAX_OPERATORS})"),
            ));
        }
        Ok(())
    }

    fn expect_rparen(&mut self) -> Result<(), ExprError> {
        let t = self.peek();
        if t.tok == Tok::RParen {
            self.bump();
            return Ok(());
        }
        Err(self.error(
            t,
            format!(
                "expected ')' but found {}{}",
                self.describe(t),
                self.hint(t)
            ),
        ))
    }

    fn expr(&mut self) -> Result<Node, ExprError> {
        self.binary(PREC_OR)
    }

    /// Parses a left-associative level (`OR`, `AND`, `+ -`, `* /`) or the
    /// non-associative comparison level.
    fn binary(&mut self, prec: u8) -> Result<Node, ExprError> {
        let operand = |p: &mut Self| {
            if prec == PREC_MUL {
                p.unary()
            } else {
                p.binary(prec + 1)
            }
        };
        let mut left = operand(self)?;
        loop {
            let t = self.peek();
            let op = match t.tok {
                Tok::Op(op) if op.prec() == prec => op,
                _ => return Ok(left),
            };
            self.bump();
            self.operator(t)?;
            let right = operand(self)?;
            left = Node::Binary(op, Box::new(left), Box::new(right));
            if prec == PREC_CMP {
                let t2 = self.peek();
                if let Tok::Op(op2) = t2.tok
                    && op2.prec() == PREC_CMP
                {
                    return Err(self.error(
                        t2,
                        format!(
                            "comparisons cannot be chained: '{}' follows '{}' (combine comparisons with AND)",
                            op2.symbol(),
                            op.symbol()
                        ),
                    ));
                }
                return Ok(left);
            }
        }
    }

    fn unary(&mut self) -> Result<Node, ExprError> {
        let t = self.peek();
        if t.tok == Tok::Op(BinOp::Sub) {
            self.bump();
            self.enter(t)?;
            self.operator(t)?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Node::Neg(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Node, ExprError> {
        let t = self.bump();
        match t.tok {
            Tok::Num(v) => Ok(Node::Num(v)),
            Tok::LParen => {
                self.enter(t)?;
                let inner = self.expr()?;
                self.expect_rparen()?;
                self.depth -= 1;
                Ok(inner)
            }
            Tok::Ident => {
                let name = self.text(t);
                if self.peek().tok == Tok::LParen {
                    return self.call(t, name);
                }
                if lookup_function(name).is_some() {
                    let n = self.peek();
                    return Err(self.error(
                        n,
                        format!(
                            "expected '(' after function {name} but found {}",
                            self.describe(n)
                        ),
                    ));
                }
                if name == "REPEAT" || name == "LINEAR" {
                    return Err(self.error(
                        t,
                        format!("{name} is only valid as the second argument of FILL"),
                    ));
                }
                Ok(Node::Metric(name.to_string()))
            }
            Tok::Eof => Err(self.error(t, "unexpected end of expression".to_string())),
            Tok::RParen | Tok::Comma | Tok::Op(_) => {
                Err(self.error(t, format!("unexpected token '{}'", self.text(t))))
            }
        }
    }

    /// Parses a call whose name token `name_tok` has been consumed and whose
    /// `(` is next.
    fn call(&mut self, name_tok: Token, name: &'s str) -> Result<Node, ExprError> {
        let Some((callee, arity)) = lookup_function(name) else {
            return Err(self.error(name_tok, unknown_function(name)));
        };
        let open = self.bump();
        self.enter(open)?;
        self.operator(name_tok)?;

        let mut args = Vec::new();
        let mut fill_mode = None;
        if self.peek().tok != Tok::RParen {
            loop {
                let t = self.peek();
                let keyword = match (callee, args.len(), t.tok, self.text(t)) {
                    (Callee::Fill, 1, Tok::Ident, "REPEAT") => Some(FillWith::Repeat),
                    (Callee::Fill, 1, Tok::Ident, "LINEAR") => Some(FillWith::Linear),
                    _ => None,
                };
                match keyword {
                    Some(mode) => {
                        self.bump();
                        fill_mode = Some(mode);
                        // Placeholder so the argument count stays right.
                        args.push(Node::Num(0.0));
                    }
                    None => args.push(self.expr()?),
                }
                let sep = self.peek();
                match sep.tok {
                    Tok::Comma => {
                        self.bump();
                    }
                    Tok::RParen => break,
                    _ => {
                        return Err(self.error(
                            sep,
                            format!(
                                "expected ',' or ')' but found {}{}",
                                self.describe(sep),
                                self.hint(sep)
                            ),
                        ));
                    }
                }
            }
        }
        self.bump(); // ')'
        self.depth -= 1;

        check_arity(name, arity, args.len()).map_err(|m| self.error(name_tok, m))?;

        Ok(match callee {
            Callee::Fill => {
                let mut it = args.into_iter();
                let series = it.next().unwrap_or(Node::Num(0.0));
                let with = match fill_mode {
                    Some(mode) => mode,
                    None => FillWith::Value(Box::new(it.next().unwrap_or(Node::Num(0.0)))),
                };
                Node::Fill(Box::new(series), with)
            }
            Callee::Func(Func::Rsum) => {
                check_window(args.get(1)).map_err(|m| self.error(name_tok, m))?;
                Node::Call(Func::Rsum, args)
            }
            Callee::Func(f) => Node::Call(f, args),
        })
    }
}

/// `RSUM`'s second argument: a whole number of datapoints, written as a literal.
fn check_window(arg: Option<&Node>) -> Result<(), String> {
    match arg {
        Some(Node::Num(n)) if n.fract() == 0.0 && *n >= 1.0 && *n <= MAX_RSUM_WINDOW => Ok(()),
        Some(other) => Err(format!(
            "RSUM's window must be a whole number of datapoints from 1 to {MAX_RSUM_WINDOW}, found {other}"
        )),
        None => Err("RSUM takes 2 arguments, got 1".to_string()),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "argument" } else { "arguments" }
}

fn check_arity(name: &str, arity: Arity, got: usize) -> Result<(), String> {
    let ok = got >= arity.min && arity.max.is_none_or(|m| got <= m);
    if ok {
        return Ok(());
    }
    let expected = match arity.max {
        Some(max) if max == arity.min => format!("{max} {}", plural(max)),
        Some(max) if max == arity.min + 1 => format!("{} or {max} arguments", arity.min),
        Some(max) => format!("{} to {max} arguments", arity.min),
        None => format!("at least {} {}", arity.min, plural(arity.min)),
    };
    Err(format!("{name} takes {expected}, got {got}"))
}

fn unknown_function(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    if upper != name && lookup_function(&upper).is_some() {
        return format!("unknown function {name} (function names are upper case: {upper})");
    }
    let names: Vec<&str> = FUNCTIONS.iter().map(|(n, _, _)| *n).collect();
    format!(
        "unknown function {name} (expected one of {})",
        names.join(", ")
    )
}

const _: () = {
    // The grammar levels rely on these being consecutive.
    assert!(PREC_AND == PREC_OR + 1);
    assert!(PREC_CMP == PREC_AND + 1);
    assert!(PREC_ADD == PREC_CMP + 1);
    assert!(PREC_MUL == PREC_ADD + 1);
};
