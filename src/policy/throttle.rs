//! uWSGI's `alarm-freq`: an alarm drops a message identical to the last one it
//! fired if less than the period has passed since.
//!
//! Unlike uWSGI, which compares whole seconds (so a 3 s period lets a repeat
//! through after anything from 2 to 3 s), the period is measured on the
//! monotonic clock to the nanosecond. Dropped messages are counted, and the
//! alarm's next notification carries the count, so a flood is visible, not silent.
//!
//! The clock is passed in (`now`), so the logic is tested on a simulated clock.

use std::time::{Duration, Instant};

/// The throttle state of one alarm.
#[derive(Debug)]
pub struct Throttle {
    period: Duration,
    last: Option<(Vec<u8>, Instant)>,
    suppressed: u64,
}

impl Throttle {
    /// A throttle with `period` (`alarm-freq`); a zero period lets everything through.
    pub fn new(period: Duration) -> Self {
        Throttle {
            period,
            last: None,
            suppressed: 0,
        }
    }

    /// Decides for `message` arriving at `now`: `Some(n)` lets it through, `n`
    /// being the messages dropped since the previous one let through; `None`
    /// drops it.
    pub fn admit(&mut self, message: &[u8], now: Instant) -> Option<u64> {
        if self.period.is_zero() {
            return Some(0);
        }
        if let Some((last, at)) = &mut self.last {
            if last.as_slice() == message && now.saturating_duration_since(*at) < self.period {
                self.suppressed += 1;
                return None;
            }
            last.clear();
            last.extend_from_slice(message);
            *at = now;
        } else {
            self.last = Some((message.to_vec(), now));
        }
        Some(std::mem::take(&mut self.suppressed))
    }

    /// Puts back a count taken by [`Throttle::admit`] whose notification was then
    /// lost (a full queue), so the next notification still reports it.
    pub fn give_back(&mut self, suppressed: u64) {
        self.suppressed += suppressed;
    }

    /// Messages dropped since the last one let through (not yet reported).
    pub fn pending(&self) -> u64 {
        self.suppressed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_identical_messages_within_the_period_exactly() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut t = Throttle::new(Duration::from_secs(3));
        assert_eq!(t.admit(b"A", ms(0)), Some(0));
        assert_eq!(t.admit(b"A", ms(1000)), None);
        assert_eq!(t.admit(b"A", ms(2999)), None);
        assert_eq!(t.pending(), 2);
        // Exactly the period later is no longer "less than N seconds".
        assert_eq!(t.admit(b"A", ms(3000)), Some(2));
        // A different message always passes and resets the comparison.
        assert_eq!(t.admit(b"B", ms(3001)), Some(0));
        assert_eq!(t.admit(b"A", ms(3002)), Some(0));
        assert_eq!(t.admit(b"A", ms(3003)), None);
        assert_eq!(t.admit(b"B", ms(3004)), Some(1));
        // All 3 drops were reported (2 with the message at 3000 ms, 1 here).
        assert_eq!(t.pending(), 0);
    }

    #[test]
    fn zero_disables() {
        let now = Instant::now();
        let mut t = Throttle::new(Duration::ZERO);
        assert_eq!(t.admit(b"A", now), Some(0));
        assert_eq!(t.admit(b"A", now), Some(0));
    }
}
