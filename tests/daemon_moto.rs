//! `offhours run` against moto: it starts, serves /metrics and health, runs passes,
//! survives a bad config on SIGHUP, and exits 0 on SIGTERM.

mod support;

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use support::daemon::{Daemon, command, wait_for};
use support::moto::{MANAGEMENT, Moto, config};

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_serves_metrics_runs_passes_reloads_safely_and_stops_on_sigterm() {
    let moto = Moto::start();
    let sdk = moto.sdk_in(MANAGEMENT, "us-east-1").await;
    support::moto::group(&sdk, "web", (1, 2, 1), &[("Schedule", "always-up-ish")]).await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    let recurrences = || async {
        let mut r: Vec<String> = asg
            .describe_scheduled_actions()
            .auto_scaling_group_name("web")
            .send()
            .await
            .unwrap()
            .scheduled_update_group_actions()
            .iter()
            .filter_map(|x| x.recurrence().map(String::from))
            .collect();
        r.sort();
        r
    };

    let text = |window: &str| {
        format!(
            "timezone: UTC\ninterval_seconds: 10\njitter_seconds: 0\nregions: [us-east-1]\nserver:\n  listen: 127.0.0.1:0\nschedules:\n  always-up-ish:\n    running: [\"{window}\"]\n"
        )
    };
    // A daily window around the current time, whatever the hour the test runs at.
    let now = chrono::Utc::now();
    let (open, close) = (now - chrono::Duration::hours(3), now + chrono::Duration::hours(3));
    let (_dir, cfg) = config(&text(&format!(
        "Mon-Sun {}-{}",
        open.format("%H:%M"),
        close.format("%H:%M")
    )));
    let mut daily: Vec<String> = [open, close]
        .iter()
        .map(|t| format!("{} {} * * *", t.format("%-M"), t.format("%-H")))
        .collect();
    daily.sort();
    let mut d = Daemon::spawn(command(&cfg, &moto.env(), &[]));

    wait_for("/healthz", Duration::from_secs(30), || {
        d.get("/healthz").is_some_and(|r| r.0 == 200)
    });
    wait_for("/readyz after the first pass", Duration::from_secs(60), || {
        d.get("/readyz").is_some_and(|r| r.0 == 200)
    });
    let (code, metrics) = d.get("/metrics").unwrap();
    assert_eq!(code, 200);
    for series in [
        "offhours_passes_total",
        "offhours_pass_duration_seconds_bucket",
        "offhours_api_calls_total{service=\"autoscaling\"",
        "offhours_actions_total{kind=\"put-scheduled-actions\"}",
        "offhours_resources{kind=\"auto-scaling-group\",state=\"running\"} 1",
        "offhours_pass_in_progress",
    ] {
        assert!(metrics.contains(series), "{series} missing:\n{metrics}");
    }
    assert_eq!(recurrences().await, daily, "the pass applied the schedule");

    // A bad config on SIGHUP is rejected; the daemon keeps running on the old one.
    std::fs::write(&cfg, "schedules:\n  broken:\n    runing: []\n").unwrap();
    d.signal("-HUP");
    wait_for("the rejection in the metrics", Duration::from_secs(10), || {
        d.metric("offhours_config_reloads_total{kind=\"rejected\"}") == Some(1.0)
    });
    assert!(d.logs().contains("keeping the old one"));
    assert!(d.child.try_wait().unwrap().is_none(), "still running");
    assert_eq!(d.get("/healthz").unwrap().0, 200);

    // A valid config on SIGHUP takes effect at once (the reload wakes the loop) and the
    // passes go on: the group's actions follow the new window.
    let before = d.passes();
    let puts = d
        .metric("offhours_actions_total{kind=\"put-scheduled-actions\"}")
        .unwrap();
    std::fs::write(&cfg, text("Mon-Sun 06:30-22:15")).unwrap();
    d.signal("-HUP");
    wait_for("the reload in the metrics", Duration::from_secs(10), || {
        d.metric("offhours_config_reloads_total{kind=\"applied\"}") == Some(1.0)
    });
    wait_for("two passes after the reload", Duration::from_secs(40), || {
        d.passes() >= before + 2
    });
    assert!(
        d.metric("offhours_actions_total{kind=\"put-scheduled-actions\"}")
            .unwrap()
            > puts,
        "the new window was registered"
    );
    assert_eq!(recurrences().await, ["15 22 * * *", "30 6 * * *"]);

    // SIGTERM: exits 0 within 30 seconds.
    d.signal("-TERM");
    let (status, _) = d.wait_exit(Duration::from_secs(30));
    let logs = d.logs();
    assert!(status.success(), "{status:?}\n{logs}");
    assert!(!logs.contains("testing"), "no credential in the logs");
}

