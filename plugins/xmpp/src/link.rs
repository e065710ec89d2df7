//! The persistent connection of one alarm: a background task that logs in,
//! sends what the outbox holds, confirms it, and reconnects with backoff
//! whenever the connection is lost, for as long as the action lives.
//!
//! `fire` puts a message into the outbox and waits for its outcome; the task
//! does all the network work. Messages queued while the server is down are
//! sent, in order, as soon as a new connection is logged in.

use crate::args::Settings;
use crate::connect::Connector;
use crate::outbox::{Outbox, Submitted};
use crate::session::{Incoming, OpenError, Session};
use backon::{BackoffBuilder, ExponentialBuilder};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use tokio_xmpp::jid::Jid;

/// How many unconfirmed messages an alarm holds while its server is
/// unreachable; beyond, `fire` reports the message as not queued.
pub const OUTBOX_CAPACITY: usize = 1000;

/// The longest a login (TCP, STARTTLS, SASL, resource binding) may take.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(20);

/// The longest the server may take to answer a ping before the connection
/// counts as dead (and its unconfirmed messages are sent again on a new one).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// The longest writing to the connection may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(20);

/// Reconnect delays: from 200 ms, doubling, at most 10 s, with jitter (so
/// that many clients of a restarted server do not all come back at once).
fn backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(10))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

/// The delay after the server refused the login: a wrong password does not
/// become right soon, and servers throttle failed logins.
const REFUSED_RETRY: Duration = Duration::from_secs(60);

/// How often a continuing outage is logged again.
const OUTAGE_REPORT_EVERY: Duration = Duration::from_secs(60);

/// The connection's state, as `fire` reports it.
#[derive(Clone, Debug)]
pub enum Status {
    /// The first login is under way.
    Connecting,
    /// Logged in.
    Online,
    /// Unreachable, for this reason.
    Down(String),
    /// The server refused the login or cannot be trusted, for this reason:
    /// messages fail at once.
    Refused(String),
}

/// What the task and the action share.
pub struct Shared {
    outbox: Mutex<Outbox>,
    status: Mutex<Status>,
    /// New messages in the outbox.
    wake: Notify,
    /// Messages refused because the outbox was full.
    overflow: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not stop delivery; the data stays consistent
    // because every critical section is a single, non-panicking update.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// The current connection state.
    pub fn status(&self) -> Status {
        lock(&self.status).clone()
    }

    fn set_status(&self, status: Status) {
        *lock(&self.status) = status;
    }

    /// Queues message `text` for notification `id` (or joins the one queued
    /// under it) and wakes the task.
    pub fn submit(&self, id: &Arc<str>, text: impl FnOnce() -> Arc<str>) -> Submitted {
        let submitted = lock(&self.outbox).submit(id, text);
        match submitted {
            Submitted::Queued(_) => self.wake.notify_one(),
            Submitted::Full => {
                self.overflow.fetch_add(1, Ordering::Relaxed);
            }
            Submitted::AlreadyDelivered => {}
        }
        submitted
    }

    /// The `fire` of notification `id` stopped waiting; see [`Outbox::abandon`].
    pub fn abandon(&self, id: &str) -> bool {
        lock(&self.outbox).abandon(id)
    }

    /// Messages refused so far because the outbox was full.
    pub fn overflow(&self) -> u64 {
        self.overflow.load(Ordering::Relaxed)
    }

    /// Messages not confirmed yet.
    pub fn pending(&self) -> usize {
        lock(&self.outbox).len()
    }
}

/// A running link: dropping it ends the task (closing the stream politely).
pub struct Link {
    /// What the task and the action share.
    pub shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    alarm: String,
}

