//! One pass: for every scope, list -> plan -> (apply) -> report. Scopes run concurrently
//! within the configured bound; a scope that fails is reported and skipped, and nothing is
//! applied in a scope whose inventory is incomplete.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tracing::{Instrument, info, info_span, warn};

use std::collections::{BTreeMap, HashMap};

use crate::cloud::{ActionFailure, Cloud, CloudError, ErrorKind, GroupApi, InstanceApi};
use crate::config::Config;
use crate::model::Scope;
use crate::plan::compliance::{Violation, scan_group, scan_instance};
use crate::plan::instances::{InstancePlan, PowerOp, plan_instance};
use crate::plan::{GroupChange, GroupPlan, plan_group};
use crate::report::{
    Change, ChangeReport, ChangeStatus, GROUP, INSTANCE, InstanceChange, Note, PassReport, ResourceError, ScopeReport,
    ViolationReport,
};

/// Most resource ids one tagging call takes.
const TAG_BATCH: usize = 1000;

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
                managed: Default::default(),
            });
            report.finish();
            return report;
        }
    };
    // Where on_untagged may act; asked only when it may act at all. If that cannot be
    // known, it acts nowhere this pass.
    let remediation = if cfg.policy.on_untagged == crate::config::OnUntagged::Report {
        Ok(crate::cloud::RemediationScope::default())
    } else {
        cloud.remediation(cfg).await.map_err(|e| {
            warn!(error = %e, "cannot tell where on_untagged may act; no remediation this pass");
            format!("no remediation this pass: cannot tell where it may act ({e})")
        })
    };
    // Each scope must finish within nine tenths of the pass deadline, so that one slow
    // account is reported as such while the others' results stand (the daemon abandons the
    // whole pass only at the deadline itself). An abandoned scope stops between two calls,
    // as after a crash: the order of each resource's steps keeps it safe, and the next pass
    // finishes the work.
    let cutoff = tokio::time::Instant::now() + cfg.daemon.deadline.mul_f64(0.9);
    let results: Vec<ScopeResult> = futures::stream::iter(scopes)
        .map(|(scope, api)| {
            let span = info_span!("scope", account = %scope.account, region = %scope.region);
            let block = match &remediation {
                Ok(r) => r.block(cfg, &scope.account),
                Err(e) => Some(e.clone()),
            };
            let name = scope.clone();
            async move {
                match tokio::time::timeout_at(cutoff, work_scope(cfg, scope, api, opts, block)).await {
                    Ok(r) => r,
                    Err(_) => {
                        warn!("scope abandoned: it did not finish before the pass deadline");
                        ScopeResult::abandoned(name, cfg.daemon.deadline)
                    }
                }
            }
            .instrument(span)
        })
        .buffer_unordered(cfg.concurrency.max(1))
        .collect()
        .await;
    for r in results {
        report.scopes.push(r.scope);
        report.changes.extend(r.changes);
        report.errors.extend(r.errors);
        report.notes.extend(r.notes);
        report.violations.extend(r.violations);
    }
    report.finish();
    report
}

struct ScopeResult {
    scope: ScopeReport,
    changes: Vec<ChangeReport>,
    errors: Vec<ResourceError>,
    notes: Vec<Note>,
    violations: Vec<ViolationReport>,
}

impl ScopeResult {
    /// A scope that did not finish before the pass's deadline.
    fn abandoned(scope: Scope, deadline: std::time::Duration) -> ScopeResult {
        ScopeResult {
            scope: ScopeReport {
                account: scope.account,
                region: scope.region,
                status: "failed",
                error: Some(format!(
                    "abandoned: not finished within nine tenths of pass_deadline_seconds ({} s); the next pass resumes it",
                    deadline.as_secs()
                )),
                resources: 0,
                managed: Default::default(),
            },
            changes: Vec::new(),
            errors: Vec::new(),
            notes: Vec::new(),
            violations: Vec::new(),
        }
    }
}

