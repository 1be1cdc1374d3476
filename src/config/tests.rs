use super::*;
use crate::schedule::{Mode, State};

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, Path::new("test.yaml"))
}

fn errors(text: &str) -> Vec<String> {
    parse(text).unwrap_err().0.iter().map(ToString::to_string).collect()
}

const GOOD: &str = "\
tag_key: Schedule
timezone: Asia/Seoul
allow_inline: false
holidays:
  kr:
    dates: [2026-12-25, 2027-01-01]
schedules:
  office-hours:
    running: [\"Mon-Fri 08:00-20:00\"]
    holidays: kr
  weekend-off:
    stopped: [\"Fri 20:00-Mon 08:00\"]
  nightly-stop:
    running: [\"Mon-Fri 08:00-20:00\"]
    mode: stop-only
";

#[test]
fn the_issue_example_loads() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.tag_key, "Schedule");
    assert_eq!(c.timezone, chrono_tz::Asia::Seoul);
    assert_eq!(c.holiday_horizon_days, 21);
    let oh = c.schedule("office-hours").unwrap();
    assert_eq!(oh.holidays.len(), 2);
    assert_eq!(oh.tz, chrono_tz::Asia::Seoul);
    assert_eq!(c.schedule("nightly-stop").unwrap().mode, Mode::StopOnly);
    let wo = c.schedule("weekend-off").unwrap();
    // Saturday noon KST is stopped, Wednesday noon running.
    let sat = chrono::DateTime::parse_from_rfc3339("2026-11-28T12:00:00+09:00")
        .unwrap()
        .to_utc();
    let wed = chrono::DateTime::parse_from_rfc3339("2026-11-25T12:00:00+09:00")
        .unwrap()
        .to_utc();
    assert_eq!(wo.state_at(sat), State::Stopped);
    assert_eq!(wo.state_at(wed), State::Running);
    assert_eq!(
        c.allowed_values(),
        vec!["always-on", "nightly-stop", "office-hours", "weekend-off"]
    );
}

#[test]
fn an_empty_file_is_all_defaults() {
    let c = parse("").unwrap();
    assert_eq!(
        (c.tag_key.as_str(), c.timezone, c.allow_inline),
        ("Schedule", chrono_tz::UTC, false)
    );
}

#[test]
fn unknown_key_on_line_7_is_reported_on_line_7_with_the_expected_fields() {
    let text = GOOD.replace(
        "    dates: [2026-12-25, 2027-01-01]\n",
        "    dates: [2026-12-25, 2027-01-01]\n    datse: []\n",
    );
    // The new key is line 7.
    assert_eq!(text.lines().nth(6), Some("    datse: []"));
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with(
            "test.yaml:7:5: holidays.kr.datse: unknown field `datse`; expected one of: country, dates, description, except_dates, extra_dates, ics"
        ),
        "{}",
        e[0]
    );
}

