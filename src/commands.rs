//! What each command of the `offhours` binary does, and the text it prints: `main.rs`
//! parses arguments and wires these to standard output and exit codes.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::aws::{AwsCloud, CallCounter};
use crate::capacity::Capacity;
use crate::config::{self, AccountsMode, Config, ConfigErrors, Resolved};
use crate::pass::{self, Options, Steps};
use crate::policy::org::Org as _;
use crate::policy::sync::{SyncError, SyncMode};
use crate::report::{ChangeReport, ScopeStatus};
use crate::shard::Shard;

/// Output format of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// For people.
    Text,
    /// Stable JSON (README documents it).
    Json,
}

/// What a command printed and how it ends.
#[derive(Debug, Default)]
pub struct Done {
    /// Standard output.
    pub stdout: String,
    /// Standard error (warnings, the closing message of a failure already reported).
    pub stderr: String,
    /// The exit code: 0 ok, 1 something failed (reported in `stdout`), 3/4 a `policy check` verdict.
    pub code: u8,
}

impl Done {
    fn ok(stdout: String) -> Self {
        Done {
            stdout,
            ..Done::default()
        }
    }
}

/// Why a command could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Invalid input: a bad config, argument or file (exit 2).
    #[error("{0}")]
    Invalid(String),
    /// The config is invalid (exit 2).
    #[error("{0}\n{n} error{s} in the config", n = .0.0.len(), s = if .0.0.len() == 1 { "" } else { "s" })]
    Config(#[from] ConfigErrors),
    /// A runtime failure (exit 1); print it with its causes ([`crate::failure::chain`]).
    #[error("{what}")]
    Runtime {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Failure {
    fn runtime(what: &'static str, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Failure::Runtime {
            what,
            source: Box::new(e),
        }
    }

    /// The exit code.
    #[must_use]
    pub fn code(&self) -> u8 {
        match self {
            Failure::Invalid(_) | Failure::Config(_) => 2,
            Failure::Runtime { .. } => 1,
        }
    }
}

fn json<T: Serialize + ?Sized>(v: &T) -> Result<String, Failure> {
    serde_json::to_string_pretty(v)
        .map(|s| s + "\n")
        .map_err(|e| Failure::runtime("rendering JSON", e))
}

/// `validate`: checks the config; warnings go to standard error.
pub fn validate(path: &Path, now: DateTime<Utc>) -> Result<Done, Failure> {
    let cfg = Config::load(path)?;
    let mut err = String::new();
    for w in cfg.policy.warnings.iter().chain(&cfg.calendar_warnings(now)) {
        err += &format!("{}: warning: {w}\n", path.display());
    }
    for f in cfg.feeds.iter().filter(|f| !f.loaded) {
        err += &format!(
            "{}: warning: {}: no copy of its feed is kept yet in {} (the daemon, plan and reconcile fetch it); until then schedules {} act without it\n",
            path.display(),
            f.label(),
            f.cache.display(),
            f.schedules.join(", ")
        );
    }
    if cfg.state_key.is_none() {
        err += &format!(
            "{}: warning: no state key ({}state_key_file): offhours will schedule no Auto Scaling group, \
             since it cannot seal their saved sizes (README: \"Tags offhours trusts\")\n",
            path.display(),
            cfg.raw
                .state_key_env
                .as_deref()
                .map(|v| format!("${v} is not set, and no "))
                .unwrap_or_default()
        );
    }
    Ok(Done {
        stdout: format!(
            "{}: ok ({} schedules, {} holiday calendars, tag key `{}`)\n",
            path.display(),
            cfg.schedules().count(),
            cfg.raw.holidays.len(),
            cfg.tag_key
        ),
        stderr: err,
        code: 0,
    })
}

/// `explain`: a schedule's next transitions and the actions it compiles to.
pub fn explain(
    path: &Path,
    schedule: &str,
    from: DateTime<Utc>,
    count: usize,
    size: Capacity,
    format: Format,
) -> Result<Done, Failure> {
    let cfg = Config::load(path)?;
    let schedule = match cfg.lookup(schedule) {
        Ok(Resolved::Named(s)) => s.clone(),
        Ok(Resolved::Inline(s)) => *s,
        Ok(Resolved::AlwaysOn) => {
            return Ok(Done::ok(
                "always-on: never scheduled; resources tagged with it run all the time.\n".into(),
            ));
        }
        Err(e) => return Err(Failure::Invalid(format!("error: {e}"))),
    };
    let x = crate::explain::explain(&schedule, from, count, size, cfg.holiday_horizon_days)
        .map_err(|e| Failure::Invalid(format!("error: {e}")))?;
    Ok(Done::ok(match format {
        Format::Json => json(&x)?,
        Format::Text => x.to_text(&schedule),
    }))
}

/// `holidays list`: a calendar's dates in `year` (default: this year in the config's zone).
pub fn holidays_list(path: &Path, calendar: &str, year: Option<i32>, now: DateTime<Utc>) -> Result<Done, Failure> {
    let cfg = Config::load(path)?;
    let year = year.unwrap_or_else(|| chrono::Datelike::year(&now.with_timezone(&cfg.timezone)));
    crate::explain::holidays_listing(&cfg, calendar, year)
        .map(Done::ok)
        .map_err(|e| Failure::Invalid(format!("error: {e}")))
}

/// `config schema`.
pub fn schema() -> Result<Done, Failure> {
    json(&config::schema()).map(Done::ok)
}

/// Loads the config and brings its calendar feeds up to date first (reloading when one
/// changed), as `plan` and `reconcile` do before their pass.
pub async fn load_with_feeds(path: &Path) -> Result<Config, Failure> {
    let mut cfg = Config::load(path)?;
    if !cfg.feeds.is_empty() && crate::feeds::refresh_all(&cfg).await {
        cfg = Config::load(path)?;
    }
    crate::feeds::warn_unloaded(&cfg);
    Ok(cfg)
}

/// `plan` and `reconcile`: one pass; exit 1 if anything failed.
pub async fn pass(
    path: &Path,
    now: DateTime<Utc>,
    apply: bool,
    shard: Option<Shard>,
    format: Format,
) -> Result<Done, Failure> {
    let cfg = load_with_feeds(path).await?;
    let opts = Options {
        now,
        apply,
        shard,
        steps: Steps::ONE_SHOT,
    };
    let done = pass::run(&cfg, opts, &CallCounter::default(), None).await;
    // A dead or hanging webhook holds a one-shot command up a few seconds at most.
    if let Some(sent) = done.sent
        && tokio::time::timeout(std::time::Duration::from_secs(5), sent)
            .await
            .is_err()
    {
        tracing::warn!("webhook notification not delivered within 5 s; given up");
    }
    let report = done.report;
    let stdout = match format {
        Format::Json => json(&report)?,
        Format::Text => report.to_text(),
    };
    let failed = report.has_failures();
    Ok(Done {
        stdout,
        stderr: if failed {
            format!(
                "{} scope(s) failed, {} change(s) failed\n",
                report.summary.scopes_failed, report.summary.failed
            )
        } else {
            String::new()
        },
        code: u8::from(failed),
    })
}

/// What `policy scan` reports.
#[derive(Debug, Serialize)]
pub struct ScanReport {
    /// How each scope went.
    pub scopes: Vec<crate::report::ScopeReport>,
    /// Resources without a valid schedule tag.
    pub violations: Vec<crate::report::ViolationReport>,
    /// Groups whose launch templates the SCP would block.
    pub preflight: Vec<crate::policy::preflight::Blocked>,
    /// What `on_untagged` would do (the pass's changes to the violating resources).
    pub remediations: Vec<ChangeReport>,
    /// SDK calls made.
    pub api_calls: std::collections::BTreeMap<String, u64>,
}

impl ScanReport {
    /// The text form.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut t = format!(
            "{} resource(s) without a valid schedule tag in {} scope(s)\n",
            self.violations.len(),
            self.scopes.len()
        );
        for v in &self.violations {
            t += &format!(
                "  {}/{} {} {}: {} (tag {:?})\n",
                v.account, v.region, v.resource_type, v.resource_id, v.problem, v.tag_value
            );
        }
        for b in &self.preflight {
            t += &format!(
                "  SCP WOULD BLOCK group {} in {}/{} (launch template {}): {}\n",
                b.group, b.account, b.region, b.template, b.reason
            );
        }
        for c in &self.remediations {
            t += &format!(
                "  would {} {} {}: {}\n",
                c.change.kind(),
                c.resource_type,
                c.resource_id,
                c.reason
            );
        }
        for s in self.scopes.iter().filter(|s| s.status != ScopeStatus::Ok) {
            t += &format!(
                "  SCOPE FAILED {}/{}: {}\n",
                s.account,
                s.region,
                s.error.as_deref().unwrap_or("")
            );
        }
        t
    }
}

