//! The detective scan and every `on_untagged` remediation, across accounts, against moto.

mod support;

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{InstanceStateName, ResourceType, Tag, TagSpecification};
use aws_sdk_organizations::types::OrganizationFeatureSet;
use chrono::{Duration, Utc};
use support::moto::{MANAGEMENT, Moto, config};

struct Seeded {
    account: String,
    untagged_instance: String,
    tagged_instance: String,
}

async fn seed(moto: &Moto, account: &str) -> Seeded {
    let sdk = moto.sdk_in(account, "us-east-1").await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let launch = |tags: Vec<Tag>| {
        let ec2 = ec2.clone();
        async move {
            let mut req = ec2
                .run_instances()
                .image_id("ami-12c6146b")
                .instance_type("t3.micro".into())
                .min_count(1)
                .max_count(1);
            if !tags.is_empty() {
                req = req.tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::Instance)
                        .set_tags(Some(tags))
                        .build(),
                );
            }
            req.send().await.unwrap().instances()[0]
                .instance_id()
                .unwrap()
                .to_string()
        }
    };
    let untagged_instance = launch(vec![Tag::builder().key("Team").value("payments").build()]).await;
    let tagged_instance = launch(vec![Tag::builder().key("Schedule").value("office-hours").build()]).await;
    support::moto::group(&sdk, "untagged-group", (1, 2, 1), &[("Team", "payments")]).await;
    Seeded {
        account: account.to_string(),
        untagged_instance,
        tagged_instance,
    }
}

async fn instance(moto: &Moto, account: &str, id: &str) -> (InstanceStateName, BTreeMap<String, String>) {
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk_in(account, "us-east-1").await);
    support::world::instance_state(&ec2, id).await
}

async fn group(moto: &Moto, account: &str) -> (i32, BTreeMap<String, String>) {
    let asg = aws_sdk_autoscaling::Client::new(&moto.sdk_in(account, "us-east-1").await);
    let out = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names("untagged-group")
        .send()
        .await
        .unwrap();
    let g = &out.auto_scaling_groups()[0];
    (
        g.desired_capacity().unwrap(),
        g.tags()
            .iter()
            .map(|t| (t.key().unwrap().to_string(), t.value().unwrap_or_default().to_string()))
            .collect(),
    )
}

