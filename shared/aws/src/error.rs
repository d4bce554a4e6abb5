//! Classification of AWS SDK errors into what the ports care about: may the
//! same call succeed later (throttling, server errors, network), did a
//! condition fail, or is the request itself wrong; and into what people can
//! act on ([`AwsProblem`]: no region, no or rejected credentials, a table or
//! topic not found, access denied, throttling), recognised from the SDK's
//! typed errors and error codes ([`ProvideErrorMetadata::code`]), never from
//! its Debug text. The adapters' port errors carry the problem's one-line
//! message, so every caller (the CLI, the Lambda's log) shows the fix, not
//! the SDK's dump.

use std::fmt;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// What went wrong, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The service asked us to slow down.
    Throttled,
    /// Server error, timeout, network failure: the same call may succeed later.
    Transient,
    /// A DynamoDB condition expression did not hold.
    ConditionFailed,
    /// The request is wrong (validation, not found, access denied, ...).
    Client,
}

#[derive(Debug, Clone)]
pub(crate) struct Classified {
    pub fault: Fault,
    /// The service's error code (`ThrottlingException`, ...), when it sent one.
    pub code: Option<String>,
    /// The error chain on one line (each error's message, no Debug dump).
    pub message: String,
    /// What kind of problem it is for people, when recognised.
    pub kind: Option<Kind>,
}

/// A recognised problem, before the resource and region are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    NoCredentials,
    BadCredentials,
    NotFound,
    AccessDenied,
    Throttled,
}

/// What a failed call was about, for [`Classified::problem`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Resource<'a> {
    Table(&'a str),
    Topic(&'a str),
    Metrics,
}

impl Classified {
    /// The problem for people, if recognised: `action` is the API call
    /// (`Query`), `service` its IAM prefix (`dynamodb`), `region` the
    /// client's. A client without a region fails before sending anything:
    /// that is [`AwsProblem::NoRegion`] whatever the SDK's words.
    pub(crate) fn problem(
        &self,
        service: &str,
        action: &str,
        resource: Resource<'_>,
        region: Option<&str>,
    ) -> Option<AwsProblem> {
        let region = match region {
            Some(r) if !r.trim().is_empty() => r.to_string(),
            _ if self.code.is_none() => return Some(AwsProblem::NoRegion),
            _ => "(none)".to_string(),
        };
        let code = self.code.clone().unwrap_or_default();
        Some(match self.kind? {
            Kind::NoCredentials => AwsProblem::NoCredentials {
                detail: self.message.clone(),
            },
            Kind::BadCredentials => AwsProblem::BadCredentials { code },
            Kind::NotFound => match resource {
                Resource::Table(table) => AwsProblem::TableNotFound {
                    table: table.to_string(),
                    region,
                },
                Resource::Topic(topic) => AwsProblem::TopicNotFound {
                    topic: topic.to_string(),
                    region,
                },
                Resource::Metrics => return None,
            },
            Kind::AccessDenied => {
                let (named_action, named_resource) = denied_parts(&self.message);
                AwsProblem::AccessDenied {
                    action: named_action.unwrap_or_else(|| format!("{service}:{action}")),
                    resource: named_resource.or_else(|| match resource {
                        Resource::Table(t) => Some(format!("DynamoDB table {t}")),
                        Resource::Topic(t) => Some(t.to_string()),
                        Resource::Metrics => None,
                    }),
                    code,
                }
            }
            Kind::Throttled => AwsProblem::Throttled {
                action: format!("{service}:{action}"),
                code,
            },
        })
    }

    /// The one-line message of a failed `action`: the problem's when
    /// recognised, else `<action>: <error chain>`.
    pub(crate) fn describe(
        &self,
        service: &str,
        action: &str,
        resource: Resource<'_>,
        region: Option<&str>,
    ) -> String {
        match self.problem(service, action, resource, region) {
            Some(p) => p.to_string(),
            None => format!("{action}: {}", self.message),
        }
    }
}

/// An AWS failure people can act on, with the fix in its message (one line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsProblem {
    /// No region from `--region`, `AWS_REGION` or the profile.
    NoRegion,
    /// No credentials could be loaded.
    NoCredentials { detail: String },
    /// AWS rejected the credentials (unknown, expired, badly signed).
    BadCredentials { code: String },
    /// The DynamoDB table does not exist in the region.
    TableNotFound { table: String, region: String },
    /// The SNS topic does not exist in the region.
    TopicNotFound { topic: String, region: String },
    /// The caller may not do `action` on `resource`.
    AccessDenied {
        action: String,
        resource: Option<String>,
        code: String,
    },
    /// AWS asked to slow down (and the adapters' retries ran out).
    Throttled { action: String, code: String },
    /// `--profile` names no profile of the shared config files.
    UnknownProfile { profile: String },
}