fn violation(scope: &Scope, v: Violation) -> ViolationReport {
    info!(resource_type = v.resource_type, resource = ?v.resource_id, tag_value = ?v.tag_value, problem = v.problem, not_remediated = ?v.not_remediated, "no valid schedule tag");
    ViolationReport {
        account: scope.account.clone(),
        region: scope.region.clone(),
        resource_type: v.resource_type,
        resource_id: v.resource_id,
        tag_value: v.tag_value,
        problem: v.problem,
        not_remediated: v.not_remediated,
    }
}

async fn work_scope<A: GroupApi + InstanceApi>(
    cfg: &Config,
    scope: Scope,
    api: Result<A, CloudError>,
    opts: PassOptions,
    block: Option<String>,
) -> ScopeResult {
    let mut out = ScopeResult {
        scope: ScopeReport {
            account: scope.account.clone(),
            region: scope.region.clone(),
            status: "ok",
            error: None,
            resources: 0,
            managed: Default::default(),
        },
        changes: Vec::new(),
        errors: Vec::new(),
        notes: Vec::new(),
        violations: Vec::new(),
    };
    // Every instance, tagged or not: the detective scan needs the untagged ones too.
    let tag_keys: Vec<String> = Vec::new();
    let listed = match api {
        Ok(api) => {
            let (g, i) = futures::join!(api.list_groups(), api.list_instances(&tag_keys));
            g.and_then(|g| i.map(|i| (api, (g, i))))
        }
        Err(e) => Err(e),
    };
    let (api, (groups, instances)) = match listed {
        Ok(x) => x,
        Err(e) => {
            warn!(error = %e, "scope skipped: its inventory could not be listed");
            out.scope.status = "failed";
            out.scope.error = Some(e.to_string());
            return out;
        }
    };
    out.scope.resources = groups.len() + instances.len();
    for g in &groups {
        if g.tag(&cfg.tag_key).is_some_and(|v| cfg.resolve_tag(v).is_ok()) {
            let state = if g.capacity.is_zero() { "stopped" } else { "running" };
            *out.scope.managed.entry(format!("{GROUP}/{state}")).or_default() += 1;
        }
    }
    for i in &instances {
        let member = i.tags.contains_key(crate::model::TAG_ASG_MEMBER);
        if !member && i.tag(&cfg.tag_key).is_some_and(|v| cfg.resolve_tag(v).is_ok()) {
            let state = serde_json::to_value(i.state)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            *out.scope.managed.entry(format!("{INSTANCE}/{state}")).or_default() += 1;
        }
    }
    for g in &groups {
        let mut plan = plan_group(cfg, g, opts.now);
        if let Some((v, remedy)) = scan_group(cfg, g, opts.now, block.as_deref()) {
            out.violations.push(violation(&scope, v));
            if let Some(r) = remedy.filter(|_| plan.steps.is_empty()) {
                plan.steps = r.steps;
            }
        }
        record(&scope, &plan, &mut out);
        if opts.apply && !plan.steps.is_empty() {
            apply_group(&api, &scope, &plan, &mut out.changes).await;
        }
    }
    let mut plans: Vec<InstancePlan> = Vec::new();
    for i in &instances {
        let plan = plan_instance(cfg, i, opts.now);
        let remedy = match scan_instance(cfg, i, opts.now, block.as_deref()) {
            Some((v, remedy)) => {
                out.violations.push(violation(&scope, v));
                remedy
            }
            None => None,
        };
        plans.extend(plan.or(remedy));
    }
    let first = out.changes.len();
    let slots: Vec<Slots> = plans
        .iter()
        .map(|p| record_instance(&scope, p, first, &mut out))
        .collect();
    if opts.apply {
        apply_instances(
            &api,
            cfg.instances.batch_size,
            &plans,
            &slots,
            &mut out.changes[first..],
            &mut out.notes,
            &scope,
        )
        .await;
    }
    out
}

/// Where an instance's changes sit in the report (relative to the scope's first instance change).
#[derive(Default, Clone, Copy)]
struct Slots {
    op: Option<usize>,
    set: Option<usize>,
    remove: Option<usize>,
}

