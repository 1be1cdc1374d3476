//! `offhours override`: a person keeps one resource up (or down) until a time, or ends
//! that, by writing the override tag the daemon reads, in whichever account and region the
//! resource is, through the same role chain as a pass. What it writes is read back through
//! the daemon's own reader ([`crate::kind::tags::read_override`]) first, so it is valid and
//! capped exactly as the daemon will take it; a resource that has not opted in is refused.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::cloud::Cloud;
use crate::config::Config;
use crate::controller::{self, PassOptions};
use crate::kind::database::{DbClusters, DbInstances};
use crate::kind::group::Groups;
use crate::kind::instance::Instances;
use crate::kind::tags::{self, OverrideTag, Resolution};
use crate::kind::{Adapter, ChangeStatus, Kind, Plan, ResourceType, Seen};
use crate::model::{Override, TAG_OVERRIDE};
use crate::schedule::State;

/// The resource a person names: an instance id, a group name, a DB identifier, or an ARN
/// (which also says the account, the region and the kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The id (instance id, group name, DB identifier).
    pub id: String,
    /// The account, from an ARN.
    pub account: Option<String>,
    /// The region, from an ARN.
    pub region: Option<String>,
    /// The kind, from an ARN.
    pub kind: Option<ResourceType>,
}

impl Wanted {
    /// Reads `i-0123...`, `web-asg`, or an ARN of an EC2 instance
    /// (`arn:aws:ec2:REGION:ACCOUNT:instance/ID`), an Auto Scaling group
    /// (`...:autoScalingGroup:UUID:autoScalingGroupName/NAME`) or an RDS DB instance or
    /// cluster (`arn:aws:rds:REGION:ACCOUNT:db:NAME`, `...:cluster:NAME`).
    ///
    /// # Errors
    /// An empty name, or an ARN of none of these.
    pub fn parse(text: &str) -> Result<Wanted, OverrideError> {
        let text = text.trim();
        let bad = || OverrideError::Resource(text.to_string());
        if text.is_empty() {
            return Err(bad());
        }
        if !text.starts_with("arn:") {
            return Ok(Wanted {
                id: text.to_string(),
                account: None,
                region: None,
                kind: None,
            });
        }
        let parts: Vec<&str> = text.splitn(6, ':').collect();
        let [_, _partition, service, region, account, resource] = parts.as_slice() else {
            return Err(bad());
        };
        let (kind, id) = match *service {
            "ec2" => (
                ResourceType::Instance,
                resource.strip_prefix("instance/").ok_or_else(bad)?,
            ),
            "autoscaling" => (
                ResourceType::AutoScalingGroup,
                resource.split_once("autoScalingGroupName/").ok_or_else(bad)?.1,
            ),
            "rds" => match resource.split_once(':') {
                Some(("db", id)) => (ResourceType::DbInstance, id),
                Some(("cluster", id)) => (ResourceType::DbCluster, id),
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        };
        if id.is_empty() {
            return Err(bad());
        }
        Ok(Wanted {
            id: id.to_string(),
            account: Some((*account).to_string()),
            region: Some((*region).to_string()),
            kind: Some(kind),
        })
    }

    fn matches(&self, s: &Seen) -> bool {
        s.id == self.id
            && self.account.as_ref().is_none_or(|a| *a == s.account)
            && self.region.as_ref().is_none_or(|r| *r == s.region)
            && self.kind.is_none_or(|k| k == s.resource_type)
    }
}

/// What to do with the override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Hold `state` until `until`.
    Set {
        /// The state held.
        state: State,
        /// Until when.
        until: DateTime<Utc>,
    },
    /// Remove the override: the schedule applies again.
    Clear,
}

