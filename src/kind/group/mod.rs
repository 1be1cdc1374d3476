//! Auto Scaling groups: scheduled by native scheduled actions that scale them down and back
//! to their saved size; offhours registers the actions and records the size.

pub mod apply;
pub mod plan;
pub mod remedy;

use std::collections::BTreeMap;
use std::future::Future;

use chrono::{DateTime, Utc};

pub use plan::{GroupChange, GroupPlan, Step, is_scaled_down, plan_group};
pub use remedy::scan_group;

use super::{Adapter, Applied, Kind, Plan, ResourceType, Violation};
use crate::capacity::Capacity;
use crate::compile::ScheduledAction;
use crate::config::{Config, Resolved};
use crate::failure::{ActionFailure, CloudError};
use crate::model::Group;

/// Most scheduled actions one batch call carries: "BatchPutScheduledUpdateGroupAction:
/// ScheduledUpdateGroupActions: Array Members: Maximum number of 50 items", and the same for
/// BatchDeleteScheduledAction's ScheduledActionNames (Amazon EC2 Auto Scaling API Reference).
pub const ACTIONS_PER_CALL: usize = 50;

/// Auto Scaling in one scope.
pub trait GroupApi: Send + Sync {
    /// Every group in the scope, with its tags and scheduled actions. Either complete or an error.
    fn list_groups(&self) -> impl Future<Output = Result<Vec<Group>, CloudError>> + Send;
    /// Creates or replaces scheduled actions (batched by the implementation); returns the ones that failed.
    fn put_scheduled_actions(
        &self,
        group: &str,
        actions: &[ScheduledAction],
    ) -> impl Future<Output = Result<Vec<ActionFailure>, CloudError>> + Send;
    /// Deletes scheduled actions by name; returns the ones that failed. Already gone is success.
    fn delete_scheduled_actions(
        &self,
        group: &str,
        names: &[String],
    ) -> impl Future<Output = Result<Vec<ActionFailure>, CloudError>> + Send;
    /// Sets min, max and desired capacity.
    fn set_capacity(&self, group: &str, capacity: Capacity) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Creates or updates tags on several groups in one call. A failure may have written
    /// some of them.
    fn tag_groups(
        &self,
        tags: &[(String, BTreeMap<String, String>)],
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Removes tags from the group.
    fn remove_tags(&self, group: &str, keys: &[String]) -> impl Future<Output = Result<(), CloudError>> + Send;
}

/// The kind: Auto Scaling groups.
#[derive(Debug, Clone, Copy, Default)]
pub struct Groups;

impl Kind for Groups {
    const TYPE: ResourceType = ResourceType::AutoScalingGroup;
    type Observed = Group;
    type Change = GroupChange;

    fn id(g: &Group) -> &str {
        &g.name
    }

    fn tags(g: &Group) -> &BTreeMap<String, String> {
        &g.tags
    }

    fn left_to_others(_: &Group) -> bool {
        false
    }

    fn plan(cfg: &Config, g: &Group, now: DateTime<Utc>) -> Option<Plan<GroupChange>> {
        Some(plan_group(cfg, g, now)).filter(|p| !p.is_empty())
    }

    fn scan(
        cfg: &Config,
        g: &Group,
        now: DateTime<Utc>,
        block: Option<&str>,
    ) -> Option<(Violation, Option<Plan<GroupChange>>)> {
        scan_group(cfg, g, now, block)
    }

    fn managed_state(cfg: &Config, g: &Group) -> Option<&'static str> {
        let resolved = g.tag(&cfg.tag_key).and_then(|v| cfg.resolve_tag(v).ok())?;
        let schedule = match &resolved {
            Resolved::Named(s) => Some(*s),
            Resolved::Inline(s) => Some(s.as_ref()),
            Resolved::AlwaysOn => None,
        };
        Some(if is_scaled_down(g, schedule) {
            "stopped"
        } else {
            "running"
        })
    }

    fn change_name(c: &GroupChange) -> &'static str {
        c.kind()
    }

    fn observe(cfg: &Config, g: &Group) -> super::Observation {
        let units = if g.capacity.desired > 0 {
            g.capacity.desired
        } else {
            match crate::seal::read_capacity(cfg.state_key.as_ref(), &g.arn, g.tag(crate::model::TAG_SAVED)) {
                crate::seal::Saved::Sealed(c) | crate::seal::Saved::Unsealed(c) => c.desired,
                _ => 0,
            }
        };
        super::Observation {
            state: if g.capacity.desired > 0 { "running" } else { "stopped" },
            priced_type: g.instance_type.clone(),
            units: u32::try_from(units).unwrap_or(0),
            since: g.created,
        }
    }

    fn set_tags(tags: BTreeMap<String, String>) -> GroupChange {
        GroupChange::SetTags { tags }
    }

    fn remove_tags(keys: Vec<String>) -> GroupChange {
        GroupChange::RemoveTags { keys }
    }
}

impl<A: GroupApi> Adapter<Groups> for A {
    fn list(&self) -> impl Future<Output = Result<Vec<Group>, CloudError>> + Send {
        self.list_groups()
    }

    fn apply(&self, _cfg: &Config, plans: &[GroupPlan]) -> impl Future<Output = Applied> + Send {
        apply::apply(self, plans)
    }
}
