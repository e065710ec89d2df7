//! The matching thread: takes [`Event`]s from every input, in arrival order,
//! matches their lines and routes what fires to the alarm queues.
//!
//! One thread owns the scanner and the router, so per line there is no lock:
//! inputs meet the engine only at the bounded event queue, and the engine
//! meets the workers only at the alarm queues.

use crate::dispatch::router::Router;
use crate::input::follow::commits::Commits;
use crate::input::{Event, EventSender};
use crate::matcher::Matcher;
use tokio::sync::mpsc;

/// Runs until every input has dropped its sender, or an [`Event::Stop`] arrives.
pub fn run(
    matcher: &Matcher,
    mut router: Router,
    mut events: mpsc::Receiver<Event>,
    commits: Option<&Commits>,
) {
    let mut scanner = matcher.scanner(false);
    while let Some(event) = events.blocking_recv() {
        match event {
            Event::Lines(batch) => {
                // A followed file's lines: where they start in which file.
                let at = batch
                    .mark
                    .as_ref()
                    .map(|m| (m.key, m.offset.saturating_sub(batch.lines.len() as u64)));
                router.begin_batch(batch.source, &batch.lines, batch.headers, at);
                scanner.scan(&batch.lines, &mut router);
                router.tick();
                if let (Some(mark), Some(commits)) = (batch.mark, commits) {
                    commits.record(mark, router.offered());
                }
            }
            Event::Fire(fire) => {
                router.begin_batch(fire.source, &[], Vec::new(), None);
                router.fire(&fire.alarms, &fire.rule, &fire.message);
                router.flush();
            }
            Event::Tick => router.tick(),
            Event::Ended(source) => router.ended(&source),
            Event::Stop => break,
        }
    }
    // Nothing pending in the policy stage is lost at the end: what is held
    // back for later (digests, open records) goes out now, to be drained.
    router.finish();
    router.report_losses();
}

/// Sends [`Event::Tick`] every [`crate::input::TICK`] until the engine is
/// gone. Holds the queue weakly, so the engine still ends by itself once
/// every input is gone; a tick that finds the queue full is skipped (the
/// engine is busy and checks its timers after every batch anyway).
pub async fn ticker(events: mpsc::WeakSender<Event>) {
    let mut every = tokio::time::interval(crate::input::TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(events) = events.upgrade() else {
            return;
        };
        if let Err(mpsc::error::TrySendError::Closed(_)) = events.try_send(Event::Tick) {
            return;
        }
    }
}

/// A handle to send [`Event::Stop`] without keeping the queue open: the
/// engine still ends by itself once every input is gone.
pub struct Stopper(mpsc::WeakSender<Event>);

impl Stopper {
    /// Weakly holds `events`.
    pub fn new(events: &EventSender) -> Self {
        Stopper(events.downgrade())
    }

    /// Asks the engine to stop after the events already queued.
    pub async fn stop(&self) {
        if let Some(events) = self.0.upgrade() {
            let _ = events.send(Event::Stop).await;
        }
    }
}