/// `policy scan`: the inventory pass (this replica's shard), its violations and the
/// remediations `on_untagged` would make, and the SCP's pre-flight on launch templates.
pub async fn scan(cfg: &Config, now: DateTime<Utc>, shard: Option<Shard>, format: Format) -> Result<Done, Failure> {
    let counter = CallCounter::default();
    let opts = Options {
        now,
        apply: false,
        shard,
        steps: Steps::SCAN,
    };
    let done = pass::run(cfg, opts, &counter, None).await;
    // Pre-flight of the SCP on the groups' launch templates (organization mode only: it
    // needs the organization's tree to find the accounts under the targets).
    let preflight = if cfg.accounts.mode == AccountsMode::Organization && !cfg.policy.targets.is_empty() {
        let org = done.cloud.organizations();
        let o = org
            .organization()
            .await
            .map_err(|e| Failure::runtime("pre-flight of the SCP", e))?;
        crate::policy::sync::preflight(cfg, &org, &done.cloud, &o.partition)
            .await
            .map_err(|e| Failure::runtime("pre-flight of the SCP", e))?
    } else {
        Vec::new()
    };
    let r = done.report;
    let remediations: Vec<ChangeReport> = r
        .changes
        .iter()
        .filter(|c| {
            r.violations
                .iter()
                .any(|v| v.resource_id == c.resource_id && v.account == c.account && v.region == c.region)
        })
        .cloned()
        .collect();
    let scan = ScanReport {
        scopes: r.scopes,
        violations: r.violations,
        preflight,
        remediations,
        api_calls: counter.by_operation(),
    };
    let failed = r.summary.scopes_failed > 0;
    Ok(Done {
        stdout: match format {
            Format::Json => json(&scan)?,
            Format::Text => scan.to_text(),
        },
        stderr: if failed {
            "some scopes could not be scanned\n".into()
        } else {
            String::new()
        },
        code: u8::from(failed),
    })
}

