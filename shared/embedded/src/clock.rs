//! A manual clock for tests, replays and demos. (The wall clock is
//! [`firebell_core::ports::SystemClock`].)

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use firebell_core::Timestamp;
use firebell_core::ports::Clock;
use firebell_core::series::Epoch;
use jiff::SignedDuration;

/// A clock that only moves when told to. Share it with `Arc<ManualClock>`:
/// every holder sees [`set`](ManualClock::set) and
/// [`advance`](ManualClock::advance) at once.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    pub fn new(now: Timestamp) -> ManualClock {
        ManualClock {
            now: Mutex::new(now),
        }
    }

    /// A clock at Unix second `epoch` (clamped to the range jiff supports).
    pub fn at_epoch(epoch: Epoch) -> ManualClock {
        ManualClock::new(timestamp_of(epoch))
    }

    /// A clock starting at the current wall-clock time.
    pub fn starting_now() -> ManualClock {
        ManualClock::new(Timestamp::now())
    }

    pub fn set(&self, now: Timestamp) {
        *self.lock() = now;
    }

    pub fn set_epoch(&self, epoch: Epoch) {
        self.set(timestamp_of(epoch));
    }

    /// Moves the clock forward (saturating at the largest timestamp).
    pub fn advance(&self, by: Duration) {
        let by = SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX);
        self.advance_signed(by);
    }

    /// Moves the clock by `secs` seconds; negative values move it back.
    pub fn advance_secs(&self, secs: i64) {
        self.advance_signed(SignedDuration::from_secs(secs));
    }

    /// The current time in Unix seconds.
    pub fn now_epoch(&self) -> Epoch {
        self.lock().as_second()
    }

    fn advance_signed(&self, by: SignedDuration) {
        let mut now = self.lock();
        let current = *now;
        *now = current.saturating_add(by).unwrap_or(current);
    }

    fn lock(&self) -> MutexGuard<'_, Timestamp> {
        // A Timestamp cannot be left half-written: a poisoned lock is still valid.
        self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for ManualClock {
    /// A clock at the Unix epoch.
    fn default() -> ManualClock {
        ManualClock::new(Timestamp::UNIX_EPOCH)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.lock()
    }
}

fn timestamp_of(epoch: Epoch) -> Timestamp {
    Timestamp::from_second(epoch).unwrap_or(if epoch < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::at_epoch(1_700_000_000);
        assert_eq!(c.now_epoch(), 1_700_000_000);
        c.advance(Duration::from_secs(90));
        assert_eq!(c.now().as_second(), 1_700_000_090);
        c.advance_secs(-100);
        assert_eq!(c.now_epoch(), 1_699_999_990);
        c.set_epoch(5);
        assert_eq!(c.now_epoch(), 5);
        c.advance(Duration::MAX);
        assert_eq!(c.now(), Timestamp::MAX);
        assert_eq!(ManualClock::at_epoch(i64::MIN).now(), Timestamp::MIN);
    }
}
