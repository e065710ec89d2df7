//! Graceful shutdown made explicit, as in mini-redis: a [`Shutdown`] token
//! that every task listens to, and drop-to-complete ([`Completion`]) so that
//! whoever waits knows when every task of a group is done.
//!
//! The token is a `watch` channel of `bool`: the inputs already take a
//! `watch::Receiver<bool>` as their stop, so [`Shutdown::subscribe`] hands
//! each of them its listener without a bridge task, and a thread (stdin, the
//! file follower) can look at it without blocking.

use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, watch};

/// The shutdown token: cloned to whoever may stop the engine (the binary's
/// signal task, a test, a reload), and listened to by every task of the engine.
///
/// Triggering it is idempotent: the first cause is kept. An engine run with
/// an already triggered token stops at once (inputs take nothing, queues
/// drain).
#[derive(Clone, Debug)]
pub struct Shutdown(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    stop: watch::Sender<bool>,
    cause: OnceLock<String>,
    /// A second stop: the drain is cut short.
    hurry: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A token not yet triggered.
    pub fn new() -> Self {
        let (stop, _) = watch::channel(false);
        let (hurry, _) = watch::channel(false);
        Shutdown(Arc::new(Inner {
            stop,
            cause: OnceLock::new(),
            hurry,
        }))
    }

    /// Asks every task listening to stop; `cause` says why, for the log
    /// (`SIGTERM`, `reload`, …). Only the first call's cause is kept.
    pub fn trigger(&self, cause: &str) {
        let _ = self.0.cause.set(cause.to_owned());
        self.0.stop.send_replace(true);
    }

    /// Whether the token was triggered.
    pub fn is_triggered(&self) -> bool {
        *self.0.stop.borrow()
    }

    /// Why the token was triggered (the first cause given), if it was.
    pub fn cause(&self) -> Option<&str> {
        self.0.cause.get().map(String::as_str)
    }

    /// Resolves once the token is triggered (at once if it already was).
    pub async fn triggered(&self) {
        let mut stop = self.subscribe();
        // The sender lives in `self`: `wait_for` cannot fail while we hold it.
        let _ = stop.wait_for(|stop| *stop).await;
    }

    /// Asks a stop under way to end now (a second SIGTERM or SIGINT): the
    /// alarm queues are no longer drained; what they hold stays in the
    /// outbox for the next start (or is reported lost, without one).
    /// Triggers the token too, if it was not.
    pub fn hurry(&self, cause: &str) {
        self.trigger(cause);
        self.0.hurry.send_replace(true);
    }

    /// Resolves once [`Shutdown::hurry`] was called (at once if it was).
    pub async fn hurried(&self) {
        let mut hurry = self.0.hurry.subscribe();
        let _ = hurry.wait_for(|h| *h).await;
    }

    /// A listener for a task: its value turns `true` when the token is
    /// triggered.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.0.stop.subscribe()
    }
}

/// Drop-to-complete: each task of a group holds a [`Done`] and drops it when
/// it ends (however it ends: a panic drops it too); [`Completion::wait`]
/// resolves once every one is dropped. Nothing is ever sent on the channel:
/// its closing is the message.
pub struct Completion {
    done: Option<mpsc::Sender<()>>,
    all_dropped: mpsc::Receiver<()>,
}

/// A task's part of a [`Completion`]: dropping it says the task is done.
#[derive(Clone)]
pub struct Done {
    _held: mpsc::Sender<()>,
}

impl Default for Completion {
    fn default() -> Self {
        Self::new()
    }
}

impl Completion {
    /// A group with no task yet.
    pub fn new() -> Self {
        let (done, all_dropped) = mpsc::channel(1);
        Completion {
            done: Some(done),
            all_dropped,
        }
    }

    /// A part for one more task of the group. After [`Completion::wait`] has
    /// begun, no task is added.
    pub fn done(&self) -> Done {
        Done {
            _held: self.done.clone().unwrap_or_else(|| mpsc::channel(1).0),
        }
    }

    /// Resolves once every task's [`Done`] is dropped.
    pub async fn wait(&mut self) {
        self.done = None;
        let _ = self.all_dropped.recv().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn every_listener_sees_the_trigger_and_its_first_cause() {
        let shutdown = Shutdown::new();
        let mut listener = shutdown.subscribe();
        assert!(!shutdown.is_triggered());
        let clone = shutdown.clone();
        let waiter = tokio::spawn(async move { clone.triggered().await });
        shutdown.trigger("SIGTERM");
        shutdown.trigger("SIGINT");
        waiter.await.unwrap();
        assert!(*listener.borrow_and_update());
        assert_eq!(shutdown.cause(), Some("SIGTERM"));
        // A task subscribing late sees it at once.
        shutdown.triggered().await;
    }

    #[tokio::test]
    async fn completion_waits_for_every_part_to_be_dropped() {
        let mut group = Completion::new();
        let (a, b) = (group.done(), group.done());
        let task = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(a);
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(b);
        });
        tokio::time::timeout(Duration::from_secs(5), group.wait())
            .await
            .expect("every part dropped");
        assert!(task.is_finished() || task.await.is_ok());
        // An empty group is complete at once.
        Completion::new().wait().await;
    }
}
