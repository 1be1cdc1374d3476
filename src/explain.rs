//! `offhours explain`: a schedule's next transitions and the scheduled actions it compiles to.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::capacity::Capacity;
use crate::compile::{self, CompileError, Request, ScheduledAction};
use crate::schedule::{Action, Schedule};

/// One transition, in the schedule's zone and in UTC.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainedTransition {
    /// RFC 3339 in the schedule's zone.
    pub at: String,
    /// RFC 3339 in UTC.
    pub at_utc: String,
    /// `start` or `stop`.
    pub action: Action,
    /// The uptime event this transition comes from (its lead time or its end), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
}

/// What `explain` reports, in its stable JSON shape.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// Name, or the inline expression.
    pub schedule: String,
    /// IANA zone.
    pub timezone: String,
    /// Which transitions offhours acts on.
    pub mode: crate::schedule::Mode,
    /// Holiday dates the schedule observes.
    pub holidays: usize,
    /// The transitions offhours acts on, in order.
    pub transitions: Vec<ExplainedTransition>,
    /// The size the sample actions restore.
    pub sample_size: Capacity,
    /// The instant the actions were compiled for.
    pub compiled_at: DateTime<Utc>,
    /// What would be registered on a group of `sample_size`.
    pub scheduled_actions: Vec<ScheduledAction>,
}

/// Explains `schedule` from `from`: `count` transitions, and the actions for `size`.
pub fn explain(
    schedule: &Schedule,
    from: DateTime<Utc>,
    count: usize,
    size: Capacity,
    horizon_days: u32,
) -> Result<Explanation, CompileError> {
    let transitions = schedule
        .next_transitions(from, count)
        .into_iter()
        .map(|t| ExplainedTransition {
            at: t.at.with_timezone(&schedule.tz).to_rfc3339(),
            at_utc: t.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            action: t.action,
            event: event_of(schedule, t.at, t.action),
        })
        .collect();
    let scheduled_actions = compile::compile(Request {
        schedule,
        running: size,
        group: "sample",
        now: from,
        horizon_days,
        room: compile::MAX_ACTIONS_PER_GROUP,
        hold: None,
    })?;
    Ok(Explanation {
        schedule: schedule.name.clone(),
        timezone: schedule.tz.name().to_string(),
        mode: schedule.mode,
        holidays: schedule.holidays.len(),
        transitions,
        sample_size: size,
        compiled_at: from,
        scheduled_actions,
    })
}

/// The summary of the uptime event a transition comes from: a start at an event's lead
/// time, or a stop at an event's end.
fn event_of(schedule: &Schedule, at: DateTime<Utc>, action: Action) -> Option<String> {
    schedule
        .uptime
        .at(at)
        .find(|u| match action {
            Action::Start => u.from == at,
            Action::Stop => u.to == at,
        })
        .map(|u| u.summary.to_string())
}

impl Explanation {
    /// The human-readable form.
    #[must_use]
    pub fn to_text(&self, schedule: &Schedule) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "schedule  {}", self.schedule);
        let _ = writeln!(
            out,
            "timezone  {}   mode {}   {} holiday date(s)",
            self.timezone,
            self.mode.as_str(),
            self.holidays
        );
        let _ = writeln!(out);
        let from = self.compiled_at.with_timezone(&schedule.tz);
        let _ = writeln!(
            out,
            "next {} transition(s) from {}:",
            self.transitions.len(),
            from.format("%a %Y-%m-%d %H:%M %Z")
        );
        for t in &self.transitions {
            let local = DateTime::parse_from_rfc3339(&t.at)
                .expect("we wrote it")
                .with_timezone(&schedule.tz);
            let event = t.event.as_deref().map(|e| format!("   event: {e}")).unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<5}  {}   {}{event}",
                t.action,
                local.format("%a %Y-%m-%d %H:%M %Z"),
                t.at_utc
            );
        }
        if self.transitions.is_empty() {
            let _ = writeln!(out, "  (none within two years)");
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Auto Scaling scheduled actions for a group of {}:",
            self.sample_size
        );
        for a in &self.scheduled_actions {
            let when = match (&a.recurrence, &a.time_zone) {
                (Some(r), Some(z)) => format!("cron \"{r}\" {z}"),
                (Some(r), None) => format!("cron \"{r}\" UTC"),
                _ => "once".to_string(),
            };
            let mut bounds = String::new();
            if let Some(s) = a.start_time {
                let _ = write!(bounds, " from {}", s.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            }
            if let Some(e) = a.end_time {
                let _ = write!(
                    bounds,
                    " until {}",
                    e.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
            }
            let _ = writeln!(
                out,
                "  {:<44} {:<5} {:<36} -> {}{}",
                a.name, a.action, when, a.capacity, bounds
            );
        }
        if self.scheduled_actions.is_empty() {
            let _ = writeln!(out, "  (none: the schedule never changes state)");
        }
        out
    }
}

/// A calendar name that is neither the config's nor a code of the shipped holiday data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{name}` is neither a holiday calendar of the config ({}) nor a country code offhours has holidays for (countries: {})",
    if .known.is_empty() { "it has none".to_string() } else { .known.join(", ") },
    crate::schedule::countries::countries().join(", ")
)]
pub struct UnknownCalendar {
    /// The name asked for.
    pub name: String,
    /// The config's calendars.
    pub known: Vec<String>,
}

/// `offhours holidays list`: a calendar's dates in `year` with their names, one per line
/// (`2026-05-01  Fri  Labor Day`). `name` is a calendar of the config, else a country or
/// subdivision code of the shipped data (`US-CA`); an error names the calendars there are.
///
/// # Errors
/// When `name` is neither a calendar of the config nor a code offhours has holidays for.
pub fn holidays_listing(cfg: &crate::config::Config, name: &str, year: i32) -> Result<String, UnknownCalendar> {
    use crate::schedule::countries;
    use chrono::Datelike as _;
    let (title, named): (String, Vec<(chrono::NaiveDate, String)>) = match cfg.calendar_info(name) {
        Some(cal) => (
            match &cal.country {
                Some(code) => format!("{name} (country {code}, holidays {})", countries::source_version()),
                None => name.to_string(),
            },
            cal.named.iter().map(|(d, n)| (*d, n.clone())).collect(),
        ),
        None => match countries::holidays(name) {
            Some(h) => (
                format!(
                    "{} (holidays {})",
                    name.to_ascii_uppercase(),
                    countries::source_version()
                ),
                h.into_iter().map(|(d, n)| (d, n.to_string())).collect(),
            ),
            None => {
                return Err(UnknownCalendar {
                    name: name.to_string(),
                    known: cfg.calendar_names().map(String::from).collect(),
                });
            }
        },
    };
    let dates: Vec<_> = named.into_iter().filter(|(d, _)| d.year() == year).collect();
    let mut out = format!("# {title}: {} date(s) in {year}\n", dates.len());
    for (d, n) in &dates {
        let _ = writeln!(out, "{d}  {}  {n}", d.format("%a"));
    }
    Ok(out)
}
