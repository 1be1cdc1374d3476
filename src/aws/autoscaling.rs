//! Auto Scaling through the SDK: groups, their tags and scheduled actions.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_autoscaling::types::{ScheduledUpdateGroupActionRequest, Tag};
use aws_smithy_types::DateTime as AwsTime;
use chrono::{DateTime, Utc};

use super::{AwsScope, classify};
use crate::capacity::Capacity;
use crate::cloud::{ActionFailure, CloudError, GroupApi};
use crate::compile::ScheduledAction;
use crate::model::{Group, ObservedAction};

/// AWS accepts at most this many actions per batch call (see the constant's source).
pub const BATCH: usize = crate::kind::group::ACTIONS_PER_CALL;

fn to_aws(t: DateTime<Utc>) -> AwsTime {
    AwsTime::from_secs(t.timestamp())
}

fn from_aws(t: &AwsTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

impl GroupApi for AwsScope {
    async fn list_groups(&self) -> Result<Vec<Group>, CloudError> {
        let mut groups = Vec::new();
        // 100 a page, AWS's maximum ("The maximum value is 100", API Reference,
        // DescribeAutoScalingGroups, MaxRecords), and without the instance lists offhours
        // never reads ("IncludeInstances: Specifies whether to include information about
        // Amazon EC2 instances in the response", same page).
        let mut pages = self
            .asg
            .describe_auto_scaling_groups()
            .max_records(100)
            .include_instances(false)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("DescribeAutoScalingGroups", e))?;
            for g in page.auto_scaling_groups() {
                let tags: BTreeMap<String, String> = g
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
                    .collect();
                groups.push(Group {
                    name: g.auto_scaling_group_name().unwrap_or_default().to_string(),
                    arn: g.auto_scaling_group_arn().unwrap_or_default().to_string(),
                    capacity: Capacity {
                        min: g.min_size().unwrap_or_default(),
                        max: g.max_size().unwrap_or_default(),
                        desired: g.desired_capacity().unwrap_or_default(),
                    },
                    tags,
                    actions: Vec::new(),
                    created: g.created_time().and_then(from_aws),
                    // A mixed instances policy's first override (AutoScalingGroup
                    // `MixedInstancesPolicy.LaunchTemplate.Overrides[].InstanceType`, Amazon EC2
                    // Auto Scaling API Reference, LaunchTemplateOverrides); else the controller
                    // reads its members' `InstanceType` from the instance listing.
                    instance_type: g
                        .mixed_instances_policy()
                        .and_then(|m| m.launch_template())
                        .and_then(|t| t.overrides().first())
                        .and_then(|o| o.instance_type())
                        .map(String::from),
                });
            }
        }
        // One region-wide listing of scheduled actions instead of one call per group, 100 a
        // page ("The default value is 50 and the maximum value is 100", API Reference,
        // DescribeScheduledActions, MaxRecords), following NextToken to the end.
        let mut by_group: HashMap<String, Vec<ObservedAction>> = HashMap::new();
        let mut pages = self
            .asg
            .describe_scheduled_actions()
            .max_records(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("DescribeScheduledActions", e))?;
            for a in page.scheduled_update_group_actions() {
                let Some(group) = a.auto_scaling_group_name() else {
                    continue;
                };
                by_group.entry(group.to_string()).or_default().push(ObservedAction {
                    name: a.scheduled_action_name().unwrap_or_default().to_string(),
                    recurrence: a.recurrence().map(String::from),
                    time_zone: a.time_zone().map(String::from),
                    start_time: a.start_time().and_then(from_aws),
                    end_time: a.end_time().and_then(from_aws),
                    min: a.min_size(),
                    max: a.max_size(),
                    desired: a.desired_capacity(),
                });
            }
        }
        for g in &mut groups {
            g.actions = by_group.remove(&g.name).unwrap_or_default();
            g.actions.sort_by(|a, b| a.name.cmp(&b.name));
        }
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(groups)
    }

    async fn put_scheduled_actions(
        &self,
        group: &str,
        actions: &[ScheduledAction],
    ) -> Result<Vec<ActionFailure>, CloudError> {
        let mut failed = Vec::new();
        for chunk in actions.chunks(BATCH) {
            let requests = chunk
                .iter()
                .map(|a| {
                    ScheduledUpdateGroupActionRequest::builder()
                        .scheduled_action_name(&a.name)
                        .set_recurrence(a.recurrence.clone())
                        .set_time_zone(a.time_zone.clone())
                        .set_start_time(a.start_time.map(to_aws))
                        .set_end_time(a.end_time.map(to_aws))
                        .min_size(a.capacity.min)
                        .max_size(a.capacity.max)
                        .desired_capacity(a.capacity.desired)
                        .build()
                })
                .collect::<Vec<_>>();
            let out = self
                .asg
                .batch_put_scheduled_update_group_action()
                .auto_scaling_group_name(group)
                .set_scheduled_update_group_actions(Some(requests))
                .send()
                .await
                .map_err(|e| classify("BatchPutScheduledUpdateGroupAction", e))?;
            failed.extend(
                out.failed_scheduled_update_group_actions()
                    .iter()
                    .map(|f| ActionFailure {
                        name: f.scheduled_action_name().unwrap_or_default().to_string(),
                        code: f.error_code().map(String::from),
                        message: f.error_message().unwrap_or_default().to_string(),
                    }),
            );
        }
        Ok(failed)
    }

    async fn delete_scheduled_actions(&self, group: &str, names: &[String]) -> Result<Vec<ActionFailure>, CloudError> {
        let mut failed = Vec::new();
        for chunk in names.chunks(BATCH) {
            let out = self
                .asg
                .batch_delete_scheduled_action()
                .auto_scaling_group_name(group)
                .set_scheduled_action_names(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| classify("BatchDeleteScheduledAction", e))?;
            failed.extend(
                out.failed_scheduled_actions()
                    .iter()
                    // Already gone is what we wanted.
                    .filter(|f| {
                        !f.error_message()
                            .unwrap_or_default()
                            .to_ascii_lowercase()
                            .contains("not found")
                    })
                    .map(|f| ActionFailure {
                        name: f.scheduled_action_name().unwrap_or_default().to_string(),
                        code: f.error_code().map(String::from),
                        message: f.error_message().unwrap_or_default().to_string(),
                    }),
            );
        }
        Ok(failed)
    }

    async fn set_capacity(&self, group: &str, c: Capacity) -> Result<(), CloudError> {
        self.asg
            .update_auto_scaling_group()
            .auto_scaling_group_name(group)
            .min_size(c.min)
            .max_size(c.max)
            .desired_capacity(c.desired)
            .send()
            .await
            .map_err(|e| classify("UpdateAutoScalingGroup", e))?;
        Ok(())
    }

    async fn tag_groups(&self, tags: &[(String, BTreeMap<String, String>)]) -> Result<(), CloudError> {
        // One call may name many groups: each Tag carries its own ResourceId (API Reference,
        // CreateOrUpdateTags: "Tags.member.N: One or more tags"; Tag: "ResourceId: The name of
        // the Auto Scaling group").
        let tags = tags
            .iter()
            .flat_map(|(group, tags)| {
                tags.iter().map(move |(k, v)| {
                    Tag::builder()
                        .resource_id(group)
                        .resource_type("auto-scaling-group")
                        .key(k)
                        .value(v)
                        .propagate_at_launch(false)
                        .build()
                })
            })
            .collect::<Vec<_>>();
        self.asg
            .create_or_update_tags()
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| classify("CreateOrUpdateTags", e))?;
        Ok(())
    }

    async fn remove_tags(&self, group: &str, keys: &[String]) -> Result<(), CloudError> {
        let tags = keys
            .iter()
            .map(|k| {
                Tag::builder()
                    .resource_id(group)
                    .resource_type("auto-scaling-group")
                    .key(k)
                    .build()
            })
            .collect::<Vec<_>>();
        self.asg
            .delete_tags()
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| classify("DeleteTags", e))?;
        Ok(())
    }
}
