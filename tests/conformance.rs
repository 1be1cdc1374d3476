//! The conformance suite every resource kind passes, against the in-memory cloud and through
//! the same controller pass the daemon runs: it converges in one pass; a second pass makes
//! no mutating call; a failed listing applies nothing (and does not stop the other kinds);
//! an override holds; a remediation can be reversed.
//!
//! Adding a kind: implement [`Subject`] for it and add a line to `conformance!` at the end.
//! The oracle of each property is the resource's state in the fake cloud, read back after
//! the pass, never the plan that produced it.

use offhours::capacity::Capacity;
use offhours::cloud::fake::FakeCloud;
use offhours::config::Config;
use offhours::controller::{PassOptions, pass};
use offhours::fixtures;
use offhours::kind::group::Groups;
use offhours::kind::instance::Instances;
use offhours::kind::{Kind, ResourceType};
use offhours::model::{Group, Instance, InstanceState, Scope, TAG_OVERRIDE};
use offhours::report::ScopeStatus;

/// What the suite needs to know of a kind to seed the fake and judge the outcome.
trait Subject: Kind {
    /// A resource of the kind, running, with no tags.
    fn running(id: &str) -> Self::Observed;
    /// The resource with a tag added.
    fn tagged(r: Self::Observed, key: &str, value: &str) -> Self::Observed;
    /// Puts it in the fake cloud.
    fn seed(cloud: &FakeCloud, scope: &Scope, r: Self::Observed);
    /// Reads it back.
    fn get(cloud: &FakeCloud, scope: &Scope, id: &str) -> Self::Observed;
    /// Whether it is running as it was seeded (a group at its own size, an instance up).
    fn is_up(r: &Self::Observed) -> bool;
    /// Whether it is stopped (a group at 0/0/0, an instance stopped).
    fn is_down(r: &Self::Observed) -> bool;
    /// Adds a tag in the fake cloud, as a person would.
    fn tag(cloud: &FakeCloud, scope: &Scope, id: &str, key: &str, value: &str);
}

const SIZE: Capacity = Capacity {
    min: 1,
    max: 2,
    desired: 1,
};

impl Subject for Groups {
    fn running(id: &str) -> Group {
        Group::test(id).sized(SIZE)
    }
    fn tagged(r: Group, key: &str, value: &str) -> Group {
        r.tagged(key, value)
    }
    fn seed(cloud: &FakeCloud, scope: &Scope, r: Group) {
        cloud.add_group(scope, r);
    }
    fn get(cloud: &FakeCloud, scope: &Scope, id: &str) -> Group {
        cloud.group(scope, id).expect("the group is there")
    }
    fn is_up(r: &Group) -> bool {
        r.capacity == SIZE
    }
    fn is_down(r: &Group) -> bool {
        r.capacity == Capacity::ZERO
    }
    fn tag(cloud: &FakeCloud, scope: &Scope, id: &str, key: &str, value: &str) {
        let mut st = cloud.state.lock().unwrap();
        let g = st
            .groups
            .get_mut(scope)
            .unwrap()
            .iter_mut()
            .find(|g| g.name == id)
            .unwrap();
        g.tags.insert(key.into(), value.into());
    }
}

impl Subject for Instances {
    fn running(id: &str) -> Instance {
        Instance::test(id)
    }
    fn tagged(r: Instance, key: &str, value: &str) -> Instance {
        r.tagged(key, value)
    }
    fn seed(cloud: &FakeCloud, scope: &Scope, r: Instance) {
        cloud.add_instance(scope, r);
    }
    fn get(cloud: &FakeCloud, scope: &Scope, id: &str) -> Instance {
        cloud.instance(scope, id).expect("the instance is there")
    }
    fn is_up(r: &Instance) -> bool {
        r.state == InstanceState::Running
    }
    fn is_down(r: &Instance) -> bool {
        r.state == InstanceState::Stopped
    }
    fn tag(cloud: &FakeCloud, scope: &Scope, id: &str, key: &str, value: &str) {
        let mut st = cloud.state.lock().unwrap();
        let i = st
            .instances
            .get_mut(scope)
            .unwrap()
            .iter_mut()
            .find(|i| i.id == id)
            .unwrap();
        i.tags.insert(key.into(), value.into());
    }
}

fn scope() -> Scope {
    Scope {
        account: "111111111111".into(),
        region: "ap-northeast-2".into(),
    }
}

/// Wednesday 2026-11-25, one minute after `office-hours` stops (20:01 in Seoul).
const STOP: &str = "2026-11-25T11:01:00Z";
/// Thursday, one minute after it starts (08:01 in Seoul).
const START: &str = "2026-11-25T23:01:00Z";

async fn run(cfg: &Config, cloud: &FakeCloud, now: &str) -> offhours::report::PassReport {
    pass(
        cfg,
        cloud,
        PassOptions {
            now: fixtures::at(now),
            apply: true,
        },
    )
    .await
}

async fn converges_in_one_pass<K: Subject>() {
    let (cfg, cloud, s) = (fixtures::config(), FakeCloud::default(), scope());
    K::seed(&cloud, &s, K::tagged(K::running("r1"), "Schedule", "office-hours"));
    let first = run(&cfg, &cloud, STOP).await;
    assert_eq!(first.summary.failed, 0, "{}", first.to_text());
    assert!(
        K::is_down(&K::get(&cloud, &s, "r1")),
        "stopped after one pass:\n{}",
        first.to_text()
    );
    let second = pass(
        &cfg,
        &cloud,
        PassOptions {
            now: fixtures::at(STOP),
            apply: false,
        },
    )
    .await;
    assert_eq!(second.summary.changes, 0, "nothing left to do:\n{}", second.to_text());
}