impl Link {
    /// Starts the task on `runtime`.
    pub fn start(
        runtime: &tokio::runtime::Handle,
        alarm: &str,
        settings: Arc<Settings>,
        connector: Connector,
    ) -> Link {
        let shared = Arc::new(Shared {
            outbox: Mutex::new(Outbox::new(OUTBOX_CAPACITY)),
            status: Mutex::new(Status::Connecting),
            wake: Notify::new(),
            overflow: AtomicU64::new(0),
        });
        let (stop, stopped) = watch::channel(false);
        let task = Task {
            alarm: alarm.to_owned(),
            shared: shared.clone(),
            recipients: settings.recipients.clone().into(),
            settings,
            connector,
            stop: stopped,
            next_ping: 0,
        };
        runtime.spawn(supervise(task));
        Link {
            shared,
            stop,
            alarm: alarm.to_owned(),
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        let pending = self.shared.pending();
        if pending > 0 {
            tracing::error!(
                alarm = %self.alarm,
                "xmpp: {pending} messages were never confirmed by the server ({})",
                describe(&self.shared.status())
            );
        }
    }
}

/// A connection state in words, for messages.
pub fn describe(status: &Status) -> String {
    match status {
        Status::Connecting => "not connected yet".to_owned(),
        Status::Online => "connected".to_owned(),
        Status::Down(e) | Status::Refused(e) => e.clone(),
    }
}

/// Runs the task, and runs it again should it ever panic (a bug in a
/// dependency must not silence an alarm for good; the outbox survives).
async fn supervise(task: Task) {
    let alarm = task.alarm.clone();
    let mut task = Some(task);
    while let Some(t) = task.take() {
        let mut stop = t.stop.clone();
        let restart = t.clone();
        match tokio::spawn(t.run()).await {
            Ok(()) => return,
            Err(e) if e.is_panic() => {
                tracing::error!(alarm = %alarm, "xmpp: the connection task failed ({e}); restarting it");
                // Requeue what the dead connection had sent; it goes out again.
                lock(&restart.shared.outbox).requeue();
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => task = Some(restart),
                    () = stopped(&mut stop) => return,
                }
            }
            Err(_) => return,
        }
    }
}

/// Resolves once `stop` is true (or the link is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

#[derive(Clone)]
struct Task {
    alarm: String,
    shared: Arc<Shared>,
    settings: Arc<Settings>,
    recipients: Arc<[Jid]>,
    connector: Connector,
    stop: watch::Receiver<bool>,
    /// The number of the next ping: numbers only grow, across connections.
    next_ping: u64,
}

/// An outage in progress, for logging it once and then now and then.
struct Outage {
    since: Instant,
    attempts: u64,
    reported: Instant,
    last: String,
}

