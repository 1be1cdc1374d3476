//! The status page and a resource page in a real browser: headless Chromium (Debian's
//! `chromium` package; `.ci/run` installs it) against a daemon on moto that keeps the
//! demo's organization (seeded by `scripts/demo.py --seed`). Assertions are on the DOM
//! Chromium rendered (`--dump-dom`), and a screenshot of each page is kept in the target
//! directory (`status-page.png`, `resource-page.png`); `OFFHOURS_SCREENSHOT_DIR` copies
//! them there too (README's picture comes from it).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::daemon::{Daemon, command, wait_for};
use support::moto::{MANAGEMENT, Moto};

fn chromium() -> PathBuf {
    let p = std::env::var("OFFHOURS_CHROMIUM").map_or_else(|_| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        p.exists(),
        "{} not found: install Debian's chromium package (apt-get install chromium), as .ci/run does",
        p.display()
    );
    p
}

/// Chromium, headless, with a fresh profile and no background networking (this machine's
/// network is closed), on `url`, with `args`.
fn browse(profile: &Path, url: &str, args: &[&str]) -> std::process::Output {
    let o = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// The DOM as Chromium rendered it.
fn dom(profile: &Path, url: &str) -> String {
    String::from_utf8(browse(profile, url, &["--dump-dom"]).stdout).unwrap()
}

/// A screenshot of `url`, kept as `name` in the target directory (and in
/// `$OFFHOURS_SCREENSHOT_DIR`); returns its bytes.
fn screenshot(profile: &Path, url: &str, name: &str, height: u32) -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    browse(
        profile,
        url,
        &[
            &format!("--screenshot={}", path.display()),
            &format!("--window-size=1400,{height}"),
        ],
    );
    let png = std::fs::read(&path).unwrap();
    if let Ok(keep) = std::env::var("OFFHOURS_SCREENSHOT_DIR") {
        std::fs::write(Path::new(&keep).join(name), &png).unwrap();
    }
    png
}

/// The text of `html` with tags removed and entities decoded (enough for assertions).
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_page_and_a_resource_page_work_in_headless_chromium_against_the_demo_organization() {
    let moto = Moto::start();
    let endpoint = moto
        .env()
        .into_iter()
        .find(|(k, _)| *k == "AWS_ENDPOINT_URL")
        .unwrap()
        .1;
    let dir = tempfile::tempdir().unwrap();
    let seeded = Command::new(support::python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/demo.py"))
        .args(["--seed", &endpoint, dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(seeded.status.success(), "{}", String::from_utf8_lossy(&seeded.stderr));
    let seeded: serde_json::Value = serde_json::from_slice(&seeded.stdout).unwrap();
    let accounts: Vec<String> = seeded["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let cfg = PathBuf::from(seeded["config"].as_str().unwrap());
    // A team name that is markup: the page must show it as text.
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk_in(MANAGEMENT, "ap-northeast-2").await);
    let hostile = support::world::launch(
        &ec2,
        &[("Schedule", "office-hours"), ("Team", "<img src=x onerror=alert(1)>")],
        1,
    )
    .await
    .remove(0);
    // The daemon: the demo's config, a loopback port, passes every 10 s.
    let mut text_cfg = std::fs::read_to_string(&cfg).unwrap();
    text_cfg.push_str("server:\n  listen: 127.0.0.1:0\ninterval_seconds: 10\njitter_seconds: 0\n");
    std::fs::write(&cfg, text_cfg).unwrap();
    let mut d = Daemon::spawn(command(&cfg, &moto.env(), &[]));
    wait_for("the first pass", Duration::from_secs(120), || d.passes() >= 1);
    let base = format!("http://127.0.0.1:{}", d.port);
    let profile = tempfile::tempdir().unwrap();

    let html = dom(profile.path(), &format!("{base}/"));
    let page = text(&html);
    // The schedules, with their next transitions in local time and UTC.
    assert!(page.contains("office-hours") && page.contains("Asia/Seoul"), "{page}");
    assert!(page.contains(" KST / ") && page.contains(" UTC"), "{page}");
    // Resources of every account, by team, with the demo's groups, servers and databases.
    for a in &accounts {
        assert!(page.contains(a.as_str()), "account {a}: {page}");
    }
    for s in ["dev-web", "dev-db", "payments", "search", "platform"] {
        assert!(page.contains(s), "{s}: {page}");
    }
    // The typo'd tag is an error on its row; the untagged are violations.
    assert!(page.contains("ofice-hours"), "{page}");
    assert!(page.contains("Violations") && page.contains("batch-untagged"), "{page}");
    assert!(page.contains("Savings") && html.contains("<svg"), "the chart is drawn");
    assert!(page.contains("last pass"), "{page}");
    // The hostile team name is text, never an element.
    assert!(
        page.contains("<img src=x onerror=alert(1)>"),
        "shown as written: {page}"
    );
    assert!(!html.contains("<img"), "no element made from a tag: {html}");
    assert!(!html.contains("<script"), "the page runs no script");
    let png = screenshot(profile.path(), &format!("{base}/"), "status-page.png", 2400);
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "{} bytes", png.len());

    // The resource page of the server held up by an override: why, and what next.
    let out = aws_sdk_ec2::Client::new(&moto.sdk_in(&accounts[1], "ap-northeast-2").await)
        .describe_instances()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:Name")
                .values("release-night")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let id = out.reservations()[0].instances()[0].instance_id().unwrap().to_string();
    let url = format!("{base}/resources/{}/ap-northeast-2/{id}", accounts[1]);
    let one = text(&dom(profile.path(), &url));
    assert!(
        one.contains(&id) && one.contains("It follows schedule `office-hours`"),
        "{one}"
    );
    assert!(one.contains("An override holds it running until"), "{one}");
    assert!(one.contains("Next:"), "{one}");
    let png = screenshot(profile.path(), &url, "resource-page.png", 900);
    assert!(png.starts_with(b"\x89PNG"));
    // The hostile one's page escapes its team too; an unknown resource is a 404 page.
    let h = dom(
        profile.path(),
        &format!("{base}/resources/{MANAGEMENT}/ap-northeast-2/{hostile}"),
    );
    assert!(
        !h.contains("<img") && text(&h).contains("team <img src=x onerror=alert(1)>"),
        "{h}"
    );
    assert_eq!(d.get("/resources/1/2/nothing").map(|r| r.0), Some(404));
    d.signal("-TERM");
    d.wait_exit(Duration::from_secs(40));
}
