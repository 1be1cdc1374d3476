//! The schedule expression grammar, shared by config windows, inline tag values and the CLI.
//!
//! ```text
//! expr    := group+ [ZONE]
//! group   := DAYS window+ | DAY HH:MM-DAY HH:MM
//! DAYS    := DAY | DAY-DAY            (a range may wrap: Fri-Mon)
//! window  := HH:MM-HH:MM              (an end before its start crosses midnight; 24:00 may end)
//! ZONE    := IANA name | UTC
//! ```
//!
//! Only characters valid in every AWS tag value may appear: letters, digits, space and
//! `+ - = . _ : / @`, at most 256 characters.

use std::fmt;

use chrono::Weekday;
use chrono_tz::Tz;

use super::week::{DAY, WEEK, WeekMask};

/// Longest expression accepted: the longest AWS tag value.
pub const MAX_LEN: usize = 256;

/// Why an expression was rejected, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based character column of the offending token.
    pub column: usize,
    /// The offending token (or character).
    pub token: String,
    /// What is wrong, and what was expected.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.token.is_empty() {
            write!(f, "at column {}: {}", self.column, self.message)
        } else {
            write!(f, "at column {}, `{}`: {}", self.column, self.token, self.message)
        }
    }
}

impl std::error::Error for ParseError {}

/// A set of weekdays, bit 0 = Monday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Days(pub u8);

impl Days {
    /// Every day from `from` to `to`, wrapping past Sunday.
    #[must_use]
    pub fn range(from: Weekday, to: Weekday) -> Self {
        let mut bits = 0u8;
        let mut d = from;
        loop {
            bits |= 1 << d.num_days_from_monday();
            if d == to {
                break;
            }
            d = d.succ();
        }
        Days(bits)
    }

    /// Whether `d` is in the set.
    #[must_use]
    pub fn contains(self, d: Weekday) -> bool {
        self.0 >> d.num_days_from_monday() & 1 == 1
    }

    /// The days in the set, Monday first.
    pub fn iter(self) -> impl Iterator<Item = Weekday> {
        (0..7u8)
            .filter(move |i| self.0 >> i & 1 == 1)
            .map(|i| Weekday::try_from(i).expect("0..7"))
    }
}

/// One window of an expression, in local wall-clock minutes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Window {
    /// `DAYS HH:MM-HH:MM`: starts on each of `days` at `start`, lasts until `end`
    /// (minutes of the day; `end <= start` crosses midnight, `end` may be 1440).
    Daily {
        /// Days on which the window starts.
        days: Days,
        /// Minute of day the window opens.
        start: u32,
        /// Minute of day the window closes (1..=1440).
        end: u32,
    },
    /// `DAY HH:MM-DAY HH:MM`: one span across days, e.g. `Fri 20:00-Mon 08:00`.
    Span {
        /// Minute of week the span opens.
        start: u32,
        /// Minute of week the span closes.
        end: u32,
    },
}

impl Window {
    /// Marks the window's minutes in `week`.
    pub fn mark(&self, week: &mut WeekMask) {
        match *self {
            Window::Daily { days, start, end } => {
                let len = if end > start { end - start } else { end + DAY - start };
                for d in days.iter() {
                    week.set_range(d.num_days_from_monday() * DAY + start, len);
                }
            }
            Window::Span { start, end } => {
                week.set_range(start, (end + WEEK - start) % WEEK);
            }
        }
    }
}

/// A parsed expression: windows plus an optional zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    /// The windows, in the order written.
    pub windows: Vec<Window>,
    /// The zone named at the end, if any.
    pub zone: Option<Tz>,
}

impl Expr {
    /// The week these windows cover.
    #[must_use]
    pub fn week(&self) -> WeekMask {
        let mut w = WeekMask::stopped();
        for win in &self.windows {
            win.mark(&mut w);
        }
        w
    }
}

/// Whether `c` is allowed in every AWS tag value.
#[must_use]
pub fn is_tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ' ' | '+' | '-' | '=' | '.' | '_' | ':' | '/' | '@')
}

struct Token<'a> {
    text: &'a str,
    column: usize,
}

fn err(tok: &Token<'_>, message: impl Into<String>) -> ParseError {
    ParseError {
        column: tok.column,
        token: tok.text.to_string(),
        message: message.into(),
    }
}

const DAY_HINT: &str = "expected a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun) or a range such as Mon-Fri";

fn parse_day(s: &str) -> Option<Weekday> {
    let d = match s.to_ascii_lowercase().as_str() {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        _ => return None,
    };
    Some(d)
}

fn parse_days(s: &str) -> Option<Days> {
    match s.split_once('-') {
        None => parse_day(s).map(|d| Days::range(d, d)),
        Some((a, b)) => Some(Days::range(parse_day(a)?, parse_day(b)?)),
    }
}

