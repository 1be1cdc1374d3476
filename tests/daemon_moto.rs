//! `offhours run` against moto: it starts, serves /metrics and health, runs passes,
//! survives a bad config on SIGHUP, and exits 0 on SIGTERM.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::moto::{MANAGEMENT, Moto, config};

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split(' ').nth(1)?.parse().ok()?;
    Some((
        code,
        out.split_once("\r\n\r\n").map(|x| x.1.to_string()).unwrap_or_default(),
    ))
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

fn signal(pid: u32, sig: &str) {
    assert!(
        Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_serves_metrics_runs_passes_reloads_safely_and_stops_on_sigterm() {
    let moto = Moto::start();
    let sdk = moto.sdk_in(MANAGEMENT, "us-east-1").await;
    support::moto::group(&sdk, "web", (1, 2, 1), &[("Schedule", "always-up-ish")]).await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk);

    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let text = format!(
        "timezone: UTC\ninterval_seconds: 10\njitter_seconds: 0\nregions: [us-east-1]\nserver:\n  listen: 127.0.0.1:{port}\nschedules:\n  always-up-ish:\n    running: [\"Mon-Sun 00:00-23:59\"]\n"
    );
    let (_dir, cfg) = config(&text);
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_offhours"))
        .args(["--config", cfg.to_str().unwrap(), "run"])
        .envs(moto.env())
        .env("RUST_LOG", "offhours=info")
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();

    wait_for("/healthz", Duration::from_secs(30), || {
        get(port, "/healthz").is_some_and(|r| r.0 == 200)
    });
    wait_for("/readyz after the first pass", Duration::from_secs(60), || {
        get(port, "/readyz").is_some_and(|r| r.0 == 200)
    });
    let (code, metrics) = get(port, "/metrics").unwrap();
    assert_eq!(code, 200);
    for series in [
        "offhours_passes_total",
        "offhours_pass_duration_seconds_bucket",
        "offhours_api_calls_total{service=\"autoscaling\"",
        "offhours_actions_total{kind=\"put-scheduled-actions\"}",
        "offhours_resources{kind=\"auto-scaling-group\",state=\"running\"} 1",
    ] {
        assert!(metrics.contains(series), "{series} missing:\n{metrics}");
    }
    let registered = asg
        .describe_scheduled_actions()
        .auto_scaling_group_name("web")
        .send()
        .await
        .unwrap();
    assert!(
        !registered.scheduled_update_group_actions().is_empty(),
        "the pass applied the schedule"
    );

    // A bad config on SIGHUP is rejected; the daemon keeps running on the old one.
    std::fs::write(&cfg, "schedules:\n  broken:\n    runing: []\n").unwrap();
    signal(pid, "-HUP");
    wait_for("the rejection in the log", Duration::from_secs(10), || {
        std::fs::read_to_string(log.path())
            .unwrap()
            .contains("keeping the old one")
    });
    assert!(child.try_wait().unwrap().is_none(), "still running");
    assert_eq!(get(port, "/healthz").unwrap().0, 200);

    // SIGTERM: exits 0 within 30 seconds.
    let t = Instant::now();
    signal(pid, "-TERM");
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "did not stop within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "{status:?}\n{}",
        std::fs::read_to_string(log.path()).unwrap()
    );
    let logs = std::fs::read_to_string(log.path()).unwrap();
    assert!(logs.contains("pass finished"), "{logs}");
    assert!(!logs.contains("testing"), "no credential in the logs");
}

struct Daemon {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn daemon(moto: &Moto, shard: Option<&str>) -> Daemon {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let text = format!(
        "timezone: Asia/Seoul\ninterval_seconds: 10\njitter_seconds: 3\nregions: [us-east-1]\naccounts:\n  mode: organization\nserver:\n  listen: 127.0.0.1:{port}\nschedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\n"
    );
    let (dir, cfg) = config(&text);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_offhours"));
    cmd.args(["--config", cfg.to_str().unwrap()]);
    if let Some(s) = shard {
        cmd.args(["--shard", s]);
    }
    let child = cmd
        .arg("run")
        .envs(moto.env())
        .env("RUST_LOG", "offhours=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Daemon { child, port, _dir: dir }
}

/// Two sharded replicas split the organization; two unsharded ones overlapping (as in a
/// rollout) do no harm: every group ends with exactly its actions, none lost, none doubled.
#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_split_the_accounts_and_overlapping_replicas_do_no_harm() {
    let moto = Moto::start();
    let org = aws_sdk_organizations::Client::new(&moto.sdk("us-east-1").await);
    org.create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    let mut accounts = vec![MANAGEMENT.to_string()];
    for i in 0..5 {
        let a = org
            .create_account()
            .account_name(format!("dev-{i}"))
            .email(format!("dev{i}@example.com"))
            .send()
            .await
            .unwrap();
        accounts.push(a.create_account_status().unwrap().account_id().unwrap().to_string());
    }
    let mut groups = Vec::new();
    for a in &accounts {
        let sdk = moto.sdk_in(a, "us-east-1").await;
        support::moto::group(&sdk, "dev", (1, 2, 1), &[("Schedule", "office-hours")]).await;
        let asg = aws_sdk_autoscaling::Client::new(&sdk);
        groups.push(asg);
    }
    let check = || async {
        for (a, asg) in accounts.iter().zip(&groups) {
            let out = asg
                .describe_scheduled_actions()
                .auto_scaling_group_name("dev")
                .send()
                .await
                .unwrap();
            let names: Vec<&str> = out
                .scheduled_update_group_actions()
                .iter()
                .map(|x| x.scheduled_action_name().unwrap())
                .collect();
            let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
            assert_eq!(unique.len(), names.len(), "{a}: duplicated actions {names:?}");
            assert!(names.len() >= 2, "{a}: actions lost or never registered: {names:?}");
            assert!(names.iter().all(|n| n.starts_with("offhours-")));
        }
    };

