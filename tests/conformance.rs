//! The conformance suite every resource kind passes, against the in-memory cloud (through
//! the controller the daemon runs) and, for each AWS adapter, against moto (through the
//! offhours binary): it converges in one pass; a second pass makes no mutating call; a
//! failed listing applies nothing (and does not stop the other kinds); an override holds;
//! a remediation can be reversed.
//!
//! Adding a kind: give it a [`World`] in memory and on moto, and add its lines to
//! `conformance!` at the end. The oracle of each property is the resource as read back
//! from the cloud after the pass (its power state, its tags), never the plan.

mod support;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;

use offhours::capacity::Capacity;
use offhours::cloud::fake::FakeCloud;
use offhours::controller::{PassOptions, pass};
use offhours::fixtures;
use offhours::kind::ResourceType;
use offhours::model::{Database, DbKind, Group, Instance, InstanceState, Scope, TAG_OVERRIDE};
use support::moto::{MANAGEMENT, Moto};

/// A resource's power, as the properties judge it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Power {
    /// Running as it was seeded (a group at its own size, an instance up).
    Up,
    /// Stopped (a group at 0/0/0, an instance stopped).
    Down,
    /// Anything else.
    Other,
}

/// What a pass reported.
#[derive(Debug)]
struct Passed {
    /// A scope (or a kind in it) failed.
    scope_failed: bool,
    /// Changes planned or made.
    changes: u64,
    /// Mutating calls made.
    writes: u64,
    /// The report, for failure messages.
    text: String,
}

/// A cloud with one kind of resource seeded in it, and a way to run a pass over it.
trait World {
    /// This world's kind.
    const TYPE: ResourceType;
    /// Seeds a running resource named `name` with `tags`; returns its id.
    async fn seed(&self, name: &str, tags: &[(&str, &str)]) -> String;
    /// Its power and tags, read back.
    async fn read(&self, id: &str) -> (Power, BTreeMap<String, String>);
    /// Adds a tag, as a person would.
    async fn tag(&self, id: &str, key: &str, value: &str);
    /// Makes the next pass's listing of `kind` fail.
    fn fail_listing(&self, kind: ResourceType);
    /// One pass at `now` under `config` (YAML), applying or not.
    async fn pass(&self, config: &str, now: &str, apply: bool) -> Passed;
}

/// The in-memory cloud.
struct Memory {
    kind: ResourceType,
    cloud: FakeCloud,
}

fn scope() -> Scope {
    Scope {
        account: "111111111111".into(),
        region: "us-east-1".into(),
    }
}

const SIZE: Capacity = Capacity {
    min: 1,
    max: 2,
    desired: 1,
};

fn power_of_size(c: Capacity) -> Power {
    match c {
        SIZE => Power::Up,
        Capacity::ZERO => Power::Down,
        _ => Power::Other,
    }
}

impl Memory {
    fn new(kind: ResourceType) -> Self {
        Memory {
            kind,
            cloud: FakeCloud::default(),
        }
    }
}

struct MemoryGroups(Memory);
struct MemoryInstances(Memory);

impl World for MemoryGroups {
    const TYPE: ResourceType = ResourceType::AutoScalingGroup;
    async fn seed(&self, name: &str, tags: &[(&str, &str)]) -> String {
        let g = tags
            .iter()
            .fold(Group::test(name).sized(SIZE), |g, (k, v)| g.tagged(k, v));
        self.0.cloud.add_group(&scope(), g);
        name.into()
    }
    async fn read(&self, id: &str) -> (Power, BTreeMap<String, String>) {
        let g = self.0.cloud.group(&scope(), id).unwrap();
        (power_of_size(g.capacity), g.tags)
    }
    async fn tag(&self, id: &str, key: &str, value: &str) {
        let mut st = self.0.cloud.state.lock().unwrap();
        let g = st
            .groups
            .get_mut(&scope())
            .unwrap()
            .iter_mut()
            .find(|g| g.name == id)
            .unwrap();
        g.tags.insert(key.into(), value.into());
    }
    fn fail_listing(&self, kind: ResourceType) {
        self.0.cloud.state.lock().unwrap().failing_kinds.insert(kind);
    }
    async fn pass(&self, config: &str, now: &str, apply: bool) -> Passed {
        memory_pass(&self.0, config, now, apply).await
    }
}

