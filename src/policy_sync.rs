//! Keeps the org policies applied: renders them, reads what the organization has, and
//! (unless asked only for status or a dry run) writes the difference.

use std::collections::BTreeSet;

use serde::Serialize;
use tracing::{info, warn};

use crate::aws::organizations::OrgClient;
use crate::cloud::CloudError;
use crate::config::Config;
use crate::policy::drift::{self, Desired, Kind, PolicyChange};
use crate::policy::render::{self, RenderError};

/// The state of one managed policy.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyStatus {
    /// Which.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// Its id, if it exists.
    pub id: Option<String>,
    /// `in-sync`, `drifted` (content edited) or `missing`.
    pub content: &'static str,
    /// Whether its policy type is enabled on the root.
    pub type_enabled: bool,
    /// Configured targets it is not attached to.
    pub missing_targets: Vec<String>,
    /// Targets it is attached to that are not configured.
    pub extra_targets: Vec<String>,
}

/// One change, and how it went.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeOutcome {
    /// The change.
    #[serde(flatten)]
    pub change: PolicyChange,
    /// `planned`, `applied`, `failed`, `not-attempted`, or `waiting` (an attachment whose
    /// policy type is still being enabled: made on a later run).
    pub status: &'static str,
    /// The failure.
    pub error: Option<String>,
}

/// What `policy status` / `policy apply` report.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    /// `status`, `dry-run` or `apply`.
    pub mode: &'static str,
    /// The root id.
    pub root: String,
    /// Each policy's state before the changes.
    pub policies: Vec<PolicyStatus>,
    /// The changes (planned, applied or failed).
    pub changes: Vec<ChangeOutcome>,
    /// Whether anything differed from the config.
    pub drift: bool,
}

/// Why syncing could not even start.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A policy could not be rendered.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// Reading the organization failed.
    #[error(transparent)]
    Cloud(#[from] CloudError),
}

/// The two policies as the config wants them.
pub fn desired(cfg: &Config) -> Result<Vec<Desired>, RenderError> {
    let targets: BTreeSet<String> = cfg.policy.targets.iter().map(|t| t.id().to_string()).collect();
    Ok(vec![
        Desired {
            kind: Kind::Scp,
            name: cfg.policy.scp_name.clone(),
            content: render::scp(cfg)?,
            targets: targets.clone(),
        },
        Desired {
            kind: Kind::TagPolicy,
            name: cfg.policy.tag_policy_name.clone(),
            content: render::tag_policy(cfg)?,
            targets,
        },
    ])
}

