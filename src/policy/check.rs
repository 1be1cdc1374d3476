//! Deciding a request as AWS would for an account (pure): the SCPs attached along
//! account -> OUs -> root, and offhours' tag policy. The I/O that gathers the attached
//! policies lives in `policy_sync`.

use serde::Serialize;
use serde_json::Value;

use super::eval::{self, Decision, Denial, Policy, Request};
use super::event::{AuthRequest, Event};

/// The verdict on one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// `allow` or `deny`.
    pub decision: &'static str,
    /// The policy that denies.
    pub policy: Option<String>,
    /// The statement that denies (Sid or index).
    pub statement: Option<String>,
    /// Why, for people.
    pub reason: String,
    /// The account the call was made in.
    pub account: String,
    /// The event's name.
    pub event: String,
    /// The principal as SCPs see it.
    pub principal_arn: Option<String>,
}

impl Verdict {
    fn allow(e: &Event, reason: impl Into<String>) -> Self {
        Verdict {
            decision: "allow",
            policy: None,
            statement: None,
            reason: reason.into(),
            account: e.account.clone(),
            event: e.name.clone(),
            principal_arn: e.caller.principal_arn.clone(),
        }
    }

    fn deny(e: &Event, policy: Option<String>, statement: Option<String>, reason: String) -> Self {
        Verdict {
            decision: "deny",
            policy,
            statement,
            reason,
            ..Verdict::allow(e, "")
        }
    }
}

/// The SCPs that apply to the account: (target id, [(policy name, policy)]) from the account
/// up to the root.
pub type Levels = Vec<(String, Vec<(String, Policy)>)>;

fn request(r: &AuthRequest) -> Request {
    Request {
        action: r.action.clone(),
        resource: r.resource.clone(),
        context: r.context.clone(),
    }
}

/// Whether a request's resource is one the tag policy enforces (`ec2:instance`,
/// `autoscaling:autoScalingGroup`).
fn enforced(r: &AuthRequest, enforced_for: &[String]) -> bool {
    let kind = if r.resource.starts_with("arn:aws:ec2:") && r.resource.contains(":instance/") {
        "ec2:instance"
    } else if r.resource.starts_with("arn:aws:autoscaling:") {
        "autoscaling:autoScalingGroup"
    } else {
        return false;
    };
    enforced_for.iter().any(|e| {
        e.eq_ignore_ascii_case(kind)
            || e.eq_ignore_ascii_case(&format!("{}:ALL_SUPPORTED", kind.split(':').next().unwrap_or("")))
    })
}

/// Checks the request tags against a tag policy document (`tags.<key>.tag_key/tag_value/enforced_for`).
/// Returns the reason for noncompliance, if any.
pub fn tag_policy_violation(policy: &Value, r: &AuthRequest) -> Option<String> {
    let tags = policy.get("tags")?.as_object()?;
    for (name, rule) in tags {
        let assigned_key = rule
            .pointer("/tag_key/@@assign")
            .and_then(Value::as_str)
            .unwrap_or(name);
        let enforced_for: Vec<String> = rule
            .pointer("/enforced_for/@@assign")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default();
        if !enforced(r, &enforced_for) {
            continue;
        }
        for (k, values) in &r.context {
            let Some(key) = k.strip_prefix("aws:RequestTag/") else {
                continue;
            };
            if !key.eq_ignore_ascii_case(name) {
                continue;
            }
            if key != assigned_key {
                return Some(format!(
                    "tag policy: the key must be written `{assigned_key}`, not `{key}`"
                ));
            }
            if let Some(allowed) = rule.pointer("/tag_value/@@assign").and_then(Value::as_array) {
                for v in values {
                    if !allowed.iter().any(|a| a.as_str() == Some(v.as_str())) {
                        return Some(format!("tag policy: `{v}` is not an allowed value of `{assigned_key}`"));
                    }
                }
            }
        }
    }
    None
}

