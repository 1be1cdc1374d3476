//! Planning one database: the shared power planner over what RDS says of it, plus what only
//! databases have: RDS starts a database stopped for seven days by itself, and some
//! databases cannot be stopped at all.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::DatabaseChange;
use crate::config::Config;
use crate::kind::power::{FailedStart, PowerPlan, Powered, Settings, plan_power, record};
use crate::kind::tags::{self, OverrideTag, Resolution};
use crate::kind::{Plan, Step};
use crate::model::{Database, InstanceState, TAG_LAST};
use crate::schedule::{Action, State, Transition};

/// How long RDS lets a database stay stopped: "If you don't manually start your DB instance
/// after it is stopped for seven consecutive days, RDS automatically starts your DB instance
/// for you" (Amazon RDS User Guide, Stopping an Amazon RDS DB instance temporarily, Automatic
/// restart of a stopped DB instance); "You can stop a DB cluster for up to seven days. If
/// you don't manually start your DB cluster after seven days, your DB cluster is
/// automatically started" (Amazon Aurora User Guide, Stopping and starting an Amazon Aurora
/// DB cluster).
pub const AUTO_START: Duration = Duration::days(7);

impl Powered for Database {
    fn id(&self) -> &str {
        &self.id
    }

    fn tags(&self) -> &BTreeMap<String, String> {
        &self.tags
    }

    fn state(&self) -> InstanceState {
        Database::state(self)
    }

    fn launched(&self) -> Option<DateTime<Utc>> {
        self.created
    }

    fn priced_type(&self) -> Option<String> {
        self.class.clone()
    }

    /// What RDS refuses to stop: "You can't stop a DB instance that has a read replica, or
    /// that is a read replica", and in a Multi-AZ deployment "You can't stop an RDS for SQL
    /// Server DB instance" (Amazon RDS User Guide, Limitations of stopping your DB instance);
    /// "You can't stop and start a cluster that's part of an Aurora global database", "...a
    /// cluster that has a cross-Region read replica", "You can't stop and start an Aurora
    /// Serverless v1 cluster" (Amazon Aurora User Guide, Limitations for stopping and
    /// starting Aurora DB clusters). Said once, at the stop transition, and never retried.
    fn never_stopped(&self) -> Option<String> {
        let why = if let Some(src) = &self.replica_of {
            format!("a read replica of {src}")
        } else if !self.replicas.is_empty() {
            format!("the source of read replica(s) {}", self.replicas.join(", "))
        } else if self.engine_mode.as_deref() == Some("serverless") {
            "an Aurora Serverless v1 cluster".to_string()
        } else if let Some(mode @ ("multimaster" | "parallelquery")) = self.engine_mode.as_deref() {
            // The retired engine modes: "You can't stop and start an Aurora multi-master
            // cluster", nor "a cluster that uses the Aurora parallel query feature" in its
            // `parallelquery` engine mode (Amazon Aurora User Guide, Limitations for stopping
            // and starting Aurora DB clusters, editions while these modes were offered).
            format!("an Aurora cluster in engine mode {mode}")
        } else if let Some(g) = &self.global_cluster {
            format!("part of the Aurora global database {g}")
        } else if self.arn.contains(":cluster:") && !self.engine.starts_with("aurora") {
            // DescribeDBClusters "Describes existing Amazon Aurora DB clusters and Multi-AZ DB
            // clusters"; StopDBCluster "only applies to Aurora DB clusters" (Amazon RDS API
            // Reference), and stopping a Multi-AZ DB cluster is unsupported (Amazon RDS User
            // Guide, Limitations of Multi-AZ DB clusters).
            "a Multi-AZ DB cluster".to_string()
        } else if self.multi_az && self.engine.starts_with("sqlserver") {
            "a Multi-AZ SQL Server DB instance".to_string()
        } else {
            return None;
        };
        Some(format!("{why}: RDS cannot stop it, so offhours does not try"))
    }

    /// RDS has no state reason like EC2's; a start that fails leaves a status offhours does
    /// not act in (`incompatible-network`, ...), reported by the next passes as it is.
    fn failed_start(&self) -> Option<FailedStart> {
        None
    }
}

/// The windows `databases:` sets.
fn settings(cfg: &Config) -> Settings {
    Settings {
        catch_up: cfg.databases.catch_up,
        grace: cfg.databases.grace,
    }
}

/// Plans one database at `now`.
#[must_use]
pub fn plan_database(cfg: &Config, d: &Database, now: DateTime<Utc>) -> Option<Plan<DatabaseChange>> {
    if let Some(p) = restarted_by_rds(cfg, d, now) {
        return Some(p);
    }
    plan_power(cfg, d, now, settings(cfg)).map(PowerPlan::into_plan)
}

/// A database offhours stopped (its record says `stop <T>`, seven days ago or more) that is
/// running while its schedule says stopped: RDS started it by itself ([`AUTO_START`]). A
/// person's start within the seven days is kept, as for any resource; this one is stopped
/// again, and the record moves to now, so RDS's next restart is told apart the same way.
fn restarted_by_rds(cfg: &Config, d: &Database, now: DateTime<Utc>) -> Option<Plan<DatabaseChange>> {
    if d.state() != InstanceState::Running {
        return None;
    }
    let recorded = d.tag(TAG_LAST)?;
    let stopped_at = crate::schedule::parse_instant(recorded.strip_prefix("stop ")?).ok()?;
    if stopped_at > now || now - stopped_at < AUTO_START {
        return None;
    }
    let Resolution::Scheduled(s) = tags::resolve(cfg, d.tag(&cfg.tag_key)) else {
        return None;
    };
    // An override, an enforced schedule or a later transition are the shared planner's.
    if s.enforce || !matches!(tags::read_override(cfg, &d.tags, &s.name, now), OverrideTag::Absent) {
        return None;
    }
    let last = s.last_transition(now, 35)?;
    if last.action != Action::Stop || last.at > stopped_at || s.state_at(now) != State::Stopped {
        return None;
    }
    let mut plan = Plan::new(d.id.clone(), d.tag(&cfg.tag_key).map(String::from));
    plan.priced_type = d.class.clone();
    plan.steps.push(Step {
        change: DatabaseChange::StopDatabaseAgain,
        reason: format!(
            "stopped by offhours at {stopped_at} and started by RDS after seven days; schedule `{}` says stopped",
            s.name
        ),
        minutes_off: s
            .next_transitions(now, 2)
            .into_iter()
            .find(|t| t.action == Action::Start)
            .map(|t| (t.at - now).num_minutes()),
    });
    let again = record(&Transition {
        action: Action::Stop,
        at: now,
    });
    plan.step(
        DatabaseChange::SetTags {
            tags: BTreeMap::from([(TAG_LAST.to_string(), again)]),
        },
        "record the stop, so RDS's next restart is told apart from a person's start",
    );
    plan.notes.push(format!(
        "RDS started it after seven days stopped (offhours stopped it at {stopped_at}); stopped again"
    ));
    Some(plan)
}

#[cfg(test)]
mod tests;