#[test]
fn every_error_is_reported_at_once() {
    let text = "\
tag_key: Schedule
timezon: Asia/Seoul
holiday_horizon_days: lots
schedules:
  a:
    running: [\"Mon-Fri 08:00-20:00\"]
    mode: sometimes
  b:
    runing: []
  c:
    running: [\"Mon 9-10\"]
";
    let e = errors(text);
    assert_eq!(e.len(), 5, "{e:#?}");
    assert!(
        e[0].starts_with("test.yaml:2:1: timezon: unknown field `timezon`"),
        "{}",
        e[0]
    );
    assert!(
        e[1].starts_with("test.yaml:3:23: holiday_horizon_days: expected an integer, found `lots`"),
        "{}",
        e[1]
    );
    assert!(e[2].starts_with("test.yaml:7:11: schedules.a.mode: expected one of \"full\", \"stop-only\", \"start-only\", found `sometimes`"), "{}", e[2]);
    assert!(
        e[3].starts_with("test.yaml:9:5: schedules.b.runing: unknown field `runing`"),
        "{}",
        e[3]
    );
    // Structural errors do not hide the semantic ones elsewhere.
    assert!(
        e[4].starts_with("test.yaml:11:20: schedules.c.running[0]: invalid window"),
        "{}",
        e[4]
    );
}

#[test]
fn semantic_errors_are_all_reported_with_positions() {
    let text = "\
timezone: Mars/Olympus
holidays:
  kr:
    dates: [2026-13-01]
    ics: missing.ics
schedules:
  always-on:
    running: [\"Mon 08:00-09:00\"]
  a:
    running: [\"Mon-Fri 08:00-25:00\"]
    holidays: [kr, us]
  b:
    running: [\"Mon 08:00-09:00\"]
    stopped: [\"Tue 08:00-09:00\"]
  c:
    timezone: Asia/Seoul
  d:
    running: [\"Mon 08:00-09:00 Europe/Paris\"]
    timezone: Asia/Seoul
";
    let e = errors(text);
    let want = [
        "test.yaml:1:11: timezone: unknown time zone `Mars/Olympus`",
        "test.yaml:4:13: holidays.kr.dates[0]: `2026-13-01` is not a date",
        "test.yaml:5:10: holidays.kr.ics: cannot read holiday file missing.ics",
        "test.yaml:7:3: schedules.always-on: `always-on` is built in",
        "test.yaml:10:24: schedules.a.running[0]: invalid window `Mon-Fri 08:00-25:00`: at column 9, `08:00-25:00`: hour 25",
        "test.yaml:11:20: schedules.a.holidays[1]: unknown holiday calendar `us`; defined: kr",
        "test.yaml:14:5: schedules.b.stopped: give either `running` or `stopped`",
        "test.yaml:15:3: schedules.c: a schedule needs `running` or `stopped` windows",
        "test.yaml:18:15: schedules.d.running[0]: window names zone Europe/Paris",
    ];
    assert_eq!(e.len(), want.len(), "{e:#?}");
    for (got, want) in e.iter().zip(want) {
        assert!(got.starts_with(want), "got  {got}\nwant {want}");
    }
}

#[test]
fn yaml_syntax_errors_carry_their_position() {
    let e = errors("schedules:\n  a:\n    running: [\"Mon 08:00-09:00\"\n  b: {}\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("test.yaml:"), "{}", e[0]);
    let e = errors("tag_key: a\ntag_key: b\n");
    assert!(e[0].contains("duplicate"), "{}", e[0]);
}

#[test]
fn holidays_come_from_an_ics_file_relative_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kr.ics"),
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20261225\nEND:VEVENT\nEND:VCALENDAR\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.ics"),
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:2026\nEND:VEVENT\nEND:VCALENDAR\n",
    )
    .unwrap();
    let cfg = dir.path().join("offhours.yaml");
    std::fs::write(&cfg, "holidays:\n  kr:\n    ics: kr.ics\n").unwrap();
    let c = Config::load(&cfg).unwrap();
    assert_eq!(c.calendar("kr").unwrap().len(), 1);
    std::fs::write(&cfg, "holidays:\n  kr:\n    ics: bad.ics\n").unwrap();
    let e = Config::load(&cfg).unwrap_err().to_string();
    assert!(
        e.contains(":3:10: holidays.kr.ics:") && e.contains("bad.ics: event `(no summary)`: no readable DTSTART"),
        "{e}"
    );
    // Timed events and recurrences: the days they touch, in the config's zone.
    std::fs::write(
        dir.path().join("co.ics"),
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:Offsite\nDTSTART:20261204T200000Z\nDTEND:20261205T030000Z\nEND:VEVENT\n\
         BEGIN:VEVENT\nSUMMARY:Founders\nDTSTART;VALUE=DATE:20260405\nRRULE:FREQ=YEARLY;COUNT=2\nEND:VEVENT\nEND:VCALENDAR\n",
    )
    .unwrap();
    std::fs::write(&cfg, "timezone: Asia/Seoul\nholidays:\n  co:\n    ics: co.ics\n").unwrap();
    let c = Config::load(&cfg).unwrap();
    let got: Vec<String> = c.calendar("co").unwrap().iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        ["2026-04-05", "2026-12-05", "2027-04-05"],
        "05:00-12:00 KST on 5 December"
    );
}

#[test]
fn tag_values_resolve_to_names_always_on_or_inline_expressions() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.resolve_tag("always-on"), Ok(Resolved::AlwaysOn));
    assert!(matches!(c.resolve_tag("office-hours"), Ok(Resolved::Named(s)) if s.name == "office-hours"));
    let e = c.resolve_tag("Mon-Fri 09:00-18:00").unwrap_err();
    assert!(e.to_string().contains("inline expressions are not allowed"), "{e}");
    assert!(matches!(c.lookup("Mon-Fri 09:00-18:00"), Ok(Resolved::Inline(s)) if s.tz == chrono_tz::Asia::Seoul));

    let inline = parse(&GOOD.replace("allow_inline: false", "allow_inline: true")).unwrap();
    assert!(matches!(inline.resolve_tag("Mon-Fri 09:00-18:00 UTC"), Ok(Resolved::Inline(s)) if s.tz == chrono_tz::UTC));
    let e = inline.resolve_tag("office-hour").unwrap_err();
    assert!(
        e.to_string()
            .contains("not a configured schedule and not a valid inline expression"),
        "{e}"
    );
}

#[test]
fn the_schema_describes_every_top_level_key() {
    let s = schema();
    let props = s["properties"].as_object().unwrap();
    for k in [
        "tag_key",
        "timezone",
        "allow_inline",
        "holiday_horizon_days",
        "holidays",
        "schedules",
    ] {
        assert!(props.contains_key(k), "{k}");
    }
    assert_eq!(s["additionalProperties"], Value::Bool(false));
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::fuzz_cases(1500)))]
        /// Arbitrary text never panics the loader, and every rejection has a message.
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
            if let Err(e) = parse(&s) {
                prop_assert!(!e.0.is_empty());
                // What is wrong, and where: a line and column, or at least the field.
                prop_assert!(
                    e.0.iter().all(|x| !x.message.is_empty() && (x.pos.is_some() || !x.path.is_empty())),
                    "{e}"
                );
                prop_assert!(e.to_string().starts_with("test.yaml"), "{e}");
            }
        }

        /// Any tag value resolves or is rejected with a message quoting it.
        #[test]
        fn arbitrary_tag_values_never_panic(value in "\\PC{0,80}", inline in any::<bool>()) {
            static CONFIGS: std::sync::OnceLock<[Config; 2]> = std::sync::OnceLock::new();
            let configs = CONFIGS.get_or_init(|| {
                [parse(GOOD).unwrap(), parse(&GOOD.replace("allow_inline: false", "allow_inline: true")).unwrap()]
            });
            if let Err(e) = configs[usize::from(inline)].lookup(&value) {
                let shown = e.to_string();
                prop_assert!(shown.contains(value.trim()), "{shown}");
            }
        }

        /// Mutations of a valid config never panic, and every error has a place.
        #[test]
        fn mutated_configs_never_panic(cut in 0usize..GOOD.len(), len in 0usize..12, insert in "[ -~\n]{0,8}") {
            let mut text = GOOD.to_string();
            let end = (cut + len).min(text.len());
            text.replace_range(cut..end, &insert);
            if let Err(e) = parse(&text) {
                prop_assert!(e.0.iter().all(|x| x.pos.is_some() && !x.message.is_empty()), "{e}");
            }
        }
    }
}

