//! Dispatch: from matched lines to notifications on per-alarm queues
//! ([`router`]), and the per-alarm workers that deliver them ([`worker`]),
//! retrying failed deliveries by the alarm's [`retry`] policy.
//!
//! Each alarm has its own bounded queue and its own task, so a slow or failing
//! action never blocks reading, pass-through, or another alarm, and a flood
//! never grows memory without bound: overflow is counted and logged.

pub mod registry;
pub mod retry;
pub mod router;
pub mod worker;

use logalarm_plugin_api::Notification;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// One notification on an alarm's queue.
#[derive(Debug)]
pub struct Queued {
    /// The notification.
    pub note: Notification,
    /// When it was made (its line arrived, or it was handed over by an alarm
    /// whose delivery failed): the alarm's retry deadline counts from here.
    pub since: Instant,
}

/// Counters of one alarm, shared by the router and the alarm's worker.
#[derive(Debug, Default)]
pub struct AlarmStats {
    /// Notifications put on the queue.
    pub enqueued: AtomicU64,
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
}

/// The follower saves a file's read position once the alarms of its lines
/// are finished ([`crate::input::follow::commits`]).
impl crate::input::follow::commits::Progress for AlarmStats {
    fn finished(&self) -> u64 {
        Self::get(&self.delivered) + Self::get(&self.failed)
    }
}

impl AlarmStats {
    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Notifications queued but neither delivered nor failed: queued, or being
    /// tried or waiting for their next attempt.
    pub fn pending(&self) -> u64 {
        Self::get(&self.enqueued)
            .saturating_sub(Self::get(&self.delivered) + Self::get(&self.failed))
    }
}
