//! The strict layer's rules, each shown firing through the official SDK: what AWS refuses
//! (or does) that moto alone would not. Every other moto suite runs through the same layer.

mod support;

use aws_sdk_autoscaling::types::ScheduledUpdateGroupActionRequest;
use aws_smithy_types::DateTime as AwsTime;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use support::moto::{Moto, group};

fn aws_time(s: &str) -> AwsTime {
    AwsTime::from_secs(offhours::schedule::parse_instant(s).unwrap().timestamp())
}

fn put(name: &str, recurrence: &str, zone: &str) -> ScheduledUpdateGroupActionRequest {
    ScheduledUpdateGroupActionRequest::builder()
        .scheduled_action_name(name)
        .recurrence(recurrence)
        .time_zone(zone)
        .min_size(0)
        .max_size(0)
        .desired_capacity(0)
        .build()
}

async fn names(asg: &aws_sdk_autoscaling::Client, group: &str) -> Vec<String> {
    let mut out: Vec<String> = asg
        .describe_scheduled_actions()
        .auto_scaling_group_name(group)
        .send()
        .await
        .unwrap()
        .scheduled_update_group_actions()
        .iter()
        .filter_map(|a| a.scheduled_action_name().map(String::from))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_scheduled_action_needs_a_time_of_its_own_in_its_group() {
    let moto = Moto::start();
    moto.set_now("2026-11-30T12:00:00Z");
    let sdk = moto.sdk("us-east-1").await;
    group(&sdk, "web", (1, 2, 1), &[]).await;
    group(&sdk, "api", (1, 2, 1), &[]).await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    asg.put_scheduled_update_group_action()
        .auto_scaling_group_name("web")
        .scheduled_action_name("team-morning")
        .recurrence("0 8 * * 1-5")
        .time_zone("Asia/Seoul")
        .desired_capacity(2)
        .send()
        .await
        .unwrap();
    // The same next firing under another name: refused.
    let e = asg
        .put_scheduled_update_group_action()
        .auto_scaling_group_name("web")
        .scheduled_action_name("other")
        .recurrence("0 8 * * *")
        .time_zone("Asia/Seoul")
        .desired_capacity(1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("AlreadyExists"));
    assert!(
        e.message().unwrap().contains("scheduled start time already exists"),
        "{e:?}"
    );
    assert!(e.message().unwrap().contains("team-morning"), "{e:?}");
    // The same name is an update of itself; another group is another namespace.
    asg.put_scheduled_update_group_action()
        .auto_scaling_group_name("web")
        .scheduled_action_name("team-morning")
        .recurrence("0 8 * * 1-5")
        .time_zone("Asia/Seoul")
        .desired_capacity(3)
        .send()
        .await
        .unwrap();
    asg.put_scheduled_update_group_action()
        .auto_scaling_group_name("api")
        .scheduled_action_name("api-morning")
        .recurrence("0 8 * * 1-5")
        .time_zone("Asia/Seoul")
        .desired_capacity(1)
        .send()
        .await
        .unwrap();
    // A batch: the colliding entry is reported, the others are registered.
    let out = asg
        .batch_put_scheduled_update_group_action()
        .auto_scaling_group_name("web")
        .scheduled_update_group_actions(put("clash", "0 8 * * 2", "Asia/Seoul"))
        .scheduled_update_group_actions(put("evening", "0 20 * * 1-5", "Asia/Seoul"))
        .scheduled_update_group_actions(put("evening-twin", "0 20 * * 1-5", "Asia/Seoul"))
        .send()
        .await
        .unwrap();
    let failed: Vec<&str> = out
        .failed_scheduled_update_group_actions()
        .iter()
        .filter_map(|f| f.scheduled_action_name())
        .collect();
    assert_eq!(failed, ["clash", "evening-twin"]);
    assert!(
        out.failed_scheduled_update_group_actions()
            .iter()
            .all(|f| f.error_code() == Some("AlreadyExists"))
    );
    assert_eq!(names(&asg, "web").await, ["evening", "team-morning"]);
    assert!(moto.rules().fired()["autoscaling.unique-time"] >= 3);
}

#[tokio::test]
async fn a_start_time_in_the_past_and_a_zone_link_are_refused() {
    let moto = Moto::start();
    moto.set_now("2026-11-30T12:00:00Z");
    let sdk = moto.sdk("us-east-1").await;
    group(&sdk, "web", (1, 2, 1), &[]).await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    let e = asg
        .put_scheduled_update_group_action()
        .auto_scaling_group_name("web")
        .scheduled_action_name("late")
        .start_time(aws_time("2026-11-30T11:59:00Z"))
        .desired_capacity(0)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ValidationError"), "{e:?}");
    asg.put_scheduled_update_group_action()
        .auto_scaling_group_name("web")
        .scheduled_action_name("soon")
        .start_time(aws_time("2026-11-30T12:05:00Z"))
        .desired_capacity(0)
        .send()
        .await
        .unwrap();
    let e = asg
        .put_scheduled_update_group_action()
        .auto_scaling_group_name("web")
        .scheduled_action_name("eastern")
        .recurrence("0 9 * * 1-5")
        .time_zone("US/Eastern")
        .desired_capacity(1)
        .send()
        .await
        .unwrap_err();
    assert!(e.message().unwrap().contains("US/Eastern"), "{e:?}");
    asg.put_scheduled_update_group_action()
        .auto_scaling_group_name("web")
        .scheduled_action_name("eastern")
        .recurrence("0 9 * * 1-5")
        .time_zone("America/New_York")
        .desired_capacity(1)
        .send()
        .await
        .unwrap();
    let fired = moto.rules().fired();
    assert_eq!(fired["autoscaling.start-time-in-past"], 1);
    assert_eq!(fired["autoscaling.time-zone-not-canonical"], 1);
}

#[tokio::test]
async fn scheduled_actions_are_described_at_most_a_hundred_a_page() {
    let moto = Moto::start();
    moto.set_now("2026-11-30T12:00:00Z");
    let sdk = moto.sdk("us-east-1").await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    for g in ["a", "b"] {
        group(&sdk, g, (1, 2, 1), &[]).await;
        for chunk in (0..70).collect::<Vec<u32>>().chunks(50) {
            let mut req = asg.batch_put_scheduled_update_group_action().auto_scaling_group_name(g);
            for i in chunk {
                req = req.scheduled_update_group_actions(put(
                    &format!("{g}{i}"),
                    &format!("{} {} * * *", i % 60, i / 60),
                    "Etc/UTC",
                ));
            }
            let out = req.send().await.unwrap();
            assert!(
                out.failed_scheduled_update_group_actions().is_empty(),
                "{:?}",
                out.failed_scheduled_update_group_actions().first()
            );
        }
    }
    let first = asg.describe_scheduled_actions().max_records(100).send().await.unwrap();
    assert_eq!(first.scheduled_update_group_actions().len(), 100);
    assert!(first.next_token().is_some());
    let e = asg
        .describe_scheduled_actions()
        .max_records(101)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ValidationError"));
    let mut all = 0;
    let mut pages = asg
        .describe_scheduled_actions()
        .max_records(100)
        .into_paginator()
        .send();
    let mut count = 0;
    while let Some(p) = pages.next().await {
        all += p.unwrap().scheduled_update_group_actions().len();
        count += 1;
    }
    assert_eq!((all, count), (140, 2));
    // 125 actions per group at most.
    group(&sdk, "full", (1, 2, 1), &[]).await;
    for chunk in (0..125).collect::<Vec<u32>>().chunks(50) {
        let mut req = asg
            .batch_put_scheduled_update_group_action()
            .auto_scaling_group_name("full");
        for i in chunk {
            req = req.scheduled_update_group_actions(put(
                &format!("f{i}"),
                &format!("{} {} * * *", i % 60, i / 60),
                "Etc/UTC",
            ));
        }
        assert!(
            req.send()
                .await
                .unwrap()
                .failed_scheduled_update_group_actions()
                .is_empty()
        );
    }
    let e = asg
        .put_scheduled_update_group_action()
        .auto_scaling_group_name("full")
        .scheduled_action_name("one-more")
        .recurrence("0 23 * * *")
        .time_zone("Etc/UTC")
        .desired_capacity(1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("LimitExceeded"));
}

async fn instance(ec2: &aws_sdk_ec2::Client) -> String {
    ec2.run_instances()
        .image_id("ami-12c6146b")
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_string()
}

async fn state(ec2: &aws_sdk_ec2::Client, id: &str) -> (String, Option<String>) {
    let out = ec2.describe_instances().instance_ids(id).send().await.unwrap();
    let i = &out.reservations()[0].instances()[0];
    (
        i.state().and_then(|s| s.name()).unwrap().as_str().to_string(),
        i.state_reason().and_then(|r| r.code()).map(String::from),
    )
}

#[tokio::test]
async fn a_start_without_the_kms_key_answers_success_and_falls_back_to_stopped() {
    let moto = Moto::start();
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk("us-east-1").await);
    let (locked, plain) = (instance(&ec2).await, instance(&ec2).await);
    ec2.stop_instances()
        .instance_ids(&locked)
        .instance_ids(&plain)
        .send()
        .await
        .unwrap();
    moto.rules().deny_kms(&locked);
    let out = ec2
        .start_instances()
        .instance_ids(&locked)
        .instance_ids(&plain)
        .send()
        .await
        .unwrap();
    assert_eq!(out.starting_instances().len(), 2, "AWS answers success for both");
    assert_eq!(state(&ec2, &plain).await.0, "running");
    assert_eq!(state(&ec2, &locked).await.0, "pending", "first pending");
    assert_eq!(
        state(&ec2, &locked).await,
        ("stopped".to_string(), Some("Client.InternalError".to_string())),
        "then back to stopped"
    );
}

