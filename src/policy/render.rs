//! Renders the service control policy and the tag policy from the config alone.
//!
//! Output is deterministic (object keys sorted, statements in a fixed order), so the
//! same config gives byte-identical JSON. Documents are pretty-printed when that fits
//! AWS's size limit and minified when only that fits; beyond that, rendering fails.

use serde_json::{Map, Value, json};

use crate::config::{ALWAYS_ON, Config};

/// AWS's limit on an SCP document, in characters.
pub const SCP_LIMIT: usize = 5120;
/// AWS's limit on a tag policy document, in characters.
pub const TAG_POLICY_LIMIT: usize = 10_000;

/// Sids of the SCP's statements.
pub mod sid {
    /// RunInstances without the schedule tag on the instance.
    pub const RUN_UNTAGGED: &str = "DenyRunInstancesWithoutScheduleTag";
    /// CreateAutoScalingGroup without the schedule tag.
    pub const ASG_UNTAGGED: &str = "DenyCreateAutoScalingGroupWithoutScheduleTag";
    /// CreateFleet, RequestSpotFleet and RequestSpotInstances without the schedule tag.
    pub const FLEET_UNTAGGED: &str = "DenyFleetAndSpotRequestsWithoutScheduleTag";
    /// Removing the schedule tag.
    pub const REMOVE_TAG: &str = "DenyScheduleTagRemoval";
    /// DeleteTags without a key list (deletes every tag) on an instance with the schedule tag.
    pub const DELETE_ALL_TAGS: &str = "DenyDeleteAllTagsOnScheduledInstances";
    /// Writing offhours' own `offhours:` tags from anything but offhours.
    pub const OFFHOURS_STATE: &str = "DenyOffhoursStateTagWrites";
    /// A schedule value outside the configured names.
    pub const UNKNOWN_VALUE: &str = "DenyUnknownScheduleValue";
    /// Creating an RDS DB instance or cluster (new, replica or restore) without the tag.
    pub const DB_UNTAGGED: &str = "DenyDatabaseCreationWithoutScheduleTag";
}

/// The resource ARN patterns the SCP governs, in one partition.
///
/// Formats from the Service Authorization Reference, "Resource types defined by Amazon EC2"
/// (`arn:${Partition}:ec2:${Region}:${Account}:instance/${InstanceId}`, `fleet/...`,
/// `spot-fleet-request/...`, `spot-instances-request/...`) and "... by Amazon EC2 Auto Scaling"
/// (`arn:${Partition}:autoscaling:${Region}:${Account}:autoScalingGroup:${GroupId}:autoScalingGroupName/${GroupFriendlyName}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arns {
    /// Every EC2 instance.
    pub instance: String,
    /// Every Auto Scaling group.
    pub group: String,
    /// Every EC2 Fleet.
    pub fleet: String,
    /// Every Spot Fleet request.
    pub spot_fleet_request: String,
    /// Every Spot Instance request.
    pub spot_instances_request: String,
    /// Every RDS DB instance (`arn:${Partition}:rds:${Region}:${Account}:db:${DbInstanceName}`,
    /// Service Authorization Reference, "Resource types defined by Amazon RDS").
    pub db: String,
    /// Every RDS or Aurora DB cluster (`...:cluster:${DbClusterInstanceName}`, same source).
    pub cluster: String,
}

impl Arns {
    /// The patterns in `partition` (`aws`, `aws-cn`, `aws-us-gov`, ...).
    #[must_use]
    pub fn new(partition: &str) -> Arns {
        Arns {
            instance: format!("arn:{partition}:ec2:*:*:instance/*"),
            group: format!("arn:{partition}:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/*"),
            fleet: format!("arn:{partition}:ec2:*:*:fleet/*"),
            spot_fleet_request: format!("arn:{partition}:ec2:*:*:spot-fleet-request/*"),
            spot_instances_request: format!("arn:{partition}:ec2:*:*:spot-instances-request/*"),
            db: format!("arn:{partition}:rds:*:*:db:*"),
            cluster: format!("arn:{partition}:rds:*:*:cluster:*"),
        }
    }
}