/// Why an override was not written.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    /// Not a resource name offhours can read.
    #[error(
        "`{0}` is not an instance id, a group or DB name, or an ARN of an EC2 instance, an Auto Scaling group or an RDS DB instance or cluster"
    )]
    Resource(String),
    /// Nothing by that name in any account and region offhours works in.
    #[error("no resource `{id}` in the accounts and regions offhours works in{}", failed_note(.failed))]
    NotFound {
        /// The name.
        id: String,
        /// Scopes that could not be listed (it may be there).
        failed: Vec<String>,
    },
    /// Several resources by that name.
    #[error("`{id}` names {} resources ({}); give its ARN", .found.len(), .found.join(", "))]
    Ambiguous {
        /// The name.
        id: String,
        /// `kind account/region` of each.
        found: Vec<String>,
    },
    /// The resource has not opted in (or its tag is invalid).
    #[error("{resource}: {why}; offhours overrides only resources that follow a schedule")]
    NotOptedIn {
        /// `kind id (account/region)`.
        resource: String,
        /// Why.
        why: String,
    },
    /// The time asked for has passed.
    #[error("--until {until} is not in the future (now {now})")]
    Past {
        /// Asked.
        until: DateTime<Utc>,
        /// Now.
        now: DateTime<Utc>,
    },
    /// The write failed.
    #[error("{resource}: writing the tag failed: {error}")]
    Write {
        /// `kind id (account/region)`.
        resource: String,
        /// Why.
        error: String,
    },
}

fn failed_note(failed: &[String]) -> String {
    if failed.is_empty() {
        String::new()
    } else {
        format!(
            " (these could not be listed, so it may be in one of them: {})",
            failed.join(", ")
        )
    }
}

/// What `override` decided for one resource (pure: see [`decide`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The resource.
    pub resource_type: ResourceType,
    /// Its id.
    pub resource_id: String,
    /// Its account.
    pub account: String,
    /// Its region.
    pub region: String,
    /// The schedule it follows.
    pub schedule: String,
    /// The tag value written, or `None` when the override is removed.
    pub value: Option<String>,
    /// Whether anything is to be written (a `--clear` of a resource with no override is not).
    pub write: bool,
    /// What is worth telling (a cap).
    pub note: Option<String>,
}

fn label(s: &Seen) -> String {
    format!("{} {} ({}/{})", s.resource_type, s.id, s.account, s.region)
}

/// Decides the override for resource `seen` at `now`: refused unless it follows a schedule;
/// the value is read back through the daemon's reader, so it is capped at `max_override`
/// exactly as the daemon would cap it.
///
/// # Errors
/// The resource has not opted in, its schedule tag is invalid, or `until` has passed.
pub fn decide(cfg: &Config, seen: &Seen, req: Request, now: DateTime<Utc>) -> Result<Decision, OverrideError> {
    let refuse = |why: String| OverrideError::NotOptedIn {
        resource: label(seen),
        why,
    };
    let value = seen.tag(&cfg.tag_key);
    let schedule = match tags::resolve(cfg, value) {
        Resolution::Scheduled(s) => s.name.clone(),
        Resolution::Unscheduled if value.is_none() => return Err(refuse(format!("it has no `{}` tag", cfg.tag_key))),
        Resolution::Unscheduled => {
            return Err(refuse(format!(
                "`{}` = `{}` keeps it always on",
                cfg.tag_key,
                value.unwrap_or_default()
            )));
        }
        Resolution::Invalid(e) => return Err(refuse(format!("its `{}` tag is invalid ({e})", cfg.tag_key))),
    };
    let mut d = Decision {
        resource_type: seen.resource_type,
        resource_id: seen.id.clone(),
        account: seen.account.clone(),
        region: seen.region.clone(),
        schedule,
        value: None,
        write: false,
        note: None,
    };
    match req {
        Request::Clear => d.write = seen.tags.contains_key(TAG_OVERRIDE),
        Request::Set { state, until } => {
            if until <= now {
                return Err(OverrideError::Past { until, now });
            }
            let asked = Override { state, until }.to_tag();
            let written = BTreeMap::from([(TAG_OVERRIDE.to_string(), asked.clone())]);
            let (value, note) = match tags::read_override(cfg, &written, &d.schedule, now) {
                OverrideTag::Holds {
                    capped: Some(c), note, ..
                } => (c, note),
                OverrideTag::Holds { .. } => (asked, None),
                // `until` is in the future and the value is offhours' own: neither can be.
                other => unreachable!("an override offhours wrote reads back as {other:?}"),
            };
            d.write = seen.tag(TAG_OVERRIDE) != Some(value.as_str());
            d.value = Some(value);
            d.note = note;
        }
    }
    Ok(d)
}

