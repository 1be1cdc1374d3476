//! CloudTrail events (as CloudTrail logs them, or wrapped by EventBridge) turned into the
//! authorization requests AWS evaluated: action, resource and condition context.
//!
//! Supported: `RunInstances`, `CreateFleet`, `RequestSpotFleet`, `RequestSpotInstances`,
//! `CreateTags` and `DeleteTags` from EC2; `CreateAutoScalingGroup`, `CreateOrUpdateTags` and
//! `DeleteTags` from Auto Scaling; the RDS calls that create a DB instance or cluster (new, read
//! replica, restore), `AddTagsToResource` and `RemoveTagsFromResource`. Anything else is rejected with a message that says what was
//! found and what is supported.
//!
//! One call is authorized once per resource it touches (IAM User Guide, "Policy evaluation
//! logic"; the Service Authorization Reference lists the resource types of each action), so a
//! `RunInstances` becomes one request for the instance, one for its root volume and one for its
//! network interface (each with `aws:RequestTag` from the tag specification of that resource
//! type), the existing image, subnet and security groups (no request tags), and, for each
//! resource type it tags, the `ec2:CreateTags` check that tagging on creation makes (EC2 User
//! Guide, "Grant permission to tag Amazon EC2 resources during creation": `ec2:CreateAction`).
//!
//! What CloudTrail does not record, the event says it does not know: the tags of an existing
//! resource (for a `DeleteTags`), and the tag specifications of a launch template (which Auto
//! Scaling and RunInstances use for the instances). ARNs take the partition of the event's
//! region (`cn-*`: `aws-cn`, `us-gov-*`: `aws-us-gov`) or of the caller's ARN.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

/// A launch template a call names (its instances' tags come from its tag specifications).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TemplateRef {
    /// `lt-...`, if given.
    pub id: Option<String>,
    /// Its name, if given.
    pub name: Option<String>,
    /// `$Latest`, `$Default` or a number; absent means `$Default`.
    pub version: Option<String>,
}

impl fmt::Display for TemplateRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = self.id.as_deref().or(self.name.as_deref()).unwrap_or("(unnamed)");
        write!(f, "{what} version {}", self.version.as_deref().unwrap_or("$Default"))
    }
}

/// What the checker must learn before a request's context is complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "unknown", rename_all = "kebab-case")]
pub enum Unknown {
    /// The existing resource's tags (`aws:ResourceTag/...`): CloudTrail does not record them.
    ResourceTags,
    /// The instance tags of this launch template (they become `aws:RequestTag/...`).
    TemplateTags {
        /// The template.
        template: TemplateRef,
    },
}

/// One authorization request, as AWS would evaluate it against SCPs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthRequest {
    /// `service:Action`.
    pub action: String,
    /// The resource ARN (with `*` where the event does not name one).
    pub resource: String,
    /// Condition keys and their values (multi-valued keys have several).
    pub context: BTreeMap<String, Vec<String>>,
    /// What the context still lacks, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<Unknown>,
}

