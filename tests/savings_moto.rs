//! `offhours report savings` against a small organization on moto, its figures recomputed
//! independently: hours off from the brute-force oracle (minute by minute), prices from the
//! config and the bundled table read here on their own.

mod support;

use std::collections::BTreeMap;

use aws_sdk_ec2::Client as Ec2;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use offhours::schedule::State;
use support::moto::{MANAGEMENT, Moto, config};
use support::oracle::Oracle;

const CONFIG: &str = "\
timezone: Asia/Seoul
team_tag: Team
holidays:
  kr:
    dates: [2026-12-25]
schedules:
  office-hours:
    running: [\"Mon-Fri 08:00-20:00\"]
    holidays: kr
  late:
    running: [\"Mon-Sat 10:00-23:00\"]
regions: [us-east-1]
accounts:
  mode: organization
instance_hour_prices:
  m5.large: 0.5
  \"*\": 0.03
";

/// Monday 2026-11-30 09:00 in Seoul.
const NOW: &str = "2026-11-30T00:00:00Z";

fn bundled() -> BTreeMap<(String, String), f64> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/savings/prices.csv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            ((f[0].to_string(), f[1].to_string()), f[2].parse().unwrap())
        })
        .collect()
}

/// The price of `ty` as README says it is looked up.
fn price(ty: &str) -> f64 {
    match ty {
        "m5.large" => 0.5,
        _ => bundled()
            .get(&("us-east-1".to_string(), ty.to_string()))
            .copied()
            .unwrap_or(0.03),
    }
}

/// Hours off in the next 30 days, counted minute by minute by the oracle.
fn hours_off(windows: &[&str], holidays: &[NaiveDate], now: DateTime<Utc>) -> f64 {
    let o = Oracle::new(
        windows,
        false,
        chrono_tz::Asia::Seoul,
        holidays,
        NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
        NaiveDate::from_ymd_opt(2027, 1, 10).unwrap(),
    );
    let off = (0..30 * 24 * 60)
        .filter(|m| o.state(now + Duration::minutes(*m)) == State::Stopped)
        .count();
    off as f64 / 60.0
}

async fn run(ec2: &Ec2, ty: &str, tags: &[(&str, &str)]) -> String {
    let tags: Vec<aws_sdk_ec2::types::Tag> = tags
        .iter()
        .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(*k).value(*v).build())
        .collect();
    ec2.run_instances()
        .image_id("ami-12c6146b")
        .instance_type(ty.into())
        .min_count(1)
        .max_count(1)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                .set_tags(Some(tags))
                .build(),
        )
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn report_savings_gives_per_schedule_and_per_account_figures_an_oracle_recomputes() {
    let moto = Moto::start();
    let member = support::moto::organization_with_member(&moto.sdk("us-east-1").await).await;
    let mgmt_sdk = moto.sdk_in(MANAGEMENT, "us-east-1").await;
    let member_sdk = moto.sdk_in(&member, "us-east-1").await;
    let (mgmt, dev) = (Ec2::new(&mgmt_sdk), Ec2::new(&member_sdk));
    run(&mgmt, "t3.micro", &[("Schedule", "office-hours"), ("Team", "search")]).await;
    run(&mgmt, "t3.large", &[("Schedule", "late"), ("Team", "search")]).await;
    run(&mgmt, "t3.micro", &[("Team", "ads")]).await;
    run(&dev, "m5.large", &[("Schedule", "office-hours"), ("Team", "ads")]).await;
    run(&dev, "t3.micro", &[("Schedule", "always-on")]).await;
    support::moto::group(&member_sdk, "web", (1, 3, 2), &[("Schedule", "late"), ("Team", "ads")]).await;
    // The group's members' type, as EC2 reports it.
    let members = dev
        .describe_instances()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:aws:autoscaling:groupName")
                .values("web")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let group_type = members.reservations()[0].instances()[0]
        .instance_type()
        .unwrap()
        .as_str()
        .to_string();
    let (_d, cfg) = config(CONFIG);
    let now: DateTime<Utc> = NOW.parse().unwrap();
    let xmas = [NaiveDate::from_ymd_opt(2026, 12, 25).unwrap()];
    let office = hours_off(&["Mon-Fri 08:00-20:00"], &xmas, now);
    let late = hours_off(&["Mon-Sat 10:00-23:00"], &[], now);

    // The expected lines: (account, schedule, monthly figure).
    let expected = [
        (MANAGEMENT, "office-hours", office * price("t3.micro")),
        (MANAGEMENT, "late", late * price("t3.large")),
        (member.as_str(), "office-hours", office * price("m5.large")),
        (member.as_str(), "late", late * 2.0 * price(&group_type)),
    ];
    let sum = |f: &dyn Fn(&(&str, &str, f64)) -> bool| expected.iter().filter(|e| f(e)).map(|e| e.2).sum::<f64>();
    let close = |a: &serde_json::Value, b: f64| (a.as_f64().unwrap() - b).abs() < 1e-6;

    let report = |by: &str| -> serde_json::Value {
        let o = moto.offhours(
            &cfg,
            &[
                "report",
                "savings",
                "--by",
                by,
                "--output",
                "json",
                "--if-schedule",
                "office-hours",
                "--now",
                NOW,
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let by_schedule = report("schedule");
    for s in ["office-hours", "late"] {
        let g = &by_schedule["groups"][s];
        let month = sum(&|e| e.1 == s);
        assert!(close(&g["per_month"], month), "{s}: {g} vs {month}");
        assert!(close(&g["per_week"], month * 7.0 / 30.0), "{s}: {g}");
    }
    assert_eq!(by_schedule["total"]["resources"], 4, "{by_schedule:#}");
    // The group is priced by its members' type, two of them.
    let web = by_schedule["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["resource_id"] == "web")
        .unwrap();
    assert_eq!(
        (web["priced_type"].as_str(), web["units"].as_u64()),
        (Some(group_type.as_str()), Some(2)),
        "{web}"
    );
    let by_account = report("account");
    for a in [MANAGEMENT, member.as_str()] {
        let g = &by_account["groups"][a];
        let month = sum(&|e| e.0 == a);
        assert!(close(&g["per_month"], month), "{a}: {g} vs {month}");
    }
    assert!(close(&by_account["total"]["per_month"], sum(&|_| true)));
    // The potential: the untagged and the always-on instance, both t3.micro, on office-hours.
    let pot = &by_account["potential"];
    assert_eq!(pot["total"]["resources"], 2, "{pot:#}");
    assert!(close(&pot["total"]["per_month"], 2.0 * office * price("t3.micro")));

    // Text and CSV say the same totals.
    let o = moto.offhours(&cfg, &["report", "savings", "--output", "csv", "--now", NOW]);
    let csv = String::from_utf8(o.stdout).unwrap();
    assert_eq!(csv.lines().count(), 1 + 4, "{csv}");
    let month: f64 = csv
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!((month - sum(&|_| true)).abs() < 0.05, "{csv}");
    let o = moto.offhours(&cfg, &["report", "savings", "--by", "team", "--now", NOW]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("search") && text.contains("ads") && text.contains("dated"),
        "{text}"
    );
}
