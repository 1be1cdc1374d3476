//! What a pass did or would do: the stable JSON report of `plan` and `reconcile`, and its text form.
//!
//! JSON (version 1):
//! ```json
//! { "version": 1, "mode": "plan" | "reconcile", "now": "<RFC 3339>",
//!   "summary": { "scopes", "scopes_failed", "resources", "changes", "applied", "failed", "errors", "violations" },
//!   "scopes":  [ { "account", "region", "status": "ok" | "failed", "error", "resources" } ],
//!   "changes": [ { "account", "region", "resource_type", "resource_id", "change", "reason",
//!                  "status": "planned" | "applied" | "failed" | "not-attempted" | "skipped", "error", ... } ],
//!   "errors":  [ { "account", "region", "resource_type", "resource_id", "tag_value", "error" } ],
//!   "notes":   [ { "account", "region", "resource_type", "resource_id", "note" } ],
//!   "violations": [ { "account", "region", "resource_type", "resource_id", "tag_value", "problem" } ],
//!   "api_calls": { "<Service>.<Operation>": n } }
//! ```
//! A change's own fields (`capacity`, `actions`, `names`, `tags`, `keys`) sit beside `change`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::plan::GroupChange;

/// Resource type of Auto Scaling groups.
pub const GROUP: &str = "auto-scaling-group";
/// Resource type of EC2 instances.
pub const INSTANCE: &str = "instance";

/// One change to an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum InstanceChange {
    /// StopInstances.
    StopInstance,
    /// StopInstances with Hibernate.
    HibernateInstance,
    /// StartInstances.
    StartInstance,
    /// Create or update tags.
    SetTags {
        /// Key -> value.
        tags: BTreeMap<String, String>,
    },
    /// Remove tags.
    RemoveTags {
        /// The keys.
        keys: Vec<String>,
    },
}

/// A change to a group or to an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Change {
    /// To an Auto Scaling group.
    Group(GroupChange),
    /// To an instance.
    Instance(InstanceChange),
}

impl Change {
    /// The change's kind, as in the JSON report.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Group(g) => g.kind(),
            Change::Instance(InstanceChange::StopInstance) => "stop-instance",
            Change::Instance(InstanceChange::HibernateInstance) => "hibernate-instance",
            Change::Instance(InstanceChange::StartInstance) => "start-instance",
            Change::Instance(InstanceChange::SetTags { .. }) => "set-tags",
            Change::Instance(InstanceChange::RemoveTags { .. }) => "remove-tags",
        }
    }

    fn detail(&self) -> String {
        match self {
            Change::Group(GroupChange::SaveCapacity { capacity, .. } | GroupChange::SetCapacity { capacity }) => {
                capacity.to_string()
            }
            Change::Group(GroupChange::PutScheduledActions { actions }) => {
                actions.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
            }
            Change::Group(GroupChange::DeleteScheduledActions { names }) => names.join(", "),
            Change::Group(GroupChange::SetTags { tags }) | Change::Instance(InstanceChange::SetTags { tags }) => tags
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
            Change::Group(GroupChange::RemoveTags { keys }) | Change::Instance(InstanceChange::RemoveTags { keys }) => {
                keys.join(", ")
            }
            Change::Instance(_) => String::new(),
        }
    }
}

/// How far a change got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeStatus {
    /// Planned only (`plan`).
    Planned,
    /// Done.
    Applied,
    /// Tried and failed.
    Failed,
    /// Not tried, because an earlier step for the same resource failed.
    NotAttempted,
    /// Refused for this resource (e.g. stop protection) and left alone on purpose.
    Skipped,
}

/// One change to one resource.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeReport {
    /// Account id.
    pub account: String,
    /// Region.
    pub region: String,
    /// Resource type.
    pub resource_type: &'static str,
    /// Resource id (group name, instance id).
    pub resource_id: String,
    /// The change and its details.
    #[serde(flatten)]
    pub change: Change,
    /// Why.
    pub reason: String,
    /// How far it got.
    pub status: ChangeStatus,
    /// The failure, if it failed.
    pub error: Option<String>,
    /// For an instance stop: hours until its schedule starts it again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_hours_off: Option<f64>,
    /// For an instance: its type, for cost estimates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
}

