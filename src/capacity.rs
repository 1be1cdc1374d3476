//! The size of an Auto Scaling group: min, max and desired capacity.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A group's min, max and desired capacity.
///
/// Written as `min=1 max=4 desired=2`, the form offhours keeps in its saved-size tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Capacity {
    /// Minimum size.
    pub min: i32,
    /// Maximum size.
    pub max: i32,
    /// Desired capacity.
    pub desired: i32,
}

impl Capacity {
    /// 0/0/0: scaled down.
    pub const ZERO: Capacity = Capacity {
        min: 0,
        max: 0,
        desired: 0,
    };

    /// A capacity, checked for `0 <= min <= desired <= max`.
    pub fn new(min: i32, max: i32, desired: i32) -> Result<Self, CapacityError> {
        let c = Capacity { min, max, desired };
        c.check()?;
        Ok(c)
    }

    fn check(self) -> Result<(), CapacityError> {
        if self.min < 0 || self.min > self.desired || self.desired > self.max {
            return Err(CapacityError(format!("{self}: need 0 <= min <= desired <= max")));
        }
        Ok(())
    }

    /// Whether this is 0/0/0.
    #[must_use]
    pub fn is_zero(self) -> bool {
        self == Self::ZERO
    }
}

impl fmt::Display for Capacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "min={} max={} desired={}", self.min, self.max, self.desired)
    }
}

/// A capacity string that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid capacity {0}; expected `min=N max=N desired=N`")]
pub struct CapacityError(String);

impl FromStr for Capacity {
    type Err = CapacityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (mut min, mut max, mut desired) = (None, None, None);
        for part in s.split([' ', ',']).filter(|p| !p.is_empty()) {
            let bad = || CapacityError(format!("`{s}` (at `{part}`)"));
            let (k, v) = part.split_once('=').ok_or_else(bad)?;
            let v: i32 = v.parse().map_err(|_| bad())?;
            let slot = match k {
                "min" => &mut min,
                "max" => &mut max,
                "desired" => &mut desired,
                _ => return Err(bad()),
            };
            if slot.replace(v).is_some() {
                return Err(bad());
            }
        }
        match (min, max, desired) {
            (Some(min), Some(max), Some(desired)) => Capacity::new(min, max, desired),
            _ => Err(CapacityError(format!("`{s}` (min, max and desired are all required)"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_round_trips_through_its_tag_form() {
        let c: Capacity = "min=1 max=4 desired=2".parse().unwrap();
        assert_eq!(
            c,
            Capacity {
                min: 1,
                max: 4,
                desired: 2
            }
        );
        assert_eq!(c.to_string().parse::<Capacity>().unwrap(), c);
        assert_eq!("desired=2,min=1,max=4".parse::<Capacity>().unwrap(), c);
    }

    #[test]
    fn inconsistent_or_partial_capacities_are_refused() {
        for bad in [
            "min=3 max=2 desired=2",
            "min=1 max=4",
            "min=1 max=4 desired=x",
            "min=-1 max=1 desired=0",
            "min=1 max=4 desired=2 min=1",
            "size=3",
        ] {
            assert!(bad.parse::<Capacity>().is_err(), "{bad}");
        }
    }
}