#[tokio::test]
async fn one_unauthorized_instance_fails_the_whole_call_and_hibernation_can_be_refused() {
    let moto = Moto::start();
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk("us-east-1").await);
    let (a, b) = (instance(&ec2).await, instance(&ec2).await);
    moto.rules().unauthorized(&b);
    let e = ec2
        .stop_instances()
        .instance_ids(&a)
        .instance_ids(&b)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("UnauthorizedOperation"));
    assert_eq!(state(&ec2, &a).await.0, "running", "nothing was stopped");
    let e = ec2
        .create_tags()
        .resources(&a)
        .resources(&b)
        .tags(aws_sdk_ec2::types::Tag::builder().key("k").value("v").build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("UnauthorizedOperation"));
    moto.rules().no_hibernate(&a);
    let e = ec2
        .stop_instances()
        .instance_ids(&a)
        .hibernate(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("UnsupportedHibernationConfiguration"));
    ec2.stop_instances().instance_ids(&a).send().await.unwrap();
    let fired = moto.rules().fired();
    assert_eq!(fired["ec2.unauthorized-all-or-nothing"], 2);
    assert_eq!(fired["ec2.hibernation-refused"], 1);
}

#[tokio::test]
async fn a_resource_takes_at_most_fifty_user_tags() {
    let moto = Moto::start();
    let sdk = moto.sdk("us-east-1").await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let id = instance(&ec2).await;
    let tag = |i: u32| {
        aws_sdk_ec2::types::Tag::builder()
            .key(format!("k{i}"))
            .value("v")
            .build()
    };
    let mut req = ec2.create_tags().resources(&id);
    for i in 0..49 {
        req = req.tags(tag(i));
    }
    req.send().await.unwrap();
    let e = ec2
        .create_tags()
        .resources(&id)
        .tags(tag(49))
        .tags(tag(50))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("TagLimitExceeded"));
    ec2.create_tags()
        .resources(&id)
        .tags(tag(0))
        .tags(tag(49))
        .send()
        .await
        .unwrap();

    let tags: Vec<(String, String)> = (0..50).map(|i| (format!("k{i}"), "v".to_string())).collect();
    let refs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    group(&sdk, "full", (1, 1, 1), &refs).await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    let t = |k: &str| {
        aws_sdk_autoscaling::types::Tag::builder()
            .resource_id("full")
            .resource_type("auto-scaling-group")
            .key(k)
            .value("w")
            .propagate_at_launch(false)
            .build()
    };
    let e = asg
        .create_or_update_tags()
        .tags(t("one-more"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("LimitExceeded"));
    asg.create_or_update_tags().tags(t("k7")).send().await.unwrap();
    let fired = moto.rules().fired();
    assert_eq!((fired["ec2.tag-limit"], fired["autoscaling.tag-limit"]), (1, 1));
}

