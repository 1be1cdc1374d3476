//! What the controller needs from a cloud, in offhours' own types.
//!
//! [`crate::aws`] implements these traits with the AWS SDK; tests and benchmarks can
//! implement them in memory.

pub mod fake;

use std::future::Future;

use crate::config::Config;
use crate::model::Scope;

pub use crate::kind::database::DatabaseApi;
pub use crate::kind::group::GroupApi;
pub use crate::kind::instance::InstanceApi;

pub use crate::failure::{ActionFailure, CloudError, ErrorKind};

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
    type Scope: GroupApi + InstanceApi + DatabaseApi;
    /// Every account and region the config asks for. A scope that cannot be reached
    /// comes with its error; an error here means not even the list could be made.
    fn scopes(&self, cfg: &Config) -> impl Future<Output = Result<Vec<ScopeHandle<Self::Scope>>, CloudError>> + Send;
    /// Where `policy.on_untagged` may act: the management account and the accounts
    /// `policy.remediate_in` names. Asked only when `on_untagged` is not `report`.
    fn remediation(&self, cfg: &Config) -> impl Future<Output = Result<RemediationScope, CloudError>> + Send;
}
