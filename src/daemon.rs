//! `offhours run`: the long-running service. A full pass every interval (plus jitter) and
//! at the next EC2 transition; SIGHUP reloads the config (a bad one is rejected and the
//! old one kept); SIGTERM/SIGINT stop new work, let the pass in flight finish (at most
//! 25 s), and exit; HTTP serves the status page (/ and /resources/...), /metrics,
//! /healthz and /readyz. A failing pass never ends the loop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State as AxumState;
use axum::http::StatusCode;
use axum::routing::get;
use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

use crate::aws::CallCounter;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::report::PassReport;
use crate::shard::Shard;

/// How long a pass in flight may finish after SIGTERM.
const DRAIN: Duration = Duration::from_secs(25);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The HTTP endpoint could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
}

#[derive(Debug, Default)]
struct Health {
    /// When the last pass finished, and whether it succeeded for at least one scope.
    last: Mutex<Option<(Instant, bool)>>,
    /// When the loop last moved on (a pass began or ended, a pause ended), and the longest
    /// a healthy loop goes without moving on under the current config.
    beat: Mutex<Option<(Instant, Duration)>>,
}

/// Slack on top of a pass's deadline before the loop gives up waiting for it.
const WATCHDOG_GRACE: Duration = Duration::from_secs(30);

impl Health {
    /// The loop moves on. A healthy loop's next beat comes within the longer of a pass (its
    /// deadline, plus the watchdog's grace) and a pause (the interval plus its jitter).
    fn beat(&self, cfg: &Config) {
        let d = &cfg.daemon;
        let within = (d.deadline + WATCHDOG_GRACE).max(d.interval + d.jitter) + Duration::from_secs(30);
        *self.beat.lock().expect("health lock") = Some((Instant::now(), within));
    }

    /// Liveness: `Err` with the reason when the loop has not moved on in time.
    fn live(&self, now: Instant) -> Result<(), Stuck> {
        match *self.beat.lock().expect("health lock") {
            Some((at, within)) if now.saturating_duration_since(at) > within => Err(Stuck {
                idle: now.saturating_duration_since(at),
                within,
            }),
            _ => Ok(()),
        }
    }
}

/// The pass loop has not moved on in time.
#[derive(Debug, thiserror::Error)]
#[error(
    "the pass loop has not moved on for {} s (a healthy loop does within {} s)",
    .idle.as_secs(),
    .within.as_secs()
)]
struct Stuck {
    idle: Duration,
    within: Duration,
}

#[derive(Debug)]
struct App {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    stale_after: Duration,
    feeds: Arc<Mutex<FeedStates>>,
    /// The config in use, for the status page.
    config: Arc<RwLock<Config>>,
    /// The last finished pass, for the status page.
    last: Arc<RwLock<Option<crate::status::Snapshot>>>,
}

