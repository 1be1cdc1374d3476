//! RDS DB instances and Aurora DB clusters: stopped and started by offhours at their
//! schedule's transitions, like EC2 instances (the shared [`crate::kind::power`] planner),
//! one call per database. Two kinds share this folder: DB instances (not in a cluster) and
//! DB clusters; an instance that belongs to a cluster is its cluster's.

pub mod apply;
pub mod plan;
pub mod remedy;

use std::collections::BTreeMap;
use std::future::Future;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use plan::{AUTO_START, plan_database};

use super::power::{PowerChange, PowerOp};
use super::{Adapter, Applied, Kind, Plan, ResourceType, Violation};
use crate::config::Config;
use crate::failure::CloudError;
use crate::model::{Database, DbKind};

/// One change to a database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum DatabaseChange {
    /// StopDBInstance or StopDBCluster.
    StopDatabase,
    /// The same, for a database RDS started by itself after seven days stopped while its
    /// schedule still says stopped.
    StopDatabaseAgain,
    /// StartDBInstance or StartDBCluster.
    StartDatabase,
    /// AddTagsToResource.
    SetTags {
        /// Key -> value.
        tags: BTreeMap<String, String>,
    },
    /// RemoveTagsFromResource.
    RemoveTags {
        /// The keys.
        keys: Vec<String>,
    },
}

impl DatabaseChange {
    /// The change's name, as in the JSON report.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            DatabaseChange::StopDatabase => "stop-database",
            DatabaseChange::StopDatabaseAgain => "stop-database-again",
            DatabaseChange::StartDatabase => "start-database",
            DatabaseChange::SetTags { .. } => "set-tags",
            DatabaseChange::RemoveTags { .. } => "remove-tags",
        }
    }
}

impl From<PowerOp> for DatabaseChange {
    /// RDS has no hibernation: a hibernating stop is a stop.
    fn from(op: PowerOp) -> Self {
        match op {
            PowerOp::Stop | PowerOp::Hibernate => DatabaseChange::StopDatabase,
            PowerOp::Start => DatabaseChange::StartDatabase,
        }
    }
}

impl PowerChange for DatabaseChange {
    fn set_tags(tags: BTreeMap<String, String>) -> Self {
        DatabaseChange::SetTags { tags }
    }

    fn remove_tags(keys: Vec<String>) -> Self {
        DatabaseChange::RemoveTags { keys }
    }
}

/// RDS in one scope.
pub trait DatabaseApi: Send + Sync {
    /// Every DB instance (`DbKind::Instance`) or Aurora DB cluster (`DbKind::Cluster`), with
    /// its tags. Either complete or an error.
    fn list_databases(&self, kind: DbKind) -> impl Future<Output = Result<Vec<Database>, CloudError>> + Send;
    /// StopDBInstance or StopDBCluster.
    fn stop_database(&self, kind: DbKind, id: &str) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// StartDBInstance or StartDBCluster.
    fn start_database(&self, kind: DbKind, id: &str) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Creates or updates tags (AddTagsToResource).
    fn tag_database(
        &self,
        kind: DbKind,
        id: &str,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Removes tags (RemoveTagsFromResource).
    fn untag_database(
        &self,
        kind: DbKind,
        id: &str,
        keys: &[String],
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
}

/// Which databases a kind covers.
pub trait Which: Send + Sync + 'static {
    /// DB instances or DB clusters.
    const KIND: DbKind;
    /// The kind's name in reports.
    const TYPE: ResourceType;
}

/// RDS DB instances (not members of a cluster).
#[derive(Debug, Clone, Copy, Default)]
pub struct InstancesOfRds;
/// Aurora DB clusters.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClustersOfRds;

impl Which for InstancesOfRds {
    const KIND: DbKind = DbKind::Instance;
    const TYPE: ResourceType = ResourceType::DbInstance;
}

impl Which for ClustersOfRds {
    const KIND: DbKind = DbKind::Cluster;
    const TYPE: ResourceType = ResourceType::DbCluster;
}

/// The database kinds: [`DbInstances`] and [`DbClusters`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Databases<W>(PhantomData<W>);

/// The kind: RDS DB instances.
pub type DbInstances = Databases<InstancesOfRds>;
/// The kind: Aurora DB clusters.
pub type DbClusters = Databases<ClustersOfRds>;

impl<W: Which> Kind for Databases<W> {
    const TYPE: ResourceType = W::TYPE;
    type Observed = Database;
    type Change = DatabaseChange;

    fn id(d: &Database) -> &str {
        &d.id
    }

    fn tags(d: &Database) -> &BTreeMap<String, String> {
        &d.tags
    }

    /// A DB instance in a cluster is its cluster's ("You can't stop an individual Aurora DB
    /// instance", Amazon Aurora User Guide, Stopping and starting an Amazon Aurora DB
    /// cluster); a database in a status offhours does not act in is nobody's this pass.
    fn left_to_others(d: &Database) -> bool {
        d.cluster.is_some() || d.state() == crate::model::InstanceState::Other
    }

    fn plan(cfg: &Config, d: &Database, now: DateTime<Utc>) -> Option<Plan<DatabaseChange>> {
        plan_database(cfg, d, now)
    }

    fn scan(
        cfg: &Config,
        d: &Database,
        now: DateTime<Utc>,
        block: Option<&str>,
    ) -> Option<(Violation, Option<Plan<DatabaseChange>>)> {
        remedy::scan_database(cfg, W::TYPE, d, now, block)
    }

    fn managed_state(cfg: &Config, d: &Database) -> Option<&'static str> {
        d.tag(&cfg.tag_key)
            .is_some_and(|v| cfg.resolve_tag(v).is_ok())
            .then(|| d.state().as_str())
    }

    fn change_name(c: &DatabaseChange) -> &'static str {
        c.kind()
    }

    fn observe(_: &Config, d: &Database) -> super::Observation {
        super::Observation {
            state: d.state().as_str(),
            priced_type: d.class.clone(),
            units: d.members.max(1),
            since: d.created,
        }
    }

    fn set_tags(tags: BTreeMap<String, String>) -> DatabaseChange {
        DatabaseChange::SetTags { tags }
    }

    fn remove_tags(keys: Vec<String>) -> DatabaseChange {
        DatabaseChange::RemoveTags { keys }
    }
}

impl<W: Which, A: DatabaseApi> Adapter<Databases<W>> for A {
    fn list(&self) -> impl Future<Output = Result<Vec<Database>, CloudError>> + Send {
        self.list_databases(W::KIND)
    }

    fn apply(&self, _cfg: &Config, plans: &[Plan<DatabaseChange>]) -> impl Future<Output = Applied> + Send {
        apply::apply(self, W::KIND, plans)
    }
}
