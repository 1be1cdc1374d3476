//! The remediation of an untagged database (`policy.on_untagged`): the shared powered
//! remediation ([`crate::kind::power::scan_power`]); a database RDS cannot stop is reported,
//! not stopped.

use chrono::{DateTime, Utc};

use super::DatabaseChange;
use crate::config::Config;
use crate::kind::power::{PowerPlan, scan_power};
use crate::kind::{Plan, ResourceType, Violation};
use crate::model::Database;

/// Finds a database's violation and, for an untagged one, the remediation (see
/// [`crate::kind::group::scan_group`] for `scope_block`).
#[must_use]
pub fn scan_database(
    cfg: &Config,
    resource_type: ResourceType,
    d: &Database,
    now: DateTime<Utc>,
    scope_block: Option<&str>,
) -> Option<(Violation, Option<Plan<DatabaseChange>>)> {
    scan_power(cfg, resource_type, d, "created", now, scope_block).map(|(v, p)| (v, p.map(PowerPlan::into_plan)))
}
