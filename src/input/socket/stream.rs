//! A stream socket input: accepts clients, up to a limit, each served by a
//! task of its own with its own partial-message buffer, so a client that
//! stops in the middle of a line never mixes its bytes into another's lines.
//!
//! Each client's batches carry its credentials (`SO_PEERCRED`, unix(7)) as
//! their source; `allow_uids` refuses other users at connect.
//!
//! So that no local user can take every slot: one user id holds at most
//! `max_per_uid` connections at once (more are refused at connect, as by
//! `allow_uids`), and a client that sends nothing for `idle_timeout` is
//! disconnected (a message it left unfinished is matched first, as at a
//! disconnect). Both are counted and logged (at most once per period for a
//! flood of them), and reported in the exit summary.

use super::batch::Builder;
use super::events::{
    AcceptFailed, ClientFailed, ClientRefused, ClientsFull, IdleClosed, MessageTooLong, Refusal,
    StreamTotals,
};
use super::framing::Framer;
use super::{Damper, MAX_MESSAGE, WARN_EVERY, stopped};
use crate::input::events::InputStats;
use crate::input::socket::batch::BATCH;
use crate::input::{Event, EventSender};
use crate::internal_event::InternalEvent;
use logalarm_plugin_api::Source;
use nix::sys::resource::{Resource, getrlimit};
use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
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
    /// Clients served at once per user id at most (those without known
    /// credentials count as one user).
    pub max_per_uid: usize,
    /// A client that sent nothing for this long is disconnected; `None`: never.
    pub idle_timeout: Option<Duration>,
}

/// Live connections per user id (`None`: credentials unknown). Locked at
/// connect and disconnect only.
type PerUid = Arc<Mutex<HashMap<Option<u32>, usize>>>;

/// A client's place among its user's [`Settings::max_per_uid`]; given back
/// when dropped (the client's task ends, however it ends).
struct UidSlot {
    counts: PerUid,
    uid: Option<u32>,
}

impl UidSlot {
    /// A place for a client of `uid`, unless that user already holds `max`.
    fn take(counts: &PerUid, uid: Option<u32>, max: usize) -> Option<UidSlot> {
        let mut map = counts.lock().unwrap_or_else(PoisonError::into_inner);
        let held = map.entry(uid).or_insert(0);
        if *held >= max {
            return None;
        }
        *held += 1;
        Some(UidSlot {
            counts: counts.clone(),
            uid,
        })
    }
}

impl Drop for UidSlot {
    fn drop(&mut self) {
        let mut map = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = map.get_mut(&self.uid) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                map.remove(&self.uid);
            }
        }
    }
}

/// What a client's task holds beside its stream.
struct Client {
    source: Source,
    events: EventSender,
    stats: Arc<InputStats>,
    idle_timeout: Option<Duration>,
    /// The idle-close warnings of every client of the socket.
    idle_log: Arc<Mutex<Damper>>,
    /// Its place among the socket's clients, and among its user's.
    _permit: OwnedSemaphorePermit,
    _slot: UidSlot,
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
        max_per_uid,
        idle_timeout,
    } = settings;
    let shown = path.display().to_string();
    let permits = Arc::new(Semaphore::new(max_clients));
    let per_uid = PerUid::default();
    let idle_log = Arc::new(Mutex::new(Damper::new(WARN_EVERY)));
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
                why: Refusal::NotAllowed,
                report: refused.hit(),
            }
            .emit();
            continue;
        }
        let Some(slot) = UidSlot::take(&per_uid, peer.map(|p| p.uid), max_per_uid) else {
            ClientRefused {
                stats: &stats,
                socket: &shown,
                peer,
                why: Refusal::TooMany(max_per_uid),
                report: refused.hit(),
            }
            .emit();
            continue;
        };
        let mut source = Source::new("socket", path.as_os_str());
        if let Some(p) = peer {
            source = source.with_sender(format!("pid {}, uid {}", p.pid, p.uid));
        }
        let cx = Client {
            source,
            events: events.clone(),
            stats: stats.clone(),
            idle_timeout,
            idle_log: idle_log.clone(),
            _permit: permit,
            _slot: slot,
        };
        clients.spawn(client(stream, cx));
    }
    clients.shutdown().await;
    StreamTotals {
        socket: &shown,
        counts: stats.counts(),
    }
    .emit();
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

/// Serves one client until it disconnects, sends nothing for its idle
/// timeout, or the engine is gone; `cx` holds its places among the socket's
/// clients and its user's (given back when this ends).
async fn client(stream: UnixStream, cx: Client) {
    let Client {
        ref source,
        ref events,
        ref stats,
        idle_timeout,
        ref idle_log,
        ..
    } = cx;
    // Nothing is allocated before the client sends something: a held idle
    // connection costs its task and its descriptor only.
    let mut buf = Vec::new();
    let mut framer = Framer::new(MAX_MESSAGE);
    let mut out = Builder::new(source.clone());
    let mut warned = false;
    loop {
        let ready = match idle_timeout {
            Some(after) => tokio::time::timeout(after, stream.readable()).await.ok(),
            None => Some(stream.readable().await),
        };
        let mut end = false;
        match ready {
            None => {
                let report = idle_log
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .hit();
                IdleClosed {
                    stats,
                    source,
                    after: idle_timeout.unwrap_or_default(),
                    report,
                }
                .emit();
                // What it left unfinished is matched, as at a disconnect.
                end = true;
            }
            Some(Err(e)) => {
                tracing::debug!("{source}: {e}");
                break;
            }
            Some(Ok(())) => loop {
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
            },
        }
        if end {
            framer.feed(&mut buf, &mut out, true);
        }
        if framer.take_cut() {
            MessageTooLong {
                stats,
                source,
                report: !warned,
            }
            .emit();
            warned = true;
        }
        if out.send(events).await.is_err() {
            return;
        }
        if end {
            break;
        }
    }
    // The client is gone: what is held for it alone (an open record) closes now.
    let _ = events.send(Event::Ended(source.clone())).await;
}
