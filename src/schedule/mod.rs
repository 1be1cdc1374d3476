//! Schedules: weekly running windows in a zone, plus holidays, evaluated without I/O.
//!
//! Semantics, in the schedule's own zone:
//! - On a holiday date the schedule is stopped from 00:00 to 24:00; other dates follow the week.
//! - A local time that falls in a DST gap takes effect at the first instant after the gap.
//! - A local time that occurs twice (DST overlap) takes effect at its first occurrence,
//!   so the repeated hour keeps the state reached at the end of its first pass.

use crate::capacity::Capacity;

pub mod countries;
pub mod cron5;
pub mod events;
pub mod expr;
mod tzlinks;
pub mod week;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::thread::LocalKey;

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

pub use week::WeekMask;

/// Whether a resource should be running or stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Up, at its running size.
    Running,
    /// Down: stopped, or scaled to zero.
    Stopped,
}

impl State {
    fn from_bool(running: bool) -> Self {
        if running { State::Running } else { State::Stopped }
    }
}

/// The direction of a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Stopped -> running.
    Start,
    /// Running -> stopped.
    Stop,
}

impl Action {
    /// The action that leads to `state`.
    #[must_use]
    pub fn toward(state: State) -> Action {
        match state {
            State::Running => Action::Start,
            State::Stopped => Action::Stop,
        }
    }

    /// The state this action leads to.
    #[must_use]
    pub fn target(self) -> State {
        match self {
            Action::Start => State::Running,
            Action::Stop => State::Stopped,
        }
    }

    /// `start` or `stop`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Which transitions offhours acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Start and stop.
    #[default]
    Full,
    /// Only stop; starting is left to people.
    StopOnly,
    /// Only start; stopping is left to people.
    StartOnly,
}

impl Mode {
    /// Whether offhours performs `action` under this mode.
    #[must_use]
    pub fn acts_on(self, action: Action) -> bool {
        !matches!(
            (self, action),
            (Mode::StopOnly, Action::Start) | (Mode::StartOnly, Action::Stop)
        )
    }

    /// `full`, `stop-only` or `start-only`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::StopOnly => "stop-only",
            Mode::StartOnly => "start-only",
        }
    }
}

/// A change of state at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Transition {
    /// When it takes effect.
    pub at: DateTime<Utc>,
    /// Start or stop.
    pub action: Action,
}

/// A resolved schedule: a week of running minutes in a zone, and the holidays it observes.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// The config name, or the inline expression itself.
    pub name: String,
    /// The zone everything is evaluated in.
    pub tz: Tz,
    /// Running minutes of the week, local wall-clock time.
    pub week: WeekMask,
    /// Dates (in `tz`) on which the schedule is stopped all day.
    pub holidays: Arc<BTreeSet<NaiveDate>>,
    /// Which transitions are acted on.
    pub mode: Mode,
    /// Hold the scheduled state on every pass (instances) instead of acting at transitions.
    pub enforce: bool,
    /// Hibernate instances configured for it instead of stopping them.
    pub hibernate: bool,
    /// The size groups are held at while stopped; `None`: 0/0/0. Instances are not affected.
    pub stopped_size: Option<Capacity>,
    /// Events in which the schedule is running whatever its windows and holidays say.
    pub uptime: Arc<UptimeSet>,
}

/// A schedule's uptime events: each interval with its event's summary, and their union.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UptimeSet {
    /// The intervals, sorted by start.
    pub events: Vec<events::Uptime>,
    /// Their union: sorted, disjoint.
    pub merged: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

impl UptimeSet {
    /// A set from intervals.
    #[must_use]
    pub fn new(mut list: Vec<events::Uptime>) -> Self {
        list.sort_by_key(|u| (u.from, u.to));
        let merged = events::merged(&list);
        UptimeSet { events: list, merged }
    }

