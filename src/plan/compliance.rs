//! The detective scan (pure): resources without a valid schedule tag, and what
//! `policy.on_untagged` does about them.
//!
//! SCPs do not apply to the management account nor to service-linked roles, so untagged
//! resources slip past the preventive policy; each pass finds them. Invalid values are
//! reported (their own planner tags them with `offhours:error`); only resources with no
//! schedule tag at all are remediated, and every remediation is recorded in
//! `offhours:remediated` on the resource so that it can be reversed.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::groups::{GroupChange, GroupPlan, Step};
use super::instances::{InstancePlan, PowerOp};
use crate::capacity::Capacity;
use crate::config::{Config, OnUntagged};
use crate::model::{Group, Instance, InstanceState, TAG_ASG_MEMBER};

/// The tag recording a remediation: `tagged office-hours at <RFC 3339>` or `stopped at <RFC 3339>`.
pub const TAG_REMEDIATED: &str = "offhours:remediated";

/// Tag keys (exact, or ending in `/` for a prefix) by which AWS services and other
/// controllers mark what they manage, and who manages it. offhours never remediates such a
/// resource: stopping it would fight its manager (which replaces or restarts it) or break
/// the service. Sources: EC2 Auto Scaling User Guide ("aws:autoscaling:groupName" on a
/// group's instances); Amazon EKS User Guide, managed node groups ("eks:cluster-name",
/// "eks:nodegroup-name" on the group and its instances); Karpenter's documentation (its
/// nodes carry "karpenter.sh/nodepool", "karpenter.k8s.aws/ec2nodeclass"); Kubernetes
/// cloud-provider-aws ("kubernetes.io/cluster/<name>" on cluster nodes); cluster-autoscaler's
/// AWS docs ("k8s.io/cluster-autoscaler/enabled" on the groups it scales); Amazon ECS
/// Developer Guide, capacity providers ("AmazonECSManaged" on groups with managed
/// scaling); AWS Elastic Beanstalk Developer Guide ("elasticbeanstalk:environment-name",
/// "elasticbeanstalk:environment-id"); Amazon EMR Management Guide
/// ("aws:elasticmapreduce:job-flow-id"); EC2 User Guide, EC2 Fleet and Spot Fleet
/// ("aws:ec2:fleet-id", "aws:ec2spot:fleet-request-id"). AWS Batch launches its instances
/// through an Auto Scaling group or a Spot Fleet, so they are caught by those tags.
pub const MANAGED_BY: &[(&str, &str)] = &[
    ("aws:autoscaling:groupName", "its Auto Scaling group"),
    ("eks:nodegroup-name", "an EKS managed node group"),
    ("eks:cluster-name", "an EKS cluster"),
    ("karpenter.sh/nodepool", "Karpenter"),
    ("karpenter.sh/provisioner-name", "Karpenter"),
    ("karpenter.k8s.aws/ec2nodeclass", "Karpenter"),
    ("kubernetes.io/cluster/", "a Kubernetes cluster"),
    ("k8s.io/cluster-autoscaler/enabled", "the Kubernetes cluster autoscaler"),
    ("AmazonECSManaged", "an ECS capacity provider"),
    ("elasticbeanstalk:environment-name", "Elastic Beanstalk"),
    ("elasticbeanstalk:environment-id", "Elastic Beanstalk"),
    ("aws:elasticmapreduce:job-flow-id", "Amazon EMR"),
    ("aws:ec2:fleet-id", "an EC2 Fleet"),
    ("aws:ec2spot:fleet-request-id", "a Spot Fleet"),
];

/// Who manages a resource, by its tags, if an AWS service or another controller does.
#[must_use]
pub fn managed_by(tags: &BTreeMap<String, String>) -> Option<(&'static str, &str)> {
    MANAGED_BY.iter().find_map(|(key, who)| {
        let found = if key.ends_with('/') {
            tags.keys().find(|k| k.starts_with(key))
        } else {
            tags.get_key_value(*key).map(|(k, _)| k)
        };
        found.map(|k| (*who, k.as_str()))
    })
}

