//! A small organization seeded in moto for the fault and crash tests, read back whole, and
//! the invariants offhours must keep whatever happens to its calls:
//! - no group at zero without its saved size;
//! - no group scaled down, and no instance stopped, outside its schedule (and nothing started
//!   outside it either); nothing that has not opted in is touched;
//! - once converged: each group's offhours actions, fired as AWS fires them, implement its
//!   schedule as the independent oracle (`oracle.rs`) lays it out, and each instance is in
//!   its scheduled state.

use std::collections::{BTreeMap, BTreeSet};

use aws_config::SdkConfig;
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use chrono::{DateTime, DurationRound, Utc};
use offhours::capacity::Capacity;
use offhours::compile::{self, ScheduledAction, is_owned};
use offhours::config::{Config, Resolved};
use offhours::model::{ObservedAction, Override, TAG_ASG_MEMBER, TAG_OVERRIDE, TAG_SAVED};
use offhours::schedule::{Action, State};

use super::cron_eval::firing_times;
use super::moto::{MANAGEMENT, Moto};
use super::oracle::Book;

/// (account, region, group name or instance id).
pub type Key = (String, String, String);

/// A seeded group: name, (min, max, desired), schedule tag (None: untagged).
pub type Seed = (&'static str, (i32, i32, i32), Option<&'static str>);

/// The groups every scope gets.
pub const GROUPS: &[Seed] = &[
    ("office", (1, 3, 2), Some("office-hours")),
    ("weekend", (1, 2, 1), Some("weekend-off")),
    ("late", (2, 2, 2), None),
    ("typo", (1, 1, 1), Some("office-hour")),
    ("plain", (1, 1, 1), None),
];
/// Groups that never opt in: they must never be touched.
pub const NEVER: &[&str] = &["typo", "plain"];

/// A group as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupView {
    pub capacity: Capacity,
    pub tags: BTreeMap<String, String>,
    pub actions: Vec<ObservedAction>,
}

/// An instance as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceView {
    pub running: bool,
    pub state: String,
    pub tags: BTreeMap<String, String>,
}

/// Everything in the organization at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub groups: BTreeMap<Key, GroupView>,
    pub instances: BTreeMap<Key, InstanceView>,
}

/// The seeded organization.
pub struct World {
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub root: String,
    /// Each group's size as seeded (its running size).
    pub original: BTreeMap<Key, Capacity>,
    /// Plain instances that never opt in.
    pub never: BTreeSet<Key>,
    sdks: BTreeMap<(String, String), SdkConfig>,
}

fn cap((min, max, desired): (i32, i32, i32)) -> Capacity {
    Capacity { min, max, desired }
}

impl World {
    /// An organization with `members` member accounts besides the management account;
    /// in each account and region the [`GROUPS`], `instances` servers tagged
    /// `office-hours`, one untagged and one with a typo.
    pub async fn seed(moto: &Moto, regions: &[&str], members: usize, instances: i32) -> World {
        let org = aws_sdk_organizations::Client::new(&moto.sdk("us-east-1").await);
        org.create_organization()
            .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
            .send()
            .await
            .unwrap();
        let root = org.list_roots().send().await.unwrap().roots()[0]
            .id()
            .unwrap()
            .to_string();
        let mut accounts = vec![MANAGEMENT.to_string()];
        for n in 0..members {
            let a = org
                .create_account()
                .account_name(format!("dev-{n}"))
                .email(format!("dev-{n}@example.com"))
                .send()
                .await
                .unwrap();
            accounts.push(a.create_account_status().unwrap().account_id().unwrap().to_string());
        }
        let mut w = World {
            accounts,
            regions: regions.iter().map(|r| r.to_string()).collect(),
            root,
            original: BTreeMap::new(),
            never: BTreeSet::new(),
            sdks: BTreeMap::new(),
        };
        for a in w.accounts.clone() {
            for r in w.regions.clone() {
                let sdk = moto.sdk_in(&a, &r).await;
                for (name, size, tag) in GROUPS {
                    let tags: Vec<(&str, &str)> = tag.iter().map(|t| ("Schedule", *t)).collect();
                    super::moto::group(&sdk, name, *size, &tags).await;
                    w.original.insert((a.clone(), r.clone(), name.to_string()), cap(*size));
                }
                let ec2 = aws_sdk_ec2::Client::new(&sdk);
                launch(&ec2, &[("Schedule", "office-hours")], instances).await;
                for tags in [&[("Team", "payments")][..], &[("Schedule", "ofice-hours")][..]] {
                    for id in launch(&ec2, tags, 1).await {
                        w.never.insert((a.clone(), r.clone(), id));
                    }
                }
                w.sdks.insert((a.clone(), r), sdk);
            }
        }
        w
    }

