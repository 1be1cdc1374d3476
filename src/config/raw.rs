//! The config file's shape, as written: serde types that also generate the JSON Schema.
//!
//! Values here are unvalidated; [`super::Config`] is what the rest of offhours sees.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schedule::Mode;

/// The offhours config file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "offhours config")]
pub struct RawConfig {
    /// The tag key teams put on instances and Auto Scaling groups to opt in.
    #[serde(default = "default_tag_key")]
    #[schemars(length(min = 1, max = 128))]
    pub tag_key: String,
    /// IANA time zone for schedules that name none.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Whether a tag value may carry an inline expression such as `Mon-Fri 09:00-18:00 Asia/Seoul`.
    #[serde(default)]
    pub allow_inline: bool,
    /// Days ahead in which holidays are compiled into Auto Scaling scheduled actions.
    #[serde(default = "default_horizon")]
    #[schemars(range(min = 1, max = 366))]
    pub holiday_horizon_days: u32,
    /// Holiday calendars, by name; schedules refer to them.
    #[serde(default)]
    pub holidays: BTreeMap<String, RawCalendar>,
    /// Uptime calendars, by name: events during which schedules that name them run.
    #[serde(default)]
    pub uptime: BTreeMap<String, RawUptime>,
    /// Where offhours keeps the last good copy of each calendar feed (`ics_url`); relative to
    /// this config file. Must be writable by the daemon.
    #[serde(default = "default_state_dir")]
    pub state_dir: String,
    /// The tag that names a resource's team (e.g. `Team`), by which the status page, the
    /// savings report and the warning before a stop group resources.
    #[serde(default)]
    #[schemars(length(min = 1, max = 128))]
    pub team_tag: Option<String>,
    /// Named schedules; a tag value names one of them (or `always-on`).
    #[serde(default)]
    pub schedules: BTreeMap<String, RawSchedule>,
    /// Which AWS accounts to work in.
    #[serde(default)]
    pub accounts: RawAccounts,
    /// Regions to work in, in every account; empty means the SDK's default region.
    #[serde(default)]
    pub regions: Vec<String>,
    /// How plain EC2 instances are handled.
    #[serde(default)]
    pub instances: RawInstances,
    /// How RDS DB instances and Aurora DB clusters are handled.
    #[serde(default)]
    pub databases: RawDatabases,
    /// Longest override (`offhours:override` on an instance or group) honoured; longer ones are capped.
    #[serde(default = "default_override_hours")]
    #[schemars(range(min = 1, max = 720))]
    pub max_override_hours: u32,
    /// The org-level policy checker.
    #[serde(default)]
    pub policy: RawPolicy,
    /// Seconds between the daemon's full passes.
    #[serde(default = "default_interval")]
    #[schemars(range(min = 10, max = 86400))]
    pub interval_seconds: u32,
    /// Up to this many seconds of random delay are added to each pass, so replicas and
    /// accounts do not all call AWS at the same instant.
    #[serde(default = "default_jitter")]
    #[schemars(range(min = 0, max = 3600))]
    pub jitter_seconds: u32,
    /// A pass that takes longer than this many seconds is abandoned (and reported).
    #[serde(default = "default_deadline")]
    #[schemars(range(min = 10, max = 86400))]
    pub pass_deadline_seconds: u32,
    /// The daemon's HTTP endpoint (metrics and health).
    #[serde(default)]
    pub server: RawServer,
    /// Price per instance-hour by instance type (`*` for any other), to estimate the cost
    /// saved; no prices, no cost estimate.
    #[serde(default)]
    pub instance_hour_prices: BTreeMap<String, f64>,
    /// Where a Slack-compatible incoming webhook URL is found: never in this file.
    #[serde(default)]
    pub notifications: RawNotifications,
    /// How many account/region scopes are worked at once.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = 256))]
    pub concurrency: u32,
    /// One attempt of an AWS call that takes longer than this many seconds fails (and is
    /// retried), so a connection that never answers holds up only its own scope.
    #[serde(default = "default_call_timeout")]
    #[schemars(range(min = 1, max = 900))]
    pub call_timeout_seconds: u32,
    /// The environment variable holding the key that seals offhours' saved-size tags (at
    /// least 16 bytes). Never written in this file.
    #[serde(default = "default_state_key_env")]
    pub state_key_env: Option<String>,
    /// A file holding that key, relative to this file, when the variable is not set.
    #[serde(default)]
    pub state_key_file: Option<String>,
    /// The largest desired capacity offhours restores a group to by itself; a group whose
    /// size is above it is not scheduled (an error names it) until this is raised.
    #[serde(default = "default_max_restore")]
    #[schemars(range(min = 1, max = 100000))]
    pub max_restore_capacity: u32,
}

