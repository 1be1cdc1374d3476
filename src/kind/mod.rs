//! The kinds of resource offhours schedules, and the seam every kind implements.
//!
//! A kind is a folder here: its observed type's planner (pure: config + observed state +
//! now -> an ordered list of steps), its remediation of untagged resources, and the trait
//! its cloud adapter implements to list and apply. The controller drives every kind through
//! [`Kind`] and [`Adapter`] and never names one; adding a kind is a folder, an adapter in
//! [`crate::aws`], and a line in the controller's and the conformance suite's lists.

pub mod compliance;
pub mod database;
pub mod group;
pub mod instance;
pub mod power;
pub mod tags;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::config::Config;
use crate::failure::CloudError;

/// The kinds of resource, as named in reports, metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceType {
    /// An EC2 Auto Scaling group.
    AutoScalingGroup,
    /// A plain EC2 instance (not a group member).
    Instance,
    /// An RDS DB instance (not a member of a cluster).
    DbInstance,
    /// An Aurora DB cluster.
    DbCluster,
}

impl ResourceType {
    /// Every kind.
    pub const ALL: [ResourceType; 4] = [
        ResourceType::AutoScalingGroup,
        ResourceType::Instance,
        ResourceType::DbInstance,
        ResourceType::DbCluster,
    ];

    /// The name in the JSON report: `auto-scaling-group`, `instance`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::AutoScalingGroup => "auto-scaling-group",
            ResourceType::Instance => "instance",
            ResourceType::DbInstance => "db-instance",
            ResourceType::DbCluster => "db-cluster",
        }
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One change and why it is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step<C> {
    /// What to do.
    #[serde(flatten)]
    pub change: C,
    /// Why.
    pub reason: String,
    /// For a stop: minutes until the schedule starts the resource again (an estimate of
    /// the time it saves).
    #[serde(skip)]
    pub minutes_off: Option<i64>,
}

/// Everything planned for one resource: its steps, in the order they must be applied (the
/// first failure stops the rest), what is wrong with it, and what is worth telling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan<C> {
    /// The resource's id (group name, instance id).
    pub id: String,
    /// The schedule tag's value, if any.
    pub tag_value: Option<String>,
    /// The changes, in order.
    pub steps: Vec<Step<C>>,
    /// What is wrong with the resource's tags or size (it is otherwise left as it is).
    pub error: Option<String>,
    /// Things worth telling that need no change.
    pub notes: Vec<String>,
    /// The resource's priced type (EC2 instance type), for cost estimates.
    pub priced_type: Option<String>,
}

impl<C> Plan<C> {
    /// An empty plan for resource `id`.
    #[must_use]
    pub fn new(id: impl Into<String>, tag_value: Option<String>) -> Self {
        Plan {
            id: id.into(),
            tag_value,
            steps: Vec::new(),
            error: None,
            notes: Vec::new(),
            priced_type: None,
        }
    }

    /// Adds a step.
    pub fn step(&mut self, change: C, reason: impl Into<String>) {
        self.steps.push(Step {
            change,
            reason: reason.into(),
            minutes_off: None,
        });
    }

    /// Whether nothing is to be done or told.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.error.is_none() && self.notes.is_empty()
    }
}

impl<C> Default for Plan<C> {
    fn default() -> Self {
        Plan::new(String::new(), None)
    }
}

/// How far a change got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeStatus {
    /// Planned only (`plan`).
    Planned,
    /// Done.
    Applied,
    /// Tried and failed.
    Failed,
    /// Not tried, because an earlier step for the same resource failed.
    NotAttempted,
    /// Refused for this resource (e.g. stop protection) and left alone on purpose.
    Skipped,
}

/// How one step went when applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// How far it got.
    pub status: ChangeStatus,
    /// The failure, if any.
    pub error: Option<CloudError>,
}

impl Outcome {
    /// Applied.
    pub const APPLIED: Outcome = Outcome {
        status: ChangeStatus::Applied,
        error: None,
    };
    /// Not tried: an earlier step failed.
    pub const NOT_ATTEMPTED: Outcome = Outcome {
        status: ChangeStatus::NotAttempted,
        error: None,
    };

