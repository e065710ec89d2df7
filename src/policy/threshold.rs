//! Threshold: an alarm fires only when `count` events of one key arrived
//! within `window` (the Heroku dyno monitor; fail2ban's `maxretry` within
//! `findtime`), so one failed login is noise and five from one IP in a minute
//! is an attack.
//!
//! The window slides: the event that makes the key's last `count` events span
//! at most `window` (an event exactly `window` old still counts) goes on, and
//! the key's history is cleared, so the next firing needs `count` new events.
//! Per key the memory is at most `count` timestamps (older ones can never
//! matter again), whatever the event rate; keys are bounded by
//! [`Keyed`](super::keys::Keyed).
//!
//! The clock is passed in (`now`), so the logic is tested on a simulated clock.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use logalarm::policy::threshold::Threshold;
//! let t0 = Instant::now();
//! let mut t = Threshold::new(3, Duration::from_secs(60), 1000);
//! assert_eq!(t.admit("1.2.3.4", t0), Err(1));
//! assert_eq!(t.admit("1.2.3.4", t0 + Duration::from_secs(30)), Err(2));
//! assert_eq!(t.admit("5.6.7.8", t0 + Duration::from_secs(31)), Err(1));
//! assert_eq!(t.admit("1.2.3.4", t0 + Duration::from_secs(60)), Ok(()));
//! assert_eq!(t.admit("1.2.3.4", t0 + Duration::from_secs(61)), Err(1));
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::keys::Keyed;

/// The threshold state of one alarm: per key, the times of its recent events.
#[derive(Debug)]
pub struct Threshold {
    count: u32,
    window: Duration,
    keys: Keyed<VecDeque<Instant>>,
}

impl Threshold {
    /// A threshold of `count` events (0 is taken as 1: every event goes on)
    /// within `window`, remembering at most `max_keys` keys.
    pub fn new(count: u32, window: Duration, max_keys: usize) -> Self {
        Threshold {
            count: count.max(1),
            window,
            keys: Keyed::new(max_keys),
        }
    }

    /// Counts one event of `key` at `now`.
    ///
    /// `Ok(())` = reached: the event goes on (and the key starts over);
    /// `Err(seen)` = held back, `seen` events of this key within the window so
    /// far (this one included; `seen < count`).
    ///
    /// Allocates only for a key not held yet (its name and room for `count`
    /// timestamps).
    pub fn admit(&mut self, key: &str, now: Instant) -> Result<(), u32> {
        let count = self.count as usize;
        let window = self.window;
        let times = self.keys.entry(key, || VecDeque::with_capacity(count));
        while let Some(&oldest) = times.front() {
            if now.saturating_duration_since(oldest) > window {
                times.pop_front();
            } else {
                break;
            }
        }
        if times.len() + 1 >= count {
            times.clear();
            return Ok(());
        }
        times.push_back(now);
        // `times.len() < count`, a u32.
        Err(u32::try_from(times.len()).unwrap_or(u32::MAX))
    }

    /// Drops the keys none of whose events is within the window at `now`
    /// (they would start from zero anyway); call it now and then (on a tick)
    /// so that idle keys do not hold memory until evicted.
    pub fn expire(&mut self, now: Instant) {
        let window = self.window;
        self.keys.retain(|_, times| {
            times
                .back()
                .is_some_and(|&last| now.saturating_duration_since(last) <= window)
        });
    }

    /// Keys held now.
    pub fn keys(&self) -> usize {
        self.keys.len()
    }

    /// Keys evicted so far because more than `max_keys` were counting at once
    /// (their partial counts are lost: an attacker spreading over more keys
    /// than `max_keys` can stay below the threshold; the count shows it).
    pub fn evicted(&self) -> u64 {
        self.keys.evicted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_secs(n)
    }

    #[test]
    fn fires_on_the_count_th_event_within_the_window_and_starts_over() {
        let t0 = Instant::now();
        let mut t = Threshold::new(3, Duration::from_secs(10), 100);
        let got: Vec<Result<(), u32>> = [0, 1, 2, 3, 4, 5, 6]
            .into_iter()
            .map(|s| t.admit("k", secs(t0, s)))
            .collect();
        assert_eq!(
            got,
            [Err(1), Err(2), Ok(()), Err(1), Err(2), Ok(()), Err(1)]
        );
    }