/// SIGTERM while a slow pass is registering new groups: README says the pass in flight
/// finishes (or, past 25 s, is abandoned between two calls) and the daemon exits 0 within
/// 30 s. Nothing is left half-written: no group at zero without its saved size, and one
/// one-shot pass afterwards leaves nothing to do.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_slow_pass_exits_zero_and_leaves_nothing_half_written() {
    use support::faults::{Proxy, Rates};
    let moto = Moto::start();
    let sdk = moto.sdk_in(MANAGEMENT, "us-east-1").await;
    let names: Vec<String> = (0..8).map(|i| format!("g{i}")).collect();
    for n in &names {
        support::moto::group(&sdk, n, (1, 2, 1), &[("Schedule", "night")]).await;
    }
    // Stopped now, whenever the test runs: every group is registered and scaled down.
    let now = chrono::Utc::now();
    let (from, to) = (now + chrono::Duration::hours(3), now + chrono::Duration::hours(4));
    let window = format!("{}-{}", from.format("%a %H:%M"), to.format("%a %H:%M"));
    let text = format!(
        "timezone: UTC\ninterval_seconds: 3600\njitter_seconds: 0\nregions: [us-east-1]\nserver:\n  listen: 127.0.0.1:0\nschedules:\n  night:\n    running: [\"{window}\"]\n"
    );
    let (_dir, cfg) = config(&text);
    // Every call waits up to 700 ms: the first pass takes several seconds.
    let slow = Rates {
        throttle: 0.0,
        error: 0.0,
        reset: 0.0,
        max_delay_ms: 700,
        cover_every_kind: false,
    };
    let proxy = Proxy::start(&moto.endpoint, slow, 7);
    let mut d = Daemon::spawn(command(&cfg, &proxy.env(&moto), &[]));
    // Past the listing, into the writes.
    wait_for("the pass's first writes", Duration::from_secs(60), || proxy.seen() >= 6);
    assert_eq!(d.passes(), 0, "the pass is still in flight");
    d.signal("-TERM");
    let (status, took) = d.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status:?}\n{}", d.logs());
    assert!(took < Duration::from_secs(30));
    assert!(d.logs().contains("letting the pass in flight finish"), "{}", d.logs());

    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    let read = || async {
        let out = asg.describe_auto_scaling_groups().send().await.unwrap();
        out.auto_scaling_groups()
            .iter()
            .map(|g| {
                let saved = g
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some(offhours::model::TAG_SAVED))
                    .and_then(|t| t.value().map(String::from));
                (
                    g.auto_scaling_group_name().unwrap().to_string(),
                    g.desired_capacity().unwrap(),
                    saved,
                )
            })
            .collect::<Vec<_>>()
    };
    // The pass in flight finished: every group saved, registered and scaled down.
    for (name, desired, saved) in read().await {
        assert!(
            support::moto::sealed_size(saved.as_ref()) == Some("min=1 max=2 desired=1"),
            "{name}: at {desired} without its saved size ({saved:?})"
        );
        assert_eq!(desired, 0, "{name}: the pass in flight finished");
    }
    // And a later pass has nothing left to do.
    let plan = moto.pass(&cfg, "plan", &chrono::Utc::now().to_rfc3339());
    assert_eq!(plan["summary"]["changes"], 0, "{:#}", plan["changes"]);
}

const REPLICA_CONFIG: &str = "timezone: Asia/Seoul
interval_seconds: 10
jitter_seconds: 3
regions: [us-east-1]
accounts:
  mode: organization