impl World for MemoryInstances {
    const TYPE: ResourceType = ResourceType::Instance;
    async fn seed(&self, name: &str, tags: &[(&str, &str)]) -> String {
        let i = tags.iter().fold(Instance::test(name), |i, (k, v)| i.tagged(k, v));
        self.0.cloud.add_instance(&scope(), i);
        name.into()
    }
    async fn read(&self, id: &str) -> (Power, BTreeMap<String, String>) {
        let i = self.0.cloud.instance(&scope(), id).unwrap();
        let p = match i.state {
            InstanceState::Running => Power::Up,
            InstanceState::Stopped => Power::Down,
            _ => Power::Other,
        };
        (p, i.tags)
    }
    async fn tag(&self, id: &str, key: &str, value: &str) {
        let mut st = self.0.cloud.state.lock().unwrap();
        let i = st
            .instances
            .get_mut(&scope())
            .unwrap()
            .iter_mut()
            .find(|i| i.id == id)
            .unwrap();
        i.tags.insert(key.into(), value.into());
    }
    fn fail_listing(&self, kind: ResourceType) {
        self.0.cloud.state.lock().unwrap().failing_kinds.insert(kind);
    }
    async fn pass(&self, config: &str, now: &str, apply: bool) -> Passed {
        memory_pass(&self.0, config, now, apply).await
    }
}

async fn memory_pass(m: &Memory, config: &str, now: &str, apply: bool) -> Passed {
    assert!(ResourceType::ALL.contains(&m.kind));
    let before = m.cloud.mutating_calls();
    let r = pass(
        &fixtures::config_from(config),
        &m.cloud,
        PassOptions {
            now: fixtures::at(now),
            apply,
        },
    )
    .await;
    Passed {
        scope_failed: r.summary.scopes_failed > 0,
        changes: r.summary.changes as u64,
        writes: m.cloud.mutating_calls() - before,
        text: r.to_text(),
    }
}

/// moto, through the offhours binary and the strict layer.
struct OnMoto {
    moto: Moto,
    /// Config files written so far (kept until the test ends).
    dirs: RefCell<Vec<tempfile::TempDir>>,
}

impl OnMoto {
    fn new() -> Self {
        OnMoto {
            moto: Moto::start(),
            dirs: RefCell::new(Vec::new()),
        }
    }

    fn config(&self, text: &str) -> PathBuf {
        // moto stamps launches with the real clock, which may be past the simulated times.
        let text =
            format!("{text}regions: [us-east-1]\ninstances:\n  grace_minutes: 0\ndatabases:\n  grace_minutes: 0\n");
        let text = if text.contains("policy:\n") {
            text.replace("policy:\n", "policy:\n  untagged_grace_minutes: 0\n")
        } else {
            text
        };
        let (dir, path) = support::moto::config(&text);
        self.dirs.borrow_mut().push(dir);
        path
    }

    fn pass(&self, config: &str, now: &str, apply: bool) -> Passed {
        let path = self.config(config);
        let r = self
            .moto
            .pass_status(&path, if apply { "reconcile" } else { "plan" }, now);
        // Failures injected for this pass end with it (the test's own reads go through the
        // same proxy).
        for op in LISTINGS {
            self.moto.proxy().fail_next(op, 0);
        }
        Passed {
            scope_failed: r["summary"]["scopes_failed"].as_u64() != Some(0),
            changes: r["summary"]["changes"].as_u64().unwrap(),
            writes: support::moto::mutating_calls(&r)
                .iter()
                .map(|k| r["api_calls"][k].as_u64().unwrap())
                .sum(),
            text: format!("{r:#}"),
        }
    }

