//! The internal events of the dispatch stage: what happens to an alarm's
//! notifications between the router and the action. Each [`InternalEvent::emit`]
//! writes the event's log line (when it has one) and counts it in the alarm's
//! [`AlarmStats`], so that the exit summary and the log never disagree.
//!
//! | event | counter | log |
//! |---|---|---|
//! | [`Enqueued`] | `enqueued` | — (one per notification) |
//! | [`Spilled`] | `spilled` | — (one per notification) |
//! | [`QueueOverflow`] | `overflow` | warn, at most once per report period |
//! | [`QueueRecovered`] | — (counted as overflow) | warn |
//! | [`QueueClosed`] | `after_stop` | debug |
//! | [`Suppressed`] | `suppressed` | — (one per event) |
//! | [`Held`] | `held` | — (one per event) |
//! | [`Batched`] | `batched` | — (one per event) |
//! | [`Absence`] | `absences` | debug |
//! | [`Delivered`] | `delivered` | info after failed attempts |
//! | [`AttemptFailed`] | `retried` | warn |
//! | [`DeliveryFailed`] | `failed` | warn |
//! | [`HandedOver`] | `handed_over` | info |
//! | [`FallbackFull`] | the fallback's `overflow` | warn |
//! | [`FallbackStopped`] | — | warn |
//! | [`KeysEvicted`] | `evicted` | warn |
//! | [`KeyTemplateFailed`] | `key_errors` | warn |
//! | [`Undelivered`] | `undelivered` | error |
//! | [`Restored`] | `restored` | info |
//! | [`WorkerTaskFailed`] | — | error |
//! | [`Kept`] | `kept` | info |
//!
//! Events of one notification or one event of the policy stage log nothing
//! routine at info and above (the summary has their counts); nothing here
//! fires per line.

use super::AlarmStats;
use crate::internal_event::{self, InternalEvent};
use logalarm_plugin_api::{ActionError, NoteId};
use std::time::Duration;

/// A duration for the log: `1s 500ms`, `0s` when zero.
pub fn human(d: Duration) -> String {
    // Below a millisecond says nothing to a reader.
    let ms = Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    if ms.is_zero() {
        "0s".into()
    } else {
        humantime::format_duration(ms).to_string()
    }
}

/// A notification was put on an alarm's queue (by the router, or handed over
/// by another alarm's worker).
pub struct Enqueued<'a> {
    /// The counters of the alarm whose queue took it.
    pub stats: &'a AlarmStats,
}

impl InternalEvent for Enqueued<'_> {
    fn emit(self) {
        AlarmStats::bump(&self.stats.enqueued);
    }
}

/// A notification was dropped: the alarm's queue was full.
pub struct QueueOverflow<'a> {
    /// The alarm's counters.
    pub stats: &'a AlarmStats,
    /// The alarm's name.
    pub alarm: &'a str,
    /// The queue's capacity, in notifications.
    pub capacity: usize,
    /// Whether the queue spills to the outbox's journal (then the drop is
    /// the disk quota's: `outbox_max_bytes`).
    pub journaled: bool,
    /// The report period, when this drop is to be logged.
    pub every: Duration,
    /// `Some(n)` to log now, `n` being the drops not yet reported (this one
    /// included); `None` to count only (a report was made within the period).
    pub report: Option<u64>,
}

impl InternalEvent for QueueOverflow<'_> {
    fn emit(self) {
        AlarmStats::bump(&self.stats.overflow);
        if let Some(dropped) = self.report {
            if self.journaled {
                tracing::warn!(
                    alarm = %self.alarm,
                    "queue full ({} notifications waiting) and the outbox past its quota (outbox_max_bytes): {dropped} dropped; reporting at most every {}s",
                    self.capacity,
                    self.every.as_secs()
                );
            } else {
                tracing::warn!(
                    alarm = %self.alarm,
                    "queue full ({} notifications waiting): {dropped} dropped (set --state-dir to spill to disk instead); reporting at most every {}s",
                    self.capacity,
                    self.every.as_secs()
                );
            }
        }
    }
}

/// A notification found its alarm's in-memory queue full and was kept in the
/// outbox's journal only, to be read back in its turn (also counted by
/// [`Enqueued`]).
pub struct Spilled<'a> {
    /// The alarm's counters.
    pub stats: &'a AlarmStats,
}

impl InternalEvent for Spilled<'_> {
    fn emit(self) {
        AlarmStats::bump(&self.stats.spilled);
    }
}

/// One delivery of an alarm with `concurrency` above 1 ended in a panic (a
/// bug of its action): its notification is left unfinished (with an outbox,
/// the next start delivers it again).
pub struct WorkerTaskFailed<'a> {
    /// The alarm's name.
    pub alarm: &'a str,
    /// How the task ended.
    pub error: &'a tokio::task::JoinError,
}

impl InternalEvent for WorkerTaskFailed<'_> {
    fn emit(self) {
        tracing::error!(alarm = %self.alarm, "a delivery failed: {}", self.error);
    }
}

