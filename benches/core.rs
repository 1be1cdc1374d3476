//! Micro-benchmarks of the pure core: schedule evaluation, Auto Scaling compilation and
//! the planner, on the shipped config (`config/offhours.yaml`).
//!
//! `cargo bench --bench core` (full measurement); `cargo test --benches` runs each once.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use offhours::capacity::Capacity;
use offhours::compile::{self, MAX_ACTIONS_PER_GROUP, Request};
use offhours::config::Config;
use offhours::kind::group::plan_group;
use offhours::kind::instance::plan_instance;
use offhours::model::{Group, Instance, InstanceState, Market, ObservedAction, TAG_LAST, TAG_SAVED, TAG_SCHEDULE};
use offhours::schedule::MEMO_ENTRIES;

fn key() -> offhours::seal::StateKey {
    offhours::seal::StateKey::new(b"benchmark-state-key", "bench").unwrap()
}

fn config() -> Config {
    Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/offhours.yaml"))
        .unwrap()
        .with_state_key(key())
}

/// Wednesday noon in Seoul, mid-December (holidays ahead in the horizon).
fn noon() -> DateTime<Utc> {
    "2026-12-16T03:00:00Z".parse().unwrap()
}

const RUNNING: Capacity = Capacity {
    min: 1,
    max: 4,
    desired: 2,
};

/// A group in steady state: its actions are the compiled ones, its tags recorded.
fn steady_group(cfg: &Config, name: &str, now: DateTime<Utc>) -> Group {
    steady_group_on(cfg, name, "office-hours", RUNNING, now)
}

/// A group in steady state on the named schedule, at the given running size.
fn steady_group_on(cfg: &Config, name: &str, schedule: &str, running: Capacity, now: DateTime<Utc>) -> Group {
    let s = cfg.schedule(schedule).unwrap();
    let actions = compile::compile(Request {
        schedule: s,
        running,
        group: name,
        now,
        horizon_days: cfg.holiday_horizon_days,
        room: MAX_ACTIONS_PER_GROUP,
        hold: None,
    })
    .unwrap();
    let arn = format!("arn:aws:autoscaling:ap-northeast-2:111122223333:autoScalingGroup:u:autoScalingGroupName/{name}");
    Group {
        name: name.into(),
        tags: BTreeMap::from([
            (cfg.tag_key.clone(), schedule.into()),
            (TAG_SAVED.into(), offhours::seal::seal_capacity(&key(), &arn, running)),
            (TAG_SCHEDULE.into(), schedule.into()),
        ]),
        arn,
        capacity: running,
        actions: actions
            .iter()
            .map(|a| ObservedAction::from(&a.normalized(now)))
            .collect(),
        created: None,
        instance_type: None,
    }
}

/// A running instance, adopted, with its last transition recorded.
fn steady_instance(cfg: &Config, id: &str) -> Instance {
    Instance {
        id: id.into(),
        state: InstanceState::Running,
        launched: Some("2026-11-01T00:00:00Z".parse().unwrap()),
        tags: BTreeMap::from([
            (cfg.tag_key.clone(), "office-hours".into()),
            (TAG_SCHEDULE.into(), "office-hours".into()),
            (TAG_LAST.into(), "start 2026-12-15T23:00:00Z".into()),
        ]),
        market: Market::OnDemand,
        instance_store_root: false,
        hibernation: false,
        instance_type: Some("t3.micro".into()),
        state_reason: None,
    }
}

fn schedule(c: &mut Criterion) {
    let cfg = config();
    let s = cfg.schedule("office-hours").unwrap().clone();
    let now = noon();
    let mut g = c.benchmark_group("schedule");
    g.bench_function("state_at", |b| b.iter(|| s.state_at(black_box(now))));
    // Each call at another moment, cycling through more moments than the memo keeps (it
    // drops its oldest answer first): worked out afresh every time.
    let mut minute = 0;
    g.bench_function("next_transitions(2), fresh", |b| {
        b.iter(|| {
            minute = (minute + 1) % (MEMO_ENTRIES as i64 + 1);
            s.next_transitions(black_box(now + Duration::minutes(minute)), 2)
        })
    });
    // The same moment again (the next instance of a pass): the memo's answer.
    g.bench_function("next_transitions(2), again", |b| {
        b.iter(|| s.next_transitions(black_box(now), 2))
    });
    g.bench_function("transitions over a week", |b| {
        b.iter(|| s.transitions(black_box(now), now + Duration::days(7)))
    });
    g.finish();
}

