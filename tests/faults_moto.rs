//! Fault injection: offhours against moto through a proxy that throttles (in each
//! service's wire format), fails with 500s, drops connections (before and after the
//! request reached moto) and delays, at 20 % / 5 % / 2 %. Through three phases of a day
//! in a two-account, two-region organization, the passes must converge within three
//! passes, nothing may panic, and the invariants in `support::world` must hold after
//! every pass.
//!
//! The seed is printed; replay one with `OFFHOURS_FAULT_SEED=<n> cargo test --test faults_moto`.

mod support;

use std::path::Path;

use chrono::{DateTime, Utc};
use offhours::config::Config;
use support::faults::{FAULTS, Fault, Proxy, Rates};
use support::moto::{Moto, config};
use support::oracle::Book;
use support::world::World;

const DAY: &str = "2026-11-25T10:00:00+09:00";
const NIGHT: &str = "2026-11-25T20:05:00+09:00";
const MORNING: &str = "2026-11-26T08:05:00+09:00";

fn config_text(root: &str) -> String {
    format!(
        "timezone: Asia/Seoul
holidays:
  kr:
    dates: [2026-12-03]
schedules:
  office-hours:
    running: [\"Mon-Fri 08:00-20:00\"]
    holidays: kr
  weekend-off:
    stopped: [\"Fri 20:00-Mon 08:00\"]
regions: [us-east-1, eu-west-1]
accounts:
  mode: organization
# moto stamps launches with the real clock, which may be past the simulated --now.
instances:
  grace_minutes: 0
policy:
  targets: ['{root}']
  repair_drift: true
"
    )
}

fn seed() -> u64 {
    std::env::var("OFFHOURS_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

struct Harness<'a> {
    moto: &'a Moto,
    proxy: &'a Proxy,
    world: &'a World,
    path: &'a Path,
    cfg: Config,
    /// The config's schedules as the independent oracle reads them.
    book: Book,
    /// Extra environment for the passes.
    env: Vec<(&'static str, String)>,
    /// Passes allowed to converge each phase.
    budget: usize,
    passes: usize,
    failed_passes: usize,
}

impl Harness<'_> {
    /// One reconcile pass through the proxy, then the always-invariants.
    async fn faulty_pass(&mut self, now: &str) {
        let before = self.world.snapshot().await;
        let started = std::time::Instant::now();
        let mut env = self.proxy.env(self.moto);
        env.extend(self.env.iter().cloned());
        let o = self
            .moto
            .command(self.path, &["reconcile", "--output", "json", "--now", now], &env)
            .output()
            .unwrap();
        eprintln!("pass at {now}: {:?}, exit {:?}", started.elapsed(), o.status.code());
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            matches!(o.status.code(), Some(0 | 1)) && !stderr.contains("panicked"),
            "the pass at {now} crashed ({:?}):\n{stderr}",
            o.status
        );
        let report: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", String::from_utf8_lossy(&o.stdout)));
        self.passes += 1;
        self.failed_passes += usize::from(o.status.code() == Some(1));
        // Every failure is reported: each failed change with its resource, its operation and
        // the error; each failed scope with its error; and the exit code says there was one.
        let failed_changes: Vec<&serde_json::Value> = report["changes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["status"] == "failed")
            .collect();
        for c in &failed_changes {
            assert!(c["resource_id"].as_str().is_some_and(|r| !r.is_empty()), "{c}");
            assert!(c["change"].as_str().is_some_and(|k| !k.is_empty()), "{c}");
            assert!(c["error"].as_str().is_some_and(|m| !m.is_empty()), "{c}");
        }
        let failed_scopes: Vec<&serde_json::Value> = report["scopes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["status"] != "ok")
            .collect();
        for sc in &failed_scopes {
            assert!(sc["error"].as_str().is_some_and(|m| !m.is_empty()), "{sc}");
        }
        assert_eq!(
            report["summary"]["failed"],
            failed_changes.len(),
            "{:#}",
            report["summary"]
        );
        assert_eq!(
            report["summary"]["scopes_failed"],
            failed_scopes.len(),
            "{:#}",
            report["summary"]
        );
        if !failed_changes.is_empty() || !failed_scopes.is_empty() {
            assert_eq!(o.status.code(), Some(1), "failures reported, yet exit 0 at {now}");
        }
        let after = self.world.snapshot().await;
        let bad = self.world.check_always(&self.cfg, &self.book, &before, &after, at(now));
        assert!(bad.is_empty(), "after a faulty pass at {now}:\n{}", bad.join("\n"));
    }

    /// Whether a fault-free look finds nothing left to do (groups, instances and policies).
    fn converged(&self, now: &str) -> bool {
        let plan = self.moto.pass(self.path, "plan", now);
        let o = self.moto.offhours(self.path, &["policy", "status", "--output", "json"]);
        let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        plan["summary"]["changes"] == 0 && plan["summary"]["scopes_failed"] == 0 && status["drift"] == false
    }

    /// Faulty passes at `now` until converged, within the budget.
    async fn phase(&mut self, now: &str, transition: bool) -> usize {
        for n in 1..=self.budget {
            self.faulty_pass(now).await;
            if self.converged(now) {
                let bad = self.world.check_converged(
                    &self.cfg,
                    &self.book,
                    &self.world.snapshot().await,
                    at(now),
                    transition,
                );
                assert!(bad.is_empty(), "converged at {now} but:\n{}", bad.join("\n"));
                return n;
            }
        }
        let plan = self.moto.pass(self.path, "plan", now);
        let status = self.moto.offhours(self.path, &["policy", "status", "--output", "json"]);
        panic!(
            "not converged after {} passes at {now}; still planned:\n{:#}\n{:#}\npolicy: {}",
            self.budget,
            plan["summary"],
            plan["changes"],
            String::from_utf8_lossy(&status.stdout)
        );
    }
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Three phases of a day through the proxy; returns (passes, passes that reported failures).
async fn scenario(rates: Rates, env: Vec<(&'static str, String)>, budget: usize) -> (usize, usize) {
    let seed = seed();
    eprintln!("fault seed {seed} (replay: OFFHOURS_FAULT_SEED={seed})");
    let moto = Moto::start();
    let world = World::seed(&moto, &["us-east-1", "eu-west-1"], 1, 3).await;
    let (_dir, path) = config(&config_text(&world.root));
    let proxy = Proxy::start(&moto.endpoint, rates, seed);
    let mut h = Harness {
        moto: &moto,
        proxy: &proxy,
        world: &world,
        path: &path,
        cfg: Config::load(&path).unwrap(),
        book: Book::load(&path, "2026-11-01".parse().unwrap(), "2027-01-01".parse().unwrap()),
        env,
        budget,
        passes: 0,
        failed_passes: 0,
    };

    // Wednesday 10:00: everything enrolls; nothing stops in the day.
    let p1 = h.phase(DAY, false).await;

    // 20:05: servers stop, except one kept up by an override; a group tagged now scales
    // down at once (its size saved first).
    for (a, r) in world.scopes() {
        world
            .tag_group(&(a.clone(), r.clone(), "late".into()), "Schedule", Some("office-hours"))
            .await;
        let s = world.snapshot().await;
        let first = s
            .instances
            .iter()
            .find(|(k, i)| k.0 == a && k.1 == r && i.tags.get("Schedule").map(String::as_str) == Some("office-hours"))
            .map(|(k, _)| k.clone())
            .unwrap();
        world
            .tag_instance(&first, "offhours:override", "running until 2026-11-25T23:00:00+09:00")
            .await;
    }
    let p2 = h.phase(NIGHT, true).await;
    let s = world.snapshot().await;
    assert!(
        s.groups
            .iter()
            .filter(|(k, _)| k.2 == "late")
            .all(|(_, g)| g.capacity.is_zero()),
        "tagged at night: scaled down"
    );
    assert!(
        s.instances
            .values()
            .any(|i| i.running && i.tags.contains_key("offhours:override")),
        "the override kept its server up"
    );
    // AWS fires the 20:00 stop of the office groups (moto never fires).
    for (a, r) in world.scopes() {
        world
            .resize(&(a, r, "office".into()), offhours::capacity::Capacity::ZERO)
            .await;
    }

    // Thursday 08:05: servers start; one group's tag is removed while it is at zero (its
    // saved size comes back), another's schedule changes (its actions are replaced).
    for (a, r) in world.scopes() {
        world
            .tag_group(&(a.clone(), r.clone(), "office".into()), "Schedule", None)
            .await;
        world
            .tag_group(&(a, r, "weekend".into()), "Schedule", Some("office-hours"))
            .await;
    }
    let p3 = h.phase(MORNING, true).await;
    let s = world.snapshot().await;
    for (k, g) in s.groups.iter().filter(|(k, _)| k.2 == "office") {
        assert_eq!(g.capacity, world.original[k], "{k:?}: released at its saved size");
        assert!(
            g.tags.keys().all(|t| !t.starts_with("offhours:")),
            "{k:?}: {:?}",
            g.tags
        );
    }

    let counts = proxy.counts();
    eprintln!(
        "converged in {p1}, {p2}, {p3} passes; {} passes, {} reported failures; injected: {counts:?}",
        h.passes, h.failed_passes
    );
    // Every service was reached and every kind of fault injected (the proxy's formats per
    // service are checked in `injected_faults_parse_as_each_services_own_errors`).
    let n = |service: &str, f: Fault| counts.get(&(service.to_string(), f)).copied().unwrap_or(0);
    for service in ["autoscaling", "ec2", "organizations", "sts"] {
        assert!(
            n(service, Fault::Passed) > 0,
            "{service} never reached moto: {counts:?}"
        );
    }
    for service in ["autoscaling", "ec2"] {
        assert!(
            n(service, Fault::Throttle) > 0,
            "{service} was never throttled: {counts:?}"
        );
    }
    for f in FAULTS {
        let total: u64 = counts.iter().filter(|((_, g), _)| *g == f).map(|(_, n)| n).sum();
        assert!(total > 0, "no {f:?} injected: {counts:?}");
    }
    (h.passes, h.failed_passes)
}

/// The rates with offhours' own retry settings: each phase converges within three
/// passes.
#[tokio::test(flavor = "multi_thread")]
async fn passes_converge_within_three_under_throttling_errors_resets_and_delays() {
    scenario(Rates::HOSTILE, Vec::new(), 3).await;
}

/// The same faults with one retry only (`AWS_MAX_ATTEMPTS=2`), so calls do fail and
/// passes end half done: every invariant still holds after each of them, and later passes
/// finish the work.
#[tokio::test(flavor = "multi_thread")]
async fn with_one_retry_half_done_passes_keep_the_invariants_and_later_passes_converge() {
    let (passes, failed) = scenario(Rates::HOSTILE, vec![("AWS_MAX_ATTEMPTS", "2".into())], 12).await;
    assert!(failed > 0, "no pass failed in {passes}: the faults were not felt");
}

/// The proxy's faults are what each SDK client sees from AWS itself: the modelled
/// throttling and server error codes of each service's protocol (query XML, EC2 XML,
/// JSON 1.1, JSON 1.0), and a dropped connection as a dispatch failure.
#[tokio::test(flavor = "multi_thread")]
async fn injected_faults_parse_as_each_services_own_errors() {
    use aws_smithy_types::error::metadata::ProvideErrorMetadata;
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint, Rates::HOSTILE, 1);
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&proxy.endpoint)
        .region(aws_types::region::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let org = aws_sdk_organizations::Client::new(&sdk);
    let sts = aws_sdk_sts::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    async fn codes(
        asg: &aws_sdk_autoscaling::Client,
        ec2: &aws_sdk_ec2::Client,
        org: &aws_sdk_organizations::Client,
        sts: &aws_sdk_sts::Client,
        sqs: &aws_sdk_sqs::Client,
    ) -> Vec<Option<String>> {
        let code = |e: Option<&dyn ProvideErrorMetadata>| e.and_then(|e| e.code().map(String::from));
        vec![
            code(
                asg.describe_auto_scaling_groups()
                    .send()
                    .await
                    .err()
                    .as_ref()
                    .map(|e| e as _),
            ),
            code(ec2.describe_instances().send().await.err().as_ref().map(|e| e as _)),
            code(org.list_accounts().send().await.err().as_ref().map(|e| e as _)),
            code(sts.get_caller_identity().send().await.err().as_ref().map(|e| e as _)),
            code(sqs.list_queues().send().await.err().as_ref().map(|e| e as _)),
        ]
    }
    let all = |throttle, error, reset| Rates {
        throttle,
        error,
        reset,
        max_delay_ms: 0,
        cover_every_kind: false,
    };
    proxy.set_rates(all(1.0, 0.0, 0.0));
    let got = codes(&asg, &ec2, &org, &sts, &sqs).await;
    let want = [
        "Throttling",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "Throttling",
        "RequestThrottled",
    ];
    assert_eq!(got, want.map(|c| Some(c.to_string())).to_vec());
    proxy.set_rates(all(0.0, 1.0, 0.0));
    let got = codes(&asg, &ec2, &org, &sts, &sqs).await;
    let want = [
        "InternalFailure",
        "InternalError",
        "ServiceException",
        "InternalFailure",
        "InternalError",
    ];
    assert_eq!(got, want.map(|c| Some(c.to_string())).to_vec());
    // A dropped connection is no service error at all, but a failed dispatch.
    proxy.set_rates(all(0.0, 0.0, 1.0));
    let e = ec2.describe_instances().send().await.unwrap_err();
    assert!(matches!(e, aws_sdk_ec2::error::SdkError::DispatchFailure(_)), "{e:?}");
    // With injection off, the same calls reach moto.
    proxy.set_enabled(false);
    assert!(ec2.describe_instances().send().await.is_ok());
    assert!(sts.get_caller_identity().send().await.is_ok());
}

/// A server that takes the call and never answers fails only its own scope, after
/// `call_timeout_seconds` per attempt; the other region's work is done in the same pass.
#[tokio::test(flavor = "multi_thread")]
async fn a_call_that_never_answers_times_out_in_its_own_scope() {
    let moto = Moto::start();
    for region in ["us-east-1", "eu-west-1"] {
        let sdk = moto.sdk(region).await;
        support::moto::launch_template(&sdk).await;
        support::moto::group(&sdk, "web", (1, 2, 1), &[("Schedule", "office-hours")]).await;
    }
    let (_dir, path) = config(
        "timezone: Asia/Seoul
schedules:
  office-hours:
    running: [\"Mon-Fri 08:00-20:00\"]
regions: [us-east-1, eu-west-1]
call_timeout_seconds: 1
",
    );
    let proxy = Proxy::start(&moto.endpoint, Rates::HOSTILE, 1);
    proxy.set_enabled(false);
    proxy.never_answer("eu-west-1");
    let mut env = proxy.env(&moto);
    env.push(("AWS_MAX_ATTEMPTS", "2".into()));
    let started = std::time::Instant::now();
    let mut child = moto
        .command(&path, &["reconcile", "--output", "json", "--now", DAY], &env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("the pass still waits for the silent region after 60 s");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    let o = child.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&o.stderr));
    });
    assert_eq!(o.status.code(), Some(1), "a failed scope fails the pass: {report}");
    assert!(took < std::time::Duration::from_secs(30), "took {took:?}");
    assert!(proxy.held() >= 2, "both attempts were sent and held: {}", proxy.held());
    let scopes = report["scopes"].as_array().unwrap();
    let status = |region: &str| {
        scopes
            .iter()
            .find(|s| s["region"] == region)
            .unwrap_or_else(|| panic!("no {region} scope: {report}"))
    };
    assert_eq!(status("us-east-1")["status"], "ok", "{report}");
    let failed = status("eu-west-1");
    assert_eq!(failed["status"], "failed", "{report}");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.to_lowercase().contains("timeout") || error.contains("timed out"),
        "{error}"
    );
    // The answering region's group got its actions; the silent one was left as it was.
    let actions = |region: &'static str| {
        let moto = &moto;
        async move {
            aws_sdk_autoscaling::Client::new(&moto.sdk(region).await)
                .describe_scheduled_actions()
                .auto_scaling_group_name("web")
                .send()
                .await
                .unwrap()
                .scheduled_update_group_actions()
                .len()
        }
    };
    assert!(actions("us-east-1").await > 0);
    assert_eq!(actions("eu-west-1").await, 0);
}

/// A scope slower than the pass deadline is abandoned on its own: the report keeps the
/// other scopes' results, and the command ends near the deadline, not at the calls' timeout.
#[tokio::test(flavor = "multi_thread")]
async fn a_scope_past_the_pass_deadline_is_abandoned_alone() {
    let moto = Moto::start();
    for region in ["us-east-1", "eu-west-1"] {
        let sdk = moto.sdk(region).await;
        support::moto::group(&sdk, "web", (1, 2, 1), &[("Schedule", "office-hours")]).await;
    }
    let (_dir, path) = config(
        "timezone: Asia/Seoul
schedules:
  office-hours:
    running: [\"Mon-Fri 08:00-20:00\"]
regions: [us-east-1, eu-west-1]
call_timeout_seconds: 120
pass_deadline_seconds: 10
",
    );
    let proxy = Proxy::start(&moto.endpoint, Rates::HOSTILE, 1);
    proxy.set_enabled(false);
    proxy.never_answer("eu-west-1");
    let started = std::time::Instant::now();
    let o = moto
        .command(
            &path,
            &["reconcile", "--output", "json", "--now", DAY],
            &proxy.env(&moto),
        )
        .output()
        .unwrap();
    let took = started.elapsed();
    let report: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    assert_eq!(o.status.code(), Some(1), "{report}");
    assert!(took < std::time::Duration::from_secs(30), "took {took:?}");
    let scope = |region: &str| {
        report["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["region"] == region)
            .cloned()
            .unwrap()
    };
    assert_eq!(scope("us-east-1")["status"], "ok", "{report}");
    let eu = scope("eu-west-1");
    assert!(eu["error"].as_str().unwrap().contains("abandoned"), "{eu}");
    assert!(
        report["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["region"] == "us-east-1" && c["status"] == "applied"),
        "{report}"
    );
}
