//! A stream socket input: accepts clients, up to a limit, each served by a
//! task of its own with its own partial-message buffer, so a client that
//! stops in the middle of a line never mixes its bytes into another's lines.
//!
//! Each client's batches carry its credentials (`SO_PEERCRED`, unix(7)) as
//! their source; `allow_uids` refuses other users at connect.

use super::batch::Builder;
use super::events::{AcceptFailed, ClientFailed, ClientRefused, ClientsFull, MessageTooLong};
use super::framing::Framer;
use super::{Damper, MAX_MESSAGE, WARN_EVERY, stopped};
use crate::input::events::InputStats;
use crate::input::socket::batch::BATCH;
use crate::input::{Event, EventSender};
use crate::internal_event::InternalEvent;
use logalarm_plugin_api::Source;
use nix::sys::resource::{Resource, getrlimit};
use std::io::ErrorKind;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinError, JoinSet};

/// A stream client's credentials (`SO_PEERCRED`, unix(7)).
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    /// Its process id at connect time.
    pub pid: i32,
    /// Its user id.
    pub uid: u32,
}

/// Clients served at once at most: beyond it, new connections wait in the
/// kernel's listen queue until a client leaves.
pub const MAX_CLIENTS: usize = 1024;

/// Bytes of free room a client's buffer has before each read (16 KiB).
const READ_ROOM: usize = 16 << 10;

/// How long accepting pauses after an error such as running out of descriptors.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// What a bound stream socket serves with.
pub struct Settings {
    /// The listening socket.
    pub listener: UnixListener,
    /// Allowed client user ids; empty: any the file mode lets connect.
    pub allow_uids: Vec<u32>,
    /// Clients served at once at most.
    pub max_clients: usize,
}

/// [`MAX_CLIENTS`], or fewer when the descriptor limit (`RLIMIT_NOFILE`) would
/// not leave room for them and for everything else logalarm opens.
pub fn client_limit() -> usize {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) => usize::try_from(soft / 2)
            .unwrap_or(MAX_CLIENTS)
            .clamp(16, MAX_CLIENTS),
        Err(_) => MAX_CLIENTS,
    }
}

/// Accepts and serves clients until `stop` turns true or the engine is gone;
/// then ends every client's task. Incidents are counted in `stats`.
pub async fn serve(
    settings: Settings,
    path: Arc<Path>,
    events: EventSender,
    mut stop: watch::Receiver<bool>,
    stats: Arc<InputStats>,
) {
    let Settings {
        listener,
        allow_uids,
        max_clients,
    } = settings;
    let shown = path.display().to_string();
    let permits = Arc::new(Semaphore::new(max_clients));
    let mut clients = JoinSet::new();
    let mut full = Damper::new(Duration::from_secs(60));
    let mut refused = Damper::new(WARN_EVERY);
    let mut failed = Damper::new(WARN_EVERY);
    'serving: loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                ClientsFull {
                    socket: &shown,
                    max_clients,
                    report: full.hit(),
                }
                .emit();
                loop {
                    tokio::select! {
                        biased;
                        () = stopped(&mut stop) => break 'serving,
                        () = events.closed() => break 'serving,
                        Some(done) = clients.join_next() => reap(done, &shown, &stats),
                        permit = permits.clone().acquire_owned() => match permit {
                            Ok(permit) => break permit,
                            Err(_) => break 'serving,
                        },
                    }
                }
            }
        };
        let accepted = loop {
            tokio::select! {
                biased;
                () = stopped(&mut stop) => break 'serving,
                () = events.closed() => break 'serving,
                Some(done) = clients.join_next() => reap(done, &shown, &stats),
                accepted = listener.accept() => break accepted,
            }
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of descriptors or memory: a pause, not a busy loop, lets clients leave.
                AcceptFailed {
                    stats: &stats,
                    socket: &shown,
                    error: &error,
                    report: failed.hit(),
                }
                .emit();
                tokio::select! {
                    () = stopped(&mut stop) => break 'serving,
                    () = tokio::time::sleep(ACCEPT_PAUSE) => continue,
                }
            }
        };
        let peer = match stream.peer_cred() {
            Ok(cred) => Some(Peer {
                pid: cred.pid().unwrap_or(0),
                uid: cred.uid(),
            }),
            Err(e) => {
                tracing::debug!(socket = %shown, "no credentials for a client: {e}");
                None
            }
        };
        if !allow_uids.is_empty() && !peer.is_some_and(|p| allow_uids.contains(&p.uid)) {
            ClientRefused {
                stats: &stats,
                socket: &shown,
                peer,
                report: refused.hit(),
            }
            .emit();
            continue;
        }
        let mut source = Source::new("socket", path.as_os_str());
        if let Some(p) = peer {
            source = source.with_sender(format!("pid {}, uid {}", p.pid, p.uid));
        }
        clients.spawn(client(
            stream,
            source,
            events.clone(),
            permit,
            stats.clone(),
        ));
    }
    clients.shutdown().await;
}

/// Reports a client task that panicked (a bug), and drops a finished one.
fn reap(done: Result<(), JoinError>, socket: &str, stats: &InputStats) {
    if let Err(error) = done
        && error.is_panic()
    {
        ClientFailed {
            stats,
            socket,
            error: &error,
        }
        .emit();
    }
}

/// Serves one client until it disconnects or the engine is gone; `permit`
/// holds its place among [`Settings::max_clients`]; its socket's counters
/// are `stats`.
async fn client(
    stream: UnixStream,
    source: Source,
    events: EventSender,
    permit: OwnedSemaphorePermit,
    stats: Arc<InputStats>,
) {
    let _permit = permit;
    // Nothing is allocated before the client sends something: a held idle
    // connection costs its task and its descriptor only.
    let mut buf = Vec::new();
    let mut framer = Framer::new(MAX_MESSAGE);
    let mut out = Builder::new(source.clone());
    let mut warned = false;
    loop {
        if let Err(e) = stream.readable().await {
            tracing::debug!("{source}: {e}");
            break;
        }
        let mut end = false;
        loop {
            if buf.capacity() - buf.len() < READ_ROOM {
                buf.reserve_exact(READ_ROOM);
            }
            match stream.try_read_buf(&mut buf) {
                Ok(0) => end = true,
                Ok(_) => framer.feed(&mut buf, &mut out, false),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!("{source}: read failed: {e}");
                    end = true;
                }
            }
            if end || out.len() >= BATCH {
                break;
            }
        }
        if end {
            framer.feed(&mut buf, &mut out, true);
        }
        if framer.take_cut() {
            MessageTooLong {
                stats: &stats,
                source: &source,
                report: !warned,
            }
            .emit();
            warned = true;
        }
        if out.send(&events).await.is_err() {
            return;
        }
        if end {
            break;
        }
    }
    // The client is gone: what is held for it alone (an open record) closes now.
    let _ = events.send(Event::Ended(source)).await;
}
