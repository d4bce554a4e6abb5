//! Timestamp-aligned series. Times are Unix epoch seconds (`i64`) on the hot
//! path; convert to `jiff::Timestamp` at the edges.

use serde::{Deserialize, Serialize};

/// Unix epoch seconds.
pub type Epoch = i64;

/// One datapoint as a metrics source returns it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub t: Epoch,
    pub v: f64,
}

/// The most points a grid may have: 15 days of 1-second data (1,296,000),
/// the finest period over its longest retention, rounded up. Any validated
/// rule fits; the cap bounds what one series can allocate (about 32 MB).
pub const MAX_GRID_POINTS: usize = 2_000_000;

/// A regular time grid: `len` buckets of `step` seconds starting at `start`.
/// Bucket `i` is labelled with its start time `start + i * step`, as CloudWatch labels periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grid {
    pub start: Epoch,
    pub step: i64,
    pub len: usize,
}

impl Grid {
    /// The grid of complete periods of `step` seconds that end at or before `end`
    /// and start at or after `end - lookback` (both aligned down to `step`).
    pub fn ending_at(end: Epoch, lookback: i64, step: i64) -> Grid {
        let step = step.max(1);
        let last_end = end.div_euclid(step) * step;
        let first = (end - lookback).div_euclid(step) * step;
        let len = ((last_end - first) / step).max(0) as usize;
        Grid {
            start: first,
            step,
            len,
        }
    }

    /// [`Grid::ending_at`] with every computation checked: the grid of
    /// `lookback` ending at `end` in steps of `step`, or why it cannot be
    /// built (a step or lookback beyond `i64` seconds, an `end` so far out
    /// that subtracting wraps, or more than [`MAX_GRID_POINTS`] points,
    /// which would allocate without bound). Validated rules never hit
    /// these; a rule built some other way fails alone instead of aborting.
    pub fn checked_ending_at(
        end: Epoch,
        lookback: std::time::Duration,
        step: std::time::Duration,
    ) -> Result<Grid, String> {
        let step_s = i64::try_from(step.as_secs().max(1))
            .map_err(|_| format!("period of {} s is out of range", step.as_secs()))?;
        let back = i64::try_from(lookback.as_secs())
            .map_err(|_| format!("lookback of {} s is out of range", lookback.as_secs()))?;
        let first = end
            .checked_sub(back)
            .ok_or_else(|| format!("lookback of {back} s before {end} is out of range"))?;
        let points = (end.div_euclid(step_s) - first.div_euclid(step_s)).max(0);
        if points > MAX_GRID_POINTS as i64 {
            return Err(format!(
                "lookback of {back} s in steps of {step_s} s is {points} points (expected at most {MAX_GRID_POINTS})"
            ));
        }
        Ok(Grid::ending_at(end, back, step_s))
    }

    pub fn time(&self, i: usize) -> Epoch {
        self.start + self.step * i as i64
    }

    pub fn end(&self) -> Epoch {
        self.time(self.len)
    }

    pub fn index_of(&self, t: Epoch) -> Option<usize> {
        if t < self.start || (t - self.start) % self.step != 0 {
            return None;
        }
        let i = ((t - self.start) / self.step) as usize;
        (i < self.len).then_some(i)
    }

    pub fn times(&self) -> impl Iterator<Item = Epoch> + '_ {
        (0..self.len).map(|i| self.time(i))
    }
}

/// Values aligned to a [`Grid`]; `None` is a missing datapoint.
pub type Series = Vec<Option<f64>>;

/// Places points onto `grid`. A point whose time falls inside bucket `i`
/// (`[time(i), time(i+1))`) lands in bucket `i`; a later point for the same
/// bucket wins. Points outside the grid are dropped.
pub fn align(points: &[Point], grid: &Grid) -> Series {
    let mut out = vec![None; grid.len];
    for p in points {
        if p.t < grid.start || !p.v.is_finite() {
            continue;
        }
        let i = ((p.t - grid.start) / grid.step) as usize;
        if let Some(slot) = out.get_mut(i) {
            *slot = Some(p.v);
        }
    }
    out
}

/// Sums the present values of `series` over buckets whose time is in `(end - window, end]`.
pub fn window_sum(grid: &Grid, series: &[Option<f64>], end_index: usize, window: i64) -> f64 {
    let end_t = grid.time(end_index);
    let mut sum = 0.0;
    let mut i = end_index as i64;
    while i >= 0 {
        let t = grid.time(i as usize);
        if t <= end_t - window {
            break;
        }
        if let Some(Some(v)) = series.get(i as usize) {
            sum += v;
        }
        i -= 1;
    }
    sum
}

/// For every bucket `i`, whether the sum of present values over the buckets
/// in `(time(i) - window, time(i)]` is at least `at_least`. O(len): a sliding
/// sum, for the minimum-volume guard.
pub fn window_at_least(
    grid: &Grid,
    series: &[Option<f64>],
    window: i64,
    at_least: f64,
) -> Vec<bool> {
    let span = usize::try_from((window + grid.step - 1) / grid.step.max(1))
        .unwrap_or(0)
        .max(1);
    let mut out = Vec::with_capacity(series.len());
    let mut sum = 0.0;
    for i in 0..series.len() {
        sum += series[i].unwrap_or(0.0);
        if i >= span {
            sum -= series[i - span].unwrap_or(0.0);
        }
        // Re-anchor now and then so float drift cannot accumulate.
        if i % 1024 == 1023 {
            sum = series[i + 1 - span.min(i + 1)..=i].iter().flatten().sum();
        }
        out.push(sum >= at_least);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_ending_at_aligns_to_step() {
        let g = Grid::ending_at(1_000_030, 300, 60);
        assert_eq!(g.start, 999_720);
        assert_eq!(g.end(), 999_960 + 60);
        assert_eq!(g.len, 5);
        assert_eq!(g.index_of(999_780), Some(1));
        assert_eq!(g.index_of(999_781), None);
    }

    #[test]
    fn align_places_points_and_drops_outside() {
        let g = Grid {
            start: 0,
            step: 60,
            len: 3,
        };
        let pts = [
            Point { t: 0, v: 1.0 },
            Point { t: 130, v: 3.0 },
            Point { t: 180, v: 9.0 },
            Point { t: -60, v: 9.0 },
        ];
        assert_eq!(align(&pts, &g), vec![Some(1.0), None, Some(3.0)]);
    }

    #[test]
    fn window_sum_covers_trailing_window() {
        let g = Grid {
            start: 0,
            step: 60,
            len: 4,
        };
        let s = vec![Some(1.0), Some(2.0), None, Some(4.0)];
        assert_eq!(window_sum(&g, &s, 3, 180), 6.0);
        assert_eq!(window_sum(&g, &s, 3, 60), 4.0);
        assert_eq!(window_sum(&g, &s, 1, 600), 3.0);
    }

    #[test]
    fn window_at_least_matches_window_sum() {
        let g = Grid {
            start: 0,
            step: 60,
            len: 6,
        };
        let s = vec![Some(1.0), Some(2.0), None, Some(4.0), Some(0.5), Some(9.0)];
        for window in [60, 120, 180, 300, 600] {
            for at_least in [0.5, 3.0, 6.0, 7.0] {
                let fast = window_at_least(&g, &s, window, at_least);
                let slow: Vec<bool> = (0..6)
                    .map(|i| window_sum(&g, &s, i, window) >= at_least)
                    .collect();
                assert_eq!(fast, slow, "window {window} at_least {at_least}");
            }
        }
    }
}
