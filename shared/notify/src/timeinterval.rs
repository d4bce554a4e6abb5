//! Named time intervals (Alertmanager `time_intervals`), used by routes as
//! `mute_time_intervals` and `active_time_intervals`.
//!
//! An interval is a list of specs; it contains an instant when any spec does.
//! A spec contains an instant when every constraint it sets holds for the
//! wall-clock time at that instant in the spec's `location` (default UTC):
//! `times` (start inclusive, end exclusive, minute precision), `weekdays`,
//! `days_of_month` (negative counts from the end: `-1` is the last day),
//! `months` and `years`. Constraints left out hold always.
//!
//! Because the check works on the local wall clock, it is right across
//! daylight-saving changes: `09:00-17:00` in `Europe/Berlin` starts at 08:00
//! UTC in winter and at 07:00 UTC in summer, a range inside a skipped hour
//! never holds on that day and a range inside a repeated hour holds twice.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use firebell_core::series::Epoch;

/// A named time interval.
#[derive(Debug, Clone)]
pub struct TimeInterval {
    pub name: String,
    pub specs: Vec<TimeSpec>,
}

impl TimeInterval {
    /// 09:00-18:00, Monday to Friday, in the time zone `zone` (UTC when it
    /// is not a known IANA name): the default working hours of a receiver.
    pub fn office_hours(zone: &str) -> TimeInterval {
        let (location_name, location) = match parse_time_zone(zone) {
            Some(tz) => (zone.to_string(), tz),
            None => ("UTC".to_string(), TimeZone::UTC),
        };
        TimeInterval {
            name: format!("09:00-18:00 Monday-Friday {location_name}"),
            specs: vec![TimeSpec {
                times: vec![(9 * 60, 18 * 60)],
                weekdays: vec![(1, 5)],
                location_name,
                location,
                ..TimeSpec::default()
            }],
        }
    }

    /// Whether any spec holds at `t`.
    pub fn contains(&self, t: Epoch) -> bool {
        self.specs.iter().any(|s| s.contains(t))
    }
}

/// One spec of an interval. Ranges are inclusive except `times` (end exclusive).
#[derive(Debug, Clone)]
pub struct TimeSpec {
    /// Minutes since local midnight, `[start, end)`; `end` may be 1440 (24:00).
    pub times: Vec<(u16, u16)>,
    /// Days of the week, Monday = 1 .. Sunday = 7.
    pub weekdays: Vec<(u8, u8)>,
    /// Days of the month, 1..=31 or -31..=-1 (from the end).
    pub days_of_month: Vec<(i8, i8)>,
    /// Months, 1..=12.
    pub months: Vec<(u8, u8)>,
    pub years: Vec<(i16, i16)>,
    /// The IANA name of `location`.
    pub location_name: String,
    pub location: TimeZone,
}

impl Default for TimeSpec {
    fn default() -> Self {
        TimeSpec {
            times: Vec::new(),
            weekdays: Vec::new(),
            days_of_month: Vec::new(),
            months: Vec::new(),
            years: Vec::new(),
            location_name: "UTC".to_string(),
            location: TimeZone::UTC,
        }
    }
}

fn any_or<T: Copy>(ranges: &[(T, T)], f: impl Fn(T, T) -> bool) -> bool {
    ranges.is_empty() || ranges.iter().any(|&(a, b)| f(a, b))
}

impl TimeSpec {
    pub fn contains(&self, t: Epoch) -> bool {
        let Ok(ts) = Timestamp::from_second(t) else {
            return false;
        };
        let dt = self.location.to_datetime(ts);
        let minute = u16::try_from(i32::from(dt.hour()) * 60 + i32::from(dt.minute())).unwrap_or(0);
        let weekday = u8::try_from(dt.weekday().to_monday_one_offset()).unwrap_or(0);
        let day = dt.day();
        let days_in_month = dt.days_in_month();
        let month = u8::try_from(dt.month()).unwrap_or(0);
        let year = dt.year();
        let resolve = |d: i8| if d < 0 { days_in_month + d + 1 } else { d };
        any_or(&self.times, |a, b| a <= minute && minute < b)
            && any_or(&self.weekdays, |a, b| a <= weekday && weekday <= b)
            && any_or(&self.days_of_month, |a, b| {
                let (a, b) = (resolve(a), resolve(b));
                a <= day && day <= b
            })
            && any_or(&self.months, |a, b| a <= month && month <= b)
            && any_or(&self.years, |a, b| a <= year && year <= b)
    }
}

const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn split_range(s: &str) -> (&str, Option<&str>) {
    match s.split_once(':') {
        Some((a, b)) => (a.trim(), Some(b.trim())),
        None => (s.trim(), None),
    }
}

fn ordered<T: PartialOrd + Copy>(what: &str, s: &str, a: T, b: T) -> Result<(T, T), String> {
    if a > b {
        Err(format!(
            "invalid {what} range {s:?}: the start is after the end"
        ))
    } else {
        Ok((a, b))
    }
}

/// `monday`, `monday:friday` (case-insensitive).
pub(crate) fn parse_weekday_range(s: &str) -> Result<(u8, u8), String> {
    let one = |p: &str| {
        let p = p.to_ascii_lowercase();
        WEEKDAYS
            .iter()
            .position(|w| *w == p)
            .and_then(|i| u8::try_from(i + 1).ok())
            .ok_or_else(|| {
                format!(
                    "invalid weekday {s:?} (expected monday..sunday, or a range such as \"monday:friday\")"
                )
            })
    };
    let (a, b) = split_range(s);
    let a = one(a)?;
    let b = match b {
        Some(b) => one(b)?,
        None => a,
    };
    ordered("weekday", s, a, b)
}

