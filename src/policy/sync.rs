//! Keeps the org policies applied: renders them, reads what the organization has, and
//! (unless asked only for status or a dry run) writes the difference. Also gathers what
//! deciding an event needs: the SCPs along an account's path and its effective tag policy.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

use crate::cloud::{Cloud, CloudError, DatabaseApi, GroupApi, InstanceApi};
use crate::config::Config;
use crate::policy::check::Ruling;
use crate::policy::drift::{self, Desired, Kind, PolicyChange};
use crate::policy::org::{EffectiveTagPolicy, EventQueue, Org, Templates};
use crate::policy::render::{self, RenderError};
use crate::policy::retire::{self, Retired};

/// What a policy run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncMode {
    /// Report drift; write nothing.
    Status,
    /// Show what would change (and the pre-flight); write nothing.
    DryRun,
    /// Write the difference.
    Apply,
}

impl SyncMode {
    /// `status`, `dry-run` or `apply`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::Status => "status",
            SyncMode::DryRun => "dry-run",
            SyncMode::Apply => "apply",
        }
    }
}

/// How a policy's content compares with the config's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Content {
    /// As rendered.
    InSync,
    /// Edited by hand.
    Drifted,
    /// No such policy.
    Missing,
    /// A policy of that name that offhours did not create; left alone.
    NotManaged,
}

impl std::fmt::Display for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Content::InSync => "in-sync",
            Content::Drifted => "drifted",
            Content::Missing => "missing",
            Content::NotManaged => "not-managed",
        })
    }
}

/// How far a policy change got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyChangeStatus {
    /// Planned only.
    Planned,
    /// Done.
    Applied,
    /// Tried and failed.
    Failed,
    /// Not tried: an earlier change of the same policy failed.
    NotAttempted,
    /// Refused: a policy of that name that offhours did not create.
    Refused,
    /// An attachment whose policy type is still being enabled: made on a later run.
    Waiting,
}

impl std::fmt::Display for PolicyChangeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PolicyChangeStatus::Planned => "planned",
            PolicyChangeStatus::Applied => "applied",
            PolicyChangeStatus::Failed => "failed",
            PolicyChangeStatus::NotAttempted => "not-attempted",
            PolicyChangeStatus::Refused => "refused",
            PolicyChangeStatus::Waiting => "waiting",
        })
    }
}

/// The pass's policy part: the repair's report, or why it could not run.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Repair {
    /// The drift found and what was done about it.
    Done(Box<SyncReport>),
    /// The organization could not be read (or a policy rendered).
    Failed {
        /// Why.
        error: String,
    },
}

impl Repair {
    /// Whether the repair failed, or any of its changes did.
    #[must_use]
    pub fn failed(&self) -> bool {
        match self {
            Repair::Failed { .. } => true,
            Repair::Done(r) => r.changes.iter().any(|c| c.status == PolicyChangeStatus::Failed),
        }
    }

    /// The lines of a pass's text report.
    #[must_use]
    pub fn to_text(&self) -> String {
        match self {
            Repair::Failed { error } => format!("  POLICY REPAIR FAILED: {error:?}\n"),
            Repair::Done(r) => r
                .changes
                .iter()
                .map(|c| format!("  policy {} {:?}\n", c.status, c.change))
                .collect(),
        }
    }
}

/// The state of one managed policy.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyStatus {
    /// Which.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// Its id, if it exists.
    pub id: Option<String>,
    /// How its content compares with the config's.
    pub content: Content,
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
    /// How far it got.
    pub status: PolicyChangeStatus,
    /// The failure.
    pub error: Option<String>,
}

/// What `policy status` / `policy apply` report.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    /// What the run did.
    pub mode: SyncMode,
    /// The root id.
    pub root: String,
    /// The partition of the rendered ARNs (from the organization's ARN).
    pub partition: String,
    /// Each policy's state before the changes.
    pub policies: Vec<PolicyStatus>,
    /// The changes (planned, applied or failed).
    pub changes: Vec<ChangeOutcome>,
    /// Schedule values no longer configured that the tag policy keeps, because managed
    /// resources still carry them (or the inventory could not show they do not).
    pub retired: Vec<Retired>,
    /// Pre-flight (`--dry-run`): groups in the targets whose launch templates the SCP would block.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preflight: Option<Vec<crate::policy::preflight::Blocked>>,
    /// Whether anything differed from the config.
    pub drift: bool,
}

