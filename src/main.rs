//! The `offhours` command line: parses arguments, sets up logging, wires the library.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use offhours::aws::{AwsCloud, CallCounter};
use offhours::capacity::Capacity;
use offhours::config::{self, Config, ConfigErrors, Resolved};
use offhours::controller::{self, PassOptions};
use offhours::schedule::parse_instant;

/// Schedules development servers off after hours, by tag, across an AWS Organization.
#[derive(Parser, Debug)]
#[command(name = "offhours", version, about, long_about = None)]
struct Cli {
    /// The config file.
    #[arg(long, global = true, env = "OFFHOURS_CONFIG", default_value = config::DEFAULT_PATH)]
    config: PathBuf,
    /// Act as if it were this moment (RFC 3339); every time-dependent command honours it.
    #[arg(long, global = true, value_parser = parse_instant)]
    now: Option<DateTime<Utc>>,
    /// Work only this replica's share of the accounts (INDEX/COUNT, stable hash of the
    /// account id). `ordinal/COUNT` takes INDEX from the trailing number of $HOSTNAME, as a
    /// Kubernetes StatefulSet names its pods (offhours-0, offhours-1, ...).
    #[arg(long, global = true, value_parser = parse_shard)]
    shard: Option<offhours::shard::Shard>,
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check the config; exit 0 if valid, 2 listing every error.
    Validate,
    /// Show a schedule's next transitions and the Auto Scaling actions it compiles to.
    Explain(ExplainArgs),
    /// Run the daemon: a pass every interval and at each EC2 transition; /metrics,
    /// /healthz, /readyz; SIGHUP reloads the config; SIGTERM stops cleanly.
    Run,
    /// Print every change a pass would make, per account, region and resource; write nothing.
    Plan(PassArgs),
    /// Run one pass, apply it, and print what was done.
    Reconcile(PassArgs),
    /// The org-level policy checker: render, apply, status, check.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Config utilities.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Holiday calendars: list a calendar's dates with their names.
    Holidays {
        #[command(subcommand)]
        command: HolidaysCommand,
    },
}

#[derive(Subcommand, Debug)]
enum HolidaysCommand {
    /// Print a calendar's dates in a year with their names: a calendar of the config (`kr`),
    /// or a country or subdivision code of the shipped data (`US-CA`).
    List {
        calendar: String,
        /// The year (default: this year in the config's time zone).
        #[arg(long)]
        year: Option<i32>,
    },
    /// Print the country and subdivision codes offhours ships holidays for.
    Codes,
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Print the JSON Schema of the config file, for editor completion.
    Schema,
}

#[derive(clap::Args, Debug)]
struct ExplainArgs {
    /// A schedule name from the config, `always-on`, or an inline expression
    /// such as "Mon-Fri 09:00-18:00 Europe/London".
    schedule: String,
    /// Start from this moment (RFC 3339); defaults to --now, or the current time.
    #[arg(long, value_parser = parse_instant)]
    from: Option<DateTime<Utc>>,
    /// How many transitions to list.
    #[arg(long, default_value_t = 6)]
    count: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// The running size used for the sample scheduled actions.
    #[arg(long, default_value = "min=1 max=2 desired=1")]
    size: Capacity,
}

