//! Planning one plain EC2 instance: the shared power planner ([`crate::kind::power`]) over
//! what EC2 says of an instance. Instances in an Auto Scaling group are left to their group.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::kind::power::{FailedStart, Powered, Settings, plan_power};
pub use crate::kind::power::{PowerOp, PowerPlan as InstancePlan, record};

use crate::config::Config;
use crate::model::{Instance, Market as Billing};
#[cfg(test)]
use crate::model::{InstanceState, Market, TAG_ASG_MEMBER, TAG_ERROR, TAG_LAST, TAG_OVERRIDE};

impl Powered for Instance {
    fn id(&self) -> &str {
        &self.id
    }

    fn tags(&self) -> &BTreeMap<String, String> {
        &self.tags
    }

    fn state(&self) -> crate::model::InstanceState {
        self.state
    }

    fn launched(&self) -> Option<DateTime<Utc>> {
        self.launched
    }

    fn priced_type(&self) -> Option<String> {
        self.instance_type.clone()
    }

    fn never_stopped(&self) -> Option<String> {
        if self.market == Billing::OneTimeSpot {
            return Some("spot instance with a one-time request: never stopped".into());
        }
        self.instance_store_root
            .then(|| "root device is instance store: never stopped".into())
    }

    fn can_hibernate(&self) -> bool {
        self.hibernation
    }

    /// StartInstances can answer success and the instance then fall back to stopped, with the
    /// state reason "Client.InternalError: Client error on launch", when an EBS volume is
    /// encrypted with a customer managed KMS key the caller may not use (AWS Knowledge Center,
    /// https://repost.aws/knowledge-center/kms-iam-ec2-permission: the caller needs
    /// kms:CreateGrant on the key).
    fn failed_start(&self) -> Option<FailedStart> {
        let r = self.state_reason.as_ref().filter(|r| r.is_failed_start())?;
        let hint = if r.code == "Client.InternalError" {
            "; an EBS volume encrypted with a customer managed KMS key needs kms:CreateGrant for \
             offhours' role in the key policy (deploy/ grants it via EC2 only)"
        } else {
            ""
        };
        Some(FailedStart {
            message: r.message.clone(),
            error: format!(
                "not started: the instance fell back to stopped ({}: {}){hint}; offhours starts it again",
                r.code, r.message
            ),
        })
    }
}

/// The windows `instances:` sets.
fn settings(cfg: &Config) -> Settings {
    Settings {
        catch_up: cfg.instances.catch_up,
        grace: cfg.instances.grace,
    }
}

/// Plans one instance at `now`. Returns `None` for instances offhours has nothing to do with
/// (a group's member is its group's).
#[must_use]
pub fn plan_instance(cfg: &Config, inst: &Instance, now: DateTime<Utc>) -> Option<InstancePlan> {
    if inst.tags.contains_key(crate::model::TAG_ASG_MEMBER) {
        return None;
    }
    plan_power(cfg, inst, now, settings(cfg))
}

#[cfg(test)]
mod tests;
