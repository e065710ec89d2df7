//! The times written in log lines, for `logalarm test`: replaying a log, the
//! policies' windows, periods and absences are measured on the lines' own
//! clock, so a day of log tested in a second decides what it decided live.
//!
//! A line's time is the timestamp it starts with (after an optional `[`), in
//! one of the forms logs use most (parsed with `jiff`'s strptime):
//!
//! | form | example |
//! |---|---|
//! | RFC 3339 / ISO 8601 | `2024-05-01T12:00:00.123Z`, `2024-05-01T12:00:00+02:00` |
//! | ISO without zone | `2024-05-01 12:00:00,123`, `2024-05-01T12:00:00` |
//! | BSD syslog (RFC 3164) | `Dec 10 06:55:46` (the year: this one) |
//! | Apache / ctime | `Sun Dec 04 04:47:44 2005` |
//!
//! Times without a zone are taken as UTC: only their differences matter.

use jiff::fmt::strtime::BrokenDownTime;
use std::time::{Duration, SystemTime};

/// The forms tried, most specific first.
const FORMATS: [&str; 7] = [
    "%Y-%m-%dT%H:%M:%S%.f%:z",
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S,%f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%a %b %d %H:%M:%S %Y",
    "%b %e %H:%M:%S",
];

/// Reads the timestamps lines start with.
#[derive(Debug)]
pub struct LineClock {
    /// The year of timestamps that have none (BSD syslog).
    year: i16,
    /// The form that worked last: tried first (a log keeps one form).
    last: usize,
}

impl Default for LineClock {
    fn default() -> Self {
        Self::new()
    }
}

impl LineClock {
    /// A clock taking this year for timestamps without one.
    pub fn new() -> Self {
        let year = jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .year();
        LineClock { year, last: 0 }
    }

    /// The time `line` starts with, if it starts with one of the forms.
    pub fn time_of(&mut self, line: &[u8]) -> Option<SystemTime> {
        let text = line.strip_prefix(b"[").unwrap_or(line);
        let text = &text[..text.len().min(64)];
        let order =
            std::iter::once(self.last).chain((0..FORMATS.len()).filter(|&i| i != self.last));
        for i in order {
            if let Some(t) = self.parse(FORMATS[i], text) {
                self.last = i;
                return Some(t);
            }
        }
        None
    }

    fn parse(&self, format: &str, text: &[u8]) -> Option<SystemTime> {
        let (mut tm, _) = BrokenDownTime::parse_prefix(format, text).ok()?;
        if tm.year().is_none() {
            tm.set_year(Some(self.year)).ok()?;
        }
        let ts = match tm.offset() {
            Some(_) => tm.to_timestamp().ok()?,
            None => tm
                .to_datetime()
                .ok()?
                .to_zoned(jiff::tz::TimeZone::UTC)
                .ok()?
                .timestamp(),
        };
        let nanos = ts.as_nanosecond();
        let since = Duration::from_nanos(u64::try_from(nanos).ok()?);
        SystemTime::UNIX_EPOCH.checked_add(since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(t: SystemTime) -> f64 {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    }

    #[test]
    fn reads_the_common_forms() {
        let mut c = LineClock {
            year: 2024,
            last: 0,
        };
        let t = |c: &mut LineClock, s: &str| c.time_of(s.as_bytes()).map(secs);
        assert_eq!(t(&mut c, "2024-05-01T12:00:00Z x"), Some(1_714_564_800.0));
        assert_eq!(
            t(&mut c, "2024-05-01T14:00:00.5+02:00 x"),
            Some(1_714_564_800.5)
        );
        assert_eq!(
            t(&mut c, "2024-05-01 12:00:01,250 ERROR"),
            Some(1_714_564_801.25)
        );
        assert_eq!(
            t(&mut c, "2024-05-01 12:00:02 ERROR"),
            Some(1_714_564_802.0)
        );
        // BSD syslog: this year (here 2024), day space-padded.
        assert_eq!(
            t(&mut c, "May  1 12:00:03 host sshd[1]: x"),
            Some(1_714_564_803.0)
        );
        assert_eq!(
            t(&mut c, "Dec 10 06:55:46 LabSZ sshd[24200]: x"),
            Some(1_733_813_746.0)
        );
        assert_eq!(
            t(&mut c, "[Sun Dec 04 04:47:44 2005] [error] x"),
            Some(1_133_671_664.0)
        );
        assert_eq!(t(&mut c, "no time here"), None);
    }
}
