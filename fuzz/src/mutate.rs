//! A deterministic PRNG and the mutation engine.

use crate::targets::Target;

/// xorshift64*: tiny, deterministic, good enough to pick mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, so nearby seeds diverge and 0 is not a fixed point.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (`0` when `n == 0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// Tokens worth inserting, per target: syntax, keywords, edge values.
fn dictionary(target: Target) -> &'static [&'static str] {
    match target {
        Target::Config | Target::Run => &[
            "- ",
            "{",
            "}",
            "[",
            "]",
            ": ",
            "\n",
            "\n  ",
            "  ",
            "&a ",
            "*a",
            "<<: *a\n",
            "!!str ",
            "!!binary ",
            "---\n",
            "...\n",
            "'",
            "\"",
            "|\n",
            ">\n",
            "#",
            "~",
            "null",
            "\u{feff}",
            "for: ",
            "interval: ",
            "period: ",
            "keep_firing_for: ",
            "evaluation_delay: ",
            "arrival_grace: ",
            "window: ",
            "expression: ",
            "threshold: ",
            "labels:\n",
            "annotations:\n",
            "dimensions:\n",
            "tests:\n",
            "rules:\n",
            "receivers:\n",
            "routes:\n",
            "slos:\n",
            "99999999999d",
            "200000000000000d",
            "10000000000000w",
            "0s",
            "1s",
            "-1",
            "1e308",
            "NaN",
            ".inf",
            "18446744073709551616",
            "{{ value }}",
            "{{ $value }}",
            "{% for i in range(9) %}x{% endfor %}",
            "m + m",
        ],
        Target::Expr => &[
            "+",
            "-",
            "*",
            "/",
            "(",
            ")",
            ",",
            " AND ",
            " OR ",
            "&&",
            "||",
            ">",
            ">=",
            "<",
            "<=",
            "==",
            "!=",
            "m",
            "m1",
            "FILL(",
            "FILL(m, REPEAT)",
            "FILL(m, LINEAR)",
            "IF(",
            "MIN(",
            "MAX(",
            "SUM(",
            "AVG(",
            "RATE(",
            "DIFF(",
            "RSUM(",
            "RSUM(m, 99999999999)",
            "RSUM(m, 0)",
            "ABS(",
            "CEIL(",
            "FLOOR(",
            "SQRT(",
            "LOG(",
            "LOG10(",
            "1e308",
            "1e-308",
            ".5",
            "0",
            "-0",
            "18446744073709551616",
            "99999999999999999999",
            "REPEAT",
            "LINEAR",
        ],
        Target::Matcher => &[
            "=",
            "!=",
            "=~",
            "!~",
            "\"",
            "\\",
            "\\\"",
            "'",
            ".*",
            ".+",
            "(",
            ")",
            "[",
            "]",
            "{",
            "}",
            "{99999}",
            "{0,99999}",
            "(a+)+",
            "|",
            "^",
            "$",
            "\\p{L}",
            "(?i)",
            "(?x)",
            "alertname",
            "severity",
            "~",
            ",",
            " ",
            "\u{0}",
            "\u{1F525}",
        ],
        Target::Duration => &[
            "s",
            "m",
            "h",
            "d",
            "w",
            "ms",
            "us",
            "ns",
            "y",
            "M",
            "0",
            "1",
            "99999999999",
            "18446744073709551615",
            "200000000000000",
            "10000000000000",
            " ",
            "-",
            "+",
            ".",
            "e9",
        ],
        Target::Template => &[
            "{{",
            "}}",
            "{%",
            "%}",
            "{#",
            "#}",
            "value",
            "threshold",
            "labels.service",
            "$value",
            "$labels",
            "| indent(2000000000)",
            "| indent(99)",
            "| replace('a', 'aaaaaaaa')",
            "| join(',')",
            "| center(99999)",
            " ~ ",
            " * ",
            "| format(",
            "range(99999)",
            "{% for i in range(99) %}",
            "{% endfor %}",
            "{% set x = 'ab' %}",
            "{% macro m() %}",
            "{% endmacro %}",
            "{% if ",
            "{% endif %}",
            "| tojson",
            "| upper",
            "| safe",
            "{{ self }}",
            "loop.index",
            "99999999999",
            "1e308",
            "-1",
        ],
        Target::Replay => &[
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            "\"",
            "\n",
            "\"period\":",
            "\"points\":",
            "\"namespace\":",
            "\"metric\":",
            "\"dimensions\":",
            "\"stat\":",
            "\"Sum\"",
            "\"p99\"",
            "\"p100\"",
            "\"TM(10%:90%)\"",
            "0",
            "-1",
            "60",
            "1e308",
            "NaN",
            "9223372036854775807",
            "-9223372036854775808",
            "99999999999999999999",
            "10000000000000000",
            "null",
            "true",
        ],
    }
}

const HUGE: &[&str] = &[
    "0",
    "-1",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551616",
    "99999999999",
    "200000000000000",
    "1e308",
    "1e-400",
];

/// Applies 1..=4 stacked mutations to `base` (with `other`, another corpus
/// entry, for splices), never growing it past `max_len`.
pub fn mutate(target: Target, rng: &mut Rng, base: &[u8], other: &[u8], max_len: usize) -> Vec<u8> {
    let mut v = base.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        mutate_once(target, rng, &mut v, other, max_len);
        v.truncate(max_len);
    }
    v
}

