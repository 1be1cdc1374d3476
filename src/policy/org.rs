//! What the policy checker needs from the organization, the event queue and launch templates,
//! as traits over offhours' own types. [`crate::aws`] implements them with the SDK; the tests
//! of [`super::sync`] implement them in memory.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use super::drift::{Kind, Observed};
use super::event::TemplateRef;
use crate::failure::CloudError;

/// The organization as offhours needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// The management account (SCPs do not apply to it).
    pub management: String,
    /// The partition of its ARNs (`arn:aws-cn:organizations::...` -> `aws-cn`).
    pub partition: String,
}

/// Where an account's effective tag policy came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EffectiveTagPolicy {
    /// `DescribeEffectivePolicy` answered: the content (`None`: no tag policy applies).
    Described(Option<String>),
    /// `DescribeEffectivePolicy` could not answer (the reason); compute it from the attachments.
    Unavailable(String),
}

/// AWS Organizations, from the management (or delegated administrator) account.
pub trait Org: Clone + Send + Sync {
    /// The same client acting through `role_arn` (the policy writer's role); itself when the
    /// role cannot be assumed (the writes then fail and say why).
    fn assuming(&self, role_arn: &str) -> impl Future<Output = Self> + Send;
    /// The organization.
    fn organization(&self) -> impl Future<Output = Result<Organization, CloudError>> + Send;
    /// The root's id, its enabled policy types, and those still being enabled.
    fn root_status(&self) -> impl Future<Output = Result<(String, BTreeSet<Kind>, BTreeSet<Kind>), CloudError>> + Send;
    /// Enables a policy type on the root.
    fn enable(&self, root: &str, kind: Kind) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// The policy of that kind and name, if any.
    fn find(&self, kind: Kind, name: &str) -> impl Future<Output = Result<Option<Observed>, CloudError>> + Send;
    /// Creates a policy tagged as offhours'; returns its id.
    fn create(
        &self,
        kind: Kind,
        name: &str,
        description: &str,
        content: &str,
    ) -> impl Future<Output = Result<String, CloudError>> + Send;
    /// Replaces a policy's content and description.
    fn update(&self, id: &str, description: &str, content: &str)
    -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Attaches a policy to a root, OU or account.
    fn attach(&self, id: &str, target: &str) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Detaches a policy.
    fn detach(&self, id: &str, target: &str) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// The account, its OUs and the root, from the account up.
    fn path_to_root(&self, account: &str) -> impl Future<Output = Result<Vec<String>, CloudError>> + Send;
    /// The SCPs attached to a target: (name, content).
    fn scps_for(&self, target: &str) -> impl Future<Output = Result<Vec<(String, String)>, CloudError>> + Send;
    /// An account's effective tag policy.
    fn effective_tag_policy(&self, account: &str) -> impl Future<Output = EffectiveTagPolicy> + Send;
    /// The tag policies attached to a target: (name, content).
    fn tag_policies_for(&self, target: &str) -> impl Future<Output = Result<Vec<(String, String)>, CloudError>> + Send;
}

/// One message of the event queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The message id.
    pub id: String,
    /// The handle to delete it with.
    pub receipt: String,
    /// Its body.
    pub body: String,
}

/// The queue EventBridge fills with CloudTrail events.
pub trait EventQueue: Send + Sync {
    /// Receives messages, long-polling up to `wait_seconds`.
    fn receive(&self, wait_seconds: i32) -> impl Future<Output = Result<Vec<Message>, CloudError>> + Send;
    /// Deletes a handled message.
    fn delete(&self, receipt: &str) -> impl Future<Output = Result<(), CloudError>> + Send;
}

/// Launch templates in one scope, read-only.
pub trait Templates: Send + Sync {
    /// The instance tags of a template version (`$Default` when the reference names none);
    /// `None` when the template or version does not exist.
    fn instance_tags(
        &self,
        template: &TemplateRef,
    ) -> impl Future<Output = Result<Option<BTreeMap<String, String>>, CloudError>> + Send;
    /// Every Auto Scaling group that launches from a launch template: (group name, template).
    fn groups_with_templates(&self) -> impl Future<Output = Result<Vec<(String, TemplateRef)>, CloudError>> + Send;
}
