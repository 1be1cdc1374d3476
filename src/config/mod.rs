//! The config: read with serde_yaml, checked against its JSON Schema, validated into [`Config`].
//!
//! Every problem is reported at once, each with file, line, column and field path.

mod position;
pub mod raw;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Datelike as _, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use crate::schedule::{Schedule, countries, events, expr};
use position::{Index, Pos, escape};
pub use raw::RawConfig;

/// The name of the built-in schedule that means "never scheduled".
pub const ALWAYS_ON: &str = "always-on";
/// Where the config is looked for when neither `--config` nor `OFFHOURS_CONFIG` is set.
pub const DEFAULT_PATH: &str = "config/offhours.yaml";

/// One problem in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file.
    pub file: PathBuf,
    /// Line and column, when the problem has a place in the file.
    pub pos: Option<(usize, usize)>,
    /// Field path, e.g. `schedules.office-hours.running[0]`.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((l, c)) = self.pos {
            write!(f, ":{l}:{c}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in a config, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// What a tag value means.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved<'a> {
    /// `always-on`: compliant, never scheduled.
    AlwaysOn,
    /// A named schedule from the config.
    Named(&'a Schedule),
    /// An inline expression (only when `allow_inline` is on).
    Inline(Box<Schedule>),
}

/// Why a tag value does not name a schedule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// Neither a configured name nor `always-on`, and inline expressions are off.
    #[error("unknown schedule `{value}`; expected one of: {known} (inline expressions are not allowed by this config)")]
    Unknown {
        /// The tag value.
        value: String,
        /// The names that are allowed.
        known: String,
    },
    /// Not a configured name, and not a valid inline expression either.
    #[error("`{value}` is not a configured schedule and not a valid inline expression: {error}")]
    Invalid {
        /// The tag value.
        value: String,
        /// Why the expression did not parse.
        error: expr::ParseError,
    },
}

pub use raw::AccountsMode;

/// An account, OU or root named in `accounts.include`/`exclude`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// A 12-digit account id.
    Account(String),
    /// An organizational unit id, `ou-...`.
    Ou(String),
    /// The organization root, `r-...`.
    Root(String),
}

impl Target {
    /// Reads an account id, OU id or root id.
    pub fn parse(s: &str) -> Option<Target> {
        let lower_alnum = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Some(Target::Account(s.into()))
        } else if let Some(rest) = s.strip_prefix("ou-") {
            let mut parts = rest.split('-');
            let ok = parts.next().is_some_and(lower_alnum)
                && parts.next().is_some_and(lower_alnum)
                && parts.next().is_none();
            ok.then(|| Target::Ou(s.into()))
        } else if s.strip_prefix("r-").is_some_and(lower_alnum) {
            Some(Target::Root(s.into()))
        } else {
            None
        }
    }

    /// The id as written.
    #[must_use]
    pub fn id(&self) -> &str {
        match self {
            Target::Account(s) | Target::Ou(s) | Target::Root(s) => s,
        }
    }
}

/// Which accounts offhours works in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accounts {
    /// Self or organization.
    pub mode: AccountsMode,
    /// Role assumed in member accounts.
    pub role_name: String,
    /// External id for the role, if any.
    pub external_id: Option<String>,
    /// Only these (empty: all).
    pub include: Vec<Target>,
    /// Never these.
    pub exclude: Vec<Target>,
}

/// How plain EC2 instances are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceSettings {
    /// How late a missed transition may still be applied.
    pub catch_up: chrono::Duration,
    /// Instances younger than this are not stopped.
    pub grace: chrono::Duration,
    /// Ids per stop/start call.
    pub batch_size: usize,
}

/// How databases are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseSettings {
    /// How late a missed transition may still be applied.
    pub catch_up: chrono::Duration,
    /// Databases younger than this are not stopped.
    pub grace: chrono::Duration,
}

/// What to do with a resource that has no valid schedule tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnUntagged {
    /// Report it only.
    Report,
    /// Tag it with this schedule.
    Tag(String),
    /// Stop it once the grace period has passed.
    Stop,
}

/// The org-level policy checker's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySettings {
    /// SCP name.
    pub scp_name: String,
    /// Tag policy name.
    pub tag_policy_name: String,
    /// Root, OU or account ids both policies are attached to.
    pub targets: Vec<Target>,
    /// Principal ARN patterns exempted from the SCP (`{partition}` is filled in when rendering).
    pub exempt_principals: Vec<String>,
    /// Resource types the tag policy enforces.
    pub enforced_for: Vec<String>,
    /// Repair drift on every pass.
    pub repair_drift: bool,
    /// Response to untagged resources.
    pub on_untagged: OnUntagged,
    /// Grace period before `stop`.
    pub untagged_grace: chrono::Duration,
    /// SQS queue of CloudTrail events.
    pub event_queue_url: Option<String>,
    /// Long-polling wait of each receive from the queue, in seconds (1-20).
    pub event_wait_seconds: i32,
    /// Empty receives in a row that end a drain.
    pub event_empty_receives: u32,
    /// Where `on_untagged` may act (empty: everywhere offhours works).
    pub remediate_in: Vec<Target>,
    /// Whether `on_untagged` may act in the management account.
    pub remediate_management_account: bool,
    /// The tag key that opts a resource out of `on_untagged`.
    pub exempt_tag_key: String,
    /// Partition of the rendered ARNs when no organization says otherwise (`aws` by default).
    pub partition: String,
    /// Principal ARN patterns that run offhours: the only ones that may write `offhours:` tags.
    /// Configured, or derived from `accounts.role_name` (with `{partition}` for the partition).
    pub offhours_principals: Vec<String>,
    /// Role for the Organizations writes of `policy apply` and drift repair, if any.
    pub role_arn: Option<String>,
    /// Things that are valid but probably not what was meant (`validate` prints them).
    pub warnings: Vec<String>,
}

/// Partitions whose ARNs the rendered policies may use (AWS General Reference, "Amazon
/// Resource Names (ARNs)": `aws`, `aws-cn`, `aws-us-gov`; the ISO partitions likewise).
pub const PARTITIONS: &[&str] = &[
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "aws-iso-b",
    "aws-iso-e",
    "aws-iso-f",
];

impl PolicySettings {
    /// The principals that run offhours, with `{partition}` filled in.
    #[must_use]
    pub fn offhours_principals_in(&self, partition: &str) -> Vec<String> {
        self.offhours_principals
            .iter()
            .map(|p| p.replace("{partition}", partition))
            .collect()
    }

