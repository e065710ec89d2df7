//! The signals logalarm acts on, outside the engine: SIGTERM, SIGINT and
//! SIGHUP trigger the engine's shutdown token; under `logalarm run` those and
//! SIGUSR1 and SIGUSR2 are forwarded to the wrapped process instead (which
//! then ends the run by ending).

use crate::engine::{Forwarder, Shutdown};
use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};

/// The installed handlers. Once installed, a signal no longer has its default
/// action (ending logalarm) for the rest of the process, whether or not it is
/// waited for.
pub struct Handlers {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    /// SIGUSR1 and SIGUSR2, caught only to forward them.
    usr: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Handlers {
    /// Installs the handlers of SIGTERM, SIGINT and SIGHUP, and with `forward`
    /// those of SIGUSR1 and SIGUSR2 (left to their default action otherwise).
    /// Call within the tokio runtime.
    ///
    /// # Errors
    /// A handler cannot be installed.
    pub fn install(forward: bool) -> std::io::Result<Handlers> {
        let usr = if forward {
            Some((
                signal(SignalKind::user_defined1())?,
                signal(SignalKind::user_defined2())?,
            ))
        } else {
            None
        };
        Ok(Handlers {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
            usr,
        })
    }

    /// The next signal received.
    async fn recv(&mut self) -> Signal {
        let usr = async {
            match &mut self.usr {
                Some((usr1, usr2)) => tokio::select! {
                    Some(()) = usr1.recv() => Signal::SIGUSR1,
                    Some(()) = usr2.recv() => Signal::SIGUSR2,
                    else => std::future::pending().await,
                },
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(()) = self.term.recv() => Signal::SIGTERM,
            Some(()) = self.int.recv() => Signal::SIGINT,
            Some(()) = self.hup.recv() => Signal::SIGHUP,
            sig = usr => sig,
            else => std::future::pending().await,
        }
    }

    /// Triggers `shutdown` at the first stop signal, naming it as the cause;
    /// a second SIGTERM or SIGINT during the stop hurries it (the queues are
    /// no longer drained: the outbox keeps them). Others are caught and
    /// ignored: tokio keeps a handler installed for the life of the process.
    pub async fn stop(mut self, shutdown: Shutdown) {
        let sig = self.recv().await;
        shutdown.trigger(sig.as_str());
        loop {
            let sig = self.recv().await;
            if matches!(sig, Signal::SIGTERM | Signal::SIGINT) {
                tracing::warn!(
                    "{}: stopping now; what is not delivered stays in the outbox (with a state directory) or is reported lost",
                    sig.as_str()
                );
                shutdown.hurry(sig.as_str());
                return;
            }
        }
    }

    /// Forwards every signal to the wrapped process, for as long as the
    /// runtime runs.
    pub async fn forward(mut self, forwarder: Forwarder) {
        loop {
            forwarder.forward(self.recv().await);
        }
    }
}
