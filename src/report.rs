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

pub use crate::kind::database::DatabaseChange;
pub use crate::kind::group::GroupChange;
pub use crate::kind::instance::InstanceChange;
pub use crate::kind::{ChangeStatus, Problem, ResourceType};

/// A change to a group or to an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Change {
    /// To an Auto Scaling group.
    Group(GroupChange),
    /// To an instance.
    Instance(InstanceChange),
    /// To a database.
    Database(DatabaseChange),
}

impl From<DatabaseChange> for Change {
    fn from(c: DatabaseChange) -> Self {
        Change::Database(c)
    }
}

impl From<GroupChange> for Change {
    fn from(c: GroupChange) -> Self {
        Change::Group(c)
    }
}

impl From<InstanceChange> for Change {
    fn from(c: InstanceChange) -> Self {
        Change::Instance(c)
    }
}

impl Change {
    /// The change's kind, as in the JSON report.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Group(g) => g.kind(),
            Change::Instance(i) => i.kind(),
            Change::Database(d) => d.kind(),
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
            Change::Group(GroupChange::SetTags { tags })
            | Change::Instance(InstanceChange::SetTags { tags })
            | Change::Database(DatabaseChange::SetTags { tags }) => tags
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
            Change::Group(GroupChange::RemoveTags { keys })
            | Change::Instance(InstanceChange::RemoveTags { keys })
            | Change::Database(DatabaseChange::RemoveTags { keys }) => keys.join(", "),
            Change::Instance(_) | Change::Database(_) => String::new(),
        }
    }
}

/// One change to one resource.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeReport {
    /// Account id.
    pub account: String,
    /// Region.
    pub region: String,
    /// Resource type.
    pub resource_type: ResourceType,
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
    pub resource_type: ResourceType,
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
    pub resource_type: ResourceType,
    /// Resource id.
    pub resource_id: String,
    /// The schedule tag value, if any.
    pub tag_value: Option<String>,
    /// What is wrong.
    pub problem: Problem,
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
    pub resource_type: ResourceType,
    /// Resource id.
    pub resource_id: String,
    /// The note.
    pub note: String,
}

/// Whether a scope's inventory could be listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScopeStatus {
    /// Every kind listed; its plans applied (`reconcile`).
    Ok,
    /// A kind could not be listed (nothing of that kind was applied), or the scope could
    /// not be reached, or it did not finish before the pass deadline.
    Failed,
}

/// What a pass does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Plan only; write nothing.
    Plan,
    /// Plan and apply.
    Reconcile,
}

impl Mode {
    /// `plan` or `reconcile`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Plan => "plan",
            Mode::Reconcile => "reconcile",
        }
    }
}

/// How one scope went.
#[derive(Debug, Clone, Serialize)]
pub struct ScopeReport {
    /// Account id.
    pub account: String,
    /// Region.
    pub region: String,
    /// Whether its inventory was complete (and its changes applied).
    pub status: ScopeStatus,
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
    /// What the pass did.
    pub mode: Mode,
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
    pub policy: Option<crate::policy::sync::Repair>,
    /// SDK calls made, by `Service.Operation`.
    pub api_calls: BTreeMap<String, u64>,
    /// Every resource seen (offhours' and untagged ones), as it was before the pass's
    /// changes: the status page, the savings report and the warning read it. Not in the
    /// JSON report.
    #[serde(skip)]
    pub inventory: Vec<crate::kind::Seen>,
}

impl PassReport {
    /// An empty report.
    #[must_use]
    pub fn new(mode: Mode, now: DateTime<Utc>) -> Self {
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
            inventory: Vec::new(),
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
        self.inventory.sort_by_key(|c| key(&c.account, &c.region, &c.id));
        self.summary = Summary {
            scopes: self.scopes.len(),
            scopes_failed: self.scopes.iter().filter(|s| s.status != ScopeStatus::Ok).count(),
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
        let policy_failed = self.policy.as_ref().is_some_and(crate::policy::sync::Repair::failed);
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
            self.mode.as_str(),
            self.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            s.scopes,
            s.resources,
            s.changes,
            s.errors
        );
        for sc in self.scopes.iter().filter(|s| s.status != ScopeStatus::Ok) {
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
            out.push_str(&p.to_text());
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
