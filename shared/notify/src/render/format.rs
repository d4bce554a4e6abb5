//! Small formatting helpers: times in a receiver's time zone, durations,
//! one-line and length-capped strings, sparklines.

use firebell_core::model::Unit;
use firebell_core::series::Epoch;
use firebell_core::text::rfc3339;
use jiff::Timestamp;
use jiff::fmt::strtime;
use jiff::tz::TimeZone;

/// Marks a cut string.
pub(crate) const ELLIPSIS: char = '…';

/// `t` as a timestamp, clamped into jiff's supported range.
fn timestamp(t: Epoch) -> Timestamp {
    let t = t.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second());
    Timestamp::from_second(t).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The time zone messages are written in.
#[derive(Debug, Clone)]
pub(crate) struct Zone {
    tz: TimeZone,
    /// IANA name actually used (`UTC` when the configured one is unknown).
    pub name: String,
    /// The configured name when it is not a known time zone.
    pub unknown: Option<String>,
}

impl Zone {
    /// The zone named `name` (IANA, e.g. `Europe/Berlin`); empty means UTC.
    /// An unknown name falls back to UTC and is remembered in `unknown`.
    pub(super) fn get(name: &str) -> Zone {
        let name = name.trim();
        if name.is_empty() || name.eq_ignore_ascii_case("utc") {
            return Zone::utc();
        }
        match TimeZone::get(name) {
            Ok(tz) => Zone {
                tz,
                name: name.to_string(),
                unknown: None,
            },
            Err(_) => Zone {
                unknown: Some(name.to_string()),
                ..Zone::utc()
            },
        }
    }

    pub(super) fn utc() -> Zone {
        Zone {
            tz: TimeZone::UTC,
            name: "UTC".to_string(),
            unknown: None,
        }
    }

    fn format(&self, fmt: &str, t: Epoch) -> String {
        let zdt = timestamp(t).to_zoned_datetime(self.tz.clone());
        strtime::format(fmt, &zdt).unwrap_or_else(|_| rfc3339(t))
    }

    pub(super) fn same_day(&self, a: Epoch, b: Epoch) -> bool {
        let day = |t| timestamp(t).to_zoned_datetime(self.tz.clone()).date();
        day(a) == day(b)
    }

    /// `15:42 CET`, with the date (`2024-03-04 15:42 CET`) when `t` is on
    /// another local day than `reference`.
    pub(super) fn time(&self, t: Epoch, reference: Epoch) -> String {
        if self.same_day(t, reference) {
            self.format("%H:%M %Z", t)
        } else {
            self.datetime(t)
        }
    }

    /// `2024-03-04 15:42 CET`.
    pub(super) fn datetime(&self, t: Epoch) -> String {
        self.format("%Y-%m-%d %H:%M %Z", t)
    }

    /// `15:42` (no zone): for ranges whose end carries the zone.
    pub(super) fn clock(&self, t: Epoch) -> String {
        self.format("%H:%M", t)
    }
}

/// A compact duration: `45s`, `12m`, `1h 5m`, `2d 3h`. Negative is `0s`.
pub(crate) fn duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => match (s / 3600, (s % 3600) / 60) {
            (h, 0) => format!("{h}h"),
            (h, m) => format!("{h}h {m}m"),
        },
        _ => match (s / 86400, (s % 86400) / 3600) {
            (d, 0) => format!("{d}d"),
            (d, h) => format!("{d}d {h}h"),
        },
    }
}

/// The name of a unit as written in rules and payloads.
pub(crate) fn unit_name(unit: Unit) -> &'static str {
    match unit {
        Unit::Percent => "percent",
        Unit::Milliseconds => "milliseconds",
        Unit::Seconds => "seconds",
        Unit::Count => "count",
        Unit::Ratio => "ratio",
        Unit::None => "none",
    }
}

/// `s` cut to at most `max` characters; a cut string ends in `…` (counted).
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().nth(max).is_none() {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    let kept = out.trim_end().len();
    out.truncate(kept);
    out.push(ELLIPSIS);
    out
}

/// `s` on one line: control characters and runs of whitespace become one
/// space; leading and trailing whitespace is dropped.
pub(crate) fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() || c.is_control() {
            space = true;
        } else {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    out
}