/// Reads the organization, and applies the difference when `apply` is set.
pub async fn sync(cfg: &Config, org: &OrgClient, mode: &'static str) -> Result<SyncReport, SyncError> {
    let wanted = desired(cfg)?;
    let (root, enabled, mut pending) = org.root_status().await?;
    let mut report = SyncReport {
        mode,
        root: root.clone(),
        policies: Vec::new(),
        changes: Vec::new(),
        drift: false,
    };
    for d in &wanted {
        // A target may be given as "r-..." for the root; AWS lists the root by that id too.
        let observed = org.find(d.kind, &d.name).await?;
        let type_enabled = enabled.contains(&d.kind);
        // A type being enabled is on its way: never enabled twice (AWS refuses it).
        let changes = drift::diff(d, type_enabled || pending.contains(&d.kind), observed.as_ref());
        let attached = observed.as_ref().map(|o| o.targets.clone()).unwrap_or_default();
        report.policies.push(PolicyStatus {
            kind: d.kind,
            name: d.name.clone(),
            id: observed.as_ref().map(|o| o.id.clone()),
            content: match &observed {
                None => "missing",
                Some(o) if drift::same_content(&o.content, &d.content) => "in-sync",
                Some(_) => "drifted",
            },
            type_enabled,
            missing_targets: d.targets.difference(&attached).cloned().collect(),
            extra_targets: attached.difference(&d.targets).cloned().collect(),
        });
        report.drift |= !changes.is_empty();
        let mut id = observed.map(|o| o.id);
        let mut failed = false;
        for change in changes {
            if mode != "apply" || failed {
                let status = if failed { "not-attempted" } else { "planned" };
                report.changes.push(ChangeOutcome {
                    change,
                    status,
                    error: None,
                });
                continue;
            }
            let result = match &change {
                PolicyChange::EnablePolicyType { kind } => org.enable(&root, *kind).await.map(|()| {
                    pending.insert(*kind);
                }),
                PolicyChange::CreatePolicy { kind, name } => org.create(*kind, name, &d.content).await.map(|new| {
                    id = Some(new);
                }),
                PolicyChange::UpdatePolicy { id, .. } => org.update(id, &d.content).await,
                PolicyChange::Attach { target, kind } => {
                    if pending.contains(kind) && !wait_enabled(org, *kind).await {
                        info!(policy = %d.name, target = %target, "the policy type is still being enabled; attached on a later run");
                        report.changes.push(ChangeOutcome {
                            change,
                            status: "waiting",
                            error: None,
                        });
                        continue;
                    }
                    pending.remove(kind);
                    org.attach(id.as_deref().unwrap_or_default(), target).await
                }
                PolicyChange::Detach { target, .. } => org.detach(id.as_deref().unwrap_or_default(), target).await,
            };
            match result {
                Ok(()) => {
                    info!(policy = %d.name, change = ?change, "policy change applied");
                    report.changes.push(ChangeOutcome {
                        change,
                        status: "applied",
                        error: None,
                    });
                }
                Err(e) => {
                    warn!(policy = %d.name, change = ?change, error = %e, "policy change failed");
                    report.changes.push(ChangeOutcome {
                        change,
                        status: "failed",
                        error: Some(e.to_string()),
                    });
                    failed = true;
                }
            }
        }
    }
    Ok(report)
}

/// Waits a little for a policy type that is being enabled; whether it now is.
async fn wait_enabled(org: &OrgClient, kind: crate::policy::drift::Kind) -> bool {
    for _ in 0..10 {
        match org.root_status().await {
            Ok((_, enabled, _)) if enabled.contains(&kind) => return true,
            Ok((_, _, pending)) if !pending.contains(&kind) => return false,
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
            Err(_) => return false,
        }
    }
    false
}

/// What deciding an event needs from the organization: the management account, the SCPs
/// along the account's path, and offhours' tag policy if it is attached on that path.
pub async fn gather(
    cfg: &Config,
    org: &OrgClient,
    account: &str,
) -> Result<(String, crate::policy::check::Levels, Option<serde_json::Value>), SyncError> {
    use crate::policy::eval::Policy;
    let management = org.management_account().await?;
    let path = org.path_to_root(account).await?;
    let mut levels = Vec::new();
    for target in &path {
        let mut policies = Vec::new();
        for (name, content) in org.scps_for(target).await? {
            let p = Policy::parse(&content).map_err(|e| CloudError {
                operation: "DescribePolicy".into(),
                kind: crate::cloud::ErrorKind::Invalid,
                message: format!("SCP `{name}` attached to {target} cannot be evaluated: {e}"),
            })?;
            policies.push((name, p));
        }
        levels.push((target.clone(), policies));
    }
    let tag_policy = match org.find(Kind::TagPolicy, &cfg.policy.tag_policy_name).await? {
        Some(o) if o.targets.iter().any(|t| path.contains(t)) => serde_json::from_str(&o.content).ok(),
        _ => None,
    };
    Ok((management, levels, tag_policy))
}

/// A message that could not be read as a supported event (deleted, never retried).
#[derive(Debug, Clone, Serialize)]
pub struct Rejected {
    /// The SQS message id.
    pub message_id: String,
    /// Why.
    pub error: String,
}

/// What one drain of the event queue found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IntakeReport {
    /// Messages received.
    pub received: usize,
    /// Events the policies deny: violations seen within seconds.
    pub violations: Vec<crate::policy::check::Verdict>,
    /// Events allowed.
    pub allowed: usize,
    /// Messages that were not supported events; deleted so they never block the queue.
    pub rejected: Vec<Rejected>,
    /// Handled messages whose delete failed: they come back and are decided again.
    pub undeleted: Vec<Rejected>,
}