impl AuthRequest {
    /// The instance tags of `template` become this request's tags: request tags win over the
    /// template's for the same key, and `aws:TagKeys` lists both.
    pub fn add_template_tags(&mut self, tags: &BTreeMap<String, String>) {
        let mut keys: Vec<String> = self.context.get("aws:TagKeys").cloned().unwrap_or_default();
        for (k, v) in tags {
            let key = format!("aws:RequestTag/{k}");
            self.context.entry(key).or_insert_with(|| vec![v.clone()]);
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        self.context.insert("aws:TagKeys".into(), keys);
        self.unknown = None;
    }
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
    /// The partition of its ARNs (`aws`, `aws-cn`, `aws-us-gov`, ...).
    pub partition: String,
    /// `ec2.amazonaws.com` or `autoscaling.amazonaws.com`.
    pub source: String,
    /// E.g. `RunInstances`.
    pub name: String,
    /// The caller.
    pub caller: Caller,
    /// CloudTrail's `errorCode`: AWS refused or failed the call (nothing was created).
    pub error_code: Option<String>,
    /// CloudTrail's `errorMessage`.
    pub error_message: Option<String>,
    /// The requests it made (one per resource for tagging calls).
    pub requests: Vec<AuthRequest>,
}

impl Event {
    /// Launch templates whose tags the checker needs, once each.
    #[must_use]
    pub fn templates(&self) -> Vec<TemplateRef> {
        let mut out: Vec<TemplateRef> = self
            .requests
            .iter()
            .filter_map(|r| match &r.unknown {
                Some(Unknown::TemplateTags { template }) => Some(template.clone()),
                _ => None,
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Fills in the instance tags of a launch template wherever a request waits for them.
    pub fn resolve_template(&mut self, template: &TemplateRef, tags: &BTreeMap<String, String>) {
        for r in &mut self.requests {
            if matches!(&r.unknown, Some(Unknown::TemplateTags { template: t }) if t == template) {
                r.add_template_tags(tags);
            }
        }
    }
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

const SUPPORTED: &str = "ec2 RunInstances, CreateFleet, RequestSpotFleet, RequestSpotInstances, CreateTags, DeleteTags; autoscaling CreateAutoScalingGroup, CreateOrUpdateTags, DeleteTags; rds CreateDBInstance, CreateDBCluster, CreateDBInstanceReadReplica, RestoreDBInstanceFromDBSnapshot, RestoreDBInstanceToPointInTime, RestoreDBClusterFromSnapshot, RestoreDBClusterToPointInTime, RestoreDBInstanceFromS3, RestoreDBClusterFromS3, AddTagsToResource, RemoveTagsFromResource";

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
type TagList = Vec<(String, Option<String>)>;

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

/// The partition of a region (AWS General Reference, "Amazon Resource Names": China regions
/// are in `aws-cn`, GovCloud regions in `aws-us-gov`), else of the caller's ARN, else `aws`.
fn partition_of(region: &str, caller_arn: Option<&str>) -> String {
    if region.starts_with("cn-") {
        return "aws-cn".into();
    }
    if region.starts_with("us-gov-") {
        return "aws-us-gov".into();
    }
    caller_arn
        .and_then(|a| a.strip_prefix("arn:"))
        .and_then(|a| a.split(':').next())
        .filter(|p| !p.is_empty())
        .unwrap_or("aws")
        .to_string()
}

/// An object or a list of objects (CloudTrail writes a one-element list of a query-style
/// request as the element itself).
fn one_or_list(v: Option<&Value>) -> Vec<&Value> {
    match v {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(o @ Value::Object(_)) => vec![o],
        _ => Vec::new(),
    }
}

/// Tag specifications by resource type, in either shape CloudTrail records: EC2's
/// `tagSpecificationSet.items[].{resourceType, tags[].{key, value}}`, or the query shape of
/// `CreateFleet` (`TagSpecification{ResourceType, Tag{Key, Value}}`, one element or a list),
/// looked for in `params` and in the objects directly under it (`CreateFleetRequest`,
/// `spotFleetRequestConfig`, `launchSpecification`).
fn tag_specifications(params: &Value, path: &str) -> Result<BTreeMap<String, TagList>, EventError> {
    let mut out: BTreeMap<String, TagList> = BTreeMap::new();
    let mut places: Vec<(&Value, String)> = vec![(params, path.to_string())];
    if let Value::Object(o) = params {
        for (k, v) in o {
            if v.is_object() {
                places.push((v, format!("{path}.{k}")));
            }
        }
    }
    for (place, p) in places {
        let specs = items(place.get("tagSpecificationSet"), &format!("{p}.tagSpecificationSet"))?;
        for (i, s) in specs.iter().enumerate() {
            let sp = format!("{p}.tagSpecificationSet.items[{i}]");
            let kind = string(s, &format!("{sp}."), "resourceType")?.to_string();
            let t = tags(&items(s.get("tags"), &format!("{sp}.tags"))?, &format!("{sp}.tags"))?;
            out.entry(kind).or_default().extend(t);
        }
        for (i, s) in one_or_list(place.get("TagSpecification")).into_iter().enumerate() {
            let sp = format!("{p}.TagSpecification[{i}]");
            let kind = string(s, &format!("{sp}."), "ResourceType")?.to_string();
            for (j, t) in one_or_list(s.get("Tag")).into_iter().enumerate() {
                let tp = format!("{sp}.Tag[{j}].");
                let key = string(t, &tp, "Key")?.to_string();
                let value = t.get("Value").and_then(Value::as_str).map(String::from);
                out.entry(kind.clone()).or_default().push((key, value));
            }
        }
    }
    Ok(out)
}

/// A launch template named by `v` (`launchTemplateId` / `launchTemplateName` / `version`, any case).
fn template_ref(v: &Value) -> Option<TemplateRef> {
    let get = |names: &[&str]| {
        names.iter().find_map(|n| match v.get(*n) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        })
    };
    let id = get(&["launchTemplateId", "LaunchTemplateId"]);
    let name = get(&["launchTemplateName", "LaunchTemplateName"]);
    (id.is_some() || name.is_some()).then(|| TemplateRef {
        id,
        name,
        version: get(&["version", "Version"]),
    })
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
    let partition = partition_of(&region, detail.pointer("/userIdentity/arn").and_then(Value::as_str));
    let text_of = |k: &str| detail.get(k).and_then(Value::as_str).map(String::from);
    let params = detail.get("requestParameters").unwrap_or(&Value::Null);
    let p = format!("{base}requestParameters");
    let principal = caller.principal_arn.clone();
    let ec2 = |kind: &str, id: &str| {
        // Images and snapshots carry no account in their ARN (Service Authorization Reference,
        // "Resource types defined by Amazon EC2").
        let acct = if matches!(kind, "image" | "snapshot") {
            ""
        } else {
            account.as_str()
        };
        format!("arn:{partition}:ec2:{region}:{acct}:{kind}/{id}")
    };
    let request = |action: &str, resource: String, t: &[(String, Option<String>)], with_values: bool| AuthRequest {
        action: action.into(),
        resource,
        context: context(t, &principal, with_values),
        unknown: None,
    };
    let requests = match (source.as_str(), name.as_str()) {
        ("ec2.amazonaws.com", "RunInstances") => {
            let specs = tag_specifications(params, &p)?;
            let template = params.get("launchTemplate").and_then(template_ref);
            let mut out = Vec::new();
            // The resources RunInstances creates, each with the tags of its own specification.
            for kind in ["instance", "volume", "network-interface"] {
                let t = specs.get(kind).cloned().unwrap_or_default();
                let mut r = request("ec2:RunInstances", ec2(kind, "*"), &t, true);
                if kind == "instance"
                    && let Some(lt) = &template
                {
                    r.unknown = Some(Unknown::TemplateTags { template: lt.clone() });
                }
                out.push(r);
            }
            // The existing resources it uses: no request tags apply to them.
            let image = params
                .pointer("/instancesSet/items/0/imageId")
                .or_else(|| params.get("imageId"))
                .and_then(Value::as_str);
            if let Some(image) = image {
                out.push(request("ec2:RunInstances", ec2("image", image), &[], false));
            }
            if let Some(subnet) = params.get("subnetId").and_then(Value::as_str) {
                out.push(request("ec2:RunInstances", ec2("subnet", subnet), &[], false));
            }
            // Tagging on creation is authorized as ec2:CreateTags with ec2:CreateAction.
            for (kind, t) in &specs {
                let mut r = request("ec2:CreateTags", ec2(kind, "*"), t, true);
                r.context.insert("ec2:CreateAction".into(), vec!["RunInstances".into()]);
                out.push(r);
            }
            out
        }
        ("ec2.amazonaws.com", "CreateFleet" | "RequestSpotFleet" | "RequestSpotInstances") => {
            let specs = tag_specifications(params, &p)?;
            let kind = match name.as_str() {
                "CreateFleet" => "fleet",
                "RequestSpotFleet" => "spot-fleet-request",
                _ => "spot-instances-request",
            };
            let t = specs.get(kind).cloned().unwrap_or_default();
            let mut out = vec![request(&format!("ec2:{name}"), ec2(kind, "*"), &t, true)];
            if name == "CreateFleet" {
                // CreateFleet also authorizes the instances of an instant fleet, with the
                // `instance` tag specification (Service Authorization Reference: instance*).
                let t = specs.get("instance").cloned().unwrap_or_default();
                out.push(request("ec2:CreateFleet", ec2("instance", "*"), &t, true));
            }
            for (kind, t) in &specs {
                let mut r = request("ec2:CreateTags", ec2(kind, "*"), t, true);
                r.context.insert("ec2:CreateAction".into(), vec![name.clone()]);
                out.push(r);
            }
            out
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
                    let mut req = request(
                        &format!("ec2:{name}"),
                        ec2(resource_kind(id), id),
                        &t,
                        name == "CreateTags",
                    );
                    if name == "DeleteTags" && t.is_empty() {
                        // No key list: every tag goes, and which ones the resource has is
                        // not in the event.
                        req.context.remove("aws:TagKeys");
                        req.unknown = Some(Unknown::ResourceTags);
                    }
                    Ok(req)
                })
                .collect::<Result<Vec<_>, EventError>>()?
        }
        ("autoscaling.amazonaws.com", "CreateAutoScalingGroup") => {
            let group = string(params, &format!("{p}."), "autoScalingGroupName")?;
            let t = tags(&items(params.get("tags"), &format!("{p}.tags"))?, &format!("{p}.tags"))?;
            let mut out = vec![request(
                "autoscaling:CreateAutoScalingGroup",
                format!(
                    "arn:{partition}:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/{group}"
                ),
                &t,
                true,
            )];
            let template = params.get("launchTemplate").and_then(template_ref).or_else(|| {
                params
                    .pointer("/mixedInstancesPolicy/launchTemplate/launchTemplateSpecification")
                    .and_then(template_ref)
            });
            if let Some(lt) = template {
                // Auto Scaling checks ec2:RunInstances under the caller's identity for a group
                // with a launch template (Amazon EC2 Auto Scaling User Guide, "Control Amazon
                // EC2 launch template usage in Auto Scaling"): the template's instance tags.
                let mut r = request("ec2:RunInstances", ec2("instance", "*"), &[], true);
                r.unknown = Some(Unknown::TemplateTags { template: lt });
                out.push(r);
            }
            out
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
                .map(|(g, t)| {
                    request(
                        &format!("autoscaling:{name}"),
                        format!(
                            "arn:{partition}:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/{g}"
                        ),
                        &t,
                        name == "CreateOrUpdateTags",
                    )
                })
                .collect()
        }
        (
            "rds.amazonaws.com",
            "CreateDBInstance"
            | "CreateDBInstanceReadReplica"
            | "RestoreDBInstanceFromDBSnapshot"
            | "RestoreDBInstanceToPointInTime"
            | "CreateDBCluster"
            | "RestoreDBClusterFromSnapshot"
            | "RestoreDBClusterToPointInTime"
            | "RestoreDBInstanceFromS3"
            | "RestoreDBClusterFromS3",
        ) => {
            // CloudTrail records RDS parameters in lower camel case (`dBInstanceIdentifier`,
            // `tags: [{key, value}]`: Amazon RDS User Guide, "Amazon RDS log file entries").
            // The new resource's identifier: `DBClusterIdentifier` or `DBInstanceIdentifier`,
            // but `TargetDBInstanceIdentifier` for RestoreDBInstanceToPointInTime (Amazon RDS
            // API Reference; botocore rds service-2.json, RestoreDBInstanceToPointInTimeMessage).
            let (field, kind) = if name.contains("Cluster") {
                ("dBClusterIdentifier", "cluster")
            } else if name == "RestoreDBInstanceToPointInTime" {
                ("targetDBInstanceIdentifier", "db")
            } else {
                ("dBInstanceIdentifier", "db")
            };
            let id = string(params, &format!("{p}."), field)?;
            let t = tags(&items(params.get("tags"), &format!("{p}.tags"))?, &format!("{p}.tags"))?;
            let arn = format!("arn:{partition}:rds:{region}:{account}:{kind}:{id}");
            let mut create = request(&format!("rds:{name}"), arn.clone(), &t, true);
            // `rds:DatabaseEngine` (the SCP leaves Neptune's and DocumentDB's engines out), from
            // the request's `Engine`, only where the Service Authorization Reference lists the
            // key: on the `db` resource the instance creates and restores name, and as an
            // action key of CreateDBCluster and RestoreDBClusterFromS3. RestoreDBClusterFromSnapshot
            // and RestoreDBClusterToPointInTime have no such key, though their requests carry
            // an `Engine` (required in service-2.json for the former): AWS denies them untagged
            // whatever the engine, and so does the checker.
            let has_key = !matches!(
                name.as_str(),
                "RestoreDBClusterFromSnapshot" | "RestoreDBClusterToPointInTime" | "CreateDBInstanceReadReplica"
            );
            if has_key && let Some(engine) = params.get("engine").and_then(Value::as_str) {
                create
                    .context
                    .insert("rds:DatabaseEngine".into(), vec![engine.to_string()]);
            }
            let mut out = vec![create];
            // "If tags are specified in the create action, RDS performs additional authorization
            // on the rds:AddTagsToResource action" (Amazon RDS User Guide, "Grant permission to
            // tag Amazon RDS resources during creation").
            if !t.is_empty() {
                out.push(request("rds:AddTagsToResource", arn, &t, true));
            }
            out
        }
        ("rds.amazonaws.com", "AddTagsToResource" | "RemoveTagsFromResource") => {
            let arn = string(params, &format!("{p}."), "resourceName")?.to_string();
            let t = if name == "AddTagsToResource" {
                tags(&items(params.get("tags"), &format!("{p}.tags"))?, &format!("{p}.tags"))?
            } else {
                let keys = items(params.get("tagKeys"), &format!("{p}.tagKeys"))?;
                keys.iter()
                    .map(|k| {
                        k.as_str()
                            .map(|k| (k.to_string(), None))
                            .ok_or_else(|| err(&format!("{p}.tagKeys"), "a key that is not a string"))
                    })
                    .collect::<Result<Vec<_>, EventError>>()?
            };
            vec![request(&format!("rds:{name}"), arn, &t, name == "AddTagsToResource")]
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
        partition,
        source,
        name,
        caller,
        error_code: text_of("errorCode"),
        error_message: text_of("errorMessage"),
        requests,
    })
}

/// The EC2 resource type of an id, by its prefix (EC2 User Guide, "Resource IDs").
fn resource_kind(id: &str) -> &'static str {
    let prefix = id.split('-').next().unwrap_or("");
    match prefix {
        "i" => "instance",
        "vol" => "volume",
        "snap" => "snapshot",
        "ami" => "image",
        "eni" => "network-interface",
        "sg" => "security-group",
        "subnet" => "subnet",
        "vpc" => "vpc",
        "lt" => "launch-template",
        "fleet" => "fleet",
        "sfr" => "spot-fleet-request",
        "sir" => "spot-instances-request",
        _ => "*",
    }
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

