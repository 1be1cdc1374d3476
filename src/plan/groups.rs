//! Planning one Auto Scaling group: its saved size, its scheduled actions, its tags.
//!
//! Invariants the order of steps keeps, even if a pass dies between two of them:
//! - the running size is saved on the group before anything that can scale it down;
//! - new actions are registered before old ones are deleted, so a schedule change never
//!   leaves the group without start actions;
//! - when the schedule tag goes away, actions go first, then the size is restored, and
//!   only then are offhours' tags removed: a group never sits at zero with its size forgotten.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::capacity::Capacity;
use crate::compile::{self, MAX_ACTIONS_PER_GROUP, Request, ScheduledAction};
use crate::config::{ALWAYS_ON, Config, Resolved};
use crate::model::{Group, ObservedAction, Override, TAG_ERROR, TAG_OVERRIDE, TAG_SAVED, TAG_SCHEDULE, tag_safe};
use crate::schedule::{Action, Schedule, State};

/// One change to a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum GroupChange {
    /// Record the running size in the saved-capacity tag.
    SaveCapacity {
        /// The size recorded.
        capacity: Capacity,
    },
    /// Register (create or replace) scheduled actions, in batches of at most 50.
    PutScheduledActions {
        /// The actions.
        actions: Vec<ScheduledAction>,
    },
    /// Delete offhours-owned scheduled actions.
    DeleteScheduledActions {
        /// Their names.
        names: Vec<String>,
    },
    /// Set min/max/desired now.
    SetCapacity {
        /// The size set.
        capacity: Capacity,
    },
    /// Create or update tags.
    SetTags {
        /// Key -> value.
        tags: BTreeMap<String, String>,
    },
    /// Remove tags.
    RemoveTags {
        /// The keys.
        keys: Vec<String>,
    },
}

impl GroupChange {
    /// The change's kind, as in the JSON report.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            GroupChange::SaveCapacity { .. } => "save-capacity",
            GroupChange::PutScheduledActions { .. } => "put-scheduled-actions",
            GroupChange::DeleteScheduledActions { .. } => "delete-scheduled-actions",
            GroupChange::SetCapacity { .. } => "set-capacity",
            GroupChange::SetTags { .. } => "set-tags",
            GroupChange::RemoveTags { .. } => "remove-tags",
        }
    }
}

/// A change and why it is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// What to do.
    #[serde(flatten)]
    pub change: GroupChange,
    /// Why.
    pub reason: String,
}

/// Everything planned for one group. Steps run in order; the first failure stops the rest.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct GroupPlan {
    /// The group's name.
    pub group: String,
    /// The schedule tag value, if any.
    pub schedule: Option<String>,
    /// The changes, in the order they must be applied.
    pub steps: Vec<Step>,
    /// What is wrong with the group's schedule, if anything (the group is otherwise left as is).
    pub error: Option<String>,
    /// Things worth telling that need no change.
    pub notes: Vec<String>,
}

impl GroupPlan {
    fn step(&mut self, change: GroupChange, reason: impl Into<String>) {
        self.steps.push(Step {
            change,
            reason: reason.into(),
        });
    }
}

/// Whether an observed action already does what a desired one does, from `now` on.
#[must_use]
pub fn same_effect(want: &ScheduledAction, have: &ObservedAction, now: DateTime<Utc>) -> bool {
    let start_ok = match (&want.recurrence, want.start_time) {
        // AWS reports the next firing as the StartTime of a recurring action; any value
        // that does not hold back a firing we want is equivalent to none.
        (Some(_), None) => have
            .start_time
            .is_none_or(|s| s <= now || compile::next_fire(want, now).is_some_and(|f| s <= f)),
        (_, wanted) => have.start_time == wanted,
    };
    let zone_ok = want.recurrence.is_none() || have.time_zone == want.time_zone;
    have.recurrence == want.recurrence
        && zone_ok
        && have.end_time == want.end_time
        && have.capacity() == Some(want.capacity)
        && start_ok
}

/// The size the group's start actions restore, read back from offhours' own actions.
fn size_from_start_actions(owned: &[&ObservedAction]) -> Option<Capacity> {
    let mut sizes = owned.iter().filter_map(|a| a.capacity()).filter(|c| !c.is_zero());
    let first = sizes.next()?;
    sizes.all(|c| c == first).then_some(first)
}

