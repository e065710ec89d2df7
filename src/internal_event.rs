//! What every internal event is: a named type whose one [`InternalEvent::emit`]
//! writes logalarm's own log line *and* bumps its counter, so that the log,
//! the exit summary and (later) a metrics endpoint can never disagree (Vector's
//! model).
//!
//! Each stage owns its events, beside the code that has them:
//! `dispatch::events` (queues, deliveries, policies), `input::events` and the
//! inputs' own `events` modules (files, sockets, the wrapped process), and
//! `engine::events` (the run's life). Their counters are plain atomics owned
//! by the component (an alarm's `AlarmStats`, an input's `InputStats`), read
//! as one structure by the engine's `Summary`.
//!
//! Events fire per notification or per incident at most, never per line: the
//! line path has no counter and no log call.

use std::sync::atomic::{AtomicU64, Ordering};

/// An internal event: logs (when it has a line to log) and counts, in one call.
pub trait InternalEvent {
    /// Writes the event's log line, if any, and adds it to its counters.
    fn emit(self);
}

/// Adds `n` to `counter`. Relaxed: counters are read for reports, never to
/// order other memory accesses (the follower's progress reads them too, and
/// needs only that each count is eventually seen).
pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Reads `counter`.
pub fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}
