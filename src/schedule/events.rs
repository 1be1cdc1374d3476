//! Uptime events: calendar events that bring servers up from a lead time before their start
//! until their end (a release night, a demo, a load test), read from iCalendar text.
//!
//! Parsed with the `icalendar` crate (RFC 5545); recurrences (`RRULE`, `RDATE`, `EXDATE`)
//! are expanded by its `rrule` support. A timed `DTSTART` must be in UTC (`Z`) or carry a
//! `TZID` that is an IANA zone, or be floating (then read in the config's zone); an all-day
//! event runs from its date's midnight to its `DTEND` date's (exclusive) in the config's
//! zone. A recurring timed event needs a `DTSTART` in UTC or with a `TZID`, so that its
//! expansion does not depend on the machine's own zone; an all-day one recurs on dates. Cancelled events (`STATUS:CANCELLED`) are left
//! out. Occurrences are expanded from [`FIRST`] to [`LAST`], at most [`MAX_OCCURRENCES`] per
//! file.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone as _, Timelike as _, Utc};
use chrono_tz::Tz;
use icalendar::{CalendarComponent, CalendarDateTime, Component as _, DatePerhapsTime, EventLike as _};

use super::resolve_local;

/// Occurrences are expanded from here...
pub const FIRST: &str = "2020-01-01T00:00:00Z";
/// ...to here (exclusive), like the shipped holiday data.
pub const LAST: &str = "2036-01-01T00:00:00Z";
/// Most occurrences one file may expand to.
pub const MAX_OCCURRENCES: usize = 20_000;
/// Longest event (a guard against a typo'd year).
pub const MAX_EVENT_DAYS: i64 = 31;

/// One occurrence of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When it starts.
    pub start: DateTime<Utc>,
    /// When it ends (exclusive).
    pub end: DateTime<Utc>,
    /// Its `SUMMARY`.
    pub summary: String,
}

/// An interval in which a schedule is running whatever its windows say: an event's start
/// minus its lead time (floored to the minute) to its end (rounded up to the minute).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uptime {
    /// First running instant.
    pub from: DateTime<Utc>,
    /// First instant after it.
    pub to: DateTime<Utc>,
    /// The event's summary, for `explain`.
    pub summary: Arc<str>,
}

fn floor_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(t)
}

fn ceil_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    let f = floor_minute(t);
    if f == t { t } else { f + Duration::minutes(1) }
}

/// The uptime intervals of events with `lead_minutes` before each.
#[must_use]
pub fn uptimes(events: &[Event], lead_minutes: u32) -> Vec<Uptime> {
    let mut out: Vec<Uptime> = events
        .iter()
        .map(|e| Uptime {
            from: floor_minute(e.start - Duration::minutes(i64::from(lead_minutes))),
            to: ceil_minute(e.end),
            summary: Arc::from(e.summary.as_str()),
        })
        .filter(|u| u.to > u.from)
        .collect();
    out.sort_by_key(|u| (u.from, u.to));
    out
}

/// The union of intervals, sorted and disjoint (touching ones merged).
#[must_use]
pub fn merged(uptimes: &[Uptime]) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut v: Vec<(DateTime<Utc>, DateTime<Utc>)> = uptimes.iter().map(|u| (u.from, u.to)).collect();
    v.sort();
    let mut out: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

fn instant(d: &DatePerhapsTime, zone: Tz, what: &str) -> Result<(DateTime<Utc>, bool), String> {
    Ok(match d {
        DatePerhapsTime::Date(date) => (resolve_local(zone, date.and_time(NaiveTime::MIN)), true),
        DatePerhapsTime::DateTime(CalendarDateTime::Utc(t)) => (*t, false),
        DatePerhapsTime::DateTime(CalendarDateTime::Floating(n)) => (resolve_local(zone, *n), false),
        DatePerhapsTime::DateTime(CalendarDateTime::WithTimezone { date_time, tzid }) => {
            let tz: Tz = tzid
                .parse()
                .map_err(|_| format!("{what}: TZID `{tzid}` is not an IANA time zone"))?;
            (resolve_local(tz, *date_time), false)
        }
    })
}