#[test]
fn a_second_document_is_reported_where_it_starts() {
    let e = errors("tag_key: Schedule\n---\ntimezone: UTC\n");
    assert!(e[0].starts_with("test.yaml:2:1: "), "{e:?}");
    assert!(e[0].contains("more than one document"), "{e:?}");
}

#[test]
fn accounts_and_regions_are_validated() {
    let c = parse("accounts:\n  mode: organization\n  include: [ou-ab12-abcdefgh, '111122223333', r-ab12]\nregions: [ap-northeast-2, us-east-1]\n").unwrap();
    assert_eq!(c.accounts.mode, AccountsMode::Organization);
    assert_eq!(c.accounts.role_name, "OrganizationAccountAccessRole");
    assert_eq!(c.accounts.include.len(), 3);
    assert_eq!(c.regions, vec!["ap-northeast-2", "us-east-1"]);
    assert_eq!(c.concurrency, 16);
    let e = errors("accounts:\n  mode: everyone\n");
    assert!(
        e[0].starts_with("test.yaml:2:9: accounts.mode: expected one of \"self\", \"organization\""),
        "{e:?}"
    );
    let e = errors("accounts:\n  exclude: [acme]\nregions: [Seoul, us-east-1, us-east-1]\n");
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(
        e[0].contains("accounts.exclude[0]: `acme` is not an account id"),
        "{e:?}"
    );
    assert!(e[1].contains("regions[0]: `Seoul` is not a region"), "{e:?}");
    assert!(e[2].contains("regions[2]: region `us-east-1` is listed twice"), "{e:?}");
}

