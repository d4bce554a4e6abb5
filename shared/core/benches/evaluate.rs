//! Evaluation throughput: 10,000 rule instances x 60 datapoints.
//!
//! For each instance: evaluate the rule's expression over its 60-point grid,
//! apply the minimum-volume guard, and step the alert state machine through
//! every datapoint, as one engine cycle does after a cold start.
//!
//! Run: `cargo bench -p firebell-core --bench evaluate`. Prints figures; single thread.

use std::hint::black_box;
use std::time::{Duration, Instant};

use firebell_core::expr::Expr;
use firebell_core::model::{Condition, MissingData, Op, Pending};
use firebell_core::series::{Grid, Series, window_at_least};
use firebell_core::state::{InstanceState, Machine, Observation};

const INSTANCES: usize = 10_000;
const POINTS: usize = 60;

fn main() {
    let grid = Grid {
        start: 1_795_392_000,
        step: 60,
        len: POINTS,
    };
    // Deterministic, varied inputs: most instances quiet, some breaching, some gaps.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let inputs: Vec<(Series, Series)> = (0..INSTANCES)
        .map(|i| {
            let req: Series = (0..POINTS)
                .map(|_| Some(200.0 + (next() % 800) as f64))
                .collect();
            let err: Series = (0..POINTS)
                .map(|p| {
                    let bad = i % 10 == 0 && p > 30;
                    if next() % 50 == 0 {
                        None
                    } else if bad {
                        Some(20.0 + (next() % 20) as f64)
                    } else {
                        Some((next() % 3) as f64)
                    }
                })
                .collect();
            (err, req)
        })
        .collect();

    let expr = match Expr::parse("100 * FILL(errors, 0) / requests") {
        Ok(e) => e,
        Err(e) => panic!("bench expression: {e}"),
    };
    let machine = Machine {
        condition: Condition {
            op: Op::Gt,
            threshold: 1.0,
            recovery: Some(0.5),
        },
        pending: Pending::For(Duration::from_secs(300)),
        keep_firing_for: 120,
        missing_data: MissingData::Keep,
        step: 60,
    };

    let run = |states: &mut Vec<InstanceState>| -> usize {
        let mut events = 0;
        let mut out = Vec::new();
        for (i, (err, req)) in inputs.iter().enumerate() {
            let values = match expr.eval(&grid, &|id| match id {
                "errors" => Some(err.as_slice()),
                "requests" => Some(req.as_slice()),
                _ => None,
            }) {
                Ok(v) => v,
                Err(e) => panic!("eval: {e}"),
            };
            let st = &mut states[i];
            let guard = window_at_least(&grid, req, 300, 100.0);
            for (p, v) in values.iter().enumerate() {
                let judged = guard[p];
                machine.step_into(
                    st,
                    Observation {
                        t: grid.time(p),
                        value: *v,
                        judged,
                    },
                    &mut out,
                );
                events += out.len();
                out.clear();
            }
        }
        events
    };

    // Warm up, then measure several rounds on fresh states (a cold cycle: all 60 points each).
    let mut states = vec![InstanceState::default(); INSTANCES];
    black_box(run(&mut states));
    let rounds = 5;
    let mut best = Duration::MAX;
    let mut events = 0;
    for _ in 0..rounds {
        let mut states = vec![InstanceState::default(); INSTANCES];
        let t = Instant::now();
        events = black_box(run(&mut states));
        best = best.min(t.elapsed());
    }
    let secs = best.as_secs_f64();
    let instance_windows = INSTANCES as f64 / secs;
    let instance_points = (INSTANCES * POINTS) as f64 / secs;
    println!(
        "evaluate: {INSTANCES} instances x {POINTS} datapoints, best of {rounds} rounds, 1 thread"
    );
    println!(
        "  expression: 100 * FILL(errors, 0) / requests; for 5m, hysteresis, keep_firing_for, volume guard"
    );
    println!(
        "  wall time per round:                 {:>10.2} ms",
        secs * 1e3
    );
    println!(
        "  instance evaluations (datapoint)/s:  {:>10.0}",
        instance_points
    );
    println!(
        "  instance windows (60 points)/s:      {:>10.0}",
        instance_windows
    );
    println!("  state-machine events per round:      {:>10}", events);
    // Each part alone, one pass each (not best-of, so noisier).
    let t = Instant::now();
    for (err, req) in &inputs {
        black_box(
            expr.eval(&grid, &|id| match id {
                "errors" => Some(err.as_slice()),
                "requests" => Some(req.as_slice()),
                _ => None,
            })
            .ok(),
        );
    }
    println!(
        "  expression alone (one pass):         {:>10.2} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let t = Instant::now();
    for (_, req) in &inputs {
        black_box(window_at_least(&grid, req, 300, 100.0));
    }
    println!(
        "  volume guard alone (one pass):       {:>10.2} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let t = Instant::now();
    let mut states = vec![InstanceState::default(); INSTANCES];
    for (i, (err, _)) in inputs.iter().enumerate() {
        for (p, v) in err.iter().enumerate() {
            black_box(machine.step(
                &mut states[i],
                Observation {
                    t: grid.time(p),
                    value: *v,
                    judged: true,
                },
            ));
        }
    }
    println!(
        "  state machine alone (one pass):      {:>10.2} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    println!(
        "  target >= 1,000,000 instance evaluations/s: {}",
        if instance_points >= 1_000_000.0 {
            "met"
        } else {
            "NOT met"
        }
    );
}
