//! An in-memory cloud for controller tests and benchmarks: stateful, with injectable
//! failures and per-call latency. It follows AWS's semantics for what offhours uses.

use crate::fixtures::apply_group_change;
use crate::kind::group::GroupChange;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{ActionFailure, Cloud, CloudError, ErrorKind, GroupApi, InstanceApi, ScopeHandle};
use crate::capacity::Capacity;
use crate::compile::ScheduledAction;
use crate::config::Config;
use crate::kind::database::DatabaseApi;
use crate::model::{Database, DbKind, Group, Instance, InstanceState, Scope};

/// The fake cloud's state; tests reach in to set it up and to check it.
#[derive(Debug, Default)]
pub struct FakeState {
    /// Groups per scope.
    pub groups: BTreeMap<Scope, Vec<Group>>,
    /// Scopes whose credentials cannot be had.
    pub unreachable: BTreeSet<Scope>,
    /// Scopes whose listing fails (e.g. throttled past the retries).
    pub failing_list: BTreeSet<Scope>,
    /// Kinds whose listing fails in every scope (throttled).
    pub failing_kinds: BTreeSet<crate::kind::ResourceType>,
    /// Groups on which registering actions fails.
    pub failing_puts: BTreeSet<String>,
    /// Groups that are listed but gone by the time they are written to (deleted mid-pass).
    pub ghosts: BTreeSet<String>,
    /// Instances per scope.
    pub instances: BTreeMap<Scope, Vec<Instance>>,
    /// Databases (DB instances and clusters) by scope.
    pub databases: BTreeMap<Scope, Vec<(DbKind, Database)>>,
    /// Instances with stop protection: a stop call that names one fails as a whole.
    pub protected: BTreeSet<String>,
    /// Calls made, by operation.
    pub calls: BTreeMap<&'static str, u64>,
    /// What `remediation` answers.
    pub remediation: super::RemediationScope,
}

/// An in-memory cloud.
#[derive(Debug, Clone, Default)]
pub struct FakeCloud {
    /// Shared state.
    pub state: Arc<Mutex<FakeState>>,
    /// Added to every call.
    pub latency: Option<Duration>,
    /// Calls per second each account allows; callers beyond it wait (as the SDK's
    /// retries make them), so the rate is never exceeded.
    pub rate_per_account: Option<f64>,
    /// When each account's next call may go out (for `rate_per_account`).
    pub slots: Arc<Mutex<BTreeMap<String, tokio::time::Instant>>>,
}

/// One scope of the fake cloud.
#[derive(Debug, Clone)]
pub struct FakeScope {
    cloud: FakeCloud,
    scope: Scope,
}

impl FakeCloud {
    /// Adds a group to a scope.
    pub fn add_group(&self, scope: &Scope, mut g: Group) {
        if g.arn.is_empty() {
            g.arn = format!(
                "arn:aws:autoscaling:{}:{}:autoScalingGroup:00000000-0000-4000-8000-000000000000:autoScalingGroupName/{}",
                scope.region, scope.account, g.name
            );
        }
        self.state
            .lock()
            .expect("lock")
            .groups
            .entry(scope.clone())
            .or_default()
            .push(g);
    }

    /// Adds an instance to a scope.
    pub fn add_instance(&self, scope: &Scope, i: Instance) {
        self.state
            .lock()
            .expect("lock")
            .instances
            .entry(scope.clone())
            .or_default()
            .push(i);
    }

    /// Adds a database.
    pub fn add_database(&self, scope: &Scope, kind: DbKind, d: Database) {
        self.state
            .lock()
            .expect("lock")
            .databases
            .entry(scope.clone())
            .or_default()
            .push((kind, d));
    }

    /// A database's current state.
    #[must_use]
    pub fn database(&self, scope: &Scope, kind: DbKind, id: &str) -> Option<Database> {
        let st = self.state.lock().expect("lock");
        st.databases
            .get(scope)?
            .iter()
            .find(|(k, d)| *k == kind && d.id == id)
            .map(|(_, d)| d.clone())
    }

    /// An instance's current state.
    #[must_use]
    pub fn instance(&self, scope: &Scope, id: &str) -> Option<Instance> {
        let st = self.state.lock().expect("lock");
        st.instances.get(scope)?.iter().find(|i| i.id == id).cloned()
    }