    /// Auto Scaling in one scope.
    pub fn asg(&self, account: &str, region: &str) -> aws_sdk_autoscaling::Client {
        aws_sdk_autoscaling::Client::new(&self.sdks[&(account.to_string(), region.to_string())])
    }

    /// EC2 in one scope.
    pub fn ec2(&self, account: &str, region: &str) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.sdks[&(account.to_string(), region.to_string())])
    }

    /// Every scope.
    pub fn scopes(&self) -> Vec<(String, String)> {
        self.sdks.keys().cloned().collect()
    }

    /// Sets (Some) or removes (None) a tag on a group.
    pub async fn tag_group(&self, (a, r, g): &Key, key: &str, value: Option<&str>) {
        let t = aws_sdk_autoscaling::types::Tag::builder()
            .resource_id(g)
            .resource_type("auto-scaling-group")
            .key(key)
            .set_value(value.map(String::from))
            .propagate_at_launch(false)
            .build();
        let asg = self.asg(a, r);
        match value {
            Some(_) => drop(asg.create_or_update_tags().tags(t).send().await.unwrap()),
            None => drop(asg.delete_tags().tags(t).send().await.unwrap()),
        }
    }

    /// Sets a group's size, as AWS does when one of its scheduled actions fires.
    pub async fn resize(&self, (a, r, g): &Key, c: Capacity) {
        self.asg(a, r)
            .update_auto_scaling_group()
            .auto_scaling_group_name(g)
            .min_size(c.min)
            .max_size(c.max)
            .desired_capacity(c.desired)
            .send()
            .await
            .unwrap();
    }

    /// Sets a tag on an instance.
    pub async fn tag_instance(&self, (a, r, id): &Key, key: &str, value: &str) {
        self.ec2(a, r)
            .create_tags()
            .resources(id)
            .tags(Tag::builder().key(key).value(value).build())
            .send()
            .await
            .unwrap();
    }

    /// Reads the whole organization back, directly from moto.
    pub async fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::default();
        for ((a, r), sdk) in &self.sdks {
            let asg = aws_sdk_autoscaling::Client::new(sdk);
            let mut actions: BTreeMap<String, Vec<ObservedAction>> = BTreeMap::new();
            let mut pages = asg.describe_scheduled_actions().into_paginator().send();
            while let Some(page) = pages.next().await {
                for x in page.unwrap().scheduled_update_group_actions() {
                    actions
                        .entry(x.auto_scaling_group_name().unwrap().to_string())
                        .or_default()
                        .push(observed(x));
                }
            }
            let mut pages = asg.describe_auto_scaling_groups().into_paginator().send();
            while let Some(page) = pages.next().await {
                for g in page.unwrap().auto_scaling_groups() {
                    let name = g.auto_scaling_group_name().unwrap().to_string();
                    let view = GroupView {
                        capacity: Capacity {
                            min: g.min_size().unwrap(),
                            max: g.max_size().unwrap(),
                            desired: g.desired_capacity().unwrap(),
                        },
                        tags: g
                            .tags()
                            .iter()
                            .map(|t| (t.key().unwrap().to_string(), t.value().unwrap_or_default().to_string()))
                            .collect(),
                        actions: actions.remove(&name).unwrap_or_default(),
                    };
                    s.groups.insert((a.clone(), r.clone(), name), view);
                }
            }
            let ec2 = aws_sdk_ec2::Client::new(sdk);
            let mut pages = ec2.describe_instances().into_paginator().send();
            while let Some(page) = pages.next().await {
                for res in page.unwrap().reservations() {
                    for i in res.instances() {
                        let state = i.state().and_then(|s| s.name()).map(|n| n.as_str().to_string());
                        let state = state.unwrap_or_default();
                        if state == "terminated" {
                            continue;
                        }
                        s.instances.insert(
                            (a.clone(), r.clone(), i.instance_id().unwrap().to_string()),
                            InstanceView {
                                running: state == "running",
                                state,
                                tags: i
                                    .tags()
                                    .iter()
                                    .map(|t| (t.key().unwrap().to_string(), t.value().unwrap_or_default().to_string()))
                                    .collect(),
                            },
                        );
                    }
                }
            }
        }
        s
    }

    /// The invariants that hold after every pass, finished or not: `before` and `after`
    /// bracket one pass (or a crash) at `now`. Returns what is broken.
    pub fn check_always(
        &self,
        cfg: &Config,
        book: &Book,
        before: &Snapshot,
        after: &Snapshot,
        now: DateTime<Utc>,
    ) -> Vec<String> {
        let mut bad = Vec::new();
        for (k, g) in &after.groups {
            let Some(original) = self.original.get(k) else {
                continue;
            };
            if g.capacity.is_zero()
                && super::moto::sealed_size(g.tags.get(TAG_SAVED)) != Some(original.to_string().as_str())
            {
                bad.push(format!(
                    "{k:?} is at zero without its saved size {original} (tags {:?})",
                    g.tags
                ));
            }
            if NEVER.contains(&k.2.as_str()) {
                let touched = g.capacity != *original
                    || g.tags
                        .keys()
                        .any(|t| t.starts_with("offhours:") && t != "offhours:error")
                    || g.actions.iter().any(|a| is_owned(&a.name));
                if touched {
                    bad.push(format!("{k:?} never opted in but was changed: {g:?}"));
                }
            }
            let was = before.groups.get(k).map(|b| b.capacity);
            if let Some(was) = was.filter(|w| *w != g.capacity) {
                let want = desired_state(cfg, book, &g.tags, now);
                // offhours applies a transition less than START_TIME_LEAD away itself, early.
                let soon = desired_state(cfg, book, &g.tags, now + compile::START_TIME_LEAD);
                let scaled_down = g.capacity.is_zero();
                let ok = match (want, soon) {
                    (None, _) => g.capacity == *original, // released: only back to its running size
                    (Some(w), s) => {
                        [Some(w), s].contains(&Some(if scaled_down { State::Stopped } else { State::Running }))
                    }
                };
                if !ok {
                    bad.push(format!(
                        "{k:?} went from {was} to {} at {now}, but its schedule says {want:?}",
                        g.capacity
                    ));
                }
            }
        }
        for (k, i) in &after.instances {
            let Some(b) = before.instances.get(k) else { continue };
            if b.running == i.running || !matches!(i.state.as_str(), "running" | "stopped") {
                continue;
            }
            if self.never.contains(k) || i.tags.contains_key(TAG_ASG_MEMBER) {
                bad.push(format!("{k:?} never opted in but went {} -> {}", b.state, i.state));
                continue;
            }
            let want = desired_state(cfg, book, &i.tags, now);
            let ok = match want {
                Some(State::Stopped) => !i.running,
                Some(State::Running) => i.running,
                None => false,
            };
            if !ok {
                bad.push(format!(
                    "{k:?} went {} -> {} at {now}, but its schedule says {want:?}",
                    b.state, i.state
                ));
            }
        }
        bad
    }

    /// What holds once offhours has converged at `now`: every group's offhours actions
    /// implement its schedule (see [`check_actions`]: judged by the oracle, never by
    /// offhours' compiler), with no duplicate name and its saved size recorded; groups
    /// without a valid schedule carry none and are at their running size; every opted-in
    /// server is in the state its schedule (or override) gives. `transition` says whether
    /// `now` is just after a transition, when servers must have been moved (elsewhere a
    /// manual state is kept).
    pub fn check_converged(
        &self,
        cfg: &Config,
        book: &Book,
        s: &Snapshot,
        now: DateTime<Utc>,
        transition: bool,
    ) -> Vec<String> {
        let mut bad = Vec::new();
        for (k, g) in &s.groups {
            let Some(original) = self.original.get(k) else {
                continue;
            };
            let owned: Vec<&ObservedAction> = g.actions.iter().filter(|a| is_owned(&a.name)).collect();
            let Some(schedule) = schedule_name(cfg, &g.tags) else {
                if !owned.is_empty() {
                    bad.push(format!(
                        "{k:?} has no valid schedule but keeps {} offhours actions",
                        owned.len()
                    ));
                }
                if g.capacity != *original {
                    bad.push(format!("{k:?} has no valid schedule but is at {}", g.capacity));
                }
                continue;
            };
            let names: BTreeSet<&str> = owned.iter().map(|a| a.name.as_str()).collect();
            if names.len() != owned.len() {
                bad.push(format!("{k:?} has duplicated action names: {names:?}"));
            }
            bad.extend(check_actions(
                k,
                book,
                schedule,
                *original,
                &owned,
                now,
                cfg.holiday_horizon_days,
            ));
            if super::moto::sealed_size(g.tags.get(TAG_SAVED)) != Some(original.to_string().as_str()) {
                bad.push(format!("{k:?} is scheduled without its saved size: {:?}", g.tags));
            }
        }
        for (k, i) in &s.instances {
            if self.never.contains(k) {
                if !i.running {
                    bad.push(format!("{k:?} never opted in but is {}", i.state));
                }
                continue;
            }
            if i.tags.contains_key(TAG_ASG_MEMBER) {
                continue;
            }
            // Transition semantics keep a manual state between transitions: checked just
            // after one; an enforced schedule is held on every pass.
            let held = schedule_name(cfg, &i.tags).is_some_and(|n| book.enforced.contains(n));
            if !(transition || held) {
                continue;
            }
            let want = desired_state(cfg, book, &i.tags, now);
            if want.is_some_and(|w| (w == State::Running) != i.running) {
                bad.push(format!("{k:?} is {} at {now}, its schedule says {want:?}", i.state));
            }
        }
        bad
    }
}