    /// The exempt principals, with `{partition}` filled in.
    #[must_use]
    pub fn exempt_principals_in(&self, partition: &str) -> Vec<String> {
        self.exempt_principals
            .iter()
            .map(|p| p.replace("{partition}", partition))
            .collect()
    }
}

/// Whether an IAM principal ARN pattern names a role by its bare name under an account
/// wildcard (`arn:aws:iam::*:role/BreakGlass`): any member-account administrator can create
/// a role of that name and claim the exemption. A path (`role/platform/BreakGlass`) narrows it
/// to roles created under that path, which an SCP can reserve.
#[must_use]
pub fn is_bare_role_under_wildcard(pattern: &str) -> bool {
    let parts: Vec<&str> = pattern.splitn(6, ':').collect();
    parts.len() == 6
        && parts[4].contains(['*', '?'])
        && parts[5].strip_prefix("role/").is_some_and(|name| !name.contains('/'))
}

/// How the daemon runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSettings {
    /// Time between full passes.
    pub interval: std::time::Duration,
    /// Most random delay added to a pass.
    pub jitter: std::time::Duration,
    /// Longest a pass may take.
    pub deadline: std::time::Duration,
    /// Where /metrics, /healthz and /readyz are served.
    pub listen: std::net::SocketAddr,
}

/// A calendar fed from a URL (`ics_url`): where it comes from and where its last good copy is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    /// `holidays` or `uptime`.
    pub kind: &'static str,
    /// The calendar's name.
    pub name: String,
    /// The URL (https, or http on loopback). Not logged by offhours: it may carry a token.
    pub url: String,
    /// Hours between fetches.
    pub refresh_hours: u32,
    /// The last good copy.
    pub cache: PathBuf,
    /// Whether a copy was there when the config was read (else the calendar is empty).
    pub loaded: bool,
    /// The schedules that use the calendar.
    pub schedules: Vec<String>,
}

impl Feed {
    /// `holidays.kr` / `uptime.release-nights`: how logs, metrics and /readyz name it.
    #[must_use]
    pub fn label(&self) -> String {
        format!("{}.{}", self.kind, self.name)
    }
}

/// A feed URL offhours does not fetch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum FeedUrlError {
    #[error("`{0}` is not a URL")]
    NotAUrl(String),
    #[error("plain http is only allowed to a loopback host (tests, local mirrors); use https")]
    PlainHttp,
    #[error("`{0}` is not an https URL")]
    NotHttps(String),
}

/// Whether a feed URL is one offhours fetches: https, or http to a loopback host.
fn feed_url_ok(url: &str) -> Result<(), FeedUrlError> {
    let Ok(uri) = url.parse::<hyper::Uri>() else {
        return Err(FeedUrlError::NotAUrl(url.into()));
    };
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback());
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(()),
        Some("http") if loopback => Ok(()),
        Some("http") => Err(FeedUrlError::PlainHttp),
        _ => Err(FeedUrlError::NotHttps(url.into())),
    }
}

/// How many days ahead `validate` looks for a calendar's next date.
pub const STALE_DAYS: u64 = 60;

/// A holiday calendar as loaded: its dates, each with a name for people.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    /// The dates schedules using the calendar are off on.
    pub dates: Arc<BTreeSet<NaiveDate>>,
    /// The same dates, each with its holiday's name (or where it came from).
    pub named: BTreeMap<NaiveDate, String>,
    /// The country or subdivision code its public holidays came from, if any.
    pub country: Option<String>,
    /// `except_dates` that were not in the calendar anyway (probably a typo).
    pub unused_excepts: Vec<NaiveDate>,
}

/// A validated config.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// The opt-in tag key.
    pub tag_key: String,
    /// Zone for schedules that name none.
    pub timezone: Tz,
    /// Whether tag values may be inline expressions.
    pub allow_inline: bool,
    /// Days ahead in which holidays are compiled into scheduled actions.
    pub holiday_horizon_days: u32,
    calendars: BTreeMap<String, Calendar>,
    schedules: BTreeMap<String, Schedule>,
    /// The calendars fed from URLs.
    pub feeds: Vec<Feed>,
    /// Which accounts to work in.
    pub accounts: Accounts,
    /// Regions to work in; empty means the SDK's default region.
    pub regions: Vec<String>,
    /// How many account/region scopes are worked at once.
    pub concurrency: usize,
    /// How long one attempt of an AWS call may take.
    pub call_timeout: std::time::Duration,
    /// How plain instances are handled.
    pub instances: InstanceSettings,
    /// How databases are handled.
    pub databases: DatabaseSettings,
    /// Longest override honoured, for instances and groups.
    pub max_override: chrono::Duration,
    /// The org-level policy checker.
    pub policy: PolicySettings,
    /// The daemon's settings.
    pub daemon: DaemonSettings,
    /// The key that seals offhours' saved-size tags (from `state_key_env` or
    /// `state_key_file`); without it offhours cannot record a group's size, so it schedules
    /// no group.
    pub state_key: Option<crate::seal::StateKey>,
    /// The largest desired capacity offhours restores a group to by itself.
    pub max_restore_capacity: i32,
    /// The file as written, for keys later modules read.
    pub raw: RawConfig,
}

impl Config {
    /// Where offhours keeps its own files (`state_dir`, relative to the config file).
    #[must_use]
    pub fn state_dir(&self) -> PathBuf {
        self.path.parent().unwrap_or(Path::new(".")).join(&self.raw.state_dir)
    }

    /// The tag that names a resource's team (`team_tag`), if configured.
    #[must_use]
    pub fn team_tag(&self) -> Option<&str> {
        self.raw.team_tag.as_deref()
    }

