//! The proof that compiled scheduled actions implement their schedule.
//!
//! For each schedule, walk every minute of a whole year. Once a day, recompile the
//! actions as the daemon would (with `now` advancing) and replace the registered set.
//! At each minute, fire the registered actions as AWS does, using the `cron` crate as an
//! independent cron evaluator on local wall-clock time in the action's `TimeZone`, and
//! honouring `StartTime`/`EndTime` (a recurring action also fires at its `StartTime`).
//! The capacity those firings leave must equal `state_at` at every minute.
//!
//! The evaluator is pessimistic about DST: a recurring action whose local time is
//! skipped never fires, and one whose local time repeats fires twice. The compiler must
//! not depend on how AWS treats those minutes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use offhours::capacity::Capacity;
use offhours::compile::{self, Request, ScheduledAction};
use offhours::config::Config;
use offhours::schedule::{Action, Mode, Schedule, State, expr};
use support::cron_eval::{Matcher, fires, firing_times, to_cron_crate};
use support::oracle::{Book, Oracle};

mod support;

const RUNNING: Capacity = Capacity {
    min: 1,
    max: 3,
    desired: 2,
};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Every minute in `[from, to)` at which registered actions fire, with the size they set,
/// recompiling once a day as the daemon would.
fn firings(s: &Schedule, from: DateTime<Utc>, to: DateTime<Utc>, horizon_days: u32) -> Vec<(DateTime<Utc>, Capacity)> {
    let mut matcher = Matcher::new(from - Duration::days(2), to + Duration::days(2));
    let mut registered: Vec<ScheduledAction> = Vec::new();
    let mut previous: Option<(DateTime<Utc>, Vec<ScheduledAction>)> = None;
    let mut zones: HashMap<String, Tz> = HashMap::new();
    let mut out = Vec::new();
    let mut t = from;
    while t < to {
        // The daemon's daily pass, half a minute before this minute's firings.
        if t == from || (t - from).num_minutes() % (24 * 60) == 17 * 60 + 13 {
            let now = t - Duration::seconds(30);
            let compiled = compile::compile(Request {
                schedule: s,
                running: RUNNING,
                group: "dev-web",
                now,
                horizon_days,
                room: compile::MAX_ACTIONS_PER_GROUP,
                hold: None,
            })
            .unwrap();
            check_shape(&compiled, now);
            if let Some((then, before)) = &previous {
                check_only_the_edge_moved(s, before, *then, &compiled, now, horizon_days);
            }
            previous = Some((now, compiled.clone()));
            registered = compiled;
            for a in &registered {
                let zone = a.time_zone.as_deref().unwrap_or("UTC");
                zones.entry(zone.to_string()).or_insert_with(|| zone.parse().unwrap());
            }
        }
        let local = |zone: &str| t.with_timezone(&zones[zone]).naive_local();
        let fired: Vec<&ScheduledAction> = registered.iter().filter(|a| fires(a, t, local, &mut matcher)).collect();
        if let Some(first) = fired.first() {
            assert!(
                fired.iter().all(|a| a.capacity == first.capacity),
                "{}: actions with different sizes fire in the same minute {t}: {fired:#?}",
                s.name
            );
            out.push((t, first.capacity));
        }
        t += Duration::minutes(1);
    }
    out
}

/// Walks `[from, to)` minute by minute: the capacity the firings leave must equal the
/// oracle's state everywhere. Returns the number of capacity changes.
fn walk(s: &Schedule, oracle: &Oracle, from: &str, to: &str, horizon_days: u32) -> usize {
    let (from, to) = (utc(from), utc(to));
    assert_eq!(s.tz, oracle.tz, "{}: the oracle reads the zone itself", s.name);
    let fired = firings(s, from, to, horizon_days);
    let mut next = fired.iter().peekable();
    let mut capacity = if oracle.state(from) == State::Running {
        RUNNING
    } else {
        Capacity::ZERO
    };
    let mut changes = 0;
    let mut t = from;
    while t < to {
        if let Some((_, c)) = next.next_if(|(at, _)| *at == t) {
            changes += usize::from(*c != capacity);
            capacity = *c;
        }
        let got = if capacity == RUNNING {
            State::Running
        } else {
            State::Stopped
        };
        assert_eq!(got, oracle.state(t), "{} at {t} ({})", s.name, t.with_timezone(&s.tz));
        t += Duration::minutes(1);
    }
    changes
}

