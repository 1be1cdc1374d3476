use super::*;

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
  strict:
    running: [\"Mon-Fri 08:00-20:00\"]
    enforce: true
  sleepy:
    running: [\"Mon-Fri 08:00-20:00\"]
    hibernate: true
  nightly-stop:
    running: [\"Mon-Fri 08:00-20:00\"]
    mode: stop-only
";
    crate::fixtures::config_from(text)
}

use crate::fixtures::at;

fn inst(id: &str, state: InstanceState, schedule: &str) -> Instance {
    Instance::test(id).in_state(state).tagged("Schedule", schedule)
}

/// Applies a plan the way EC2 would, assuming every call succeeds.
fn apply(i: &mut Instance, p: &Option<InstancePlan>) {
    let Some(p) = p else { return };
    match p.op.as_ref().map(|o| o.0) {
        Some(PowerOp::Stop | PowerOp::Hibernate) => i.state = InstanceState::Stopped,
        Some(PowerOp::Start) => i.state = InstanceState::Running,
        None => {}
    }
    i.tags.extend(p.set_tags.clone());
    i.tags.retain(|k, _| !p.remove_tags.contains(k));
}

fn op(p: &Option<InstancePlan>) -> Option<PowerOp> {
    p.as_ref().and_then(|p| p.op.as_ref().map(|o| o.0))
}

/// A minute after the 20:00 KST stop on Wednesday 2026-11-25, and 08:00 Thursday.
const STOP: &str = "2026-11-25T20:01:00+09:00";
const START: &str = "2026-11-26T08:02:00+09:00";

#[test]
fn stops_at_20_and_starts_at_08_recording_each_transition() {
    let c = cfg();
    let mut i = inst("i-1", InstanceState::Running, "office-hours");
    i.tags.insert(TAG_LAST.into(), "start 2026-11-24T23:00:00Z".into());
    let p = plan_instance(&c, &i, at(STOP));
    assert_eq!(op(&p), Some(PowerOp::Stop));
    assert_eq!(p.as_ref().unwrap().set_tags[TAG_LAST], "stop 2026-11-25T11:00:00Z");
    apply(&mut i, &p);
    assert_eq!(plan_instance(&c, &i, at(STOP)), None, "steady state");
    let p = plan_instance(&c, &i, at(START));
    assert_eq!(op(&p), Some(PowerOp::Start));
    assert!(
        !p.as_ref().unwrap().set_tags.contains_key(TAG_LAST),
        "a start is recorded once the instance is seen running"
    );
    apply(&mut i, &p);
    let p = plan_instance(&c, &i, at("2026-11-26T08:06:00+09:00"));
    assert_eq!(op(&p), None);
    apply(&mut i, &p);
    assert_eq!(i.tags[TAG_LAST], "start 2026-11-25T23:00:00Z");
}

#[test]
fn a_start_that_fell_back_is_reported_and_retried_until_the_catch_up_window_ends() {
    let c = cfg();
    let mut i = inst("i-1", InstanceState::Stopped, "office-hours");
    i.tags.insert(TAG_LAST.into(), "stop 2026-11-25T11:00:00Z".into());
    i.state_reason = Some(crate::model::StateReason {
        code: "Client.InternalError".into(),
        message: "Client.InternalError: Client error on launch".into(),
    });
    let p = plan_instance(&c, &i, at("2026-11-26T08:05:00+09:00")).unwrap();
    assert_eq!(p.op.as_ref().map(|o| o.0), Some(PowerOp::Start));
    assert!(p.error.as_deref().unwrap().contains("Client error on launch"), "{p:?}");
    assert!(p.set_tags.is_empty(), "not recorded as started");
    // Past the window: recorded as missed, with the reason, not started again.
    let p = plan_instance(&c, &i, at("2026-11-26T09:00:00+09:00")).unwrap();
    assert_eq!(p.op, None);
    assert!(p.notes[0].contains("did not take"), "{p:?}");
    assert_eq!(p.set_tags[TAG_LAST], "start 2026-11-25T23:00:00Z");
    // A person's stop is no failed start.
    i.state_reason = Some(crate::model::StateReason {
        code: "Client.UserInitiatedShutdown".into(),
        message: "Client.UserInitiatedShutdown: User initiated shutdown".into(),
    });
    assert!(
        plan_instance(&c, &i, at("2026-11-26T08:05:00+09:00"))
            .unwrap()
            .error
            .is_none()
    );
}

#[test]
fn an_instance_without_room_for_the_record_is_left_alone_and_reported() {
    let c = cfg();
    let mut i = inst("i-1", InstanceState::Running, "office-hours");
    for n in 0..49 {
        i.tags.insert(format!("team-{n}"), "x".into());
    }
    i.tags
        .insert("aws:cloudformation:stack-name".into(), "not counted".into());
    assert_eq!(i.tags.len(), 51);
    let p = plan_instance(&c, &i, at(STOP)).unwrap();
    assert_eq!((p.op.clone(), p.set_tags.len()), (None, 0), "{p:?}");
    assert!(p.error.unwrap().contains("50 of AWS's 50"));
    // One tag less: room for the record, and the stop goes ahead.
    i.tags.remove("team-0");
    i.tags.insert(TAG_LAST.into(), "start 2026-11-24T23:00:00Z".into());
    i.tags.remove("team-1");
    let p = plan_instance(&c, &i, at(STOP)).unwrap();
    assert_eq!(p.op.map(|o| o.0), Some(PowerOp::Stop));
}

#[test]
fn a_manual_start_after_hours_is_kept_until_the_next_stop() {
    let c = cfg();
    let mut i = inst("i-1", InstanceState::Stopped, "office-hours");
    i.tags.insert(TAG_LAST.into(), "stop 2026-11-25T11:00:00Z".into());
    i.state = InstanceState::Running; // started by hand at 22:00
    assert_eq!(plan_instance(&c, &i, at("2026-11-25T22:00:00+09:00")), None);
    assert_eq!(plan_instance(&c, &i, at("2026-11-26T07:00:00+09:00")), None);
}

#[test]
fn enforce_holds_the_scheduled_state_on_every_pass() {
    let c = cfg();
    let mut i = inst("i-1", InstanceState::Running, "strict");
    assert_eq!(
        op(&plan_instance(&c, &i, at("2026-11-25T22:00:00+09:00"))),
        Some(PowerOp::Stop)
    );
    i.state = InstanceState::Stopped;
    assert_eq!(
        op(&plan_instance(&c, &i, at("2026-11-25T12:00:00+09:00"))),
        Some(PowerOp::Start)
    );
}

#[test]
fn restart_catches_up_inside_the_window_and_reports_outside_it() {
    let c = cfg();
    let mut i = inst("i-1", InstanceState::Running, "office-hours");
    i.tags.insert(TAG_LAST.into(), "start 2026-11-24T23:00:00Z".into());
    // Down from 19:50 to 20:25: the 20:00 stop is 25 min late, inside 30.
    assert_eq!(
        op(&plan_instance(&c, &i, at("2026-11-25T20:25:00+09:00"))),
        Some(PowerOp::Stop)
    );
    // Back only at 21:00: reported, recorded, not applied.
    let p = plan_instance(&c, &i, at("2026-11-25T21:00:00+09:00")).unwrap();
    assert_eq!(p.op, None);
    assert!(p.notes[0].contains("missed the stop transition"), "{p:?}");
    assert_eq!(p.set_tags[TAG_LAST], "stop 2026-11-25T11:00:00Z");
}

#[test]
fn a_newly_tagged_instance_is_adopted_without_acting_on_an_old_transition() {
    let c = cfg();
    let i = inst("i-1", InstanceState::Running, "office-hours");
    let p = plan_instance(&c, &i, at("2026-11-25T22:00:00+09:00")).unwrap();
    assert_eq!(p.op, None);
    assert_eq!(p.set_tags[TAG_LAST], "stop 2026-11-25T11:00:00Z");
    // ...but one tagged just after a transition acts on it.
    assert_eq!(op(&plan_instance(&c, &i, at(STOP))), Some(PowerOp::Stop));
}

#[test]
fn an_override_holds_its_state_then_expires_into_the_schedule() {
    let c = cfg();
    let mut i = inst("i-1", InstanceState::Running, "office-hours");
    i.tags.insert(TAG_LAST.into(), "start 2026-11-24T23:00:00Z".into());
    i.tags
        .insert(TAG_OVERRIDE.into(), "running until 2026-11-25T23:00+09:00".into());
    assert_eq!(plan_instance(&c, &i, at(STOP)), None, "kept up past 20:00");
    i.state = InstanceState::Stopped; // someone stopped it; the override holds it running
    assert_eq!(
        op(&plan_instance(&c, &i, at("2026-11-25T21:00:00+09:00"))),
        Some(PowerOp::Start)
    );
    i.state = InstanceState::Running;
    let p = plan_instance(&c, &i, at("2026-11-25T23:00:30+09:00")).unwrap();
    assert_eq!(p.op.as_ref().map(|o| o.0), Some(PowerOp::Stop), "stopped at 23:00");
    assert_eq!(p.remove_tags, vec![TAG_OVERRIDE.to_string()]);
    assert!(p.notes[0].contains("expired"));
    apply(&mut i, &Some(p));
    assert_eq!(plan_instance(&c, &i, at("2026-11-25T23:05:00+09:00")), None);
}

#[test]
fn an_override_longer_than_the_maximum_is_capped_and_reported() {
    let c = cfg();
    let mut i = inst("i-1", InstanceState::Running, "office-hours");
    i.tags
        .insert(TAG_OVERRIDE.into(), "running until 2026-12-31T00:00Z".into());
    let p = plan_instance(&c, &i, at(STOP)).unwrap();
    assert_eq!(p.set_tags[TAG_OVERRIDE], "running until 2026-11-26T11:01:00Z");
    assert!(p.notes[0].contains("capped"));
    let mut bad = inst("i-2", InstanceState::Running, "office-hours");
    bad.tags.insert(TAG_OVERRIDE.into(), "up until tomorrow".into());
    let p = plan_instance(&c, &bad, at(STOP)).unwrap();
    assert_eq!(p.op, None);
    assert!(p.error.unwrap().contains("invalid override"));
}

#[test]
fn grace_period_protects_a_freshly_launched_instance() {
    let c = cfg();
    let mut i = inst("i-1", InstanceState::Running, "office-hours");
    i.tags.insert(TAG_LAST.into(), "start 2026-11-24T23:00:00Z".into());
    i.launched = Some(at("2026-11-25T19:50:00+09:00"));
    let p = plan_instance(&c, &i, at(STOP)).unwrap();
    assert_eq!(p.op, None);
    assert!(p.notes[0].contains("grace period"));
    assert!(
        !p.set_tags.contains_key(TAG_LAST),
        "not recorded: retried on the next pass"
    );
    assert_eq!(
        op(&plan_instance(&c, &i, at("2026-11-25T20:21:00+09:00"))),
        Some(PowerOp::Stop)
    );
}

#[test]
fn a_zero_grace_period_is_off_even_for_a_launch_after_now() {
    let mut c = cfg();
    let mut i = inst("i-1", InstanceState::Running, "office-hours");
    i.tags.insert(TAG_LAST.into(), "start 2026-11-24T23:00:00Z".into());
    // Launched after the (simulated) moment of the pass: young under the default grace.
    i.launched = Some(at("2026-11-25T23:00:00+09:00"));
    assert_eq!(op(&plan_instance(&c, &i, at(STOP))), None);
    c.instances.grace = chrono::Duration::zero();
    assert_eq!(op(&plan_instance(&c, &i, at(STOP))), Some(PowerOp::Stop));
}

#[test]
fn group_members_are_left_to_their_group() {
    let mut i = inst("i-1", InstanceState::Running, "office-hours");
    i.tags.insert(TAG_ASG_MEMBER.into(), "web".into());
    assert_eq!(plan_instance(&cfg(), &i, at(STOP)), None);
}

#[test]
fn one_time_spot_and_instance_store_instances_are_reported_never_stopped() {
    let c = cfg();
    for (market, store, word) in [
        (Market::OneTimeSpot, false, "spot"),
        (Market::OnDemand, true, "instance store"),
    ] {
        let mut i = inst("i-1", InstanceState::Running, "office-hours");
        i.tags.insert(TAG_LAST.into(), "start 2026-11-24T23:00:00Z".into());
        i.market = market;
        i.instance_store_root = store;
        let p = plan_instance(&c, &i, at(STOP)).unwrap();
        assert_eq!(p.op, None);
        assert!(p.notes[0].contains(word), "{p:?}");
    }
    let mut persistent = inst("i-2", InstanceState::Running, "office-hours");
    persistent
        .tags
        .insert(TAG_LAST.into(), "start 2026-11-24T23:00:00Z".into());
    persistent.market = Market::PersistentSpot;
    assert_eq!(op(&plan_instance(&c, &persistent, at(STOP))), Some(PowerOp::Stop));
}

#[test]
fn hibernate_where_configured_else_plain_stop() {
    let c = cfg();
    let mut i = inst("i-1", InstanceState::Running, "sleepy");
    i.tags.insert(TAG_LAST.into(), "start 2026-11-24T23:00:00Z".into());
    assert_eq!(op(&plan_instance(&c, &i, at(STOP))), Some(PowerOp::Stop));
    i.hibernation = true;
    assert_eq!(op(&plan_instance(&c, &i, at(STOP))), Some(PowerOp::Hibernate));
}

#[test]
fn pending_and_stopping_instances_wait_for_the_next_pass() {
    let c = cfg();
    let mut i = inst("i-1", InstanceState::Pending, "office-hours");
    i.tags.insert(TAG_LAST.into(), "start 2026-11-24T23:00:00Z".into());
    let p = plan_instance(&c, &i, at(STOP)).unwrap();
    assert_eq!(p.op, None);
    assert!(!p.set_tags.contains_key(TAG_LAST));
}

#[test]
fn bad_tags_set_an_error_and_touch_nothing_else() {
    let c = cfg();
    let i = inst("i-1", InstanceState::Running, "offce-hours");
    let p = plan_instance(&c, &i, at(STOP)).unwrap();
    assert_eq!(p.op, None);
    assert!(p.set_tags[TAG_ERROR].contains("offce-hours"));
    let mut fixed = i.clone();
    fixed.tags.insert(TAG_ERROR.into(), p.set_tags[TAG_ERROR].clone());
    fixed.tags.insert("Schedule".into(), "office-hours".into());
    let p = plan_instance(&c, &fixed, at(STOP)).unwrap();
    assert!(p.remove_tags.contains(&TAG_ERROR.to_string()));
}

#[test]
fn weekends_and_holidays_have_no_start() {
    let c = cfg();
    let mut i = inst("i-1", InstanceState::Stopped, "office-hours");
    i.tags.insert(TAG_LAST.into(), "stop 2026-12-24T11:00:00Z".into());
    // Christmas (Friday) 08:05, Saturday 08:05: no start; Monday 08:05: start.
    assert_eq!(plan_instance(&c, &i, at("2026-12-25T08:05:00+09:00")), None);
    assert_eq!(plan_instance(&c, &i, at("2026-12-26T08:05:00+09:00")), None);
    assert_eq!(
        op(&plan_instance(&c, &i, at("2026-12-28T08:05:00+09:00"))),
        Some(PowerOp::Start)
    );
}

#[test]
fn stop_only_never_starts() {
    let c = cfg();
    let mut i = inst("i-1", InstanceState::Stopped, "nightly-stop");
    i.tags.insert(TAG_LAST.into(), "stop 2026-11-25T11:00:00Z".into());
    assert_eq!(plan_instance(&c, &i, at(START)), None);
    i.state = InstanceState::Running;
    i.tags.insert(TAG_LAST.into(), "stop 2026-11-24T11:00:00Z".into());
    assert_eq!(op(&plan_instance(&c, &i, at(STOP))), Some(PowerOp::Stop));
}