    /// Whether offhours reads the tag `key` (the schedule tag, the team tag, `offhours:*`):
    /// the only tags the inventory keeps.
    #[must_use]
    pub fn reads_tag(&self, key: &str) -> bool {
        key == self.tag_key || Some(key) == self.team_tag() || key.starts_with(crate::model::TAG_PREFIX)
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                pos: None,
                path: String::new(),
                message: format!("cannot read the config file: {e}"),
            }])
        })?;
        Self::parse_with(&text, path, true)
    }

    /// Validates config text; `path` names it in errors and anchors relative paths. The
    /// state key is not read (see [`Config::load`]): `state_key` is `None`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        Self::parse_with(text, path, false)
    }

    /// The same config with a state key (for tests that plan groups).
    #[must_use]
    pub fn with_state_key(mut self, key: crate::seal::StateKey) -> Self {
        self.state_key = Some(key);
        self
    }

    fn parse_with(text: &str, path: &Path, read_key: bool) -> Result<Config, ConfigErrors> {
        let mut v = Validator {
            file: path.to_path_buf(),
            index: Index::build(text),
            errors: Vec::new(),
            read_key,
            feeds: Vec::new(),
            state_dir: PathBuf::new(),
            timezone: chrono_tz::UTC,
        };
        let value: Value = match serde_yaml::from_str::<Option<Value>>(text) {
            Ok(v) => v.unwrap_or(Value::Object(Default::default())),
            Err(e) => return Err(ConfigErrors(vec![v.serde_error(&e, text)])),
        };
        let broken = v.check_schema(&value);
        let raw: RawConfig = if broken.is_empty() {
            match serde_yaml::from_str::<Option<RawConfig>>(text) {
                Ok(r) => r.unwrap_or_default(),
                Err(e) => return Err(ConfigErrors(vec![v.serde_error(&e, text)])),
            }
        } else {
            // Go on checking everything the structural errors did not touch, so that
            // one run reports every problem.
            let mut pruned = value;
            for p in &broken {
                if !prune(&mut pruned, p) {
                    return Err(v.finish());
                }
            }
            match serde_json::from_value(pruned) {
                Ok(r) => r,
                Err(_) => return Err(v.finish()),
            }
        };
        let cfg = v.build(raw);
        if v.errors.is_empty() { Ok(cfg) } else { Err(v.finish()) }
    }

    /// The schedule named `name`, if configured.
    #[must_use]
    pub fn schedule(&self, name: &str) -> Option<&Schedule> {
        self.schedules.get(name)
    }

    /// Every configured schedule, by name.
    pub fn schedules(&self) -> impl Iterator<Item = &Schedule> {
        self.schedules.values()
    }

    /// The names a tag value may take: every schedule plus `always-on`.
    #[must_use]
    pub fn allowed_values(&self) -> Vec<String> {
        let mut v: Vec<String> = self.schedules.keys().cloned().collect();
        v.push(ALWAYS_ON.into());
        v.sort();
        v
    }

    /// The dates of a holiday calendar.
    #[must_use]
    pub fn calendar(&self, name: &str) -> Option<&BTreeSet<NaiveDate>> {
        self.calendars.get(name).map(|c| c.dates.as_ref())
    }

    /// A holiday calendar with its dates' names and where they came from.
    #[must_use]
    pub fn calendar_info(&self, name: &str) -> Option<&Calendar> {
        self.calendars.get(name)
    }

    /// The names of the holiday calendars, sorted.
    pub fn calendar_names(&self) -> impl Iterator<Item = &str> {
        self.calendars.keys().map(String::as_str)
    }

    /// What `validate` warns about the holiday calendars at `now`: an `except_dates` entry
    /// that removed nothing, and a calendar with no date in the next [`STALE_DAYS`] days
    /// although the same days of the year had some in most of the earlier years it covers
    /// (its data has probably run out, or a year was not added).
    #[must_use]
    pub fn calendar_warnings(&self, now: DateTime<Utc>) -> Vec<String> {
        let mut out = Vec::new();
        let today = now.with_timezone(&self.timezone).date_naive();
        for (name, cal) in &self.calendars {
            for d in &cal.unused_excepts {
                out.push(format!(
                    "holidays.{name}.except_dates: {d} is not in the calendar, so it removes nothing"
                ));
            }
            let window = |from: NaiveDate| {
                let to = from + chrono::Days::new(STALE_DAYS);
                cal.dates.range(from..to).count()
            };
            if window(today) > 0 {
                continue;
            }
            let Some(first) = cal.dates.first() else { continue };
            let earlier: Vec<usize> = (1..=5)
                .filter_map(|k| today.checked_sub_months(chrono::Months::new(12 * k)))
                .filter(|from| from.year() >= first.year())
                .map(window)
                .collect();
            let with_some = earlier.iter().filter(|n| **n > 0).count();
            if with_some == 0 || with_some * 2 < earlier.len() {
                continue;
            }
            let until = today + chrono::Days::new(STALE_DAYS);
            let source = match &cal.country {
                Some(code) => format!(
                    "; its {code} dates come from the data offhours ships (holidays {}, {}-{}): see README, \"Holidays\", to refresh it",
                    countries::source_version(),
                    countries::FIRST_YEAR,
                    countries::LAST_YEAR
                ),
                None => "; add the coming year's dates".to_string(),
            };
            out.push(format!(
                "holidays.{name}: no date from {today} to {until}, though the same days had some in {with_some} of the {} earlier years it covers: it is probably stale{source}",
                earlier.len()
            ));
        }
        out
    }

    /// What a tag value means under this config.
    pub fn resolve_tag(&self, value: &str) -> Result<Resolved<'_>, TagError> {
        let value = value.trim();
        if value == ALWAYS_ON {
            return Ok(Resolved::AlwaysOn);
        }
        if let Some(s) = self.schedules.get(value) {
            return Ok(Resolved::Named(s));
        }
        if !self.allow_inline {
            return Err(TagError::Unknown {
                value: value.into(),
                known: self.allowed_values().join(", "),
            });
        }
        self.inline(value).map(|s| Resolved::Inline(Box::new(s)))
    }

    /// A schedule from a name or an inline expression, whatever `allow_inline` says
    /// (for operators at the CLI).
    pub fn lookup(&self, spec: &str) -> Result<Resolved<'_>, TagError> {
        match self.resolve_tag(spec) {
            Err(TagError::Unknown { .. }) => self.inline(spec.trim()).map(|s| Resolved::Inline(Box::new(s))),
            other => other,
        }
    }

    fn inline(&self, value: &str) -> Result<Schedule, TagError> {
        expr::parse(value)
            .map(|e| Schedule::from_expr(value, &e, self.timezone))
            .map_err(|error| TagError::Invalid {
                value: value.into(),
                error,
            })
    }
}

/// The JSON Schema of the config file, for editors.
#[must_use]
pub fn schema() -> Value {
    serde_json::to_value(schemars::schema_for!(RawConfig)).expect("a schema serialises")
}