/// Runs until SIGTERM or SIGINT.
pub async fn run(path: PathBuf, initial: Config, shard: Option<Shard>) -> Result<(), DaemonError> {
    let config = Arc::new(RwLock::new(initial));
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    let stop = CancellationToken::new();
    let wake = Arc::new(tokio::sync::Notify::new());

    let (listen, interval, deadline) = {
        let c = config.read().expect("config lock");
        (c.daemon.listen, c.daemon.interval, c.daemon.deadline)
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| DaemonError::Listen { addr: listen, source })?;
    // The address actually bound: `server.listen` may name port 0 (the system picks one).
    let bound = listener
        .local_addr()
        .map_or_else(|_| listen.to_string(), |a| a.to_string());
    let feeds = Arc::new(Mutex::new(FeedStates::default()));
    let last = Arc::new(RwLock::new(None));
    let app = Arc::new(App {
        metrics: metrics.clone(),
        health: health.clone(),
        stale_after: interval * 2 + deadline,
        feeds: feeds.clone(),
        config: config.clone(),
        last: last.clone(),
    });
    let router = Router::new()
        .route("/", get(status_handler))
        .route("/resources/{account}/{region}/{*id}", get(resource_handler))
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(health_handler))
        .route("/readyz", get(ready_handler))
        .with_state(app);
    let http_stop = stop.clone();
    let http = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(http_stop.cancelled_owned())
            .await;
    });
    info!(listen = %bound, "serving /metrics, /healthz, /readyz and the status page at /");

    spawn_feeds(
        path.clone(),
        config.clone(),
        stop.clone(),
        wake.clone(),
        metrics.clone(),
        feeds,
    );
    spawn_signals(path, config.clone(), stop.clone(), wake.clone(), metrics.clone())?;

    let mut passes = 0u64;
    // What the webhook has been told, so each standing error is posted once.
    let standing = Arc::new(std::sync::Mutex::new(crate::notify::Standing::default()));
    // The stop transitions warned of, so each is warned of once, across restarts too.
    let told = {
        let c = config.read().expect("config lock");
        let kept = std::fs::read_to_string(told_path(&c)).unwrap_or_default();
        Arc::new(std::sync::Mutex::new(crate::notice::Told::from_json(&kept)))
    };
    while !stop.is_cancelled() {
        let cfg = config.read().expect("config lock").clone();
        health.beat(&cfg);
        passes += 1;
        let span = info_span!("pass", n = passes);
        let work = tokio::spawn(
            one_pass(
                cfg.clone(),
                shard,
                metrics.clone(),
                health.clone(),
                standing.clone(),
                told.clone(),
                last.clone(),
            )
            .instrument(span),
        );
        tokio::pin!(work);
        metrics.pass_in_progress.set(1);
        // The pass bounds its own work by its deadline; the watchdog bounds the rest of it
        // (credentials, the report), so the loop itself cannot hang on a pass.
        let watchdog = tokio::time::sleep(cfg.daemon.deadline + WATCHDOG_GRACE);
        tokio::pin!(watchdog);
        tokio::select! {
            _ = &mut work => {}
            () = &mut watchdog => {
                error!(seconds = (cfg.daemon.deadline + WATCHDOG_GRACE).as_secs(), "the pass outlived its deadline and the watchdog's grace; abandoned");
                work.abort();
                metrics
                    .errors
                    .get_or_create(&crate::metrics::KindLabel { kind: "deadline".into() })
                    .inc();
            }
            () = stop.cancelled() => {
                info!("stopping: letting the pass in flight finish");
                if tokio::time::timeout(DRAIN, &mut work).await.is_err() {
                    warn!("the pass in flight did not finish in time; abandoned");
                    work.abort();
                }
                break;
            }
        }
        metrics.pass_in_progress.set(0);
        health.beat(&cfg);
        let pause = next_wake(&cfg, Utc::now());
        info!(seconds = pause.as_secs(), "next pass");
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = wake.notified() => {}
            () = stop.cancelled() => break,
        }
    }
    stop.cancel();
    let _ = http.await;
    info!("stopped");
    Ok(())
}

async fn one_pass(
    cfg: Config,
    shard: Option<Shard>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    standing: Arc<std::sync::Mutex<crate::notify::Standing>>,
    told: Arc<std::sync::Mutex<crate::notice::Told>>,
    last: Arc<RwLock<Option<crate::status::Snapshot>>>,
) {
    let started = Instant::now();
    let counter = CallCounter::default();
    let opts = crate::pass::Options {
        now: Utc::now(),
        apply: true,
        shard,
        steps: crate::pass::Steps::DAEMON,
    };
    let work = crate::pass::run(&cfg, opts, &counter, Some(&standing));
    match tokio::time::timeout(cfg.daemon.deadline, work).await {
        Ok(crate::pass::Finished { report, sent, .. }) => {
            let saved = crate::metrics::savings(&report, &cfg.raw.instance_hour_prices);
            metrics.record(&report, started.elapsed().as_secs_f64(), saved);
            log_summary(&report);
            if let Some(minutes) = cfg.raw.notifications.notice_minutes {
                warn_before_stops(&cfg, &report, minutes, &told, &metrics);
            }
            if let Some(sent) = sent {
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    if !sent.await.unwrap_or(false) {
                        metrics
                            .errors
                            .get_or_create(&crate::metrics::KindLabel { kind: "webhook".into() })
                            .inc();
                    }
                });
            }
            let ok = pass_ok(&report);
            *last.write().expect("status lock") = Some(crate::status::Snapshot {
                report: Arc::new(report),
                finished: Utc::now(),
                seconds: started.elapsed().as_secs_f64(),
            });
            *health.last.lock().expect("health lock") = Some((Instant::now(), ok));
        }
        Err(_) => {
            error!(
                seconds = cfg.daemon.deadline.as_secs(),
                "the pass exceeded its deadline and was abandoned"
            );
            metrics
                .errors
                .get_or_create(&crate::metrics::KindLabel {
                    kind: "deadline".into(),
                })
                .inc();
            *health.last.lock().expect("health lock") = Some((Instant::now(), false));
        }
    }
    metrics.record_calls(&counter.snapshot());
}

