//! The alarm workers: prepared by [`Engine::build`](super::Engine::build)
//! (queues and counters, nothing running), spawned when the engine runs, and
//! drained at its end within the deadline.

use super::events::{AlarmTotals, WorkerFailed};
use super::shutdown::Completion;
use crate::dispatch::events::{Kept, Restored, Undelivered};
use crate::dispatch::outbox::{Lane, Outbox};
use crate::dispatch::router::{Route, RouteSpec};
use crate::dispatch::{AlarmStats, worker};
use crate::internal_event::InternalEvent;
use crate::plan::PlannedAlarm;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The workers and queues of every alarm, not yet running.
pub struct Prepared {
    workers: Vec<(worker::Worker, Arc<Lane>)>,
    routes: Vec<RouteSpec>,
    stats: AlarmStatsList,
    outbox: Outbox,
}

/// Each alarm's name and counters, in plan order.
pub type AlarmStatsList = Vec<(Arc<str>, Arc<AlarmStats>)>;

/// Makes every alarm's queue (its lane of `outbox`, in plan order), counters
/// and worker, without starting anything. `restored` is, per alarm, what a
/// previous run left in the outbox (counted and logged here).
pub fn prepare(alarms: Vec<PlannedAlarm>, outbox: Outbox, restored: &[u64]) -> Prepared {
    let lanes = outbox.lanes().to_vec();
    let stats_of: Vec<Arc<AlarmStats>> = alarms.iter().map(|_| Arc::default()).collect();
    for ((alarm, st), n) in alarms.iter().zip(&stats_of).zip(restored) {
        if *n > 0 {
            Restored {
                stats: st,
                alarm: &alarm.name,
                count: *n,
            }
            .emit();
        }
    }
    // Every lane first: a worker holds a sender of its on_failure alarm's lane.
    let fallbacks: Vec<Option<worker::Fallback>> = alarms
        .iter()
        .map(|a| {
            a.on_failure.map(|i| worker::Fallback {
                name: alarms[i].name.clone(),
                lane: lanes[i].sender(),
                stats: stats_of[i].clone(),
            })
        })
        .collect();
    let mut workers = Vec::new();
    let mut routes = Vec::new();
    let mut stats = Vec::new();
    for (((alarm, lane), st), fallback) in
        alarms.into_iter().zip(lanes).zip(stats_of).zip(fallbacks)
    {
        let worker = worker::Worker {
            name: alarm.name.clone(),
            action: alarm.action,
            retry: alarm.retry,
            stats: st.clone(),
            fallback,
            message: alarm.message,
            concurrency: alarm.concurrency,
        };
        stats.push((alarm.name.clone(), st.clone()));
        routes.push(RouteSpec {
            route: Route {
                name: alarm.name,
                lane: lane.sender(),
                stats: st,
            },
            policy: alarm.policy,
            needs_caps: alarm.needs_caps,
        });
        workers.push((worker, lane));
    }
    Prepared {
        workers,
        routes,
        stats,
        outbox,
    }
}

/// The running workers.
pub struct Running {
    tasks: Vec<JoinHandle<()>>,
    /// Drop-to-complete: each task holds a part until it ends.
    done: Completion,
    stats: AlarmStatsList,
    outbox: Outbox,
}

impl Prepared {
    /// Each alarm's name and counters, in plan order.
    pub fn stats(&self) -> AlarmStatsList {
        self.stats.clone()
    }

    /// Each alarm's lane, in plan order: how far its notifications are safe
    /// (what a followed file's saved position waits for).
    pub fn lanes(&self) -> Vec<Arc<Lane>> {
        self.outbox.lanes().to_vec()
    }

    /// Starts every worker on the current runtime; returns them and the
    /// router's sending sides.
    pub fn spawn(self) -> (Running, Vec<RouteSpec>) {
        let stats = self.stats;
        let done = Completion::new();
        let tasks = self
            .workers
            .into_iter()
            .map(|(worker, lane)| {
                let part = done.done();
                tokio::spawn(async move {
                    let _part = part;
                    worker.run(lane).await;
                })
            })
            .collect();
        let outbox = self.outbox;
        (
            Running {
                tasks,
                done,
                stats,
                outbox,
            },
            self.routes,
        )
    }
}

impl Running {
    /// Lets the workers deliver what is queued, within `deadline` (or until
    /// `hurry` resolves: a second stop signal), then reports each alarm: its
    /// notifications left undelivered ([`Undelivered`], or [`Kept`] in the
    /// outbox for the next start) and its totals ([`AlarmTotals`]). Call once
    /// the matching thread has ended: each worker ends when its lane is empty
    /// and its senders are gone (the router's, and those of the alarms
    /// falling back to it).
    pub async fn drain(mut self, deadline: Duration, hurry: impl Future<Output = ()>) {
        let drained = tokio::select! {
            drained = tokio::time::timeout(deadline, self.done.wait()) => drained.is_ok(),
            () = hurry => false,
        };
        if drained {
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
            let _ = tokio::time::timeout(Duration::from_millis(500), self.done.wait()).await;
        }
        for ((name, st), lane) in self.stats.iter().zip(self.outbox.lanes()) {
            lane.close();
            let pending = lane.pending();
            if pending > 0 && lane.journaled() {
                Kept {
                    stats: st,
                    alarm: name,
                    count: pending,
                }
                .emit();
            } else if pending > 0 {
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
        self.outbox.close();
    }
}