/// The prefix of the tag keys offhours keeps its state in.
pub const STATE_PREFIX: &str = "offhours:";

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

fn exemption(arns: &[String], mut condition: Map<String, Value>) -> Value {
    let mut arns = arns.to_vec();
    arns.sort();
    arns.dedup();
    if !arns.is_empty() {
        condition.insert("ArnNotLike".into(), json!({ "aws:PrincipalArn": arns }));
    }
    Value::Object(condition)
}

fn one_or_many(mut v: Vec<String>) -> Value {
    if v.len() == 1 {
        Value::String(v.remove(0))
    } else {
        json!(v)
    }
}

/// The RDS actions that create a DB instance or cluster. Each takes `aws:RequestTag/${TagKey}`
/// and `aws:TagKeys` (Service Authorization Reference, "Actions, resources, and condition keys
/// for Amazon RDS": CreateDBInstance, CreateDBCluster, CreateDBInstanceReadReplica,
/// RestoreDBInstanceFromDBSnapshot, RestoreDBInstanceToPointInTime, RestoreDBInstanceFromS3,
/// RestoreDBClusterFromSnapshot, RestoreDBClusterToPointInTime, RestoreDBClusterFromS3). Written
/// with wildcards to keep the SCP small: `rds:CreateDBInstance*` is CreateDBInstance and
/// CreateDBInstanceReadReplica, `rds:RestoreDB*` the six restores; not `rds:CreateDBCluster*`,
/// which would take in CreateDBClusterSnapshot and the cluster's endpoints and parameter groups.
pub const DB_CREATE_ACTIONS: &[&str] = &["rds:CreateDBCluster", "rds:CreateDBInstance*", "rds:RestoreDB*"];

