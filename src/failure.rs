//! What a failed cloud call is: the operation, the kind of failure, the service's message.
//! Every layer above names failures in these terms; only [`crate::aws`] reads SDK errors.

use std::fmt;

use serde::Serialize;

/// What kind of failure a cloud call met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// Throttled past the retries.
    Throttled,
    /// Not allowed (IAM, SCP, a role that cannot be assumed).
    AccessDenied,
    /// The resource is gone.
    NotFound,
    /// The request was refused as invalid.
    Invalid,
    /// The operation is refused for this resource (e.g. stop protection).
    NotPermitted,
    /// Hibernation was refused for this instance (not configured or not ready for it).
    HibernationRefused,
    /// Anything else (network, service error).
    Other,
}

impl ErrorKind {
    /// Whether the error concerns the resources a call named, as opposed to the call as a
    /// whole (throttling, a 5xx, a dropped connection). EC2 refuses a whole multi-resource
    /// call for one resource it refuses ("UnauthorizedOperation", "IncorrectInstanceState",
    /// "OperationNotPermitted": Amazon EC2 Developer Guide, Error codes for the Amazon EC2 API), so only these are
    /// worth splitting a batch for.
    #[must_use]
    pub fn is_per_resource(self) -> bool {
        matches!(
            self,
            ErrorKind::AccessDenied
                | ErrorKind::NotFound
                | ErrorKind::Invalid
                | ErrorKind::NotPermitted
                | ErrorKind::HibernationRefused
        )
    }

    /// A bounded label for metrics and reports.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Throttled => "throttled",
            ErrorKind::AccessDenied => "access-denied",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Invalid => "invalid",
            ErrorKind::NotPermitted => "not-permitted",
            ErrorKind::HibernationRefused => "hibernation-refused",
            ErrorKind::Other => "other",
        }
    }
}

/// A failed cloud call.
#[derive(Debug, Clone, thiserror::Error)]
pub struct CloudError {
    /// The operation, e.g. `DescribeAutoScalingGroups`.
    pub operation: String,
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The service's answer (`Code: message`), or what went wrong before there was one.
    pub message: String,
    /// The cause, when the failure is not the service's own answer (a dropped connection, a
    /// timeout, an unreadable response): the SDK's error, with its chain of causes.
    #[source]
    pub source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
}

/// Two failures are the same when they name the same operation, kind and message (their
/// causes are not compared).
impl PartialEq for CloudError {
    fn eq(&self, other: &Self) -> bool {
        (&self.operation, self.kind, &self.message) == (&other.operation, other.kind, &other.message)
    }
}

impl Eq for CloudError {}

impl fmt::Display for CloudError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed ({}): {}",
            self.operation,
            self.kind.as_str(),
            self.message
        )
    }
}

/// One action a batch call could not apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionFailure {
    /// The action's name.
    pub name: String,
    /// The service's error code, if given.
    pub code: Option<String>,
    /// The service's message.
    pub message: String,
}

/// Whether an SDK operation (`Service.Operation` or `Operation`) writes: everything but
/// `Describe*`, `List*` and `Get*`.
#[must_use]
pub fn is_mutating(operation: &str) -> bool {
    let op = operation.rsplit('.').next().unwrap_or(operation);
    !["Describe", "List", "Get"].iter().any(|p| op.starts_with(p))
}

/// An error and its sources, as one line: `outer: inner: innermost`.
#[must_use]
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}
