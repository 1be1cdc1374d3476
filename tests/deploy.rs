//! The deployment files agree with the code: the IAM roles grant exactly the API actions
//! offhours calls (every SDK call goes through `classify("Operation", ..)` in src/aws).

use std::collections::BTreeSet;
use std::path::Path;

use serde_yaml::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `service:Operation` for every SDK operation the code calls.
fn called() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("src/aws")).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_stem().unwrap().to_str().unwrap().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        for piece in text.split("classify(\"").skip(1) {
            let op = piece.split('"').next().unwrap();
            let service = match (file.as_str(), op) {
                (_, "GetCallerIdentity") => "sts",
                ("autoscaling", _) => "autoscaling",
                ("ec2", _) => "ec2",
                ("launch_templates", "DescribeAutoScalingGroups") => "autoscaling",
                ("launch_templates", _) => "ec2",
                ("organizations" | "accounts", _) => "organizations",
                ("sqs", _) => "sqs",
                ("rds", _) => "rds",
                (f, op) => panic!("classify(\"{op}\") in src/aws/{f}.rs: which service?"),
            };
            out.insert(format!("{service}:{op}"));
        }
    }
    // aws_config's AssumeRoleProvider calls STS itself, for member accounts.
    out.insert("sts:AssumeRole".into());
    // EC2 calls KMS with the caller's permissions when StartInstances starts an instance whose
    // EBS volumes use a customer managed key (Amazon EBS User Guide, "Required IAM
    // permissions for Amazon EBS encryption").
    out.insert("kms:CreateGrant".into());
    // CreatePolicy with Tags (offhours:managed=true) also needs organizations:TagResource
    // (Organizations API Reference, CreatePolicy: "If the request includes tags, then the
    // requester must have the organizations:TagResource permission").
    out.insert("organizations:TagResource".into());
    out
}

fn actions(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Mapping(m) => {
            for (k, v) in m {
                if k.as_str() == Some("Action") {
                    match v {
                        Value::String(s) => {
                            out.insert(s.clone());
                        }
                        Value::Sequence(s) => out.extend(s.iter().filter_map(|x| x.as_str().map(String::from))),
                        _ => {}
                    }
                } else {
                    actions(v, out);
                }
            }
        }
        Value::Sequence(s) => s.iter().for_each(|x| actions(x, out)),
        Value::Tagged(t) => actions(&t.value, out),
        _ => {}
    }
}

/// The actions a template's role policies grant (not its trust policy).
fn granted(template: &str) -> BTreeSet<String> {
    let v: Value =
        serde_yaml::from_str(&std::fs::read_to_string(root().join("deploy/cloudformation").join(template)).unwrap())
            .unwrap();
    let mut out = BTreeSet::new();
    for (_, res) in v["Resources"].as_mapping().unwrap() {
        actions(&res["Properties"]["Policies"], &mut out);
        if res["Type"].as_str() == Some("AWS::IAM::ManagedPolicy") {
            actions(&res["Properties"]["PolicyDocument"], &mut out);
        }
    }
    out
}

#[test]
fn the_central_role_grants_exactly_what_the_code_calls() {
    assert_eq!(granted("central-role.yaml"), called());
}

/// Every statement of the central template that grants an Organizations write is scoped:
/// CreatePolicy and TagResource to requests tagged offhours:managed=true, the policy changes to
/// policies carrying that tag, attachments and EnablePolicyType to SCPs and tag policies.
#[test]
fn the_organizations_writes_touch_only_policies_offhours_created() {
    let v: Value =
        serde_yaml::from_str(&std::fs::read_to_string(root().join("deploy/cloudformation/central-role.yaml")).unwrap())
            .unwrap();
    let writes = &v["Resources"]["OrganizationWrites"]["Properties"]["PolicyDocument"]["Statement"];
    let mut seen = BTreeSet::new();
    for st in writes.as_sequence().unwrap() {
        let mut acts = BTreeSet::new();
        actions(st, &mut acts);
        let cond = serde_yaml::to_string(&st["Condition"]).unwrap();
        for a in &acts {
            seen.insert(a.clone());
            let scoped = match a.as_str() {
                "organizations:CreatePolicy" | "organizations:TagResource" => {
                    cond.contains("aws:RequestTag/offhours:managed")
                }
                "organizations:UpdatePolicy" => cond.contains("aws:ResourceTag/offhours:managed"),
                "organizations:AttachPolicy" | "organizations:DetachPolicy" => {
                    cond.contains("aws:ResourceTag/offhours:managed") || cond.contains("organizations:PolicyType")
                }
                "organizations:EnablePolicyType" => cond.contains("organizations:PolicyType"),
                other => panic!("unexpected write {other}"),
            };
            assert!(scoped, "{a} is not scoped: {cond}");
        }
        // CreatePolicy has no resource (Service Authorization Reference); everything else names one.
        if !acts.contains("organizations:CreatePolicy") {
            assert_ne!(st["Resource"].as_str(), Some("*"), "{acts:?}");
        }
    }
    assert_eq!(seen.len(), 6, "{seen:?}");
    let read = serde_yaml::to_string(&v["Resources"]["CentralRole"]).unwrap();
    for w in [
        "organizations:UpdatePolicy",
        "organizations:AttachPolicy",
        "organizations:CreatePolicy",
    ] {
        assert!(!read.contains(w), "{w} is granted outside the scoped statements");
    }
}