/// The SCP as a JSON value, its resource ARNs in `partition`.
///
/// What each statement relies on, from the Service Authorization Reference ("Actions,
/// resources, and condition keys for Amazon EC2" and "... for Amazon EC2 Auto Scaling"):
///
/// - `ec2:RunInstances` is authorized once per resource it touches (`instance*`,
///   `network-interface*`, `volume`, and the existing `image*`, `subnet*`, `security-group*`),
///   with `aws:RequestTag` only on the resources it creates, from the tag specification of that
///   resource type. The deny is scoped to `instance/*`, so volumes and network interfaces never
///   need the tag.
/// - `autoscaling:CreateAutoScalingGroup` takes `aws:RequestTag` and `aws:TagKeys`. With a launch
///   template, Auto Scaling also checks `ec2:RunInstances` under the caller's identity, so the
///   template's instance tag specifications must carry the tag (Amazon EC2 Auto Scaling User
///   Guide, "Control Amazon EC2 launch template usage in Auto Scaling").
/// - `ec2:CreateFleet` (`fleet*`), `ec2:RequestSpotFleet` (`spot-fleet-request*`) and
///   `ec2:RequestSpotInstances` (`spot-instances-request*`) take `aws:RequestTag` on the request
///   resource; every fleet or request type can tag it. Instances they launch later are launched
///   by service-linked roles past any SCP, from launch templates that `ec2:RunInstances`
///   governs ("Resource-level permissions for this action do not include the resources specified
///   in a launch template ... include the resources in the RunInstances action statement").
/// - `ec2:DeleteTags` and `autoscaling:DeleteTags` take `aws:TagKeys`; EC2's DeleteTags without a
///   key list deletes every tag (EC2 API Reference, DeleteTags: "If you omit this parameter, we
///   delete all user-defined tags"), when `aws:TagKeys` is absent and a `ForAnyValue` test is
///   false (IAM User Guide, "Single-valued vs. multivalued context keys"), so a separate
///   statement denies it on instances that carry the tag (`aws:ResourceTag`). Auto Scaling's
///   DeleteTags requires a key for every tag (Amazon EC2 Auto Scaling API Reference, DeleteTags:
///   `Tags.member.N` Required: Yes, and Tag: `Key` Required: Yes; User Guide, "Delete tags": "You
///   must specify the tag key"), so it has no such form.
/// - Tagging at creation also authorizes `ec2:CreateTags` with `ec2:CreateAction` (EC2 User
///   Guide, "Grant permission to tag Amazon EC2 resources during creation"), so the `offhours:`
///   statement on `ec2:CreateTags` covers tags written by RunInstances too.
/// - The RDS create actions ([`DB_CREATE_ACTIONS`]) take `aws:RequestTag` on the `db` or
///   `cluster` they create; "If tags are specified in the create action, RDS performs
///   additional authorization on the rds:AddTagsToResource action" (Amazon RDS User Guide,
///   "Grant permission to tag Amazon RDS resources during creation"), which takes
///   `aws:RequestTag` and `aws:TagKeys` too, as does `rds:RemoveTagsFromResource` for
///   `aws:TagKeys`. Tag policies cannot enforce on `rds:db` or `rds:cluster` (AWS
///   Organizations User Guide, "Services and resource types that support enforcement": no
///   for both), so the SCP is what makes the tag mandatory on databases.
#[must_use]
pub fn scp_value(cfg: &Config, partition: &str) -> Value {
    let key = &cfg.tag_key;
    let arns = Arns::new(partition);
    let ours = cfg.policy.offhours_principals_in(partition);
    let mut exempt: Vec<String> = cfg.policy.exempt_principals_in(partition);
    exempt.extend(ours.iter().cloned());
    let request_tag = format!("aws:RequestTag/{key}");
    let untagged = || {
        let mut m = Map::new();
        m.insert("Null".into(), json!({ request_tag.clone(): "true" }));
        exemption(&exempt, m)
    };
    let other_engines_left_out = |mut c: Value| {
        c["StringNotEquals"] = json!({ "rds:DatabaseEngine": crate::model::OTHER_ENGINES });
        c
    };
    let mut statements = vec![
        json!({
            "Sid": sid::RUN_UNTAGGED,
            "Effect": "Deny",
            "Action": "ec2:RunInstances",
            "Resource": arns.instance,
            "Condition": untagged(),
        }),
        json!({
            "Sid": sid::ASG_UNTAGGED,
            "Effect": "Deny",
            "Action": "autoscaling:CreateAutoScalingGroup",
            "Resource": arns.group,
            "Condition": untagged(),
        }),
        json!({
            "Sid": sid::FLEET_UNTAGGED,
            "Effect": "Deny",
            "Action": ["ec2:CreateFleet", "ec2:RequestSpotFleet", "ec2:RequestSpotInstances"],
            "Resource": [arns.fleet, arns.spot_fleet_request, arns.spot_instances_request],
            "Condition": untagged(),
        }),
        json!({
            "Sid": sid::DB_UNTAGGED,
            "Effect": "Deny",
            "Action": DB_CREATE_ACTIONS,
            "Resource": [arns.db, arns.cluster],
            "Condition": other_engines_left_out(untagged()),
        }),
        json!({
            "Sid": sid::REMOVE_TAG,
            "Effect": "Deny",
            "Action": ["autoscaling:DeleteTags", "ec2:DeleteTags", "rds:RemoveTagsFromResource"],
            "Resource": [arns.group, arns.instance, arns.db, arns.cluster],
            "Condition": exemption(&exempt, Map::from_iter([(
                "ForAnyValue:StringEquals".to_string(),
                json!({ "aws:TagKeys": [key] }),
            )])),
        }),
        json!({
            "Sid": sid::DELETE_ALL_TAGS,
            "Effect": "Deny",
            "Action": "ec2:DeleteTags",
            "Resource": arns.instance,
            "Condition": exemption(&exempt, Map::from_iter([(
                "Null".to_string(),
                json!({ "aws:TagKeys": "true", format!("aws:ResourceTag/{key}"): "false" }),
            )])),
        }),
        json!({
            "Sid": sid::OFFHOURS_STATE,
            "Effect": "Deny",
            "Action": [
                "autoscaling:CreateAutoScalingGroup",
                "autoscaling:CreateOrUpdateTags",
                "autoscaling:DeleteTags",
                "ec2:CreateTags",
                "ec2:DeleteTags",
                "rds:AddTagsToResource",
                "rds:RemoveTagsFromResource",
            ],
            "Resource": [arns.group, arns.instance, arns.db, arns.cluster],
            "Condition": exemption(&ours, Map::from_iter([(
                "ForAnyValue:StringLike".to_string(),
                json!({ "aws:TagKeys": format!("{STATE_PREFIX}*") }),
            )])),
        }),
    ];
    if !cfg.allow_inline {
        let mut m = Map::new();
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
                "ec2:CreateFleet",
                "ec2:CreateTags",
                "ec2:RequestSpotFleet",
                "ec2:RequestSpotInstances",
                "ec2:RunInstances",
                "rds:AddTagsToResource",
                "rds:CreateDBCluster",
                "rds:CreateDBInstance",
            ],
            "Resource": one_or_many(vec![
                arns.group.clone(),
                arns.fleet.clone(),
                arns.instance.clone(),
                arns.spot_fleet_request.clone(),
                arns.spot_instances_request.clone(),
                arns.db.clone(),
                arns.cluster.clone(),
            ]),
            "Condition": exemption(&exempt, m),
        }));
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// The tag policy as a JSON value: the key's capitalisation, and (when inline schedules
/// are off) the allowed values plus `retained` ones (values no longer configured that managed
/// resources still carry: dropping them would stop those groups from launching instances, as
/// tag policy enforcement applies to service-linked roles too), enforced for the configured
/// resource types.
#[must_use]
pub fn tag_policy_value(cfg: &Config, retained: &[String]) -> Value {
    let mut tag = Map::new();
    tag.insert("tag_key".into(), json!({ "@@assign": cfg.tag_key }));
    if !cfg.allow_inline {
        let mut values = allowed_values(cfg);
        values.extend(retained.iter().cloned());
        values.sort();
        values.dedup();
        tag.insert("tag_value".into(), json!({ "@@assign": values }));
    }
    let mut enforced = cfg.policy.enforced_for.clone();
    enforced.sort();
    enforced.dedup();
    if !enforced.is_empty() {
        tag.insert("enforced_for".into(), json!({ "@@assign": enforced }));
    }
    json!({ "tags": { cfg.tag_key.to_lowercase(): Value::Object(tag) } })
}

