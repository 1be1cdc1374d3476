//! A moto server on a loopback port the harness holds, for one test, stopped when dropped; and the
//! offhours binary run against it. Everything reaches moto through the strict layer
//! ([`super::strict`]): a proxy that enforces the AWS rules moto lacks.
//!
//! The server binary is `$OFFHOURS_MOTO_SERVER`, else `moto_server` on PATH
//! (`./scripts/test` installs the pinned `moto[server]` into a venv and sets the variable).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::Credentials;
use aws_types::region::Region;

/// The state key every offhours the tests run gets.
pub const STATE_KEY: &str = "test-state-key-0123456789";

/// The account moto gives plain access keys.
pub const MANAGEMENT: &str = "123456789012";

/// A running moto server, behind the strict layer.
pub struct Moto {
    child: Child,
    /// The strict proxy in front of moto, `http://127.0.0.1:PORT`: what tests and offhours use.
    pub endpoint: String,
    /// moto itself, for the rare check that must bypass the strict layer.
    pub upstream: String,
    proxy: super::faults::Proxy,
    _log: tempfile::NamedTempFile,
    /// The listening socket moto serves on, held by the harness.
    _listener: TcpListener,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts a server on a port the harness holds, and waits until it answers.
    ///
    /// The harness binds the listening socket itself and hands it to moto's server
    /// (werkzeug takes an inherited listening socket from `WERKZEUG_SERVER_FD` when
    /// `WERKZEUG_RUN_MAIN` is set, as its reloader does), so no port is probed, released and
    /// raced for; the socket stays held until the test ends.
    pub fn start() -> Moto {
        use std::os::unix::io::AsRawFd;
        use std::os::unix::process::CommandExt;
        let bin = std::env::var("OFFHOURS_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let fd = listener.as_raw_fd();
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = Command::new(&bin);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("WERKZEUG_RUN_MAIN", "true")
            .env("WERKZEUG_SERVER_FD", "3")
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap());
        // SAFETY: between fork and exec only async-signal-safe calls (dup2, fcntl) run.
        unsafe {
            cmd.pre_exec(move || {
                // The listening socket becomes the child's fd 3, kept across exec.
                if libc::dup2(fd, 3) == -1 || libc::fcntl(3, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot start `{bin}` ({e}); run ./scripts/test, which installs moto, or set OFFHOURS_MOTO_SERVER")
        });
        let upstream = format!("http://127.0.0.1:{port}");
        let proxy = super::faults::Proxy::strict(&upstream);
        let mut moto = Moto {
            child,
            endpoint: proxy.endpoint.clone(),
            upstream,
            proxy,
            _log: log,
            _listener: listener,
        };
        // Connections queue on the held socket from the start: wait for an answer.
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if answers(port) {
                return moto;
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!(
                    "moto_server exited ({status:?}): {}",
                    std::fs::read_to_string(moto._log.path()).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("moto_server did not answer within 30 s");
    }

    /// The strict proxy in front of moto (for targeted faults: [`super::faults::Proxy::fail_next`]).
    pub fn proxy(&self) -> &super::faults::Proxy {
        &self.proxy
    }

    /// The strict layer's rules and marks.
    pub fn rules(&self) -> &super::strict::Strict {
        self.proxy.rules().expect("the harness proxy is strict")
    }

    /// The moment the strict layer takes as now (tests that run offhours with `--now`).
    pub fn set_now(&self, now: &str) {
        self.rules()
            .set_now(Some(offhours::schedule::parse_instant(now).unwrap()));
    }

    /// The environment the offhours binary needs to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            // The key that seals offhours' saved sizes (README: "Tags offhours trusts").
            ("OFFHOURS_STATE_KEY", STATE_KEY.into()),
        ]
    }

    /// An SDK config for the management account in `region`.
    pub async fn sdk(&self, region: &str) -> SdkConfig {
        self.sdk_with(region, Credentials::new("testing", "testing", None, None, "test"))
            .await
    }

    /// An SDK config for `region` with the given credentials.
    pub async fn sdk_with(&self, region: &str, creds: Credentials) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new(region.to_string()))
            .credentials_provider(creds)
            .load()
            .await
    }