/// A resource without a valid schedule tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// `auto-scaling-group` or `instance`.
    pub resource_type: &'static str,
    /// Group name or instance id.
    pub resource_id: String,
    /// The tag value, if there is one.
    pub tag_value: Option<String>,
    /// `untagged` or `invalid-value`.
    pub problem: &'static str,
    /// Why `on_untagged` leaves it alone, when it could otherwise act: managed by a
    /// service or controller, exempt by tag, in the management account, outside
    /// `remediate_in`, or in its grace period.
    pub not_remediated: Option<String>,
}

/// Whether a group was stopped by remediation (and must stay so until it is tagged).
#[must_use]
pub fn stopped_by_remediation(tags: &BTreeMap<String, String>) -> bool {
    tags.get(TAG_REMEDIATED).is_some_and(|v| v.starts_with("stopped"))
}

/// The violation of a resource whose schedule tag is `value`, if any.
fn violation(cfg: &Config, resource_type: &'static str, id: &str, value: Option<&str>) -> Option<Violation> {
    let problem = match value.map(str::trim) {
        None => "untagged",
        Some(v) if cfg.resolve_tag(v).is_ok() => return None,
        Some(_) => "invalid-value",
    };
    Some(Violation {
        resource_type,
        resource_id: id.to_string(),
        tag_value: value.map(String::from),
        problem,
        not_remediated: None,
    })
}

/// Why a resource must not be remediated in this scope, whatever `on_untagged` says.
fn hands_off(cfg: &Config, tags: &BTreeMap<String, String>, scope_block: Option<&str>) -> Option<String> {
    if let Some((who, key)) = managed_by(tags) {
        return Some(format!("managed by {who} (tag {key}); offhours never remediates it"));
    }
    if let Some(v) = tags.get(&cfg.policy.exempt_tag_key) {
        return Some(format!(
            "exempt by tag {} = `{}`",
            cfg.policy.exempt_tag_key,
            crate::model::tag_safe(v)
        ));
    }
    scope_block.map(String::from)
}

fn stamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

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
    let mut v = violation(cfg, crate::report::GROUP, &g.name, g.tag(&cfg.tag_key))?;
    if v.problem != "untagged" || cfg.policy.on_untagged == OnUntagged::Report {
        return Some((v, None));
    }
    if let Some(why) = hands_off(cfg, &g.tags, scope_block) {
        v.not_remediated = Some(why);
        return Some((v, None));
    }
    if g.created
        .is_some_and(|c| super::in_grace(c, now, cfg.policy.untagged_grace))
    {
        v.not_remediated = Some(format!(
            "created less than {} min ago (untagged_grace_minutes)",
            cfg.policy.untagged_grace.num_minutes()
        ));
        return Some((v, None));
    }
    let mut plan = GroupPlan {
        group: g.name.clone(),
        ..Default::default()
    };
    match &cfg.policy.on_untagged {
        OnUntagged::Report => return Some((v, None)),
        OnUntagged::Tag(s) => plan.steps.push(Step {
            change: GroupChange::SetTags {
                tags: BTreeMap::from([
                    (cfg.tag_key.clone(), s.clone()),
                    (TAG_REMEDIATED.to_string(), format!("tagged {s} at {}", stamp(now))),
                ]),
            },
            reason: format!("no schedule tag: on_untagged tags it `{s}`"),
        }),
        OnUntagged::Stop => {
            // Already at zero: nothing to stop (a record left by a stop that went through).
            if g.capacity.is_zero() {
                return Some((v, None));
            }
            if let Err(e) = within_restore_ceiling(cfg, g.capacity) {
                v.not_remediated = Some(e);
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
            plan.steps.push(Step {
                change: save,
                reason: "no schedule tag: record the size before on_untagged stops it, so it can be restored".into(),
            });
            // The record goes before the scale-down: were it written after and failed, the
            // next pass would see an untagged group at zero with a saved size, restore it,
            // and the pass after would stop it again.
            plan.steps.push(Step {
                change: GroupChange::SetTags {
                    tags: BTreeMap::from([(
                        TAG_REMEDIATED.to_string(),
                        format!("stopped at {}: no schedule tag", stamp(now)),
                    )]),
                },
                reason: "record the remediation so it can be reversed".into(),
            });
            plan.steps.push(Step {
                change: GroupChange::SetCapacity {
                    capacity: Capacity::ZERO,
                },
                reason: "no schedule tag: on_untagged stops it".into(),
            });
        }
    }
    super::groups::within_tag_budget(&mut plan, g);
    if let Some(e) = plan.error.take() {
        v.not_remediated = Some(e);
        return Some((v, None));
    }
    Some((v, Some(plan)))
}