fn check_shape(actions: &[ScheduledAction], now: DateTime<Utc>) {
    assert!(actions.len() <= compile::MAX_ACTIONS_PER_GROUP);
    for a in actions {
        assert!(compile::is_owned(&a.name), "{}", a.name);
        assert!(
            a.start_time.is_none_or(|s| s > now),
            "StartTime in the past: {a:?} at {now}"
        );
        if let Some(r) = &a.recurrence {
            to_cron_crate(r);
        }
    }
    let names: HashSet<_> = actions.iter().map(|a| &a.name).collect();
    assert_eq!(names.len(), actions.len(), "duplicate names");
}

/// Between two daily compilations, only the horizon's moving edge may change.
/// Behaviour: both sets fire at the same instants with the same sizes from `now` up to a
/// day before the old edge. Identity (what the daemon would rewrite): every added action
/// starts or ends at the edge, and every removed action is an open-ended
/// segment that the edge has now cut (the added one carrying on its recurrence from the
/// same start with an end at the edge), or starts at the edge, or has no firing left.
/// Names play no part.
fn check_only_the_edge_moved(
    s: &Schedule,
    before: &[ScheduledAction],
    then: DateTime<Utc>,
    after: &[ScheduledAction],
    now: DateTime<Utc>,
    horizon_days: u32,
) {
    let old_edge_date = then.with_timezone(&s.tz).date_naive() + chrono::Days::new(u64::from(horizon_days));
    let old_edge = support::oracle::instant(s.tz, old_edge_date.and_hms_opt(0, 0, 0).unwrap());
    let edge = old_edge - Duration::days(1);
    let behaviour = |set: &[ScheduledAction]| {
        let mut v: Vec<(DateTime<Utc>, Capacity)> = set
            .iter()
            .flat_map(|a| firing_times(a, now, edge).into_iter().map(|t| (t, a.capacity)))
            .collect();
        v.sort_by_key(|(t, c)| (*t, c.min, c.max, c.desired));
        v.dedup();
        v
    };
    assert_eq!(
        behaviour(before),
        behaviour(after),
        "{}: the actions behave differently before the horizon's edge ({edge}) between {then} and {now}",
        s.name
    );
    let old: HashSet<ScheduledAction> = before.iter().map(|a| a.normalized(now)).collect();
    let new: HashSet<ScheduledAction> = after.iter().cloned().collect();
    let cut_edge = edge - Duration::hours(12);
    let added: Vec<&ScheduledAction> = after.iter().filter(|a| !old.contains(*a)).collect();
    for a in &added {
        let at_edge = a.start_time.is_some_and(|t| t >= edge) || a.end_time.is_some_and(|t| t >= cut_edge);
        assert!(
            at_edge,
            "{}: action added away from the horizon edge ({edge}) between {then} and {now}: {a:#?}\nbefore: {before:#?}",
            s.name
        );
    }
    for b in old.iter().filter(|b| !new.contains(*b)) {
        // No firing left: a segment whose last day has passed, though its EndTime has not.
        let dead = b.is_expired(now)
            || b.end_time
                .is_some_and(|e| firing_times(b, now, e + Duration::minutes(1)).is_empty());
        let at_edge = b.start_time.is_some_and(|t| t >= edge);
        let cut_at_edge = b.end_time.is_none()
            && added.iter().any(|a| {
                a.recurrence == b.recurrence
                    && a.time_zone == b.time_zone
                    && a.capacity == b.capacity
                    && a.start_time == b.start_time
                    && a.end_time.is_some_and(|t| t >= cut_edge)
            });
        assert!(
            dead || at_edge || cut_at_edge,
            "{}: action removed away from the horizon edge ({edge}) between {then} and {now}: {b:#?}\nafter: {after:#?}",
            s.name
        );
    }
}

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/offhours.yaml");

