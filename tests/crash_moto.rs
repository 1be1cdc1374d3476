//! Crash safety: `offhours run` is killed with SIGKILL at random points of its passes,
//! after random changes to the schedule tags of groups and servers (enrolments at night
//! that scale a group down, releases that restore it, schedule changes that replace
//! actions, stops and starts). After every kill the invariants of `support::world` hold;
//! after a restart, the daemon's first pass converges.
//!
//! Trials: `OFFHOURS_CRASH_TRIALS` (default 50); seed: `OFFHOURS_CRASH_SEED` (printed).

mod support;

use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, Utc};
use offhours::config::Config;
use support::daemon::Daemon;
use support::faults::{Proxy, Rates, Rng};
use support::moto::Moto;
use support::oracle::Book;
use support::world::{Key, World};

/// When the `edge` schedule's transition happens: the first whole minute at least 40 s
/// after the test starts, so that it falls inside the trials.
fn edge() -> DateTime<Utc> {
    static EDGE: std::sync::OnceLock<DateTime<Utc>> = std::sync::OnceLock::new();
    *EDGE.get_or_init(|| {
        let t = Utc::now() + chrono::Duration::seconds(40);
        t.duration_trunc(chrono::Duration::minutes(1)).unwrap() + chrono::Duration::minutes(1)
    })
}

