//! The remediation of an untagged database (`policy.on_untagged`).

use chrono::{DateTime, Utc};

use super::DatabaseChange;
use crate::config::{Config, OnUntagged};
use crate::kind::compliance::{TAG_REMEDIATED, screen, stamp};
use crate::kind::power::{PowerOp, PowerPlan, Powered};
use crate::kind::{Plan, ResourceType, Violation};
use crate::model::{Database, InstanceState};

/// Finds a database's violation and, for an untagged one, the remediation (see
/// [`crate::kind::group::scan_group`] for `scope_block`). A database RDS cannot stop is
/// reported, not stopped.
#[must_use]
pub fn scan_database(
    cfg: &Config,
    resource_type: ResourceType,
    d: &Database,
    now: DateTime<Utc>,
    scope_block: Option<&str>,
) -> Option<(Violation, Option<Plan<DatabaseChange>>)> {
    let screened = screen(
        cfg,
        resource_type,
        &d.id,
        &d.tags,
        (d.created, "created"),
        now,
        scope_block,
    )?;
    let mut v = match screened {
        Ok(v) => v,
        Err(v) => return Some((v, None)),
    };
    let mut plan = PowerPlan {
        id: d.id.clone(),
        ..Default::default()
    };
    match &cfg.policy.on_untagged {
        OnUntagged::Report => return Some((v, None)),
        OnUntagged::Tag(s) => {
            plan.set_tags.insert(cfg.tag_key.clone(), s.clone());
            plan.set_tags
                .insert(TAG_REMEDIATED.into(), format!("tagged {s} at {}", stamp(now)));
            plan.tag_reason = format!("no schedule tag: on_untagged tags it `{s}`");
        }
        OnUntagged::Stop => {
            if d.state() != InstanceState::Running {
                return Some((v, None));
            }
            if let Some(why) = d.never_stopped() {
                v.not_remediated = Some(why);
                return Some((v, None));
            }
            plan.op = Some((PowerOp::Stop, "no schedule tag: on_untagged stops it".into()));
            plan.set_tags.insert(
                TAG_REMEDIATED.into(),
                format!("stopped at {}: no schedule tag", stamp(now)),
            );
            plan.tag_reason = "record the remediation so it can be reversed".into();
        }
    }
    crate::kind::power::within_tag_budget(&mut plan, &d.tags);
    if let Some(e) = plan.error.take() {
        v.not_remediated = Some(e);
        return Some((v, None));
    }
    Some((v, Some(plan.into_plan())))
}
