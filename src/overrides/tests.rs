use super::*;
use crate::fixtures::{self, at};
use crate::kind::Observation;

fn seen(tags: &[(&str, &str)]) -> Seen {
    Seen {
        account: "111111111111".into(),
        region: "ap-northeast-2".into(),
        resource_type: ResourceType::Instance,
        id: "i-0abc".into(),
        tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        observation: Observation {
            state: "stopped",
            priced_type: None,
            units: 1,
            since: None,
        },
    }
}

const NOW: &str = "2026-11-25T12:00:00Z";

#[test]
fn a_name_or_an_arn_names_the_resource() {
    assert_eq!(
        Wanted::parse(" i-0abc ").unwrap(),
        Wanted {
            id: "i-0abc".into(),
            account: None,
            region: None,
            kind: None
        }
    );
    let cases = [
        (
            "arn:aws:ec2:ap-northeast-2:111111111111:instance/i-0abc",
            ResourceType::Instance,
            "i-0abc",
        ),
        (
            "arn:aws:autoscaling:us-east-1:222222222222:autoScalingGroup:6d2f-11:autoScalingGroupName/web/blue",
            ResourceType::AutoScalingGroup,
            "web/blue",
        ),
        (
            "arn:aws-cn:rds:cn-north-1:333333333333:db:dev",
            ResourceType::DbInstance,
            "dev",
        ),
        (
            "arn:aws:rds:eu-west-1:444444444444:cluster:aurora-dev",
            ResourceType::DbCluster,
            "aurora-dev",
        ),
    ];
    for (arn, kind, id) in cases {
        let w = Wanted::parse(arn).unwrap();
        assert_eq!((w.kind, w.id.as_str()), (Some(kind), id), "{arn}");
        assert!(w.account.is_some() && w.region.is_some());
    }
    for bad in [
        "",
        "arn:aws:s3:::bucket",
        "arn:aws:ec2:r:1:volume/vol-1",
        "arn:aws:rds:r:1:snapshot:x",
        "arn:aws:ec2:r:1:instance/",
    ] {
        assert!(matches!(Wanted::parse(bad), Err(OverrideError::Resource(_))), "{bad}");
    }
}

#[test]
fn only_a_resource_that_follows_a_schedule_is_overridden() {
    let cfg = fixtures::config();
    let now = at(NOW);
    let until = at("2026-11-25T15:00:00Z");
    let set = Request::Set {
        state: State::Running,
        until,
    };
    for (tags, says) in [
        (vec![], "no `Schedule` tag"),
        (vec![("Schedule", "always-on")], "always on"),
        (vec![("Schedule", "no-such-schedule")], "invalid"),
    ] {
        let err = decide(&cfg, &seen(&tags), set, now).unwrap_err().to_string();
        assert!(err.contains(says) && err.contains("i-0abc"), "{err}");
    }
    let d = decide(&cfg, &seen(&[("Schedule", "office-hours")]), set, now).unwrap();
    assert_eq!(d.value.as_deref(), Some("running until 2026-11-25T15:00:00Z"));
    assert!(d.write && d.note.is_none());
    assert_eq!(d.schedule, "office-hours");
    // Written already: nothing to write.
    let again = seen(&[
        ("Schedule", "office-hours"),
        (TAG_OVERRIDE, "running until 2026-11-25T15:00:00Z"),
    ]);
    assert!(!decide(&cfg, &again, set, now).unwrap().write);
}

#[test]
fn an_override_is_capped_as_the_daemon_caps_it_and_a_past_time_is_refused() {
    let cfg = fixtures::config();
    let now = at(NOW);
    let s = seen(&[("Schedule", "office-hours")]);
    let far = Request::Set {
        state: State::Stopped,
        until: now + chrono::Duration::days(30),
    };
    let d = decide(&cfg, &s, far, now).unwrap();
    // The cap is max_override_hours from now (the fixture's config: the default 24 h).
    assert_eq!(cfg.max_override, chrono::Duration::hours(24));
    assert_eq!(d.value.as_deref(), Some("stopped until 2026-11-26T12:00:00Z"));
    assert!(d.note.unwrap().contains("capped"));
    let past = Request::Set {
        state: State::Running,
        until: now,
    };
    assert!(matches!(decide(&cfg, &s, past, now), Err(OverrideError::Past { .. })));
}

#[test]
fn clearing_removes_the_tag_only_where_there_is_one() {
    let cfg = fixtures::config();
    let now = at(NOW);
    let with = seen(&[
        ("Schedule", "office-hours"),
        (TAG_OVERRIDE, "running until 2026-11-25T15:00:00Z"),
    ]);
    let d = decide(&cfg, &with, Request::Clear, now).unwrap();
    assert!(d.write && d.value.is_none());
    assert!(
        !decide(&cfg, &seen(&[("Schedule", "office-hours")]), Request::Clear, now)
            .unwrap()
            .write
    );
    // An untagged resource is refused even for --clear.
    assert!(decide(&cfg, &seen(&[]), Request::Clear, now).is_err());
}
