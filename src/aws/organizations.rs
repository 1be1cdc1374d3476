//! AWS Organizations through the SDK: the root, policies, attachments and the OU path of
//! an account (moto has no DescribeEffectivePolicy, and offhours does not need it).

use std::collections::BTreeSet;

use aws_config::SdkConfig;
use aws_sdk_organizations::Client;
use aws_sdk_organizations::types::{PolicyType, PolicyTypeStatus};

use super::{CallCounter, classify};
use crate::cloud::{CloudError, ErrorKind};
use crate::policy::drift::{Kind, Observed};

/// Organizations, from the management (or delegated administrator) account.
#[derive(Debug, Clone)]
pub struct OrgClient {
    org: Client,
}

fn policy_type(kind: Kind) -> PolicyType {
    match kind {
        Kind::Scp => PolicyType::ServiceControlPolicy,
        Kind::TagPolicy => PolicyType::TagPolicy,
    }
}

fn missing(operation: &str, what: &str) -> CloudError {
    CloudError {
        operation: operation.into(),
        kind: ErrorKind::Other,
        message: format!("the response has no {what}"),
    }
}

/// What offhours writes in the description of the policies it manages.
pub const DESCRIPTION: &str = "Managed by offhours from its config; edits by hand are reverted.";

impl OrgClient {
    /// A client reporting to `counter`.
    #[must_use]
    pub fn new(base: &SdkConfig, counter: &CallCounter) -> Self {
        OrgClient {
            org: Client::from_conf(
                aws_sdk_organizations::config::Builder::from(base)
                    .interceptor(counter.clone())
                    .build(),
            ),
        }
    }

    /// The root id and the policy types enabled on it.
    pub async fn root(&self) -> Result<(String, BTreeSet<Kind>), CloudError> {
        self.root_status().await.map(|(id, enabled, _)| (id, enabled))
    }

