//! Auto Scaling groups end to end: the offhours binary against a moto server.

mod support;

use std::collections::BTreeMap;

use aws_sdk_autoscaling::Client as Asg;
use aws_sdk_autoscaling::types::Tag;
use chrono::{DateTime, Duration, Utc};
use offhours::capacity::Capacity;
use offhours::compile::{ScheduledAction, is_owned};
use offhours::config::Config;
use offhours::schedule::{Action, State};
use support::cron_eval::{Matcher, fires};
use support::moto::{MANAGEMENT, Moto, config, mutating_calls};

const CONFIG: &str = "\
timezone: Asia/Seoul
holidays:
  kr:
    dates: [2026-12-25, 2027-01-01]
schedules:
  office-hours:
    running: [\"Mon-Fri 08:00-20:00\"]
    holidays: kr
  weekend-off:
    stopped: [\"Fri 20:00-Mon 08:00\"]
regions: [us-east-1]
";

/// Wednesday 10:00 and 22:00 in Seoul.
const DAY: &str = "2026-11-25T10:00:00+09:00";
const NIGHT: &str = "2026-11-25T22:00:00+09:00";

fn size(min: i32, max: i32, desired: i32) -> Capacity {
    Capacity { min, max, desired }
}

async fn asg_in(moto: &Moto, account: &str, region: &str) -> Asg {
    let sdk = moto.sdk_in(account, region).await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let exists = ec2
        .describe_launch_templates()
        .launch_template_names("offhours-test")
        .send()
        .await
        .is_ok();
    if !exists {
        ec2.create_launch_template()
            .launch_template_name("offhours-test")
            .launch_template_data(
                aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                    .image_id("ami-12c6146b")
                    .instance_type("t3.micro".into())
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    Asg::new(&sdk)
}

async fn create_group(asg: &Asg, name: &str, c: Capacity, tags: &[(&str, &str)], region: &str) {
    let tags: Vec<Tag> = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).propagate_at_launch(false).build())
        .collect();
    asg.create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_name("offhours-test")
                .build(),
        )
        .min_size(c.min)
        .max_size(c.max)
        .desired_capacity(c.desired)
        .availability_zones(format!("{region}a"))
        .set_tags(Some(tags))
        .send()
        .await
        .unwrap();
}

async fn set_tag(asg: &Asg, group: &str, k: &str, v: &str) {
    let t = Tag::builder()
        .resource_id(group)
        .resource_type("auto-scaling-group")
        .key(k)
        .value(v)
        .propagate_at_launch(false)
        .build();
    asg.create_or_update_tags().tags(t).send().await.unwrap();
}

async fn remove_tag(asg: &Asg, group: &str, k: &str) {
    let t = Tag::builder()
        .resource_id(group)
        .resource_type("auto-scaling-group")
        .key(k)
        .build();
    asg.delete_tags().tags(t).send().await.unwrap();
}

/// A group's size and tags.
async fn group(asg: &Asg, name: &str) -> (Capacity, BTreeMap<String, String>) {
    let out = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .unwrap();
    let g = &out.auto_scaling_groups()[0];
    let tags = g
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap_or_default().to_string()))
        .collect();
    (
        size(
            g.min_size().unwrap(),
            g.max_size().unwrap(),
            g.desired_capacity().unwrap(),
        ),
        tags,
    )
}

/// A group's scheduled actions as registered in moto.
async fn actions(asg: &Asg, name: &str) -> Vec<ScheduledAction> {
    let out = asg
        .describe_scheduled_actions()
        .auto_scaling_group_name(name)
        .send()
        .await
        .unwrap();
    let time = |t: Option<&aws_smithy_types::DateTime>| t.map(|t| DateTime::from_timestamp(t.secs(), 0).unwrap());
    out.scheduled_update_group_actions()
        .iter()
        .map(|a| {
            let capacity = size(
                a.min_size().unwrap_or(-1),
                a.max_size().unwrap_or(-1),
                a.desired_capacity().unwrap_or(-1),
            );
            ScheduledAction {
                name: a.scheduled_action_name().unwrap().to_string(),
                action: if capacity.is_zero() {
                    Action::Stop
                } else {
                    Action::Start
                },
                recurrence: a.recurrence().map(String::from),
                time_zone: a.time_zone().map(String::from),
                start_time: time(a.start_time()),
                end_time: time(a.end_time()),
                capacity,
            }
        })
        .collect()
}

