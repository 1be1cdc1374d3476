//! Applying databases' plans in one scope. RDS has no batch stop or start: one call per
//! database, a few at a time ([`IN_FLIGHT`]), then each database's tag writes, only where its
//! power change succeeded.

use tracing::warn;

use super::{DatabaseApi, DatabaseChange};
use crate::failure::CloudError;
use crate::kind::{Applied, Outcome, Plan};
use crate::model::DbKind;

/// Calls in flight per scope. RDS throttles per account and Region ("By default, you can
/// make up to 300 requests in a burst and a sustained 12 requests per second", Amazon RDS
/// User Guide, Request throttling for the Amazon RDS API); the SDK's retries back off from a
/// `ThrottlingException`, and a few calls at a time keep a pass well inside the rate.
pub const IN_FLIGHT: usize = 4;

/// Applies each plan's steps in order; a plan's first failure stops its rest.
pub async fn apply<A: DatabaseApi>(api: &A, kind: DbKind, plans: &[Plan<DatabaseChange>]) -> Applied {
    let mut out = Applied::pending(plans);
    let mut i = 0;
    for chunk in plans.chunks(IN_FLIGHT) {
        let calls: Vec<_> = chunk.iter().map(|p| apply_one(api, kind, p)).collect();
        for outcomes in futures::future::join_all(calls).await {
            out.outcomes[i] = outcomes;
            i += 1;
        }
    }
    out
}

async fn apply_one<A: DatabaseApi>(api: &A, kind: DbKind, p: &Plan<DatabaseChange>) -> Vec<Outcome> {
    let mut outcomes = vec![Outcome::NOT_ATTEMPTED; p.steps.len()];
    for (k, step) in p.steps.iter().enumerate() {
        let r: Result<(), CloudError> = match &step.change {
            DatabaseChange::StopDatabase | DatabaseChange::StopDatabaseAgain => api.stop_database(kind, &p.id).await,
            DatabaseChange::StartDatabase => api.start_database(kind, &p.id).await,
            DatabaseChange::SetTags { tags } => api.tag_database(kind, &p.id, tags).await,
            DatabaseChange::RemoveTags { keys } => api.untag_database(kind, &p.id, keys).await,
        };
        match r {
            Ok(()) => outcomes[k] = Outcome::APPLIED,
            Err(e) => {
                warn!(database = %p.id, change = step.change.kind(), error = %crate::failure::chain(&e), "change failed; the database's remaining changes wait for the next pass");
                outcomes[k] = Outcome::failed(e);
                break;
            }
        }
    }
    outcomes
}
