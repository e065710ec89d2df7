//! The worker of one alarm: takes notifications off the alarm's queue, one at a
//! time and in order, and hands them to the action, retrying failed deliveries
//! by the alarm's [`RetryPolicy`].
//!
//! Retries block the queue: while one notification waits for its next attempt,
//! the ones behind it wait too, and the queue keeps taking new ones up to its
//! capacity (then the router counts and reports the overflow). So an alarm's
//! notifications arrive in the order their lines did, and what waits is bounded
//! by the queue size plus the one being tried. Each notification's deadline
//! counts from when it was made, not from when its turn came, so one that waited
//! long behind a retried one has less time left; whatever happens it is tried
//! once, unless its deadline passed while it waited *and* the alarm's last
//! attempt failed transiently (its receiver is known to be down): then it fails
//! at once, so that a long outage drains a stale backlog quickly instead of
//! trying each notification in turn.
//!
//! A notification that failed for good is counted as failed; when the alarm has
//! an `on_failure` alarm, it is handed to that alarm's queue (the same id and
//! message; a new deadline from the hand-over) without waiting: a full fallback
//! queue counts the notification as that alarm's overflow.
//!
//! Before the first attempt, the notification's message is rendered from the
//! alarm's `message` template, or, when it has none, from its kind's default
//! template (a digest, an escalation, a recovery, an absence; a matched line
//! goes out as it is). The result is what every attempt delivers, whole (a
//! template's output is not cut to `alarm-msg-size`: its author chose its
//! length, and a digest is long by design); a template failing on this
//! notification is a permanent delivery failure. A notification handed to the
//! `on_failure` alarm is the one before rendering, so that alarm words it by
//! its own template.
//!
//! The worker ends when every sender of its queue is gone: the router (which
//! ends with the engine, before the run loop drains the alarms) and the workers
//! of the alarms whose `on_failure` it is (which end before it, as fallbacks
//! form no loop). What is queued is still delivered, with retries; the run loop
//! bounds that with its drain deadline and aborts the worker there, and a
//! notification still queued or between attempts then counts as undelivered.

use super::events::{
    AttemptFailed, Delivered, DeliveryFailed, Enqueued, FallbackFull, FallbackStopped, HandedOver,
    Spilled, WorkerTaskFailed, human,
};
use super::outbox::{Lane, LaneSender, Taken};
use super::retry::RetryPolicy;
use super::{AlarmStats, Queued};
use crate::internal_event::InternalEvent;
use logalarm_plugin_api::{Action, ActionError, Notification};
use logalarm_template::Template;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The alarm a worker hands its failed notifications to (`on_failure`).
pub struct Fallback {
    /// Its name.
    pub name: Arc<str>,
    /// Its queue.
    pub lane: LaneSender,
    /// Its counters.
    pub stats: Arc<AlarmStats>,
}

/// One alarm's delivery: its action, how it retries, where failures go.
pub struct Worker {
    /// The alarm's name.
    pub name: Arc<str>,
    /// The built action.
    pub action: Box<dyn Action>,
    /// How failed deliveries are retried.
    pub retry: RetryPolicy,
    /// The alarm's counters.
    pub stats: Arc<AlarmStats>,
    /// Where notifications that failed for good go, if anywhere.
    pub fallback: Option<Fallback>,
    /// The alarm's `message` template, if it has one.
    pub message: Option<Arc<Template>>,
    /// Deliveries under way at once: 1 keeps the queue's order; more start
    /// each notification as it comes, up to this many (uWSGI starts every
    /// `cmd` alarm at once).
    pub concurrency: usize,
}

/// How one notification's delivery ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Delivered,
    /// Failed for good; `receiver_down` when the last attempt failed transiently.
    Failed {
        receiver_down: bool,
    },
}

