//! The sequence of one pass, written once and called by the daemon and by every one-shot
//! command that passes over the cloud (`plan`, `reconcile`, `policy scan`): the controller
//! over every scope and kind, the policy repair, the event queue, the call counts, and the
//! notification.

use crate::aws::{AwsCloud, CallCounter};
use crate::config::Config;
use crate::controller::{self, PassOptions};
use crate::notify::Standing;
use crate::report::PassReport;
use crate::shard::Shard;
use chrono::{DateTime, Utc};
use tracing::{info, warn};

/// Which steps a pass takes besides the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Steps {
    /// Check (and, when applying, repair) the org policies' drift (organization mode with
    /// `policy.repair_drift`).
    pub policy: bool,
    /// Drain the event queue (`policy.event_queue_url`).
    pub intake: bool,
    /// Post the pass's changes and errors to the webhook (when applying).
    pub notify: bool,
}

impl Steps {
    /// The daemon: everything.
    pub const DAEMON: Steps = Steps {
        policy: true,
        intake: true,
        notify: true,
    };
    /// `plan` and `reconcile`: everything but the event queue, which the daemon and
    /// `policy intake` drain.
    pub const ONE_SHOT: Steps = Steps {
        policy: true,
        intake: false,
        notify: true,
    };
    /// `policy scan`: the inventory only.
    pub const SCAN: Steps = Steps {
        policy: false,
        intake: false,
        notify: false,
    };
}

/// How to run a pass.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The moment to plan for.
    pub now: DateTime<Utc>,
    /// Apply (`reconcile`, the daemon) or only plan.
    pub apply: bool,
    /// This replica's share of the accounts.
    pub shard: Option<Shard>,
    /// The steps besides the controller.
    pub steps: Steps,
}

/// A finished pass: its report, and the notification on its way, if one was sent.
#[derive(Debug)]
pub struct Finished {
    /// The report, with the policy part and the call counts.
    pub report: PassReport,
    /// The webhook post in flight: `true` once delivered.
    pub sent: Option<tokio::task::JoinHandle<bool>>,
    /// The cloud the pass worked in (for a command's further steps, such as a pre-flight).
    pub cloud: AwsCloud,
}

/// Runs one pass. `standing` is what the webhook has been told already (the daemon keeps it
/// between passes, so each standing error is posted once).
/// Its SDK calls are counted in `counter`.
pub async fn run(
    cfg: &Config,
    opts: Options,
    counter: &CallCounter,
    standing: Option<&std::sync::Mutex<Standing>>,
) -> Finished {
    let cloud = AwsCloud::load(counter.clone(), cfg.call_timeout)
        .await
        .with_shard(opts.shard);
    let mut report = controller::pass(
        cfg,
        &cloud,
        PassOptions {
            now: opts.now,
            apply: opts.apply,
        },
    )
    .await;
    if opts.steps.policy {
        // A shard sees only its accounts: it cannot show a schedule value unused (None keeps them).
        report.policy = crate::policy::sync::repair(
            cfg,
            &cloud.organizations(),
            opts.apply,
            opts.shard.is_none().then_some(&cloud),
        )
        .await;
    }
    if opts.steps.intake
        && let Some(url) = &cfg.policy.event_queue_url
    {
        match crate::policy::sync::intake(cfg, &cloud.organizations(), &cloud.queue(url), 1000, Some(&cloud)).await {
            Ok(i) if !i.violations.is_empty() => info!(violations = i.violations.len(), "event queue violations"),
            Ok(_) => {}
            Err(e) => warn!(error = %crate::failure::chain(&e), "event queue intake failed"),
        }
    }
    report.api_calls = counter.by_operation();
    let sent = if opts.steps.notify && opts.apply {
        match standing.map(|s| s.lock()) {
            Some(Ok(mut st)) => crate::notify::spawn(cfg, &report, Some(&mut st)),
            _ => crate::notify::spawn(cfg, &report, None),
        }
    } else {
        None
    };
    Finished { report, sent, cloud }
}
