//! One pass: for every scope, list -> plan -> (apply) -> report, every kind through the same
//! generic path ([`crate::kind::Kind`], [`crate::kind::Adapter`]). Scopes run concurrently
//! within the configured bound; inventory is per (scope, kind): a kind that cannot be listed
//! is reported and nothing of it is applied in that scope, while the other kinds go on.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tracing::{Instrument, info, info_span, warn};

use std::collections::HashMap;

use crate::cloud::{Cloud, CloudError, RemediationScope};
use crate::config::{Config, OnUntagged};
use crate::kind::database::{DbClusters, DbInstances};
use crate::kind::group::Groups;
use crate::kind::instance::Instances;
use crate::kind::{Adapter, ChangeStatus, Kind, Plan, Seen};
use crate::model::Scope;
use crate::report::{
    Change, ChangeReport, Mode, Note, PassReport, ResourceError, ScopeReport, ScopeStatus, ViolationReport,
};

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
    let mut report = PassReport::new(if opts.apply { Mode::Reconcile } else { Mode::Plan }, opts.now);
    let scopes = match cloud.scopes(cfg).await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %crate::failure::chain(&e), "could not list the accounts to work in");
            report.scopes.push(ScopeReport {
                account: "*".into(),
                region: "*".into(),
                status: ScopeStatus::Failed,
                error: Some(crate::failure::chain(&e)),
                resources: 0,
                managed: Default::default(),
            });
            report.finish();
            return report;
        }
    };
    // Where on_untagged may act; asked only when it may act at all. If that cannot be
    // known, it acts nowhere this pass.
    let remediation = if cfg.policy.on_untagged == OnUntagged::Report {
        Ok(RemediationScope::default())
    } else {
        cloud.remediation(cfg).await.map_err(|e| {
            warn!(error = %crate::failure::chain(&e), "cannot tell where on_untagged may act; no remediation this pass");
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
        report.inventory.extend(r.inventory);
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
    inventory: Vec<crate::kind::Seen>,
}

impl ScopeResult {
    fn new(scope: &Scope) -> Self {
        ScopeResult {
            scope: ScopeReport {
                account: scope.account.clone(),
                region: scope.region.clone(),
                status: ScopeStatus::Ok,
                error: None,
                resources: 0,
                managed: Default::default(),
            },
            changes: Vec::new(),
            errors: Vec::new(),
            notes: Vec::new(),
            violations: Vec::new(),
            inventory: Vec::new(),
        }
    }

    /// A scope that did not finish before the pass's deadline.
    fn abandoned(scope: Scope, deadline: std::time::Duration) -> ScopeResult {
        let mut r = ScopeResult::new(&scope);
        r.fail(format!(
            "abandoned: not finished within nine tenths of pass_deadline_seconds ({} s); the next pass resumes it",
            deadline.as_secs()
        ));
        r
    }

    /// Marks the scope failed, adding `why` to its error.
    fn fail(&mut self, why: String) {
        self.scope.status = ScopeStatus::Failed;
        self.scope.error = Some(match self.scope.error.take() {
            Some(first) => format!("{first}; {why}"),
            None => why,
        });
    }
}

/// Works one scope: lists every kind at once, then plans and applies kind by kind (the
/// groups first, as ever). To add a kind: list it here and work it below.
async fn work_scope<A: Adapter<Groups> + Adapter<Instances> + Adapter<DbInstances> + Adapter<DbClusters>>(
    cfg: &Config,
    scope: Scope,
    api: Result<A, CloudError>,
    opts: PassOptions,
    block: Option<String>,
) -> ScopeResult {
    let mut out = ScopeResult::new(&scope);
    let api = match api {
        Ok(api) => api,
        Err(e) => {
            warn!(error = %crate::failure::chain(&e), "scope skipped: it could not be reached");
            out.fail(crate::failure::chain(&e));
            return out;
        }
    };
    let (mut groups, instances, db_instances, db_clusters) = futures::join!(
        Adapter::<Groups>::list(&api),
        Adapter::<Instances>::list(&api),
        Adapter::<DbInstances>::list(&api),
        Adapter::<DbClusters>::list(&api)
    );
    // A group's instance type, where its listing does not tell it: its members'.
    if let (Ok(groups), Ok(instances)) = (&mut groups, &instances) {
        let mut of_member: HashMap<&str, &str> = HashMap::new();
        for i in instances {
            if let (Some(g), Some(t)) = (i.tag(crate::model::TAG_ASG_MEMBER), i.instance_type.as_deref()) {
                of_member.insert(g, t);
            }
        }
        for g in groups.iter_mut().filter(|g| g.instance_type.is_none()) {
            g.instance_type = of_member.get(g.name.as_str()).map(|t| (*t).to_string());
        }
    }
    let ctx = Ctx {
        cfg,
        scope: &scope,
        opts,
        block: block.as_deref(),
    };
    work_kind::<Groups, A>(&ctx, &api, groups, &mut out).await;
    work_kind::<Instances, A>(&ctx, &api, instances, &mut out).await;
    work_kind::<DbInstances, A>(&ctx, &api, db_instances, &mut out).await;
    work_kind::<DbClusters, A>(&ctx, &api, db_clusters, &mut out).await;
    out
}

/// What every kind's work in a scope shares.
struct Ctx<'a> {
    cfg: &'a Config,
    scope: &'a Scope,
    opts: PassOptions,
    block: Option<&'a str>,
}

/// One kind in one scope: counts, plans (the schedule's plan, else a remediation), reports,
/// and applies. Nothing is applied if the kind's listing failed.
async fn work_kind<K: Kind, A: Adapter<K>>(
    ctx: &Ctx<'_>,
    api: &A,
    listed: Result<Vec<K::Observed>, CloudError>,
    out: &mut ScopeResult,
) where
    Change: From<K::Change>,
{
    let resources = match listed {
        Ok(r) => r,
        Err(e) => {
            warn!(kind = %K::TYPE, error = %crate::failure::chain(&e), "kind skipped in this scope: its inventory could not be listed");
            out.fail(crate::failure::chain(&e));
            return;
        }
    };
    out.scope.resources += resources.len();
    let mut plans: Vec<Plan<K::Change>> = Vec::new();
    for r in resources.iter().filter(|r| !K::left_to_others(r)) {
        if let Some(state) = K::managed_state(ctx.cfg, r) {
            *out.scope.managed.entry(format!("{}/{state}", K::TYPE)).or_default() += 1;
        }
        out.inventory.push(Seen {
            account: ctx.scope.account.clone(),
            region: ctx.scope.region.clone(),
            resource_type: K::TYPE,
            id: K::id(r).to_string(),
            tags: K::tags(r)
                .iter()
                .filter(|(k, _)| ctx.cfg.reads_tag(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            observation: K::observe(ctx.cfg, r),
        });
        let mut plan = K::plan(ctx.cfg, r, ctx.opts.now);
        if let Some((v, remedy)) = K::scan(ctx.cfg, r, ctx.opts.now, ctx.block) {
            info!(resource_type = %v.resource_type, resource = ?v.resource_id, tag_value = ?v.tag_value, problem = v.problem.as_str(), not_remediated = ?v.not_remediated, "no valid schedule tag");
            out.violations.push(ViolationReport {
                account: ctx.scope.account.clone(),
                region: ctx.scope.region.clone(),
                resource_type: v.resource_type,
                resource_id: v.resource_id,
                tag_value: v.tag_value,
                problem: v.problem,
                not_remediated: v.not_remediated,
            });
            // A remediation stands in for a plan with no steps (its notes are kept).
            if let Some(remedy) = remedy {
                match &mut plan {
                    Some(p) if p.steps.is_empty() => p.steps = remedy.steps,
                    Some(_) => {}
                    None => plan = Some(remedy),
                }
            }
        }
        plans.extend(plan);
    }
    let first = out.changes.len();
    for p in &plans {
        record::<K>(ctx.scope, p, out);
    }
    if !ctx.opts.apply {
        return;
    }
    let applied = api.apply(ctx.cfg, &plans).await;
    let mut slot = first;
    for (p, outcomes) in plans.iter().zip(&applied.outcomes) {
        for o in outcomes.iter().take(p.steps.len()) {
            let c = &mut out.changes[slot];
            c.status = o.status;
            c.error = o.error.as_ref().map(|e| crate::failure::chain(e));
            slot += 1;
        }
    }
    for (id, note) in applied.notes {
        info!(resource = %id, note = %note);
        out.notes.push(Note {
            account: ctx.scope.account.clone(),
            region: ctx.scope.region.clone(),
            resource_type: K::TYPE,
            resource_id: id,
            note,
        });
    }
}

/// Reports a plan: its steps as planned changes, its error and its notes.
fn record<K: Kind>(scope: &Scope, p: &Plan<K::Change>, out: &mut ScopeResult)
where
    Change: From<K::Change>,
{
    for s in &p.steps {
        out.changes.push(ChangeReport {
            account: scope.account.clone(),
            region: scope.region.clone(),
            resource_type: K::TYPE,
            resource_id: p.id.clone(),
            change: Change::from(s.change.clone()),
            reason: s.reason.clone(),
            status: ChangeStatus::Planned,
            error: None,
            estimated_hours_off: s.minutes_off.map(|m| m as f64 / 60.0),
            instance_type: p.priced_type.clone(),
        });
    }
    if let Some(e) = &p.error {
        warn!(resource_type = %K::TYPE, resource = %p.id, tag_value = ?p.tag_value, error = %e, "invalid schedule tag; left as it is");
        out.errors.push(ResourceError {
            account: scope.account.clone(),
            region: scope.region.clone(),
            resource_type: K::TYPE,
            resource_id: p.id.clone(),
            tag_value: p.tag_value.clone(),
            error: e.clone(),
        });
    }
    for note in &p.notes {
        info!(resource_type = %K::TYPE, resource = %p.id, note = %note);
        out.notes.push(Note {
            account: scope.account.clone(),
            region: scope.region.clone(),
            resource_type: K::TYPE,
            resource_id: p.id.clone(),
            note: note.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::Capacity;
    use crate::cloud::fake::FakeCloud;
    use crate::model::{Group, TAG_LAST, TAG_SAVED};

    fn cfg() -> Config {
        crate::fixtures::config()
    }

    fn scope(a: &str, r: &str) -> Scope {
        Scope {
            account: a.into(),
            region: r.into(),
        }
    }

    fn tagged(name: &str) -> Group {
        Group::test(name).tagged("Schedule", "office-hours")
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
        crate::model::Instance::test(id)
            .tagged("Schedule", "office-hours")
            .tagged(TAG_LAST, "start 2026-11-24T23:00:00Z")
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
