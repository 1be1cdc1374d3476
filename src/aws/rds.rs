//! RDS through the SDK: DB instances and Aurora DB clusters listed with their tags, stopped
//! and started one call per database, tagged by ARN.

use std::collections::BTreeMap;

use aws_sdk_rds::types::Tag;

use super::{AwsScope, classify};
use crate::failure::{CloudError, ErrorKind};
use crate::kind::database::DatabaseApi;
use crate::model::{Database, DbKind};

// DescribeDBInstances and DescribeDBClusters also list other services' databases ("This
// operation can also return information for Amazon Neptune DB instances and Amazon
// DocumentDB instances", Amazon RDS API Reference): offhours leaves out their engines
// (`model::OTHER_ENGINES`).

fn tags(list: &[Tag]) -> BTreeMap<String, String> {
    list.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
        .collect()
}

fn time(t: Option<&aws_sdk_rds::primitives::DateTime>) -> Option<chrono::DateTime<chrono::Utc>> {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

impl AwsScope {
    fn arn(&self, kind: DbKind, id: &str, operation: &str) -> Result<String, CloudError> {
        self.rds_arns
            .lock()
            .ok()
            .and_then(|m| m.get(&(kind, id.to_string())).cloned())
            .ok_or_else(|| CloudError {
                operation: operation.into(),
                kind: ErrorKind::NotFound,
                message: format!("database {id} was not in the last listing"),
                source: None,
            })
    }

    async fn list_instances_of_rds(&self) -> Result<Vec<Database>, CloudError> {
        let mut out = Vec::new();
        // "MaxRecords ... Default: 100 Constraints: Minimum 20, maximum 100" (Amazon RDS API
        // Reference, DescribeDBInstances), following Marker to the end.
        let mut pages = self
            .rds
            .describe_db_instances()
            .max_records(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("DescribeDBInstances", e))?;
            for d in page.db_instances() {
                let engine = d.engine().unwrap_or_default().to_string();
                if crate::model::OTHER_ENGINES.iter().any(|o| engine.starts_with(o)) {
                    continue;
                }
                out.push(Database {
                    id: d.db_instance_identifier().unwrap_or_default().to_string(),
                    arn: d.db_instance_arn().unwrap_or_default().to_string(),
                    status: d.db_instance_status().unwrap_or_default().to_string(),
                    engine,
                    engine_mode: None,
                    class: d.db_instance_class().map(String::from),
                    cluster: d.db_cluster_identifier().map(String::from),
                    replica_of: d
                        .read_replica_source_db_instance_identifier()
                        .or(d.read_replica_source_db_cluster_identifier())
                        .map(String::from),
                    replicas: d
                        .read_replica_db_instance_identifiers()
                        .iter()
                        .chain(d.read_replica_db_cluster_identifiers())
                        .cloned()
                        .collect(),
                    multi_az: d.multi_az().unwrap_or(false),
                    global_cluster: None,
                    tags: tags(d.tag_list()),
                    created: time(d.instance_create_time()),
                    members: 0,
                });
            }
        }
        Ok(out)
    }

    async fn list_clusters_of_rds(&self) -> Result<Vec<Database>, CloudError> {
        let mut out = Vec::new();
        // An Aurora cluster's hours are its instances': RDS gives `DBClusterInstanceClass`
        // only for Multi-AZ DB clusters ("This setting is required to create a Multi-AZ DB
        // cluster", Amazon RDS API Reference, DBCluster), so an Aurora cluster is priced at
        // its writer's class (the member with `IsClusterWriter`, DBClusterMember), times its
        // members: stopping it stops "all the DB instances in your cluster" (Amazon Aurora
        // User Guide, Stopping and starting an Amazon Aurora DB cluster).
        let mut writers: Vec<(usize, String)> = Vec::new();
        // MaxRecords as for DescribeDBInstances (Amazon RDS API Reference, DescribeDBClusters).
        let mut pages = self.rds.describe_db_clusters().max_records(100).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("DescribeDBClusters", e))?;
            for c in page.db_clusters() {
                let engine = c.engine().unwrap_or_default().to_string();
                if crate::model::OTHER_ENGINES.iter().any(|o| engine.starts_with(o)) {
                    continue;
                }
                if c.db_cluster_instance_class().is_none()
                    && let Some(w) = c
                        .db_cluster_members()
                        .iter()
                        .find(|m| m.is_cluster_writer() == Some(true))
                        .and_then(|m| m.db_instance_identifier())
                {
                    writers.push((out.len(), w.to_string()));
                }
                out.push(Database {
                    id: c.db_cluster_identifier().unwrap_or_default().to_string(),
                    arn: c.db_cluster_arn().unwrap_or_default().to_string(),
                    status: c.status().unwrap_or_default().to_string(),
                    engine,
                    engine_mode: c.engine_mode().map(String::from),
                    class: c.db_cluster_instance_class().map(String::from),
                    cluster: None,
                    replica_of: c.replication_source_identifier().map(String::from),
                    replicas: c.read_replica_identifiers().to_vec(),
                    multi_az: c.multi_az().unwrap_or(false),
                    global_cluster: c.global_cluster_identifier().map(String::from),
                    tags: tags(c.tag_list()),
                    created: time(c.cluster_create_time()),
                    members: u32::try_from(c.db_cluster_members().len()).unwrap_or(u32::MAX),
                });
            }
        }
        if !writers.is_empty() {
            let classes: BTreeMap<String, String> = self
                .list_instances_of_rds()
                .await?
                .into_iter()
                .filter_map(|d| Some((d.id, d.class?)))
                .collect();
            for (i, w) in writers {
                out[i].class = classes.get(&w).cloned();
            }
        }
        Ok(out)
    }
}