/// Which policy document `policy render` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    /// The SCP.
    Scp,
    /// The tag policy.
    TagPolicy,
    /// Both, as one JSON object.
    All,
}

/// `policy render`.
pub fn render(cfg: &Config, which: Document, partition: Option<String>) -> Result<Done, Failure> {
    use crate::policy::render;
    let partition = partition.unwrap_or_else(|| cfg.policy.partition.clone());
    if !config::PARTITIONS.contains(&partition.as_str()) {
        return Err(Failure::Invalid(format!(
            "error: `{partition}` is not a partition; one of: {}",
            config::PARTITIONS.join(", ")
        )));
    }
    let invalid = |e: render::RenderError| Failure::Invalid(format!("error: {e}"));
    let text = match which {
        Document::Scp => render::scp(cfg, &partition).map_err(invalid)?,
        Document::TagPolicy => render::tag_policy(cfg, &[]).map_err(invalid)?,
        Document::All => {
            let scp: serde_json::Value = serde_json::from_str(&render::scp(cfg, &partition).map_err(invalid)?)
                .map_err(|e| Failure::runtime("re-reading the SCP", e))?;
            let tag = render::tag_policy_value(cfg, &[]);
            json(&serde_json::json!({ "scp": scp, "tag_policy": tag }))?
                .trim_end()
                .to_string()
        }
    };
    Ok(Done::ok(text + "\n"))
}