fn mutate_once(target: Target, rng: &mut Rng, v: &mut Vec<u8>, other: &[u8], max_len: usize) {
    let n = v.len();
    match rng.below(13) {
        // flip a bit
        0 if n > 0 => {
            let i = rng.below(n);
            v[i] ^= 1 << rng.below(8);
        }
        // set a random (mostly ASCII) byte
        1 if n > 0 => {
            let i = rng.below(n);
            v[i] = if rng.chance(4) {
                rng.next_u64() as u8
            } else {
                b' ' + rng.below(95) as u8
            };
        }
        // delete a range
        2 if n > 0 => {
            let i = rng.below(n);
            let len = 1 + rng.below((n - i).min(16));
            v.drain(i..i + len);
        }
        // duplicate a range in place
        3 if n > 0 => {
            let i = rng.below(n);
            let len = 1 + rng.below((n - i).min(64));
            let chunk = v[i..i + len].to_vec();
            let at = rng.below(v.len() + 1);
            v.splice(at..at, chunk);
        }
        // splice: a piece of another corpus entry
        4 if !other.is_empty() => {
            let i = rng.below(other.len());
            let len = 1 + rng.below((other.len() - i).min(256));
            let at = rng.below(n + 1);
            v.splice(at..at, other[i..i + len].iter().copied());
        }
        // crossover: our head, their tail
        5 if !other.is_empty() => {
            let cut = rng.below(n + 1);
            let from = rng.below(other.len());
            v.truncate(cut);
            v.extend_from_slice(&other[from..]);
        }
        // duplicate a line
        6 => {
            let lines = line_spans(v);
            let &(s, e) = rng.pick(&lines);
            let mut line = v[s..e].to_vec();
            line.push(b'\n');
            let times = if rng.chance(8) { 1 + rng.below(200) } else { 1 };
            let mut chunk = Vec::new();
            for _ in 0..times {
                chunk.extend_from_slice(&line);
            }
            v.splice(s..s, chunk);
        }
        // nest deeper
        7 => nest(target, rng, v, max_len),
        // replace a run of digits by a huge (or edge) number
        8 => {
            let digits: Vec<usize> = (0..n).filter(|&i| v[i].is_ascii_digit()).collect();
            let num = rng.pick(HUGE).as_bytes();
            if digits.is_empty() {
                let at = rng.below(n + 1);
                v.splice(at..at, num.iter().copied());
            } else {
                let s = *rng.pick(&digits);
                let mut e = s;
                while e < v.len() && (v[e].is_ascii_digit() || v[e] == b'.') {
                    e += 1;
                }
                v.splice(s..e, num.iter().copied());
            }
        }
        // repeat a short chunk many times (size bombs, long operator chains)
        9 if n > 0 => {
            let i = rng.below(n);
            let len = 1 + rng.below((n - i).min(8));
            let chunk = v[i..i + len].to_vec();
            let times = 1 + rng.below((max_len / len).clamp(1, 4096));
            let at = rng.below(n + 1);
            let rep: Vec<u8> = chunk.iter().copied().cycle().take(len * times).collect();
            v.splice(at..at, rep);
        }
        // insert a dictionary token (the most useful mutation: weight it)
        _ => {
            let tok = rng.pick(dictionary(target)).as_bytes();
            let at = rng.below(n + 1);
            if rng.chance(3) && n > 0 {
                // replace a word instead of inserting
                let mut e = at;
                while e < n && v[e].is_ascii_alphanumeric() {
                    e += 1;
                }
                v.splice(at..e, tok.iter().copied());
            } else {
                v.splice(at..at, tok.iter().copied());
            }
        }
    }
}

/// (start, end) of every line, without the newline; at least one span.
fn line_spans(v: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut s = 0;
    for (i, &b) in v.iter().enumerate() {
        if b == b'\n' {
            spans.push((s, i));
            s = i + 1;
        }
    }
    spans.push((s, v.len()));
    spans
}

fn nest(target: Target, rng: &mut Rng, v: &mut Vec<u8>, max_len: usize) {
    let depth = if rng.chance(4) {
        1 + rng.below(max_len / 4)
    } else {
        1 + rng.below(8)
    };
    match target {
        Target::Config | Target::Run => {
            // a nested block sequence or flow collection in front of a line
            let lines = line_spans(v);
            let &(s, _) = rng.pick(&lines);
            let open: &[u8] = match rng.below(3) {
                0 => b"- ",
                1 => b"[",
                _ => b"{a: ",
            };
            let pre: Vec<u8> = open
                .iter()
                .copied()
                .cycle()
                .take(open.len() * depth)
                .collect();
            v.splice(s..s, pre);
        }
        Target::Expr => {
            let (open, close): (&[u8], &[u8]) = match rng.below(4) {
                0 => (b"(", b")"),
                1 => (b"-", b""),
                2 => (b"ABS(", b")"),
                _ => (b"", b" + m"),
            };
            let mut out = Vec::with_capacity(v.len() + depth * (open.len() + close.len()));
            for _ in 0..depth {
                out.extend_from_slice(open);
            }
            out.extend_from_slice(v);
            for _ in 0..depth {
                out.extend_from_slice(close);
            }
            *v = out;
        }
        Target::Template => {
            let (open, close): (&[u8], &[u8]) = if rng.chance(2) {
                (b"{% if true %}", b"{% endif %}")
            } else {
                (b"{{ (", b") }}")
            };
            let mut out = Vec::new();
            for _ in 0..depth.min(max_len / 16) {
                out.extend_from_slice(open);
            }
            out.extend_from_slice(v);
            for _ in 0..depth.min(max_len / 16) {
                out.extend_from_slice(close);
            }
            *v = out;
        }
        Target::Replay => {
            let at = rng.below(v.len() + 1);
            let pre: Vec<u8> = b"[".repeat(depth);
            v.splice(at..at, pre);
        }
        Target::Matcher | Target::Duration => {
            let at = rng.below(v.len() + 1);
            let pre: Vec<u8> = b"(".repeat(depth);
            v.splice(at..at, pre);
        }
    }
}
