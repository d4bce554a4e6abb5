//! Time intervals on the local wall clock, across daylight-saving changes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cloned_ref_to_slice_refs
)]

mod common;

use common::config;
use firebell_core::series::Epoch;
use firebell_notify::TimeInterval;

const H: i64 = 3600;
/// 2024-03-10T00:00Z, Sunday (New York springs forward at 02:00 EST).
const NY_SPRING: Epoch = 1_710_028_800;
/// 2024-03-29T00:00Z, Friday (Berlin on CET, UTC+1).
const FRI_CET: Epoch = 1_711_670_400;
/// 2024-03-31T00:00Z, Sunday (Berlin: 02:00 CET becomes 03:00 CEST).
const BERLIN_SPRING: Epoch = 1_711_843_200;
/// 2024-04-01T00:00Z, Monday (Berlin on CEST, UTC+2).
const MON_CEST: Epoch = 1_711_929_600;
/// 2024-10-27T00:00Z, Sunday (Berlin: 03:00 CEST becomes 02:00 CET).
const BERLIN_FALL: Epoch = 1_729_987_200;

fn interval(yaml_specs: &str) -> TimeInterval {
    let yaml = format!(
        "receivers:\n  r: {{topics: [arn:aws:sns:us-east-1:123456789012:t]}}\nroute:\n  receiver: r\ntime_intervals:\n  i:\n{yaml_specs}"
    );
    let cfg = config(&yaml);
    cfg.time_intervals["i"].clone()
}

/// Minutes of `[from, to)` contained in `i`.
fn minutes_in(i: &TimeInterval, from: Epoch, to: Epoch) -> usize {
    (from..to).step_by(60).filter(|t| i.contains(*t)).count()
}

#[test]
fn business_hours_follow_the_utc_offset() {
    let i = interval(
        "    - weekdays: [\"monday:friday\"]\n      times: [{start_time: \"09:00\", end_time: \"17:00\"}]\n      location: Europe/Berlin\n",
    );
    // Friday on CET: 09:00-17:00 local is 08:00-16:00 UTC.
    assert!(!i.contains(FRI_CET + 8 * H - 1));
    assert!(i.contains(FRI_CET + 8 * H));
    assert!(i.contains(FRI_CET + 16 * H - 1));
    assert!(!i.contains(FRI_CET + 16 * H), "the end is exclusive");
    // Monday after the change, on CEST: 07:00-15:00 UTC.
    assert!(!i.contains(MON_CEST + 7 * H - 1));
    assert!(i.contains(MON_CEST + 7 * H));
    assert!(!i.contains(MON_CEST + 15 * H));
    // The Sunday of the change is not a weekday.
    assert_eq!(minutes_in(&i, BERLIN_SPRING, BERLIN_SPRING + 24 * H), 0);
    // Saturday 2024-03-30 neither.
    assert_eq!(minutes_in(&i, FRI_CET + 24 * H, FRI_CET + 48 * H), 0);
}

#[test]
fn a_range_inside_the_skipped_hour_never_holds() {
    let gap = interval(
        "    - times: [{start_time: \"02:00\", end_time: \"03:00\"}]\n      location: Europe/Berlin\n",
    );
    // 2024-03-30 22:00Z .. 2024-03-31 22:00Z is the local day of the change.
    assert_eq!(
        minutes_in(&gap, BERLIN_SPRING - 2 * H, BERLIN_SPRING + 22 * H),
        0
    );
    // The day before, it holds for an hour (01:00-02:00 UTC).
    assert_eq!(
        minutes_in(&gap, BERLIN_SPRING - 26 * H, BERLIN_SPRING - 2 * H),
        60
    );

    // 01:00-04:00 local spans the gap: 01:00-02:00 CET + 03:00-04:00 CEST,
    // i.e. 00:00-02:00 UTC, two hours only.
    let around = interval(
        "    - times: [{start_time: \"01:00\", end_time: \"04:00\"}]\n      location: Europe/Berlin\n",
    );
    assert!(!around.contains(BERLIN_SPRING - 1));
    assert!(around.contains(BERLIN_SPRING));
    assert!(around.contains(BERLIN_SPRING + 2 * H - 1));
    assert!(!around.contains(BERLIN_SPRING + 2 * H));
    assert_eq!(
        minutes_in(&around, BERLIN_SPRING - 2 * H, BERLIN_SPRING + 22 * H),
        120
    );
}

#[test]
fn a_range_inside_the_repeated_hour_holds_twice() {
    let i = interval(
        "    - times: [{start_time: \"02:00\", end_time: \"03:00\"}]\n      location: Europe/Berlin\n",
    );
    // 02:00-03:00 CEST is 00:00-01:00 UTC, then 02:00-03:00 CET is 01:00-02:00 UTC.
    assert!(!i.contains(BERLIN_FALL - 1));
    assert!(i.contains(BERLIN_FALL));
    assert!(i.contains(BERLIN_FALL + H));
    assert!(!i.contains(BERLIN_FALL + 2 * H));
    assert_eq!(
        minutes_in(&i, BERLIN_FALL - 2 * H, BERLIN_FALL + 23 * H),
        120
    );
}

#[test]
fn a_local_day_is_23_hours_long_when_clocks_spring_forward() {
    let i = interval(
        "    - days_of_month: [\"10\"]\n      months: [march]\n      location: America/New_York\n",
    );
    // March 10 local: 05:00Z on the 10th (EST) to 04:00Z on the 11th (EDT).
    assert!(!i.contains(NY_SPRING + 5 * H - 1));
    assert!(i.contains(NY_SPRING + 5 * H));
    assert!(i.contains(NY_SPRING + 28 * H - 1));
    assert!(!i.contains(NY_SPRING + 28 * H));
    assert_eq!(minutes_in(&i, NY_SPRING, NY_SPRING + 48 * H), 23 * 60);
}

#[test]
fn days_from_the_end_months_and_years() {
    let last = interval("    - days_of_month: [\"-1\"]\n      years: [\"2024\"]\n");
    // 2024-02-29 (leap year) is the last day of February.
    let feb29: Epoch = 1_709_164_800;
    assert!(last.contains(feb29));
    assert!(!last.contains(feb29 - 1));
    assert!(last.contains(BERLIN_SPRING), "March 31");
    assert!(!last.contains(BERLIN_SPRING - 86_400), "March 30");
    assert!(
        !last.contains(feb29 + 366 * 86_400),
        "2025-02-28 is outside 2024"
    );

    let q1 = interval("    - months: [\"january:march\", \"12\"]\n");
    assert!(q1.contains(BERLIN_SPRING));
    assert!(!q1.contains(MON_CEST));

    // Two specs: either holds.
    let either = interval(
        "    - weekdays: [saturday]\n    - weekdays: [sunday]\n      times: [{start_time: \"00:00\", end_time: \"12:00\"}]\n",
    );
    assert!(either.contains(FRI_CET + 24 * H + 20 * H), "Saturday 20:00");
    assert!(either.contains(BERLIN_SPRING + 11 * H), "Sunday 11:00");
    assert!(!either.contains(BERLIN_SPRING + 12 * H), "Sunday 12:00");
}
