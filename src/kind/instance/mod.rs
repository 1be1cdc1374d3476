//! Plain EC2 instances (not members of a group): stopped and started by offhours at their
//! schedule's transitions, each transition recorded on the instance.

pub mod apply;
pub mod plan;
pub mod remedy;

use std::collections::BTreeMap;
use std::future::Future;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use plan::{InstancePlan, PowerOp, plan_instance};
pub use remedy::scan_instance;

use super::{Adapter, Applied, Kind, Plan, ResourceType, Violation};
use crate::config::Config;
use crate::failure::CloudError;
use crate::model::{Instance, InstanceState, TAG_ASG_MEMBER};

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

impl InstanceChange {
    /// The change's name, as in the JSON report.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            InstanceChange::StopInstance => "stop-instance",
            InstanceChange::HibernateInstance => "hibernate-instance",
            InstanceChange::StartInstance => "start-instance",
            InstanceChange::SetTags { .. } => "set-tags",
            InstanceChange::RemoveTags { .. } => "remove-tags",
        }
    }

    /// The power operation, if the change is one.
    #[must_use]
    pub fn power(&self) -> Option<PowerOp> {
        match self {
            InstanceChange::StopInstance => Some(PowerOp::Stop),
            InstanceChange::HibernateInstance => Some(PowerOp::Hibernate),
            InstanceChange::StartInstance => Some(PowerOp::Start),
            _ => None,
        }
    }
}

impl crate::kind::power::PowerChange for InstanceChange {
    fn set_tags(tags: BTreeMap<String, String>) -> Self {
        InstanceChange::SetTags { tags }
    }

    fn remove_tags(keys: Vec<String>) -> Self {
        InstanceChange::RemoveTags { keys }
    }
}

impl From<PowerOp> for InstanceChange {
    fn from(op: PowerOp) -> Self {
        match op {
            PowerOp::Stop => InstanceChange::StopInstance,
            PowerOp::Hibernate => InstanceChange::HibernateInstance,
            PowerOp::Start => InstanceChange::StartInstance,
        }
    }
}

/// EC2 instances in one scope.
pub trait InstanceApi: Send + Sync {
    /// Every instance that is pending, running, stopping or stopped and carries one of
    /// `tag_keys` (all of them if `tag_keys` is empty). Either complete or an error.
    fn list_instances(&self, tag_keys: &[String]) -> impl Future<Output = Result<Vec<Instance>, CloudError>> + Send;
    /// Stops (or hibernates) instances in one call.
    fn stop_instances(&self, ids: &[String], hibernate: bool) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Starts instances in one call.
    fn start_instances(&self, ids: &[String]) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Sets the same tags on instances in one call.
    fn tag_instances(
        &self,
        ids: &[String],
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Removes tags from instances in one call.
    fn untag_instances(&self, ids: &[String], keys: &[String]) -> impl Future<Output = Result<(), CloudError>> + Send;
}

/// The kind: plain EC2 instances.
#[derive(Debug, Clone, Copy, Default)]
pub struct Instances;

impl Kind for Instances {
    const TYPE: ResourceType = ResourceType::Instance;
    type Observed = Instance;
    type Change = InstanceChange;

    fn id(i: &Instance) -> &str {
        &i.id
    }

    fn tags(i: &Instance) -> &BTreeMap<String, String> {
        &i.tags
    }

    /// A group's member is its group's; a terminated (or shutting-down) one is nobody's.
    fn left_to_others(i: &Instance) -> bool {
        i.tags.contains_key(TAG_ASG_MEMBER) || i.state == InstanceState::Other
    }

    fn plan(cfg: &Config, i: &Instance, now: DateTime<Utc>) -> Option<Plan<InstanceChange>> {
        plan_instance(cfg, i, now).map(InstancePlan::into_plan)
    }

    fn scan(
        cfg: &Config,
        i: &Instance,
        now: DateTime<Utc>,
        block: Option<&str>,
    ) -> Option<(Violation, Option<Plan<InstanceChange>>)> {
        scan_instance(cfg, i, now, block).map(|(v, p)| (v, p.map(InstancePlan::into_plan)))
    }

    fn managed_state(cfg: &Config, i: &Instance) -> Option<&'static str> {
        i.tag(&cfg.tag_key)
            .is_some_and(|v| cfg.resolve_tag(v).is_ok())
            .then(|| i.state.as_str())
    }

    fn change_name(c: &InstanceChange) -> &'static str {
        c.kind()
    }

    fn observe(_: &Config, i: &Instance) -> super::Observation {
        super::Observation {
            state: i.state.as_str(),
            priced_type: i.instance_type.clone(),
            units: 1,
            since: i.launched,
        }
    }

    fn set_tags(tags: BTreeMap<String, String>) -> InstanceChange {
        InstanceChange::SetTags { tags }
    }

    fn remove_tags(keys: Vec<String>) -> InstanceChange {
        InstanceChange::RemoveTags { keys }
    }
}

impl<A: InstanceApi> Adapter<Instances> for A {
    fn list(&self) -> impl Future<Output = Result<Vec<Instance>, CloudError>> + Send {
        // Every instance, tagged or not: the detective scan needs the untagged ones too.
        self.list_instances(&[])
    }

    fn apply(&self, cfg: &Config, plans: &[Plan<InstanceChange>]) -> impl Future<Output = Applied> + Send {
        apply::apply(self, cfg.instances.batch_size, plans)
    }
}
