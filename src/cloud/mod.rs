//! What the controller needs from a cloud, in offhours' own types.
//!
//! [`crate::aws`] implements these traits with the AWS SDK; tests and benchmarks can
//! implement them in memory.

pub mod fake;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

use serde::Serialize;

use crate::capacity::Capacity;
use crate::compile::ScheduledAction;
use crate::config::Config;
use crate::model::{Group, Instance, Scope};

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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CloudError {
    /// The operation, e.g. `DescribeAutoScalingGroups`.
    pub operation: String,
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The service's message with its context.
    pub message: String,
}

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

/// Auto Scaling in one scope.
pub trait GroupApi: Send + Sync {
    /// Every group in the scope, with its tags and scheduled actions. Either complete or an error.
    fn list_groups(&self) -> impl Future<Output = Result<Vec<Group>, CloudError>> + Send;
    /// Creates or replaces scheduled actions (batched by the implementation); returns the ones that failed.
    fn put_scheduled_actions(
        &self,
        group: &str,
        actions: &[ScheduledAction],
    ) -> impl Future<Output = Result<Vec<ActionFailure>, CloudError>> + Send;
    /// Deletes scheduled actions by name; returns the ones that failed. Already gone is success.
    fn delete_scheduled_actions(
        &self,
        group: &str,
        names: &[String],
    ) -> impl Future<Output = Result<Vec<ActionFailure>, CloudError>> + Send;
    /// Sets min, max and desired capacity.
    fn set_capacity(&self, group: &str, capacity: Capacity) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Creates or updates tags on several groups in one call. A failure may have written
    /// some of them.
    fn tag_groups(
        &self,
        tags: &[(String, BTreeMap<String, String>)],
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Removes tags from the group.
    fn remove_tags(&self, group: &str, keys: &[String]) -> impl Future<Output = Result<(), CloudError>> + Send;
}

/// EC2 instances in one scope.
pub trait InstanceApi: Send + Sync {
    /// Every instance that is pending, running, stopping or stopped and carries one of
    /// `tag_keys` (all of them if `tag_keys` is empty). Either complete or an error.
    fn list_instances(&self, tag_keys: &[String]) -> impl Future<Output = Result<Vec<Instance>, CloudError>> + Send;
    /// Stops (or hibernates) instances in one call.
    fn stop_instances(&self, ids: &[String], hibernate: bool) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Starts instances in one call.
    fn start_instances(&self, ids: &[String]) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Sets the same tags on instances in one call.
    fn tag_instances(
        &self,
        ids: &[String],
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Removes tags from instances in one call.
    fn untag_instances(&self, ids: &[String], keys: &[String]) -> impl Future<Output = Result<(), CloudError>> + Send;
}

/// Where `policy.on_untagged` may act.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemediationScope {
    /// The organization's management account, if there is an organization.
    pub management: Option<String>,
    /// The accounts `policy.remediate_in` covers; `None` when it is empty (every account).
    pub only: Option<std::collections::BTreeSet<String>>,
}

impl RemediationScope {
    /// Why remediation may not act in `account`, if it may not.
    #[must_use]
    pub fn block(&self, cfg: &Config, account: &str) -> Option<String> {
        if self.management.as_deref() == Some(account) && !cfg.policy.remediate_management_account {
            return Some(
                "in the organization's management account, which is not remediated unless policy.remediate_management_account is on"
                    .into(),
            );
        }
        if self.only.as_ref().is_some_and(|o| !o.contains(account)) {
            return Some("outside policy.remediate_in".into());
        }
        None
    }
}

/// A scope and its API handle, or the error that made it unreachable.
pub type ScopeHandle<S> = (Scope, Result<S, CloudError>);

/// A cloud: the scopes to work in, each with its API handle.
pub trait Cloud: Send + Sync {
    /// The per-scope API.
    type Scope: GroupApi + InstanceApi;
    /// Every account and region the config asks for. A scope that cannot be reached
    /// comes with its error; an error here means not even the list could be made.
    fn scopes(&self, cfg: &Config) -> impl Future<Output = Result<Vec<ScopeHandle<Self::Scope>>, CloudError>> + Send;
    /// Where `policy.on_untagged` may act: the management account and the accounts
    /// `policy.remediate_in` names. Asked only when `on_untagged` is not `report`.
    fn remediation(&self, cfg: &Config) -> impl Future<Output = Result<RemediationScope, CloudError>> + Send;
}
