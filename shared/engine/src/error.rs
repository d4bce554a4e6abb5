//! The engine's errors. [`EngineError`] stops a cycle; [`CycleError`] is a
//! problem a cycle met and went on past (reported in
//! [`crate::CycleReport::errors`]). Both say whether a retry makes sense and
//! render to one line of text; neither is ever decided from a string.

use firebell_core::expr::EvalError;
use firebell_core::ports::{MetricsError, StoreError};
use firebell_core::series::Epoch;
use firebell_notify::{DeliveryError, DispatchError};

/// Why a cycle failed as a whole (the next cycle starts over).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("corrupt record {pk}/{sk}: {reason}")]
    Corrupt {
        pk: String,
        sk: String,
        reason: String,
    },
    #[error("notification pipeline: {0}")]
    Delivery(#[from] DeliveryError),
}

impl EngineError {
    pub fn is_retryable(&self) -> bool {
        match self {
            EngineError::Store(e) => e.is_retryable(),
            EngineError::Corrupt { .. } => false,
            EngineError::Delivery(e) => e.is_retryable(),
        }
    }
}

/// A problem that did not stop the cycle: the rule, query or group it
/// concerns is left for the next cycle (or reported, where retrying cannot help).
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    /// Listing a wildcard rule's dimension values failed: the rule was not
    /// evaluated and the tick is not recorded.
    #[error("rule {rule}: listing dimension values: {source}")]
    Discovery { rule: String, source: MetricsError },
    /// The rule cannot be evaluated at all (its grid cannot be built): it
    /// was skipped, the other rules were evaluated. Retrying cannot help.
    #[error("rule {rule}: cannot be evaluated: {reason}")]
    Unevaluable { rule: String, reason: String },
    /// Fetching the due rules' metrics failed: nothing was judged.
    #[error("fetching metrics: {0}")]
    Fetch(MetricsError),
    /// Fetching the metrics of another account or region (`target`, such
    /// as `account 123456789012, region eu-west-1`) failed: the rules
    /// reading them were not judged, the others were.
    #[error("rule {rule}: fetching metrics of {target}: {source}")]
    FetchElsewhere {
        rule: String,
        target: String,
        source: MetricsError,
    },
    /// A rule's expression could not be evaluated for an instance.
    #[error("rule {rule}: evaluating expression: {source}")]
    Expression { rule: String, source: EvalError },
    /// A context value (e.g. an SLO's budget) could not be fetched; the
    /// alert shows it as unknown.
    #[error("rule {rule}: fetching metrics of `{value}`: {source}")]
    ContextFetch {
        rule: String,
        value: String,
        source: MetricsError,
    },
    /// A context value's expression could not be evaluated.
    #[error("rule {rule}: evaluating `{value}`: {source}")]
    ContextExpression {
        rule: String,
        value: String,
        source: EvalError,
    },
    /// An alert record could not be written: the instance's state is not
    /// written either, so the next cycle derives the same events again.
    #[error("writing alert: {source}")]
    WriteAlert { rule: String, source: StoreError },
    /// An instance's state could not be stored (over the store's item
    /// limit): that instance fails alone, the others are written.
    #[error("rule {rule}: writing instance state: {source}")]
    WriteState { rule: String, source: StoreError },
    /// Another cycle wrote the instance's state first.
    #[error("rule {rule}: state changed concurrently; re-evaluated next cycle")]
    StateConflict { rule: String },
    /// An alert whose rule or instance is gone could not be resolved.
    #[error("resolving {rule}: {source}")]
    ResolveOrphan { rule: String, source: StoreError },
    /// Dispatch failed for one group; the others went on.
    #[error("dispatching group {group}: {source}")]
    DispatchGroup {
        group: String,
        source: DispatchError,
    },
    /// Dispatch failed as a whole.
    #[error("dispatching: {0}")]
    Dispatch(DispatchError),
    /// A notification could not be rendered: it was dead-lettered, not
    /// counted as sent.
    #[error(transparent)]
    Render(firebell_notify::RenderFailure),
    /// A template failed in a notification that was sent: the message
    /// went out with the default text there (and a note saying why).
    #[error(transparent)]
    Template(firebell_notify::TemplateFailure),
    /// Recording the tick failed: the next cycle evaluates it again.
    #[error("recording tick {tick}: {source}")]
    RecordTick { tick: Epoch, source: StoreError },
    /// Recording the cycle's history failed (alerting went on; the
    /// history of this cycle is missing).
    #[error("recording history of tick {tick}: {source}")]
    History { tick: Epoch, source: StoreError },
    /// Releasing the lease failed: its expiry frees it.
    #[error("releasing the lease: {0}")]
    ReleaseLease(StoreError),
    /// The deployed config could not be fetched or loaded: the cycle ran
    /// the last good config (`running`, its version).
    #[error("config: {problem}; running config version {running}")]
    Config { running: String, problem: String },
    /// The recorded last tick (`cycle/last`) is later than the clock's now:
    /// clock skew, or a cycle once ran at a future tick. Not taken as "this
    /// tick is a duplicate": the cycle evaluates and records its own tick.
    #[error(
        "clock skew: the last recorded tick {recorded} is later than now ({now}); evaluating anyway and recording tick {tick}"
    )]
    ClockSkew {
        recorded: Epoch,
        now: Epoch,
        tick: Epoch,
    },
    /// An instance's state was judged up to a time later than the clock's
    /// now (a cycle once ran at a future tick): its future times were
    /// dropped and it was judged again from its lookback window.
    #[error(
        "rule {rule}: clock skew: an instance was judged up to {judged}, later than now ({now}); judged again from its lookback window"
    )]
    StateClockSkew {
        rule: String,
        judged: Epoch,
        now: Epoch,
    },
    /// The sentinel alarms could not be read or kept in step with the
    /// config: the rules they cover were polled (nothing is missed; it
    /// costs what polling costs).
    #[error("sentinel alarms: {0}")]
    Sentinels(firebell_core::ports::AlarmError),
}

