//! Small text helpers with one home: hashing and time stamps as the
//! notification pipeline, the engine and the adapters write them. Pure: no
//! clock reads.

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::series::Epoch;

/// Lower-case hex of the SHA-256 of `s` (64 characters).
pub fn sha256_hex(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

/// Lower-case hex of `bytes`, two digits per byte.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// RFC 3339 in UTC with second precision: `2024-03-05T14:42:00Z`. A time
/// outside what [`Timestamp`] supports (years before -9999 or after 9999) is
/// clamped into its range.
pub fn rfc3339(t: Epoch) -> String {
    let t = t.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second());
    Timestamp::from_second(t)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_string()
}

/// The event a scheduled function receives (unknown fields are ignored):
/// the evaluator's tick, the reporter's weekly run.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ScheduledEvent {
    /// EventBridge Scheduler: `<aws.scheduler.scheduled-time>`.
    #[serde(default)]
    pub scheduled_time: Option<String>,
    /// EventBridge scheduled rule: the event's `time`.
    #[serde(default)]
    pub time: Option<String>,
    #[serde(default)]
    pub execution_id: Option<String>,
    /// The evaluator's shards (the Step Functions state machine of a
    /// sharded stack): this shard, 1-based ...
    #[serde(default)]
    pub shard: Option<u32>,
    /// ... of this many.
    #[serde(default)]
    pub shards: Option<u32>,
    /// `deliver`: the delivery stage after the shards.
    #[serde(default)]
    pub stage: Option<String>,
}

impl ScheduledEvent {
    /// The minute it is for ([`scheduled_minute`]): its time, else `now`.
    pub fn minute(&self, now: Epoch) -> Result<Epoch, String> {
        scheduled_minute(self.scheduled_time.as_deref().or(self.time.as_deref()), now)
    }
}

/// The minute a scheduled invocation is for: the schedule's time (RFC 3339,
/// as EventBridge sends it) or, without one, `now`; aligned down to the
/// minute. Shared by the scheduled functions.
pub fn scheduled_minute(raw: Option<&str>, now: Epoch) -> Result<Epoch, String> {
    let t = match raw {
        None => now,
        Some(s) => s
            .parse::<jiff::Timestamp>()
            .map_err(|e| format!("scheduled time {s:?} is not RFC 3339: {e}"))?
            .as_second(),
    };
    Ok(t.div_euclid(60) * 60)
}

/// A comma-separated list (`FIREBELL_ALLOWED_TOPICS`, a CloudFormation
/// `CommaDelimitedList` joined): its items, trimmed, blanks dropped.
pub fn comma_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_known_vectors() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn hex_is_lower_case_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn rfc3339_is_utc_with_seconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_709_649_720), "2024-03-05T14:42:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        // Out of range: clamped, never a panic.
        let max = Timestamp::from_second(Timestamp::MAX.as_second())
            .ok()
            .map(|t| t.to_string());
        assert_eq!(Some(rfc3339(i64::MAX)), max);
        let min = Timestamp::from_second(Timestamp::MIN.as_second())
            .ok()
            .map(|t| t.to_string());
        assert_eq!(Some(rfc3339(i64::MIN)), min);
    }
}
