//! A week of local wall-clock minutes, each running or stopped.

use chrono::Datelike;
use chrono::{NaiveDateTime, Timelike, Weekday};

/// Minutes in a day.
pub const DAY: u32 = 24 * 60;
/// Minutes in a week.
pub const WEEK: u32 = 7 * DAY;
const WORDS: usize = (WEEK as usize).div_ceil(64);

/// The running minutes of a week in local wall-clock time, Monday 00:00 = minute 0.
///
/// A bit set of 10,080 minutes: windows that overlap merge by construction, and a
/// lookup is one shift.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct WeekMask {
    bits: [u64; WORDS],
}

impl std::fmt::Debug for WeekMask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WeekMask({} running minutes)", self.running_minutes())
    }
}

impl Default for WeekMask {
    fn default() -> Self {
        Self::stopped()
    }
}

impl WeekMask {
    /// A week with no running minute.
    #[must_use]
    pub fn stopped() -> Self {
        Self { bits: [0; WORDS] }
    }

    /// Marks `len` minutes from `start` (minute of week) as running, wrapping past Sunday.
    pub fn set_range(&mut self, start: u32, len: u32) {
        for i in 0..len.min(WEEK) {
            let m = ((start + i) % WEEK) as usize;
            self.bits[m / 64] |= 1 << (m % 64);
        }
    }

    /// Whether the minute of week `m` (taken modulo a week) is running.
    #[must_use]
    pub fn get(&self, m: u32) -> bool {
        let m = (m % WEEK) as usize;
        self.bits[m / 64] >> (m % 64) & 1 == 1
    }

    /// The complement: running where this is stopped.
    #[must_use]
    pub fn inverted(&self) -> Self {
        let mut out = Self::stopped();
        for m in 0..WEEK {
            if !self.get(m) {
                out.set_range(m, 1);
            }
        }
        out
    }

    /// How many minutes of the week are running.
    #[must_use]
    pub fn running_minutes(&self) -> u32 {
        self.bits.iter().map(|w| w.count_ones()).sum()
    }

    /// Minutes of the week at which the state differs from the minute before,
    /// with the state that begins there, in ascending order.
    #[must_use]
    pub fn changes(&self) -> Vec<(u32, bool)> {
        (0..WEEK)
            .filter(|&m| self.get(m) != self.get(m + WEEK - 1))
            .map(|m| (m, self.get(m)))
            .collect()
    }

    /// Whether a local wall-clock time falls in a running minute (the date is ignored).
    #[must_use]
    pub fn at(&self, local: NaiveDateTime) -> bool {
        self.get(minute_of_week(local))
    }
}

/// Minute of the week of a local time, Monday 00:00 = 0.
#[must_use]
pub fn minute_of_week(local: NaiveDateTime) -> u32 {
    local.weekday().num_days_from_monday() * DAY + local.hour() * 60 + local.minute()
}

/// The weekday of a minute of the week.
#[must_use]
pub fn weekday_of(m: u32) -> Weekday {
    Weekday::try_from(((m % WEEK) / DAY) as u8).expect("0..7 is a weekday")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_wrapping_past_sunday_marks_both_ends() {
        let mut w = WeekMask::stopped();
        w.set_range(WEEK - 10, 20);
        assert!(w.get(WEEK - 1));
        assert!(w.get(0));
        assert!(w.get(9));
        assert!(!w.get(10));
        assert_eq!(w.running_minutes(), 20);
        assert_eq!(w.changes(), vec![(10, false), (WEEK - 10, true)]);
    }

    #[test]
    fn inverting_twice_gives_the_same_week() {
        let mut w = WeekMask::stopped();
        w.set_range(480, 720);
        assert_eq!(w.inverted().inverted(), w);
        assert_eq!(w.inverted().running_minutes(), WEEK - 720);
    }
}
