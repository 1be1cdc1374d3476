//! Compiles a schedule and a group's running size into Auto Scaling scheduled actions (pure).
//!
//! The week becomes recurring actions (5-field cron `Recurrence` plus the schedule's
//! `TimeZone`), one per (time of day, start or stop), each restricting only the
//! day-of-week field. Inside the holiday horizon, every date on which a recurring action
//! must not fire (a start on a holiday) or should not be trusted to AWS (a local time
//! that is skipped or repeated by DST) is cut out of it: the action is split into
//! segments bounded by `StartTime`/`EndTime`. Whatever state changes the recurring actions
//! then miss (stopping at 00:00 of a holiday inside a night window, DST edge times) become
//! one-time actions at the exact instant. Nothing relies on AWS ordering two actions that
//! fire in the same minute: every action that fires at an instant sets the state the
//! schedule has at that instant.
//!
//! Boundaries derive from dates, not from `now`: an unchanged schedule compiles to the
//! same actions on every pass, up to [`ScheduledAction::normalized`].

use std::collections::BTreeMap;
use std::collections::HashSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::capacity::Capacity;
use crate::schedule::{Action, Schedule, State, expr::Days, is_dst_edge, resolve_local, week};

/// AWS's hard quota of scheduled actions per Auto Scaling group.
pub const MAX_ACTIONS_PER_GROUP: usize = 125;
/// Every action offhours owns has a name starting with this.
pub const NAME_PREFIX: &str = "offhours-";
/// Default number of days ahead in which holidays and DST edges are compiled in.
pub const DEFAULT_HORIZON_DAYS: u32 = 21;
/// How far ahead of `now` a `StartTime` must be to be registered safely. AWS rejects a
/// put whose `StartTime` is in the past ("If you try to schedule your action in the past,
/// Amazon EC2 Auto Scaling returns an error message", API Reference,
/// PutScheduledUpdateGroupAction), and a call (with its retries) takes time to arrive.
/// A recurring segment whose first firing is nearer than this drops its `StartTime` (its
/// recurrence fires then anyway); the planner applies a one-time action this near itself.
pub const START_TIME_LEAD: Duration = Duration::minutes(2);

/// One scheduled action, as offhours would register it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ScheduledAction {
    /// Deterministic, unique per group, starts with [`NAME_PREFIX`].
    pub name: String,
    /// Whether it starts (restores the running size) or stops (0/0/0).
    pub action: Action,
    /// 5-field cron, for recurring actions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recurrence: Option<String>,
    /// IANA zone of the recurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// First firing (recurring actions also fire at it); the only one for one-time actions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime<Utc>>,
    /// After this, a recurring action no longer fires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<DateTime<Utc>>,
    /// The size it sets.
    pub capacity: Capacity,
}

impl ScheduledAction {
    /// The action as it behaves from `now` on: a `StartTime` already past has no further
    /// effect (and AWS refuses one on a put), so it is dropped.
    #[must_use]
    pub fn normalized(&self, now: DateTime<Utc>) -> Self {
        let mut a = self.clone();
        if a.recurrence.is_some() && a.start_time.is_some_and(|s| s <= now) {
            a.start_time = None;
        }
        a
    }

    /// Whether the action can no longer fire after `now`.
    #[must_use]
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        match (&self.recurrence, self.start_time, self.end_time) {
            (Some(_), _, Some(end)) => end <= now,
            (None, Some(start), _) => start <= now,
            _ => false,
        }
    }
}

impl From<&ScheduledAction> for crate::model::ObservedAction {
    /// The action as AWS reports it once registered.
    fn from(a: &ScheduledAction) -> Self {
        crate::model::ObservedAction {
            name: a.name.clone(),
            recurrence: a.recurrence.clone(),
            time_zone: a.time_zone.clone(),
            start_time: a.start_time,
            end_time: a.end_time,
            min: Some(a.capacity.min),
            max: Some(a.capacity.max),
            desired: Some(a.capacity.desired),
        }
    }
}

