//! Cooldown per key: at most `max` notifications per key per `period`
//! (Cyclops' per-key report limit, the Heroku dyno monitor's topic cooldown).
//! The rest are suppressed and counted, and the count goes out with the next
//! notification of that key, so a flood shows as "… and 9,999 more", not as
//! 10,000 mails nor as silence.
//!
//! The period is a fixed window per key: it starts at the first event that
//! passes while the key has no period running, and ends `period` later (an
//! event exactly `period` after the start opens a new one). Keys are bounded
//! by [`Keyed`](super::keys::Keyed).
//!
//! The clock is passed in (`now`), so the logic is tested on a simulated clock.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use logalarm::policy::cooldown::Cooldown;
//! let t0 = Instant::now();
//! let mut c = Cooldown::new(1, Duration::from_secs(60), 1000);
//! assert_eq!(c.admit("db1", t0), Ok(0));
//! assert_eq!(c.admit("db1", t0 + Duration::from_secs(1)), Err(1));
//! assert_eq!(c.admit("db2", t0 + Duration::from_secs(2)), Ok(0));
//! assert_eq!(c.admit("db1", t0 + Duration::from_secs(3)), Err(2));
//! assert_eq!(c.admit("db1", t0 + Duration::from_secs(60)), Ok(2));
//! ```

use std::time::{Duration, Instant};

use super::keys::Keyed;

/// The cooldown of one key.
#[derive(Debug)]
struct KeyState {
    /// When the running period started.
    start: Instant,
    /// Events passed in the running period (≤ max).
    passed: u32,
    /// Events suppressed in the running period.
    in_period: u64,
    /// Events suppressed since the key's last notification, not yet reported.
    unreported: u64,
}

/// The cooldown state of one alarm.
#[derive(Debug)]
pub struct Cooldown {
    max: u32,
    period: Duration,
    keys: Keyed<KeyState>,
}

impl Cooldown {
    /// At most `max` events (0 is taken as 1) per key per `period`,
    /// remembering at most `max_keys` keys.
    pub fn new(max: u32, period: Duration, max_keys: usize) -> Self {
        Cooldown {
            max: max.max(1),
            period,
            keys: Keyed::new(max_keys),
        }
    }

    /// Decides for one event of `key` at `now`.
    ///
    /// `Ok(suppressed_before)` = passes, carrying how many of this key were
    /// suppressed since its previous notification (the caller puts it in the
    /// notification, and gives it back with [`Cooldown::give_back`] if the
    /// notification is lost); `Err(n)` = suppressed (`n` = suppressed so far
    /// in this period, this one included).
    ///
    /// Allocates only for a key not held yet.
    pub fn admit(&mut self, key: &str, now: Instant) -> Result<u64, u64> {
        let (max, period) = (self.max, self.period);
        let st = self.keys.entry(key, || KeyState {
            start: now,
            passed: 0,
            in_period: 0,
            unreported: 0,
        });
        if st.passed == 0 || now.saturating_duration_since(st.start) >= period {
            st.start = now;
            st.passed = 0;
            st.in_period = 0;
        }
        if st.passed < max {
            st.passed += 1;
            return Ok(std::mem::take(&mut st.unreported));
        }
        st.in_period += 1;
        st.unreported += 1;
        Err(st.in_period)
    }

    /// Gives back a count taken by [`Cooldown::admit`] (its `Ok` value) whose
    /// notification was then lost (full queue), so that the key's next
    /// notification still reports it. The lost notification keeps its place
    /// among the `max` of the period (it was decided, not delivered). A key
    /// evicted in between (not possible when called right after `admit`, as
    /// the router does) loses the count.
    pub fn give_back(&mut self, key: &str, suppressed: u64) {
        if let Some(st) = self.keys.get_mut(key) {
            st.unreported += suppressed;
        }
    }

    /// Drops the keys whose period has ended by `now`, first calling `lost`
    /// with each dropped key that still had suppressed events nobody was told
    /// of (no later event of that key came to carry them), so the caller can
    /// report or count them. Call it now and then (on a tick) so that idle
    /// keys do not hold memory until evicted.
    pub fn expire(&mut self, now: Instant, mut lost: impl FnMut(&str, u64)) {
        let period = self.period;
        self.keys.retain(|key, st| {
            if now.saturating_duration_since(st.start) < period {
                return true;
            }
            if st.unreported > 0 {
                lost(key, st.unreported);
            }
            false
        });
    }

    /// Suppressed events of `key` not yet reported (0 for a key not held).
    pub fn pending(&mut self, key: &str) -> u64 {
        self.keys.get_mut(key).map_or(0, |st| st.unreported)
    }

    /// Keys held now.
    pub fn keys(&self) -> usize {
        self.keys.len()
    }

    /// Keys evicted so far because more than `max_keys` were cooling down at
    /// once (an evicted key's next event passes at once, and its unreported
    /// count is lost).
    pub fn evicted(&self) -> u64 {
        self.keys.evicted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_millis(n)
    }