fn default_state_key_env() -> Option<String> {
    Some("OFFHOURS_STATE_KEY".into())
}

fn default_max_restore() -> u32 {
    100
}

/// How offhours finds the accounts it works in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccountsMode {
    /// Only the caller's own account.
    #[default]
    #[serde(rename = "self")]
    SelfAccount,
    /// Every ACTIVE account of the AWS Organization, through an assumed role.
    Organization,
}

/// Accounts to work in.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAccounts {
    /// `self` (default): the caller's account; `organization`: every ACTIVE account.
    #[serde(default)]
    pub mode: AccountsMode,
    /// Role assumed in each member account (organization mode).
    #[serde(default = "default_role")]
    pub role_name: String,
    /// External id passed when assuming the role, if the role requires one.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Account ids (12 digits), OU ids (`ou-...`) or the root id (`r-...`); empty means all.
    #[serde(default)]
    pub include: Vec<String>,
    /// Account ids, OU ids or root id to leave out.
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl Default for RawAccounts {
    fn default() -> Self {
        serde_yaml::from_str("{}").expect("every field has a default")
    }
}

/// A holiday calendar: a country's public holidays, dates listed here, an iCalendar file,
/// or any of them together.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCalendar {
    /// A country's public holidays from the data offhours ships (2020-2035): an ISO 3166-1
    /// code (`KR`), or a subdivision (`US-CA`, `DE-BY`). `offhours holidays codes` lists them.
    #[serde(default)]
    pub country: Option<String>,
    /// Dates added to the country's, as YYYY-MM-DD.
    #[serde(default)]
    pub extra_dates: Vec<String>,
    /// Dates taken out of the calendar (the country's, listed or from the file), as YYYY-MM-DD.
    #[serde(default)]
    pub except_dates: Vec<String>,
    /// Dates as YYYY-MM-DD, in the zone of the schedule that uses the calendar.
    #[serde(default)]
    pub dates: Vec<String>,
    /// An iCalendar file of all-day events, relative to this config file.
    #[serde(default)]
    pub ics: Option<String>,
    /// An iCalendar feed: https (plain http only on loopback). Fetched by the daemon at start
    /// and every `refresh_hours`, and by `plan`/`reconcile`; the last good copy is kept in
    /// `state_dir`.
    #[serde(default)]
    pub ics_url: Option<String>,
    /// Hours between fetches of `ics_url` (default 6).
    #[serde(default = "default_refresh_hours")]
    #[schemars(range(min = 1, max = 168))]
    pub refresh_hours: u32,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

/// An uptime calendar: servers run from `lead_minutes` before each event's start until its end.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawUptime {
    /// An iCalendar file of the events, relative to this config file.
    #[serde(default)]
    pub ics: Option<String>,
    /// An iCalendar feed of the events (as `holidays.<name>.ics_url`).
    #[serde(default)]
    pub ics_url: Option<String>,
    /// Hours between fetches of `ics_url` (default 6).
    #[serde(default = "default_refresh_hours")]
    #[schemars(range(min = 1, max = 168))]
    pub refresh_hours: u32,
    /// Minutes before each event's start at which servers are started.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1440))]
    pub lead_minutes: u32,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