/// A problem with one resource (its tag), reported and left alone.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceError {
    /// Account id.
    pub account: String,
    /// Region.
    pub region: String,
    /// Resource type.
    pub resource_type: &'static str,
    /// Resource id.
    pub resource_id: String,
    /// The schedule tag value, if any.
    pub tag_value: Option<String>,
    /// What is wrong.
    pub error: String,
}

/// A resource without a valid schedule tag (the detective scan).
#[derive(Debug, Clone, Serialize)]
pub struct ViolationReport {
    /// Account id.
    pub account: String,
    /// Region.
    pub region: String,
    /// Resource type.
    pub resource_type: &'static str,
    /// Resource id.
    pub resource_id: String,
    /// The schedule tag value, if any.
    pub tag_value: Option<String>,
    /// `untagged` or `invalid-value`.
    pub problem: &'static str,
    /// Why `on_untagged` leaves it alone, when it could otherwise act (absent from the JSON
    /// when nothing holds it back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_remediated: Option<String>,
}

/// Something worth telling about a resource that needs no change.
#[derive(Debug, Clone, Serialize)]
pub struct Note {
    /// Account id.
    pub account: String,
    /// Region.
    pub region: String,
    /// Resource type.
    pub resource_type: &'static str,
    /// Resource id.
    pub resource_id: String,
    /// The note.
    pub note: String,
}

/// How one scope went.
#[derive(Debug, Clone, Serialize)]
pub struct ScopeReport {
    /// Account id.
    pub account: String,
    /// Region.
    pub region: String,
    /// `ok` or `failed`.
    pub status: &'static str,
    /// Why it failed (nothing was applied in it).
    pub error: Option<String>,
    /// Resources seen.
    pub resources: usize,
    /// Resources offhours manages (a valid schedule tag), as `kind/state` -> count, e.g.
    /// `instance/running`, `auto-scaling-group/stopped`.
    pub managed: BTreeMap<String, usize>,
}

/// Totals.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Scopes worked.
    pub scopes: usize,
    /// Scopes that failed and were skipped.
    pub scopes_failed: usize,
    /// Resources seen.
    pub resources: usize,
    /// Changes planned or made.
    pub changes: usize,
    /// Changes applied.
    pub applied: usize,
    /// Changes that failed.
    pub failed: usize,
    /// Resources with an error.
    pub errors: usize,
    /// Resources without a valid schedule tag.
    pub violations: usize,
}

/// One pass, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct PassReport {
    /// Format version of this report.
    pub version: u32,
    /// `plan` or `reconcile`.
    pub mode: &'static str,
    /// The moment the pass planned for.
    pub now: DateTime<Utc>,
    /// Totals.
    pub summary: Summary,
    /// Per scope.
    pub scopes: Vec<ScopeReport>,
    /// Every change.
    pub changes: Vec<ChangeReport>,
    /// Every resource error.
    pub errors: Vec<ResourceError>,
    /// Notes.
    pub notes: Vec<Note>,
    /// Resources without a valid schedule tag.
    pub violations: Vec<ViolationReport>,
    /// Policy drift found and repaired (organization mode with `policy.repair_drift`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<serde_json::Value>,
    /// SDK calls made, by `Service.Operation`.
    pub api_calls: BTreeMap<String, u64>,
}

impl PassReport {
    /// An empty report.
    #[must_use]
    pub fn new(mode: &'static str, now: DateTime<Utc>) -> Self {
        PassReport {
            version: 1,
            mode,
            now,
            summary: Summary::default(),
            scopes: Vec::new(),
            changes: Vec::new(),
            errors: Vec::new(),
            notes: Vec::new(),
            violations: Vec::new(),
            policy: None,
            api_calls: BTreeMap::new(),
        }
    }