    fn resources(e: &Event, action: &str) -> Vec<String> {
        e.requests
            .iter()
            .filter(|r| r.action == action)
            .map(|r| r.resource.clone())
            .collect()
    }

    #[test]
    fn run_instances_is_one_request_per_resource_with_that_resources_tags() {
        let e = parse(RUN).unwrap();
        let run = resources(&e, "ec2:RunInstances");
        for kind in ["instance/*", "volume/*", "network-interface/*"] {
            assert!(
                run.contains(&format!("arn:aws:ec2:ap-northeast-2:111122223333:{kind}")),
                "{kind}: {run:?}"
            );
        }
        let volume = e
            .requests
            .iter()
            .find(|r| r.action == "ec2:RunInstances" && r.resource.ends_with(":volume/*"))
            .unwrap();
        assert_eq!(volume.context["aws:RequestTag/Backup"], vec!["daily"]);
        assert!(!volume.context.contains_key("aws:RequestTag/Schedule"));
        let tagging: Vec<&AuthRequest> = e.requests.iter().filter(|r| r.action == "ec2:CreateTags").collect();
        assert_eq!(tagging.len(), 2, "one CreateTags check per tagged resource type");
        assert!(
            tagging
                .iter()
                .all(|r| r.context["ec2:CreateAction"] == vec!["RunInstances"])
        );
    }