/// Reads every event of an iCalendar text. `zone` reads all-day and floating times. Collects
/// every problem, each naming the event (its `SUMMARY`, else its `UID`).
pub fn parse_events(text: &str, zone: Tz) -> Result<Vec<Event>, Vec<String>> {
    let cal: icalendar::Calendar = text
        .parse()
        .map_err(|e: String| vec![format!("not an iCalendar file: {e}")])?;
    let first: DateTime<Utc> = FIRST.parse().expect("a valid constant");
    let last: DateTime<Utc> = LAST.parse().expect("a valid constant");
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for c in &cal.components {
        let CalendarComponent::Event(e) = c else { continue };
        if e.property_value("STATUS")
            .is_some_and(|s| s.eq_ignore_ascii_case("CANCELLED"))
        {
            continue;
        }
        let summary = clean_summary(e.get_summary().unwrap_or("(no summary)"));
        let name = match e.get_uid() {
            Some(uid) if e.get_summary().is_none() => format!("event {uid}"),
            _ => format!("event `{summary}`"),
        };
        let Some(start) = e.get_start() else {
            errors.push(format!("{name}: no readable DTSTART"));
            continue;
        };
        let (start_at, all_day) = match instant(&start, zone, &name) {
            Ok(x) => x,
            Err(err) => {
                errors.push(err);
                continue;
            }
        };
        let end_at = match (e.get_end(), &start) {
            (Some(end), _) => match instant(&end, zone, &name) {
                Ok((t, _)) => t,
                Err(err) => {
                    errors.push(err);
                    continue;
                }
            },
            // RFC 5545 3.6.1: an all-day event without DTEND takes the day.
            (None, DatePerhapsTime::Date(d)) => {
                resolve_local(zone, (*d + chrono::Days::new(1)).and_time(NaiveTime::MIN))
            }
            (None, _) => {
                errors.push(format!("{name}: a timed event needs a DTEND (DURATION is not read)"));
                continue;
            }
        };
        let length = end_at - start_at;
        if length <= Duration::zero() || length > Duration::days(MAX_EVENT_DAYS) {
            errors.push(format!(
                "{name}: ends {} after it starts; an event must last more than nothing and at most {MAX_EVENT_DAYS} days",
                humanize(length)
            ));
            continue;
        }
        let recurring = e.property_value("RRULE").is_some() || e.multi_properties().contains_key("RDATE");
        if !recurring {
            if start_at >= first && start_at < last {
                events.push(Event {
                    start: start_at,
                    end: end_at,
                    summary,
                });
            }
            continue;
        }
        if let (true, DatePerhapsTime::Date(d0)) = (all_day, &start) {
            // An all-day recurrence: expanded on dates (in UTC, so that the machine's zone
            // plays no part), each occurrence a run of whole days in the config's zone.
            let days = u64::try_from(((end_at - start_at).num_hours() + 12) / 24)
                .unwrap_or(1)
                .max(1);
            match all_day_dates(e, *d0, first, last) {
                Ok(dates) if dates.len() > MAX_OCCURRENCES => errors.push(format!(
                    "{name}: its recurrence has more than {MAX_OCCURRENCES} occurrences between {FIRST} and {LAST}"
                )),
                Ok(dates) => {
                    for d in dates {
                        events.push(Event {
                            start: resolve_local(zone, d.and_time(NaiveTime::MIN)),
                            end: resolve_local(zone, (d + chrono::Days::new(days)).and_time(NaiveTime::MIN)),
                            summary: summary.clone(),
                        });
                    }
                }
                Err(err) => errors.push(format!("{name}: {err}")),
            }
            continue;
        }
        let zoned = matches!(
            start,
            DatePerhapsTime::DateTime(CalendarDateTime::Utc(_) | CalendarDateTime::WithTimezone { .. })
        );
        if !zoned {
            errors.push(format!(
                "{name}: a recurring event needs a DTSTART in UTC (…Z) or with a TZID, so that its dates do not depend on this machine's zone"
            ));
            continue;
        }
        let set = match e.get_recurrence() {
            Ok(set) => set,
            Err(err) => {
                errors.push(format!("{name}: {err}"));
                continue;
            }
        };
        let utc = icalendar::rrule::Tz::UTC;
        let limit = u16::try_from(MAX_OCCURRENCES + 1).unwrap_or(u16::MAX);
        let result = set
            .after(utc.from_utc_datetime(&(first - length).naive_utc()))
            .before(utc.from_utc_datetime(&last.naive_utc()))
            .all(limit);
        if result.dates.len() > MAX_OCCURRENCES {
            errors.push(format!(
                "{name}: its recurrence has more than {MAX_OCCURRENCES} occurrences between {FIRST} and {LAST}"
            ));
            continue;
        }
        for d in result.dates {
            let s = d.with_timezone(&Utc);
            events.push(Event {
                start: s,
                end: s + length,
                summary: summary.clone(),
            });
        }
    }
    if events.len() > MAX_OCCURRENCES {
        errors.push(format!("more than {MAX_OCCURRENCES} events in all"));
    }
    if errors.is_empty() {
        events.sort_by_key(|e| (e.start, e.end));
        Ok(events)
    } else {
        Err(errors)
    }
}

