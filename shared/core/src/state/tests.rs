//! Timeline tests: a series in, the state after each datapoint out.
//!
//! Values: a number, `_` for a missing datapoint, a number followed by `~` for
//! a datapoint under the volume guard (not judged). States: I(nactive),
//! P(ending), F(iring), R(esolved), N(oData). Datapoints are one minute apart.

use std::time::Duration;

use super::*;
use crate::model::Op;

fn machine(pending: Pending) -> Machine {
    Machine {
        condition: Condition {
            op: Op::Gt,
            threshold: 1.0,
            recovery: None,
        },
        pending,
        keep_firing_for: 0,
        missing_data: MissingData::Keep,
        step: 60,
    }
}

fn for_(mins: u64) -> Pending {
    Pending::For(Duration::from_secs(mins * 60))
}

fn letter(s: Status) -> char {
    match s {
        Status::Inactive => 'I',
        Status::Pending => 'P',
        Status::Firing => 'F',
        Status::Resolved => 'R',
        Status::NoData => 'N',
    }
}

/// Runs the timeline and returns the states, space separated.
fn run(m: &Machine, values: &str) -> String {
    let mut st = InstanceState::default();
    run_from(m, &mut st, values)
}

fn run_from(m: &Machine, st: &mut InstanceState, values: &str) -> String {
    let mut out = Vec::new();
    for (i, tok) in values.split_whitespace().enumerate() {
        let t = 60 * i as i64;
        let (tok, judged) = match tok.strip_suffix('~') {
            Some(rest) => (rest, false),
            None => (tok, true),
        };
        let value = if tok == "_" {
            None
        } else {
            Some(tok.parse::<f64>().unwrap())
        };
        m.step(st, Observation { t, value, judged });
        out.push(letter(st.status).to_string());
    }
    out.join(" ")
}

#[test]
fn fires_at_once_without_for_and_resolves() {
    let m = machine(for_(0));
    assert_eq!(run(&m, "0 2 3 0 0 2"), "I F F R R F");
}

#[test]
fn for_needs_the_condition_to_hold_for_the_whole_period() {
    let m = machine(for_(2));
    assert_eq!(run(&m, "2 2 2 2 0"), "P P F F R");
    // A clear datapoint during pending starts over.
    assert_eq!(run(&m, "2 2 0 2 2 2"), "P P I P P F");
}

#[test]
fn m_of_n_fires_on_enough_breaches_in_the_window() {
    let m = machine(Pending::MofN { m: 2, n: 3 });
    assert_eq!(run(&m, "2 0 2 0 0 0"), "P P F R R R");
    // One breach stays pending until it leaves the window of three.
    assert_eq!(run(&m, "2 0 0 0 2"), "P P P I P");
    // Firing holds while at least M of the last N breach.
    assert_eq!(run(&m, "2 2 0 2 0 0"), "P F F F R R");
}

#[test]
fn keep_firing_for_holds_a_firing_alert_after_the_condition_clears() {
    let mut m = machine(for_(0));
    m.keep_firing_for = 120;
    assert_eq!(run(&m, "2 0 0 0 0"), "F F F R R");
    // A breach inside the keep window restarts it.
    assert_eq!(run(&m, "2 0 2 0 0 0"), "F F F F F R");
}

#[test]
fn hysteresis_keeps_firing_until_the_recovery_threshold() {
    let mut m = machine(for_(0));
    m.condition.recovery = Some(0.5);
    assert_eq!(run(&m, "2 0.8 0.6 0.4 0.8 1.5"), "F F F R R F");
}

#[test]
fn hysteresis_with_keep_firing_for() {
    let mut m = machine(for_(0));
    m.condition.recovery = Some(0.5);
    m.keep_firing_for = 120;
    // 0.8 is above recovery: still breaching, so the keep window starts at the
    // first datapoint below 0.5 (minute 3) and lasts two minutes.
    assert_eq!(run(&m, "2 0.8 0.8 0.4 0.4 0.4 0.4"), "F F F F F R R");
}

#[test]
fn missing_data_keep_holds_state_through_a_gap_during_pending() {
    let m = machine(for_(3));
    assert_eq!(run(&m, "2 _ _ 2 2"), "P P P F F");
    let mut st = InstanceState::default();
    run_from(&m, &mut st, "2 _ _ 2");
    assert_eq!(st.active_since, Some(0));
    assert_eq!(st.fired_at, Some(180));
}

#[test]
fn missing_data_ok_resets_pending_and_resolves() {
    let mut m = machine(for_(2));
    m.missing_data = MissingData::Ok;
    assert_eq!(run(&m, "2 _ 2 2 2 _"), "P I P P F R");
}

#[test]
fn missing_data_breaching_counts_as_a_breach() {
    let mut m = machine(for_(2));
    m.missing_data = MissingData::Breaching;
    assert_eq!(run(&m, "0 _ _ _ 0"), "I P P F R");
}

#[test]
fn missing_data_nodata_raises_nodata_after_the_pending_period() {
    let mut m = machine(for_(3));
    m.missing_data = MissingData::NoData;
    // A 2-minute gap is not enough; a 3-minute gap is.
    assert_eq!(run(&m, "0 _ _ 0 _ _ _ _ 0"), "I I I I I I N N I");
    let mut st = InstanceState::default();
    let mut events = Vec::new();
    for (i, v) in [Some(0.0), None, None, None, Some(0.0)]
        .into_iter()
        .enumerate()
    {
        events.extend(m.step(&mut st, Observation::new(60 * i as i64, v)));
    }
    assert_eq!(
        events,
        vec![
            Event::NoDataStarted { at: 180 },
            Event::NoDataEnded { at: 240 }
        ]
    );
    assert_eq!(st.nodata_since, None);
}

