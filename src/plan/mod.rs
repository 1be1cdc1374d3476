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
