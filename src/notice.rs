//! The warning before a stop (`notifications.notice_minutes`): which running resources a
//! schedule's next stop will take down, grouped by team, and how to keep one up; one
//! message per stop transition, however many passes fall in the notice window. Pure: the
//! daemon feeds it the last pass's inventory and posts what it returns.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::config::Config;
use crate::kind::Seen;
use crate::kind::tags::{self, OverrideTag, Resolution};
use crate::schedule::Action;

/// Lines listed per team before "... and N more".
const MAX_PER_TEAM: usize = 15;

/// One stop transition coming within the notice window, and what it will stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The schedule's name.
    pub schedule: String,
    /// Its zone, for the local time in the message.
    pub zone: chrono_tz::Tz,
    /// When it stops.
    pub at: DateTime<Utc>,
    /// What it stops, by team (`None`: no team tag).
    pub by_team: BTreeMap<Option<String>, Vec<Seen>>,
}

/// The stop transitions due within `within` of `now` that will stop something running,
/// read off a pass's inventory. A resource held up past the stop by an override is left
/// out (it will not stop); one whose override ends before the stop is in.
#[must_use]
pub fn due(cfg: &Config, inventory: &[Seen], now: DateTime<Utc>, within: Duration) -> Vec<Notice> {
    let mut out: BTreeMap<(DateTime<Utc>, String), Notice> = BTreeMap::new();
    for r in inventory.iter().filter(|r| r.observation.state == "running") {
        let Resolution::Scheduled(s) = tags::resolve(cfg, r.tag(&cfg.tag_key)) else {
            continue;
        };
        let Some(next) = s.next_transitions(now, 1).into_iter().next() else {
            continue;
        };
        if next.action != Action::Stop || next.at <= now || next.at - now > within {
            continue;
        }
        if let OverrideTag::Holds { until, .. } = tags::read_override(cfg, &r.tags, &s.name, now)
            && until >= next.at
        {
            continue;
        }
        let team = r.team(cfg);
        out.entry((next.at, s.name.clone()))
            .or_insert_with(|| Notice {
                schedule: s.name.clone(),
                zone: s.tz,
                at: next.at,
                by_team: BTreeMap::new(),
            })
            .by_team
            .entry(team)
            .or_default()
            .push(r.clone());
    }
    out.into_values().collect()
}

/// The notices already sent (or being sent), so that each stop transition is told once,
/// across restarts too ([`Told::to_json`], [`Told::from_json`]: the daemon keeps them in
/// `state_dir`).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Told {
    sent: BTreeSet<(String, DateTime<Utc>)>,
}

impl Told {
    /// The record, to keep.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A kept record; one that cannot be read is an empty one (a warning may then come twice,
    /// never not at all).
    #[must_use]
    pub fn from_json(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_default()
    }

    /// Keeps the notices not told yet and remembers them; forgets transitions past `now`.
    pub fn fresh(&mut self, notices: Vec<Notice>, now: DateTime<Utc>) -> Vec<Notice> {
        self.sent.retain(|(_, at)| *at > now);
        notices
            .into_iter()
            .filter(|n| self.sent.insert((n.schedule.clone(), n.at)))
            .collect()
    }

    /// Forgets a notice whose delivery failed, so the next pass in the window tries again.
    pub fn failed(&mut self, n: &Notice) {
        self.sent.remove(&(n.schedule.clone(), n.at));
    }
}

/// The webhook message for a notice (Slack's `text`; everything read from a tag escaped).
#[must_use]
pub fn message(n: &Notice, now: DateTime<Utc>) -> Value {
    let esc = crate::notify::slack_escape;
    let count: usize = n.by_team.values().map(Vec::len).sum();
    let minutes = (n.at - now).num_minutes().max(0);
    let mut text = format!(
        "*offhours*: schedule `{}` stops {count} resource{} at {} ({} UTC), in {minutes} min.\n",
        esc(&n.schedule),
        if count == 1 { "" } else { "s" },
        n.at.with_timezone(&n.zone).format("%Y-%m-%d %H:%M %Z"),
        n.at.format("%H:%M"),
    );
    for (team, list) in &n.by_team {
        let name = team.as_deref().map_or_else(|| "no team".to_string(), esc);
        text.push_str(&format!("*{name}* ({})\n", list.len()));
        for r in list.iter().take(MAX_PER_TEAM) {
            text.push_str(&format!(
                "• {} {} ({}/{})\n",
                r.resource_type,
                esc(&r.id),
                r.account,
                r.region
            ));
        }
        if list.len() > MAX_PER_TEAM {
            text.push_str(&format!("… and {} more\n", list.len() - MAX_PER_TEAM));
        }
    }
    text.push_str(&format!(
        "To keep one up tonight: `offhours override <id> --until 3h` (or the tag `{}` = `running until <RFC 3339 time>`, written by the platform team).",
        crate::model::TAG_OVERRIDE
    ));
    json!({ "text": text })
}

#[cfg(test)]
mod tests;
