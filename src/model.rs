//! What offhours observes in a cloud, in its own types: scopes, groups and their actions.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::capacity::Capacity;

/// The tag holding a group's running size: `min=1 max=4 desired=2`.
pub const TAG_SAVED: &str = "offhours:saved-capacity";
/// The tag naming what is wrong with a resource's schedule tag.
pub const TAG_ERROR: &str = "offhours:error";
/// The tag recording which schedule tag value offhours last applied.
pub const TAG_SCHEDULE: &str = "offhours:schedule";
/// Every tag offhours writes starts with this.
pub const TAG_PREFIX: &str = "offhours:";

/// One account in one region: the unit that is listed, planned and applied together.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Scope {
    /// 12-digit account id.
    pub account: String,
    /// Region name.
    pub region: String,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.account, self.region)
    }
}

/// A scheduled action as the cloud reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ObservedAction {
    /// Its name.
    pub name: String,
    /// Cron recurrence, if recurring.
    pub recurrence: Option<String>,
    /// Zone of the recurrence.
    pub time_zone: Option<String>,
    /// Start time (for recurring actions AWS may report the next firing).
    pub start_time: Option<DateTime<Utc>>,
    /// End time.
    pub end_time: Option<DateTime<Utc>>,
    /// Minimum size it sets.
    pub min: Option<i32>,
    /// Maximum size it sets.
    pub max: Option<i32>,
    /// Desired capacity it sets.
    pub desired: Option<i32>,
}

impl ObservedAction {
    /// The size it sets, if it sets all three.
    #[must_use]
    pub fn capacity(&self) -> Option<Capacity> {
        Some(Capacity {
            min: self.min?,
            max: self.max?,
            desired: self.desired?,
        })
    }
}

/// An Auto Scaling group as observed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    /// Its name.
    pub name: String,
    /// Current min/max/desired.
    pub capacity: Capacity,
    /// All its tags.
    pub tags: BTreeMap<String, String>,
    /// All its scheduled actions, offhours' and others'.
    pub actions: Vec<ObservedAction>,
}

impl Group {
    /// A tag's value.
    #[must_use]
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
}

/// Makes text safe for a tag value: only the characters every AWS service accepts,
/// at most 256 of them.
#[must_use]
pub fn tag_safe(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if crate::schedule::expr::is_tag_char(c) { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if out.len() > 256 {
        out.truncate(253);
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_safe_text_drops_forbidden_characters_and_fits_256() {
        assert_eq!(
            tag_safe("unknown schedule `office-hour`; expected: a, b"),
            "unknown schedule office-hour expected: a b"
        );
        let long = tag_safe(&"x".repeat(400));
        assert_eq!(long.len(), 256);
        assert!(long.chars().all(crate::schedule::expr::is_tag_char));
    }
}