/// The same schema with every subschema inlined, so error paths point straight into it.
fn inline_schema() -> Value {
    let settings = schemars::generate::SchemaSettings::draft2020_12().with(|s| s.inline_subschemas = true);
    serde_json::to_value(settings.into_generator().into_root_schema_for::<RawConfig>()).expect("a schema serialises")
}

/// Where a calendar's iCalendar text comes from.
enum Source<'a> {
    /// A file relative to the config file, and what kind of calendar it is for messages.
    File(&'a str, &'static str),
    /// A feed: kind, calendar name, URL, hours between fetches.
    Feed(&'static str, &'a str, &'a str, u32),
}

struct Validator {
    file: PathBuf,
    index: Index,
    errors: Vec<ConfigError>,
    /// The calendar feeds met so far, and where their copies are kept.
    feeds: Vec<Feed>,
    state_dir: PathBuf,
    /// The config's zone (all-day and floating times of calendar files).
    timezone: Tz,
    /// Read the state key from its variable or file (only for a config loaded from disk).
    read_key: bool,
}

/// `/schedules/a~1b/running/0` -> `schedules.a/b.running[0]`.
fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg);
        }
    }
    out
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Removes what a broken node spoils: a whole schedule, a calendar's contents (kept as
/// an empty calendar so references to it stay valid), or a top-level key (its default
/// then applies). Returns false if nothing sensible is left to check.
fn prune(v: &mut Value, pointer: &str) -> bool {
    let segs: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let Some(root) = v.as_object_mut() else { return false };
    match segs.as_slice() {
        [] => false,
        [top, name, ..] if top == "schedules" => {
            if let Some(m) = root.get_mut(top).and_then(Value::as_object_mut) {
                m.remove(name);
            }
            true
        }
        [top, name, ..] if top == "holidays" => {
            if let Some(m) = root.get_mut(top).and_then(Value::as_object_mut) {
                m.insert(name.clone(), Value::Object(Default::default()));
            }
            true
        }
        [top, ..] => {
            root.remove(top);
            true
        }
    }
}

/// Follows a JSON pointer into `v`.
fn at<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    if pointer.is_empty() {
        Some(v)
    } else {
        v.pointer(pointer)
    }
}

