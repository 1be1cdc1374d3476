//! Builders of test data, shared by the unit tests, the kinds' conformance suite, the
//! integration tests and the benchmarks: `fixtures::config()`,
//! `Group::test("web").tagged("Schedule", "office-hours")`, `Instance::test("i-1")`.

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::capacity::Capacity;
use crate::config::Config;
use crate::kind::group::GroupChange;
use crate::model::{Group, Instance, InstanceState, Market, ObservedAction};
use crate::seal::StateKey;

/// A small config: `office-hours` is Mon-Fri 08:00-20:00 in Asia/Seoul.
pub const CONFIG: &str = "timezone: Asia/Seoul\nschedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\n";

/// The state key the fixtures seal saved sizes with.
///
/// # Panics
/// Never: the key is valid.
#[must_use]
pub fn state_key() -> StateKey {
    StateKey::new(b"unit-test-state-key", "test").expect("a valid key")
}

/// [`CONFIG`], with the fixtures' state key.
#[must_use]
pub fn config() -> Config {
    config_from(CONFIG)
}

/// A config from YAML text, with the fixtures' state key.
///
/// # Panics
/// If the text is not a valid config (a test's own mistake).
#[must_use]
pub fn config_from(yaml: &str) -> Config {
    Config::parse(yaml, Path::new("test.yaml"))
        .unwrap_or_else(|e| panic!("fixture config: {e}"))
        .with_state_key(state_key())
}

/// An RFC 3339 moment.
///
/// # Panics
/// If `s` is not one.
#[must_use]
pub fn at(s: &str) -> DateTime<Utc> {
    crate::schedule::parse_instant(s).unwrap_or_else(|e| panic!("fixture moment `{s}`: {e}"))
}

impl Group {
    /// A group of size min 1, max 2, desired 1, with an ARN and no tags.
    #[must_use]
    pub fn test(name: &str) -> Group {
        Group {
            name: name.into(),
            arn: format!(
                "arn:aws:autoscaling:us-east-1:111111111111:autoScalingGroup:00000000-0000-0000-0000-000000000000:autoScalingGroupName/{name}"
            ),
            capacity: Capacity {
                min: 1,
                max: 2,
                desired: 1,
            },
            ..Default::default()
        }
    }

    /// With a tag.
    #[must_use]
    pub fn tagged(mut self, key: &str, value: &str) -> Group {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// At a size.
    #[must_use]
    pub fn sized(mut self, capacity: Capacity) -> Group {
        self.capacity = capacity;
        self
    }

    /// With a scheduled action.
    #[must_use]
    pub fn with_action(mut self, a: ObservedAction) -> Group {
        self.actions.push(a);
        self
    }
}

impl Instance {
    /// A running on-demand instance launched on 2026-11-01, with no tags.
    #[must_use]
    pub fn test(id: &str) -> Instance {
        Instance {
            id: id.into(),
            state: InstanceState::Running,
            launched: Some(at("2026-11-01T00:00:00Z")),
            tags: Default::default(),
            market: Market::OnDemand,
            instance_store_root: false,
            hibernation: false,
            instance_type: None,
            state_reason: None,
        }
    }

    /// With a tag.
    #[must_use]
    pub fn tagged(mut self, key: &str, value: &str) -> Instance {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// In a state.
    #[must_use]
    pub fn in_state(mut self, state: InstanceState) -> Instance {
        self.state = state;
        self
    }
}

/// Applies one change to a group as Auto Scaling would: the one model of the group API's
/// effects, used by the in-memory cloud and by the group planner's tests (which add AWS's
/// refusals on top, see `kind/group/plan/tests.rs`).
pub fn apply_group_change(g: &mut Group, change: &GroupChange) {
    match change {
        GroupChange::SaveCapacity { tag, .. } => {
            g.tags.insert(crate::model::TAG_SAVED.into(), tag.clone());
        }
        GroupChange::PutScheduledActions { actions } => {
            for a in actions {
                // Put creates or replaces by name.
                g.actions.retain(|o| o.name != a.name);
                g.actions.push(ObservedAction::from(a));
            }
        }
        GroupChange::DeleteScheduledActions { names } => g.actions.retain(|o| !names.contains(&o.name)),
        GroupChange::SetCapacity { capacity } => g.capacity = *capacity,
        GroupChange::SetTags { tags } => g.tags.extend(tags.clone()),
        GroupChange::RemoveTags { keys } => g.tags.retain(|k, _| !keys.contains(k)),
    }
}
