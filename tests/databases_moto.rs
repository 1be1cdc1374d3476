//! RDS DB instances and Aurora DB clusters end to end: the offhours binary against a moto
//! server, with simulated times through `--now`. The oracle is each database's status and
//! tags as RDS reports them after the pass.

mod support;

use std::collections::BTreeMap;

use aws_sdk_rds::Client as Rds;
use aws_sdk_rds::types::Tag;
use support::moto::{MANAGEMENT, Moto, config, mutating_calls};

const CONFIG: &str = "\
timezone: Asia/Seoul
holidays:
  break:
    dates: [2026-11-30, 2026-12-01, 2026-12-02, 2026-12-03, 2026-12-04, 2026-12-07, 2026-12-08]
schedules:
  office-hours:
    running: [\"Mon-Fri 08:00-20:00\"]
  long-break:
    running: [\"Mon-Fri 08:00-20:00\"]
    holidays: break
regions: [us-east-1]
# moto stamps creations with the real clock, which may be past the simulated --now.
instances:
  grace_minutes: 0
databases:
  grace_minutes: 0
";

async fn rds(moto: &Moto) -> Rds {
    Rds::new(&moto.sdk_in(MANAGEMENT, "us-east-1").await)
}

fn tags(t: &[(&str, &str)]) -> Vec<Tag> {
    t.iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect()
}

/// A DB instance's status and tags as RDS reports them.
async fn instance(rds: &Rds, id: &str) -> (String, BTreeMap<String, String>) {
    let out = rds
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .unwrap();
    let d = &out.db_instances()[0];
    (
        d.db_instance_status().unwrap_or_default().to_string(),
        d.tag_list()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
            .collect(),
    )
}

/// A cluster's status.
async fn cluster(rds: &Rds, id: &str) -> String {
    let out = rds
        .describe_db_clusters()
        .db_cluster_identifier(id)
        .send()
        .await
        .unwrap();
    out.db_clusters()[0].status().unwrap_or_default().to_string()
}

fn changes(report: &serde_json::Value, id: &str) -> Vec<String> {
    report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["resource_id"] == id)
        .map(|c| {
            format!(
                "{}:{}",
                c["resource_type"].as_str().unwrap(),
                c["change"].as_str().unwrap()
            )
        })
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

/// Wednesday 20:01, 21:10 and Thursday 08:01 in Seoul.
const STOP: &str = "2026-11-25T11:01:00Z";
const EVENING: &str = "2026-11-25T12:10:00Z";
const START: &str = "2026-11-25T23:01:00Z";

#[tokio::test(flavor = "multi_thread")]
async fn a_database_and_a_cluster_stop_at_20_start_at_08_and_a_manual_start_is_kept() {
    let moto = Moto::start();
    let rds = rds(&moto).await;
    support::moto::database(&rds, "dev", &[("Schedule", "office-hours")]).await;
    rds.create_db_cluster()
        .db_cluster_identifier("aurora-dev")
        .engine("aurora-postgresql")
        .master_username("offhours")
        .master_user_password("not-a-real-password")
        .set_tags(Some(tags(&[("Schedule", "office-hours")])))
        .send()
        .await
        .unwrap();
    rds.create_db_instance()
        .db_instance_identifier("aurora-dev-1")
        .db_cluster_identifier("aurora-dev")
        .engine("aurora-postgresql")
        .db_instance_class("db.t3.medium")
        .set_tags(Some(tags(&[("Schedule", "office-hours")])))
        .send()
        .await
        .unwrap();
    let (_d, cfg) = config(CONFIG);

    let r = moto.pass(&cfg, "reconcile", STOP);
    assert_eq!(instance(&rds, "dev").await.0, "stopped", "{r:#}");
    assert_eq!(cluster(&rds, "aurora-dev").await, "stopped", "{r:#}");
    assert_eq!(
        changes(&r, "dev"),
        ["db-instance:stop-database", "db-instance:set-tags"]
    );
    assert_eq!(
        changes(&r, "aurora-dev"),
        ["db-cluster:stop-database", "db-cluster:set-tags"]
    );
    // An Aurora cluster is priced by its writer's class (RDS gives the cluster none).
    let stop = r["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["resource_id"] == "aurora-dev" && c["change"] == "stop-database")
        .unwrap();
    assert_eq!(stop["instance_type"], "db.t3.medium", "{r:#}");
    assert!(
        changes(&r, "aurora-dev-1").is_empty(),
        "a cluster's member is its cluster's: {r:#}"
    );
    let (_, t) = instance(&rds, "dev").await;
    assert_eq!(t["offhours:last-transition"], "stop 2026-11-25T11:00:00Z");
    assert_eq!(
        r["scopes"][0]["managed"]["db-instance/running"], 1,
        "counted before the stop"
    );

    // A person starts the database after hours: kept until the next stop.
    rds.start_db_instance()
        .db_instance_identifier("dev")
        .send()
        .await
        .unwrap();
    let r = moto.pass(&cfg, "reconcile", EVENING);
    assert_eq!(instance(&rds, "dev").await.0, "available", "{r:#}");
    assert!(mutating_calls(&r).is_empty(), "{r:#}");

    // The morning: the cluster starts; the database is already up and the start recorded.
    let r = moto.pass(&cfg, "reconcile", START);
    assert_eq!(cluster(&rds, "aurora-dev").await, "available", "{r:#}");
    assert_eq!(instance(&rds, "dev").await.0, "available");
    assert_eq!(
        instance(&rds, "dev").await.1["offhours:last-transition"],
        "start 2026-11-25T23:00:00Z"
    );
    // A start is recorded once the database is seen running (as for an instance: a start
    // can fail after it was accepted), so the next pass records the cluster's; then nothing.
    let next = moto.pass(&cfg, "reconcile", "2026-11-25T23:05:00Z");
    assert_eq!(changes(&next, "aurora-dev"), ["db-cluster:set-tags"], "{next:#}");
    let again = moto.pass(&cfg, "plan", "2026-11-25T23:06:00Z");
    assert_eq!(again["summary"]["changes"], 0, "{again:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rds_s_restart_after_seven_days_is_stopped_again_and_said_so() {
    let moto = Moto::start();
    let rds = rds(&moto).await;
    support::moto::database(&rds, "dev", &[("Schedule", "long-break")]).await;
    let (_d, cfg) = config(CONFIG);
    // Stopped on Friday 27 November at 20:00; the break keeps the schedule stopped until
    // Wednesday 9 December.
    moto.pass(&cfg, "reconcile", "2026-11-27T11:01:00Z");
    assert_eq!(instance(&rds, "dev").await.0, "stopped");
    // RDS starts it seven days later (moto does not: the test does, as RDS would).
    rds.start_db_instance()
        .db_instance_identifier("dev")
        .send()
        .await
        .unwrap();
    let r = moto.pass(&cfg, "reconcile", "2026-12-04T11:30:00Z");
    assert_eq!(
        changes(&r, "dev"),
        ["db-instance:stop-database-again", "db-instance:set-tags"],
        "{r:#}"
    );
    assert_eq!(instance(&rds, "dev").await.0, "stopped");
    assert!(notes(&r, "dev").contains("RDS started it after seven days"), "{r:#}");
    assert_eq!(
        instance(&rds, "dev").await.1["offhours:last-transition"],
        "stop 2026-12-04T11:30:00Z",
        "the record moves to the new stop"
    );
    // A person starting it two days later is kept: the record tells the two apart.
    rds.start_db_instance()
        .db_instance_identifier("dev")
        .send()
        .await
        .unwrap();
    let r = moto.pass(&cfg, "reconcile", "2026-12-06T11:30:00Z");
    assert_eq!(instance(&rds, "dev").await.0, "available", "{r:#}");
    assert!(changes(&r, "dev").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn what_rds_cannot_stop_is_reported_once_and_a_bad_tag_leaves_a_database_alone() {
    let moto = Moto::start();
    let rds = rds(&moto).await;
    support::moto::database(&rds, "source", &[("Schedule", "office-hours")]).await;
    rds.create_db_instance_read_replica()
        .db_instance_identifier("replica")
        .source_db_instance_identifier("source")
        .set_tags(Some(tags(&[("Schedule", "office-hours")])))
        .send()
        .await
        .unwrap();
    support::moto::database(&rds, "typo", &[("Schedule", "office-hour")]).await;
    let (_d, cfg) = config(CONFIG);

    let r = moto.pass_status(&cfg, "reconcile", STOP);
    for id in ["source", "replica"] {
        assert_eq!(instance(&rds, id).await.0, "available", "{id}: {r:#}");
        assert!(notes(&r, id).contains("RDS cannot stop it"), "{id}: {r:#}");
        assert!(!changes(&r, id).iter().any(|c| c.contains("stop")), "{id}: {r:#}");
    }
    assert!(notes(&r, "replica").contains("read replica of source"));
    assert!(notes(&r, "source").contains("source of read replica"));
    // The bad tag: an error naming the database and the value, the database untouched.
    let err = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["resource_id"] == "typo")
        .unwrap_or_else(|| panic!("{r:#}"));
    assert_eq!(err["resource_type"], "db-instance");
    assert_eq!(err["tag_value"], "office-hour");
    let (status, t) = instance(&rds, "typo").await;
    assert_eq!(status, "available");
    assert!(t["offhours:error"].contains("office-hour"), "{t:?}");

    // Said once: the next pass has nothing to say of the two, and writes nothing.
    let r = moto.pass_status(&cfg, "reconcile", "2026-11-25T11:05:00Z");
    assert!(
        notes(&r, "source").is_empty() && notes(&r, "replica").is_empty(),
        "{r:#}"
    );
    assert!(mutating_calls(&r).is_empty(), "{r:#}");
}

/// Organization mode: a member account's database is kept through the member role like its
/// servers, and `policy scan` finds an untagged one in the management account and in the
/// member, with what `on_untagged: stop` would do about it.
#[tokio::test(flavor = "multi_thread")]
async fn databases_across_an_organization_are_kept_and_scanned() {
    let moto = Moto::start();
    let member = support::moto::organization_with_member(&moto.sdk("us-east-1").await).await;
    let in_member = Rds::new(&moto.sdk_in(&member, "us-east-1").await);
    support::moto::database(&in_member, "team-db", &[("Schedule", "office-hours")]).await;
    support::moto::database(&in_member, "forgotten-db", &[("Team", "search")]).await;
    support::moto::database(&rds(&moto).await, "platform-db", &[("Team", "platform")]).await;
    let (_d, cfg) = config(&format!(
        "{CONFIG}accounts:\n  mode: organization\npolicy:\n  on_untagged: stop\n  untagged_grace_minutes: 0\n"
    ));

    let scan = moto.offhours(&cfg, &["policy", "scan", "--output", "json", "--now", STOP]);
    assert!(scan.status.success(), "{}", String::from_utf8_lossy(&scan.stderr));
    let v: serde_json::Value = serde_json::from_slice(&scan.stdout).unwrap();
    let found: std::collections::BTreeSet<(String, String, String)> = v["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["resource_type"] == "db-instance")
        .map(|x| {
            (
                x["account"].as_str().unwrap().to_string(),
                x["resource_id"].as_str().unwrap().to_string(),
                x["problem"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                MANAGEMENT.to_string(),
                "platform-db".to_string(),
                "untagged".to_string()
            ),
            (member.clone(), "forgotten-db".to_string(), "untagged".to_string()),
        ]
        .into(),
        "{v:#}"
    );
    let would: Vec<&str> = v["remediations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["resource_id"] == "forgotten-db")
        .map(|c| c["change"].as_str().unwrap())
        .collect();
    assert_eq!(would, ["stop-database", "set-tags"], "{v:#}");

    let r = moto.pass(&cfg, "reconcile", STOP);
    assert_eq!(instance(&in_member, "team-db").await.0, "stopped", "{r:#}");
    let (status, tags) = instance(&in_member, "forgotten-db").await;
    assert_eq!(status, "stopped", "remediated: {r:#}");
    assert!(tags["offhours:remediated"].starts_with("stopped at"), "{tags:?}");
    // The management account is not remediated unless the config says so.
    assert_eq!(instance(&rds(&moto).await, "platform-db").await.0, "available");
}
