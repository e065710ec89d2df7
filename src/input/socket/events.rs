//! The internal events of a socket input. Each [`InternalEvent::emit`] counts
//! the event in the socket's [`InputStats`] and logs it; a warning that may
//! repeat (a flood of cut datagrams, refused clients) is logged at most once
//! per period, but every occurrence is counted (`report` says whether this
//! one is logged, and how many were held back before it).

use super::stream::Peer;
use super::{MAX_MESSAGE, more};
use crate::input::events::{InputCounts, InputStats};
use crate::internal_event::{self, InternalEvent};
use logalarm_plugin_api::Source;
use std::io;
use std::time::Duration;

/// Waiting for datagrams failed: the datagram socket is no longer read.
pub struct WaitFailed<'a> {
    /// The socket's counters.
    pub stats: &'a InputStats,
    /// The socket's path, as shown.
    pub socket: &'a str,
    /// The error.
    pub error: &'a io::Error,
}

impl InternalEvent for WaitFailed<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.failed, 1);
        tracing::error!(socket = %self.socket, "cannot wait for datagrams: {}", self.error);
    }
}

/// A datagram longer than [`MAX_MESSAGE`] was cut to it (its first bytes are
/// still matched).
pub struct DatagramCut<'a> {
    /// The socket's counters.
    pub stats: &'a InputStats,
    /// The socket's path, as shown.
    pub socket: &'a str,
    /// The datagram's length, in bytes.
    pub len: usize,
    /// `Some(held back)` when this one is logged.
    pub report: Option<u64>,
}

impl InternalEvent for DatagramCut<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.cut, 1);
        if let Some(held) = self.report {
            tracing::warn!(
                socket = %self.socket,
                "a datagram of {} bytes was cut to {MAX_MESSAGE}{}",
                self.len,
                more(held)
            );
        }
    }
}

/// Reading a datagram failed (the socket is still read).
pub struct DatagramReadFailed<'a> {
    /// The socket's counters.
    pub stats: &'a InputStats,
    /// The socket's path, as shown.
    pub socket: &'a str,
    /// The error.
    pub error: &'a io::Error,
    /// `Some(held back)` when this one is logged.
    pub report: Option<u64>,
}

impl InternalEvent for DatagramReadFailed<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.failed, 1);
        if let Some(held) = self.report {
            tracing::warn!(
                socket = %self.socket,
                "reading a datagram failed: {}{}",
                self.error,
                more(held)
            );
        }
    }
}

/// A stream socket serves its most clients: new ones wait in the kernel's
/// listen queue (nothing is lost, so nothing is counted).
pub struct ClientsFull<'a> {
    /// The socket's path, as shown.
    pub socket: &'a str,
    /// The client limit.
    pub max_clients: usize,
    /// `Some(held back)` when this one is logged.
    pub report: Option<u64>,
}

impl InternalEvent for ClientsFull<'_> {
    fn emit(self) {
        if let Some(held) = self.report {
            tracing::warn!(
                socket = %self.socket,
                "{} clients connected: not accepting more until one leaves{}",
                self.max_clients,
                more(held)
            );
        }
    }
}

/// Accepting a client failed (out of descriptors or memory): accepting
/// pauses a moment.
pub struct AcceptFailed<'a> {
    /// The socket's counters.
    pub stats: &'a InputStats,
    /// The socket's path, as shown.
    pub socket: &'a str,
    /// The error.
    pub error: &'a io::Error,
    /// `Some(held back)` when this one is logged.
    pub report: Option<u64>,
}

impl InternalEvent for AcceptFailed<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.failed, 1);
        if let Some(held) = self.report {
            tracing::warn!(
                socket = %self.socket,
                "cannot accept a client: {}{}",
                self.error,
                more(held)
            );
        }
    }
}

