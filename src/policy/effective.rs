//! The effective tag policy of an account, computed from the tag policies attached along
//! root -> OUs -> account (pure). Used when `DescribeEffectivePolicy` cannot answer.
//!
//! As AWS Organizations documents it ("Inheritance operators" and "Inheritance examples" in the
//! Organizations User Guide): policies apply from the root down; within a setting,
//! `@@assign` overwrites what was inherited (a single value is replaced; a list is replaced
//! whole), `@@append` adds values to an inherited list, `@@remove` removes values from it;
//! `@@operators_allowed_for_child_policies` limits the operators that policies further down may
//! use on that setting (`@@all` by default, `@@none` locks it), and an operator a parent does not
//! allow is not applied. The effective policy is shown without operators:
//! `{"tags": {"costcenter": {"tag_key": "CostCenter", "tag_value": [...], "enforced_for": [...]}}}`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

const SETTINGS: [&str; 3] = ["tag_key", "tag_value", "enforced_for"];

#[derive(Debug, Default, Clone)]
struct Setting {
    value: Option<Value>,
    /// Operators children may use; `None` means all.
    allowed: Option<Vec<String>>,
}

impl Setting {
    fn allows(&self, op: &str) -> bool {
        match &self.allowed {
            None => true,
            Some(ops) => ops.iter().any(|o| o == op || o == "@@all"),
        }
    }

    fn apply(&mut self, spec: &Value) {
        let Some(spec) = spec.as_object() else {
            return;
        };
        if let Some(v) = spec.get("@@assign")
            && self.allows("@@assign")
        {
            self.value = Some(v.clone());
        }
        if let Some(Value::Array(add)) = spec.get("@@append")
            && self.allows("@@append")
        {
            let mut list = list_of(self.value.as_ref());
            for v in add {
                if !list.contains(v) {
                    list.push(v.clone());
                }
            }
            self.value = Some(Value::Array(list));
        }
        if let Some(Value::Array(drop)) = spec.get("@@remove")
            && self.allows("@@remove")
            && let Some(Value::Array(list)) = &mut self.value
        {
            list.retain(|v| !drop.contains(v));
        }
        if let Some(Value::Array(ops)) = spec.get("@@operators_allowed_for_child_policies") {
            let ops: Vec<String> = ops.iter().filter_map(|o| o.as_str().map(String::from)).collect();
            self.allowed = Some(match self.allowed.take() {
                None => ops,
                // A child can only narrow what its parent allows.
                Some(parent) if parent.iter().any(|p| p == "@@all") => ops,
                Some(parent) => ops
                    .into_iter()
                    .filter(|o| o == "@@none" || parent.contains(o))
                    .collect(),
            });
        }
    }
}

fn list_of(v: Option<&Value>) -> Vec<Value> {
    match v {
        Some(Value::Array(a)) => a.clone(),
        Some(other) => vec![other.clone()],
        None => Vec::new(),
    }
}