/// `january`, `1`, `january:march`, `10:12`.
pub(crate) fn parse_month_range(s: &str) -> Result<(u8, u8), String> {
    let one = |p: &str| {
        let lower = p.to_ascii_lowercase();
        MONTHS
            .iter()
            .position(|m| *m == lower)
            .and_then(|i| u8::try_from(i + 1).ok())
            .or_else(|| p.parse::<u8>().ok().filter(|m| (1..=12).contains(m)))
            .ok_or_else(|| {
                format!(
                    "invalid month {s:?} (expected january..december or 1..12, or a range such as \"january:march\")"
                )
            })
    };
    let (a, b) = split_range(s);
    let a = one(a)?;
    let b = match b {
        Some(b) => one(b)?,
        None => a,
    };
    ordered("month", s, a, b)
}

/// `1`, `-1`, `1:5`, `-3:-1`, `1:-1`.
pub(crate) fn parse_day_of_month_range(s: &str) -> Result<(i8, i8), String> {
    let one = |p: &str| {
        p.parse::<i8>()
            .ok()
            .filter(|d| (1..=31).contains(d) || (-31..=-1).contains(d))
            .ok_or_else(|| {
                format!(
                    "invalid day of month {s:?} (expected 1..31 or -31..-1, or a range such as \"1:5\")"
                )
            })
    };
    let (a, b) = split_range(s);
    let a = one(a)?;
    let b = match b {
        Some(b) => one(b)?,
        None => a,
    };
    if a.signum() == b.signum() {
        ordered("day of month", s, a, b)
    } else if a < 0 {
        Err(format!(
            "invalid day of month range {s:?}: a range cannot run from a day counted from the end to a day counted from the start"
        ))
    } else if i16::from(a) > 32 + i16::from(b) {
        // From a day of the month to a day counted from its end: empty in
        // every month when empty in the longest (31 days).
        Err(format!(
            "invalid day of month range {s:?}: it holds on no day of any month ({b} is day {} of a 31-day month, before day {a})",
            32 + i16::from(b)
        ))
    } else {
        Ok((a, b))
    }
}

/// `2024`, `2024:2026`.
pub(crate) fn parse_year_range(s: &str) -> Result<(i16, i16), String> {
    let one = |p: &str| {
        p.parse::<i16>()
            .ok()
            .filter(|y| (1970..=9999).contains(y))
            .ok_or_else(|| {
                format!("invalid year {s:?} (expected a year such as 2025, or a range such as \"2025:2026\")")
            })
    };
    let (a, b) = split_range(s);
    let a = one(a)?;
    let b = match b {
        Some(b) => one(b)?,
        None => a,
    };
    ordered("year", s, a, b)
}

/// `HH:MM` as minutes since midnight; `24:00` only when `allow_24`.
pub(crate) fn parse_time_of_day(s: &str, allow_24: bool) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    if m >= 60 || h > 24 || (h == 24 && (m != 0 || !allow_24)) {
        return None;
    }
    Some(h * 60 + m)
}

/// A time zone by IANA name (`UTC`, `Europe/Berlin`), from the bundled database.
pub(crate) fn parse_time_zone(name: &str) -> Option<TimeZone> {
    if name.is_empty() || name.eq_ignore_ascii_case("local") {
        return None;
    }
    TimeZone::get(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_weekday_range("Monday:friday"), Ok((1, 5)));
        assert_eq!(parse_weekday_range("sunday"), Ok((7, 7)));
        assert_eq!(
            parse_weekday_range("friday:monday").unwrap_err(),
            "invalid weekday range \"friday:monday\": the start is after the end"
        );
        assert_eq!(parse_month_range("january:march"), Ok((1, 3)));
        assert_eq!(parse_month_range("12"), Ok((12, 12)));
        assert!(parse_month_range("13").is_err());
        assert_eq!(parse_day_of_month_range("-3:-1"), Ok((-3, -1)));
        assert_eq!(parse_day_of_month_range("1:-1"), Ok((1, -1)));
        assert!(parse_day_of_month_range("0").is_err());
        assert!(parse_day_of_month_range("-1:1").is_err());
        // Holds in 31-day months only (days 29 to 31), or in none.
        assert_eq!(parse_day_of_month_range("29:-1"), Ok((29, -1)));
        assert_eq!(parse_day_of_month_range("31:-1"), Ok((31, -1)));
        assert_eq!(
            parse_day_of_month_range("10:-25").unwrap_err(),
            "invalid day of month range \"10:-25\": it holds on no day of any month (-25 is day 7 of a 31-day month, before day 10)"
        );
        assert!(parse_day_of_month_range("8:-25").is_err());
        assert_eq!(parse_day_of_month_range("7:-25"), Ok((7, -25)));
        assert_eq!(parse_time_of_day("09:30", false), Some(570));
        assert_eq!(parse_time_of_day("24:00", true), Some(1440));
        assert_eq!(parse_time_of_day("24:00", false), None);
        assert_eq!(parse_time_of_day("9:5", false), None);
        assert_eq!(parse_time_of_day("25:00", true), None);
    }
}