/// A previous run left notifications of the alarm undelivered in the outbox:
/// this run delivers them first.
pub struct Restored<'a> {
    /// The alarm's counters.
    pub stats: &'a AlarmStats,
    /// The alarm's name.
    pub alarm: &'a str,
    /// How many.
    pub count: u64,
}

impl InternalEvent for Restored<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.restored, self.count);
        tracing::info!(
            alarm = %self.alarm,
            "{} notifications left undelivered by the previous run: delivering them first",
            self.count
        );
    }
}

/// Notifications of the alarm were not delivered by the end of the run (the
/// drain deadline, or a second stop signal): they stay in the outbox's
/// journal and the next start delivers them.
pub struct Kept<'a> {
    /// The alarm's counters.
    pub stats: &'a AlarmStats,
    /// The alarm's name.
    pub alarm: &'a str,
    /// Notifications left.
    pub count: u64,
}

impl InternalEvent for Kept<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.kept, self.count);
        tracing::info!(
            alarm = %self.alarm,
            "{} notifications not delivered yet: kept in the outbox for the next start",
            self.count
        );
    }
}

/// An alarm's queue took a notification again after drops not yet reported
/// (already counted by [`QueueOverflow`]: this event only reports them).
pub struct QueueRecovered<'a> {
    /// The alarm's name.
    pub alarm: &'a str,
    /// Drops since the last report.
    pub dropped: u64,
}

impl InternalEvent for QueueRecovered<'_> {
    fn emit(self) {
        tracing::warn!(
            alarm = %self.alarm,
            "queue has room again; {} more notifications were dropped while it was full",
            self.dropped
        );
    }
}

/// A notification was made after the alarm's worker stopped taking any (a
/// line read after the stop).
pub struct QueueClosed<'a> {
    /// The alarm's counters.
    pub stats: &'a AlarmStats,
    /// The alarm's name.
    pub alarm: &'a str,
}

impl InternalEvent for QueueClosed<'_> {
    fn emit(self) {
        AlarmStats::bump(&self.stats.after_stop);
        tracing::debug!(alarm = %self.alarm, "stopping; a line read after the stop is not alarmed");
    }
}

/// An event was dropped by `alarm-freq` (the same message within its period).
/// Not logged: its count goes into the next notification of that message and
/// into the summary.
pub struct Suppressed<'a> {
    /// The alarm's counters.
    pub stats: &'a AlarmStats,
}

impl InternalEvent for Suppressed<'_> {
    fn emit(self) {
        AlarmStats::bump(&self.stats.suppressed);
    }
}

/// An event was held back by a threshold or dropped by a cooldown. Not
/// logged (`logalarm test` shows each decision); counted for the summary.
pub struct Held<'a> {
    /// The alarm's counters.
    pub stats: &'a AlarmStats,
}

impl InternalEvent for Held<'_> {
    fn emit(self) {
        AlarmStats::bump(&self.stats.held);
    }
}

/// An event was taken into a digest. Not logged (the digest reports it);
/// counted for the summary.
pub struct Batched<'a> {
    /// The alarm's counters.
    pub stats: &'a AlarmStats,
}

impl InternalEvent for Batched<'_> {
    fn emit(self) {
        AlarmStats::bump(&self.stats.batched);
    }
}

/// A notification was made for an absence: an expected line not seen, or an
/// input (or every input) silent, for its period.
pub struct Absence<'a> {
    /// The alarm's counters.
    pub stats: &'a AlarmStats,
    /// The alarm's name.
    pub alarm: &'a str,
    /// What is absent, as the notification says it.
    pub message: &'a [u8],
}

impl InternalEvent for Absence<'_> {
    fn emit(self) {
        AlarmStats::bump(&self.stats.absences);
        tracing::debug!(
            alarm = %self.alarm,
            "{}",
            String::from_utf8_lossy(self.message)
        );
    }
}

/// The action delivered a notification. Logged (info) only after failed
/// attempts, which were logged as warnings and need their outcome; a routine
/// success is the action's own debug line.
pub struct Delivered<'a> {
    /// The alarm's counters.
    pub stats: &'a AlarmStats,
    /// The alarm's name.
    pub alarm: &'a str,
    /// The notification.
    pub id: NoteId,
    /// The attempt that succeeded, from 1.
    pub attempt: u32,
    /// Time since the first attempt.
    pub elapsed: Duration,
}

impl InternalEvent for Delivered<'_> {
    fn emit(self) {
        AlarmStats::bump(&self.stats.delivered);
        if self.attempt > 1 {
            tracing::info!(
                alarm = %self.alarm, id = %self.id,
                "delivered at attempt {}, {} after the first",
                self.attempt,
                human(self.elapsed)
            );
        }
    }
}

/// An attempt failed and another is scheduled. Counted as a retry when
/// scheduled: a wait cut short by the drain deadline still counts, as the
/// warning said it would be tried.
pub struct AttemptFailed<'a> {
    /// The alarm's counters.
    pub stats: &'a AlarmStats,
    /// The alarm's name.
    pub alarm: &'a str,
    /// The notification.
    pub id: NoteId,
    /// The attempt that failed, from 1.
    pub attempt: u32,
    /// Attempts allowed in all.
    pub attempts: u32,
    /// Why it failed.
    pub error: &'a ActionError,
    /// The wait before the next attempt.
    pub wait: Duration,
}

