//! The planner: config + observed state + now -> the changes to make. Pure: no I/O, no clock.

pub mod compliance;
pub mod groups;
pub mod instances;

pub use groups::{GroupChange, GroupPlan, Step, plan_group};

use chrono::{DateTime, Duration, Utc};

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
