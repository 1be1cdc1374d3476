//! Schedule evaluation checked minute by minute against a brute-force oracle.
//!
//! The oracle shares no evaluation code with the schedule: it lays every window
//! occurrence out as an interval of instants, mapping each local boundary to the first
//! UTC minute whose wall-clock time reaches it (which is the gap and overlap rule stated
//! as a search), and subtracts each holiday's local day the same way.

use super::*;
use chrono::{Datelike, NaiveDate};
use expr::Window;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The first UTC minute whose local wall-clock time is at or after `l`.
fn oracle_instant(tz: Tz, l: NaiveDateTime) -> DateTime<Utc> {
    let mut t = Utc.from_utc_datetime(&(l - Duration::hours(30)));
    while t.with_timezone(&tz).naive_local() < l {
        t += Duration::minutes(1);
    }
    t
}

struct Oracle {
    running: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    holidays: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    inverted: bool,
}

impl Oracle {
    fn new(e: &expr::Expr, tz: Tz, holidays: &[NaiveDate], inverted: bool, from: NaiveDate, to: NaiveDate) -> Self {
        let mut running = Vec::new();
        for date in (from - chrono::Days::new(8))
            .iter_days()
            .take_while(|x| *x <= to + chrono::Days::new(8))
        {
            let at = |date: NaiveDate, minute: u32| {
                oracle_instant(tz, date.and_time(NaiveTime::MIN) + Duration::minutes(i64::from(minute)))
            };
            for w in &e.windows {
                match *w {
                    Window::Daily { days, start, end } if days.contains(date.weekday()) => {
                        let stop = if end > start {
                            at(date, end)
                        } else {
                            at(date + chrono::Days::new(1), end)
                        };
                        running.push((at(date, start), stop));
                    }
                    Window::Span { start, end } if date.weekday() == chrono::Weekday::Mon => {
                        let len = (end + week::WEEK - start) % week::WEEK;
                        running.push((at(date, start), at(date, start + len)));
                    }
                    _ => {}
                }
            }
        }
        let holidays = holidays
            .iter()
            .map(|&h| {
                (
                    oracle_instant(tz, h.and_time(NaiveTime::MIN)),
                    oracle_instant(tz, (h + chrono::Days::new(1)).and_time(NaiveTime::MIN)),
                )
            })
            .collect();
        Oracle {
            running,
            holidays,
            inverted,
        }
    }

    fn state(&self, t: DateTime<Utc>) -> State {
        let inside = |v: &[(DateTime<Utc>, DateTime<Utc>)]| v.iter().any(|&(s, e)| s <= t && t < e);
        let in_window = inside(&self.running);
        let running = (in_window != self.inverted) && !inside(&self.holidays);
        State::from_bool(running)
    }
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
    let oracle = Oracle::new(&e, tz, &holidays, stopped, from.date_naive(), to.date_naive());

