//! CloudTrail events (as CloudTrail logs them, or wrapped by EventBridge) turned into the
//! authorization requests AWS evaluated: action, resource and condition context.
//!
//! Supported: `RunInstances`, `CreateTags` and `DeleteTags` from EC2; `CreateAutoScalingGroup`,
//! `CreateOrUpdateTags` and `DeleteTags` from Auto Scaling. Anything else is rejected with
//! a message that says what was found and what is supported.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

/// One authorization request, as AWS would evaluate it against SCPs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthRequest {
    /// `service:Action`.
    pub action: String,
    /// The resource ARN (with `*` where the event does not name one).
    pub resource: String,
    /// Condition keys and their values (multi-valued keys have several).
    pub context: BTreeMap<String, Vec<String>>,
}

/// Who made the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Caller {
    /// CloudTrail's `userIdentity.type`.
    pub kind: String,
    /// `aws:PrincipalArn`: for an assumed-role session, the role's ARN.
    pub principal_arn: Option<String>,
    /// Whether the principal is a service-linked role (never restricted by SCPs).
    pub service_linked: bool,
}

/// An event reduced to what the checker needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// The account the call was made in.
    pub account: String,
    /// The region.
    pub region: String,
    /// `ec2.amazonaws.com` or `autoscaling.amazonaws.com`.
    pub source: String,
    /// E.g. `RunInstances`.
    pub name: String,
    /// The caller.
    pub caller: Caller,
    /// The requests it made (one per resource for tagging calls).
    pub requests: Vec<AuthRequest>,
}

/// Why an event could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventError {
    /// JSON path of the problem (e.g. `detail.requestParameters.tags[0].key`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for EventError {}

const SUPPORTED: &str =
    "ec2 RunInstances, CreateTags, DeleteTags; autoscaling CreateAutoScalingGroup, CreateOrUpdateTags, DeleteTags";

fn err(path: &str, message: impl Into<String>) -> EventError {
    EventError {
        path: path.to_string(),
        message: message.into(),
    }
}

fn string<'a>(v: &'a Value, base: &str, key: &str) -> Result<&'a str, EventError> {
    match v.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(err(
            &format!("{base}{key}"),
            format!("expected a string, found {other}"),
        )),
        None => Err(err(&format!("{base}{key}"), "missing")),
    }
}

/// `items` under an EC2-style set (`{"items": [...]}`), or a plain list.
fn items<'a>(v: Option<&'a Value>, path: &str) -> Result<Vec<&'a Value>, EventError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => Ok(a.iter().collect()),
        Some(Value::Object(o)) => match o.get("items") {
            Some(Value::Array(a)) => Ok(a.iter().collect()),
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(other) => Err(err(&format!("{path}.items"), format!("expected a list, found {other}"))),
        },
        Some(other) => Err(err(path, format!("expected a list, found {other}"))),
    }
}

/// (key, value) pairs of a tag list; `value` may be absent (DeleteTags).
fn tags(list: &[&Value], path: &str) -> Result<Vec<(String, Option<String>)>, EventError> {
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            let p = format!("{path}[{i}].");
            let key = string(t, &p, "key")?.to_string();
            let value = match t.get("value") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => return Err(err(&format!("{p}value"), format!("expected a string, found {other}"))),
            };
            Ok((key, value))
        })
        .collect()
}

fn context(
    tags: &[(String, Option<String>)],
    principal: &Option<String>,
    with_values: bool,
) -> BTreeMap<String, Vec<String>> {
    let mut c: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if with_values {
        for (k, v) in tags {
            if let Some(v) = v {
                c.insert(format!("aws:RequestTag/{k}"), vec![v.clone()]);
            }
        }
    }
    c.insert("aws:TagKeys".into(), tags.iter().map(|(k, _)| k.clone()).collect());
    if let Some(p) = principal {
        c.insert("aws:PrincipalArn".into(), vec![p.clone()]);
    }
    c
}

fn caller(detail: &Value) -> Result<Caller, EventError> {
    let ui = detail
        .get("userIdentity")
        .ok_or_else(|| err("userIdentity", "missing"))?;
    let kind = string(ui, "userIdentity.", "type")?.to_string();
    let issuer = ui.pointer("/sessionContext/sessionIssuer/arn").and_then(Value::as_str);
    let arn = ui.get("arn").and_then(Value::as_str);
    let principal_arn = match kind.as_str() {
        "AssumedRole" => issuer.map(String::from).or_else(|| arn.and_then(role_of_session)),
        "AWSService" => None,
        _ => arn.map(String::from),
    };
    let service_linked = principal_arn
        .as_deref()
        .is_some_and(|a| a.contains(":role/aws-service-role/"));
    Ok(Caller {
        kind,
        principal_arn,
        service_linked,
    })
}

