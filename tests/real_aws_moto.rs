//! What offhours does about AWS behaviour moto lacks, end to end through the binary and the
//! strict layer (tests/support/strict.rs): colliding scheduled actions, starts that fall
//! back for want of a KMS key, batches with one forbidden instance, refused hibernation,
//! the 50-tag limit, an asynchronous policy type, and long-polled event intake.

mod support;

use std::collections::BTreeMap;

use aws_sdk_autoscaling::Client as Asg;
use aws_sdk_ec2::Client as Ec2;
use aws_sdk_ec2::types::{InstanceStateName, Tag};
use offhours::capacity::Capacity;
use support::moto::{MANAGEMENT, Moto, config, group};

const CONFIG: &str = "\
timezone: Asia/Seoul
schedules:
  office-hours:
    running: [\"Mon-Fri 08:00-20:00\"]
  sleepy:
    running: [\"Mon-Fri 08:00-20:00\"]
    hibernate: true
regions: [us-east-1]
instances:
  grace_minutes: 0
  catch_up_minutes: 30
";

fn kst(s: &str) -> String {
    format!("{s}+09:00")
}

async fn ec2(moto: &Moto) -> Ec2 {
    Ec2::new(&moto.sdk_in(MANAGEMENT, "us-east-1").await)
}

async fn state(ec2: &Ec2, id: &str) -> (InstanceStateName, BTreeMap<String, String>) {
    support::world::instance_state(ec2, id).await
}

async fn asg_group(asg: &Asg, name: &str) -> (Capacity, BTreeMap<String, String>, Vec<String>) {
    support::moto::read_group(asg, name).await
}

fn entries<'a>(r: &'a serde_json::Value, list: &str, id: &str) -> Vec<&'a serde_json::Value> {
    r[list]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["resource_id"] == id)
        .collect()
}

/// Done when: a group tagged `office-hours` whose team already has an action at 08:00
/// Mon-Fri in the same zone gets a clear error naming that action; its saved size is
/// recorded; other groups in the same pass are scheduled.
#[tokio::test(flavor = "multi_thread")]
async fn a_team_action_at_offhours_time_is_an_error_naming_it_and_the_rest_of_the_pass_goes_on() {
    let moto = Moto::start();
    let sdk = moto.sdk("us-east-1").await;
    let asg = Asg::new(&sdk);
    moto.set_now(&kst("2026-11-25T12:00:00"));
    group(&sdk, "team", (1, 4, 2), &[("Schedule", "office-hours")]).await;
    group(&sdk, "other", (1, 2, 1), &[("Schedule", "office-hours")]).await;
    asg.put_scheduled_update_group_action()
        .auto_scaling_group_name("team")
        .scheduled_action_name("team-morning-scale-out")
        .recurrence("0 8 * * 1-5")
        .time_zone("Asia/Seoul")
        .desired_capacity(4)
        .send()
        .await
        .unwrap();
    let (_d, cfg) = config(CONFIG);
    let o = moto.offhours(
        &cfg,
        &["reconcile", "--output", "json", "--now", &kst("2026-11-25T12:00:00")],
    );
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let errors = entries(&r, "errors", "team");
    assert_eq!(errors.len(), 1, "{r:#}");
    let e = errors[0]["error"].as_str().unwrap();
    assert!(
        e.contains("`team-morning-scale-out`") && e.contains("2026-11-26 08:00 KST"),
        "{e}"
    );
    assert_eq!(
        r["summary"]["failed"], 0,
        "offhours never sent the put AWS would refuse: {r:#}"
    );
    let (size, tags, actions) = asg_group(&asg, "team").await;
    assert_eq!(
        support::moto::sealed_size(tags.get("offhours:saved-capacity")),
        Some("min=1 max=4 desired=2")
    );
    assert!(tags["offhours:error"].contains("team-morning-scale-out"));
    assert_eq!(
        size,
        Capacity {
            min: 1,
            max: 4,
            desired: 2
        }
    );
    assert_eq!(actions, ["team-morning-scale-out"], "the team's action is untouched");
    let (_, other_tags, other_actions) = asg_group(&asg, "other").await;
    assert_eq!(other_actions.len(), 2, "the other group is scheduled");
    assert_eq!(other_tags["offhours:schedule"], "office-hours");
    assert_eq!(moto.rules().fired().get("autoscaling.unique-time"), None);
}