/// The config schedule a resource's tags name, if the value is a valid schedule name.
pub fn schedule_name<'a>(cfg: &'a Config, tags: &BTreeMap<String, String>) -> Option<&'a str> {
    match cfg.lookup(tags.get(&cfg.tag_key)?) {
        Ok(Resolved::Named(s)) => Some(&s.name),
        _ => None,
    }
}

/// The state a resource should be in at `now`: its override while it lasts, else what the
/// oracle says of its schedule.
pub fn desired_state(cfg: &Config, book: &Book, tags: &BTreeMap<String, String>, now: DateTime<Utc>) -> Option<State> {
    let name = schedule_name(cfg, tags)?;
    match tags.get(TAG_OVERRIDE).and_then(|v| Override::parse(v).ok()) {
        Some(o) if o.until > now => Some(o.state),
        _ => Some(book.schedules[name].state(now)),
    }
}

/// A scheduled action as described by Auto Scaling.
pub fn observed(x: &aws_sdk_autoscaling::types::ScheduledUpdateGroupAction) -> ObservedAction {
    let time = |t: Option<&aws_smithy_types::DateTime>| t.map(|t| DateTime::from_timestamp(t.secs(), 0).unwrap());
    ObservedAction {
        name: x.scheduled_action_name().unwrap().to_string(),
        recurrence: x.recurrence().map(String::from),
        time_zone: x.time_zone().map(String::from),
        start_time: time(x.start_time()),
        end_time: time(x.end_time()),
        min: x.min_size(),
        max: x.max_size(),
        desired: x.desired_capacity(),
    }
}

