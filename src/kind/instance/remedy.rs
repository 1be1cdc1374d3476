//! The remediation of an untagged EC2 instance (`policy.on_untagged`).

use chrono::{DateTime, Utc};

use super::{InstancePlan, PowerOp};
use crate::config::{Config, OnUntagged};
use crate::kind::compliance::{TAG_REMEDIATED, screen, stamp};
use crate::kind::{ResourceType, Violation};
use crate::model::{Instance, InstanceState, TAG_ASG_MEMBER};

/// Finds an instance's violation and, for an untagged one, the remediation (see
/// [`scan_group`] for `scope_block`).
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
    let screened = screen(
        cfg,
        ResourceType::Instance,
        &i.id,
        &i.tags,
        (i.launched, "launched"),
        now,
        scope_block,
    )?;
    let mut v = match screened {
        Ok(v) => v,
        Err(v) => return Some((v, None)),
    };
    let mut plan = InstancePlan {
        id: i.id.clone(),
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
            if i.state != InstanceState::Running {
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
    super::plan::within_tag_budget(&mut plan, i);
    if let Some(e) = plan.error.take() {
        v.not_remediated = Some(e);
        return Some((v, None));
    }
    Some((v, Some(plan)))
}