/// A time of day that does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum TimeError {
    #[error("expected a time HH:MM, found `{0}`")]
    NotATime(String),
    #[error("minute {0} is out of range 00-59")]
    Minute(u32),
    #[error("24:00 may only end a window")]
    MidnightStart,
    #[error("hour {0} is out of range 00-23 (or 24:00 as an end)")]
    Hour(u32),
}

/// Parses `HH:MM` into a minute of the day; `24:00` only when `end` is set.
fn parse_time(s: &str, end: bool) -> Result<u32, TimeError> {
    let bad = || TimeError::NotATime(s.to_string());
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    if !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m > 59 {
        return Err(TimeError::Minute(m));
    }
    match (h, m) {
        (24, 0) if end => Ok(DAY),
        (24, 0) => Err(TimeError::MidnightStart),
        (h, _) if h > 23 => Err(TimeError::Hour(h)),
        (h, m) => Ok(h * 60 + m),
    }
}

fn looks_like_time(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_digit())
}

/// Parses an expression. Never panics; every rejection names the token and its column.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    let chars = input.chars().count();
    if chars > MAX_LEN {
        return Err(ParseError {
            column: MAX_LEN + 1,
            token: String::new(),
            message: format!("expression is {chars} characters long; at most {MAX_LEN} are allowed"),
        });
    }
    if let Some((i, c)) = input.chars().enumerate().find(|&(_, c)| !is_tag_char(c)) {
        return Err(ParseError {
            column: i + 1,
            token: c.to_string(),
            message: "character not allowed; use letters, digits, space and + - = . _ : / @".into(),
        });
    }
    // All characters are ASCII from here on, so byte offsets are columns.
    let tokens: Vec<Token<'_>> = input
        .split(' ')
        .scan(0usize, |pos, text| {
            let column = *pos + 1;
            *pos += text.len() + 1;
            Some(Token { text, column })
        })
        .filter(|t| !t.text.is_empty())
        .collect();
    if tokens.is_empty() {
        return Err(ParseError {
            column: 1,
            token: String::new(),
            message: "empty expression; expected windows such as `Mon-Fri 08:00-20:00`".into(),
        });
    }

    let mut windows = Vec::new();
    let mut zone = None;
    let mut i = 0;
    while i < tokens.len() {
        let tok = &tokens[i];
        let Some(days) = parse_days(tok.text) else {
            if i == tokens.len() - 1 && !windows.is_empty() && !looks_like_time(tok.text) {
                zone = Some(parse_zone(tok)?);
                break;
            }
            let hint = if windows.is_empty() {
                DAY_HINT.to_string()
            } else {
                format!("{DAY_HINT}, or a time zone at the end")
            };
            return Err(err(tok, hint));
        };
        i += 1;
        let mut in_group = 0;
        while let Some(t) = tokens.get(i).filter(|t| looks_like_time(t.text)) {
            let Some((a, b)) = t.text.split_once('-') else {
                return Err(err(t, "expected a window HH:MM-HH:MM"));
            };
            let start = parse_time(a, false).map_err(|m| err(t, m.to_string()))?;
            if let Some(end_day) = parse_day(b) {
                // A span: DAY HH:MM-DAY HH:MM.
                let d = days.iter().collect::<Vec<_>>();
                if d.len() != 1 || in_group > 0 {
                    return Err(err(
                        t,
                        "a window that ends on another day must start on a single day, e.g. `Fri 20:00-Mon 08:00`",
                    ));
                }
                let Some(et) = tokens.get(i + 1) else {
                    return Err(err(t, format!("expected the end time after `{b}`")));
                };
                let end = parse_time(et.text, true).map_err(|m| err(et, m.to_string()))?;
                let s = d[0].num_days_from_monday() * DAY + start;
                let e = (end_day.num_days_from_monday() * DAY + end) % WEEK;
                if s == e {
                    return Err(err(t, "window is empty: it ends where it starts"));
                }
                windows.push(Window::Span { start: s, end: e });
                i += 2;
                in_group += 1;
                break;
            }
            let end = parse_time(b, true).map_err(|m| err(t, m.to_string()))?;
            if end == start {
                return Err(err(
                    t,
                    "window is empty: it ends where it starts (use 00:00-24:00 for a whole day)",
                ));
            }
            windows.push(Window::Daily { days, start, end });
            i += 1;
            in_group += 1;
        }
        if in_group == 0 {
            let column = tokens.get(i).map_or(input.len() + 1, |t| t.column);
            let token = tokens.get(i).map_or("", |t| t.text).to_string();
            return Err(ParseError {
                column,
                token,
                message: format!("expected a window HH:MM-HH:MM after `{}`", tok.text),
            });
        }
    }
    Ok(Expr { windows, zone })
}

