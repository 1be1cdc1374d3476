//! The remediation of an untagged Auto Scaling group (`policy.on_untagged`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{GroupChange, GroupPlan};
use crate::capacity::Capacity;
use crate::config::{Config, OnUntagged};
use crate::kind::compliance::{TAG_REMEDIATED, screen, stamp};
use crate::kind::{ResourceType, Violation};
use crate::model::Group;

/// Finds a group's violation and, for an untagged one, the remediation. `scope_block` says
/// why remediation may not act in this scope at all (the management account, outside
/// `policy.remediate_in`), if so.
#[must_use]
pub fn scan_group(
    cfg: &Config,
    g: &Group,
    now: DateTime<Utc>,
    scope_block: Option<&str>,
) -> Option<(Violation, Option<GroupPlan>)> {
    let screened = screen(
        cfg,
        ResourceType::AutoScalingGroup,
        &g.name,
        &g.tags,
        (g.created, "created"),
        now,
        scope_block,
    )?;
    let mut v = match screened {
        Ok(v) => v,
        Err(v) => return Some((v, None)),
    };
    let mut plan = GroupPlan::new(g.name.clone(), None);
    match &cfg.policy.on_untagged {
        OnUntagged::Report => return Some((v, None)),
        OnUntagged::Tag(s) => plan.step(
            GroupChange::SetTags {
                tags: BTreeMap::from([
                    (cfg.tag_key.clone(), s.clone()),
                    (TAG_REMEDIATED.to_string(), format!("tagged {s} at {}", stamp(now))),
                ]),
            },
            format!("no schedule tag: on_untagged tags it `{s}`"),
        ),
        OnUntagged::Stop => {
            // Already at zero: nothing to stop (a record left by a stop that went through).
            if g.capacity.is_zero() {
                return Some((v, None));
            }
            if let Err(e) = within_restore_ceiling(cfg, g.capacity) {
                v.not_remediated = Some(e.to_string());
                return Some((v, None));
            }
            let save = match (&cfg.state_key, g.arn.is_empty()) {
                (Some(k), false) => GroupChange::SaveCapacity {
                    capacity: g.capacity,
                    tag: crate::seal::seal_capacity(k, &g.arn, g.capacity),
                },
                _ => {
                    v.not_remediated = Some(
                        "offhours cannot seal the group's size (no state key, or no ARN), so it does not stop it"
                            .into(),
                    );
                    return Some((v, None));
                }
            };
            plan.step(
                save,
                "no schedule tag: record the size before on_untagged stops it, so it can be restored",
            );
            // The record goes before the scale-down: were it written after and failed, the
            // next pass would see an untagged group at zero with a saved size, restore it,
            // and the pass after would stop it again.
            plan.step(
                GroupChange::SetTags {
                    tags: BTreeMap::from([(
                        TAG_REMEDIATED.to_string(),
                        format!("stopped at {}: no schedule tag", stamp(now)),
                    )]),
                },
                "record the remediation so it can be reversed",
            );
            plan.step(
                GroupChange::SetCapacity {
                    capacity: Capacity::ZERO,
                },
                "no schedule tag: on_untagged stops it",
            );
        }
    }
    super::plan::within_tag_budget(&mut plan, g);
    if let Some(e) = plan.error.take() {
        v.not_remediated = Some(e);
        return Some((v, None));
    }
    Some((v, Some(plan)))
}

/// A group above `max_restore_capacity` is not stopped by remediation: offhours could not
/// restore it by itself.
fn within_restore_ceiling(cfg: &Config, c: Capacity) -> Result<(), AboveCeiling> {
    if c.desired > cfg.max_restore_capacity {
        return Err(AboveCeiling {
            desired: c.desired,
            max: cfg.max_restore_capacity,
        });
    }
    Ok(())
}

/// A group too large for remediation to stop: offhours could not restore it by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "its desired capacity {desired} is above max_restore_capacity ({max}), which offhours would not restore by itself"
)]
pub struct AboveCeiling {
    /// Its desired capacity.
    pub desired: i32,
    /// `max_restore_capacity`.
    pub max: i32,
}