/// The dates of an all-day recurring event (`RRULE`, `RDATE`, `EXDATE` on dates), expanded
/// by the `rrule` crate from its first date's midnight in UTC.
fn all_day_dates(
    e: &icalendar::Event,
    d0: NaiveDate,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
) -> Result<Vec<NaiveDate>, String> {
    let mut spec = format!("DTSTART:{}T000000Z", d0.format("%Y%m%d"));
    if let Some(rule) = e.property_value("RRULE") {
        spec.push_str(&format!("\nRRULE:{rule}"));
    }
    for key in ["RDATE", "EXDATE"] {
        for p in e.multi_properties().get(key).into_iter().flatten() {
            for v in p.value().split(',').map(str::trim).filter(|v| !v.is_empty()) {
                let day = v.get(..8).and_then(|x| NaiveDate::parse_from_str(x, "%Y%m%d").ok());
                let Some(day) = day else {
                    return Err(format!("{key} `{v}` is not a date"));
                };
                spec.push_str(&format!("\n{key}:{}T000000Z", day.format("%Y%m%d")));
            }
        }
    }
    let set: icalendar::rrule::RRuleSet = spec.parse().map_err(|err| format!("{err}"))?;
    let utc = icalendar::rrule::Tz::UTC;
    let limit = u16::try_from(MAX_OCCURRENCES + 1).unwrap_or(u16::MAX);
    let result = set
        .after(utc.from_utc_datetime(&(first - Duration::days(MAX_EVENT_DAYS)).naive_utc()))
        .before(utc.from_utc_datetime(&last.naive_utc()))
        .all(limit);
    Ok(result
        .dates
        .iter()
        .map(|d| d.with_timezone(&Utc).date_naive())
        .collect())
}

/// The local dates (in `zone`) events cover, each with its event's summary: a holiday feed's
/// days off (an all-day event its dates; a timed one every date it touches).
#[must_use]
pub fn dates_of(events: &[Event], zone: Tz) -> Vec<(NaiveDate, String)> {
    let mut out = Vec::new();
    for e in events {
        let first = e.start.with_timezone(&zone).date_naive();
        let last = (e.end - Duration::seconds(1)).with_timezone(&zone).date_naive();
        for d in first.iter_days().take_while(|d| *d <= last) {
            out.push((d, e.summary.clone()));
        }
    }
    out
}

/// Longest event summary kept, in characters.
pub const MAX_SUMMARY: usize = 120;

