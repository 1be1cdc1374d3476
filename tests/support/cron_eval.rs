//! An independent evaluator of Auto Scaling scheduled actions: when does each fire?
//!
//! Cron matching comes from the `cron` crate, applied to local wall-clock time in the
//! action's `TimeZone`; `StartTime` and `EndTime` bound recurring actions, and a recurring
//! action also fires at its `StartTime`, as AWS documents. Pessimistic about DST: a
//! skipped local time never fires, a repeated one fires twice.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use offhours::compile::ScheduledAction;

/// Converts a 5-field Unix cron (day of week 0-6, Sunday 0) to the `cron` crate's form.
pub fn to_cron_crate(unix: &str) -> cron::Schedule {
    let f: Vec<&str> = unix.split(' ').collect();
    assert_eq!(f.len(), 5, "5-field cron: {unix}");
    assert!(
        f[2] == "*" || f[4] == "*",
        "cron restricts both day-of-month and day-of-week: {unix}"
    );
    const NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    let dow = if f[4] == "*" {
        "*".to_string()
    } else {
        f[4].split(',')
            .map(|part| {
                part.split('-')
                    .map(|n| NAMES[n.parse::<usize>().unwrap()])
                    .collect::<Vec<_>>()
                    .join("-")
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    cron::Schedule::from_str(&format!("0 {} {} {} {} {}", f[0], f[1], f[2], f[3], dow)).unwrap()
}

pub struct Matcher {
    from: NaiveDateTime,
    to: NaiveDateTime,
    cache: HashMap<String, HashSet<NaiveDateTime>>,
}

impl Matcher {
    /// Whether `recurrence` matches the local wall-clock minute `local`.
    pub fn matches(&mut self, recurrence: &str, local: NaiveDateTime) -> bool {
        let (from, to) = (self.from, self.to);
        self.cache
            .entry(recurrence.to_string())
            .or_insert_with(|| {
                to_cron_crate(recurrence)
                    .after(&Utc.from_utc_datetime(&from))
                    .map(|t| t.naive_utc())
                    .take_while(|t| *t <= to)
                    .collect()
            })
            .contains(&local)
    }
}

pub fn fires(a: &ScheduledAction, t: DateTime<Utc>, tz_local: impl Fn(&str) -> NaiveDateTime, m: &mut Matcher) -> bool {
    if a.start_time == Some(t) {
        return true;
    }
    let Some(r) = &a.recurrence else { return false };
    a.start_time.is_none_or(|s| t >= s)
        && a.end_time.is_none_or(|e| t <= e)
        && m.matches(r, tz_local(a.time_zone.as_deref().unwrap_or("UTC")))
}

impl Matcher {
    /// A matcher for firings between `from` and `to`.
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        Matcher {
            from: from.naive_utc(),
            to: to.naive_utc(),
            cache: HashMap::new(),
        }
    }
}

/// Every instant in `[from, to)` at which `a` fires, as AWS documents it: at its
/// `StartTime`, and (for a recurring action) whenever its cron matches the local
/// wall-clock time in its `TimeZone`, from `StartTime` to `EndTime`. Pessimistic about
/// DST like [`fires`]: a skipped local time never fires, a repeated one fires twice.
pub fn firing_times(a: &ScheduledAction, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut out: Vec<DateTime<Utc>> = a.start_time.filter(|s| from <= *s && *s < to).into_iter().collect();
    if let Some(r) = &a.recurrence {
        let tz: chrono_tz::Tz = a.time_zone.as_deref().unwrap_or("UTC").parse().unwrap();
        // Local wall-clock times covering [from, to) in any offset (at most +-14 h, so a day).
        let lo = from.naive_utc() - chrono::Duration::days(1);
        let hi = to.naive_utc() + chrono::Duration::days(1);
        for local in to_cron_crate(r)
            .after(&Utc.from_utc_datetime(&lo))
            .map(|t| t.naive_utc())
            .take_while(|t| *t <= hi)
        {
            for t in tz
                .from_local_datetime(&local)
                .earliest()
                .into_iter()
                .chain(tz.from_local_datetime(&local).latest())
            {
                let t = t.with_timezone(&Utc);
                let bounded = a.start_time.is_none_or(|s| t >= s) && a.end_time.is_none_or(|e| t <= e);
                if from <= t && t < to && bounded && !out.contains(&t) {
                    out.push(t);
                }
            }
        }
    }
    out.sort();
    out
}
