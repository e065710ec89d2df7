//! The messages of one alarm that the server has not confirmed yet, in order.
//!
//! A message is *sent* when it was written to a live connection, followed by
//! a ping (XEP-0199); it is *confirmed* when the server answers that ping (or
//! any later one): RFC 6120 §10.1 makes a server process the stanzas of a
//! stream in order, so the answer proves it took every message before it.
//! When the connection is lost first, the sent messages become unsent again
//! and go out, in order, on the next connection. A message therefore reaches
//! its recipients at least once; twice only when the connection died after
//! the server took it and before its answer came back.
//!
//! Each message carries the notification's id, so that a notification the
//! engine retries (after a timeout) joins its message if that is still
//! waiting for the server's answer instead of sending a second copy, and one
//! confirmed meanwhile is not sent again. A message not yet written when its
//! `fire` timed out is withdrawn ([`Outbox::abandon`]).

use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::oneshot;

/// How many confirmed ids are remembered, to recognise a retried notification
/// whose first attempt was confirmed after it timed out.
const RECENT: usize = 1024;

/// What became of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The server took it for every recipient.
    Delivered,
    /// The server took it, but bounced it for some recipients
    /// (`recipient: condition`, …), or refused the login: retrying won't help.
    Refused(String),
}

/// Whether a message waits for a connection or for the server's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Unsent,
    /// Written to the connection, before the ping with this number.
    Sent(u64),
}

struct Entry {
    id: Arc<str>,
    text: Arc<str>,
    state: State,
    /// The `fire` waiting for the outcome, if any (gone after its timeout).
    waiter: Option<oneshot::Sender<Outcome>>,
    /// Recipients the server bounced this message for: `jid: condition`.
    bounces: Vec<String>,
}

/// What [`Outbox::submit`] did with a message.
#[derive(Debug)]
pub enum Submitted {
    /// Queued (or already queued under the same id): the outcome arrives here.
    Queued(oneshot::Receiver<Outcome>),
    /// A message with this id was confirmed already.
    AlreadyDelivered,
    /// The outbox is full; the message was not queued.
    Full,
}

/// The unconfirmed messages of one alarm, oldest first, at most `capacity`.
pub struct Outbox {
    entries: VecDeque<Entry>,
    capacity: usize,
    recent: VecDeque<Arc<str>>,
}

impl Outbox {
    /// An empty outbox holding at most `capacity` messages.
    pub fn new(capacity: usize) -> Outbox {
        Outbox {
            entries: VecDeque::new(),
            capacity,
            recent: VecDeque::new(),
        }
    }

