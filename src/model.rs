//! What offhours observes in a cloud, in its own types: scopes, groups and their actions.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::capacity::Capacity;

/// The tag holding a group's running size: `min=1 max=4 desired=2`.
pub const TAG_SAVED: &str = "offhours:saved-capacity";
/// The tag naming what is wrong with a resource's schedule tag.
pub const TAG_ERROR: &str = "offhours:error";
/// The tag recording which schedule tag value offhours last applied.
pub const TAG_SCHEDULE: &str = "offhours:schedule";
/// The tag recording the last transition applied to an instance: `stop 2026-11-25T11:00:00Z`.
pub const TAG_LAST: &str = "offhours:last-transition";
/// The temporary override tag: `running until <RFC 3339>` or `stopped until <RFC 3339>`.
pub const TAG_OVERRIDE: &str = "offhours:override";
/// The tag AWS puts on instances that belong to an Auto Scaling group.
pub const TAG_ASG_MEMBER: &str = "aws:autoscaling:groupName";
/// Every tag offhours writes starts with this.
pub const TAG_PREFIX: &str = "offhours:";

/// One account in one region: the unit that is listed, planned and applied together.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Scope {
    /// 12-digit account id.
    pub account: String,
    /// Region name.
    pub region: String,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.account, self.region)
    }
}

/// A scheduled action as the cloud reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ObservedAction {
    /// Its name.
    pub name: String,
    /// Cron recurrence, if recurring.
    pub recurrence: Option<String>,
    /// Zone of the recurrence.
    pub time_zone: Option<String>,
    /// Start time (for recurring actions AWS may report the next firing).
    pub start_time: Option<DateTime<Utc>>,
    /// End time.
    pub end_time: Option<DateTime<Utc>>,
    /// Minimum size it sets.
    pub min: Option<i32>,
    /// Maximum size it sets.
    pub max: Option<i32>,
    /// Desired capacity it sets.
    pub desired: Option<i32>,
}

impl ObservedAction {
    /// The size it sets, if it sets all three.
    #[must_use]
    pub fn capacity(&self) -> Option<Capacity> {
        Some(Capacity {
            min: self.min?,
            max: self.max?,
            desired: self.desired?,
        })
    }
}

/// An Auto Scaling group as observed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    /// Its name.
    pub name: String,
    /// Its ARN (`arn:aws:autoscaling:REGION:ACCOUNT:autoScalingGroup:UUID:autoScalingGroupName/NAME`):
    /// what offhours' sealed state tags are bound to.
    pub arn: String,
    /// Current min/max/desired.
    pub capacity: Capacity,
    /// All its tags.
    pub tags: BTreeMap<String, String>,
    /// All its scheduled actions, offhours' and others'.
    pub actions: Vec<ObservedAction>,
    /// When it was created.
    pub created: Option<DateTime<Utc>>,
    /// The instance type it launches, where the listing tells it (its running members'
    /// type, or the first type of a mixed instances policy), for cost estimates.
    pub instance_type: Option<String>,
}

impl Group {
    /// A tag's value.
    #[must_use]
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
}

/// An EC2 instance's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    /// Starting.
    Pending,
    /// Up.
    Running,
    /// Stopping (or hibernating).
    Stopping,
    /// Stopped.
    Stopped,
    /// Terminating or terminated, or anything else: never acted on.
    Other,
}

impl InstanceState {
    /// The state's name, as in reports and metrics labels.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::Other => "other",
        }
    }
}

/// How an instance is billed, as far as stopping goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Market {
    /// On-demand (or reserved): can be stopped.
    OnDemand,
    /// Spot with a persistent request: can be stopped.
    PersistentSpot,
    /// Spot with a one-time request: stopping would lose it.
    OneTimeSpot,
}

/// A plain EC2 instance as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `i-...`.
    pub id: String,
    /// Its state.
    pub state: InstanceState,
    /// When it was launched (or last started).
    pub launched: Option<DateTime<Utc>>,
    /// All its tags.
    pub tags: BTreeMap<String, String>,
    /// On-demand or spot.
    pub market: Market,
    /// Whether its root device is instance store (cannot be stopped).
    pub instance_store_root: bool,
    /// Whether it is configured for hibernation.
    pub hibernation: bool,
    /// Its instance type, e.g. `t3.micro` (for cost estimates).
    pub instance_type: Option<String>,
    /// Why it is in its state, as EC2 says (`stateReason`), e.g. a start that fell back.
    pub state_reason: Option<StateReason>,
}