/// Plans one group at `now`.
#[must_use]
pub fn plan_group(cfg: &Config, g: &Group, now: DateTime<Utc>) -> GroupPlan {
    let value = g.tag(&cfg.tag_key).map(str::trim);
    let mut plan = GroupPlan {
        group: g.name.clone(),
        schedule: value.map(String::from),
        ..Default::default()
    };
    let owned: Vec<&ObservedAction> = g.actions.iter().filter(|a| compile::is_owned(&a.name)).collect();
    let saved = g
        .tag(TAG_SAVED)
        .and_then(|s| s.parse::<Capacity>().ok())
        .filter(|c| !c.is_zero());
    if g.tag(TAG_SAVED).is_some() && saved.is_none() {
        plan.notes.push(format!(
            "tag {TAG_SAVED} = `{}` is not a valid size; it is ignored",
            g.tag(TAG_SAVED).unwrap_or_default()
        ));
    }
    let known_size = saved.or_else(|| size_from_start_actions(&owned));

    let resolved = match value {
        None => None,
        Some(v) if v == ALWAYS_ON => None,
        Some(v) => match cfg.resolve_tag(v) {
            Ok(Resolved::AlwaysOn) => None,
            Ok(Resolved::Named(s)) => Some(s.clone()),
            Ok(Resolved::Inline(s)) => Some(*s),
            Err(e) => {
                let msg = e.to_string();
                set_error(&mut plan, g, &msg);
                return plan;
            }
        },
    };
    match resolved {
        // Stopped by on_untagged remediation: stays so (with its saved size) until tagged.
        None if super::compliance::stopped_by_remediation(&g.tags) => {}
        None => release(&mut plan, g, &owned, known_size, value.is_some()),
        Some(s) => schedule(
            &mut plan,
            cfg,
            g,
            &s,
            value.unwrap_or_default(),
            &owned,
            saved,
            known_size,
            now,
        ),
    }
    plan
}

fn set_error(plan: &mut GroupPlan, g: &Group, msg: &str) {
    let tag = tag_safe(msg);
    if g.tag(TAG_ERROR) != Some(tag.as_str()) {
        plan.step(
            GroupChange::SetTags {
                tags: BTreeMap::from([(TAG_ERROR.to_string(), tag)]),
            },
            "the schedule tag is invalid; the group is left as it is",
        );
    }
    plan.error = Some(msg.to_string());
}