    /// Whether `t` is inside an event's interval.
    #[must_use]
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        let i = self.merged.partition_point(|(from, _)| *from <= t);
        i > 0 && self.merged[i - 1].1 > t
    }

    /// The events whose interval begins or ends at `t`.
    pub fn at(&self, t: DateTime<Utc>) -> impl Iterator<Item = &events::Uptime> {
        self.events.iter().filter(move |u| u.from == t || u.to == t)
    }
}

impl Schedule {
    /// The size a group is scaled to when this schedule stops it.
    #[must_use]
    pub fn stopped_capacity(&self) -> Capacity {
        self.stopped_size.unwrap_or(Capacity::ZERO)
    }

    /// A schedule from an expression's windows, in its zone or else `default_tz`.
    #[must_use]
    pub fn from_expr(name: impl Into<String>, e: &expr::Expr, default_tz: Tz) -> Self {
        Schedule {
            name: name.into(),
            tz: e.zone.unwrap_or(default_tz),
            week: e.week(),
            holidays: Arc::default(),
            mode: Mode::Full,
            enforce: false,
            hibernate: false,
            stopped_size: None,
            uptime: Arc::default(),
        }
    }

    /// Whether `date` (in the schedule's zone) is a holiday.
    #[must_use]
    pub fn is_holiday(&self, date: NaiveDate) -> bool {
        self.holidays.contains(&date)
    }

    /// The state at a local wall-clock time, ignoring DST.
    #[must_use]
    pub fn local_state(&self, local: NaiveDateTime) -> State {
        State::from_bool(!self.is_holiday(local.date()) && self.week.at(local))
    }

    /// The state at an instant: running inside an uptime event, else as the windows and
    /// holidays say.
    #[must_use]
    pub fn state_at(&self, t: DateTime<Utc>) -> State {
        if self.uptime.contains(t) {
            return State::Running;
        }
        self.windows_state_at(t)
    }

    /// The state at an instant by the windows and holidays alone.
    fn windows_state_at(&self, t: DateTime<Utc>) -> State {
        let local = t.with_timezone(&self.tz);
        let naive = local.naive_local();
        if let LocalResult::Ambiguous(first, second) = self.tz.from_local_datetime(&naive)
            && local == second
            && first != second
        {
            // The repeated hour's second pass keeps the state reached at the end of
            // the first pass: every transition inside it took effect the first time.
            let mut m = floor_minute(naive);
            while matches!(self.tz.from_local_datetime(&m), LocalResult::Ambiguous(..)) {
                m += Duration::minutes(1);
            }
            return self.local_state(m - Duration::minutes(1));
        }
        self.local_state(naive)
    }