/// Done when: an instance marked with the KMS fault is reported as not started, with the
/// reason, on the pass after the start, and is not recorded as started.
#[tokio::test(flavor = "multi_thread")]
async fn a_start_that_falls_back_for_want_of_the_kms_key_is_reported_and_retried_not_recorded() {
    let moto = Moto::start();
    let ec2 = ec2(&moto).await;
    let ids = support::world::launch(&ec2, &[("Schedule", "office-hours")], 2).await;
    let (locked, plain) = (ids[0].clone(), ids[1].clone());
    let (_d, cfg) = config(CONFIG);
    moto.pass(&cfg, "reconcile", &kst("2026-11-25T12:00:00"));
    moto.pass(&cfg, "reconcile", &kst("2026-11-25T20:01:00"));
    assert_eq!(state(&ec2, &locked).await.0, InstanceStateName::Stopped);
    moto.rules().deny_kms(&locked);

    // 08:01: both starts answer success.
    let r = moto.pass(&cfg, "reconcile", &kst("2026-11-26T08:01:00"));
    for id in [&locked, &plain] {
        let kinds: Vec<&str> = entries(&r, "changes", id)
            .iter()
            .map(|c| c["change"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["start-instance"],
            "no record before the instance is seen running: {r:#}"
        );
    }
    // 08:03: the locked one is still pending: not recorded, not started again.
    let r = moto.pass(&cfg, "reconcile", &kst("2026-11-26T08:03:00"));
    assert!(entries(&r, "changes", &locked).is_empty(), "{r:#}");
    assert!(entries(&r, "errors", &locked).is_empty(), "{r:#}");
    // 08:05: the plain one runs and is recorded; the locked one fell back, is reported with
    // the reason, started again, and still not recorded.
    let r = moto.pass(&cfg, "reconcile", &kst("2026-11-26T08:05:00"));
    let (s, tags) = state(&ec2, &plain).await;
    assert_eq!(s, InstanceStateName::Running);
    assert_eq!(tags["offhours:last-transition"], "start 2026-11-25T23:00:00Z");
    let errors = entries(&r, "errors", &locked);
    assert_eq!(errors.len(), 1, "{r:#}");
    let e = errors[0]["error"].as_str().unwrap();
    assert!(
        e.contains("not started") && e.contains("Client.InternalError") && e.contains("kms:CreateGrant"),
        "{e}"
    );
    let kinds: Vec<&str> = entries(&r, "changes", &locked)
        .iter()
        .map(|c| c["change"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["start-instance"], "retried inside the catch-up window");
    let (s, tags) = state(&ec2, &locked).await;
    assert_eq!(
        s,
        InstanceStateName::Pending,
        "the retried start, before it falls back again"
    );
    assert_eq!(
        tags["offhours:last-transition"], "stop 2026-11-25T11:00:00Z",
        "not recorded as started"
    );
    // Past the catch-up window: recorded as missed, with the reason, and left alone.
    let r = moto.pass(&cfg, "reconcile", &kst("2026-11-26T08:45:00"));
    let notes: Vec<&str> = entries(&r, "notes", &locked)
        .iter()
        .map(|n| n["note"].as_str().unwrap())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("missed the start") && n.contains("did not take")),
        "{notes:?}"
    );
    assert!(
        entries(&r, "changes", &locked)
            .iter()
            .all(|c| c["change"] != "start-instance")
    );
}

