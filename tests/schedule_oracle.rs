//! Schedule evaluation checked minute by minute against the independent brute-force
//! oracle of `tests/support/oracle.rs`, which reads the expression text itself and shares
//! no code with offhours' parser or evaluator.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use offhours::schedule::{Action, Schedule, Transition, expr};
use support::oracle::Oracle;

mod support;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Walks every minute from `from` to `to`, comparing `state_at` and `transitions` with the oracle.
fn check(text: &str, stopped: bool, holidays: &[&str], from: &str, to: &str) {
    let e = expr::parse(text).unwrap();
    let tz = e.zone.unwrap();
    let holidays: Vec<NaiveDate> = holidays.iter().map(|h| d(h)).collect();
    let mut s = Schedule::from_expr(text, &e, tz);
    if stopped {
        s.week = s.week.inverted();
    }
    s.holidays = Arc::new(holidays.iter().copied().collect());
    let (from, to) = (utc(from), utc(to));
    let oracle = Oracle::new(
        &[text],
        stopped,
        chrono_tz::UTC,
        &holidays,
        from.date_naive() - chrono::Days::new(1),
        to.date_naive() + chrono::Days::new(1),
    );
    assert_eq!(oracle.tz, tz, "the oracle reads the zone itself");

    let mut t = from;
    while t < to {
        assert_eq!(
            s.state_at(t),
            oracle.state(t),
            "{text} ({tz}) at {t} = {}",
            t.with_timezone(&tz)
        );
        t += Duration::minutes(1);
    }
    let expected: Vec<Transition> = oracle
        .changes(from, to)
        .into_iter()
        .map(|(at, state)| Transition {
            at,
            action: Action::toward(state),
        })
        .collect();
    assert_eq!(s.transitions(from, to), expected, "{text} ({tz})");
    assert!(!expected.is_empty(), "{text}: a test with no transitions proves little");
}

#[test]
fn office_hours_in_seoul_over_a_year_with_korean_holidays() {
    check(
        "Mon-Fri 08:00-20:00 Asia/Seoul",
        false,
        &[
            "2026-01-01",
            "2026-02-16",
            "2026-02-17",
            "2026-02-18",
            "2026-09-24",
            "2026-09-25",
            "2026-12-25",
        ],
        "2026-01-01T00:00:00Z",
        "2027-01-01T00:00:00Z",
    );
}

#[test]
fn new_york_window_across_both_dst_changes_of_2026() {
    // 2026-03-08 02:00 -> 03:00 swallows the 02:30 stop; 2026-11-01 repeats 01:00-02:00.
    check(
        "Mon-Sun 01:30-02:30 America/New_York",
        false,
        &["2026-07-04"],
        "2026-02-20T00:00:00Z",
        "2026-11-20T00:00:00Z",
    );
}

#[test]
fn window_entirely_inside_a_dst_gap_vanishes_that_day() {
    check(
        "Sun 02:15-02:45 America/New_York",
        false,
        &[],
        "2026-02-25T00:00:00Z",
        "2026-03-25T00:00:00Z",
    );
    let e = expr::parse("Sun 02:15-02:45 America/New_York").unwrap();
    let s = Schedule::from_expr("gap", &e, chrono_tz::UTC);
    assert!(
        s.transitions(utc("2026-03-08T00:00:00Z"), utc("2026-03-09T00:00:00Z"))
            .is_empty()
    );
}

#[test]
fn london_midnight_crossing_and_dst_hour_windows() {
    // 2026-03-29 01:00 -> 02:00 and 2026-10-25 02:00 -> 01:00, both Sundays.
    check(
        "Fri 22:00-06:00 Sun 00:30-01:30 Europe/London",
        false,
        &["2026-10-24"],
        "2026-03-01T00:00:00Z",
        "2026-11-10T00:00:00Z",
    );
}

#[test]
fn stopped_windows_from_friday_evening_to_monday_morning() {
    check(
        "Fri 20:00-Mon 08:00 Asia/Seoul",
        true,
        &["2026-12-25", "2027-01-01"],
        "2026-11-01T00:00:00Z",
        "2027-02-01T00:00:00Z",
    );
}

#[test]
fn sydney_leap_day_holiday_and_southern_dst() {
    // 2028-02-29 is a Tuesday; Sydney leaves DST on 2028-04-02 and enters it on 2028-10-01.
    check(
        "Mon-Fri 22:00-02:30 Australia/Sydney",
        false,
        &["2028-02-29"],
        "2028-02-01T00:00:00Z",
        "2028-10-20T00:00:00Z",
    );
}

#[test]
fn zones_that_change_at_midnight_or_by_half_an_hour() {
    // Santiago moves its clocks at 24:00; Lord Howe by 30 minutes.
    check(
        "Mon-Sun 23:30-00:30 America/Santiago",
        false,
        &["2026-09-06"],
        "2026-03-25T00:00:00Z",
        "2026-09-20T00:00:00Z",
    );
    check(
        "Sat-Sun 01:45-02:15 Australia/Lord_Howe",
        false,
        &[],
        "2026-03-25T00:00:00Z",
        "2026-10-10T00:00:00Z",
    );
}

mod random {
    use super::*;
    use offhours::schedule::week;
    use proptest::prelude::*;

    const ZONES: [&str; 6] = [
        "America/New_York",
        "Europe/London",
        "Asia/Seoul",
        "Australia/Sydney",
        "America/Santiago",
        "UTC",
    ];
    // Two weeks around a DST change of each zone (or any fortnight for zones without one).
    const PERIODS: [&str; 6] = [
        "2026-03-01",
        "2026-10-18",
        "2026-09-20",
        "2026-03-28",
        "2026-04-01",
        "2026-02-22",
    ];

    fn window() -> impl Strategy<Value = String> {
        let day = prop::sample::select(vec![
            "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "Mon-Fri", "Sat-Sun", "Fri-Tue",
        ]);
        let hm = (0u32..24, prop::sample::select(vec![0u32, 15, 30, 45]));
        (day, hm.clone(), hm).prop_filter_map("non-empty", |(d, (h1, m1), (h2, m2))| {
            ((h1, m1) != (h2, m2)).then(|| format!("{d} {h1:02}:{m1:02}-{h2:02}:{m2:02}"))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn random_schedules_match_the_oracle(
            windows in prop::collection::vec(window(), 1..4),
            zone in 0usize..ZONES.len(),
            stopped in any::<bool>(),
            holiday in 0u64..14,
        ) {
            let text = format!("{} {}", windows.join(" "), ZONES[zone]);
            let start = d(PERIODS[zone]);
            let h = (start + chrono::Days::new(holiday)).to_string();
            let from = format!("{start}T00:00:00Z");
            let to = format!("{}T00:00:00Z", start + chrono::Days::new(15));
            let e = expr::parse(&text).unwrap();
            let always = e.week().running_minutes() == week::WEEK;
            if !always {
                check(&text, stopped, &[&h], &from, &to);
            }
        }
    }
}
