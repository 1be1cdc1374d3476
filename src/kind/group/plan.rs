//! Planning one Auto Scaling group: its saved size, its scheduled actions, its tags.
//!
//! Invariants the order of steps keeps, even if a pass dies between two of them:
//! - the running size is saved on the group before anything that can scale it down;
//! - new actions are registered before old ones are deleted, so a schedule change never
//!   leaves the group without start actions;
//! - when the schedule tag goes away, actions go first, then the size is restored, and
//!   only then are offhours' tags removed: a group never sits at zero with its size forgotten.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::capacity::Capacity;
use crate::compile::{self, MAX_ACTIONS_PER_GROUP, Request, ScheduledAction};
use crate::config::Config;
use crate::kind::tags::{self, OverrideTag, Resolution};
use crate::model::{Group, ObservedAction, TAG_ERROR, TAG_OVERRIDE, TAG_SAVED, TAG_SCHEDULE, tag_safe};
use crate::schedule::{Action, Schedule, State};
use crate::seal::{self, Saved};

/// One change to a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum GroupChange {
    /// Record the running size in the saved-capacity tag.
    SaveCapacity {
        /// The size recorded.
        capacity: Capacity,
        /// The tag value written: the size and its seal (see [`crate::seal`]).
        #[serde(skip)]
        tag: String,
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

/// A change to a group and why it is made.
pub type Step = crate::kind::Step<GroupChange>;

/// Everything planned for one group. Steps run in order; the first failure stops the rest.
pub type GroupPlan = crate::kind::Plan<GroupChange>;

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

/// The size offhours' own start actions (`stop: false`) or stop actions (`stop: true`) set,
/// read back from the group, if they agree and it is not 0/0/0: the running size, or a
/// schedule's `stopped_size`.
fn agreed_size(owned: &[&ObservedAction], stop: bool) -> Option<Capacity> {
    let mut sizes = owned
        .iter()
        .filter(|a| compile::is_stop_name(&a.name) == stop)
        .filter_map(|a| a.capacity())
        .filter(|c| !c.is_zero());
    let first = sizes.next()?;
    sizes.all(|c| c == first).then_some(first)
}

/// Whether the group is scaled down: at 0/0/0, at the schedule's stopped size, or at the
/// size offhours' own stop actions set (a schedule's earlier stopped size). Its size is then
/// not its running size, and must not be saved as one.
fn is_down(g: &Group, s: Option<&Schedule>, owned: &[&ObservedAction]) -> bool {
    g.capacity.is_zero()
        || s.is_some_and(|s| s.stopped_size == Some(g.capacity))
        || agreed_size(owned, true) == Some(g.capacity)
}

/// Whether a group on schedule `s` (if any) is scaled down, as the planner judges it.
#[must_use]
pub fn is_scaled_down(g: &Group, s: Option<&Schedule>) -> bool {
    let owned: Vec<&ObservedAction> = g.actions.iter().filter(|a| compile::is_owned(&a.name)).collect();
    is_down(g, s, &owned)
}

/// Plans one group at `now`.
#[must_use]
pub fn plan_group(cfg: &Config, g: &Group, now: DateTime<Utc>) -> GroupPlan {
    let mut plan = plan_group_steps(cfg, g, now);
    within_tag_budget(&mut plan, g);
    plan
}

/// Keeps a plan only if the tags it writes fit on the group (see [`crate::kind::tag_budget_error`]).
pub(crate) fn within_tag_budget(plan: &mut GroupPlan, g: &Group) {
    let keys = plan.steps.iter().flat_map(|s| match &s.change {
        GroupChange::SaveCapacity { .. } => vec![TAG_SAVED],
        GroupChange::SetTags { tags } => tags.keys().map(String::as_str).collect(),
        _ => Vec::new(),
    });
    if let Some(e) = crate::kind::tag_budget_error(&g.tags, keys) {
        plan.steps.clear();
        crate::kind::add_error(&mut plan.error, e);
    }
}

fn plan_group_steps(cfg: &Config, g: &Group, now: DateTime<Utc>) -> GroupPlan {
    let value = g.tag(&cfg.tag_key).map(str::trim);
    let mut plan = GroupPlan::new(g.name.clone(), value.map(String::from));
    let owned: Vec<&ObservedAction> = g.actions.iter().filter(|a| compile::is_owned(&a.name)).collect();
    let from_actions = agreed_size(&owned, false);
    // The saved size counts only if offhours wrote it for this group (its seal verifies), or
    // if an earlier offhours wrote it unsealed and offhours' own start actions agree.
    let raw_saved = g.tag(TAG_SAVED).unwrap_or_default();
    let (saved, reseal) = match seal::read_capacity(cfg.state_key.as_ref(), &g.arn, g.tag(TAG_SAVED)) {
        Saved::Absent => (None, false),
        Saved::Sealed(c) => (Some(c).filter(|c| !c.is_zero()), false),
        Saved::Unsealed(c) if !c.is_zero() && from_actions == Some(c) => {
            plan.notes.push(format!(
                "tag {TAG_SAVED} = `{raw_saved}` was written without a seal by an earlier offhours; it agrees with offhours' start actions, so it is sealed now"
            ));
            (Some(c), true)
        }
        Saved::Unsealed(_) => {
            report(
                &mut plan,
                format!(
                    "tag {TAG_SAVED} = `{raw_saved}` has no seal and nothing of offhours' agrees with it: it is not trusted and never restored"
                ),
            );
            (None, false)
        }
        Saved::Unverified(_, why) => {
            report(
                &mut plan,
                format!("tag {TAG_SAVED} = `{raw_saved}` is not offhours' ({why}): it is ignored and never restored"),
            );
            (None, false)
        }
        Saved::Invalid(_) => {
            plan.notes.push(format!(
                "tag {TAG_SAVED} = `{raw_saved}` is not a valid size; it is ignored"
            ));
            (None, false)
        }
    };
    let known_size = saved.or(from_actions);

    let resolved = match tags::resolve(cfg, value) {
        Resolution::Unscheduled => None,
        Resolution::Scheduled(s) => Some(*s),
        Resolution::Invalid(msg) => {
            set_error(&mut plan, g, &msg);
            return plan;
        }
    };
    let sizes = Sizes {
        saved,
        known: known_size,
        reseal,
        trusted_tag: saved.is_some() || g.tag(TAG_SAVED).is_none(),
    };
    match resolved {
        // Stopped by on_untagged remediation: stays so (with its saved size) until tagged.
        None if value.is_none() && crate::kind::compliance::stopped_by_remediation(&g.tags) => {}
        None => release(&mut plan, cfg, g, &owned, &sizes, value.is_some()),
        Some(s) => schedule(&mut plan, cfg, g, &s, value.unwrap_or_default(), &owned, &sizes, now),
    }
    plan
}

/// What offhours knows of a group's running size.
struct Sizes {
    /// The saved size, if offhours wrote it (sealed, or unsealed and agreeing with its actions).
    saved: Option<Capacity>,
    /// The saved size, else the size offhours' own start actions restore.
    known: Option<Capacity>,
    /// The saved size was trusted without a seal and must be sealed now.
    reseal: bool,
    /// The saved-size tag, if any, is offhours' own (so it may remove it).
    trusted_tag: bool,
}

/// Reports a problem with a group that needs no tag written (it is someone else's data).
fn report(plan: &mut GroupPlan, msg: String) {
    crate::kind::add_error(&mut plan.error, msg);
}

/// The step that records `c` as the group's saved size, sealed, if it `must` be written; an
/// error without a key (checked whether or not a write is due, so a group never runs on a
/// saved size offhours could not record again). The seal is only worked out when written.
fn save_step(cfg: &Config, g: &Group, c: Capacity, must: bool) -> Result<Option<GroupChange>, Refusal> {
    match (&cfg.state_key, g.arn.is_empty()) {
        (Some(k), false) => Ok(must.then(|| GroupChange::SaveCapacity {
            capacity: c,
            tag: seal::seal_capacity(k, &g.arn, c),
        })),
        (None, _) => Err(Refusal::NoStateKey { size: c }),
        (_, true) => Err(Refusal::NoArn),
    }
}

/// Why offhours leaves a group as it is, though its tag is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Restoring the group would exceed `max_restore_capacity`.
    #[error(
        "restoring {size} would exceed max_restore_capacity ({max}): offhours does not scale a group above it by itself; \
         set the size by hand, or have the platform team raise max_restore_capacity, then re-tag the group"
    )]
    AboveCeiling {
        /// The size it would restore.
        size: Capacity,
        /// `max_restore_capacity`.
        max: i32,
    },
    /// No state key to seal the saved size with.
    #[error(
        "offhours has no state key (state_key_env, default $OFFHOURS_STATE_KEY, or state_key_file) to seal the saved size \
         {size} with, so it does not schedule the group; see README, \"Tags offhours trusts\""
    )]
    NoStateKey {
        /// The size it would save.
        size: Capacity,
    },
    /// The group's ARN (part of the seal) is unknown.
    #[error("the group's ARN is unknown, so its saved size cannot be sealed")]
    NoArn,
}