/// Decides an event. `management` is the organization's management account (SCPs do not
/// apply to it); `levels` are the SCPs attached along its path; `tag_policy` is offhours'
/// tag policy, if it applies to the account.
#[must_use]
pub fn decide(e: &Event, management: Option<&str>, levels: &Levels, tag_policy: Option<&Value>) -> Verdict {
    let scp_exempt = if e.caller.service_linked {
        Some("service-linked roles are not restricted by SCPs")
    } else if e.caller.kind == "AWSService" {
        Some("calls made by AWS services are not restricted by SCPs")
    } else if management == Some(e.account.as_str()) {
        Some("SCPs do not apply to the management account (the detective scan covers it)")
    } else {
        None
    };
    if scp_exempt.is_none() {
        let targets: Vec<(&str, Vec<(&str, &Policy)>)> = levels
            .iter()
            .map(|(t, ps)| (t.as_str(), ps.iter().map(|(n, p)| (n.as_str(), p)).collect()))
            .collect();
        for r in &e.requests {
            if let Decision::Deny(d) = eval::evaluate_scp_targets(&targets, &request(r)) {
                return match d {
                    Denial::Explicit {
                        policy,
                        statement,
                        reason,
                    } => Verdict::deny(e, Some(policy), Some(statement.to_string()), reason),
                    Denial::Implicit { scope, reason } => Verdict::deny(e, Some(scope), None, reason),
                };
            }
        }
    }
    if let Some(tp) = tag_policy {
        for r in &e.requests {
            if let Some(why) = tag_policy_violation(tp, r) {
                return Verdict::deny(e, Some("tag policy".into()), None, why);
            }
        }
    }
    Verdict::allow(
        e,
        scp_exempt.unwrap_or("no statement denies it, and every level of the organization allows it"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::policy::{event, render};
    use std::path::Path;

    const FULL: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

    fn cfg() -> Config {
        Config::parse(
            "schedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\npolicy:\n  exempt_principals: ['arn:aws:iam::*:role/BreakGlass']\n",
            Path::new("t.yaml"),
        )
        .unwrap()
    }

    fn levels(c: &Config) -> Levels {
        let ours = Policy::parse(&render::scp(c).unwrap()).unwrap();
        vec![
            (
                "111122223333".into(),
                vec![("FullAWSAccess".into(), Policy::parse(FULL).unwrap())],
            ),
            (
                "r-root".into(),
                vec![
                    ("FullAWSAccess".into(), Policy::parse(FULL).unwrap()),
                    ("offhours-require-schedule-tag".into(), ours),
                ],
            ),
        ]
    }

    fn run(tags: &str, role: &str) -> Event {
        event::parse(&format!(
            r#"{{"userIdentity": {{"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/{role}/s",
                "sessionContext": {{"sessionIssuer": {{"arn": "arn:aws:iam::111122223333:role/{role}"}}}}}},
              "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances", "awsRegion": "us-east-1",
              "recipientAccountId": "111122223333",
              "requestParameters": {{"tagSpecificationSet": {{"items": [{{"resourceType": "instance", "tags": [{tags}]}}]}}}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn tagged_creation_is_allowed_and_untagged_denied_by_the_named_statement() {
        let c = cfg();
        let tp = render::tag_policy_value(&c);
        let ok = decide(
            &run(r#"{"key": "Schedule", "value": "office-hours"}"#, "Dev"),
            None,
            &levels(&c),
            Some(&tp),
        );
        assert_eq!(ok.decision, "allow", "{ok:?}");
        let no = decide(
            &run(r#"{"key": "Team", "value": "a"}"#, "Dev"),
            None,
            &levels(&c),
            Some(&tp),
        );
        assert_eq!(no.decision, "deny");
        assert_eq!(no.statement.as_deref(), Some(render::sid::RUN_UNTAGGED));
        assert_eq!(no.policy.as_deref(), Some("offhours-require-schedule-tag"));
    }

    #[test]
    fn unknown_values_and_wrong_case_keys_are_denied() {
        let c = cfg();
        let tp = render::tag_policy_value(&c);
        let v = decide(
            &run(r#"{"key": "Schedule", "value": "all-night"}"#, "Dev"),
            None,
            &levels(&c),
            Some(&tp),
        );
        assert_eq!(
            (v.decision, v.statement.as_deref()),
            ("deny", Some(render::sid::UNKNOWN_VALUE))
        );
        // SCP condition keys ignore case, so the tag policy is what catches `schedule`.
        let v = decide(
            &run(r#"{"key": "schedule", "value": "office-hours"}"#, "Dev"),
            None,
            &levels(&c),
            Some(&tp),
        );
        assert_eq!(v.decision, "deny", "{v:?}");
        assert!(v.reason.contains("must be written `Schedule`"), "{v:?}");
    }

    #[test]
    fn exempt_roles_service_linked_roles_and_the_management_account_pass_the_scp() {
        let c = cfg();
        let untagged = r#"{"key": "Team", "value": "a"}"#;
        assert_eq!(
            decide(&run(untagged, "BreakGlass"), None, &levels(&c), None).decision,
            "allow"
        );
        let slr = run(
            untagged,
            "aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
        );
        assert!(decide(&slr, None, &levels(&c), None).reason.contains("service-linked"));
        let v = decide(&run(untagged, "Dev"), Some("111122223333"), &levels(&c), None);
        assert_eq!(v.decision, "allow");
        assert!(v.reason.contains("management account"));
    }

    #[test]
    fn a_level_without_any_allow_denies_implicitly() {
        let c = cfg();
        let mut l = levels(&c);
        l[0].1.clear();
        let v = decide(
            &run(r#"{"key": "Schedule", "value": "office-hours"}"#, "Dev"),
            None,
            &l,
            None,
        );
        assert_eq!(v.decision, "deny");
        assert!(v.reason.contains("111122223333"), "{v:?}");
    }
}