    #[test]
    fn window_edge_is_inclusive() {
        let t0 = Instant::now();
        let w = Duration::from_secs(10);
        let mut t = Threshold::new(2, w, 100);
        assert_eq!(t.admit("k", t0), Err(1));
        // Exactly `window` later: the two events span exactly the window.
        assert_eq!(t.admit("k", t0 + w), Ok(()));
        assert_eq!(t.admit("k", secs(t0, 20)), Err(1));
        // One nanosecond beyond: the first has left the window.
        assert_eq!(t.admit("k", secs(t0, 30) + Duration::from_nanos(1)), Err(1));
    }

    #[test]
    fn old_events_slide_out() {
        let t0 = Instant::now();
        let mut t = Threshold::new(3, Duration::from_secs(10), 100);
        assert_eq!(t.admit("k", secs(t0, 0)), Err(1));
        assert_eq!(t.admit("k", secs(t0, 5)), Err(2));
        // At 12 the event at 0 is gone: 5 and 12 remain.
        assert_eq!(t.admit("k", secs(t0, 12)), Err(2));
        assert_eq!(t.admit("k", secs(t0, 14)), Ok(()));
        // At 40 all are gone.
        assert_eq!(t.admit("k", secs(t0, 40)), Err(1));
    }

    #[test]
    fn keys_count_separately() {
        let t0 = Instant::now();
        let mut t = Threshold::new(2, Duration::from_secs(10), 100);
        assert_eq!(t.admit("a", t0), Err(1));
        assert_eq!(t.admit("b", t0), Err(1));
        assert_eq!(t.admit("", t0), Err(1));
        assert_eq!(t.admit("b", secs(t0, 1)), Ok(()));
        assert_eq!(t.admit("a", secs(t0, 2)), Ok(()));
        assert_eq!(t.keys(), 3);
    }

    #[test]
    fn count_one_passes_everything() {
        let t0 = Instant::now();
        let mut t = Threshold::new(1, Duration::from_secs(10), 10);
        assert_eq!(t.admit("k", t0), Ok(()));
        assert_eq!(t.admit("k", t0), Ok(()));
        let mut z = Threshold::new(0, Duration::ZERO, 10);
        assert_eq!(z.admit("k", t0), Ok(()));
    }

    #[test]
    fn memory_per_key_is_bounded_by_count() {
        let t0 = Instant::now();
        // Events 1 s apart in a 2 s window never reach 5: the key keeps at
        // most the 3 within the window, however many arrive.
        let mut t = Threshold::new(5, Duration::from_secs(2), 10);
        for s in 0..100_000 {
            assert!(t.admit("k", secs(t0, s)).is_err());
        }
        let times = t.keys.get_mut("k").unwrap();
        assert_eq!(times.len(), 3);
        assert!(times.capacity() < 16);
    }

    #[test]
    fn admitting_a_known_key_does_not_allocate() {
        let t0 = Instant::now();
        let mut t = Threshold::new(4, Duration::from_secs(10), 10);
        t.admit("k", t0).unwrap_err();
        let n = crate::policy::keys::alloc_count::allocations(|| {
            for s in 0..10_000 {
                let _ = t.admit("k", secs(t0, s));
            }
        });
        assert_eq!(n, 0);
    }

    #[test]
    fn evictions_are_counted_and_lose_the_partial_count() {
        let t0 = Instant::now();
        let mut t = Threshold::new(2, Duration::from_secs(10), 2);
        assert_eq!(t.admit("a", t0), Err(1));
        assert_eq!(t.admit("b", t0), Err(1));
        assert_eq!(t.admit("c", t0), Err(1)); // evicts a
        assert_eq!(t.evicted(), 1);
        assert_eq!(t.admit("a", t0), Err(1)); // evicts b; a starts over
        assert_eq!(t.admit("c", t0), Ok(()));
        assert_eq!((t.evicted(), t.keys()), (2, 2));
    }

    #[test]
    fn expire_drops_idle_keys() {
        let t0 = Instant::now();
        let mut t = Threshold::new(3, Duration::from_secs(10), 100);
        t.admit("old", t0).unwrap_err();
        t.admit("new", secs(t0, 5)).unwrap_err();
        t.expire(secs(t0, 10));
        assert_eq!(t.keys(), 2);
        t.expire(secs(t0, 11));
        assert_eq!(t.keys(), 1);
        assert_eq!(t.admit("new", secs(t0, 12)), Err(2));
        assert_eq!(t.evicted(), 0);
    }
}
