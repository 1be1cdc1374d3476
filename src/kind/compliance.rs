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

use super::{Problem, ResourceType, Violation};
use crate::config::Config;

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

/// Whether a group was stopped by remediation (and must stay so until it is tagged).
#[must_use]
pub fn stopped_by_remediation(tags: &BTreeMap<String, String>) -> bool {
    tags.get(TAG_REMEDIATED).is_some_and(|v| v.starts_with("stopped"))
}

/// The violation of a resource whose schedule tag is `value`, if any.
fn violation(cfg: &Config, resource_type: ResourceType, id: &str, value: Option<&str>) -> Option<Violation> {
    let problem = match value.map(str::trim) {
        None => Problem::Untagged,
        Some(v) if cfg.resolve_tag(v).is_ok() => return None,
        Some(_) => Problem::InvalidValue,
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

/// A resource's violation, if any, screened for remediation: `Ok` when `on_untagged` may
/// act on it, `Err` when it is only reported (a bad value rather than no tag, `report` mode,
/// or something holding remediation back, said in `not_remediated`). `born` is when the
/// resource was created or launched (`verb` says which), for `untagged_grace_minutes`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn screen(
    cfg: &Config,
    resource_type: ResourceType,
    id: &str,
    tags: &BTreeMap<String, String>,
    (born, verb): (Option<DateTime<Utc>>, &str),
    now: DateTime<Utc>,
    scope_block: Option<&str>,
) -> Option<Result<Violation, Violation>> {
    let mut v = violation(cfg, resource_type, id, tags.get(&cfg.tag_key).map(String::as_str))?;
    if v.problem != Problem::Untagged || cfg.policy.on_untagged == crate::config::OnUntagged::Report {
        return Some(Err(v));
    }
    if let Some(why) = hands_off(cfg, tags, scope_block) {
        v.not_remediated = Some(why);
        return Some(Err(v));
    }
    if born.is_some_and(|b| super::in_grace(b, now, cfg.policy.untagged_grace)) {
        v.not_remediated = Some(format!(
            "{verb} less than {} min ago (untagged_grace_minutes)",
            cfg.policy.untagged_grace.num_minutes()
        ));
        return Some(Err(v));
    }
    Some(Ok(v))
}

pub(crate) fn stamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::Capacity;
    use crate::kind::group::remedy::scan_group;
    use crate::kind::instance::PowerOp;
    use crate::kind::instance::remedy::scan_instance;
    use crate::model::{Group, Instance};

    fn cfg(on_untagged: &str) -> Config {
        let text = format!(
            "schedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\npolicy:\n  on_untagged: '{on_untagged}'\n"
        );
        crate::fixtures::config_from(&text)
    }

    fn now() -> DateTime<Utc> {
        "2026-11-25T12:00:00Z".parse().unwrap()
    }

    fn instance(tags: &[(&str, &str)]) -> Instance {
        let mut i = Instance::test("i-1");
        i.launched = Some(crate::fixtures::at("2026-11-20T00:00:00Z"));
        tags.iter().fold(i, |i, (k, v)| i.tagged(k, v))
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
        assert_eq!(
            (v.problem, v.tag_value.as_deref()),
            (Problem::InvalidValue, Some("nope"))
        );
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
