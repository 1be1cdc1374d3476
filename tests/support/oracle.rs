//! The brute-force schedule oracle: when should a schedule be running?
//!
//! It shares no code with offhours' schedule evaluation, nor with its parser or config
//! loader: it reads window texts with its own small reader of the expression grammar
//! (`DAYS HH:MM-HH:MM`, `DAY HH:MM-DAY HH:MM`, a zone at the end), reads the config YAML
//! as plain data (holiday dates, and `.ics` files by their `DTSTART`/`DTEND` date lines),
//! and lays every window occurrence out as an interval of instants. Each local boundary
//! maps to the first UTC minute whose wall-clock time reaches it, which is the DST gap and
//! overlap rule stated as a search; each holiday's local day is subtracted the same way.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use offhours::schedule::State;

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// A window as the oracle reads it.
#[derive(Debug, Clone, Copy)]
enum Win {
    /// Opens on each of `days` (Monday = 0) at minute `start`, for `len` minutes.
    Daily { days: [bool; 7], start: u32, len: u32 },
    /// Opens on weekday `day` at minute `start`, for `len` minutes (across days).
    Span { day: u32, start: u32, len: u32 },
}

fn day(s: &str) -> Option<u32> {
    DAYS.iter().position(|d| *d == s).map(|i| i as u32)
}

fn hm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && (h < 24 || m == 0) && s.len() == 5).then_some(h * 60 + m)
}

fn days(s: &str) -> Option<[bool; 7]> {
    let mut out = [false; 7];
    match s.split_once('-') {
        None => out[day(s)? as usize] = true,
        Some((a, b)) => {
            let (a, b) = (day(a)?, day(b)?);
            let mut d = a;
            loop {
                out[d as usize] = true;
                if d == b {
                    break;
                }
                d = (d + 1) % 7;
            }
        }
    }
    Some(out)
}

/// Reads one expression: its windows and the zone it names, if any.
fn read(text: &str) -> (Vec<Win>, Option<Tz>) {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let mut wins = Vec::new();
    let mut zone = None;
    let mut current: Option<[bool; 7]> = None;
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i];
        if let Some(d) = days(t) {
            current = Some(d);
        } else if let Some((a, b)) = t.split_once('-')
            && let Some(start) = hm(a)
        {
            if let Some(end) = hm(b) {
                let len = if end > start { end - start } else { end + 1440 - start };
                wins.push(Win::Daily {
                    days: current.unwrap_or_else(|| panic!("{text}: a window before its days")),
                    start,
                    len,
                });
            } else {
                // `DAY HH:MM-DAY HH:MM`: the opening day is the one just read.
                let open = current.unwrap_or_else(|| panic!("{text}: a span without its day"));
                let open_day = open.iter().position(|x| *x).unwrap() as u32;
                let close_day = day(b).unwrap_or_else(|| panic!("{text}: bad token {t}"));
                i += 1;
                let end = hm(tokens[i]).unwrap_or_else(|| panic!("{text}: bad token {}", tokens[i]));
                let (s, e) = (open_day * 1440 + start, close_day * 1440 + end);
                let len = (e + 7 * 1440 - s) % (7 * 1440);
                wins.push(Win::Span {
                    day: open_day,
                    start,
                    len,
                });
                current = None;
            }
        } else {
            assert_eq!(i, tokens.len() - 1, "{text}: unreadable token {t}");
            zone = Some(t.parse().unwrap_or_else(|_| panic!("{text}: unknown zone {t}")));
        }
        i += 1;
    }
    (wins, zone)
}

/// The first UTC minute whose local wall-clock time is at or after `l`.
pub fn instant(tz: Tz, l: NaiveDateTime) -> DateTime<Utc> {
    let mut t = Utc.from_utc_datetime(&(l - Duration::hours(30)));
    while t.with_timezone(&tz).naive_local() < l {
        t += Duration::minutes(1);
    }
    t
}

/// A span of instants, start included, end excluded.
pub type Interval = (DateTime<Utc>, DateTime<Utc>);