impl SyncReport {
    /// Whether a change failed or was refused.
    #[must_use]
    pub fn failed(&self) -> bool {
        self.changes
            .iter()
            .any(|c| matches!(c.status, PolicyChangeStatus::Failed | PolicyChangeStatus::Refused))
    }

    /// The text form.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut t = format!(
            "policy {} (root {}, partition {}): {}\n",
            self.mode.as_str(),
            self.root,
            self.partition,
            if self.drift { "drift found" } else { "in sync" }
        );
        for b in self.preflight.iter().flatten() {
            t += &format!(
                "  WOULD BLOCK group {} in {}/{} (launch template {}): {}\n",
                b.group, b.account, b.region, b.template, b.reason
            );
        }
        for r in &self.retired {
            t += &format!(
                "  retired value `{}` kept in the tag policy: {}\n",
                r.value,
                if r.resources.is_empty() {
                    "the inventory was incomplete, so it could not be shown unused".to_string()
                } else {
                    format!("still carried by {}", r.resources.join(", "))
                }
            );
        }
        for p in &self.policies {
            t += &format!(
                "  {:?} {} ({}): content {}, type {}, missing targets {:?}, extra targets {:?}\n",
                p.kind,
                p.name,
                p.id.as_deref().unwrap_or("-"),
                p.content,
                if p.type_enabled { "enabled" } else { "NOT enabled" },
                p.missing_targets,
                p.extra_targets
            );
        }
        for c in &self.changes {
            t += &format!(
                "  {} {:?}{}\n",
                c.status,
                c.change,
                c.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
            );
        }
        t
    }
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
    /// The rendered SCP could not be read back for the pre-flight.
    #[error(transparent)]
    Rendered(#[from] crate::policy::check::OfflineError),
}

/// The two policies as the config wants them, ARNs in `partition`, the tag policy keeping the
/// `retained` values.
pub fn desired(cfg: &Config, partition: &str, retained: &[String]) -> Result<Vec<Desired>, RenderError> {
    let targets: BTreeSet<String> = cfg.policy.targets.iter().map(|t| t.id().to_string()).collect();
    Ok(vec![
        Desired {
            kind: Kind::Scp,
            name: cfg.policy.scp_name.clone(),
            content: render::scp(cfg, partition)?,
            targets: targets.clone(),
        },
        Desired {
            kind: Kind::TagPolicy,
            name: cfg.policy.tag_policy_name.clone(),
            content: render::tag_policy(cfg, retained)?,
            targets,
        },
    ])
}

/// Where each of `values` is carried by a managed instance or group, read-only, in every
/// scope the config works in: (value -> `account/region/kind/id`, complete?). A scope or a
/// listing that fails makes the inventory incomplete.
pub async fn values_in_use<C: Cloud>(
    cfg: &Config,
    cloud: &C,
    values: &BTreeSet<String>,
) -> (BTreeMap<String, Vec<String>>, bool) {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut complete = true;
    let key = &cfg.tag_key;
    let scopes = match cloud.scopes(cfg).await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %crate::failure::chain(&e), "policy: cannot list the scopes to find schedule values in use");
            return (out, false);
        }
    };
    for (scope, handle) in scopes {
        let Ok(h) = handle else {
            complete = false;
            continue;
        };
        let at = |kind: &str, id: &str| format!("{}/{}/{kind}/{id}", scope.account, scope.region);
        match h.list_groups().await {
            Ok(groups) => {
                for g in groups {
                    if let Some(v) = g.tags.get(key).filter(|v| values.contains(*v)) {
                        out.entry(v.clone())
                            .or_default()
                            .push(at("auto-scaling-group", &g.name));
                    }
                }
            }
            Err(_) => complete = false,
        }
        match h.list_instances(std::slice::from_ref(key)).await {
            Ok(instances) => {
                for i in instances {
                    if let Some(v) = i.tags.get(key).filter(|v| values.contains(*v)) {
                        out.entry(v.clone()).or_default().push(at("instance", &i.id));
                    }
                }
            }
            Err(_) => complete = false,
        }
        for (kind, name) in [
            (crate::model::DbKind::Instance, "db-instance"),
            (crate::model::DbKind::Cluster, "db-cluster"),
        ] {
            match h.list_databases(kind).await {
                Ok(dbs) => {
                    for d in dbs {
                        if let Some(v) = d.tags.get(key).filter(|v| values.contains(*v)) {
                            out.entry(v.clone()).or_default().push(at(name, &d.id));
                        }
                    }
                }
                Err(_) => complete = false,
            }
        }
    }
    (out, complete)
}

