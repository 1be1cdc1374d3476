//! The `offhours` command line: parses arguments, sets up logging, wires the library.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use offhours::capacity::Capacity;
use offhours::commands::{self, Document, Done, Failure, Format};
use offhours::config::{self, Config};
use offhours::policy::sync::SyncMode;
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
    /// /healthz, /readyz, the status page at /; SIGHUP reloads the config; SIGTERM stops
    /// cleanly.
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
    /// Keep one resource running (or stopped) until a time, or end that with --clear: writes
    /// the `offhours:override` tag the daemon reads, capped at max_override_hours. RESOURCE
    /// is an instance id, a group or DB name, or an ARN; resources without a schedule are
    /// refused.
    Override(OverrideArgs),
    /// Reports from the current inventory.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Holiday calendars: list a calendar's dates with their names.
    Holidays {
        #[command(subcommand)]
        command: HolidaysCommand,
    },
}

#[derive(Subcommand, Debug)]
enum ReportCommand {
    /// Projected savings per week and per month: each scheduled resource's hours off in the
    /// next 30 days (holidays included) x its hourly price x how many run.
    Savings {
        /// Group the figures by account, team (`team_tag`) or schedule.
        #[arg(long, value_enum, default_value_t = SavingsBy::Schedule)]
        by: SavingsBy,
        /// Also the potential of untagged and always-on resources on this schedule.
        #[arg(long)]
        if_schedule: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = SavingsOutput::Text)]
        output: SavingsOutput,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum SavingsBy {
    Account,
    Team,
    Schedule,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum SavingsOutput {
    Text,
    Json,
    Csv,
}

#[derive(clap::Args, Debug)]
struct OverrideArgs {
    /// An instance id, an Auto Scaling group or DB name, or an ARN.
    resource: String,
    /// Until when: an RFC 3339 time (`2026-11-26T02:00+09:00`) or a duration from now
    /// (`3h`, `90m`, `1d`).
    #[arg(long, value_parser = parse_until, required_unless_present = "clear", conflicts_with = "clear")]
    until: Option<Until>,
    /// The state to hold.
    #[arg(long, value_enum, default_value_t = HeldState::Running, conflicts_with = "clear")]
    state: HeldState,
    /// Remove the override: the schedule applies again.
    #[arg(long)]
    clear: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum HeldState {
    Running,
    Stopped,
}

/// `--until`: a moment, or a duration from --now.
#[derive(Clone, Copy, Debug)]
enum Until {
    At(DateTime<Utc>),
    After(chrono::Duration),
}

fn parse_until(s: &str) -> Result<Until, String> {
    if let Ok(at) = parse_instant(s) {
        return Ok(Until::At(at));
    }
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = n
        .parse()
        .map_err(|_| format!("`{s}` is neither an RFC 3339 time nor a duration such as 3h, 90m or 1d"))?;
    match unit {
        "m" => Ok(Until::After(chrono::Duration::minutes(n))),
        "h" => Ok(Until::After(chrono::Duration::hours(n))),
        "d" => Ok(Until::After(chrono::Duration::days(n))),
        _ => Err(format!("`{s}`: a duration ends in m, h or d (3h, 90m, 1d)")),
    }
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

fn parse_shard(s: &str) -> anyhow::Result<offhours::shard::Shard> {
    match s.strip_prefix("ordinal/") {
        Some(count) => {
            let host = std::env::var("HOSTNAME").context("--shard ordinal/N needs $HOSTNAME")?;
            let index = host.rsplit('-').next().unwrap_or_default();
            format!("{index}/{count}")
                .parse::<offhours::shard::Shard>()
                .map_err(|e| anyhow::anyhow!("{e} (from HOSTNAME `{host}`)"))
        }
        None => Ok(s.parse()?),
    }
}

impl From<Output> for Format {
    fn from(o: Output) -> Self {
        match o {
            Output::Text => Format::Text,
            Output::Json => Format::Json,
        }
    }
}

impl From<PolicyKind> for Document {
    fn from(k: PolicyKind) -> Self {
        match k {
            PolicyKind::Scp => Document::Scp,
            PolicyKind::TagPolicy => Document::TagPolicy,
            PolicyKind::All => Document::All,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli) {
        Ok(done) => {
            let mut out = std::io::stdout();
            if out
                .write_all(done.stdout.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                return ExitCode::from(1);
            }
            eprint!("{}", done.stderr);
            ExitCode::from(done.code)
        }
        Err(e) => match e.downcast_ref::<Failure>() {
            Some(f @ Failure::Runtime { .. }) => {
                eprintln!("error: {f}");
                ExitCode::from(f.code())
            }
            Some(f) => {
                eprintln!("{f}");
                ExitCode::from(f.code())
            }
            None => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        },
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

/// The runtime of a one-shot command: one thread. Its work waits on the network, and on
/// one thread a response wakes it without a hop between threads (on the multi-thread
/// runtime `block_on` polls on the main thread while the workers drive the sockets: about
/// ten context switches per call, half of a first pass's CPU). The daemon keeps the
/// multi-thread runtime and runs its passes as spawned tasks.
fn block_on<T>(work: impl std::future::Future<Output = T>) -> anyhow::Result<T> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    Ok(rt.block_on(work))
}

fn run(cli: Cli) -> anyhow::Result<Done> {
    let now = cli.now.unwrap_or_else(Utc::now);
    let path = cli.config.as_path();
    let done = match cli.command {
        Command::Validate => commands::validate(path, now),
        Command::Explain(a) => commands::explain(
            path,
            &a.schedule,
            a.from.unwrap_or(now),
            a.count,
            a.size,
            a.output.into(),
        ),
        Command::Plan(a) => block_on(commands::pass(path, now, false, cli.shard, a.output.into()))?,
        Command::Reconcile(a) => block_on(commands::pass(path, now, true, cli.shard, a.output.into()))?,
        Command::Run => {
            if cli.now.is_some() {
                return Err(Failure::Invalid(
                    "error: `run` works at the current time and does not take --now; \
                     use `plan --now` or `reconcile --now` to see or apply one moment"
                        .into(),
                )
                .into());
            }
            let cfg = Config::load(path).map_err(Failure::from)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the runtime")?;
            rt.block_on(offhours::daemon::run(cli.config.clone(), cfg, cli.shard))?;
            Ok(Done::default())
        }
        Command::Policy { command } => {
            let cfg = Config::load(path).map_err(Failure::from)?;
            match command {
                PolicyCommand::Render { kind, partition } => commands::render(&cfg, kind.into(), partition),
                PolicyCommand::Check { event, offline, output } => {
                    let text = if event.as_os_str() == "-" {
                        std::io::read_to_string(std::io::stdin()).context("reading the event from stdin")?
                    } else {
                        std::fs::read_to_string(&event)
                            .map_err(|e| Failure::Invalid(format!("error: cannot read {}: {e}", event.display())))?
                    };
                    block_on(commands::check(&cfg, &event, &text, offline, output.into()))?
                }
                PolicyCommand::Scan { output } => block_on(commands::scan(&cfg, now, cli.shard, output.into()))?,
                PolicyCommand::Intake { max_messages, output } => {
                    block_on(commands::intake(&cfg, max_messages, output.into()))?
                }
                PolicyCommand::Apply { dry_run, output } => {
                    let mode = if dry_run { SyncMode::DryRun } else { SyncMode::Apply };
                    block_on(commands::policy_sync(&cfg, mode, output.into()))?
                }
                PolicyCommand::Status { output } => {
                    block_on(commands::policy_sync(&cfg, SyncMode::Status, output.into()))?
                }
            }
        }
        Command::Override(a) => {
            let cfg = Config::load(path).map_err(Failure::from)?;
            let req = match a.until {
                _ if a.clear => offhours::overrides::Request::Clear,
                Some(until) => offhours::overrides::Request::Set {
                    state: match a.state {
                        HeldState::Running => offhours::schedule::State::Running,
                        HeldState::Stopped => offhours::schedule::State::Stopped,
                    },
                    until: match until {
                        Until::At(t) => t,
                        Until::After(d) => now + d,
                    },
                },
                None => unreachable!("clap requires --until without --clear"),
            };
            block_on(commands::override_tag(&cfg, &a.resource, req, now, a.output.into()))?
        }
        Command::Report {
            command:
                ReportCommand::Savings {
                    by,
                    if_schedule,
                    output,
                },
        } => {
            let cfg = Config::load(path).map_err(Failure::from)?;
            let by = match by {
                SavingsBy::Account => offhours::savings::By::Account,
                SavingsBy::Team => offhours::savings::By::Team,
                SavingsBy::Schedule => offhours::savings::By::Schedule,
            };
            let format = match output {
                SavingsOutput::Text => commands::SavingsFormat::Text,
                SavingsOutput::Json => commands::SavingsFormat::Json,
                SavingsOutput::Csv => commands::SavingsFormat::Csv,
            };
            block_on(commands::savings(
                &cfg,
                now,
                cli.shard,
                by,
                if_schedule.as_deref(),
                format,
            ))?
        }
        Command::Holidays { command } => match command {
            HolidaysCommand::List { calendar, year } => commands::holidays_list(path, &calendar, year, now),
            HolidaysCommand::Codes => Ok(Done {
                stdout: offhours::schedule::countries::codes().join("\n") + "\n",
                ..Done::default()
            }),
        },
        Command::Config {
            command: ConfigCommand::Schema,
        } => commands::schema(),
    };
    Ok(done?)
}
