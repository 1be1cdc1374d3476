//! EC2 instances end to end: the offhours binary against a moto server, with simulated
//! times through `--now`.

mod support;

use std::collections::BTreeMap;

use aws_sdk_ec2::Client as Ec2;
use aws_sdk_ec2::types::{InstanceStateName, ResourceType, Tag, TagSpecification};
use chrono::{DateTime, Duration, Timelike, Utc};
use support::moto::{MANAGEMENT, Moto, config, mutating_calls};

const CONFIG: &str = "\
timezone: Asia/Seoul
holidays:
  kr:
    dates: [2026-12-25]
schedules:
  office-hours:
    running: [\"Mon-Fri 08:00-20:00\"]
    holidays: kr
  strict:
    running: [\"Mon-Fri 08:00-20:00\"]
    enforce: true
  sleepy:
    running: [\"Mon-Fri 08:00-20:00\"]
    hibernate: true
regions: [us-east-1]
# moto stamps launches with the real clock, which may be past the simulated --now.
instances:
  grace_minutes: 0
";

async fn ec2(moto: &Moto) -> Ec2 {
    Ec2::new(&moto.sdk_in(MANAGEMENT, "us-east-1").await)
}

async fn launch(ec2: &Ec2, tags: &[(&str, &str)], count: i32) -> Vec<String> {
    support::world::launch(ec2, tags, count).await
}

async fn state(ec2: &Ec2, id: &str) -> (InstanceStateName, BTreeMap<String, String>) {
    support::world::instance_state(ec2, id).await
}

async fn running(ec2: &Ec2, id: &str) -> bool {
    state(ec2, id).await.0 == InstanceStateName::Running
}

async fn tag(ec2: &Ec2, id: &str, k: &str, v: &str) {
    ec2.create_tags()
        .resources(id)
        .tags(Tag::builder().key(k).value(v).build())
        .send()
        .await
        .unwrap();
}

fn kst(s: &str) -> String {
    format!("{s}+09:00")
}

fn changes(report: &serde_json::Value, id: &str) -> Vec<String> {
    report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["resource_id"] == id)
        .map(|c| c["change"].as_str().unwrap().to_string())
        .collect()
}

fn notes(report: &serde_json::Value, id: &str) -> String {
    report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["resource_id"] == id)
        .map(|n| n["note"].as_str().unwrap())
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_at_20_start_at_08_a_manual_start_is_kept_and_enforce_holds() {
    let moto = Moto::start();
    let ec2 = ec2(&moto).await;
    let ids = launch(&ec2, &[("Schedule", "office-hours")], 3).await;
    let strict = launch(&ec2, &[("Schedule", "strict")], 1).await.remove(0);
    let untagged = launch(&ec2, &[("Team", "payments")], 1).await.remove(0);
    let (_d, cfg) = config(CONFIG);

    // Wednesday noon: adopted, nothing stopped.
    let r = moto.pass(&cfg, "reconcile", &kst("2026-11-25T12:00:00"));
    assert_eq!(changes(&r, &ids[0]), vec!["set-tags"]);
    assert!(running(&ec2, &ids[0]).await);
    assert!(
        r["api_calls"]["ec2.CreateTags"].as_u64() == Some(1),
        "one call tags all adopted instances: {:?}",
        r["api_calls"]
    );

    // 20:01: stopped, in one StopInstances call.
    let r = moto.pass(&cfg, "reconcile", &kst("2026-11-25T20:01:00"));
    for id in &ids {
        assert!(!running(&ec2, id).await, "{id} stopped at 20:00");
        assert_eq!(
            state(&ec2, id).await.1["offhours:last-transition"],
            "stop 2026-11-25T11:00:00Z"
        );
    }
    assert!(!running(&ec2, &strict).await);
    assert!(running(&ec2, &untagged).await, "untagged instance untouched");
    assert_eq!(r["api_calls"]["ec2.StopInstances"], 1);
    // Steady state: nothing mutating.
    let r = moto.pass(&cfg, "reconcile", &kst("2026-11-25T20:06:00"));
    assert!(mutating_calls(&r).is_empty(), "{:?}", r["api_calls"]);

    // 22:00: someone starts two servers by hand.
    ec2.start_instances()
        .instance_ids(&ids[0])
        .instance_ids(&strict)
        .send()
        .await
        .unwrap();
    moto.pass(&cfg, "reconcile", &kst("2026-11-25T22:00:00"));
    assert!(running(&ec2, &ids[0]).await, "a manual start after hours is kept");
    assert!(!running(&ec2, &strict).await, "enforce holds the scheduled state");

    // Thursday 08:01: started.
    let r = moto.pass(&cfg, "reconcile", &kst("2026-11-26T08:01:00"));
    for id in &ids {
        assert!(running(&ec2, id).await, "{id} started at 08:00");
    }
    assert_eq!(r["api_calls"]["ec2.StartInstances"], 1);
    assert!(running(&ec2, &strict).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_catches_up_inside_the_window_and_reports_outside_it() {
    let moto = Moto::start();
    let ec2 = ec2(&moto).await;
    let a = launch(&ec2, &[("Schedule", "office-hours")], 1).await.remove(0);
    let b = launch(&ec2, &[("Schedule", "office-hours")], 1).await.remove(0);
    let (_d, cfg) = config(CONFIG);
    moto.pass(&cfg, "reconcile", &kst("2026-11-25T12:00:00"));
    // The daemon was down from 19:55. Back at 20:25, it would still stop them...
    moto.pass(&cfg, "reconcile", &kst("2026-11-25T19:55:00"));
    let r = moto.pass(&cfg, "plan", &kst("2026-11-25T20:25:00"));
    assert!(
        changes(&r, &a).contains(&"stop-instance".to_string()),
        "25 min late is inside the 30 min window"
    );
    // ...and only at 21:00 for real: outside the window, reported, not applied.
    let r = moto.pass(&cfg, "reconcile", &kst("2026-11-25T21:00:00"));
    for id in [&a, &b] {
        assert!(running(&ec2, id).await, "{id}: missed transition not applied");
        assert!(
            notes(&r, id).contains("missed the stop transition"),
            "{}",
            notes(&r, id)
        );
    }
    // The restarted daemon neither repeats nor misses the next one.
    let r = moto.pass(&cfg, "reconcile", &kst("2026-11-25T21:05:00"));
    assert!(mutating_calls(&r).is_empty(), "{:?}", r["api_calls"]);
    moto.pass(&cfg, "reconcile", &kst("2026-11-26T20:10:00"));
    assert!(!running(&ec2, &a).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_override_keeps_an_instance_up_until_it_expires() {
    let moto = Moto::start();
    let ec2 = ec2(&moto).await;
    let id = launch(&ec2, &[("Schedule", "office-hours")], 1).await.remove(0);
    let (_d, cfg) = config(CONFIG);
    moto.pass(&cfg, "reconcile", &kst("2026-11-25T12:00:00"));
    tag(&ec2, &id, "offhours:override", "running until 2026-11-25T23:00+09:00").await;
    moto.pass(&cfg, "reconcile", &kst("2026-11-25T20:01:00"));
    assert!(running(&ec2, &id).await, "kept up past 20:00");
    let r = moto.pass(&cfg, "reconcile", &kst("2026-11-25T23:00:30"));
    assert!(!running(&ec2, &id).await, "stopped when the override ends");
    assert!(notes(&r, &id).contains("expired"));
    assert!(
        !state(&ec2, &id).await.1.contains_key("offhours:override"),
        "the expired override tag is removed"
    );

    // An override too long is capped and reported; an unreadable one is an error.
    tag(&ec2, &id, "offhours:override", "running until 2027-06-01T00:00Z").await;
    let r = moto.pass(&cfg, "reconcile", &kst("2026-11-26T09:00:00"));
    assert!(notes(&r, &id).contains("capped"));
    assert_eq!(
        state(&ec2, &id).await.1["offhours:override"],
        "running until 2026-11-27T00:00:00Z"
    );
    tag(&ec2, &id, "offhours:override", "running until forever").await;
    let r = moto.pass(&cfg, "reconcile", &kst("2026-11-26T09:05:00"));
    assert!(r["errors"][0]["error"].as_str().unwrap().contains("invalid override"));
}

#[tokio::test(flavor = "multi_thread")]
async fn grace_period_group_members_bad_tags_and_stop_protection() {
    let moto = Moto::start();
    let ec2 = ec2(&moto).await;
    // moto stamps launches with the real clock: put the stop transition ten minutes later.
    let launched = Utc::now();
    let stop_at = (launched + Duration::minutes(10))
        .with_second(0)
        .unwrap()
        .with_nanosecond(0)
        .unwrap();
    let begin = stop_at - Duration::hours(2);
    let window = format!(
        "{} {}-{}",
        begin.format("%a"),
        begin.format("%H:%M"),
        stop_at.format("%H:%M")
    );
    let text = format!(
        "timezone: UTC\ninstances:\n  batch_size: 2\nschedules:\n  dev:\n    running: [\"{window}\"]\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\nregions: [us-east-1]\n"
    );
    let (_d, cfg) = config(&text);
    let fresh = launch(&ec2, &[("Schedule", "dev")], 5).await;
    let protected = fresh[2].clone();
    ec2.modify_instance_attribute()
        .instance_id(&protected)
        .disable_api_stop(aws_sdk_ec2::types::AttributeBooleanValue::builder().value(true).build())
        .send()
        .await
        .unwrap();
    let typo = launch(&ec2, &[("Schedule", "ofice-hours")], 1).await.remove(0);
    // A member of an Auto Scaling group carries the schedule tag too, and is left to its group.
    let member = launch(&ec2, &[("Schedule", "dev"), ("aws:autoscaling:groupName", "web")], 1)
        .await
        .remove(0);

    let at = |d: Duration| (stop_at + d).to_rfc3339();
    let r = moto.pass(&cfg, "reconcile", &at(Duration::minutes(1)));
    assert!(running(&ec2, &fresh[0]).await);
    assert!(
        notes(&r, &fresh[0]).contains("grace period"),
        "{}",
        notes(&r, &fresh[0])
    );

    let r = moto.pass(&cfg, "reconcile", &at(Duration::minutes(25)));
    for id in &fresh {
        assert_eq!(running(&ec2, id).await, *id == protected, "{id}");
    }
    assert!(
        notes(&r, &protected).contains("stop protection"),
        "{}",
        notes(&r, &protected)
    );
    assert!(running(&ec2, &member).await, "group member untouched");
    assert!(changes(&r, &member).is_empty());
    assert!(running(&ec2, &typo).await);
    assert!(state(&ec2, &typo).await.1["offhours:error"].contains("ofice-hours"));
    // Nothing is retried once handled.
    let r = moto.pass(&cfg, "reconcile", &at(Duration::minutes(28)));
    assert!(mutating_calls(&r).is_empty(), "{:?}", r["api_calls"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn weekends_and_holidays_pass_without_a_start() {
    let moto = Moto::start();
    let ec2 = ec2(&moto).await;
    let id = launch(&ec2, &[("Schedule", "office-hours")], 1).await.remove(0);
    let (_d, cfg) = config(CONFIG);
    moto.pass(&cfg, "reconcile", &kst("2026-12-24T12:00:00"));
    moto.pass(&cfg, "reconcile", &kst("2026-12-24T20:01:00"));
    assert!(!running(&ec2, &id).await);
    for day in ["2026-12-25T08:01:00", "2026-12-26T08:01:00", "2026-12-27T08:01:00"] {
        let r = moto.pass(&cfg, "reconcile", &kst(day));
        assert!(!running(&ec2, &id).await, "{day}");
        assert!(mutating_calls(&r).is_empty(), "{day}: {:?}", r["api_calls"]);
    }
    moto.pass(&cfg, "reconcile", &kst("2026-12-28T08:01:00"));
    assert!(running(&ec2, &id).await, "Monday start");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_time_spot_instances_are_reported_not_stopped() {
    let moto = Moto::start();
    let ec2 = ec2(&moto).await;
    let spot = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type("t3.micro".into())
        .min_count(1)
        .max_count(1)
        .instance_market_options(
            aws_sdk_ec2::types::InstanceMarketOptionsRequest::builder()
                .market_type(aws_sdk_ec2::types::MarketType::Spot)
                .spot_options(
                    aws_sdk_ec2::types::SpotMarketOptions::builder()
                        .spot_instance_type(aws_sdk_ec2::types::SpotInstanceType::OneTime)
                        .build(),
                )
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key("Schedule").value("office-hours").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let id = spot.instances()[0].instance_id().unwrap().to_string();
    let (_d, cfg) = config(CONFIG);
    moto.pass(&cfg, "reconcile", &kst("2026-11-25T12:00:00"));
    let r = moto.pass(&cfg, "reconcile", &kst("2026-11-25T20:01:00"));
    assert!(running(&ec2, &id).await);
    assert!(notes(&r, &id).contains("spot"), "{r:#}");
}

/// The report's times are RFC 3339 and the JSON carries instances and groups together.
#[tokio::test(flavor = "multi_thread")]
async fn plan_covers_instances_and_groups_in_one_report() {
    let moto = Moto::start();
    let ec2 = ec2(&moto).await;
    let id = launch(&ec2, &[("Schedule", "office-hours")], 1).await.remove(0);
    let (_d, cfg) = config(CONFIG);
    moto.pass(&cfg, "reconcile", &kst("2026-11-25T12:00:00"));
    let r = moto.pass(&cfg, "plan", &kst("2026-11-25T20:01:00"));
    let c = r["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["resource_id"] == id.as_str())
        .unwrap();
    assert_eq!(c["resource_type"], "instance");
    assert_eq!(c["change"], "stop-instance");
    assert_eq!(c["status"], "planned");
    assert!(c["reason"].as_str().unwrap().contains("office-hours"));
    assert!(DateTime::parse_from_rfc3339(r["now"].as_str().unwrap()).is_ok());
    assert!(running(&ec2, &id).await, "plan writes nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn hibernate_where_the_instance_is_configured_for_it_else_stop() {
    let moto = Moto::start();
    let ec2 = ec2(&moto).await;
    let hib = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type("t3.micro".into())
        .min_count(1)
        .max_count(1)
        .hibernation_options(
            aws_sdk_ec2::types::HibernationOptionsRequest::builder()
                .configured(true)
                .build(),
        )
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
    let plain = launch(&ec2, &[("Schedule", "sleepy")], 1).await.remove(0);
    let (_d, cfg) = config(CONFIG);
    moto.pass(&cfg, "reconcile", &kst("2026-11-25T12:00:00"));
    let r = moto.pass(&cfg, "reconcile", &kst("2026-11-25T20:01:00"));
    assert_eq!(changes(&r, &hib)[0], "hibernate-instance");
    assert_eq!(changes(&r, &plain)[0], "stop-instance");
    assert!(!running(&ec2, &hib).await && !running(&ec2, &plain).await);
}

/// The uptime events' contract for instances: a Saturday event from 10:00 to 14:00 with
/// `lead_minutes: 30` starts the instance at 09:30 and stops it at 14:00, and the pass
/// just before 09:30 does nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_saturday_event_starts_an_instance_30_minutes_ahead_and_stops_it_at_its_end() {
    const UPTIME: &str = "\
timezone: Asia/Seoul
uptime:
  release-nights:
    ics: events.ics
    lead_minutes: 30
schedules:
  office-hours:
    running: [\"Mon-Fri 08:00-20:00\"]
    uptime: [release-nights]
regions: [us-east-1]
instances:
  grace_minutes: 0
";
    let moto = Moto::start();
    let ec2 = ec2(&moto).await;
    let id = launch(&ec2, &[("Schedule", "office-hours")], 1).await.remove(0);
    let (dir, cfg) = config(UPTIME);
    std::fs::write(
        dir.path().join("events.ics"),
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\nBEGIN:VEVENT\r\nUID:load@test\r\nSUMMARY:Load test\r\n\
         DTSTART;TZID=Asia/Seoul:20261128T100000\r\nDTEND;TZID=Asia/Seoul:20261128T140000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    )
    .unwrap();
    moto.pass(&cfg, "reconcile", &kst("2026-11-27T12:00:00"));
    moto.pass(&cfg, "reconcile", &kst("2026-11-27T20:01:00"));
    assert!(!running(&ec2, &id).await, "stopped on Friday at 20:00");
    let r = moto.pass(&cfg, "reconcile", &kst("2026-11-28T09:29:00"));
    assert!(
        mutating_calls(&r).is_empty(),
        "nothing before the lead: {:?}",
        r["api_calls"]
    );
    assert!(!running(&ec2, &id).await);
    let r = moto.pass(&cfg, "reconcile", &kst("2026-11-28T09:31:00"));
    assert_eq!(changes(&r, &id), vec!["start-instance"]);
    assert!(running(&ec2, &id).await, "started 30 minutes before the 10:00 event");
    // A start is recorded once the instance runs: on the next pass.
    moto.pass(&cfg, "reconcile", &kst("2026-11-28T09:36:00"));
    assert_eq!(
        state(&ec2, &id).await.1["offhours:last-transition"],
        "start 2026-11-28T00:30:00Z"
    );
    let r = moto.pass(&cfg, "reconcile", &kst("2026-11-28T13:59:00"));
    assert!(mutating_calls(&r).is_empty(), "{:?}", r["api_calls"]);
    assert!(running(&ec2, &id).await);
    moto.pass(&cfg, "reconcile", &kst("2026-11-28T14:01:00"));
    assert!(!running(&ec2, &id).await, "stopped at the event's end");
    assert_eq!(
        state(&ec2, &id).await.1["offhours:last-transition"],
        "stop 2026-11-28T05:00:00Z"
    );
}