    /// Sorts everything and fills in the summary.
    pub fn finish(&mut self) {
        self.scopes
            .sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
        let key = |a: &str, r: &str, id: &str| (a.to_string(), r.to_string(), id.to_string());
        self.changes.sort_by_key(|c| key(&c.account, &c.region, &c.resource_id));
        self.errors.sort_by_key(|c| key(&c.account, &c.region, &c.resource_id));
        self.notes.sort_by_key(|c| key(&c.account, &c.region, &c.resource_id));
        self.violations
            .sort_by_key(|c| key(&c.account, &c.region, &c.resource_id));
        self.summary = Summary {
            scopes: self.scopes.len(),
            scopes_failed: self.scopes.iter().filter(|s| s.status != "ok").count(),
            resources: self.scopes.iter().map(|s| s.resources).sum(),
            changes: self.changes.len(),
            applied: self
                .changes
                .iter()
                .filter(|c| c.status == ChangeStatus::Applied)
                .count(),
            failed: self.changes.iter().filter(|c| c.status == ChangeStatus::Failed).count(),
            errors: self.errors.len(),
            violations: self.violations.len(),
        };
    }

    /// Whether anything failed: a scope, a change, or the policy repair.
    #[must_use]
    pub fn has_failures(&self) -> bool {
        let policy_failed = self.policy.as_ref().is_some_and(|p| {
            p.get("error").is_some()
                || p["changes"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["status"] == "failed"))
        });
        self.summary.scopes_failed > 0 || self.summary.failed > 0 || policy_failed
    }

    /// The human-readable form.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let s = &self.summary;
        let _ = writeln!(
            out,
            "{} at {}: {} scope(s), {} resource(s), {} change(s), {} error(s)",
            self.mode,
            self.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            s.scopes,
            s.resources,
            s.changes,
            s.errors
        );
        for sc in self.scopes.iter().filter(|s| s.status != "ok") {
            let _ = writeln!(
                out,
                "  SCOPE FAILED {}/{}: {}",
                sc.account,
                sc.region,
                sc.error.as_deref().unwrap_or("")
            );
        }
        for c in &self.changes {
            let status = match c.status {
                ChangeStatus::Planned => "",
                ChangeStatus::Applied => " [applied]",
                ChangeStatus::Failed => " [FAILED]",
                ChangeStatus::NotAttempted => " [not attempted]",
                ChangeStatus::Skipped => " [skipped]",
            };
            let detail = c.change.detail();
            let _ = writeln!(
                out,
                "  {}/{} {} {}: {}{}{}: {}",
                c.account,
                c.region,
                c.resource_type,
                c.resource_id,
                c.change.kind(),
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({detail})")
                },
                status,
                c.reason
            );
            if let Some(e) = &c.error {
                let _ = writeln!(out, "      error: {e}");
            }
        }
        for e in &self.errors {
            let _ = writeln!(
                out,
                "  ERROR {}/{} {} {} (tag {:?}): {}",
                e.account, e.region, e.resource_type, e.resource_id, e.tag_value, e.error
            );
        }
        for v in &self.violations {
            let _ = writeln!(
                out,
                "  VIOLATION {}/{} {} {}: {} (tag {:?})",
                v.account, v.region, v.resource_type, v.resource_id, v.problem, v.tag_value
            );
        }
        if let Some(p) = &self.policy {
            if let Some(e) = p.get("error") {
                let _ = writeln!(out, "  POLICY REPAIR FAILED: {e}");
            }
            for c in p["changes"].as_array().into_iter().flatten() {
                let _ = writeln!(
                    out,
                    "  policy {} {} {}: {}",
                    c["status"],
                    c["change"],
                    c["kind"],
                    c.get("target").or(c.get("name")).unwrap_or(&serde_json::Value::Null)
                );
            }
        }
        for n in &self.notes {
            let _ = writeln!(
                out,
                "  note {}/{} {} {}: {}",
                n.account, n.region, n.resource_type, n.resource_id, n.note
            );
        }
        out
    }
}