/// Posts the warning for each stop transition due within `minutes` that has not been warned
/// of yet (`notifications.notice_minutes`), from this pass's inventory. A failed delivery is
/// forgotten, so the next pass in the window tries again; the URL is never logged.
fn warn_before_stops(
    cfg: &Config,
    report: &PassReport,
    minutes: u32,
    told: &Arc<std::sync::Mutex<crate::notice::Told>>,
    metrics: &Arc<Metrics>,
) {
    let url = match crate::notify::webhook_url(cfg) {
        Ok(Some(u)) => u,
        Ok(None) => {
            warn!("notifications.notice_minutes is set but no webhook is configured; no warning sent");
            return;
        }
        Err(e) => {
            warn!(error = %e, "the webhook URL cannot be read; no warning sent");
            return;
        }
    };
    let due = crate::notice::due(
        cfg,
        &report.inventory,
        report.now,
        chrono::Duration::minutes(i64::from(minutes)),
    );
    let fresh = told.lock().expect("notice lock").fresh(due, report.now);
    if !fresh.is_empty() {
        keep_told(cfg, told);
    }
    for n in fresh {
        let payload = crate::notice::message(&n, report.now);
        let (url, told, metrics, cfg) = (url.clone(), told.clone(), metrics.clone(), cfg.clone());
        tokio::spawn(async move {
            match crate::notify::post(&url, &payload).await {
                Ok(()) => info!(schedule = %n.schedule, at = %n.at, "warned of the stop"),
                Err(e) => {
                    warn!(schedule = %n.schedule, at = %n.at, error = %e, "the warning before a stop was not delivered; the next pass tries again");
                    told.lock().expect("notice lock").failed(&n);
                    keep_told(&cfg, &told);
                    metrics
                        .errors
                        .get_or_create(&crate::metrics::KindLabel { kind: "webhook".into() })
                        .inc();
                }
            }
        });
    }
}

/// Where the record of warnings sent is kept.
fn told_path(cfg: &Config) -> std::path::PathBuf {
    cfg.state_dir().join("notices.json")
}

/// Keeps the record of warnings sent (written whole, then renamed into place); a failure is
/// logged: at worst a restarted daemon warns a second time.
fn keep_told(cfg: &Config, told: &Arc<std::sync::Mutex<crate::notice::Told>>) {
    let text = told.lock().expect("notice lock").to_json();
    let path = told_path(cfg);
    let tmp = path.with_extension("json.tmp");
    let done = std::fs::create_dir_all(cfg.state_dir())
        .and_then(|()| std::fs::write(&tmp, text))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = done {
        warn!(path = %path.display(), error = %e, "cannot keep the record of warnings sent; a restart may warn again");
    }
}

fn log_summary(r: &PassReport) {
    let s = &r.summary;
    info!(
        scopes = s.scopes,
        scopes_failed = s.scopes_failed,
        resources = s.resources,
        changes = s.changes,
        applied = s.applied,
        failed = s.failed,
        errors = s.errors,
        violations = s.violations,
        "pass finished"
    );
}

/// The pause before the next pass: the interval plus jitter, or less if an EC2 transition
/// of a configured schedule comes sooner (so a stop or start happens within seconds).
#[must_use]
pub fn next_wake(cfg: &Config, now: chrono::DateTime<Utc>) -> Duration {
    let jitter_ms = cfg.daemon.jitter.as_millis() as u64;
    let jitter = if jitter_ms == 0 {
        Duration::ZERO
    } else {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_i64(now.timestamp_nanos_opt().unwrap_or_default());
        Duration::from_millis(h.finish() % jitter_ms)
    };
    let regular = cfg.daemon.interval + jitter;
    // With a notice before each stop, the moment each warning is due is a wake-up too.
    let notice = cfg
        .raw
        .notifications
        .notice_minutes
        .map(|m| chrono::Duration::minutes(i64::from(m)));
    let transition = cfg
        .schedules()
        .flat_map(|s| {
            let next = s.next_transitions(now + chrono::Duration::seconds(1), 2);
            let warn = notice.and_then(|n| {
                next.iter()
                    .filter(|t| t.action == crate::schedule::Action::Stop)
                    .map(|t| t.at - n)
                    .find(|w| *w > now)
            });
            next.first().map(|t| t.at).into_iter().chain(warn)
        })
        .min()
        .and_then(|at| (at - now + chrono::Duration::seconds(2)).to_std().ok());
    transition.map_or(regular, |t| t.min(regular))
}