/// Reports an instance's planned changes; `first` is where the scope's instance changes start.
fn record_instance(scope: &Scope, p: &InstancePlan, first: usize, out: &mut ScopeResult) -> Slots {
    let base = out.changes.len() - first;
    let mut slots = Slots::default();
    let push = |out: &mut ScopeResult, change: InstanceChange, reason: &str| {
        out.changes.push(ChangeReport {
            account: scope.account.clone(),
            region: scope.region.clone(),
            resource_type: INSTANCE,
            resource_id: p.id.clone(),
            change: Change::Instance(change),
            reason: reason.to_string(),
            status: ChangeStatus::Planned,
            error: None,
            estimated_hours_off: None,
            instance_type: p.instance_type.clone(),
        });
    };
    let mut n = base;
    if let Some((op, why)) = &p.op {
        let change = match op {
            PowerOp::Stop => InstanceChange::StopInstance,
            PowerOp::Hibernate => InstanceChange::HibernateInstance,
            PowerOp::Start => InstanceChange::StartInstance,
        };
        push(out, change, why);
        if let Some(last) = out.changes.last_mut() {
            last.estimated_hours_off = p.minutes_off.map(|m| m as f64 / 60.0);
        }
        slots.op = Some(n);
        n += 1;
    }
    if !p.set_tags.is_empty() {
        push(
            out,
            InstanceChange::SetTags {
                tags: p.set_tags.clone(),
            },
            &p.tag_reason,
        );
        slots.set = Some(n);
        n += 1;
    }
    if !p.remove_tags.is_empty() {
        push(
            out,
            InstanceChange::RemoveTags {
                keys: p.remove_tags.clone(),
            },
            &p.tag_reason,
        );
        slots.remove = Some(n);
    }
    if let Some(e) = &p.error {
        warn!(instance = %p.id, tag_value = ?p.schedule, error = %e, "invalid schedule tag; instance left as it is");
        out.errors.push(ResourceError {
            account: scope.account.clone(),
            region: scope.region.clone(),
            resource_type: INSTANCE,
            resource_id: p.id.clone(),
            tag_value: p.schedule.clone(),
            error: e.clone(),
        });
    }
    for note in &p.notes {
        info!(instance = %p.id, note = %note);
        out.notes.push(Note {
            account: scope.account.clone(),
            region: scope.region.clone(),
            resource_type: INSTANCE,
            resource_id: p.id.clone(),
            note: note.clone(),
        });
    }
    slots
}