/// Merges tag policies into the account's effective tag policy. `levels` go from the root down
/// to the account; each holds the documents attached there (already parsed). `None` if no
/// document defines any tag.
#[must_use]
pub fn merge(levels: &[Vec<Value>]) -> Option<Value> {
    let mut rules: BTreeMap<String, BTreeMap<&'static str, Setting>> = BTreeMap::new();
    for level in levels {
        for doc in level {
            let Some(tags) = doc.get("tags").and_then(Value::as_object) else {
                continue;
            };
            for (name, rule) in tags {
                let entry = rules.entry(name.to_lowercase()).or_default();
                for s in SETTINGS {
                    if let Some(spec) = rule.get(s) {
                        entry.entry(s).or_default().apply(spec);
                    }
                }
            }
        }
    }
    if rules.is_empty() {
        return None;
    }
    let mut tags = Map::new();
    for (name, settings) in rules {
        let mut out = Map::new();
        for (s, setting) in settings {
            if let Some(v) = setting.value {
                out.insert(s.to_string(), v);
            }
        }
        tags.insert(name, Value::Object(out));
    }
    Some(json!({ "tags": tags }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    /// "Inheritance examples", example 1: policy A on the root, policy B (`@@assign`) on OU1; the
    /// effective policy for the OU's accounts has B's value and enforcement.
    #[test]
    fn assign_in_a_child_replaces_the_inherited_values() {
        let a = v(
            r#"{"tags":{"costcenter":{"tag_key":{"@@assign":"CostCenter"},"tag_value":{"@@assign":["Development","Support"]}}}}"#,
        );
        let b = v(
            r#"{"tags":{"costcenter":{"tag_key":{"@@assign":"CostCenter"},"tag_value":{"@@assign":["Sandbox"]},"enforced_for":{"@@assign":["redshift:*","dynamodb:table"]}}}}"#,
        );
        assert_eq!(
            merge(&[vec![a], vec![b]]).unwrap(),
            v(
                r#"{"tags":{"costcenter":{"tag_key":"CostCenter","tag_value":["Sandbox"],"enforced_for":["redshift:*","dynamodb:table"]}}}"#
            )
        );
    }

    /// "Inheritance operators": `@@append` adds to the inherited list, `@@remove` takes from it.
    #[test]
    fn append_and_remove_edit_the_inherited_list() {
        let root = v(
            r#"{"tags":{"costcenter":{"tag_key":{"@@assign":"CostCenter"},"tag_value":{"@@assign":["Development","Support"]}}}}"#,
        );
        let ou = v(r#"{"tags":{"costcenter":{"tag_value":{"@@append":["Sales","Marketing"]}}}}"#);
        let account = v(r#"{"tags":{"costcenter":{"tag_value":{"@@remove":["Support"]}}}}"#);
        assert_eq!(
            merge(&[vec![root], vec![ou], vec![account]]).unwrap()["tags"]["costcenter"]["tag_value"],
            v(r#"["Development","Sales","Marketing"]"#)
        );
    }

    /// "Inheritance examples", example 4: a parent's `@@operators_allowed_for_child_policies`
    /// of `@@none` locks the setting; a child's operators do not apply.
    #[test]
    fn a_parent_can_lock_a_setting_against_its_children() {
        let root = v(
            r#"{"tags":{"costcenter":{"tag_key":{"@@assign":"CostCenter"},"tag_value":{"@@operators_allowed_for_child_policies":["@@none"],"@@assign":["Development"]}}}}"#,
        );
        let ou = v(r#"{"tags":{"costcenter":{"tag_value":{"@@assign":["Sandbox"],"@@append":["Other"]}}}}"#);
        assert_eq!(
            merge(&[vec![root.clone()], vec![ou]]).unwrap()["tags"]["costcenter"]["tag_value"],
            v(r#"["Development"]"#)
        );
        let only_append = root.to_string().replace("@@none", "@@append");
        let ou = v(r#"{"tags":{"costcenter":{"tag_value":{"@@assign":["Sandbox"],"@@append":["Other"]}}}}"#);
        assert_eq!(
            merge(&[vec![v(&only_append)], vec![ou]]).unwrap()["tags"]["costcenter"]["tag_value"],
            v(r#"["Development","Other"]"#)
        );
    }

    /// Ours merges with a team's tag policy on another key: both keys are in the result.
    #[test]
    fn policies_on_other_keys_merge_side_by_side_and_keys_ignore_case() {
        let ours =
            v(r#"{"tags":{"schedule":{"tag_key":{"@@assign":"Schedule"},"tag_value":{"@@assign":["office-hours"]}}}}"#);
        let team =
            v(r#"{"tags":{"Team":{"tag_key":{"@@assign":"Team"}},"SCHEDULE":{"tag_value":{"@@append":["night"]}}}}"#);
        let m = merge(&[vec![ours, team]]).unwrap();
        assert_eq!(m["tags"]["team"]["tag_key"], "Team");
        assert_eq!(m["tags"]["schedule"]["tag_value"], v(r#"["office-hours","night"]"#));
        assert!(merge(&[vec![v("{}")]]).is_none());
    }
}