impl Worker {
    /// Delivers what arrives on `lane` until every sender of it is gone and
    /// it is empty, telling the lane as each is finished.
    pub async fn run(self, lane: Arc<Lane>) {
        let concurrency = self.concurrency.max(1);
        let worker = Arc::new(self);
        let receiver_down = Arc::new(AtomicBool::new(false));
        let mut running = JoinSet::new();
        loop {
            // Room for one more, or wait for one under way to end.
            while running.len() >= concurrency {
                if let Some(Err(e)) = running.join_next().await {
                    WorkerTaskFailed {
                        alarm: &worker.name,
                        error: &e,
                    }
                    .emit();
                }
            }
            let next = if running.is_empty() {
                lane.next().await
            } else {
                tokio::select! {
                    next = lane.next() => next,
                    Some(ended) = running.join_next() => {
                        if let Err(e) = ended {
                            WorkerTaskFailed { alarm: &worker.name, error: &e }.emit();
                        }
                        continue;
                    }
                }
            };
            let Some(queued) = next else { break };
            let (seq, id) = (queued.lane_seq, queued.note.id);
            if concurrency == 1 {
                worker.deliver_one(queued, &receiver_down).await;
                lane.finish(seq, id);
                continue;
            }
            let (worker, lane, down) = (worker.clone(), lane.clone(), receiver_down.clone());
            running.spawn(async move {
                worker.deliver_one(queued, &down).await;
                lane.finish(seq, id);
            });
        }
        while let Some(ended) = running.join_next().await {
            if let Err(e) = ended {
                WorkerTaskFailed {
                    alarm: &worker.name,
                    error: &e,
                }
                .emit();
            }
        }
    }

    /// Delivers one notification, keeping `receiver_down` (whether the
    /// alarm's last attempt failed transiently) up to date.
    async fn deliver_one(&self, queued: Queued, receiver_down: &AtomicBool) {
        let down = receiver_down.load(Ordering::Relaxed);
        let down = match self.deliver(queued, down).await {
            Outcome::Delivered => false,
            Outcome::Failed { receiver_down } => receiver_down,
        };
        receiver_down.store(down, Ordering::Relaxed);
    }

