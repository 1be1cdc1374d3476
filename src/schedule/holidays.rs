//! Holiday calendars: dates listed in config and all-day events read from iCalendar files.
//!
//! The iCalendar reader is deliberately small: it reads `VEVENT`s with an all-day (or
//! date-time) `DTSTART` and an optional exclusive `DTEND`, which is what public-holiday
//! feeds publish, and it reports every problem with its line number. Recurrence rules
//! are refused rather than half-understood: a holiday feed lists each date.

use std::collections::BTreeSet;
use std::fmt;

use chrono::NaiveDate;

/// A problem in an iCalendar file, with its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcsError {
    /// 1-based line of the (unfolded) content line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for IcsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Longest run of days one event may cover; a guard against a typo'd year.
const MAX_EVENT_DAYS: i64 = 366;

/// Reads every all-day event of an iCalendar text into dates. Collects all errors.
pub fn parse_ics(text: &str) -> Result<BTreeSet<NaiveDate>, Vec<IcsError>> {
    let mut dates = BTreeSet::new();
    let mut errors = Vec::new();
    let mut event: Option<(usize, Option<NaiveDate>, Option<NaiveDate>)> = None;
    let mut saw_calendar = false;

    for (line_no, line) in unfold(text) {
        let Some((head, value)) = line.split_once(':') else {
            if !line.trim().is_empty() {
                errors.push(IcsError {
                    line: line_no,
                    message: format!("expected NAME:VALUE, found `{}`", line.trim()),
                });
            }
            continue;
        };
        let (name, params) = head.split_once(';').unwrap_or((head, ""));
        let name = name.to_ascii_uppercase();
        let value = value.trim();
        match (name.as_str(), value.to_ascii_uppercase().as_str()) {
            ("BEGIN", "VCALENDAR") => saw_calendar = true,
            ("BEGIN", "VEVENT") => {
                if event.is_some() {
                    errors.push(IcsError {
                        line: line_no,
                        message: "VEVENT begins inside another VEVENT".into(),
                    });
                }
                event = Some((line_no, None, None));
            }
            ("END", "VEVENT") => match event.take() {
                None => errors.push(IcsError {
                    line: line_no,
                    message: "END:VEVENT without BEGIN:VEVENT".into(),
                }),
                Some((start_line, None, _)) => errors.push(IcsError {
                    line: start_line,
                    message: "VEVENT has no DTSTART".into(),
                }),
                Some((start_line, Some(start), end)) => {
                    let end = end.unwrap_or(start + chrono::Days::new(1));
                    let days = (end - start).num_days();
                    if days < 1 {
                        errors.push(IcsError {
                            line: start_line,
                            message: format!("VEVENT ends ({end}) before it starts ({start})"),
                        });
                    } else if days > MAX_EVENT_DAYS {
                        errors.push(IcsError {
                            line: start_line,
                            message: format!("VEVENT spans {days} days; at most {MAX_EVENT_DAYS} are allowed"),
                        });
                    } else {
                        dates.extend(start.iter_days().take(days as usize));
                    }
                }
            },
            ("DTSTART" | "DTEND", _) if event.is_some() => match parse_ics_date(value, params) {
                Ok(d) => {
                    let ev = event.as_mut().expect("checked");
                    if name == "DTSTART" {
                        ev.1 = Some(d)
                    } else {
                        ev.2 = Some(d)
                    }
                }
                Err(m) => errors.push(IcsError {
                    line: line_no,
                    message: format!("{name}: {m}"),
                }),
            },
            ("RRULE" | "RDATE", _) if event.is_some() => errors.push(IcsError {
                line: line_no,
                message: format!("{name} is not supported; list each holiday as its own VEVENT"),
            }),
            _ => {}
        }
    }
    if let Some((l, ..)) = event {
        errors.push(IcsError {
            line: l,
            message: "VEVENT is never closed with END:VEVENT".into(),
        });
    }
    if !saw_calendar && errors.is_empty() {
        errors.push(IcsError {
            line: 1,
            message: "not an iCalendar file: no BEGIN:VCALENDAR".into(),
        });
    }
    errors.sort_by_key(|e| e.line);
    if errors.is_empty() { Ok(dates) } else { Err(errors) }
}

/// `20261225` (VALUE=DATE) or `20261225T000000[Z]`; the date part is taken as is.
fn parse_ics_date(value: &str, _params: &str) -> Result<NaiveDate, String> {
    let date = value.get(..8).filter(|d| d.bytes().all(|b| b.is_ascii_digit()));
    let rest = value.get(8..).unwrap_or("");
    match date {
        Some(d) if rest.is_empty() || rest.starts_with('T') => {
            NaiveDate::parse_from_str(d, "%Y%m%d").map_err(|e| format!("`{value}` is not a valid date ({e})"))
        }
        _ => Err(format!("expected a date such as 20261225, found `{value}`")),
    }
}

/// RFC 5545 line unfolding: a line starting with a space or tab continues the previous one.
fn unfold(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        match (raw.strip_prefix([' ', '\t']), out.last_mut()) {
            (Some(cont), Some(last)) => last.1.push_str(cont),
            _ => out.push((i + 1, raw.to_string())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn all_day_events_and_multi_day_ranges_become_dates() {
        let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nSUMMARY:Christmas\r\nDTSTART;VALUE=DATE:20261225\r\nDTEND;VALUE=DATE:20261226\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nSUMMARY:Chuseok\r\nDTSTART;VALUE=DATE:20260924\r\nDTEND;VALUE=DATE:202609\r\n 27\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nDTSTART:20270101T000000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let dates = parse_ics(ics).unwrap();
        let want: BTreeSet<_> = ["2026-09-24", "2026-09-25", "2026-09-26", "2026-12-25", "2027-01-01"]
            .map(d)
            .into();
        assert_eq!(dates, want);
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let ics = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:2026-12-25\nEND:VEVENT\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=YEARLY\nEND:VEVENT\nBEGIN:VEVENT\nEND:VEVENT\nEND:VCALENDAR\n";
        let errs = parse_ics(ics).unwrap_err();
        let lines: Vec<_> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 7, 9], "{errs:?}");
        assert!(errs[1].message.contains("expected a date"));
        assert!(errs[2].message.contains("RRULE is not supported"));
        assert!(errs[0].message.contains("no DTSTART") && errs[3].message.contains("no DTSTART"));
    }

    #[test]
    fn text_that_is_not_a_calendar_is_refused() {
        assert_eq!(parse_ics("hello: world").unwrap_err()[0].line, 1);
    }
}