/// Reads the organization, and applies the difference when `mode` is `apply`.
///
/// `cloud`, when given, is used read-only to find the resources that still carry a schedule
/// value the config dropped; without it every dropped value is kept as retired.
pub async fn sync<C: Cloud, O: Org>(
    cfg: &Config,
    org: &O,
    mode: SyncMode,
    cloud: Option<&C>,
) -> Result<SyncReport, SyncError> {
    let organization = org.organization().await?;
    let partition = organization.partition;
    let (root, enabled, mut pending) = org.root_status().await?;
    // Values the attached tag policy allows that the config no longer has: keep those in use.
    let observed_tag = org.find(Kind::TagPolicy, &cfg.policy.tag_policy_name).await?;
    let attached: Vec<String> = observed_tag
        .as_ref()
        .and_then(|o| serde_json::from_str::<Value>(&o.content).ok())
        .map(|doc| retire::attached_values(&doc, &cfg.tag_key))
        .unwrap_or_default();
    let allowed = cfg.allowed_values();
    let dropped: BTreeSet<String> = attached.iter().filter(|v| !allowed.contains(v)).cloned().collect();
    let retired = if dropped.is_empty() || cfg.allow_inline {
        Vec::new()
    } else {
        let (in_use, complete) = match cloud {
            Some(c) => values_in_use(cfg, c, &dropped).await,
            None => (BTreeMap::new(), false),
        };
        retire::retained(&allowed, &attached, &in_use, complete)
    };
    for r in &retired {
        warn!(value = %r.value, resources = ?r.resources, "policy: schedule value removed from the config is kept in the tag policy while resources carry it");
    }
    let retained: Vec<String> = retired.iter().map(|r| r.value.clone()).collect();
    let wanted = desired(cfg, &partition, &retained)?;
    let mut report = SyncReport {
        mode,
        root: root.clone(),
        partition: partition.clone(),
        policies: Vec::new(),
        changes: Vec::new(),
        retired,
        preflight: None,
        drift: false,
    };
    for d in &wanted {
        // A target may be given as "r-..." for the root; AWS lists the root by that id too.
        let observed = match d.kind {
            Kind::TagPolicy => observed_tag.clone(),
            Kind::Scp => org.find(d.kind, &d.name).await?,
        };
        let type_enabled = enabled.contains(&d.kind);
        // A type being enabled is on its way: never enabled twice (AWS refuses it).
        let changes = drift::diff(d, type_enabled || pending.contains(&d.kind), observed.as_ref());
        let attached = observed.as_ref().map(|o| o.targets.clone()).unwrap_or_default();
        report.policies.push(PolicyStatus {
            kind: d.kind,
            name: d.name.clone(),
            id: observed.as_ref().map(|o| o.id.clone()),
            content: match &observed {
                None => Content::Missing,
                Some(o) if !o.managed => Content::NotManaged,
                Some(o) if drift::same_content(&o.content, &d.content) => Content::InSync,
                Some(_) => Content::Drifted,
            },
            type_enabled,
            missing_targets: d.targets.difference(&attached).cloned().collect(),
            extra_targets: attached.difference(&d.targets).cloned().collect(),
        });
        report.drift |= !changes.is_empty();
        let description = render::description(cfg, d.kind);
        let mut id = observed.map(|o| o.id);
        let mut failed = false;
        for change in changes {
            if let PolicyChange::NotManaged { id, .. } = &change {
                report.changes.push(ChangeOutcome {
                    status: PolicyChangeStatus::Refused,
                    error: Some(format!(
                        "policy {id} is named `{}` but was not created by offhours (no tag {}={}); it is left alone: rename offhours' policy in the config, or tag {id} by hand to hand it over",
                        d.name,
                        drift::MANAGED_TAG.0,
                        drift::MANAGED_TAG.1
                    )),
                    change,
                });
                continue;
            }
            if mode != SyncMode::Apply || failed {
                let status = if failed {
                    PolicyChangeStatus::NotAttempted
                } else {
                    PolicyChangeStatus::Planned
                };
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
                PolicyChange::CreatePolicy { kind, name } => {
                    org.create(*kind, name, &description, &d.content).await.map(|new| {
                        id = Some(new);
                    })
                }
                PolicyChange::UpdatePolicy { id, .. } => org.update(id, &description, &d.content).await,
                PolicyChange::Attach { target, kind } => {
                    if pending.contains(kind) && !wait_enabled(org, *kind).await {
                        info!(policy = %d.name, target = %target, "the policy type is still being enabled; attached on a later run");
                        report.changes.push(ChangeOutcome {
                            change,
                            status: PolicyChangeStatus::Waiting,
                            error: None,
                        });
                        continue;
                    }
                    pending.remove(kind);
                    org.attach(id.as_deref().unwrap_or_default(), target).await
                }
                PolicyChange::Detach { target, .. } => org.detach(id.as_deref().unwrap_or_default(), target).await,
                PolicyChange::NotManaged { .. } => Ok(()),
            };
            match result {
                Ok(()) => {
                    info!(policy = %d.name, change = ?change, "policy change applied");
                    report.changes.push(ChangeOutcome {
                        change,
                        status: PolicyChangeStatus::Applied,
                        error: None,
                    });
                }
                // An attachment refused while the organization is still settling a policy
                // type or another change: "PolicyTypeNotEnabledException",
                // "PolicyChangesInProgressException" ("Changes to the effective policy are in
                // progress ... Try the operation again later"), "ConcurrentModificationException"
                // (AWS Organizations API Reference, AttachPolicy, Errors). It waits for a later
                // run instead of failing.
                Err(e)
                    if matches!(change, PolicyChange::Attach { .. })
                        && [
                            "PolicyTypeNotEnabledException",
                            "PolicyChangesInProgressException",
                            "ConcurrentModificationException",
                        ]
                        .iter()
                        .any(|c| e.message.contains(c)) =>
                {
                    info!(policy = %d.name, change = ?change, error = %crate::failure::chain(&e), "attachment waits for a later run");
                    report.changes.push(ChangeOutcome {
                        change,
                        status: PolicyChangeStatus::Waiting,
                        error: Some(crate::failure::chain(&e)),
                    });
                }
                Err(e) => {
                    warn!(policy = %d.name, change = ?change, error = %crate::failure::chain(&e), "policy change failed");
                    report.changes.push(ChangeOutcome {
                        change,
                        status: PolicyChangeStatus::Failed,
                        error: Some(crate::failure::chain(&e)),
                    });
                    failed = true;
                }
            }
        }
    }
    Ok(report)
}