server:
  listen: 127.0.0.1:0
schedules:
  office-hours:
    running: [\"Mon-Fri 08:00-20:00\"]
  late-hours:
    running: [\"Mon-Fri 12:00-23:30\", \"Sat 10:00-14:00\"]
";

fn replica(path: &std::path::Path, env: &[(&'static str, String)], shard: Option<&str>) -> Daemon {
    let extra: Vec<&str> = shard.map(|s| vec!["--shard", s]).unwrap_or_default();
    Daemon::spawn(command(path, env, &extra))
}

/// Two sharded replicas split the organization; two unsharded ones overlapping (as in a
/// rollout) do no harm, even when a team changes a schedule tag while both are in a pass:
/// every group ends with exactly the actions its current tag asks for (judged by the
/// independent oracle, fired as AWS fires them), none lost, none doubled.
#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_split_the_accounts_and_overlapping_replicas_do_no_harm() {
    use support::faults::{Proxy, Rates};
    use support::oracle::Book;
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
        groups.push(aws_sdk_autoscaling::Client::new(&sdk));
    }
    let (_dir, path) = config(REPLICA_CONFIG);
    let today = chrono::Utc::now().date_naive();
    let book = Book::load(&path, today - chrono::Days::new(2), today + chrono::Days::new(40));
    let running = offhours::capacity::Capacity {
        min: 1,
        max: 2,
        desired: 1,
    };
    // Every group's actions against the oracle for the schedule its tag names now.
    let check = |tags: Vec<&'static str>| {
        let (accounts, groups, book) = (&accounts, &groups, &book);
        async move {
            let now = chrono::Utc::now();
            for ((a, asg), tag) in accounts.iter().zip(groups).zip(tags) {
                let out = asg
                    .describe_scheduled_actions()
                    .auto_scaling_group_name("dev")
                    .send()
                    .await
                    .unwrap();
                let actions: Vec<offhours::model::ObservedAction> = out
                    .scheduled_update_group_actions()
                    .iter()
                    .map(support::world::observed)
                    .collect();
                let names: std::collections::BTreeSet<&str> = actions.iter().map(|x| x.name.as_str()).collect();
                assert_eq!(names.len(), actions.len(), "{a}: duplicated actions {names:?}");
                assert!(actions.iter().all(|x| x.name.starts_with("offhours-")));
                let owned: Vec<&offhours::model::ObservedAction> = actions.iter().collect();
                let key = (a.clone(), "us-east-1".to_string(), "dev".to_string());
                let bad = support::world::check_actions(&key, book, tag, running, &owned, now, 21);
                assert!(bad.is_empty(), "{a} ({tag}):\n{}", bad.join("\n"));
            }
        }
    };

    // Sharded: replica 0 works exactly its accounts...
    let first = replica(&path, &moto.env(), Some("0/2"));
    wait_for("replica 0's first pass", Duration::from_secs(90), || {
        first.get("/readyz").is_some_and(|r| r.0 == 200)
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
    let second = replica(&path, &moto.env(), Some("1/2"));
    wait_for("replica 1's first pass", Duration::from_secs(90), || {
        second.get("/readyz").is_some_and(|r| r.0 == 200)
    });
    drop((first, second));
    check(vec!["office-hours"; accounts.len()]).await;

    // A rollout: two unsharded replicas at once, through a proxy that slows every call so
    // that their passes last seconds and overlap.
    let slow = Rates {
        throttle: 0.0,
        error: 0.0,
        reset: 0.0,
        max_delay_ms: 300,
        cover_every_kind: false,
    };
    let proxy = Proxy::start(&moto.endpoint, slow, 11);
    let both = [
        replica(&path, &proxy.env(&moto), None),
        replica(&path, &proxy.env(&moto), None),
    ];
    // Seen on /metrics: both in a pass at the same moment.
    wait_for("two passes in flight at once", Duration::from_secs(90), || {
        both.iter().all(|d| d.metric("offhours_pass_in_progress") == Some(1.0))
    });
    // Teams retag half the groups while both passes run.
    let mut tags = vec!["office-hours"; accounts.len()];
    for (i, asg) in groups.iter().enumerate().filter(|(i, _)| i % 2 == 1) {
        let t = aws_sdk_autoscaling::types::Tag::builder()
            .resource_id("dev")
            .resource_type("auto-scaling-group")
            .key("Schedule")
            .value("late-hours")
            .propagate_at_launch(false)
            .build();
        asg.create_or_update_tags().tags(t).send().await.unwrap();
        tags[i] = "late-hours";
    }
    let at = [both[0].passes(), both[1].passes()];
    for (d, n) in both.iter().zip(at) {
        wait_for("two more passes of each replica", Duration::from_secs(120), || {
            d.passes() >= n + 2
        });
    }
    drop(both);
    check(tags).await;
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
    // Bound and held, never listening: connections are refused, and no one else gets the port.
    let dead_socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    dead_socket
        .bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into())
        .unwrap();
    let dead = dead_socket.local_addr().unwrap().as_socket().unwrap().port();
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

/// A tiny HTTP server on loopback serving one body (or a 500 when it is `None`); dropping
/// the returned guard closes it, so later connections are refused.
struct IcsServer {
    port: u16,
    body: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl IcsServer {
    fn start(body: Option<&str>) -> IcsServer {
        use std::io::{Read, Write};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = std::sync::Arc::new(std::sync::Mutex::new(body.map(String::from)));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (b, s) = (shared.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::SeqCst) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                conn.set_nonblocking(false).unwrap();
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let resp = match b.lock().unwrap().clone() {
                    Some(text) => format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/calendar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                        text.len()
                    ),
                    None => {
                        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
                    }
                };
                let _ = conn.write_all(resp.as_bytes());
            }
        });
        IcsServer {
            port,
            body: shared,
            stop,
        }
    }
}

