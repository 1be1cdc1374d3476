//! The next firing of a 5-field Unix cron `Recurrence`, as Auto Scaling reads one, in a
//! zone (pure).
//!
//! offhours writes only `M H * * DOW` recurrences, and reads its own back with
//! [`crate::compile::next_fire`]. This module reads *anyone's*: the scheduled actions other
//! people put on a group, whose times offhours must not collide with (a scheduled action
//! needs a time of its own in its group: see [`crate::kind::group::plan`]).
//!
//! Syntax, from the Amazon EC2 Auto Scaling API Reference (PutScheduledUpdateGroupAction,
//! `Recurrence`): "The recurring schedule for this action. This format consists of five
//! fields separated by white spaces: [Minute] [Hour] [Day_of_Month] [Month_of_Year]
//! [Day_of_Week]", Unix cron. As in Unix cron, when both day fields are restricted a day
//! matches if *either* does. Matching is done by the `cron` crate (the design's cron
//! evaluator), after translating Unix's day-of-week numbers (0 or 7 = Sunday) to names.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

const DAYS: [&str; 8] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];

/// Translates a Unix day-of-week field to the `cron` crate's names.
fn day_names(field: &str) -> Option<String> {
    let mut out = String::new();
    let mut number = String::new();
    let flush = |number: &mut String, out: &mut String| -> Option<()> {
        if !number.is_empty() {
            out.push_str(DAYS.get(number.parse::<usize>().ok()?)?);
            number.clear();
        }
        Some(())
    };
    let mut after_slash = false;
    for c in field.chars() {
        if c.is_ascii_digit() && !after_slash {
            number.push(c);
            continue;
        }
        flush(&mut number, &mut out)?;
        match c {
            '/' => after_slash = true,
            ',' | '-' => after_slash = false,
            _ => {}
        }
        out.push(c);
    }
    flush(&mut number, &mut out)?;
    Some(out)
}

fn schedule(minute: &str, hour: &str, dom: &str, month: &str, dow: &str) -> Option<cron::Schedule> {
    cron::Schedule::from_str(&format!("0 {minute} {hour} {dom} {month} {}", day_names(dow)?)).ok()
}

/// The first firing of `recurrence` in `zone` strictly after `after`, if the expression can
/// be read; `None` for anything else (offhours then cannot know its time, and says so).
#[must_use]
pub fn next_fire(recurrence: &str, zone: Option<&str>, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let tz: Tz = zone.unwrap_or("UTC").parse().ok()?;
    let f: Vec<&str> = recurrence.split_whitespace().collect();
    let [minute, hour, dom, month, dow] = f.as_slice() else {
        return None;
    };
    let restricted = |x: &str| x != "*" && x != "?";
    let local = after.with_timezone(&tz);
    let first = |s: cron::Schedule| s.after(&local).next().map(|t| t.with_timezone(&Utc));
    if restricted(dom) && restricted(dow) {
        // Unix cron: either day field matches.
        let a = first(schedule(minute, hour, dom, month, "*")?);
        let b = first(schedule(minute, hour, "*", month, dow)?);
        return a.into_iter().chain(b).min();
    }
    first(schedule(minute, hour, dom, month, dow)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn weekday_numbers_and_names_follow_unix_cron() {
        // 2026-11-30 is a Monday.
        let now = utc("2026-11-30T12:00:00Z");
        for r in ["0 8 * * 1-5", "0 8 * * MON-FRI", "0 8 * * 1,2,3,4,5"] {
            assert_eq!(
                next_fire(r, Some("Asia/Seoul"), now),
                Some(utc("2026-11-30T23:00:00Z")),
                "{r}"
            );
        }
        assert_eq!(next_fire("0 8 * * 0", None, now), Some(utc("2026-12-06T08:00:00Z")));
        assert_eq!(next_fire("0 8 * * 7", None, now), Some(utc("2026-12-06T08:00:00Z")));
        assert_eq!(next_fire("*/15 * * * *", None, now), Some(utc("2026-11-30T12:15:00Z")));
        assert_eq!(next_fire("0 0 1 1 *", None, now), Some(utc("2027-01-01T00:00:00Z")));
    }

    #[test]
    fn both_day_fields_restricted_match_either() {
        let now = utc("2026-11-30T12:00:00Z"); // Monday
        // The 15th, or any Friday: Friday 2026-12-04 comes first.
        assert_eq!(next_fire("0 9 15 * 5", None, now), Some(utc("2026-12-04T09:00:00Z")));
        // The 1st, or any Sunday: Tuesday 2026-12-01 comes first.
        assert_eq!(next_fire("0 9 1 * 0", None, now), Some(utc("2026-12-01T09:00:00Z")));
    }

    #[test]
    fn unreadable_expressions_and_zones_are_none() {
        let now = utc("2026-11-30T12:00:00Z");
        for r in ["", "0 8 * *", "0 8 * * 9", "x 8 * * *", "0 8 * * 1 2026"] {
            assert_eq!(next_fire(r, None, now), None, "{r}");
        }
        assert_eq!(next_fire("0 8 * * *", Some("Mars/Olympus"), now), None);
    }
}
