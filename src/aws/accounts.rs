//! Which accounts to work in: the caller's own, or the organization's ACTIVE accounts
//! (filtered by include/exclude lists of accounts, OUs and the root), each reached by
//! assuming the configured role. The caller's own account is used directly.

use std::collections::{BTreeMap, BTreeSet};

use aws_config::SdkConfig;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_organizations::types::AccountStatus;

use super::{CallCounter, classify};
use crate::cloud::{CloudError, ErrorKind};
use crate::config::{AccountsMode, Config, Target};

/// An account to work in.
#[derive(Debug, Clone)]
pub struct Account {
    /// 12-digit id.
    pub id: String,
    /// Credentials for it; `None` means the caller's own.
    pub credentials: Option<SharedCredentialsProvider>,
}

fn missing(operation: &str, what: &str) -> CloudError {
    CloudError {
        operation: operation.into(),
        kind: ErrorKind::Other,
        message: format!("the response has no {what}"),
        source: None,
    }
}

/// Finds the accounts the config asks for, sorted by id.
pub async fn discover(base: &SdkConfig, counter: &CallCounter, cfg: &Config) -> Result<Vec<Account>, CloudError> {
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(base)
            .interceptor(counter.clone())
            .build(),
    );
    let me = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| classify("GetCallerIdentity", e))?;
    let own = me
        .account()
        .ok_or_else(|| missing("GetCallerIdentity", "account"))?
        .to_string();
    let partition = me.arn().and_then(|a| a.split(':').nth(1)).unwrap_or("aws").to_string();
    if cfg.accounts.mode == AccountsMode::SelfAccount {
        return Ok(vec![Account {
            id: own,
            credentials: None,
        }]);
    }

    let org = aws_sdk_organizations::Client::from_conf(
        aws_sdk_organizations::config::Builder::from(base)
            .interceptor(counter.clone())
            .build(),
    );
    let all = list_active(&org).await?;
    let include = resolve(&org, &cfg.accounts.include, &all).await?;
    let exclude = resolve(&org, &cfg.accounts.exclude, &all).await?;
    let mut out = Vec::new();
    for id in all.keys() {
        if (!cfg.accounts.include.is_empty() && !include.contains(id)) || exclude.contains(id) {
            continue;
        }
        let credentials = if *id == own {
            None
        } else {
            let arn = format!("arn:{partition}:iam::{id}:role/{}", cfg.accounts.role_name);
            let mut b = aws_config::sts::AssumeRoleProvider::builder(arn)
                .session_name("offhours")
                .configure(base);
            if let Some(x) = &cfg.accounts.external_id {
                b = b.external_id(x.clone());
            }
            Some(SharedCredentialsProvider::new(b.build().await))
        };
        out.push(Account {
            id: id.clone(),
            credentials,
        });
    }
    Ok(out)
}

/// Where `on_untagged` may act: the management account (DescribeOrganization answers it in
/// any account of an organization; outside one there is none), and the accounts
/// `policy.remediate_in` covers.
pub async fn remediation(
    base: &SdkConfig,
    counter: &CallCounter,
    cfg: &Config,
) -> Result<crate::cloud::RemediationScope, CloudError> {
    let org = aws_sdk_organizations::Client::from_conf(
        aws_sdk_organizations::config::Builder::from(base)
            .interceptor(counter.clone())
            .build(),
    );
    let management = match org.describe_organization().send().await {
        Ok(out) => out.organization().and_then(|o| o.master_account_id()).map(String::from),
        Err(e) => {
            let e = classify("DescribeOrganization", e);
            // Not in an organization: no management account to spare.
            if e.message.contains("AWSOrganizationsNotInUseException") {
                None
            } else {
                return Err(e);
            }
        }
    };
    let only = if cfg.policy.remediate_in.is_empty() {
        None
    } else {
        let all = list_active(&org).await?;
        Some(resolve(&org, &cfg.policy.remediate_in, &all).await?)
    };
    Ok(crate::cloud::RemediationScope { management, only })
}

/// ACTIVE accounts of the organization: id -> name.
async fn list_active(org: &aws_sdk_organizations::Client) -> Result<BTreeMap<String, String>, CloudError> {
    let mut out = BTreeMap::new();
    let mut pages = org.list_accounts().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("ListAccounts", e))?;
        for a in page.accounts() {
            if a.status() == Some(&AccountStatus::Active)
                && let Some(id) = a.id()
            {
                out.insert(id.to_string(), a.name().unwrap_or_default().to_string());
            }
        }
    }
    Ok(out)
}

/// The account ids a list of targets covers.
async fn resolve(
    org: &aws_sdk_organizations::Client,
    targets: &[Target],
    all: &BTreeMap<String, String>,
) -> Result<BTreeSet<String>, CloudError> {
    let mut out = BTreeSet::new();
    for t in targets {
        match t {
            Target::Account(id) => {
                out.insert(id.clone());
            }
            Target::Root(_) => out.extend(all.keys().cloned()),
            Target::Ou(id) => {
                let mut stack = vec![id.clone()];
                while let Some(parent) = stack.pop() {
                    let mut accounts = org
                        .list_accounts_for_parent()
                        .parent_id(&parent)
                        .into_paginator()
                        .send();
                    while let Some(page) = accounts.next().await {
                        let page = page.map_err(|e| classify("ListAccountsForParent", e))?;
                        out.extend(page.accounts().iter().filter_map(|a| a.id().map(String::from)));
                    }
                    let mut ous = org
                        .list_organizational_units_for_parent()
                        .parent_id(&parent)
                        .into_paginator()
                        .send();
                    while let Some(page) = ous.next().await {
                        let page = page.map_err(|e| classify("ListOrganizationalUnitsForParent", e))?;
                        stack.extend(
                            page.organizational_units()
                                .iter()
                                .filter_map(|o| o.id().map(String::from)),
                        );
                    }
                }
            }
        }
    }
    Ok(out)
}