    /// Messages not yet confirmed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether every message was confirmed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Messages waiting for a connection (not written to the current one).
    pub fn unsent(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.state == State::Unsent)
            .count()
    }

    /// Queues message `text` under notification id `id`, or re-attaches to the
    /// message already queued under it.
    pub fn submit(&mut self, id: &Arc<str>, text: impl FnOnce() -> Arc<str>) -> Submitted {
        if self.recent.iter().any(|r| r == id) {
            return Submitted::AlreadyDelivered;
        }
        let (tx, rx) = oneshot::channel();
        if let Some(entry) = self.entries.iter_mut().find(|e| e.id == *id) {
            entry.waiter = Some(tx);
            return Submitted::Queued(rx);
        }
        if self.entries.len() >= self.capacity {
            return Submitted::Full;
        }
        self.entries.push_back(Entry {
            id: id.clone(),
            text: text(),
            state: State::Unsent,
            waiter: Some(tx),
            bounces: Vec::new(),
        });
        Submitted::Queued(rx)
    }

    /// Marks every unsent message as sent before ping `ping` and returns them
    /// (id, text), oldest first, for writing to the connection.
    pub fn take_unsent(&mut self, ping: u64) -> Vec<(Arc<str>, Arc<str>)> {
        self.entries
            .iter_mut()
            .filter(|e| e.state == State::Unsent)
            .map(|e| {
                e.state = State::Sent(ping);
                (e.id.clone(), e.text.clone())
            })
            .collect()
    }

    /// The server answered ping `ping`: every message sent before it is
    /// confirmed and leaves the outbox. Returns how many.
    pub fn confirm(&mut self, ping: u64) -> usize {
        let mut done = 0;
        let mut kept = VecDeque::with_capacity(self.entries.len());
        for entry in self.entries.drain(..) {
            match entry.state {
                State::Sent(p) if p <= ping => {
                    done += 1;
                    let outcome = if entry.bounces.is_empty() {
                        Outcome::Delivered
                    } else {
                        Outcome::Refused(format!(
                            "the server bounced the message for {}",
                            entry.bounces.join(", ")
                        ))
                    };
                    if let Some(waiter) = entry.waiter {
                        // The fire that waited may have timed out: nobody to tell.
                        let _ = waiter.send(outcome);
                    }
                    if self.recent.len() >= RECENT {
                        self.recent.pop_front();
                    }
                    self.recent.push_back(entry.id);
                }
                _ => kept.push_back(entry),
            }
        }
        self.entries = kept;
        done
    }

    /// The server bounced the message with notification id `id` for one
    /// recipient; returns false when no such message waits (it was confirmed
    /// before the bounce came).
    pub fn bounce(&mut self, id: &str, what: String) -> bool {
        match self.entries.iter_mut().find(|e| &*e.id == id) {
            Some(entry) => {
                entry.bounces.push(what);
                true
            }
            None => false,
        }
    }

    /// The connection was lost: messages sent on it but not confirmed go out
    /// again on the next one. Returns how many.
    pub fn requeue(&mut self) -> usize {
        let mut n = 0;
        for entry in &mut self.entries {
            if matches!(entry.state, State::Sent(_)) {
                entry.state = State::Unsent;
                entry.bounces.clear();
                n += 1;
            }
        }
        n
    }

    /// The `fire` of notification `id` stopped waiting (its timeout): a
    /// message not yet written to a connection leaves the outbox (a retry
    /// queues it again, behind nothing, as the engine fires one at a time),
    /// so that a notification the engine gave up on is not sent later after
    /// all. A written one stays: the server may have it, and it is confirmed
    /// or sent again after a reconnect. Returns whether it was removed.
    pub fn abandon(&mut self, id: &str) -> bool {
        let unsent = |e: &Entry| &*e.id == id && e.state == State::Unsent;
        match self.entries.iter().position(unsent) {
            Some(i) => {
                self.entries.remove(i);
                true
            }
            None => false,
        }
    }

    /// Drops every message, telling each waiting `fire` why (the server
    /// refused the login). Returns how many.
    pub fn fail_all(&mut self, reason: &str) -> usize {
        let n = self.entries.len();
        for entry in self.entries.drain(..) {
            if let Some(waiter) = entry.waiter {
                let _ = waiter.send(Outcome::Refused(reason.to_owned()));
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Arc<str> {
        s.into()
    }

    fn queued(s: Submitted) -> oneshot::Receiver<Outcome> {
        match s {
            Submitted::Queued(rx) => rx,
            other => panic!("not queued: {other:?}"),
        }
    }

    #[test]
    fn confirms_in_order_and_requeues_on_loss() {
        let mut o = Outbox::new(10);
        let mut a = queued(o.submit(&id("a"), || "A".into()));
        let sent = o.take_unsent(1);
        assert_eq!(sent, vec![(id("a"), id("A"))]);
        let mut b = queued(o.submit(&id("b"), || "B".into()));
        assert_eq!(o.take_unsent(2), vec![(id("b"), id("B"))]);
        // Ping 1 answered: only "a" is confirmed.
        assert_eq!(o.confirm(1), 1);
        assert_eq!(a.try_recv().unwrap(), Outcome::Delivered);
        assert!(b.try_recv().is_err());
        // The connection dies before ping 2's answer: "b" goes out again.
        assert_eq!(o.requeue(), 1);
        assert_eq!(o.take_unsent(3), vec![(id("b"), id("B"))]);
        assert_eq!(o.confirm(3), 1);
        assert_eq!(b.try_recv().unwrap(), Outcome::Delivered);
        assert!(o.is_empty());
    }

    #[test]
    fn a_retry_joins_its_message_and_a_delivered_one_is_not_resent() {
        let mut o = Outbox::new(10);
        drop(queued(o.submit(&id("a"), || "A".into())));
        let mut again = queued(o.submit(&id("a"), || unreachable!("queued twice")));
        assert_eq!(o.len(), 1);
        o.take_unsent(1);
        o.confirm(1);
        assert_eq!(again.try_recv().unwrap(), Outcome::Delivered);
        assert!(matches!(
            o.submit(&id("a"), || "A".into()),
            Submitted::AlreadyDelivered
        ));
    }

    #[test]
    fn an_unsent_message_is_withdrawn_a_sent_one_stays() {
        let mut o = Outbox::new(10);
        drop(queued(o.submit(&id("a"), || "A".into())));
        assert!(o.abandon("a"));
        assert!(o.is_empty());
        drop(queued(o.submit(&id("b"), || "B".into())));
        o.take_unsent(1);
        assert!(!o.abandon("b"));
        assert_eq!(o.len(), 1);
    }

    #[test]
    fn bounded_bounces_and_failures() {
        let mut o = Outbox::new(2);
        let mut a = queued(o.submit(&id("a"), || "A".into()));
        let mut b = queued(o.submit(&id("b"), || "B".into()));
        assert!(matches!(o.submit(&id("c"), || "C".into()), Submitted::Full));
        o.take_unsent(1);
        assert!(o.bounce("a", "x@y: service-unavailable".into()));
        o.confirm(1);
        assert_eq!(
            a.try_recv().unwrap(),
            Outcome::Refused("the server bounced the message for x@y: service-unavailable".into())
        );
        assert!(!o.bounce("a", "late".into()));
        assert_eq!(b.try_recv().unwrap(), Outcome::Delivered);
        let mut c = queued(o.submit(&id("c"), || "C".into()));
        assert_eq!(o.fail_all("login refused"), 1);
        assert_eq!(
            c.try_recv().unwrap(),
            Outcome::Refused("login refused".into())
        );
    }
}