/// An event's summary as offhours shows it (explain, `holidays list`, messages): a feed is
/// written by people outside the platform team, so control characters (a forged log line,
/// terminal escapes) become spaces, runs of white space fold, and the text is cut to
/// [`MAX_SUMMARY`] characters.
fn clean_summary(raw: &str) -> String {
    let folded = raw
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    match folded.char_indices().nth(MAX_SUMMARY) {
        Some((i, _)) => format!("{}…", &folded[..i]),
        None if folded.is_empty() => "(no summary)".into(),
        None => folded,
    }
}

fn humanize(d: Duration) -> String {
    if d.num_days().abs() >= 1 {
        format!("{} days", d.num_days())
    } else {
        format!("{} minutes", d.num_minutes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Asia::Seoul;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn timed_all_day_zoned_and_recurring_events_are_read() {
        let text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\n\
BEGIN:VEVENT\r\nUID:a\r\nSUMMARY:Release night\r\nDTSTART:20261205T130000Z\r\nDTEND:20261205T150000Z\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:b\r\nSUMMARY:Demo day\r\nDTSTART;VALUE=DATE:20261212\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:c\r\nSUMMARY:Load test\r\nDTSTART;TZID=America/New_York:20261101T010000\r\nDTEND;TZID=America/New_York:20261101T030000\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:d\r\nSUMMARY:Weekly drill\r\nDTSTART;TZID=Asia/Seoul:20261203T210000\r\nDTEND;TZID=Asia/Seoul:20261203T220000\r\n\
RRULE:FREQ=WEEKLY;COUNT=4\r\nEXDATE;TZID=Asia/Seoul:20261210T210000\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:e\r\nSUMMARY:Called off\r\nSTATUS:CANCELLED\r\nDTSTART:20261206T130000Z\r\nDTEND:20261206T150000Z\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";
        let ev = parse_events(text, Seoul).unwrap();
        let got: Vec<(DateTime<Utc>, DateTime<Utc>, &str)> =
            ev.iter().map(|e| (e.start, e.end, e.summary.as_str())).collect();
        assert_eq!(
            got,
            vec![
                // 01:00 EDT on the day New York falls back (the first 01:00).
                (t("2026-11-01T05:00:00Z"), t("2026-11-01T08:00:00Z"), "Load test"),
                (t("2026-12-03T12:00:00Z"), t("2026-12-03T13:00:00Z"), "Weekly drill"),
                (t("2026-12-05T13:00:00Z"), t("2026-12-05T15:00:00Z"), "Release night"),
                (t("2026-12-11T15:00:00Z"), t("2026-12-12T15:00:00Z"), "Demo day"),
                (t("2026-12-17T12:00:00Z"), t("2026-12-17T13:00:00Z"), "Weekly drill"),
                (t("2026-12-24T12:00:00Z"), t("2026-12-24T13:00:00Z"), "Weekly drill"),
            ]
        );
    }

    #[test]
    fn an_all_day_event_recurs_on_dates_whatever_the_zone() {
        let text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:f\r\nSUMMARY:Founders' day\r\nDTSTART;VALUE=DATE:20260405\r\n\
RRULE:FREQ=YEARLY;COUNT=4\r\nEXDATE;VALUE=DATE:20270405\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        for zone in [Seoul, chrono_tz::America::Los_Angeles] {
            let ev = parse_events(text, zone).unwrap();
            let days: Vec<(NaiveDate, String)> = dates_of(&ev, zone);
            let want: Vec<(NaiveDate, String)> = ["2026-04-05", "2028-04-05", "2029-04-05"]
                .iter()
                .map(|d| (d.parse().unwrap(), "Founders' day".to_string()))
                .collect();
            assert_eq!(days, want, "{zone}");
        }
    }

    #[test]
    fn problems_name_the_event() {
        let text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nSUMMARY:No end\r\nDTSTART:20261205T130000Z\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nSUMMARY:Mars\r\nDTSTART;TZID=Mars/Olympus:20261205T130000\r\nDTEND;TZID=Mars/Olympus:20261205T140000\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nSUMMARY:Backwards\r\nDTSTART:20261205T130000Z\r\nDTEND:20261205T120000Z\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nSUMMARY:Floating weekly\r\nDTSTART:20261205T130000\r\nDTEND:20261205T140000\r\nRRULE:FREQ=WEEKLY\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";
        let e = parse_events(text, Seoul).unwrap_err();
        assert_eq!(e.len(), 4, "{e:#?}");
        assert!(e[0].contains("event `No end`: a timed event needs a DTEND"), "{}", e[0]);
        assert!(
            e[1].contains("event `Mars`: TZID `Mars/Olympus` is not an IANA time zone"),
            "{}",
            e[1]
        );
        assert!(
            e[2].contains("event `Backwards`: ends -60 minutes after it starts"),
            "{}",
            e[2]
        );
        assert!(
            e[3].contains("event `Floating weekly`: a recurring event needs a DTSTART in UTC"),
            "{}",
            e[3]
        );
        assert!(parse_events("hello", Seoul).is_err());
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        const GOOD: &str = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nSUMMARY:Drill\r\nDTSTART;TZID=Asia/Seoul:20261203T210000\r\n\
DTEND;TZID=Asia/Seoul:20261203T220000\r\nRRULE:FREQ=WEEKLY;COUNT=3\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(crate::fuzz_cases(500)))]
            /// Arbitrary text and mutations of a valid file never panic the reader, and every
            /// rejection says what is wrong.
            #[test]
            fn never_panics(s in "\\PC{0,300}", cut in 0usize..400, insert in "\\PC{0,12}") {
                if let Err(errs) = parse_events(&s, Seoul) {
                    prop_assert!(!errs.is_empty() && errs.iter().all(|e| !e.is_empty()));
                }
                let mut m = GOOD.to_string();
                let at = (0..=cut.min(m.len())).rev().find(|i| m.is_char_boundary(*i)).unwrap_or(0);
                m.insert_str(at, &insert);
                if let Err(errs) = parse_events(&m, Seoul) {
                    prop_assert!(!errs.is_empty() && errs.iter().all(|e| !e.is_empty()));
                }
            }
        }
    }

    #[test]
    fn summaries_lose_control_characters_and_are_bounded() {
        let long = "x".repeat(500);
        let text = format!(
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Deploy\\n\u{1b}[31mFAKE LOG\u{7}  line\r\nDTSTART:20261205T010000Z\r\n\
DTEND:20261205T020000Z\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nSUMMARY:{long}\r\nDTSTART:20261206T010000Z\r\n\
DTEND:20261206T020000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        );
        let ev = parse_events(&text, Seoul).unwrap();
        assert!(ev[0].summary.chars().all(|c| !c.is_control()), "{:?}", ev[0].summary);
        assert!(ev[0].summary.contains("FAKE LOG line"), "{:?}", ev[0].summary);
        assert_eq!(ev[1].summary.chars().count(), MAX_SUMMARY + 1, "cut, with an ellipsis");
    }

    #[test]
    fn uptimes_take_the_lead_and_round_outwards_and_merge() {
        let ev = vec![
            Event {
                start: t("2026-12-05T13:00:30Z"),
                end: t("2026-12-05T15:00:10Z"),
                summary: "a".into(),
            },
            Event {
                start: t("2026-12-05T15:20:00Z"),
                end: t("2026-12-05T16:00:00Z"),
                summary: "b".into(),
            },
        ];
        let u = uptimes(&ev, 30);
        assert_eq!(
            (u[0].from, u[0].to),
            (t("2026-12-05T12:30:00Z"), t("2026-12-05T15:01:00Z"))
        );
        assert_eq!(merged(&u), vec![(t("2026-12-05T12:30:00Z"), t("2026-12-05T16:00:00Z"))]);
    }
}