/// One calendar feed as /readyz reports it.
#[derive(Debug, Default)]
struct FeedState {
    /// Why its last refresh failed, if it did.
    error: Option<String>,
    /// Whether the config in use has a good copy of it.
    loaded: bool,
    /// The schedules that use it.
    schedules: Vec<String>,
}

/// What /readyz says of the calendar feeds, by label.
#[derive(Debug, Default)]
struct FeedStates(std::collections::BTreeMap<String, FeedState>);

impl FeedStates {
    /// The lines for /readyz, and whether a feed has never loaded (its schedules degraded).
    fn report(&self) -> (Vec<String>, bool) {
        let mut lines = Vec::new();
        let mut degraded = false;
        for (label, f) in &self.0 {
            if !f.loaded {
                degraded = true;
                lines.push(format!(
                    "calendar {label} has never loaded{}: schedules {} are degraded (they act without it)",
                    f.error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default(),
                    f.schedules.join(", ")
                ));
            } else if let Some(e) = &f.error {
                lines.push(format!(
                    "calendar {label}: the last refresh failed ({e}); its last good copy is in use"
                ));
            }
        }
        (lines, degraded)
    }

    /// Takes the feeds of the config in use: their loaded flags and schedules; feeds the
    /// config no longer has are forgotten.
    fn follow(&mut self, cfg: &Config, metrics: &Metrics) {
        self.0.retain(|label, _| cfg.feeds.iter().any(|f| f.label() == *label));
        for f in &cfg.feeds {
            let st = self.0.entry(f.label()).or_default();
            st.loaded = f.loaded;
            st.schedules.clone_from(&f.schedules);
            metrics
                .feed_loaded
                .get_or_create(&crate::metrics::CalendarLabel { calendar: f.label() })
                .set(i64::from(f.loaded));
        }
    }
}

/// Fetches the calendar feeds at start and each one every `refresh_hours`; a changed feed
/// reloads the config (as SIGHUP does) and wakes the loop. Failures keep the last good copy
/// and are logged (without the URL), counted and shown on /readyz.
fn spawn_feeds(
    path: PathBuf,
    config: Arc<RwLock<Config>>,
    stop: CancellationToken,
    wake: Arc<tokio::sync::Notify>,
    metrics: Arc<Metrics>,
    states: Arc<Mutex<FeedStates>>,
) {
    tokio::spawn(async move {
        let mut next: std::collections::BTreeMap<String, Instant> = std::collections::BTreeMap::new();
        loop {
            let cfg = config.read().expect("config lock").clone();
            let mut changed = false;
            for f in &cfg.feeds {
                let label = f.label();
                if next.get(&label).is_some_and(|t| *t > Instant::now()) {
                    continue;
                }
                next.insert(
                    label.clone(),
                    Instant::now() + Duration::from_secs(u64::from(f.refresh_hours) * 3600),
                );
                let outcome = crate::feeds::refresh(f, cfg.timezone).await;
                metrics
                    .feed_refreshes
                    .get_or_create(&crate::metrics::FeedLabels {
                        calendar: label.clone(),
                        result: outcome.result().into(),
                    })
                    .inc();
                changed |= matches!(outcome, crate::feeds::Outcome::Changed);
                let error = match outcome {
                    crate::feeds::Outcome::Failed(e) => Some(crate::failure::chain(&e)),
                    _ => None,
                };
                states.lock().expect("feeds lock").0.entry(label).or_default().error = error;
            }
            if changed {
                match Config::load(&path) {
                    Ok(new) => {
                        info!("calendar feeds changed: config reloaded");
                        *config.write().expect("config lock") = new;
                        wake.notify_one();
                    }
                    Err(e) => {
                        error!(errors = %e, "calendar feeds changed but the config no longer loads; keeping the old one")
                    }
                }
            }
            let cfg = config.read().expect("config lock").clone();
            states.lock().expect("feeds lock").follow(&cfg, &metrics);
            next.retain(|label, _| cfg.feeds.iter().any(|f| f.label() == *label));
            let soonest = next.values().min().map_or(Duration::from_secs(3600), |t| {
                t.saturating_duration_since(Instant::now())
            });
            tokio::select! {
                () = tokio::time::sleep(soonest.max(Duration::from_secs(1))) => {}
                () = stop.cancelled() => break,
            }
        }
    });
}