    /// A group's current state.
    #[must_use]
    pub fn group(&self, scope: &Scope, name: &str) -> Option<Group> {
        let st = self.state.lock().expect("lock");
        st.groups.get(scope)?.iter().find(|g| g.name == name).cloned()
    }

    /// Calls whose operation changes something.
    #[must_use]
    pub fn mutating_calls(&self) -> u64 {
        let st = self.state.lock().expect("lock");
        st.calls
            .iter()
            .filter(|(op, _)| crate::failure::is_mutating(op))
            .map(|(_, n)| n)
            .sum()
    }
}

impl FakeScope {
    async fn call<T>(&self, op: &'static str, f: impl FnOnce(&mut FakeState, &Scope) -> T) -> T {
        if let Some(rate) = self.cloud.rate_per_account {
            let at = {
                let mut slots = self.cloud.slots.lock().expect("lock");
                let now = tokio::time::Instant::now();
                let slot = slots.entry(self.scope.account.clone()).or_insert(now);
                let at = (*slot).max(now);
                *slot = at + Duration::from_secs_f64(1.0 / rate);
                at
            };
            tokio::time::sleep_until(at).await;
        }
        if let Some(d) = self.cloud.latency {
            tokio::time::sleep(d).await;
        }
        let mut st = self.cloud.state.lock().expect("lock");
        *st.calls.entry(op).or_default() += 1;
        f(&mut st, &self.scope)
    }

    async fn with_group<T>(
        &self,
        op: &'static str,
        group: &str,
        f: impl FnOnce(&mut Group) -> T,
    ) -> Result<T, CloudError> {
        self.call(op, |st, scope| {
            let g = st
                .groups
                .get_mut(scope)
                .and_then(|gs| gs.iter_mut().find(|g| g.name == group));
            g.map(f).ok_or_else(|| CloudError {
                operation: op.into(),
                kind: ErrorKind::NotFound,
                message: format!("group {group} not found"),
                source: None,
            })
        })
        .await
    }
}

impl GroupApi for FakeScope {
    async fn list_groups(&self) -> Result<Vec<Group>, CloudError> {
        self.call("DescribeAutoScalingGroups", |st, scope| {
            if st.failing_list.contains(scope)
                || st.failing_kinds.contains(&crate::kind::ResourceType::AutoScalingGroup)
            {
                return Err(CloudError {
                    operation: "DescribeAutoScalingGroups".into(),
                    kind: ErrorKind::Throttled,
                    message: "Rate exceeded".into(),
                    source: None,
                });
            }
            Ok(st.groups.get(scope).cloned().unwrap_or_default())
        })
        .await
    }

    async fn put_scheduled_actions(
        &self,
        group: &str,
        actions: &[ScheduledAction],
    ) -> Result<Vec<ActionFailure>, CloudError> {
        let failing = self.cloud.state.lock().expect("lock").failing_puts.contains(group);
        let mut failed = Vec::new();
        for chunk in actions.chunks(crate::kind::group::ACTIONS_PER_CALL) {
            failed.extend(
                self.with_group("BatchPutScheduledUpdateGroupAction", group, |g| {
                    if failing {
                        return chunk
                            .iter()
                            .map(|a| ActionFailure {
                                name: a.name.clone(),
                                code: Some("ValidationError".into()),
                                message: "injected".into(),
                            })
                            .collect();
                    }
                    let put = GroupChange::PutScheduledActions {
                        actions: chunk.to_vec(),
                    };
                    apply_group_change(g, &put);
                    Vec::new()
                })
                .await?,
            );
        }
        Ok(failed)
    }

    async fn delete_scheduled_actions(&self, group: &str, names: &[String]) -> Result<Vec<ActionFailure>, CloudError> {
        for chunk in names.chunks(crate::kind::group::ACTIONS_PER_CALL) {
            let delete = GroupChange::DeleteScheduledActions { names: chunk.to_vec() };
            self.with_group("BatchDeleteScheduledAction", group, |g| apply_group_change(g, &delete))
                .await?;
        }
        Ok(Vec::new())
    }

    async fn set_capacity(&self, group: &str, capacity: Capacity) -> Result<(), CloudError> {
        let set = GroupChange::SetCapacity { capacity };
        self.with_group("UpdateAutoScalingGroup", group, |g| apply_group_change(g, &set))
            .await
    }