    /// The strict proxy answers the next requests of `operation` with a 500 (more than the
    /// SDK's retries).
    fn fail(&self, kind: ResourceType) {
        let op = match kind {
            ResourceType::AutoScalingGroup => LISTINGS[0],
            ResourceType::Instance => LISTINGS[1],
            ResourceType::DbInstance => LISTINGS[2],
            ResourceType::DbCluster => LISTINGS[3],
        };
        self.moto.proxy().fail_next(op, 20);
    }
}

/// The listing operation of each kind.
const LISTINGS: [&str; 4] = [
    "DescribeAutoScalingGroups",
    "DescribeInstances",
    "DescribeDBInstances",
    "DescribeDBClusters",
];

struct MotoGroups(OnMoto);
struct MotoInstances(OnMoto);

impl World for MotoGroups {
    const TYPE: ResourceType = ResourceType::AutoScalingGroup;
    async fn seed(&self, name: &str, tags: &[(&str, &str)]) -> String {
        let sdk = self.0.moto.sdk_in(MANAGEMENT, "us-east-1").await;
        support::moto::group(&sdk, name, (SIZE.min, SIZE.max, SIZE.desired), tags).await;
        name.into()
    }
    async fn read(&self, id: &str) -> (Power, BTreeMap<String, String>) {
        let asg = aws_sdk_autoscaling::Client::new(&self.0.moto.sdk_in(MANAGEMENT, "us-east-1").await);
        let (c, tags, _) = support::moto::read_group(&asg, id).await;
        (power_of_size(c), tags)
    }
    async fn tag(&self, id: &str, key: &str, value: &str) {
        let asg = aws_sdk_autoscaling::Client::new(&self.0.moto.sdk_in(MANAGEMENT, "us-east-1").await);
        let t = aws_sdk_autoscaling::types::Tag::builder()
            .resource_id(id)
            .resource_type("auto-scaling-group")
            .key(key)
            .value(value)
            .propagate_at_launch(false)
            .build();
        asg.create_or_update_tags().tags(t).send().await.unwrap();
    }
    fn fail_listing(&self, kind: ResourceType) {
        self.0.fail(kind);
    }
    async fn pass(&self, config: &str, now: &str, apply: bool) -> Passed {
        self.0.pass(config, now, apply)
    }
}

impl World for MotoInstances {
    const TYPE: ResourceType = ResourceType::Instance;
    async fn seed(&self, _name: &str, tags: &[(&str, &str)]) -> String {
        let ec2 = aws_sdk_ec2::Client::new(&self.0.moto.sdk_in(MANAGEMENT, "us-east-1").await);
        support::world::launch(&ec2, tags, 1).await.remove(0)
    }
    async fn read(&self, id: &str) -> (Power, BTreeMap<String, String>) {
        use aws_sdk_ec2::types::InstanceStateName as S;
        let ec2 = aws_sdk_ec2::Client::new(&self.0.moto.sdk_in(MANAGEMENT, "us-east-1").await);
        let out = ec2.describe_instances().instance_ids(id).send().await.unwrap();
        let i = out.reservations()[0].instances()[0].clone();
        let p = match i.state().and_then(|s| s.name()) {
            Some(S::Running | S::Pending) => Power::Up,
            Some(S::Stopped | S::Stopping) => Power::Down,
            _ => Power::Other,
        };
        let tags = i
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
            .collect();
        (p, tags)
    }
    async fn tag(&self, id: &str, key: &str, value: &str) {
        let ec2 = aws_sdk_ec2::Client::new(&self.0.moto.sdk_in(MANAGEMENT, "us-east-1").await);
        ec2.create_tags()
            .resources(id)
            .tags(aws_sdk_ec2::types::Tag::builder().key(key).value(value).build())
            .send()
            .await
            .unwrap();
    }
    fn fail_listing(&self, kind: ResourceType) {
        self.0.fail(kind);
    }
    async fn pass(&self, config: &str, now: &str, apply: bool) -> Passed {
        self.0.pass(config, now, apply)
    }
}

fn power_of_status(status: &str) -> Power {
    match status {
        "available" => Power::Up,
        "stopped" => Power::Down,
        _ => Power::Other,
    }
}

struct MemoryDbInstances(Memory);