/// `policy status`, `policy apply` and `policy apply --dry-run` (which adds the pre-flight).
pub async fn policy_sync(cfg: &Config, mode: SyncMode, format: Format) -> Result<Done, Failure> {
    let cloud = AwsCloud::load(CallCounter::default(), cfg.call_timeout).await;
    let org = cloud.organizations();
    let org = match &cfg.policy.role_arn {
        Some(arn) if mode == SyncMode::Apply => org.assuming(arn).await,
        _ => org,
    };
    let sync_failed = |e: SyncError| match e {
        SyncError::Render(e) => Failure::Invalid(format!("error: {e}")),
        e => Failure::runtime("reading the organization", e),
    };
    let mut report = crate::policy::sync::sync(cfg, &org, mode, Some(&cloud))
        .await
        .map_err(sync_failed)?;
    if mode == SyncMode::DryRun {
        report.preflight = Some(
            crate::policy::sync::preflight(cfg, &org, &cloud, &report.partition)
                .await
                .map_err(sync_failed)?,
        );
    }
    let failed = report.failed();
    Ok(Done {
        stdout: match format {
            Format::Json => json(&report)?,
            Format::Text => report.to_text() + "\n",
        },
        stderr: if failed {
            "some policy changes failed or were refused (a policy of that name that offhours did not create)\n".into()
        } else {
            String::new()
        },
        code: u8::from(failed),
    })
}

/// `policy check`: decides a CloudTrail event as AWS would. Exit 0 allow, 3 deny, 4 unknown.
pub async fn check(cfg: &Config, path: &Path, text: &str, offline: bool, format: Format) -> Result<Done, Failure> {
    use crate::policy::{check, event};
    let ev = event::parse(text).map_err(|e| Failure::Invalid(format!("error: {}: {e}", path.display())))?;
    let v = if offline {
        let levels = check::rendered_levels(cfg, &ev.partition).map_err(|e| Failure::Invalid(format!("error: {e}")))?;
        let tag_policy = crate::policy::render::tag_policy_value(cfg, &[]);
        check::decide(
            &ev,
            &check::Facts {
                management: None,
                levels: &levels,
                tag_policy: Some(&tag_policy),
                tag_policy_source: "rendered",
                tag_key: &cfg.tag_key,
            },
        )
    } else {
        let mut ev = ev.clone();
        let cloud = AwsCloud::load(CallCounter::default(), cfg.call_timeout).await;
        crate::policy::sync::resolve_templates(cfg, &cloud, &mut ev).await;
        let g = crate::policy::sync::gather(&cloud.organizations(), &ev.account)
            .await
            .map_err(|e| Failure::runtime("reading the organization", e))?;
        check::decide(
            &ev,
            &check::Facts {
                management: Some(&g.management),
                levels: &g.levels,
                tag_policy: g.tag_policy.as_ref(),
                tag_policy_source: &g.tag_policy_source,
                tag_key: &cfg.tag_key,
            },
        )
    };
    let stdout = match format {
        Format::Json => json(&v)?,
        Format::Text => v.to_text(&ev) + "\n",
    };
    Ok(Done {
        stdout,
        stderr: String::new(),
        code: match v.decision {
            check::Ruling::Deny => 3,
            check::Ruling::Unknown => 4,
            check::Ruling::Allow | check::Ruling::Refused => 0,
        },
    })
}

/// `policy intake`: drains the event queue.
pub async fn intake(cfg: &Config, max: usize, format: Format) -> Result<Done, Failure> {
    let Some(url) = cfg.policy.event_queue_url.clone() else {
        return Err(Failure::Invalid(
            "error: policy.event_queue_url is not set in the config".into(),
        ));
    };
    let cloud = AwsCloud::load(CallCounter::default(), cfg.call_timeout).await;
    let report = crate::policy::sync::intake(cfg, &cloud.organizations(), &cloud.queue(&url), max, Some(&cloud))
        .await
        .map_err(|e| Failure::runtime("draining the event queue", e))?;
    Ok(Done::ok(match format {
        Format::Json => json(&report)?,
        Format::Text => report.to_text(),
    }))
}