/// One named schedule. Give either `running` or `stopped` windows.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    /// Windows in which resources run, e.g. `Mon-Fri 08:00-20:00`; stopped otherwise.
    #[serde(default)]
    pub running: Option<Vec<String>>,
    /// Windows in which resources are stopped, e.g. `Fri 20:00-Mon 08:00`; running otherwise.
    #[serde(default)]
    pub stopped: Option<Vec<String>>,
    /// IANA time zone; the top-level `timezone` when absent.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Holiday calendar name(s): stopped all day on those dates.
    #[serde(default)]
    pub holidays: Option<OneOrMany>,
    /// Uptime calendar name(s): running during their events (and their lead time), even at
    /// night, at weekends and on holidays.
    #[serde(default)]
    pub uptime: Option<OneOrMany>,
    /// `full` (default), `stop-only` or `start-only`.
    #[serde(default)]
    pub mode: Mode,
    /// Hold the scheduled state on every pass (instances), instead of acting only at transitions.
    #[serde(default)]
    pub enforce: bool,
    /// Hibernate instances configured for it instead of stopping them.
    #[serde(default)]
    pub hibernate: bool,
    /// The size Auto Scaling groups are held at while stopped, instead of 0/0/0, e.g.
    /// `min=1 max=1 desired=1`. Never larger than a group's running size. Instances are
    /// not affected.
    #[serde(default)]
    pub stopped_size: Option<String>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

/// How plain EC2 instances are handled.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawInstances {
    /// A transition missed while offhours was down is still applied this many minutes late.
    #[serde(default = "default_thirty")]
    #[schemars(range(min = 0, max = 1440))]
    pub catch_up_minutes: u32,
    /// Instances launched less than this many minutes ago are not stopped. 0 turns the grace
    /// period off (even for launch times after the pass's `now`, as in a `--now` simulation).
    #[serde(default = "default_thirty")]
    #[schemars(range(min = 0, max = 1440))]
    pub grace_minutes: u32,
    /// Instance ids per StopInstances/StartInstances call.
    #[serde(default = "default_batch")]
    #[schemars(range(min = 1, max = 1000))]
    pub batch_size: u32,
}

/// How RDS DB instances and Aurora DB clusters are handled.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDatabases {
    /// A transition missed while offhours was down is still applied this many minutes late.
    #[serde(default = "default_thirty")]
    #[schemars(range(min = 0, max = 1440))]
    pub catch_up_minutes: u32,
    /// Databases created less than this many minutes ago are not stopped. 0 turns the grace
    /// period off.
    #[serde(default = "default_thirty")]
    #[schemars(range(min = 0, max = 1440))]
    pub grace_minutes: u32,
}

impl Default for RawDatabases {
    fn default() -> Self {
        serde_yaml::from_str("{}").expect("every field has a default")
    }
}

impl Default for RawInstances {
    fn default() -> Self {
        serde_yaml::from_str("{}").expect("every field has a default")
    }
}

fn default_refresh_hours() -> u32 {
    6
}

fn default_state_dir() -> String {
    "/var/lib/offhours".into()
}

fn default_thirty() -> u32 {
    30
}

fn default_override_hours() -> u32 {
    24
}

fn default_batch() -> u32 {
    100
}

/// The org-level policy checker: an SCP that denies untagged creation and a tag policy
/// that allows only the configured schedule names.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// Name of the service control policy offhours manages.
    #[serde(default = "default_scp_name")]
    pub scp_name: String,
    /// Name of the tag policy offhours manages.
    #[serde(default = "default_tag_policy_name")]
    pub tag_policy_name: String,
    /// Where both policies are attached: the root id, OU ids or account ids.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Principal ARN patterns the SCP exempts (break-glass roles), matched as `aws:PrincipalArn`;
    /// `{partition}` stands for the partition the policies are rendered in.
    #[serde(default)]
    pub exempt_principals: Vec<String>,
    /// Resource types the tag policy enforces values for, e.g. `ec2:instance`.
    #[serde(default = "default_enforced_for")]
    pub enforced_for: Vec<String>,
    /// Whether each pass repairs drift in the policies and their attachments.
    #[serde(default = "default_true")]
    pub repair_drift: bool,
    /// What to do with resources found without a valid schedule tag: `report`, `tag:<schedule>` or `stop`.
    #[serde(default = "default_on_untagged")]
    pub on_untagged: String,
    /// Minutes an untagged resource is left alone before `on_untagged: stop` stops it. 0: no grace.
    #[serde(default = "default_thirty")]
    pub untagged_grace_minutes: u32,
    /// SQS queue fed by EventBridge with CloudTrail events, for violations within seconds.
    #[serde(default)]
    pub event_queue_url: Option<String>,
    /// Seconds each receive from the event queue waits for messages (SQS long polling, 1-20).
    #[serde(default = "default_event_wait")]
    #[schemars(range(min = 1, max = 20))]
    pub event_wait_seconds: u32,
    /// Empty receives in a row after which a drain of the event queue stops.
    #[serde(default = "default_one")]
    #[schemars(range(min = 1, max = 100))]
    pub event_empty_receives: u32,
    /// Accounts, OUs or the root where `on_untagged` may act; empty: every account worked in.
    #[serde(default)]
    pub remediate_in: Vec<String>,
    /// Whether `on_untagged` may act in the organization's management account.
    #[serde(default)]
    pub remediate_management_account: bool,
    /// A tag key that opts a resource out of `on_untagged` (reported, never remediated).
    #[serde(default = "default_exempt_tag_key")]
    #[schemars(length(min = 1, max = 128))]
    pub exempt_tag_key: String,
    /// The partition of the ARNs in the rendered policies (`aws`, `aws-cn`, `aws-us-gov`, ...).
    /// Online commands take it from the organization's ARN instead.
    #[serde(default = "default_partition")]
    pub partition: String,
    /// Principal ARN patterns that run offhours, the only ones allowed to write `offhours:` tags
    /// (and exempt from the SCP's other statements). Empty: the member role, `accounts.role_name`
    /// in every account.
    #[serde(default)]
    pub offhours_principals: Vec<String>,
    /// A role for `policy apply` and drift repair (Organizations writes), assumed from the caller's
    /// credentials, so that the pass reading member accounts does not hold organization-wide write.
    #[serde(default)]
    pub role_arn: Option<String>,
}

