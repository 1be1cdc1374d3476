//! Launch templates as the org policy checker needs them: the instance tags of a template
//! version, and the Auto Scaling groups that launch from a template (read-only).
//!
//! Auto Scaling checks `ec2:RunInstances` under the caller's identity when a group is created
//! or updated with a launch template (Amazon EC2 Auto Scaling User Guide, "Control Amazon EC2
//! launch template usage in Auto Scaling"), so the instance tags the SCP looks for must be in the
//! template's tag specifications (`LaunchTemplateData.TagSpecifications`, resource type
//! `instance`: EC2 API Reference, ResponseLaunchTemplateData).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::ResourceType;

use super::{AwsScope, classify};
use crate::cloud::CloudError;
use crate::policy::event::TemplateRef;
use crate::policy::org::Templates;

impl Templates for AwsScope {
    async fn instance_tags(&self, template: &TemplateRef) -> Result<Option<BTreeMap<String, String>>, CloudError> {
        instance_tags(self, template).await
    }

    async fn groups_with_templates(&self) -> Result<Vec<(String, TemplateRef)>, CloudError> {
        groups_with_templates(self).await
    }
}

/// The instance tags of a template version (`$Default` when the reference names none);
/// `None` when the template or version does not exist.
async fn instance_tags(
    scope: &AwsScope,
    template: &TemplateRef,
) -> Result<Option<BTreeMap<String, String>>, CloudError> {
    let mut req = scope
        .ec2
        .describe_launch_template_versions()
        .versions(template.version.clone().unwrap_or_else(|| "$Default".into()));
    req = match (&template.id, &template.name) {
        (Some(id), _) => req.launch_template_id(id),
        (None, Some(name)) => req.launch_template_name(name),
        (None, None) => return Ok(None),
    };
    let out = match req.send().await {
        Ok(o) => o,
        Err(e) => {
            let err = classify("DescribeLaunchTemplateVersions", e);
            return if err.kind == crate::cloud::ErrorKind::NotFound {
                Ok(None)
            } else {
                Err(err)
            };
        }
    };
    let Some(version) = out.launch_template_versions().first() else {
        return Ok(None);
    };
    let mut tags = BTreeMap::new();
    for spec in version
        .launch_template_data()
        .map(|d| d.tag_specifications())
        .unwrap_or_default()
    {
        if spec.resource_type() == Some(&ResourceType::Instance) {
            for t in spec.tags() {
                if let (Some(k), Some(v)) = (t.key(), t.value()) {
                    tags.insert(k.to_string(), v.to_string());
                }
            }
        }
    }
    Ok(Some(tags))
}

/// Every Auto Scaling group in the scope that launches from a launch template (directly or
/// through a mixed instances policy): (group name, template).
async fn groups_with_templates(scope: &AwsScope) -> Result<Vec<(String, TemplateRef)>, CloudError> {
    let mut out = Vec::new();
    let mut pages = scope
        .asg
        .describe_auto_scaling_groups()
        .max_records(100)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("DescribeAutoScalingGroups", e))?;
        for g in page.auto_scaling_groups() {
            let spec = g.launch_template().or_else(|| {
                g.mixed_instances_policy()
                    .and_then(|m| m.launch_template())
                    .and_then(|l| l.launch_template_specification())
            });
            if let (Some(name), Some(spec)) = (g.auto_scaling_group_name(), spec) {
                out.push((
                    name.to_string(),
                    TemplateRef {
                        id: spec.launch_template_id().map(String::from),
                        name: spec.launch_template_name().map(String::from),
                        version: spec.version().map(String::from),
                    },
                ));
            }
        }
    }
    Ok(out)
}