/// `override RESOURCE --until TIME [--state running|stopped]` and `override RESOURCE --clear`:
/// writes or removes the override tag on one resource, wherever it is. A refusal (not opted
/// in, not found, ambiguous, a past time) exits 2; a failed write exits 1.
pub async fn override_tag(
    cfg: &Config,
    resource: &str,
    req: crate::overrides::Request,
    now: DateTime<Utc>,
    format: Format,
) -> Result<Done, Failure> {
    use crate::overrides::{self, OverrideError, Wanted};
    let wanted = Wanted::parse(resource).map_err(|e| Failure::Invalid(format!("error: {e}")))?;
    let cloud = AwsCloud::load(CallCounter::default(), cfg.call_timeout).await;
    let d = match overrides::run(cfg, &cloud, &wanted, req, now).await {
        Ok(d) => d,
        Err(e @ OverrideError::Write { .. }) => return Err(Failure::runtime("writing the override", e)),
        Err(e) => return Err(Failure::Invalid(format!("error: {e}"))),
    };
    let stdout = match format {
        Format::Json => json(&d)?,
        Format::Text => {
            let who = format!("{} {} ({}/{})", d.resource_type, d.resource_id, d.account, d.region);
            let mut t = match (&d.value, d.write) {
                (Some(v), true) => format!(
                    "{who}: {} = `{v}`; schedule `{}` applies again after it. The daemon acts on it at its next pass.\n",
                    crate::model::TAG_OVERRIDE,
                    d.schedule
                ),
                (Some(v), false) => format!("{who}: already `{v}`; nothing written.\n"),
                (None, true) => format!(
                    "{who}: override removed; schedule `{}` applies from the daemon's next pass.\n",
                    d.schedule
                ),
                (None, false) => format!("{who}: no override to remove.\n"),
            };
            if let Some(n) = &d.note {
                t.push_str(&format!("note: {n}\n"));
            }
            t
        }
    };
    Ok(Done::ok(stdout))
}

/// `report savings`: projected savings of the current inventory (a full listing, written
/// nowhere). Exit 1 when a scope could not be listed (its resources are missing from the
/// figures, said on standard error).
pub async fn savings(
    cfg: &Config,
    now: DateTime<Utc>,
    shard: Option<Shard>,
    by: crate::savings::By,
    if_schedule: Option<&str>,
    format: SavingsFormat,
) -> Result<Done, Failure> {
    let supposed = match if_schedule {
        None => None,
        Some(name) => match cfg.resolve_tag(name) {
            Ok(Resolved::Named(s)) => Some(s.clone()),
            Ok(Resolved::Inline(s)) => Some(*s),
            Ok(Resolved::AlwaysOn) => {
                return Err(Failure::Invalid(format!(
                    "error: --if-schedule `{name}` keeps resources always on; name a schedule that stops them"
                )));
            }
            Err(e) => return Err(Failure::Invalid(format!("error: --if-schedule: {e}"))),
        },
    };
    let cloud = AwsCloud::load(CallCounter::default(), cfg.call_timeout)
        .await
        .with_shard(shard);
    let seen = crate::controller::pass(cfg, &cloud, crate::controller::PassOptions { now, apply: false }).await;
    let prices = crate::savings::Prices::new(&cfg.raw.instance_hour_prices);
    let p = crate::savings::project(cfg, &seen.inventory, &prices, now, by, supposed.as_ref());
    let stdout = match format {
        SavingsFormat::Text => p.to_text(),
        SavingsFormat::Json => json(&p)?,
        SavingsFormat::Csv => p.to_csv(),
    };
    let failed: Vec<String> = seen
        .scopes
        .iter()
        .filter(|s| s.status != ScopeStatus::Ok)
        .map(|s| format!("{}/{}: {}", s.account, s.region, s.error.as_deref().unwrap_or("failed")))
        .collect();
    Ok(Done {
        stdout,
        stderr: if failed.is_empty() {
            String::new()
        } else {
            format!(
                "warning: these could not be listed and are missing from the figures: {}\n",
                failed.join("; ")
            )
        },
        code: u8::from(!failed.is_empty()),
    })
}

/// `report savings --output`.
#[derive(Debug, Clone, Copy)]
pub enum SavingsFormat {
    /// For people.
    Text,
    /// The projection as JSON.
    Json,
    /// A row per resource.
    Csv,
}