impl Task {
    async fn run(mut self) {
        let server = self.connector.server();
        let mut delays = backoff();
        let mut outage: Option<Outage> = None;
        loop {
            if *self.stop.borrow() {
                return;
            }
            let opened = tokio::select! {
                opened = tokio::time::timeout(
                    LOGIN_TIMEOUT,
                    Session::open(&self.settings, &self.connector, self.recipients.clone()),
                ) => opened,
                () = stopped(&mut self.stop) => return,
            };
            let delay = match opened {
                Ok(Ok((session, bound))) => {
                    delays = backoff();
                    self.shared.set_status(Status::Online);
                    let waiting = lock(&self.shared.outbox).unsent();
                    match outage.take() {
                        None => {
                            tracing::info!(alarm = %self.alarm, "xmpp: connected to {server} as {bound}")
                        }
                        Some(o) => tracing::info!(
                            alarm = %self.alarm,
                            "xmpp: connected to {server} as {bound} after {:.1}s unreachable{}; sending {waiting} queued messages",
                            o.since.elapsed().as_secs_f64(),
                            match o.attempts {
                                0 => String::new(),
                                1 => " (1 failed attempt)".to_owned(),
                                n => format!(" ({n} failed attempts)"),
                            }
                        ),
                    }
                    let Some(lost) = self.serve(session).await else {
                        return;
                    };
                    let resend = lock(&self.shared.outbox).requeue();
                    tracing::warn!(
                        alarm = %self.alarm,
                        "xmpp: connection to {server} lost: {lost}; reconnecting{}",
                        if resend > 0 { format!(", then sending {resend} unconfirmed messages again") } else { String::new() }
                    );
                    self.shared
                        .set_status(Status::Down(format!("connection to {server} lost: {lost}")));
                    outage = Some(Outage {
                        since: Instant::now(),
                        attempts: 0,
                        reported: Instant::now(),
                        last: String::new(),
                    });
                    delays.next().unwrap_or(Duration::from_secs(1))
                }
                Ok(Err(OpenError::Refused(reason))) => {
                    let dropped = lock(&self.shared.outbox).fail_all(&reason);
                    let repeated =
                        matches!(self.shared.status(), Status::Refused(ref r) if *r == reason);
                    if !repeated {
                        tracing::error!(
                            alarm = %self.alarm,
                            "xmpp: {reason}; {} messages dropped; alarms fail at once until a login succeeds (tried every {}s)",
                            dropped,
                            REFUSED_RETRY.as_secs()
                        );
                    }
                    self.shared.set_status(Status::Refused(reason));
                    REFUSED_RETRY
                }
                Ok(Err(OpenError::Failed(e))) => self.unreachable(&mut outage, &mut delays, e),
                Err(_) => self.unreachable(
                    &mut outage,
                    &mut delays,
                    format!("no login within {}s", LOGIN_TIMEOUT.as_secs()),
                ),
            };
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stopped(&mut self.stop) => return,
            }
        }
    }

    /// Notes a failed connection attempt; returns the delay before the next.
    fn unreachable(
        &self,
        outage: &mut Option<Outage>,
        delays: &mut impl Iterator<Item = Duration>,
        error: String,
    ) -> Duration {
        let server = self.connector.server();
        let delay = delays.next().unwrap_or(Duration::from_secs(10));
        let queued = self.shared.pending();
        match outage {
            // The first failure of an outage (or the first after a lost connection).
            Some(o) if o.attempts > 0 => {
                o.attempts += 1;
                if o.last != error || o.reported.elapsed() >= OUTAGE_REPORT_EVERY {
                    tracing::warn!(
                        alarm = %self.alarm,
                        "xmpp: still cannot reach {server} after {:.0}s ({} attempts): {error}; {queued} messages wait",
                        o.since.elapsed().as_secs_f64(),
                        o.attempts
                    );
                    o.reported = Instant::now();
                    o.last = error.clone();
                }
            }
            _ => {
                tracing::warn!(alarm = %self.alarm, "xmpp: cannot reach {server}: {error}; retrying");
                let o = outage.get_or_insert_with(|| Outage {
                    since: Instant::now(),
                    attempts: 0,
                    reported: Instant::now(),
                    last: String::new(),
                });
                o.attempts = 1;
                o.reported = Instant::now();
                o.last = error.clone();
            }
        }
        self.shared
            .set_status(Status::Down(format!("cannot reach {server}: {error}")));
        delay
    }

    /// Serves one logged-in connection until it is lost (`Some(why)`) or the
    /// link stops (`None`, after closing the stream).
    async fn serve(&mut self, mut session: Session) -> Option<String> {
        // Pings written and not answered yet, oldest first: (number, when).
        let mut pending: VecDeque<(u64, Instant)> = VecDeque::new();
        // What waited for this connection goes out first.
        if let Err(lost) = self.flush(&mut session, &mut pending).await {
            return Some(lost);
        }
        loop {
            let deadline = pending.front().map(|&(_, at)| at + ANSWER_TIMEOUT);
            let answer_due = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            // New messages go before reading: a chatty server must not hold them
            // up, and each wake writes once, so reading is never starved either.
            tokio::select! {
                biased;
                () = stopped(&mut self.stop) => {
                    session.close(Duration::from_secs(1)).await;
                    return None;
                }
                () = self.shared.wake.notified() => {
                    if let Err(lost) = self.flush(&mut session, &mut pending).await {
                        return Some(lost);
                    }
                }
                incoming = session.next() => match incoming {
                    Incoming::Answered(n) => {
                        pending.retain(|&(p, _)| p > n);
                        lock(&self.shared.outbox).confirm(n);
                    }
                    Incoming::Bounced { id, what } => {
                        tracing::warn!(alarm = %self.alarm, "xmpp: the server bounced a message for {what}");
                        lock(&self.shared.outbox).bounce(&id, what);
                    }
                    Incoming::Idle => {
                        if pending.is_empty() {
                            let n = self.take_ping();
                            if let Err(e) = write(session.ping(n)).await {
                                return Some(e);
                            }
                            pending.push_back((n, Instant::now()));
                        }
                    }
                    Incoming::Lost(why) => return Some(why),
                    Incoming::Nothing => {}
                },
                () = answer_due => {
                    return Some(format!("no answer to a ping within {}s", ANSWER_TIMEOUT.as_secs()));
                }
            }
        }
    }

    /// Writes every unsent message, then a ping that will confirm them.
    async fn flush(
        &mut self,
        session: &mut Session,
        pending: &mut VecDeque<(u64, Instant)>,
    ) -> Result<(), String> {
        let n = self.next_ping;
        let batch = lock(&self.shared.outbox).take_unsent(n);
        if batch.is_empty() {
            return Ok(());
        }
        self.next_ping += 1;
        write(session.send(&batch, n)).await?;
        pending.push_back((n, Instant::now()));
        Ok(())
    }

    fn take_ping(&mut self) -> u64 {
        let n = self.next_ping;
        self.next_ping += 1;
        n
    }
}

/// A write to the connection, bounded by [`WRITE_TIMEOUT`].
async fn write(io: impl Future<Output = std::io::Result<()>>) -> Result<(), String> {
    match tokio::time::timeout(WRITE_TIMEOUT, io).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "writing took longer than {}s",
            WRITE_TIMEOUT.as_secs()
        )),
    }
}