/// Finds the resource across every account and region (a full listing, as a `plan`), decides,
/// and writes or removes the tag through that scope's adapter.
///
/// # Errors
/// See [`OverrideError`].
pub async fn run<C: Cloud>(
    cfg: &Config,
    cloud: &C,
    wanted: &Wanted,
    req: Request,
    now: DateTime<Utc>,
) -> Result<Decision, OverrideError> {
    let seen = controller::pass(cfg, cloud, PassOptions { now, apply: false }).await;
    let found: Vec<&Seen> = seen.inventory.iter().filter(|s| wanted.matches(s)).collect();
    let one = match found.as_slice() {
        [] => {
            return Err(OverrideError::NotFound {
                id: wanted.id.clone(),
                failed: seen
                    .scopes
                    .iter()
                    .filter(|s| s.status != crate::report::ScopeStatus::Ok)
                    .map(|s| format!("{}/{}", s.account, s.region))
                    .collect(),
            });
        }
        [one] => *one,
        many => {
            return Err(OverrideError::Ambiguous {
                id: wanted.id.clone(),
                found: many.iter().map(|s| label(s)).collect(),
            });
        }
    };
    let d = decide(cfg, one, req, now)?;
    if !d.write {
        return Ok(d);
    }
    let fail = |error: String| OverrideError::Write {
        resource: label(one),
        error,
    };
    let scopes = cloud.scopes(cfg).await.map_err(|e| fail(crate::failure::chain(&e)))?;
    let api = scopes
        .into_iter()
        .find(|(s, _)| s.account == one.account && s.region == one.region)
        .ok_or_else(|| fail("its account and region are no longer among offhours' scopes".into()))?
        .1
        .map_err(|e| fail(crate::failure::chain(&e)))?;
    let status = match one.resource_type {
        ResourceType::AutoScalingGroup => write::<Groups, _>(cfg, &api, &d).await,
        ResourceType::Instance => write::<Instances, _>(cfg, &api, &d).await,
        ResourceType::DbInstance => write::<DbInstances, _>(cfg, &api, &d).await,
        ResourceType::DbCluster => write::<DbClusters, _>(cfg, &api, &d).await,
    };
    status.map_err(fail)?;
    Ok(d)
}

/// Writes (or removes) the override through the kind's adapter: one plan of one step.
async fn write<K: Kind, A: Adapter<K>>(cfg: &Config, api: &A, d: &Decision) -> Result<(), String> {
    let mut plan: Plan<K::Change> = Plan::new(d.resource_id.clone(), None);
    match &d.value {
        Some(v) => plan.step(
            K::set_tags(BTreeMap::from([(TAG_OVERRIDE.to_string(), v.clone())])),
            "offhours override",
        ),
        None => plan.step(
            K::remove_tags(vec![TAG_OVERRIDE.to_string()]),
            "offhours override --clear",
        ),
    }
    let applied = api.apply(cfg, std::slice::from_ref(&plan)).await;
    match applied.outcomes.first().and_then(|o| o.first()) {
        Some(o) if o.status == ChangeStatus::Applied => Ok(()),
        Some(o) => Err(o
            .error
            .as_ref()
            .map_or_else(|| format!("{:?}", o.status), |e| crate::failure::chain(e))),
        None => Err("nothing was applied".into()),
    }
}

#[cfg(test)]
mod tests;