/// Drains up to `max` messages from the event queue: each event is decided as AWS would,
/// denials are reported as violations, and every message is deleted once handled (an
/// unreadable one too, after it is logged). A message whose account cannot be read
/// from the organization is left for a later attempt.
///
/// Receives long-poll for `policy.event_wait_seconds`: "Short polling occurs when the
/// WaitTimeSeconds parameter of a ReceiveMessage request is set to 0 ... Amazon SQS samples
/// a subset of its servers ... you might not receive any messages" even while some wait;
/// long polling queries all servers (Amazon SQS Developer Guide, "Amazon SQS short and long
/// polling"). The drain ends after `policy.event_empty_receives` empty receives in a row.
/// A delete that fails is reported (the message comes back after its visibility timeout
/// and is decided again); it ends neither the drain nor the report.
pub async fn intake(
    cfg: &Config,
    org: &OrgClient,
    queue: &crate::aws::sqs::Queue,
    max: usize,
) -> Result<IntakeReport, SyncError> {
    use std::collections::HashMap;
    let mut report = IntakeReport::default();
    let mut cache: HashMap<String, (String, crate::policy::check::Levels, Option<serde_json::Value>)> = HashMap::new();
    let mut empty = 0;
    // A message seen twice in one drain (left for later, or whose delete failed, and back
    // after its visibility timeout) ends the drain: the queue has been gone through.
    let mut seen = std::collections::HashSet::new();
    'drain: while report.received < max && empty < cfg.policy.event_empty_receives {
        let batch = queue.receive(cfg.policy.event_wait_seconds).await?;
        if batch.is_empty() {
            empty += 1;
            continue;
        }
        empty = 0;
        for m in batch {
            if !seen.insert(m.id.clone()) {
                break 'drain;
            }
            report.received += 1;
            match crate::policy::event::parse(&m.body) {
                Err(e) => {
                    warn!(message_id = %m.id, error = %e, "event queue: message is not a supported CloudTrail event; deleted");
                    report.rejected.push(Rejected {
                        message_id: m.id.clone(),
                        error: e.to_string(),
                    });
                }
                Ok(ev) => {
                    if !cache.contains_key(&ev.account) {
                        match gather(cfg, org, &ev.account).await {
                            Ok(g) => {
                                cache.insert(ev.account.clone(), g);
                            }
                            Err(e) => {
                                warn!(message_id = %m.id, account = %ev.account, error = %e, "event queue: cannot read the account's policies; the message is retried later");
                                continue;
                            }
                        }
                    }
                    let (management, levels, tag_policy) = &cache[&ev.account];
                    let v = crate::policy::check::decide(&ev, Some(management), levels, tag_policy.as_ref());
                    if v.decision == "deny" {
                        warn!(account = %v.account, event = %v.event, principal = ?v.principal_arn, reason = %v.reason, "policy violation");
                        report.violations.push(v);
                    } else {
                        report.allowed += 1;
                    }
                }
            }
            if let Err(e) = queue.delete(&m.receipt).await {
                warn!(message_id = %m.id, error = %e, "event queue: handled message not deleted; it will be delivered again");
                report.undeleted.push(Rejected {
                    message_id: m.id.clone(),
                    error: e.to_string(),
                });
            }
        }
    }
    Ok(report)
}

/// The pass's policy step: in organization mode with `repair_drift` on, reads both
/// policies and (when `apply`) repairs drift, reporting every change. `None` when the
/// config does not ask for it.
pub async fn repair(cfg: &Config, org: &OrgClient, apply: bool) -> Option<serde_json::Value> {
    if cfg.accounts.mode != crate::config::AccountsMode::Organization || !cfg.policy.repair_drift {
        return None;
    }
    let mode = if apply { "apply" } else { "dry-run" };
    Some(match sync(cfg, org, mode).await {
        Ok(r) => {
            for c in r.changes.iter().filter(|c| c.status == "applied") {
                info!(change = ?c.change, "policy drift repaired");
            }
            serde_json::to_value(&r).unwrap_or_default()
        }
        Err(e) => {
            warn!(error = %e, "policy drift check failed");
            serde_json::json!({ "error": e.to_string() })
        }
    })
}
