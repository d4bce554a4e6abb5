//! Types shared by the pipeline stages: what the dispatcher hands to the
//! renderer, and the receiver settings the renderer needs.

use serde::{Deserialize, Serialize};

use firebell_core::alert::{Alert, AlertStatus};
use firebell_core::model::Labels;
use firebell_core::series::Epoch;

/// A receiver: a team's destination(s).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receiver {
    pub name: String,
    /// SNS topic ARNs (or, in the local mode, any destination name).
    pub topics: Vec<String>,
    /// IANA time zone name used for times in messages, e.g. `Europe/Berlin`. Default `UTC`.
    pub time_zone: String,
    /// Send a notice when a group's alerts resolve.
    pub send_resolved: bool,
    pub message: MessageOptions,
}

/// Per-receiver message options.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MessageOptions {
    /// Also emit the AWS Chatbot custom-notification format (as the `default` body
    /// is then the Chatbot JSON, as Chatbot requires).
    pub chatbot: bool,
    /// Template overrides (minijinja source); `None` uses the built-in defaults.
    pub subject_template: Option<String>,
    pub body_template: Option<String>,
    /// AWS region for console deep links. Default `us-east-1`.
    pub console_region: Option<String>,
}

/// One notification of one group to one receiver, decided by the dispatcher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupNotification {
    pub receiver: String,
    /// Stable key of the group: route path + group label values.
    pub group_key: String,
    /// The labels the group is grouped by, with their values.
    pub group_labels: Labels,
    /// Firing if any alert in it fires, else resolved.
    pub status: AlertStatus,
    /// Firing alerts of the group (all of them, not just new ones).
    pub firing: Vec<Alert>,
    /// Alerts resolved since the group's last notification.
    pub resolved: Vec<Alert>,
    /// Extra lines for the reader, e.g. "Silence 3f2a by alice ended; 2 alerts still firing".
    pub notes: Vec<String>,
    /// Sequence number of this notification within its group (1, 2, ...).
    pub seq: u64,
    /// Decision time.
    pub at: Epoch,
}
