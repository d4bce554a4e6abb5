//! CloudWatch Metrics Insights queries as a metric source (`query:` in a
//! rule's metric): the grammar as far as firebell can check it, and the
//! limits of alarm-like use.
//!
//! ```text
//! SELECT FUNC(metric)
//! FROM namespace | SCHEMA(namespace[, label, ...])
//! [ WHERE label = 'value' | label != 'value' [AND|OR ...] ]
//! [ GROUP BY label[, ...] ]
//! [ ORDER BY FUNC() [ASC|DESC] ]
//! [ LIMIT n ]
//! ```
//!
//! as CloudWatch documents it ("Metrics Insights query components and
//! syntax"): `FUNC` is one of `AVG`, `COUNT`, `MAX`, `MIN`, `SUM`; keywords
//! are case insensitive, identifiers (metric, namespace, labels) case
//! sensitive and double-quoted when they are not plain words (`"AWS/EC2"`)
//! or are one of Metrics Insights' reserved keywords (`"Type"`,
//! [`reserved`]); label values are always single-quoted strings; a quote
//! inside a quoted name or value is escaped with a backslash (`\"`, `\'`,
//! and `\\` for a backslash); the operators are `=` and `!=`, conditions
//! joined with `AND`, `OR` and parentheses (no `<`, `>`, `LIKE`, `IN` or
//! `NOT`: CloudWatch would reject the query when it runs).
//!
//! An alerting query with `GROUP BY` takes no `ORDER BY`
//! ([`Query::grouped_order_error`]): a top-N query picks its groups anew
//! over each time range, and firebell discovers the groups over the last 3
//! hours but fetches them over a rule's lookback, so the instances would
//! not be the series judged. Without `ORDER BY` CloudWatch returns the
//! groups in ascending order of their `GROUP BY` values, and `LIMIT n`
//! keeps the first `n` of those with data in the range.
//!
//! A query with `GROUP BY` returns one series per group: firebell makes one
//! alert instance of each, its `GROUP BY` values as labels (the query's
//! [`MetricSpec`](crate::model::MetricSpec) has the `GROUP BY` labels as
//! wildcard dimensions, expanded like any wildcard through
//! `MetricsSource::dimension_values`).
//!
//! Limits (CloudWatch's, for alarm-like use): at most 500 series per query
//! (`LIMIT` at most [`MAX_SERIES`]), the last 3 hours of data
//! ([`MAX_HISTORY`]: a rule's lookback must fit), periods of whole minutes,
//! an expression of at most [`MAX_QUERY_CHARS`] characters.

use std::fmt;
use std::time::Duration;

use crate::model::Stat;

mod reserved;

/// The most series one query returns.
pub const MAX_SERIES: u32 = 500;
/// How far back a Metrics Insights query reads for alarm-like use.
pub const MAX_HISTORY: Duration = Duration::from_secs(3 * 3600);
/// The longest `Expression` `GetMetricData` accepts.
pub const MAX_QUERY_CHARS: usize = 2048;

/// The aggregation of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Avg,
    Count,
    Max,
    Min,
    Sum,
}

impl Func {
    fn parse(word: &str) -> Option<Func> {
        Some(match word.to_ascii_uppercase().as_str() {
            "AVG" => Func::Avg,
            "COUNT" => Func::Count,
            "MAX" => Func::Max,
            "MIN" => Func::Min,
            "SUM" => Func::Sum,
            _ => return None,
        })
    }

    /// The statistic the query computes per group, for display and for the
    /// replay source's matching: `AVG` is `Average`, `COUNT` `SampleCount`.
    pub fn stat(self) -> Stat {
        match self {
            Func::Avg => Stat::Average,
            Func::Count => Stat::SampleCount,
            Func::Max => Stat::Maximum,
            Func::Min => Stat::Minimum,
            Func::Sum => Stat::Sum,
        }
    }
}

/// A checked Metrics Insights query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub func: Func,
    pub metric: String,
    pub namespace: String,
    /// The `SCHEMA(...)` labels, when the source is a schema.
    pub schema: Option<Vec<String>>,
    /// The `GROUP BY` labels, in order.
    pub group_by: Vec<String>,
    /// `LIMIT n`.
    pub limit: Option<u32>,
    /// Where `ORDER BY` starts (character offset), if the query has one.
    pub order_by: Option<usize>,
}