    async fn tag_groups(&self, tags: &[(String, BTreeMap<String, String>)]) -> Result<(), CloudError> {
        // All or nothing: a group that does not exist fails the whole call.
        self.call("CreateOrUpdateTags", |st, scope| {
            let ghosts = st.ghosts.clone();
            let groups = st.groups.entry(scope.clone()).or_default();
            let gone = |n: &String| ghosts.contains(n) || !groups.iter().any(|g| g.name == *n);
            if let Some((missing, _)) = tags.iter().find(|(n, _)| gone(n)) {
                return Err(CloudError {
                    operation: "CreateOrUpdateTags".into(),
                    kind: ErrorKind::NotFound,
                    message: format!("group {missing} not found"),
                    source: None,
                });
            }
            for (name, t) in tags {
                if let Some(g) = groups.iter_mut().find(|g| g.name == *name) {
                    apply_group_change(g, &GroupChange::SetTags { tags: t.clone() });
                }
            }
            Ok(())
        })
        .await
    }

    async fn remove_tags(&self, group: &str, keys: &[String]) -> Result<(), CloudError> {
        let remove = GroupChange::RemoveTags { keys: keys.to_vec() };
        self.with_group("DeleteTags", group, |g| apply_group_change(g, &remove))
            .await
    }
}

impl FakeScope {
    async fn with_instances(
        &self,
        op: &'static str,
        ids: &[String],
        f: impl Fn(&mut Instance),
    ) -> Result<(), CloudError> {
        self.call(op, |st, scope| {
            if op == "StopInstances" && ids.iter().any(|i| st.protected.contains(i)) {
                return Err(CloudError {
                    operation: op.into(),
                    kind: ErrorKind::NotPermitted,
                    message: "OperationNotPermitted: stop protection".into(),
                    source: None,
                });
            }
            let all = st.instances.entry(scope.clone()).or_default();
            if let Some(missing) = ids.iter().find(|id| !all.iter().any(|i| &i.id == *id)) {
                return Err(CloudError {
                    operation: op.into(),
                    kind: ErrorKind::NotFound,
                    message: format!("{missing} not found"),
                    source: None,
                });
            }
            all.iter_mut().filter(|i| ids.contains(&i.id)).for_each(f);
            Ok(())
        })
        .await
    }
}