/// Whether a database is a DB instance or an Aurora DB cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DbKind {
    /// An RDS DB instance (not a member of a cluster).
    Instance,
    /// An Aurora DB cluster (its instances stop and start with it).
    Cluster,
}

/// The engines of Amazon Neptune and Amazon DocumentDB, which share the `rds:` actions and
/// ARNs ("Neptune uses the `rds:` prefix ... for management API actions", Neptune User Guide;
/// the Service Authorization Reference lists DocumentDB's `CreateDBCluster` under `rds:`) but
/// are not scheduled by offhours: listings leave them out, and the SCP's create deny leaves
/// them out by `rds:DatabaseEngine` (a condition key of the `db` resource type, and of
/// CreateDBCluster and RestoreDBClusterFromS3 as actions; Service Authorization Reference,
/// Amazon RDS). `graphdb` is there because AWS's own managed policies `NeptuneFullAccess`
/// and `NeptuneConsoleFullAccess` allow Neptune's creates with `rds:DatabaseEngine` equal to
/// `graphdb` or `neptune`. Where a request has no such key (RestoreDBClusterFromSnapshot,
/// RestoreDBClusterToPointInTime, CreateDBInstanceReadReplica), the negated operator on an
/// absent key is true ("If the policy condition requires that the key is not matched ...
/// and the right key is not present, the condition is true", IAM User Guide), so the deny
/// stays: such a Neptune or DocumentDB restore needs the tag, which is harmless.
pub const OTHER_ENGINES: &[&str] = &["docdb", "graphdb", "neptune"];

/// An RDS DB instance or Aurora DB cluster as observed (DescribeDBInstances,
/// DescribeDBClusters).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Database {
    /// `DBInstanceIdentifier` or `DBClusterIdentifier`.
    pub id: String,
    /// Its ARN (tags are written by ARN).
    pub arn: String,
    /// `DBInstanceStatus` or the cluster's `Status`, as RDS gives it (`available`,
    /// `stopping`, `stopped`, `starting`, ...).
    pub status: String,
    /// `Engine`, e.g. `postgres`, `aurora-mysql`, `sqlserver-se`.
    pub engine: String,
    /// A cluster's `EngineMode` (`provisioned`, `serverless` for Aurora Serverless v1, ...).
    pub engine_mode: Option<String>,
    /// `DBInstanceClass`; for a cluster `DBClusterInstanceClass`, which RDS gives only for
    /// Multi-AZ DB clusters (an Aurora cluster has none), for cost estimates.
    pub class: Option<String>,
    /// For a DB instance: the cluster it belongs to (`DBClusterIdentifier`).
    pub cluster: Option<String>,
    /// The source it replicates, if it is a read replica
    /// (`ReadReplicaSourceDBInstanceIdentifier`, `ReadReplicaSourceDBClusterIdentifier`,
    /// a cluster's `ReplicationSourceIdentifier`).
    pub replica_of: Option<String>,
    /// Its read replicas (`ReadReplicaDBInstanceIdentifiers`, `ReadReplicaDBClusterIdentifiers`,
    /// a cluster's `ReadReplicaIdentifiers`).
    pub replicas: Vec<String>,
    /// Whether it is a Multi-AZ deployment (`MultiAZ`).
    pub multi_az: bool,
    /// For a cluster: the Aurora global database it belongs to (`GlobalClusterIdentifier`).
    pub global_cluster: Option<String>,
    /// All its tags (`TagList`).
    pub tags: BTreeMap<String, String>,
    /// When it was created (`InstanceCreateTime`, `ClusterCreateTime`).
    pub created: Option<DateTime<Utc>>,
    /// For a cluster: how many DB instances it has (`DBClusterMembers`); stopping the
    /// cluster stops them all.
    pub members: u32,
}

impl Database {
    /// A tag's value.
    #[must_use]
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    /// Its power state, from its status (RDS User Guide, "Viewing Amazon RDS DB instance
    /// status": `available`, `stopping`, `stopped`, `starting`; every other status, such as
    /// `backing-up` or `modifying`, is one offhours does not act in).
    #[must_use]
    pub fn state(&self) -> InstanceState {
        match self.status.as_str() {
            "available" => InstanceState::Running,
            "starting" => InstanceState::Pending,
            "stopping" => InstanceState::Stopping,
            "stopped" => InstanceState::Stopped,
            _ => InstanceState::Other,
        }
    }
}

