//! The `offhours` binary, run as a user would.

use std::path::PathBuf;
use std::process::{Command, Output};

fn offhours(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_offhours"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("OFFHOURS_CONFIG")
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn explain_office_hours_skips_christmas_and_the_weekend() {
    let o = offhours(&[
        "explain",
        "office-hours",
        "--from",
        "2026-12-24T00:00:00+09:00",
        "--count",
        "4",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["schedule"], "office-hours");
    assert_eq!(v["timezone"], "Asia/Seoul");
    let t: Vec<(String, String)> = v["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["at"].as_str().unwrap().to_string(),
                t["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("2026-12-24T08:00:00+09:00", "start"),
        ("2026-12-24T20:00:00+09:00", "stop"),
        ("2026-12-28T08:00:00+09:00", "start"),
        ("2026-12-28T20:00:00+09:00", "stop"),
    ];
    assert_eq!(t, want.map(|(a, b)| (a.to_string(), b.to_string())));
    let actions = v["scheduled_actions"].as_array().unwrap();
    assert!(
        actions
            .iter()
            .all(|a| a["name"].as_str().unwrap().starts_with("offhours-"))
    );
    assert!(
        actions
            .iter()
            .any(|a| a["recurrence"] == "0 8 * * 1-5" && a["time_zone"] == "Asia/Seoul")
    );

    let text = offhours(&[
        "explain",
        "office-hours",
        "--from",
        "2026-12-24T00:00:00+09:00",
        "--count",
        "4",
    ]);
    let text = stdout(&text);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("start") || l.trim_start().starts_with("stop"))
        .collect();
    assert!(
        lines[0].contains("Thu 2026-12-24 08:00 KST") && lines[0].contains("2026-12-23T23:00:00Z"),
        "{text}"
    );
    assert!(lines[2].contains("Mon 2026-12-28 08:00 KST"), "{text}");
}

#[test]
fn explain_uses_now_when_no_from_is_given_and_accepts_inline_expressions() {
    let o = offhours(&[
        "explain",
        "Sat 10:00-12:00 Europe/London",
        "--now",
        "2026-11-25T00:00:00Z",
        "--count",
        "2",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["transitions"][0]["at"], "2026-11-28T10:00:00+00:00");
    assert_eq!(v["timezone"], "Europe/London");
}

#[test]
fn explain_rejects_a_bad_expression_with_exit_2_and_its_position() {
    let o = offhours(&["explain", "Mon-Fri 08:00-25:00"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("at column 9, `08:00-25:00`"), "{}", stderr(&o));
}

#[test]
fn validate_accepts_the_shipped_config() {
    let o = offhours(&["validate"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("config/offhours.yaml: ok"));
}

#[test]
fn validate_names_the_line_of_an_unknown_key_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("bad.yaml");
    let text = "tag_key: Schedule\ntimezone: Asia/Seoul\nschedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\n    mode: full\n    enforce_hours: true\n  broken:\n    running: [\"Mon 9-10\"]\n";
    std::fs::write(&path, text).unwrap();
    let o = offhours(&["validate", "--config", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("bad.yaml:7:5: schedules.office-hours.enforce_hours: unknown field `enforce_hours`"),
        "{err}"
    );
    assert!(err.contains("bad.yaml:9:"), "both errors are reported: {err}");

    // OFFHOURS_CONFIG picks the file too.
    let o = Command::new(env!("CARGO_BIN_EXE_offhours"))
        .arg("validate")
        .env("OFFHOURS_CONFIG", &path)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_missing_config_file_is_invalid_input() {
    let o = offhours(&["validate", "--config", "/nonexistent/offhours.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read the config file"));
}

#[test]
fn config_schema_prints_a_json_schema() {
    let o = offhours(&["config", "schema"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v["$schema"].as_str().unwrap().contains("json-schema.org"));
    assert!(v["properties"]["schedules"].is_object());
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(offhours(&["explain"]).status.code(), Some(2));
    assert_eq!(
        offhours(&["explain", "office-hours", "--now", "yesterday"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn validate_warns_without_a_state_key_and_refuses_a_short_one_without_printing_it() {
    let run = |key: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_offhours"));
        c.args(["validate"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("OFFHOURS_CONFIG")
            .env_remove("OFFHOURS_STATE_KEY");
        if let Some(k) = key {
            c.env("OFFHOURS_STATE_KEY", k);
        }
        c.output().unwrap()
    };
    let o = run(None);
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("no state key"), "{}", stderr(&o));
    let o = run(Some("s3cr3t"));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("state_key_env: the state key from $OFFHOURS_STATE_KEY has 6 bytes"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("s3cr3t") && !stdout(&o).contains("s3cr3t"));
    let o = run(Some("a-long-enough-state-key"));
    assert_eq!(o.status.code(), Some(0));
    assert!(!stderr(&o).contains("no state key"));
}

#[test]
fn run_refuses_now_with_a_clear_error() {
    let o = offhours(&["run", "--now", "2026-11-25T12:00:00Z"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("does not take --now"), "{}", stderr(&o));
}

#[test]
fn holidays_list_prints_a_calendars_dates_with_names() {
    let o = offhours(&["holidays", "list", "kr", "--year", "2026"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("# kr (country KR, holidays 0.109): 22 date(s) in 2026\n"),
        "{out}"
    );
    assert!(out.contains("\n2026-05-01  Fri  Labor Day\n"), "{out}");
    assert!(out.contains("\n2026-07-17  Fri  Constitution Day\n"), "{out}");
    assert!(!out.contains("2027-"), "{out}");
    // A code of the shipped data works without a calendar in the config.
    let o = offhours(&["holidays", "list", "DE-BY", "--year", "2027"]);
    assert!(stdout(&o).contains("\n2027-01-06  Wed  Epiphany\n"), "{}", stdout(&o));
    let o = offhours(&["holidays", "list", "DE", "--year", "2027"]);
    assert!(
        !stdout(&o).contains("Epiphany"),
        "Epiphany is a Bavarian holiday, not a federal one"
    );
    let o = offhours(&["holidays", "list", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("`nope` is neither a holiday calendar of the config (company, kr)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn validate_warns_when_a_calendar_has_run_out() {
    let o = offhours(&["--now", "2036-01-05T00:00:00Z", "validate"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: holidays.kr: no date from 2036-01-05 to 2036-03-05"),
        "{}",
        stderr(&o)
    );
    let o = offhours(&["--now", "2026-12-01T00:00:00Z", "validate"]);
    assert!(!stderr(&o).contains("holidays.kr"), "{}", stderr(&o));
}

#[test]
fn explain_names_the_uptime_event_behind_a_transition() {
    let o = offhours(&[
        "explain",
        "office-hours-extended",
        "--from",
        "2026-12-05T00:00:00+09:00",
        "--count",
        "3",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(
            "start  Sat 2026-12-05 09:30 KST   2026-12-05T00:30:00Z   event: Release 4.2 (Saturday load test)"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "stop   Sat 2026-12-05 14:00 KST   2026-12-05T05:00:00Z   event: Release 4.2 (Saturday load test)"
        ),
        "{out}"
    );
    assert!(
        out.contains("start  Mon 2026-12-07 07:00 KST   2026-12-06T22:00:00Z\n"),
        "{out}"
    );
    let o = offhours(&[
        "explain",
        "office-hours-extended",
        "--from",
        "2026-12-05T00:00:00+09:00",
        "--count",
        "3",
        "--output",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["transitions"][0]["event"], "Release 4.2 (Saturday load test)");
    assert!(v["transitions"][2].get("event").is_none(), "{v:#}");
}
