//! One pass: for every scope, list -> plan -> (apply) -> report. Scopes run concurrently
//! within the configured bound; a scope that fails is reported and skipped, and nothing is
//! applied in a scope whose inventory is incomplete.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tracing::{Instrument, info, info_span, warn};

use crate::cloud::{ActionFailure, Cloud, CloudError, GroupApi};
use crate::config::Config;
use crate::model::Scope;
use crate::plan::{GroupChange, GroupPlan, plan_group};
use crate::report::{ChangeReport, ChangeStatus, GROUP, Note, PassReport, ResourceError, ScopeReport};

/// How to run a pass.
#[derive(Debug, Clone, Copy)]
pub struct PassOptions {
    /// The moment to plan for.
    pub now: DateTime<Utc>,
    /// Apply the plan (`reconcile`) or only report it (`plan`).
    pub apply: bool,
}

/// Runs one pass over every scope.
pub async fn pass<C: Cloud>(cfg: &Config, cloud: &C, opts: PassOptions) -> PassReport {
    let mut report = PassReport::new(if opts.apply { "reconcile" } else { "plan" }, opts.now);
    let scopes = match cloud.scopes(cfg).await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "could not list the accounts to work in");
            report.scopes.push(ScopeReport {
                account: "*".into(),
                region: "*".into(),
                status: "failed",
                error: Some(e.to_string()),
                resources: 0,
            });
            report.finish();
            return report;
        }
    };
    let results: Vec<ScopeResult> = futures::stream::iter(scopes)
        .map(|(scope, api)| {
            let span = info_span!("scope", account = %scope.account, region = %scope.region);
            async move { work_scope(cfg, scope, api, opts).await }.instrument(span)
        })
        .buffer_unordered(cfg.concurrency.max(1))
        .collect()
        .await;
    for r in results {
        report.scopes.push(r.scope);
        report.changes.extend(r.changes);
        report.errors.extend(r.errors);
        report.notes.extend(r.notes);
    }
    report.finish();
    report
}

struct ScopeResult {
    scope: ScopeReport,
    changes: Vec<ChangeReport>,
    errors: Vec<ResourceError>,
    notes: Vec<Note>,
}

async fn work_scope<A: GroupApi>(
    cfg: &Config,
    scope: Scope,
    api: Result<A, CloudError>,
    opts: PassOptions,
) -> ScopeResult {
    let mut out = ScopeResult {
        scope: ScopeReport {
            account: scope.account.clone(),
            region: scope.region.clone(),
            status: "ok",
            error: None,
            resources: 0,
        },
        changes: Vec::new(),
        errors: Vec::new(),
        notes: Vec::new(),
    };
    let listed = match api {
        Ok(api) => api.list_groups().await.map(|g| (api, g)),
        Err(e) => Err(e),
    };
    let (api, groups) = match listed {
        Ok(x) => x,
        Err(e) => {
            warn!(error = %e, "scope skipped: its inventory could not be listed");
            out.scope.status = "failed";
            out.scope.error = Some(e.to_string());
            return out;
        }
    };
    out.scope.resources = groups.len();
    for g in &groups {
        let plan = plan_group(cfg, g, opts.now);
        record(&scope, &plan, &mut out);
        if opts.apply && !plan.steps.is_empty() {
            apply_group(&api, &scope, &plan, &mut out.changes).await;
        }
    }
    out
}

fn record(scope: &Scope, plan: &GroupPlan, out: &mut ScopeResult) {
    if let Some(e) = &plan.error {
        warn!(group = %plan.group, tag_value = ?plan.schedule, error = %e, "invalid schedule tag; group left as it is");
        out.errors.push(ResourceError {
            account: scope.account.clone(),
            region: scope.region.clone(),
            resource_type: GROUP,
            resource_id: plan.group.clone(),
            tag_value: plan.schedule.clone(),
            error: e.clone(),
        });
    }
    for n in &plan.notes {
        info!(group = %plan.group, note = %n);
        out.notes.push(Note {
            account: scope.account.clone(),
            region: scope.region.clone(),
            resource_type: GROUP,
            resource_id: plan.group.clone(),
            note: n.clone(),
        });
    }
    for s in &plan.steps {
        out.changes.push(ChangeReport {
            account: scope.account.clone(),
            region: scope.region.clone(),
            resource_type: GROUP,
            resource_id: plan.group.clone(),
            change: s.change.clone(),
            reason: s.reason.clone(),
            status: ChangeStatus::Planned,
            error: None,
        });
    }
}

fn failures(what: &str, f: &[ActionFailure]) -> Option<String> {
    (!f.is_empty()).then(|| {
        let list: Vec<String> = f
            .iter()
            .map(|x| format!("{} ({}: {})", x.name, x.code.as_deref().unwrap_or("error"), x.message))
            .collect();
        format!("{what} failed for {}", list.join("; "))
    })
}