/// One CreateOrUpdateTags call may tag many groups; one unknown group refuses it whole.
#[tokio::test]
async fn a_tag_call_naming_an_unknown_group_is_refused_whole() {
    let moto = Moto::start();
    let sdk = moto.sdk("us-east-1").await;
    group(&sdk, "here", (1, 1, 1), &[]).await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    let t = |g: &str| {
        aws_sdk_autoscaling::types::Tag::builder()
            .resource_id(g)
            .resource_type("auto-scaling-group")
            .key("k")
            .value("v")
            .propagate_at_launch(false)
            .build()
    };
    let e = asg
        .create_or_update_tags()
        .tags(t("here"))
        .tags(t("gone"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ValidationError"));
    let tags = |asg: aws_sdk_autoscaling::Client| async move {
        asg.describe_auto_scaling_groups()
            .send()
            .await
            .unwrap()
            .auto_scaling_groups()[0]
            .tags()
            .len()
    };
    assert_eq!(tags(asg.clone()).await, 0, "nothing written");
    asg.create_or_update_tags().tags(t("here")).send().await.unwrap();
    assert_eq!(tags(asg).await, 1);
    assert_eq!(moto.rules().fired()["autoscaling.tag-unknown-group"], 1);
}

#[tokio::test]
async fn a_policy_type_is_pending_for_a_while_after_it_is_enabled() {
    use aws_sdk_organizations::types::{OrganizationFeatureSet, PolicyType, PolicyTypeStatus};
    let moto = Moto::start();
    moto.rules().pending_for(std::time::Duration::from_millis(800));
    let org = aws_sdk_organizations::Client::new(&moto.sdk("us-east-1").await);
    org.create_organization()
        .feature_set(OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    let root = org.list_roots().send().await.unwrap().roots()[0]
        .id()
        .unwrap()
        .to_string();
    let status = |org: aws_sdk_organizations::Client| async move {
        org.list_roots().send().await.unwrap().roots()[0]
            .policy_types()
            .iter()
            .find(|t| t.r#type() == Some(&PolicyType::ServiceControlPolicy))
            .and_then(|t| t.status().cloned())
    };
    org.enable_policy_type()
        .root_id(&root)
        .policy_type(PolicyType::ServiceControlPolicy)
        .send()
        .await
        .unwrap();
    assert_eq!(status(org.clone()).await, Some(PolicyTypeStatus::PendingEnable));
    let id = org
        .create_policy()
        .name("p")
        .description("d")
        .content(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"ec2:RunInstances","Resource":"*"}]}"#,
        )
        .r#type(PolicyType::ServiceControlPolicy)
        .send()
        .await
        .unwrap()
        .policy()
        .unwrap()
        .policy_summary()
        .unwrap()
        .id()
        .unwrap()
        .to_string();
    let e = org
        .attach_policy()
        .policy_id(&id)
        .target_id(&root)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("PolicyTypeNotEnabledException"));
    let e = org
        .enable_policy_type()
        .root_id(&root)
        .policy_type(PolicyType::ServiceControlPolicy)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("PolicyTypeAlreadyEnabledException"));
    tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    assert_eq!(status(org.clone()).await, Some(PolicyTypeStatus::Enabled));
    org.attach_policy()
        .policy_id(&id)
        .target_id(&root)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_short_poll_may_come_back_empty_while_messages_wait() {
    let moto = Moto::start();
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk("us-east-1").await);
    let url = sqs
        .create_queue()
        .queue_name("events")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    sqs.send_message()
        .queue_url(&url)
        .message_body("hello")
        .send()
        .await
        .unwrap();
    let short = sqs.receive_message().queue_url(&url).send().await.unwrap();
    assert!(short.messages().is_empty());
    let long = sqs
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    assert_eq!(long.messages().len(), 1);
    assert_eq!(moto.rules().fired()["sqs.short-poll-empty"], 1);
}