/// One schedule, laid out as intervals of instants between two dates.
#[derive(Debug, Clone)]
pub struct Oracle {
    pub tz: Tz,
    /// Running intervals of the windows (stopped ones if `inverted`), sorted by start.
    windows: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    holidays: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    inverted: bool,
    /// Uptime intervals: running inside them whatever the rest says.
    uptime: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl Oracle {
    /// The schedule of `texts` (running windows, or stopped ones if `stopped`) in the zone
    /// the texts name or else `tz`, with `holidays`, answering between `from` and `to`.
    pub fn new(texts: &[&str], stopped: bool, tz: Tz, holidays: &[NaiveDate], from: NaiveDate, to: NaiveDate) -> Self {
        let mut wins = Vec::new();
        let mut tz = tz;
        for text in texts {
            let (w, z) = read(text);
            wins.extend(w);
            if let Some(z) = z {
                tz = z;
            }
        }
        let mut windows = Vec::new();
        let at = |date: NaiveDate, minute: u32| {
            instant(tz, date.and_time(NaiveTime::MIN) + Duration::minutes(i64::from(minute)))
        };
        for date in (from - chrono::Days::new(9))
            .iter_days()
            .take_while(|x| *x <= to + chrono::Days::new(9))
        {
            let wd = date.weekday().num_days_from_monday();
            for w in &wins {
                match *w {
                    Win::Daily { days, start, len } if days[wd as usize] => {
                        windows.push((at(date, start), at(date, start + len)));
                    }
                    Win::Span { day, start, len } if day == wd => {
                        windows.push((at(date, start), at(date, start + len)));
                    }
                    _ => {}
                }
            }
        }
        windows.sort();
        let holidays = holidays
            .iter()
            .map(|&h| (at(h, 0), at(h + chrono::Days::new(1), 0)))
            .collect();
        let utc = |d: NaiveDate| Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN));
        Oracle {
            tz,
            windows,
            holidays,
            inverted: stopped,
            uptime: Vec::new(),
            from: utc(from),
            to: utc(to),
        }
    }

    /// The state at `t`.
    pub fn state(&self, t: DateTime<Utc>) -> State {
        assert!(
            self.from <= t && t < self.to,
            "the oracle answers in [{}, {}), not at {t}",
            self.from,
            self.to
        );
        // Windows last at most a week and start in order: look back eight days.
        let end = self.windows.partition_point(|&(s, _)| s <= t);
        let in_window = self.windows[..end]
            .iter()
            .rev()
            .take_while(|&&(s, _)| s > t - Duration::days(8))
            .any(|&(_, e)| t < e);
        let holiday = self.holidays.iter().any(|&(s, e)| s <= t && t < e);
        let up = self.uptime.iter().any(|&(s, e)| s <= t && t < e);
        if up || ((in_window != self.inverted) && !holiday) {
            State::Running
        } else {
            State::Stopped
        }
    }

    /// The same schedule with uptime intervals: running inside each.
    pub fn with_uptime(mut self, intervals: &[(DateTime<Utc>, DateTime<Utc>)]) -> Self {
        self.uptime.extend_from_slice(intervals);
        self
    }

    /// Every minute in `[from, to)` at which the state differs from the minute before,
    /// with the state it enters.
    pub fn changes(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(DateTime<Utc>, State)> {
        let mut out = Vec::new();
        let mut prev = self.state(from - Duration::minutes(1));
        let mut t = from;
        while t < to {
            let s = self.state(t);
            if s != prev {
                out.push((t, s));
                prev = s;
            }
            t += Duration::minutes(1);
        }
        out
    }
}

/// A country's (`KR`) or subdivision's (`US-CA`) dates, read from the shipped data file
/// with this reader of its own (the format is in `scripts/gen-holidays.py`; the data itself
/// is compared with its source by `tests/holidays_data.rs`): the country's rows, then the
/// subdivision's `-` removals and `+` additions.
pub fn country_dates(code: &str) -> Vec<NaiveDate> {
    let text = include_str!("../../src/schedule/countries.tsv");
    let code = code.to_uppercase();
    let country = code.split('-').next().unwrap().to_string();
    let mut dates = std::collections::BTreeSet::new();
    let mut seen = false;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols[0] == country {
            seen |= code == country;
            dates.insert(cols[1].parse::<NaiveDate>().unwrap());
        } else if cols[0] == code {
            seen = true;
            match cols[1].chars().next() {
                Some('-') => {
                    dates.remove(&cols[1][1..].parse::<NaiveDate>().unwrap());
                }
                Some('+') => {
                    dates.insert(cols[1][1..].parse::<NaiveDate>().unwrap());
                }
                _ => {}
            }
        }
    }
    assert!(seen, "no holidays for {code} in the shipped data");
    dates.into_iter().collect()
}

