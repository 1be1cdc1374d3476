//! Planning a resource that offhours stops and starts at its schedule's transitions (an EC2
//! instance; a database): the planning every such kind shares, over [`Powered`].
//!
//! By default offhours acts when a transition has passed since it last acted (recorded in
//! `offhours:last-transition` on the instance), so a server started by hand after hours
//! stays up until the next stop. `enforce: true` holds the scheduled state on every pass.
//! A transition missed for longer than the catch-up window is reported, not applied.
//! An override (`offhours:override`) holds a state until a time; its expiry counts as a
//! transition. What a kind cannot stop (and why) is the kind's to say.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::config::Config;
use crate::kind::tags::{self, OverrideTag, Resolution};
use crate::model::{InstanceState, TAG_ERROR, TAG_LAST, TAG_OVERRIDE, tag_safe};
use crate::schedule::{Action, Schedule, Transition};

/// How far back the last transition is looked for.
const LOOKBACK_DAYS: i64 = 35;

/// What to do to an instance's power state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PowerOp {
    /// StopInstances.
    Stop,
    /// StopInstances with Hibernate.
    Hibernate,
    /// StartInstances.
    Start,
}

impl PowerOp {
    /// `stop-instance`, `hibernate-instance` or `start-instance`.
    #[must_use]
    pub fn kind(self) -> &'static str {
        match self {
            PowerOp::Stop => "stop-instance",
            PowerOp::Hibernate => "hibernate-instance",
            PowerOp::Start => "start-instance",
        }
    }
}

/// A resource offhours powers off and on: what the shared planner reads of it.
pub trait Powered {
    /// Its id.
    fn id(&self) -> &str;
    /// Its tags.
    fn tags(&self) -> &BTreeMap<String, String>;
    /// A tag's value.
    fn tag(&self, key: &str) -> Option<&str> {
        self.tags().get(key).map(String::as_str)
    }
    /// Its power state.
    fn state(&self) -> InstanceState;
    /// When it was launched or created (for the grace period).
    fn launched(&self) -> Option<DateTime<Utc>>;
    /// Its priced type (instance type, DB instance class).
    fn priced_type(&self) -> Option<String>;
    /// Why it is never stopped, if so (said in a note, once per pass).
    fn never_stopped(&self) -> Option<String>;
    /// Whether it can hibernate instead of stopping.
    fn can_hibernate(&self) -> bool {
        false
    }
    /// For a stopped resource whose last start did not take: what the cloud says of it.
    fn failed_start(&self) -> Option<FailedStart>;
}

/// A start that did not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedStart {
    /// The cloud's reason.
    pub message: String,
    /// The error to report (with what the platform team can do about it).
    pub error: String,
}

/// The windows a kind's planning uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// How late a transition may be applied.
    pub catch_up: Duration,
    /// How long after launch a resource is not stopped.
    pub grace: Duration,
}

/// Everything planned for one resource.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct PowerPlan {
    /// Its id.
    pub id: String,
    /// The schedule tag value.
    pub schedule: Option<String>,
    /// Stop, hibernate or start, and why.
    pub op: Option<(PowerOp, String)>,
    /// Tags to set once the op (if any) has succeeded, and why.
    pub set_tags: BTreeMap<String, String>,
    /// Tags to remove once the op (if any) has succeeded.
    pub remove_tags: Vec<String>,
    /// Why the tags change.
    pub tag_reason: String,
    /// What is wrong with its tags (it is otherwise left alone).
    pub error: Option<String>,
    /// Things worth telling.
    pub notes: Vec<String>,
    /// Its priced type, for cost estimates.
    pub instance_type: Option<String>,
    /// For a stop: minutes until the schedule starts the instance again (an estimate of
    /// the time it saves).
    pub minutes_off: Option<i64>,
}

impl PowerPlan {
    /// Whether nothing is to be done or told.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.op.is_none()
            && self.set_tags.is_empty()
            && self.remove_tags.is_empty()
            && self.error.is_none()
            && self.notes.is_empty()
    }
}

/// A kind's change type, as the shared planner's plans turn into it.
pub trait PowerChange: From<PowerOp> {
    /// Create or update tags.
    fn set_tags(tags: BTreeMap<String, String>) -> Self;
    /// Remove tags.
    fn remove_tags(keys: Vec<String>) -> Self;
}

