//! Deciding a request as AWS would for an account (pure): the SCPs attached along
//! account -> OUs -> root, and offhours' tag policy. The I/O that gathers the attached
//! policies lives in `sync`.

use serde::Serialize;
use serde_json::Value;

use super::eval::{self, Decision, Denial, Policy, Request};
use super::event::{AuthRequest, Event, Unknown};

/// What the checker decides of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ruling {
    /// AWS allows the call.
    Allow,
    /// An SCP or the tag policy denies it.
    Deny,
    /// AWS already refused the call (CloudTrail has an `errorCode`).
    Refused,
    /// It depends on something the checker could not read (named in the reason).
    Unknown,
}

impl Ruling {
    /// `allow`, `deny`, `refused` or `unknown`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Ruling::Allow => "allow",
            Ruling::Deny => "deny",
            Ruling::Refused => "refused",
            Ruling::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Ruling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Ruling {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The verdict on one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// What the checker decides.
    pub decision: Ruling,
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
    /// Where the tag policy came from: `describe-effective-policy`, `computed-from-attachments`
    /// or `rendered`; `None` if no tag policy applies.
    pub tag_policy_source: Option<String>,
}

impl Verdict {
    /// The text form: the ruling, the call, and why.
    #[must_use]
    pub fn to_text(&self, ev: &Event) -> String {
        let by = match (&self.policy, &self.statement) {
            (Some(p), Some(s)) => format!(" (policy {p}, statement {s})"),
            (Some(p), None) => format!(" ({p})"),
            _ => String::new(),
        };
        let source = self
            .tag_policy_source
            .as_deref()
            .map(|s| format!(" [tag policy: {s}]"))
            .unwrap_or_default();
        format!(
            "{}: {} {} in {}{by}: {}{source}",
            self.decision, ev.source, ev.name, ev.account, self.reason
        )
    }

    fn new(e: &Event, f: &Facts<'_>, decision: Ruling, reason: impl Into<String>) -> Self {
        Verdict {
            decision,
            policy: None,
            statement: None,
            reason: reason.into(),
            account: e.account.clone(),
            event: e.name.clone(),
            principal_arn: e.caller.principal_arn.clone(),
            tag_policy_source: f.tag_policy.map(|_| f.tag_policy_source.to_string()),
        }
    }

    fn deny(e: &Event, f: &Facts<'_>, policy: Option<String>, statement: Option<String>, reason: String) -> Self {
        Verdict {
            policy,
            statement,
            ..Verdict::new(e, f, Ruling::Deny, reason)
        }
    }
}

/// The SCP levels of an offline check: AWS's default `FullAWSAccess` and the rendered SCP,
/// both at one level (the account is assumed not to be the management account).
///
/// # Errors
/// If the SCP cannot be rendered, or read back.
pub fn rendered_levels(cfg: &crate::config::Config, partition: &str) -> Result<Levels, OfflineError> {
    let scp = super::render::scp(cfg, partition)?;
    let full = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    Ok(vec![(
        "(rendered)".to_string(),
        vec![
            ("FullAWSAccess".to_string(), Policy::parse(full)?),
            (cfg.policy.scp_name.clone(), Policy::parse(&scp)?),
        ],
    )])
}

/// Why the rendered policies could not be set up for an offline check.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// The SCP could not be rendered.
    #[error(transparent)]
    Render(#[from] super::render::RenderError),
    /// A policy could not be read back.
    #[error("reading back the rendered SCP: {0}")]
    Parse(#[from] super::eval::PolicyError),
}

/// The SCPs that apply to the account: (target id, [(policy name, policy)]) from the account
/// up to the root.
pub type Levels = Vec<(String, Vec<(String, Policy)>)>;

/// What deciding an event needs besides the event.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The organization's management account (SCPs do not apply to it), if known.
    pub management: Option<&'a str>,
    /// The SCPs attached along the account's path.
    pub levels: &'a Levels,
    /// The account's effective tag policy (or offhours' own), if one applies.
    pub tag_policy: Option<&'a Value>,
    /// Where `tag_policy` came from.
    pub tag_policy_source: &'a str,
    /// The schedule tag key (for what an event cannot tell: a resource's own tags).
    pub tag_key: &'a str,
}

fn request(r: &AuthRequest) -> Request {
    Request {
        action: r.action.clone(),
        resource: r.resource.clone(),
        context: r.context.clone(),
    }
}

/// The service and resource type of an ARN: (`ec2`, `instance`), (`autoscaling`,
/// `autoScalingGroup`), whatever the partition.
fn arn_kind(arn: &str) -> Option<(&str, &str)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" {
        return None;
    }
    let resource = parts[5].split(['/', ':']).next().unwrap_or("");
    Some((parts[2], resource))
}