fn shipped() -> Config {
    Config::load(std::path::Path::new(SHIPPED)).unwrap()
}

/// The shipped config's schedules as the oracle reads them (its own YAML and ICS reading).
fn shipped_book(from: &str, to: &str) -> Book {
    Book::load(std::path::Path::new(SHIPPED), d(from), d(to))
}

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// An inline expression with holidays, and its oracle (running windows, or stopped ones).
fn inline(text: &str, stopped: bool, holidays: &[&str]) -> (Schedule, Oracle) {
    let e = expr::parse(text).unwrap();
    let mut s = Schedule::from_expr(text, &e, chrono_tz::UTC);
    if stopped {
        s.week = s.week.inverted();
    }
    let dates: Vec<NaiveDate> = holidays.iter().map(|h| d(h)).collect();
    s.holidays = Arc::new(dates.iter().copied().collect());
    let oracle = Oracle::new(
        &[text],
        stopped,
        chrono_tz::UTC,
        &dates,
        d("2025-12-01"),
        d("2029-02-01"),
    );
    (s, oracle)
}

#[test]
fn shipped_office_hours_over_2026_with_korean_holidays() {
    let cfg = shipped();
    let s = cfg.schedule("office-hours").unwrap();
    assert!(
        s.holidays.len() >= 15,
        "the shipped calendar lists Korea's public holidays"
    );
    let book = shipped_book("2025-12-20", "2027-01-10");
    let n = walk(
        s,
        &book.schedules["office-hours"],
        "2026-01-01T00:00:00Z",
        "2027-01-01T00:00:00Z",
        21,
    );
    assert!(n > 400, "{n} changes");
}

#[test]
fn shipped_weekend_off_stopped_windows_over_2026() {
    let cfg = shipped();
    let s = cfg.schedule("weekend-off").unwrap();
    let book = shipped_book("2025-12-20", "2027-01-10");
    walk(
        s,
        &book.schedules["weekend-off"],
        "2026-01-01T00:00:00Z",
        "2027-01-01T00:00:00Z",
        21,
    );
}

/// Two calendars, one of them the shipped ICS feed (the year-end shutdown and the
/// foundation day), over the months that hold its dates.
#[test]
fn shipped_extended_hours_with_korean_and_company_calendars() {
    let cfg = shipped();
    let s = cfg.schedule("office-hours-extended").unwrap();
    let book = shipped_book("2026-09-20", "2027-05-10");
    let oracle = &book.schedules["office-hours-extended"];
    for day in ["2026-12-31T12:00:00+09:00", "2027-04-05T12:00:00+09:00"] {
        assert_eq!(
            oracle.state(utc(day)),
            State::Stopped,
            "the oracle read the ICS feed: {day}"
        );
    }
    walk(s, oracle, "2026-10-01T00:00:00Z", "2027-05-01T00:00:00Z", 21);
}