/// Waits a little for a policy type that is being enabled; whether it now is.
async fn wait_enabled<O: Org>(org: &O, kind: Kind) -> bool {
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

/// What deciding an event needs from the organization.
#[derive(Debug, Clone)]
pub struct Gathered {
    /// The management account.
    pub management: String,
    /// The SCPs along the account's path.
    pub levels: crate::policy::check::Levels,
    /// The account's effective tag policy, if any applies.
    pub tag_policy: Option<Value>,
    /// `describe-effective-policy` or `computed-from-attachments`.
    pub tag_policy_source: String,
}

/// What deciding an event needs from the organization: the management account, the SCPs
/// along the account's path, and the account's effective tag policy: from
/// DescribeEffectivePolicy where the API answers (other teams' tag policies merge with
/// offhours' there), else computed from the tag policies attached root -> OUs -> account.
pub async fn gather<O: Org>(org: &O, account: &str) -> Result<Gathered, SyncError> {
    use crate::policy::eval::Policy;
    let management = org.organization().await?.management;
    let path = org.path_to_root(account).await?;
    let mut levels = Vec::new();
    for target in &path {
        let mut policies = Vec::new();
        for (name, content) in org.scps_for(target).await? {
            let p = Policy::parse(&content).map_err(|e| CloudError {
                operation: "DescribePolicy".into(),
                kind: crate::cloud::ErrorKind::Invalid,
                message: format!("SCP `{name}` attached to {target} cannot be evaluated: {e}"),
                source: None,
            })?;
            policies.push((name, p));
        }
        levels.push((target.clone(), policies));
    }
    let (tag_policy, tag_policy_source) = match org.effective_tag_policy(account).await {
        EffectiveTagPolicy::Described(content) => (
            content.and_then(|c| serde_json::from_str(&c).ok()),
            "describe-effective-policy".to_string(),
        ),
        EffectiveTagPolicy::Unavailable(why) => {
            info!(account, reason = %why, "DescribeEffectivePolicy unavailable; computing the effective tag policy from the attachments");
            let mut docs = Vec::new();
            for target in path.iter().rev() {
                let mut level = Vec::new();
                for (_, content) in org.tag_policies_for(target).await? {
                    if let Ok(v) = serde_json::from_str::<Value>(&content) {
                        level.push(v);
                    }
                }
                docs.push(level);
            }
            (
                crate::policy::effective::merge(&docs),
                "computed-from-attachments".to_string(),
            )
        }
    };
    Ok(Gathered {
        management,
        levels,
        tag_policy,
        tag_policy_source,
    })
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
    /// Events AWS had already refused (CloudTrail `errorCode`): no violation.
    pub refused: usize,
    /// Events whose outcome depends on something the checker could not read.
    pub unknown: Vec<crate::policy::check::Verdict>,
    /// Messages that were not supported events; deleted so they never block the queue.
    pub rejected: Vec<Rejected>,
    /// Handled messages whose delete failed: they come back and are decided again.
    pub undeleted: Vec<Rejected>,
}

impl IntakeReport {
    /// The text form.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut t = format!(
            "{} message(s): {} violation(s), {} allowed, {} refused by AWS, {} unknown, {} rejected\n",
            self.received,
            self.violations.len(),
            self.allowed,
            self.refused,
            self.unknown.len(),
            self.rejected.len()
        );
        for v in &self.violations {
            t += &format!(
                "  VIOLATION {} {} by {:?}: {}\n",
                v.account, v.event, v.principal_arn, v.reason
            );
        }
        for r in &self.rejected {
            t += &format!("  rejected message {}: {}\n", r.message_id, r.error);
        }
        t
    }
}

