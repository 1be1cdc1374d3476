//! Renders the service control policy and the tag policy from the config alone.
//!
//! Output is deterministic (object keys sorted, statements in a fixed order), so the
//! same config gives byte-identical JSON. Documents are pretty-printed when that fits
//! AWS's size limit and minified when only that fits; beyond that, rendering fails.

use serde_json::{Value, json};

use crate::config::{ALWAYS_ON, Config};

/// AWS's limit on an SCP document, in characters.
pub const SCP_LIMIT: usize = 5120;
/// AWS's limit on a tag policy document, in characters.
pub const TAG_POLICY_LIMIT: usize = 10_000;

/// Sids of the SCP's statements.
pub mod sid {
    /// RunInstances without the schedule tag.
    pub const RUN_UNTAGGED: &str = "DenyRunInstancesWithoutScheduleTag";
    /// CreateAutoScalingGroup without the schedule tag.
    pub const ASG_UNTAGGED: &str = "DenyCreateAutoScalingGroupWithoutScheduleTag";
    /// Removing the schedule tag.
    pub const REMOVE_TAG: &str = "DenyScheduleTagRemoval";
    /// A schedule value outside the configured names.
    pub const UNKNOWN_VALUE: &str = "DenyUnknownScheduleValue";
}

/// Why a policy could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// Too big even minified.
    #[error(
        "the rendered {kind} is {size} characters even minified; AWS allows {limit}. Shorten schedule names, fewer exempt principals, or fewer schedules"
    )]
    TooLarge {
        /// `SCP` or `tag policy`.
        kind: &'static str,
        /// Minified size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

/// The values the tag policy and SCP allow: every schedule name plus `always-on`, sorted.
fn allowed_values(cfg: &Config) -> Vec<String> {
    cfg.allowed_values()
}

fn with_exemption(cfg: &Config, mut condition: serde_json::Map<String, Value>) -> Value {
    if !cfg.policy.exempt_principals.is_empty() {
        let mut arns = cfg.policy.exempt_principals.clone();
        arns.sort();
        arns.dedup();
        condition.insert("ArnNotLike".into(), json!({ "aws:PrincipalArn": arns }));
    }
    Value::Object(condition)
}

/// The SCP as a JSON value.
#[must_use]
pub fn scp_value(cfg: &Config) -> Value {
    let key = &cfg.tag_key;
    let request_tag = format!("aws:RequestTag/{key}");
    let untagged = || {
        let mut m = serde_json::Map::new();
        m.insert("Null".into(), json!({ request_tag.clone(): "true" }));
        with_exemption(cfg, m)
    };
    let mut statements = vec![
        json!({
            "Sid": sid::RUN_UNTAGGED,
            "Effect": "Deny",
            "Action": "ec2:RunInstances",
            "Resource": "arn:aws:ec2:*:*:instance/*",
            "Condition": untagged(),
        }),
        json!({
            "Sid": sid::ASG_UNTAGGED,
            "Effect": "Deny",
            "Action": "autoscaling:CreateAutoScalingGroup",
            "Resource": "*",
            "Condition": untagged(),
        }),
        json!({
            "Sid": sid::REMOVE_TAG,
            "Effect": "Deny",
            "Action": ["autoscaling:DeleteTags", "ec2:DeleteTags"],
            "Resource": "*",
            "Condition": with_exemption(cfg, serde_json::Map::from_iter([(
                "ForAnyValue:StringEquals".to_string(),
                json!({ "aws:TagKeys": [key] }),
            )])),
        }),
    ];
    if !cfg.allow_inline {
        let mut m = serde_json::Map::new();
        m.insert(
            "StringNotEquals".into(),
            json!({ request_tag.clone(): allowed_values(cfg) }),
        );
        m.insert("Null".into(), json!({ request_tag.clone(): "false" }));
        statements.push(json!({
            "Sid": sid::UNKNOWN_VALUE,
            "Effect": "Deny",
            "Action": [
                "autoscaling:CreateAutoScalingGroup",
                "autoscaling:CreateOrUpdateTags",
                "ec2:CreateTags",
                "ec2:RunInstances",
            ],
            "Resource": "*",
            "Condition": with_exemption(cfg, m),
        }));
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// The tag policy as a JSON value: the key's capitalisation, and (when inline schedules
/// are off) the allowed values, enforced for the configured resource types.
#[must_use]
pub fn tag_policy_value(cfg: &Config) -> Value {
    let mut tag = serde_json::Map::new();
    tag.insert("tag_key".into(), json!({ "@@assign": cfg.tag_key }));
    if !cfg.allow_inline {
        tag.insert("tag_value".into(), json!({ "@@assign": allowed_values(cfg) }));
    }
    let mut enforced = cfg.policy.enforced_for.clone();
    enforced.sort();
    enforced.dedup();
    if !enforced.is_empty() {
        tag.insert("enforced_for".into(), json!({ "@@assign": enforced }));
    }
    json!({ "tags": { cfg.tag_key.to_lowercase(): Value::Object(tag) } })
}

fn fit(kind: &'static str, v: &Value, limit: usize) -> Result<String, RenderError> {
    let pretty = serde_json::to_string_pretty(v).expect("a JSON value serialises");
    if pretty.chars().count() <= limit {
        return Ok(pretty);
    }
    let min = serde_json::to_string(v).expect("a JSON value serialises");
    let size = min.chars().count();
    if size <= limit {
        Ok(min)
    } else {
        Err(RenderError::TooLarge { kind, size, limit })
    }
}

/// The SCP document, within AWS's size limit.
pub fn scp(cfg: &Config) -> Result<String, RenderError> {
    fit("SCP", &scp_value(cfg), SCP_LIMIT)
}

/// The tag policy document, within AWS's size limit.
pub fn tag_policy(cfg: &Config) -> Result<String, RenderError> {
    fit("tag policy", &tag_policy_value(cfg), TAG_POLICY_LIMIT)
}

/// Whether `value` is allowed by the rendered tag policy (always-on included).
#[must_use]
pub fn value_allowed(cfg: &Config, value: &str) -> bool {
    value == ALWAYS_ON || cfg.allowed_values().iter().any(|v| v == value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cfg(extra: &str) -> Config {
        let text = format!(
            "tag_key: Schedule\nschedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\n  weekend-off:\n    stopped: [\"Fri 20:00-Mon 08:00\"]\n{extra}"
        );
        Config::parse(&text, Path::new("t.yaml")).unwrap()
    }

    #[test]
    fn the_scp_denies_untagged_creation_tag_removal_and_unknown_values() {
        let c = cfg("policy:\n  exempt_principals: ['arn:aws:iam::*:role/BreakGlass']\n");
        let v = scp_value(&c);
        let st = v["Statement"].as_array().unwrap();
        assert_eq!(st.len(), 4);
        assert_eq!(st[0]["Action"], "ec2:RunInstances");
        assert_eq!(st[0]["Resource"], "arn:aws:ec2:*:*:instance/*");
        assert_eq!(st[0]["Condition"]["Null"]["aws:RequestTag/Schedule"], "true");
        assert_eq!(
            st[0]["Condition"]["ArnNotLike"]["aws:PrincipalArn"][0],
            "arn:aws:iam::*:role/BreakGlass"
        );
        assert_eq!(st[1]["Action"], "autoscaling:CreateAutoScalingGroup");
        assert_eq!(
            st[2]["Condition"]["ForAnyValue:StringEquals"]["aws:TagKeys"][0],
            "Schedule"
        );
        assert_eq!(
            st[3]["Condition"]["StringNotEquals"]["aws:RequestTag/Schedule"],
            json!(["always-on", "office-hours", "weekend-off"])
        );
    }

    #[test]
    fn inline_schedules_drop_the_value_restrictions() {
        let c = cfg("allow_inline: true\n");
        assert_eq!(scp_value(&c)["Statement"].as_array().unwrap().len(), 3);
        assert!(tag_policy_value(&c)["tags"]["schedule"].get("tag_value").is_none());
    }

    #[test]
    fn the_tag_policy_fixes_the_key_and_lists_the_names() {
        let v = tag_policy_value(&cfg(""));
        assert_eq!(v["tags"]["schedule"]["tag_key"]["@@assign"], "Schedule");
        assert_eq!(
            v["tags"]["schedule"]["tag_value"]["@@assign"],
            json!(["always-on", "office-hours", "weekend-off"])
        );
        assert_eq!(
            v["tags"]["schedule"]["enforced_for"]["@@assign"],
            json!(["ec2:instance"])
        );
    }

    #[test]
    fn rendering_is_byte_identical_and_minifies_only_when_needed() {
        let c = cfg("");
        assert_eq!(scp(&c).unwrap(), scp(&c).unwrap());
        assert!(scp(&c).unwrap().contains('\n'), "small enough to stay pretty");
        let many: String = (0..100)
            .map(|i| format!("  team-{i:02}-office-hours-extended:\n    running: [\"Mon-Fri 08:00-20:00\"]\n"))
            .collect();
        let big = Config::parse(&format!("schedules:\n{many}"), Path::new("t.yaml")).unwrap();
        let s = scp(&big).unwrap();
        assert!(
            !s.contains('\n') && s.len() <= SCP_LIMIT,
            "minified to fit: {}",
            s.len()
        );
        let huge: String = (0..200)
            .map(|i| format!("  team-{i:03}-office-hours-extended:\n    running: [\"Mon-Fri 08:00-20:00\"]\n"))
            .collect();
        let huge = Config::parse(&format!("schedules:\n{huge}"), Path::new("t.yaml")).unwrap();
        let err = scp(&huge).unwrap_err().to_string();
        assert!(err.contains("AWS allows 5120"), "{err}");
    }
}