    #[test]
    fn max_per_period_then_the_count_rides_on_the_next() {
        let t0 = Instant::now();
        let mut c = Cooldown::new(2, Duration::from_secs(10), 100);
        let got: Vec<Result<u64, u64>> = [0, 1000, 2000, 3000, 9999, 10_000, 10_001, 10_002]
            .into_iter()
            .map(|m| c.admit("k", ms(t0, m)))
            .collect();
        assert_eq!(
            got,
            [
                Ok(0),
                Ok(0),
                Err(1),
                Err(2),
                Err(3),
                // Exactly `period` after the start: a new period.
                Ok(3),
                Ok(0),
                Err(1),
            ]
        );
        assert_eq!(c.pending("k"), 1);
    }

    #[test]
    fn the_period_starts_at_the_first_event_passed_when_none_runs() {
        let t0 = Instant::now();
        let mut c = Cooldown::new(1, Duration::from_secs(10), 100);
        assert_eq!(c.admit("k", ms(t0, 0)), Ok(0));
        // Long after: a new period from 25 s, not one aligned to 0/10/20.
        assert_eq!(c.admit("k", ms(t0, 25_000)), Ok(0));
        assert_eq!(c.admit("k", ms(t0, 34_999)), Err(1));
        assert_eq!(c.admit("k", ms(t0, 35_000)), Ok(1));
    }

    #[test]
    fn keys_cool_down_separately() {
        let t0 = Instant::now();
        let mut c = Cooldown::new(1, Duration::from_secs(10), 100);
        assert_eq!(c.admit("a", t0), Ok(0));
        assert_eq!(c.admit("b", t0), Ok(0));
        assert_eq!(c.admit("a", ms(t0, 1)), Err(1));
        assert_eq!(c.admit("a", ms(t0, 2)), Err(2));
        assert_eq!(c.admit("b", ms(t0, 3)), Err(1));
        assert_eq!(c.admit("a", ms(t0, 10_000)), Ok(2));
        assert_eq!(c.admit("b", ms(t0, 10_000)), Ok(1));
    }

    #[test]
    fn give_back_restores_the_count_for_the_next_notification() {
        let t0 = Instant::now();
        let mut c = Cooldown::new(1, Duration::from_secs(10), 100);
        assert_eq!(c.admit("k", t0), Ok(0));
        assert_eq!(c.admit("k", ms(t0, 1)), Err(1));
        assert_eq!(c.admit("k", ms(t0, 10_000)), Ok(1));
        // That notification was lost: its count goes with the next one.
        c.give_back("k", 1);
        assert_eq!(c.pending("k"), 1);
        assert_eq!(c.admit("k", ms(t0, 10_001)), Err(1));
        assert_eq!(c.admit("k", ms(t0, 20_000)), Ok(2));
        // Unknown keys are ignored.
        c.give_back("nope", 5);
        assert_eq!(c.keys(), 1);
    }

    #[test]
    fn expire_reports_unsent_counts() {
        let t0 = Instant::now();
        let mut c = Cooldown::new(1, Duration::from_secs(10), 100);
        c.admit("quiet", t0).unwrap();
        c.admit("noisy", t0).unwrap();
        c.admit("noisy", ms(t0, 1)).unwrap_err();
        c.admit("noisy", ms(t0, 2)).unwrap_err();
        c.admit("late", ms(t0, 5000)).unwrap();
        let mut lost = Vec::new();
        c.expire(ms(t0, 9999), |k, n| lost.push((k.to_owned(), n)));
        assert_eq!((c.keys(), lost.len()), (3, 0));
        c.expire(ms(t0, 10_000), |k, n| lost.push((k.to_owned(), n)));
        assert_eq!(lost, [("noisy".to_owned(), 2)]);
        assert_eq!(c.keys(), 1);
    }

    #[test]
    fn evictions_are_counted() {
        let t0 = Instant::now();
        let mut c = Cooldown::new(1, Duration::from_secs(10), 2);
        assert_eq!(c.admit("a", t0), Ok(0));
        assert_eq!(c.admit("b", t0), Ok(0));
        assert_eq!(c.admit("c", t0), Ok(0)); // evicts a
        assert_eq!(c.admit("a", t0), Ok(0)); // a starts over; evicts b
        assert_eq!(c.admit("c", t0), Err(1));
        assert_eq!((c.evicted(), c.keys()), (2, 2));
    }

    #[test]
    fn admitting_a_known_key_does_not_allocate() {
        let t0 = Instant::now();
        let mut c = Cooldown::new(2, Duration::from_secs(1), 10);
        c.admit("k", t0).unwrap();
        let n = crate::policy::keys::alloc_count::allocations(|| {
            for m in 0..10_000 {
                let _ = c.admit("k", ms(t0, m));
            }
        });
        assert_eq!(n, 0);
    }

    #[test]
    fn a_flood_on_one_key_is_counted_exactly() {
        let t0 = Instant::now();
        let mut c = Cooldown::new(3, Duration::from_secs(60), 10);
        let (mut passed, mut reported) = (0u64, 0u64);
        // 100,000 events, one per millisecond: 100 s, so periods start at 0
        // and 60 s, 3 pass in each.
        for m in 0..100_000 {
            if let Ok(n) = c.admit("k", ms(t0, m)) {
                passed += 1;
                reported += n;
            }
        }
        assert_eq!(passed, 6);
        assert_eq!(reported + c.pending("k"), 100_000 - 6);
        assert_eq!(reported, 60_000 - 3);
    }
}
