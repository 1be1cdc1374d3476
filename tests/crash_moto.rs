//! Crash safety: `offhours run` is killed with SIGKILL at random points of its passes,
//! after random changes to the schedule tags of groups and servers (enrolments at night
//! that scale a group down, releases that restore it, schedule changes that replace
//! actions, stops and starts). After every kill the invariants of `support::world` hold;
//! after a restart, the daemon's first pass converges.
//!
//! Trials: `OFFHOURS_CRASH_TRIALS` (default 50); seed: `OFFHOURS_CRASH_SEED` (printed).

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use offhours::config::Config;
use support::faults::{Proxy, Rates, Rng};
use support::moto::Moto;
use support::oracle::Book;
use support::world::{Key, World};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Schedules relative to the real clock (the daemon has no other): `day` runs for three
/// hours either side of now, `night` is stopped then. Both hold their state (`enforce`).
fn config_text(port: u16) -> String {
    static WINDOW: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let window = WINDOW.get_or_init(|| {
        let now = Utc::now();
        let (from, to) = (now - chrono::Duration::hours(3), now + chrono::Duration::hours(3));
        format!("{}-{}", from.format("%a %H:%M"), to.format("%a %H:%M"))
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
  listen: 127.0.0.1:{port}
schedules:
  day:
    running: [\"{window}\"]
    enforce: true
  night:
    stopped: [\"{window}\"]
    enforce: true
"
    )
}

/// Sum of `offhours_passes_total` on /metrics, if it answers.
fn passes(port: u16) -> Option<u64> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(
        out.lines()
            .filter(|l| l.starts_with("offhours_passes_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64,
    )
}

struct Daemon {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

fn start(moto: &Moto, proxy: &Proxy) -> Daemon {
    let port = free_port();
    let (dir, path) = support::moto::config(&config_text(port));
    let child = moto
        .command(&path, &["run"], &proxy.env(moto))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Daemon { child, port, _dir: dir }
}

/// Waits for the daemon's first pass to finish, then stops it with SIGTERM.
fn first_pass_then_stop(mut d: Daemon) {
    let started = Instant::now();
    while passes(d.port).unwrap_or(0) < 1 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no pass finished within 120 s"
        );
        if let Ok(Some(status)) = d.child.try_wait() {
            panic!("the daemon exited: {status:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = d.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = d.child.wait().unwrap();
    assert!(status.success(), "SIGTERM: {status:?}");
}

/// A random schedule tag: `day`, `night` or none.
fn pick(rng: &mut Rng) -> Option<&'static str> {
    [Some("day"), Some("night"), None][rng.below(3) as usize]
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
    let (_dir, path) = support::moto::config(&config_text(0));
    let cfg = Config::load(&path).unwrap();
    let today = Utc::now().date_naive();
    let book = Book::load(&path, today - chrono::Days::new(2), today + chrono::Days::new(40));

    // Calibrate: how many requests a first pass makes.
    first_pass_then_stop(start(&moto, &proxy));
    let mut per_pass = proxy.seen();
    eprintln!("a first pass makes {per_pass} requests");

    let groups: Vec<Key> = world
        .original
        .keys()
        .filter(|k| ["office", "weekend", "late"].contains(&k.2.as_str()))
        .cloned()
        .collect();
    let mut killed_mid_pass = 0;
    for trial in 0..trials {
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
        let mut d = start(&moto, &proxy);
        let started = Instant::now();
        while proxy.held() == 0 && passes(d.port).unwrap_or(0) == 0 {
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
        first_pass_then_stop(start(&moto, &proxy));
        per_pass = (per_pass + proxy.seen() - seen) / 2;
        let plan = moto.pass(&path, "plan", &Utc::now().to_rfc3339());
        assert_eq!(
            plan["summary"]["changes"], 0,
            "trial {trial}: not converged after the restart: {:#}",
            plan["changes"]
        );
        let bad = world.check_converged(&cfg, &book, &world.snapshot().await, Utc::now(), true);
        assert!(
            bad.is_empty(),
            "trial {trial}: killed at request {at}, restarted:\n{}",
            bad.join("\n")
        );
    }
    eprintln!("{trials} trials, {killed_mid_pass} killed inside their first pass");
    assert!(
        killed_mid_pass * 4 >= trials * 3,
        "most kills must land inside the pass ({killed_mid_pass} of {trials})"
    );
}
