//! The shipped holiday data against its source, the `holidays` package (PyPI) at the
//! version pinned in tests/requirements.txt, run from the test venv: every country,
//! subdivision and year the data ships, through the library's own reader; and the shipped
//! config's `office-hours`, explained by the binary, starts on no weekday Korean public
//! holiday of 2026-2030 as the source lists them.
//!
//! Python: `$OFFHOURS_PYTHON`, else the `python` beside `$OFFHOURS_MOTO_SERVER` (the venv
//! ./scripts/test installs), else `python3` on PATH.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use chrono::{Datelike, NaiveDate, Weekday};
use offhours::schedule::countries;

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("OFFHOURS_PYTHON") {
        return p.into();
    }
    if let Ok(moto) = std::env::var("OFFHOURS_MOTO_SERVER") {
        let p = PathBuf::from(moto).with_file_name("python");
        if p.exists() {
            return p;
        }
    }
    "python3".into()
}

fn generator(args: &[&str]) -> std::process::Output {
    let py = python();
    let o = Command::new(&py)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/gen-holidays.py"))
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}); run ./scripts/test, which installs the pinned `holidays`",
                py.display()
            )
        });
    assert!(
        o.status.success() || args == ["--check"],
        "gen-holidays.py {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Every (code, date, name) the source gives, subdivisions in full.
fn source() -> BTreeMap<String, BTreeMap<NaiveDate, String>> {
    let o = generator(&["--full"]);
    let mut out: BTreeMap<String, BTreeMap<NaiveDate, String>> = BTreeMap::new();
    for line in String::from_utf8(o.stdout).unwrap().lines() {
        let cols: Vec<&str> = line.splitn(3, '\t').collect();
        out.entry(cols[0].to_string())
            .or_default()
            .insert(cols[1].parse().unwrap(), cols[2].to_string());
    }
    out
}

#[test]
fn the_bundled_data_is_its_source_for_every_country_subdivision_and_year() {
    let check = generator(&["--check"]);
    assert!(
        check.status.success(),
        "src/schedule/countries.tsv differs from the pinned `holidays`:\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let src = source();
    let countries_listed: BTreeSet<&str> = src.keys().map(|c| c.split('-').next().unwrap()).collect();
    for c in ["KR", "JP", "CN", "SG", "IN", "AU", "US", "GB", "DE", "FR"] {
        assert!(countries_listed.contains(c), "{c} is not shipped");
    }
    assert!(src.len() > 100, "subdivisions are shipped too ({} codes)", src.len());
    let mut compared = 0;
    for (code, want) in &src {
        let got = countries::holidays(code).unwrap_or_else(|| panic!("{code}: unknown to offhours"));
        for year in countries::FIRST_YEAR..=countries::LAST_YEAR {
            let g: Vec<(NaiveDate, &str)> = got
                .iter()
                .filter(|(d, _)| d.year() == year)
                .map(|(d, n)| (*d, *n))
                .collect();
            let w: Vec<(NaiveDate, &str)> = want
                .iter()
                .filter(|(d, _)| d.year() == year)
                .map(|(d, n)| (*d, n.as_str()))
                .collect();
            assert_eq!(g, w, "{code} {year}");
            compared += w.len();
        }
    }
    let codes: BTreeSet<&str> = countries::codes().into_iter().collect();
    let src_codes: BTreeSet<&str> = src.keys().map(String::as_str).collect();
    assert_eq!(codes, src_codes, "the codes offhours knows are the source's");
    eprintln!("{} codes, {compared} holidays compared", src.len());
}

#[derive(serde::Deserialize)]
struct Explained {
    transitions: Vec<Transition>,
}

#[derive(serde::Deserialize)]
struct Transition {
    at: String,
    action: String,
}

#[test]
fn office_hours_starts_on_no_weekday_korean_public_holiday_2026_to_2030() {
    let kr: BTreeSet<NaiveDate> = source()["KR"].keys().copied().collect();
    let mut starts: BTreeSet<NaiveDate> = BTreeSet::new();
    for year in 2026..=2030 {
        let o = Command::new(env!("CARGO_BIN_EXE_offhours"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "--config",
                "config/offhours.yaml",
                "explain",
                "office-hours",
                "--output",
                "json",
            ])
            .args(["--from", &format!("{year}-01-01T00:00:00+09:00"), "--count", "600"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let x: Explained = serde_json::from_slice(&o.stdout).unwrap();
        for t in x.transitions.iter().filter(|t| t.action == "start") {
            let local = chrono::DateTime::parse_from_rfc3339(&t.at).unwrap();
            assert_eq!(local.offset().local_minus_utc(), 9 * 3600, "{}", t.at);
            if local.year() == year {
                starts.insert(local.date_naive());
            }
        }
    }
    let mut holidays_seen = 0;
    let mut day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    while day.year() <= 2030 {
        let weekday = !matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
        if weekday && kr.contains(&day) {
            holidays_seen += 1;
            assert!(
                !starts.contains(&day),
                "office-hours starts on {day}, a Korean public holiday"
            );
        } else if weekday {
            assert!(
                starts.contains(&day),
                "office-hours does not start on {day}, a working day"
            );
        } else {
            assert!(!starts.contains(&day), "office-hours starts on {day}, a weekend");
        }
        day = day.succ_opt().unwrap();
    }
    assert!(
        holidays_seen > 60,
        "only {holidays_seen} weekday holidays in five years"
    );
}