/// A group above `max_restore_capacity` is not stopped by remediation: offhours could not
/// restore it by itself.
fn within_restore_ceiling(cfg: &Config, c: Capacity) -> Result<(), String> {
    if c.desired > cfg.max_restore_capacity {
        return Err(format!(
            "its desired capacity {} is above max_restore_capacity ({}), which offhours would not restore by itself",
            c.desired, cfg.max_restore_capacity
        ));
    }
    Ok(())
}

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
    let mut v = violation(cfg, crate::report::INSTANCE, &i.id, i.tag(&cfg.tag_key))?;
    if v.problem != "untagged" || cfg.policy.on_untagged == OnUntagged::Report {
        return Some((v, None));
    }
    if let Some(why) = hands_off(cfg, &i.tags, scope_block) {
        v.not_remediated = Some(why);
        return Some((v, None));
    }
    if i.launched
        .is_some_and(|l| super::in_grace(l, now, cfg.policy.untagged_grace))
    {
        v.not_remediated = Some(format!(
            "launched less than {} min ago (untagged_grace_minutes)",
            cfg.policy.untagged_grace.num_minutes()
        ));
        return Some((v, None));
    }
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
    super::instances::within_tag_budget(&mut plan, i);
    if let Some(e) = plan.error.take() {
        v.not_remediated = Some(e);
        return Some((v, None));
    }
    Some((v, Some(plan)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Market;
    use std::path::Path;

    fn cfg(on_untagged: &str) -> Config {
        let text = format!(
            "schedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\npolicy:\n  on_untagged: '{on_untagged}'\n"
        );
        Config::parse(&text, Path::new("t.yaml"))
            .unwrap()
            .with_state_key(crate::seal::StateKey::new(b"unit-test-state-key", "test").unwrap())
    }

    fn now() -> DateTime<Utc> {
        "2026-11-25T12:00:00Z".parse().unwrap()
    }

    fn instance(tags: &[(&str, &str)]) -> Instance {
        Instance {
            id: "i-1".into(),
            state: InstanceState::Running,
            launched: Some("2026-11-20T00:00:00Z".parse().unwrap()),
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            market: Market::OnDemand,
            instance_store_root: false,
            hibernation: false,
            instance_type: None,
            state_reason: None,
        }
    }

    #[test]
    fn compliant_resources_and_group_members_are_not_violations() {
        let c = cfg("report");
        assert!(scan_instance(&c, &instance(&[("Schedule", "office-hours")]), now(), None).is_none());
        assert!(scan_instance(&c, &instance(&[("Schedule", "always-on")]), now(), None).is_none());
        assert!(scan_instance(&c, &instance(&[("aws:autoscaling:groupName", "web")]), now(), None).is_none());
    }

    #[test]
    fn report_mode_only_reports_and_invalid_values_are_never_remediated() {
        let (v, plan) = scan_instance(&cfg("report"), &instance(&[]), now(), None).unwrap();
        assert_eq!(v.problem, "untagged");
        assert!(plan.is_none());
        let (v, plan) = scan_instance(&cfg("stop"), &instance(&[("Schedule", "nope")]), now(), None).unwrap();
        assert_eq!((v.problem, v.tag_value.as_deref()), ("invalid-value", Some("nope")));
        assert!(plan.is_none());
    }

    #[test]
    fn tag_mode_applies_the_default_schedule_and_records_it() {
        let (_, plan) = scan_instance(&cfg("tag:office-hours"), &instance(&[]), now(), None).unwrap();
        let plan = plan.unwrap();
        assert_eq!(plan.set_tags["Schedule"], "office-hours");
        assert_eq!(
            plan.set_tags[TAG_REMEDIATED],
            "tagged office-hours at 2026-11-25T12:00:00Z"
        );
        let g = Group {
            name: "web".into(),
            arn: "arn:aws:autoscaling:us-east-1:111122223333:autoScalingGroup:u:autoScalingGroupName/web".into(),
            capacity: Capacity {
                min: 1,
                max: 2,
                desired: 1,
            },
            ..Default::default()
        };
        let (_, gp) = scan_group(&cfg("tag:office-hours"), &g, now(), None).unwrap();
        assert_eq!(gp.unwrap().steps[0].change.kind(), "set-tags");
    }

    #[test]
    fn stop_mode_waits_for_the_grace_period_and_saves_a_groups_size_first() {
        let c = cfg("stop");
        let mut young = instance(&[]);
        young.launched = Some(now() - chrono::Duration::minutes(5));
        assert!(scan_instance(&c, &young, now(), None).unwrap().1.is_none());
        let plan = scan_instance(&c, &instance(&[]), now(), None).unwrap().1.unwrap();
        assert_eq!(plan.op.map(|o| o.0), Some(PowerOp::Stop));
        assert!(plan.set_tags[TAG_REMEDIATED].starts_with("stopped at"));

        let g = Group {
            name: "web".into(),
            arn: "arn:aws:autoscaling:us-east-1:111122223333:autoScalingGroup:u:autoScalingGroupName/web".into(),
            capacity: Capacity {
                min: 1,
                max: 2,
                desired: 1,
            },
            ..Default::default()
        };
        let gp = scan_group(&c, &g, now(), None).unwrap().1.unwrap();
        let kinds: Vec<_> = gp.steps.iter().map(|s| s.change.kind()).collect();
        assert_eq!(
            kinds,
            vec!["save-capacity", "set-tags", "set-capacity"],
            "the record before the scale-down"
        );
        let mut stopped = g.clone();
        stopped.tags.insert(
            TAG_REMEDIATED.into(),
            "stopped at 2026-11-25T12:00:00Z: no schedule tag".into(),
        );
        stopped.capacity = Capacity::ZERO;
        assert!(
            scan_group(&c, &stopped, now(), None).unwrap().1.is_none(),
            "already stopped"
        );
        // A record whose scale-down did not go through (or a forged one) is no reason to
        // leave a running untagged group alone.
        let mut recorded = g.clone();
        recorded.tags.insert(
            TAG_REMEDIATED.into(),
            "stopped at 2026-11-25T12:00:00Z: no schedule tag".into(),
        );
        assert!(scan_group(&c, &recorded, now(), None).unwrap().1.is_some());
    }

    #[test]
    fn resources_managed_by_services_or_controllers_exempt_ones_and_blocked_scopes_are_never_remediated() {
        let c = cfg("stop");
        for (k, v) in [
            ("eks:nodegroup-name", "ng-1"),
            ("karpenter.sh/nodepool", "default"),
            ("kubernetes.io/cluster/dev", "owned"),
            ("elasticbeanstalk:environment-name", "web"),
            ("aws:elasticmapreduce:job-flow-id", "j-1"),
            ("aws:ec2:fleet-id", "fleet-1"),
            ("aws:ec2spot:fleet-request-id", "sfr-1"),
            ("offhours-exempt", "load test until Friday"),
        ] {
            let (v, plan) = scan_instance(&c, &instance(&[(k, v)]), now(), None).unwrap();
            assert!(plan.is_none(), "{k}");
            assert!(v.not_remediated.as_deref().unwrap().contains(k), "{k}: {v:?}");
        }
        let (v, plan) = scan_instance(&c, &instance(&[]), now(), Some("outside policy.remediate_in")).unwrap();
        assert!(plan.is_none());
        assert_eq!(v.not_remediated.as_deref(), Some("outside policy.remediate_in"));
        let ecs = Group {
            name: "ecs".into(),
            capacity: Capacity {
                min: 1,
                max: 2,
                desired: 1,
            },
            tags: [("AmazonECSManaged".to_string(), String::new())].into(),
            ..Default::default()
        };
        assert!(scan_group(&c, &ecs, now(), None).unwrap().1.is_none());
    }

    #[test]
    fn tag_mode_waits_for_the_grace_period_too() {
        let mut young = instance(&[]);
        young.launched = Some(now() - chrono::Duration::minutes(5));
        let (v, plan) = scan_instance(&cfg("tag:office-hours"), &young, now(), None).unwrap();
        assert!(plan.is_none());
        assert!(v.not_remediated.unwrap().contains("untagged_grace_minutes"));
    }
}