impl DatabaseApi for AwsScope {
    async fn list_databases(&self, kind: DbKind) -> Result<Vec<Database>, CloudError> {
        let dbs = match kind {
            DbKind::Instance => self.list_instances_of_rds().await?,
            DbKind::Cluster => self.list_clusters_of_rds().await?,
        };
        if let Ok(mut m) = self.rds_arns.lock() {
            for d in &dbs {
                m.insert((kind, d.id.clone()), d.arn.clone());
            }
        }
        Ok(dbs)
    }

    async fn stop_database(&self, kind: DbKind, id: &str) -> Result<(), CloudError> {
        match kind {
            DbKind::Instance => self
                .rds
                .stop_db_instance()
                .db_instance_identifier(id)
                .send()
                .await
                .map(drop)
                .map_err(|e| classify("StopDBInstance", e)),
            DbKind::Cluster => self
                .rds
                .stop_db_cluster()
                .db_cluster_identifier(id)
                .send()
                .await
                .map(drop)
                .map_err(|e| classify("StopDBCluster", e)),
        }
    }

    async fn start_database(&self, kind: DbKind, id: &str) -> Result<(), CloudError> {
        match kind {
            DbKind::Instance => self
                .rds
                .start_db_instance()
                .db_instance_identifier(id)
                .send()
                .await
                .map(drop)
                .map_err(|e| classify("StartDBInstance", e)),
            DbKind::Cluster => self
                .rds
                .start_db_cluster()
                .db_cluster_identifier(id)
                .send()
                .await
                .map(drop)
                .map_err(|e| classify("StartDBCluster", e)),
        }
    }

    async fn tag_database(&self, kind: DbKind, id: &str, tags: &BTreeMap<String, String>) -> Result<(), CloudError> {
        let arn = self.arn(kind, id, "AddTagsToResource")?;
        let list = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        self.rds
            .add_tags_to_resource()
            .resource_name(arn)
            .set_tags(Some(list))
            .send()
            .await
            .map(drop)
            .map_err(|e| classify("AddTagsToResource", e))
    }

    async fn untag_database(&self, kind: DbKind, id: &str, keys: &[String]) -> Result<(), CloudError> {
        let arn = self.arn(kind, id, "RemoveTagsFromResource")?;
        self.rds
            .remove_tags_from_resource()
            .resource_name(arn)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map(drop)
            .map_err(|e| classify("RemoveTagsFromResource", e))
    }
}
