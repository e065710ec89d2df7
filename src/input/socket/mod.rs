//! Unix socket inputs: a local syslog-style endpoint applications log to.
//!
//! - `SOCK_DGRAM` ([`dgram`]): one datagram is one message, as on syslog's
//!   `/dev/log` (`logger -u PATH`, Python's `SysLogHandler(address=PATH)`).
//! - `SOCK_STREAM` ([`stream`]): many clients at once, each with its own
//!   partial-message buffer; messages end at `\n` or NUL, or are octet-counted
//!   (RFC 6587; see [`framing`]) — `logger -T -u PATH`, Python's
//!   `SysLogHandler(socktype=SOCK_STREAM)`, `nc -U`, any program writing lines.
//!   A client that sends nothing for `idle_timeout` is disconnected, and one
//!   user id holds at most `max_per_uid` connections, so no local user can
//!   take every slot.
//!
//! A syslog header (RFC 3164 or RFC 5424, [`crate::input::syslog`]) is split off
//! each message: rules see the message, alarms get the header's fields. A
//! message may hold several lines; each is matched, all share its header.
//! Messages are collected into batches ([`batch`]) sent to the engine when
//! large or when nothing more is readable at once, waiting while its queue is
//! full, so a flood slows its clients instead of growing memory.
//!
//! The socket file ([`mod@file`]) is created with its mode from the start, never
//! replaces anything but a stale socket, and is removed at stop.

pub mod batch;
pub mod config;
pub mod dgram;
pub mod events;
pub mod file;
pub mod framing;
pub mod stream;

use super::EventSender;
use super::events::InputStats;
use config::{SocketConfig, SocketKind};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{UnixDatagram, UnixListener};
use tokio::sync::watch;

/// The longest message kept whole, in bytes (64 KiB): a longer datagram is
/// cut to it; a longer line on a stream is matched in pieces of it.
pub const MAX_MESSAGE: usize = 64 << 10;

/// How often a repeated warning (refused clients, cut datagrams, accept
/// errors) may be logged.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// A bound socket input, ready to serve.
pub struct Listener {
    kind: Bound,
    path: Arc<Path>,
    /// Removes the socket file when the input is done (or never started).
    file: file::SocketFile,
    /// Its counters.
    stats: Arc<InputStats>,
}

impl Listener {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The socket's counters.
    pub fn stats(&self) -> Arc<InputStats> {
        self.stats.clone()
    }
}

enum Bound {
    Dgram(UnixDatagram),
    Stream(stream::Settings),
}

/// Creates the socket file of a socket input (`InputDef::Socket`): a datagram
/// socket, or a listening stream socket, with the configured mode. Runs inside
/// the tokio runtime.
///
/// # Errors
/// The path exists and is not a socket, a live process serves it, it cannot
/// be created (a missing or read-only directory, too long a path), or
/// `allow_uids` is set on a datagram socket (its senders are anonymous); the
/// message names the option's origin and the path.
pub fn bind(def: &SocketConfig) -> Result<Listener, String> {
    let SocketConfig {
        path,
        kind,
        mode,
        allow_uids,
        origin,
        ..
    } = def;
    if *kind == SocketKind::Dgram && !allow_uids.is_empty() {
        return Err(format!(
            "{origin}: allow_uids applies to stream sockets only, and {} is a datagram socket (its senders are not identified); restrict it with its mode, or make it type = \"stream\" (--socket-stream)",
            path.display()
        ));
    }
    let (fd, file) = file::create(path, *kind, *mode).map_err(|e| format!("{origin}: {e}"))?;
    let shared: Arc<Path> = Arc::from(path.as_path());
    let registered = match kind {
        SocketKind::Dgram => UnixDatagram::from_std(fd.into()).map(Bound::Dgram),
        SocketKind::Stream => UnixListener::from_std(fd.into()).map(|listener| {
            Bound::Stream(stream::Settings {
                listener,
                allow_uids: allow_uids.clone(),
                max_clients: stream::client_limit(),
                max_per_uid: def.max_per_uid(),
                idle_timeout: def.idle_timeout(),
            })
        }),
    };
    let kind =
        registered.map_err(|e| format!("{origin}: cannot serve socket {}: {e}", path.display()))?;
    Ok(Listener {
        kind,
        path: shared,
        file,
        stats: Arc::default(),
    })
}

/// Serves a bound socket until `stop` turns true or the engine is gone, then
/// removes the socket file.
pub async fn serve(listener: Listener, events: EventSender, stop: watch::Receiver<bool>) {
    let Listener {
        kind,
        path,
        file,
        stats,
    } = listener;
    match kind {
        Bound::Dgram(socket) => dgram::serve(socket, path, events, stop, &stats).await,
        Bound::Stream(settings) => stream::serve(settings, path, events, stop, stats).await,
    }
    drop(file);
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Lets a repeated warning through at most once per period, counting the
/// ones held back in between.
struct Damper {
    every: Duration,
    last: Option<Instant>,
    held: u64,
}

impl Damper {
    fn new(every: Duration) -> Self {
        Damper {
            every,
            last: None,
            held: 0,
        }
    }

    /// `Some(held back since the last one)` when this one may be logged.
    fn hit(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|at| now.saturating_duration_since(at) < self.every)
        {
            self.held += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }
}

/// ` (N more since the last such warning)` when `held` is not 0.
fn more(held: u64) -> String {
    if held == 0 {
        String::new()
    } else {
        format!(" ({held} more since the last such warning)")
    }
}