/// A registered action as the independent evaluator reads it.
fn as_action(o: &ObservedAction) -> ScheduledAction {
    let capacity = o.capacity().unwrap_or(Capacity::ZERO);
    ScheduledAction {
        name: o.name.clone(),
        action: if capacity.is_zero() {
            Action::Stop
        } else {
            Action::Start
        },
        recurrence: o.recurrence.clone(),
        time_zone: o.time_zone.clone(),
        start_time: o.start_time,
        end_time: o.end_time,
        capacity,
    }
}

/// Whether a group's registered offhours actions implement its schedule, judged by what
/// they do and not by what offhours' compiler would write: fired as AWS fires them (the
/// `cron` crate on local time in their zone, `StartTime`/`EndTime`), from just after `now`
/// to the end of the holiday horizon, every firing sets the size the oracle's state asks
/// for at that instant (the saved running size, or zero), and every change of state that
/// the schedule's mode acts on has a firing at its exact instant.
pub fn check_actions(
    k: &Key,
    book: &Book,
    schedule: &str,
    running: Capacity,
    owned: &[&ObservedAction],
    now: DateTime<Utc>,
    horizon_days: u32,
) -> Vec<String> {
    let mut bad = Vec::new();
    let oracle = &book.schedules[schedule];
    let mode = book.modes[schedule].as_str();
    // Nearer than the lead, offhours applies a transition itself instead of registering it.
    // Whole minutes: schedules and crons change state on them (`now` may be the real clock).
    let minute = |t: DateTime<Utc>| t.duration_trunc(chrono::Duration::minutes(1)).unwrap();
    let from = minute(now + compile::START_TIME_LEAD) + chrono::Duration::minutes(1);
    let to = minute(now + chrono::Duration::days(i64::from(horizon_days) - 1));
    let mut fired: Vec<(DateTime<Utc>, Capacity)> = owned
        .iter()
        .flat_map(|o| {
            let a = as_action(o);
            firing_times(&a, from, to).into_iter().map(move |t| (t, a.capacity))
        })
        .collect();
    fired.sort_by_key(|(t, c)| (*t, c.min, c.max, c.desired));
    fired.dedup();
    for (t, c) in &fired {
        let want = match oracle.state(*t) {
            State::Running => running,
            State::Stopped => Capacity::ZERO,
        };
        let allowed = match mode {
            "stop-only" => c.is_zero(),
            "start-only" => !c.is_zero(),
            _ => true,
        };
        if *c != want || !allowed {
            bad.push(format!(
                "{k:?}: an action sets {c} at {t}, but `{schedule}` ({mode}) is {:?} then (running size {running})",
                oracle.state(*t)
            ));
        }
    }
    for (t, state) in oracle.changes(from, to) {
        let acts = match mode {
            "stop-only" => state == State::Stopped,
            "start-only" => state == State::Running,
            _ => true,
        };
        let size = if state == State::Running {
            running
        } else {
            Capacity::ZERO
        };
        if acts && !fired.contains(&(t, size)) {
            bad.push(format!(
                "{k:?}: `{schedule}` turns {state:?} at {t}, but no registered action sets {size} then: {owned:#?}"
            ));
        }
    }
    bad
}

/// Launches `count` instances with `tags`.
pub async fn launch(ec2: &aws_sdk_ec2::Client, tags: &[(&str, &str)], count: i32) -> Vec<String> {
    if count == 0 {
        return Vec::new();
    }
    let tags: Vec<Tag> = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect();
    ec2.run_instances()
        .image_id("ami-12c6146b")
        .instance_type("t3.micro".into())
        .min_count(count)
        .max_count(count)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .set_tags(Some(tags))
                .build(),
        )
        .send()
        .await
        .unwrap()
        .instances()
        .iter()
        .map(|i| i.instance_id().unwrap().to_string())
        .collect()
}

/// An instance's state and tags, as EC2 describes them.
pub async fn instance_state(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
) -> (
    aws_sdk_ec2::types::InstanceStateName,
    std::collections::BTreeMap<String, String>,
) {
    let out = ec2.describe_instances().instance_ids(id).send().await.unwrap();
    let i = &out.reservations()[0].instances()[0];
    let tags = i
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap_or_default().to_string()))
        .collect();
    (i.state().unwrap().name().unwrap().clone(), tags)
}