    #[test]
    fn arns_take_the_partition_of_the_region_or_the_caller() {
        let cn = parse(&RUN.replace("ap-northeast-2", "cn-north-1")).unwrap();
        assert_eq!(cn.partition, "aws-cn");
        assert!(cn.requests[0].resource.starts_with("arn:aws-cn:ec2:cn-north-1:"));
        let gov = parse(&RUN.replace("ap-northeast-2", "us-gov-west-1")).unwrap();
        assert_eq!(gov.partition, "aws-us-gov");
        assert!(gov.requests.iter().all(|r| r.resource.starts_with("arn:aws-us-gov:")));
        assert_eq!(
            partition_of("eu-west-1", Some("arn:aws-iso:sts::1:assumed-role/x/y")),
            "aws-iso"
        );
        assert_eq!(partition_of("eu-west-1", None), "aws");
    }

    #[test]
    fn an_error_code_is_kept_and_delete_tags_without_keys_waits_for_the_resources_tags() {
        let refused = RUN.replace(
            r#""recipientAccountId""#,
            r#""errorCode": "Client.UnauthorizedOperation", "recipientAccountId""#,
        );
        assert_eq!(
            parse(&refused).unwrap().error_code.as_deref(),
            Some("Client.UnauthorizedOperation")
        );
        let all = r#"{"userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/a"}, "eventSource": "ec2.amazonaws.com",
            "eventName": "DeleteTags", "awsRegion": "us-east-1", "recipientAccountId": "1",
            "requestParameters": {"resourcesSet": {"items": [{"resourceId": "i-1"}, {"resourceId": "snap-2"}]}}}"#;
        let e = parse(all).unwrap();
        assert_eq!(e.requests[0].resource, "arn:aws:ec2:us-east-1:1:instance/i-1");
        assert_eq!(e.requests[1].resource, "arn:aws:ec2:us-east-1::snapshot/snap-2");
        assert!(e.requests.iter().all(|r| r.unknown == Some(Unknown::ResourceTags)));
        assert!(!e.requests[0].context.contains_key("aws:TagKeys"));
    }