#[test]
fn new_york_night_window_across_both_dst_changes_and_holidays() {
    // 2026-03-08: 02:00-03:00 is skipped (the 02:30 stop moves to 03:00);
    // 2026-11-01: 01:00-02:00 repeats (the 01:30 start takes its first occurrence).
    let (s, o) = inline(
        "Mon-Sun 01:30-02:30 Fri 22:00-06:00 America/New_York",
        false,
        &["2026-07-03", "2026-11-26", "2026-12-25"],
    );
    walk(&s, &o, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", 21);
}

#[test]
fn london_windows_on_its_dst_edges_and_a_gap_that_swallows_a_window() {
    let (s, o) = inline(
        "Sun 00:30-01:30 Mon-Fri 07:00-19:00 Sat 01:15-01:45 Europe/London",
        false,
        &["2026-04-03", "2026-12-25", "2026-12-28"],
    );
    walk(&s, &o, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", 21);
    let (s, o) = inline(
        "Sun 02:15-02:45 Mon-Fri 09:00-17:00 America/New_York",
        false,
        &["2026-05-25"],
    );
    walk(&s, &o, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", 14);
}

/// Stopped windows, composite and across midnight: a weekend span, a nightly stop that
/// crosses midnight and a lunch hour, in Berlin across both DST changes.
#[test]
fn berlin_composite_stopped_windows_across_midnight() {
    let (s, o) = inline(
        "Fri 21:00-Mon 06:00 Mon-Thu 22:30-05:30 Wed 12:00-13:00 Europe/Berlin",
        true,
        &["2026-05-01", "2026-10-03", "2026-12-24"],
    );
    walk(&s, &o, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", 21);
}

#[test]
fn sydney_leap_year_with_a_leap_day_holiday() {
    let (s, o) = inline(
        "Mon-Fri 22:00-02:30 Sat 09:00-12:00 Australia/Sydney",
        false,
        &["2028-02-29", "2028-04-14", "2028-10-02"],
    );
    walk(&s, &o, "2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z", 21);
}

#[test]
fn stop_only_and_start_only_fire_exactly_their_own_transitions() {
    let cfg = shipped();
    let book = shipped_book("2026-08-20", "2026-11-10");
    let stop_only = cfg
        .schedules()
        .find(|s| s.mode == Mode::StopOnly)
        .expect("the shipped config has a stop-only schedule");
    assert_eq!(book.modes[&stop_only.name], "stop-only");
    let mut start_only = cfg.schedule("office-hours").unwrap().clone();
    start_only.mode = Mode::StartOnly;
    for (s, oracle, action, size) in [
        (
            stop_only,
            &book.schedules[&stop_only.name],
            Action::Stop,
            Capacity::ZERO,
        ),
        (&start_only, &book.schedules["office-hours"], Action::Start, RUNNING),
    ] {
        let (from, to) = (utc("2026-09-01T00:00:00Z"), utc("2026-11-01T00:00:00Z"));
        let fired = firings(s, from, to, 21);
        assert!(
            fired
                .iter()
                .all(|(t, c)| *c == size && oracle.state(*t) == action.target()),
            "{}: {fired:?}",
            s.name
        );
        let wanted: Vec<_> = oracle
            .changes(from, to)
            .into_iter()
            .filter(|(_, state)| *state == action.target())
            .map(|(t, _)| t)
            .collect();
        // Weekdays in September and October, less the holidays in them.
        assert!(wanted.len() > 30, "{}: {} transitions", s.name, wanted.len());
        let at: HashSet<_> = fired.iter().map(|(t, _)| *t).collect();
        for w in wanted {
            assert!(at.contains(&w), "{}: nothing fires at {w}", s.name);
        }
    }
}

/// `office-hours-extended` names the shipped uptime calendar (`config/release-nights.ics`,
/// lead 30 minutes): a Saturday event, a late evening into the night, a hotfix on a
/// holiday, an early Monday, an all-day Saturday and a Friday night into the weekend. The
/// walk compiles daily and fires the actions as AWS would, against the oracle, which reads
/// the events itself.
#[test]
fn shipped_office_hours_extended_with_uptime_events() {
    let cfg = shipped();
    let s = cfg.schedule("office-hours-extended").unwrap();
    assert_eq!(s.uptime.events.len(), 6, "the shipped release nights");
    let book = shipped_book("2026-11-10", "2027-04-20");
    let o = &book.schedules["office-hours-extended"];
    // The oracle has the events: up at 09:30 on Saturday 5 December for a 10:00 start.
    let at = |x: &str| DateTime::parse_from_rfc3339(x).unwrap().with_timezone(&Utc);
    assert_eq!(o.state(at("2026-12-05T09:29:00+09:00")), State::Stopped);
    assert_eq!(o.state(at("2026-12-05T09:30:00+09:00")), State::Running);
    assert_eq!(
        o.state(at("2026-12-25T11:00:00+09:00")),
        State::Running,
        "the hotfix on Christmas"
    );
    let n = walk(s, o, "2026-11-20T00:00:00Z", "2027-04-01T00:00:00Z", 21);
    assert!(n > 150, "{n} changes");
}
