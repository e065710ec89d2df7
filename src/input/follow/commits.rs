//! Which read positions are safe to save: those whose lines' notifications
//! are all safe — delivered (or failed for good), or journaled durably in the
//! outbox.
//!
//! The engine records, after routing each batch of a followed file, the
//! batch's end offset and how many notifications each alarm had been offered
//! by then. Once every alarm's notifications are safe up to that many
//! ([`Progress`]), every alarm the batch and the batches before it fired is
//! safe, and the offset may be saved. A restart then resumes there: a line
//! whose alarm was still only in memory when logalarm died is read again, so
//! no alarm is lost.
//!
//! A notification dropped on a full queue is never safe: positions stop
//! before it, so a restart reads the dropped line again rather than take it
//! as alarmed.

use crate::input::Mark;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

struct Entry {
    /// The newest position per file reached by the batches of this entry.
    marks: Vec<Mark>,
    /// Notifications offered per alarm when the last of those batches was routed.
    offered: Vec<u64>,
}

/// How far one alarm's notifications are safe: what the follower needs of
/// the delivery stage, so that inputs do not depend on it (the dispatch
/// stage implements it for its lanes).
pub trait Progress: Send + Sync {
    /// Notifications safe so far, counted from the first offered: every one
    /// up to this is finished (delivered, or failed for good) or journaled
    /// durably. A dropped one never is, so the count stops before it.
    fn finished(&self) -> u64;
}

/// Positions waiting for their alarms, in routing order.
pub struct Commits {
    pending: Mutex<VecDeque<Entry>>,
    stats: Vec<Arc<dyn Progress>>,
}

impl Commits {
    /// Commits over the alarms whose progress is `stats` (in plan order).
    pub fn new(stats: Vec<Arc<dyn Progress>>) -> Self {
        Commits {
            pending: Mutex::new(VecDeque::new()),
            stats,
        }
    }

    /// Records that a batch reaching `mark` was routed when each alarm had
    /// been offered `offered` notifications. Called once per batch (not per
    /// line); batches that fired nothing new share the entry before them, so
    /// the queue holds at most one entry per distinct count.
    pub fn record(&self, mark: Mark, offered: Vec<u64>) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(last) = pending.back_mut()
            && last.offered == offered
        {
            match last.marks.iter_mut().find(|m| m.file == mark.file) {
                Some(m) => *m = mark,
                None => last.marks.push(mark),
            }
            return;
        }
        pending.push_back(Entry {
            marks: vec![mark],
            offered,
        });
    }

    /// Whether positions wait for their alarms (the follower then looks
    /// again soon, to save them promptly once safe).
    pub fn has_pending(&self) -> bool {
        let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        !pending.is_empty()
    }

    /// Takes the positions whose alarms are all safe, oldest first.
    pub fn take_done(&self) -> Vec<Mark> {
        let done: Vec<u64> = self.stats.iter().map(|s| s.finished()).collect();
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let mut marks = Vec::new();
        while let Some(first) = pending.front() {
            if first.offered.iter().zip(&done).any(|(e, d)| d < e) {
                break;
            }
            if let Some(entry) = pending.pop_front() {
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
            key: 0,
        };
        c.record(m(1, 10), vec![0]);
        c.record(m(2, 5), vec![0]);
        c.record(m(1, 20), vec![2]);
        c.record(m(1, 30), vec![2]);
        assert!(c.has_pending());
        assert_eq!(c.take_done(), vec![m(1, 10), m(2, 5)]);
        done.0.store(1, Ordering::Relaxed);
        assert_eq!(c.take_done(), vec![]);
        done.0.store(2, Ordering::Relaxed);
        assert_eq!(c.take_done(), vec![m(1, 30)]);
        assert!(!c.has_pending());
    }
}