fn changes_for<'a>(report: &'a serde_json::Value, group: &str) -> Vec<&'a str> {
    report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["resource_id"] == group)
        .map(|c| c["change"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn single_account_tag_add_steady_state_change_and_foreign_actions() {
    let moto = Moto::start();
    let asg = asg_in(&moto, MANAGEMENT, "us-east-1").await;
    create_group(&asg, "web", size(1, 4, 2), &[("Schedule", "office-hours")], "us-east-1").await;
    create_group(&asg, "api", size(1, 3, 1), &[("Schedule", "weekend-off")], "us-east-1").await;
    create_group(&asg, "plain", size(1, 1, 1), &[("Team", "payments")], "us-east-1").await;
    asg.put_scheduled_update_group_action()
        .auto_scaling_group_name("api")
        .scheduled_action_name("team-morning-boost")
        .recurrence("0 9 * * 1")
        .desired_capacity(3)
        .send()
        .await
        .unwrap();
    let (_dir, cfg) = config(CONFIG);

    // plan writes nothing.
    let plan = moto.pass(&cfg, "plan", DAY);
    assert_eq!(
        changes_for(&plan, "web"),
        vec!["save-capacity", "put-scheduled-actions", "set-tags"]
    );
    assert!(mutating_calls(&plan).is_empty(), "{:?}", plan["api_calls"]);
    assert!(actions(&asg, "web").await.is_empty());

    let r = moto.pass(&cfg, "reconcile", DAY);
    assert_eq!(r["summary"]["failed"], 0);
    let (cap, tags) = group(&asg, "web").await;
    assert_eq!(cap, size(1, 4, 2), "left running in the day");
    assert_eq!(
        support::moto::sealed_size(tags.get("offhours:saved-capacity")),
        Some("min=1 max=4 desired=2")
    );
    let web = actions(&asg, "web").await;
    assert!(web.iter().all(|a| is_owned(&a.name)));
    assert!(web.iter().any(|a| a.recurrence.as_deref() == Some("0 8 * * 1-5")
        && a.time_zone.as_deref() == Some("Asia/Seoul")
        && a.capacity == size(1, 4, 2)));
    assert!(
        web.iter()
            .any(|a| a.recurrence.as_deref() == Some("0 20 * * 1-5") && a.capacity.is_zero())
    );
    // The foreign action is kept beside offhours' own.
    let api = actions(&asg, "api").await;
    assert!(api.iter().any(|a| a.name == "team-morning-boost"));
    assert!(api.iter().any(|a| a.recurrence.as_deref() == Some("0 20 * * 5")));
    // The untagged group is untouched.
    assert!(actions(&asg, "plain").await.is_empty());
    assert!(group(&asg, "plain").await.1.keys().all(|k| !k.starts_with("offhours:")));

    // Steady state: no mutating call at all.
    let again = moto.pass(&cfg, "reconcile", DAY);
    assert_eq!(again["summary"]["changes"], 0, "{again:#}");
    assert!(mutating_calls(&again).is_empty(), "{:?}", again["api_calls"]);
    assert!(
        again["api_calls"]
            .as_object()
            .unwrap()
            .contains_key("autoscaling.DescribeScheduledActions")
    );

    // Tag changed: the new actions replace the old in one pass.
    set_tag(&asg, "web", "Schedule", "weekend-off").await;
    let r = moto.pass(&cfg, "reconcile", DAY);
    assert_eq!(
        changes_for(&r, "web"),
        vec!["put-scheduled-actions", "delete-scheduled-actions", "set-tags"]
    );
    let web = actions(&asg, "web").await;
    assert!(web.iter().any(|a| a.recurrence.as_deref() == Some("0 20 * * 5")));
    assert!(web.iter().all(|a| a.recurrence.as_deref() != Some("0 8 * * 1-5")));
    assert!(mutating_calls(&moto.pass(&cfg, "reconcile", DAY)).is_empty());

    // Tag removed from a group with foreign actions: only offhours' go.
    remove_tag(&asg, "api", "Schedule").await;
    moto.pass(&cfg, "reconcile", DAY);
    let api = actions(&asg, "api").await;
    assert_eq!(
        api.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        vec!["team-morning-boost"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tag_removed_while_scaled_down_restores_the_saved_size() {
    let moto = Moto::start();
    let asg = asg_in(&moto, MANAGEMENT, "us-east-1").await;
    create_group(
        &asg,
        "night",
        size(2, 5, 3),
        &[("Schedule", "office-hours")],
        "us-east-1",
    )
    .await;
    let (_dir, cfg) = config(CONFIG);

    let r = moto.pass(&cfg, "reconcile", NIGHT);
    assert_eq!(
        changes_for(&r, "night"),
        vec!["save-capacity", "put-scheduled-actions", "set-capacity", "set-tags"]
    );
    assert_eq!(
        group(&asg, "night").await.0,
        Capacity::ZERO,
        "tagged at night: scaled down"
    );
    assert_eq!(
        support::moto::sealed_size(group(&asg, "night").await.1.get("offhours:saved-capacity"))
            .map(String::from)
            .unwrap_or_default(),
        "min=2 max=5 desired=3"
    );
    assert!(mutating_calls(&moto.pass(&cfg, "reconcile", NIGHT)).is_empty());

    remove_tag(&asg, "night", "Schedule").await;
    let r = moto.pass(&cfg, "reconcile", NIGHT);
    assert_eq!(
        changes_for(&r, "night"),
        vec!["delete-scheduled-actions", "set-capacity", "remove-tags"]
    );
    let (cap, tags) = group(&asg, "night").await;
    assert_eq!(cap, size(2, 5, 3));
    assert!(tags.keys().all(|k| !k.starts_with("offhours:")), "{tags:?}");
    assert!(actions(&asg, "night").await.is_empty());
    assert!(mutating_calls(&moto.pass(&cfg, "reconcile", NIGHT)).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_tags_and_empty_groups_are_reported_and_left_alone() {
    let moto = Moto::start();
    let asg = asg_in(&moto, MANAGEMENT, "us-east-1").await;
    create_group(&asg, "typo", size(1, 2, 1), &[("Schedule", "office-hour")], "us-east-1").await;
    create_group(
        &asg,
        "inline",
        size(1, 2, 1),
        &[("Schedule", "Mon-Fri 09:00-18:00")],
        "us-east-1",
    )
    .await;
    create_group(
        &asg,
        "empty",
        Capacity::ZERO,
        &[("Schedule", "office-hours")],
        "us-east-1",
    )
    .await;
    let (_dir, cfg) = config(CONFIG);

    let r = moto.pass(&cfg, "reconcile", NIGHT);
    let errors: BTreeMap<String, String> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["resource_id"].as_str().unwrap().to_string(),
                e["error"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(errors["typo"].contains("unknown schedule `office-hour`"), "{errors:?}");
    assert!(
        errors["inline"].contains("inline expressions are not allowed"),
        "{errors:?}"
    );
    for g in ["typo", "inline"] {
        let (cap, tags) = group(&asg, g).await;
        assert_eq!(cap, size(1, 2, 1), "{g} untouched");
        assert!(tags["offhours:error"].contains("unknown schedule"), "{tags:?}");
        assert!(!tags.contains_key("offhours:saved-capacity"));
        assert!(actions(&asg, g).await.is_empty());
    }
    assert_eq!(r["notes"][0]["resource_id"], "empty");
    assert!(actions(&asg, "empty").await.is_empty());
    assert_eq!(
        group(&asg, "empty").await.1.len(),
        1,
        "no tag written on the empty group"
    );
    // Reported again, but nothing rewritten.
    let again = moto.pass(&cfg, "reconcile", NIGHT);
    assert_eq!(again["errors"].as_array().unwrap().len(), 2);
    assert!(mutating_calls(&again).is_empty());

    // Fixed: the error tag goes, the schedule applies.
    set_tag(&asg, "typo", "Schedule", "office-hours").await;
    moto.pass(&cfg, "reconcile", NIGHT);
    let (cap, tags) = group(&asg, "typo").await;
    assert!(!tags.contains_key("offhours:error"));
    assert_eq!(cap, Capacity::ZERO);
    // The empty group gets a real size from its team; from then on it is scheduled.
    asg.update_auto_scaling_group()
        .auto_scaling_group_name("empty")
        .min_size(1)
        .max_size(2)
        .desired_capacity(1)
        .send()
        .await
        .unwrap();
    moto.pass(&cfg, "reconcile", NIGHT);
    assert_eq!(
        support::moto::sealed_size(group(&asg, "empty").await.1.get("offhours:saved-capacity"))
            .map(String::from)
            .unwrap_or_default(),
        "min=1 max=2 desired=1"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn organization_mode_with_three_accounts_and_two_regions() {
    let moto = Moto::start();
    let org = aws_sdk_organizations::Client::new(&moto.sdk("us-east-1").await);
    org.create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    for name in ["dev-a", "dev-b"] {
        org.create_account()
            .account_name(name)
            .email(format!("{name}@example.com"))
            .send()
            .await
            .unwrap();
    }
    let accounts: Vec<String> = org
        .list_accounts()
        .send()
        .await
        .unwrap()
        .accounts()
        .iter()
        .map(|a| a.id().unwrap().to_string())
        .collect();
    assert_eq!(accounts.len(), 3);
    let regions = ["us-east-1", "ap-northeast-2"];
    for a in &accounts {
        for r in regions {
            let asg = asg_in(&moto, a, r).await;
            create_group(
                &asg,
                &format!("dev-{r}"),
                size(1, 2, 1),
                &[("Schedule", "office-hours")],
                r,
            )
            .await;
        }
    }
    let text = CONFIG.replace(
        "regions: [us-east-1]",
        "regions: [us-east-1, ap-northeast-2]\naccounts:\n  mode: organization",
    );
    let (_dir, cfg) = config(&text);

    let r = moto.pass(&cfg, "reconcile", NIGHT);
    assert_eq!(r["summary"]["scopes"], 6, "{:#}", r["scopes"]);
    assert_eq!(r["summary"]["scopes_failed"], 0);
    // Six groups and the six instances they launched (left to their groups).
    assert_eq!(r["summary"]["resources"], 12);
    assert!(r["violations"].as_array().unwrap().is_empty(), "{:#}", r["violations"]);
    for a in &accounts {
        for reg in regions {
            let asg = asg_in(&moto, a, reg).await;
            let name = format!("dev-{reg}");
            assert_eq!(group(&asg, &name).await.0, Capacity::ZERO, "{a}/{reg}");
            assert_eq!(actions(&asg, &name).await.len(), 2, "{a}/{reg}");
        }
    }
    let again = moto.pass(&cfg, "reconcile", NIGHT);
    assert!(mutating_calls(&again).is_empty(), "{:?}", again["api_calls"]);

    // Excluding an account leaves its scopes out.
    let other = accounts.iter().find(|a| *a != MANAGEMENT).unwrap();
    let (_dir2, cfg2) = config(&format!("{text}\n  exclude: ['{other}']\n"));
    let plan = moto.pass(&cfg2, "plan", NIGHT);
    assert_eq!(plan["summary"]["scopes"], 4);
    assert!(
        plan["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["account"] != other.as_str())
    );
}

/// moto never fires scheduled actions, so fire them here: each day the daemon's pass
/// runs (with --now), the registered actions are read back from moto and evaluated
/// minute by minute until the next pass, and the group's size is set to what they
/// produce, as AWS would. Two weeks across Christmas and New Year's Day.
#[tokio::test(flavor = "multi_thread")]
async fn registered_actions_produce_the_schedule_minute_by_minute_across_holidays() {
    let moto = Moto::start();
    let asg = asg_in(&moto, MANAGEMENT, "us-east-1").await;
    let running = size(1, 3, 2);
    create_group(&asg, "dev", running, &[("Schedule", "office-hours")], "us-east-1").await;
    let (_dir, cfg) = config(CONFIG);
    let schedule = Config::load(&cfg).unwrap().schedule("office-hours").unwrap().clone();

    let start: DateTime<Utc> = "2026-12-20T03:17:00Z".parse().unwrap();
    let end = start + Duration::days(14);
    let mut matcher = Matcher::new(start - Duration::days(1), end + Duration::days(1));
    let mut capacity: Option<Capacity> = None;
    let mut day = start;
    let mut changes = 0;
    while day < end {
        moto.pass(&cfg, "reconcile", &day.to_rfc3339());
        let registered = actions(&asg, "dev").await;
        let mut c = capacity.unwrap_or(group(&asg, "dev").await.0);
        let mut t = day + Duration::minutes(1);
        while t <= day + Duration::days(1) {
            let local = |zone: &str| t.with_timezone(&zone.parse::<chrono_tz::Tz>().unwrap()).naive_local();
            let fired: Vec<_> = registered.iter().filter(|a| fires(a, t, local, &mut matcher)).collect();
            if let Some(first) = fired.first() {
                assert!(
                    fired.iter().all(|a| a.capacity == first.capacity),
                    "conflicting actions at {t}"
                );
                changes += usize::from(c != first.capacity);
                c = first.capacity;
            }
            let want = if schedule.state_at(t) == State::Running {
                running
            } else {
                Capacity::ZERO
            };
            assert_eq!(c, want, "at {t} ({})", t.with_timezone(&schedule.tz));
            t += Duration::minutes(1);
        }
        // AWS would have left the group at this size.
        asg.update_auto_scaling_group()
            .auto_scaling_group_name("dev")
            .min_size(c.min)
            .max_size(c.max)
            .desired_capacity(c.desired)
            .send()
            .await
            .unwrap();
        capacity = Some(c);
        day += Duration::days(1);
    }
    // 10 working days in the fortnight, minus Christmas and New Year's Day: 8 starts, 8 stops.
    assert_eq!(changes, 16);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_override_holds_its_size_past_the_stop_then_the_schedule_resumes() {
    let moto = Moto::start();
    let asg = asg_in(&moto, MANAGEMENT, "us-east-1").await;
    create_group(
        &asg,
        "late",
        size(1, 3, 2),
        &[("Schedule", "office-hours")],
        "us-east-1",
    )
    .await;
    let (_dir, cfg) = config(CONFIG);
    moto.pass(&cfg, "reconcile", DAY);
    set_tag(
        &asg,
        "late",
        "offhours:override",
        "running until 2026-11-25T23:00+09:00",
    )
    .await;
    moto.pass(&cfg, "reconcile", DAY);
    let tonight: DateTime<Utc> = "2026-11-25T14:00:00Z".parse().unwrap();
    let registered = actions(&asg, "late").await;
    assert!(
        registered
            .iter()
            .any(|a| a.recurrence.is_none() && a.capacity.is_zero() && a.start_time == Some(tonight)),
        "{registered:#?}"
    );
    assert!(
        registered
            .iter()
            .filter(|a| a.capacity.is_zero() && a.recurrence.is_some())
            .all(|a| a.start_time.is_some_and(|t| t > tonight))
    );
    // moto never fires: play the 23:00 one-time stop by hand, as AWS would.
    asg.update_auto_scaling_group()
        .auto_scaling_group_name("late")
        .min_size(0)
        .max_size(0)
        .desired_capacity(0)
        .send()
        .await
        .unwrap();
    let r = moto.pass(&cfg, "reconcile", "2026-11-25T23:00:30+09:00");
    assert!(changes_for(&r, "late").contains(&"remove-tags"), "{r:#}");
    let (cap, tags) = group(&asg, "late").await;
    assert_eq!(cap, Capacity::ZERO);
    assert!(!tags.contains_key("offhours:override"));
    assert_eq!(
        support::moto::sealed_size(tags.get("offhours:saved-capacity")),
        Some("min=1 max=3 desired=2"),
        "the size is never forgotten"
    );
    assert!(mutating_calls(&moto.pass(&cfg, "reconcile", "2026-11-25T23:05:00+09:00")).is_empty());
}

/// A schedule with `stopped_size`: the registered actions, read back from moto and fired
/// minute by minute as AWS would for a week (a weekend and a holiday in it), hold the group
/// at that size whenever the oracle (tests/support/oracle.rs, which reads the config text
/// itself) says stopped, and at its saved size whenever it says running; the saved size is
/// never replaced by the stopped one.
#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_size_holds_the_group_there_at_night_and_at_its_saved_size_by_day() {
    const SMALL: &str = "\
timezone: Asia/Seoul
holidays:
  kr:
    dates: [2026-12-25]
schedules:
  small-nights:
    running: [\"Mon-Fri 08:00-20:00\"]
    holidays: kr
    stopped_size: \"min=1 max=1 desired=1\"
regions: [us-east-1]
";
    let moto = Moto::start();
    let asg = asg_in(&moto, MANAGEMENT, "us-east-1").await;
    let running = size(2, 6, 4);
    let stopped = size(1, 1, 1);
    create_group(&asg, "dev", running, &[("Schedule", "small-nights")], "us-east-1").await;
    let (dir, cfg) = config(SMALL);
    let start: DateTime<Utc> = "2026-12-21T03:17:00Z".parse().unwrap();
    let end = start + Duration::days(7);
    let book = support::oracle::Book::from_yaml(
        SMALL,
        dir.path(),
        start.date_naive() - chrono::Days::new(2),
        end.date_naive() + chrono::Days::new(2),
    );
    let oracle = &book.schedules["small-nights"];
    let mut matcher = Matcher::new(start - Duration::days(1), end + Duration::days(1));
    let mut c = running;
    let (mut nights, mut days) = (0, 0);
    let mut day = start;
    while day < end {
        moto.pass(&cfg, "reconcile", &day.to_rfc3339());
        let registered = actions(&asg, "dev").await;
        let stops: Vec<&ScheduledAction> = registered.iter().filter(|a| a.name.contains("-stop-")).collect();
        assert!(
            !stops.is_empty() && stops.iter().all(|a| a.capacity == stopped),
            "{registered:#?}"
        );
        let mut t = day + Duration::minutes(1);
        while t <= day + Duration::days(1) {
            let local = |zone: &str| t.with_timezone(&zone.parse::<chrono_tz::Tz>().unwrap()).naive_local();
            let fired: Vec<_> = registered.iter().filter(|a| fires(a, t, local, &mut matcher)).collect();
            if let Some(first) = fired.first() {
                assert!(
                    fired.iter().all(|a| a.capacity == first.capacity),
                    "conflicting actions at {t}"
                );
                c = first.capacity;
            }
            let want = if oracle.state(t) == State::Running {
                days += 1;
                running
            } else {
                nights += 1;
                stopped
            };
            assert_eq!(c, want, "at {t} ({})", t.with_timezone(&chrono_tz::Asia::Seoul));
            t += Duration::minutes(1);
        }
        asg.update_auto_scaling_group()
            .auto_scaling_group_name("dev")
            .min_size(c.min)
            .max_size(c.max)
            .desired_capacity(c.desired)
            .send()
            .await
            .unwrap();
        let tags = group(&asg, "dev").await.1;
        assert_eq!(
            support::moto::sealed_size(tags.get("offhours:saved-capacity")),
            Some(running.to_string().as_str()),
            "the saved size stays the running one: {tags:?}"
        );
        day += Duration::days(1);
    }
    assert!(nights > 0 && days > 0);
}

/// The uptime events' contract for groups: a Saturday event from 10:00 to 14:00 with
/// `lead_minutes: 30`. The actions registered on Friday night, read back from moto and fired
/// minute by minute over the Saturday as AWS would, bring the group to its running size at
/// 09:30 and back to zero at 14:00, and never set two sizes in one minute.
#[tokio::test(flavor = "multi_thread")]
async fn a_saturday_event_scales_a_group_up_30_minutes_ahead_and_down_at_its_end() {
    const UPTIME: &str = "\
timezone: Asia/Seoul
uptime:
  release-nights:
    ics: events.ics
    lead_minutes: 30
schedules:
  office-hours:
    running: [\"Mon-Fri 08:00-20:00\"]
    uptime: [release-nights]
regions: [us-east-1]
";
    let moto = Moto::start();
    let asg = asg_in(&moto, MANAGEMENT, "us-east-1").await;
    let running = size(1, 3, 2);
    create_group(&asg, "dev", running, &[("Schedule", "office-hours")], "us-east-1").await;
    let (dir, cfg) = config(UPTIME);
    std::fs::write(
        dir.path().join("events.ics"),
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\nBEGIN:VEVENT\r\nUID:load@test\r\nSUMMARY:Load test\r\n\
         DTSTART;TZID=Asia/Seoul:20261128T100000\r\nDTEND;TZID=Asia/Seoul:20261128T140000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    )
    .unwrap();
    moto.pass(&cfg, "reconcile", "2026-11-27T22:00:00+09:00");
    assert_eq!(group(&asg, "dev").await.0, Capacity::ZERO, "down on Friday night");
    let registered = actions(&asg, "dev").await;
    let from: DateTime<Utc> = "2026-11-27T22:00:00+09:00".parse().unwrap();
    let to: DateTime<Utc> = "2026-11-29T00:00:00+09:00".parse().unwrap();
    let mut matcher = Matcher::new(from - Duration::days(1), to + Duration::days(1));
    let mut c = Capacity::ZERO;
    let mut changes = Vec::new();
    let mut t = from + Duration::minutes(1);
    while t < to {
        let local = |zone: &str| t.with_timezone(&zone.parse::<chrono_tz::Tz>().unwrap()).naive_local();
        let fired: Vec<_> = registered.iter().filter(|a| fires(a, t, local, &mut matcher)).collect();
        if let Some(first) = fired.first() {
            assert!(
                fired.iter().all(|a| a.capacity == first.capacity),
                "two sizes at {t}: {fired:#?}"
            );
            if first.capacity != c {
                changes.push((
                    t.with_timezone(&chrono_tz::Asia::Seoul).format("%a %H:%M").to_string(),
                    first.capacity,
                ));
            }
            c = first.capacity;
        }
        t += Duration::minutes(1);
    }
    assert_eq!(
        changes,
        vec![
            ("Sat 09:30".to_string(), running),
            ("Sat 14:00".to_string(), Capacity::ZERO)
        ],
        "{registered:#?}"
    );
}