impl CycleError {
    /// Whether the same work may succeed when retried (by the next cycle).
    pub fn is_retryable(&self) -> bool {
        match self {
            CycleError::Discovery { source, .. }
            | CycleError::Fetch(source)
            | CycleError::FetchElsewhere { source, .. }
            | CycleError::ContextFetch { source, .. } => source.is_retryable(),
            CycleError::Expression { .. }
            | CycleError::ContextExpression { .. }
            | CycleError::Unevaluable { .. } => false,
            CycleError::WriteAlert { source, .. }
            | CycleError::WriteState { source, .. }
            | CycleError::ResolveOrphan { source, .. }
            | CycleError::RecordTick { source, .. }
            | CycleError::History { source, .. }
            | CycleError::ReleaseLease(source) => source.is_retryable() || source.is_conflict(),
            CycleError::StateConflict { .. } => true,
            CycleError::DispatchGroup { source, .. } | CycleError::Dispatch(source) => {
                source.is_retryable()
            }
            CycleError::Render(_)
            | CycleError::Template(_)
            | CycleError::ClockSkew { .. }
            | CycleError::StateClockSkew { .. } => false,
            // The next poll may find a config that loads.
            CycleError::Config { .. } => true,
            CycleError::Sentinels(source) => source.is_retryable(),
        }
    }

    /// The rule the problem concerns, if one.
    pub fn rule(&self) -> Option<&str> {
        match self {
            CycleError::Discovery { rule, .. }
            | CycleError::FetchElsewhere { rule, .. }
            | CycleError::Unevaluable { rule, .. }
            | CycleError::Expression { rule, .. }
            | CycleError::ContextFetch { rule, .. }
            | CycleError::ContextExpression { rule, .. }
            | CycleError::WriteAlert { rule, .. }
            | CycleError::WriteState { rule, .. }
            | CycleError::StateConflict { rule }
            | CycleError::ResolveOrphan { rule, .. }
            | CycleError::StateClockSkew { rule, .. } => Some(rule),
            _ => None,
        }
    }

    /// The notification group the problem concerns, if one.
    pub fn group(&self) -> Option<&str> {
        match self {
            CycleError::DispatchGroup { group, .. } => Some(group),
            CycleError::Render(f) => Some(&f.group_key),
            CycleError::Template(f) => Some(&f.group_key),
            _ => None,
        }
    }
}

/// As its one-line text (the evaluator's JSON outcome, reports).
impl serde::Serialize for CycleError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycle_errors_say_what_they_concern_and_whether_to_retry() {
        let fetch = CycleError::Fetch(MetricsError::Throttled("slow down".into()));
        assert!(fetch.is_retryable());
        assert_eq!(fetch.rule(), None);
        assert_eq!(
            fetch.to_string(),
            "fetching metrics: metrics source throttled: slow down"
        );

        let bad = CycleError::Discovery {
            rule: "R".into(),
            source: MetricsError::BadQuery("no such namespace".into()),
        };
        assert!(!bad.is_retryable());
        assert_eq!(bad.rule(), Some("R"));
        assert_eq!(
            bad.to_string(),
            "rule R: listing dimension values: bad metrics query: no such namespace"
        );

        let expr = CycleError::Expression {
            rule: "R".into(),
            source: EvalError("metric `x` missing".into()),
        };
        assert!(!expr.is_retryable());

        let conflict = CycleError::StateConflict { rule: "R".into() };
        assert!(conflict.is_retryable());
        assert_eq!(
            conflict.to_string(),
            "rule R: state changed concurrently; re-evaluated next cycle"
        );

        let lost = CycleError::WriteAlert {
            rule: "R".into(),
            source: StoreError::LeaseLost,
        };
        assert!(lost.is_retryable());
        let invalid = CycleError::ResolveOrphan {
            rule: "R".into(),
            source: StoreError::Invalid("item too large".into()),
        };
        assert!(!invalid.is_retryable());

        let group = CycleError::DispatchGroup {
            group: "oncall:abc".into(),
            source: DispatchError::Store(StoreError::Unavailable("timeout".into())),
        };
        assert_eq!(group.group(), Some("oncall:abc"));
        assert!(group.is_retryable());
        assert_eq!(
            serde_json::to_string(&group).unwrap_or_default(),
            format!("{:?}", group.to_string())
        );
    }

    #[test]
    fn engine_errors_follow_their_source() {
        assert!(EngineError::from(StoreError::Unavailable("x".into())).is_retryable());
        assert!(!EngineError::from(StoreError::Invalid("x".into())).is_retryable());
        let corrupt = EngineError::Corrupt {
            pk: "state#R".into(),
            sk: "f".into(),
            reason: "EOF".into(),
        };
        assert!(!corrupt.is_retryable());
        assert_eq!(corrupt.to_string(), "corrupt record state#R/f: EOF");
    }
}