fn parse_zone(tok: &Token<'_>) -> Result<Tz, ParseError> {
    tok.text.parse::<Tz>().map_err(|_| {
        err(
            tok,
            "unknown time zone; expected an IANA name such as Asia/Seoul, or UTC",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(expr: &str) -> Vec<(u32, bool)> {
        parse(expr).unwrap().week().changes()
    }

    #[test]
    fn weekday_window_runs_monday_to_friday() {
        let e = parse("Mon-Fri 08:00-20:00").unwrap();
        assert_eq!(e.zone, None);
        let w = e.week();
        assert_eq!(w.running_minutes(), 5 * 12 * 60);
        assert!(w.get(8 * 60));
        assert!(!w.get(20 * 60));
        assert!(!w.get(5 * DAY + 9 * 60));
    }

    #[test]
    fn window_ending_before_its_start_crosses_midnight() {
        assert_eq!(
            running("Fri 22:00-06:00"),
            vec![(4 * DAY + 22 * 60, true), (5 * DAY + 6 * 60, false)]
        );
    }

    #[test]
    fn wrapping_day_range_includes_the_weekend() {
        let e = parse("Fri-Mon 10:00-11:00").unwrap();
        let days: Vec<_> = match e.windows[0] {
            Window::Daily { days, .. } => days.iter().collect(),
            _ => unreachable!(),
        };
        assert_eq!(days, vec![Weekday::Mon, Weekday::Fri, Weekday::Sat, Weekday::Sun]);
    }

    #[test]
    fn span_from_friday_evening_to_monday_morning() {
        let w = parse("Fri 20:00-Mon 08:00").unwrap().week();
        assert_eq!(w.running_minutes(), 4 * 60 + 2 * DAY + 8 * 60);
        assert!(w.get(6 * DAY + 12 * 60));
        assert!(w.get(8 * 60 - 1));
        assert!(!w.get(8 * 60));
    }

    #[test]
    fn several_groups_and_a_zone() {
        let e = parse("Mon-Fri 08:00-12:00 13:00-18:00 Sat 10:00-24:00 America/New_York").unwrap();
        assert_eq!(e.windows.len(), 3);
        assert_eq!(e.zone, Some(chrono_tz::America::New_York));
        assert_eq!(parse("Mon 00:00-24:00 UTC").unwrap().zone, Some(chrono_tz::UTC));
    }

    #[test]
    fn errors_name_the_token_and_column() {
        let e = parse("Mon-Fri 08:00-25:00").unwrap_err();
        assert_eq!((e.column, e.token.as_str()), (9, "08:00-25:00"));
        assert!(e.message.contains("hour 25"), "{e}");

        let e = parse("Mon-Fri 08:00-20:00 Mars/Base").unwrap_err();
        assert_eq!((e.column, e.token.as_str()), (21, "Mars/Base"));
        assert!(e.message.contains("time zone"));

        let e = parse("Mon-Fri 08:00-20:00;").unwrap_err();
        assert_eq!((e.column, e.token.as_str()), (20, ";"));

        let e = parse("Mnd 08:00-20:00").unwrap_err();
        assert_eq!((e.column, e.token.as_str()), (1, "Mnd"));

        let e = parse("Mon-Fri").unwrap_err();
        assert!(e.message.contains("expected a window"), "{e}");

        let e = parse("Mon 08:00-08:00").unwrap_err();
        assert!(e.message.contains("empty"), "{e}");

        let e = parse("Mon 24:00-08:00").unwrap_err();
        assert!(e.message.contains("24:00 may only end"), "{e}");

        let e = parse(&"Mon 08:00-20:00 ".repeat(20)).unwrap_err();
        assert!(e.message.contains("at most 256"), "{e}");

        let e = parse("Mon-Fri 08:00-Sat 10:00").unwrap_err();
        assert!(e.message.contains("single day"), "{e}");
    }

    #[test]
    fn non_ascii_letters_are_rejected_with_their_column() {
        let e = parse("Mon 08:00-20:00 Asia/Séoul").unwrap_err();
        assert_eq!(e.column, 23);
        assert_eq!(e.token, "é");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::fuzz_cases(5000)))]
        #[test]
        fn parsing_never_panics_and_errors_point_inside_the_input(s in "\\PC{0,300}") {
            if let Err(e) = parse(&s) {
                proptest::prop_assert!(e.column >= 1 && e.column <= s.chars().count().max(1) + 1, "{e}");
                proptest::prop_assert!(!e.message.is_empty());
            }
        }

        #[test]
        fn grammar_shaped_input_never_panics(s in "((Mon|Tue|Fri|Sun|Mon-Fri|Sat-Mon|xx)( [0-2]?[0-9]:[0-6][0-9]-[0-2]?[0-9]:[0-6][0-9]| 20:00-Mon| 2[0-4]:00){0,3} ){1,4}(UTC|Asia/Seoul|Foo)?") {
            if let Err(e) = parse(&s) {
                proptest::prop_assert!(e.column >= 1 && e.column <= s.chars().count().max(1) + 1, "{e}");
                proptest::prop_assert!(!e.message.is_empty());
            }
        }
    }
}
