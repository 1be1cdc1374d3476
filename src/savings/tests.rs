use super::*;
use crate::fixtures::at;
use crate::kind::{Observation, ResourceType};

fn cfg(extra: &str) -> Config {
    crate::fixtures::config_from(&format!(
        "timezone: Asia/Seoul\nteam_tag: Team\nholidays:\n  xmas:\n    dates: [2026-12-25]\nschedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\n  office-hours-xmas:\n    running: [\"Mon-Fri 08:00-20:00\"]\n    holidays: xmas\n{extra}"
    ))
}

fn seen(kind: ResourceType, id: &str, region: &str, ty: Option<&str>, units: u32, tags: &[(&str, &str)]) -> Seen {
    Seen {
        account: "111111111111".into(),
        region: region.into(),
        resource_type: kind,
        id: id.into(),
        tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        observation: Observation {
            state: "running",
            priced_type: ty.map(String::from),
            units,
            since: None,
        },
    }
}

#[test]
fn the_bundled_table_is_well_formed_and_dated() {
    let rows: Vec<&str> = BUNDLED.lines().filter(|l| !l.starts_with('#')).skip(1).collect();
    assert!(rows.len() > 50);
    let mut keys = std::collections::BTreeSet::new();
    for r in rows {
        let f: Vec<&str> = r.split(',').collect();
        assert_eq!(f.len(), 3, "{r}");
        let p: f64 = f[2].parse().unwrap();
        assert!(p > 0.0 && p < 10.0, "{r}");
        assert!(keys.insert((f[0], f[1])), "twice: {r}");
    }
    assert!(bundled_source().contains("dated 20"), "{}", bundled_source());
    // Larger sizes of a family cost more.
    let p = Prices::new(&BTreeMap::new());
    let t3 = |t: &str| p.of("us-east-1", Some(t)).unwrap().0;
    assert!(t3("t3.micro") < t3("t3.small") && t3("t3.small") < t3("t3.large"));
}

#[test]
fn hours_off_walk_the_window_with_its_holidays() {
    let c = cfg("");
    // From Monday 2026-11-30 00:00 in Seoul, 30 days: four whole weeks (108 h off each: 168
    // minus five 12-hour days) and Monday and Tuesday (12 h off each).
    let from = at("2026-11-29T15:00:00Z");
    let plain = c.schedule("office-hours").unwrap();
    assert_eq!(hours_off(plain, from, 30), 4.0 * 108.0 + 24.0);
    // Christmas (a Friday) off: 12 more hours.
    let xmas = c.schedule("office-hours-xmas").unwrap();
    assert_eq!(hours_off(xmas, from, 30), 4.0 * 108.0 + 24.0 + 12.0);
    // From Wednesday 19:00: the first hour runs, then the evening is off.
    assert_eq!(hours_off(plain, at("2026-12-02T10:00:00Z"), 1), 12.0);
    // Five windows a day (ten transitions): 19 hours off each of the 30 days.
    let many = cfg(
        "  hourly:\n    running: [\"Mon-Sun 00:00-01:00\", \"Mon-Sun 02:00-03:00\", \"Mon-Sun 04:00-05:00\", \"Mon-Sun 06:00-07:00\", \"Mon-Sun 08:00-09:00\"]\n",
    );
    assert_eq!(hours_off(many.schedule("hourly").unwrap(), from, 30), 30.0 * 19.0);
    // A start-only schedule never stops anything: it saves nothing.
    let start_only = cfg("  starter:\n    running: [\"Mon-Fri 08:00-20:00\"]\n    mode: start-only\n");
    assert_eq!(hours_off(start_only.schedule("starter").unwrap(), from, 30), 0.0);
}

#[test]
fn a_projection_prices_by_config_then_bundled_table_then_default_and_groups_by_key() {
    use ResourceType::*;
    let c = cfg("instance_hour_prices:\n  m5.large: 0.5\n  db.t3.micro: 0.02\n  \"*\": 0.01\n");
    let inv = vec![
        seen(
            Instance,
            "i-config",
            "us-east-1",
            Some("m5.large"),
            1,
            &[("Schedule", "office-hours"), ("Team", "a")],
        ),
        seen(
            Instance,
            "i-bundled",
            "us-east-1",
            Some("t3.micro"),
            1,
            &[("Schedule", "office-hours"), ("Team", "a")],
        ),
        seen(
            AutoScalingGroup,
            "web",
            "us-east-1",
            Some("t3.large"),
            3,
            &[("Schedule", "office-hours-xmas"), ("Team", "b")],
        ),
        seen(
            DbInstance,
            "db",
            "us-east-1",
            Some("db.r9.huge"),
            1,
            &[("Schedule", "office-hours")],
        ),
        seen(Instance, "i-untagged", "us-east-1", Some("t3.micro"), 1, &[]),
        seen(
            Instance,
            "i-always",
            "us-east-1",
            Some("t3.micro"),
            1,
            &[("Schedule", "always-on")],
        ),
        seen(
            Instance,
            "i-bad",
            "us-east-1",
            Some("t3.micro"),
            1,
            &[("Schedule", "nope")],
        ),
    ];
    let now = at("2026-11-29T15:00:00Z");
    let prices = Prices::new(&c.raw.instance_hour_prices);
    let p = project(&c, &inv, &prices, now, By::Team, c.schedule("office-hours"));
    let line = |id: &str| p.resources.iter().find(|l| l.resource_id == id).unwrap();
    let month = 4.0 * 108.0 + 24.0;
    assert_eq!(line("i-config").hourly_price, Some(0.5));
    assert_eq!(line("i-config").price_source, Some(PriceSource::Config));
    assert_eq!(line("i-bundled").hourly_price, Some(0.0104));
    assert_eq!(line("i-bundled").price_source, Some(PriceSource::Bundled));
    assert_eq!(line("db").price_source, Some(PriceSource::ConfigDefault));
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    assert!(close(line("i-config").per_month, month * 0.5));
    assert!(close(line("i-config").per_week, month * 0.5 * 7.0 / 30.0));
    // A group: its units times its type's price, over its own schedule's hours.
    assert!(close(line("web").per_month, (month + 12.0) * 3.0 * 0.0832));
    assert_eq!(
        p.resources.len(),
        4,
        "the invalid tag, the untagged and always-on are not scheduled"
    );
    assert!(close(p.groups["a"].per_month, month * (0.5 + 0.0104)));
    assert!(close(
        p.groups["b"].instance_hours_per_week,
        (month + 12.0) * 3.0 * 7.0 / 30.0
    ));
    assert!(close(p.groups["(no team)"].per_month, month * 0.01));
    assert!(close(p.total.per_month, p.groups.values().map(|g| g.per_month).sum()));
    // The potential: the untagged and the always-on one on office-hours.
    let pot = p.potential.as_ref().unwrap();
    let ids: Vec<&str> = pot.resources.iter().map(|l| l.resource_id.as_str()).collect();
    assert_eq!(ids, ["i-untagged", "i-always"]);
    assert!(close(pot.total.per_month, 2.0 * month * 0.0104));
}

#[test]
fn csv_quotes_and_defuses_what_tags_wrote() {
    assert_eq!(csv_cell("plain"), "plain");
    assert_eq!(csv_cell("a,b"), "\"a,b\"");
    assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
    assert_eq!(csv_cell("-1.5"), "-1.5");
}