    /// Failed with `e`.
    #[must_use]
    pub fn failed(e: CloudError) -> Self {
        Outcome {
            status: ChangeStatus::Failed,
            error: Some(e),
        }
    }
}

/// What applying one scope's plans of a kind did: an outcome per step of each plan (in the
/// plans' order), and what is worth telling about a resource (by id).
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// `outcomes[i][k]`: step `k` of plan `i`.
    pub outcomes: Vec<Vec<Outcome>>,
    /// (resource id, note).
    pub notes: Vec<(String, String)>,
}

impl Applied {
    /// Every step of every plan not attempted, to be filled in as the apply goes.
    #[must_use]
    pub fn pending<C>(plans: &[Plan<C>]) -> Self {
        Applied {
            outcomes: plans
                .iter()
                .map(|p| vec![Outcome::NOT_ATTEMPTED; p.steps.len()])
                .collect(),
            notes: Vec::new(),
        }
    }
}

/// Why a resource is a violation of the tagging policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Problem {
    /// No schedule tag.
    Untagged,
    /// A schedule tag whose value names no schedule.
    InvalidValue,
}

impl Problem {
    /// `untagged` or `invalid-value`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::Untagged => "untagged",
            Problem::InvalidValue => "invalid-value",
        }
    }
}

impl PartialEq<&str> for Problem {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A resource without a valid schedule tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Its kind.
    pub resource_type: ResourceType,
    /// Group name or instance id.
    pub resource_id: String,
    /// The tag value, if there is one.
    pub tag_value: Option<String>,
    /// What is wrong.
    pub problem: Problem,
    /// Why `on_untagged` leaves it alone, when it could otherwise act: managed by a
    /// service or controller, exempt by tag, in the management account, outside
    /// `remediate_in`, or in its grace period.
    pub not_remediated: Option<String>,
}

/// What a resource is, for the people who read about it: its state as a bounded label, its
/// priced type and how many of it run when it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observation {
    /// `running`, `stopped`, `pending`, ... (for a group: `running` while it has a desired
    /// size above zero, else `stopped`).
    pub state: &'static str,
    /// Its priced type (EC2 instance type, DB instance class), if known.
    pub priced_type: Option<String>,
    /// How many of that type run when it runs: 1 for an instance or a database; for a group,
    /// its desired size, or its saved size while it is scaled down.
    pub units: u32,
    /// When it was launched or created, if known (for the grace period).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
}

/// One resource as a pass saw it, offhours' own and others' (not those left to others):
/// what the status page, the savings report, the warning before a stop and `override`
/// read. Its tags are only the ones offhours reads (the schedule tag, the team tag and
/// `offhours:*`); they are untrusted and escaped wherever they are shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Seen {
    /// Account id.
    pub account: String,
    /// Region.
    pub region: String,
    /// Its kind.
    pub resource_type: ResourceType,
    /// Group name, instance id, DB identifier.
    pub id: String,
    /// The tags offhours reads.
    pub tags: BTreeMap<String, String>,
    /// What it is.
    #[serde(flatten)]
    pub observation: Observation,
}

impl Seen {
    /// A tag's value.
    #[must_use]
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    /// Its team: the `team_tag` value, trimmed, with control characters written as escapes
    /// (it is read from a tag; pages, messages and CSV escape it further for their own form).
    #[must_use]
    pub fn team(&self, cfg: &Config) -> Option<String> {
        let t = self.tag(cfg.team_tag()?)?.trim();
        (!t.is_empty()).then(|| {
            t.chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_unicode().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        })
    }
}