    /// An SDK config inside `account` (through STS AssumeRole), in `region`.
    pub async fn sdk_in(&self, account: &str, region: &str) -> SdkConfig {
        if account == MANAGEMENT {
            return self.sdk(region).await;
        }
        let sts = aws_sdk_sts::Client::new(&self.sdk(region).await);
        let c = sts
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/OrganizationAccountAccessRole"))
            .role_session_name("test")
            .send()
            .await
            .unwrap()
            .credentials
            .unwrap();
        let creds = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().into()),
            None,
            "assumed",
        );
        self.sdk_with(region, creds).await
    }

    /// Runs the offhours binary against this server.
    pub fn offhours(&self, config: &Path, args: &[&str]) -> Output {
        self.command(config, args, &self.env()).output().unwrap()
    }

    /// The offhours binary with `env` (this server's, or a proxy's in front of it).
    pub fn command(&self, config: &Path, args: &[&str], env: &[(&'static str, String)]) -> Command {
        // The strict layer judges time as the command does.
        if let Some(i) = args.iter().position(|a| *a == "--now")
            && let Some(now) = args.get(i + 1)
        {
            self.set_now(now);
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_offhours"));
        cmd.arg("--config").arg(config).args(args);
        for k in [
            "AWS_PROFILE",
            "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE",
            "AWS_SESSION_TOKEN",
            "OFFHOURS_CONFIG",
        ] {
            cmd.env_remove(k);
        }
        cmd.envs(env.iter().map(|(k, v)| (*k, v)))
            .env("RUST_LOG", "offhours=warn");
        cmd
    }

    /// Runs `offhours reconcile|plan --output json --now NOW` and parses the report.
    pub fn pass(&self, config: &Path, command: &str, now: &str) -> serde_json::Value {
        let o = self.offhours(config, &[command, "--output", "json", "--now", now]);
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{command} failed ({:?}):\n{stdout}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }
}

impl Moto {
    /// Like [`Moto::pass`], but a pass that reports failures (exit 1) is returned too.
    pub fn pass_status(&self, config: &Path, command: &str, now: &str) -> serde_json::Value {
        let o = self.offhours(config, &[command, "--output", "json", "--now", now]);
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "{command} crashed ({:?}):\n{stdout}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }
}

/// The size in a saved-size tag value, if the value carries offhours' seal
/// (`min=1 max=4 desired=2 mac=<32 hex>`); the seal itself is checked by what offhours
/// does with a forged one (tests/trust_moto.rs).
pub fn sealed_size(value: Option<&String>) -> Option<&str> {
    let (size, mac) = value?.rsplit_once(" mac=")?;
    (mac.len() == 32 && mac.bytes().all(|b| b.is_ascii_hexdigit())).then_some(size)
}

/// A group as read back: its size, its tags and the names of its scheduled actions.
pub async fn read_group(
    asg: &aws_sdk_autoscaling::Client,
    name: &str,
) -> (
    offhours::capacity::Capacity,
    std::collections::BTreeMap<String, String>,
    Vec<String>,
) {
    let g = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .unwrap()
        .auto_scaling_groups()[0]
        .clone();
    let actions = asg
        .describe_scheduled_actions()
        .auto_scaling_group_name(name)
        .send()
        .await
        .unwrap()
        .scheduled_update_group_actions()
        .iter()
        .filter_map(|a| a.scheduled_action_name().map(String::from))
        .collect();
    (
        offhours::capacity::Capacity {
            min: g.min_size().unwrap_or_default(),
            max: g.max_size().unwrap_or_default(),
            desired: g.desired_capacity().unwrap_or_default(),
        },
        g.tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
            .collect(),
        actions,
    )
}

/// Creates the organization (all features) with the caller's account as its management
/// account; returns the root id.
pub async fn create_organization(sdk: &SdkConfig) -> String {
    let org = aws_sdk_organizations::Client::new(sdk);
    org.create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    org.list_roots().send().await.unwrap().roots()[0]
        .id()
        .unwrap()
        .to_string()
}

/// An organization (its management account is the caller's) with one member account
/// `dev`; returns the member's id.
pub async fn organization_with_member(sdk: &SdkConfig) -> String {
    create_organization(sdk).await;
    aws_sdk_organizations::Client::new(sdk)
        .create_account()
        .account_name("dev")
        .email("dev@example.com")
        .send()
        .await
        .unwrap()
        .create_account_status()
        .unwrap()
        .account_id()
        .unwrap()
        .to_string()
}

/// Writes a config file into a fresh directory.
pub fn config(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("offhours.yaml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// The mutating calls a report's `api_calls` lists.
pub fn mutating_calls(report: &serde_json::Value) -> Vec<String> {
    report["api_calls"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| offhours::aws::is_mutating(k))
        .cloned()
        .collect()
}

/// Creates (once per account and region) the launch template the test groups use.
pub async fn launch_template(sdk: &SdkConfig) {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    if ec2
        .describe_launch_templates()
        .launch_template_names("offhours-test")
        .send()
        .await
        .is_ok()
    {
        return;
    }
    ec2.create_launch_template()
        .launch_template_name("offhours-test")
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id("ami-12c6146b")
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// Creates an Auto Scaling group of `min/max/desired` with tags, in `sdk`'s account and region.
pub async fn group(sdk: &SdkConfig, name: &str, (min, max, desired): (i32, i32, i32), tags: &[(&str, &str)]) {
    launch_template(sdk).await;
    let region = sdk.region().unwrap().to_string();
    let tags = tags
        .iter()
        .map(|(k, v)| {
            aws_sdk_autoscaling::types::Tag::builder()
                .key(*k)
                .value(*v)
                .propagate_at_launch(false)
                .build()
        })
        .collect();
    aws_sdk_autoscaling::Client::new(sdk)
        .create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_name("offhours-test")
                .build(),
        )
        .min_size(min)
        .max_size(max)
        .desired_capacity(desired)
        .availability_zones(format!("{region}a"))
        .set_tags(Some(tags))
        .send()
        .await
        .unwrap();
}

/// Whether an HTTP server answers on `port` (a connect alone succeeds on a held socket).
fn answers(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    matches!(s.read(&mut buf), Ok(n) if n >= 12 && buf.starts_with(b"HTTP/1."))
}

/// Creates a PostgreSQL DB instance `name` (db.t3.micro) with tags, in `rds`'s account and
/// region.
pub async fn database(rds: &aws_sdk_rds::Client, name: &str, tags: &[(&str, &str)]) {
    let tags = tags
        .iter()
        .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(*k).value(*v).build())
        .collect();
    rds.create_db_instance()
        .db_instance_identifier(name)
        .db_instance_class("db.t3.micro")
        .engine("postgres")
        .allocated_storage(20)
        .master_username("offhours")
        .master_user_password("not-a-real-password")
        .set_tags(Some(tags))
        .send()
        .await
        .unwrap();
}