impl fmt::Display for AwsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AwsProblem::NoRegion => f.write_str(
                "no AWS region: pass --region or set AWS_REGION (or a region in the profile)",
            ),
            AwsProblem::NoCredentials { detail } => {
                // The default chain explains itself over several lines.
                let detail: Vec<&str> = detail
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                write!(
                    f,
                    "no AWS credentials: set AWS_PROFILE / --profile, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or run `aws sso login`) ({})",
                    detail.join("; ")
                )
            }
            AwsProblem::BadCredentials { code } => write!(
                f,
                "AWS rejected the credentials ({code}): refresh them (`aws sso login`, new keys) or pick another --profile"
            ),
            AwsProblem::TableNotFound { table, region } => write!(
                f,
                "DynamoDB table {table} not found in region {region}: check --table / the stack output StateTableName (and --region)"
            ),
            AwsProblem::TopicNotFound { topic, region } => write!(
                f,
                "SNS topic {topic} not found in region {region}: check the receiver's topics in the config (and --region)"
            ),
            AwsProblem::AccessDenied {
                action,
                resource,
                code,
            } => {
                write!(f, "access denied ({code}): not allowed to {action}")?;
                if let Some(r) = resource {
                    write!(f, " on {r}")?;
                }
                f.write_str(
                    ": allow it in the IAM policy of the identity in use, or pick another --profile",
                )
            }
            AwsProblem::Throttled { action, code } => {
                write!(f, "throttled by AWS ({action}: {code}); retry later")
            }
            AwsProblem::UnknownProfile { profile } => write!(
                f,
                "no AWS profile {profile:?} in the shared config files (~/.aws/config, ~/.aws/credentials): check --profile / AWS_PROFILE"
            ),
        }
    }
}

impl std::error::Error for AwsProblem {}

/// The action and resource an IAM denial names: AWS writes `... is not
/// authorized to perform: dynamodb:Query on resource: arn:... because ...`.
fn denied_parts(message: &str) -> (Option<String>, Option<String>) {
    let word_after = |marker: &str| {
        message.find(marker).and_then(|i| {
            message[i + marker.len()..]
                .split_whitespace()
                .next()
                .map(|w| w.trim_end_matches([',', '.', ';']).to_string())
                .filter(|w| !w.is_empty())
        })
    };
    (word_after("to perform: "), word_after("on resource: "))
}

/// Error codes of a resource that does not exist (DynamoDB, SNS).
const NOT_FOUND_CODES: &[&str] = &[
    "ResourceNotFoundException",
    "NotFound",
    "NotFoundException",
    "TopicNotFound",
];

/// Error codes of a denied call.
const ACCESS_DENIED_CODES: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "AuthorizationError",
    "AuthorizationErrorException",
    "UnauthorizedOperation",
];

/// Error codes of credentials AWS does not accept.
const BAD_CREDENTIALS_CODES: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "MissingAuthenticationToken",
];

fn kind_of_code(code: &str, fault: Fault) -> Option<Kind> {
    if fault == Fault::Throttled {
        Some(Kind::Throttled)
    } else if NOT_FOUND_CODES.contains(&code) {
        Some(Kind::NotFound)
    } else if ACCESS_DENIED_CODES.contains(&code) {
        Some(Kind::AccessDenied)
    } else if BAD_CREDENTIALS_CODES.contains(&code) {
        Some(Kind::BadCredentials)
    } else {
        None
    }
}

/// Every error of the chain from `err` down, by its own message, joined by
/// `: ` (a message repeating the previous one is left out).
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && parts.last().is_none_or(|p| !p.ends_with(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// The fault a credentials provider's failure names in its message (`chain`):
/// an STS AssumeRole answered `Throttling` or a 5xx code, a timeout, a
/// connection that failed. Such a failure is worth retrying, unlike a role
/// that was refused; `None` when it names none of them.
pub(crate) fn credentials_fault(message: &str) -> Option<Fault> {
    let mut fault = None;
    for word in message.split(|c: char| !c.is_ascii_alphanumeric()) {
        if THROTTLING_CODES.contains(&word) {
            return Some(Fault::Throttled);
        }
        if TRANSIENT_CODES.contains(&word) {
            fault = Some(Fault::Transient);
        }
    }
    let lower = message.to_ascii_lowercase();
    if fault.is_none()
        && ["timed out", "timeout", "io error", "connection"]
            .iter()
            .any(|w| lower.contains(w))
    {
        fault = Some(Fault::Transient);
    }
    fault
}

/// Whether a credentials provider failed somewhere down `err`'s chain.
fn has_credentials_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.downcast_ref::<CredentialsError>().is_some() {
            return true;
        }
        next = e.source();
    }
    false
}