fn describe_schema(s: &Value) -> String {
    if let Some(c) = s.get("const") {
        return c.to_string();
    }
    if let Some(alts) = s.get("anyOf").or_else(|| s.get("oneOf")).and_then(Value::as_array) {
        if alts.iter().all(|a| a.get("const").is_some()) {
            return format!(
                "one of {}",
                alts.iter().map(describe_schema).collect::<Vec<_>>().join(", ")
            );
        }
        return alts.iter().map(describe_schema).collect::<Vec<_>>().join(" or ");
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        return format!(
            "one of {}",
            e.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    let types: Vec<String> = match s.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts.iter().filter_map(|t| t.as_str().map(String::from)).collect(),
        _ => vec![],
    };
    let words: Vec<&str> = types
        .iter()
        .filter(|t| *t != "null")
        .map(|t| match t.as_str() {
            "string" => "a string",
            "integer" => "an integer",
            "number" => "a number",
            "boolean" => "a boolean (true or false)",
            "array" if s.pointer("/items/type") == Some(&Value::String("string".into())) => "a list of strings",
            "array" => "a list",
            "object" => "a mapping",
            _ => "a value",
        })
        .collect();
    if words.is_empty() {
        "a valid value".into()
    } else {
        words.join(" or ")
    }
}

impl Validator {
    fn push(&mut self, pointer: &str, pos: Pos, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            pos: Some((pos.line, pos.column)),
            path: dotted(pointer),
            message: message.into(),
        });
    }

    fn at_key(&mut self, pointer: &str, message: impl Into<String>) {
        let pos = self.index.key_or_value(pointer);
        self.push(pointer, pos, message);
    }

    fn at_value(&mut self, pointer: &str, message: impl Into<String>) {
        let pos = self.index.value(pointer);
        self.push(pointer, pos, message);
    }

    fn serde_error(&self, e: &serde_yaml::Error, text: &str) -> ConfigError {
        let pos = e.location().map(|l| (l.line(), l.column())).unwrap_or_else(|| {
            let p = position::problem(text);
            (p.line, p.column)
        });
        ConfigError {
            file: self.file.clone(),
            pos: Some(pos),
            path: String::new(),
            message: e.to_string().split(" at line ").next().unwrap_or_default().to_string(),
        }
    }

    fn finish(mut self) -> ConfigErrors {
        self.errors
            .sort_by(|a, b| a.pos.cmp(&b.pos).then(a.message.cmp(&b.message)));
        self.errors.dedup();
        ConfigErrors(self.errors)
    }

    /// Checks `value` against the schema; returns the pointers of the broken nodes.
    fn check_schema(&mut self, value: &Value) -> Vec<String> {
        let mut broken = Vec::new();
        use jsonschema::error::ValidationErrorKind as K;
        let schema = inline_schema();
        let validator = jsonschema::validator_for(&schema).expect("the generated schema is valid");
        for err in validator.iter_errors(value) {
            let pointer = err.instance_path().as_str().to_string();
            let schema_path = err.schema_path().as_str().to_string();
            let parent = schema_path.rsplit_once('/').map_or("", |(p, _)| p);
            let instance = err.instance();
            if !matches!(err.kind(), K::AdditionalProperties { .. }) {
                broken.push(pointer.clone());
            }
            match err.kind() {
                K::AdditionalProperties { unexpected } => {
                    let known: Vec<String> = at(&schema, parent)
                        .and_then(|s| s.get("properties"))
                        .and_then(Value::as_object)
                        .map(|p| p.keys().cloned().collect())
                        .unwrap_or_default();
                    for key in unexpected {
                        let p = format!("{pointer}/{}", escape(key));
                        broken.push(p.clone());
                        let hint = if known.is_empty() {
                            String::new()
                        } else {
                            format!("; expected one of: {}", known.join(", "))
                        };
                        self.at_key(&p, format!("unknown field `{key}`{hint}"));
                    }
                }
                K::Required { property } => {
                    self.at_key(&pointer, format!("missing field {property}"));
                }
                K::Type { .. } | K::AnyOf { .. } | K::OneOfNotValid { .. } | K::Enum { .. } => {
                    let expected = at(&schema, parent)
                        .map(describe_schema)
                        .unwrap_or_else(|| "a valid value".into());
                    let found = match instance.as_ref() {
                        Value::String(s) => format!("`{s}`"),
                        other => json_type(other).to_string(),
                    };
                    self.at_value(&pointer, format!("expected {expected}, found {found}"));
                }
                _ => {
                    let found = instance.to_string();
                    self.at_value(
                        &pointer,
                        format!("{err} (found {found})").replace(&format!("{found} "), ""),
                    );
                }
            }
        }
        broken
    }

    /// The calendars a schedule's `field` (`holidays` or `uptime`) names; each unknown name
    /// is an error at its place, naming the calendars there are.
    fn named<'c, T>(
        &mut self,
        base: &str,
        field: &str,
        names: Option<&raw::OneOrMany>,
        defined: &'c BTreeMap<String, T>,
        ok: &mut bool,
    ) -> Vec<&'c T> {
        let Some(names) = names else { return Vec::new() };
        let many = matches!(names, raw::OneOrMany::Many(_));
        let mut out = Vec::new();
        for (i, name) in names.names().into_iter().enumerate() {
            if let Some(c) = defined.get(name) {
                out.push(c);
                continue;
            }
            let p = if many {
                format!("{base}/{field}/{i}")
            } else {
                format!("{base}/{field}")
            };
            let known = if defined.is_empty() {
                format!("none are defined under `{field}`")
            } else {
                format!(
                    "defined: {}",
                    defined.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
                )
            };
            let kind = if field == "holidays" { "holiday" } else { "uptime" };
            self.at_value(&p, format!("unknown {kind} calendar `{name}`; {known}"));
            *ok = false;
        }
        out
    }

    /// The events of a calendar file (relative to the config file) or of a feed's kept
    /// copy; `None` if there is none to read, every problem reported at `pointer`.
    fn events_of(&mut self, pointer: &str, source: Source<'_>) -> Option<Vec<events::Event>> {
        let (text, place) = match source {
            Source::File(rel, what) => {
                let file = self.file.parent().unwrap_or(Path::new(".")).join(rel);
                match std::fs::read_to_string(&file) {
                    Ok(t) => (t, file.display().to_string()),
                    Err(e) => {
                        self.at_value(pointer, format!("cannot read {what} file {}: {e}", file.display()));
                        return None;
                    }
                }
            }
            Source::Feed(kind, name, url, refresh_hours) => {
                let text = self.feed(kind, name, url, refresh_hours)?;
                // The copy was checked before it was kept; a file edited by hand since is reported.
                (text, "the kept copy of the feed".to_string())
            }
        };
        match events::parse_events(&text, self.timezone) {
            Ok(ev) => Some(ev),
            Err(errs) => {
                for e in errs {
                    self.at_value(pointer, format!("{place}: {e}"));
                }
                None
            }
        }
    }

    /// Registers a calendar's feed and returns its last good copy, if there is one.
    fn feed(&mut self, kind: &'static str, name: &str, url: &str, refresh_hours: u32) -> Option<String> {
        let p = format!("/{kind}/{}/ics_url", escape(name));
        if let Err(e) = feed_url_ok(url) {
            self.at_value(&p, e.to_string());
            return None;
        }
        // The name is a YAML key: anything but a plain file-name character becomes `_`, so
        // the copy stays inside `state_dir/feeds`.
        let file: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let cache = self.state_dir.join("feeds").join(format!("{kind}-{file}.ics"));
        let text = std::fs::read_to_string(&cache).ok();
        self.feeds.push(Feed {
            kind,
            name: name.to_string(),
            url: url.to_string(),
            refresh_hours,
            cache,
            loaded: text.is_some(),
            schedules: Vec::new(),
        });
        text
    }

    /// Reads the dates of a list (`/holidays/<name>/<field>`), reporting each bad one.
    fn date_list(&mut self, base: &str, field: &str, list: &[String]) -> Vec<NaiveDate> {
        let mut out = Vec::new();
        for (i, d) in list.iter().enumerate() {
            match NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d") {
                Ok(date) => out.push(date),
                Err(e) => self.at_value(
                    &format!("{base}/{field}/{i}"),
                    format!("`{d}` is not a date YYYY-MM-DD ({e})"),
                ),
            }
        }
        out
    }

    /// One holiday calendar: its country's public holidays, its listed dates and its
    /// iCalendar file's, plus `extra_dates`, minus `except_dates`.
    fn calendar(&mut self, name: &str, cal: &raw::RawCalendar) -> Calendar {
        let base = format!("/holidays/{}", escape(name));
        let mut named: BTreeMap<NaiveDate, String> = BTreeMap::new();
        let mut country = None;
        if let Some(code) = &cal.country {
            match countries::holidays(code) {
                Some(h) => {
                    named.extend(h.into_iter().map(|(d, n)| (d, n.to_string())));
                    country = Some(code.trim().to_ascii_uppercase());
                }
                None => {
                    let upper = code.trim().to_ascii_uppercase();
                    let country_part = upper.split('-').next().unwrap_or_default();
                    let known = countries::countries();
                    let hint = if upper.contains('-') && known.contains(&country_part) {
                        let subs: Vec<&str> = countries::codes()
                            .into_iter()
                            .filter(|c| c.starts_with(&format!("{country_part}-")))
                            .collect();
                        if subs.is_empty() {
                            format!("{country_part} has no subdivisions in the data; use `{country_part}`")
                        } else {
                            format!("{country_part}'s subdivisions: {}", subs.join(", "))
                        }
                    } else {
                        format!("countries: {}", known.join(", "))
                    };
                    self.at_value(
                        &format!("{base}/country"),
                        format!("`{code}` is not a country or subdivision offhours has holidays for; {hint}"),
                    );
                }
            }
        }
        for d in self.date_list(&base, "dates", &cal.dates) {
            named.entry(d).or_insert_with(|| "listed in the config".into());
        }
        // Files and feeds: an event's dates are the days (in the config's zone) it touches.
        let sources = [
            cal.ics
                .as_ref()
                .map(|f| (format!("{base}/ics"), Source::File(f, "holiday"))),
            cal.ics_url.as_ref().map(|u| {
                (
                    format!("{base}/ics_url"),
                    Source::Feed("holidays", name, u, cal.refresh_hours),
                )
            }),
        ];
        for (pointer, source) in sources.into_iter().flatten() {
            for (d, summary) in events::dates_of(&self.events_of(&pointer, source).unwrap_or_default(), self.timezone) {
                named.entry(d).or_insert(summary);
            }
        }
        for d in self.date_list(&base, "extra_dates", &cal.extra_dates) {
            named.insert(d, "extra_dates".into());
        }
        let mut unused_excepts = Vec::new();
        for d in self.date_list(&base, "except_dates", &cal.except_dates) {
            if named.remove(&d).is_none() {
                unused_excepts.push(d);
            }
        }
        Calendar {
            dates: Arc::new(named.keys().copied().collect()),
            named,
            country,
            unused_excepts,
        }
    }

    fn build(&mut self, raw: RawConfig) -> Config {
        let timezone = self.zone("/timezone", &raw.timezone).unwrap_or(chrono_tz::UTC);
        self.check_tag_key(&raw.tag_key);
        if let Some(team) = &raw.team_tag {
            self.check_key_at("/team_tag", team);
        }

        self.state_dir = self.file.parent().unwrap_or(Path::new(".")).join(&raw.state_dir);
        self.timezone = timezone;
        let mut calendars = BTreeMap::new();
        for (name, cal) in &raw.holidays {
            calendars.insert(name.clone(), self.calendar(name, cal));
        }
        let mut uptimes = BTreeMap::new();
        for (name, u) in &raw.uptime {
            let base = format!("/uptime/{}", escape(name));
            let source = match (&u.ics, &u.ics_url) {
                (Some(f), None) => Some((format!("{base}/ics"), Source::File(f, "uptime"))),
                (None, Some(url)) => Some((
                    format!("{base}/ics_url"),
                    Source::Feed("uptime", name, url, u.refresh_hours),
                )),
                (None, None) => {
                    self.at_key(&base, "an uptime calendar needs `ics` or `ics_url`");
                    None
                }
                (Some(_), Some(_)) => {
                    self.at_key(&base, "give `ics` or `ics_url`, not both");
                    None
                }
            };
            let list = source
                .and_then(|(pointer, source)| self.events_of(&pointer, source))
                .map(|ev| events::uptimes(&ev, u.lead_minutes))
                .unwrap_or_default();
            uptimes.insert(name.clone(), list);
        }

        let mut schedules = BTreeMap::new();
        for (name, rs) in &raw.schedules {
            let base = format!("/schedules/{}", escape(name));
            if let Some(s) = self.schedule(&base, name, rs, timezone, &calendars, &uptimes) {
                schedules.insert(name.clone(), s);
            }
        }

        let accounts = self.accounts(&raw.accounts);
        let policy = self.policy(&raw.policy, &raw.accounts.role_name, &schedules);
        // "To avoid HTTP errors, ensure that the HTTP response timeout for ReceiveMessage
        // requests is longer than the WaitTimeSeconds parameter" (Amazon SQS API Reference,
        // ReceiveMessage, WaitTimeSeconds).
        if raw.policy.event_queue_url.is_some() && raw.call_timeout_seconds <= raw.policy.event_wait_seconds {
            self.at_value(
                "/policy/event_wait_seconds",
                format!(
                    "a receive waits {} s, but call_timeout_seconds ({}) would end it first; make call_timeout_seconds longer",
                    raw.policy.event_wait_seconds, raw.call_timeout_seconds
                ),
            );
        }
        let mut feeds = std::mem::take(&mut self.feeds);
        for f in &mut feeds {
            f.schedules = raw
                .schedules
                .iter()
                .filter(|(_, rs)| {
                    let names = if f.kind == "holidays" { &rs.holidays } else { &rs.uptime };
                    names.as_ref().is_some_and(|n| n.names().contains(&f.name.as_str()))
                })
                .map(|(n, _)| n.clone())
                .collect();
        }
        let regions = self.regions(&raw.regions);
        let listen = match raw.server.listen.parse() {
            Ok(a) => a,
            Err(_) => {
                self.at_value(
                    "/server/listen",
                    format!("`{}` is not an address such as 127.0.0.1:9464", raw.server.listen),
                );
                std::net::SocketAddr::from(([127, 0, 0, 1], 9464))
            }
        };
        let state_key = if !self.read_key {
            None
        } else {
            let file = raw
                .state_key_file
                .as_ref()
                .map(|f| self.file.parent().unwrap_or(Path::new(".")).join(f));
            match crate::seal::StateKey::load(raw.state_key_env.as_deref(), file.as_deref()) {
                Ok(k) => k,
                Err(e) => {
                    let at = match &e {
                        crate::seal::KeyError::File { .. } => "/state_key_file",
                        crate::seal::KeyError::TooShort { origin, .. } if origin.starts_with('$') => "/state_key_env",
                        crate::seal::KeyError::TooShort { .. } => "/state_key_file",
                    };
                    if self.index.node(at).is_some() {
                        self.at_value(at, e.to_string());
                    } else {
                        // The default variable: nothing in the file to point at.
                        self.errors.push(ConfigError {
                            file: self.file.clone(),
                            pos: None,
                            path: dotted(at),
                            message: e.to_string(),
                        });
                    }
                    None
                }
            }
        };
        let daemon = DaemonSettings {
            interval: std::time::Duration::from_secs(u64::from(raw.interval_seconds)),
            jitter: std::time::Duration::from_secs(u64::from(raw.jitter_seconds)),
            deadline: std::time::Duration::from_secs(u64::from(raw.pass_deadline_seconds)),
            listen,
        };
        Config {
            path: self.file.clone(),
            accounts,
            regions,
            concurrency: raw.concurrency as usize,
            call_timeout: std::time::Duration::from_secs(u64::from(raw.call_timeout_seconds)),
            max_override: chrono::Duration::hours(i64::from(raw.max_override_hours)),
            policy,
            daemon,
            state_key,
            max_restore_capacity: i32::try_from(raw.max_restore_capacity).unwrap_or(i32::MAX),
            instances: InstanceSettings {
                catch_up: chrono::Duration::minutes(i64::from(raw.instances.catch_up_minutes)),
                grace: chrono::Duration::minutes(i64::from(raw.instances.grace_minutes)),
                batch_size: raw.instances.batch_size as usize,
            },
            databases: DatabaseSettings {
                catch_up: chrono::Duration::minutes(i64::from(raw.databases.catch_up_minutes)),
                grace: chrono::Duration::minutes(i64::from(raw.databases.grace_minutes)),
            },
            tag_key: raw.tag_key.clone(),
            timezone,
            allow_inline: raw.allow_inline,
            holiday_horizon_days: raw.holiday_horizon_days,
            calendars,
            schedules,
            feeds,
            raw,
        }
    }

    fn accounts(&mut self, raw: &raw::RawAccounts) -> Accounts {
        let mut targets = |field: &str, list: &[String]| -> Vec<Target> {
            let mut out = Vec::new();
            for (i, id) in list.iter().enumerate() {
                match Target::parse(id) {
                    Some(t) => out.push(t),
                    None => self.at_value(
                        &format!("/accounts/{field}/{i}"),
                        format!(
                            "`{id}` is not an account id (12 digits), an OU id (ou-xxxx-xxxxxxxx) or a root id (r-xxxx)"
                        ),
                    ),
                }
            }
            out
        };
        let include = targets("include", &raw.include);
        let exclude = targets("exclude", &raw.exclude);
        let role = raw.role_name.trim();
        if role.is_empty()
            || role.len() > 64
            || !role
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b))
        {
            self.at_value(
                "/accounts/role_name",
                format!("`{}` is not a valid IAM role name", raw.role_name),
            );
        }
        Accounts {
            mode: raw.mode,
            role_name: raw.role_name.clone(),
            external_id: raw.external_id.clone(),
            include,
            exclude,
        }
    }

    fn policy(
        &mut self,
        raw: &raw::RawPolicy,
        member_role: &str,
        schedules: &BTreeMap<String, Schedule>,
    ) -> PolicySettings {
        let mut warnings = Vec::new();
        let mut remediate_in = Vec::new();
        for (i, id) in raw.remediate_in.iter().enumerate() {
            match Target::parse(id) {
                Some(t) => remediate_in.push(t),
                None => self.at_value(
                    &format!("/policy/remediate_in/{i}"),
                    format!(
                        "`{id}` is not a root id (r-xxxx), an OU id (ou-xxxx-xxxxxxxx) or an account id (12 digits)"
                    ),
                ),
            }
        }
        let mut targets = Vec::new();
        for (i, id) in raw.targets.iter().enumerate() {
            match Target::parse(id) {
                Some(t) => targets.push(t),
                None => self.at_value(
                    &format!("/policy/targets/{i}"),
                    format!(
                        "`{id}` is not a root id (r-xxxx), an OU id (ou-xxxx-xxxxxxxx) or an account id (12 digits)"
                    ),
                ),
            }
        }
        for (field, list) in [
            ("exempt_principals", &raw.exempt_principals),
            ("offhours_principals", &raw.offhours_principals),
        ] {
            for (i, p) in list.iter().enumerate() {
                let parts: Vec<&str> = p.splitn(6, ':').collect();
                if parts.len() != 6 || parts[0] != "arn" || parts[2] != "iam" {
                    self.at_value(
                        &format!("/policy/{field}/{i}"),
                        format!(
                            "`{p}` is not an IAM principal ARN pattern such as arn:aws:iam::*:role/platform/BreakGlass"
                        ),
                    );
                } else if is_bare_role_under_wildcard(p) {
                    warnings.push(format!(
                        "policy.{field}[{i}]: `{p}` names a role by its bare name in every account: any member-account administrator can create a role with that name and be exempt; use a path reserved for the platform team, e.g. {}",
                        p.replacen(":role/", ":role/platform/", 1)
                    ));
                }
            }
        }
        if !PARTITIONS.contains(&raw.partition.as_str()) {
            self.at_value(
                "/policy/partition",
                format!(
                    "`{}` is not a partition; one of: {}",
                    raw.partition,
                    PARTITIONS.join(", ")
                ),
            );
        }
        if let Some(arn) = &raw.role_arn {
            let parts: Vec<&str> = arn.splitn(6, ':').collect();
            if parts.len() != 6 || parts[0] != "arn" || parts[2] != "iam" || !parts[5].starts_with("role/") {
                self.at_value(
                    "/policy/role_arn",
                    format!("`{arn}` is not an IAM role ARN such as arn:aws:iam::111122223333:role/offhours-policy"),
                );
            }
        }
        let offhours_principals = if raw.offhours_principals.is_empty() {
            vec![format!(
                "arn:{{partition}}:iam::*:role/{}",
                member_role.trim_start_matches('/')
            )]
        } else {
            raw.offhours_principals.clone()
        };
        for (i, r) in raw.enforced_for.iter().enumerate() {
            let ok = r.split_once(':').is_some_and(|(svc, res)| {
                !svc.is_empty()
                    && !res.is_empty()
                    && svc
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            });
            if !ok {
                self.at_value(
                    &format!("/policy/enforced_for/{i}"),
                    format!("`{r}` is not a resource type such as ec2:instance"),
                );
            } else if matches!(r.as_str(), "rds:db" | "rds:cluster") {
                // "rds:db ... Enforcement Mode: No", and the same for rds:cluster (AWS
                // Organizations User Guide, "Services and resource types that support
                // enforcement").
                self.at_value(
                    &format!("/policy/enforced_for/{i}"),
                    format!(
                        "`{r}` cannot be enforced by a tag policy (AWS does not support enforcement for it); \
                         the SCP already makes the schedule tag mandatory on databases"
                    ),
                );
            }
        }
        for (field, name) in [("scp_name", &raw.scp_name), ("tag_policy_name", &raw.tag_policy_name)] {
            if name.is_empty() || name.len() > 128 || name.chars().any(|c| c.is_control()) {
                self.at_value(
                    &format!("/policy/{field}"),
                    format!("`{name}` is not a valid policy name (1-128 characters)"),
                );
            }
        }
        let on_untagged = match raw.on_untagged.as_str() {
            "report" => OnUntagged::Report,
            "stop" => OnUntagged::Stop,
            other => match other.strip_prefix("tag:") {
                Some(name) if name == ALWAYS_ON || schedules.contains_key(name) => OnUntagged::Tag(name.to_string()),
                Some(name) => {
                    self.at_value(
                        "/policy/on_untagged",
                        format!("`tag:{name}` names no configured schedule"),
                    );
                    OnUntagged::Report
                }
                None => {
                    self.at_value(
                        "/policy/on_untagged",
                        format!("`{other}` is not one of report, tag:<schedule>, stop"),
                    );
                    OnUntagged::Report
                }
            },
        };
        PolicySettings {
            scp_name: raw.scp_name.clone(),
            tag_policy_name: raw.tag_policy_name.clone(),
            targets,
            exempt_principals: raw.exempt_principals.clone(),
            enforced_for: raw.enforced_for.clone(),
            repair_drift: raw.repair_drift,
            on_untagged,
            untagged_grace: chrono::Duration::minutes(i64::from(raw.untagged_grace_minutes)),
            event_queue_url: raw.event_queue_url.clone(),
            event_wait_seconds: raw.event_wait_seconds.clamp(1, 20) as i32,
            event_empty_receives: raw.event_empty_receives.max(1),
            remediate_in,
            remediate_management_account: raw.remediate_management_account,
            exempt_tag_key: raw.exempt_tag_key.clone(),
            partition: raw.partition.clone(),
            offhours_principals,
            role_arn: raw.role_arn.clone(),
            warnings,
        }
    }

    fn regions(&mut self, raw: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (i, r) in raw.iter().enumerate() {
            let parts: Vec<&str> = r.split('-').collect();
            let ok = parts.len() >= 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
                && parts.last().is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
            if !ok {
                self.at_value(
                    &format!("/regions/{i}"),
                    format!("`{r}` is not a region name such as ap-northeast-2"),
                );
            } else if out.contains(r) {
                self.at_value(&format!("/regions/{i}"), format!("region `{r}` is listed twice"));
            } else {
                out.push(r.clone());
            }
        }
        out
    }

    fn zone(&mut self, pointer: &str, name: &str) -> Option<Tz> {
        match name.parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                self.at_value(
                    pointer,
                    format!("unknown time zone `{name}`; expected an IANA name such as Asia/Seoul, or UTC"),
                );
                None
            }
        }
    }

    fn check_tag_key(&mut self, key: &str) {
        self.check_key_at("/tag_key", key);
    }

    fn check_key_at(&mut self, at: &str, key: &str) {
        if key.trim() != key || key.is_empty() {
            self.at_value(at, "tag key must be non-empty with no surrounding spaces");
        } else if key.to_ascii_lowercase().starts_with("aws:") {
            self.at_value(at, "tag keys starting with `aws:` are reserved by AWS");
        } else if let Some(c) = key.chars().find(|&c| !expr::is_tag_char(c)) {
            self.at_value(at, format!("character `{c}` is not allowed in a tag key on every AWS service; use letters, digits, space and + - = . _ : / @"));
        }
    }

    fn schedule(
        &mut self,
        base: &str,
        name: &str,
        rs: &raw::RawSchedule,
        default_tz: Tz,
        calendars: &BTreeMap<String, Calendar>,
        uptimes: &BTreeMap<String, Vec<events::Uptime>>,
    ) -> Option<Schedule> {
        let mut ok = true;
        if name == ALWAYS_ON {
            self.at_key(base, "`always-on` is built in and cannot be redefined");
            ok = false;
        } else if name.is_empty() || name.chars().count() > expr::MAX_LEN || !name.chars().all(expr::is_tag_char) {
            self.at_key(
                base,
                "a schedule name must be a valid tag value: 1-256 letters, digits, spaces or + - = . _ : / @",
            );
            ok = false;
        }
        let tz = match &rs.timezone {
            Some(z) => self.zone(&format!("{base}/timezone"), z),
            None => Some(default_tz),
        };
        let (field, windows, stopped) = match (&rs.running, &rs.stopped) {
            (Some(w), None) => ("running", w, false),
            (None, Some(w)) => ("stopped", w, true),
            (Some(_), Some(_)) => {
                self.at_key(
                    &format!("{base}/stopped"),
                    "give either `running` or `stopped` windows, not both",
                );
                return None;
            }
            (None, None) => {
                self.at_key(base, "a schedule needs `running` or `stopped` windows");
                return None;
            }
        };
        if windows.is_empty() {
            self.at_value(
                &format!("{base}/{field}"),
                format!("`{field}` needs at least one window such as `Mon-Fri 08:00-20:00`"),
            );
            ok = false;
        }
        let mut week = crate::schedule::WeekMask::stopped();
        for (i, w) in windows.iter().enumerate() {
            let p = format!("{base}/{field}/{i}");
            match expr::parse(w) {
                Ok(e) => {
                    if let (Some(z), Some(tz)) = (e.zone, tz)
                        && z != tz
                    {
                        self.at_value(&p, format!("window names zone {z}, but the schedule is in {tz}; set `timezone` on the schedule instead"));
                        ok = false;
                    }
                    for win in &e.windows {
                        win.mark(&mut week);
                    }
                }
                Err(e) => {
                    let node = self.index.node(&p).unwrap_or_default();
                    let pos = node.value.map_or(self.index.value(&p), |v| Pos {
                        line: v.line,
                        column: v.column + usize::from(node.quoted) + e.column - 1,
                    });
                    self.push(&p, pos, format!("invalid window `{w}`: {e}"));
                    ok = false;
                }
            }
        }
        let mut dates = BTreeSet::new();
        for c in self.named(base, "holidays", rs.holidays.as_ref(), calendars, &mut ok) {
            dates.extend(c.dates.iter().copied());
        }
        let mut uptime = Vec::new();
        for list in self.named(base, "uptime", rs.uptime.as_ref(), uptimes, &mut ok) {
            uptime.extend(list.iter().cloned());
        }
        let mut stopped_size = None;
        if let Some(text) = &rs.stopped_size {
            match text.parse::<crate::capacity::Capacity>() {
                Ok(c) if c.is_zero() => {}
                Ok(c) => stopped_size = Some(c),
                Err(e) => {
                    self.at_value(&format!("{base}/stopped_size"), e.to_string());
                    ok = false;
                }
            }
        }
        let tz = tz?;
        if !ok {
            return None;
        }
        Some(Schedule {
            name: name.to_string(),
            tz,
            week: if stopped { week.inverted() } else { week },
            holidays: Arc::new(dates),
            mode: rs.mode,
            enforce: rs.enforce,
            hibernate: rs.hibernate,
            stopped_size,
            uptime: Arc::new(crate::schedule::UptimeSet::new(uptime)),
        })
    }
}

#[cfg(test)]
mod tests;