impl Drop for IcsServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `ics_url`: a feed served on loopback is fetched at start and used (the metrics say it
/// loaded, /readyz is ready); with the server gone, a restarted daemon keeps the last good
/// copy from `state_dir` and /readyz names the failed refresh; a feed that never loaded
/// (the server answers 500, or garbage) makes /readyz fail and names the degraded schedule.
#[tokio::test(flavor = "multi_thread")]
async fn a_calendar_feed_is_fetched_kept_and_its_failures_are_reported() {
    let moto = Moto::start();
    let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\nBEGIN:VEVENT\r\nUID:h@test\r\nSUMMARY:Company day\r\n\
               DTSTART;VALUE=DATE:20271224\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let server = IcsServer::start(Some(ics));
    let text = |port: u16| {
        format!(
            "timezone: Asia/Seoul\ninterval_seconds: 10\njitter_seconds: 0\nregions: [us-east-1]\nstate_dir: state\n\
             server:\n  listen: 127.0.0.1:0\nholidays:\n  company:\n    ics_url: http://127.0.0.1:{port}/company.ics\n\
             schedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\n    holidays: company\n"
        )
    };
    let (dir, cfg) = config(&text(server.port));
    let mut d = Daemon::spawn(command(&cfg, &moto.env(), &[]));
    wait_for("the feed to load", Duration::from_secs(60), || {
        d.metric("offhours_calendar_feed_loaded{calendar=\"holidays.company\"}") == Some(1.0)
    });
    assert_eq!(
        d.metric("offhours_calendar_feed_refreshes_total{calendar=\"holidays.company\",result=\"changed\"}"),
        Some(1.0)
    );
    wait_for("/readyz", Duration::from_secs(60), || {
        d.get("/readyz").is_some_and(|r| r.0 == 200)
    });
    let kept = dir.path().join("state/feeds/holidays-company.ics");
    assert_eq!(
        std::fs::read_to_string(&kept).unwrap(),
        ics,
        "the last good copy is kept"
    );
    // The feed's dates are in use: explain reads the kept copy.
    let o = Command::new(env!("CARGO_BIN_EXE_offhours"))
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "holidays",
            "list",
            "company",
            "--year",
            "2027",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("2027-12-24  Fri  Company day"),
        "{o:?}"
    );
    d.signal("-TERM");
    d.wait_exit(Duration::from_secs(30));

    // The server goes away: a restarted daemon keeps the copy and says the refresh failed.
    let feed_port = server.port;
    drop(server);
    let mut d = Daemon::spawn(command(&cfg, &moto.env(), &[]));
    wait_for("the failed refresh", Duration::from_secs(60), || {
        d.metric("offhours_calendar_feed_refreshes_total{calendar=\"holidays.company\",result=\"failed\"}") == Some(1.0)
    });
    assert_eq!(
        d.metric("offhours_calendar_feed_loaded{calendar=\"holidays.company\"}"),
        Some(1.0)
    );
    wait_for("/readyz with the failure named", Duration::from_secs(60), || {
        d.get("/readyz").is_some_and(|(code, body)| {
            code == 200 && body.contains("calendar holidays.company: the last refresh failed (connection failed)")
        })
    });
    let logs = d.logs();
    assert!(
        !logs.contains("company.ics") && !logs.contains(&format!(":{feed_port}")),
        "the feed URL is never logged:\n{logs}"
    );
    d.signal("-TERM");
    d.wait_exit(Duration::from_secs(30));

    // A broken feed with no copy kept: never loaded, the schedule is degraded, /readyz fails.
    let broken = IcsServer::start(Some("this is not a calendar"));
    let (_dir2, cfg2) = config(&text(broken.port));
    let mut d = Daemon::spawn(command(&cfg2, &moto.env(), &[]));
    wait_for("/readyz naming the degraded schedule", Duration::from_secs(60), || {
        d.get("/readyz").is_some_and(|(code, body)| {
            code == 503
                && body.contains("calendar holidays.company has never loaded (the feed does not read as iCalendar")
                && body.contains("schedules office-hours are degraded")
        })
    });
    assert_eq!(
        d.metric("offhours_calendar_feed_loaded{calendar=\"holidays.company\"}"),
        Some(0.0)
    );
    *broken.body.lock().unwrap() = None;
    d.signal("-TERM");
    d.wait_exit(Duration::from_secs(30));
}