/// The description offhours gives a policy it manages (CreatePolicy allows 512 characters).
#[must_use]
pub fn description(cfg: &Config, kind: crate::policy::drift::Kind) -> String {
    match kind {
        crate::policy::drift::Kind::Scp => format!(
            "Managed by offhours; edits are reverted. Tag instances {k}=<schedule> in RunInstances TagSpecifications, groups in CreateAutoScalingGroup; a group's launch template must carry {k} in its instance tag specifications (Auto Scaling checks RunInstances with it).",
            k = cfg.tag_key
        ),
        crate::policy::drift::Kind::TagPolicy => format!(
            "Managed by offhours; edits are reverted. The {} tag key's spelling and allowed schedule names.",
            cfg.tag_key
        ),
    }
}

/// The document with each statement minified on a line of its own: still easy to review
/// (and to diff), at a few characters more than minified.
fn statement_lines(v: &Value) -> Option<String> {
    let statements = v.get("Statement")?.as_array()?;
    let mut out = String::from("{\"Statement\":[\n");
    for (i, st) in statements.iter().enumerate() {
        out.push_str(&serde_json::to_string(st).ok()?);
        out.push_str(if i + 1 < statements.len() { ",\n" } else { "\n" });
    }
    let version = serde_json::to_string(v.get("Version")?).ok()?;
    out.push_str(&format!("],\"Version\":{version}}}"));
    Some(out)
}