    /// The transitions with `from <= at < to`, in order. Every entry changes the state.
    #[must_use]
    pub fn transitions(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Transition> {
        let base = self.windows_transitions(from, to);
        if self.uptime.merged.is_empty() {
            return base;
        }
        // Uptime events: the state is running inside them, else the windows'. It can change
        // only where the windows' state does or where an event begins or ends.
        let mut candidates: Vec<DateTime<Utc>> = base.iter().map(|t| t.at).collect();
        for (a, b) in &self.uptime.merged {
            candidates.extend([*a, *b].into_iter().filter(|x| *x >= from && *x < to));
        }
        candidates.sort();
        candidates.dedup();
        let mut out = Vec::new();
        for at in candidates {
            let now = self.state_at(at);
            let before = if base.iter().any(|t| t.at == at) {
                // The windows changed here: their state just before is the opposite one.
                if self.uptime.contains(at - Duration::seconds(1)) {
                    State::Running
                } else {
                    opposite(self.windows_state_at(at))
                }
            } else {
                self.state_at(at - Duration::seconds(1))
            };
            if now != before {
                out.push(Transition {
                    at,
                    action: Action::toward(now),
                });
            }
        }
        out
    }

    /// The transitions of the windows and holidays alone.
    fn windows_transitions(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Transition> {
        if to <= from {
            return Vec::new();
        }
        let first = from.with_timezone(&self.tz).date_naive() - chrono::Days::new(1);
        let last = to.with_timezone(&self.tz).date_naive() + chrono::Days::new(1);
        let changes = self.week.changes();

        // Local changes in local order; instants are then non-decreasing.
        let mut local_changes: Vec<(DateTime<Utc>, State)> = Vec::new();
        for date in first.iter_days().take_while(|d| *d <= last) {
            let midnight = date.and_time(NaiveTime::MIN);
            let base = week::minute_of_week(midnight);
            let mut candidates: Vec<u32> = vec![0];
            candidates.extend(
                changes
                    .iter()
                    .map(|&(m, _)| m)
                    .filter(|&m| m / week::DAY == base / week::DAY)
                    .map(|m| m - base),
            );
            candidates.dedup();
            for minute in candidates {
                let l = midnight + Duration::minutes(i64::from(minute));
                let now = self.local_state(l);
                if now != self.local_state(l - Duration::minutes(1)) {
                    local_changes.push((resolve_local(self.tz, l), now));
                }
            }
        }

        let mut out = Vec::new();
        let mut current = local_changes.first().map(|&(_, s)| opposite(s));
        let mut i = 0;
        while i < local_changes.len() {
            let at = local_changes[i].0;
            // Changes that land on the same instant (inside a DST gap) net out.
            while i + 1 < local_changes.len() && local_changes[i + 1].0 == at {
                i += 1;
            }
            let after = local_changes[i].1;
            i += 1;
            if Some(after) != current {
                current = Some(after);
                if at >= from && at < to {
                    let action = Action::toward(after);
                    out.push(Transition { at, action });
                }
            }
        }
        out
    }

    /// The next `count` transitions at or after `from` that this schedule's mode acts on,
    /// searching at most about two years ahead.
    #[must_use]
    pub fn next_transitions(&self, from: DateTime<Utc>, count: usize) -> Vec<Transition> {
        thread_local! {
            static LAST: Memo<(DateTime<Utc>, usize, Schedule), Vec<Transition>> = const { RefCell::new(Vec::new()) };
        }
        memoized(
            &LAST,
            |(at, n, s)| *at == from && *n == count && s == self,
            || (from, count, self.clone()),
            || self.next_transitions_fresh(from, count),
        )
    }

    fn next_transitions_fresh(&self, from: DateTime<Utc>, count: usize) -> Vec<Transition> {
        let mut out = Vec::new();
        let mut start = from;
        for _ in 0..25 {
            let end = start + Duration::days(31);
            out.extend(
                self.transitions(start, end)
                    .into_iter()
                    .filter(|t| self.mode.acts_on(t.action)),
            );
            if out.len() >= count {
                break;
            }
            start = end;
        }
        out.truncate(count);
        out
    }

    /// The last transition this schedule's mode acts on at or before `t`, searching back
    /// up to `days` days.
    #[must_use]
    pub fn last_transition(&self, t: DateTime<Utc>, days: i64) -> Option<Transition> {
        thread_local! {
            static LAST: Memo<(DateTime<Utc>, i64, Schedule), Option<Transition>> = const { RefCell::new(Vec::new()) };
        }
        memoized(
            &LAST,
            |(at, d, s)| *at == t && *d == days && s == self,
            || (t, days, self.clone()),
            || self.last_transition_fresh(t, days),
        )
    }

    fn last_transition_fresh(&self, t: DateTime<Utc>, days: i64) -> Option<Transition> {
        let mut end = t + Duration::seconds(1);
        for _ in 0..(days + 6) / 7 {
            let start = end - Duration::days(7);
            if let Some(x) = self
                .transitions(start, end)
                .into_iter()
                .rev()
                .find(|x| self.mode.acts_on(x.action))
            {
                return Some(x);
            }
            end = start;
        }
        None
    }
}

fn opposite(s: State) -> State {
    match s {
        State::Running => State::Stopped,
        State::Stopped => State::Running,
    }
}

fn floor_minute(t: NaiveDateTime) -> NaiveDateTime {
    t.with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .expect("0 is a valid second")
}

/// The instant a local wall-clock time takes effect in `tz`: its only occurrence, its
/// first occurrence when it repeats, or the first instant after the gap it falls in.
#[must_use]
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => {
            // Walk back to the last valid minute before the gap; the gap ends one
            // minute (of real time) after it.
            let mut m = floor_minute(local);
            loop {
                m -= Duration::minutes(1);
                if let Some(t) = tz.from_local_datetime(&m).latest() {
                    return t.with_timezone(&Utc) + Duration::minutes(1);
                }
            }
        }
    }
}