impl InstanceApi for FakeScope {
    async fn list_instances(&self, tag_keys: &[String]) -> Result<Vec<Instance>, CloudError> {
        self.call("DescribeInstances", |st, scope| {
            if st.failing_list.contains(scope) || st.failing_kinds.contains(&crate::kind::ResourceType::Instance) {
                return Err(CloudError {
                    operation: "DescribeInstances".into(),
                    kind: ErrorKind::Throttled,
                    message: "Rate exceeded".into(),
                    source: None,
                });
            }
            Ok(st
                .instances
                .get(scope)
                .map(|v| {
                    v.iter()
                        .filter(|i| tag_keys.is_empty() || tag_keys.iter().any(|k| i.tags.contains_key(k)))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default())
        })
        .await
    }

    async fn stop_instances(&self, ids: &[String], _hibernate: bool) -> Result<(), CloudError> {
        self.with_instances("StopInstances", ids, |i| {
            if i.state == InstanceState::Running {
                i.state = InstanceState::Stopped;
            }
        })
        .await
    }

    async fn start_instances(&self, ids: &[String]) -> Result<(), CloudError> {
        self.with_instances("StartInstances", ids, |i| {
            if i.state == InstanceState::Stopped {
                i.state = InstanceState::Running;
            }
        })
        .await
    }

    async fn tag_instances(&self, ids: &[String], tags: &BTreeMap<String, String>) -> Result<(), CloudError> {
        self.with_instances("CreateTags", ids, |i| i.tags.extend(tags.clone()))
            .await
    }

    async fn untag_instances(&self, ids: &[String], keys: &[String]) -> Result<(), CloudError> {
        self.with_instances("DeleteTags", ids, |i| i.tags.retain(|k, _| !keys.contains(k)))
            .await
    }
}

impl Cloud for FakeCloud {
    type Scope = FakeScope;

    async fn remediation(&self, _cfg: &Config) -> Result<super::RemediationScope, CloudError> {
        Ok(self.state.lock().expect("lock").remediation.clone())
    }

    async fn scopes(&self, _cfg: &Config) -> Result<Vec<ScopeHandle<FakeScope>>, CloudError> {
        let st = self.state.lock().expect("lock");
        let all: BTreeSet<Scope> = st
            .groups
            .keys()
            .chain(st.instances.keys())
            .chain(st.databases.keys())
            .chain(&st.unreachable)
            .cloned()
            .collect();
        Ok(all
            .into_iter()
            .map(|scope| {
                let handle = if st.unreachable.contains(&scope) {
                    Err(CloudError {
                        operation: "AssumeRole".into(),
                        kind: ErrorKind::AccessDenied,
                        message: format!("cannot assume the role in {}", scope.account),
                        source: None,
                    })
                } else {
                    Ok(FakeScope {
                        cloud: self.clone(),
                        scope: scope.clone(),
                    })
                };
                (scope, handle)
            })
            .collect())
    }
}

impl FakeScope {
    async fn with_database<T>(
        &self,
        op: &'static str,
        kind: DbKind,
        id: &str,
        f: impl FnOnce(&mut Database) -> Result<T, CloudError>,
    ) -> Result<T, CloudError> {
        self.call(op, |st, scope| {
            let d = st
                .databases
                .get_mut(scope)
                .and_then(|ds| ds.iter_mut().find(|(k, d)| *k == kind && d.id == id));
            match d {
                Some((_, d)) => f(d),
                None => Err(CloudError {
                    operation: op.into(),
                    kind: ErrorKind::NotFound,
                    message: format!("DBInstanceNotFound: {id} not found"),
                    source: None,
                }),
            }
        })
        .await
    }
}

/// RDS's state rule for stop and start, as moto and AWS apply it: a stop needs `available`,
/// a start needs `stopped` ("InvalidDBInstanceState", Amazon RDS API Reference,
/// StopDBInstance and StartDBInstance, Errors). The fake then moves straight to the end
/// state.
fn power(d: &mut Database, op: &'static str, from: &str, to: &str) -> Result<(), CloudError> {
    if d.status != from {
        return Err(CloudError {
            operation: op.into(),
            kind: ErrorKind::Invalid,
            message: format!("InvalidDBInstanceState: {} is {}, not {from}", d.id, d.status),
            source: None,
        });
    }
    d.status = to.into();
    Ok(())
}

impl DatabaseApi for FakeScope {
    async fn list_databases(&self, kind: DbKind) -> Result<Vec<Database>, CloudError> {
        let op = match kind {
            DbKind::Instance => "DescribeDBInstances",
            DbKind::Cluster => "DescribeDBClusters",
        };
        let failing = match kind {
            DbKind::Instance => crate::kind::ResourceType::DbInstance,
            DbKind::Cluster => crate::kind::ResourceType::DbCluster,
        };
        self.call(op, |st, scope| {
            if st.failing_list.contains(scope) || st.failing_kinds.contains(&failing) {
                return Err(CloudError {
                    operation: op.into(),
                    kind: ErrorKind::Throttled,
                    message: "ThrottlingException: Rate exceeded".into(),
                    source: None,
                });
            }
            Ok(st
                .databases
                .get(scope)
                .map(|v| v.iter().filter(|(k, _)| *k == kind).map(|(_, d)| d.clone()).collect())
                .unwrap_or_default())
        })
        .await
    }

    async fn stop_database(&self, kind: DbKind, id: &str) -> Result<(), CloudError> {
        let op = if kind == DbKind::Instance {
            "StopDBInstance"
        } else {
            "StopDBCluster"
        };
        self.with_database(op, kind, id, |d| power(d, op, "available", "stopped"))
            .await
    }

    async fn start_database(&self, kind: DbKind, id: &str) -> Result<(), CloudError> {
        let op = if kind == DbKind::Instance {
            "StartDBInstance"
        } else {
            "StartDBCluster"
        };
        self.with_database(op, kind, id, |d| power(d, op, "stopped", "available"))
            .await
    }

    async fn tag_database(&self, kind: DbKind, id: &str, tags: &BTreeMap<String, String>) -> Result<(), CloudError> {
        self.with_database("AddTagsToResource", kind, id, |d| {
            d.tags.extend(tags.clone());
            Ok(())
        })
        .await
    }

    async fn untag_database(&self, kind: DbKind, id: &str, keys: &[String]) -> Result<(), CloudError> {
        self.with_database("RemoveTagsFromResource", kind, id, |d| {
            d.tags.retain(|k, _| !keys.contains(k));
            Ok(())
        })
        .await
    }
}
