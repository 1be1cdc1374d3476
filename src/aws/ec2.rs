//! EC2 through the SDK: tagged instances, stop/start, tags.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_ec2::types::{DeviceType, Filter, InstanceLifecycleType, InstanceStateName, SpotInstanceType, Tag};
use chrono::DateTime;

use super::{AwsScope, classify};
use crate::cloud::{CloudError, InstanceApi};
use crate::model::{Instance, InstanceState, Market};

fn state(s: Option<&InstanceStateName>) -> InstanceState {
    match s {
        Some(InstanceStateName::Pending) => InstanceState::Pending,
        Some(InstanceStateName::Running) => InstanceState::Running,
        Some(InstanceStateName::Stopping) => InstanceState::Stopping,
        Some(InstanceStateName::Stopped) => InstanceState::Stopped,
        _ => InstanceState::Other,
    }
}

/// Maps one described instance to offhours' view; `spot` gives each spot request's type.
pub(crate) fn to_instance(i: &aws_sdk_ec2::types::Instance, spot: &HashMap<String, SpotInstanceType>) -> Instance {
    let market = match (i.instance_lifecycle(), i.spot_instance_request_id()) {
        (Some(InstanceLifecycleType::Spot), Some(req)) => match spot.get(req) {
            Some(SpotInstanceType::Persistent) => Market::PersistentSpot,
            _ => Market::OneTimeSpot,
        },
        (Some(InstanceLifecycleType::Spot), None) => Market::OneTimeSpot,
        _ => Market::OnDemand,
    };
    Instance {
        id: i.instance_id().unwrap_or_default().to_string(),
        state: state(i.state().and_then(|s| s.name())),
        launched: i.launch_time().and_then(|t| DateTime::from_timestamp(t.secs(), 0)),
        tags: i
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
            .collect(),
        market,
        instance_store_root: i.root_device_type() == Some(&DeviceType::InstanceStore),
        hibernation: i.hibernation_options().and_then(|h| h.configured()).unwrap_or(false),
        instance_type: i.instance_type().map(|t| t.as_str().to_string()),
    }
}

impl InstanceApi for AwsScope {
    async fn list_instances(&self, tag_keys: &[String]) -> Result<Vec<Instance>, CloudError> {
        let mut filters = vec![
            Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .values("stopping")
                .values("stopped")
                .build(),
        ];
        if !tag_keys.is_empty() {
            filters.push(
                Filter::builder()
                    .name("tag-key")
                    .set_values(Some(tag_keys.to_vec()))
                    .build(),
            );
        }
        // Each page is mapped to offhours' compact view at once and the SDK's structures
        // dropped: peak memory is one page (at most 1,000 instances), not the whole region.
        let mut out: Vec<Instance> = Vec::new();
        let mut spot_requests: Vec<(usize, String)> = Vec::new();
        let none = HashMap::new();
        let mut pages = self
            .ec2
            .describe_instances()
            .set_filters(Some(filters))
            .max_results(1000)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("DescribeInstances", &e))?;
            for i in page.reservations().iter().flat_map(|r| r.instances()) {
                if let (Some(InstanceLifecycleType::Spot), Some(req)) =
                    (i.instance_lifecycle(), i.spot_instance_request_id())
                {
                    spot_requests.push((out.len(), req.to_string()));
                }
                out.push(to_instance(i, &none));
            }
        }
        // One call for the type (one-time or persistent) of every spot request seen.
        if !spot_requests.is_empty() {
            let mut persistent = std::collections::HashSet::new();
            let mut pages = self
                .ec2
                .describe_spot_instance_requests()
                .set_spot_instance_request_ids(Some(spot_requests.iter().map(|(_, r)| r.clone()).collect()))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| classify("DescribeSpotInstanceRequests", &e))?;
                for r in page.spot_instance_requests() {
                    if let (Some(id), Some(SpotInstanceType::Persistent)) = (r.spot_instance_request_id(), r.r#type()) {
                        persistent.insert(id.to_string());
                    }
                }
            }
            for (at, req) in &spot_requests {
                if persistent.contains(req) {
                    out[*at].market = Market::PersistentSpot;
                }
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out.dedup_by(|a, b| a.id == b.id);
        Ok(out)
    }

    async fn stop_instances(&self, ids: &[String], hibernate: bool) -> Result<(), CloudError> {
        let mut req = self.ec2.stop_instances().set_instance_ids(Some(ids.to_vec()));
        if hibernate {
            req = req.hibernate(true);
        }
        req.send().await.map_err(|e| classify("StopInstances", &e))?;
        Ok(())
    }

    async fn start_instances(&self, ids: &[String]) -> Result<(), CloudError> {
        self.ec2
            .start_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(|e| classify("StartInstances", &e))?;
        Ok(())
    }

    async fn tag_instances(&self, ids: &[String], tags: &BTreeMap<String, String>) -> Result<(), CloudError> {
        let tags: Vec<Tag> = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        self.ec2
            .create_tags()
            .set_resources(Some(ids.to_vec()))
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| classify("CreateTags", &e))?;
        Ok(())
    }

    async fn untag_instances(&self, ids: &[String], keys: &[String]) -> Result<(), CloudError> {
        let tags: Vec<Tag> = keys.iter().map(|k| Tag::builder().key(k).build()).collect();
        self.ec2
            .delete_tags()
            .set_resources(Some(ids.to_vec()))
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| classify("DeleteTags", &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{HibernationOptions, InstanceState as Ec2State};

    fn described() -> aws_sdk_ec2::types::builders::InstanceBuilder {
        aws_sdk_ec2::types::Instance::builder()
            .instance_id("i-1")
            .state(Ec2State::builder().name(InstanceStateName::Running).build())
            .tags(Tag::builder().key("Schedule").value("office-hours").build())
    }

    #[test]
    fn instance_store_roots_spot_requests_and_hibernation_are_read() {
        let spot = HashMap::from([
            ("sir-p".to_string(), SpotInstanceType::Persistent),
            ("sir-o".to_string(), SpotInstanceType::OneTime),
        ]);
        let store = to_instance(&described().root_device_type(DeviceType::InstanceStore).build(), &spot);
        assert!(store.instance_store_root);
        assert_eq!(store.market, Market::OnDemand);
        assert_eq!(store.tags["Schedule"], "office-hours");
        let ebs = to_instance(&described().root_device_type(DeviceType::Ebs).build(), &spot);
        assert!(!ebs.instance_store_root);
        let spot_of = |req: &str| {
            to_instance(
                &described()
                    .instance_lifecycle(InstanceLifecycleType::Spot)
                    .spot_instance_request_id(req)
                    .build(),
                &spot,
            )
            .market
        };
        assert_eq!(spot_of("sir-p"), Market::PersistentSpot);
        assert_eq!(spot_of("sir-o"), Market::OneTimeSpot);
        assert_eq!(
            spot_of("sir-unknown"),
            Market::OneTimeSpot,
            "unknown request type: assume it would be lost"
        );
        let hib = to_instance(
            &described()
                .hibernation_options(HibernationOptions::builder().configured(true).build())
                .build(),
            &spot,
        );
        assert!(hib.hibernation);
        assert_eq!(hib.state, InstanceState::Running);
    }
}