/// Parses an RFC 3339 instant; seconds may be left out (`2026-11-26T02:00+09:00`).
pub fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M%:z"))
        .or_else(|_| DateTime::parse_from_str(&s.replace('Z', "+00:00"), "%Y-%m-%dT%H:%M%:z"))
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("`{s}` is not an RFC 3339 time such as 2026-11-26T02:00:00+09:00"))
}

/// The canonical IANA name of a zone: the zone itself, or the zone an old alias
/// (`US/Eastern`, `ROK`, `UTC`) stands for.
///
/// AWS takes canonical names in a scheduled action's `TimeZone`: "Valid values are the
/// canonical names of the IANA time zones, derived from the IANA Time Zone Database (such
/// as `Etc/GMT+9` or `Pacific/Tahiti`)" (Amazon EC2 Auto Scaling API Reference,
/// PutScheduledUpdateGroupAction, `TimeZone`). An alias and its target keep the same rules
/// since 1970 (tzdata's `backward` file), so the schedule is unchanged. Zones renamed or
/// merged in recent tzdata (`Europe/Kiev`, `Europe/Amsterdam`) are sent as written: see
/// `scripts/gen-tzlinks.py`.
#[must_use]
pub fn canonical_zone(tz: Tz) -> &'static str {
    let name = tz.name();
    match tzlinks::LINKS.binary_search_by(|(link, _)| (*link).cmp(name)) {
        Ok(i) => tzlinks::LINKS[i].1,
        Err(_) => name,
    }
}

/// Whether a local time is skipped (`None`) or repeated (`Ambiguous`) in `tz`.
#[must_use]
pub fn is_dst_edge(tz: Tz, local: NaiveDateTime) -> bool {
    !matches!(tz.from_local_datetime(&local), LocalResult::Single(_))
}

/// A small memo: recent questions and their answers, oldest first.
type Memo<K, V> = RefCell<Vec<(K, V)>>;

/// How many answers a memo keeps: more than the schedules (times sizes) a config has in use
/// at once, so that resources listed in any order, following different schedules, hit it.
pub const MEMO_ENTRIES: usize = 32;

/// Answers a question from a small memo on this thread, or works it out with `fresh`.
/// A pass asks the same few questions (one per schedule, at one moment) for every resource,
/// in whatever order the resources are listed; the oldest answer makes room for a new one.
/// `is` recognises the question among the kept ones (cheap fields first: a schedule is
/// compared in full only when the moment matches) and `question` builds the key to keep,
/// only on a miss, so a hit clones nothing but the answer.
fn memoized<K, V: Clone>(
    memo: &'static LocalKey<Memo<K, V>>,
    is: impl Fn(&K) -> bool,
    question: impl FnOnce() -> K,
    fresh: impl FnOnce() -> V,
) -> V {
    let hit = memo.with_borrow(|m| m.iter().rev().find(|(k, _)| is(k)).map(|(_, v)| v.clone()));
    if let Some(answer) = hit {
        return answer;
    }
    let answer = fresh();
    memo.with_borrow_mut(|m| {
        if m.len() >= MEMO_ENTRIES {
            m.remove(0);
        }
        m.push((question(), answer.clone()));
    });
    answer
}

#[cfg(test)]
mod tests;
