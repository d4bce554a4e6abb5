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

/// Parses an RFC 3339 time (`2026-11-23T15:42:00Z`).
pub(crate) fn parse(s: &str) -> anyhow::Result<Epoch> {
    let ts: Timestamp = s.parse().map_err(|e| {
        anyhow::anyhow!("invalid time {s:?} (expected RFC 3339, e.g. 2026-11-23T15:42:00Z): {e}")
    })?;
    Ok(ts.as_second())
}

/// `5m`, `1h12m`.
pub(crate) fn span(secs: i64) -> String {
    firebell_core::decode::format_duration(std::time::Duration::from_secs(secs.max(0) as u64))
}
