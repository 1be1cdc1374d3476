use super::*;
use crate::fixtures::at;
use crate::kind::{Observation, ResourceType};
use crate::report::{Mode, PassReport};

fn cfg() -> Config {
    crate::fixtures::config_from(
        "timezone: Asia/Seoul\nteam_tag: Team\nholidays:\n  kr:\n    dates: [2026-12-25]\nschedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\n    holidays: kr\n",
    )
}

fn seen(id: &str, state: &'static str, tags: &[(&str, &str)]) -> Seen {
    Seen {
        account: "111111111111".into(),
        region: "ap-northeast-2".into(),
        resource_type: ResourceType::Instance,
        id: id.into(),
        tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        observation: Observation {
            state,
            priced_type: Some("t3.micro".into()),
            units: 1,
            since: None,
        },
    }
}

fn snapshot() -> Snapshot {
    let mut r = PassReport::new(Mode::Reconcile, at("2026-11-25T10:00:00Z"));
    r.inventory = vec![
        seen(
            "i-a",
            "running",
            &[("Schedule", "office-hours"), ("Team", "<script>alert(1)</script>")],
        ),
        seen(
            "i-held",
            "running",
            &[
                ("Schedule", "office-hours"),
                ("offhours:override", "running until 2026-11-25T13:00:00Z"),
            ],
        ),
    ];
    r.changes.push(crate::report::ChangeReport {
        account: "111111111111".into(),
        region: "ap-northeast-2".into(),
        resource_type: ResourceType::Instance,
        resource_id: "i-a".into(),
        change: crate::report::Change::Instance(crate::report::InstanceChange::StopInstance),
        reason: "schedule says stopped".into(),
        status: crate::kind::ChangeStatus::Applied,
        error: None,
        estimated_hours_off: None,
        instance_type: None,
    });
    r.finish();
    Snapshot {
        report: std::sync::Arc::new(r),
        finished: at("2026-11-25T10:00:05Z"),
        seconds: 1.5,
    }
}

#[test]
fn the_status_page_escapes_what_tags_wrote_and_shows_schedules_and_resources() {
    let c = cfg();
    let s = snapshot();
    let html = page(&c, Some(&s), at("2026-11-25T10:00:00Z")).into_string();
    assert!(!html.contains("<script>"), "a tag's markup is escaped");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("office-hours") && html.contains("Asia/Seoul"));
    // Wednesday 19:00 in Seoul: the next transition is the 20:00 stop.
    assert!(
        html.contains("stop Wed 2026-11-25 20:00 KST / 2026-11-25 11:00 UTC"),
        "{html}"
    );
    assert!(html.contains("holiday Fri 2026-12-25"));
    assert!(html.contains("href=\"/resources/111111111111/ap-northeast-2/i-held\""));
    assert!(html.contains("<svg"), "the savings chart");
    // The state is from before the pass; what it then applied is said beside it.
    assert!(html.contains("then stop-instance"), "{html}");
    // No pass yet: said so.
    assert!(
        page(&c, None, at("2026-11-25T10:00:00Z"))
            .into_string()
            .contains("No pass has finished yet")
    );
}

#[test]
fn a_resource_page_says_why_and_what_next() {
    let c = cfg();
    let s = snapshot();
    let now = at("2026-11-25T12:00:00Z");
    let html = resource_page(&c, Some(&s), ("111111111111", "ap-northeast-2", "i-held"), now)
        .unwrap()
        .into_string();
    assert!(html.contains("says stopped now"), "{html}");
    assert!(
        html.contains("An override holds it running until Wed 2026-11-25 22:00 KST"),
        "{html}"
    );
    assert!(html.contains("Next: start at Thu 2026-11-26 08:00 KST"), "{html}");
    assert!(resource_page(&c, Some(&s), ("111111111111", "ap-northeast-2", "i-none"), now).is_none());
    // Launched ten minutes ago: inside the default 30-minute grace period, and said so.
    let mut young = s.report.as_ref().clone();
    young.inventory[1].observation.since = Some(now - Duration::minutes(10));
    let young = Snapshot {
        report: std::sync::Arc::new(young),
        ..s
    };
    let html = resource_page(&c, Some(&young), ("111111111111", "ap-northeast-2", "i-held"), now)
        .unwrap()
        .into_string();
    assert!(
        html.contains("inside its 30 min grace period: offhours does not stop it before 2026-11-25 12:20 UTC"),
        "{html}"
    );
}