#[derive(Subcommand, Debug)]
enum PolicyCommand {
    /// Print the SCP and/or tag policy rendered from the config (deterministic JSON).
    Render {
        /// Which document.
        #[arg(long, value_enum, default_value_t = PolicyKind::All)]
        kind: PolicyKind,
        /// The partition of the ARNs (`aws`, `aws-cn`, `aws-us-gov`, ...); default
        /// `policy.partition` from the config (`aws`).
        #[arg(long)]
        partition: Option<String>,
    },
    /// Create or update both policies, enable their types, attach and detach them; a
    /// second run makes no writes. `--dry-run` also reports the groups in the targets whose
    /// launch templates the SCP would block.
    Apply {
        /// Show what would change, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Decide a CloudTrail event as AWS would for its account: exit 0 allow (or already
    /// refused by AWS: the event has an errorCode), 3 deny, 4 unknown (it depends on a launch
    /// template, not read offline), 2 malformed or unsupported event.
    Check {
        /// The event (CloudTrail record, or EventBridge envelope), as a JSON file; `-` for stdin.
        #[arg(long)]
        event: PathBuf,
        /// Decide against the rendered policies alone, without reading the organization
        /// (the account is then assumed not to be the management account).
        #[arg(long)]
        offline: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// List instances and groups without a valid schedule tag in every managed account
    /// (the management account included), and what `on_untagged` would do. Writes nothing;
    /// remediations happen in `reconcile` and the daemon's passes.
    Scan {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Drain the event queue (policy.event_queue_url): decide each CloudTrail event,
    /// report violations, delete every handled message (unreadable ones too).
    Intake {
        /// Stop after this many messages.
        #[arg(long, default_value_t = 1000)]
        max_messages: usize,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Show drift: content edited by hand, attachments missing or extra. Writes nothing.
    Status {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum PolicyKind {
    Scp,
    TagPolicy,
    All,
}

#[derive(clap::Args, Debug)]
struct PassArgs {
    /// Output format; JSON is stable and documented in README.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    Text,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

fn parse_shard(s: &str) -> Result<offhours::shard::Shard, String> {
    match s.strip_prefix("ordinal/") {
        Some(count) => {
            let host = std::env::var("HOSTNAME").map_err(|_| "--shard ordinal/N needs $HOSTNAME".to_string())?;
            let index = host.rsplit('-').next().unwrap_or_default();
            format!("{index}/{count}")
                .parse()
                .map_err(|e| format!("{e} (from HOSTNAME `{host}`)"))
        }
        None => s.parse(),
    }
}

/// Exit codes: 0 ok, 1 runtime failure, 2 invalid input.
enum Failure {
    Invalid(String),
    Runtime(anyhow::Error),
    /// Already reported on stdout; just exit 1.
    Reported(String),
    /// Exit with this code, nothing more to say.
    Exit(u8),
}

impl From<ConfigErrors> for Failure {
    fn from(e: ConfigErrors) -> Self {
        let n = e.0.len();
        Failure::Invalid(format!("{e}\n{n} error{} in the config", if n == 1 { "" } else { "s" }))
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Invalid(msg)) => {
            eprintln!("{msg}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
        Err(Failure::Reported(msg)) => {
            eprintln!("{msg}");
            ExitCode::from(1)
        }
        Err(Failure::Exit(code)) => ExitCode::from(code),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "offhours=info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        // Untrusted text (tag values, group names) cannot forge lines or drive a terminal.
        LogFormat::Text => builder
            .with_ansi(false)
            .with_writer(offhours::telemetry::SafeStderr)
            .init(),
        LogFormat::Json => builder.with_writer(std::io::stderr).json().init(),
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let now = cli.now.unwrap_or_else(Utc::now);
    match cli.command {
        Command::Validate => {
            let cfg = Config::load(&cli.config)?;
            for w in cfg.policy.warnings.iter().chain(&cfg.calendar_warnings(now)) {
                eprintln!("{}: warning: {w}", cli.config.display());
            }
            for f in cfg.feeds.iter().filter(|f| !f.loaded) {
                eprintln!(
                    "{}: warning: {}: no copy of its feed is kept yet in {} (the daemon, plan and reconcile fetch it); until then schedules {} act without it",
                    cli.config.display(),
                    f.label(),
                    f.cache.display(),
                    f.schedules.join(", ")
                );
            }
            if cfg.state_key.is_none() {
                eprintln!(
                    "{}: warning: no state key ({}state_key_file): offhours will schedule no Auto Scaling group, \
                     since it cannot seal their saved sizes (README: \"Tags offhours trusts\")",
                    cli.config.display(),
                    cfg.raw
                        .state_key_env
                        .as_deref()
                        .map(|v| format!("${v} is not set, and no "))
                        .unwrap_or_default()
                );
            }
            println!(
                "{}: ok ({} schedules, {} holiday calendars, tag key `{}`)",
                cli.config.display(),
                cfg.schedules().count(),
                cfg.raw.holidays.len(),
                cfg.tag_key
            );
            Ok(())
        }
        Command::Explain(args) => explain(&cli.config, now, args),
        Command::Plan(args) => pass(&cli.config, now, false, args.output, cli.shard),
        Command::Reconcile(args) => pass(&cli.config, now, true, args.output, cli.shard),
        Command::Run => {
            if cli.now.is_some() {
                return Err(Failure::Invalid(
                    "error: `run` works at the current time and does not take --now; \
                     use `plan --now` or `reconcile --now` to see or apply one moment"
                        .into(),
                ));
            }
            let cfg = Config::load(&cli.config)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the runtime")?;
            rt.block_on(offhours::daemon::run(cli.config.clone(), cfg, cli.shard))
                .map_err(|e| Failure::Runtime(e.into()))
        }
        Command::Policy { command } => policy(&cli.config, now, command),
        Command::Holidays { command } => {
            let cfg = Config::load(&cli.config)?;
            let text = match command {
                HolidaysCommand::List { calendar, year } => {
                    let year = year.unwrap_or_else(|| chrono::Datelike::year(&now.with_timezone(&cfg.timezone)));
                    offhours::explain::holidays_listing(&cfg, &calendar, year)
                        .map_err(|e| Failure::Invalid(format!("error: {e}")))?
                }
                HolidaysCommand::Codes => offhours::schedule::countries::codes().join("\n") + "\n",
            };
            std::io::stdout()
                .write_all(text.as_bytes())
                .context("writing to stdout")?;
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Schema,
        } => {
            let schema = serde_json::to_string_pretty(&config::schema()).context("rendering the schema")?;
            println!("{schema}");
            Ok(())
        }
    }
}

fn explain(path: &std::path::Path, now: DateTime<Utc>, args: ExplainArgs) -> Result<(), Failure> {
    let cfg = Config::load(path)?;
    let schedule = match cfg.lookup(&args.schedule) {
        Ok(Resolved::Named(s)) => s.clone(),
        Ok(Resolved::Inline(s)) => *s,
        Ok(Resolved::AlwaysOn) => {
            println!("always-on: never scheduled; resources tagged with it run all the time.");
            return Ok(());
        }
        Err(e) => return Err(Failure::Invalid(format!("error: {e}"))),
    };
    let from = args.from.unwrap_or(now);
    let x = offhours::explain::explain(&schedule, from, args.count, args.size, cfg.holiday_horizon_days)
        .map_err(|e| Failure::Invalid(format!("error: {e}")))?;
    let text = match args.output {
        Output::Json => serde_json::to_string_pretty(&x).context("rendering JSON")? + "\n",
        Output::Text => x.to_text(&schedule),
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .context("writing to stdout")?;
    Ok(())
}

/// The runtime of a one-shot command: one thread. Its work waits on the network, and on
/// one thread a response wakes it without a hop between threads (on the multi-thread
/// runtime `block_on` polls on the main thread while the workers drive the sockets: about
/// ten context switches per call, half of a first pass's CPU). The daemon keeps the
/// multi-thread runtime and runs its passes as spawned tasks.
fn one_shot_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

fn pass(
    path: &std::path::Path,
    now: DateTime<Utc>,
    apply: bool,
    output: Output,
    shard: Option<offhours::shard::Shard>,
) -> Result<(), Failure> {
    let mut cfg = Config::load(path)?;
    let rt = one_shot_runtime()?;
    if !cfg.feeds.is_empty() && rt.block_on(offhours::feeds::refresh_all(&cfg)) {
        cfg = Config::load(path)?;
    }
    offhours::feeds::warn_unloaded(&cfg);
    let report = rt.block_on(async {
        let counter = CallCounter::default();
        let cloud = AwsCloud::load(counter.clone(), cfg.call_timeout)
            .await
            .with_shard(shard);
        let mut report = controller::pass(&cfg, &cloud, PassOptions { now, apply }).await;
        // A shard sees only its accounts: it cannot show a schedule value unused (None keeps them).
        report.policy =
            offhours::policy_sync::repair(&cfg, &cloud.organizations(), apply, shard.is_none().then_some(&cloud)).await;
        report.api_calls = counter.by_operation();
        // A dead or hanging webhook holds a one-shot command up a few seconds at most.
        if apply
            && let Some(sent) = offhours::notify::spawn(&cfg, &report, None)
            && tokio::time::timeout(std::time::Duration::from_secs(5), sent)
                .await
                .is_err()
        {
            tracing::warn!("webhook notification not delivered within 5 s; given up");
        }
        report
    });
    let text = match output {
        Output::Json => serde_json::to_string_pretty(&report).context("rendering JSON")? + "\n",
        Output::Text => report.to_text(),
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .context("writing to stdout")?;
    if report.has_failures() {
        return Err(Failure::Reported(format!(
            "{} scope(s) failed, {} change(s) failed",
            report.summary.scopes_failed, report.summary.failed
        )));
    }
    Ok(())
}

fn policy(path: &std::path::Path, now: DateTime<Utc>, command: PolicyCommand) -> Result<(), Failure> {
    let cfg = Config::load(path)?;
    let (mode, output) = match command {
        PolicyCommand::Render { kind, partition } => {
            let partition = partition.unwrap_or_else(|| cfg.policy.partition.clone());
            if !config::PARTITIONS.contains(&partition.as_str()) {
                return Err(Failure::Invalid(format!(
                    "error: `{partition}` is not a partition; one of: {}",
                    config::PARTITIONS.join(", ")
                )));
            }
            let render = |r: Result<String, offhours::policy::render::RenderError>| {
                r.map_err(|e| Failure::Invalid(format!("error: {e}")))
            };
            let text = match kind {
                PolicyKind::Scp => render(offhours::policy::render::scp(&cfg, &partition))?,
                PolicyKind::TagPolicy => render(offhours::policy::render::tag_policy(&cfg, &[]))?,
                PolicyKind::All => {
                    let scp: serde_json::Value =
                        serde_json::from_str(&render(offhours::policy::render::scp(&cfg, &partition))?)
                            .context("re-reading the SCP")?;
                    let tag: serde_json::Value =
                        serde_json::from_str(&render(offhours::policy::render::tag_policy(&cfg, &[]))?)
                            .context("re-reading the tag policy")?;
                    serde_json::to_string_pretty(&serde_json::json!({ "scp": scp, "tag_policy": tag }))
                        .context("rendering JSON")?
                }
            };
            println!("{text}");
            return Ok(());
        }
        PolicyCommand::Check { event, offline, output } => return check(&cfg, &event, offline, output),
        PolicyCommand::Scan { output } => return scan(&cfg, now, output),
        PolicyCommand::Intake { max_messages, output } => return intake(&cfg, max_messages, output),
        PolicyCommand::Apply { dry_run, output } => (if dry_run { "dry-run" } else { "apply" }, output),
        PolicyCommand::Status { output } => ("status", output),
    };
    let rt = one_shot_runtime()?;
    let report = rt.block_on(async {
        let cloud = AwsCloud::load(CallCounter::default(), cfg.call_timeout).await;
        let org = cloud.organizations();
        let org = match &cfg.policy.role_arn {
            Some(arn) if mode == "apply" => org.assuming(arn).await,
            _ => org,
        };
        let mut report = offhours::policy_sync::sync(&cfg, &org, mode, Some(&cloud)).await?;
        if mode == "dry-run" {
            report.preflight = Some(offhours::policy_sync::preflight(&cfg, &org, &cloud, &report.partition).await?);
        }
        Ok::<_, offhours::policy_sync::SyncError>(report)
    });
    let report = match report {
        Ok(r) => r,
        Err(offhours::policy_sync::SyncError::Render(e)) => return Err(Failure::Invalid(format!("error: {e}"))),
        Err(e) => return Err(Failure::Runtime(e.into())),
    };
    let text = match output {
        Output::Json => serde_json::to_string_pretty(&report).context("rendering JSON")?,
        Output::Text => {
            let mut t = format!(
                "policy {} (root {}, partition {}): {}\n",
                report.mode,
                report.root,
                report.partition,
                if report.drift { "drift found" } else { "in sync" }
            );
            for b in report.preflight.iter().flatten() {
                t.push_str(&format!(
                    "  WOULD BLOCK group {} in {}/{} (launch template {}): {}\n",
                    b.group, b.account, b.region, b.template, b.reason
                ));
            }
            for r in &report.retired {
                t.push_str(&format!(
                    "  retired value `{}` kept in the tag policy: {}\n",
                    r.value,
                    if r.resources.is_empty() {
                        "the inventory was incomplete, so it could not be shown unused".to_string()
                    } else {
                        format!("still carried by {}", r.resources.join(", "))
                    }
                ));
            }
            for p in &report.policies {
                t.push_str(&format!(
                    "  {:?} {} ({}): content {}, type {}, missing targets {:?}, extra targets {:?}\n",
                    p.kind,
                    p.name,
                    p.id.as_deref().unwrap_or("-"),
                    p.content,
                    if p.type_enabled { "enabled" } else { "NOT enabled" },
                    p.missing_targets,
                    p.extra_targets
                ));
            }
            for c in &report.changes {
                t.push_str(&format!(
                    "  {} {:?}{}\n",
                    c.status,
                    c.change,
                    c.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
                ));
            }
            t
        }
    };
    println!("{text}");
    if report
        .changes
        .iter()
        .any(|c| c.status == "failed" || c.status == "refused")
    {
        return Err(Failure::Reported(
            "some policy changes failed or were refused (a policy of that name that offhours did not create)".into(),
        ));
    }
    Ok(())
}

fn check(cfg: &Config, path: &std::path::Path, offline: bool, output: Output) -> Result<(), Failure> {
    use offhours::policy::{check, eval::Policy, event, render};
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading the event from stdin")?
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| Failure::Invalid(format!("error: cannot read {}: {e}", path.display())))?
    };
    let ev = event::parse(&text).map_err(|e| Failure::Invalid(format!("error: {}: {e}", path.display())))?;
    let v = if offline {
        let scp = render::scp(cfg, &ev.partition).map_err(|e| Failure::Invalid(format!("error: {e}")))?;
        let full = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        let levels = vec![(
            "(rendered)".to_string(),
            vec![
                (
                    "FullAWSAccess".to_string(),
                    Policy::parse(full).context("the built-in allow-all policy")?,
                ),
                (
                    cfg.policy.scp_name.clone(),
                    Policy::parse(&scp).context("re-reading the rendered SCP")?,
                ),
            ],
        )];
        let tag_policy = render::tag_policy_value(cfg, &[]);
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
        let rt = one_shot_runtime()?;
        let mut ev = ev.clone();
        let gathered = rt.block_on(async {
            let cloud = AwsCloud::load(CallCounter::default(), cfg.call_timeout).await;
            offhours::policy_sync::resolve_templates(cfg, &cloud, &mut ev).await;
            offhours::policy_sync::gather(&cloud.organizations(), &ev.account).await
        });
        let g = gathered.map_err(|e| Failure::Runtime(e.into()))?;
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
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&v).context("rendering JSON")?),
        Output::Text => {
            let by = match (&v.policy, &v.statement) {
                (Some(p), Some(s)) => format!(" (policy {p}, statement {s})"),
                (Some(p), None) => format!(" ({p})"),
                _ => String::new(),
            };
            let source = v
                .tag_policy_source
                .as_deref()
                .map(|s| format!(" [tag policy: {s}]"))
                .unwrap_or_default();
            println!(
                "{}: {} {} in {}{by}: {}{source}",
                v.decision, ev.source, ev.name, ev.account, v.reason
            );
        }
    }
    match v.decision {
        "deny" => Err(Failure::Exit(3)),
        "unknown" => Err(Failure::Exit(4)),
        _ => Ok(()),
    }
}

fn scan(cfg: &Config, now: DateTime<Utc>, output: Output) -> Result<(), Failure> {
    let rt = one_shot_runtime()?;
    let (report, preflight) = rt.block_on(async {
        let counter = CallCounter::default();
        let cloud = AwsCloud::load(counter.clone(), cfg.call_timeout).await;
        let mut r = controller::pass(cfg, &cloud, PassOptions { now, apply: false }).await;
        // Pre-flight of the SCP on the groups' launch templates (organization mode only: it
        // needs the organization's tree to find the accounts under the targets).
        let preflight = if cfg.accounts.mode == config::AccountsMode::Organization && !cfg.policy.targets.is_empty() {
            let org = cloud.organizations();
            match org.organization().await {
                Ok(o) => offhours::policy_sync::preflight(cfg, &org, &cloud, &o.partition)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        } else {
            Ok(Vec::new())
        };
        r.api_calls = counter.by_operation();
        (r, preflight)
    });
    let preflight = preflight.map_err(|e| Failure::Runtime(anyhow::anyhow!("pre-flight of the SCP: {e}")))?;
    let remediations: Vec<&offhours::report::ChangeReport> = report
        .changes
        .iter()
        .filter(|c| {
            report
                .violations
                .iter()
                .any(|v| v.resource_id == c.resource_id && v.account == c.account && v.region == c.region)
        })
        .collect();
    match output {
        Output::Json => {
            let v = serde_json::json!({
                "scopes": report.scopes,
                "violations": report.violations,
                "preflight": preflight,
                "remediations": remediations,
                "api_calls": report.api_calls,
            });
            println!("{}", serde_json::to_string_pretty(&v).context("rendering JSON")?);
        }
        Output::Text => {
            println!(
                "{} resource(s) without a valid schedule tag in {} scope(s)",
                report.violations.len(),
                report.scopes.len()
            );
            for v in &report.violations {
                println!(
                    "  {}/{} {} {}: {} (tag {:?})",
                    v.account, v.region, v.resource_type, v.resource_id, v.problem, v.tag_value
                );
            }
            for b in &preflight {
                println!(
                    "  SCP WOULD BLOCK group {} in {}/{} (launch template {}): {}",
                    b.group, b.account, b.region, b.template, b.reason
                );
            }
            for c in remediations {
                println!(
                    "  would {} {} {}: {}",
                    c.change.kind(),
                    c.resource_type,
                    c.resource_id,
                    c.reason
                );
            }
            for s in report.scopes.iter().filter(|s| s.status != "ok") {
                println!(
                    "  SCOPE FAILED {}/{}: {}",
                    s.account,
                    s.region,
                    s.error.as_deref().unwrap_or("")
                );
            }
        }
    }
    if report.summary.scopes_failed > 0 {
        return Err(Failure::Reported("some scopes could not be scanned".into()));
    }
    Ok(())
}

fn intake(cfg: &Config, max: usize, output: Output) -> Result<(), Failure> {
    let Some(url) = cfg.policy.event_queue_url.clone() else {
        return Err(Failure::Invalid(
            "error: policy.event_queue_url is not set in the config".into(),
        ));
    };
    let rt = one_shot_runtime()?;
    let report = rt
        .block_on(async {
            let cloud = AwsCloud::load(CallCounter::default(), cfg.call_timeout).await;
            offhours::policy_sync::intake(cfg, &cloud.organizations(), &cloud.queue(&url), max, Some(&cloud)).await
        })
        .map_err(|e| Failure::Runtime(e.into()))?;
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report).context("rendering JSON")?),
        Output::Text => {
            println!(
                "{} message(s): {} violation(s), {} allowed, {} refused by AWS, {} unknown, {} rejected",
                report.received,
                report.violations.len(),
                report.allowed,
                report.refused,
                report.unknown.len(),
                report.rejected.len()
            );
            for v in &report.violations {
                println!(
                    "  VIOLATION {} {} by {:?}: {}",
                    v.account, v.event, v.principal_arn, v.reason
                );
            }
            for r in &report.rejected {
                println!("  rejected message {}: {}", r.message_id, r.error);
            }
        }
    }
    Ok(())
}