    /// The root id, the policy types enabled on it, and those still being enabled.
    ///
    /// Enabling is asynchronous: "EnablePolicyType ... This is an asynchronous request that
    /// AWS performs in the background", and meanwhile the type's status is `PENDING_ENABLE`
    /// (AWS Organizations API Reference, EnablePolicyType; PolicyTypeSummary, Status), during
    /// which AttachPolicy fails with PolicyTypeNotEnabledException.
    pub async fn root_status(&self) -> Result<(String, BTreeSet<Kind>, BTreeSet<Kind>), CloudError> {
        let out = self
            .org
            .list_roots()
            .send()
            .await
            .map_err(|e| classify("ListRoots", &e))?;
        let root = out.roots().first().ok_or_else(|| missing("ListRoots", "root"))?;
        let id = root.id().ok_or_else(|| missing("ListRoots", "root id"))?.to_string();
        let with = |status: PolicyTypeStatus| {
            root.policy_types()
                .iter()
                .filter(|t| t.status() == Some(&status))
                .filter_map(|t| match t.r#type() {
                    Some(PolicyType::ServiceControlPolicy) => Some(Kind::Scp),
                    Some(PolicyType::TagPolicy) => Some(Kind::TagPolicy),
                    _ => None,
                })
                .collect::<BTreeSet<Kind>>()
        };
        Ok((
            id,
            with(PolicyTypeStatus::Enabled),
            with(PolicyTypeStatus::PendingEnable),
        ))
    }

    /// Enables a policy type on the root.
    pub async fn enable(&self, root: &str, kind: Kind) -> Result<(), CloudError> {
        self.org
            .enable_policy_type()
            .root_id(root)
            .policy_type(policy_type(kind))
            .send()
            .await
            .map_err(|e| classify("EnablePolicyType", &e))?;
        Ok(())
    }

    /// The policy of this kind with this name, its content and targets.
    pub async fn find(&self, kind: Kind, name: &str) -> Result<Option<Observed>, CloudError> {
        let mut id = None;
        let mut pages = self
            .org
            .list_policies()
            .filter(policy_type(kind))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListPolicies", &e))?;
            if let Some(p) = page.policies().iter().find(|p| p.name() == Some(name)) {
                id = p.id().map(String::from);
            }
        }
        let Some(id) = id else { return Ok(None) };
        let content = self.content(&id).await?;
        let targets = self.targets(&id).await?;
        Ok(Some(Observed { id, content, targets }))
    }

    async fn content(&self, id: &str) -> Result<String, CloudError> {
        let out = self
            .org
            .describe_policy()
            .policy_id(id)
            .send()
            .await
            .map_err(|e| classify("DescribePolicy", &e))?;
        Ok(out.policy().and_then(|p| p.content()).unwrap_or_default().to_string())
    }

    async fn targets(&self, id: &str) -> Result<BTreeSet<String>, CloudError> {
        let mut out = BTreeSet::new();
        let mut pages = self.org.list_targets_for_policy().policy_id(id).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListTargetsForPolicy", &e))?;
            out.extend(page.targets().iter().filter_map(|t| t.target_id().map(String::from)));
        }
        Ok(out)
    }

    /// Creates a policy; returns its id.
    pub async fn create(&self, kind: Kind, name: &str, content: &str) -> Result<String, CloudError> {
        let out = self
            .org
            .create_policy()
            .name(name)
            .description(DESCRIPTION)
            .content(content)
            .r#type(policy_type(kind))
            .send()
            .await
            .map_err(|e| classify("CreatePolicy", &e))?;
        out.policy()
            .and_then(|p| p.policy_summary())
            .and_then(|s| s.id())
            .map(String::from)
            .ok_or_else(|| missing("CreatePolicy", "policy id"))
    }

    /// Replaces a policy's content.
    pub async fn update(&self, id: &str, content: &str) -> Result<(), CloudError> {
        self.org
            .update_policy()
            .policy_id(id)
            .content(content)
            .description(DESCRIPTION)
            .send()
            .await
            .map_err(|e| classify("UpdatePolicy", &e))?;
        Ok(())
    }

    /// Attaches a policy to a root, OU or account.
    pub async fn attach(&self, id: &str, target: &str) -> Result<(), CloudError> {
        self.org
            .attach_policy()
            .policy_id(id)
            .target_id(target)
            .send()
            .await
            .map_err(|e| classify("AttachPolicy", &e))?;
        Ok(())
    }

    /// Detaches a policy from a root, OU or account.
    pub async fn detach(&self, id: &str, target: &str) -> Result<(), CloudError> {
        self.org
            .detach_policy()
            .policy_id(id)
            .target_id(target)
            .send()
            .await
            .map_err(|e| classify("DetachPolicy", &e))?;
        Ok(())
    }

    /// The organization's management account id.
    pub async fn management_account(&self) -> Result<String, CloudError> {
        let out = self
            .org
            .describe_organization()
            .send()
            .await
            .map_err(|e| classify("DescribeOrganization", &e))?;
        out.organization()
            .and_then(|o| o.master_account_id())
            .map(String::from)
            .ok_or_else(|| missing("DescribeOrganization", "management account"))
    }

    /// The targets whose policies apply to an account: the account, its OUs, the root.
    pub async fn path_to_root(&self, account: &str) -> Result<Vec<String>, CloudError> {
        let mut path = vec![account.to_string()];
        let mut child = account.to_string();
        for _ in 0..10 {
            let out = self
                .org
                .list_parents()
                .child_id(&child)
                .send()
                .await
                .map_err(|e| classify("ListParents", &e))?;
            let Some(parent) = out.parents().first().and_then(|p| p.id()) else {
                break;
            };
            path.push(parent.to_string());
            if parent.starts_with("r-") {
                break;
            }
            child = parent.to_string();
        }
        Ok(path)
    }

    /// The SCPs attached directly to a target: (name, content).
    pub async fn scps_for(&self, target: &str) -> Result<Vec<(String, String)>, CloudError> {
        let mut out = Vec::new();
        let mut pages = self
            .org
            .list_policies_for_target()
            .target_id(target)
            .filter(PolicyType::ServiceControlPolicy)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListPoliciesForTarget", &e))?;
            for p in page.policies() {
                let (Some(id), name) = (p.id(), p.name().unwrap_or_default()) else {
                    continue;
                };
                out.push((name.to_string(), self.content(id).await?));
            }
        }
        Ok(out)
    }
}
