//! Scale beyond moto: the real controller over an in-process fake cloud with per-call
//! latency and per-account rate limits.
//!
//! `cargo run --release --example scale -- [ACCOUNTS] [REGIONS] [RESOURCES_PER_SCOPE]`
//! (defaults 1000 4 50: half groups, half instances; 50 ms per call, 20 calls/s per
//! account, 256 scopes at once). Prints each pass's duration, changes, calls, the
//! process's resident memory before the pass (the fake cloud's own state is most of it)
//! and its peak during the pass (the high-water mark is reset before each pass).

use std::time::{Duration, Instant};

use offhours::capacity::Capacity;
use offhours::cloud::fake::FakeCloud;
use offhours::config::Config;
use offhours::controller::{PassOptions, pass};
use offhours::model::{Group, Instance, InstanceState, Market, Scope};

/// A memory figure of this process from /proc/self/status, in MiB: `VmRSS` (now) or
/// `VmHWM` (peak).
fn mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

unsafe extern "C" {
    /// glibc: returns freed heap memory to the system.
    fn malloc_trim(pad: usize) -> i32;
}

/// Returns freed memory to the system (so the RSS before a pass is live data: mostly the
/// fake cloud's state, not what the previous pass freed) and resets the peak-RSS mark
/// (Linux: `5` to clear_refs), so each pass's peak is its own.
fn reset_peak() {
    // SAFETY: malloc_trim only releases free heap pages; it has no preconditions.
    unsafe {
        malloc_trim(0);
    }
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (accounts, regions, per_scope) = (
        args.first().copied().unwrap_or(1000),
        args.get(1).copied().unwrap_or(4),
        args.get(2).copied().unwrap_or(50),
    );
    let cloud = FakeCloud {
        latency: Some(Duration::from_millis(50)),
        rate_per_account: Some(20.0),
        ..Default::default()
    };
    let region_names = [
        "ap-northeast-2",
        "us-east-1",
        "eu-west-1",
        "ap-southeast-1",
        "us-west-2",
        "eu-central-1",
    ];
    {
        let mut st = cloud.state.lock().unwrap();
        for a in 0..accounts {
            for r in region_names.iter().take(regions) {
                let scope = Scope {
                    account: format!("{:012}", 100_000_000_000u64 + a as u64),
                    region: (*r).to_string(),
                };
                let tags = |v: &str| [("Schedule".to_string(), v.to_string())].into_iter().collect();
                let groups = (0..per_scope / 2)
                    .map(|i| Group {
                        name: format!("g{i}"),
                        arn: format!(
                            "arn:aws:autoscaling:{}:{}:autoScalingGroup:00000000-0000-4000-8000-{i:012}:autoScalingGroupName/g{i}",
                            scope.region, scope.account
                        ),
                        capacity: Capacity {
                            min: 1,
                            max: 2,
                            desired: 1,
                        },
                        tags: tags("office-hours"),
                        ..Default::default()
                    })
                    .collect();
                let instances = (0..per_scope - per_scope / 2)
                    .map(|i| Instance {
                        id: format!("i-{a:06x}{i:04x}"),
                        state: InstanceState::Running,
                        launched: Some("2026-11-01T00:00:00Z".parse().unwrap()),
                        tags: tags("office-hours"),
                        market: Market::OnDemand,
                        instance_store_root: false,
                        hibernation: false,
                        instance_type: Some("t3.micro".into()),
                        state_reason: None,
                    })
                    .collect();
                st.groups.insert(scope.clone(), groups);
                st.instances.insert(scope, instances);
            }
        }
    }
    let cfg = Config::parse(
        "timezone: Asia/Seoul\nconcurrency: 256\nschedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\n",
        std::path::Path::new("scale.yaml"),
    )
    .unwrap()
    .with_state_key(offhours::seal::StateKey::new(b"scale-simulation-state-key", "example").unwrap());
    println!(
        "{accounts} accounts x {regions} regions x {per_scope} resources; 50 ms per call, 20 calls/s per account, 256 scopes at once"
    );
    println!("| pass | duration (s) | resources | changes | calls | RSS before (MiB) | peak RSS in the pass (MiB) |");
    println!("|---|---|---|---|---|---|---|");
    for (label, now) in [
        ("first pass (register, adopt)", "2026-12-16T12:00:00+09:00"),
        ("steady state", "2026-12-16T12:05:00+09:00"),
        ("20:00 transition", "2026-12-16T20:01:00+09:00"),
        ("steady state", "2026-12-16T20:06:00+09:00"),
    ] {
        let before: u64 = cloud.state.lock().unwrap().calls.values().sum();
        reset_peak();
        let rss_before = mib("VmRSS:");
        let t = Instant::now();
        let r = pass(
            &cfg,
            &cloud,
            PassOptions {
                now: offhours::schedule::parse_instant(now).unwrap(),
                apply: true,
            },
        )
        .await;
        let calls: u64 = cloud.state.lock().unwrap().calls.values().sum::<u64>() - before;
        println!(
            "| {label} | {:.1} | {} | {} | {calls} | {rss_before:.0} | {:.0} |",
            t.elapsed().as_secs_f64(),
            r.summary.resources,
            r.summary.changes,
            mib("VmHWM:")
        );
        assert_eq!(r.summary.scopes_failed, 0);
        drop(r);
    }
}
