//! Which read positions are safe to save: those whose lines' alarms have all
//! been delivered.
//!
//! The engine records, after routing each batch of a followed file, the
//! batch's end offset and how many notifications each alarm had been given by
//! then. Each alarm's worker delivers in queue order, so once every alarm has
//! finished (delivered or failed for good) that many, every alarm the batch
//! and the batches before it fired is done, and the offset may be saved. A
//! restart then resumes there: a line whose alarm was still queued when
//! logalarm died is read again, so no alarm is lost.
//!
//! A notification dropped on a full queue never finishes: positions stop at
//! the first drop (nothing later is recorded), so a restart reads the
//! dropped line again rather than take it as alarmed.

use super::events::CommitsHeld;
use crate::input::Mark;
use crate::internal_event::InternalEvent;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

/// What the router had offered one alarm when a batch was routed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offered {
    /// Notifications put on its queue: each finishes some day (delivered,
    /// or failed for good).
    pub queued: u64,
    /// Notifications that never will be delivered: dropped on a full queue
    /// (or made after its worker stopped taking any).
    pub lost: u64,
}

struct Entry {
    /// The newest position per file reached by the batches of this entry.
    marks: Vec<Mark>,
    /// Notifications queued per alarm when the last of those batches was routed.
    queued: Vec<u64>,
}

#[derive(Default)]
struct Pending {
    entries: VecDeque<Entry>,
    /// A notification was lost: no position is recorded from then on.
    held: bool,
}

/// How far one alarm's worker got: what the follower needs of the delivery
/// stage, so that inputs do not depend on it (the dispatch stage implements
/// it for its counters).
pub trait Progress: Send + Sync {
    /// Notifications finished so far: delivered, or failed for good.
    fn finished(&self) -> u64;
}

/// Positions waiting for their alarms, in routing order.
pub struct Commits {
    pending: Mutex<Pending>,
    stats: Vec<Arc<dyn Progress>>,
}

impl Commits {
    /// Commits over the alarms whose progress is `stats` (in plan order).
    pub fn new(stats: Vec<Arc<dyn Progress>>) -> Self {
        Commits {
            pending: Mutex::new(Pending::default()),
            stats,
        }
    }

    /// Records that a batch reaching `mark` was routed when each alarm had
    /// been offered `offered`. Called once per batch (not per line); batches
    /// that fired nothing new share the entry before them, so the queue holds
    /// at most one entry per distinct count.
    ///
    /// A notification lost by then (dropped on a full queue) never finishes,
    /// so neither this position nor any later one is ever safe: from the
    /// first loss on, nothing more is recorded (said once), and a restart
    /// reads again from the last position saved before it.
    pub fn record(&self, mark: Mark, offered: &[Offered]) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.held {
            return;
        }
        if offered.iter().any(|o| o.lost > 0) {
            pending.held = true;
            CommitsHeld.emit();
            return;
        }
        let queued: Vec<u64> = offered.iter().map(|o| o.queued).collect();
        if let Some(last) = pending.entries.back_mut()
            && last.queued == queued
        {
            match last.marks.iter_mut().find(|m| m.file == mark.file) {
                Some(m) => *m = mark,
                None => last.marks.push(mark),
            }
            return;
        }
        pending.entries.push_back(Entry {
            marks: vec![mark],
            queued,
        });
    }

    /// Whether positions wait for their alarms (the follower then looks
    /// again soon, to save them promptly once delivered).
    pub fn has_pending(&self) -> bool {
        let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        !pending.entries.is_empty()
    }

    /// Takes the positions whose alarms are all done, oldest first.
    pub fn take_done(&self) -> Vec<Mark> {
        let done: Vec<u64> = self.stats.iter().map(|s| s.finished()).collect();
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let mut marks = Vec::new();
        while let Some(first) = pending.entries.front() {
            if first.queued.iter().zip(&done).any(|(e, d)| d < e) {
                break;
            }
            if let Some(entry) = pending.entries.pop_front() {
                marks.extend(entry.marks);
            }
        }
        marks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::follow::identity::Tail;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Done(AtomicU64);
    impl Progress for Done {
        fn finished(&self) -> u64 {
            self.0.load(Ordering::Relaxed)
        }
    }

    #[test]
    fn positions_wait_for_their_alarms() {
        let done = Arc::new(Done(AtomicU64::new(0)));
        let c = Commits::new(vec![done.clone()]);
        let m = |file, offset| Mark {
            file,
            offset,
            tail: Tail::default(),
        };
        let q = |queued| [Offered { queued, lost: 0 }];
        c.record(m(1, 10), &q(0));
        c.record(m(2, 5), &q(0));
        c.record(m(1, 20), &q(2));
        c.record(m(1, 30), &q(2));
        assert!(c.has_pending());
        assert_eq!(c.take_done(), vec![m(1, 10), m(2, 5)]);
        done.0.store(1, Ordering::Relaxed);
        assert_eq!(c.take_done(), vec![]);
        done.0.store(2, Ordering::Relaxed);
        assert_eq!(c.take_done(), vec![m(1, 30)]);
        assert!(!c.has_pending());
    }

    #[test]
    fn a_lost_notification_holds_every_later_position() {
        let done = Arc::new(Done(AtomicU64::new(0)));
        let c = Commits::new(vec![done.clone(), done.clone()]);
        let m = |file, offset| Mark {
            file,
            offset,
            tail: Tail::default(),
        };
        let o = |queued, lost| Offered { queued, lost };
        c.record(m(1, 10), &[o(1, 0), o(0, 0)]);
        // The second alarm dropped one: this batch and every later one stay
        // unsaved, however many of the later ones are delivered.
        c.record(m(1, 20), &[o(2, 0), o(0, 1)]);
        c.record(m(1, 30), &[o(3, 0), o(0, 1)]);
        done.0.store(5, Ordering::Relaxed);
        assert_eq!(c.take_done(), vec![m(1, 10)]);
        c.record(m(1, 40), &[o(4, 0), o(1, 1)]);
        assert_eq!(c.take_done(), vec![]);
        assert!(!c.has_pending());
    }
}