/// The events of an iCalendar file as (start, end) instants, read with this reader of its
/// own: `DTSTART`/`DTEND` as `YYYYMMDDTHHMMSSZ`, `;TZID=<zone>:YYYYMMDDTHHMMSS`, or
/// `;VALUE=DATE:YYYYMMDD` (midnight in `tz`; no `DTEND`: the next midnight). Recurrence
/// rules are not read: the fixtures it reads list each event (the parser's recurrence
/// expansion has its own tests with worked dates).
pub fn ics_events(text: &str, tz: Tz) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let value = |line: &str| -> (DateTime<Utc>, bool) {
        let (head, v) = line.split_once(':').unwrap();
        let v = v.trim();
        if head.contains("VALUE=DATE") && !head.contains("VALUE=DATE-TIME") {
            let d = NaiveDate::parse_from_str(v, "%Y%m%d").unwrap();
            return (instant(tz, d.and_time(NaiveTime::MIN)), true);
        }
        if let Some(z) = v.strip_suffix('Z') {
            let n = NaiveDateTime::parse_from_str(z, "%Y%m%dT%H%M%S").unwrap();
            return (Utc.from_utc_datetime(&n), false);
        }
        let zone: Tz = head
            .split(';')
            .find_map(|p| p.strip_prefix("TZID="))
            .map(|z| z.parse().unwrap())
            .unwrap_or(tz);
        let n = NaiveDateTime::parse_from_str(v, "%Y%m%dT%H%M%S").unwrap();
        (instant(zone, n), false)
    };
    let mut out = Vec::new();
    let (mut start, mut end) = (None, None);
    for line in text.lines().map(str::trim_end) {
        if line == "BEGIN:VEVENT" {
            (start, end) = (None, None);
        } else if line.starts_with("DTSTART") {
            start = Some(value(line));
        } else if line.starts_with("DTEND") {
            end = Some(value(line).0);
        } else if line == "END:VEVENT" {
            let (s, all_day) = start.expect("an event has a DTSTART");
            let e = end.unwrap_or_else(|| {
                assert!(all_day, "a timed event needs a DTEND");
                instant(
                    tz,
                    (s.with_timezone(&tz).date_naive() + chrono::Days::new(1)).and_time(NaiveTime::MIN),
                )
            });
            out.push((s, e));
        }
    }
    out
}

/// The `DTSTART`/`DTEND` all-day dates of an iCalendar file (`DTEND` exclusive, one day
/// when absent).
pub fn ics_dates(text: &str) -> Vec<NaiveDate> {
    let date = |l: &str| NaiveDate::parse_from_str(l.rsplit(':').next().unwrap().trim(), "%Y%m%d").unwrap();
    let mut out = Vec::new();
    let mut start: Option<NaiveDate> = None;
    let mut end: Option<NaiveDate> = None;
    for line in text.lines() {
        let line = line.trim_end();
        if line.starts_with("DTSTART") {
            start = Some(date(line));
        } else if line.starts_with("DTEND") {
            end = Some(date(line));
        } else if line == "END:VEVENT" {
            let s = start.take().expect("an event without DTSTART");
            let e = end.take().unwrap_or(s + chrono::Days::new(1));
            out.extend(s.iter_days().take_while(|d| *d < e));
        }
    }
    out
}

/// A config's schedules, read from its YAML as plain data.
pub struct Book {
    pub schedules: BTreeMap<String, Oracle>,
    /// Each schedule's `mode` as written (`full` when absent).
    pub modes: BTreeMap<String, String>,
    /// The schedules that hold their state on every pass (`enforce: true`).
    pub enforced: std::collections::BTreeSet<String>,
}

impl Book {
    /// The schedules of the config at `path`, answering between `from` and `to`.
    pub fn load(path: &Path, from: NaiveDate, to: NaiveDate) -> Book {
        let text = std::fs::read_to_string(path).unwrap();
        Book::from_yaml(&text, path.parent().unwrap(), from, to)
    }

