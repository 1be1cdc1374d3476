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
    })
}

fn stamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Finds a group's violation and, for an untagged one, the remediation.
#[must_use]
pub fn scan_group(cfg: &Config, g: &Group, now: DateTime<Utc>) -> Option<(Violation, Option<GroupPlan>)> {
    let v = violation(cfg, crate::report::GROUP, &g.name, g.tag(&cfg.tag_key))?;
    if v.problem != "untagged" {
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
            let young = g
                .created
                .is_some_and(|c| super::in_grace(c, now, cfg.policy.untagged_grace));
            if g.capacity.is_zero() || young || stopped_by_remediation(&g.tags) {
                return Some((v, None));
            }
            plan.steps.push(Step {
                change: GroupChange::SaveCapacity { capacity: g.capacity },
                reason: "no schedule tag: record the size before on_untagged stops it, so it can be restored".into(),
            });
            plan.steps.push(Step {
                change: GroupChange::SetCapacity {
                    capacity: Capacity::ZERO,
                },
                reason: "no schedule tag: on_untagged stops it".into(),
            });
            plan.steps.push(Step {
                change: GroupChange::SetTags {
                    tags: BTreeMap::from([(
                        TAG_REMEDIATED.to_string(),
                        format!("stopped at {}: no schedule tag", stamp(now)),
                    )]),
                },
                reason: "record the remediation so it can be reversed".into(),
            });
        }
    }
    Some((v, Some(plan)))
}

/// Finds an instance's violation and, for an untagged one, the remediation.
#[must_use]
pub fn scan_instance(cfg: &Config, i: &Instance, now: DateTime<Utc>) -> Option<(Violation, Option<InstancePlan>)> {
    if i.tags.contains_key(TAG_ASG_MEMBER) || i.state == InstanceState::Other {
        return None;
    }
    let v = violation(cfg, crate::report::INSTANCE, &i.id, i.tag(&cfg.tag_key))?;
    if v.problem != "untagged" {
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
            let young = i
                .launched
                .is_some_and(|l| super::in_grace(l, now, cfg.policy.untagged_grace));
            if i.state != InstanceState::Running || young {
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
        Config::parse(&text, Path::new("t.yaml")).unwrap()
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
        assert!(scan_instance(&c, &instance(&[("Schedule", "office-hours")]), now()).is_none());
        assert!(scan_instance(&c, &instance(&[("Schedule", "always-on")]), now()).is_none());
        assert!(scan_instance(&c, &instance(&[("aws:autoscaling:groupName", "web")]), now()).is_none());
    }

    #[test]
    fn report_mode_only_reports_and_invalid_values_are_never_remediated() {
        let (v, plan) = scan_instance(&cfg("report"), &instance(&[]), now()).unwrap();
        assert_eq!(v.problem, "untagged");
        assert!(plan.is_none());
        let (v, plan) = scan_instance(&cfg("stop"), &instance(&[("Schedule", "nope")]), now()).unwrap();
        assert_eq!((v.problem, v.tag_value.as_deref()), ("invalid-value", Some("nope")));
        assert!(plan.is_none());
    }

    #[test]
    fn tag_mode_applies_the_default_schedule_and_records_it() {
        let (_, plan) = scan_instance(&cfg("tag:office-hours"), &instance(&[]), now()).unwrap();
        let plan = plan.unwrap();
        assert_eq!(plan.set_tags["Schedule"], "office-hours");
        assert_eq!(
            plan.set_tags[TAG_REMEDIATED],
            "tagged office-hours at 2026-11-25T12:00:00Z"
        );
        let g = Group {
            name: "web".into(),
            capacity: Capacity {
                min: 1,
                max: 2,
                desired: 1,
            },
            ..Default::default()
        };
        let (_, gp) = scan_group(&cfg("tag:office-hours"), &g, now()).unwrap();
        assert_eq!(gp.unwrap().steps[0].change.kind(), "set-tags");
    }

    #[test]
    fn stop_mode_waits_for_the_grace_period_and_saves_a_groups_size_first() {
        let c = cfg("stop");
        let mut young = instance(&[]);
        young.launched = Some(now() - chrono::Duration::minutes(5));
        assert!(scan_instance(&c, &young, now()).unwrap().1.is_none());
        let plan = scan_instance(&c, &instance(&[]), now()).unwrap().1.unwrap();
        assert_eq!(plan.op.map(|o| o.0), Some(PowerOp::Stop));
        assert!(plan.set_tags[TAG_REMEDIATED].starts_with("stopped at"));

        let g = Group {
            name: "web".into(),
            capacity: Capacity {
                min: 1,
                max: 2,
                desired: 1,
            },
            ..Default::default()
        };
        let gp = scan_group(&c, &g, now()).unwrap().1.unwrap();
        let kinds: Vec<_> = gp.steps.iter().map(|s| s.change.kind()).collect();
        assert_eq!(kinds, vec!["save-capacity", "set-capacity", "set-tags"]);
        let mut stopped = g.clone();
        stopped.tags.insert(
            TAG_REMEDIATED.into(),
            "stopped at 2026-11-25T12:00:00Z: no schedule tag".into(),
        );
        stopped.capacity = Capacity::ZERO;
        assert!(scan_group(&c, &stopped, now()).unwrap().1.is_none(), "already stopped");
    }
}