fn default_exempt_tag_key() -> String {
    "offhours-exempt".into()
}

fn default_event_wait() -> u32 {
    5
}

fn default_one() -> u32 {
    1
}

impl Default for RawPolicy {
    fn default() -> Self {
        serde_yaml::from_str("{}").expect("every field has a default")
    }
}

fn default_scp_name() -> String {
    "offhours-require-schedule-tag".into()
}

fn default_tag_policy_name() -> String {
    "offhours-schedule-values".into()
}

fn default_partition() -> String {
    "aws".into()
}

fn default_enforced_for() -> Vec<String> {
    vec!["ec2:instance".into()]
}

fn default_true() -> bool {
    true
}

fn default_on_untagged() -> String {
    "report".into()
}

/// Notifications: a Slack-compatible incoming webhook, batched per pass. The URL is a
/// secret, so the config only says where to read it from.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNotifications {
    /// Name of the environment variable that holds the webhook URL.
    #[serde(default)]
    pub webhook_url_env: Option<String>,
    /// A file that holds the webhook URL (e.g. a mounted secret).
    #[serde(default)]
    pub webhook_url_file: Option<String>,
    /// Minutes before a stop transition at which the webhook is told what will stop, by
    /// team, and how to keep it up; unset: no warning.
    #[serde(default)]
    #[schemars(range(min = 1, max = 1440))]
    pub notice_minutes: Option<u32>,
}

/// The daemon's HTTP endpoint.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Address to listen on for the status page, /metrics, /healthz and /readyz (port 0: any free port, logged
    /// at start-up).
    #[serde(default = "default_listen")]
    pub listen: String,
}

impl Default for RawServer {
    fn default() -> Self {
        serde_yaml::from_str("{}").expect("every field has a default")
    }
}

fn default_listen() -> String {
    "127.0.0.1:9464".into()
}

fn default_interval() -> u32 {
    300
}

fn default_jitter() -> u32 {
    15
}

fn default_deadline() -> u32 {
    240
}

/// A single name or a list of names.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One name.
    One(String),
    /// Several names.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The names, in order.
    #[must_use]
    pub fn names(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

impl Default for RawConfig {
    fn default() -> Self {
        serde_yaml::from_str("{}").expect("every field has a default")
    }
}

fn default_tag_key() -> String {
    "Schedule".into()
}

fn default_timezone() -> String {
    "UTC".into()
}

fn default_role() -> String {
    "OrganizationAccountAccessRole".into()
}

fn default_concurrency() -> u32 {
    16
}

fn default_call_timeout() -> u32 {
    60
}

fn default_horizon() -> u32 {
    crate::compile::DEFAULT_HORIZON_DAYS
}