/// A kind of resource: its name, its observed type, its tags, its pure planner and its
/// remediation. Implementations hold no state; the controller calls them per resource.
pub trait Kind: Send + Sync + 'static {
    /// The kind's name in reports.
    const TYPE: ResourceType;
    /// What a listing returns for one resource.
    type Observed: Send + Sync;
    /// One change to one resource.
    type Change: Clone + fmt::Debug + Send + Sync;

    /// The resource's id.
    fn id(r: &Self::Observed) -> &str;
    /// The resource's tags.
    fn tags(r: &Self::Observed) -> &BTreeMap<String, String>;
    /// Whether something else runs the resource (a group's member instance, a terminated
    /// instance): offhours then neither plans nor scans it.
    fn left_to_others(r: &Self::Observed) -> bool;
    /// Plans the resource at `now`; `None` when offhours has nothing to do or say.
    fn plan(cfg: &Config, r: &Self::Observed, now: DateTime<Utc>) -> Option<Plan<Self::Change>>;
    /// The resource's violation of the tagging policy, if any, and for an untagged one the
    /// remediation `policy.on_untagged` asks for. `block` says why remediation may not act
    /// in this scope at all (the management account, outside `remediate_in`).
    fn scan(
        cfg: &Config,
        r: &Self::Observed,
        now: DateTime<Utc>,
        block: Option<&str>,
    ) -> Option<(Violation, Option<Plan<Self::Change>>)>;
    /// For a resource offhours manages (a valid schedule tag): its state as a bounded label
    /// (`running`, `stopped`, ...), for the managed-resource counts.
    fn managed_state(cfg: &Config, r: &Self::Observed) -> Option<&'static str>;
    /// A change's name, as in the JSON report (`stop-instance`, `set-capacity`).
    fn change_name(c: &Self::Change) -> &'static str;
    /// What the resource is, for the status page and the savings report.
    fn observe(cfg: &Config, r: &Self::Observed) -> Observation;
    /// The change that writes `tags` on the resource (an override, from `offhours override`).
    fn set_tags(tags: BTreeMap<String, String>) -> Self::Change;
    /// The change that removes the tags `keys` from the resource.
    fn remove_tags(keys: Vec<String>) -> Self::Change;
}

/// What a cloud adapter does for a kind in one scope: list every resource, and apply plans.
pub trait Adapter<K: Kind>: Send + Sync {
    /// Every resource of the kind in the scope, complete, or an error (never a partial list).
    fn list(&self) -> impl Future<Output = Result<Vec<K::Observed>, CloudError>> + Send;
    /// Applies the plans (each plan's steps in order; a plan's first failure stops its rest)
    /// and says how each step went.
    fn apply(&self, cfg: &Config, plans: &[Plan<K::Change>]) -> impl Future<Output = Applied> + Send;
}

/// Whether something that began at `since` is still inside a grace period at `now`.
/// A zero grace is no grace at all, even for a `since` after `now` (a `--now` simulation
/// of a moment before the resource existed).
#[must_use]
pub fn in_grace(since: DateTime<Utc>, now: DateTime<Utc>, grace: Duration) -> bool {
    !grace.is_zero() && now - since < grace
}

/// Adds `msg` to a plan's error (after the one already there, if any).
pub(crate) fn add_error(error: &mut Option<String>, msg: String) {
    *error = Some(match error.take() {
        Some(first) => format!("{first}; {msg}"),
        None => msg,
    });
}

/// AWS's limit on user tags per resource: "Maximum number of tags per resource: 50" for
/// EC2 resources, where "tags with the `aws:` prefix do not count" (Amazon EC2 User Guide,
/// Tag your Amazon EC2 resources, Tag restrictions), and 50 per Auto Scaling group (Amazon
/// EC2 Auto Scaling User Guide, Tag Auto Scaling groups and instances, Tag restrictions).
pub const MAX_USER_TAGS: usize = 50;

/// Why `add` (keys offhours would write) does not fit on a resource that has `have`, if it
/// does not: offhours then writes nothing on it (a partial write could leave a group
/// scaled down with its size unrecorded, or an instance stopped with its transition
/// unrecorded).
#[must_use]
pub fn tag_budget_error<'a>(
    have: &std::collections::BTreeMap<String, String>,
    add: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let new: std::collections::BTreeSet<&str> = add.into_iter().filter(|k| !have.contains_key(*k)).collect();
    let user = have.keys().filter(|k| !k.starts_with("aws:")).count();
    let needed = new.iter().filter(|k| !k.starts_with("aws:")).count();
    (needed > 0 && user + needed > MAX_USER_TAGS).then(|| {
        format!(
            "no room for offhours' tags ({}): the resource has {user} of AWS's {MAX_USER_TAGS} user tags and \
             offhours needs {needed} more; remove {} tag(s) to let offhours manage it (nothing was changed)",
            new.into_iter().collect::<Vec<_>>().join(", "),
            user + needed - MAX_USER_TAGS
        )
    })
}
