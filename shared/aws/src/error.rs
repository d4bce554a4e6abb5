//! Classification of AWS SDK errors into what the ports care about: may the
//! same call succeed later (throttling, server errors, network), did a
//! condition fail, or is the request itself wrong.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

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
    /// Full error chain, for messages.
    pub message: String,
}

impl Classified {
    pub(crate) fn is_retryable(&self) -> bool {
        matches!(self.fault, Fault::Throttled | Fault::Transient)
    }
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
    let message = DisplayErrorContext(err).to_string();
    match err {
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code().map(str::to_owned);
            let status = ctx.raw().status().as_u16();
            Classified {
                fault: classify_code(code.as_deref(), Some(status)),
                code,
                message,
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Classified {
                fault: Fault::Transient,
                code: None,
                message,
            }
        }
        // ConstructionFailure and anything added later: the request could not
        // be built, retrying will not help.
        _ => Classified {
            fault: Fault::Client,
            code: err.code().map(str::to_owned),
            message,
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
    use super::*;

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