impl World for MemoryDbInstances {
    const TYPE: ResourceType = ResourceType::DbInstance;
    async fn seed(&self, name: &str, tags: &[(&str, &str)]) -> String {
        let d = Database {
            id: name.into(),
            arn: format!("arn:aws:rds:us-east-1:111111111111:db:{name}"),
            status: "available".into(),
            engine: "postgres".into(),
            class: Some("db.t3.micro".into()),
            created: Some(fixtures::at("2026-11-01T00:00:00Z")),
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        };
        self.0.cloud.add_database(&scope(), DbKind::Instance, d);
        name.into()
    }
    async fn read(&self, id: &str) -> (Power, BTreeMap<String, String>) {
        let d = self.0.cloud.database(&scope(), DbKind::Instance, id).unwrap();
        (power_of_status(&d.status), d.tags)
    }
    async fn tag(&self, id: &str, key: &str, value: &str) {
        let mut st = self.0.cloud.state.lock().unwrap();
        let d = st
            .databases
            .get_mut(&scope())
            .unwrap()
            .iter_mut()
            .find(|(_, d)| d.id == id)
            .unwrap();
        d.1.tags.insert(key.into(), value.into());
    }
    fn fail_listing(&self, kind: ResourceType) {
        self.0.cloud.state.lock().unwrap().failing_kinds.insert(kind);
    }
    async fn pass(&self, config: &str, now: &str, apply: bool) -> Passed {
        memory_pass(&self.0, config, now, apply).await
    }
}

struct MemoryDbClusters(Memory);

impl World for MemoryDbClusters {
    const TYPE: ResourceType = ResourceType::DbCluster;
    async fn seed(&self, name: &str, tags: &[(&str, &str)]) -> String {
        let d = Database {
            id: name.into(),
            arn: format!("arn:aws:rds:us-east-1:111111111111:cluster:{name}"),
            status: "available".into(),
            engine: "aurora-postgresql".into(),
            engine_mode: Some("provisioned".into()),
            created: Some(fixtures::at("2026-11-01T00:00:00Z")),
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        };
        self.0.cloud.add_database(&scope(), DbKind::Cluster, d);
        name.into()
    }
    async fn read(&self, id: &str) -> (Power, BTreeMap<String, String>) {
        let d = self.0.cloud.database(&scope(), DbKind::Cluster, id).unwrap();
        (power_of_status(&d.status), d.tags)
    }
    async fn tag(&self, id: &str, key: &str, value: &str) {
        let mut st = self.0.cloud.state.lock().unwrap();
        let d = st
            .databases
            .get_mut(&scope())
            .unwrap()
            .iter_mut()
            .find(|(_, d)| d.id == id)
            .unwrap();
        d.1.tags.insert(key.into(), value.into());
    }
    fn fail_listing(&self, kind: ResourceType) {
        self.0.cloud.state.lock().unwrap().failing_kinds.insert(kind);
    }
    async fn pass(&self, config: &str, now: &str, apply: bool) -> Passed {
        memory_pass(&self.0, config, now, apply).await
    }
}

struct MotoDbClusters(OnMoto);

impl MotoDbClusters {
    async fn rds(&self) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::new(&self.0.moto.sdk_in(MANAGEMENT, "us-east-1").await)
    }
}