async fn organization(moto: &Moto) -> Vec<Seeded> {
    let org = aws_sdk_organizations::Client::new(&moto.sdk("us-east-1").await);
    org.create_organization()
        .feature_set(OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    let member = org
        .create_account()
        .account_name("dev")
        .email("dev@example.com")
        .send()
        .await
        .unwrap();
    let member = member
        .create_account_status()
        .unwrap()
        .account_id()
        .unwrap()
        .to_string();
    vec![seed(moto, MANAGEMENT).await, seed(moto, &member).await]
}

fn cfg_text(on_untagged: &str) -> String {
    format!(
        "schedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\naccounts:\n  mode: organization\nregions: [us-east-1]\npolicy:\n  on_untagged: '{on_untagged}'\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn scan_reports_untagged_resources_in_every_account_including_the_management_account() {
    let moto = Moto::start();
    let seeded = organization(&moto).await;
    let (_d, cfg) = config(&cfg_text("report"));
    let o = moto.offhours(&cfg, &["policy", "scan", "--output", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let found: Vec<(String, String)> = v["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["account"].as_str().unwrap().to_string(),
                x["resource_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for s in &seeded {
        assert!(
            found.contains(&(s.account.clone(), s.untagged_instance.clone())),
            "{found:?}"
        );
        assert!(
            found.contains(&(s.account.clone(), "untagged-group".into())),
            "{found:?}"
        );
        assert!(!found.iter().any(|(_, id)| *id == s.tagged_instance));
    }
    assert!(
        v["remediations"].as_array().unwrap().is_empty(),
        "report mode remediates nothing"
    );
    // A reconcile in report mode writes nothing to the untagged resources either.
    moto.pass(&cfg, "reconcile", &Utc::now().to_rfc3339());
    let (state, tags) = instance(&moto, &seeded[1].account, &seeded[1].untagged_instance).await;
    assert_eq!(state, InstanceStateName::Running);
    assert!(!tags.contains_key("offhours:remediated"));
}

#[tokio::test(flavor = "multi_thread")]
async fn tag_mode_applies_the_default_schedule_and_records_it() {
    let moto = Moto::start();
    let seeded = organization(&moto).await;
    let (_d, cfg) = config(&cfg_text("tag:office-hours"));
    // Inside the grace period, tagging waits too.
    moto.pass(&cfg, "reconcile", &Utc::now().to_rfc3339());
    let (_, tags) = instance(&moto, &seeded[1].account, &seeded[1].untagged_instance).await;
    assert!(!tags.contains_key("Schedule"), "{tags:?}");
    let later = (Utc::now() + Duration::hours(1)).to_rfc3339();
    let r = moto.pass(&cfg, "reconcile", &later);
    assert_eq!(r["summary"]["failed"], 0, "{r:#}");
    // The management account is not remediated unless configured; the member account is.
    let (_, tags) = instance(&moto, MANAGEMENT, &seeded[0].untagged_instance).await;
    assert!(!tags.contains_key("Schedule"));
    let v = r["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["resource_id"] == seeded[0].untagged_instance.as_str())
        .unwrap();
    assert!(
        v["not_remediated"].as_str().unwrap().contains("management account"),
        "{v}"
    );
    let s = &seeded[1];
    let (_, tags) = instance(&moto, &s.account, &s.untagged_instance).await;
    assert_eq!(tags["Schedule"], "office-hours");
    assert!(tags["offhours:remediated"].starts_with("tagged office-hours at"));
    let (_, gtags) = group(&moto, &s.account).await;
    assert_eq!(gtags["Schedule"], "office-hours");
    // From then on they are scheduled like any other: no violations remain there.
    let r = moto.pass(&cfg, "plan", &later);
    assert!(
        r["violations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["account"] == MANAGEMENT),
        "{:#}",
        r["violations"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_mode_stops_after_the_grace_period_keeps_the_size_and_is_reversible() {
    let moto = Moto::start();
    let seeded = organization(&moto).await;
    let (_d, cfg) = config(&format!("{}  remediate_management_account: true\n", cfg_text("stop")));
    // Inside the grace period: nothing stopped yet.
    moto.pass(&cfg, "reconcile", &Utc::now().to_rfc3339());
    assert_eq!(
        instance(&moto, &seeded[0].account, &seeded[0].untagged_instance)
            .await
            .0,
        InstanceStateName::Running
    );
    let later = (Utc::now() + Duration::hours(1)).to_rfc3339();
    let r = moto.pass(&cfg, "reconcile", &later);
    assert_eq!(r["summary"]["failed"], 0, "{r:#}");
    for s in &seeded {
        let (state, tags) = instance(&moto, &s.account, &s.untagged_instance).await;
        assert_eq!(state, InstanceStateName::Stopped, "{}", s.account);
        assert!(tags["offhours:remediated"].starts_with("stopped at"));
        assert_eq!(
            instance(&moto, &s.account, &s.tagged_instance).await.0,
            InstanceStateName::Running,
            "tagged ones untouched"
        );
        let (desired, gtags) = group(&moto, &s.account).await;
        assert_eq!(desired, 0);
        assert_eq!(
            support::moto::sealed_size(gtags.get("offhours:saved-capacity")),
            Some("min=1 max=2 desired=1"),
            "the size is kept to reverse it"
        );
    }
    // The next pass does not restore the remediated group, nor stop anything again.
    let r = moto.pass(&cfg, "reconcile", &later);
    assert!(support::moto::mutating_calls(&r).is_empty(), "{:?}", r["api_calls"]);
    assert_eq!(group(&moto, &seeded[0].account).await.0, 0);
}
