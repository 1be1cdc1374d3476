//! Schedule evaluation: worked examples. The minute-by-minute comparison with the
//! independent brute-force oracle lives in `tests/schedule_oracle.rs`.

use super::*;
use chrono::NaiveDate;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
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
fn uptime_events_bring_the_schedule_up_from_their_lead_to_their_end() {
    let e = expr::parse("Mon-Fri 08:00-20:00 Asia/Seoul").unwrap();
    let mut s = Schedule::from_expr("office-hours", &e, chrono_tz::UTC);
    s.holidays = Arc::new([d("2026-12-25")].into());
    let ev = |a: &str, b: &str, what: &str| events::Event {
        start: utc(a),
        end: utc(b),
        summary: what.into(),
    };
    s.uptime = Arc::new(UptimeSet::new(events::uptimes(
        &[
            // Saturday: up at 09:30 for a 10:00-14:00 event.
            ev("2026-12-05T10:00:00+09:00", "2026-12-05T14:00:00+09:00", "load test"),
            // Friday evening: the 20:00 stop moves to 23:00; the lead falls in the day.
            ev("2026-12-11T19:00:00+09:00", "2026-12-11T23:00:00+09:00", "release"),
            // Monday early: up at 05:30; the event ends inside the working day.
            ev("2026-12-14T06:00:00+09:00", "2026-12-14T09:00:00+09:00", "early demo"),
            // A holiday: up only for the event.
            ev("2026-12-25T12:00:00+09:00", "2026-12-25T13:00:00+09:00", "xmas patch"),
        ],
        30,
    )));
    let got: Vec<(String, Action)> = s
        .transitions(utc("2026-12-05T00:00:00+09:00"), utc("2026-12-26T00:00:00+09:00"))
        .iter()
        .map(|t| (t.at.with_timezone(&s.tz).format("%a %m-%d %H:%M").to_string(), t.action))
        .filter(|(at, _)| !at.starts_with("Tue") && !at.starts_with("Wed") && !at.starts_with("Thu"))
        .collect();
    let want: Vec<(String, Action)> = [
        ("Sat 12-05 09:30", Action::Start),
        ("Sat 12-05 14:00", Action::Stop),
        ("Mon 12-07 08:00", Action::Start),
        ("Mon 12-07 20:00", Action::Stop),
        ("Fri 12-11 08:00", Action::Start),
        ("Fri 12-11 23:00", Action::Stop),
        ("Mon 12-14 05:30", Action::Start),
        ("Mon 12-14 20:00", Action::Stop),
        ("Fri 12-18 08:00", Action::Start),
        ("Fri 12-18 20:00", Action::Stop),
        ("Mon 12-21 08:00", Action::Start),
        ("Mon 12-21 20:00", Action::Stop),
        ("Fri 12-25 11:30", Action::Start),
        ("Fri 12-25 13:00", Action::Stop),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b))
    .collect();
    assert_eq!(got, want);
    assert_eq!(s.state_at(utc("2026-12-05T09:29:59+09:00")), State::Stopped);
    assert_eq!(s.state_at(utc("2026-12-05T09:30:00+09:00")), State::Running);
    assert_eq!(s.state_at(utc("2026-12-05T14:00:00+09:00")), State::Stopped);
    assert_eq!(
        s.uptime
            .at(utc("2026-12-05T09:30:00+09:00"))
            .next()
            .map(|u| &*u.summary),
        Some("load test")
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
