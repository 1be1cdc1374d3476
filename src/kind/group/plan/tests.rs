use super::*;
use std::path::Path;

fn cfg() -> Config {
    let text = "\
timezone: Asia/Seoul
holidays:
  kr:
    dates: [2026-12-25]
schedules:
  office-hours:
    running: [\"Mon-Fri 08:00-20:00\"]
    holidays: kr
  weekend-off:
    stopped: [\"Fri 20:00-Mon 08:00\"]
  nightly-stop:
    running: [\"Mon-Fri 08:00-20:00\"]
    mode: stop-only
  small-nights:
    running: [\"Mon-Fri 08:00-20:00\"]
    stopped_size: \"min=1 max=1 desired=1\"
";
    crate::fixtures::config_from(text)
}

use crate::fixtures::state_key as key;

/// A saved-size tag value as offhours writes it for `g`.
fn sealed(g: &Group, c: Capacity) -> String {
    crate::seal::seal_capacity(&key(), &g.arn, c)
}

/// The group's saved size, if offhours' seal on it verifies.
fn saved_of(g: &Group) -> Option<Capacity> {
    match crate::seal::read_capacity(Some(&key()), &g.arn, g.tag(TAG_SAVED)) {
        crate::seal::Saved::Sealed(c) => Some(c),
        _ => None,
    }
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Wednesday 10:00 KST, and 22:00 KST.
const DAY: &str = "2026-11-25T10:00:00+09:00";
const NIGHT: &str = "2026-11-25T22:00:00+09:00";

fn size(min: i32, max: i32, desired: i32) -> Capacity {
    Capacity { min, max, desired }
}

/// A group, built for tests.
fn group(name: &str, capacity: Capacity) -> Group {
    Group::test(name).sized(capacity)
}

/// When a registered action fires next after `now`, by brute force (minute by minute in its
/// zone, for a week and a day): the fake's own oracle, independent of offhours' evaluators.
/// Knows the recurrences offhours and these tests write (`M H * * DOW`).
fn brute_time(a: &ObservedAction, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    use chrono::{Datelike, Timelike};
    if let Some(s) = a.start_time.filter(|s| *s > now) {
        return Some(s);
    }
    let r = a.recurrence.as_deref()?;
    let f: Vec<&str> = r.split(' ').collect();
    let (minute, hour): (u32, u32) = (f[0].parse().unwrap(), f[1].parse().unwrap());
    assert_eq!((f[2], f[3]), ("*", "*"), "{r}");
    let mut days = [false; 7];
    for part in f[4].split(',') {
        match part.split_once('-') {
            _ if part == "*" => days = [true; 7],
            Some((x, y)) => (x.parse::<usize>().unwrap()..=y.parse().unwrap()).for_each(|d| days[d % 7] = true),
            None => days[part.parse::<usize>().unwrap() % 7] = true,
        }
    }
    let tz: chrono_tz::Tz = a.time_zone.as_deref().unwrap_or("UTC").parse().unwrap();
    let mut t = now.with_second(0).unwrap().with_nanosecond(0).unwrap();
    for _ in 0..(8 * 24 * 60) {
        t += chrono::Duration::minutes(1);
        let l = t.with_timezone(&tz);
        if l.minute() == minute && l.hour() == hour && days[l.weekday().num_days_from_sunday() as usize] {
            return a.end_time.is_none_or(|e| t <= e).then_some(t);
        }
    }
    None
}

/// Applies a plan to a group as AWS would ([`crate::fixtures::apply_group_change`], the
/// in-memory cloud's model too), refusing (by panicking) a put at a time another action of
/// the group holds, as AWS refuses it.
fn apply(g: &mut Group, plan: &GroupPlan, now: DateTime<Utc>) {
    for step in &plan.steps {
        let GroupChange::PutScheduledActions { actions } = &step.change else {
            crate::fixtures::apply_group_change(g, &step.change);
            continue;
        };
        // One action at a time, so each is checked against those put before it too.
        for a in actions {
            let t = brute_time(&ObservedAction::from(a), now);
            for o in g.actions.iter().filter(|o| o.name != a.name) {
                assert!(
                    t.is_none() || brute_time(o, now) != t,
                    "AWS refuses `{}` at {t:?}: `{}` holds that time\n{plan:#?}",
                    a.name,
                    o.name
                );
            }
            let one = GroupChange::PutScheduledActions {
                actions: vec![a.clone()],
            };
            crate::fixtures::apply_group_change(g, &one);
        }
    }
}

fn kinds(p: &GroupPlan) -> Vec<&'static str> {
    p.steps.iter().map(|s| s.change.kind()).collect()
}

/// Plans, applies, and checks that the next pass finds nothing to do.
fn converge(c: &Config, g: &mut Group, now: &str) -> GroupPlan {
    let p = plan_group(c, g, at(now));
    apply(g, &p, at(now));
    let again = plan_group(c, g, at(now));
    assert!(again.steps.is_empty(), "second pass is not empty: {again:#?}");
    p
}

#[test]
fn newly_tagged_group_saves_its_size_first_and_registers_actions() {
    let c = cfg();
    let mut g = group("web", size(1, 4, 2)).tagged("Schedule", "office-hours");
    let p = converge(&c, &mut g, DAY);
    assert_eq!(kinds(&p), vec!["save-capacity", "put-scheduled-actions", "set-tags"]);
    assert_eq!(saved_of(&g), Some(size(1, 4, 2)));
    assert_eq!(g.tag(TAG_SCHEDULE), Some("office-hours"));
    assert_eq!(g.capacity, size(1, 4, 2), "daytime: left running");
    assert!(
        g.actions
            .iter()
            .any(|a| a.recurrence.as_deref() == Some("0 8 * * 1-5") && a.capacity() == Some(size(1, 4, 2)))
    );
    assert!(
        g.actions
            .iter()
            .any(|a| a.recurrence.as_deref() == Some("0 20 * * 1-5") && a.capacity() == Some(Capacity::ZERO))
    );
}

#[test]
fn group_tagged_at_night_is_scaled_down_after_its_size_is_saved() {
    let c = cfg();
    let mut g = group("web", size(1, 4, 2)).tagged("Schedule", "office-hours");
    let p = converge(&c, &mut g, NIGHT);
    assert_eq!(
        kinds(&p),
        vec!["save-capacity", "put-scheduled-actions", "set-capacity", "set-tags"]
    );
    assert_eq!(g.capacity, Capacity::ZERO);
    assert_eq!(saved_of(&g), Some(size(1, 4, 2)));
}

#[test]
fn resize_during_the_running_window_moves_the_saved_size_and_start_actions() {
    let c = cfg();
    let mut g = group("web", size(1, 4, 2)).tagged("Schedule", "office-hours");
    converge(&c, &mut g, DAY);
    g.capacity = size(2, 6, 3);
    let p = converge(&c, &mut g, DAY);
    assert_eq!(kinds(&p), vec!["save-capacity", "put-scheduled-actions"]);
    let GroupChange::PutScheduledActions { actions } = &p.steps[1].change else {
        unreachable!()
    };
    assert!(
        actions
            .iter()
            .all(|a| a.action == Action::Start && a.capacity == size(2, 6, 3)),
        "only start actions change"
    );
}

#[test]
fn a_stopped_group_keeps_its_saved_size() {
    let c = cfg();
    let mut g = group("web", size(1, 4, 2)).tagged("Schedule", "office-hours");
    converge(&c, &mut g, DAY);
    // AWS fires the stop action at 20:00.
    g.capacity = Capacity::ZERO;
    let p = plan_group(&c, &g, at(NIGHT));
    assert!(p.steps.is_empty(), "{p:#?}");
}

#[test]
fn group_untagged_while_stopped_is_restored_to_saved_size() {
    let c = cfg();
    let mut g = group("web", size(1, 4, 2)).tagged("Schedule", "office-hours");
    converge(&c, &mut g, NIGHT);
    g.tags.remove("Schedule");
    let p = converge(&c, &mut g, NIGHT);
    assert_eq!(
        kinds(&p),
        vec!["delete-scheduled-actions", "set-capacity", "remove-tags"]
    );
    assert_eq!(g.capacity, size(1, 4, 2));
    assert!(g.actions.is_empty());
    assert!(g.tags.keys().all(|k| !k.starts_with("offhours:")));
}

#[test]
fn group_set_to_always_on_while_running_keeps_its_size() {
    let c = cfg();
    let mut g = group("web", size(1, 4, 2)).tagged("Schedule", "office-hours");
    converge(&c, &mut g, DAY);
    g.tags.insert("Schedule".into(), "always-on".into());
    let p = converge(&c, &mut g, DAY);
    assert_eq!(kinds(&p), vec!["delete-scheduled-actions", "remove-tags"]);
    assert_eq!(g.capacity, size(1, 4, 2));
}

#[test]
fn schedule_change_registers_new_actions_before_deleting_old_ones() {
    let c = cfg();
    let mut g = group("web", size(1, 4, 2)).tagged("Schedule", "office-hours");
    converge(&c, &mut g, DAY);
    g.tags.insert("Schedule".into(), "weekend-off".into());
    let p = converge(&c, &mut g, DAY);
    assert_eq!(
        kinds(&p),
        vec!["put-scheduled-actions", "delete-scheduled-actions", "set-tags"]
    );
    assert!(g.actions.iter().any(|a| a.recurrence.as_deref() == Some("0 20 * * 5")));
    assert!(g.actions.iter().all(|a| a.recurrence.as_deref() != Some("0 8 * * 1-5")));
}

#[test]
fn foreign_actions_are_never_touched_but_count_against_the_quota() {
    let c = cfg();
    let foreign = ObservedAction {
        name: "team-scale-up".into(),
        recurrence: Some("0 9 * * *".into()),
        min: Some(3),
        ..Default::default()
    };
    let mut g = group("web", size(1, 4, 2))
        .tagged("Schedule", "office-hours")
        .with_action(foreign.clone());
    converge(&c, &mut g, DAY);
    g.tags.remove("Schedule");
    converge(&c, &mut g, DAY);
    assert_eq!(g.actions, vec![foreign.clone()]);

    let mut crowded = group("api", size(1, 4, 2)).tagged("Schedule", "office-hours");
    for i in 0..124 {
        crowded = crowded.with_action(ObservedAction {
            name: format!("team-{i}"),
            ..foreign.clone()
        });
    }
    let p = plan_group(&c, &crowded, at(DAY));
    assert!(p.error.as_deref().unwrap().contains("only 1 fit"), "{p:#?}");
    assert_eq!(kinds(&p), vec!["set-tags"]);
}

#[test]
fn bad_tag_leaves_the_group_alone_and_sets_an_error_tag_until_fixed() {
    let c = cfg();
    let mut g = group("web", size(1, 4, 2)).tagged("Schedule", "office-hours");
    converge(&c, &mut g, DAY);
    let before = g.actions.clone();
    g.tags.insert("Schedule".into(), "office-hour".into());
    let p = converge(&c, &mut g, DAY);
    assert_eq!(kinds(&p), vec!["set-tags"]);
    assert!(p.error.as_deref().unwrap().contains("unknown schedule `office-hour`"));
    assert!(g.tag(TAG_ERROR).unwrap().contains("office-hour"));
    assert_eq!(g.actions, before, "actions untouched");
    // The error is still reported on later passes, with nothing to change.
    assert!(plan_group(&c, &g, at(DAY)).error.is_some());

    g.tags.insert("Schedule".into(), "office-hours".into());
    let p = converge(&c, &mut g, DAY);
    assert_eq!(kinds(&p), vec!["remove-tags"]);
    assert!(g.tag(TAG_ERROR).is_none());
}

#[test]
fn inline_expression_is_an_error_unless_the_config_allows_it() {
    let c = cfg();
    let g = group("web", size(1, 4, 2)).tagged("Schedule", "Mon-Fri 09:00-18:00");
    assert!(
        plan_group(&c, &g, at(DAY))
            .error
            .unwrap()
            .contains("inline expressions are not allowed")
    );
    let mut inline = cfg();
    inline.allow_inline = true;
    let mut g = g;
    let p = converge(&inline, &mut g, DAY);
    assert!(p.error.is_none());
    assert!(g.actions.iter().any(|a| a.recurrence.as_deref() == Some("0 9 * * 1-5")));
}

#[test]
fn group_at_zero_with_no_saved_size_is_reported_and_left_alone() {
    let c = cfg();
    let g = group("web", Capacity::ZERO).tagged("Schedule", "office-hours");
    let p = plan_group(&c, &g, at(DAY));
    assert!(p.steps.is_empty());
    assert!(p.notes[0].contains("0/0/0"), "{p:#?}");
}

#[test]
fn saved_size_deleted_by_hand_is_recovered_from_the_start_actions() {
    let c = cfg();
    let mut g = group("web", size(1, 4, 2)).tagged("Schedule", "office-hours");
    converge(&c, &mut g, NIGHT);
    g.tags.remove(TAG_SAVED);
    let p = converge(&c, &mut g, NIGHT);
    assert_eq!(kinds(&p), vec!["save-capacity"]);
    assert_eq!(saved_of(&g), Some(size(1, 4, 2)));
}

#[test]
fn untagged_groups_without_offhours_traces_are_never_touched() {
    let c = cfg();
    let g = group("web", Capacity::ZERO).tagged("Team", "payments");
    let p = plan_group(&c, &g, at(DAY));
    assert_eq!(p, GroupPlan::new("web", None));
}

#[test]
fn stop_only_group_is_not_started_when_tagged_during_the_day_nor_restarted_at_night() {
    let c = cfg();
    let mut g = group("web", size(1, 4, 2)).tagged("Schedule", "nightly-stop");
    converge(&c, &mut g, NIGHT);
    assert_eq!(g.capacity, Capacity::ZERO, "stop-only still stops");
    assert!(g.actions.iter().all(|a| a.capacity() == Some(Capacity::ZERO)));
    // The next day it stays down: stop-only never starts it (no start action, no scale-up).
    let p = converge(&c, &mut g, "2026-11-26T10:00:00+09:00");
    assert!(p.steps.iter().all(|s| s.change.kind() != "set-capacity"), "{p:#?}");
    assert_eq!(g.capacity, Capacity::ZERO);
    // Tagged during the day while down (its size sealed): not started either.
    let mut down = group("api", Capacity::ZERO).tagged("Schedule", "nightly-stop");
    down.tags.insert(TAG_SAVED.into(), sealed(&down, size(1, 4, 2)));
    let p = converge(&c, &mut down, DAY);
    assert!(p.steps.iter().all(|s| s.change.kind() != "set-capacity"), "{p:#?}");
    assert_eq!(down.capacity, Capacity::ZERO);
    assert!(down.actions.iter().all(|a| a.capacity() == Some(Capacity::ZERO)));
}

#[test]
fn aws_reporting_the_next_firing_as_start_time_is_not_a_difference() {
    let c = cfg();
    let mut g = group("web", size(1, 4, 2)).tagged("Schedule", "office-hours");
    converge(&c, &mut g, DAY);
    for a in &mut g.actions {
        if a.recurrence.as_deref() == Some("0 8 * * 1-5") {
            a.start_time = Some(at("2026-11-26T08:00:00+09:00"));
        }
    }
    assert!(plan_group(&c, &g, at(DAY)).steps.is_empty());
    // A StartTime that would hold back Thursday's start is a difference.
    for a in &mut g.actions {
        if a.recurrence.as_deref() == Some("0 8 * * 1-5") {
            a.start_time = Some(at("2026-11-27T08:00:00+09:00"));
        }
    }
    assert_eq!(kinds(&plan_group(&c, &g, at(DAY))), vec!["put-scheduled-actions"]);
}

#[test]
fn a_week_of_daily_passes_settles_after_each_and_holidays_move_in_at_the_edge() {
    let c = cfg();
    let mut g = group("web", size(1, 4, 2)).tagged("Schedule", "office-hours");
    let mut changed_days = 0;
    let mut christmas_cut = false;
    for day in 0..30 {
        let now = at("2026-11-20T12:00:00Z") + chrono::Duration::days(day);
        let p = plan_group(&c, &g, now);
        changed_days += usize::from(!p.steps.is_empty());
        apply(&mut g, &p, now);
        assert!(plan_group(&c, &g, now).steps.is_empty());
        // The start that would fire on Christmas morning is cut out: a start action ends
        // before it, and one resumes after it.
        christmas_cut |= g
            .actions
            .iter()
            .any(|a| a.capacity() != Some(Capacity::ZERO) && a.end_time == Some(at("2026-12-24T20:00:00+09:00")))
            && g.actions
                .iter()
                .any(|a| a.capacity() != Some(Capacity::ZERO) && a.start_time == Some(at("2026-12-28T08:00:00+09:00")));
    }
    assert!(christmas_cut, "the holiday never entered the actions");
    // The first pass, the day Christmas enters the 21-day horizon, and the days its
    // segments expire: nothing else.
    assert!(changed_days <= 4, "{changed_days} passes changed something");
}

#[test]
fn an_override_keeps_the_group_up_past_its_stop_and_the_schedule_resumes_after() {
    let c = cfg();
    let mut g = group("web", size(1, 4, 2)).tagged("Schedule", "office-hours");
    converge(&c, &mut g, DAY);
    g.tags.insert(
        "offhours:override".into(),
        "running until 2026-11-25T23:00+09:00".into(),
    );
    // During the day: the 20:00 stop is cut out and a one-time stop sits at 23:00.
    let p = converge(&c, &mut g, DAY);
    assert_eq!(kinds(&p), vec!["put-scheduled-actions"]);
    let stops: Vec<&ObservedAction> = g
        .actions
        .iter()
        .filter(|a| a.capacity() == Some(Capacity::ZERO))
        .collect();
    assert!(
        stops
            .iter()
            .any(|a| a.recurrence.is_none() && a.start_time == Some(at("2026-11-25T23:00:00+09:00"))),
        "{stops:#?}"
    );
    assert!(
        stops
            .iter()
            .filter(|a| a.recurrence.is_some())
            .all(|a| a.start_time.is_some_and(|t| t > at("2026-11-25T23:00:00+09:00"))),
        "tonight's recurring stop cannot fire: {stops:#?}"
    );
    // Scaled down by hand at 21:00: the override puts it back.
    g.capacity = Capacity::ZERO;
    let p = converge(&c, &mut g, "2026-11-25T21:00:00+09:00");
    assert_eq!(kinds(&p), vec!["set-capacity"]);
    assert_eq!(g.capacity, size(1, 4, 2));
    // Expired: tag removed, the schedule's state (off) applies now, actions return to plain.
    let p = converge(&c, &mut g, "2026-11-25T23:00:30+09:00");
    assert!(
        kinds(&p).contains(&"remove-tags") && kinds(&p).contains(&"set-capacity"),
        "{p:#?}"
    );
    assert_eq!(g.capacity, Capacity::ZERO);
    assert!(!g.tags.contains_key("offhours:override"));
    assert!(p.notes[0].contains("expired"));
}

#[test]
fn an_invalid_group_override_is_an_error_and_changes_nothing() {
    let c = cfg();
    let mut g = group("web", size(1, 4, 2)).tagged("Schedule", "office-hours");
    converge(&c, &mut g, DAY);
    g.tags.insert("offhours:override".into(), "running for a while".into());
    let p = plan_group(&c, &g, at(DAY));
    assert_eq!(kinds(&p), vec!["set-tags"]);
    assert!(p.error.unwrap().contains("invalid override"));
}

fn recurring(name: &str, recurrence: &str, zone: &str, c: Capacity) -> ObservedAction {
    ObservedAction {
        name: name.into(),
        recurrence: Some(recurrence.into()),
        time_zone: Some(zone.into()),
        min: Some(c.min),
        max: Some(c.max),
        desired: Some(c.desired),
        ..Default::default()
    }
}

#[test]
fn a_foreign_action_at_offhours_time_is_an_error_naming_both_and_the_size_is_still_saved() {
    let c = cfg();
    let mut g = group("web", size(1, 4, 2))
        .tagged("Schedule", "office-hours")
        .with_action(recurring("team-morning", "0 8 * * 1-5", "Asia/Seoul", size(2, 4, 2)));
    let p = plan_group(&c, &g, at(DAY));
    assert_eq!(kinds(&p), vec!["save-capacity", "set-tags"], "{p:#?}");
    let e = p.error.clone().unwrap();
    assert!(e.contains("`team-morning`"), "{e}");
    assert!(e.contains("-start-0800-1-5`"), "{e}");
    assert!(e.contains("2026-11-26 08:00 KST"), "{e}");
    apply(&mut g, &p, at(DAY));
    assert_eq!(saved_of(&g), Some(size(1, 4, 2)));
    assert!(g.tags[TAG_ERROR].contains("team-morning"));
    assert_eq!(g.capacity, size(1, 4, 2), "not scaled: nothing would start it again");
    assert_eq!(g.actions.len(), 1, "the team's action is untouched");
    // Moved to 07:30 by its owner: offhours schedules the group and clears the error.
    g.actions[0] = recurring("team-morning", "30 7 * * 1-5", "Asia/Seoul", size(2, 4, 2));
    converge(&c, &mut g, DAY);
    assert!(!g.tags.contains_key(TAG_ERROR));
    assert_eq!(g.actions.len(), 3);
}

#[test]
fn a_holiday_cut_replaces_the_next_firing_in_place_and_never_collides() {
    let c = cfg();
    let mut g = group("web", size(1, 4, 2)).tagged("Schedule", "office-hours");
    // Before Christmas is in the 21-day horizon: one start action, one stop action.
    converge(&c, &mut g, "2026-12-01T12:00:00+09:00");
    assert_eq!(g.actions.len(), 2);
    let start = g
        .actions
        .iter()
        .find(|a| a.name.contains("-start-"))
        .unwrap()
        .name
        .clone();
    // Christmas enters the horizon: the start splits; the segment that fires next keeps the
    // registered name (an AWS-like apply panics on any put at a held time).
    let p = converge(&c, &mut g, "2026-12-05T12:00:00+09:00");
    assert_eq!(kinds(&p), vec!["put-scheduled-actions"], "{p:#?}");
    let first = g.actions.iter().find(|a| a.name == start).unwrap();
    assert_eq!(first.end_time, Some(at("2026-12-24T20:00:00+09:00")), "{first:#?}");
    assert!(first.start_time.is_none());
    let after = g
        .actions
        .iter()
        .find(|a| a.name != start && a.name.contains("-start-"))
        .unwrap();
    assert_eq!(after.start_time, Some(at("2026-12-28T08:00:00+09:00")));
}

#[test]
fn a_one_time_transition_too_near_to_register_is_applied_directly() {
    let c = cfg();
    // An override that ends at 21:00:30 KST, newly tagged at 21:00: a one-time stop is due
    // in 30 s, too near to register (AWS refuses a StartTime in the past).
    let mut g = group("web", size(1, 4, 2))
        .tagged("Schedule", "office-hours")
        .tagged("offhours:override", "running until 2026-11-25T21:00:30+09:00");
    let now = at("2026-11-25T21:00:00+09:00");
    let p = plan_group(&c, &g, now);
    let puts: Vec<&ScheduledAction> = p
        .steps
        .iter()
        .filter_map(|s| match &s.change {
            GroupChange::PutScheduledActions { actions } => Some(actions),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(
        puts.iter()
            .all(|a| a.start_time.is_none_or(|t| t > now + compile::START_TIME_LEAD)),
        "{puts:#?}"
    );
    assert!(
        p.steps.iter().any(|s| s.change
            == GroupChange::SetCapacity {
                capacity: Capacity::ZERO
            }),
        "{p:#?}"
    );
    apply(&mut g, &p, now);
    assert_eq!(g.capacity, Capacity::ZERO);
}

#[test]
fn a_zone_link_is_registered_as_its_canonical_zone_and_a_zone_change_replaces_in_place() {
    let text = "schedules:\n  us:\n    running: [\"Mon-Fri 08:00-20:00\"]\n    timezone: US/Eastern\n";
    let c = Config::parse(text, Path::new("t.yaml")).unwrap().with_state_key(key());
    let mut g = group("web", size(1, 4, 2)).tagged("Schedule", "us");
    converge(&c, &mut g, "2026-11-25T15:00:00Z");
    assert!(
        g.actions
            .iter()
            .all(|a| a.time_zone.as_deref() == Some("America/New_York"))
    );
    let names: Vec<String> = g.actions.iter().map(|a| a.name.clone()).collect();
    let c2 = Config::parse(&text.replace("US/Eastern", "America/Chicago"), Path::new("t.yaml"))
        .unwrap()
        .with_state_key(key());
    let p = converge(&c2, &mut g, "2026-11-25T15:00:00Z");
    assert_eq!(kinds(&p), vec!["put-scheduled-actions"]);
    assert!(
        g.actions
            .iter()
            .all(|a| a.time_zone.as_deref() == Some("America/Chicago"))
    );
    let mut now: Vec<String> = g.actions.iter().map(|a| a.name.clone()).collect();
    now.sort();
    let mut before = names;
    before.sort();
    assert_eq!(now, before, "replaced in place, nothing left behind");
}

#[test]
fn a_schedule_turned_around_replaces_each_action_in_place_and_deletes_nothing() {
    // Running 08:00-20:00, then 20:00-08:00: each new action needs the time the old action
    // of the other direction holds. An AWS-like apply panics on any put at a held time; no
    // action is deleted, so a failed put cannot leave the group without a start action.
    let day = "schedules:\n  s:\n    running: [\"Mon-Fri 08:00-20:00\"]\ntimezone: Asia/Seoul\n";
    let night = "schedules:\n  s:\n    running: [\"Mon-Fri 20:00-08:00\"]\ntimezone: Asia/Seoul\n";
    let c1 = Config::parse(day, Path::new("t.yaml")).unwrap().with_state_key(key());
    let c2 = Config::parse(night, Path::new("t.yaml")).unwrap().with_state_key(key());
    let mut g = group("web", size(1, 4, 2)).tagged("Schedule", "s");
    converge(&c1, &mut g, DAY);
    let p = converge(&c2, &mut g, DAY);
    assert_eq!(kinds(&p)[0], "put-scheduled-actions", "{p:#?}");
    assert!(!kinds(&p).contains(&"delete-scheduled-actions"), "{p:#?}");
    assert_eq!(g.actions.len(), 2);
    let at = |r: &str| {
        g.actions
            .iter()
            .find(|a| a.recurrence.as_deref() == Some(r))
            .unwrap()
            .capacity()
    };
    assert_eq!(at("0 20 * * 1-5"), Some(size(1, 4, 2)), "20:00 now starts");
    assert_eq!(at("0 8 * * 2-6"), Some(Capacity::ZERO), "08:00 now stops");
}

#[test]
fn a_forged_saved_size_never_scales_a_group_up() {
    let c = cfg();
    // A scheduled group that offhours stopped: the team writes 5000 over its saved size.
    let mut g = group("web", size(1, 4, 2)).tagged("Schedule", "office-hours");
    converge(&c, &mut g, NIGHT);
    assert_eq!(g.capacity, Capacity::ZERO);
    g.tags.insert(TAG_SAVED.into(), "min=0 max=5000 desired=5000".into());
    let p = converge(&c, &mut g, NIGHT);
    assert!(p.error.as_deref().unwrap().contains("not trusted"), "{p:#?}");
    assert_eq!(g.capacity, Capacity::ZERO, "still stopped");
    assert_eq!(
        saved_of(&g),
        Some(size(1, 4, 2)),
        "the true size, from offhours' start actions, sealed again"
    );
    assert!(
        g.actions.iter().filter_map(|a| a.capacity()).all(|c| c.desired <= 2),
        "no start action restores 5000: {:#?}",
        g.actions
    );
    // A copied seal from another group does not verify either.
    let other = group("api", size(1, 4, 2));
    let copied = sealed(&other, size(0, 5000, 5000));
    g.tags.insert(TAG_SAVED.into(), copied);
    let p = plan_group(&c, &g, at(NIGHT));
    assert!(p.error.as_deref().unwrap().contains("not offhours'"), "{p:#?}");
    assert!(
        p.steps
            .iter()
            .all(|s| !matches!(&s.change, GroupChange::SetCapacity { capacity } if capacity.desired > 2))
    );
}

#[test]
fn a_forged_saved_size_on_an_untagged_group_at_zero_is_reported_and_left_alone() {
    let c = cfg();
    let g = group("idle", Capacity::ZERO).tagged(
        TAG_SAVED,
        "min=0 max=5000 desired=5000 mac=00112233445566778899aabbccddeeff",
    );
    let p = plan_group(&c, &g, at(DAY));
    assert!(p.steps.is_empty(), "nothing written, nothing scaled: {p:#?}");
    assert!(p.error.as_deref().unwrap().contains("not offhours'"), "{p:#?}");
    // Unsealed, with nothing of offhours' to agree with: the same.
    let g = group("idle", Capacity::ZERO).tagged(TAG_SAVED, "min=0 max=5000 desired=5000");
    let p = plan_group(&c, &g, at(DAY));
    assert!(p.steps.is_empty(), "{p:#?}");
    assert!(p.error.as_deref().unwrap().contains("not trusted"), "{p:#?}");
}

#[test]
fn an_unsealed_size_from_an_earlier_offhours_is_sealed_once_where_its_actions_agree() {
    let c = cfg();
    let mut g = group("web", size(1, 4, 2)).tagged("Schedule", "office-hours");
    converge(&c, &mut g, NIGHT);
    g.tags.insert(TAG_SAVED.into(), "min=1 max=4 desired=2".into());
    let p = converge(&c, &mut g, NIGHT);
    assert_eq!(kinds(&p), vec!["save-capacity"], "{p:#?}");
    assert!(p.notes.iter().any(|n| n.contains("sealed now")), "{p:#?}");
    assert_eq!(saved_of(&g), Some(size(1, 4, 2)));
    // At 08:00 AWS's start action restores it; untagging restores the sealed size too.
    g.tags.remove("Schedule");
    converge(&c, &mut g, NIGHT);
    assert_eq!(g.capacity, size(1, 4, 2));
}

#[test]
fn a_group_above_max_restore_capacity_is_not_scheduled_and_says_why() {
    let c = cfg();
    let mut g = group("big", size(10, 400, 200)).tagged("Schedule", "office-hours");
    let p = converge(&c, &mut g, NIGHT);
    assert_eq!(kinds(&p), vec!["set-tags"], "only the error tag: {p:#?}");
    assert!(p.error.unwrap().contains("max_restore_capacity (100)"));
    assert_eq!(
        g.capacity,
        size(10, 400, 200),
        "not scaled down: nothing would restore it"
    );
    assert!(g.actions.is_empty());
}

#[test]
fn without_a_state_key_no_group_is_scheduled() {
    let c = Config::parse(
        "schedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\n",
        Path::new("t.yaml"),
    )
    .unwrap();
    let mut g = group("web", size(1, 4, 2)).tagged("Schedule", "office-hours");
    let p = converge(&c, &mut g, NIGHT);
    assert!(p.error.unwrap().contains("no state key"));
    assert_eq!(g.capacity, size(1, 4, 2));
    assert!(g.actions.is_empty());
}

#[test]
fn a_remediated_group_tagged_always_on_is_restored_and_the_record_goes() {
    let c = cfg();
    let mut g = group("web", Capacity::ZERO);
    g.tags.insert(TAG_SAVED.into(), sealed(&g, size(1, 4, 2)));
    g.tags.insert(
        crate::kind::compliance::TAG_REMEDIATED.into(),
        "stopped at 2026-11-25T12:00:00Z: no schedule tag".into(),
    );
    assert!(plan_group(&c, &g, at(DAY)).steps.is_empty(), "untagged: stays stopped");
    g.tags.insert("Schedule".into(), "always-on".into());
    converge(&c, &mut g, DAY);
    assert_eq!(g.capacity, size(1, 4, 2));
    assert!(!g.tags.contains_key(crate::kind::compliance::TAG_REMEDIATED));
    assert!(!g.tags.contains_key(TAG_SAVED));
}

#[test]
fn an_inline_value_with_repeated_spaces_settles_like_any_other() {
    let text = "allow_inline: true\nschedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\n";
    let c = Config::parse(text, Path::new("t.yaml")).unwrap().with_state_key(key());
    let mut g = group("web", size(1, 4, 2)).tagged("Schedule", "Mon-Fri  08:00-20:00   Asia/Seoul");
    converge(&c, &mut g, NIGHT);
    assert_eq!(g.capacity, Capacity::ZERO);
    // A resize by hand at night is not undone: the schedule is not "newly applied" again.
    g.capacity = size(1, 4, 3);
    assert!(
        plan_group(&c, &g, at(NIGHT))
            .steps
            .iter()
            .all(|s| s.change.kind() != "set-capacity")
    );
}

#[test]
fn a_stopped_size_holds_the_group_there_at_night_and_never_replaces_the_saved_size() {
    let c = cfg();
    let mut g = group("web", size(2, 6, 4)).tagged("Schedule", "small-nights");
    let p = converge(&c, &mut g, DAY);
    assert_eq!(kinds(&p), vec!["save-capacity", "put-scheduled-actions", "set-tags"]);
    let stop = |g: &Group| {
        g.actions
            .iter()
            .filter(|a| a.recurrence.as_deref() == Some("0 20 * * 1-5"))
            .map(|a| a.capacity())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        stop(&g),
        vec![Some(size(1, 1, 1))],
        "the stop action sets the stopped size"
    );
    assert!(
        g.actions
            .iter()
            .any(|a| a.recurrence.as_deref() == Some("0 8 * * 1-5") && a.capacity() == Some(size(2, 6, 4)))
    );
    // AWS fires the stop action at 20:00: at the stopped size, nothing is saved over.
    g.capacity = size(1, 1, 1);
    let p = plan_group(&c, &g, at(NIGHT));
    assert!(p.steps.is_empty(), "{p:#?}");
    assert_eq!(saved_of(&g), Some(size(2, 6, 4)));
    // Tagged at night: saved first, then held at the stopped size.
    let mut h = group("api", size(2, 6, 4)).tagged("Schedule", "small-nights");
    let p = converge(&c, &mut h, NIGHT);
    assert_eq!(
        kinds(&p),
        vec!["save-capacity", "put-scheduled-actions", "set-capacity", "set-tags"]
    );
    assert_eq!((h.capacity, saved_of(&h)), (size(1, 1, 1), Some(size(2, 6, 4))));
    // Untagged at night: the saved size comes back.
    h.tags.remove("Schedule");
    converge(&c, &mut h, NIGHT);
    assert_eq!(h.capacity, size(2, 6, 4));
}

#[test]
fn a_schedule_change_away_from_a_stopped_size_keeps_the_saved_size() {
    let c = cfg();
    let mut g = group("web", size(2, 6, 4)).tagged("Schedule", "small-nights");
    converge(&c, &mut g, NIGHT);
    assert_eq!(g.capacity, size(1, 1, 1));
    // Switched to a schedule that stops at zero while at the old stopped size: the group
    // is down, not resized to 1/1/1.
    g.tags.insert("Schedule".into(), "office-hours".into());
    converge(&c, &mut g, NIGHT);
    assert_eq!(saved_of(&g), Some(size(2, 6, 4)), "the saved size survives");
    assert_eq!(g.capacity, Capacity::ZERO);
    assert!(
        g.actions
            .iter()
            .filter(|a| !compile::is_stop_name(&a.name))
            .all(|a| a.capacity() == Some(size(2, 6, 4)))
    );
}

#[test]
fn a_stopped_size_larger_than_the_group_is_refused_for_that_group() {
    let c = cfg();
    let mut g = group("tiny", size(0, 1, 0)).tagged("Schedule", "small-nights");
    let p = converge(&c, &mut g, DAY);
    let e = p.error.as_deref().unwrap();
    assert!(e.contains("holds groups at min=1 max=1 desired=1 while stopped, more than this group's running size min=0 max=1 desired=0"), "{e}");
    assert_eq!(kinds(&p), vec!["set-tags"], "only the error tag");
    assert!(g.actions.is_empty());
    assert_eq!(g.capacity, size(0, 1, 0));
}