/// One instance the role may not stop costs its batch a few halvings, not the batch.
#[tokio::test(flavor = "multi_thread")]
async fn one_forbidden_instance_costs_its_batch_a_few_halvings_and_blocks_no_other() {
    let moto = Moto::start();
    let ec2 = ec2(&moto).await;
    let ids = support::world::launch(&ec2, &[("Schedule", "office-hours")], 8).await;
    let (_d, cfg) = config(CONFIG);
    moto.pass(&cfg, "reconcile", &kst("2026-11-25T12:00:00"));
    moto.rules().unauthorized(&ids[5]);
    let r = moto.pass_status(&cfg, "reconcile", &kst("2026-11-25T20:01:00"));
    for (i, id) in ids.iter().enumerate() {
        let want = if i == 5 {
            InstanceStateName::Running
        } else {
            InstanceStateName::Stopped
        };
        assert_eq!(state(&ec2, id).await.0, want, "{id}");
    }
    // 8 ids: the whole, then 4, 2, 1 on the forbidden side and 4, 2, 1 beside it.
    assert_eq!(r["api_calls"]["ec2.StopInstances"], 7, "{:?}", r["api_calls"]);
    let failed = entries(&r, "changes", &ids[5]);
    assert_eq!(failed[0]["status"], "failed");
    assert!(failed[0]["error"].as_str().unwrap().contains("UnauthorizedOperation"));
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_hibernation_falls_back_to_a_plain_stop_and_says_so() {
    use aws_sdk_ec2::types::{HibernationOptionsRequest, ResourceType, TagSpecification};
    let moto = Moto::start();
    let ec2 = ec2(&moto).await;
    let id = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .min_count(1)
        .max_count(1)
        .hibernation_options(HibernationOptionsRequest::builder().configured(true).build())
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key("Schedule").value("sleepy").build())
                .build(),
        )
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_string();
    // Configured for hibernation, but not ready for it now: EC2 refuses.
    moto.rules().no_hibernate(&id);
    let (_d, cfg) = config(CONFIG);
    moto.pass(&cfg, "reconcile", &kst("2026-11-25T12:00:00"));
    let r = moto.pass(&cfg, "reconcile", &kst("2026-11-25T20:01:00"));
    let changes = entries(&r, "changes", &id);
    assert_eq!(changes[0]["change"], "hibernate-instance");
    assert_eq!(changes[0]["status"], "applied", "{r:#}");
    let notes: Vec<&str> = entries(&r, "notes", &id)
        .iter()
        .map(|n| n["note"].as_str().unwrap())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("hibernation refused") && n.contains("stopped instead")),
        "{notes:?}"
    );
    let (s, tags) = state(&ec2, &id).await;
    assert_eq!(s, InstanceStateName::Stopped);
    assert_eq!(tags["offhours:last-transition"], "stop 2026-11-25T11:00:00Z");
    assert_eq!(moto.rules().fired()["ec2.hibernation-refused"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resource_without_room_for_offhours_tags_is_reported_and_left_untouched() {
    let moto = Moto::start();
    let sdk = moto.sdk("us-east-1").await;
    let ec2 = ec2(&moto).await;
    let mut tags: Vec<(String, String)> = (0..49).map(|i| (format!("team-{i}"), "x".to_string())).collect();
    tags.push(("Schedule".into(), "office-hours".into()));
    let refs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let id = support::world::launch(&ec2, &refs, 1).await.remove(0);
    group(&sdk, "full", (1, 2, 1), &refs).await;
    let (_d, cfg) = config(CONFIG);
    moto.set_now(&kst("2026-11-25T21:00:00"));
    let r = moto.pass(&cfg, "reconcile", &kst("2026-11-25T21:00:00"));
    assert_eq!(r["summary"]["failed"], 0, "{r:#}");
    for res in [id.as_str(), "full"] {
        let e = entries(&r, "errors", res);
        assert!(
            e[0]["error"].as_str().unwrap().contains("no room for offhours' tags"),
            "{e:?}"
        );
        assert!(entries(&r, "changes", res).is_empty(), "nothing written on {res}");
    }
    assert_eq!(state(&ec2, &id).await.0, InstanceStateName::Running);
    let (size, gtags, actions) = asg_group(&Asg::new(&sdk), "full").await;
    assert_eq!((size.desired, gtags.len(), actions.len()), (1, 50, 0));
    assert_eq!(moto.rules().fired().get("ec2.tag-limit"), None, "never sent");
}

/// A first `policy apply` converges within two runs without a failure, however long AWS
/// takes to enable the policy types.
#[tokio::test(flavor = "multi_thread")]
async fn a_first_policy_apply_waits_for_the_policy_types_and_converges_in_two_runs() {
    let moto = Moto::start();
    moto.rules().pending_for(std::time::Duration::from_secs(7));
    let root = support::moto::create_organization(&moto.sdk("us-east-1").await).await;
    let (_d, cfg) = config(&format!(
        "schedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\npolicy:\n  targets: ['{root}']\n"
    ));
    let run = || {
        let o = moto.offhours(&cfg, &["policy", "apply", "--output", "json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let first = run();
    let statuses: Vec<(&str, &str)> = first["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["change"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert!(statuses.contains(&("attach", "waiting")), "{statuses:?}");
    assert!(!statuses.iter().any(|s| s.1 == "failed"), "{statuses:?}");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let second = run();
    assert!(
        second["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "applied"),
        "{second:#}"
    );
    assert!(
        !second["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["change"] == "enable-policy-type")
    );
    let third = run();
    assert_eq!(third["changes"].as_array().unwrap().len(), 0, "{third:#}");
    assert_eq!(moto.rules().fired().get("organizations.enable-while-pending"), None);
}

/// Intake long-polls (a short poll may come back empty while messages wait), stops after
/// the configured empty receives, and a failed delete loses neither the report nor the
/// other messages.
#[tokio::test(flavor = "multi_thread")]
async fn intake_long_polls_and_a_failed_delete_loses_nothing() {
    let moto = Moto::start();
    let sdk = moto.sdk("us-east-1").await;
    support::moto::create_organization(&sdk).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let url = sqs
        .create_queue()
        .queue_name("events")
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "1")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/events");
    for f in ["run-untagged.json", "run-tagged.json"] {
        let body = std::fs::read_to_string(events.join(f))
            .unwrap()
            .replace("111122223333", MANAGEMENT);
        sqs.send_message()
            .queue_url(&url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let (_d, cfg) = config(&format!(
        "schedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\npolicy:\n  event_queue_url: '{url}'\n  event_wait_seconds: 1\n  event_empty_receives: 2\n"
    ));
    // The first delete fails past the SDK's retries (5 attempts).
    moto.proxy().fail_next("DeleteMessage", 5);
    let o = moto.offhours(&cfg, &["policy", "intake", "--output", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["received"], 2, "{r:#}");
    assert_eq!(
        r["violations"].as_array().unwrap().len() + r["allowed"].as_u64().unwrap() as usize,
        2
    );
    assert_eq!(r["undeleted"].as_array().unwrap().len(), 1, "{r:#}");
    assert!(
        !moto.rules().fired().contains_key("sqs.short-poll-empty"),
        "never short-polls"
    );
    // The undeleted message comes back after its visibility timeout and is decided again.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let o = moto.offhours(&cfg, &["policy", "intake", "--output", "json"]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (r["received"].as_u64(), r["undeleted"].as_array().unwrap().len()),
        (Some(1), 0),
        "{r:#}"
    );
}

/// More scheduled actions in a region than one DescribeScheduledActions page holds (AWS
/// returns at most 100): every page is read, so a steady pass writes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn scheduled_actions_past_the_first_page_are_read_and_a_steady_pass_writes_nothing() {
    let moto = Moto::start();
    let sdk = moto.sdk("us-east-1").await;
    for i in 0..60 {
        group(&sdk, &format!("g{i:02}"), (1, 2, 1), &[("Schedule", "office-hours")]).await;
    }
    let (_d, cfg) = config(CONFIG);
    let first = moto.pass(&cfg, "reconcile", &kst("2026-11-25T12:00:00"));
    assert_eq!(first["summary"]["failed"], 0);
    let r = moto.pass(&cfg, "reconcile", &kst("2026-11-25T12:05:00"));
    assert!(support::moto::mutating_calls(&r).is_empty(), "{:?}", r["api_calls"]);
    assert_eq!(
        r["api_calls"]["autoscaling.DescribeScheduledActions"], 2,
        "120 actions: two pages"
    );
}