/// Calls `f` on `ids` in batches. A batch refused for one of its resources (access denied
/// for one instance, stop protection, a state it cannot leave: see
/// [`ErrorKind::is_per_resource`]) is split in halves and retried, so one bad id costs about
/// log2(batch) extra calls and blocks none of the others. A batch that fails as a whole
/// (throttling or a 5xx past the SDK's retries, a dropped connection) is not split: every
/// id in it failed, and the next pass tries again.
async fn batched<F, Fut>(ids: &[String], batch: usize, f: F) -> HashMap<String, Result<(), CloudError>>
where
    F: Fn(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(), CloudError>>,
{
    let mut out = HashMap::new();
    let mut work: Vec<Vec<String>> = ids.chunks(batch.max(1)).rev().map(<[String]>::to_vec).collect();
    while let Some(chunk) = work.pop() {
        match f(chunk.clone()).await {
            Ok(()) => out.extend(chunk.into_iter().map(|id| (id, Ok(())))),
            Err(e) if chunk.len() > 1 && e.kind.is_per_resource() => {
                let (a, b) = chunk.split_at(chunk.len() / 2);
                work.push(b.to_vec());
                work.push(a.to_vec());
            }
            Err(e) => out.extend(chunk.into_iter().map(|id| (id, Err(e.clone())))),
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
async fn apply_instances<A: InstanceApi>(
    api: &A,
    batch: usize,
    plans: &[InstancePlan],
    slots: &[Slots],
    changes: &mut [ChangeReport],
    notes: &mut Vec<Note>,
    scope: &Scope,
) {
    // Power first, one batch per operation; tags record only what succeeded.
    let mut results: HashMap<String, Result<(), CloudError>> = HashMap::new();
    for op in [PowerOp::Stop, PowerOp::Hibernate, PowerOp::Start] {
        let ids: Vec<String> = plans
            .iter()
            .filter(|p| p.op.as_ref().is_some_and(|o| o.0 == op))
            .map(|p| p.id.clone())
            .collect();
        if ids.is_empty() {
            continue;
        }
        let mut r = batched(&ids, batch, |chunk| async move {
            match op {
                PowerOp::Stop => api.stop_instances(&chunk, false).await,
                PowerOp::Hibernate => api.stop_instances(&chunk, true).await,
                PowerOp::Start => api.start_instances(&chunk).await,
            }
        })
        .await;
        if op == PowerOp::Hibernate {
            // Hibernation refused ("UnsupportedHibernationConfiguration": the instance is not
            // enabled or not ready for hibernation, Amazon EC2 Developer Guide, Error codes for the Amazon EC2 API):
            // the schedule still wants it off, so it is stopped plainly, and that is said.
            let refused: Vec<String> = r
                .iter()
                // AWS's own Instance Scheduler treats "UnsupportedOperation" on a hibernating
                // stop the same way (instance-scheduler-on-aws, ec2_service.py).
                .filter(|(_, res)| {
                    res.as_ref().is_err_and(|e| {
                        e.kind == ErrorKind::HibernationRefused || e.message.contains("UnsupportedOperation")
                    })
                })
                .map(|(id, _)| id.clone())
                .collect();
            if !refused.is_empty() {
                let plain = batched(&refused, batch, |chunk| async move {
                    api.stop_instances(&chunk, false).await
                })
                .await;
                for (id, res) in plain {
                    if res.is_ok() {
                        notes.push(Note {
                            account: scope.account.clone(),
                            region: scope.region.clone(),
                            resource_type: INSTANCE,
                            resource_id: id.clone(),
                            note: "hibernation refused by EC2 (not enabled or not ready for it); stopped instead"
                                .into(),
                        });
                    }
                    r.insert(id, res);
                }
            }
        }
        results.extend(r);
    }

    let mut set: BTreeMap<BTreeMap<String, String>, Vec<(usize, String)>> = BTreeMap::new();
    let mut remove: BTreeMap<Vec<String>, Vec<(usize, String)>> = BTreeMap::new();
    for (i, p) in plans.iter().enumerate() {
        let s = slots[i];
        let mut tags_allowed = true;
        if let (Some(slot), Some(r)) = (s.op, results.get(&p.id)) {
            match r {
                Ok(()) => changes[slot].status = ChangeStatus::Applied,
                Err(e) if e.kind == ErrorKind::NotPermitted => {
                    // Stop protection (or hibernation refused): left alone, not retried.
                    changes[slot].status = ChangeStatus::Skipped;
                    changes[slot].error = Some(e.to_string());
                    notes.push(Note {
                        account: scope.account.clone(),
                        region: scope.region.clone(),
                        resource_type: INSTANCE,
                        resource_id: p.id.clone(),
                        note: "stop protection (or a refused stop) is on; offhours leaves the instance alone".into(),
                    });
                }
                Err(e) => {
                    warn!(instance = %p.id, error = %e, "power change failed; retried on the next pass");
                    changes[slot].status = ChangeStatus::Failed;
                    changes[slot].error = Some(e.to_string());
                    tags_allowed = false;
                }
            }
        }
        for slot in [s.set, s.remove].into_iter().flatten() {
            if !tags_allowed {
                changes[slot].status = ChangeStatus::NotAttempted;
            }
        }
        if tags_allowed {
            if let Some(slot) = s.set {
                set.entry(p.set_tags.clone()).or_default().push((slot, p.id.clone()));
            }
            if let Some(slot) = s.remove {
                remove
                    .entry(p.remove_tags.clone())
                    .or_default()
                    .push((slot, p.id.clone()));
            }
        }
    }
    for (tags, items) in set {
        let ids: Vec<String> = items.iter().map(|x| x.1.clone()).collect();
        let r = batched(&ids, TAG_BATCH, |chunk| {
            let tags = tags.clone();
            async move { api.tag_instances(&chunk, &tags).await }
        })
        .await;
        settle(changes, &items, &r);
    }
    for (keys, items) in remove {
        let ids: Vec<String> = items.iter().map(|x| x.1.clone()).collect();
        let r = batched(&ids, TAG_BATCH, |chunk| {
            let keys = keys.clone();
            async move { api.untag_instances(&chunk, &keys).await }
        })
        .await;
        settle(changes, &items, &r);
    }
}

fn settle(changes: &mut [ChangeReport], items: &[(usize, String)], r: &HashMap<String, Result<(), CloudError>>) {
    for (slot, id) in items {
        match r.get(id) {
            Some(Ok(())) => changes[*slot].status = ChangeStatus::Applied,
            Some(Err(e)) => {
                changes[*slot].status = ChangeStatus::Failed;
                changes[*slot].error = Some(e.to_string());
            }
            None => {}
        }
    }
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
            change: Change::Group(s.change.clone()),
            reason: s.reason.clone(),
            status: ChangeStatus::Planned,
            error: None,
            estimated_hours_off: None,
            instance_type: None,
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
            GroupChange::SaveCapacity { tag, .. } => api
                .set_tags(g, &[(crate::model::TAG_SAVED.to_string(), tag.clone())].into())
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
    use crate::model::{Group, TAG_LAST, TAG_SAVED};
    use std::path::Path;

    fn cfg() -> Config {
        Config::parse(
            "timezone: Asia/Seoul\nschedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\n",
            Path::new("t.yaml"),
        )
        .unwrap()
        .with_state_key(crate::seal::StateKey::new(b"unit-test-state-key", "test").unwrap())
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
        assert_eq!(
            (b.capacity, b.tags, b.actions),
            (tagged("b").capacity, tagged("b").tags, tagged("b").actions),
            "nothing is applied where the inventory failed"
        );
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
        assert!(broken.tags[TAG_SAVED].starts_with("min=1 max=2 desired=1 mac="));
        assert_eq!(cloud.group(&s, "fine").unwrap().capacity, Capacity::ZERO);
        assert_eq!(r.summary.failed, 1);
    }

    fn instance(id: &str) -> crate::model::Instance {
        crate::model::Instance {
            id: id.into(),
            state: crate::model::InstanceState::Running,
            launched: Some("2026-11-01T00:00:00Z".parse().unwrap()),
            tags: [
                ("Schedule".to_string(), "office-hours".to_string()),
                (TAG_LAST.to_string(), "start 2026-11-24T23:00:00Z".to_string()),
            ]
            .into(),
            market: crate::model::Market::OnDemand,
            instance_store_root: false,
            hibernation: false,
            instance_type: None,
            state_reason: None,
        }
    }

    #[tokio::test]
    async fn one_protected_instance_does_not_block_its_batch() {
        let cloud = FakeCloud::default();
        let s = scope("111111111111", "us-east-1");
        for i in 0..7 {
            cloud.add_instance(&s, instance(&format!("i-{i}")));
        }
        cloud.state.lock().unwrap().protected.insert("i-3".into());
        let mut c = cfg();
        c.instances.batch_size = 4;
        let opts = PassOptions {
            now: "2026-11-25T11:01:00Z".parse().unwrap(),
            apply: true,
        };
        let r = pass(&c, &cloud, opts).await;
        for i in 0..7 {
            let inst = cloud.instance(&s, &format!("i-{i}")).unwrap();
            let want = if i == 3 {
                crate::model::InstanceState::Running
            } else {
                crate::model::InstanceState::Stopped
            };
            assert_eq!(inst.state, want, "i-{i}");
            assert_eq!(
                inst.tags[TAG_LAST], "stop 2026-11-25T11:00:00Z",
                "i-{i} recorded, protected one included"
            );
        }
        assert!(
            r.notes
                .iter()
                .any(|n| n.resource_id == "i-3" && n.note.contains("stop protection"))
        );
        let calls = cloud.state.lock().unwrap().calls.clone();
        // Two batches of 4 and 3; the failing one splits into 2+2, then 1+1.
        assert_eq!(calls["StopInstances"], 6);
        assert_eq!(
            calls["CreateTags"], 1,
            "one tagging call records every stopped instance"
        );
        let again = pass(&c, &cloud, opts).await;
        assert_eq!(again.summary.changes, 0);
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
