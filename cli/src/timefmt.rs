//! Time formatting for terminal output.

use firebell_core::series::Epoch;
use jiff::Timestamp;

/// `15:42` (UTC).
pub(crate) fn hhmm(t: Epoch) -> String {
    Timestamp::from_second(t)
        .map(|ts| ts.strftime("%H:%M").to_string())
        .unwrap_or_else(|_| t.to_string())
}

pub(crate) use firebell_core::text::rfc3339;

/// Parses a time, absolute or relative to the wall clock (see [`parse_at`]).
pub(crate) fn parse(s: &str) -> anyhow::Result<Epoch> {
    parse_at(s, Timestamp::now().as_second())
}

/// Parses a time the way every command takes one:
/// - RFC 3339 (`2026-11-23T15:42:00Z`), a UTC day (`2026-11-23`, its
///   midnight) or Unix seconds (`1795448820`);
/// - relative to `now`: `now`, `now-6h`, `now+30m`, `-1d`, and a bare
///   duration such as `7d`, meaning that long ago (`--since 7d`).
pub(crate) fn parse_at(s: &str, now: Epoch) -> anyhow::Result<Epoch> {
    let t = s.trim();
    let bad = || {
        anyhow::anyhow!(
            "invalid time {s:?} (expected RFC 3339 such as 2026-11-23T15:42:00Z, a day such as 2026-11-23, Unix seconds, or a time relative to now: now, now-6h, -1d, 7d)"
        )
    };
    let span = |d: &str| -> anyhow::Result<Epoch> {
        firebell_core::decode::parse_duration(d)
            .and_then(|d| Epoch::try_from(d.as_secs()).ok())
            .ok_or_else(bad)
    };
    if t == "now" {
        return Ok(now);
    }
    if let Some(rest) = t.strip_prefix("now") {
        return match rest.split_at_checked(1) {
            Some(("-", d)) => Ok(now - span(d)?),
            Some(("+", d)) => Ok(now + span(d)?),
            _ => Err(bad()),
        };
    }
    if let Some(d) = t.strip_prefix('-') {
        return Ok(now - span(d)?);
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<Epoch>().map_err(|_| bad());
    }
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts.as_second());
    }
    if t.parse::<jiff::civil::Date>().is_ok()
        && let Ok(ts) = format!("{t}T00:00:00Z").parse::<Timestamp>()
    {
        return Ok(ts.as_second());
    }
    if t.starts_with(|c: char| c.is_ascii_digit()) && !t.contains(['-', ':']) {
        return Ok(now - span(t)?);
    }
    Err(bad())
}

/// `5m`, `1h12m`.
pub(crate) fn span(secs: i64) -> String {
    firebell_core::decode::format_duration(std::time::Duration::from_secs(secs.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::parse_at;

    const NOW: i64 = 1_795_448_820; // 2026-11-23T15:47:00Z

    #[test]
    fn absolute_and_relative_times() {
        for (text, want) in [
            ("2026-11-23T15:42:00Z", 1_795_448_520),
            ("2026-11-23", 1_795_392_000),
            ("1795448820", NOW),
            ("now", NOW),
            ("now-6h", NOW - 6 * 3600),
            ("now+30m", NOW + 1800),
            ("-1d", NOW - 86_400),
            ("7d", NOW - 7 * 86_400),
            (" 1h30m ", NOW - 5400),
        ] {
            assert_eq!(parse_at(text, NOW).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn a_bad_time_says_what_is_expected() {
        for text in ["yesterday", "now*2", "-", "2026-13-45", ""] {
            assert_eq!(
                parse_at(text, NOW).unwrap_err().to_string(),
                format!(
                    "invalid time {text:?} (expected RFC 3339 such as 2026-11-23T15:42:00Z, a day such as 2026-11-23, Unix seconds, or a time relative to now: now, now-6h, -1d, 7d)"
                )
            );
        }
    }
}