/// Applies a group's steps in order; the first failure stops the rest, so a later step
/// never runs without the ones it depends on (e.g. no scale-down before the size is saved).
async fn apply_group<A: GroupApi>(api: &A, scope: &Scope, plan: &GroupPlan, changes: &mut [ChangeReport]) {
    let start = changes.len() - plan.steps.len();
    let mut failed = false;
    for (i, step) in plan.steps.iter().enumerate() {
        let report = &mut changes[start + i];
        if failed {
            report.status = ChangeStatus::NotAttempted;
            continue;
        }
        let g = plan.group.as_str();
        let result: Result<Option<String>, CloudError> = match &step.change {
            GroupChange::SaveCapacity { capacity } => api
                .set_tags(g, &[(crate::model::TAG_SAVED.to_string(), capacity.to_string())].into())
                .await
                .map(|()| None),
            GroupChange::PutScheduledActions { actions } => api
                .put_scheduled_actions(g, actions)
                .await
                .map(|f| failures("registering actions", &f)),
            GroupChange::DeleteScheduledActions { names } => api
                .delete_scheduled_actions(g, names)
                .await
                .map(|f| failures("deleting actions", &f)),
            GroupChange::SetCapacity { capacity } => api.set_capacity(g, *capacity).await.map(|()| None),
            GroupChange::SetTags { tags } => api.set_tags(g, tags).await.map(|()| None),
            GroupChange::RemoveTags { keys } => api.remove_tags(g, keys).await.map(|()| None),
        };
        let error = match result {
            Ok(None) => None,
            Ok(Some(partial)) => Some(partial),
            Err(e) => Some(e.to_string()),
        };
        match error {
            None => {
                info!(group = g, change = step.change.kind(), reason = %step.reason, "applied");
                report.status = ChangeStatus::Applied;
            }
            Some(e) => {
                warn!(account = %scope.account, region = %scope.region, group = g, change = step.change.kind(), error = %e, "change failed; the group's remaining changes wait for the next pass");
                report.status = ChangeStatus::Failed;
                report.error = Some(e);
                failed = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::Capacity;
    use crate::cloud::fake::FakeCloud;
    use crate::model::{Group, TAG_SAVED};
    use std::path::Path;

    fn cfg() -> Config {
        Config::parse(
            "timezone: Asia/Seoul\nschedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\n",
            Path::new("t.yaml"),
        )
        .unwrap()
    }

    fn scope(a: &str, r: &str) -> Scope {
        Scope {
            account: a.into(),
            region: r.into(),
        }
    }

    fn tagged(name: &str) -> Group {
        let mut g = Group {
            name: name.into(),
            capacity: Capacity {
                min: 1,
                max: 2,
                desired: 1,
            },
            ..Default::default()
        };
        g.tags.insert("Schedule".into(), "office-hours".into());
        g
    }

    fn night() -> PassOptions {
        PassOptions {
            now: "2026-11-25T13:00:00Z".parse().unwrap(),
            apply: true,
        }
    }

    #[tokio::test]
    async fn a_failing_scope_is_reported_and_skipped_while_the_others_are_applied() {
        let cloud = FakeCloud::default();
        let (ok, throttled, denied) = (
            scope("111111111111", "us-east-1"),
            scope("222222222222", "us-east-1"),
            scope("333333333333", "us-east-1"),
        );
        cloud.add_group(&ok, tagged("a"));
        cloud.add_group(&throttled, tagged("b"));
        cloud.state.lock().unwrap().failing_list.insert(throttled.clone());
        cloud.state.lock().unwrap().unreachable.insert(denied.clone());

        let r = pass(&cfg(), &cloud, night()).await;
        assert_eq!(r.summary.scopes, 3);
        assert_eq!(r.summary.scopes_failed, 2);
        assert!(
            r.scopes
                .iter()
                .any(|s| s.account == "222222222222" && s.error.as_deref().unwrap().contains("throttled"))
        );
        assert!(
            r.scopes
                .iter()
                .any(|s| s.account == "333333333333" && s.error.as_deref().unwrap().contains("access-denied"))
        );
        assert!(r.has_failures());
        assert_eq!(
            cloud.group(&ok, "a").unwrap().capacity,
            Capacity::ZERO,
            "the healthy scope is applied"
        );
        let b = cloud.group(&throttled, "b").unwrap();
        assert_eq!(b, tagged("b"), "nothing is applied where the inventory failed");
    }

    #[tokio::test]
    async fn a_failed_step_stops_the_rest_of_that_group_only() {
        let cloud = FakeCloud::default();
        let s = scope("111111111111", "us-east-1");
        cloud.add_group(&s, tagged("broken"));
        cloud.add_group(&s, tagged("fine"));
        cloud.state.lock().unwrap().failing_puts.insert("broken".into());

        let r = pass(&cfg(), &cloud, night()).await;
        let statuses: Vec<(&str, ChangeStatus)> = r
            .changes
            .iter()
            .filter(|c| c.resource_id == "broken")
            .map(|c| (c.change.kind(), c.status))
            .collect();
        assert_eq!(
            statuses,
            vec![
                ("save-capacity", ChangeStatus::Applied),
                ("put-scheduled-actions", ChangeStatus::Failed),
                ("set-capacity", ChangeStatus::NotAttempted),
                ("set-tags", ChangeStatus::NotAttempted),
            ]
        );
        let broken = cloud.group(&s, "broken").unwrap();
        assert_eq!(
            broken.capacity,
            Capacity {
                min: 1,
                max: 2,
                desired: 1
            },
            "not scaled down without its actions"
        );
        assert_eq!(broken.tags[TAG_SAVED], "min=1 max=2 desired=1");
        assert_eq!(cloud.group(&s, "fine").unwrap().capacity, Capacity::ZERO);
        assert_eq!(r.summary.failed, 1);
    }

    #[tokio::test]
    async fn a_second_pass_over_a_converged_cloud_makes_no_mutating_call() {
        let cloud = FakeCloud::default();
        for i in 0..5 {
            cloud.add_group(&scope("111111111111", "eu-west-1"), tagged(&format!("g{i}")));
        }
        pass(&cfg(), &cloud, night()).await;
        let before = cloud.mutating_calls();
        let r = pass(&cfg(), &cloud, night()).await;
        assert_eq!(r.summary.changes, 0);
        assert_eq!(cloud.mutating_calls(), before);
    }
}