impl Query {
    /// The error of an alerting query that is grouped and ordered (see the
    /// module docs), at the `ORDER BY`.
    pub fn grouped_order_error(&self) -> Option<QueryError> {
        let at = self.order_by?;
        (!self.group_by.is_empty()).then(|| QueryError {
            at,
            message: "ORDER BY in a grouped query picks its top groups anew over each time range (firebell discovers the groups over the last 3h and fetches the rule's lookback), so the instances would not be the series judged (expected no ORDER BY: groups then come in label order, and LIMIT keeps the first n)".to_string(),
        })
    }

    /// How many series the query may return: its `LIMIT`, or
    /// [`MAX_SERIES`] with `GROUP BY` (1 without).
    pub fn max_series(&self) -> u32 {
        match (self.limit, self.group_by.is_empty()) {
            (_, true) => 1,
            (Some(n), false) => n,
            (None, false) => MAX_SERIES,
        }
    }
}

/// Why a query is refused: the character offset and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// Character offset in the query (0-based).
    pub at: usize,
    pub message: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at character {}: {}", self.at + 1, self.message)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A bare word (keyword or identifier).
    Word(String),
    /// A double-quoted identifier.
    Quoted(String),
    /// A single-quoted string value.
    Str(String),
    Number(String),
    Sym(&'static str),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Word(w) => write!(f, "`{w}`"),
            Tok::Quoted(w) => write!(f, "`\"{w}\"`"),
            Tok::Str(s) => write!(f, "`'{s}'`"),
            Tok::Number(n) => write!(f, "`{n}`"),
            Tok::Sym(s) => write!(f, "`{s}`"),
        }
    }
}

