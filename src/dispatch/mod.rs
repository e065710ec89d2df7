//! Dispatch: from matched lines to notifications on per-alarm queues
//! ([`router`]), and the per-alarm workers that deliver them ([`worker`]),
//! retrying failed deliveries by the alarm's [`retry`] policy.
//!
//! Each alarm has its own bounded queue and its own task, so a slow or failing
//! action never blocks reading, pass-through, or another alarm, and a flood
//! never grows memory without bound: overflow is counted and logged.
//!
//! What happens to a notification on the way (queued, dropped, suppressed,
//! delivered, retried, failed, handed over, …) is an internal event of
//! [`events`]: one call logs it and counts it in the alarm's [`AlarmStats`].

pub mod events;
pub mod outbox;
pub mod registry;
pub mod retry;
pub mod router;
pub mod worker;

use crate::internal_event;
use logalarm_plugin_api::Notification;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

/// One notification on an alarm's queue.
#[derive(Debug)]
pub struct Queued {
    /// The notification.
    pub note: Notification,
    /// When it was made (its line arrived, or it was handed over by an alarm
    /// whose delivery failed): the alarm's retry deadline counts from here.
    pub since: Instant,
    /// Its number on its alarm's [`outbox::Lane`] (set by the lane when
    /// offered): what the lane is told when it is finished.
    pub lane_seq: u64,
}

impl Queued {
    /// `note`, made at `since`, not yet offered to a lane.
    pub fn new(note: Notification, since: Instant) -> Self {
        Queued {
            note,
            since,
            lane_seq: 0,
        }
    }
}

/// Counters of one alarm, shared by the router and the alarm's worker, and
/// bumped only by the events of [`events`] (each counts what it logs). Read
/// them as one [`AlarmCounts`] with [`AlarmStats::counts`].
#[derive(Debug, Default)]
pub struct AlarmStats {
    /// Notifications put on the queue (in memory, or spilled to the outbox's
    /// journal).
    pub enqueued: AtomicU64,
    /// Of those, notifications that found the in-memory queue full and were
    /// kept in the outbox's journal only, to be read back in their turn.
    pub spilled: AtomicU64,
    /// Notifications a previous run left undelivered in the outbox, taken
    /// up at the start of this one (not counted in `enqueued`).
    pub restored: AtomicU64,
    /// Notifications the action delivered.
    pub delivered: AtomicU64,
    /// Notifications the action failed to deliver.
    pub failed: AtomicU64,
    /// Notifications dropped because the queue was full.
    pub overflow: AtomicU64,
    /// Messages dropped by the `alarm-freq` throttle.
    pub suppressed: AtomicU64,
    /// Events held back by a threshold or dropped by a cooldown.
    pub held: AtomicU64,
    /// Events taken into digests.
    pub batched: AtomicU64,
    /// Attempts beyond the first (each retry of a notification counts once).
    pub retried: AtomicU64,
    /// Failed notifications handed to the alarm's `on_failure` alarm (also
    /// counted in `failed`: they failed here).
    pub handed_over: AtomicU64,
    /// Notifications made for an absence: an expected line not seen, or an
    /// input silent, for its period.
    pub absences: AtomicU64,
    /// Keys its policies' state evicted (`max_keys` reached): their counts
    /// started again. Counted at the end of the run.
    pub evicted: AtomicU64,
    /// Events whose key template failed to render (counted under the empty
    /// key). Counted at the end of the run.
    pub key_errors: AtomicU64,
    /// Notifications made after a stop, when the worker took nothing more.
    pub after_stop: AtomicU64,
    /// Notifications left undelivered at the drain deadline (queued, or
    /// between attempts) and lost with the process (no outbox). Set once,
    /// at the end of the run.
    pub undelivered: AtomicU64,
    /// Notifications left undelivered at the end of the run and kept in the
    /// outbox's journal for the next start. Set once, at the end of the run.
    pub kept: AtomicU64,
}

/// The counters of one alarm at one moment ([`AlarmStats::counts`]), each
/// the [`AlarmStats`] counter of the same name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlarmCounts {
    /// Notifications put on the queue (handed-over ones included).
    pub enqueued: u64,
    /// Of those, notifications kept on disk only while the queue was full.
    pub spilled: u64,
    /// Notifications a previous run left in the outbox, taken up at start.
    pub restored: u64,
    /// Notifications the action delivered.
    pub delivered: u64,
    /// Notifications that failed for good.
    pub failed: u64,
    /// Notifications dropped on a full queue.
    pub overflow: u64,
    /// Events dropped by `alarm-freq`.
    pub suppressed: u64,
    /// Events held back by a threshold or dropped by a cooldown.
    pub held: u64,
    /// Events taken into digests.
    pub batched: u64,
    /// Attempts beyond the first.
    pub retried: u64,
    /// Failed notifications handed to the `on_failure` alarm.
    pub handed_over: u64,
    /// Notifications made for an absence (expected line, silent input).
    pub absences: u64,
    /// Policy keys evicted (`max_keys`).
    pub evicted: u64,
    /// Events whose key template failed to render.
    pub key_errors: u64,
    /// Notifications made after the worker stopped taking them.
    pub after_stop: u64,
    /// Notifications left undelivered at the drain deadline, and lost.
    pub undelivered: u64,
    /// Notifications left undelivered at the end, kept in the outbox.
    pub kept: u64,
}

impl AlarmStats {
    /// Adds one to a counter (for the events of [`events`]).
    pub fn bump(counter: &AtomicU64) {
        internal_event::add(counter, 1);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        internal_event::get(counter)
    }

    /// Every counter, read now. Each is read on its own (not one atomic
    /// snapshot): while the alarm runs, two may be a notification apart.
    pub fn counts(&self) -> AlarmCounts {
        let get = Self::get;
        AlarmCounts {
            enqueued: get(&self.enqueued),
            spilled: get(&self.spilled),
            restored: get(&self.restored),
            delivered: get(&self.delivered),
            failed: get(&self.failed),
            overflow: get(&self.overflow),
            suppressed: get(&self.suppressed),
            held: get(&self.held),
            batched: get(&self.batched),
            retried: get(&self.retried),
            handed_over: get(&self.handed_over),
            absences: get(&self.absences),
            evicted: get(&self.evicted),
            key_errors: get(&self.key_errors),
            after_stop: get(&self.after_stop),
            undelivered: get(&self.undelivered),
            kept: get(&self.kept),
        }
    }
}
