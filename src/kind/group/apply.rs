//! Applying groups' plans in one scope: each group's steps in order, the first failure
//! stopping its rest, and tag writes shared between groups where the order allows.

use std::collections::BTreeMap;
use std::ops::Range;

use tracing::{info, warn};

use super::{GroupApi, GroupChange, GroupPlan};
use crate::failure::{ActionFailure, CloudError, ErrorKind};
use crate::kind::{Applied, ChangeStatus, Outcome};
use crate::model::TAG_SAVED;

/// Most tags one CreateOrUpdateTags call carries, across groups. The API reference sets no
/// maximum ("Tags.member.N: One or more tags"); 50 is what one group may hold ("The maximum
/// number of tags per Auto Scaling group is 50", Amazon EC2 Auto Scaling User Guide, Tag
/// restrictions), so a call this size is one AWS must take for a single group.
const GROUP_TAGS_PER_CALL: usize = 50;

/// Whether a change only writes tags, and may share a call with other groups' writes.
fn tag_write(c: &GroupChange) -> Option<BTreeMap<String, String>> {
    match c {
        GroupChange::SaveCapacity { tag, .. } => Some([(TAG_SAVED.to_string(), tag.clone())].into()),
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
pub async fn apply<A: GroupApi>(api: &A, plans: &[GroupPlan]) -> Applied {
    let mut out = Applied::pending(plans);
    // (head, tail): steps [0, head) and [tail, len) are tag writes.
    let bounds: Vec<(usize, usize)> = plans
        .iter()
        .map(|p| {
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

    let head: Vec<(usize, Range<usize>)> = bounds.iter().enumerate().map(|(i, &(h, _))| (i, 0..h)).collect();
    tag_phase(api, plans, &head, &mut out, &mut ok).await;
    for (i, plan) in plans.iter().enumerate() {
        let (h, t) = bounds[i];
        if ok[i] {
            ok[i] = apply_steps(api, plan, h..t, &mut out.outcomes[i]).await;
        }
    }
    let tail: Vec<(usize, Range<usize>)> = bounds
        .iter()
        .enumerate()
        .map(|(i, &(_, t))| (i, t..plans[i].steps.len()))
        .collect();
    tag_phase(api, plans, &tail, &mut out, &mut ok).await;
    out
}

/// Writes the tag steps `ranges` of the groups still `ok`, merged per group and packed
/// into shared calls. A call refused for a resource it names (a group deleted since the
/// listing, say) is retried group by group, so one group cannot hold back the others.
async fn tag_phase<A: GroupApi>(
    api: &A,
    plans: &[GroupPlan],
    ranges: &[(usize, Range<usize>)],
    out: &mut Applied,
    ok: &mut [bool],
) {
    let mut items: Vec<(usize, String, BTreeMap<String, String>)> = Vec::new();
    let mut which: Vec<(usize, Range<usize>)> = Vec::new();
    for (i, range) in ranges {
        if !ok[*i] || range.is_empty() {
            continue;
        }
        let plan = &plans[*i];
        let mut tags = BTreeMap::new();
        for s in &plan.steps[range.clone()] {
            tags.extend(tag_write(&s.change).unwrap_or_default());
        }
        items.push((items.len(), plan.id.clone(), tags));
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
        let plan = &plans[i];
        for k in range {
            settle(plan, k, &mut out.outcomes[i][k], r.clone().err());
        }
        if r.is_err() {
            ok[i] = false;
        }
    }
}

/// Applies steps `range` of a group's plan in order; the first failure stops the rest.
/// Returns whether all were applied.
async fn apply_steps<A: GroupApi>(api: &A, plan: &GroupPlan, range: Range<usize>, outcomes: &mut [Outcome]) -> bool {
    for i in range {
        let step = &plan.steps[i];
        let g = plan.id.as_str();
        let result: Result<(), CloudError> = match &step.change {
            GroupChange::SaveCapacity { .. } | GroupChange::SetTags { .. } => {
                api.tag_groups(&[(g.to_string(), tag_write(&step.change).unwrap_or_default())])
                    .await
            }
            GroupChange::PutScheduledActions { actions } => api
                .put_scheduled_actions(g, actions)
                .await
                .and_then(|f| partial("BatchPutScheduledUpdateGroupAction", "registering actions", &f)),
            GroupChange::DeleteScheduledActions { names } => api
                .delete_scheduled_actions(g, names)
                .await
                .and_then(|f| partial("BatchDeleteScheduledAction", "deleting actions", &f)),
            GroupChange::SetCapacity { capacity } => api.set_capacity(g, *capacity).await,
            GroupChange::RemoveTags { keys } => api.remove_tags(g, keys).await,
        };
        let failed = result.is_err();
        settle(plan, i, &mut outcomes[i], result.err());
        if failed {
            return false;
        }
    }
    true
}

/// A batch call's per-action failures as the error of the step, if any failed.
fn partial(operation: &str, what: &str, f: &[ActionFailure]) -> Result<(), CloudError> {
    if f.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = f
        .iter()
        .map(|x| format!("{} ({}: {})", x.name, x.code.as_deref().unwrap_or("error"), x.message))
        .collect();
    Err(CloudError {
        operation: operation.into(),
        kind: ErrorKind::Other,
        message: format!("{what} failed for {}", list.join("; ")),
        source: None,
    })
}

/// Records a step's outcome and logs it.
fn settle(plan: &GroupPlan, k: usize, outcome: &mut Outcome, error: Option<CloudError>) {
    let step = &plan.steps[k];
    match error {
        None => {
            info!(group = %plan.id, change = step.change.kind(), reason = %step.reason, "applied");
            *outcome = Outcome::APPLIED;
        }
        Some(e) => {
            warn!(group = %plan.id, change = step.change.kind(), error = %crate::failure::chain(&e), "change failed; the group's remaining changes wait for the next pass");
            *outcome = Outcome {
                status: ChangeStatus::Failed,
                error: Some(e),
            };
        }
    }
}