/// Schedules relative to the real clock (the daemon has no other): `day` runs for three
/// hours either side of now, `night` is stopped then; both hold their state (`enforce`).
/// `edge` acts only at its transitions (no `enforce`): running until [`edge`], then stopped.
fn config_text() -> String {
    static WINDOW: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    let (window, edge_window) = WINDOW.get_or_init(|| {
        let now = Utc::now();
        let (from, to) = (now - chrono::Duration::hours(3), now + chrono::Duration::hours(3));
        (
            format!("{}-{}", from.format("%a %H:%M"), to.format("%a %H:%M")),
            format!("{}-{}", from.format("%a %H:%M"), edge().format("%a %H:%M")),
        )
    });
    format!(
        "timezone: UTC
interval_seconds: 3600
jitter_seconds: 0
regions: [us-east-1]
accounts:
  mode: organization
instances:
  grace_minutes: 0
server:
  listen: 127.0.0.1:0
schedules:
  day:
    running: [\"{window}\"]
    enforce: true
  night:
    stopped: [\"{window}\"]
    enforce: true
  edge:
    running: [\"{edge_window}\"]
"
    )
}

fn start(moto: &Moto, proxy: &Proxy, path: &std::path::Path) -> Daemon {
    Daemon::spawn(support::daemon::command(path, &proxy.env(moto), &[]))
}

/// Waits for the daemon's first pass to finish, then stops it with SIGTERM.
fn first_pass_then_stop(mut d: Daemon) {
    let started = Instant::now();
    while d.passes() < 1 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no pass finished within 120 s"
        );
        if let Ok(Some(status)) = d.child.try_wait() {
            panic!("the daemon exited: {status:?}\n{}", d.logs());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    d.signal("-TERM");
    let (status, _) = d.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "SIGTERM: {status:?}");
}

/// A random schedule tag: `day`, `night`, `edge` or none.
fn pick(rng: &mut Rng) -> Option<&'static str> {
    [Some("day"), Some("night"), Some("edge"), None][rng.below(4) as usize]
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_points_keeps_the_invariants_and_a_restart_converges() {
    let trials: usize = std::env::var("OFFHOURS_CRASH_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let seed: u64 = std::env::var("OFFHOURS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64);
    eprintln!("crash seed {seed} (replay: OFFHOURS_CRASH_SEED={seed}), {trials} trials");
    let mut rng = Rng::new(seed);

    let moto = Moto::start();
    let world = World::seed(&moto, &["us-east-1"], 1, 4).await;
    // No injected faults: the proxy's gate picks the crash points.
    let proxy = Proxy::start(
        &moto.endpoint,
        Rates {
            throttle: 0.0,
            error: 0.0,
            reset: 0.0,
            max_delay_ms: 0,
            cover_every_kind: false,
        },
        seed,
    );
    let (_dir, path) = support::moto::config(&config_text());
    let cfg = Config::load(&path).unwrap();
    let today = Utc::now().date_naive();
    let book = Book::load(&path, today - chrono::Days::new(2), today + chrono::Days::new(40));

    // Calibrate: how many requests a first pass makes.
    first_pass_then_stop(start(&moto, &proxy, &path));
    let mut per_pass = proxy.seen();
    eprintln!("a first pass makes {per_pass} requests");

    let groups: Vec<Key> = world
        .original
        .keys()
        .filter(|k| ["office", "weekend", "late"].contains(&k.2.as_str()))
        .cloned()
        .collect();
    let mut killed_mid_pass = 0;
    // At least `trials`, and on until `edge`'s transition has passed inside a trial.
    let mut trial = 0;
    while trial < trials || Utc::now() < edge() + chrono::Duration::seconds(5) {
        trial += 1;
        // Random changes by the teams.
        for g in &groups {
            if rng.below(2) == 0 {
                world.tag_group(g, "Schedule", pick(&mut rng)).await;
            }
        }
        let snap = world.snapshot().await;
        for (k, i) in &snap.instances {
            if world.never.contains(k) || i.tags.contains_key("aws:autoscaling:groupName") || rng.below(2) == 0 {
                continue;
            }
            match pick(&mut rng) {
                Some(v) => world.tag_instance(k, "Schedule", v).await,
                None => {
                    world
                        .ec2(&k.0, &k.1)
                        .delete_tags()
                        .resources(&k.2)
                        .tags(aws_sdk_ec2::types::Tag::builder().key("Schedule").build())
                        .send()
                        .await
                        .unwrap();
                }
            }
        }

        // Start; kill at a random point of the pass: the proxy lets `at` requests through
        // and holds the next one, before or after it reached moto.
        let before = world.snapshot().await;
        let at = rng.below(per_pass + per_pass / 5 + 1);
        let after_upstream = rng.below(2) == 0;
        proxy.close_after(at, after_upstream);
        let mut d = start(&moto, &proxy, &path);
        let started = Instant::now();
        while proxy.held() == 0 && d.passes() == 0 {
            assert!(started.elapsed() < Duration::from_secs(120), "trial {trial}: stuck");
            std::thread::sleep(Duration::from_millis(10));
        }
        killed_mid_pass += usize::from(proxy.held() > 0);
        d.child.kill().unwrap();
        d.child.wait().unwrap();
        proxy.open();
        let after = world.snapshot().await;
        let bad = world.check_always(&cfg, &book, &before, &after, Utc::now());
        assert!(
            bad.is_empty(),
            "trial {trial}: killed at request {at} ({}):\n{}",
            if after_upstream {
                "after it reached moto"
            } else {
                "before it reached moto"
            },
            bad.join("\n")
        );

        // Restart: the first pass finishes the work.
        let seen = proxy.seen();
        let began = Utc::now();
        first_pass_then_stop(start(&moto, &proxy, &path));
        per_pass = (per_pass + proxy.seen() - seen) / 2;
        if began <= edge() + chrono::Duration::seconds(3) && Utc::now() + chrono::Duration::seconds(3) >= edge() {
            // `edge` turned during that pass, or turns before the check below could plan:
            // the pass may have planned before it, and the daemon, left running, would have
            // woken for it. Wait until it has turned and run that pass too.
            while Utc::now() < edge() + chrono::Duration::seconds(1) {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            first_pass_then_stop(start(&moto, &proxy, &path));
        }
        let plan = moto.pass(&path, "plan", &Utc::now().to_rfc3339());
        assert_eq!(
            plan["summary"]["changes"], 0,
            "trial {trial}: not converged after the restart: {:#}",
            plan["changes"]
        );
        let bad = world.check_converged(&cfg, &book, &world.snapshot().await, Utc::now(), false);
        assert!(
            bad.is_empty(),
            "trial {trial}: killed at request {at}, restarted:\n{}",
            bad.join("\n")
        );
    }
    eprintln!(
        "{trial} trials, {killed_mid_pass} killed inside their first pass; `edge` turned at {}",
        edge()
    );
    assert!(
        killed_mid_pass * 4 >= trial * 3,
        "most kills must land inside the pass ({killed_mid_pass} of {trial})"
    );
}