impl InternalEvent for AttemptFailed<'_> {
    fn emit(self) {
        AlarmStats::bump(&self.stats.retried);
        // A failure, even when retried: warn, as failures are.
        tracing::warn!(
            alarm = %self.alarm, id = %self.id,
            "attempt {} of {} failed: {}; next in {}",
            self.attempt,
            self.attempts,
            self.error,
            human(self.wait)
        );
    }
}

/// A notification failed for good (after its attempts, or at once).
pub struct DeliveryFailed<'a> {
    /// The alarm's counters.
    pub stats: &'a AlarmStats,
    /// The alarm's name.
    pub alarm: &'a str,
    /// The notification.
    pub id: NoteId,
    /// What happened: `delivery failed: …` or `not tried: …`.
    pub text: &'a str,
}

impl InternalEvent for DeliveryFailed<'_> {
    fn emit(self) {
        tracing::warn!(alarm = %self.alarm, id = %self.id, "{}", self.text);
        AlarmStats::bump(&self.stats.failed);
    }
}

/// A failed notification was queued for the alarm's `on_failure` alarm (the
/// fallback's [`Enqueued`] is its own event).
pub struct HandedOver<'a> {
    /// The failing alarm's counters.
    pub stats: &'a AlarmStats,
    /// The failing alarm's name.
    pub alarm: &'a str,
    /// The notification.
    pub id: NoteId,
    /// The `on_failure` alarm's name.
    pub to: &'a str,
}

impl InternalEvent for HandedOver<'_> {
    fn emit(self) {
        AlarmStats::bump(&self.stats.handed_over);
        tracing::info!(
            alarm = %self.alarm, id = %self.id,
            "handed to on_failure alarm {}", self.to
        );
    }
}

/// A failed notification was not handed over: the `on_failure` alarm's
/// queue was full. Counted as that alarm's overflow.
pub struct FallbackFull<'a> {
    /// The `on_failure` alarm's counters.
    pub fallback: &'a AlarmStats,
    /// The failing alarm's name.
    pub alarm: &'a str,
    /// The notification.
    pub id: NoteId,
    /// The `on_failure` alarm's name.
    pub to: &'a str,
    /// Its queue's capacity.
    pub capacity: usize,
}

impl InternalEvent for FallbackFull<'_> {
    fn emit(self) {
        AlarmStats::bump(&self.fallback.overflow);
        tracing::warn!(
            alarm = %self.alarm, id = %self.id,
            "on_failure alarm {} has a full queue ({} waiting): dropped",
            self.to,
            self.capacity
        );
    }
}

/// A failed notification was not handed over: the `on_failure` alarm's
/// worker had stopped (only while stopping).
pub struct FallbackStopped<'a> {
    /// The failing alarm's name.
    pub alarm: &'a str,
    /// The notification.
    pub id: NoteId,
    /// The `on_failure` alarm's name.
    pub to: &'a str,
}

impl InternalEvent for FallbackStopped<'_> {
    fn emit(self) {
        tracing::warn!(
            alarm = %self.alarm, id = %self.id,
            "on_failure alarm {} has stopped: not handed over", self.to
        );
    }
}

/// The alarm's policies evicted keys from their state (`max_keys`) during
/// the run: reported once, at the end, with the total.
pub struct KeysEvicted<'a> {
    /// The alarm's counters.
    pub stats: &'a AlarmStats,
    /// The alarm's name.
    pub alarm: &'a str,
    /// Keys evicted.
    pub count: u64,
}

impl InternalEvent for KeysEvicted<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.evicted, self.count);
        tracing::warn!(
            alarm = %self.alarm,
            "{} keys were evicted from its policies' state (max_keys reached): their counts started again",
            self.count
        );
    }
}

/// Events of the alarm had a key template that failed to render during the
/// run: reported once, at the end, with the total.
pub struct KeyTemplateFailed<'a> {
    /// The alarm's counters.
    pub stats: &'a AlarmStats,
    /// The alarm's name.
    pub alarm: &'a str,
    /// Events counted under the empty key.
    pub count: u64,
}

impl InternalEvent for KeyTemplateFailed<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.key_errors, self.count);
        tracing::warn!(
            alarm = %self.alarm,
            "{} events had a key template that failed to render: they were counted under the empty key",
            self.count
        );
    }
}

/// Notifications of the alarm were still queued or between attempts at the
/// drain deadline: they are not delivered.
pub struct Undelivered<'a> {
    /// The alarm's counters.
    pub stats: &'a AlarmStats,
    /// The alarm's name.
    pub alarm: &'a str,
    /// Notifications left.
    pub count: u64,
    /// The drain deadline.
    pub deadline: Duration,
}

impl InternalEvent for Undelivered<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.undelivered, self.count);
        tracing::error!(
            alarm = %self.alarm,
            "{} notifications not delivered within the drain deadline of {}",
            self.count,
            humantime::format_duration(self.deadline)
        );
    }
}