/// Error codes that mean "slow down", across CloudWatch, DynamoDB and SNS.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "Throttled",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "SlowDown",
    "EC2ThrottledException",
    "PriorRequestNotComplete",
    "KMSThrottlingException",
];

/// Error codes of server-side failures that may clear on a retry.
const TRANSIENT_CODES: &[&str] = &[
    "InternalFailure",
    "InternalError",
    "InternalErrorException",
    "InternalServerError",
    "InternalServiceError",
    "InternalServiceFault",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
    "TransactionConflictException",
    "ReplicatedWriteConflictException",
    "KMSUnavailableException",
];

pub(crate) fn classify_code(code: Option<&str>, status: Option<u16>) -> Fault {
    if let Some(code) = code {
        if code == "ConditionalCheckFailedException" {
            return Fault::ConditionFailed;
        }
        if THROTTLING_CODES.contains(&code) {
            return Fault::Throttled;
        }
        if TRANSIENT_CODES.contains(&code) {
            return Fault::Transient;
        }
    }
    match status {
        Some(429) => Fault::Throttled,
        Some(s) if s >= 500 => Fault::Transient,
        // Request timeout at the HTTP level.
        Some(408) => Fault::Transient,
        _ => Fault::Client,
    }
}

/// Classifies any SDK operation error. The response type is the same for all
/// SDK crates (`aws_smithy_runtime_api`'s `HttpResponse`).
pub(crate) fn classify<E>(err: &SdkError<E>) -> Classified
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = chain(err);
    let no_credentials = has_credentials_error(err).then_some(Kind::NoCredentials);
    match err {
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code().map(str::to_owned);
            let status = ctx.raw().status().as_u16();
            let fault = classify_code(code.as_deref(), Some(status));
            // The service's own words (an unhandled error's chain ends in
            // its metadata's Debug-like text).
            let message = match (code.as_deref(), ctx.err().message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => format!("{c} (HTTP {status})"),
                (None, Some(m)) => format!("{m} (HTTP {status})"),
                (None, None) => message,
            };
            Classified {
                fault,
                kind: kind_of_code(code.as_deref().unwrap_or(""), fault),
                code,
                message,
            }
        }
        // Credentials that cannot be loaded will not load on a retry.
        SdkError::DispatchFailure(_) if no_credentials.is_some() => Classified {
            fault: Fault::Client,
            code: None,
            message,
            kind: no_credentials,
        },
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Classified {
                fault: Fault::Transient,
                code: None,
                message,
                kind: None,
            }
        }
        // ConstructionFailure and anything added later: the request could not
        // be built, retrying will not help.
        _ => Classified {
            fault: Fault::Client,
            code: err.code().map(str::to_owned),
            message,
            kind: no_credentials,
        },
    }
}

/// `.await`s an SDK `send()` future and classifies its error.
pub(crate) trait AwaitClassified<T> {
    fn await_classified(self) -> impl Future<Output = Result<T, Classified>> + Send;
}

