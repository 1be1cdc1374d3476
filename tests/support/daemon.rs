//! `offhours run` as a child process: started on a port the system picks (`server.listen`
//! on port 0, read back from the daemon's own start-up line, so no port is probed and
//! released), its HTTP endpoints, its metrics, and signals.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running daemon, killed when dropped.
pub struct Daemon {
    pub child: Child,
    /// The port it serves /metrics, /healthz and /readyz on.
    pub port: u16,
    /// Its standard error (the log).
    pub log: tempfile::NamedTempFile,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// Spawns `cmd` (an `offhours ... run` whose config listens on `127.0.0.1:0`) with its
    /// log in a file, and waits for the port it reports.
    pub fn spawn(mut cmd: Command) -> Daemon {
        let log = tempfile::NamedTempFile::new().unwrap();
        // The start-up line that names the bound address is an info event of the daemon.
        let filter = std::env::var("OFFHOURS_TEST_LOG").unwrap_or_else(|_| "offhours=warn".into());
        let child = cmd
            .env("RUST_LOG", format!("{filter},offhours::daemon=info"))
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        let mut d = Daemon { child, port: 0, log };
        let started = Instant::now();
        loop {
            if let Some(port) = bound_port(&d.logs()) {
                d.port = port;
                return d;
            }
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("the daemon exited ({status:?}):\n{}", d.logs());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the daemon reported no address within 30 s:\n{}",
                d.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything it has logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Sends a signal (`-TERM`, `-HUP`, ...).
    pub fn signal(&self, sig: &str) {
        signal(self.child.id(), sig);
    }

    /// `GET path`: (status, body).
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        get(self.port, path)
    }

    /// The sum of the samples of `series` on /metrics (a name, optionally with labels, as
    /// the line begins), if it answers.
    pub fn metric(&self, series: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics")?;
        Some(
            body.lines()
                .filter(|l| l.starts_with(series) && l[series.len()..].starts_with([' ', '{', '}', ',']))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum(),
        )
    }

    /// Passes finished so far, by /metrics.
    pub fn passes(&self) -> u64 {
        self.metric("offhours_passes_total").unwrap_or(0.0) as u64
    }

    /// Waits for it to exit, at most `timeout`; its status and how long it took.
    pub fn wait_exit(&mut self, timeout: Duration) -> (std::process::ExitStatus, Duration) {
        let t = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return (s, t.elapsed());
            }
            assert!(
                t.elapsed() < timeout,
                "did not exit within {timeout:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The port in the daemon's "serving /metrics" line (`listen=127.0.0.1:PORT`).
pub fn bound_port(logs: &str) -> Option<u16> {
    let line = logs.lines().find(|l| l.contains("serving /metrics"))?;
    let at = line.find("listen=")? + "listen=".len();
    let addr = line[at..].split_whitespace().next()?.trim_matches('"');
    addr.rsplit(':').next()?.parse().ok()
}

/// `GET path` on a loopback port: (status, body).
pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
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

/// Polls `f` every 100 ms until it holds, at most `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// `kill SIG PID`.
pub fn signal(pid: u32, sig: &str) {
    assert!(
        Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
}

/// An `offhours --config PATH run` command with `env`.
pub fn command(config: &Path, env: &[(&'static str, String)], extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_offhours"));
    cmd.arg("--config").arg(config).args(extra).arg("run");
    for k in [
        "AWS_PROFILE",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_SESSION_TOKEN",
    ] {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().map(|(k, v)| (*k, v)));
    cmd
}
