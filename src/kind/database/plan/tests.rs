use super::*;
use crate::fixtures::{at, config};
use crate::kind::database::DatabaseChange as C;
use crate::model::Database;

fn db(id: &str, status: &str) -> Database {
    Database {
        id: id.into(),
        arn: format!("arn:aws:rds:us-east-1:111111111111:db:{id}"),
        status: status.into(),
        engine: "postgres".into(),
        class: Some("db.t3.micro".into()),
        created: Some(at("2026-11-01T00:00:00Z")),
        tags: [("Schedule".to_string(), "office-hours".to_string())].into(),
        ..Default::default()
    }
}

fn changes(p: &Option<Plan<DatabaseChange>>) -> Vec<&'static str> {
    p.iter().flat_map(|p| p.steps.iter().map(|s| s.change.kind())).collect()
}

/// Wednesday 20:01 and Thursday 08:01 in Seoul.
const STOP: &str = "2026-11-25T11:01:00Z";
const START: &str = "2026-11-25T23:01:00Z";

#[test]
fn a_database_stops_at_20_and_starts_at_08_recording_each_transition() {
    let c = config();
    let p = plan_database(&c, &db("dev", "available"), at(STOP));
    assert_eq!(changes(&p), ["stop-database", "set-tags"]);
    let mut stopped = db("dev", "stopped");
    stopped.tags.insert(TAG_LAST.into(), "stop 2026-11-25T11:00:00Z".into());
    assert!(
        plan_database(&c, &stopped, at(STOP)).is_none(),
        "recorded: nothing more"
    );
    assert_eq!(changes(&plan_database(&c, &stopped, at(START))), ["start-database"]);
}

#[test]
fn a_person_s_start_is_kept_but_rds_s_restart_after_seven_days_is_stopped_again() {
    let c = config();
    // Stopped by offhours on Friday 20:00 (a long weekend and a week off make no difference
    // to the schedule here: it is stopped from Friday night).
    let cfg = crate::fixtures::config_from(&format!(
        "{}  long-break:\n    running: [\"Mon-Fri 08:00-20:00\"]\n    holidays: break\nholidays:\n  break:\n    dates: [2026-11-30, 2026-12-01, 2026-12-02, 2026-12-03, 2026-12-04, 2026-12-07, 2026-12-08]\n",
        crate::fixtures::CONFIG
    ));
    let mut up = db("dev", "available");
    up.tags.insert("Schedule".into(), "long-break".into());
    up.tags.insert(TAG_LAST.into(), "stop 2026-11-27T11:00:00Z".into());
    // Started by a person on Monday: kept.
    assert!(plan_database(&cfg, &up, at("2026-11-30T03:00:00Z")).is_none());
    // Found running seven days and more after the stop, the schedule still saying stopped:
    // RDS's restart, stopped again and recorded at now.
    let now = at("2026-12-04T12:00:00Z");
    let p = plan_database(&cfg, &up, now).expect("a plan");
    assert_eq!(changes(&Some(p.clone())), ["stop-database-again", "set-tags"]);
    assert_eq!(
        p.steps[1].change,
        C::SetTags {
            tags: [(TAG_LAST.to_string(), "stop 2026-12-04T12:00:00Z".to_string())].into()
        }
    );
    // The next pass, stopped and recorded: nothing to do, and a person's start in the next
    // seven days is kept again.
    let mut again = up.clone();
    again.tags.insert(TAG_LAST.into(), "stop 2026-12-04T12:00:00Z".into());
    again.status = "stopped".into();
    assert!(plan_database(&cfg, &again, at("2026-12-04T12:10:00Z")).is_none());
    again.status = "available".into();
    assert!(plan_database(&cfg, &again, at("2026-12-06T12:00:00Z")).is_none());
    // When the schedule says running, a running database is left alone, whatever the record.
    assert!(
        plan_database(&c, &up, at("2026-12-09T03:00:00Z"))
            .is_none_or(|p| changes(&Some(p)).iter().all(|k| !k.starts_with("stop")))
    );
}

#[test]
fn what_rds_cannot_stop_is_reported_once_and_never_tried() {
    let c = config();
    let mut replica = db("ro", "available");
    replica.replica_of = Some("dev".into());
    let mut source = db("dev", "available");
    source.replicas = vec!["ro".into()];
    let mut serverless = db("sls", "available");
    serverless.engine = "aurora-postgresql".into();
    serverless.engine_mode = Some("serverless".into());
    let mut sqlserver = db("mssql", "available");
    sqlserver.engine = "sqlserver-se".into();
    sqlserver.multi_az = true;
    let mut multi_az_cluster = db("maz", "available");
    multi_az_cluster.arn = "arn:aws:rds:us-east-1:111111111111:cluster:maz".into();
    multi_az_cluster.multi_az = true;
    let mut multimaster = db("mm", "available");
    multimaster.engine = "aurora-mysql".into();
    multimaster.engine_mode = Some("multimaster".into());
    let mut parallel = db("pq", "available");
    parallel.engine = "aurora".into();
    parallel.engine_mode = Some("parallelquery".into());
    for d in [
        replica,
        source,
        serverless,
        sqlserver,
        multi_az_cluster,
        multimaster,
        parallel,
    ] {
        let p = plan_database(&c, &d, at(STOP)).unwrap();
        assert!(
            p.steps.iter().all(|s| !s.change.kind().starts_with("stop")),
            "{}: {p:?}",
            d.id
        );
        assert!(
            p.notes.iter().any(|n| n.contains("RDS cannot stop it")),
            "{}: {p:?}",
            d.id
        );
        // The transition is recorded, so the next pass says nothing more.
        let mut recorded = d.clone();
        for s in &p.steps {
            if let C::SetTags { tags } = &s.change {
                recorded.tags.extend(tags.clone());
            }
        }
        assert!(plan_database(&c, &recorded, at(STOP)).is_none(), "{}", d.id);
    }
}

#[test]
fn a_bad_tag_sets_an_error_and_leaves_the_database_alone() {
    let c = config();
    let mut d = db("dev", "available");
    d.tags.insert("Schedule".into(), "nope".into());
    let p = plan_database(&c, &d, at(STOP)).unwrap();
    assert!(p.error.is_some());
    assert_eq!(changes(&Some(p)), ["set-tags"]);
}

#[test]
fn a_cluster_counts_every_member_when_it_is_priced() {
    use crate::kind::Kind;
    let c = config();
    let mut cluster = db("aurora-dev", "available");
    cluster.members = 3;
    cluster.class = Some("db.r6g.large".into());
    let o = <crate::kind::database::DbClusters as Kind>::observe(&c, &cluster);
    assert_eq!((o.units, o.priced_type.as_deref()), (3, Some("db.r6g.large")));
    // A DB instance is one.
    let o = <crate::kind::database::DbInstances as Kind>::observe(&c, &db("dev", "available"));
    assert_eq!(o.units, 1);
}