/// Whether a request's resource is one the tag policy enforces (`ec2:instance`,
/// `autoscaling:autoScalingGroup`, or a service's `ALL_SUPPORTED`).
fn enforced(r: &AuthRequest, enforced_for: &[String]) -> bool {
    let Some((service, resource)) = arn_kind(&r.resource) else {
        return false;
    };
    if resource == "*" {
        return false;
    }
    let kind = format!("{service}:{resource}");
    enforced_for
        .iter()
        .any(|e| e.eq_ignore_ascii_case(&kind) || e.eq_ignore_ascii_case(&format!("{service}:ALL_SUPPORTED")))
}

/// A tag policy setting, written with an operator (`{"@@assign": x}`, as in an attached policy)
/// or plain (as `DescribeEffectivePolicy` returns it, the operators applied).
fn setting<'v>(rule: &'v Value, name: &str) -> Option<&'v Value> {
    let v = rule.get(name)?;
    match v.get("@@assign") {
        Some(a) => Some(a),
        None if v.is_object() => None,
        None => Some(v),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Checks the request tags against a tag policy document (`tags.<key>.tag_key/tag_value/enforced_for`,
/// attached or effective form). Returns the reason for noncompliance, if any.
pub fn tag_policy_violation(policy: &Value, r: &AuthRequest) -> Option<String> {
    let tags = policy.get("tags")?.as_object()?;
    for (name, rule) in tags {
        // Without a tag_key, the key's case treatment is lowercase (Organizations User Guide,
        // "Tag policy syntax and examples": "If case treatment isn't defined, lowercase is the
        // default case treatment for tag keys").
        let lower = name.to_lowercase();
        let assigned_key = setting(rule, "tag_key").and_then(Value::as_str).unwrap_or(&lower);
        let enforced_for = strings(setting(rule, "enforced_for"));
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
            if let Some(allowed) = setting(rule, "tag_value") {
                // A value is listed, or a prefix followed by `*` (AWS whitepaper "Tagging Best
                // Practices", "AWS Organizations - Tag policies").
                let allowed = strings(Some(allowed));
                for v in values {
                    if !allowed
                        .iter()
                        .any(|a| a == v || (a.ends_with('*') && v.starts_with(a.trim_end_matches('*'))))
                    {
                        return Some(format!("tag policy: `{v}` is not an allowed value of `{assigned_key}`"));
                    }
                }
            }
        }
    }
    None
}

fn scp_denial(targets: &[(&str, Vec<(&str, &Policy)>)], r: &Request) -> Option<Denial> {
    match eval::evaluate_scp_targets(targets, r) {
        Decision::Deny(d) => Some(d),
        Decision::Allow => None,
    }
}

/// Decides an event as AWS would for its account.
///
/// An event with an `errorCode` is `refused`: AWS already turned it down (or it failed), so
/// nothing was created or changed and it is no violation (CloudTrail User Guide, "CloudTrail
/// record contents": `errorCode` is "the AWS service error if the request returns an error").
/// A `DeleteTags` without keys is decided as if the instance carried the schedule tag when
/// that changes the outcome (CloudTrail does not record a resource's tags), and the reason
/// says so. A launch template whose tags are not known leaves the decision `unknown` unless
/// something else already denies.
#[must_use]
pub fn decide(e: &Event, f: &Facts<'_>) -> Verdict {
    if let Some(code) = &e.error_code {
        return Verdict::new(
            e,
            f,
            Ruling::Refused,
            format!(
                "AWS refused the call ({code}{}); nothing was created or changed",
                e.error_message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
            ),
        );
    }
    let scp_exempt = if e.caller.service_linked {
        Some("service-linked roles are not restricted by SCPs")
    } else if e.caller.kind == "AWSService" {
        Some("calls made by AWS services are not restricted by SCPs")
    } else if f.management == Some(e.account.as_str()) {
        Some("SCPs do not apply to the management account (the detective scan covers it)")
    } else {
        None
    };
    let tag = format!("aws:RequestTag/{}", f.tag_key);
    let mut waiting: Vec<String> = Vec::new();
    let known = |r: &AuthRequest| match &r.unknown {
        // A request that already carries the schedule tag does not wait for the template.
        Some(Unknown::TemplateTags { template }) if !r.context.keys().any(|k| k.eq_ignore_ascii_case(&tag)) => {
            Err(template.clone())
        }
        _ => Ok(()),
    };
    if scp_exempt.is_none() {
        let targets: Vec<(&str, Vec<(&str, &Policy)>)> = f
            .levels
            .iter()
            .map(|(t, ps)| (t.as_str(), ps.iter().map(|(n, p)| (n.as_str(), p)).collect()))
            .collect();
        for r in &e.requests {
            if let Err(t) = known(r) {
                waiting.push(format!(
                    "the instance tags of launch template {t} (AWS checks ec2:RunInstances with them)"
                ));
                continue;
            }
            let mut denial = scp_denial(&targets, &request(r)).map(|d| (d, String::new()));
            if denial.is_none() && r.unknown == Some(Unknown::ResourceTags) {
                let mut assumed = request(r);
                assumed
                    .context
                    .insert(format!("aws:ResourceTag/{}", f.tag_key), vec!["(any value)".into()]);
                denial = scp_denial(&targets, &assumed).map(|d| {
                    (
                        d,
                        format!(
                            " (if the resource carries the `{}` tag: CloudTrail does not record its tags)",
                            f.tag_key
                        ),
                    )
                });
            }
            if let Some((d, note)) = denial {
                return match d {
                    Denial::Explicit {
                        policy,
                        statement,
                        reason,
                    } => Verdict::deny(
                        e,
                        f,
                        Some(policy),
                        Some(statement.to_string()),
                        format!("{reason}{note}"),
                    ),
                    Denial::Implicit { scope, reason } => {
                        Verdict::deny(e, f, Some(scope), None, format!("{reason}{note}"))
                    }
                };
            }
        }
    }
    if let Some(tp) = f.tag_policy {
        for r in e.requests.iter().filter(|r| known(r).is_ok()) {
            if let Some(why) = tag_policy_violation(tp, r) {
                return Verdict::deny(e, f, Some("tag policy".into()), None, why);
            }
        }
    }
    if !waiting.is_empty() {
        waiting.sort();
        waiting.dedup();
        return Verdict::new(
            e,
            f,
            Ruling::Unknown,
            format!(
                "cannot know without {}: offline they are not read; `policy check` without --offline reads them",
                waiting.join(", ")
            ),
        );
    }
    Verdict::new(
        e,
        f,
        Ruling::Allow,
        scp_exempt.unwrap_or("no statement denies it, and every level of the organization allows it"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::policy::{event, render};
    use std::collections::BTreeMap;
    use std::path::Path;

    const FULL: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

    fn cfg() -> Config {
        Config::parse(
            "schedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\npolicy:\n  exempt_principals: ['arn:aws:iam::*:role/platform/BreakGlass']\n",
            Path::new("t.yaml"),
        )
        .unwrap()
    }

    fn decide(e: &Event, management: Option<&str>, levels: &Levels, tag_policy: Option<&Value>) -> Verdict {
        super::decide(
            e,
            &Facts {
                management,
                levels,
                tag_policy,
                tag_policy_source: "rendered",
                tag_key: "Schedule",
            },
        )
    }

    fn levels(c: &Config) -> Levels {
        let ours = Policy::parse(&render::scp(c, "aws").unwrap()).unwrap();
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
        let tp = render::tag_policy_value(&c, &[]);
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
        let tp = render::tag_policy_value(&c, &[]);
        let v = decide(
            &run(r#"{"key": "Schedule", "value": "all-night"}"#, "Dev"),
            None,
            &levels(&c),
            Some(&tp),
        );
        assert_eq!(
            (v.decision, v.statement.as_deref()),
            (Ruling::Deny, Some(render::sid::UNKNOWN_VALUE))
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
            decide(&run(untagged, "platform/BreakGlass"), None, &levels(&c), None).decision,
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
    fn an_event_aws_refused_is_no_violation() {
        let c = cfg();
        let mut e = run(r#"{"key": "Team", "value": "a"}"#, "Dev");
        e.error_code = Some("Client.UnauthorizedOperation".into());
        let v = decide(&e, None, &levels(&c), None);
        assert_eq!(v.decision, "refused");
        assert!(v.reason.contains("Client.UnauthorizedOperation"), "{v:?}");
    }

    #[test]
    fn the_partition_decides_which_statements_match() {
        let c = cfg();
        let mut e = run(r#"{"key": "Team", "value": "a"}"#, "Dev");
        for r in &mut e.requests {
            r.resource = r.resource.replacen("arn:aws:", "arn:aws-cn:", 1);
        }
        assert_eq!(
            decide(&e, None, &levels(&c), None).decision,
            "allow",
            "an SCP written for arn:aws: does not govern aws-cn"
        );
        let cn = vec![(
            "r-root".to_string(),
            vec![
                ("FullAWSAccess".to_string(), Policy::parse(FULL).unwrap()),
                (
                    "ours".to_string(),
                    Policy::parse(&render::scp(&c, "aws-cn").unwrap()).unwrap(),
                ),
            ],
        )];
        assert_eq!(decide(&e, None, &cn, None).decision, "deny");
    }

    #[test]
    fn delete_tags_without_keys_is_denied_assuming_the_instance_carries_the_tag() {
        let c = cfg();
        let e = event::parse(
            r#"{"userIdentity": {"type": "AssumedRole", "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::111122223333:role/Dev"}}},
              "eventSource": "ec2.amazonaws.com", "eventName": "DeleteTags", "awsRegion": "us-east-1", "recipientAccountId": "111122223333",
              "requestParameters": {"resourcesSet": {"items": [{"resourceId": "i-1"}]}}}"#,
        )
        .unwrap();
        let v = decide(&e, None, &levels(&c), None);
        assert_eq!(v.statement.as_deref(), Some(render::sid::DELETE_ALL_TAGS), "{v:?}");
        assert!(v.reason.contains("CloudTrail does not record"), "{v:?}");
    }

    #[test]
    fn a_launch_template_decides_once_its_tags_are_known() {
        let c = cfg();
        let text = r#"{"userIdentity": {"type": "AssumedRole", "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::111122223333:role/Dev"}}},
              "eventSource": "autoscaling.amazonaws.com", "eventName": "CreateAutoScalingGroup", "awsRegion": "us-east-1",
              "recipientAccountId": "111122223333", "requestParameters": {"autoScalingGroupName": "g",
              "launchTemplate": {"launchTemplateId": "lt-1"}, "tags": [{"key": "Schedule", "value": "office-hours"}]}}"#;
        let mut e = event::parse(text).unwrap();
        let v = decide(&e, None, &levels(&c), None);
        assert_eq!(v.decision, "unknown", "{v:?}");
        assert!(v.reason.contains("launch template lt-1"), "{v:?}");
        let t = e.templates()[0].clone();
        let mut untagged = e.clone();
        untagged.resolve_template(&t, &BTreeMap::from([("Team".to_string(), "a".to_string())]));
        let v = decide(&untagged, None, &levels(&c), None);
        assert_eq!(v.statement.as_deref(), Some(render::sid::RUN_UNTAGGED), "{v:?}");
        e.resolve_template(
            &t,
            &BTreeMap::from([("Schedule".to_string(), "office-hours".to_string())]),
        );
        assert_eq!(decide(&e, None, &levels(&c), None).decision, "allow");
    }

    #[test]
    fn a_tag_policy_value_may_be_a_prefix_and_a_wildcard() {
        let tp = serde_json::json!({"tags": {"schedule": {"tag_key": {"@@assign": "Schedule"}, "tag_value": {"@@assign": ["office-*"]}, "enforced_for": {"@@assign": ["ec2:instance"]}}}});
        let ok = run(r#"{"key": "Schedule", "value": "office-hours"}"#, "Dev");
        assert_eq!(tag_policy_violation(&tp, &ok.requests[0]), None);
        let no = run(r#"{"key": "Schedule", "value": "weekend-off"}"#, "Dev");
        assert!(tag_policy_violation(&tp, &no.requests[0]).is_some());
    }

    #[test]
    fn without_a_tag_key_the_key_must_be_lowercase() {
        let tp = serde_json::json!({"tags": {"Schedule": {"enforced_for": {"@@assign": ["ec2:instance"]}}}});
        let upper = run(r#"{"key": "Schedule", "value": "office-hours"}"#, "Dev");
        assert!(
            tag_policy_violation(&tp, &upper.requests[0])
                .unwrap()
                .contains("must be written `schedule`")
        );
        let lower = run(r#"{"key": "schedule", "value": "office-hours"}"#, "Dev");
        assert_eq!(tag_policy_violation(&tp, &lower.requests[0]), None);
    }

    #[test]
    fn an_effective_tag_policy_without_operators_is_read_too() {
        let effective = serde_json::json!({"tags": {"schedule": {"tag_key": "Schedule", "tag_value": ["office-hours"], "enforced_for": ["ec2:instance"]}}});
        let e = run(r#"{"key": "Schedule", "value": "weekend-off"}"#, "Dev");
        let r = &e.requests[0];
        assert!(
            tag_policy_violation(&effective, r)
                .unwrap()
                .contains("`weekend-off` is not an allowed value")
        );
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