    /// The schedules of a config's text; `.ics` files are read relative to `dir`.
    pub fn from_yaml(text: &str, dir: &Path, from: NaiveDate, to: NaiveDate) -> Book {
        let doc: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
        let zone = |v: &serde_yaml::Value| v.as_str().map(|z| z.parse::<Tz>().unwrap());
        let default_tz = zone(&doc["timezone"]).unwrap_or(chrono_tz::UTC);
        let mut calendars: BTreeMap<String, Vec<NaiveDate>> = BTreeMap::new();
        if let Some(map) = doc["holidays"].as_mapping() {
            for (name, cal) in map {
                let mut dates: Vec<NaiveDate> = cal["dates"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .map(|d| d.as_str().unwrap().parse().unwrap())
                    .collect();
                if let Some(file) = cal["ics"].as_str() {
                    dates.extend(ics_dates(&std::fs::read_to_string(dir.join(file)).unwrap()));
                }
                if let Some(code) = cal["country"].as_str() {
                    dates.extend(country_dates(code));
                }
                let list = |key: &str| -> Vec<NaiveDate> {
                    cal[key]
                        .as_sequence()
                        .into_iter()
                        .flatten()
                        .map(|d| d.as_str().unwrap().parse().unwrap())
                        .collect()
                };
                dates.extend(list("extra_dates"));
                let except = list("except_dates");
                dates.retain(|d| !except.contains(d));
                calendars.insert(name.as_str().unwrap().to_string(), dates);
            }
        }
        let mut uptimes: BTreeMap<String, Vec<Interval>> = BTreeMap::new();
        if let Some(map) = doc["uptime"].as_mapping() {
            for (name, u) in map {
                let file = u["ics"].as_str().unwrap();
                let lead = Duration::minutes(u["lead_minutes"].as_i64().unwrap_or(0));
                let events = ics_events(&std::fs::read_to_string(dir.join(file)).unwrap(), default_tz);
                uptimes.insert(
                    name.as_str().unwrap().to_string(),
                    events.into_iter().map(|(s, e)| (s - lead, e)).collect(),
                );
            }
        }
        let mut schedules = BTreeMap::new();
        let mut modes = BTreeMap::new();
        let mut enforced = std::collections::BTreeSet::new();
        for (name, s) in doc["schedules"].as_mapping().into_iter().flatten() {
            let name = name.as_str().unwrap().to_string();
            let (key, stopped) = if s["stopped"].is_sequence() {
                ("stopped", true)
            } else {
                ("running", false)
            };
            let texts: Vec<&str> = s[key]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap())
                .collect();
            let names: Vec<&str> = match &s["holidays"] {
                serde_yaml::Value::String(one) => vec![one.as_str()],
                serde_yaml::Value::Sequence(many) => many.iter().map(|n| n.as_str().unwrap()).collect(),
                _ => Vec::new(),
            };
            let holidays: Vec<NaiveDate> = names.iter().flat_map(|n| calendars[*n].iter().copied()).collect();
            let tz = zone(&s["timezone"]).unwrap_or(default_tz);
            let up: Vec<(DateTime<Utc>, DateTime<Utc>)> = match &s["uptime"] {
                serde_yaml::Value::String(one) => uptimes[one.as_str()].clone(),
                serde_yaml::Value::Sequence(many) => many
                    .iter()
                    .flat_map(|n| uptimes[n.as_str().unwrap()].iter().copied())
                    .collect(),
                _ => Vec::new(),
            };
            schedules.insert(
                name.clone(),
                Oracle::new(&texts, stopped, tz, &holidays, from, to).with_uptime(&up),
            );
            if s["enforce"].as_bool() == Some(true) {
                enforced.insert(name.clone());
            }
            modes.insert(name, s["mode"].as_str().unwrap_or("full").to_string());
        }
        Book {
            schedules,
            modes,
            enforced,
        }
    }
}

/// `Weekday` by the oracle's numbering (Monday 0), for tests that build texts.
pub fn weekday_name(d: Weekday) -> &'static str {
    DAYS[d.num_days_from_monday() as usize]
}
