//! The org-level policies end to end: render golden files, and apply / status / drift
//! repair against moto's Organizations with nested OUs and several accounts.

mod support;

use std::path::Path;

use aws_sdk_organizations::Client as Org;
use aws_sdk_organizations::types::{OrganizationFeatureSet, PolicyType};
use support::moto::{Moto, config};

fn json(o: &std::process::Output) -> serde_json::Value {
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}\n{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The shipped config renders exactly the reviewed documents in tests/golden/.
/// After an intended change, regenerate with `OFFHOURS_BLESS=1 cargo test --test policy_moto`.
#[test]
fn render_matches_the_golden_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (kind, file) in [("scp", "scp.json"), ("tag-policy", "tag-policy.json")] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_offhours"))
            .args(["--config", "config/offhours.yaml", "policy", "render", "--kind", kind])
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let golden = dir.join("tests/golden").join(file);
        if std::env::var_os("OFFHOURS_BLESS").is_some() {
            std::fs::write(&golden, &o.stdout).unwrap();
        }
        let want = std::fs::read_to_string(&golden).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            want,
            "{kind} differs from {}",
            golden.display()
        );
    }
}

/// The policies follow the partition: rendered for aws-cn and aws-us-gov, the SCP is the
/// reviewed aws document with only the partition of each ARN changed.
#[test]
fn render_puts_every_arn_in_the_requested_partition() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let golden = std::fs::read_to_string(dir.join("tests/golden/scp.json")).unwrap();
    assert!(golden.contains("arn:aws:"));
    for partition in ["aws-cn", "aws-us-gov"] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_offhours"))
            .args([
                "--config",
                "config/offhours.yaml",
                "policy",
                "render",
                "--kind",
                "scp",
                "--partition",
                partition,
            ])
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            golden.replace("arn:aws:", &format!("arn:{partition}:")),
            "{partition}"
        );
    }
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_offhours"))
        .args([
            "--config",
            "config/offhours.yaml",
            "policy",
            "render",
            "--partition",
            "aws-mars",
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// An organization with an OU `dev` under the root and the named member accounts (in the root).
async fn organization(moto: &Moto, members: &[&str]) -> (Org, String, String, Vec<String>) {
    let org = Org::new(&moto.sdk("us-east-1").await);
    org.create_organization()
        .feature_set(OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    let root = org.list_roots().send().await.unwrap().roots()[0]
        .id()
        .unwrap()
        .to_string();
    let dev = org
        .create_organizational_unit()
        .parent_id(&root)
        .name("dev")
        .send()
        .await
        .unwrap();
    let dev = dev.organizational_unit().unwrap().id().unwrap().to_string();
    let mut ids = Vec::new();
    for name in members {
        let a = org
            .create_account()
            .account_name(*name)
            .email(format!("{name}@example.com"))
            .send()
            .await
            .unwrap();
        ids.push(a.create_account_status().unwrap().account_id().unwrap().to_string());
    }
    (org, root, dev, ids)
}

async fn targets(org: &Org, kind: PolicyType, name: &str) -> Vec<String> {
    let ps = org.list_policies().filter(kind).send().await.unwrap();
    let id = ps
        .policies()
        .iter()
        .find(|p| p.name() == Some(name))
        .unwrap()
        .id()
        .unwrap()
        .to_string();
    let mut t: Vec<String> = org
        .list_targets_for_policy()
        .policy_id(id)
        .send()
        .await
        .unwrap()
        .targets()
        .iter()
        .map(|t| t.target_id().unwrap().to_string())
        .collect();
    t.sort();
    t
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_is_idempotent_and_repairs_drift_across_nested_ous() {
    let moto = Moto::start();
    let (org, root, dev, accounts) = organization(&moto, &["team-a", "team-b"]).await;
    let sandbox = org
        .create_organizational_unit()
        .parent_id(&dev)
        .name("sandbox")
        .send()
        .await
        .unwrap();
    let sandbox = sandbox.organizational_unit().unwrap().id().unwrap().to_string();
    org.move_account()
        .account_id(&accounts[0])
        .source_parent_id(&root)
        .destination_parent_id(&sandbox)
        .send()
        .await
        .unwrap();
    let text = format!(
        "tag_key: Schedule\nschedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\npolicy:\n  targets: ['{dev}', '{}']\n  exempt_principals: ['arn:aws:iam::*:role/platform/BreakGlass']\n",
        accounts[1]
    );
    let (_d, cfg) = config(&text);

    // Dry run: everything planned, nothing written.
    let dry = json(&moto.offhours(&cfg, &["policy", "apply", "--dry-run", "--output", "json"]));
    assert!(dry["drift"].as_bool().unwrap());
    assert!(
        dry["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "planned")
    );
    assert!(
        org.list_policies()
            .filter(PolicyType::TagPolicy)
            .send()
            .await
            .unwrap()
            .policies()
            .is_empty()
    );

    let first = json(&moto.offhours(&cfg, &["policy", "apply", "--output", "json"]));
    assert_eq!(first["partition"], "aws", "from the organization's ARN");
    let kinds: Vec<&str> = first["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["change"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"create-policy") && kinds.contains(&"attach"),
        "{first:#}"
    );
    assert!(
        first["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "applied"),
        "{first:#}"
    );
    let mut want = vec![dev.clone(), accounts[1].clone()];
    want.sort();
    assert_eq!(
        targets(&org, PolicyType::ServiceControlPolicy, "offhours-require-schedule-tag").await,
        want
    );
    assert_eq!(
        targets(&org, PolicyType::TagPolicy, "offhours-schedule-values").await,
        want
    );
    let scp = org
        .list_policies()
        .filter(PolicyType::ServiceControlPolicy)
        .send()
        .await
        .unwrap();
    let ours = scp
        .policies()
        .iter()
        .find(|p| p.name() == Some("offhours-require-schedule-tag"))
        .unwrap();
    assert!(ours.description().unwrap().contains("offhours"));
    assert!(
        ours.description().unwrap().contains("launch template"),
        "the SCP's description tells teams about launch templates"
    );
    let tags = org
        .list_tags_for_resource()
        .resource_id(ours.id().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == "offhours:managed" && t.value() == "true"),
        "offhours tags the policies it creates"
    );

    // A second run makes no writes.
    let second = json(&moto.offhours(&cfg, &["policy", "apply", "--output", "json"]));
    assert_eq!(second["drift"], false, "{second:#}");
    assert!(second["changes"].as_array().unwrap().is_empty());

    // Someone edits the SCP by hand and attaches it to the root.
    let id = ours.id().unwrap();
    org.update_policy()
        .policy_id(id)
        .content(r#"{"Version":"2012-10-17","Statement":[]}"#)
        .send()
        .await
        .unwrap();
    org.attach_policy().policy_id(id).target_id(&root).send().await.unwrap();
    let status = json(&moto.offhours(&cfg, &["policy", "status", "--output", "json"]));
    assert_eq!(status["drift"], true);
    let p = &status["policies"][0];
    assert_eq!(p["content"], "drifted");
    assert_eq!(p["extra_targets"][0], root.as_str());
    assert!(
        status["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "planned")
    );

    let repair = json(&moto.offhours(&cfg, &["policy", "apply", "--output", "json"]));
    let kinds: Vec<&str> = repair["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["change"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["update-policy", "detach"], "{repair:#}");
    let status = json(&moto.offhours(&cfg, &["policy", "status", "--output", "json"]));
    assert_eq!(status["drift"], false, "{status:#}");
}

fn check(cfg: &Path, event: &str, extra: &[&str], moto: Option<&Moto>) -> (i32, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/events").join(event);
    let mut args = vec!["policy", "check", "--event", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = match moto {
        Some(m) => m.offhours(cfg, &args),
        None => std::process::Command::new(env!("CARGO_BIN_EXE_offhours"))
            .arg("--config")
            .arg(cfg)
            .args(&args)
            .output()
            .unwrap(),
    };
    (
        o.status.code().unwrap(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

const CHECK_CONFIG: &str = "tag_key: Schedule\nschedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\n  weekend-off:\n    stopped: [\"Fri 20:00-Mon 08:00\"]\npolicy:\n  exempt_principals: ['arn:aws:iam::*:role/platform/BreakGlass']\n  offhours_principals: ['arn:{partition}:iam::*:role/offhours/offhours-member']\n  enforced_for: ['ec2:instance']\n";

/// A corpus of realistic CloudTrail events, decided offline against the rendered policies.
/// The expectations are AWS's documented behaviour, written by hand per event: exit 0 allow (or
/// refused by AWS already), 3 deny (naming the statement), 4 unknown, 2 malformed.
#[test]
fn check_decides_a_corpus_of_cloudtrail_events() {
    let (_d, cfg) = config(CHECK_CONFIG);
    let cases: &[(&str, i32, &str)] = &[
        ("run-tagged.json", 0, "allow"),
        ("run-untagged.json", 3, "DenyRunInstancesWithoutScheduleTag"),
        ("eventbridge-run-untagged.json", 3, "DenyRunInstancesWithoutScheduleTag"),
        ("run-wrong-case-key.json", 3, "must be written `Schedule`"),
        ("run-value-not-allowed.json", 3, "DenyUnknownScheduleValue"),
        // Exempt: the role under the reserved path. Not exempt: a role of the same bare name
        // that any account admin can create.
        ("run-untagged-breakglass-path.json", 0, "allow"),
        ("run-untagged-breakglass.json", 3, "DenyRunInstancesWithoutScheduleTag"),
        ("run-untagged-service-linked.json", 0, "service-linked"),
        // Done when: a tagged RunInstances that also creates (and tags) volumes and network
        // interfaces, with a Schedule value on the volume that no schedule has, is allowed.
        ("run-tagged-with-volumes-and-interfaces.json", 0, "allow"),
        // Done when: tagging a snapshot Schedule=anything is allowed.
        ("snapshot-tag-anything.json", 0, "allow"),
        // A group with a launch template: AWS checks RunInstances with the template's tags,
        // which offline cannot be read.
        ("asg-tagged.json", 4, "launch template"),
        ("asg-untagged.json", 3, "DenyCreateAutoScalingGroupWithoutScheduleTag"),
        ("run-from-template.json", 4, "launch template lt-0123456789abcdef0"),
        ("ec2-delete-schedule-tag.json", 3, "DenyScheduleTagRemoval"),
        ("ec2-delete-other-tag.json", 0, "allow"),
        // Done when: DeleteTags with no key list on a tagged instance is denied.
        ("ec2-delete-all-tags.json", 3, "DenyDeleteAllTagsOnScheduledInstances"),
        ("asg-tag-bad-value.json", 3, "DenyUnknownScheduleValue"),
        // Databases: the SCP makes the tag mandatory on RDS creates (new, restore) and keeps
        // its value to the configured names; removing it is denied.
        ("rds-create-untagged.json", 3, "DenyDatabaseCreationWithoutScheduleTag"),
        ("rds-create-tagged.json", 0, "allow"),
        ("rds-cluster-untagged.json", 3, "DenyDatabaseCreationWithoutScheduleTag"),
        ("rds-cluster-bad-value.json", 3, "DenyUnknownScheduleValue"),
        ("rds-remove-schedule-tag.json", 3, "DenyScheduleTagRemoval"),
        ("rds-restore-untagged.json", 3, "DenyDatabaseCreationWithoutScheduleTag"),
        (
            "rds-restore-point-in-time-untagged.json",
            3,
            "DenyDatabaseCreationWithoutScheduleTag",
        ),
        (
            "rds-restore-s3-untagged.json",
            3,
            "DenyDatabaseCreationWithoutScheduleTag",
        ),
        // Neptune and DocumentDB share RDS's create actions; offhours does not schedule them,
        // so their engines are left out of the create deny.
        ("neptune-cluster-untagged.json", 0, "allow"),
        // ... but a cluster restore has no rds:DatabaseEngine key (Service Authorization
        // Reference): AWS denies it untagged whatever the engine, and so does the checker.
        (
            "neptune-restore-untagged.json",
            3,
            "DenyDatabaseCreationWithoutScheduleTag",
        ),
        // Done when: an untagged CreateFleet is denied; Spot requests likewise.
        ("fleet-untagged.json", 3, "DenyFleetAndSpotRequestsWithoutScheduleTag"),
        ("fleet-tagged.json", 0, "allow"),
        (
            "spot-instances-untagged.json",
            3,
            "DenyFleetAndSpotRequestsWithoutScheduleTag",
        ),
        (
            "spot-fleet-untagged.json",
            3,
            "DenyFleetAndSpotRequestsWithoutScheduleTag",
        ),
        ("spot-fleet-tagged.json", 0, "allow"),
        // Done when: writing offhours:saved-capacity from a team's role is denied; offhours'
        // own member role may.
        ("asg-write-offhours-state.json", 3, "DenyOffhoursStateTagWrites"),
        ("run-offhours-state-at-launch.json", 3, "DenyOffhoursStateTagWrites"),
        ("ec2-write-offhours-state-by-offhours.json", 0, "allow"),
        (
            "run-untagged-refused.json",
            0,
            "AWS refused the call (Client.UnauthorizedOperation",
        ),
        ("run-untagged-aws-cn.json", 3, "DenyRunInstancesWithoutScheduleTag"),
        ("run-untagged-aws-us-gov.json", 3, "DenyRunInstancesWithoutScheduleTag"),
        ("run-tagged-aws-us-gov.json", 0, "allow"),
        (
            "unsupported-terminate.json",
            2,
            "unsupported event ec2.amazonaws.com TerminateInstances",
        ),
        ("malformed.json", 2, "not JSON"),
    ];
    for (event, code, says) in cases {
        let (got, out) = check(&cfg, event, &["--offline"], None);
        assert_eq!(got, *code, "{event}: {out}");
        assert!(out.contains(says), "{event}: expected `{says}` in {out}");
    }
    let (_, json_out) = check(&cfg, "run-untagged.json", &["--offline", "--output", "json"], None);
    let v: serde_json::Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["statement"], "DenyRunInstancesWithoutScheduleTag");
    assert_eq!(v["principal_arn"], "arn:aws:iam::111122223333:role/Developer");
    assert_eq!(v["tag_policy_source"], "rendered");
    let (_, json_out) = check(
        &cfg,
        "ec2-delete-all-tags.json",
        &["--offline", "--output", "json"],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&json_out).unwrap();
    assert!(
        v["reason"].as_str().unwrap().contains("CloudTrail does not record"),
        "the assumption is said: {v}"
    );
}

/// Every event of the corpus is in the corpus of the shipped EventBridge rule (and the template
/// agrees with the JSON pattern), so intake sees every event the checker decides.
#[test]
fn the_shipped_eventbridge_pattern_matches_every_supported_event_of_the_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pattern: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("deploy/eventbridge-rule.json")).unwrap()).unwrap();
    let names: Vec<&str> = pattern["detail"]["eventName"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir.join("tests/events")).unwrap() {
        let path = entry.unwrap().path();
        let Ok(e) = serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&path).unwrap()) else {
            continue;
        };
        let e = e.get("detail").cloned().unwrap_or(e);
        let name = e["eventName"].as_str().unwrap().to_string();
        if name == "TerminateInstances" {
            continue;
        }
        assert!(names.contains(&name.as_str()), "{}: {name}", path.display());
        seen.insert(name);
    }
    for n in ["CreateFleet", "RequestSpotFleet", "RequestSpotInstances"] {
        assert!(seen.contains(n), "the corpus has a {n} event");
    }
    let template = std::fs::read_to_string(dir.join("deploy/eventbridge.yaml")).unwrap();
    for n in &names {
        assert!(
            template.contains(n),
            "deploy/eventbridge.yaml and deploy/eventbridge-rule.json agree on {n}"
        );
    }
}

/// With the organization: policies attached along account -> OUs -> root decide, and the
/// management account is not restricted by SCPs.
#[tokio::test(flavor = "multi_thread")]
async fn check_reads_the_policies_attached_along_the_accounts_path() {
    let moto = Moto::start();
    let (org, root, dev, ids) = organization(&moto, &["inside", "outside"]).await;
    org.move_account()
        .account_id(&ids[0])
        .source_parent_id(&root)
        .destination_parent_id(&dev)
        .send()
        .await
        .unwrap();
    let (_d, cfg) = config(&format!("{CHECK_CONFIG}  targets: ['{dev}']\n"));
    json(&moto.offhours(&cfg, &["policy", "apply", "--output", "json"]));

    let dir = tempfile::tempdir().unwrap();
    let event_in = |account: &str| {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/events/run-untagged.json"))
                .unwrap();
        let p = dir.path().join(format!("{account}.json"));
        std::fs::write(&p, text.replace("111122223333", account)).unwrap();
        p
    };
    let run = |account: &str| {
        let p = event_in(account);
        let o = moto.offhours(&cfg, &["policy", "check", "--event", p.to_str().unwrap()]);
        (
            o.status.code().unwrap(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let (code, out) = run(&ids[0]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("DenyRunInstancesWithoutScheduleTag"), "{out}");
    let (code, out) = run(&ids[1]);
    assert_eq!(code, 0, "not under the targeted OU: {out}");
    let (code, out) = run(support::moto::MANAGEMENT);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("management account"), "{out}");
}

/// CloudTrail events delivered by EventBridge to SQS: violations are seen at once (a group's
/// launch template read in its account), events AWS refused are not violations, and messages
/// that are not supported events are deleted rather than blocking the queue.
#[tokio::test(flavor = "multi_thread")]
async fn the_event_queue_reports_violations_and_drops_malformed_messages() {
    let moto = Moto::start();
    let (_org, root, _dev, members) = organization(&moto, &["dev"]).await;
    let member = members[0].clone();
    let sdk = moto.sdk("us-east-1").await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let url = sqs
        .create_queue()
        .queue_name("offhours-events")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let (_d, cfg) = config(&format!(
        "{CHECK_CONFIG}  targets: ['{root}']\n  event_queue_url: '{url}'\naccounts:\n  mode: organization\nregions: [ap-northeast-2]\n"
    ));
    json(&moto.offhours(&cfg, &["policy", "apply", "--output", "json"]));
    // The group events name launch template `dev`: tagged in the member account; a second
    // event names one that does not exist (so it has no tags).
    template(&moto, &member, "ap-northeast-2", "dev", &[("Schedule", "weekend-off")]).await;

    let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/events");
    let body = |f: &str| {
        std::fs::read_to_string(events.join(f))
            .unwrap()
            .replace("111122223333", &member)
    };
    for b in [
        body("eventbridge-run-untagged.json"),
        body("run-untagged-refused.json"),
        body("asg-tagged.json"),
        body("asg-tagged.json").replace(r#""launchTemplateName": "dev""#, r#""launchTemplateName": "gone""#),
        body("run-tagged.json"),
        "{not an event".to_string(),
        body("unsupported-terminate.json"),
    ] {
        sqs.send_message().queue_url(&url).message_body(b).send().await.unwrap();
    }
    let r = json(&moto.offhours(&cfg, &["policy", "intake", "--output", "json"]));
    assert_eq!(r["received"], 7, "{r:#}");
    assert_eq!(r["refused"], 1, "an event AWS refused is no violation: {r:#}");
    assert!(r["unknown"].as_array().unwrap().is_empty(), "templates are read: {r:#}");
    let violations = r["violations"].as_array().unwrap();
    assert_eq!(violations.len(), 2, "{r:#}");
    assert!(
        violations
            .iter()
            .all(|v| v["statement"] == "DenyRunInstancesWithoutScheduleTag"),
        "{r:#}"
    );
    assert!(
        violations.iter().any(|v| v["event"] == "CreateAutoScalingGroup"),
        "{r:#}"
    );
    assert_eq!(violations[0]["account"], member.as_str());
    assert_eq!(r["allowed"], 2, "{r:#}");
    assert_eq!(r["rejected"].as_array().unwrap().len(), 2);
    let left = sqs
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    assert!(left.messages().is_empty(), "every handled message is deleted");
}

/// In organization mode the pass itself keeps the policies applied and reports repairs.
#[tokio::test(flavor = "multi_thread")]
async fn reconcile_repairs_policy_drift_in_organization_mode() {
    let moto = Moto::start();
    let (_org, root, _dev, _) = organization(&moto, &[]).await;
    let text = format!("{CHECK_CONFIG}  targets: ['{root}']\naccounts:\n  mode: organization\nregions: [us-east-1]\n");
    let (_d, cfg) = config(&text);
    let first = moto.pass(&cfg, "reconcile", "2026-11-25T12:00:00Z");
    let applied: Vec<&str> = first["policy"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert!(
        !applied.is_empty() && applied.iter().all(|s| *s == "applied"),
        "{:#}",
        first["policy"]
    );
    let again = moto.pass(&cfg, "reconcile", "2026-11-25T12:05:00Z");
    assert_eq!(again["policy"]["drift"], false);
    assert!(
        support::moto::mutating_calls(&again).is_empty(),
        "{:?}",
        again["api_calls"]
    );
    // Drift off: the pass leaves the policies alone.
    let (_d2, off) = config(&text.replace("policy:\n", "policy:\n  repair_drift: false\n"));
    assert!(
        moto.pass(&off, "reconcile", "2026-11-25T12:10:00Z")
            .get("policy")
            .is_none()
    );
}

/// A launch template in `account`/`region` whose instance tag specifications carry `tags`.
async fn template(moto: &Moto, account: &str, region: &str, name: &str, tags: &[(&str, &str)]) {
    use aws_sdk_ec2::types::{LaunchTemplateTagSpecificationRequest, RequestLaunchTemplateData, ResourceType, Tag};
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk_in(account, region).await);
    let mut spec = LaunchTemplateTagSpecificationRequest::builder().resource_type(ResourceType::Instance);
    for (k, v) in tags {
        spec = spec.tags(Tag::builder().key(*k).value(*v).build());
    }
    ec2.create_launch_template()
        .launch_template_name(name)
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id("ami-12c6146b")
                .tag_specifications(spec.build())
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// Online, `policy check` reads what CloudTrail does not record: the group's launch template
/// (AWS checks RunInstances with its instance tags), and the account's effective tag policy,
/// computed from the attachments when DescribeEffectivePolicy does not answer (moto: HTTP 500),
/// merging a team's tag policy with offhours'.
#[tokio::test(flavor = "multi_thread")]
async fn check_online_reads_launch_templates_and_merges_other_tag_policies() {
    let moto = Moto::start();
    let (org, root, dev, ids) = organization(&moto, &["team"]).await;
    let member = ids[0].clone();
    org.move_account()
        .account_id(&member)
        .source_parent_id(&root)
        .destination_parent_id(&dev)
        .send()
        .await
        .unwrap();
    let (_d, cfg) = config(&format!(
        "{CHECK_CONFIG}  targets: ['{dev}']\naccounts:\n  mode: organization\nregions: [ap-northeast-2]\n"
    ));
    json(&moto.offhours(&cfg, &["policy", "apply", "--output", "json"]));
    // A team's own tag policy at the root, on another key: it merges with offhours'.
    org.enable_policy_type()
        .root_id(&root)
        .policy_type(PolicyType::TagPolicy)
        .send()
        .await
        .ok();
    let team = org
        .create_policy()
        .name("team-tags")
        .description("a team's")
        .r#type(PolicyType::TagPolicy)
        .content(r#"{"tags":{"team":{"tag_key":{"@@assign":"Team"},"tag_value":{"@@assign":["payments"]},"enforced_for":{"@@assign":["ec2:instance"]}}}}"#)
        .send()
        .await
        .unwrap();
    org.attach_policy()
        .policy_id(team.policy().unwrap().policy_summary().unwrap().id().unwrap())
        .target_id(&root)
        .send()
        .await
        .unwrap();
    template(&moto, &member, "ap-northeast-2", "dev", &[("Schedule", "weekend-off")]).await;
    template(
        &moto,
        &member,
        "ap-northeast-2",
        "dev-untagged",
        &[("Team", "payments")],
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let run = |file: &str, edit: &dyn Fn(String) -> String| {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/events").join(file)).unwrap();
        let p = dir.path().join(file);
        std::fs::write(&p, edit(text.replace("111122223333", &member))).unwrap();
        let started = std::time::Instant::now();
        let o = moto.offhours(
            &cfg,
            &["policy", "check", "--event", p.to_str().unwrap(), "--output", "json"],
        );
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{}", String::from_utf8_lossy(&o.stderr)));
        (o.status.code().unwrap(), v, started.elapsed())
    };
    let same = |t: String| t;
    // Done when: a CreateAutoScalingGroup whose launch template carries the tag is allowed...
    let (code, v, took) = run("asg-tagged.json", &same);
    assert_eq!((code, v["decision"].as_str()), (0, Some("allow")), "{v:#}");
    assert_eq!(v["tag_policy_source"], "computed-from-attachments", "{v:#}");
    assert!(
        took < std::time::Duration::from_secs(20),
        "the fallback from DescribeEffectivePolicy is quick: {took:?}"
    );
    // ... and one whose template lacks it is denied by the RunInstances statement.
    let (code, v, _) = run("asg-tagged.json", &|t| {
        t.replace(
            r#""launchTemplateName": "dev""#,
            r#""launchTemplateName": "dev-untagged""#,
        )
    });
    assert_eq!(
        (code, v["statement"].as_str()),
        (3, Some("DenyRunInstancesWithoutScheduleTag")),
        "{v:#}"
    );
    // The team's tag policy decides its own key; offhours' still decides Schedule.
    let (code, v, _) = run("run-tagged.json", &same);
    assert_eq!(code, 0, "{v:#}");
    let (code, v, _) = run("run-tagged.json", &|t| {
        t.replace(r#""value": "payments""#, r#""value": "marketing""#)
    });
    assert_eq!(code, 3, "{v:#}");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("`marketing` is not an allowed value of `Team`"),
        "{v:#}"
    );
    // The Done-when cases, online against the attached SCP.
    for (file, code, statement) in [
        ("run-tagged-with-volumes-and-interfaces.json", 0, None),
        ("snapshot-tag-anything.json", 0, None),
        ("run-untagged.json", 3, Some("DenyRunInstancesWithoutScheduleTag")),
        (
            "ec2-delete-all-tags.json",
            3,
            Some("DenyDeleteAllTagsOnScheduledInstances"),
        ),
        (
            "fleet-untagged.json",
            3,
            Some("DenyFleetAndSpotRequestsWithoutScheduleTag"),
        ),
        ("asg-write-offhours-state.json", 3, Some("DenyOffhoursStateTagWrites")),
        ("run-untagged-refused.json", 0, None),
    ] {
        let (got, v, _) = run(file, &same);
        assert_eq!(got, code, "{file}: {v:#}");
        assert_eq!(v["statement"].as_str(), statement, "{file}: {v:#}");
    }
}

/// Renaming a schedule that groups still carry never removes its value from the attached tag
/// policy: it is kept as retired and reported with the groups, until no group carries it.
/// Before anything is attached, the dry run also names the groups whose launch templates the
/// SCP would block.
#[tokio::test(flavor = "multi_thread")]
async fn a_renamed_schedule_in_use_stays_in_the_tag_policy_until_no_resource_carries_it() {
    let moto = Moto::start();
    let (org, root, _dev, ids) = organization(&moto, &["team"]).await;
    let member = ids[0].clone();
    let text = |names: &[&str]| {
        let schedules: String = names
            .iter()
            .map(|n| format!("  {n}:\n    running: [\"Mon-Fri 08:00-20:00\"]\n"))
            .collect();
        format!(
            "schedules:\n{schedules}policy:\n  targets: ['{root}']\naccounts:\n  mode: organization\nregions: [us-east-1]\n"
        )
    };
    let (_d1, before) = config(&text(&["office-hours", "night-shift"]));
    let sdk = moto.sdk_in(&member, "us-east-1").await;
    support::moto::group(&sdk, "web", (1, 2, 1), &[("Schedule", "night-shift")]).await;
    template(&moto, &member, "us-east-1", "tagged", &[("Schedule", "office-hours")]).await;
    aws_sdk_autoscaling::Client::new(&sdk)
        .create_auto_scaling_group()
        .auto_scaling_group_name("api")
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_name("tagged")
                .build(),
        )
        .min_size(0)
        .max_size(1)
        .availability_zones("us-east-1a")
        .send()
        .await
        .unwrap();

    // Pre-flight: `web` launches from a template without the tag; `api` from one with it.
    let dry = json(&moto.offhours(&before, &["policy", "apply", "--dry-run", "--output", "json"]));
    let blocked: Vec<&str> = dry["preflight"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["group"].as_str().unwrap())
        .collect();
    assert_eq!(blocked, ["web"], "{:#}", dry["preflight"]);
    assert!(
        dry["preflight"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("DenyRunInstancesWithoutScheduleTag")
    );
    let scan = json(&moto.offhours(&before, &["policy", "scan", "--output", "json"]));
    assert_eq!(scan["preflight"][0]["group"], "web", "{scan:#}");
    assert_eq!(scan["preflight"].as_array().unwrap().len(), 1, "{scan:#}");
    json(&moto.offhours(&before, &["policy", "apply", "--output", "json"]));

    let values = || async {
        let ps = org.list_policies().filter(PolicyType::TagPolicy).send().await.unwrap();
        let id = ps.policies()[0].id().unwrap().to_string();
        let doc = org.describe_policy().policy_id(id).send().await.unwrap();
        let v: serde_json::Value = serde_json::from_str(doc.policy().unwrap().content().unwrap()).unwrap();
        v["tags"]["schedule"]["tag_value"]["@@assign"].clone()
    };
    assert_eq!(
        values().await,
        serde_json::json!(["always-on", "night-shift", "office-hours"])
    );

    // night-shift is renamed late-shift while `web` still carries it.
    let (_d2, after) = config(&text(&["office-hours", "late-shift"]));
    let r = json(&moto.offhours(&after, &["policy", "apply", "--output", "json"]));
    assert_eq!(r["retired"][0]["value"], "night-shift", "{r:#}");
    assert_eq!(
        r["retired"][0]["resources"],
        serde_json::json!([format!("{member}/us-east-1/auto-scaling-group/web")])
    );
    assert_eq!(
        values().await,
        serde_json::json!(["always-on", "late-shift", "night-shift", "office-hours"]),
        "the value in use is still allowed"
    );
    let text_out = moto.offhours(&after, &["policy", "status"]);
    assert!(
        String::from_utf8_lossy(&text_out.stdout).contains("retired value `night-shift`"),
        "{}",
        String::from_utf8_lossy(&text_out.stdout)
    );

    // Once the group is retagged, the value goes.
    aws_sdk_autoscaling::Client::new(&sdk)
        .create_or_update_tags()
        .tags(
            aws_sdk_autoscaling::types::Tag::builder()
                .resource_id("web")
                .resource_type("auto-scaling-group")
                .key("Schedule")
                .value("late-shift")
                .propagate_at_launch(false)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let r = json(&moto.offhours(&after, &["policy", "apply", "--output", "json"]));
    assert!(r["retired"].as_array().unwrap().is_empty(), "{r:#}");
    assert_eq!(
        values().await,
        serde_json::json!(["always-on", "late-shift", "office-hours"])
    );
}

/// A policy of offhours' name that offhours did not create (no offhours:managed tag) is left
/// alone and the apply says so (exit 1); with no target, no policy type is enabled.
#[tokio::test(flavor = "multi_thread")]
async fn apply_leaves_policies_it_did_not_create_alone_and_enables_no_type_without_a_target() {
    let moto = Moto::start();
    let (org, root, _dev, _) = organization(&moto, &[]).await;
    let (_d, no_target) = config("schedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\n");
    let r = json(&moto.offhours(&no_target, &["policy", "apply", "--dry-run", "--output", "json"]));
    let kinds: Vec<&str> = r["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["change"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"create-policy"), "{r:#}");
    assert!(!kinds.contains(&"enable-policy-type"), "{r:#}");

    let foreign =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:DeleteBucket","Resource":"*"}]}"#;
    org.create_policy()
        .name("offhours-require-schedule-tag")
        .description("someone else's")
        .r#type(PolicyType::ServiceControlPolicy)
        .content(foreign)
        .send()
        .await
        .unwrap();
    let (_d2, cfg) = config(&format!(
        "schedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\npolicy:\n  targets: ['{root}']\n"
    ));
    let o = moto.offhours(&cfg, &["policy", "apply", "--output", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let refused = r["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["change"] == "not-managed")
        .unwrap_or_else(|| panic!("{r:#}"));
    assert_eq!(refused["status"], "refused");
    assert!(refused["error"].as_str().unwrap().contains("offhours:managed"));
    assert_eq!(r["policies"][0]["content"], "not-managed");
    let ps = org
        .list_policies()
        .filter(PolicyType::ServiceControlPolicy)
        .send()
        .await
        .unwrap();
    let theirs = ps
        .policies()
        .iter()
        .find(|p| p.name() == Some("offhours-require-schedule-tag"))
        .unwrap();
    let doc = org
        .describe_policy()
        .policy_id(theirs.id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(doc.policy().unwrap().content(), Some(foreign), "left as it was");
    let targets = org
        .list_targets_for_policy()
        .policy_id(theirs.id().unwrap())
        .send()
        .await
        .unwrap();
    assert!(targets.targets().is_empty(), "and not attached");
}

/// `policy.role_arn`: the Organizations writes run under their own role (assumed through STS).
/// The oracle is which account's credentials reach Organizations: a role in the management
/// account applies the policies; the same role name in a member account (moto, like AWS,
/// answers Organizations writes from a member account with an error) does not, so the writes
/// did go through the assumed role and not the caller's own credentials.
#[tokio::test(flavor = "multi_thread")]
async fn apply_runs_under_the_configured_policy_role() {
    let moto = Moto::start();
    let (_org, root, _dev, ids) = organization(&moto, &["team"]).await;
    let cfg_for = |account: &str| {
        config(&format!(
            "schedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\npolicy:\n  targets: ['{root}']\n  role_arn: arn:aws:iam::{account}:role/offhours/offhours-policy\n"
        ))
    };
    let (_d1, elsewhere) = cfg_for(&ids[0]);
    let o = moto.offhours(&elsewhere, &["policy", "apply", "--output", "json"]);
    assert!(
        !o.status.success(),
        "a role in a member account cannot write the organization's policies: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let (_d2, management) = cfg_for(support::moto::MANAGEMENT);
    let r = json(&moto.offhours(&management, &["policy", "apply", "--output", "json"]));
    assert!(
        !r["changes"].as_array().unwrap().is_empty()
            && r["changes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["status"] == "applied"),
        "{r:#}"
    );
    // Status reads with the caller's own credentials, never assuming the writer role.
    let s = json(&moto.offhours(&elsewhere, &["policy", "status", "--output", "json"]));
    assert_eq!(s["drift"], false, "{s:#}");
}