impl World for MotoDbClusters {
    const TYPE: ResourceType = ResourceType::DbCluster;
    async fn seed(&self, name: &str, tags: &[(&str, &str)]) -> String {
        let tags = tags
            .iter()
            .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(*k).value(*v).build())
            .collect();
        self.rds()
            .await
            .create_db_cluster()
            .db_cluster_identifier(name)
            .engine("aurora-postgresql")
            .master_username("offhours")
            .master_user_password("not-a-real-password")
            .set_tags(Some(tags))
            .send()
            .await
            .unwrap();
        name.into()
    }
    async fn read(&self, id: &str) -> (Power, BTreeMap<String, String>) {
        let out = self
            .rds()
            .await
            .describe_db_clusters()
            .db_cluster_identifier(id)
            .send()
            .await
            .unwrap();
        let c = &out.db_clusters()[0];
        let tags = c
            .tag_list()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
            .collect();
        (power_of_status(c.status().unwrap_or_default()), tags)
    }
    async fn tag(&self, id: &str, key: &str, value: &str) {
        let rds = self.rds().await;
        let arn = rds
            .describe_db_clusters()
            .db_cluster_identifier(id)
            .send()
            .await
            .unwrap()
            .db_clusters()[0]
            .db_cluster_arn()
            .unwrap()
            .to_string();
        rds.add_tags_to_resource()
            .resource_name(arn)
            .tags(aws_sdk_rds::types::Tag::builder().key(key).value(value).build())
            .send()
            .await
            .unwrap();
    }
    fn fail_listing(&self, kind: ResourceType) {
        self.0.fail(kind);
    }
    async fn pass(&self, config: &str, now: &str, apply: bool) -> Passed {
        self.0.pass(config, now, apply)
    }
}

struct MotoDbInstances(OnMoto);

impl MotoDbInstances {
    async fn rds(&self) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::new(&self.0.moto.sdk_in(MANAGEMENT, "us-east-1").await)
    }
}

impl World for MotoDbInstances {
    const TYPE: ResourceType = ResourceType::DbInstance;
    async fn seed(&self, name: &str, tags: &[(&str, &str)]) -> String {
        support::moto::database(&self.rds().await, name, tags).await;
        name.into()
    }
    async fn read(&self, id: &str) -> (Power, BTreeMap<String, String>) {
        let out = self
            .rds()
            .await
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
            .unwrap();
        let d = &out.db_instances()[0];
        let tags = d
            .tag_list()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
            .collect();
        (power_of_status(d.db_instance_status().unwrap_or_default()), tags)
    }
    async fn tag(&self, id: &str, key: &str, value: &str) {
        let rds = self.rds().await;
        let arn = rds
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
            .unwrap()
            .db_instances()[0]
            .db_instance_arn()
            .unwrap()
            .to_string();
        rds.add_tags_to_resource()
            .resource_name(arn)
            .tags(aws_sdk_rds::types::Tag::builder().key(key).value(value).build())
            .send()
            .await
            .unwrap();
    }
    fn fail_listing(&self, kind: ResourceType) {
        self.0.fail(kind);
    }
    async fn pass(&self, config: &str, now: &str, apply: bool) -> Passed {
        self.0.pass(config, now, apply)
    }
}

/// Wednesday 2026-11-25, one minute after `office-hours` stops (20:01 in Seoul).
const STOP: &str = "2026-11-25T11:01:00Z";
/// Thursday, one minute after it starts (08:01 in Seoul).
const START: &str = "2026-11-25T23:01:00Z";
const SCHEDULED: &[(&str, &str)] = &[("Schedule", "office-hours")];

fn config() -> String {
    fixtures::CONFIG.to_string()
}

async fn converges_in_one_pass(w: &impl World) {
    let id = w.seed("r1", SCHEDULED).await;
    let first = w.pass(&config(), STOP, true).await;
    assert!(!first.scope_failed, "{}", first.text);
    assert_eq!(
        w.read(&id).await.0,
        Power::Down,
        "stopped after one pass:\n{}",
        first.text
    );
    let second = w.pass(&config(), STOP, false).await;
    assert_eq!(second.changes, 0, "nothing left to do:\n{}", second.text);
}

async fn a_second_pass_makes_no_mutating_call(w: &impl World) {
    for i in 0..3 {
        w.seed(&format!("r{i}"), SCHEDULED).await;
    }
    let first = w.pass(&config(), STOP, true).await;
    assert!(first.writes > 0, "the first pass wrote:\n{}", first.text);
    let again = w.pass(&config(), STOP, true).await;
    assert_eq!(again.writes, 0, "{}", again.text);
}

async fn a_failed_listing_applies_nothing<W: World>(w: &W) {
    let id = w.seed("r1", SCHEDULED).await;
    w.fail_listing(W::TYPE);
    let r = w.pass(&config(), STOP, true).await;
    assert!(r.scope_failed, "{}", r.text);
    assert_eq!(r.writes, 0, "{}", r.text);
    assert_eq!(w.read(&id).await.0, Power::Up, "left as it was");
}