/// Whether a restore to `c` is within `max_restore_capacity`; the error if not.
fn within_ceiling(cfg: &Config, c: Capacity) -> Result<(), Refusal> {
    if c.desired > cfg.max_restore_capacity {
        return Err(Refusal::AboveCeiling {
            size: c,
            max: cfg.max_restore_capacity,
        });
    }
    Ok(())
}

fn set_error(plan: &mut GroupPlan, g: &Group, msg: &str) {
    if let Some(tag) = tags::error_tag(&g.tags, msg) {
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
fn release(plan: &mut GroupPlan, cfg: &Config, g: &Group, owned: &[&ObservedAction], sizes: &Sizes, always_on: bool) {
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
    if is_down(g, None, owned) && sizes.known != Some(g.capacity) {
        match sizes.known {
            Some(c) => match within_ceiling(cfg, c) {
                Ok(()) => plan.step(
                    GroupChange::SetCapacity { capacity: c },
                    format!("{why} while scaled down: restore the saved size"),
                ),
                Err(e) => report(plan, e.to_string()),
            },
            None if !owned.is_empty() || g.tag(TAG_SAVED).is_some() => {
                plan.notes.push(format!(
                    "scaled down with no saved size offhours can read; left at {}",
                    g.capacity
                ));
            }
            None => {}
        }
    }
    // A saved size that is not offhours' is someone else's data: left where it is.
    let ours: Vec<String> = [
        TAG_SAVED,
        TAG_ERROR,
        TAG_SCHEDULE,
        crate::kind::compliance::TAG_REMEDIATED,
    ]
    .into_iter()
    .filter(|k| g.tags.contains_key(*k) && (*k != TAG_SAVED || sizes.trusted_tag))
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
    sizes: &Sizes,
    now: DateTime<Utc>,
) {
    let saved = sizes.saved;
    // An override holds a state until it ends (capped at the configured maximum); when
    // it has ended, its tag goes and the schedule's state applies now.
    let mut hold = None;
    let mut expired = false;
    match tags::read_override(cfg, &g.tags, &s.name, now) {
        OverrideTag::Absent => {}
        OverrideTag::Invalid(e) => {
            set_error(plan, g, &e);
            return;
        }
        OverrideTag::Holds {
            state,
            until,
            capped,
            note,
        } => {
            plan.notes.extend(note);
            if let Some(c) = capped {
                plan.step(
                    GroupChange::SetTags {
                        tags: BTreeMap::from([(TAG_OVERRIDE.to_string(), c)]),
                    },
                    "override capped at the configured maximum",
                );
            }
            hold = Some((state, until));
        }
        OverrideTag::Expired { note, .. } => {
            expired = true;
            plan.notes.push(note);
        }
    }

    // The running size: what the group has now if it is up (so a resize is followed),
    // else what was saved. At a stopped size with nothing saved (enrolled while down), that
    // size is all there is to restore.
    let down = is_down(g, Some(s), owned);
    let running = if down {
        sizes.known.or((!g.capacity.is_zero()).then_some(g.capacity))
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

    if let Err(e) = within_ceiling(cfg, running) {
        set_error(plan, g, &e.to_string());
        return;
    }
    if let Some(stopped) = s.stopped_size
        && (stopped.desired > running.desired || stopped.max > running.max)
    {
        set_error(
            plan,
            g,
            &format!(
                "schedule `{}` holds groups at {stopped} while stopped, more than this group's running size {running}: \
                 offhours would scale it up at night, so it leaves the group as it is; give the group a schedule \
                 whose stopped_size fits, or raise its size",
                s.name
            ),
        );
        return;
    }
    let must_save = saved != Some(running) || sizes.reseal;
    let save = match save_step(cfg, g, running, must_save) {
        Ok(step) => step,
        Err(e) => {
            set_error(plan, g, &e.to_string());
            return;
        }
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

    // Which actions to put under which names, which to keep and which to delete, so that
    // no put takes a time another action of the group holds (see `register`).
    let reg = register(&desired, owned, now);
    let clashes = foreign_clashes(&reg.put, g, now, s);
    if !clashes.is_empty() {
        if let Some(save) = save {
            plan.step(
                save,
                "record the running size (the schedule itself cannot be registered yet)",
            );
        }
        set_error(plan, g, &clashes.join("; "));
        return;
    }
    if let Some(save) = save {
        let why = match saved {
            Some(old) if old != running => {
                format!("the group was resized from {old}; the saved size and start actions follow")
            }
            Some(_) => "seal the saved size an earlier offhours wrote".to_string(),
            None => "record the running size before registering anything that scales the group down".to_string(),
        };
        plan.step(save, why);
    }
    let put_step = (!reg.put.is_empty()).then(|| Step {
        reason: format!(
            "register {} scheduled action(s) for schedule `{}`",
            reg.put.len(),
            s.name
        ),
        change: GroupChange::PutScheduledActions {
            actions: reg.put.clone(),
        },
        minutes_off: None,
    });
    let delete_step = (!reg.delete.is_empty()).then(|| Step {
        reason: "offhours' actions that the schedule no longer needs".to_string(),
        change: GroupChange::DeleteScheduledActions {
            names: reg.delete.clone(),
        },
        minutes_off: None,
    });
    // Put before delete, so the group always has start actions; unless the quota has
    // no room for both sets at once.
    if foreign + owned.len() + reg.new_names > MAX_ACTIONS_PER_GROUP {
        plan.steps.extend(delete_step.into_iter().chain(put_step));
    } else {
        plan.steps.extend(put_step.into_iter().chain(delete_step));
    }

    // The state the group must be in now: held by an override, or newly due because the
    // schedule was just applied or changed, or an override just ended.
    // Compared as written: the recorded value is the tag-safe form (white space folded), so
    // an inline expression with repeated spaces is not "new" on every pass.
    let newly = g.tag(TAG_SCHEDULE) != Some(tag_safe(value).as_str());
    let due = match hold {
        Some((state, _)) => Some((state, "an override holds it")),
        None if newly => Some((s.state_at(now), "schedule newly applied")),
        None if expired => Some((s.state_at(now), "the override ended")),
        None => None,
    };
    // A transition too near to be registered in time (see `START_TIME_LEAD`), that no
    // registered action fires, is applied now: at most a couple of minutes early.
    let due = match reg.imminent {
        Some(action) => Some((
            action.target(),
            "a transition less than two minutes away cannot be registered in time",
        )),
        None => due,
    };
    if let Some((state, why)) = due {
        let may = |a: Action| hold.is_some() || s.mode.acts_on(a);
        match state {
            State::Stopped if g.capacity != s.stopped_capacity() && may(Action::Stop) => plan.step(
                GroupChange::SetCapacity {
                    capacity: s.stopped_capacity(),
                },
                format!("{why} (schedule `{}`): it is off now", s.name),
            ),
            State::Running if down && g.capacity != running && may(Action::Start) => plan.step(
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
    if g.tags.contains_key(crate::kind::compliance::TAG_REMEDIATED) {
        plan.step(
            GroupChange::RemoveTags {
                keys: vec![crate::kind::compliance::TAG_REMEDIATED.into()],
            },
            "tagged now: the remediation record is no longer needed",
        );
    }
}

/// When an action as the cloud reports it fires next after `now`: its `StartTime` if that
/// is ahead, else its recurrence's next firing (none after its `EndTime`). This is the
/// time AWS keeps unique among a group's scheduled actions: a put at the time of another
/// is refused with AlreadyExists, "a scheduled action with this scheduled start time
/// already exists" (Amazon EC2 Auto Scaling User Guide, Scheduled scaling, Limitations;
/// AlreadyExistsFault in the service model for PutScheduledUpdateGroupAction and
/// BatchPutScheduledUpdateGroupAction). For a recurring action that time is its next
/// firing, which DescribeScheduledActions reports as its StartTime (same guide, the
/// describe-scheduled-actions example). The guide also says that actions with identical
/// cron expressions run in an undefined order; offhours treats a shared next firing as a
/// clash either way, since two actions setting different sizes in one minute would leave
/// the group's size to chance.
#[must_use]
pub fn observed_time(a: &ObservedAction, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Some(s) = a.start_time.filter(|s| *s > now) {
        return Some(s);
    }
    let t = crate::schedule::cron5::next_fire(a.recurrence.as_deref()?, a.time_zone.as_deref(), now)?;
    // "If a recurrence time exactly matches the end time, Amazon EC2 Auto Scaling will not
    // perform the scheduled action at the end time" (User Guide, Scheduled scaling).
    a.end_time.is_none_or(|e| t < e).then_some(t)
}

/// When an action offhours would register fires next after `now` (as [`observed_time`]).
#[must_use]
pub fn desired_time(a: &ScheduledAction, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Some(s) = a.start_time.filter(|s| *s > now) {
        return Some(s);
    }
    let t = compile::next_fire(a, now)?;
    a.end_time.is_none_or(|e| t < e).then_some(t)
}

/// How the compiled actions map onto what the group has.
#[derive(Debug, Default)]
struct Registration {
    /// Actions to put, each under the name it is registered by (its own, or that of the
    /// registered action it replaces in place).
    put: Vec<ScheduledAction>,
    /// offhours' actions no longer wanted, deleted after the puts.
    delete: Vec<String>,
    /// Puts under names the group does not have yet.
    new_names: usize,
    /// The direction of the last transition due within [`compile::START_TIME_LEAD`] that no
    /// registered action will fire.
    imminent: Option<Action>,
}

/// Maps the compiled actions onto offhours' registered ones so that no put takes a time
/// another action of the group holds (AWS rejects it; see [`observed_time`]):
/// 1. a registered action with the same effect satisfies a compiled one, whatever its
///    name (its own name first): nothing is written;
/// 2. a compiled action whose time a registered one holds replaces that one in place, under
///    its name (PutScheduledUpdateGroupAction "creates or updates"): when a holiday cuts a
///    recurring action into segments, the segment that fires next takes over the old
///    action's name; when a schedule is turned around, a start takes over the stop that
///    held its time. No action is ever deleted to free a time, so a failed put leaves the
///    group with its old actions, start actions included;
/// 3. the rest are put under their own names (a fresh variant if that name is taken).
///
/// Every put then holds a time no other action of the group has, whatever order AWS
/// applies a batch in, and nothing is ever renamed for its name's sake alone (a name says
/// where an action was first registered; its recurrence and size say what it does).
/// A one-time action due within [`compile::START_TIME_LEAD`] is not put (it would arrive
/// too late); unless already registered, its transition is applied directly.
fn register(desired: &[ScheduledAction], owned: &[&ObservedAction], now: DateTime<Utc>) -> Registration {
    let lead = now + compile::START_TIME_LEAD;
    let mut left: Vec<Option<&ObservedAction>> = owned.iter().map(|a| Some(*a)).collect();
    let mut todo: Vec<&ScheduledAction> = Vec::new();
    let mut taken: std::collections::HashSet<String> = std::collections::HashSet::new();
    // A registered action that satisfies a compiled one stays as it is, under its name.
    let keep = |slot: &mut Option<&ObservedAction>, taken: &mut std::collections::HashSet<String>| {
        if let Some(e) = slot.take() {
            taken.insert(e.name.clone());
        }
    };
    // 1. Same effect: same name first, then any name.
    let mut pending: Vec<&ScheduledAction> = Vec::new();
    for d in desired {
        match left
            .iter_mut()
            .find(|e| e.is_some_and(|e| e.name == d.name && same_effect(d, e, now)))
        {
            Some(slot) => keep(slot, &mut taken),
            None => pending.push(d),
        }
    }
    for d in pending {
        match left.iter_mut().find(|e| e.is_some_and(|e| same_effect(d, e, now))) {
            Some(slot) => keep(slot, &mut taken),
            None => todo.push(d),
        }
    }
    let mut out = Registration::default();
    let soon = |d: &ScheduledAction| desired_time(d, now).is_some_and(|t| t <= lead);
    // The last of the imminent transitions decides the state to apply now.
    out.imminent = todo
        .iter()
        .filter_map(|d| desired_time(d, now).filter(|t| *t <= lead).map(|t| (t, d.action)))
        .max()
        .map(|x| x.1);
    // A one-time action that close cannot be registered in time.
    todo.retain(|d| d.recurrence.is_some() || !soon(d));
    // 2. A registered action holding the same time is replaced in place.
    let mut rest = Vec::new();
    for d in todo {
        let t = desired_time(d, now);
        match left
            .iter_mut()
            .find(|e| t.is_some() && e.is_some_and(|e| observed_time(e, now) == t))
        {
            Some(slot) => {
                let e = slot.take().expect("found a registered action");
                taken.insert(e.name.clone());
                out.put.push(ScheduledAction {
                    name: e.name.clone(),
                    ..d.clone()
                });
            }
            None => rest.push(d),
        }
    }
    // 3. Their own names, or a fresh variant of it.
    for d in rest {
        let mut name = d.name.clone();
        if taken.contains(&name) {
            let digest = Sha256::digest(format!("{d:?}").as_bytes());
            name = format!(
                "{}-{}",
                d.name,
                digest.iter().take(3).map(|b| format!("{b:02x}")).collect::<String>()
            );
        }
        if let Some(slot) = left.iter_mut().find(|e| e.is_some_and(|e| e.name == name)) {
            *slot = None; // replaced in place
        } else {
            out.new_names += 1;
        }
        taken.insert(name.clone());
        out.put.push(ScheduledAction { name, ..d.clone() });
    }
    out.delete = left.into_iter().flatten().map(|e| e.name.clone()).collect();
    out.put.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Foreign actions (not offhours') that hold a time one of `puts` needs: AWS would refuse
/// the put, and offhours never touches other people's actions. One message per clash,
/// naming both actions and the time.
fn foreign_clashes(puts: &[ScheduledAction], g: &Group, now: DateTime<Utc>, s: &Schedule) -> Vec<String> {
    let mut out = Vec::new();
    for p in puts {
        let Some(t) = desired_time(p, now) else { continue };
        for f in g.actions.iter().filter(|a| !compile::is_owned(&a.name)) {
            if observed_time(f, now) == Some(t) {
                out.push(format!(
                    "scheduled action `{}` already holds {} ({}) on this group, the time offhours' `{}` needs \
                     (AWS allows one scheduled action per time in a group); move or delete `{}`, \
                     or choose a schedule whose transitions fall on other minutes",
                    f.name,
                    t.with_timezone(&s.tz).format("%Y-%m-%d %H:%M %Z"),
                    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    p.name,
                    f.name
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
