//! Applying instances' plans in one scope: power changes batched per operation, then the
//! tag writes that record them, batched per identical write, only where the power change
//! succeeded.

use std::collections::{BTreeMap, HashMap};

use tracing::warn;

use super::{InstanceApi, InstanceChange, PowerOp};
use crate::failure::{CloudError, ErrorKind};
use crate::kind::{Applied, ChangeStatus, Outcome, Plan};

/// Most resource ids one tagging call takes: "CreateTags: Resources: Constraints: Up to 1000
/// resource IDs" (Amazon EC2 API Reference; DeleteTags likewise).
const TAG_BATCH: usize = 1000;

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

/// The power change a plan starts with, if any.
fn power(p: &Plan<InstanceChange>) -> Option<PowerOp> {
    p.steps.first().and_then(|s| s.change.power())
}

/// Applies the plans: power first, one batch per operation; tags record only what succeeded.
pub async fn apply<A: InstanceApi>(api: &A, batch: usize, plans: &[Plan<InstanceChange>]) -> Applied {
    let mut out = Applied::pending(plans);
    let mut results: HashMap<String, Result<(), CloudError>> = HashMap::new();
    for op in [PowerOp::Stop, PowerOp::Hibernate, PowerOp::Start] {
        let ids: Vec<String> = plans
            .iter()
            .filter(|p| power(p) == Some(op))
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
                        out.notes.push((
                            id.clone(),
                            "hibernation refused by EC2 (not enabled or not ready for it); stopped instead".into(),
                        ));
                    }
                    r.insert(id, res);
                }
            }
        }
        results.extend(r);
    }

    // Tag writes by identical content: (plan, step) slots and their ids.
    type Slots = Vec<(usize, usize, String)>;
    let mut set: BTreeMap<BTreeMap<String, String>, Slots> = BTreeMap::new();
    let mut remove: BTreeMap<Vec<String>, Slots> = BTreeMap::new();
    for (i, p) in plans.iter().enumerate() {
        let mut tags_allowed = true;
        if let (Some(_), Some(r)) = (power(p), results.get(&p.id)) {
            out.outcomes[i][0] = match r {
                Ok(()) => Outcome::APPLIED,
                Err(e) if e.kind == ErrorKind::NotPermitted => {
                    // Stop protection (or a refused stop): left alone, not retried.
                    out.notes.push((
                        p.id.clone(),
                        "stop protection (or a refused stop) is on; offhours leaves the instance alone".into(),
                    ));
                    Outcome {
                        status: ChangeStatus::Skipped,
                        error: Some(e.clone()),
                    }
                }
                Err(e) => {
                    warn!(instance = %p.id, error = %crate::failure::chain(&e), "power change failed; retried on the next pass");
                    tags_allowed = false;
                    Outcome::failed(e.clone())
                }
            };
        }
        if !tags_allowed {
            continue;
        }
        for (k, s) in p.steps.iter().enumerate() {
            match &s.change {
                InstanceChange::SetTags { tags } => set.entry(tags.clone()).or_default().push((i, k, p.id.clone())),
                InstanceChange::RemoveTags { keys } => {
                    remove.entry(keys.clone()).or_default().push((i, k, p.id.clone()));
                }
                _ => {}
            }
        }
    }
    for (tags, slots) in set {
        let ids: Vec<String> = slots.iter().map(|x| x.2.clone()).collect();
        let r = batched(&ids, TAG_BATCH, |chunk| {
            let tags = tags.clone();
            async move { api.tag_instances(&chunk, &tags).await }
        })
        .await;
        settle(&mut out, &slots, &r);
    }
    for (keys, slots) in remove {
        let ids: Vec<String> = slots.iter().map(|x| x.2.clone()).collect();
        let r = batched(&ids, TAG_BATCH, |chunk| {
            let keys = keys.clone();
            async move { api.untag_instances(&chunk, &keys).await }
        })
        .await;
        settle(&mut out, &slots, &r);
    }
    out
}

fn settle(out: &mut Applied, slots: &[(usize, usize, String)], r: &HashMap<String, Result<(), CloudError>>) {
    for (i, k, id) in slots {
        match r.get(id) {
            Some(Ok(())) => out.outcomes[*i][*k] = Outcome::APPLIED,
            Some(Err(e)) => out.outcomes[*i][*k] = Outcome::failed(e.clone()),
            None => {}
        }
    }
}