async fn a_second_pass_makes_no_mutating_call<K: Subject>() {
    let (cfg, cloud, s) = (fixtures::config(), FakeCloud::default(), scope());
    for i in 0..3 {
        K::seed(
            &cloud,
            &s,
            K::tagged(K::running(&format!("r{i}")), "Schedule", "office-hours"),
        );
    }
    run(&cfg, &cloud, STOP).await;
    let before = cloud.mutating_calls();
    assert!(before > 0, "the first pass wrote");
    let again = run(&cfg, &cloud, STOP).await;
    assert_eq!(cloud.mutating_calls(), before, "{}", again.to_text());
}

async fn a_failed_listing_applies_nothing<K: Subject>() {
    let (cfg, cloud, s) = (fixtures::config(), FakeCloud::default(), scope());
    K::seed(&cloud, &s, K::tagged(K::running("r1"), "Schedule", "office-hours"));
    cloud.state.lock().unwrap().failing_kinds.insert(K::TYPE);
    let r = run(&cfg, &cloud, STOP).await;
    assert_eq!(r.scopes[0].status, ScopeStatus::Failed);
    assert!(r.has_failures());
    assert!(K::is_up(&K::get(&cloud, &s, "r1")), "left as it was");
    assert_eq!(cloud.mutating_calls(), 0, "{}", r.to_text());
}

async fn another_kinds_failed_listing_does_not_stop_this_one<K: Subject>() {
    let (cfg, cloud, s) = (fixtures::config(), FakeCloud::default(), scope());
    K::seed(&cloud, &s, K::tagged(K::running("r1"), "Schedule", "office-hours"));
    let others: Vec<ResourceType> = ResourceType::ALL.into_iter().filter(|t| *t != K::TYPE).collect();
    assert!(!others.is_empty());
    cloud.state.lock().unwrap().failing_kinds.extend(others);
    let r = run(&cfg, &cloud, STOP).await;
    assert_eq!(
        r.scopes[0].status,
        ScopeStatus::Failed,
        "the other kinds' failure is reported"
    );
    assert!(K::is_down(&K::get(&cloud, &s, "r1")), "{}", r.to_text());
}

async fn an_override_holds_until_it_ends<K: Subject>() {
    let (cfg, cloud, s) = (fixtures::config(), FakeCloud::default(), scope());
    let r = K::tagged(K::running("r1"), "Schedule", "office-hours");
    K::seed(
        &cloud,
        &s,
        K::tagged(r, TAG_OVERRIDE, "running until 2026-11-25T13:00:00Z"),
    );
    let held = run(&cfg, &cloud, STOP).await;
    assert!(K::is_up(&K::get(&cloud, &s, "r1")), "held up:\n{}", held.to_text());
    let later = run(&cfg, &cloud, "2026-11-25T13:01:00Z").await;
    assert!(
        K::is_down(&K::get(&cloud, &s, "r1")),
        "down once it ended:\n{}",
        later.to_text()
    );
}

async fn a_remediation_can_be_reversed<K: Subject>() {
    let cfg = fixtures::config_from(&format!("{}policy:\n  on_untagged: stop\n", fixtures::CONFIG));
    let (cloud, s) = (FakeCloud::default(), scope());
    K::seed(&cloud, &s, K::running("r1"));
    let r = run(&cfg, &cloud, STOP).await;
    assert!(K::is_down(&K::get(&cloud, &s, "r1")), "remediated:\n{}", r.to_text());
    assert!(K::tags(&K::get(&cloud, &s, "r1")).contains_key("offhours:remediated"));
    // Its team tags it: the schedule takes over, and at its next start it is back as it was.
    K::tag(&cloud, &s, "r1", "Schedule", "office-hours");
    let r = run(&cfg, &cloud, START).await;
    assert!(K::is_up(&K::get(&cloud, &s, "r1")), "restored:\n{}", r.to_text());
}

/// One module per kind, one test per property.
macro_rules! conformance {
    ($($kind:ident => $name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[tokio::test]
            async fn converges_in_one_pass() {
                super::converges_in_one_pass::<$kind>().await;
            }
            #[tokio::test]
            async fn a_second_pass_makes_no_mutating_call() {
                super::a_second_pass_makes_no_mutating_call::<$kind>().await;
            }
            #[tokio::test]
            async fn a_failed_listing_applies_nothing() {
                super::a_failed_listing_applies_nothing::<$kind>().await;
            }
            #[tokio::test]
            async fn another_kinds_failed_listing_does_not_stop_this_one() {
                super::another_kinds_failed_listing_does_not_stop_this_one::<$kind>().await;
            }
            #[tokio::test]
            async fn an_override_holds_until_it_ends() {
                super::an_override_holds_until_it_ends::<$kind>().await;
            }
            #[tokio::test]
            async fn a_remediation_can_be_reversed() {
                super::a_remediation_can_be_reversed::<$kind>().await;
            }
        }
    )*};
}

conformance!(Groups => groups, Instances => instances);