/// `arn:aws:sts::1:assumed-role/Name/session` -> `arn:aws:iam::1:role/Name`.
fn role_of_session(arn: &str) -> Option<String> {
    let (head, rest) = arn.split_once(":assumed-role/")?;
    let role = rest.split('/').next()?;
    let head = head.replacen(":sts:", ":iam:", 1);
    Some(format!("{head}:role/{role}"))
}

/// Reads one event (raw CloudTrail, or an EventBridge envelope with it in `detail`).
pub fn parse(text: &str) -> Result<Event, EventError> {
    let v: Value = serde_json::from_str(text).map_err(|e| err("", format!("not JSON: {e}")))?;
    let (detail, base) = match v.get("detail") {
        Some(d) if d.is_object() => (d, "detail."),
        _ => (&v, ""),
    };
    if !detail.is_object() {
        let found = match detail {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        };
        return Err(err("$", format!("expected a CloudTrail event object, found {found}")));
    }
    let source = string(detail, base, "eventSource")?.to_string();
    let name = string(detail, base, "eventName")?.to_string();
    let region = string(detail, base, "awsRegion")?.to_string();
    let account = match detail.get("recipientAccountId").and_then(Value::as_str) {
        Some(a) => a.to_string(),
        None => string(
            detail.get("userIdentity").unwrap_or(&Value::Null),
            &format!("{base}userIdentity."),
            "accountId",
        )?
        .to_string(),
    };
    let caller = caller(detail).map_err(|e| err(&format!("{base}{}", e.path), e.message))?;
    let params = detail.get("requestParameters").unwrap_or(&Value::Null);
    let p = format!("{base}requestParameters");
    let principal = caller.principal_arn.clone();
    let requests = match (source.as_str(), name.as_str()) {
        ("ec2.amazonaws.com", "RunInstances") => {
            let specs = items(params.get("tagSpecificationSet"), &format!("{p}.tagSpecificationSet"))?;
            let mut instance_tags = Vec::new();
            for (i, s) in specs.iter().enumerate() {
                let sp = format!("{p}.tagSpecificationSet.items[{i}]");
                if s.get("resourceType").and_then(Value::as_str) == Some("instance") {
                    instance_tags.extend(tags(
                        &items(s.get("tags"), &format!("{sp}.tags"))?,
                        &format!("{sp}.tags"),
                    )?);
                }
            }
            vec![AuthRequest {
                action: "ec2:RunInstances".into(),
                resource: format!("arn:aws:ec2:{region}:{account}:instance/*"),
                context: context(&instance_tags, &principal, true),
            }]
        }
        ("ec2.amazonaws.com", "CreateTags" | "DeleteTags") => {
            let t = tags(
                &items(params.get("tagSet"), &format!("{p}.tagSet"))?,
                &format!("{p}.tagSet.items"),
            )?;
            let resources = items(params.get("resourcesSet"), &format!("{p}.resourcesSet"))?;
            if resources.is_empty() {
                return Err(err(&format!("{p}.resourcesSet"), "no resources"));
            }
            resources
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let id = string(r, &format!("{p}.resourcesSet.items[{i}]."), "resourceId")?;
                    let kind = if id.starts_with("i-") { "instance" } else { "*" };
                    Ok(AuthRequest {
                        action: format!("ec2:{name}"),
                        resource: format!("arn:aws:ec2:{region}:{account}:{kind}/{id}"),
                        context: context(&t, &principal, name == "CreateTags"),
                    })
                })
                .collect::<Result<Vec<_>, EventError>>()?
        }
        ("autoscaling.amazonaws.com", "CreateAutoScalingGroup") => {
            let group = string(params, &format!("{p}."), "autoScalingGroupName")?;
            let t = tags(&items(params.get("tags"), &format!("{p}.tags"))?, &format!("{p}.tags"))?;
            vec![AuthRequest {
                action: "autoscaling:CreateAutoScalingGroup".into(),
                resource: format!(
                    "arn:aws:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/{group}"
                ),
                context: context(&t, &principal, true),
            }]
        }
        ("autoscaling.amazonaws.com", "CreateOrUpdateTags" | "DeleteTags") => {
            let list = items(params.get("tags"), &format!("{p}.tags"))?;
            if list.is_empty() {
                return Err(err(&format!("{p}.tags"), "no tags"));
            }
            let mut by_group: BTreeMap<String, Vec<(String, Option<String>)>> = BTreeMap::new();
            for (i, t) in list.iter().enumerate() {
                let tp = format!("{p}.tags[{i}].");
                let group = string(t, &tp, "resourceId")?.to_string();
                let pair = tags(&[*t], &format!("{p}.tags"))?.remove(0);
                by_group.entry(group).or_default().push(pair);
            }
            by_group
                .into_iter()
                .map(|(g, t)| AuthRequest {
                    action: format!("autoscaling:{name}"),
                    resource: format!(
                        "arn:aws:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/{g}"
                    ),
                    context: context(&t, &principal, name == "CreateOrUpdateTags"),
                })
                .collect()
        }
        _ => {
            return Err(err(
                &format!("{base}eventName"),
                format!("unsupported event {source} {name}; supported: {SUPPORTED}"),
            ));
        }
    };
    Ok(Event {
        account,
        region,
        source,
        name,
        caller,
        requests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = r#"{
      "eventVersion": "1.08",
      "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/Developer/alice",
        "accountId": "111122223333",
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/Developer"}}},
      "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances", "awsRegion": "ap-northeast-2",
      "requestParameters": {"tagSpecificationSet": {"items": [
        {"resourceType": "instance", "tags": [{"key": "Schedule", "value": "office-hours"}, {"key": "Team", "value": "a"}]},
        {"resourceType": "volume", "tags": [{"key": "Backup", "value": "daily"}]}]}},
      "recipientAccountId": "111122223333"
    }"#;

    #[test]
    fn run_instances_carries_the_instance_tags_and_the_role_arn() {
        let e = parse(RUN).unwrap();
        assert_eq!(e.account, "111122223333");
        assert_eq!(
            e.caller.principal_arn.as_deref(),
            Some("arn:aws:iam::111122223333:role/Developer")
        );
        let r = &e.requests[0];
        assert_eq!(r.action, "ec2:RunInstances");
        assert_eq!(r.resource, "arn:aws:ec2:ap-northeast-2:111122223333:instance/*");
        assert_eq!(r.context["aws:RequestTag/Schedule"], vec!["office-hours"]);
        assert_eq!(
            r.context["aws:TagKeys"],
            vec!["Schedule", "Team"],
            "volume tags do not count"
        );
    }

    #[test]
    fn an_eventbridge_envelope_is_unwrapped() {
        let wrapped = format!(
            r#"{{"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2", "detail": {RUN}}}"#
        );
        assert_eq!(parse(&wrapped).unwrap(), parse(RUN).unwrap());
    }

    #[test]
    fn malformed_and_unsupported_events_say_what_and_where() {
        assert!(parse("not json").unwrap_err().message.contains("not JSON"));
        let e = parse(&RUN.replace("RunInstances", "TerminateInstances")).unwrap_err();
        assert!(
            e.to_string()
                .contains("unsupported event ec2.amazonaws.com TerminateInstances"),
            "{e}"
        );
        let e = parse(&RUN.replace(r#""key": "Team""#, r#""key": 7"#)).unwrap_err();
        assert_eq!(e.path, "requestParameters.tagSpecificationSet.items[0].tags[1].key");
        let e = parse(r#"{"eventSource": "ec2.amazonaws.com"}"#).unwrap_err();
        assert_eq!(e.path, "eventName");
    }

    #[test]
    fn session_arns_map_to_their_role_and_service_linked_roles_are_recognised() {
        assert_eq!(
            role_of_session("arn:aws:sts::1:assumed-role/BreakGlass/bob").as_deref(),
            Some("arn:aws:iam::1:role/BreakGlass")
        );
        let slr = RUN.replace(
            "arn:aws:iam::111122223333:role/Developer",
            "arn:aws:iam::111122223333:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
        );
        assert!(parse(&slr).unwrap().caller.service_linked);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::fuzz_cases(2000)))]
        #[test]
        fn the_event_parser_never_panics(s in "\\PC{0,300}") {
            if let Err(e) = parse(&s) {
                proptest::prop_assert!(!e.message.is_empty());
                proptest::prop_assert!(!e.path.is_empty() || e.message.contains(" line "), "no place: {e}");
            }
        }

        #[test]
        fn mutated_events_never_panic(cut in 0usize..RUN.len(), len in 0usize..20, insert in "[ -~]{0,6}") {
            let mut text = RUN.to_string();
            let (a, b) = (cut, (cut + len).min(RUN.len()));
            if text.is_char_boundary(a) && text.is_char_boundary(b) {
                text.replace_range(a..b, &insert);
                if let Err(e) = parse(&text) {
                    proptest::prop_assert!(!e.message.is_empty());
                    proptest::prop_assert!(!e.path.is_empty() || e.message.contains(" line "), "no place: {e}");
                }
            }
        }
    }
}
