//! The alarm workers: prepared by [`Engine::build`](super::Engine::build)
//! (queues and counters, nothing running), spawned when the engine runs, and
//! drained at its end within the deadline.

use super::events::{AlarmTotals, WorkerFailed};
use super::shutdown::Completion;
use crate::dispatch::events::Undelivered;
use crate::dispatch::router::{Route, RouteSpec};
use crate::dispatch::{AlarmStats, Queued, worker};
use crate::internal_event::InternalEvent;
use crate::plan::PlannedAlarm;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The workers and queues of every alarm, not yet running.
pub struct Prepared {
    workers: Vec<(worker::Worker, mpsc::Receiver<Queued>)>,
    routes: Vec<RouteSpec>,
    stats: AlarmStatsList,
}

/// Each alarm's name and counters, in plan order.
pub type AlarmStatsList = Vec<(Arc<str>, Arc<AlarmStats>)>;

/// Makes every alarm's queue, counters and worker (in plan order), without
/// starting anything.
pub fn prepare(alarms: Vec<PlannedAlarm>) -> Prepared {
    // Every queue first: a worker holds a sender of its on_failure alarm's queue.
    let channels: Vec<_> = alarms
        .iter()
        .map(|a| {
            let (tx, rx) = mpsc::channel(a.queue_size);
            (tx, rx, Arc::new(AlarmStats::default()))
        })
        .collect();
    let fallbacks: Vec<Option<worker::Fallback>> = alarms
        .iter()
        .map(|a| {
            a.on_failure.map(|i| worker::Fallback {
                name: alarms[i].name.clone(),
                queue: channels[i].0.clone(),
                stats: channels[i].2.clone(),
            })
        })
        .collect();
    let mut workers = Vec::new();
    let mut routes = Vec::new();
    let mut stats = Vec::new();
    for ((alarm, (tx, rx, st)), fallback) in alarms.into_iter().zip(channels).zip(fallbacks) {
        let worker = worker::Worker {
            name: alarm.name.clone(),
            action: alarm.action,
            retry: alarm.retry,
            stats: st.clone(),
            fallback,
            message: alarm.message,
        };
        workers.push((worker, rx));
        stats.push((alarm.name.clone(), st.clone()));
        routes.push(RouteSpec {
            route: Route {
                name: alarm.name,
                queue: tx,
                stats: st,
            },
            policy: alarm.policy,
            needs_caps: alarm.needs_caps,
        });
    }
    Prepared {
        workers,
        routes,
        stats,
    }
}

/// The running workers.
pub struct Running {
    tasks: Vec<JoinHandle<()>>,
    /// Drop-to-complete: each task holds a part until it ends.
    done: Completion,
    stats: AlarmStatsList,
}

impl Prepared {
    /// Each alarm's name and counters, in plan order.
    pub fn stats(&self) -> AlarmStatsList {
        self.stats.clone()
    }

    /// Starts every worker on the current runtime; returns them and the
    /// router's sending sides.
    pub fn spawn(self) -> (Running, Vec<RouteSpec>) {
        let stats = self.stats;
        let done = Completion::new();
        let tasks = self
            .workers
            .into_iter()
            .map(|(worker, queue)| {
                let part = done.done();
                tokio::spawn(async move {
                    let _part = part;
                    worker.run(queue).await;
                })
            })
            .collect();
        (Running { tasks, done, stats }, self.routes)
    }
}

impl Running {
    /// Lets the workers deliver what is queued, within `deadline`, then
    /// reports each alarm: its notifications left undelivered
    /// ([`Undelivered`]) and its totals ([`AlarmTotals`]). Call once the
    /// matching thread has ended: each worker ends when its queue is empty
    /// and its senders are gone (the router's, and those of the alarms
    /// falling back to it).
    pub async fn drain(mut self, deadline: Duration) {
        let drained = tokio::time::timeout(deadline, self.done.wait()).await;
        if drained.is_ok() {
            for task in self.tasks {
                // Each has ended: this only collects how.
                if let Err(error) = task.await {
                    WorkerFailed { error: &error }.emit();
                }
            }
        } else {
            // Cancel what is still running (a retry's wait among it), and give the
            // cancelled actions a moment to clean up (a cmd kills its process
            // group when dropped).
            self.tasks.iter().for_each(JoinHandle::abort);
            let _ = tokio::time::timeout(Duration::from_secs(1), self.done.wait()).await;
        }
        for (name, st) in &self.stats {
            let pending = st.pending();
            if pending > 0 {
                Undelivered {
                    stats: st,
                    alarm: name,
                    count: pending,
                    deadline,
                }
                .emit();
            }
            AlarmTotals {
                alarm: name,
                counts: &st.counts(),
            }
            .emit();
        }
    }
}
