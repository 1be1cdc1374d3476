//! Schedule values that leave the config while resources still carry them (pure).
//!
//! With enforcement, a tag policy prevents creating a resource with a tag value it does not
//! allow (Organizations User Guide, "Enforce tagging consistency": "you can prevent resource
//! creation with tag values that do not meet the requirements"). It is not IAM, so the
//! service-linked role Auto Scaling launches with is not exempt as it is from SCPs: a group whose
//! propagated value is no longer allowed cannot launch instances. So a value is dropped from the
//! attached tag policy only once no managed resource carries it; until then it is kept as
//! *retired*, and reported with the resources.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// A value kept in the tag policy after leaving the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retired {
    /// The tag value.
    pub value: String,
    /// Where it is still used (`account/region/kind/id`); empty when the inventory was
    /// incomplete and the value is kept because it could not be shown unused.
    pub resources: Vec<String>,
}

/// The values to keep: those in `attached` (the tag policy as it is) that the config no longer
/// allows and that `in_use` (value -> resources) shows in use. When the inventory is not
/// `complete`, every such value is kept ("not listed" never means "absent").
#[must_use]
pub fn retained(
    allowed: &[String],
    attached: &[String],
    in_use: &BTreeMap<String, Vec<String>>,
    complete: bool,
) -> Vec<Retired> {
    let allowed: BTreeSet<&String> = allowed.iter().collect();
    let mut out: Vec<Retired> = attached
        .iter()
        .filter(|v| !allowed.contains(v))
        .filter_map(|v| match in_use.get(v) {
            Some(r) if !r.is_empty() => Some(Retired {
                value: v.clone(),
                resources: r.clone(),
            }),
            _ if !complete => Some(Retired {
                value: v.clone(),
                resources: Vec::new(),
            }),
            _ => None,
        })
        .collect();
    out.sort_by(|a, b| a.value.cmp(&b.value));
    out.dedup_by(|a, b| a.value == b.value);
    out
}

/// The values a tag policy document (attached form) allows for `tag_key`.
#[must_use]
pub fn attached_values(doc: &serde_json::Value, tag_key: &str) -> Vec<String> {
    doc.get("tags")
        .and_then(|t| t.get(tag_key.to_lowercase()))
        .and_then(|r| r.pointer("/tag_value/@@assign"))
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn a_renamed_schedule_still_in_use_is_kept_with_its_resources() {
        let in_use = BTreeMap::from([(
            "night-shift".to_string(),
            s(&["111122223333/us-east-1/auto-scaling-group/web"]),
        )]);
        let r = retained(
            &s(&["always-on", "late-shift"]),
            &s(&["always-on", "night-shift", "old-unused"]),
            &in_use,
            true,
        );
        assert_eq!(
            r,
            vec![Retired {
                value: "night-shift".into(),
                resources: s(&["111122223333/us-east-1/auto-scaling-group/web"])
            }]
        );
    }

    #[test]
    fn an_incomplete_inventory_keeps_every_dropped_value() {
        let r = retained(&s(&["a"]), &s(&["a", "b", "c"]), &BTreeMap::new(), false);
        assert_eq!(r.iter().map(|r| r.value.as_str()).collect::<Vec<_>>(), ["b", "c"]);
        assert!(r.iter().all(|r| r.resources.is_empty()));
    }

    #[test]
    fn the_attached_values_are_read_from_the_tag_policy() {
        let doc = serde_json::json!({"tags": {"schedule": {"tag_value": {"@@assign": ["x", "y"]}}}});
        assert_eq!(attached_values(&doc, "Schedule"), s(&["x", "y"]));
        assert!(attached_values(&doc, "Other").is_empty());
    }
}