fn spawn_signals(
    path: PathBuf,
    config: Arc<RwLock<Config>>,
    stop: CancellationToken,
    wake: Arc<tokio::sync::Notify>,
    metrics: Arc<Metrics>,
) -> Result<(), DaemonError> {
    let reloads = move |outcome: &str| {
        metrics
            .config_reloads
            .get_or_create(&crate::metrics::KindLabel { kind: outcome.into() })
            .inc();
    };
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { info!("SIGTERM"); stop.cancel(); break; }
                _ = int.recv() => { info!("SIGINT"); stop.cancel(); break; }
                _ = hup.recv() => match Config::load(&path) {
                    Ok(new) => {
                        info!(config = %path.display(), "SIGHUP: config reloaded");
                        *config.write().expect("config lock") = new;
                        reloads("applied");
                        wake.notify_one();
                    }
                    Err(e) => {
                        error!(config = %path.display(), errors = %e, "SIGHUP: the new config is invalid; keeping the old one");
                        reloads("rejected");
                    }
                },
            }
        }
    });
    Ok(())
}

/// The status page (read-only HTML; see [`crate::status`]).
async fn status_handler(AxumState(app): AxumState<Arc<App>>) -> axum::response::Html<String> {
    let cfg = app.config.read().expect("config lock").clone();
    let last = app.last.read().expect("status lock").clone();
    axum::response::Html(crate::status::page(&cfg, last.as_ref(), Utc::now()).into_string())
}

/// One resource's page; 404 when the last pass did not see it.
async fn resource_handler(
    AxumState(app): AxumState<Arc<App>>,
    axum::extract::Path((account, region, id)): axum::extract::Path<(String, String, String)>,
) -> (StatusCode, axum::response::Html<String>) {
    let cfg = app.config.read().expect("config lock").clone();
    let last = app.last.read().expect("status lock").clone();
    match crate::status::resource_page(&cfg, last.as_ref(), (&account, &region, &id), Utc::now()) {
        Some(page) => (StatusCode::OK, axum::response::Html(page.into_string())),
        None => (
            StatusCode::NOT_FOUND,
            axum::response::Html(
                maud::html! { p { "The last pass saw no resource " code { (id) } " in " (account) "/" (region) "." } a href="/" { "status" } }
                    .into_string(),
            ),
        ),
    }
}

async fn metrics_handler(AxumState(app): AxumState<Arc<App>>) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.encode(),
    )
}

/// Whether a finished pass counts as healthy for /readyz: it worked at least one scope, or
/// it had none to work (a shard that owns no account is ready; a failure to list the
/// accounts is reported as a failed scope, so it is not).
fn pass_ok(report: &PassReport) -> bool {
    report.summary.scopes == 0 || report.summary.scopes > report.summary.scopes_failed
}

