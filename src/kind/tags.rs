//! The tag handling every kind shares: the schedule tag resolved to a schedule (or an
//! error), the override read, capped and expired, and `offhours:error` set or cleared.
//! Tags are untrusted input: everything here is bounded and made safe before it is written.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::config::{ALWAYS_ON, Config, Resolved};
use crate::model::{Override, TAG_ERROR, TAG_OVERRIDE, tag_safe};
use crate::schedule::{Schedule, State};

/// What a resource's schedule tag says.
#[derive(Debug, Clone)]
pub enum Resolution {
    /// No schedule tag, `always-on`, or a name that resolves to always-on.
    Unscheduled,
    /// A schedule.
    Scheduled(Box<Schedule>),
    /// A value that names no schedule (or an inline expression where none is allowed):
    /// the message says why.
    Invalid(String),
}

/// Resolves the schedule tag's value `value` (already read from the resource).
#[must_use]
pub fn resolve(cfg: &Config, value: Option<&str>) -> Resolution {
    match value.map(str::trim) {
        None => Resolution::Unscheduled,
        Some(v) if v == ALWAYS_ON => Resolution::Unscheduled,
        Some(v) => match cfg.resolve_tag(v) {
            Ok(Resolved::AlwaysOn) => Resolution::Unscheduled,
            Ok(Resolved::Named(s)) => Resolution::Scheduled(Box::new(s.clone())),
            Ok(Resolved::Inline(s)) => Resolution::Scheduled(s),
            Err(e) => Resolution::Invalid(e.to_string()),
        },
    }
}

/// What a resource's override tag (`offhours:override`) says at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverrideTag {
    /// No override tag.
    Absent,
    /// Holds `state` until `until`. When the tag asked for longer than `max_override`,
    /// `capped` is the tag to write back (the cap) and `note` says so.
    Holds {
        /// The state held.
        state: State,
        /// Until when (capped).
        until: DateTime<Utc>,
        /// The capped tag value to write, if the tag asked for longer than allowed.
        capped: Option<String>,
        /// What to tell about the cap.
        note: Option<String>,
    },
    /// Ended: the schedule applies again; `note` says so.
    Expired {
        /// When it ended.
        until: DateTime<Utc>,
        /// What to tell.
        note: String,
    },
    /// Not an override offhours can read: the message says why.
    Invalid(String),
}

/// Reads the override tag among `tags` at `now`, capping it at `cfg.max_override`;
/// `schedule` names the schedule it returns to when it has ended.
#[must_use]
pub fn read_override(cfg: &Config, tags: &BTreeMap<String, String>, schedule: &str, now: DateTime<Utc>) -> OverrideTag {
    let Some(raw) = tags.get(TAG_OVERRIDE) else {
        return OverrideTag::Absent;
    };
    match Override::parse(raw) {
        Err(e) => OverrideTag::Invalid(e.to_string()),
        Ok(mut o) if o.until > now => {
            let (mut capped, mut note) = (None, None);
            if o.until - now > cfg.max_override {
                o.until = now + cfg.max_override;
                note = Some(format!(
                    "override `{raw}` is longer than {} h; capped to {}",
                    cfg.max_override.num_hours(),
                    o.to_tag()
                ));
                capped = Some(o.to_tag());
            }
            OverrideTag::Holds {
                state: o.state,
                until: o.until,
                capped,
                note,
            }
        }
        Ok(o) => OverrideTag::Expired {
            until: o.until,
            note: format!("override `{raw}` expired; back to schedule `{schedule}`"),
        },
    }
}

/// The `offhours:error` value to write for `msg` on a resource with `tags`, unless it
/// already carries it (made safe for a tag: bounded, no control characters).
#[must_use]
pub fn error_tag(tags: &BTreeMap<String, String>, msg: &str) -> Option<String> {
    let tag = tag_safe(msg);
    (tags.get(TAG_ERROR) != Some(&tag)).then_some(tag)
}

/// Whether `offhours:error` is on the resource and must go (its tag is valid again).
#[must_use]
pub fn error_to_clear(tags: &BTreeMap<String, String>) -> bool {
    tags.contains_key(TAG_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_schedule_tag_resolves_to_a_schedule_nothing_or_an_error() {
        let cfg = fixtures::config();
        assert!(matches!(resolve(&cfg, None), Resolution::Unscheduled));
        assert!(matches!(resolve(&cfg, Some(" always-on ")), Resolution::Unscheduled));
        match resolve(&cfg, Some(" office-hours ")) {
            Resolution::Scheduled(s) => assert_eq!(s.name, "office-hours"),
            other => panic!("{other:?}"),
        }
        match resolve(&cfg, Some("nope")) {
            Resolution::Invalid(e) => assert!(e.contains("nope"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_override_holds_is_capped_expires_or_is_refused() {
        let cfg = fixtures::config();
        let now: DateTime<Utc> = "2026-11-25T12:00:00Z".parse().unwrap();
        assert_eq!(read_override(&cfg, &tags(&[]), "s", now), OverrideTag::Absent);
        let soon = tags(&[(TAG_OVERRIDE, "running until 2026-11-25T14:00:00Z")]);
        assert_eq!(
            read_override(&cfg, &soon, "s", now),
            OverrideTag::Holds {
                state: State::Running,
                until: "2026-11-25T14:00:00Z".parse().unwrap(),
                capped: None,
                note: None
            }
        );
        let far = tags(&[(TAG_OVERRIDE, "stopped until 2027-11-25T14:00:00Z")]);
        match read_override(&cfg, &far, "s", now) {
            OverrideTag::Holds {
                state: State::Stopped,
                until,
                capped: Some(c),
                note: Some(_),
            } => {
                assert_eq!(until, now + cfg.max_override);
                assert_eq!(Override::parse(&c).unwrap().until, until);
            }
            other => panic!("{other:?}"),
        }
        let past = tags(&[(TAG_OVERRIDE, "running until 2026-11-25T11:00:00Z")]);
        assert!(matches!(
            read_override(&cfg, &past, "s", now),
            OverrideTag::Expired { .. }
        ));
        let bad = tags(&[(TAG_OVERRIDE, "forever")]);
        assert!(matches!(read_override(&cfg, &bad, "s", now), OverrideTag::Invalid(_)));
    }

    #[test]
    fn the_error_tag_is_written_once_and_made_safe() {
        let msg = "bad\nvalue";
        let fresh = error_tag(&tags(&[]), msg).unwrap();
        assert!(!fresh.contains('\n'));
        assert_eq!(error_tag(&tags(&[(TAG_ERROR, &fresh)]), msg), None);
        assert!(error_to_clear(&tags(&[(TAG_ERROR, "x")])));
        assert!(!error_to_clear(&tags(&[])));
    }
}