/// `plan` and `reconcile` fetch a feed before their pass and act on it at once: a company
/// day served on loopback keeps a group down on a weekday morning in the very pass that
/// first fetched it; with the server gone, the next pass still uses the kept copy.
#[tokio::test(flavor = "multi_thread")]
async fn a_one_shot_pass_fetches_the_feed_first_and_keeps_it() {
    let moto = Moto::start();
    let sdk = moto.sdk_in(MANAGEMENT, "us-east-1").await;
    support::moto::group(&sdk, "web", (1, 2, 1), &[("Schedule", "office-hours")]).await;
    let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\nBEGIN:VEVENT\r\nUID:c@test\r\nSUMMARY:Company day\r\n\
               DTSTART;VALUE=DATE:20261202\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let server = IcsServer::start(Some(ics));
    let (dir, cfg) = config(&format!(
        "timezone: Asia/Seoul\nregions: [us-east-1]\nstate_dir: state\nholidays:\n  company:\n    ics_url: http://127.0.0.1:{}/c.ics\n\
         schedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\n    holidays: company\n",
        server.port
    ));
    // Wednesday 2 December, 10:00 in Seoul: a company day, so the newly tagged group is
    // scaled down now; without the feed it would be left running.
    let r = moto.pass(&cfg, "reconcile", "2026-12-02T10:00:00+09:00");
    let changes: Vec<&str> = r["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["resource_id"] == "web")
        .filter_map(|c| c["change"].as_str())
        .collect();
    assert!(changes.contains(&"set-capacity"), "{changes:?}");
    assert!(dir.path().join("state/feeds/holidays-company.ics").exists());
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    let size = |g: &aws_sdk_autoscaling::types::AutoScalingGroup| (g.min_size(), g.max_size(), g.desired_capacity());
    let groups = asg.describe_auto_scaling_groups().send().await.unwrap();
    assert_eq!(size(&groups.auto_scaling_groups()[0]), (Some(0), Some(0), Some(0)));
    drop(server);
    // The server is gone: the kept copy still says so, and the pass has nothing to do.
    let r = moto.pass(&cfg, "plan", "2026-12-02T11:00:00+09:00");
    assert_eq!(r["summary"]["changes"], 0, "{:#}", r["changes"]);
}

/// `notifications.notice_minutes`: a warning reaches the webhook before a stop, listing
/// what will stop by team, once however many passes fall in the notice window.
#[tokio::test(flavor = "multi_thread")]
async fn the_warning_before_a_stop_reaches_the_webhook_once() {
    let moto = Moto::start();
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk_in(MANAGEMENT, "us-east-1").await);
    let tagged = support::world::launch(&ec2, &[("Schedule", "closing"), ("Team", "search")], 1)
        .await
        .remove(0);
    let other = support::world::launch(&ec2, &[("Team", "search")], 1).await.remove(0);
    let (port, got) = receiver();
    // A daily window that closes six minutes from now (on a minute), whatever the time the
    // test runs at; the warning comes ten minutes before, so at once.
    let now = chrono::Utc::now();
    let close = now + chrono::Duration::minutes(6);
    let open = close - chrono::Duration::hours(3);
    let text = format!(
        "timezone: UTC\ninterval_seconds: 10\njitter_seconds: 0\nregions: [us-east-1]\nteam_tag: Team\nstate_dir: state\n\
         server:\n  listen: 127.0.0.1:0\ninstances:\n  grace_minutes: 0\n\
         notifications:\n  webhook_url_env: TEST_WEBHOOK\n  notice_minutes: 10\n\
         schedules:\n  closing:\n    running: [\"Mon-Sun {}-{}\"]\n",
        open.format("%H:%M"),
        close.format("%H:%M")
    );
    let (_dir, cfg) = config(&text);
    let mut env = moto.env();
    env.push(("TEST_WEBHOOK", format!("http://127.0.0.1:{port}/hooks/SECRET")));
    let mut d = Daemon::spawn(command(&cfg, &env, &[]));
    let warnings = || -> Vec<String> {
        got.lock()
            .unwrap()
            .iter()
            .filter(|b| b.contains("stops 1 resource"))
            .cloned()
            .collect()
    };
    wait_for("the warning", Duration::from_secs(60), || !warnings().is_empty());
    let received = chrono::Utc::now();
    // Three more passes in the window (10 s apart): nothing more.
    let passes = d.passes();
    wait_for("three more passes", Duration::from_secs(90), || {
        d.passes() >= passes + 3
    });
    let stop_at = close.with_timezone(&chrono::Utc).format("%H:%M").to_string();
    assert!(received < close, "the warning came before the stop");
    let all = warnings();
    assert_eq!(all.len(), 1, "one warning per stop transition: {all:?}");
    let v: serde_json::Value = serde_json::from_str(&all[0]).unwrap();
    let text = v["text"].as_str().unwrap();
    assert!(
        text.contains("schedule `closing`") && text.contains(&format!("({stop_at} UTC)")),
        "{text}"
    );
    assert!(text.contains("*search* (1)") && text.contains(&tagged), "{text}");
    assert!(
        !text.contains(&other),
        "an untagged instance is not the schedule's: {text}"
    );
    assert!(text.contains("offhours override"), "{text}");
    assert!(!d.logs().contains("SECRET"), "the webhook URL is never logged");
    d.signal("-TERM");
    d.wait_exit(Duration::from_secs(40));
    // Restarted inside the window: the record kept in state_dir holds; no second warning.
    assert!(
        cfg.parent().unwrap().join("state/notices.json").exists(),
        "the record is kept in state_dir"
    );
    let mut again = Daemon::spawn(command(&cfg, &env, &[]));
    wait_for("two passes after the restart", Duration::from_secs(60), || {
        again.passes() >= 2
    });
    assert!(chrono::Utc::now() < close, "still inside the window");
    assert_eq!(warnings().len(), 1, "no second warning after a restart");
    again.signal("-TERM");
    again.wait_exit(Duration::from_secs(40));
}
