use super::*;
use crate::fixtures::at;
use crate::kind::{Observation, ResourceType};

fn cfg() -> Config {
    crate::fixtures::config_from(
        "timezone: Asia/Seoul\nteam_tag: Team\nschedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\n",
    )
}

fn seen(kind: ResourceType, id: &str, state: &'static str, tags: &[(&str, &str)]) -> Seen {
    Seen {
        account: "111111111111".into(),
        region: "ap-northeast-2".into(),
        resource_type: kind,
        id: id.into(),
        tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        observation: Observation {
            state,
            priced_type: None,
            units: 1,
            since: None,
        },
    }
}

fn inventory() -> Vec<Seen> {
    use ResourceType::*;
    vec![
        seen(
            Instance,
            "i-a",
            "running",
            &[("Schedule", "office-hours"), ("Team", "search")],
        ),
        seen(
            AutoScalingGroup,
            "web",
            "running",
            &[("Schedule", "office-hours"), ("Team", "<b>ads</b>")],
        ),
        seen(DbInstance, "dev-db", "running", &[("Schedule", "office-hours")]),
        seen(
            Instance,
            "i-stopped",
            "stopped",
            &[("Schedule", "office-hours"), ("Team", "search")],
        ),
        seen(Instance, "i-untagged", "running", &[("Team", "search")]),
        seen(Instance, "i-always", "running", &[("Schedule", "always-on")]),
        // Held up past the stop (20:00 KST = 11:00Z): not stopping.
        seen(
            Instance,
            "i-held",
            "running",
            &[
                ("Schedule", "office-hours"),
                ("offhours:override", "running until 2026-11-25T13:00:00Z"),
            ],
        ),
        // Held only until 19:55 KST: it stops with the rest.
        seen(
            Instance,
            "i-short",
            "running",
            &[
                ("Schedule", "office-hours"),
                ("offhours:override", "running until 2026-11-25T10:55:00Z"),
                ("Team", "search"),
            ],
        ),
    ]
}

#[test]
fn a_stop_within_the_notice_window_lists_what_will_stop_by_team() {
    let c = cfg();
    // Wednesday 19:50 in Seoul; the stop is at 20:00 (11:00 UTC).
    let now = at("2026-11-25T10:50:00Z");
    let due = due(&c, &inventory(), now, Duration::minutes(15));
    assert_eq!(due.len(), 1, "{due:?}");
    let n = &due[0];
    assert_eq!(
        (n.schedule.as_str(), n.at),
        ("office-hours", at("2026-11-25T11:00:00Z"))
    );
    let ids = |team: Option<&str>| -> Vec<&str> {
        n.by_team[&team.map(String::from)]
            .iter()
            .map(|r| r.id.as_str())
            .collect()
    };
    assert_eq!(ids(Some("search")), ["i-a", "i-short"]);
    assert_eq!(ids(Some("<b>ads</b>")), ["web"]);
    assert_eq!(ids(None), ["dev-db"]);
    assert_eq!(n.by_team.len(), 3);

    let text = message(n, now)["text"].as_str().unwrap().to_string();
    assert!(
        text.contains("stops 4 resources at 2026-11-25 20:00 KST (11:00 UTC), in 10 min"),
        "{text}"
    );
    assert!(
        text.contains("&lt;b&gt;ads&lt;/b&gt;") && !text.contains("<b>"),
        "escaped: {text}"
    );
    assert!(text.contains("offhours override <id>"), "{text}");

    // Outside the window (19:40 with 15 minutes' notice), and after the stop: nothing.
    assert!(super::due(&c, &inventory(), at("2026-11-25T10:40:00Z"), Duration::minutes(15)).is_empty());
    assert!(super::due(&c, &inventory(), at("2026-11-25T11:00:00Z"), Duration::minutes(15)).is_empty());
}

#[test]
fn each_stop_is_told_once_and_a_failed_delivery_is_tried_again() {
    let c = cfg();
    let mut told = Told::default();
    let first = at("2026-11-25T10:46:00Z");
    let n = told.fresh(due(&c, &inventory(), first, Duration::minutes(15)), first);
    assert_eq!(n.len(), 1);
    // Later passes in the same window: told already.
    for m in ["2026-11-25T10:50:00Z", "2026-11-25T10:59:00Z"] {
        assert!(
            told.fresh(due(&c, &inventory(), at(m), Duration::minutes(15)), at(m))
                .is_empty()
        );
    }
    // A failed delivery is forgotten, so the next pass tells it.
    told.failed(&n[0]);
    let again = told.fresh(
        due(&c, &inventory(), at("2026-11-25T10:55:00Z"), Duration::minutes(15)),
        at("2026-11-25T10:55:00Z"),
    );
    assert_eq!(again.len(), 1);
    // Thursday's stop is a new transition.
    let thu = at("2026-11-26T10:50:00Z");
    let next = told.fresh(due(&c, &inventory(), thu, Duration::minutes(15)), thu);
    assert_eq!(next[0].at, at("2026-11-26T11:00:00Z"));
}

#[test]
fn what_was_told_survives_a_restart() {
    let c = cfg();
    let now = at("2026-11-25T10:50:00Z");
    let mut told = Told::default();
    assert_eq!(
        told.fresh(due(&c, &inventory(), now, Duration::minutes(15)), now).len(),
        1
    );
    let mut again = Told::from_json(&told.to_json());
    assert_eq!(again, told);
    assert!(
        again
            .fresh(due(&c, &inventory(), now, Duration::minutes(15)), now)
            .is_empty()
    );
    // A record that cannot be read starts empty.
    assert_eq!(Told::from_json("not json"), Told::default());
}