    let mut expected = Vec::new();
    let mut prev = oracle.state(from - Duration::minutes(1));
    let mut t = from;
    while t < to {
        let want = oracle.state(t);
        let got = s.state_at(t);
        assert_eq!(got, want, "{text} ({tz}) at {t} = {}", t.with_timezone(&tz));
        if want != prev {
            expected.push(Transition {
                at: t,
                action: Action::toward(want),
            });
            prev = want;
        }
        t += Duration::minutes(1);
    }
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

#[test]
fn explain_example_skips_christmas_and_the_weekend() {
    let e = expr::parse("Mon-Fri 08:00-20:00 Asia/Seoul").unwrap();
    let mut s = Schedule::from_expr("office-hours", &e, chrono_tz::UTC);
    s.holidays = Arc::new([d("2026-12-25")].into());
    let t = s.next_transitions(utc("2026-12-24T00:00:00+09:00"), 4);
    let got: Vec<_> = t
        .iter()
        .map(|t| (t.at.with_timezone(&s.tz).to_rfc3339(), t.action))
        .collect();
    assert_eq!(
        got,
        vec![
            ("2026-12-24T08:00:00+09:00".to_string(), Action::Start),
            ("2026-12-24T20:00:00+09:00".to_string(), Action::Stop),
            ("2026-12-28T08:00:00+09:00".to_string(), Action::Start),
            ("2026-12-28T20:00:00+09:00".to_string(), Action::Stop),
        ]
    );
}

#[test]
fn stop_only_mode_lists_only_stops() {
    let e = expr::parse("Mon-Fri 08:00-20:00 UTC").unwrap();
    let mut s = Schedule::from_expr("nightly", &e, chrono_tz::UTC);
    s.mode = Mode::StopOnly;
    let t = s.next_transitions(utc("2026-11-23T00:00:00Z"), 3);
    assert_eq!(t.len(), 3);
    assert!(t.iter().all(|t| t.action == Action::Stop));
}

#[test]
fn repeated_hour_keeps_the_state_of_its_first_pass() {
    // New York, 2026-11-01: 01:00-02:00 happens twice. A window 01:15-01:45 runs once.
    let e = expr::parse("Sun 01:15-01:45 America/New_York").unwrap();
    let s = Schedule::from_expr("fold", &e, chrono_tz::UTC);
    assert_eq!(s.state_at(utc("2026-11-01T05:20:00Z")), State::Running); // 01:20 EDT
    assert_eq!(s.state_at(utc("2026-11-01T06:20:00Z")), State::Stopped); // 01:20 EST
    let t = s.transitions(utc("2026-11-01T00:00:00Z"), utc("2026-11-02T00:00:00Z"));
    assert_eq!(
        t,
        vec![
            Transition {
                at: utc("2026-11-01T05:15:00Z"),
                action: Action::Start
            },
            Transition {
                at: utc("2026-11-01T05:45:00Z"),
                action: Action::Stop
            },
        ]
    );
}

mod random {
    use super::*;
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

mod zones {
    use super::super::canonical_zone;
    use chrono::{Duration, Offset, TimeZone, Utc};
    use chrono_tz::Tz;

    #[test]
    fn links_are_sent_as_their_canonical_zone() {
        let z = |s: &str| canonical_zone(s.parse::<Tz>().unwrap());
        assert_eq!(z("US/Eastern"), "America/New_York");
        // Renamed or merged since: sent as written (AWS's zone data may predate the new name).
        assert_eq!(z("Asia/Calcutta"), "Asia/Calcutta");
        assert_eq!(z("Europe/Kiev"), "Europe/Kiev");
        assert_eq!(z("ROK"), "Asia/Seoul");
        assert_eq!(z("UTC"), "Etc/UTC");
        assert_eq!(z("Asia/Seoul"), "Asia/Seoul");
        assert_eq!(z("Etc/GMT+9"), "Etc/GMT+9");
    }

    /// The tzdata promise behind the table, checked with chrono-tz's own rules: a link and
    /// its canonical zone agree on every UTC offset from 1970 on (sampled every 6 hours).
    #[test]
    fn every_link_keeps_its_targets_offsets_since_1970() {
        let mut checked = 0;
        for tz in chrono_tz::TZ_VARIANTS {
            let canon = canonical_zone(tz);
            if canon == tz.name() {
                continue;
            }
            let target: Tz = canon.parse().unwrap_or_else(|_| panic!("{canon} is not a zone"));
            assert_eq!(canonical_zone(target), canon, "{canon} is itself a link");
            let mut t = Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap();
            let end = Utc.with_ymd_and_hms(2038, 1, 1, 0, 0, 0).unwrap();
            while t < end {
                assert_eq!(
                    tz.offset_from_utc_datetime(&t.naive_utc()).fix(),
                    target.offset_from_utc_datetime(&t.naive_utc()).fix(),
                    "{} vs {canon} at {t}",
                    tz.name()
                );
                t += Duration::hours(6);
            }
            checked += 1;
        }
        assert!(checked > 80, "only {checked} aliases");
    }
}
