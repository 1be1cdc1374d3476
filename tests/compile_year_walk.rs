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
use support::cron_eval::{Matcher, fires, to_cron_crate};

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

/// Walks `[from, to)` minute by minute: the capacity the firings leave must equal
/// `state_at` everywhere. Returns the number of capacity changes.
fn walk(s: &Schedule, from: &str, to: &str, horizon_days: u32) -> usize {
    let (from, to) = (utc(from), utc(to));
    let fired = firings(s, from, to, horizon_days);
    let mut next = fired.iter().peekable();
    let mut capacity = if s.state_at(from) == State::Running {
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
        assert_eq!(got, s.state_at(t), "{} at {t} ({})", s.name, t.with_timezone(&s.tz));
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

/// Between two daily compilations, an action may only appear or change at the
/// horizon's moving edge; everything else is identical (up to a passed StartTime).
fn check_only_the_edge_moved(
    s: &Schedule,
    before: &[ScheduledAction],
    then: DateTime<Utc>,
    after: &[ScheduledAction],
    now: DateTime<Utc>,
    horizon_days: u32,
) {
    let old_edge_date = then.with_timezone(&s.tz).date_naive() + chrono::Days::new(u64::from(horizon_days));
    let old_edge = offhours::schedule::resolve_local(s.tz, old_edge_date.and_hms_opt(0, 0, 0).unwrap());
    let old: HashSet<ScheduledAction> = before.iter().map(|a| a.normalized(now)).collect();
    for a in after {
        if old.contains(a) {
            continue;
        }
        let cut_date = a
            .name
            .rsplit_once("-to")
            .and_then(|(_, d)| NaiveDate::parse_from_str(d, "%Y%m%d").ok());
        let at_edge = a.start_time.is_some_and(|t| t >= old_edge - Duration::days(1))
            || cut_date.is_some_and(|d| d >= old_edge_date - chrono::Days::new(1))
            || (a.recurrence.is_some() && a.end_time.is_none() && before.iter().any(|b| b.name == a.name));
        assert!(
            at_edge,
            "{}: action changed away from the horizon edge ({old_edge}) between {then} and {now}: {a:#?}\nbefore: {before:#?}",
            s.name
        );
    }
}

fn shipped() -> Config {
    Config::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/offhours.yaml"
    )))
    .unwrap()
}

fn inline(text: &str, holidays: &[&str]) -> Schedule {
    let e = expr::parse(text).unwrap();
    let mut s = Schedule::from_expr(text, &e, chrono_tz::UTC);
    s.holidays = Arc::new(holidays.iter().map(|d| d.parse().unwrap()).collect());
    s
}

#[test]
fn shipped_office_hours_over_2026_with_korean_holidays() {
    let cfg = shipped();
    let s = cfg.schedule("office-hours").unwrap();
    assert!(
        s.holidays.len() >= 15,
        "the shipped calendar lists Korea's public holidays"
    );
    let n = walk(s, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", 21);
    assert!(n > 400, "{n} changes");
}

#[test]
fn shipped_weekend_off_stopped_windows_over_2026() {
    let cfg = shipped();
    let s = cfg.schedule("weekend-off").unwrap();
    walk(s, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", 21);
}

#[test]
fn new_york_night_window_across_both_dst_changes_and_holidays() {
    // 2026-03-08: 02:00-03:00 is skipped (the 02:30 stop moves to 03:00);
    // 2026-11-01: 01:00-02:00 repeats (the 01:30 start takes its first occurrence).
    let s = inline(
        "Mon-Sun 01:30-02:30 Fri 22:00-06:00 America/New_York",
        &["2026-07-03", "2026-11-26", "2026-12-25"],
    );
    walk(&s, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", 21);
}

#[test]
fn london_windows_on_its_dst_edges_and_a_gap_that_swallows_a_window() {
    let s = inline(
        "Sun 00:30-01:30 Mon-Fri 07:00-19:00 Sat 01:15-01:45 Europe/London",
        &["2026-04-03", "2026-12-25", "2026-12-28"],
    );
    walk(&s, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", 21);
    let s = inline("Sun 02:15-02:45 Mon-Fri 09:00-17:00 America/New_York", &["2026-05-25"]);
    walk(&s, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", 14);
}

#[test]
fn sydney_leap_year_with_a_leap_day_holiday() {
    let s = inline(
        "Mon-Fri 22:00-02:30 Sat 09:00-12:00 Australia/Sydney",
        &["2028-02-29", "2028-04-14", "2028-10-02"],
    );
    walk(&s, "2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z", 21);
}

#[test]
fn stop_only_and_start_only_fire_exactly_their_own_transitions() {
    let cfg = shipped();
    let stop_only = cfg
        .schedules()
        .find(|s| s.mode == Mode::StopOnly)
        .expect("the shipped config has a stop-only schedule");
    let mut start_only = cfg.schedule("office-hours").unwrap().clone();
    start_only.mode = Mode::StartOnly;
    for (s, action, size) in [
        (stop_only, Action::Stop, Capacity::ZERO),
        (&start_only, Action::Start, RUNNING),
    ] {
        let (from, to) = (utc("2026-09-01T00:00:00Z"), utc("2026-11-01T00:00:00Z"));
        let fired = firings(s, from, to, 21);
        assert!(
            fired
                .iter()
                .all(|(t, c)| *c == size && s.state_at(*t) == action.target()),
            "{}: {fired:?}",
            s.name
        );
        let wanted: Vec<_> = s
            .transitions(from, to)
            .into_iter()
            .filter(|t| t.action == action)
            .map(|t| t.at)
            .collect();
        assert!(wanted.len() > 30);
        let at: HashSet<_> = fired.iter().map(|(t, _)| *t).collect();
        for w in wanted {
            assert!(at.contains(&w), "{}: nothing fires at {w}", s.name);
        }
    }
}