/// Whether `text` shows `value` as a token of its own: `5.2%` in
/// `Error rate 5.2%`, but `2` not in `EC2` or `12`.
pub(crate) fn mentions(text: &str, value: &str) -> bool {
    if value.is_empty() {
        return false;
    }
    let glued = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '.' || c == ',');
    text.match_indices(value).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + value.len()..].chars().next();
        // A trailing `.` ends a sentence; `5.` before a digit continues a number.
        let after_glued = match after {
            Some('.') | Some(',') => text[i + value.len() + 1..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit()),
            other => glued(other),
        };
        !glued(before) && !after_glued
    })
}

/// A Unicode sparkline of `values` (gaps and non-finite values as spaces),
/// scaled between their minimum and maximum, with that minimum and maximum.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sparkline {
    pub line: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

pub(crate) fn sparkline(values: &[Option<f64>]) -> Sparkline {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let present = || values.iter().flatten().copied().filter(|v| v.is_finite());
    let min = present().reduce(f64::min);
    let max = present().reduce(f64::max);
    let line = values
        .iter()
        .map(|v| match (v, min, max) {
            (Some(v), Some(lo), Some(hi)) if v.is_finite() => {
                if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
                    BARS[3]
                } else {
                    let level = ((v - lo) / (hi - lo) * 7.0).round();
                    // `level` is in 0..=7 by construction; the cast saturates anyway.
                    BARS[(level.max(0.0) as usize).min(7)]
                }
            }
            _ => ' ',
        })
        .collect();
    Sparkline { line, min, max }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(-5), "0s");
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(12 * 60 + 59), "12m");
        assert_eq!(duration(3600), "1h");
        assert_eq!(duration(3900), "1h 5m");
        assert_eq!(duration(2 * 86400 + 3 * 3600 + 59), "2d 3h");
        assert_eq!(duration(86400), "1d");
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
        assert_eq!(truncate("ab cd", 4), "ab…");
        assert_eq!(truncate("äöüß", 3), "äö…");
        assert_eq!(truncate("abc", 0), "");
    }

    #[test]
    fn mentions_whole_values_only() {
        assert!(mentions("Error rate 5.2%", "5.2%"));
        assert!(mentions("Latency is 850ms.", "850ms"));
        assert!(mentions("2 hosts down", "2"));
        assert!(!mentions("EC2 hosts down", "2"));
        assert!(!mentions("12 hosts down", "2"));
        assert!(!mentions("2.5 hosts", "2"));
        assert!(!mentions("Error rate 15.2%", "5.2%"));
        assert!(!mentions("anything", ""));
    }

    #[test]
    fn one_line_collapses_whitespace() {
        assert_eq!(one_line("  a\n\tb \r\n c\u{7}d "), "a b c d");
    }

    #[test]
    fn sparkline_scales_and_keeps_gaps() {
        let s = sparkline(&[Some(0.0), Some(7.0), None, Some(3.5), Some(f64::NAN)]);
        assert_eq!(s.line, "▁█ ▅ ");
        assert_eq!((s.min, s.max), (Some(0.0), Some(7.0)));
        assert_eq!(sparkline(&[Some(2.0), Some(2.0)]).line, "▄▄");
        assert_eq!(sparkline(&[None]).line, " ");
        assert_eq!(sparkline(&[]).min, None);
    }

    #[test]
    fn zones_show_abbreviations() {
        let berlin = Zone::get("Europe/Berlin");
        assert!(berlin.unknown.is_none());
        // 2024-01-15T14:42:00Z is winter (CET), 2024-07-15T13:42:00Z summer (CEST).
        assert_eq!(berlin.time(1_705_329_720, 1_705_329_720), "15:42 CET");
        assert_eq!(berlin.time(1_721_050_920, 1_721_050_920), "15:42 CEST");
        assert_eq!(
            berlin.time(1_705_329_720, 1_705_329_720 + 86400),
            "2024-01-15 15:42 CET"
        );
        let bad = Zone::get("Mars/Olympus");
        assert_eq!(bad.unknown.as_deref(), Some("Mars/Olympus"));
        assert_eq!(bad.time(1_705_329_720, 1_705_329_720), "14:42 UTC");
        assert_eq!(rfc3339(1_705_329_720), "2024-01-15T14:42:00Z");
    }
}
