//! The internal events of the run itself: stopping, end of input, a task of
//! the engine failing, and each alarm's totals at the end. They count nothing
//! of their own (the counters they report are the alarms' and the inputs');
//! they are events so that the run's log lines live in one place, beside the
//! stages' ([`crate::dispatch::events`], [`crate::input::events`]).

use crate::dispatch::AlarmCounts;
use crate::internal_event::InternalEvent;
use std::fmt::Write as _;

/// The shutdown token was triggered: inputs are stopped, what is queued is
/// delivered (logged once the inputs have stopped: a line read after this
/// note is never alarmed).
pub struct Stopping<'a> {
    /// Why: the signal's name, or what the token's holder said.
    pub cause: &'a str,
}

impl InternalEvent for Stopping<'_> {
    fn emit(self) {
        tracing::info!("{}: stopping; delivering what is queued", self.cause);
    }
}

/// Every input ended (stdin at EOF): the queues are drained and the run ends.
pub struct EndOfInput;

impl InternalEvent for EndOfInput {
    fn emit(self) {
        tracing::debug!("end of input");
    }
}

/// An alarm's worker task ended in a panic (a bug).
pub struct WorkerFailed<'a> {
    /// How the task ended.
    pub error: &'a tokio::task::JoinError,
}

impl InternalEvent for WorkerFailed<'_> {
    fn emit(self) {
        tracing::error!("an alarm worker failed: {}", self.error);
    }
}

/// The task supervising the wrapped process ended in a panic (a bug).
pub struct SupervisorFailed<'a> {
    /// How the task ended.
    pub error: &'a tokio::task::JoinError,
}

impl InternalEvent for SupervisorFailed<'_> {
    fn emit(self) {
        tracing::error!("the process supervisor failed: {}", self.error);
    }
}

/// One alarm's totals at the end of the run, the exit summary's line for it
/// (`N delivered, N failed, N suppressed by alarm-freq, N dropped on a full
/// queue`, then what else happened). Not logged for an alarm nothing reached.
pub struct AlarmTotals<'a> {
    /// The alarm's name.
    pub alarm: &'a str,
    /// Its counters at the end.
    pub counts: &'a AlarmCounts,
}

impl InternalEvent for AlarmTotals<'_> {
    fn emit(self) {
        let c = self.counts;
        if c.delivered
            + c.failed
            + c.suppressed
            + c.overflow
            + c.undelivered
            + c.held
            + c.batched
            + c.kept
            + c.restored
            == 0
        {
            return;
        }
        let mut extra = String::new();
        if c.restored > 0 {
            let _ = write!(extra, ", {} taken up from the outbox", c.restored);
        }
        if c.spilled > 0 {
            let _ = write!(extra, ", {} spilled to the outbox", c.spilled);
        }
        if c.kept > 0 {
            let _ = write!(extra, ", {} kept in the outbox for the next start", c.kept);
        }
        if c.retried > 0 {
            let _ = write!(
                extra,
                ", {} {} retried",
                c.retried,
                plural(c.retried, "attempt")
            );
        }
        if c.handed_over > 0 {
            let _ = write!(extra, ", {} failed handed to on_failure", c.handed_over);
        }
        if c.held > 0 {
            let _ = write!(extra, ", {} held back by threshold or cooldown", c.held);
        }
        if c.batched > 0 {
            let _ = write!(extra, ", {} events taken into digests", c.batched);
        }
        tracing::info!(
            alarm = %self.alarm,
            "{} delivered, {} failed, {} suppressed by alarm-freq, {} dropped on a full queue{extra}",
            c.delivered,
            c.failed,
            c.suppressed,
            c.overflow
        );
    }
}

/// `word` with an `s` unless `n` is 1.
fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        word.to_owned()
    } else {
        format!("{word}s")
    }
}