    #[test]
    fn a_group_with_a_launch_template_waits_for_the_templates_tags() {
        let asg = r#"{"userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/a"}, "eventSource": "autoscaling.amazonaws.com",
            "eventName": "CreateAutoScalingGroup", "awsRegion": "us-east-1", "recipientAccountId": "1",
            "requestParameters": {"autoScalingGroupName": "g", "launchTemplate": {"launchTemplateName": "dev", "version": "$Latest"},
              "tags": [{"key": "Schedule", "value": "office-hours"}]}}"#;
        let mut e = parse(asg).unwrap();
        let t = e.templates();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].to_string(), "dev version $Latest");
        let tags = BTreeMap::from([("Schedule".to_string(), "office-hours".to_string())]);
        e.resolve_template(&t[0], &tags);
        assert!(e.templates().is_empty());
        let run = e.requests.iter().find(|r| r.action == "ec2:RunInstances").unwrap();
        assert_eq!(run.context["aws:RequestTag/Schedule"], vec!["office-hours"]);
        assert_eq!(run.context["aws:TagKeys"], vec!["Schedule"]);
    }

    #[test]
    fn fleet_and_spot_requests_read_both_tag_specification_shapes() {
        let fleet = r#"{"userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/a"}, "eventSource": "ec2.amazonaws.com",
            "eventName": "CreateFleet", "awsRegion": "us-east-1", "recipientAccountId": "1",
            "requestParameters": {"CreateFleetRequest": {"Type": "instant",
              "TagSpecification": {"ResourceType": "fleet", "tag": 1, "Tag": [{"Key": "Schedule", "Value": "x", "tag": 1}, {"Key": "T", "Value": "y", "tag": 2}]}}}}"#;
        let e = parse(fleet).unwrap();
        assert_eq!(e.requests[0].resource, "arn:aws:ec2:us-east-1:1:fleet/*");
        assert_eq!(e.requests[0].context["aws:RequestTag/Schedule"], vec!["x"]);
        assert_eq!(e.requests[0].context["aws:TagKeys"], vec!["Schedule", "T"]);
        let spot = fleet
            .replace(r#"CreateFleet""#, r#"RequestSpotInstances""#)
            .replace(
                r#""CreateFleetRequest": {"Type": "instant","#,
                r#""launchSpecification": {}, "x": {"#,
            )
            .replace(r#""fleet""#, r#""spot-instances-request""#);
        let e = parse(&spot).unwrap();
        assert_eq!(
            e.requests[0].resource,
            "arn:aws:ec2:us-east-1:1:spot-instances-request/*"
        );
        assert_eq!(e.requests[0].context["aws:RequestTag/Schedule"], vec!["x"]);
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
