//! Before the SCP is attached: which Auto Scaling groups' launch templates it would block
//! (pure). A group created or updated with a launch template passes AWS's `ec2:RunInstances`
//! check under the caller's identity with the template's instance tags (Amazon EC2 Auto Scaling
//! User Guide, "Control Amazon EC2 launch template usage in Auto Scaling"), so a template without
//! the schedule tag makes every team's next update of that group fail.

use std::collections::BTreeMap;

use serde::Serialize;

use super::eval::{self, Decision, Denial, Policy, Request};
use crate::config::Config;

/// A group the SCP would block, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocked {
    /// The account.
    pub account: String,
    /// The region.
    pub region: String,
    /// The group.
    pub group: String,
    /// The launch template and version it uses.
    pub template: String,
    /// What the SCP says (or that the template cannot be read).
    pub reason: String,
}

/// Why the rendered SCP would deny launching from a template with these instance tags (as a
/// member-account role that is not exempt), or `None` if it would not. `None` tags: the template
/// (version) does not exist.
#[must_use]
pub fn template_blocked(
    scp: &Policy,
    partition: &str,
    account: &str,
    region: &str,
    tags: Option<&BTreeMap<String, String>>,
) -> Option<String> {
    let Some(tags) = tags else {
        return Some("the launch template or its version cannot be found".into());
    };
    let allow_all =
        Policy::parse(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
            .expect("a valid built-in policy");
    let mut req = Request {
        action: "ec2:RunInstances".into(),
        resource: format!("arn:{partition}:ec2:{region}:{account}:instance/*"),
        context: BTreeMap::new(),
    };
    for (k, v) in tags {
        req.context.insert(format!("aws:RequestTag/{k}"), vec![v.clone()]);
    }
    req.context.insert("aws:TagKeys".into(), tags.keys().cloned().collect());
    req.context.insert(
        "aws:PrincipalArn".into(),
        vec![format!("arn:{partition}:iam::{account}:role/(a team's role)")],
    );
    match eval::evaluate_scp_targets(
        &[("(target)", vec![("FullAWSAccess", &allow_all), ("offhours", scp)])],
        &req,
    ) {
        Decision::Allow => None,
        Decision::Deny(Denial::Explicit { statement, .. }) => Some(format!(
            "its instance tag specifications would be denied by {statement}: add the schedule tag to the template's instance tags before the SCP is attached"
        )),
        Decision::Deny(d) => Some(d.reason().to_string()),
    }
}

/// The rendered SCP, parsed, for [`template_blocked`].
///
/// # Errors
/// If the SCP cannot be rendered or read back.
pub fn rendered_scp(cfg: &Config, partition: &str) -> Result<Policy, super::check::OfflineError> {
    let text = super::render::scp(cfg, partition)?;
    Ok(Policy::parse(&text)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn scp() -> Policy {
        let cfg = Config::parse(
            "schedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\n",
            Path::new("t.yaml"),
        )
        .unwrap();
        rendered_scp(&cfg, "aws").unwrap()
    }

    #[test]
    fn a_template_without_the_schedule_tag_is_blocked_and_one_with_it_is_not() {
        let p = scp();
        let none = BTreeMap::from([("Team".to_string(), "a".to_string())]);
        let why = template_blocked(&p, "aws", "111122223333", "us-east-1", Some(&none)).unwrap();
        assert!(why.contains("DenyRunInstancesWithoutScheduleTag"), "{why}");
        let tagged = BTreeMap::from([("Schedule".to_string(), "office-hours".to_string())]);
        assert_eq!(
            template_blocked(&p, "aws", "111122223333", "us-east-1", Some(&tagged)),
            None
        );
        let bad = BTreeMap::from([("Schedule".to_string(), "nights".to_string())]);
        assert!(
            template_blocked(&p, "aws", "111122223333", "us-east-1", Some(&bad))
                .unwrap()
                .contains("DenyUnknownScheduleValue")
        );
        assert!(template_blocked(&p, "aws", "1", "us-east-1", None).is_some());
    }
}
