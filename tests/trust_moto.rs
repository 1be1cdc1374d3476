//! Tags are other people's input (issue 14's done-when cases), end to end against moto:
//! a forged saved size scales nothing up, a remediated group comes back when it opts in,
//! instances other controllers manage are never remediated, and a group's name cannot
//! page a Slack channel.

mod support;

use std::collections::BTreeMap;
use std::process::Command;

use aws_sdk_autoscaling::Client as Asg;
use aws_sdk_ec2::types::InstanceStateName;
use offhours::capacity::Capacity;
use support::moto::{MANAGEMENT, Moto, config, group, sealed_size};

const CONFIG: &str = "\
timezone: Asia/Seoul
schedules:
  office-hours:
    running: [\"Mon-Fri 08:00-20:00\"]
regions: [us-east-1]
instances:
  grace_minutes: 0
";

/// Wednesday 22:00 KST: office-hours says off.
const NIGHT: &str = "2026-11-25T22:00:00+09:00";

async fn read(asg: &Asg, name: &str) -> (Capacity, BTreeMap<String, String>, usize) {
    let (size, tags, actions) = support::moto::read_group(asg, name).await;
    (size, tags, actions.len())
}

async fn tag(asg: &Asg, name: &str, k: &str, v: &str) {
    asg.create_or_update_tags()
        .tags(
            aws_sdk_autoscaling::types::Tag::builder()
                .resource_id(name)
                .resource_type("auto-scaling-group")
                .key(k)
                .value(v)
                .propagate_at_launch(false)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

fn errors_for<'a>(r: &'a serde_json::Value, id: &str) -> Vec<&'a str> {
    r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource_id"] == id)
        .map(|e| e["error"].as_str().unwrap())
        .collect()
}

/// Done when: a forged saved size on a stopped scheduled group, and on an untagged group at
/// 0/0/0, leaves both as they are and reports it.
#[tokio::test(flavor = "multi_thread")]
async fn a_forged_saved_size_scales_nothing_up_and_is_reported() {
    let moto = Moto::start();
    let sdk = moto.sdk("us-east-1").await;
    let asg = Asg::new(&sdk);
    group(&sdk, "scheduled", (1, 4, 2), &[("Schedule", "office-hours")]).await;
    group(&sdk, "idle", (0, 0, 0), &[("Team", "payments")]).await;
    let (_d, cfg) = config(CONFIG);
    moto.pass(&cfg, "reconcile", NIGHT);
    assert_eq!(read(&asg, "scheduled").await.0, Capacity::ZERO, "offhours stopped it");

    // A team member writes 5,000 over the stopped group's saved size, and a sealed-looking
    // value on an untagged group at 0/0/0.
    let forged = "min=0 max=5000 desired=5000";
    tag(&asg, "scheduled", "offhours:saved-capacity", forged).await;
    tag(
        &asg,
        "idle",
        "offhours:saved-capacity",
        &format!("{forged} mac=00112233445566778899aabbccddeeff"),
    )
    .await;
    let r = moto.pass(&cfg, "reconcile", NIGHT);
    let (size, tags, actions) = read(&asg, "scheduled").await;
    assert_eq!(size, Capacity::ZERO, "still stopped");
    assert!(errors_for(&r, "scheduled")[0].contains("not trusted"), "{r:#}");
    assert_eq!(
        sealed_size(tags.get("offhours:saved-capacity")),
        Some("min=1 max=4 desired=2"),
        "the true size, from offhours' own start actions, sealed again"
    );
    assert_eq!(actions, 2);
    let (size, tags, _) = read(&asg, "idle").await;
    assert_eq!(size, Capacity::ZERO, "never restored to 5,000");
    assert_eq!(
        tags["offhours:saved-capacity"],
        format!("{forged} mac=00112233445566778899aabbccddeeff"),
        "left as it is"
    );
    assert!(errors_for(&r, "idle")[0].contains("not offhours'"), "{r:#}");
    assert!(
        r["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["resource_id"] != "idle"),
        "nothing written on the untagged group: {r:#}"
    );
    // Morning: the scheduled group starts at its true size (AWS fires the start action).
    let r = moto.pass(&cfg, "reconcile", "2026-11-26T08:05:00+09:00");
    assert_eq!(r["summary"]["failed"], 0);
    assert_eq!(read(&asg, "idle").await.0, Capacity::ZERO);
}

/// Done when: a remediated group tagged `always-on` is back at its size.
#[tokio::test(flavor = "multi_thread")]
async fn a_group_stopped_by_remediation_and_then_tagged_always_on_is_back_at_its_size() {
    let moto = Moto::start();
    let sdk = moto.sdk("us-east-1").await;
    let asg = Asg::new(&sdk);
    group(&sdk, "orphan", (1, 3, 2), &[("Team", "payments")]).await;
    let (_d, cfg) = config(&format!(
        "{CONFIG}policy:\n  on_untagged: stop\n  untagged_grace_minutes: 0\n"
    ));
    let r = moto.pass(&cfg, "reconcile", NIGHT);
    let kinds: Vec<&str> = r["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["resource_id"] == "orphan")
        .map(|c| c["change"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["save-capacity", "set-tags", "set-capacity"],
        "the record before the scale-down"
    );
    let (size, tags, _) = read(&asg, "orphan").await;
    assert_eq!(size, Capacity::ZERO);
    assert!(tags["offhours:remediated"].starts_with("stopped at"));
    // Untagged, it stays stopped; tagged always-on, it is restored and the record goes.
    assert!(support::moto::mutating_calls(&moto.pass(&cfg, "reconcile", NIGHT)).is_empty());
    tag(&asg, "orphan", "Schedule", "always-on").await;
    moto.pass(&cfg, "reconcile", NIGHT);
    let (size, tags, _) = read(&asg, "orphan").await;
    assert_eq!(
        size,
        Capacity {
            min: 1,
            max: 3,
            desired: 2
        }
    );
    assert!(
        !tags.contains_key("offhours:remediated") && !tags.contains_key("offhours:saved-capacity"),
        "{tags:?}"
    );
    assert!(support::moto::mutating_calls(&moto.pass(&cfg, "reconcile", NIGHT)).is_empty());
}

/// Done when: an untagged instance carrying EKS or Karpenter tags is not stopped under
/// `on_untagged: stop` (nor one exempt by tag, nor anything in the management account
/// unless configured).
#[tokio::test(flavor = "multi_thread")]
async fn instances_other_controllers_manage_are_never_stopped_by_remediation() {
    let moto = Moto::start();
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk_in(MANAGEMENT, "us-east-1").await);
    let eks = support::world::launch(&ec2, &[("eks:nodegroup-name", "ng-1"), ("eks:cluster-name", "dev")], 1).await;
    let karpenter = support::world::launch(&ec2, &[("karpenter.sh/nodepool", "default")], 1).await;
    let exempt = support::world::launch(&ec2, &[("offhours-exempt", "load test")], 1).await;
    let plain = support::world::launch(&ec2, &[("Team", "payments")], 1).await;
    let (_d, cfg) = config(&format!(
        "{CONFIG}policy:\n  on_untagged: stop\n  untagged_grace_minutes: 0\n"
    ));
    let r = moto.pass(&cfg, "reconcile", NIGHT);
    let state = |id: String| {
        let ec2 = ec2.clone();
        async move {
            ec2.describe_instances()
                .instance_ids(id)
                .send()
                .await
                .unwrap()
                .reservations()[0]
                .instances()[0]
                .state()
                .unwrap()
                .name()
                .unwrap()
                .clone()
        }
    };
    for (id, why) in [(&eks[0], "EKS"), (&karpenter[0], "Karpenter"), (&exempt[0], "exempt")] {
        assert_eq!(state(id.clone()).await, InstanceStateName::Running, "{why}");
        let v = r["violations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["resource_id"] == id.as_str())
            .unwrap();
        assert!(
            v["not_remediated"]
                .as_str()
                .unwrap()
                .contains(if why == "exempt" { "exempt" } else { why }),
            "{v}"
        );
    }
    assert_eq!(
        state(plain[0].clone()).await,
        InstanceStateName::Stopped,
        "the plain one is remediated"
    );
    // The management account (moto's default account is in an organization only if one is
    // created): with one, nothing there is remediated unless configured.
    support::moto::create_organization(&moto.sdk("us-east-1").await).await;
    let another = support::world::launch(&ec2, &[("Team", "payments")], 1).await;
    let r = moto.pass(&cfg, "reconcile", NIGHT);
    assert_eq!(state(another[0].clone()).await, InstanceStateName::Running);
    let v = r["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["resource_id"] == another[0].as_str())
        .unwrap();
    assert!(
        v["not_remediated"].as_str().unwrap().contains("management account"),
        "{v}"
    );
}

/// Done when: a group named with `<!channel>` reaches the webhook receiver escaped.
#[tokio::test(flavor = "multi_thread")]
async fn a_group_named_to_page_a_channel_reaches_the_webhook_escaped() {
    let moto = Moto::start();
    let sdk = moto.sdk("us-east-1").await;
    group(
        &sdk,
        "<!channel> & <https://evil.example|pay here>",
        (1, 1, 1),
        &[("Schedule", "office-hour")],
    )
    .await;
    let (port, got) = support::webhook::receiver();
    let (_dir, cfg) = config(&format!("{CONFIG}notifications:\n  webhook_url_env: TEST_WEBHOOK\n"));
    let o = Command::new(env!("CARGO_BIN_EXE_offhours"))
        .args(["--config", cfg.to_str().unwrap(), "reconcile", "--now", NIGHT])
        .envs(moto.env())
        .env("TEST_WEBHOOK", format!("http://127.0.0.1:{port}/hook"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bodies = got.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    let text = serde_json::from_str::<serde_json::Value>(&bodies[0]).unwrap()["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains("&lt;!channel&gt; &amp; &lt;https://evil.example|pay here&gt;"),
        "{text}"
    );
    assert!(!text.contains("<!channel>") && !text.contains("<https://"), "{text}");
    // The text log on standard error keeps each event on one line.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.lines().all(|l| l.is_empty()
            || l.contains(" WARN ")
            || l.contains(" INFO ")
            || l.contains(" ERROR ")
            || l.contains(" DEBUG ")),
        "{err}"
    );
}