#[test]
fn nodata_ends_a_firing_alert_with_a_resolve() {
    let mut m = machine(for_(0));
    m.missing_data = MissingData::NoData;
    let mut st = InstanceState::default();
    // One missing datapoint is not NoData; three are.
    assert_eq!(run_from(&m, &mut st, "2 _ 2 _ _ _ 2"), "F F F F F N F");
}

#[test]
fn volume_guard_ignores_breaches_at_low_traffic() {
    let m = machine(Pending::MofN { m: 2, n: 3 });
    // Two of three breach, but traffic is too low to judge: nothing fires.
    assert_eq!(run(&m, "0 50~ 50~ 0"), "I I I I");
    // While firing, low traffic neither resolves nor keeps breaching.
    let m = machine(for_(0));
    assert_eq!(run(&m, "2 0~ 0~ 0"), "F F F R");
}

#[test]
fn replaying_old_datapoints_is_ignored() {
    let m = machine(for_(0));
    let mut st = InstanceState::default();
    assert_eq!(m.step(&mut st, Observation::new(60, Some(2.0))).len(), 1);
    assert!(m.step(&mut st, Observation::new(60, Some(0.0))).is_empty());
    assert!(m.step(&mut st, Observation::new(0, Some(0.0))).is_empty());
    assert_eq!(st.status, Status::Firing);
}

#[test]
fn events_carry_times_and_values() {
    let m = machine(for_(1));
    let mut st = InstanceState::default();
    let mut events = Vec::new();
    for (i, v) in [2.0, 3.0, 5.0, 0.5].into_iter().enumerate() {
        events.extend(m.step(&mut st, Observation::new(60 * i as i64, Some(v))));
    }
    assert_eq!(
        events,
        vec![
            Event::Pending { at: 0 },
            Event::Fired {
                at: 60,
                value: Some(3.0)
            },
            Event::Resolved {
                at: 180,
                value: Some(0.5)
            },
        ]
    );
    assert_eq!(st.peak, Some(5.0));
}

#[test]
fn lower_bound_conditions_track_the_lowest_peak() {
    let mut m = machine(for_(0));
    m.condition = Condition {
        op: Op::Lt,
        threshold: 10.0,
        recovery: Some(20.0),
    };
    let mut st = InstanceState::default();
    assert_eq!(run_from(&m, &mut st, "5 3 15 25"), "F F F R");
    assert_eq!(st.peak, Some(3.0));
}

#[test]
fn state_round_trips_through_json() {
    let m = machine(Pending::MofN { m: 2, n: 3 });
    let mut st = InstanceState::default();
    run_from(&m, &mut st, "2 0 2");
    let json = serde_json::to_string(&st).unwrap();
    let back: InstanceState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, st);
}

#[test]
fn m_of_n_keep_firing_for_is_not_renewed_by_too_few_breaches() {
    // 3 of 5 with keep_firing_for 5m; after firing, one breach every 4 minutes
    // never makes 3 of 5 again, so the alert must resolve.
    let mut m = machine(Pending::MofN { m: 3, n: 5 });
    m.keep_firing_for = 300;
    let states = run(&m, "2 2 2 0 0 0 2 0 0 0 2 0 0 0 2");
    assert!(states.contains('R'), "{states}");
}

#[test]
fn m_of_n_never_resolves_on_a_breaching_datapoint() {
    // 4 of 5, keep_firing_for 5m: five on, five off, five on. Held through
    // the first off stretch; the second stretch's breaches are not resolved
    // on, and make 4 of 5 again: one alert.
    let mut m = machine(Pending::MofN { m: 4, n: 5 });
    m.keep_firing_for = 300;
    let states = run(&m, "2 2 2 2 2 0 0 0 0 0 2 2 2 2 2 0 0 0 0 0 0 0 0 0 0");
    assert_eq!(
        states, "P P P F F F F F F F F F F F F F F F F F F R R R R",
        "fired once, resolved once"
    );
}

#[test]
fn m_of_n_window_forgets_breaches_older_than_n_periods() {
    let m = machine(Pending::MofN { m: 2, n: 3 });
    let mut st = InstanceState::default();
    m.step(&mut st, Observation::new(0, Some(2.0)));
    // A breach an hour later does not pair with the one before the gap.
    m.step(&mut st, Observation::new(3600, Some(2.0)));
    assert_eq!(st.status, Status::Pending);
    m.step(&mut st, Observation::new(3660, Some(2.0)));
    assert_eq!(st.status, Status::Firing);
}

#[test]
fn events_read_as_text() {
    let fired = Event::Fired {
        at: 1_795_448_700,
        value: Some(4.823_333_333),
    };
    assert_eq!(
        fired.to_string(),
        "fired (datapoint 2026-11-23T15:45:00Z, value 4.823333333)"
    );
    assert_eq!(
        Event::PendingCleared { at: 0 }.to_string(),
        "pending cleared (datapoint 1970-01-01T00:00:00Z)"
    );
}