/// The document pretty if that fits AWS's limit, else a statement a line, else minified.
fn fit(kind: &'static str, v: &Value, limit: usize) -> Result<String, RenderError> {
    let pretty = serde_json::to_string_pretty(v).expect("a JSON value serialises");
    if pretty.chars().count() <= limit {
        return Ok(pretty);
    }
    if let Some(lines) = statement_lines(v).filter(|l| l.chars().count() <= limit) {
        return Ok(lines);
    }
    let min = serde_json::to_string(v).expect("a JSON value serialises");
    let size = min.chars().count();
    if size <= limit {
        Ok(min)
    } else {
        Err(RenderError::TooLarge { kind, size, limit })
    }
}

/// The SCP document in `partition`, within AWS's size limit.
pub fn scp(cfg: &Config, partition: &str) -> Result<String, RenderError> {
    fit("SCP", &scp_value(cfg, partition), SCP_LIMIT)
}

/// The tag policy document (with `retained` values), within AWS's size limit.
pub fn tag_policy(cfg: &Config, retained: &[String]) -> Result<String, RenderError> {
    fit("tag policy", &tag_policy_value(cfg, retained), TAG_POLICY_LIMIT)
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

    fn statement<'a>(v: &'a Value, sid: &str) -> &'a Value {
        v["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("no statement {sid}"))
    }

    #[test]
    fn the_scp_scopes_every_ec2_statement_to_instances_and_requests_not_volumes_or_images() {
        let c = cfg("policy:\n  exempt_principals: ['arn:aws:iam::*:role/platform/BreakGlass']\n");
        let v = scp_value(&c, "aws");
        let st = v["Statement"].as_array().unwrap();
        assert_eq!(st.len(), 8);
        let run = statement(&v, sid::RUN_UNTAGGED);
        assert_eq!(run["Action"], "ec2:RunInstances");
        assert_eq!(run["Resource"], "arn:aws:ec2:*:*:instance/*");
        assert_eq!(run["Condition"]["Null"]["aws:RequestTag/Schedule"], "true");
        assert_eq!(
            run["Condition"]["ArnNotLike"]["aws:PrincipalArn"],
            json!([
                "arn:aws:iam::*:role/OrganizationAccountAccessRole",
                "arn:aws:iam::*:role/platform/BreakGlass"
            ])
        );
        for s in st {
            let resources: Vec<&str> = match &s["Resource"] {
                Value::String(r) => vec![r.as_str()],
                Value::Array(a) => a.iter().map(|r| r.as_str().unwrap()).collect(),
                other => panic!("{other}"),
            };
            assert!(!resources.contains(&"*"), "{} governs every resource", s["Sid"]);
            for r in resources {
                assert!(
                    [
                        "instance/*",
                        "fleet/*",
                        "spot-fleet-request/*",
                        "spot-instances-request/*",
                        "autoScalingGroupName/*",
                        ":db:*",
                        ":cluster:*"
                    ]
                    .iter()
                    .any(|end| r.ends_with(end)),
                    "{r}"
                );
            }
        }
        assert_eq!(
            statement(&v, sid::REMOVE_TAG)["Condition"]["ForAnyValue:StringEquals"]["aws:TagKeys"][0],
            "Schedule"
        );
        let all = &statement(&v, sid::DELETE_ALL_TAGS)["Condition"]["Null"];
        assert_eq!(
            (all["aws:TagKeys"].as_str(), all["aws:ResourceTag/Schedule"].as_str()),
            (Some("true"), Some("false"))
        );
        let state = statement(&v, sid::OFFHOURS_STATE);
        assert_eq!(
            state["Condition"]["ForAnyValue:StringLike"]["aws:TagKeys"],
            "offhours:*"
        );
        assert_eq!(
            state["Condition"]["ArnNotLike"]["aws:PrincipalArn"],
            json!(["arn:aws:iam::*:role/OrganizationAccountAccessRole"]),
            "break-glass roles may not write offhours' state; only offhours may"
        );
        assert_eq!(
            statement(&v, sid::UNKNOWN_VALUE)["Condition"]["StringNotEquals"]["aws:RequestTag/Schedule"],
            json!(["always-on", "office-hours", "weekend-off"])
        );
    }

    #[test]
    fn arns_follow_the_partition() {
        let c = cfg("");
        for p in ["aws-cn", "aws-us-gov"] {
            let text = scp(&c, p).unwrap();
            assert!(!text.contains("arn:aws:"), "{p}: {text}");
            assert!(text.contains(&format!("arn:{p}:ec2:*:*:instance/*")), "{p}");
            assert!(
                text.contains(&format!("arn:{p}:iam::*:role/OrganizationAccountAccessRole")),
                "{p}"
            );
        }
    }

    #[test]
    fn inline_schedules_drop_the_value_restrictions() {
        let c = cfg("allow_inline: true\n");
        assert_eq!(scp_value(&c, "aws")["Statement"].as_array().unwrap().len(), 7);
        assert!(tag_policy_value(&c, &[])["tags"]["schedule"].get("tag_value").is_none());
    }

    #[test]
    fn the_tag_policy_fixes_the_key_and_lists_the_names_and_retained_values() {
        let v = tag_policy_value(&cfg(""), &["night-shift".to_string()]);
        assert_eq!(v["tags"]["schedule"]["tag_key"]["@@assign"], "Schedule");
        assert_eq!(
            v["tags"]["schedule"]["tag_value"]["@@assign"],
            json!(["always-on", "night-shift", "office-hours", "weekend-off"])
        );
        assert_eq!(
            v["tags"]["schedule"]["enforced_for"]["@@assign"],
            json!(["ec2:instance"])
        );
    }

    #[test]
    fn the_scp_description_tells_teams_about_launch_templates_and_fits_aws_limit() {
        let c = cfg("");
        let d = description(&c, crate::policy::drift::Kind::Scp);
        assert!(d.contains("launch template") && d.contains("Schedule"), "{d}");
        assert!(d.chars().count() <= 512, "{}", d.len());
    }

    #[test]
    fn rendering_is_byte_identical_and_minifies_only_when_needed() {
        let c = cfg("");
        assert_eq!(scp(&c, "aws").unwrap(), scp(&c, "aws").unwrap());
        // Pretty when the pretty form fits (the small tag policy); else a statement a line
        // (a small config's SCP, since the database statements), the same JSON.
        assert!(
            tag_policy(&c, &[]).unwrap().starts_with("{\n  "),
            "small enough to stay pretty"
        );
        let text = scp(&c, "aws").unwrap();
        let pretty = serde_json::to_string_pretty(&scp_value(&c, "aws")).unwrap();
        assert!(pretty.chars().count() > SCP_LIMIT);
        assert_eq!(
            text.lines().count(),
            2 + scp_value(&c, "aws")["Statement"].as_array().unwrap().len()
        );
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), scp_value(&c, "aws"));
        // 48 schedules of 30-character names fit (60 did before the database statements).
        let many: String = (0..48)
            .map(|i| format!("  team-{i:02}-office-hours-extended:\n    running: [\"Mon-Fri 08:00-20:00\"]\n"))
            .collect();
        let big = Config::parse(&format!("schedules:\n{many}"), Path::new("t.yaml")).unwrap();
        let s = scp(&big, "aws").unwrap();
        assert!(s.chars().count() <= SCP_LIMIT, "made to fit: {}", s.len());
        assert_eq!(serde_json::from_str::<Value>(&s).unwrap(), scp_value(&big, "aws"));
        let huge: String = (0..200)
            .map(|i| format!("  team-{i:03}-office-hours-extended:\n    running: [\"Mon-Fri 08:00-20:00\"]\n"))
            .collect();
        let huge = Config::parse(&format!("schedules:\n{huge}"), Path::new("t.yaml")).unwrap();
        let err = scp(&huge, "aws").unwrap_err().to_string();
        assert!(err.contains("AWS allows 5120"), "{err}");
    }
}