#[test]
fn a_bare_role_name_under_an_account_wildcard_is_a_warning_and_a_path_is_not() {
    let cfg = Config::parse(
        "schedules: {}\npolicy:\n  exempt_principals: ['arn:aws:iam::*:role/BreakGlass', 'arn:aws:iam::*:role/platform/BreakGlass', 'arn:aws:iam::111122223333:role/Ops']\n",
        std::path::Path::new("t.yaml"),
    )
    .unwrap();
    assert_eq!(cfg.policy.warnings.len(), 1, "{:?}", cfg.policy.warnings);
    assert!(cfg.policy.warnings[0].contains("exempt_principals[0]"));
    assert!(cfg.policy.warnings[0].contains("role/platform/BreakGlass"));
}

#[test]
fn offhours_principals_default_to_the_member_role_and_partitions_are_checked() {
    let cfg = Config::parse(
        "schedules: {}\naccounts:\n  role_name: offhours/offhours-member\n",
        std::path::Path::new("t.yaml"),
    )
    .unwrap();
    assert_eq!(
        cfg.policy.offhours_principals_in("aws-cn"),
        vec!["arn:aws-cn:iam::*:role/offhours/offhours-member".to_string()]
    );
    assert_eq!(cfg.policy.partition, "aws");
    let err = Config::parse(
        "schedules: {}\npolicy:\n  partition: aws-mars\n",
        std::path::Path::new("t.yaml"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("policy.partition") && err.contains("aws-mars"), "{err}");
    let err = Config::parse(
        "schedules: {}\npolicy:\n  role_arn: offhours\n",
        std::path::Path::new("t.yaml"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("policy.role_arn"), "{err}");
}

#[test]
fn a_country_calendar_takes_the_shipped_data_plus_extra_minus_except() {
    let c = parse(
        "holidays:\n  kr:\n    country: kr\n    extra_dates: [2026-10-02]\n    except_dates: [2026-12-25, 2026-12-24]\n\
         schedules:\n  o:\n    running: [\"Mon-Fri 08:00-20:00\"]\n    holidays: kr\n",
    )
    .unwrap();
    let kr = c.calendar_info("kr").unwrap();
    assert_eq!(kr.country.as_deref(), Some("KR"));
    let d = |s: &str| s.parse::<NaiveDate>().unwrap();
    assert_eq!(kr.named.get(&d("2026-05-01")).map(String::as_str), Some("Labor Day"));
    assert_eq!(kr.named.get(&d("2026-10-02")).map(String::as_str), Some("extra_dates"));
    assert!(!kr.dates.contains(&d("2026-12-25")), "except_dates removes it");
    assert_eq!(kr.unused_excepts, vec![d("2026-12-24")]);
    let o = c.schedule("o").unwrap();
    assert!(o.holidays.contains(&d("2026-07-17")) && !o.holidays.contains(&d("2026-12-25")));
    let w = c.calendar_warnings("2026-12-01T00:00:00Z".parse().unwrap());
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("except_dates: 2026-12-24 is not in the calendar"),
        "{}",
        w[0]
    );
}

#[test]
fn an_unknown_country_or_subdivision_is_an_error_at_its_place() {
    let e = errors("holidays:\n  a:\n    country: XX\n  b:\n    country: US-ZZ\n  c:\n    country: KR-11\n");
    assert_eq!(e.len(), 3, "{e:#?}");
    assert!(
        e[0].starts_with("test.yaml:3:14: holidays.a.country: `XX` is not a country"),
        "{}",
        e[0]
    );
    assert!(
        e[0].contains("countries: AU, CN, DE, FR, GB, IN, JP, KR, SG, US"),
        "{}",
        e[0]
    );
    assert!(e[1].contains("US's subdivisions: US-AK, US-AL"), "{}", e[1]);
    assert!(
        e[2].contains("KR has no subdivisions in the data; use `KR`"),
        "{}",
        e[2]
    );
}

#[test]
fn a_calendar_with_nothing_ahead_where_earlier_years_had_dates_is_reported_stale() {
    // Listed dates for 2024 and 2025 only: by mid-December 2026 Christmas is missing.
    let c = parse("holidays:\n  mine:\n    dates: [2024-12-25, 2025-12-25, 2026-01-01]\n").unwrap();
    let w = c.calendar_warnings("2026-12-10T00:00:00Z".parse().unwrap());
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("holidays.mine: no date from 2026-12-10 to 2027-02-08"),
        "{}",
        w[0]
    );
    assert!(w[0].contains("in 2 of the 2 earlier years it covers"), "{}", w[0]);
    // In a quiet part of the year (nothing in earlier years either) it says nothing.
    assert!(c.calendar_warnings("2026-06-01T00:00:00Z".parse().unwrap()).is_empty());
    // With a date ahead, nothing.
    let c = parse("holidays:\n  mine:\n    dates: [2024-12-25, 2025-12-25, 2026-12-25]\n").unwrap();
    assert!(c.calendar_warnings("2026-12-10T00:00:00Z".parse().unwrap()).is_empty());
    // The shipped country data runs out after 2035, and says so.
    let c = parse("holidays:\n  kr:\n    country: KR\n").unwrap();
    assert!(c.calendar_warnings("2026-12-10T00:00:00Z".parse().unwrap()).is_empty());
    let w = c.calendar_warnings("2036-01-02T00:00:00Z".parse().unwrap());
    assert!(
        w.len() == 1 && w[0].contains("its KR dates come from the data offhours ships"),
        "{w:?}"
    );
}