    // Sharded: replica 0 works exactly its accounts...
    let first = daemon(&moto, Some("0/2"));
    wait_for("replica 0's first pass", Duration::from_secs(90), || {
        get(first.port, "/readyz").is_some_and(|r| r.0 == 200)
    });
    let zero = offhours::shard::Shard { index: 0, count: 2 };
    assert!(
        accounts.iter().any(|a| zero.owns(a)) && accounts.iter().any(|a| !zero.owns(a)),
        "both shards own accounts"
    );
    for (a, asg) in accounts.iter().zip(&groups) {
        let n = asg
            .describe_scheduled_actions()
            .auto_scaling_group_name("dev")
            .send()
            .await
            .unwrap()
            .scheduled_update_group_actions()
            .len();
        assert_eq!(n > 0, zero.owns(a), "{a}: replica 0 works only its own accounts");
    }
    // ...and with replica 1 running too, the two cover every account.
    let shards = [first, daemon(&moto, Some("1/2"))];
    wait_for("replica 1's first pass", Duration::from_secs(90), || {
        get(shards[1].port, "/readyz").is_some_and(|r| r.0 == 200)
    });
    // Let a few passes overlap, then stop them.
    std::thread::sleep(Duration::from_secs(12));
    drop(shards);
    check().await;

    // A rollout: two unsharded replicas running at once.
    let both = [daemon(&moto, None), daemon(&moto, None)];
    for d in &both {
        wait_for("an unsharded replica's first pass", Duration::from_secs(90), || {
            get(d.port, "/readyz").is_some_and(|r| r.0 == 200)
        });
    }
    std::thread::sleep(Duration::from_secs(12));
    drop(both);
    check().await;
}

use support::webhook::receiver;

#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_receives_the_pass_batch_and_a_dead_one_never_fails_the_pass() {
    let moto = Moto::start();
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk_in(MANAGEMENT, "us-east-1").await);
    ec2.run_instances()
        .image_id("ami-12c6146b")
        .instance_type("t3.micro".into())
        .min_count(2)
        .max_count(2)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                .tags(aws_sdk_ec2::types::Tag::builder().key("Name").value("untagged").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let (port, got) = receiver();
    let text = "regions: [us-east-1]\nnotifications:\n  webhook_url_env: TEST_WEBHOOK\nschedules:\n  dev:\n    running: [\"Mon-Fri 08:00-20:00\"]\n";
    let (_dir, cfg) = config(text);
    // A reconcile at `now` posting to `url`.
    let reconcile = |now: &str, url: String| {
        Command::new(env!("CARGO_BIN_EXE_offhours"))
            .args(["--config", cfg.to_str().unwrap(), "reconcile", "--now", now])
            .envs(moto.env())
            .env("TEST_WEBHOOK", url)
            .env("RUST_LOG", "offhours=debug")
            .output()
            .unwrap()
    };
    let o = reconcile(
        "2026-11-25T12:00:00Z",
        format!("http://127.0.0.1:{port}/services/T000/B000/SECRET"),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bodies = got.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "one message per pass");
    let v: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert!(v["text"].as_str().unwrap().contains("*Policy violations* (2)"), "{v}");
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!logs.contains("SECRET"), "the webhook URL never appears in the output");

    // A webhook that is down: the pass still succeeds, the failure is reported, the URL is not.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let o = reconcile(
        "2026-11-25T12:05:00Z",
        format!("http://127.0.0.1:{dead}/services/SECRET"),
    );
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("webhook notification not delivered"), "{err}");
    assert!(!err.contains("SECRET"), "{err}");

    // A webhook that accepts the connection and never answers: the one-shot command gives up
    // after a few seconds (each attempt alone may wait ten).
    let hanging = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hanging.local_addr().unwrap().port();
    let started = Instant::now();
    let o = reconcile(
        "2026-11-25T12:10:00Z",
        format!("http://127.0.0.1:{port}/services/SECRET"),
    );
    let took = started.elapsed();
    assert!(o.status.success());
    assert!(
        took < Duration::from_secs(12),
        "a hanging webhook held the command {took:?}"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("given up") && !err.contains("SECRET"), "{err}");
    drop(hanging);
}
