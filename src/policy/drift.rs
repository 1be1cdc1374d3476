//! Desired policies versus what the organization has: the changes that close the gap (pure).

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

/// Which of the two policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The service control policy.
    Scp,
    /// The tag policy.
    TagPolicy,
}

impl Kind {
    /// AWS's policy type name.
    #[must_use]
    pub fn aws_type(self) -> &'static str {
        match self {
            Kind::Scp => "SERVICE_CONTROL_POLICY",
            Kind::TagPolicy => "TAG_POLICY",
        }
    }
}

/// A policy as it is in the organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observed {
    /// Policy id, `p-...`.
    pub id: String,
    /// Its content.
    pub content: String,
    /// Root, OU and account ids it is attached to.
    pub targets: BTreeSet<String>,
    /// Whether it carries offhours' tag (`offhours:managed=true`): offhours changes only the
    /// policies it created, and its IAM role can touch no other.
    pub managed: bool,
}

/// The tag that marks a policy offhours created (CreatePolicy `Tags`); the roles' Organizations
/// write statements are conditioned on it (`aws:ResourceTag/offhours:managed`).
pub const MANAGED_TAG: (&str, &str) = ("offhours:managed", "true");

/// A policy as offhours wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// Which one.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// Its rendered content.
    pub content: String,
    /// Where it must be attached.
    pub targets: BTreeSet<String>,
}

/// One write to the organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum PolicyChange {
    /// Enable a policy type on the root.
    EnablePolicyType {
        /// Which.
        kind: Kind,
    },
    /// Create the policy.
    CreatePolicy {
        /// Which.
        kind: Kind,
        /// Its name.
        name: String,
    },
    /// Replace the policy's content (edited by hand, or the config changed).
    UpdatePolicy {
        /// Which.
        kind: Kind,
        /// Its id.
        id: String,
    },
    /// Attach the policy to a target.
    Attach {
        /// Which.
        kind: Kind,
        /// Root, OU or account id.
        target: String,
    },
    /// Detach the policy from a target no longer configured.
    Detach {
        /// Which.
        kind: Kind,
        /// Root, OU or account id.
        target: String,
    },
    /// A policy of that name exists but offhours did not create it (no `offhours:managed=true`
    /// tag): it is left alone. Tag it by hand to hand it over.
    NotManaged {
        /// Which.
        kind: Kind,
        /// Its id.
        id: String,
    },
}

/// Whether two policy documents say the same thing (whitespace and key order aside).
#[must_use]
pub fn same_content(a: &str, b: &str) -> bool {
    match (serde_json::from_str::<Value>(a), serde_json::from_str::<Value>(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// The changes that make the organization match `desired`, in the order to apply them.
///
/// The policy type is enabled only when the policy is to be attached somewhere; a policy that
/// offhours did not create is never changed (one [`PolicyChange::NotManaged`] instead).
#[must_use]
pub fn diff(desired: &Desired, enabled: bool, observed: Option<&Observed>) -> Vec<PolicyChange> {
    let kind = desired.kind;
    let mut out = Vec::new();
    if let Some(o) = observed
        && !o.managed
    {
        return vec![PolicyChange::NotManaged { kind, id: o.id.clone() }];
    }
    if !enabled && !desired.targets.is_empty() {
        out.push(PolicyChange::EnablePolicyType { kind });
    }
    let attached = match observed {
        None => {
            out.push(PolicyChange::CreatePolicy {
                kind,
                name: desired.name.clone(),
            });
            BTreeSet::new()
        }
        Some(o) => {
            if !same_content(&o.content, &desired.content) {
                out.push(PolicyChange::UpdatePolicy { kind, id: o.id.clone() });
            }
            o.targets.clone()
        }
    };
    out.extend(desired.targets.difference(&attached).map(|t| PolicyChange::Attach {
        kind,
        target: t.clone(),
    }));
    out.extend(attached.difference(&desired.targets).map(|t| PolicyChange::Detach {
        kind,
        target: t.clone(),
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired() -> Desired {
        Desired {
            kind: Kind::Scp,
            name: "offhours".into(),
            content: "{\"Version\": \"2012-10-17\", \"Statement\": []}".into(),
            targets: ["ou-a".to_string(), "ou-b".to_string()].into(),
        }
    }

    #[test]
    fn a_missing_policy_is_created_and_attached_everywhere() {
        assert_eq!(
            diff(&desired(), false, None),
            vec![
                PolicyChange::EnablePolicyType { kind: Kind::Scp },
                PolicyChange::CreatePolicy {
                    kind: Kind::Scp,
                    name: "offhours".into()
                },
                PolicyChange::Attach {
                    kind: Kind::Scp,
                    target: "ou-a".into()
                },
                PolicyChange::Attach {
                    kind: Kind::Scp,
                    target: "ou-b".into()
                },
            ]
        );
    }

    #[test]
    fn an_applied_policy_needs_nothing_even_reformatted() {
        let o = Observed {
            id: "p-1".into(),
            content: "{\"Statement\":[],\"Version\":\"2012-10-17\"}".into(),
            targets: ["ou-a".to_string(), "ou-b".to_string()].into(),
            managed: true,
        };
        assert!(diff(&desired(), true, Some(&o)).is_empty());
    }

    #[test]
    fn hand_edits_and_stray_attachments_are_drift() {
        let o = Observed {
            id: "p-1".into(),
            content: "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\"}]}".into(),
            targets: ["ou-a".to_string(), "r-root".to_string()].into(),
            managed: true,
        };
        assert_eq!(
            diff(&desired(), true, Some(&o)),
            vec![
                PolicyChange::UpdatePolicy {
                    kind: Kind::Scp,
                    id: "p-1".into()
                },
                PolicyChange::Attach {
                    kind: Kind::Scp,
                    target: "ou-b".into()
                },
                PolicyChange::Detach {
                    kind: Kind::Scp,
                    target: "r-root".into()
                },
            ]
        );
    }

    #[test]
    fn no_target_enables_no_policy_type() {
        let mut d = desired();
        d.targets.clear();
        assert_eq!(
            diff(&d, false, None),
            vec![PolicyChange::CreatePolicy {
                kind: Kind::Scp,
                name: "offhours".into()
            }]
        );
    }

    #[test]
    fn a_policy_offhours_did_not_create_is_left_alone_even_if_it_differs() {
        let o = Observed {
            id: "p-team".into(),
            content: "{}".into(),
            targets: ["r-root".to_string()].into(),
            managed: false,
        };
        assert_eq!(
            diff(&desired(), false, Some(&o)),
            vec![PolicyChange::NotManaged {
                kind: Kind::Scp,
                id: "p-team".into()
            }]
        );
    }
}
