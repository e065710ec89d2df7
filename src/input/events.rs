//! The counters every input keeps ([`InputStats`]), and the internal events
//! of the inputs that are one file: stdin and `alarm-fd`. The inputs that are
//! a folder keep theirs beside them (`follow::events`, `socket::events`,
//! `child::events`). Each event's [`InternalEvent::emit`] logs it and counts
//! it, so the log and the exit summary never disagree.
//!
//! Inputs count incidents (a read error, a rotation, a refused client), never
//! lines: the line path stays free of counters.

use crate::internal_event::{self, InternalEvent};
use std::io;
use std::sync::atomic::AtomicU64;

/// Counters of one input, shared by its tasks and read by the engine's summary.
#[derive(Debug, Default)]
pub struct InputStats {
    /// Reads or waits that failed, inputs that ended unexpectedly, and paths
    /// that could not be followed (each reported once).
    pub failed: AtomicU64,
    /// Messages cut to the input's size limit (a datagram, a stream message).
    pub cut: AtomicU64,
    /// Stream socket clients refused (`allow_uids`, `max_per_uid`).
    pub refused: AtomicU64,
    /// Stream socket clients disconnected after sending nothing for
    /// `idle_timeout`.
    pub idle_closed: AtomicU64,
    /// Bytes of pass-through output dropped (`passthrough_full = "drop"`,
    /// or never written by the end of the run).
    pub passthrough_dropped: AtomicU64,
    /// Followed paths that moved on to another file (rotated, deleted, or
    /// renamed away before they were read), and rotated files resumed.
    pub rotated: AtomicU64,
    /// Followed files truncated or rewritten in place.
    pub truncated: AtomicU64,
    /// Restarts of the wrapped process.
    pub restarts: AtomicU64,
}

/// The counters of one input at one moment ([`InputStats::counts`]), each
/// the [`InputStats`] counter of the same name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InputCounts {
    /// Failed reads or waits, unexpected ends, unfollowable paths.
    pub failed: u64,
    /// Messages cut to the size limit.
    pub cut: u64,
    /// Clients refused.
    pub refused: u64,
    /// Idle clients disconnected.
    pub idle_closed: u64,
    /// Pass-through bytes dropped.
    pub passthrough_dropped: u64,
    /// Rotations seen.
    pub rotated: u64,
    /// Truncations seen.
    pub truncated: u64,
    /// Restarts of the wrapped process.
    pub restarts: u64,
}

impl InputStats {
    /// Every counter, read now (each on its own).
    pub fn counts(&self) -> InputCounts {
        let get = internal_event::get;
        InputCounts {
            failed: get(&self.failed),
            cut: get(&self.cut),
            refused: get(&self.refused),
            idle_closed: get(&self.idle_closed),
            passthrough_dropped: get(&self.passthrough_dropped),
            rotated: get(&self.rotated),
            truncated: get(&self.truncated),
            restarts: get(&self.restarts),
        }
    }
}

/// Reading stdin failed: it is no longer read.
pub struct StdinFailed<'a> {
    /// Stdin's counters.
    pub stats: &'a InputStats,
    /// The read error.
    pub error: &'a io::Error,
}

impl InternalEvent for StdinFailed<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.failed, 1);
        tracing::error!("reading stdin failed: {}", self.error);
    }
}

/// Pass-through dropped bytes its buffer had no room for (`passthrough_full
/// = "drop"`), or that were never written by the end of the run. Counted each
/// time; logged at the first drop of an episode (until the reader catches up).
pub struct PassthroughDropped<'a> {
    /// The counters of the input whose bytes they were.
    pub stats: &'a InputStats,
    /// The output: `stdout` or `stderr`.
    pub output: &'a str,
    /// How many bytes, this time.
    pub bytes: usize,
    /// Whether this one is logged (an episode's first).
    pub report: bool,
}

impl InternalEvent for PassthroughDropped<'_> {
    fn emit(self) {
        internal_event::add(
            &self.stats.passthrough_dropped,
            u64::try_from(self.bytes).unwrap_or(u64::MAX),
        );
        if self.report {
            tracing::warn!(
                "pass-through to {}: its reader is not keeping up and the buffer is full; dropping output until it catches up (passthrough_full = \"drop\"); alarms go on",
                self.output
            );
        }
    }
}

/// Writing pass-through failed: its output is gone (its reader closed it:
/// `EPIPE`) or broken; pass-through stops, matching and alarms go on.
pub struct PassthroughStopped<'a> {
    /// The output: `stdout` or `stderr`.
    pub output: &'a str,
    /// The write error.
    pub error: &'a io::Error,
}

impl InternalEvent for PassthroughStopped<'_> {
    fn emit(self) {
        if self.error.kind() == io::ErrorKind::BrokenPipe {
            tracing::info!(
                "{} was closed by its reader; pass-through stops, alarms go on",
                self.output
            );
        } else {
            tracing::error!(
                "pass-through to {} failed: {}; pass-through stops, alarms go on",
                self.output,
                self.error
            );
        }
    }
}

/// A pass-through output's totals at the end of the run, its exit summary
/// line; logged only when it dropped anything. Counts nothing of its own.
pub struct PassthroughTotals<'a> {
    /// The output: `stdout` or `stderr`.
    pub output: &'a str,
    /// `passthrough_full`: `block` or `drop`.
    pub full: &'a str,
    /// Bytes dropped in all.
    pub dropped: u64,
    /// Episodes of dropping (`drop` mode).
    pub episodes: u64,
}

impl InternalEvent for PassthroughTotals<'_> {
    fn emit(self) {
        if self.dropped == 0 {
            return;
        }
        tracing::info!(
            "pass-through to {}: {} bytes dropped ({} {} of a full buffer; passthrough_full = {})",
            self.output,
            self.dropped,
            self.episodes,
            if self.episodes == 1 {
                "episode"
            } else {
                "episodes"
            },
            self.full
        );
    }
}

/// Why an `alarm-fd` descriptor is no longer watched.
pub enum FdStop<'a> {
    /// Waiting for it to be readable failed.
    WaitFailed(&'a io::Error),
    /// It reached end-of-file (its writers closed it).
    Ended,
    /// A read failed.
    ReadFailed(&'a io::Error),
}

/// An `alarm-fd` descriptor is no longer watched.
pub struct FdStopped<'a> {
    /// The watch's counters.
    pub stats: &'a InputStats,
    /// The descriptor as configured.
    pub what: &'a str,
    /// Why.
    pub why: FdStop<'a>,
}

impl InternalEvent for FdStopped<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.failed, 1);
        let what = self.what;
        match self.why {
            FdStop::WaitFailed(e) => {
                tracing::error!("alarm-fd {what}: cannot wait for data: {e}; no longer watched");
            }
            FdStop::Ended => tracing::warn!(
                "alarm-fd {what}: end of file (its writers closed it); no longer watched"
            ),
            FdStop::ReadFailed(e) => {
                tracing::error!("alarm-fd {what}: read failed: {e}; no longer watched");
            }
        }
    }
}