/// Why a stream client was refused at connect.
#[derive(Clone, Copy, Debug)]
pub enum Refusal {
    /// Its user id is not in `allow_uids`.
    NotAllowed,
    /// Its user already holds this many connections (`max_per_uid`).
    TooMany(usize),
}

/// A client was refused (its connection closed at once): its user id is not
/// in `allow_uids`, or its user holds `max_per_uid` connections already.
pub struct ClientRefused<'a> {
    /// The socket's counters.
    pub stats: &'a InputStats,
    /// The socket's path, as shown.
    pub socket: &'a str,
    /// Its credentials, when known.
    pub peer: Option<Peer>,
    /// Why.
    pub why: Refusal,
    /// `Some(held back)` when this one is logged.
    pub report: Option<u64>,
}

impl InternalEvent for ClientRefused<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.refused, 1);
        if let Some(held) = self.report {
            let who = self.peer.map_or_else(
                || "of unknown credentials".to_owned(),
                |p| format!("pid {}, uid {}", p.pid, p.uid),
            );
            match self.why {
                Refusal::NotAllowed => tracing::warn!(
                    socket = %self.socket,
                    "refused a client ({who}): its user id is not in allow_uids{}",
                    more(held)
                ),
                Refusal::TooMany(max) => tracing::warn!(
                    socket = %self.socket,
                    "refused a client ({who}): its user already has {max} connections (max_per_uid){}",
                    more(held)
                ),
            }
        }
    }
}

/// A stream client sent nothing for the socket's idle timeout and was
/// disconnected (an unfinished message it left is matched first).
pub struct IdleClosed<'a> {
    /// The socket's counters.
    pub stats: &'a InputStats,
    /// The client.
    pub source: &'a Source,
    /// The idle timeout.
    pub after: Duration,
    /// `Some(held back)` when this one is logged.
    pub report: Option<u64>,
}

impl InternalEvent for IdleClosed<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.idle_closed, 1);
        if let Some(held) = self.report {
            tracing::info!(
                "{}: disconnected: sent nothing for {} (idle_timeout){}",
                self.source,
                humantime::format_duration(self.after),
                more(held)
            );
        }
    }
}

/// A stream socket's totals when it stops, its exit summary line: clients
/// refused and idle clients disconnected; logged only when there were any.
/// Counts nothing of its own.
pub struct StreamTotals<'a> {
    /// The socket's path, as shown.
    pub socket: &'a str,
    /// Its counters at the stop.
    pub counts: InputCounts,
}

impl InternalEvent for StreamTotals<'_> {
    fn emit(self) {
        let c = self.counts;
        if c.refused + c.idle_closed == 0 {
            return;
        }
        tracing::info!(
            "socket {}: {} clients refused (allow_uids, max_per_uid), {} idle clients disconnected (idle_timeout)",
            self.socket,
            c.refused,
            c.idle_closed
        );
    }
}

/// A client's task ended in a panic (a bug): that client is no longer read.
pub struct ClientFailed<'a> {
    /// The socket's counters.
    pub stats: &'a InputStats,
    /// The socket's path, as shown.
    pub socket: &'a str,
    /// What the task ended with.
    pub error: &'a tokio::task::JoinError,
}

impl InternalEvent for ClientFailed<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.failed, 1);
        tracing::error!(socket = %self.socket, "a client's task failed: {}", self.error);
    }
}

/// A stream client sent a message longer than [`MAX_MESSAGE`]: it is matched
/// in pieces of that size. Counted each time; logged once per client.
pub struct MessageTooLong<'a> {
    /// The socket's counters.
    pub stats: &'a InputStats,
    /// The client.
    pub source: &'a Source,
    /// Whether this one is logged (the client's first).
    pub report: bool,
}

impl InternalEvent for MessageTooLong<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.cut, 1);
        if self.report {
            tracing::warn!(
                "{}: a message is longer than {MAX_MESSAGE} bytes; matching it in pieces of that size",
                self.source
            );
        }
    }
}