fn lex(src: &str) -> Result<Vec<(usize, Tok)>, QueryError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |at: usize, message: String| QueryError { at, message };
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((start, Tok::Word(chars[start..i].iter().collect())));
            continue;
        }
        if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            out.push((start, Tok::Number(chars[start..i].iter().collect())));
            continue;
        }
        if c == '"' || c == '\'' {
            i += 1;
            let mut s = String::new();
            loop {
                match chars.get(i) {
                    None => {
                        return Err(err(
                            start,
                            format!(
                                "unterminated {} (expected a closing {c})",
                                if c == '"' { "quoted name" } else { "string" }
                            ),
                        ));
                    }
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    // A backslash escapes the next character (a quote, a
                    // backslash).
                    Some('\\') => match chars.get(i + 1) {
                        Some(&next) => {
                            s.push(next);
                            i += 2;
                        }
                        None => {
                            return Err(err(
                                i,
                                "a backslash at the end of the query (expected the character it escapes)"
                                    .to_string(),
                            ));
                        }
                    },
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            if c == '"' && s.is_empty() {
                return Err(err(start, "empty quoted name".to_string()));
            }
            out.push((
                start,
                if c == '"' {
                    Tok::Quoted(s)
                } else {
                    Tok::Str(s)
                },
            ));
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let sym = match two.as_str() {
            "!=" => Some("!="),
            "<=" => Some("<="),
            ">=" => Some(">="),
            "<>" => Some("<>"),
            _ => None,
        };
        if let Some(s) = sym {
            out.push((start, Tok::Sym(s)));
            i += 2;
            continue;
        }
        let one = match c {
            '(' => "(",
            ')' => ")",
            ',' => ",",
            '=' => "=",
            '<' => "<",
            '>' => ">",
            _ => {
                return Err(err(start, format!("unexpected character {c:?}")));
            }
        };
        out.push((start, Tok::Sym(one)));
        i += 1;
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn at(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(a, _)| *a)
    }

    fn fail<T>(&self, expected: &str) -> Result<T, QueryError> {
        let found = match self.peek() {
            Some(t) => format!("found {t}"),
            None => "found the end of the query".to_string(),
        };
        Err(QueryError {
            at: self.at(),
            message: format!("expected {expected}, {found}"),
        })
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn kw(&mut self, kw: &str, expected: &str) -> Result<(), QueryError> {
        if self.is_kw(kw) {
            self.pos += 1;
            Ok(())
        } else {
            self.fail(expected)
        }
    }

    fn sym(&mut self, s: &str, expected: &str) -> Result<(), QueryError> {
        if matches!(self.peek(), Some(Tok::Sym(x)) if *x == s) {
            self.pos += 1;
            Ok(())
        } else {
            self.fail(expected)
        }
    }

    fn is_sym(&self, s: &str) -> bool {
        matches!(self.peek(), Some(Tok::Sym(x)) if *x == s)
    }

    /// A name: a bare word that is no reserved keyword, or a
    /// double-quoted name.
    fn name(&mut self, what: &str) -> Result<String, QueryError> {
        match self.peek() {
            Some(Tok::Word(w)) if !reserved::is_reserved(w) => {
                let w = w.clone();
                self.pos += 1;
                Ok(w)
            }
            // A reserved word where a name goes (not a clause keyword
            // that may follow): say how to write it.
            Some(Tok::Word(w))
                if ![
                    "FROM", "WHERE", "GROUP", "ORDER", "LIMIT", "AND", "OR", "BY",
                ]
                .iter()
                .any(|k| k.eq_ignore_ascii_case(w)) =>
            {
                Err(QueryError {
                    at: self.at(),
                    message: format!(
                        "expected {what}, found `{w}`, a reserved word in Metrics Insights (write it double-quoted: \"{w}\")"
                    ),
                })
            }
            Some(Tok::Quoted(w)) => {
                let w = w.clone();
                self.pos += 1;
                Ok(w)
            }
            _ => self.fail(what),
        }
    }

    fn func(&mut self) -> Result<Func, QueryError> {
        match self.peek() {
            Some(Tok::Word(w)) if Func::parse(w).is_some() => {
                let f = Func::parse(w);
                self.pos += 1;
                f.map_or_else(|| self.fail("a function"), Ok)
            }
            _ => self.fail("a function: AVG, COUNT, MAX, MIN or SUM"),
        }
    }

    fn value(&mut self) -> Result<(), QueryError> {
        match self.peek() {
            Some(Tok::Str(_)) => {
                self.pos += 1;
                Ok(())
            }
            _ => self.fail("a label value in single quotes ('prod')"),
        }
    }

    /// `cond { (AND|OR) cond }`
    fn filter(&mut self, depth: usize) -> Result<(), QueryError> {
        if depth > 32 {
            return self.fail("a shallower condition (at most 32 nested parentheses)");
        }
        loop {
            self.condition(depth)?;
            if self.is_kw("AND") || self.is_kw("OR") {
                self.pos += 1;
                continue;
            }
            return Ok(());
        }
    }

    /// `( filter ) | label = 'value' | label != 'value'`
    fn condition(&mut self, depth: usize) -> Result<(), QueryError> {
        if self.is_sym("(") {
            self.pos += 1;
            self.filter(depth + 1)?;
            return self.sym(")", "`)`");
        }
        self.name("a label name or `(`")?;
        match self.peek() {
            Some(Tok::Sym("=" | "!=")) => {
                self.pos += 1;
                self.value()
            }
            _ => self.fail(
                "an operator: `=` or `!=` (Metrics Insights has no <, <=, >, >=, <>, LIKE, IN or NOT)",
            ),
        }
    }

    fn query(&mut self) -> Result<Query, QueryError> {
        self.kw("SELECT", "`SELECT`")?;
        let func = self.func()?;
        self.sym("(", "`(` and the metric name")?;
        let metric = self.name("the metric name")?;
        self.sym(")", "`)`")?;
        self.kw("FROM", "`FROM`")?;
        let (namespace, schema) = if self.is_kw("SCHEMA") {
            self.pos += 1;
            self.sym("(", "`(` and the namespace")?;
            let ns = self.name("the namespace")?;
            let mut labels = Vec::new();
            while self.is_sym(",") {
                self.pos += 1;
                labels.push(self.name("a label name")?);
            }
            self.sym(")", "`,` or `)`")?;
            (ns, Some(labels))
        } else {
            (self.name("a namespace or SCHEMA(...)")?, None)
        };
        if self.is_kw("WHERE") {
            self.pos += 1;
            self.filter(0)?;
        }
        let mut group_by = Vec::new();
        if self.is_kw("GROUP") {
            self.pos += 1;
            self.kw("BY", "`BY`")?;
            loop {
                let at = self.at();
                let label = self.name("a label name")?;
                if group_by.contains(&label) {
                    return Err(QueryError {
                        at,
                        message: format!("label {label:?} is grouped by twice"),
                    });
                }
                group_by.push(label);
                if self.is_sym(",") {
                    self.pos += 1;
                    continue;
                }
                break;
            }
        }
        let mut order_by = None;
        if self.is_kw("ORDER") {
            order_by = Some(self.at());
            self.pos += 1;
            self.kw("BY", "`BY`")?;
            self.func()?;
            self.sym("(", "`(`")?;
            self.sym(
                ")",
                "`)` (ORDER BY takes a function of no argument, such as MAX())",
            )?;
            if self.is_kw("ASC") || self.is_kw("DESC") {
                self.pos += 1;
            }
        }
        let mut limit = None;
        if self.is_kw("LIMIT") {
            self.pos += 1;
            let at = self.at();
            let n = match self.peek() {
                Some(Tok::Number(n)) => n.parse::<u32>().ok(),
                _ => return self.fail("a number of series"),
            };
            match n {
                Some(n) if (1..=MAX_SERIES).contains(&n) => limit = Some(n),
                _ => {
                    return Err(QueryError {
                        at,
                        message: format!(
                            "LIMIT must be a whole number from 1 to {MAX_SERIES} (a query returns at most {MAX_SERIES} series)"
                        ),
                    });
                }
            }
            self.pos += 1;
        }
        if self.peek().is_some() {
            return self.fail(
                "the end of the query (clauses go SELECT, FROM, WHERE, GROUP BY, ORDER BY, LIMIT)",
            );
        }
        Ok(Query {
            func,
            metric,
            namespace,
            schema,
            group_by,
            limit,
            order_by,
        })
    }
}

/// Checks a Metrics Insights query against the grammar above and its size
/// limit.
pub fn parse(src: &str) -> Result<Query, QueryError> {
    let len = src.chars().count();
    if len > MAX_QUERY_CHARS {
        return Err(QueryError {
            at: MAX_QUERY_CHARS,
            message: format!(
                "the query is {len} characters long (expected at most {MAX_QUERY_CHARS})"
            ),
        });
    }
    let toks = lex(src)?;
    Parser {
        toks,
        pos: 0,
        end: len,
    }
    .query()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> String {
        match parse(src) {
            Ok(q) => panic!("{src} parsed: {q:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_documented_shapes_parse() {
        let q = parse(
            r#"SELECT AVG(CPUUtilization) FROM SCHEMA("AWS/EC2", InstanceId) GROUP BY InstanceId"#,
        )
        .unwrap();
        assert_eq!(
            q,
            Query {
                func: Func::Avg,
                metric: "CPUUtilization".into(),
                namespace: "AWS/EC2".into(),
                schema: Some(vec!["InstanceId".into()]),
                group_by: vec!["InstanceId".into()],
                limit: None,
                order_by: None,
            }
        );
        assert_eq!(q.max_series(), 500);
        let q = parse(
            r#"select max("Latency ms") from "Shop/Api" where Env = 'prod' and (Service != 'a\'b' or Service = 'x') and "Type" = 'web' group by Service, Env order by max() desc limit 10"#,
        )
        .unwrap();
        assert_eq!(
            (
                q.func,
                q.metric.as_str(),
                q.namespace.as_str(),
                q.schema.clone()
            ),
            (Func::Max, "Latency ms", "Shop/Api", None)
        );
        assert_eq!(q.group_by, ["Service", "Env"]);
        assert_eq!((q.limit, q.max_series()), (Some(10), 10));
        assert_eq!(q.order_by, Some(142));
        let q = parse("SELECT SUM(Errors) FROM Shop").unwrap();
        assert_eq!((q.func.stat(), q.max_series()), (Stat::Sum, 1));
        assert_eq!(Func::Count.stat(), Stat::SampleCount);
    }

    #[test]
    fn mistakes_name_the_place_and_what_was_expected() {
        assert_eq!(
            err("SELECT MEDIAN(Latency) FROM Shop"),
            "at character 8: expected a function: AVG, COUNT, MAX, MIN or SUM, found `MEDIAN`"
        );
        assert_eq!(
            err("SELECT AVG(Latency)"),
            "at character 20: expected `FROM`, found the end of the query"
        );
        assert_eq!(
            err("SELECT AVG(Latency) FROM AWS/EC2"),
            "at character 29: unexpected character '/'"
        );
        assert_eq!(
            err("SELECT AVG(Latency) FROM Shop GROUP BY Service LIMIT 501"),
            "at character 54: LIMIT must be a whole number from 1 to 500 (a query returns at most 500 series)"
        );
        assert_eq!(
            err("SELECT AVG(Latency) FROM Shop LIMIT 5 GROUP BY Service"),
            "at character 39: expected the end of the query (clauses go SELECT, FROM, WHERE, GROUP BY, ORDER BY, LIMIT), found `GROUP`"
        );
        assert_eq!(
            err("SELECT AVG(Latency) FROM Shop WHERE Service = prod"),
            "at character 47: expected a label value in single quotes ('prod'), found `prod`"
        );
        assert_eq!(
            err("SELECT AVG(Latency) FROM Shop WHERE Service = 'prod"),
            "at character 47: unterminated string (expected a closing ')"
        );
        assert_eq!(
            err("SELECT AVG(Latency) FROM Shop ORDER BY MAX(Latency)"),
            "at character 44: expected `)` (ORDER BY takes a function of no argument, such as MAX()), found `Latency`"
        );
        assert_eq!(
            err("SELECT AVG(Latency) FROM Shop GROUP BY A, A"),
            "at character 43: label \"A\" is grouped by twice"
        );
        let long = format!(
            "SELECT AVG(Latency) FROM Shop WHERE A = '{}'",
            "x".repeat(2100)
        );
        assert_eq!(
            err(&long),
            "at character 2049: the query is 2142 characters long (expected at most 2048)"
        );
    }

    /// What CloudWatch documents and no more: values single-quoted, `=`
    /// and `!=` joined with AND, OR and parentheses, backslash escapes,
    /// reserved words double-quoted.
    #[test]
    fn the_grammar_is_cloudwatchs() {
        let bad_op = "expected an operator: `=` or `!=` (Metrics Insights has no <, <=, >, >=, <>, LIKE, IN or NOT)";
        assert_eq!(
            err("SELECT AVG(Latency) FROM Shop WHERE Host LIKE 'web-%'"),
            format!("at character 42: {bad_op}, found `LIKE`")
        );
        assert_eq!(
            err("SELECT AVG(Latency) FROM Shop WHERE Code >= '500'"),
            format!("at character 42: {bad_op}, found `>=`")
        );
        assert_eq!(
            err("SELECT AVG(Latency) FROM Shop WHERE Env IN ('a', 'b')"),
            format!("at character 41: {bad_op}, found `IN`")
        );
        assert_eq!(
            err("SELECT AVG(Latency) FROM Shop WHERE NOT Env = 'a'"),
            "at character 37: expected a label name or `(`, found `NOT`, a reserved word in Metrics Insights (write it double-quoted: \"NOT\")"
        );
        assert_eq!(
            err("SELECT AVG(Latency) FROM Shop WHERE Code = 500"),
            "at character 44: expected a label value in single quotes ('prod'), found `500`"
        );
        assert_eq!(
            err(r#"SELECT AVG(Latency) FROM Shop WHERE Env = "prod""#),
            "at character 43: expected a label value in single quotes ('prod'), found `\"prod\"`"
        );
        // Reserved words (the whole documented list) are double-quoted.
        assert_eq!(
            err("SELECT AVG(Latency) FROM Shop GROUP BY Type"),
            "at character 40: expected a label name, found `Type`, a reserved word in Metrics Insights (write it double-quoted: \"Type\")"
        );
        assert_eq!(
            err("SELECT SUM(Period) FROM Shop"),
            "at character 12: expected the metric name, found `Period`, a reserved word in Metrics Insights (write it double-quoted: \"Period\")"
        );
        let q = parse(r#"SELECT SUM("Period") FROM SCHEMA(Shop, "Type") GROUP BY "Type""#).unwrap();
        assert_eq!(
            (q.metric.as_str(), q.group_by),
            ("Period", vec!["Type".to_string()])
        );
        // Backslash escapes, in names and values; a doubled quote is not one.
        let q = parse(r#"SELECT AVG("Bytes\"Input\"") FROM Shop WHERE Env = 'it\'s\\'"#).unwrap();
        assert_eq!(q.metric, "Bytes\"Input\"");
        assert_eq!(
            err("SELECT AVG(Latency) FROM Shop WHERE Env = 'a''b'"),
            "at character 46: expected the end of the query (clauses go SELECT, FROM, WHERE, GROUP BY, ORDER BY, LIMIT), found `'b'`"
        );
        assert_eq!(
            err("SELECT AVG(Latency) FROM Shop WHERE Env = 'a\\"),
            "at character 45: a backslash at the end of the query (expected the character it escapes)"
        );
    }

    #[test]
    fn a_grouped_query_is_not_ordered() {
        let q = parse("SELECT MAX(Latency) FROM Shop GROUP BY Service ORDER BY MAX() DESC LIMIT 5")
            .unwrap();
        assert_eq!(
            q.grouped_order_error().map(|e| e.to_string()).as_deref(),
            Some(
                "at character 48: ORDER BY in a grouped query picks its top groups anew over each time range (firebell discovers the groups over the last 3h and fetches the rule's lookback), so the instances would not be the series judged (expected no ORDER BY: groups then come in label order, and LIMIT keeps the first n)"
            )
        );
        // LIMIT alone, or ORDER BY on the one series of an ungrouped query.
        for ok in [
            "SELECT MAX(Latency) FROM Shop GROUP BY Service LIMIT 5",
            "SELECT MAX(Latency) FROM Shop ORDER BY MAX() DESC",
        ] {
            assert_eq!(parse(ok).unwrap().grouped_order_error(), None, "{ok}");
        }
    }
}