async fn another_kinds_failed_listing_does_not_stop_this_one<W: World>(w: &W) {
    let id = w.seed("r1", SCHEDULED).await;
    for other in ResourceType::ALL.into_iter().filter(|t| *t != W::TYPE) {
        w.fail_listing(other);
    }
    let r = w.pass(&config(), STOP, true).await;
    assert!(r.scope_failed, "the other kinds' failure is reported:\n{}", r.text);
    assert_eq!(w.read(&id).await.0, Power::Down, "{}", r.text);
}

async fn an_override_holds_until_it_ends(w: &impl World) {
    let id = w
        .seed(
            "r1",
            &[
                ("Schedule", "office-hours"),
                (TAG_OVERRIDE, "running until 2026-11-25T13:00:00Z"),
            ],
        )
        .await;
    let held = w.pass(&config(), STOP, true).await;
    assert_eq!(w.read(&id).await.0, Power::Up, "held up:\n{}", held.text);
    let later = w.pass(&config(), "2026-11-25T13:01:00Z", true).await;
    assert_eq!(w.read(&id).await.0, Power::Down, "down once it ended:\n{}", later.text);
}

async fn a_remediation_can_be_reversed(w: &impl World) {
    let cfg = format!("{}policy:\n  on_untagged: stop\n", config());
    let id = w.seed("r1", &[("Team", "payments")]).await;
    let r = w.pass(&cfg, STOP, true).await;
    let (power, tags) = w.read(&id).await;
    assert_eq!(power, Power::Down, "remediated:\n{}", r.text);
    assert!(tags.contains_key("offhours:remediated"), "recorded: {tags:?}");
    // Its team tags it: the schedule takes over, and at its next start it is back as it was.
    w.tag(&id, "Schedule", "office-hours").await;
    let r = w.pass(&cfg, START, true).await;
    assert_eq!(w.read(&id).await.0, Power::Up, "restored:\n{}", r.text);
}

/// One module per world, one test per property.
macro_rules! conformance {
    ($($name:ident => $world:expr, $flavor:meta);* $(;)?) => {$(
        mod $name {
            use super::*;
            #[$flavor]
            async fn converges_in_one_pass() {
                super::converges_in_one_pass(&$world).await;
            }
            #[$flavor]
            async fn a_second_pass_makes_no_mutating_call() {
                super::a_second_pass_makes_no_mutating_call(&$world).await;
            }
            #[$flavor]
            async fn a_failed_listing_applies_nothing() {
                super::a_failed_listing_applies_nothing(&$world).await;
            }
            #[$flavor]
            async fn another_kinds_failed_listing_does_not_stop_this_one() {
                super::another_kinds_failed_listing_does_not_stop_this_one(&$world).await;
            }
            #[$flavor]
            async fn an_override_holds_until_it_ends() {
                super::an_override_holds_until_it_ends(&$world).await;
            }
            #[$flavor]
            async fn a_remediation_can_be_reversed() {
                super::a_remediation_can_be_reversed(&$world).await;
            }
        }
    )*};
}

conformance! {
    groups_in_memory => MemoryGroups(Memory::new(ResourceType::AutoScalingGroup)), tokio::test;
    instances_in_memory => MemoryInstances(Memory::new(ResourceType::Instance)), tokio::test;
    groups_on_moto => MotoGroups(OnMoto::new()), tokio::test(flavor = "multi_thread");
    instances_on_moto => MotoInstances(OnMoto::new()), tokio::test(flavor = "multi_thread");
    db_instances_in_memory => MemoryDbInstances(Memory::new(ResourceType::DbInstance)), tokio::test;
    db_instances_on_moto => MotoDbInstances(OnMoto::new()), tokio::test(flavor = "multi_thread");
    db_clusters_in_memory => MemoryDbClusters(Memory::new(ResourceType::DbCluster)), tokio::test;
    db_clusters_on_moto => MotoDbClusters(OnMoto::new()), tokio::test(flavor = "multi_thread");
}