impl PowerPlan {
    /// The plan in the shape every kind shares: the power change first, then the tag
    /// writes that record it (written only once it has succeeded), then the removals.
    #[must_use]
    pub fn into_plan<C: PowerChange>(self) -> crate::kind::Plan<C> {
        let mut p = crate::kind::Plan::new(self.id, self.schedule);
        p.error = self.error;
        p.notes = self.notes;
        p.priced_type = self.instance_type;
        if let Some((op, why)) = self.op {
            p.steps.push(crate::kind::Step {
                change: op.into(),
                reason: why,
                minutes_off: self.minutes_off,
            });
        }
        if !self.set_tags.is_empty() {
            p.step(C::set_tags(self.set_tags), self.tag_reason.clone());
        }
        if !self.remove_tags.is_empty() {
            p.step(C::remove_tags(self.remove_tags), self.tag_reason);
        }
        p
    }
}

/// `stop 2026-11-25T11:00:00Z`.
#[must_use]
pub fn record(t: &Transition) -> String {
    format!(
        "{} {}",
        t.action,
        t.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

/// Reads a recorded transition; anything unreadable counts as none.
fn recorded(value: &str) -> Option<DateTime<Utc>> {
    let (_, at) = value.split_once(' ')?;
    crate::schedule::parse_instant(at).ok()
}

/// Keeps a plan only if the tags it writes fit on the resource (see
/// [`crate::kind::tag_budget_error`]): otherwise no power change and no tag write.
pub(crate) fn within_tag_budget(plan: &mut PowerPlan, tags: &BTreeMap<String, String>) {
    if let Some(e) = crate::kind::tag_budget_error(tags, plan.set_tags.keys().map(String::as_str)) {
        plan.op = None;
        plan.minutes_off = None;
        plan.set_tags.clear();
        plan.remove_tags.clear();
        crate::kind::add_error(&mut plan.error, e);
    }
}

/// Plans one resource at `now`. Returns `None` when offhours has nothing to do or say.
#[must_use]
pub fn plan_power<R: Powered>(cfg: &Config, inst: &R, now: DateTime<Utc>, set: Settings) -> Option<PowerPlan> {
    plan_steps(cfg, inst, now, set).map(|mut p| {
        within_tag_budget(&mut p, inst.tags());
        p
    })
}

fn plan_steps<R: Powered>(cfg: &Config, inst: &R, now: DateTime<Utc>, set: Settings) -> Option<PowerPlan> {
    if inst.state() == InstanceState::Other {
        return None;
    }
    let value = inst.tag(&cfg.tag_key).map(str::trim);
    let mut plan = PowerPlan {
        id: inst.id().to_string(),
        schedule: value.map(String::from),
        instance_type: inst.priced_type(),
        ..Default::default()
    };
    let resolved = match tags::resolve(cfg, value) {
        Resolution::Unscheduled => None,
        Resolution::Scheduled(s) => Some(*s),
        Resolution::Invalid(msg) => {
            set_error(&mut plan, inst, &msg);
            return Some(plan);
        }
    };
    let Some(s) = resolved else {
        // Not (or no longer) scheduled: forget what offhours recorded.
        let ours: Vec<String> = [TAG_LAST, TAG_ERROR]
            .into_iter()
            .filter(|k| inst.tags().contains_key(*k))
            .map(String::from)
            .collect();
        if !ours.is_empty() {
            plan.remove_tags = ours;
            plan.tag_reason = "no longer scheduled".into();
        }
        return (!plan.is_empty()).then_some(plan);
    };
    let last = s.last_transition(now, LOOKBACK_DAYS);

    match tags::read_override(cfg, inst.tags(), &s.name, now) {
        OverrideTag::Absent => {}
        OverrideTag::Invalid(e) => {
            set_error(&mut plan, inst, &e);
            return Some(plan);
        }
        OverrideTag::Holds {
            state,
            until,
            capped,
            note,
        } => {
            if let Some(c) = capped {
                plan.set_tags.insert(TAG_OVERRIDE.into(), c);
                plan.tag_reason = "override capped at the configured maximum".into();
            }
            plan.notes.extend(note);
            let word = match state {
                crate::schedule::State::Running => "running",
                crate::schedule::State::Stopped => "stopped",
            };
            steer(
                &mut plan,
                &s,
                inst,
                Action::toward(state),
                now,
                set,
                &format!("override: {word} until {until}"),
            );
            clear_error(&mut plan, inst);
            return finish(plan);
        }
        OverrideTag::Expired { until, note } => {
            // Expired: the expiry is a transition to what the schedule says now.
            plan.remove_tags.push(TAG_OVERRIDE.into());
            plan.tag_reason = "override expired".into();
            plan.notes.push(note);
            let why = format!("override ended at {until}; schedule `{}`", s.name);
            steer_to_schedule(&mut plan, &s, inst, now, set, &why);
            if let Some(t) = last {
                remember(&mut plan, inst, &t);
            }
            clear_error(&mut plan, inst);
            return finish(plan);
        }
    }
    clear_error(&mut plan, inst);

    if s.enforce {
        steer_to_schedule(
            &mut plan,
            &s,
            inst,
            now,
            set,
            &format!("schedule `{}` is enforced", s.name),
        );
        return finish(plan);
    }

    let Some(t) = last else { return finish(plan) };
    let mut done = inst.tag(TAG_LAST).and_then(recorded);
    // A record dated after now is not offhours' (it writes transitions that have passed):
    // trusted, it would freeze the instance until then. It is ignored, reported, and
    // rewritten below.
    if let Some(d) = done.filter(|d| *d > now) {
        plan.notes.push(format!(
            "tag {TAG_LAST} = `{}` is dated after now ({d}); not offhours' record: ignored",
            tag_safe(inst.tag(TAG_LAST).unwrap_or_default())
        ));
        done = None;
    }
    if done.is_some_and(|d| d >= t.at) {
        return finish(plan);
    }
    let late = now - t.at;
    if late <= set.catch_up {
        let why = format!(
            "schedule `{}`: {} at {}",
            s.name,
            t.action,
            t.at.with_timezone(&s.tz).format("%Y-%m-%d %H:%M %Z")
        );
        if steer(&mut plan, &s, inst, t.action, now, set, &why) {
            remember(&mut plan, inst, &t);
        }
    } else if done.is_none() {
        // Newly scheduled: adopt the current transition without acting on it.
        remember(&mut plan, inst, &t);
        plan.tag_reason = format!("newly scheduled with `{}`; acts from the next transition", s.name);
    } else {
        let why = inst
            .failed_start()
            .filter(|_| t.action == Action::Start && inst.state() == InstanceState::Stopped)
            .map(|f| format!(" (the last start did not take: {})", f.message))
            .unwrap_or_default();
        plan.notes.push(format!(
            "missed the {} transition at {} by {} min (catch-up window {} min); not applied{why}",
            t.action,
            t.at.with_timezone(&s.tz).format("%Y-%m-%d %H:%M %Z"),
            late.num_minutes(),
            set.catch_up.num_minutes()
        ));
        remember(&mut plan, inst, &t);
        plan.tag_reason = "missed transition recorded as handled".into();
    }
    finish(plan)
}

trait Word {
    fn target_word(self) -> &'static str;
}

impl Word for Action {
    fn target_word(self) -> &'static str {
        match self {
            Action::Start => "running",
            Action::Stop => "stopped",
        }
    }
}

fn finish(plan: PowerPlan) -> Option<PowerPlan> {
    (!plan.is_empty()).then_some(plan)
}

fn remember(plan: &mut PowerPlan, inst: &impl Powered, t: &Transition) {
    let value = record(t);
    if inst.tag(TAG_LAST) != Some(value.as_str()) {
        plan.set_tags.insert(TAG_LAST.into(), value);
        if plan.tag_reason.is_empty() {
            plan.tag_reason = "record the transition applied".into();
        }
    }
}

fn set_error(plan: &mut PowerPlan, inst: &impl Powered, msg: &str) {
    if let Some(tag) = tags::error_tag(inst.tags(), msg) {
        plan.set_tags.insert(TAG_ERROR.into(), tag);
        plan.tag_reason = "the schedule tag is invalid; the resource is left as it is".into();
    }
    plan.error = Some(msg.to_string());
}

fn clear_error(plan: &mut PowerPlan, inst: &impl Powered) {
    if tags::error_to_clear(inst.tags()) {
        plan.remove_tags.push(TAG_ERROR.into());
        if plan.tag_reason.is_empty() {
            plan.tag_reason = "the schedule tag is valid again".into();
        }
    }
}

/// Moves the instance toward the state its schedule gives now, if the mode acts on it.
fn steer_to_schedule(
    plan: &mut PowerPlan,
    s: &Schedule,
    inst: &impl Powered,
    now: DateTime<Utc>,
    set: Settings,
    why: &str,
) {
    let action = Action::toward(s.state_at(now));
    if s.mode.acts_on(action) {
        steer(
            plan,
            s,
            inst,
            action,
            now,
            set,
            &format!("{why} and says {}", action.target_word()),
        );
    }
}

/// Moves the instance toward `action`'s state if it may be. Returns whether the
/// transition counts as handled (stopped, already there, or never actionable), as
/// opposed to waiting for a later pass (a start until the instance is seen running;
/// pending, stopping, grace period).
fn steer(
    plan: &mut PowerPlan,
    s: &Schedule,
    inst: &impl Powered,
    action: Action,
    now: DateTime<Utc>,
    set: Settings,
    why: &str,
) -> bool {
    match (action, inst.state()) {
        (Action::Stop, InstanceState::Stopped) | (Action::Start, InstanceState::Running) => true,
        (Action::Stop, InstanceState::Stopping) => true,
        // Pending is not yet running: an instance whose start fails goes from pending back
        // to stopped (from Pending to Stopped, AWS Knowledge Center,
        // https://repost.aws/knowledge-center/kms-iam-ec2-permission), so a start is
        // recorded only once it runs.
        (Action::Start, InstanceState::Pending) => false,
        (Action::Stop, InstanceState::Pending) | (Action::Start, InstanceState::Stopping) => {
            plan.notes
                .push(format!("{:?}: waits for the next pass to {}", inst.state(), action).to_lowercase());
            false
        }
        (Action::Stop, InstanceState::Running) => {
            if let Some(why) = inst.never_stopped() {
                plan.notes.push(why);
                return true;
            }
            if let Some(l) = inst.launched().filter(|l| crate::kind::in_grace(*l, now, set.grace)) {
                plan.notes.push(format!(
                    "launched {} min ago, inside the {} min grace period: not stopped yet",
                    (now - l).num_minutes(),
                    set.grace.num_minutes()
                ));
                return false;
            }
            let op = if s.hibernate && inst.can_hibernate() {
                PowerOp::Hibernate
            } else {
                PowerOp::Stop
            };
            plan.op = Some((op, why.to_string()));
            plan.minutes_off = s
                .next_transitions(now, 2)
                .into_iter()
                .find(|t| t.action == Action::Start)
                .map(|t| (t.at - now).num_minutes());
            true
        }
        (Action::Start, InstanceState::Stopped) => {
            // A start is done only when the resource is seen running: a start can answer
            // success and the resource fall back to stopped (see the kind's `failed_start`). So
            // the transition is not recorded here; a later pass records it once it runs, or
            // reports the failure and starts it again while the transition is inside the
            // catch-up window.
            if let Some(f) = inst.failed_start() {
                crate::kind::add_error(&mut plan.error, f.error);
            }
            plan.op = Some((PowerOp::Start, why.to_string()));
            false
        }
        (_, InstanceState::Other) => true,
    }
}

/// The violation of an untagged (or badly tagged) powered resource and, for an untagged one,
/// the remediation `policy.on_untagged` asks for: tag it, or stop it if it runs and can be
/// stopped (a resource the kind cannot stop is reported, not tried). `born` is when it was
/// launched or created, and the word for it, for `untagged_grace_minutes`; see
/// [`crate::kind::group::scan_group`] for `scope_block`.
#[must_use]
pub fn scan_power<R: Powered>(
    cfg: &Config,
    resource_type: crate::kind::ResourceType,
    r: &R,
    born: &str,
    now: DateTime<Utc>,
    scope_block: Option<&str>,
) -> Option<(crate::kind::Violation, Option<PowerPlan>)> {
    use crate::config::OnUntagged;
    use crate::kind::compliance::{TAG_REMEDIATED, screen, stamp};
    let screened = screen(
        cfg,
        resource_type,
        r.id(),
        r.tags(),
        (r.launched(), born),
        now,
        scope_block,
    )?;
    let mut v = match screened {
        Ok(v) => v,
        Err(v) => return Some((v, None)),
    };
    let mut plan = PowerPlan {
        id: r.id().to_string(),
        ..Default::default()
    };
    match &cfg.policy.on_untagged {
        OnUntagged::Report => return Some((v, None)),
        OnUntagged::Tag(s) => {
            plan.set_tags.insert(cfg.tag_key.clone(), s.clone());
            plan.set_tags
                .insert(TAG_REMEDIATED.into(), format!("tagged {s} at {}", stamp(now)));
            plan.tag_reason = format!("no schedule tag: on_untagged tags it `{s}`");
        }
        OnUntagged::Stop => {
            if r.state() != InstanceState::Running {
                return Some((v, None));
            }
            if let Some(why) = r.never_stopped() {
                v.not_remediated = Some(why);
                return Some((v, None));
            }
            plan.op = Some((PowerOp::Stop, "no schedule tag: on_untagged stops it".into()));
            plan.set_tags.insert(
                TAG_REMEDIATED.into(),
                format!("stopped at {}: no schedule tag", stamp(now)),
            );
            plan.tag_reason = "record the remediation so it can be reversed".into();
        }
    }
    within_tag_budget(&mut plan, r.tags());
    if let Some(e) = plan.error.take() {
        v.not_remediated = Some(e);
        return Some((v, None));
    }
    Some((v, Some(plan)))
}
