//! The remediation of an untagged EC2 instance (`policy.on_untagged`): the shared powered
//! remediation ([`crate::kind::power::scan_power`]); a group's member is its group's.

use chrono::{DateTime, Utc};

use super::InstancePlan;
use crate::config::Config;
use crate::kind::power::scan_power;
use crate::kind::{ResourceType, Violation};
use crate::model::{Instance, InstanceState, TAG_ASG_MEMBER};

/// Finds an instance's violation and, for an untagged one, the remediation (see
/// [`crate::kind::group::scan_group`] for `scope_block`).
#[must_use]
pub fn scan_instance(
    cfg: &Config,
    i: &Instance,
    now: DateTime<Utc>,
    scope_block: Option<&str>,
) -> Option<(Violation, Option<InstancePlan>)> {
    if i.tags.contains_key(TAG_ASG_MEMBER) || i.state == InstanceState::Other {
        return None;
    }
    scan_power(cfg, ResourceType::Instance, i, "launched", now, scope_block)
}