/// Why a schedule could not be compiled for a group.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// More actions than the group has room for.
    #[error(
        "schedule `{schedule}` needs {needed} scheduled actions on this group, but only {room} fit \
         (AWS allows {MAX_ACTIONS_PER_GROUP} per group); simplify the schedule, shorten holiday_horizon_days, \
         or remove other scheduled actions"
    )]
    TooManyActions {
        /// Schedule name.
        schedule: String,
        /// Actions the compilation produced.
        needed: usize,
        /// Actions the group has room for.
        room: usize,
    },
}

/// What to compile: a schedule for one group at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The schedule.
    pub schedule: &'a Schedule,
    /// The size start actions restore.
    pub running: Capacity,
    /// The group's name; a hash of it makes action names unique per group.
    pub group: &'a str,
    /// The moment of compilation.
    pub now: DateTime<Utc>,
    /// Days ahead in which holidays and DST edges are compiled in.
    pub horizon_days: u32,
    /// How many actions fit (125 minus the group's foreign actions).
    pub room: usize,
    /// An override: hold this state until this instant, then follow the schedule.
    pub hold: Option<(State, DateTime<Utc>)>,
}

/// The short, stable hash of a group's name used in its action names.
#[must_use]
pub fn group_hash(group: &str) -> String {
    let digest = Sha256::digest(group.as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// Whether an action name of offhours' is one of its stop actions (`offhours-<hash>-stop-...`).
#[must_use]
pub fn is_stop_name(name: &str) -> bool {
    name.strip_prefix(NAME_PREFIX)
        .and_then(|rest| rest.get(8..))
        .is_some_and(|rest| rest.starts_with("-stop-"))
}

/// Whether an action name belongs to offhours (for any group).
#[must_use]
pub fn is_owned(name: &str) -> bool {
    name.starts_with(NAME_PREFIX)
}

/// What a compilation depends on besides the group's name.
#[derive(Debug)]
struct Memo {
    schedule: Schedule,
    now: DateTime<Utc>,
    horizon_days: u32,
    room: usize,
    hold: Option<(State, DateTime<Utc>)>,
}

impl Memo {
    fn matches(&self, req: &Request<'_>) -> bool {
        self.now == req.now
            && self.horizon_days == req.horizon_days
            && self.room == req.room
            && self.hold == req.hold
            && self.schedule == *req.schedule
    }
}

thread_local! {
    /// Recent compilations on this thread, each with the action-name prefix it used. A pass
    /// compiles the same few schedules, at the same moment, for many groups; the group only
    /// names the actions and its running size only fills the start actions' capacity, so
    /// another group gets a renamed, resized copy (under a microsecond instead of about 45;
    /// `cargo bench --bench core`), whatever order the groups come in.
    static RECENT: std::cell::RefCell<Vec<(Memo, String, Vec<ScheduledAction>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Compiles a schedule into the scheduled actions that implement it for one group.
pub fn compile(req: Request<'_>) -> Result<Vec<ScheduledAction>, CompileError> {
    let prefix = format!("{NAME_PREFIX}{}", group_hash(req.group));
    let copy = |old: &str, actions: &[ScheduledAction]| -> Vec<ScheduledAction> {
        actions
            .iter()
            .map(|a| ScheduledAction {
                name: format!("{prefix}{}", &a.name[old.len()..]),
                capacity: if a.action == Action::Start {
                    req.running
                } else {
                    a.capacity
                },
                ..a.clone()
            })
            .collect()
    };
    let hit = RECENT.with_borrow(|recent| {
        let (_, old, actions) = recent.iter().rev().find(|(m, _, _)| m.matches(&req))?;
        Some(copy(old, actions))
    });
    if let Some(actions) = hit {
        return Ok(actions);
    }
    let actions = compile_fresh(req, &prefix)?;
    RECENT.with_borrow_mut(|recent| {
        if recent.len() >= crate::schedule::MEMO_ENTRIES {
            recent.remove(0);
        }
        recent.push((
            Memo {
                schedule: req.schedule.clone(),
                now: req.now,
                horizon_days: req.horizon_days,
                room: req.room,
                hold: req.hold,
            },
            prefix,
            actions.clone(),
        ));
    });
    Ok(actions)
}

fn compile_fresh(req: Request<'_>, prefix: &str) -> Result<Vec<ScheduledAction>, CompileError> {
    let s = req.schedule;
    let today = req.now.with_timezone(&s.tz).date_naive();
    let horizon_end_date = today + chrono::Days::new(u64::from(req.horizon_days));
    let horizon_end = resolve_local(s.tz, horizon_end_date.and_time(NaiveTime::MIN));

    // The state to produce: the override's until it ends, the schedule's after.
    let state_at = |t: DateTime<Utc>| match req.hold {
        Some((held, until)) if t < until => held,
        _ => s.state_at(t),
    };
    let mut candidates: Vec<DateTime<Utc>> = s.transitions(req.now, horizon_end).into_iter().map(|t| t.at).collect();
    candidates.extend(req.hold.map(|h| h.1).filter(|u| *u > req.now && *u < horizon_end));
    candidates.sort();
    candidates.dedup();
    let mut wanted = Vec::new();
    let mut prev = state_at(req.now);
    for at in candidates.into_iter().filter(|at| *at > req.now) {
        let now_state = state_at(at);
        if now_state != prev {
            let action = Action::toward(now_state);
            if s.mode.acts_on(action) {
                wanted.push(crate::schedule::Transition { at, action });
            }
            prev = now_state;
        }
    }
    let mut covered = HashSet::new();
    let mut out = Vec::new();

    for ((minute, action), days) in templates(s) {
        let base = format!(
            "{prefix}-{}-{:02}{:02}-{}",
            action,
            minute / 60,
            minute % 60,
            cron_days(days).replace(',', ".")
        );
        let recurrence = format!("{} {} * * {}", minute % 60, minute / 60, cron_days(days));
        let capacity = if action == Action::Start {
            req.running
        } else {
            s.stopped_capacity()
        };
        let nominal = |date: NaiveDate| {
            resolve_local(
                s.tz,
                date.and_time(NaiveTime::MIN) + Duration::minutes(i64::from(minute)),
            )
        };

        // (date, fire instant, kept?) for each date the action matches. The week before
        // today is included so that a segment that began after a recent cut keeps the
        // same StartTime until that time has passed: boundaries come from dates, not `now`.
        let mut fires: Vec<(NaiveDate, DateTime<Utc>, bool)> = Vec::new();
        let lookback = today - chrono::Days::new(8);
        for date in lookback.iter_days().take_while(|d| *d < horizon_end_date) {
            if !days.contains(date.weekday()) {
                continue;
            }
            let at = nominal(date);
            let local = date.and_time(NaiveTime::MIN) + Duration::minutes(i64::from(minute));
            let kept = !is_dst_edge(s.tz, local) && state_at(at) == action.target();
            if kept && at > req.now {
                covered.insert((at, action));
            }
            fires.push((date, at, kept));
        }
        // Past the horizon the action runs as AWS runs it: one kept sentinel closes the list.
        let sentinel = horizon_end_date
            .iter_days()
            .filter(|d| days.contains(d.weekday()))
            .map(|d| (d, nominal(d)))
            .find(|&(_, at)| at > req.now)
            .expect("a weekday recurs within a week");
        fires.push((sentinel.0, sentinel.1, true));

        let mut i = 0;
        while i < fires.len() {
            if !fires[i].2 {
                i += 1;
                continue;
            }
            let preceded_by_cut = i > 0;
            let first = fires[i];
            let mut last = first;
            while i < fires.len() && fires[i].2 {
                last = fires[i];
                i += 1;
            }
            if last.1 <= req.now {
                continue; // every firing of this segment is past
            }
            let cut = fires.get(i).copied();
            let mut name = base.clone();
            if let Some((date, ..)) = cut {
                name.push_str(&format!("-to{}", date.format("%Y%m%d")));
            }
            out.push(ScheduledAction {
                name,
                action,
                recurrence: Some(recurrence.clone()),
                time_zone: Some(crate::schedule::canonical_zone(s.tz).to_string()),
                // A StartTime too near to register is dropped: no firing of the recurrence
                // lies between now and it (the cut date before it fired a day or more ago).
                start_time: Some(first.1).filter(|&t| preceded_by_cut && t > req.now + START_TIME_LEAD),
                // Half a day before the first cut fire: well clear of every firing.
                end_time: cut.map(|(_, at, _)| at - Duration::hours(12)),
                capacity,
            });
        }
    }

    for t in wanted.iter().filter(|t| !covered.contains(&(t.at, t.action))) {
        out.push(ScheduledAction {
            name: format!("{prefix}-{}-once-{}", t.action, t.at.format("%Y%m%dT%H%MZ")),
            action: t.action,
            recurrence: None,
            time_zone: None,
            start_time: Some(t.at),
            end_time: None,
            capacity: if t.action == Action::Start {
                req.running
            } else {
                s.stopped_capacity()
            },
        });
    }

    if out.len() > req.room {
        return Err(CompileError::TooManyActions {
            schedule: s.name.clone(),
            needed: out.len(),
            room: req.room,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The first firing of a recurring action strictly after `now`, from its own
/// `M H * * DOW` recurrence and zone (as offhours writes them), ignoring StartTime and
/// EndTime. `None` for one-time actions or recurrences offhours does not write.
#[must_use]
pub fn next_fire(a: &ScheduledAction, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let f: Vec<&str> = a.recurrence.as_deref()?.split(' ').collect();
    let [minute, hour, "*", "*", dow] = f.as_slice() else {
        return None;
    };
    let (minute, hour): (u32, u32) = (minute.parse().ok()?, hour.parse().ok()?);
    let tz: chrono_tz::Tz = a.time_zone.as_deref().unwrap_or("UTC").parse().ok()?;
    let mut days = [false; 7]; // Sunday = 0
    for part in dow.split(',') {
        match part.split_once('-') {
            _ if part == "*" => days = [true; 7],
            Some((x, y)) => (x.parse::<usize>().ok()?..=y.parse::<usize>().ok()?).for_each(|d| days[d % 7] = true),
            None => days[part.parse::<usize>().ok()? % 7] = true,
        }
    }
    let today = now.with_timezone(&tz).date_naive() - chrono::Days::new(1);
    today
        .iter_days()
        .take(10)
        .filter(|d| days[d.weekday().num_days_from_sunday() as usize])
        .map(|d| resolve_local(tz, d.and_hms_opt(hour, minute, 0).unwrap_or_default()))
        .find(|t| *t > now)
}

/// The week's transitions grouped into cron templates: (minute of day, action) -> days.
fn templates(s: &Schedule) -> BTreeMap<(u32, Action), Days> {
    let mut out: BTreeMap<(u32, Action), Days> = BTreeMap::new();
    for (m, running) in s.week.changes() {
        let action = if running { Action::Start } else { Action::Stop };
        if !s.mode.acts_on(action) {
            continue;
        }
        let day = week::weekday_of(m);
        out.entry((m % week::DAY, action)).or_default().0 |= 1 << day.num_days_from_monday();
    }
    out
}

/// The cron day-of-week field (0 = Sunday) for a set of days, with runs as ranges.
#[must_use]
pub fn cron_days(days: Days) -> String {
    let nums: Vec<u32> = (0..7u32)
        .filter(|&n| days.contains(Weekday::try_from(((n + 6) % 7) as u8).expect("0..7")))
        .collect();
    if nums.len() == 7 {
        return "*".into();
    }
    let mut parts = Vec::new();
    let mut i = 0;
    while i < nums.len() {
        let mut j = i;
        while j + 1 < nums.len() && nums[j + 1] == nums[j] + 1 {
            j += 1;
        }
        parts.push(match j - i {
            0 => nums[i].to_string(),
            1 => format!("{},{}", nums[i], nums[j]),
            _ => format!("{}-{}", nums[i], nums[j]),
        });
        i = j + 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{Mode, expr};
    use std::sync::Arc;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn office_hours(holidays: &[&str]) -> Schedule {
        let e = expr::parse("Mon-Fri 08:00-20:00 Asia/Seoul").unwrap();
        let mut s = Schedule::from_expr("office-hours", &e, chrono_tz::UTC);
        s.holidays = Arc::new(holidays.iter().map(|d| d.parse().unwrap()).collect());
        s
    }

    fn req<'a>(s: &'a Schedule, now: &str) -> Request<'a> {
        Request {
            schedule: s,
            running: Capacity {
                min: 1,
                max: 4,
                desired: 2,
            },
            group: "web",
            now: utc(now),
            horizon_days: DEFAULT_HORIZON_DAYS,
            room: MAX_ACTIONS_PER_GROUP,
            hold: None,
        }
    }

    /// The memo serves groups of mixed schedules and sizes, in any order, exactly what a
    /// fresh compilation gives each.
    #[test]
    fn memoized_compilations_equal_fresh_ones_under_mixed_schedules_and_sizes() {
        let a = office_hours(&["2026-12-25"]);
        let e = expr::parse("Mon-Sun 22:00-06:00 Europe/London").unwrap();
        let b = Schedule::from_expr("night", &e, chrono_tz::UTC);
        for i in 0..60u32 {
            let s = if i % 3 == 0 { &b } else { &a };
            let n = i32::try_from(i % 7).unwrap();
            let group = format!("g{i}");
            let r = Request {
                running: Capacity {
                    min: n,
                    max: n + 3,
                    desired: n + 1,
                },
                group: &group,
                ..req(s, "2026-12-16T12:00:00+09:00")
            };
            let prefix = format!("{NAME_PREFIX}{}", group_hash(&group));
            assert_eq!(compile(r).unwrap(), compile_fresh(r, &prefix).unwrap(), "group {i}");
        }
    }

    #[test]
    fn cron_day_fields_use_ranges_and_sunday_zero() {
        assert_eq!(cron_days(Days::range(Weekday::Mon, Weekday::Fri)), "1-5");
        assert_eq!(cron_days(Days::range(Weekday::Sat, Weekday::Sun)), "0,6");
        assert_eq!(cron_days(Days::range(Weekday::Fri, Weekday::Mon)), "0,1,5,6");
        assert_eq!(cron_days(Days::range(Weekday::Mon, Weekday::Sun)), "*");
        assert_eq!(cron_days(Days::range(Weekday::Wed, Weekday::Wed)), "3");
    }

    #[test]
    fn a_plain_week_compiles_to_two_recurring_actions() {
        let s = office_hours(&[]);
        let a = compile(req(&s, "2026-11-02T00:00:00Z")).unwrap();
        let h = group_hash("web");
        assert_eq!(a.len(), 2, "{a:#?}");
        assert_eq!(a[0].name, format!("offhours-{h}-start-0800-1-5"));
        assert_eq!(a[0].recurrence.as_deref(), Some("0 8 * * 1-5"));
        assert_eq!(a[0].time_zone.as_deref(), Some("Asia/Seoul"));
        assert_eq!(
            a[0].capacity,
            Capacity {
                min: 1,
                max: 4,
                desired: 2
            }
        );
        assert_eq!((a[0].start_time, a[0].end_time), (None, None));
        assert_eq!(a[1].name, format!("offhours-{h}-stop-2000-1-5"));
        assert_eq!(a[1].capacity, Capacity::ZERO);
    }

    #[test]
    fn a_holiday_splits_the_start_action_around_it() {
        let s = office_hours(&["2026-12-25"]);
        let a = compile(req(&s, "2026-12-20T00:00:00Z")).unwrap();
        let starts: Vec<_> = a.iter().filter(|a| a.action == Action::Start).collect();
        assert_eq!(starts.len(), 2, "{a:#?}");
        // Thursday's 08:00 KST start fires; Friday's does not; Monday's resumes.
        assert_eq!(starts[1].end_time, Some(utc("2026-12-24T11:00:00Z")));
        assert!(starts[1].name.ends_with("-to20261225"), "{}", starts[1].name);
        assert_eq!(starts[0].start_time, Some(utc("2026-12-27T23:00:00Z")));
        assert_eq!(starts[0].end_time, None);
        assert!(
            a.iter().all(|a| a.recurrence.is_some()),
            "no one-time action needed: {a:#?}"
        );
    }

    #[test]
    fn a_night_window_into_a_holiday_gets_a_one_time_stop_at_midnight() {
        let e = expr::parse("Mon-Fri 22:00-06:00 Asia/Seoul").unwrap();
        let mut s = Schedule::from_expr("night", &e, chrono_tz::UTC);
        s.holidays = Arc::new(["2026-12-25".parse().unwrap()].into());
        let a = compile(req(&s, "2026-12-20T00:00:00Z")).unwrap();
        let once: Vec<_> = a.iter().filter(|a| a.recurrence.is_none()).collect();
        assert_eq!(once.len(), 2, "{a:#?}");
        // Stop at 12-25 00:00 KST; Friday's 22:00 start is cut, so the run that would
        // have continued into Saturday 00:00 resumes with a one-time start then.
        assert_eq!(
            (once[0].action, once[0].start_time),
            (Action::Start, Some(utc("2026-12-25T15:00:00Z")))
        );
        assert_eq!(
            (once[1].action, once[1].start_time),
            (Action::Stop, Some(utc("2026-12-24T15:00:00Z")))
        );
    }

    #[test]
    fn compiling_twice_on_the_same_day_gives_the_same_actions() {
        let s = office_hours(&["2026-12-25", "2027-01-01"]);
        let early = utc("2026-12-21T00:30:00Z");
        let late = utc("2026-12-21T14:00:00Z");
        let a: Vec<_> = compile(req(&s, "2026-12-21T00:30:00Z"))
            .unwrap()
            .iter()
            .map(|a| a.normalized(late))
            .collect();
        let b = compile(Request {
            now: late,
            ..req(&s, "2026-12-21T00:30:00Z")
        })
        .unwrap();
        assert_eq!(a.iter().filter(|x| !x.is_expired(late)).cloned().collect::<Vec<_>>(), b);
        assert!(
            b.iter()
                .all(|x| x.start_time.is_none_or(|t| t > late) && x.start_time.is_none_or(|t| t > early))
        );
    }

    #[test]
    fn stop_only_and_start_only_emit_one_direction() {
        let mut s = office_hours(&["2026-12-25"]);
        s.mode = Mode::StopOnly;
        assert!(
            compile(req(&s, "2026-12-20T00:00:00Z"))
                .unwrap()
                .iter()
                .all(|a| a.action == Action::Stop)
        );
        s.mode = Mode::StartOnly;
        let a = compile(req(&s, "2026-12-20T00:00:00Z")).unwrap();
        assert!(!a.is_empty() && a.iter().all(|a| a.action == Action::Start));
    }

    #[test]
    fn too_many_actions_is_a_clear_error() {
        let s = office_hours(&[]);
        let err = compile(Request {
            room: 1,
            ..req(&s, "2026-11-02T00:00:00Z")
        })
        .unwrap_err();
        assert!(err.to_string().contains("needs 2 scheduled actions"), "{err}");
    }

    #[test]
    fn next_fire_reads_the_recurrence_back() {
        let s = office_hours(&[]);
        let a = compile(req(&s, "2026-11-27T00:00:00Z")).unwrap(); // Friday 09:00 KST
        let start = a.iter().find(|a| a.action == Action::Start).unwrap();
        assert_eq!(
            next_fire(start, utc("2026-11-27T00:00:00Z")),
            Some(utc("2026-11-29T23:00:00Z"))
        );
        let stop = a.iter().find(|a| a.action == Action::Stop).unwrap();
        assert_eq!(
            next_fire(stop, utc("2026-11-27T00:00:00Z")),
            Some(utc("2026-11-27T11:00:00Z"))
        );
    }

    #[test]
    fn names_are_unique_per_group_and_owned() {
        let s = office_hours(&["2026-12-25"]);
        let a = compile(req(&s, "2026-12-20T00:00:00Z")).unwrap();
        let b = compile(Request {
            group: "api",
            ..req(&s, "2026-12-20T00:00:00Z")
        })
        .unwrap();
        let names: HashSet<_> = a.iter().chain(&b).map(|x| x.name.clone()).collect();
        assert_eq!(names.len(), a.len() + b.len());
        assert!(names.iter().all(|n| is_owned(n) && n.len() <= 255));
    }
}
