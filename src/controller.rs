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
/// Most tags one CreateOrUpdateTags call carries, across groups. The API reference sets no
/// maximum ("Tags.member.N: One or more tags"); 50 is what one group may hold ("The maximum
/// number of tags per Auto Scaling group is 50", Amazon EC2 Auto Scaling User Guide, Tag
/// restrictions), so a call this size is one AWS must take for a single group.
const GROUP_TAGS_PER_CALL: usize = 50;

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
    let results: Vec<ScopeResult> = futures::stream::iter(spread(scopes))
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

/// The scopes in rounds: every account's first region, then every account's second, and
/// so on, so that the scopes worked at once belong to as many accounts as there are
/// workers. Limits kept per account (STS and the member role's sessions; the simulation's
/// per-account request rate, stricter than AWS's per account and Region) are then shared
/// by one scope at a time instead of by all of an account's regions.
fn spread<T>(scopes: Vec<(Scope, T)>) -> Vec<(Scope, T)> {
    let mut round_of: HashMap<String, usize> = HashMap::new();
    let mut keyed: Vec<(usize, usize, (Scope, T))> = scopes
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let n = round_of.entry(s.0.account.clone()).or_default();
            *n += 1;
            (*n, i, s)
        })
        .collect();
    keyed.sort_by_key(|(round, i, _)| (*round, *i));
    keyed.into_iter().map(|(_, _, s)| s).collect()
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
        if let Some(resolved) = g.tag(&cfg.tag_key).and_then(|v| cfg.resolve_tag(v).ok()) {
            let schedule = match &resolved {
                crate::config::Resolved::Named(s) => Some(*s),
                crate::config::Resolved::Inline(s) => Some(s.as_ref()),
                crate::config::Resolved::AlwaysOn => None,
            };
            let down = crate::plan::groups::is_scaled_down(g, schedule);
            let state = if down { "stopped" } else { "running" };
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
    let mut group_plans: Vec<(GroupPlan, usize)> = Vec::new();
    for g in &groups {
        let mut plan = plan_group(cfg, g, opts.now);
        if let Some((v, remedy)) = scan_group(cfg, g, opts.now, block.as_deref()) {
            out.violations.push(violation(&scope, v));
            if let Some(r) = remedy.filter(|_| plan.steps.is_empty()) {
                plan.steps = r.steps;
            }
        }
        let start = out.changes.len();
        record(&scope, &plan, &mut out);
        if !plan.steps.is_empty() {
            group_plans.push((plan, start));
        }
    }
    if opts.apply {
        apply_groups(&api, &scope, &group_plans, &mut out.changes).await;
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

/// Whether a change only writes tags, and may share a call with other groups' writes.
fn tag_write(c: &GroupChange) -> Option<BTreeMap<String, String>> {
    match c {
        GroupChange::SaveCapacity { tag, .. } => Some([(crate::model::TAG_SAVED.to_string(), tag.clone())].into()),
        GroupChange::SetTags { tags } => Some(tags.clone()),
        _ => None,
    }
}

/// Applies every group's steps, each group's in order; a group's first failure stops its
/// rest, so a later step never runs without the ones it depends on (no scale-down before
/// the size is saved, no record of the applied schedule before its actions).
///
/// Tag writes at the head of a group's steps (the saved size) go out first, for all groups
/// together, in as few CreateOrUpdateTags calls as fit; tag writes at the tail (the applied
/// schedule) go out last, likewise. Each group's other steps run in between. A newly tagged
/// group thus costs its put and a share of two tag calls, not three calls.
async fn apply_groups<A: GroupApi>(api: &A, scope: &Scope, plans: &[(GroupPlan, usize)], changes: &mut [ChangeReport]) {
    // (head, tail): steps [0, head) and [tail, len) are tag writes.
    let bounds: Vec<(usize, usize)> = plans
        .iter()
        .map(|(p, _)| {
            let head = p.steps.iter().take_while(|s| tag_write(&s.change).is_some()).count();
            let tail = p.steps.len()
                - p.steps[head..]
                    .iter()
                    .rev()
                    .take_while(|s| tag_write(&s.change).is_some())
                    .count();
            (head, tail)
        })
        .collect();
    let mut ok = vec![true; plans.len()];

    let head: Vec<(usize, std::ops::Range<usize>)> = bounds.iter().enumerate().map(|(i, &(h, _))| (i, 0..h)).collect();
    tag_phase(api, scope, plans, &head, changes, &mut ok).await;
    for (i, (plan, start)) in plans.iter().enumerate() {
        let (h, t) = bounds[i];
        if ok[i] {
            ok[i] = apply_steps(api, scope, plan, h..t, &mut changes[*start..]).await;
        }
    }
    let tail: Vec<(usize, std::ops::Range<usize>)> = bounds
        .iter()
        .enumerate()
        .map(|(i, &(_, t))| (i, t..plans[i].0.steps.len()))
        .collect();
    tag_phase(api, scope, plans, &tail, changes, &mut ok).await;
    for (i, (plan, start)) in plans.iter().enumerate() {
        if !ok[i] {
            for r in &mut changes[*start..*start + plan.steps.len()] {
                if r.status == ChangeStatus::Planned {
                    r.status = ChangeStatus::NotAttempted;
                }
            }
        }
    }
}

/// Writes the tag steps `ranges` of the groups still `ok`, merged per group and packed
/// into shared calls. A call refused for a resource it names (a group deleted since the
/// listing, say) is retried group by group, so one group cannot hold back the others.
async fn tag_phase<A: GroupApi>(
    api: &A,
    scope: &Scope,
    plans: &[(GroupPlan, usize)],
    ranges: &[(usize, std::ops::Range<usize>)],
    changes: &mut [ChangeReport],
    ok: &mut [bool],
) {
    let mut items: Vec<(usize, String, BTreeMap<String, String>)> = Vec::new();
    let mut which: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
    for (i, range) in ranges {
        if !ok[*i] || range.is_empty() {
            continue;
        }
        let plan = &plans[*i].0;
        let mut tags = BTreeMap::new();
        for s in &plan.steps[range.clone()] {
            tags.extend(tag_write(&s.change).unwrap_or_default());
        }
        items.push((items.len(), plan.group.clone(), tags));
        which.push((*i, range.clone()));
    }
    // Results by position in `items`.
    let mut results: Vec<(usize, Result<(), CloudError>)> = Vec::new();
    let mut chunk: Vec<&(usize, String, BTreeMap<String, String>)> = Vec::new();
    let mut size = 0;
    for (n, item) in items.iter().enumerate() {
        chunk.push(item);
        size += item.2.len();
        let full = items.get(n + 1).is_none_or(|x| size + x.2.len() > GROUP_TAGS_PER_CALL);
        if full {
            let call: Vec<(String, BTreeMap<String, String>)> =
                chunk.iter().map(|x| (x.1.clone(), x.2.clone())).collect();
            match api.tag_groups(&call).await {
                Ok(()) => results.extend(chunk.iter().map(|x| (x.0, Ok(())))),
                Err(e) if e.kind.is_per_resource() && chunk.len() > 1 => {
                    for x in &chunk {
                        let r = api.tag_groups(&[(x.1.clone(), x.2.clone())]).await;
                        results.push((x.0, r));
                    }
                }
                Err(e) => results.extend(chunk.iter().map(|x| (x.0, Err(e.clone())))),
            }
            chunk.clear();
            size = 0;
        }
    }
    for (n, r) in results {
        let (i, range) = which[n].clone();
        let (plan, start) = &plans[i];
        for k in range {
            let error = r.as_ref().err().map(ToString::to_string);
            settle_step(scope, &plan.group, &plan.steps[k], &mut changes[start + k], error);
        }
        if r.is_err() {
            ok[i] = false;
        }
    }
}

/// Applies steps `range` of a group's plan in order (`changes` starts at the plan's first
/// report); the first failure stops the rest. Returns whether all were applied.
async fn apply_steps<A: GroupApi>(
    api: &A,
    scope: &Scope,
    plan: &GroupPlan,
    range: std::ops::Range<usize>,
    changes: &mut [ChangeReport],
) -> bool {
    for i in range {
        let step = &plan.steps[i];
        let report = &mut changes[i];
        let g = plan.group.as_str();
        let result: Result<Option<String>, CloudError> = match &step.change {
            GroupChange::SaveCapacity { .. } | GroupChange::SetTags { .. } => api
                .tag_groups(&[(g.to_string(), tag_write(&step.change).unwrap_or_default())])
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
            GroupChange::RemoveTags { keys } => api.remove_tags(g, keys).await.map(|()| None),
        };
        let error = match result {
            Ok(partial) => partial,
            Err(e) => Some(e.to_string()),
        };
        let failed = error.is_some();
        settle_step(scope, g, step, report, error);
        if failed {
            return false;
        }
    }
    true
}

/// Records a step's outcome in its report and the log.
fn settle_step(scope: &Scope, group: &str, step: &crate::plan::Step, report: &mut ChangeReport, error: Option<String>) {
    match error {
        None => {
            info!(group, change = step.change.kind(), reason = %step.reason, "applied");
            report.status = ChangeStatus::Applied;
        }
        Some(e) => {
            warn!(account = %scope.account, region = %scope.region, group, change = step.change.kind(), error = %e, "change failed; the group's remaining changes wait for the next pass");
            report.status = ChangeStatus::Failed;
            report.error = Some(e);
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

    #[test]
    fn scopes_are_worked_in_rounds_across_accounts() {
        let scopes: Vec<(Scope, ())> = ["a", "b"]
            .iter()
            .flat_map(|a| ["r1", "r2", "r3"].iter().map(move |r| (scope(a, r), ())))
            .collect();
        let order: Vec<String> = spread(scopes)
            .into_iter()
            .map(|(s, ())| format!("{}/{}", s.account, s.region))
            .collect();
        assert_eq!(order, ["a/r1", "b/r1", "a/r2", "b/r2", "a/r3", "b/r3"]);
    }

    /// Newly tagged groups: one put each, and their tag writes packed into shared calls,
    /// the saved sizes before any put and the applied schedules after (50 tags a call).
    #[tokio::test]
    async fn newly_tagged_groups_share_their_tag_calls() {
        for n in [1usize, 30, 60] {
            let cloud = FakeCloud::default();
            let s = scope("111111111111", "us-east-1");
            for i in 0..n {
                cloud.add_group(&s, tagged(&format!("g{i}")));
            }
            let r = pass(&cfg(), &cloud, night()).await;
            assert_eq!(r.summary.failed, 0);
            let calls = cloud.state.lock().unwrap().calls.clone();
            assert_eq!(calls["BatchPutScheduledUpdateGroupAction"], n as u64);
            // Each group writes one tag before its put and one after.
            assert_eq!(
                calls["CreateOrUpdateTags"],
                2 * n.div_ceil(50) as u64,
                "{n} groups: {calls:?}"
            );
            for i in 0..n {
                let g = cloud.group(&s, &format!("g{i}")).unwrap();
                assert!(g.tags.contains_key(TAG_SAVED) && g.tags.contains_key(crate::model::TAG_SCHEDULE));
                assert_eq!(g.capacity, Capacity::ZERO, "scaled down at night, its size saved first");
            }
        }
    }

    /// A group deleted between the listing and the shared tag call fails that call for all:
    /// the others are written one by one and go on; the gone one is reported, nothing after.
    #[tokio::test]
    async fn a_group_gone_mid_pass_does_not_hold_back_the_others_tag_writes() {
        let cloud = FakeCloud::default();
        let s = scope("111111111111", "us-east-1");
        for name in ["a", "gone", "c"] {
            cloud.add_group(&s, tagged(name));
        }
        cloud.state.lock().unwrap().ghosts.insert("gone".into());
        let r = pass(&cfg(), &cloud, night()).await;
        let status = |id: &str| -> Vec<(&str, ChangeStatus)> {
            r.changes
                .iter()
                .filter(|c| c.resource_id == id)
                .map(|c| (c.change.kind(), c.status))
                .collect()
        };
        assert_eq!(
            status("gone"),
            vec![
                ("save-capacity", ChangeStatus::Failed),
                ("put-scheduled-actions", ChangeStatus::NotAttempted),
                ("set-capacity", ChangeStatus::NotAttempted),
                ("set-tags", ChangeStatus::NotAttempted),
            ]
        );
        for id in ["a", "c"] {
            assert!(
                status(id).iter().all(|(_, st)| *st == ChangeStatus::Applied),
                "{id}: {:?}",
                status(id)
            );
            assert_eq!(cloud.group(&s, id).unwrap().capacity, Capacity::ZERO);
        }
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
