//! The allowed range of each numeric and duration setting, checked when the
//! config loads, so that a value out of range is a config error naming its
//! key, the range and the fix — never a panic, an allocation that aborts, or
//! a worker that dies at its first notification.
//!
//! Every period is at most [`MAX_PERIOD`] (365 days, see there why) by its
//! syntax ([`super::syntax::duration`], [`super::de::Period`]); a setting
//! that needs a narrower one says so with a [`Periods`]. Every count or size
//! has a [`Count`]: its bounds are set where the setting is read, each
//! chosen (and documented there and in the README) from what the value
//! costs — a queue slot, a buffer allocated up front, a key kept in memory.
//!
//! ```
//! use logalarm::component::range::Count;
//! const QUEUE: Count = Count::new(1, 1_048_576, "notifications");
//! assert_eq!(QUEUE.check(1024), Ok(1024));
//! assert_eq!(
//!     QUEUE.check(1u64 << 61).unwrap_err(),
//!     "2305843009213693952 is out of range; write a whole number from 1 to 1048576 (notifications)"
//! );
//! ```

pub use logalarm_plugin_api::{MAX_PERIOD, MAX_PERIOD_TEXT};
use std::time::Duration;

/// An inclusive range of whole numbers, with the unit its messages name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count {
    /// The least value allowed.
    pub min: u64,
    /// The greatest value allowed.
    pub max: u64,
    /// What is counted (`notifications`, `bytes`), for messages.
    pub unit: &'static str,
}

impl Count {
    /// The range `min..=max` of `unit`.
    pub const fn new(min: u64, max: u64, unit: &'static str) -> Count {
        Count { min, max, unit }
    }

    /// The fix every message of this range ends with.
    fn fix(&self) -> String {
        format!(
            "write a whole number from {} to {} ({})",
            self.min, self.max, self.unit
        )
    }

    /// `n` when it lies in the range.
    ///
    /// # Errors
    /// `N is out of range; write a whole number from MIN to MAX (UNIT)`.
    pub fn check<T>(&self, n: T) -> Result<T, String>
    where
        T: TryInto<u64> + Copy + std::fmt::Display,
    {
        match n.try_into() {
            Ok(v) if (self.min..=self.max).contains(&v) => Ok(n),
            _ => Err(format!("{n} is out of range; {}", self.fix())),
        }
    }

    /// Parses `text` (surrounding blanks dropped) as a number in the range.
    ///
    /// # Errors
    /// Not a whole number, or one out of the range; both with the range.
    pub fn parse<T>(&self, text: &str) -> Result<T, String>
    where
        T: TryFrom<u64> + Copy,
    {
        let text = text.trim();
        let n: u64 = match text.parse::<u64>() {
            Ok(n) => n,
            // Digits past u64: out of range, not malformed.
            Err(_) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(format!("{text} is out of range; {}", self.fix()));
            }
            Err(_) => return Err(format!("{text:?} is not a whole number; {}", self.fix())),
        };
        self.check(n)?;
        T::try_from(n).map_err(|_| format!("{n} is out of range; {}", self.fix()))
    }
}

/// An inclusive range of periods, within `0..=MAX_PERIOD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Periods {
    /// The shortest period allowed.
    pub min: Duration,
    /// The longest period allowed (at most [`MAX_PERIOD`]).
    pub max: Duration,
}

impl Periods {
    /// Any period up to [`MAX_PERIOD`], zero included.
    pub const ANY: Periods = Periods {
        min: Duration::ZERO,
        max: MAX_PERIOD,
    };

    /// `min..=MAX_PERIOD`.
    pub const fn at_least(min: Duration) -> Periods {
        Periods {
            min,
            max: MAX_PERIOD,
        }
    }

    /// `d` when it lies in the range.
    ///
    /// # Errors
    /// `D is out of range; write a period from MIN to MAX`.
    pub fn check(&self, d: Duration) -> Result<Duration, String> {
        if (self.min..=self.max).contains(&d) {
            Ok(d)
        } else {
            Err(format!(
                "{} is out of range; write a period from {} to {}",
                show(d),
                show(self.min),
                if self.max == MAX_PERIOD {
                    MAX_PERIOD_TEXT.to_owned()
                } else {
                    show(self.max)
                }
            ))
        }
    }

    /// Parses `text` as a period ([`super::syntax::duration`]) in the range.
    ///
    /// # Errors
    /// Not a period, or one out of the range; both with what to write.
    pub fn parse(&self, text: &str) -> Result<Duration, String> {
        self.check(super::syntax::duration(text)?)
    }
}

/// A period as configs write it (`0`, `10ms`, `1h 30m`).
fn show(d: Duration) -> String {
    if d.is_zero() {
        "0".to_owned()
    } else {
        humantime::format_duration(d).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        let c = Count::new(1, 100, "lines");
        assert_eq!(c.check(1u32), Ok(1));
        assert_eq!(c.check(100usize), Ok(100));
        assert_eq!(
            c.check(0u32).unwrap_err(),
            "0 is out of range; write a whole number from 1 to 100 (lines)"
        );
        assert_eq!(c.parse::<u32>(" 7 "), Ok(7));
        assert_eq!(
            c.parse::<u32>("99999999999999999999999").unwrap_err(),
            "99999999999999999999999 is out of range; write a whole number from 1 to 100 (lines)"
        );
        assert_eq!(
            c.parse::<u32>("-3").unwrap_err(),
            "\"-3\" is not a whole number; write a whole number from 1 to 100 (lines)"
        );
        // Negative numbers of a signed type are out of range, not a panic.
        assert!(c.check(-1i64).is_err());
    }

    #[test]
    fn periods() {
        let p = Periods::at_least(Duration::from_millis(10));
        assert_eq!(p.parse("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(
            p.parse("0").unwrap_err(),
            "0 is out of range; write a period from 10ms to 365d"
        );
        assert!(p.parse("400d").unwrap_err().contains("longer than 365d"));
        assert_eq!(Periods::ANY.check(MAX_PERIOD), Ok(MAX_PERIOD));
    }
}