#[test]
fn stopped_size_is_read_and_a_bad_one_is_an_error_at_its_place() {
    let c = parse(
        "schedules:\n  s:\n    running: [\"Mon-Fri 08:00-20:00\"]\n    stopped_size: \"min=1 max=2 desired=1\"\n",
    )
    .unwrap();
    let s = c.schedule("s").unwrap();
    assert_eq!(
        s.stopped_size,
        Some(crate::capacity::Capacity {
            min: 1,
            max: 2,
            desired: 1
        })
    );
    let e = errors(
        "schedules:\n  s:\n    running: [\"Mon-Fri 08:00-20:00\"]\n    stopped_size: \"min=2 max=1 desired=1\"\n",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("test.yaml:4:19: schedules.s.stopped_size: invalid capacity"),
        "{}",
        e[0]
    );
    assert!(e[0].contains("need 0 <= min <= desired <= max"), "{}", e[0]);
}

#[test]
fn uptime_calendars_are_read_and_their_problems_reported_at_their_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ev.ics"),
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Demo\r\nDTSTART:20261205T010000Z\r\nDTEND:20261205T050000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.ics"),
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Open ended\r\nDTSTART:20261205T010000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    )
    .unwrap();
    let cfg = dir.path().join("offhours.yaml");
    std::fs::write(
        &cfg,
        "uptime:\n  demos:\n    ics: ev.ics\n    lead_minutes: 45\nschedules:\n  s:\n    running: [\"Mon-Fri 08:00-20:00\"]\n    uptime: demos\n",
    )
    .unwrap();
    let c = Config::load(&cfg).unwrap();
    let s = c.schedule("s").unwrap();
    assert_eq!(s.uptime.events.len(), 1);
    assert_eq!(
        s.uptime.events[0].from,
        "2026-12-05T00:15:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    std::fs::write(
        &cfg,
        "uptime:\n  demos:\n    ics: bad.ics\nschedules:\n  s:\n    running: [\"Mon-Fri 08:00-20:00\"]\n    uptime: [demos, nope]\n",
    )
    .unwrap();
    let e = Config::load(&cfg).unwrap_err().to_string();
    assert!(
        e.contains(":3:10: uptime.demos.ics:") && e.contains("event `Open ended`: a timed event needs a DTEND"),
        "{e}"
    );
    assert!(
        e.contains("schedules.s.uptime[1]: unknown uptime calendar `nope`; defined: demos"),
        "{e}"
    );
}

