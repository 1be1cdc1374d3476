//! `offhours override`: the binary against a moto server writes and removes the override
//! tag on an instance and on a group, the daemon's pass honours it, it reaches a member
//! account through the role chain, and resources that have not opted in are refused.

mod support;

use std::collections::BTreeMap;

use aws_sdk_ec2::Client as Ec2;
use aws_sdk_ec2::types::InstanceStateName;
use support::moto::{MANAGEMENT, Moto, config};

const CONFIG: &str = "\
timezone: Asia/Seoul
schedules:
  office-hours:
    running: [\"Mon-Fri 08:00-20:00\"]
regions: [us-east-1]
max_override_hours: 12
# moto stamps launches with the real clock, which may be past the simulated --now.
instances:
  grace_minutes: 0
";

/// Wednesday 19:30 and 20:01 in Seoul.
const EVENING: &str = "2026-11-25T10:30:00Z";
const STOP: &str = "2026-11-25T11:01:00Z";

async fn instance(ec2: &Ec2, id: &str) -> (InstanceStateName, BTreeMap<String, String>) {
    support::world::instance_state(ec2, id).await
}

async fn group_tags(sdk: &aws_types::SdkConfig, name: &str) -> BTreeMap<String, String> {
    let out = aws_sdk_autoscaling::Client::new(sdk)
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .unwrap();
    out.auto_scaling_groups()[0]
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap_or_default().to_string()))
        .collect()
}

fn run(moto: &Moto, cfg: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let o = moto.offhours(cfg, args);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_override_round_trips_on_an_instance_and_a_group_and_is_refused_on_an_untagged_one() {
    let moto = Moto::start();
    let sdk = moto.sdk_in(MANAGEMENT, "us-east-1").await;
    let ec2 = Ec2::new(&sdk);
    let tagged = support::world::launch(&ec2, &[("Schedule", "office-hours")], 1)
        .await
        .remove(0);
    let untagged = support::world::launch(&ec2, &[("Team", "search")], 1).await.remove(0);
    support::moto::group(&sdk, "web", (1, 2, 1), &[("Schedule", "office-hours")]).await;
    let (_d, cfg) = config(CONFIG);

    // An instance: kept up tonight for three hours (19:30 + 3 h = 22:30 in Seoul).
    let (code, out, err) = run(&moto, &cfg, &["override", &tagged, "--until", "3h", "--now", EVENING]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("offhours:override"), "{out}");
    assert_eq!(
        instance(&ec2, &tagged).await.1["offhours:override"],
        "running until 2026-11-25T13:30:00Z"
    );
    // The pass at 20:01 honours it: the instance is not stopped.
    let r = moto.pass(&cfg, "reconcile", STOP);
    assert_eq!(instance(&ec2, &tagged).await.0, InstanceStateName::Running, "{r:#}");
    // Cleared: the tag goes, and the next pass (within the catch-up window) stops it.
    let (code, out, err) = run(&moto, &cfg, &["override", &tagged, "--clear", "--now", STOP]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!instance(&ec2, &tagged).await.1.contains_key("offhours:override"));
    let r = moto.pass(&cfg, "reconcile", "2026-11-25T11:05:00Z");
    assert_eq!(instance(&ec2, &tagged).await.0, InstanceStateName::Stopped, "{r:#}");
    // Clearing again has nothing to do and writes nothing.
    let (code, out, _) = run(&moto, &cfg, &["override", &tagged, "--clear", "--now", STOP]);
    assert_eq!(code, 0);
    assert!(out.contains("no override"), "{out}");

    // A group, by ARN, asked for longer than max_override_hours (12): capped as the daemon
    // caps it, and said so.
    let arn = aws_sdk_autoscaling::Client::new(&sdk)
        .describe_auto_scaling_groups()
        .auto_scaling_group_names("web")
        .send()
        .await
        .unwrap()
        .auto_scaling_groups()[0]
        .auto_scaling_group_arn()
        .unwrap()
        .to_string();
    let (code, out, err) = run(
        &moto,
        &cfg,
        &[
            "override", &arn, "--until", "2d", "--state", "stopped", "--now", EVENING, "--output", "json",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let d: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(d["resource_type"], "auto-scaling-group");
    assert!(d["note"].as_str().unwrap().contains("capped"), "{d:#}");
    assert_eq!(
        group_tags(&sdk, "web").await["offhours:override"],
        "stopped until 2026-11-25T22:30:00Z",
        "EVENING + 12 h"
    );
    let (code, _, err) = run(&moto, &cfg, &["override", "web", "--clear", "--now", EVENING]);
    assert_eq!(code, 0, "{err}");
    assert!(!group_tags(&sdk, "web").await.contains_key("offhours:override"));

    // Untagged: refused, nothing written.
    let (code, out, err) = run(&moto, &cfg, &["override", &untagged, "--until", "3h", "--now", EVENING]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("no `Schedule` tag") && err.contains(&untagged), "{err}");
    assert!(!instance(&ec2, &untagged).await.1.contains_key("offhours:override"));
    // Nothing by that name; a past time.
    let (code, _, err) = run(
        &moto,
        &cfg,
        &["override", "i-0000000000000dead", "--until", "3h", "--now", EVENING],
    );
    assert_eq!(code, 2);
    assert!(err.contains("no resource `i-0000000000000dead`"), "{err}");
    let (code, _, err) = run(
        &moto,
        &cfg,
        &["override", &tagged, "--until", "2026-11-25T09:00:00Z", "--now", EVENING],
    );
    assert_eq!(code, 2);
    assert!(err.contains("not in the future"), "{err}");
}

/// Organization mode: the override reaches an instance in a member account through the
/// member role, as a pass does.
#[tokio::test(flavor = "multi_thread")]
async fn an_override_reaches_a_member_account_through_the_role_chain() {
    let moto = Moto::start();
    let member = support::moto::organization_with_member(&moto.sdk("us-east-1").await).await;
    let in_member = Ec2::new(&moto.sdk_in(&member, "us-east-1").await);
    let id = support::world::launch(&in_member, &[("Schedule", "office-hours")], 1)
        .await
        .remove(0);
    let (_d, cfg) = config(&format!("{CONFIG}accounts:\n  mode: organization\n"));
    let (code, out, err) = run(&moto, &cfg, &["override", &id, "--until", "1h", "--now", EVENING]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&member), "names the account: {out}");
    assert_eq!(
        instance(&in_member, &id).await.1["offhours:override"],
        "running until 2026-11-25T11:30:00Z"
    );
}