impl<T, E, F> AwaitClassified<T> for F
where
    F: Future<Output = Result<T, SdkError<E>>> + Send,
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    async fn await_classified(self) -> Result<T, Classified> {
        self.await.map_err(|e| classify(&e))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use aws_sdk_dynamodb::config::http::HttpResponse;
    use aws_sdk_dynamodb::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_dynamodb::operation::query::QueryError;
    use aws_smithy_types::body::SdkBody;

    // Constructed SDK errors: the emulator cannot deny access, throttle or
    // reject credentials on demand, so these build what the SDK returns for
    // such responses (a service error with AWS's code and message, or a
    // dispatch failure carrying a credentials provider's error). The table
    // and topic not found, no region and no credentials are also tested
    // end to end (cli/tests/aws.rs, tests/sns.rs).

    fn service_error(code: &str, message: &str, status: u16) -> SdkError<QueryError, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        SdkError::service_error(
            QueryError::generic(meta),
            HttpResponse::new(status.try_into().unwrap(), SdkBody::empty()),
        )
    }

    fn describe(err: &SdkError<QueryError, HttpResponse>, region: Option<&str>) -> String {
        classify(err).describe(
            "dynamodb",
            "Query",
            Resource::Table("firebell-state"),
            region,
        )
    }

    #[test]
    fn table_not_found_names_table_region_and_fix() {
        let e = service_error(
            "ResourceNotFoundException",
            "Requested resource not found",
            400,
        );
        assert_eq!(
            describe(&e, Some("eu-west-1")),
            "DynamoDB table firebell-state not found in region eu-west-1: check --table / the stack output StateTableName (and --region)"
        );
        let c = classify(&e);
        assert_eq!(
            c.describe(
                "sns",
                "Publish",
                Resource::Topic("arn:aws:sns:eu-west-1:1:t"),
                Some("eu-west-1")
            ),
            "SNS topic arn:aws:sns:eu-west-1:1:t not found in region eu-west-1: check the receiver's topics in the config (and --region)"
        );
    }

    #[test]
    fn access_denied_names_the_action_and_resource_aws_names() {
        let e = service_error(
            "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/bob is not authorized to perform: dynamodb:Query on resource: arn:aws:dynamodb:eu-west-1:123456789012:table/firebell-state because no identity-based policy allows the dynamodb:Query action",
            400,
        );
        assert_eq!(
            describe(&e, Some("eu-west-1")),
            "access denied (AccessDeniedException): not allowed to dynamodb:Query on arn:aws:dynamodb:eu-west-1:123456789012:table/firebell-state: allow it in the IAM policy of the identity in use, or pick another --profile"
        );
        // A denial without AWS's usual sentence: the call and the table.
        let e = service_error("AccessDeniedException", "denied", 400);
        assert_eq!(
            describe(&e, Some("eu-west-1")),
            "access denied (AccessDeniedException): not allowed to dynamodb:Query on DynamoDB table firebell-state: allow it in the IAM policy of the identity in use, or pick another --profile"
        );
    }

    #[test]
    fn throttling_and_rejected_credentials_say_what_to_do() {
        let e = service_error(
            "ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded",
            400,
        );
        assert_eq!(
            describe(&e, Some("eu-west-1")),
            "throttled by AWS (dynamodb:Query: ProvisionedThroughputExceededException); retry later"
        );
        let e = service_error(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
            400,
        );
        assert_eq!(
            describe(&e, Some("eu-west-1")),
            "AWS rejected the credentials (UnrecognizedClientException): refresh them (`aws sso login`, new keys) or pick another --profile"
        );
    }

    #[test]
    fn credentials_that_do_not_load_and_a_missing_region_are_recognised_by_type() {
        let e: SdkError<QueryError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::other(
                Box::new(CredentialsError::not_loaded(
                    "no providers in chain provided credentials",
                )),
                None,
            ));
        let c = classify(&e);
        assert_eq!(
            c.fault,
            Fault::Client,
            "not retried: they will not load later"
        );
        assert_eq!(
            describe(&e, Some("eu-west-1")),
            "no AWS credentials: set AWS_PROFILE / --profile, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or run `aws sso login`) (dispatch failure: other: the credential provider was not enabled: no providers in chain provided credentials)"
        );
        // No region: the request fails before it is sent, whatever the words.
        let e: SdkError<QueryError, HttpResponse> = SdkError::construction_failure("anything");
        assert_eq!(
            describe(&e, None),
            "no AWS region: pass --region or set AWS_REGION (or a region in the profile)"
        );
    }

    #[test]
    fn other_errors_keep_the_chain_on_one_line_without_the_debug_dump() {
        let e = service_error(
            "ValidationException",
            "One or more parameter values were invalid",
            400,
        );
        let text = describe(&e, Some("eu-west-1"));
        assert_eq!(
            text,
            "Query: ValidationException: One or more parameter values were invalid"
        );
    }

    #[test]
    fn codes_classify() {
        assert_eq!(
            classify_code(Some("ThrottlingException"), Some(400)),
            Fault::Throttled
        );
        assert_eq!(
            classify_code(Some("Throttling"), Some(400)),
            Fault::Throttled
        );
        assert_eq!(
            classify_code(Some("ProvisionedThroughputExceededException"), Some(400)),
            Fault::Throttled
        );
        assert_eq!(
            classify_code(Some("ConditionalCheckFailedException"), Some(400)),
            Fault::ConditionFailed
        );
        assert_eq!(
            classify_code(Some("InternalServerError"), Some(500)),
            Fault::Transient
        );
        assert_eq!(classify_code(Some("Whatever"), Some(503)), Fault::Transient);
        assert_eq!(classify_code(None, Some(429)), Fault::Throttled);
        assert_eq!(
            classify_code(Some("ValidationException"), Some(400)),
            Fault::Client
        );
        assert_eq!(
            classify_code(Some("InvalidParameter"), Some(400)),
            Fault::Client
        );
        assert_eq!(classify_code(None, None), Fault::Client);
    }
}