#[test]
fn feed_urls_are_https_or_loopback_http_and_a_kept_copy_is_read() {
    let e =
        errors("holidays:\n  a:\n    ics_url: http://example.com/a.ics\n  b:\n    ics_url: ftp://example.com/b.ics\n");
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e[0].contains("holidays.a.ics_url: plain http is only allowed to a loopback host"),
        "{}",
        e[0]
    );
    assert!(
        e[1].contains("holidays.b.ics_url: `ftp://example.com/b.ics` is not an https URL"),
        "{}",
        e[1]
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("offhours.yaml");
    std::fs::write(
        &cfg,
        "state_dir: st\nholidays:\n  co:\n    ics_url: https://calendar.example.com/co.ics\n  lo:\n    ics_url: http://[::1]:8080/lo.ics\n\
         schedules:\n  s:\n    running: [\"Mon-Fri 08:00-20:00\"]\n    holidays: [co, lo]\n",
    )
    .unwrap();
    let c = Config::load(&cfg).unwrap();
    assert_eq!(c.feeds.len(), 2);
    assert!(
        c.feeds
            .iter()
            .all(|f| !f.loaded && f.schedules == ["s"] && f.refresh_hours == 6)
    );
    assert!(
        c.calendar("co").unwrap().is_empty(),
        "never loaded: no dates (and reported as degraded)"
    );
    std::fs::create_dir_all(dir.path().join("st/feeds")).unwrap();
    std::fs::write(
        dir.path().join("st/feeds/holidays-co.ics"),
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Founders\r\nDTSTART;VALUE=DATE:20270301\r\nDTEND;VALUE=DATE:20270303\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    )
    .unwrap();
    let c = Config::load(&cfg).unwrap();
    assert!(c.feeds[0].loaded);
    let co = c.calendar_info("co").unwrap();
    let d = |s: &str| s.parse::<NaiveDate>().unwrap();
    assert_eq!(
        co.named.keys().copied().collect::<Vec<_>>(),
        vec![d("2027-03-01"), d("2027-03-02")]
    );
    assert_eq!(co.named[&d("2027-03-01")], "Founders");
}

#[test]
fn a_tag_policy_cannot_be_asked_to_enforce_on_databases() {
    let text = "schedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\npolicy:\n  enforced_for: [ec2:instance, rds:db]\n";
    let e = Config::parse(text, Path::new("t.yaml")).unwrap_err().to_string();
    assert!(
        e.contains("t.yaml:5:") && e.contains("`rds:db` cannot be enforced by a tag policy"),
        "{e}"
    );
}
