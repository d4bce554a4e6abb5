//! Which part of a cycle an invocation runs: the whole cycle, one shard's
//! evaluation, or the delivery stage after every shard (ARCHITECTURE.md,
//! "Shards").
//!
//! A shard owns the state buckets `b` with `b % n == k - 1` and the rules in
//! them, so a rule's shard follows from its name and the shard count, and
//! its state stays where it is when the count changes.

use crate::keys::{self, STATE_BUCKETS};

/// Shard `index` of `count`, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// Shard `index` (1-based) of `count`: `1 <= index <= count <=`
    /// [`STATE_BUCKETS`].
    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 || count > STATE_BUCKETS {
            return Err(format!(
                "shard count {count} is out of range: expected 1 to {STATE_BUCKETS}"
            ));
        }
        if index == 0 || index > count {
            return Err(format!(
                "shard {index} is out of range: expected 1 to {count} (shards are numbered from 1)"
            ));
        }
        Ok(Shard { index, count })
    }

    pub fn index(self) -> u32 {
        self.index
    }

    pub fn count(self) -> u32 {
        self.count
    }

    /// Whether state bucket `bucket` is this shard's.
    pub fn owns_bucket(self, bucket: u32) -> bool {
        bucket % self.count == self.index - 1
    }

    /// Whether the rule named `rule` is this shard's.
    pub fn owns_rule(self, rule: &str) -> bool {
        self.owns_bucket(keys::bucket(rule))
    }

    /// Its cycle partition: `cycle#2/4`.
    pub fn cycle_pk(self) -> String {
        format!("{}#{}/{}", keys::CYCLE, self.index, self.count)
    }

    /// `2/4`: the `shard` label of its self-monitoring alerts.
    pub fn label(self) -> String {
        format!("{}/{}", self.index, self.count)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "shard {}/{}", self.index, self.count)
    }
}

/// What one run of the engine does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stage {
    /// Every rule, then decide and deliver: one invocation per tick.
    #[default]
    Whole,
    /// One shard's rules: plan, fetch, judge, persist (state and `active`
    /// records) and resolve its orphans, under the shard's own lease. No
    /// notification.
    Shard(Shard),
    /// Decide and deliver over the shared `active` set (groups span
    /// shards), after the `shards` shards of the tick, under the `cycle`
    /// lease. (It records the shard count with its tick, for `status`.)
    Deliver { shards: u32 },
}

impl Stage {
    /// The cycle partition it keeps its lease, last tick and checks in.
    pub fn cycle_pk(self) -> String {
        match self {
            Stage::Shard(s) => s.cycle_pk(),
            Stage::Whole | Stage::Deliver { .. } => keys::CYCLE.to_string(),
        }
    }

    /// Whether it evaluates `rule` (and so resolves its orphaned alerts:
    /// the delivery stage leaves them to the shards).
    pub fn evaluates(self, rule: &str) -> bool {
        match self {
            Stage::Whole => true,
            Stage::Shard(s) => s.owns_rule(rule),
            Stage::Deliver { .. } => false,
        }
    }

    /// The shard it is, if it is one.
    pub fn shard(self) -> Option<Shard> {
        match self {
            Stage::Shard(s) => Some(s),
            Stage::Whole | Stage::Deliver { .. } => None,
        }
    }

    /// The shard count the stack runs, as far as this stage knows: the
    /// delivery stage's `shards`, 1 for the whole cycle, `None` for a
    /// shard (which judges no other shard's self-alerts).
    pub(crate) fn shards_now(self) -> Option<u32> {
        match self {
            Stage::Whole => Some(1),
            Stage::Deliver { shards } => Some(shards),
            Stage::Shard(_) => None,
        }
    }

    /// What tells its history pages apart from other stages' of the same
    /// tick: `2-4-` for shard 2 of 4, nothing otherwise.
    pub(crate) fn history_writer(self) -> String {
        self.shard()
            .map(|s| format!("{}-{}-", s.index(), s.count()))
            .unwrap_or_default()
    }

    /// Whether it decides and delivers.
    pub fn delivers(self) -> bool {
        !matches!(self, Stage::Shard(_))
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stage::Whole => f.write_str("whole cycle"),
            Stage::Shard(s) => write!(f, "{s}"),
            Stage::Deliver { shards } => write!(f, "delivery stage after {shards} shard(s)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_the_buckets_and_keep_them_whatever_the_count() {
        for n in [1, 2, 3, 4, 7, 64] {
            let shards: Vec<Shard> = (1..=n).map(|k| Shard::new(k, n).unwrap()).collect();
            for b in 0..STATE_BUCKETS {
                assert_eq!(shards.iter().filter(|s| s.owns_bucket(b)).count(), 1);
            }
        }
        assert_eq!(
            keys::bucket("PaymentsErrorRate"),
            keys::bucket("PaymentsErrorRate")
        );
        assert_eq!(Shard::new(2, 4).unwrap().cycle_pk(), "cycle#2/4");
        assert_eq!(
            Shard::new(0, 4).unwrap_err(),
            "shard 0 is out of range: expected 1 to 4 (shards are numbered from 1)"
        );
        assert_eq!(
            Shard::new(1, 65).unwrap_err(),
            "shard count 65 is out of range: expected 1 to 64"
        );
    }

    #[test]
    fn buckets_are_fixed_forever() {
        // They name stored partitions: a change would lose every state.
        assert_eq!(keys::bucket(""), 0x811c_9dc5 % 64);
        assert_eq!(keys::state("a", "f").pk, "state/44");
        assert_eq!(
            keys::state("HighErrorRate", "f").pk,
            format!("state/{:02}", keys::bucket("HighErrorRate"))
        );
    }
}