/// EC2's reason for an instance's last state change (`stateReason`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateReason {
    /// E.g. `Client.InternalError`, `Client.UserInitiatedShutdown`.
    pub code: String,
    /// E.g. `Client.InternalError: Client error on launch`.
    pub message: String,
}

impl StateReason {
    /// Whether the reason says a start failed and the instance fell back to stopped.
    ///
    /// The codes are EC2's (API Reference, StateReason): `Server.InsufficientInstanceCapacity`,
    /// `Server.InternalError`, `Client.InternalError` (an encrypted EBS volume whose KMS key
    /// the caller may not use: "Client.InternalError: Client error on launch"),
    /// `Client.VolumeLimitExceeded`, `Client.InvalidSnapshot.NotFound`.
    #[must_use]
    pub fn is_failed_start(&self) -> bool {
        matches!(
            self.code.as_str(),
            "Server.InsufficientInstanceCapacity"
                | "Server.InternalError"
                | "Client.InternalError"
                | "Client.VolumeLimitExceeded"
                | "Client.InvalidSnapshot.NotFound"
        )
    }
}

impl Instance {
    /// A tag's value.
    #[must_use]
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
}

/// A temporary override: hold a state until an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Override {
    /// The state held.
    pub state: crate::schedule::State,
    /// Until when.
    pub until: DateTime<Utc>,
}

/// An override tag offhours cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid override `{value}`; expected `running until <RFC 3339>` or `stopped until <RFC 3339>`, e.g. `running until 2026-11-26T02:00+09:00`{}",
    .time.as_deref().map(|t| format!(": {t}")).unwrap_or_default()
)]
pub struct OverrideError {
    /// The tag's value.
    pub value: String,
    /// What is wrong with its time, if that is what is wrong.
    pub time: Option<String>,
}

impl Override {
    /// Reads `running until <RFC 3339>` or `stopped until <RFC 3339>`.
    ///
    /// # Errors
    /// When the value is neither.
    pub fn parse(value: &str) -> Result<Override, OverrideError> {
        let bad = || OverrideError {
            value: value.to_string(),
            time: None,
        };
        let mut parts = value.split_whitespace();
        let state = match parts.next() {
            Some("running") => crate::schedule::State::Running,
            Some("stopped") => crate::schedule::State::Stopped,
            _ => return Err(bad()),
        };
        if parts.next() != Some("until") {
            return Err(bad());
        }
        let until = parts.next().ok_or_else(bad)?;
        if parts.next().is_some() {
            return Err(bad());
        }
        let until = crate::schedule::parse_instant(until).map_err(|e| OverrideError {
            time: Some(e.to_string()),
            ..bad()
        })?;
        Ok(Override { state, until })
    }

    /// The tag form.
    #[must_use]
    pub fn to_tag(&self) -> String {
        let s = match self.state {
            crate::schedule::State::Running => "running",
            crate::schedule::State::Stopped => "stopped",
        };
        format!(
            "{s} until {}",
            self.until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    }
}

/// Makes text safe for a tag value: only the characters every AWS service accepts,
/// at most 256 of them.
#[must_use]
pub fn tag_safe(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if crate::schedule::expr::is_tag_char(c) { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if out.len() > 256 {
        out.truncate(253);
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_with_or_without_seconds_and_round_trip() {
        let o = Override::parse("running until 2026-11-26T02:00+09:00").unwrap();
        assert_eq!(o.state, crate::schedule::State::Running);
        assert_eq!(o.until, "2026-11-25T17:00:00Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(Override::parse(&o.to_tag()).unwrap(), o);
        for bad in [
            "running",
            "up until 2026-11-26T02:00Z",
            "stopped until tomorrow",
            "stopped until 2026-11-26T02:00Z please",
        ] {
            assert!(
                Override::parse(bad)
                    .unwrap_err()
                    .to_string()
                    .contains("expected `running until"),
                "{bad}"
            );
        }
    }

    #[test]
    fn tag_safe_text_drops_forbidden_characters_and_fits_256() {
        assert_eq!(
            tag_safe("unknown schedule `office-hour`; expected: a, b"),
            "unknown schedule office-hour expected: a b"
        );
        let long = tag_safe(&"x".repeat(400));
        assert_eq!(long.len(), 256);
        assert!(long.chars().all(crate::schedule::expr::is_tag_char));
    }
}
