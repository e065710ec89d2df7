//! uWSGI's `alarm-freq`: an alarm drops a message identical to the last one it
//! fired if less than the period has passed since.
//!
//! Unlike uWSGI, which compares whole seconds (so a 3 s period lets a repeat
//! through after anything from 2 to 3 s), the period is measured on the
//! monotonic clock to the nanosecond. Dropped messages are counted, and the
//! count goes with *that message's* next notification, so a flood is visible,
//! not silent: `suppressed` always means "copies of this message dropped since
//! it was last sent" (the template's `count = 1 + suppressed`, the ` (N
//! identical suppressed)` of the `log`, `smtp` and `xmpp` actions).
//!
//! Only the last message is compared (uWSGI's rule), so copies are dropped only
//! while no other message came between. When another message passes while the
//! last one has drops pending, that count is parked under a hash of its
//! message, until the message passes again. At most [`PARKED_CAP`] messages
//! are parked; beyond that the oldest count is forgotten (the drops still
//! appear in the alarm's exit summary, `N suppressed by alarm-freq`). Two
//! messages whose 64-bit hashes collide (randomly keyed per alarm) would share
//! a parked count.
//!
//! The clock is passed in (`now`), so the logic is tested on a simulated clock.

use hashlink::LinkedHashMap;
use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant};

/// Most messages whose pending drop counts an alarm keeps while other messages
/// are sent (8 bytes of hash and 8 of count each, plus the map's own).
pub const PARKED_CAP: usize = 1024;

/// The throttle state of one alarm.
#[derive(Debug)]
pub struct Throttle {
    period: Duration,
    last: Option<(Vec<u8>, Instant)>,
    /// Copies of `last` dropped since it was last let through.
    suppressed: u64,
    /// Pending drop counts of earlier messages, by hash of the message;
    /// front = parked first.
    parked: LinkedHashMap<u64, u64>,
    hasher: RandomState,
}

impl Throttle {
    /// A throttle with `period` (`alarm-freq`); a zero period lets everything through.
    pub fn new(period: Duration) -> Self {
        Throttle {
            period,
            last: None,
            suppressed: 0,
            parked: LinkedHashMap::new(),
            hasher: RandomState::new(),
        }
    }

    /// Decides for `message` arriving at `now`: `Some(n)` lets it through, `n`
    /// being the copies of this message dropped since it was last let through;
    /// `None` drops it.
    pub fn admit(&mut self, message: &[u8], now: Instant) -> Option<u64> {
        if self.period.is_zero() {
            return Some(0);
        }
        let Some((last, at)) = &mut self.last else {
            self.last = Some((message.to_vec(), now));
            return Some(self.unpark(message));
        };
        if last.as_slice() == message {
            if now.saturating_duration_since(*at) < self.period {
                self.suppressed += 1;
                return None;
            }
            *at = now;
            return Some(std::mem::take(&mut self.suppressed));
        }
        // Another message: the last one's pending count waits for its return.
        // Hashing happens only here, when there is something to keep or to find.
        let pending = std::mem::take(&mut self.suppressed);
        if pending > 0 {
            let hash = self.hasher.hash_one(last.as_slice());
            Self::park(&mut self.parked, hash, pending);
        }
        last.clear();
        last.extend_from_slice(message);
        *at = now;
        Some(self.unpark(message))
    }

    /// Puts back a count taken by [`Throttle::admit`] for `message` whose
    /// notification was then lost (a full queue), so that message's next
    /// notification still reports it.
    pub fn give_back(&mut self, message: &[u8], suppressed: u64) {
        if suppressed == 0 {
            return;
        }
        match &self.last {
            Some((last, _)) if last.as_slice() == message => self.suppressed += suppressed,
            _ => {
                let hash = self.hasher.hash_one(message);
                Self::park(&mut self.parked, hash, suppressed);
            }
        }
    }

    /// Messages dropped and not yet reported with a notification, over all
    /// messages still remembered.
    pub fn pending(&self) -> u64 {
        self.suppressed + self.parked.values().sum::<u64>()
    }

    /// Adds `count` to the parked count of the message hashed to `hash`,
    /// forgetting the oldest parked count when the map is full.
    fn park(parked: &mut LinkedHashMap<u64, u64>, hash: u64, count: u64) {
        if let Some(held) = parked.get_mut(&hash) {
            *held += count;
            return;
        }
        if parked.len() >= PARKED_CAP {
            parked.pop_front();
        }
        parked.insert(hash, count);
    }