#[test]
fn the_member_role_grants_exactly_the_ec2_auto_scaling_and_rds_calls() {
    let want: BTreeSet<String> = called()
        .into_iter()
        .filter(|a| {
            ["ec2:", "autoscaling:", "kms:", "rds:"]
                .iter()
                .any(|p| a.starts_with(p))
        })
        .collect();
    assert!(want.len() > 10);
    assert_eq!(granted("member-role.yaml"), want);
}

/// The KMS grant is only for EC2, on behalf of its own resources, in both roles.
#[test]
fn kms_create_grant_is_limited_to_grants_ec2_makes_for_its_resources() {
    for template in ["central-role.yaml", "member-role.yaml"] {
        let v: Value = serde_yaml::from_str(
            &std::fs::read_to_string(root().join("deploy/cloudformation").join(template)).unwrap(),
        )
        .unwrap();
        let mut found = 0;
        for (_, res) in v["Resources"].as_mapping().unwrap() {
            for policy in res["Properties"]["Policies"].as_sequence().into_iter().flatten() {
                for st in policy["PolicyDocument"]["Statement"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                {
                    let mut acts = BTreeSet::new();
                    actions(
                        &Value::Mapping([(Value::from("Action"), st["Action"].clone())].into_iter().collect()),
                        &mut acts,
                    );
                    if acts.iter().any(|a| a.starts_with("kms:")) {
                        found += 1;
                        assert_eq!(acts.into_iter().collect::<Vec<_>>(), ["kms:CreateGrant"], "{template}");
                        // ec2.<region>.amazonaws.com, or .amazonaws.com.cn in China: the partition's suffix.
                        let via = &st["Condition"]["StringLike"]["kms:ViaService"];
                        assert!(via.is_tagged(), "{template}: {via:?}");
                        assert!(
                            format!("{via:?}").contains("ec2.*.${AWS::URLSuffix}"),
                            "{template}: {via:?}"
                        );
                        assert_eq!(
                            st["Condition"]["Bool"]["kms:GrantIsForAWSResource"], "true",
                            "{template}"
                        );
                    }
                }
            }
        }
        assert_eq!(found, 1, "{template}");
    }
}

#[test]
fn the_member_role_trusts_only_the_central_role_with_an_external_id_inside_the_organization() {
    let v: Value =
        serde_yaml::from_str(&std::fs::read_to_string(root().join("deploy/cloudformation/member-role.yaml")).unwrap())
            .unwrap();
    let statements = v["Resources"]["MemberRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        .as_sequence()
        .unwrap();
    assert_eq!(statements.len(), 1, "one trust statement: {statements:?}");
    let trust = &statements[0];
    assert_eq!(trust["Effect"], "Allow");
    assert_eq!(trust["Action"], "sts:AssumeRole");
    // Exactly the central role: `!Ref CentralRoleArn`, nothing else, no wildcard.
    let principal = trust["Principal"].as_mapping().unwrap();
    assert_eq!(principal.len(), 1, "{principal:?}");
    let Value::Tagged(aws) = &trust["Principal"]["AWS"] else {
        panic!("the principal is not !Ref CentralRoleArn: {:?}", trust["Principal"]);
    };
    assert_eq!(
        (aws.tag.to_string(), &aws.value),
        ("!Ref".to_string(), &Value::from("CentralRoleArn"))
    );
    assert_eq!(v["Parameters"]["CentralRoleArn"]["Type"], "String");
    let cond = &trust["Condition"]["StringEquals"];
    let tagged_ref = |x: &Value, name: &str| matches!(x, Value::Tagged(t) if t.value.as_str() == Some(name));
    assert!(tagged_ref(&cond["sts:ExternalId"], "ExternalId"), "{cond:?}");
    assert!(tagged_ref(&cond["aws:PrincipalOrgID"], "OrganizationId"), "{cond:?}");
}

trait Tagged {
    fn is_tagged(&self) -> bool;
}

impl Tagged for Value {
    fn is_tagged(&self) -> bool {
        matches!(self, Value::Tagged(_))
    }
}

#[test]
fn the_kubernetes_and_ecs_files_parse_and_the_statefulset_shards_by_its_replica_count() {
    for entry in std::fs::read_dir(root().join("deploy/kubernetes")).unwrap() {
        let path = entry.unwrap().path();
        let v: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(v["kind"].as_str().is_some(), "{}", path.display());
    }
    let sts: Value = serde_yaml::from_str(
        &std::fs::read_to_string(root().join("deploy/kubernetes/statefulset-sharded.yaml")).unwrap(),
    )
    .unwrap();
    let replicas = sts["spec"]["replicas"].as_u64().unwrap();
    let args: Vec<&str> = sts["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(args.contains(&format!("ordinal/{replicas}").as_str()), "{args:?}");
    let ecs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("deploy/ecs-task-definition.json")).unwrap())
            .unwrap();
    assert_eq!(ecs["containerDefinitions"][0]["command"][0], "run");
}

#[test]
fn a_statefulset_pod_takes_its_shard_from_its_name() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_offhours"))
        .args(["--shard", "ordinal/3", "validate", "--config", "config/offhours.yaml"])
        .current_dir(root())
        .env("HOSTNAME", "offhours-2")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_offhours"))
        .args(["--shard", "ordinal/3", "validate", "--config", "config/offhours.yaml"])
        .current_dir(root())
        .env("HOSTNAME", "offhours-7")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("offhours-7"));
}