/// The tag is gone or `always-on`: undo everything offhours did.
fn release(plan: &mut GroupPlan, g: &Group, owned: &[&ObservedAction], known_size: Option<Capacity>, always_on: bool) {
    let why = if always_on {
        "schedule set to always-on"
    } else {
        "schedule tag removed"
    };
    if !owned.is_empty() {
        plan.step(
            GroupChange::DeleteScheduledActions {
                names: owned.iter().map(|a| a.name.clone()).collect(),
            },
            format!("{why}: offhours' scheduled actions are no longer wanted"),
        );
    }
    if g.capacity.is_zero() {
        match known_size {
            Some(c) => plan.step(
                GroupChange::SetCapacity { capacity: c },
                format!("{why} while scaled down: restore the saved size"),
            ),
            None if !owned.is_empty() || g.tag(TAG_SAVED).is_some() => {
                plan.notes
                    .push("scaled down with no saved size offhours can read; left at 0/0/0".into());
            }
            None => {}
        }
    }
    let ours: Vec<String> = [TAG_SAVED, TAG_ERROR, TAG_SCHEDULE]
        .into_iter()
        .filter(|k| g.tags.contains_key(*k))
        .map(String::from)
        .collect();
    if !ours.is_empty() {
        plan.step(
            GroupChange::RemoveTags { keys: ours },
            format!("{why}: offhours no longer manages the group"),
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn schedule(
    plan: &mut GroupPlan,
    cfg: &Config,
    g: &Group,
    s: &Schedule,
    value: &str,
    owned: &[&ObservedAction],
    saved: Option<Capacity>,
    known_size: Option<Capacity>,
    now: DateTime<Utc>,
) {
    // An override holds a state until it ends (capped at the configured maximum); when
    // it has ended, its tag goes and the schedule's state applies now.
    let mut hold = None;
    let mut expired = false;
    if let Some(raw) = g.tag(TAG_OVERRIDE) {
        match Override::parse(raw) {
            Err(e) => {
                set_error(plan, g, &e);
                return;
            }
            Ok(mut o) if o.until > now => {
                if o.until - now > cfg.max_override {
                    o.until = now + cfg.max_override;
                    plan.notes.push(format!(
                        "override `{raw}` is longer than {} h; capped to {}",
                        cfg.max_override.num_hours(),
                        o.to_tag()
                    ));
                    plan.step(
                        GroupChange::SetTags {
                            tags: BTreeMap::from([(TAG_OVERRIDE.to_string(), o.to_tag())]),
                        },
                        "override capped at the configured maximum",
                    );
                }
                hold = Some((o.state, o.until));
            }
            Ok(_) => {
                expired = true;
                plan.notes
                    .push(format!("override `{raw}` expired; back to schedule `{}`", s.name));
            }
        }
    }

    // The running size: what the group has now if it is up (so a resize is followed),
    // else what was saved.
    let running = if g.capacity.is_zero() {
        known_size
    } else {
        Some(g.capacity)
    };
    let Some(running) = running else {
        plan.notes.push(
            "the group is at 0/0/0 and offhours has no saved size for it: left alone until it has a real size".into(),
        );
        if g.tag(TAG_ERROR).is_some() {
            plan.step(
                GroupChange::RemoveTags {
                    keys: vec![TAG_ERROR.into()],
                },
                "the schedule tag is valid again",
            );
        }
        return;
    };

    let foreign = g.actions.len() - owned.len();
    let desired = match compile::compile(Request {
        schedule: s,
        running,
        group: &g.name,
        now,
        horizon_days: cfg.holiday_horizon_days,
        room: MAX_ACTIONS_PER_GROUP.saturating_sub(foreign),
        hold,
    }) {
        Ok(d) => d,
        Err(e) => {
            set_error(
                plan,
                g,
                &format!("{e} (the group has {foreign} other scheduled actions)"),
            );
            return;
        }
    };

    if saved != Some(running) {
        let why = match saved {
            None => "record the running size before registering anything that scales the group down".to_string(),
            Some(old) => format!("the group was resized from {old}; the saved size and start actions follow"),
        };
        plan.step(GroupChange::SaveCapacity { capacity: running }, why);
    }

    let have: HashMap<&str, &ObservedAction> = owned.iter().map(|a| (a.name.as_str(), *a)).collect();
    let put: Vec<ScheduledAction> = desired
        .iter()
        .filter(|d| have.get(d.name.as_str()).is_none_or(|o| !same_effect(d, o, now)))
        .cloned()
        .collect();
    let wanted: std::collections::HashSet<&str> = desired.iter().map(|d| d.name.as_str()).collect();
    let delete: Vec<String> = owned
        .iter()
        .filter(|a| !wanted.contains(a.name.as_str()))
        .map(|a| a.name.clone())
        .collect();
    let new_names = put.iter().filter(|a| !have.contains_key(a.name.as_str())).count();
    let put_step = (!put.is_empty()).then(|| Step {
        reason: format!("register {} scheduled action(s) for schedule `{}`", put.len(), s.name),
        change: GroupChange::PutScheduledActions { actions: put },
    });
    let delete_step = (!delete.is_empty()).then(|| Step {
        reason: "offhours' actions that the schedule no longer needs".to_string(),
        change: GroupChange::DeleteScheduledActions { names: delete },
    });
    // Put before delete, so the group always has start actions; unless the quota has
    // no room for both sets at once.
    if foreign + owned.len() + new_names > MAX_ACTIONS_PER_GROUP {
        plan.steps.extend(delete_step.into_iter().chain(put_step));
    } else {
        plan.steps.extend(put_step.into_iter().chain(delete_step));
    }

    // The state the group must be in now: held by an override, or newly due because the
    // schedule was just applied or changed, or an override just ended.
    let newly = g.tag(TAG_SCHEDULE) != Some(value);
    let due = match hold {
        Some((state, _)) => Some((state, "an override holds it")),
        None if newly => Some((s.state_at(now), "schedule newly applied")),
        None if expired => Some((s.state_at(now), "the override ended")),
        None => None,
    };
    if let Some((state, why)) = due {
        let may = |a: Action| hold.is_some() || s.mode.acts_on(a);
        match state {
            State::Stopped if !g.capacity.is_zero() && may(Action::Stop) => plan.step(
                GroupChange::SetCapacity {
                    capacity: crate::capacity::Capacity::ZERO,
                },
                format!("{why} (schedule `{}`): it is off now", s.name),
            ),
            State::Running if g.capacity.is_zero() && may(Action::Start) => plan.step(
                GroupChange::SetCapacity { capacity: running },
                format!("{why} (schedule `{}`): it is on now", s.name),
            ),
            _ => {}
        }
    }
    if expired {
        plan.step(
            GroupChange::RemoveTags {
                keys: vec![TAG_OVERRIDE.into()],
            },
            "the override has ended",
        );
    }
    if newly {
        plan.step(
            GroupChange::SetTags {
                tags: BTreeMap::from([(TAG_SCHEDULE.to_string(), tag_safe(value))]),
            },
            "remember which schedule is applied",
        );
    }
    if g.tag(TAG_ERROR).is_some() {
        plan.step(
            GroupChange::RemoveTags {
                keys: vec![TAG_ERROR.into()],
            },
            "the schedule tag is valid again",
        );
    }
    if g.tags.contains_key(super::compliance::TAG_REMEDIATED) {
        plan.step(
            GroupChange::RemoveTags {
                keys: vec![super::compliance::TAG_REMEDIATED.into()],
            },
            "tagged now: the remediation record is no longer needed",
        );
    }
}

#[cfg(test)]
mod tests;