    /// Takes the parked count of `message`, if it has one.
    fn unpark(&mut self, message: &[u8]) -> u64 {
        if self.parked.is_empty() {
            return 0;
        }
        let hash = self.hasher.hash_one(message);
        self.parked.remove(&hash).unwrap_or(0)
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
        // B's notification does not carry A's drop: A's next one will.
        assert_eq!(t.admit(b"B", ms(3004)), Some(0));
        assert_eq!(t.pending(), 1);
        assert_eq!(t.admit(b"A", ms(3005)), Some(1));
        assert_eq!(t.pending(), 0);
    }

    #[test]
    fn the_count_goes_with_its_own_message() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut t = Throttle::new(Duration::from_secs(3));
        // A, A dropped, then B: B carries nothing.
        assert_eq!(t.admit(b"A", s(0)), Some(0));
        assert_eq!(t.admit(b"A", s(1)), None);
        assert_eq!(t.admit(b"B", s(2)), Some(0));
        // A after the period (and after B): it carries its own drop.
        assert_eq!(t.admit(b"A", s(10)), Some(1));
        // Counts of several messages wait side by side.
        assert_eq!(t.admit(b"A", s(11)), None);
        assert_eq!(t.admit(b"B", s(12)), Some(0));
        assert_eq!(t.admit(b"B", s(13)), None);
        assert_eq!(t.admit(b"B", s(14)), None);
        assert_eq!(t.admit(b"C", s(15)), Some(0));
        assert_eq!(t.pending(), 3);
        assert_eq!(t.admit(b"B", s(16)), Some(2));
        assert_eq!(t.admit(b"A", s(17)), Some(1));
        assert_eq!(t.pending(), 0);
    }

    #[test]
    fn given_back_counts_return_to_their_message() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut t = Throttle::new(Duration::from_secs(3));
        assert_eq!(t.admit(b"A", s(0)), Some(0));
        assert_eq!(t.admit(b"A", s(1)), None);
        assert_eq!(t.admit(b"B", s(2)), Some(0));
        assert_eq!(t.admit(b"A", s(10)), Some(1));
        // A's notification was lost: A is still the last message.
        t.give_back(b"A", 1);
        assert_eq!(t.admit(b"A", s(20)), Some(1));
        // Lost again, but B passed meanwhile: the count is parked for A.
        assert_eq!(t.admit(b"B", s(21)), Some(0));
        t.give_back(b"A", 1);
        assert_eq!(t.admit(b"B", s(30)), Some(0));
        assert_eq!(t.admit(b"A", s(31)), Some(1));
        t.give_back(b"A", 0);
        assert_eq!(t.pending(), 0);
    }

    #[test]
    fn parked_counts_are_bounded_oldest_forgotten_first() {
        let t0 = Instant::now();
        let s = |n: usize| t0 + Duration::from_secs(n as u64);
        let mut t = Throttle::new(Duration::from_secs(3600));
        let message = |i: usize| format!("message {i}").into_bytes();
        // Each of PARKED_CAP + 2 messages passes once and has one copy
        // dropped; each but the last is parked when the next one passes.
        let n = PARKED_CAP + 2;
        for i in 0..n {
            assert_eq!(t.admit(&message(i), s(2 * i)), Some(0));
            assert_eq!(t.admit(&message(i), s(2 * i + 1)), None);
        }
        // The first one's count was forgotten to make room; the last one's
        // is still with it.
        assert_eq!(t.parked.len(), PARKED_CAP);
        assert_eq!(t.pending(), PARKED_CAP as u64 + 1);
        let later = s(10 * n);
        assert_eq!(t.admit(&message(0), later), Some(0));
        // Parking the last message's count forgot the oldest one left.
        assert_eq!(t.admit(&message(n - 1), later), Some(1));
        assert_eq!(t.admit(&message(1), later), Some(0));
        assert_eq!(t.admit(&message(2), later), Some(1));
        assert_eq!(t.parked.len(), PARKED_CAP - 2);
        assert_eq!(t.pending(), PARKED_CAP as u64 - 2);
    }

    #[test]
    fn zero_disables() {
        let now = Instant::now();
        let mut t = Throttle::new(Duration::ZERO);
        assert_eq!(t.admit(b"A", now), Some(0));
        assert_eq!(t.admit(b"A", now), Some(0));
    }
}