/// `/healthz`: the process serves and its pass loop moves on.
async fn health_handler(AxumState(app): AxumState<Arc<App>>) -> (StatusCode, String) {
    match app.health.live(Instant::now()) {
        Ok(()) => (StatusCode::OK, "ok\n".into()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}

async fn ready_handler(AxumState(app): AxumState<Arc<App>>) -> (StatusCode, String) {
    let (code, head) = match *app.health.last.lock().expect("health lock") {
        Some((at, true)) if at.elapsed() < app.stale_after => (StatusCode::OK, "ready"),
        Some((_, true)) => (StatusCode::SERVICE_UNAVAILABLE, "the last successful pass is too old"),
        Some((_, false)) => (StatusCode::SERVICE_UNAVAILABLE, "the last pass succeeded for no scope"),
        None => (StatusCode::SERVICE_UNAVAILABLE, "no pass has finished yet"),
    };
    let (lines, degraded) = app.feeds.lock().expect("feeds lock").report();
    let code = if degraded {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        code
    };
    let mut body = format!("{head}\n");
    for l in lines {
        body.push_str(&l);
        body.push('\n');
    }
    (code, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// `/healthz` answers 503 once the pass loop has not moved on for longer than a healthy
    /// loop can go (a pass's deadline plus grace, or a pause), and 200 again after a beat.
    #[tokio::test]
    async fn healthz_fails_when_the_pass_loop_is_stuck() {
        let cfg = Config::parse(
            "interval_seconds: 60\njitter_seconds: 0\npass_deadline_seconds: 120\nschedules: {}\n",
            Path::new("t.yaml"),
        )
        .unwrap();
        let app = Arc::new(App {
            metrics: Arc::new(Metrics::new()),
            health: Arc::new(Health::default()),
            stale_after: Duration::from_secs(300),
            feeds: Arc::default(),
            config: Arc::new(RwLock::new(cfg.clone())),
            last: Arc::default(),
        });
        assert_eq!(
            health_handler(AxumState(app.clone())).await.0,
            StatusCode::OK,
            "no beat yet: starting"
        );
        app.health.beat(&cfg);
        assert_eq!(health_handler(AxumState(app.clone())).await.0, StatusCode::OK);
        // The loop last moved on four minutes ago: more than the 120 s deadline + 30 s grace + 30 s.
        let (_, within) = app.health.beat.lock().unwrap().unwrap();
        assert_eq!(within, Duration::from_secs(180));
        let then = Instant::now().checked_sub(Duration::from_secs(240)).unwrap();
        *app.health.beat.lock().unwrap() = Some((then, within));
        let (code, body) = health_handler(AxumState(app.clone())).await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("has not moved on for 240 s"), "{body}");
        app.health.beat(&cfg);
        assert_eq!(health_handler(AxumState(app)).await.0, StatusCode::OK);
    }

    #[test]
    fn a_shard_without_accounts_is_ready_and_one_that_cannot_list_them_is_not() {
        let mut r = PassReport::new(crate::report::Mode::Reconcile, "2026-11-25T12:00:00Z".parse().unwrap());
        r.finish();
        assert!(pass_ok(&r), "no scope to work: ready");
        r.scopes.push(crate::report::ScopeReport {
            account: "*".into(),
            region: "*".into(),
            status: crate::report::ScopeStatus::Failed,
            error: Some("ListAccounts failed".into()),
            resources: 0,
            managed: Default::default(),
        });
        r.finish();
        assert!(!pass_ok(&r));
    }

    #[test]
    fn the_daemon_wakes_for_the_next_transition_when_it_comes_before_the_interval() {
        let cfg = Config::parse(
            "timezone: UTC\ninterval_seconds: 300\njitter_seconds: 0\nschedules:\n  dev:\n    running: [\"Mon-Fri 08:00-20:00\"]\n",
            Path::new("t.yaml"),
        )
        .unwrap();
        // Two minutes before the 20:00 stop: wake just after it, not in five minutes.
        let w = next_wake(&cfg, "2026-11-25T19:58:00Z".parse().unwrap());
        assert_eq!(w, Duration::from_secs(122));
        // Mid-morning: the regular interval.
        assert_eq!(
            next_wake(&cfg, "2026-11-25T10:00:00Z".parse().unwrap()),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn with_a_notice_before_stops_the_daemon_also_wakes_when_the_warning_is_due() {
        let cfg = Config::parse(
            "timezone: UTC\ninterval_seconds: 3600\njitter_seconds: 0\nnotifications:\n  notice_minutes: 15\nschedules:\n  dev:\n    running: [\"Mon-Fri 08:00-20:00\"]\n",
            Path::new("t.yaml"),
        )
        .unwrap();
        // 19:30: the warning is due at 19:45, before the 20:00 stop and the hourly pass.
        assert_eq!(
            next_wake(&cfg, "2026-11-25T19:30:00Z".parse().unwrap()),
            Duration::from_secs(15 * 60 + 2)
        );
        // 19:50, inside the window: the next wake is the stop itself.
        assert_eq!(
            next_wake(&cfg, "2026-11-25T19:50:00Z".parse().unwrap()),
            Duration::from_secs(10 * 60 + 2)
        );
        // 07:50: the 08:00 start comes first (no notice before a start).
        assert_eq!(
            next_wake(&cfg, "2026-11-25T07:50:00Z".parse().unwrap()),
            Duration::from_secs(10 * 60 + 2)
        );
    }
}