    /// Tries one notification until it is delivered or fails for good.
    async fn deliver(&self, queued: Queued, receiver_down: bool) -> Outcome {
        let Queued { note, since, .. } = queued;
        let since = Instant::from_std(since);
        let deadline = since
            .checked_add(self.retry.deadline)
            .unwrap_or_else(|| since + Duration::from_secs(86400 * 365));
        if receiver_down && Instant::now() >= deadline {
            self.fail(
                note,
                &format!(
                    "not tried: its deadline of {} passed while it waited, and the alarm's last attempt failed",
                    human(self.retry.deadline)
                ),
            );
            return Outcome::Failed {
                receiver_down: true,
            };
        }
        let rendered;
        let deliver = match self
            .message
            .as_deref()
            .or_else(|| logalarm_template::default_template(note.kind))
        {
            None => &note,
            Some(template) => match template.render(&note) {
                Ok(text) => {
                    rendered = Notification {
                        message: text.into_bytes(),
                        truncated_from: None,
                        ..note.clone()
                    };
                    &rendered
                }
                Err(e) => {
                    self.fail(
                        note,
                        &format!("delivery failed: {e} (permanent, not retried)"),
                    );
                    return Outcome::Failed {
                        receiver_down: false,
                    };
                }
            },
        };
        let started = Instant::now();
        let mut waits = self.retry.waits();
        let mut attempt: u32 = 1;
        loop {
            let error = match self.action.fire(deliver).await {
                Ok(()) => {
                    Delivered {
                        stats: &self.stats,
                        alarm: &self.name,
                        id: note.id,
                        attempt,
                        elapsed: started.elapsed(),
                    }
                    .emit();
                    return Outcome::Delivered;
                }
                Err(error) => error,
            };
            let verdict = match &error {
                ActionError::Permanent(_) => Err("permanent, not retried".to_owned()),
                ActionError::Transient(_) | ActionError::RetryAfter(..) => match waits.next() {
                    None => Err("no attempts left".to_owned()),
                    Some(wait) => {
                        let wait = match &error {
                            ActionError::RetryAfter(_, asked) => wait.max(*asked),
                            _ => wait,
                        };
                        if Instant::now() + wait > deadline {
                            Err(format!(
                                "the next attempt (in {}) would start after the deadline of {}",
                                human(wait),
                                human(self.retry.deadline)
                            ))
                        } else {
                            Ok(wait)
                        }
                    }
                },
            };
            match verdict {
                Ok(wait) => {
                    AttemptFailed {
                        stats: &self.stats,
                        alarm: &self.name,
                        id: note.id,
                        attempt,
                        attempts: self.retry.attempts,
                        error: &error,
                        wait,
                    }
                    .emit();
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(why) => {
                    let text = if self.retry.attempts == 1 {
                        format!("delivery failed: {error}")
                    } else if attempt == 1 {
                        format!("delivery failed: {error}; {why}")
                    } else {
                        format!(
                            "delivery failed: {error}; {why}; gave up after {attempt} attempt{} in {}",
                            if attempt == 1 { "" } else { "s" },
                            human(started.elapsed())
                        )
                    };
                    self.fail(note, &text);
                    return Outcome::Failed {
                        receiver_down: error.is_transient(),
                    };
                }
            }
        }
    }

    /// Counts `note` as failed (logging `text`), after handing it to the
    /// fallback alarm if there is one (so that the fallback has it queued
    /// before this alarm counts it done: the saved read positions of followed
    /// files never pass a line whose alarm is neither delivered nor handed on).
    /// The hand-over's own line comes after the failure's.
    fn fail(&self, note: Notification, text: &str) {
        let id = note.id;
        let failed = DeliveryFailed {
            stats: &self.stats,
            alarm: &self.name,
            id,
            text,
        };
        let Some(fallback) = &self.fallback else {
            failed.emit();
            return;
        };
        let mut handed = vec![Queued::new(note, Instant::now().into_std())];
        let mut result = Taken::Closed;
        fallback
            .lane
            .lane()
            .offer(&mut handed, |taken, _| result = taken);
        match result {
            Taken::Queued | Taken::Spilled => {
                Enqueued {
                    stats: &fallback.stats,
                }
                .emit();
                if result == Taken::Spilled {
                    Spilled {
                        stats: &fallback.stats,
                    }
                    .emit();
                }
                failed.emit();
                HandedOver {
                    stats: &self.stats,
                    alarm: &self.name,
                    id,
                    to: &fallback.name,
                }
                .emit();
            }
            Taken::Dropped => {
                failed.emit();
                FallbackFull {
                    fallback: &fallback.stats,
                    alarm: &self.name,
                    id,
                    to: &fallback.name,
                    capacity: fallback.lane.lane().capacity(),
                }
                .emit();
            }
            Taken::Closed => {
                failed.emit();
                FallbackStopped {
                    alarm: &self.name,
                    id,
                    to: &fallback.name,
                }
                .emit();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logalarm_plugin_api::{ActionFuture, Source};
    use std::sync::Mutex;
    use std::time::SystemTime;

    /// Lanes in the shape of the channels these tests were written with.
    mod mpsc {
        use super::super::{Lane, LaneSender, Queued, Taken};
        use std::sync::Arc;

        pub struct Sender(pub LaneSender);

        impl Sender {
            pub fn try_send(&self, q: Queued) -> Result<(), Taken> {
                let mut taken = Taken::Closed;
                self.0.lane().offer(&mut vec![q], |t, _| taken = t);
                if taken == Taken::Queued {
                    Ok(())
                } else {
                    Err(taken)
                }
            }
        }

        pub fn channel(capacity: usize) -> (Sender, Arc<Lane>) {
            let lane = Lane::in_memory("q".into(), capacity);
            (Sender(lane.sender()), lane)
        }
    }

    /// Which notification each call delivered, and when.
    type Calls = Arc<Mutex<Vec<(Arc<str>, Instant)>>>;

    /// An action that answers from a script and records when it was called.
    struct Scripted {
        answers: Mutex<Vec<Result<(), ActionError>>>,
        calls: Calls,
    }

    impl Action for Scripted {
        fn fire<'a>(&'a self, n: &'a Notification) -> ActionFuture<'a> {
            Box::pin(async move {
                self.calls
                    .lock()
                    .unwrap()
                    .push((format!("n{}", n.id.seq).into(), Instant::now()));
                let mut answers = self.answers.lock().unwrap();
                if answers.is_empty() {
                    Ok(())
                } else {
                    answers.remove(0)
                }
            })
        }
    }

    fn worker(
        retry: RetryPolicy,
        answers: Vec<Result<(), ActionError>>,
    ) -> (Worker, Arc<AlarmStats>, Calls) {
        let calls = Calls::default();
        let stats = Arc::new(AlarmStats::default());
        let w = Worker {
            name: "a".into(),
            action: Box::new(Scripted {
                answers: Mutex::new(answers),
                calls: calls.clone(),
            }),
            retry,
            stats: stats.clone(),
            fallback: None,
            message: None,
            concurrency: 1,
        };
        (w, stats, calls)
    }

    /// A notification whose id's sequence number is the digits of `id` ("n4": 4).
    fn queued(id: &str) -> Queued {
        Queued {
            note: Notification {
                id: logalarm_plugin_api::NoteId {
                    seq: id.trim_start_matches('n').parse().unwrap(),
                    ..Default::default()
                },
                ..Notification::new(
                    "a".into(),
                    "r".into(),
                    b"m".to_vec(),
                    Source::stdin(),
                    SystemTime::UNIX_EPOCH,
                )
            },
            since: Instant::now().into_std(),
            lane_seq: 0,
        }
    }

    fn transient() -> Result<(), ActionError> {
        Err(ActionError::Transient("down".into()))
    }

    const POLICY: RetryPolicy = RetryPolicy {
        attempts: 5,
        deadline: Duration::from_secs(60),
        delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(4),
    };

    /// Runs `w` over `notes` (all queued at once) to its end; returns the
    /// seconds of each call since the start, by id.
    async fn run(w: Worker, notes: Vec<Queued>, calls: &Calls) -> Vec<(String, f64)> {
        let start = Instant::now();
        let (tx, rx) = mpsc::channel(16);
        for n in notes {
            tx.try_send(n).unwrap();
        }
        drop(tx);
        w.run(rx).await;
        calls
            .lock()
            .unwrap()
            .iter()
            .map(|(id, at)| (id.to_string(), (*at - start).as_secs_f64()))
            .collect()
    }

    fn counts(s: &AlarmStats) -> (u64, u64, u64) {
        let get = AlarmStats::get;
        (get(&s.delivered), get(&s.failed), get(&s.retried))
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_back_off_exponentially_with_jitter() {
        let (w, stats, calls) = worker(POLICY, vec![transient(), transient(), transient()]);
        let times = run(w, vec![queued("n1")], &calls).await;
        let at: Vec<f64> = times.iter().map(|(_, t)| *t).collect();
        assert_eq!(at.len(), 4, "{at:?}");
        assert_eq!(at[0], 0.0);
        // Waits of 1, 2, 4 s, each plus up to as much again.
        for (i, base) in [1.0, 2.0, 4.0].iter().enumerate() {
            let wait = at[i + 1] - at[i];
            assert!(
                wait >= *base && wait < 2.0 * base,
                "wait {i}: {wait} ({at:?})"
            );
        }
        assert_eq!(counts(&stats), (1, 0, 3));
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_run_out() {
        let (w, stats, calls) = worker(POLICY, (0..10).map(|_| transient()).collect());
        let times = run(w, vec![queued("n1")], &calls).await;
        assert_eq!(times.len(), 5);
        assert_eq!(counts(&stats), (0, 1, 4));
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_failures_are_not_retried() {
        let (w, stats, calls) = worker(
            POLICY,
            vec![Err(ActionError::Permanent("404".into())), Ok(())],
        );
        let times = run(w, vec![queued("n1"), queued("n2")], &calls).await;
        assert_eq!(times, vec![("n1".to_owned(), 0.0), ("n2".to_owned(), 0.0)]);
        assert_eq!(counts(&stats), (1, 1, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn no_attempt_starts_after_the_deadline() {
        let policy = RetryPolicy {
            attempts: 100,
            deadline: Duration::from_secs(10),
            ..POLICY
        };
        let (w, stats, calls) = worker(policy, (0..100).map(|_| transient()).collect());
        let times = run(w, vec![queued("n1")], &calls).await;
        let last = times.last().unwrap().1;
        assert!(last <= 10.0, "{times:?}");
        // 1, 2, 4 (+jitter) make at least 7 s: a 4 s wait more would pass 10 s.
        assert!((3..=4).contains(&times.len()), "{times:?}");
        assert_eq!(counts(&stats).1, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_waited_for() {
        let (w, stats, calls) = worker(
            POLICY,
            vec![Err(ActionError::RetryAfter(
                "429".into(),
                Duration::from_secs(7),
            ))],
        );
        let times = run(w, vec![queued("n1")], &calls).await;
        assert_eq!(times.len(), 2);
        assert_eq!(times[1].1, 7.0, "{times:?}");
        assert_eq!(counts(&stats), (1, 0, 1));
        // A delay reaching past the deadline gives up at once.
        let (w, stats, calls) = worker(
            POLICY,
            vec![Err(ActionError::RetryAfter(
                "429".into(),
                Duration::from_secs(3600),
            ))],
        );
        let times = run(w, vec![queued("n1")], &calls).await;
        assert_eq!(times.len(), 1);
        assert_eq!(counts(&stats), (0, 1, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_keep_order_and_a_stale_backlog_fails_fast() {
        let policy = RetryPolicy {
            attempts: 3,
            deadline: Duration::from_secs(10),
            ..POLICY
        };
        // n2 and n3 were made at 0 s, n1 at 20 s but queued before them. n1
        // fails three times (by 26 s, within its deadline), and n2's and n3's
        // deadline (10 s) passed behind a down receiver: they fail without a
        // try. n4, queued later, is tried.
        let (w, stats, calls) = worker(policy, vec![transient(), transient(), transient()]);
        let (tx, rx) = mpsc::channel(16);
        let (n2, n3) = (queued("n2"), queued("n3"));
        tokio::time::sleep(Duration::from_secs(20)).await;
        for n in [queued("n1"), n2, n3] {
            tx.try_send(n).unwrap();
        }
        let start = Instant::now();
        let task = tokio::spawn(w.run(rx));
        tokio::time::sleep(Duration::from_secs(60)).await;
        tx.try_send(queued("n4")).unwrap();
        drop(tx);
        task.await.unwrap();
        let ids: Vec<String> = calls
            .lock()
            .unwrap()
            .iter()
            .map(|(id, _)| id.to_string())
            .collect();
        assert_eq!(ids, ["n1", "n1", "n1", "n4"]);
        assert!(calls.lock().unwrap()[3].1 - start >= Duration::from_secs(60));
        assert_eq!(counts(&stats), (1, 3, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stale_notification_is_still_tried_once_when_the_receiver_is_up() {
        let policy = RetryPolicy {
            deadline: Duration::from_secs(5),
            ..POLICY
        };
        let (w, stats, calls) = worker(policy, vec![]);
        let old = queued("n9");
        tokio::time::sleep(Duration::from_secs(60)).await;
        run(w, vec![old], &calls).await;
        assert_eq!(counts(&stats), (1, 0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_handed_to_the_fallback() {
        let (mut w, stats, calls) = worker(
            RetryPolicy::LOCAL,
            vec![
                Err(ActionError::Permanent("no".into())),
                Err(ActionError::Transient("down".into())),
            ],
        );
        // Room for one: the second failure finds the fallback's queue full.
        let (ftx, frx) = mpsc::channel(1);
        let fstats = Arc::new(AlarmStats::default());
        w.fallback = Some(Fallback {
            name: "b".into(),
            lane: ftx.0,
            stats: fstats.clone(),
        });
        run(w, vec![queued("n1"), queued("n2")], &calls).await;
        let handed = frx.next().await.unwrap();
        assert_eq!(handed.note.id.seq, 1);
        assert!(frx.next().await.is_none(), "the worker dropped its sender");
        assert_eq!(counts(&stats), (0, 2, 0));
        assert_eq!(AlarmStats::get(&stats.handed_over), 1);
        assert_eq!(
            (
                AlarmStats::get(&fstats.enqueued),
                AlarmStats::get(&fstats.overflow)
            ),
            (1, 1)
        );
    }

    /// An action that records the messages it delivers.
    struct Recording(Arc<Mutex<Vec<String>>>);

    impl Action for Recording {
        fn fire<'a>(&'a self, n: &'a Notification) -> ActionFuture<'a> {
            Box::pin(async move {
                let text = String::from_utf8_lossy(&n.message).into_owned();
                self.0.lock().unwrap().push(text);
                Ok(())
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn messages_are_rendered_before_delivery() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let stats = Arc::new(AlarmStats::default());
        let template = Template::compile("message", "{{ kind }} {{ line | upper }} x{{ count }}");
        let w = Worker {
            name: "a".into(),
            action: Box::new(Recording(got.clone())),
            retry: RetryPolicy::LOCAL,
            stats: stats.clone(),
            fallback: None,
            message: Some(Arc::new(template.unwrap())),
            concurrency: 1,
        };
        let mut cut = queued("n1");
        cut.note.truncated_from = Some(100);
        // `length` fails on a host that is not there: a permanent failure.
        let failing = Template::compile("message", "{{ host | length }}").unwrap();
        let (tx, rx) = mpsc::channel(4);
        tx.try_send(cut).unwrap();
        drop(tx);
        w.run(rx).await;
        assert_eq!(
            *got.lock().unwrap(),
            ["alarm M [LOGALARM: TRUNCATED, 100 BYTES IN ALL] x1"]
        );
        let w = Worker {
            name: "a".into(),
            action: Box::new(Recording(got.clone())),
            retry: RetryPolicy::LOCAL,
            stats: stats.clone(),
            fallback: None,
            message: Some(Arc::new(failing)),
            concurrency: 1,
        };
        let (tx, rx) = mpsc::channel(4);
        tx.try_send(queued("n2")).unwrap();
        drop(tx);
        w.run(rx).await;
        assert_eq!(got.lock().unwrap().len(), 1);
        assert_eq!(counts(&stats), (1, 1, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn policy_notifications_get_their_default_wording() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let w = Worker {
            name: "a".into(),
            action: Box::new(Recording(got.clone())),
            retry: RetryPolicy::LOCAL,
            stats: Arc::new(AlarmStats::default()),
            fallback: None,
            message: None,
            concurrency: 1,
        };
        let mut resolved = queued("n1");
        resolved.note.kind = logalarm_plugin_api::Kind::Resolved;
        let (tx, rx) = mpsc::channel(4);
        tx.try_send(resolved).unwrap();
        tx.try_send(queued("n2")).unwrap();
        drop(tx);
        w.run(rx).await;
        assert_eq!(*got.lock().unwrap(), ["RESOLVED a: m", "m"]);
    }
}
