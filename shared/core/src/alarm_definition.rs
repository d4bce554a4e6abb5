//! CloudWatch alarm definitions as plain data: what `DescribeAlarms`
//! returns (the AWS reader,
//! `firebell_aws::alarm_definitions::describe_all`) and what
//! `firebell import cloudwatch-alarms` translates
//! (`firebell_tools::import`). No AWS types here.

use std::collections::BTreeMap;

/// One CloudWatch alarm, as `DescribeAlarms` describes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlarmDefinition {
    pub name: String,
    pub description: Option<String>,
    pub actions_enabled: bool,
    pub alarm_actions: Vec<String>,
    pub ok_actions: Vec<String>,
    pub insufficient_data_actions: Vec<String>,
    /// The alarm's tags, when read (the reader asks only for alarms that
    /// could be sentinels: no actions).
    pub tags: BTreeMap<String, String>,
    pub kind: AlarmKind,
}

/// A metric alarm (one metric, or metric math) or a composite alarm.
#[derive(Debug, Clone, PartialEq)]
pub enum AlarmKind {
    Metric(Box<MetricAlarm>),
    Composite {
        rule: String,
        /// The alarm whose ALARM state suppresses this composite's actions
        /// (`ActionsSuppressor`), if any.
        actions_suppressor: Option<String>,
    },
}

impl Default for AlarmKind {
    fn default() -> Self {
        AlarmKind::Metric(Box::default())
    }
}

/// The metric-alarm fields of an [`AlarmDefinition`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricAlarm {
    /// The one metric of a plain alarm (Namespace, MetricName, Dimensions,
    /// Period, Statistic or ExtendedStatistic).
    pub metric: Option<AlarmMetric>,
    /// The queries of a metric-math alarm (`Metrics`).
    pub queries: Vec<AlarmQuery>,
    pub threshold: Option<f64>,
    /// Set for anomaly-detection alarms (the band's query id).
    pub threshold_metric_id: Option<String>,
    pub comparison: String,
    pub evaluation_periods: u32,
    pub datapoints_to_alarm: Option<u32>,
    pub treat_missing_data: Option<String>,
}

/// One metric read with one statistic over one period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlarmMetric {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: BTreeMap<String, String>,
    /// Seconds.
    pub period: u32,
    /// `Sum`, `Average`, ..., or an extended statistic (`p99`, `TM(10%:90%)`).
    pub stat: String,
    /// The source account of a cross-account query (`AccountId`).
    pub account: Option<String>,
    /// The alarm's `Unit` filter (only datapoints of this unit), if any.
    pub unit: Option<String>,
}

/// One entry of a metric-math alarm's `Metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlarmQuery {
    pub id: String,
    pub expression: Option<String>,
    pub metric: Option<AlarmMetric>,
    pub return_data: bool,
}
