//! The worker of one alarm: takes notifications off the alarm's queue, one at a
//! time, and hands them to the action.
//!
//! At shutdown the queue is closed and what is in it is still delivered; the
//! caller bounds that with its drain deadline.

use super::AlarmStats;
use logalarm_plugin_api::{Action, Notification};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// Runs until the queue is closed and empty, or until `shutdown` turns true and
/// what was queued has been delivered.
pub async fn run(
    name: Arc<str>,
    action: Box<dyn Action>,
    mut queue: mpsc::Receiver<Notification>,
    stats: Arc<AlarmStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            biased;
            note = queue.recv() => match note {
                Some(note) => deliver(&name, &*action, &note, &stats).await,
                None => return,
            },
            () = stopped(&mut shutdown) => break,
        }
    }
    queue.close();
    while let Some(note) = queue.recv().await {
        deliver(&name, &*action, &note, &stats).await;
    }
}

/// Resolves once `shutdown` is true (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

async fn deliver(name: &str, action: &dyn Action, note: &Notification, stats: &AlarmStats) {
    match action.fire(note).await {
        Ok(()) => AlarmStats::bump(&stats.delivered),
        Err(e) => {
            AlarmStats::bump(&stats.failed);
            tracing::warn!(alarm = %name, "delivery failed: {e}");
        }
    }
}