fn compilation(c: &mut Criterion) {
    let cfg = config();
    let now = noon();
    let mut g = c.benchmark_group("compile");
    for name in ["office-hours", "weekend-off", "us-east-office"] {
        let Some(s) = cfg.schedule(name) else { continue };
        let req = |group, now| Request {
            schedule: s,
            running: RUNNING,
            group,
            now,
            horizon_days: cfg.holiday_horizon_days,
            room: MAX_ACTIONS_PER_GROUP,
            hold: None,
        };
        // Each call at another moment, more moments than the memo keeps: a full
        // compilation every time.
        let mut minute = 0;
        g.bench_function(format!("{name}, fresh"), |b| {
            b.iter(|| {
                minute = (minute + 1) % (MEMO_ENTRIES as i64 + 1);
                compile::compile(req("dev-web", now + Duration::minutes(minute)))
            })
        });
        // The same schedule and moment for the next group: renamed from the last one.
        g.bench_function(format!("{name}, next group"), |b| {
            b.iter(|| compile::compile(req(black_box("dev-api"), now)))
        });
    }
    g.finish();
}

fn planner(c: &mut Criterion) {
    let cfg = config();
    let now = noon();
    let group = steady_group(&cfg, "dev-web", now);
    let instance = steady_instance(&cfg, "i-0123456789abcdef0");
    let mut g = c.benchmark_group("plan");
    g.bench_function("group, steady state", |b| {
        b.iter(|| plan_group(&cfg, black_box(&group), now))
    });
    let mut fresh = group.clone();
    fresh.actions.clear();
    fresh.tags.retain(|k, _| k == &cfg.tag_key);
    g.bench_function("group, first pass", |b| {
        b.iter(|| plan_group(&cfg, black_box(&fresh), now))
    });
    g.bench_function("instance, steady state", |b| {
        b.iter(|| plan_instance(&cfg, black_box(&instance), now))
    });
    let stop = "2026-12-16T11:01:00Z".parse().unwrap();
    g.bench_function("instance, 20:00 transition", |b| {
        b.iter(|| plan_instance(&cfg, black_box(&instance), stop))
    });
    // A scope of 5,000 resources: 2,500 groups and 2,500 instances.
    let groups: Vec<Group> = (0..2500)
        .map(|i| steady_group(&cfg, &format!("dev-{i:05}"), now))
        .collect();
    let instances: Vec<Instance> = (0..2500)
        .map(|i| steady_instance(&cfg, &format!("i-{i:017x}")))
        .collect();
    g.throughput(Throughput::Elements(5000));
    g.sample_size(20);
    g.bench_function("scope of 5,000, steady state", |b| {
        b.iter(|| {
            let planned = groups
                .iter()
                .filter(|x| !plan_group(&cfg, x, now).steps.is_empty())
                .count();
            planned
                + instances
                    .iter()
                    .filter(|x| plan_instance(&cfg, x, now).is_some())
                    .count()
        })
    });
    // The same scope with variety: groups on three schedules at five running sizes, listed
    // interleaved, so that a memo holding only the last answer would miss for every group.
    let sizes = [(1, 2, 1), (2, 4, 3), (0, 10, 5), (1, 1, 1), (3, 6, 4)];
    let schedules = ["office-hours", "weekend-off", "us-east-office"];
    let mixed: Vec<Group> = (0..2500)
        .map(|i| {
            let (min, max, desired) = sizes[i % sizes.len()];
            let running = Capacity { min, max, desired };
            steady_group_on(
                &cfg,
                &format!("dev-{i:05}"),
                schedules[i % schedules.len()],
                running,
                now,
            )
        })
        .collect();
    let pending = mixed
        .iter()
        .filter(|x| !plan_group(&cfg, x, now).steps.is_empty())
        .count();
    assert_eq!(pending, 0, "the mixed scope is meant to be in steady state");
    g.bench_function("scope of 5,000, mixed schedules and sizes, steady state", |b| {
        b.iter(|| {
            let planned = mixed
                .iter()
                .filter(|x| !plan_group(&cfg, x, now).steps.is_empty())
                .count();
            planned
                + instances
                    .iter()
                    .filter(|x| plan_instance(&cfg, x, now).is_some())
                    .count()
        })
    });
    g.finish();
}

criterion_group!(benches, schedule, compilation, planner);
criterion_main!(benches);