/// Drains up to `max` messages from the event queue: each event is decided as AWS would (the
/// launch templates it names read through `cloud`, when given),
/// denials are reported as violations, and every message is deleted once handled (an
/// unreadable one too, after it is logged). A message whose account cannot be read
/// from the organization is left for a later attempt.
///
/// Receives long-poll for `policy.event_wait_seconds`: "Short polling occurs when the
/// WaitTimeSeconds parameter of a ReceiveMessage request is set to 0 ... Amazon SQS samples
/// a subset of its servers ... you might not receive any messages" even while some wait;
/// long polling queries all servers (Amazon SQS Developer Guide, "Amazon SQS short and long
/// polling"). The drain ends after `policy.event_empty_receives` empty receives in a row, or
/// at a message seen twice (left for later, or not deleted, and back after its visibility
/// timeout). A delete that fails is reported (the message comes back and is decided
/// again); it ends neither the drain nor the report.
pub async fn intake<C: Cloud, O: Org, Q: EventQueue>(
    cfg: &Config,
    org: &O,
    queue: &Q,
    max: usize,
    cloud: Option<&C>,
) -> Result<IntakeReport, SyncError>
where
    C::Scope: Templates,
{
    use std::collections::HashMap;
    let mut report = IntakeReport::default();
    // Listed once, the first time an event names a launch template.
    let mut scopes: Option<Vec<crate::cloud::ScopeHandle<C::Scope>>> = None;
    let mut cache: HashMap<String, Gathered> = HashMap::new();
    let mut empty = 0;
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
                    warn!(message_id = %m.id, error = %crate::failure::chain(&e), "event queue: message is not a supported CloudTrail event; deleted");
                    report.rejected.push(Rejected {
                        message_id: m.id.clone(),
                        error: e.to_string(),
                    });
                }
                Ok(mut ev) => {
                    if let Some(cloud) = cloud
                        && !ev.templates().is_empty()
                    {
                        if scopes.is_none() {
                            match cloud.scopes(cfg).await {
                                Ok(s) => scopes = Some(s),
                                Err(e) => {
                                    warn!(error = %crate::failure::chain(&e), "event queue: cannot list the scopes to read launch templates")
                                }
                            }
                        }
                        if let Some(s) = &scopes {
                            resolve_templates_in(s, &mut ev).await;
                        }
                    }
                    if !cache.contains_key(&ev.account) {
                        match gather(org, &ev.account).await {
                            Ok(g) => {
                                cache.insert(ev.account.clone(), g);
                            }
                            Err(e) => {
                                warn!(message_id = %m.id, account = %ev.account, error = %crate::failure::chain(&e), "event queue: cannot read the account's policies; the message is retried later");
                                continue;
                            }
                        }
                    }
                    let g = &cache[&ev.account];
                    let v = crate::policy::check::decide(
                        &ev,
                        &crate::policy::check::Facts {
                            management: Some(&g.management),
                            levels: &g.levels,
                            tag_policy: g.tag_policy.as_ref(),
                            tag_policy_source: &g.tag_policy_source,
                            tag_key: &cfg.tag_key,
                        },
                    );
                    match v.decision {
                        Ruling::Deny => {
                            warn!(account = %v.account, event = %v.event, principal = ?v.principal_arn, reason = %v.reason, "policy violation");
                            report.violations.push(v);
                        }
                        Ruling::Refused => report.refused += 1,
                        Ruling::Unknown => report.unknown.push(v),
                        Ruling::Allow => report.allowed += 1,
                    }
                }
            }
            if let Err(e) = queue.delete(&m.receipt).await {
                warn!(message_id = %m.id, error = %crate::failure::chain(&e), "event queue: handled message not deleted; it will be delivered again");
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
pub async fn repair<C: Cloud, O: Org>(cfg: &Config, org: &O, apply: bool, cloud: Option<&C>) -> Option<Repair> {
    if cfg.accounts.mode != crate::config::AccountsMode::Organization || !cfg.policy.repair_drift {
        return None;
    }
    let mode = if apply { SyncMode::Apply } else { SyncMode::DryRun };
    let writer = match &cfg.policy.role_arn {
        Some(arn) if apply => org.assuming(arn).await,
        _ => org.clone(),
    };
    Some(match sync(cfg, &writer, mode, cloud).await {
        Ok(r) => {
            for c in r.changes.iter().filter(|c| c.status == PolicyChangeStatus::Applied) {
                info!(change = ?c.change, "policy drift repaired");
            }
            Repair::Done(Box::new(r))
        }
        Err(e) => {
            warn!(error = %crate::failure::chain(&e), "policy drift check failed");
            Repair::Failed {
                error: crate::failure::chain(&e),
            }
        }
    })
}

/// Reads the instance tags of the launch templates an event names, in the event's account and
/// region (through the member role, as the pass reaches it), so that the checker can decide
/// the `ec2:RunInstances` check AWS makes with them. A template that cannot be read is left
/// unknown, and the verdict says so.
pub async fn resolve_templates<C: Cloud>(cfg: &Config, cloud: &C, ev: &mut crate::policy::event::Event)
where
    C::Scope: Templates,
{
    if ev.templates().is_empty() {
        return;
    }
    match cloud.scopes(cfg).await {
        Ok(scopes) => resolve_templates_in(&scopes, ev).await,
        Err(e) => {
            warn!(error = %crate::failure::chain(&e), "policy check: cannot reach the event's account to read its launch templates")
        }
    }
}

/// [`resolve_templates`] with the scopes already listed (the event queue lists them once).
pub async fn resolve_templates_in<T: Templates>(
    scopes: &[crate::cloud::ScopeHandle<T>],
    ev: &mut crate::policy::event::Event,
) {
    let templates = ev.templates();
    if templates.is_empty() {
        return;
    }
    let Some((_, Ok(handle))) = scopes
        .iter()
        .find(|(s, _)| s.account == ev.account && s.region == ev.region)
    else {
        warn!(account = %ev.account, region = %ev.region, "policy check: the event's account and region are not among the configured scopes; its launch templates stay unknown");
        return;
    };
    for t in templates {
        match handle.instance_tags(&t).await {
            Ok(Some(tags)) => ev.resolve_template(&t, &tags),
            Ok(None) => ev.resolve_template(&t, &BTreeMap::new()),
            Err(e) => {
                warn!(template = %t, error = %crate::failure::chain(&e), "policy check: cannot read the launch template")
            }
        }
    }
}

/// Pre-flight: the groups in the policy's targets whose launch templates the SCP would block
/// (their next create or update by a team would fail), before anything is attached. Scopes are
/// the accounts and regions offhours works in, kept to those under a configured target.
pub async fn preflight<C: Cloud, O: Org>(
    cfg: &Config,
    org: &O,
    cloud: &C,
    partition: &str,
) -> Result<Vec<crate::policy::preflight::Blocked>, SyncError>
where
    C::Scope: Templates,
{
    use crate::policy::preflight::{Blocked, rendered_scp, template_blocked};
    let scp = rendered_scp(cfg, partition)?;
    let targets: BTreeSet<&str> = cfg.policy.targets.iter().map(|t| t.id()).collect();
    let mut out = Vec::new();
    if targets.is_empty() {
        return Ok(out);
    }
    let mut under: BTreeMap<String, bool> = BTreeMap::new();
    for (scope, handle) in cloud.scopes(cfg).await? {
        if !under.contains_key(&scope.account) {
            let path = org.path_to_root(&scope.account).await?;
            under.insert(scope.account.clone(), path.iter().any(|p| targets.contains(p.as_str())));
        }
        if !under[&scope.account] {
            continue;
        }
        let handle = match handle {
            Ok(h) => h,
            Err(e) => {
                warn!(account = %scope.account, region = %scope.region, error = %crate::failure::chain(&e), "pre-flight: scope unreachable");
                continue;
            }
        };
        let mut cache: BTreeMap<crate::policy::event::TemplateRef, Option<BTreeMap<String, String>>> = BTreeMap::new();
        for (group, t) in handle.groups_with_templates().await? {
            if !cache.contains_key(&t) {
                let tags = handle.instance_tags(&t).await?;
                cache.insert(t.clone(), tags);
            }
            if let Some(reason) = template_blocked(&scp, partition, &scope.account, &scope.region, cache[&t].as_ref()) {
                out.push(Blocked {
                    account: scope.account.clone(),
                    region: scope.region.clone(),
                    group,
                    template: t.to_string(),
                    reason,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! `sync` against an in-memory organization: no moto, the organization's state is the oracle.

    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::cloud::fake::FakeCloud;
    use crate::policy::drift::Observed;
    use crate::policy::org::Organization;

    #[derive(Debug, Default)]
    struct OrgState {
        enabled: BTreeSet<Kind>,
        /// (kind, name, policy).
        policies: Vec<(Kind, String, Observed)>,
        writes: usize,
    }

    #[derive(Debug, Clone, Default)]
    struct FakeOrg(Arc<Mutex<OrgState>>);

    impl FakeOrg {
        fn policy(&self, kind: Kind) -> Option<Observed> {
            let st = self.0.lock().unwrap();
            st.policies.iter().find(|p| p.0 == kind).map(|p| p.2.clone())
        }
        fn writes(&self) -> usize {
            self.0.lock().unwrap().writes
        }
        fn edit(&self, id: &str, f: impl FnOnce(&mut Observed)) {
            let mut st = self.0.lock().unwrap();
            f(&mut st.policies.iter_mut().find(|p| p.2.id == id).unwrap().2);
        }
    }

    impl Org for FakeOrg {
        async fn assuming(&self, _role_arn: &str) -> Self {
            self.clone()
        }
        async fn organization(&self) -> Result<Organization, CloudError> {
            Ok(Organization {
                management: "000000000000".into(),
                partition: "aws".into(),
            })
        }
        async fn root_status(&self) -> Result<(String, BTreeSet<Kind>, BTreeSet<Kind>), CloudError> {
            Ok(("r-abcd".into(), self.0.lock().unwrap().enabled.clone(), BTreeSet::new()))
        }
        async fn enable(&self, _root: &str, kind: Kind) -> Result<(), CloudError> {
            let mut st = self.0.lock().unwrap();
            st.writes += 1;
            st.enabled.insert(kind);
            Ok(())
        }
        async fn find(&self, kind: Kind, name: &str) -> Result<Option<Observed>, CloudError> {
            let st = self.0.lock().unwrap();
            Ok(st
                .policies
                .iter()
                .find(|p| p.0 == kind && p.1 == name)
                .map(|p| p.2.clone()))
        }
        async fn create(
            &self,
            kind: Kind,
            name: &str,
            _description: &str,
            content: &str,
        ) -> Result<String, CloudError> {
            let mut st = self.0.lock().unwrap();
            st.writes += 1;
            let id = format!("p-{}", st.policies.len() + 1);
            st.policies.push((
                kind,
                name.into(),
                Observed {
                    id: id.clone(),
                    content: content.into(),
                    targets: BTreeSet::new(),
                    managed: true,
                },
            ));
            Ok(id)
        }
        async fn update(&self, id: &str, _description: &str, content: &str) -> Result<(), CloudError> {
            self.0.lock().unwrap().writes += 1;
            self.edit(id, |p| p.content = content.into());
            Ok(())
        }
        async fn attach(&self, id: &str, target: &str) -> Result<(), CloudError> {
            self.0.lock().unwrap().writes += 1;
            self.edit(id, |p| {
                p.targets.insert(target.into());
            });
            Ok(())
        }
        async fn detach(&self, id: &str, target: &str) -> Result<(), CloudError> {
            self.0.lock().unwrap().writes += 1;
            self.edit(id, |p| {
                p.targets.remove(target);
            });
            Ok(())
        }
        async fn path_to_root(&self, account: &str) -> Result<Vec<String>, CloudError> {
            Ok(vec![account.into(), "r-abcd".into()])
        }
        async fn scps_for(&self, _target: &str) -> Result<Vec<(String, String)>, CloudError> {
            Ok(Vec::new())
        }
        async fn effective_tag_policy(&self, _account: &str) -> EffectiveTagPolicy {
            EffectiveTagPolicy::Described(None)
        }
        async fn tag_policies_for(&self, _target: &str) -> Result<Vec<(String, String)>, CloudError> {
            Ok(Vec::new())
        }
    }

    fn cfg() -> Config {
        crate::fixtures::config_from(&format!(
            "{}policy:\n  targets: ['r-abcd']\naccounts:\n  mode: organization\n",
            crate::fixtures::CONFIG
        ))
    }

    async fn run(org: &FakeOrg, mode: SyncMode) -> SyncReport {
        sync(&cfg(), org, mode, None::<&FakeCloud>).await.unwrap()
    }

    #[tokio::test]
    async fn a_first_apply_enables_creates_and_attaches_and_a_second_writes_nothing() {
        let org = FakeOrg::default();
        let first = run(&org, SyncMode::Apply).await;
        assert!(first.drift && !first.failed(), "{}", first.to_text());
        assert!(first.changes.iter().all(|c| c.status == PolicyChangeStatus::Applied));
        let c = cfg();
        for (kind, want) in [
            (Kind::Scp, render::scp(&c, "aws").unwrap()),
            (Kind::TagPolicy, render::tag_policy(&c, &[]).unwrap()),
        ] {
            let p = org.policy(kind).unwrap_or_else(|| panic!("{kind:?} created"));
            assert!(p.managed);
            assert_eq!(p.targets, BTreeSet::from(["r-abcd".to_string()]), "{kind:?}");
            let (got, want): (Value, Value) = (
                serde_json::from_str(&p.content).unwrap(),
                serde_json::from_str(&want).unwrap(),
            );
            assert_eq!(got, want, "{kind:?} content as rendered");
            assert!(org.0.lock().unwrap().enabled.contains(&kind));
        }
        let writes = org.writes();
        let second = run(&org, SyncMode::Apply).await;
        assert!(!second.drift && second.changes.is_empty(), "{}", second.to_text());
        assert_eq!(org.writes(), writes, "a second apply writes nothing");
    }

    #[tokio::test]
    async fn a_hand_edit_is_reported_then_repaired() {
        let org = FakeOrg::default();
        run(&org, SyncMode::Apply).await;
        let scp = org.policy(Kind::Scp).unwrap();
        org.edit(&scp.id, |p| {
            p.content = r#"{"Version":"2012-10-17","Statement":[]}"#.into()
        });
        let writes = org.writes();
        let status = run(&org, SyncMode::Status).await;
        assert!(status.drift);
        assert!(
            status
                .policies
                .iter()
                .any(|p| p.kind == Kind::Scp && p.content == Content::Drifted)
        );
        assert_eq!(org.writes(), writes, "status writes nothing");
        run(&org, SyncMode::Apply).await;
        let fixed = org.policy(Kind::Scp).unwrap();
        assert!(drift::same_content(
            &fixed.content,
            &render::scp(&cfg(), "aws").unwrap()
        ));
    }

    #[tokio::test]
    async fn a_policy_of_that_name_offhours_did_not_create_is_refused_and_left_alone() {
        let org = FakeOrg::default();
        let name = cfg().policy.tag_policy_name.clone();
        org.0.lock().unwrap().policies.push((
            Kind::TagPolicy,
            name,
            Observed {
                id: "p-theirs".into(),
                content: "{}".into(),
                targets: BTreeSet::new(),
                managed: false,
            },
        ));
        let r = run(&org, SyncMode::Apply).await;
        assert!(r.failed(), "{}", r.to_text());
        assert!(r.changes.iter().any(|c| c.status == PolicyChangeStatus::Refused));
        let theirs = org.policy(Kind::TagPolicy).unwrap();
        assert_eq!((theirs.content.as_str(), theirs.targets.len()), ("{}", 0), "untouched");
    }
}
