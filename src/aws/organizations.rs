//! AWS Organizations through the SDK: the organization, policies (tagged as offhours'),
//! attachments, the OU path of an account, and an account's effective tag policy.

use std::collections::BTreeSet;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_organizations::Client;
use aws_sdk_organizations::types::{EffectivePolicyType, PolicyType, PolicyTypeStatus, Tag};
use aws_smithy_runtime_api::client::result::SdkError;

use super::{CallCounter, classify};
use crate::cloud::{CloudError, ErrorKind};
use crate::policy::drift::{Kind, MANAGED_TAG, Observed};
pub use crate::policy::org::{EffectiveTagPolicy, Org, Organization};

/// Organizations, from the management (or delegated administrator) account.
#[derive(Debug, Clone)]
pub struct OrgClient {
    org: Client,
    base: SdkConfig,
    counter: CallCounter,
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
        source: None,
    }
}

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
            base: base.clone(),
            counter: counter.clone(),
        }
    }

    /// The root id and the policy types enabled on it.
    pub async fn root(&self) -> Result<(String, BTreeSet<Kind>), CloudError> {
        self.root_status().await.map(|(id, enabled, _)| (id, enabled))
    }

    /// Whether a policy carries offhours' `offhours:managed=true` tag.
    async fn managed(&self, id: &str) -> Result<bool, CloudError> {
        let mut pages = self
            .org
            .list_tags_for_resource()
            .resource_id(id)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListTagsForResource", e))?;
            if page
                .tags()
                .iter()
                .any(|t| t.key() == MANAGED_TAG.0 && t.value() == MANAGED_TAG.1)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn content(&self, id: &str) -> Result<String, CloudError> {
        let out = self
            .org
            .describe_policy()
            .policy_id(id)
            .send()
            .await
            .map_err(|e| classify("DescribePolicy", e))?;
        Ok(out.policy().and_then(|p| p.content()).unwrap_or_default().to_string())
    }

    async fn targets(&self, id: &str) -> Result<BTreeSet<String>, CloudError> {
        let mut out = BTreeSet::new();
        let mut pages = self.org.list_targets_for_policy().policy_id(id).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListTargetsForPolicy", e))?;
            out.extend(page.targets().iter().filter_map(|t| t.target_id().map(String::from)));
        }
        Ok(out)
    }

    async fn policies_for(&self, target: &str, kind: Kind) -> Result<Vec<(String, String)>, CloudError> {
        let mut out = Vec::new();
        let mut pages = self
            .org
            .list_policies_for_target()
            .target_id(target)
            .filter(policy_type(kind))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListPoliciesForTarget", e))?;
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

impl Org for OrgClient {
    /// The same client under `role_arn` (assumed from this client's credentials), for the
    /// Organizations writes when `policy.role_arn` is set.
    async fn assuming(&self, role_arn: &str) -> Self {
        let provider = aws_config::sts::AssumeRoleProvider::builder(role_arn)
            .session_name("offhours-policy")
            .configure(&self.base)
            .build()
            .await;
        let sdk = self
            .base
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .build();
        OrgClient::new(&sdk, &self.counter)
    }

    /// The management account and the partition, from DescribeOrganization.
    async fn organization(&self) -> Result<Organization, CloudError> {
        let out = self
            .org
            .describe_organization()
            .send()
            .await
            .map_err(|e| classify("DescribeOrganization", e))?;
        let o = out
            .organization()
            .ok_or_else(|| missing("DescribeOrganization", "organization"))?;
        Ok(Organization {
            management: o
                .master_account_id()
                .map(String::from)
                .ok_or_else(|| missing("DescribeOrganization", "management account"))?,
            partition: o
                .arn()
                .and_then(|a| a.split(':').nth(1))
                .filter(|p| !p.is_empty())
                .unwrap_or("aws")
                .to_string(),
        })
    }

    /// The root id, the policy types enabled on it, and those still being enabled.
    ///
    /// Enabling is asynchronous: "EnablePolicyType ... This is an asynchronous request that
    /// AWS performs in the background", and meanwhile the type's status is `PENDING_ENABLE`
    /// (AWS Organizations API Reference, EnablePolicyType; PolicyTypeSummary, Status), during
    /// which AttachPolicy fails with PolicyTypeNotEnabledException.
    async fn root_status(&self) -> Result<(String, BTreeSet<Kind>, BTreeSet<Kind>), CloudError> {
        let out = self
            .org
            .list_roots()
            .send()
            .await
            .map_err(|e| classify("ListRoots", e))?;
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
    async fn enable(&self, root: &str, kind: Kind) -> Result<(), CloudError> {
        self.org
            .enable_policy_type()
            .root_id(root)
            .policy_type(policy_type(kind))
            .send()
            .await
            .map_err(|e| classify("EnablePolicyType", e))?;
        Ok(())
    }

    /// The policy of this kind with this name, its content and targets.
    async fn find(&self, kind: Kind, name: &str) -> Result<Option<Observed>, CloudError> {
        let mut id = None;
        let mut pages = self
            .org
            .list_policies()
            .filter(policy_type(kind))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListPolicies", e))?;
            if let Some(p) = page.policies().iter().find(|p| p.name() == Some(name)) {
                id = p.id().map(String::from);
            }
        }
        let Some(id) = id else { return Ok(None) };
        let content = self.content(&id).await?;
        let targets = self.targets(&id).await?;
        let managed = self.managed(&id).await?;
        Ok(Some(Observed {
            id,
            content,
            targets,
            managed,
        }))
    }

    /// Creates a policy, tagged `offhours:managed=true` (tagging on create needs
    /// `organizations:TagResource`: Organizations API Reference, CreatePolicy); returns its id.
    async fn create(&self, kind: Kind, name: &str, description: &str, content: &str) -> Result<String, CloudError> {
        let tag = Tag::builder()
            .key(MANAGED_TAG.0)
            .value(MANAGED_TAG.1)
            .build()
            .map_err(|e| CloudError {
                operation: "CreatePolicy".into(),
                kind: ErrorKind::Invalid,
                message: e.to_string(),
                source: None,
            })?;
        let out = self
            .org
            .create_policy()
            .name(name)
            .description(description)
            .content(content)
            .r#type(policy_type(kind))
            .tags(tag)
            .send()
            .await
            .map_err(|e| classify("CreatePolicy", e))?;
        out.policy()
            .and_then(|p| p.policy_summary())
            .and_then(|s| s.id())
            .map(String::from)
            .ok_or_else(|| missing("CreatePolicy", "policy id"))
    }

    /// Replaces a policy's content and description.
    async fn update(&self, id: &str, description: &str, content: &str) -> Result<(), CloudError> {
        self.org
            .update_policy()
            .policy_id(id)
            .content(content)
            .description(description)
            .send()
            .await
            .map_err(|e| classify("UpdatePolicy", e))?;
        Ok(())
    }

    /// Attaches a policy to a root, OU or account.
    async fn attach(&self, id: &str, target: &str) -> Result<(), CloudError> {
        self.org
            .attach_policy()
            .policy_id(id)
            .target_id(target)
            .send()
            .await
            .map_err(|e| classify("AttachPolicy", e))?;
        Ok(())
    }

    /// Detaches a policy from a root, OU or account.
    async fn detach(&self, id: &str, target: &str) -> Result<(), CloudError> {
        self.org
            .detach_policy()
            .policy_id(id)
            .target_id(target)
            .send()
            .await
            .map_err(|e| classify("DetachPolicy", e))?;
        Ok(())
    }

    /// The targets whose policies apply to an account: the account, its OUs, the root.
    async fn path_to_root(&self, account: &str) -> Result<Vec<String>, CloudError> {
        let mut path = vec![account.to_string()];
        let mut child = account.to_string();
        for _ in 0..10 {
            let out = self
                .org
                .list_parents()
                .child_id(&child)
                .send()
                .await
                .map_err(|e| classify("ListParents", e))?;
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
    async fn scps_for(&self, target: &str) -> Result<Vec<(String, String)>, CloudError> {
        self.policies_for(target, Kind::Scp).await
    }

    /// The account's effective tag policy from DescribeEffectivePolicy, called once (no
    /// retries): an answer that is not the API's (a 5xx, an endpoint that does not implement
    /// it, as moto answers with HTTP 500 and an HTML page) or a refusal makes it
    /// [`EffectiveTagPolicy::Unavailable`], and the caller computes it from the attachments.
    /// `EffectivePolicyNotFoundException` means no tag policy applies to the account
    /// (Organizations API Reference, DescribeEffectivePolicy).
    async fn effective_tag_policy(&self, account: &str) -> EffectiveTagPolicy {
        let result = self
            .org
            .describe_effective_policy()
            .policy_type(EffectivePolicyType::TagPolicy)
            .target_id(account)
            .customize()
            .config_override(
                aws_sdk_organizations::config::Builder::default()
                    .retry_config(RetryConfig::standard().with_max_attempts(1)),
            )
            .send()
            .await;
        match result {
            Ok(out) => EffectiveTagPolicy::Described(
                out.effective_policy()
                    .and_then(|p| p.policy_content())
                    .map(String::from),
            ),
            Err(SdkError::ServiceError(e)) if e.err().is_effective_policy_not_found_exception() => {
                EffectiveTagPolicy::Described(None)
            }
            Err(e) => EffectiveTagPolicy::Unavailable(classify("DescribeEffectivePolicy", e).to_string()),
        }
    }

    /// The tag policies attached directly to a target: (name, content).
    async fn tag_policies_for(&self, target: &str) -> Result<Vec<(String, String)>, CloudError> {
        self.policies_for(target, Kind::TagPolicy).await
    }
}
