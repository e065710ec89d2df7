//! The router: a [`Sink`] that turns each alarm a line fires into a
//! [`Notification`], passes it through the alarm's policy, and puts it on the
//! alarm's queue without ever waiting.
//!
//! Notifications are queued in bursts (every [`FLUSH_EVERY`] per alarm, and at
//! the end of each block read), so a busy alarm costs one worker wake-up per
//! burst instead of a syscall per line. A block is one read, so a line that
//! arrives alone is still queued at once.

use super::{AlarmStats, Queued};
use crate::matcher::{LineMatch, RecordLine, Sink};
use crate::plan::PlannedRule;
use crate::policy::throttle::Throttle;
use crate::record::assembler::{Assembler, Opening, Record};
use logalarm_plugin_api::{NoteId, Notification, Source, Syslog};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc::{Sender, error::TrySendError};

/// The sending side of one alarm.
pub struct Route {
    /// The alarm's name.
    pub name: Arc<str>,
    /// Its queue.
    pub queue: Sender<Queued>,
    /// Its counters.
    pub stats: Arc<AlarmStats>,
}

struct Slot {
    route: Route,
    throttle: Throttle,
    /// Notifications dropped on a full queue and not yet reported in the log.
    overflow_unreported: u64,
    /// When overflow was last reported: at most one report per [`OVERFLOW_REPORT_EVERY`].
    overflow_reported_at: Option<Instant>,
    /// Notifications of the current block, not yet queued.
    pending: Vec<Queued>,
    /// Notifications made so far: the last part of their ids.
    sequence: u64,
}

/// Notifications an alarm collects before they are queued in one burst (also
/// queued at the end of every block): the worker keeps draining during a long
/// block, yet is woken once per burst, not once per line.
pub const FLUSH_EVERY: usize = 64;

/// The longest an alarm's queue overflow goes unreported in the log (the first
/// drop is reported at once; a sustained flood gives one line per period).
pub const OVERFLOW_REPORT_EVERY: Duration = Duration::from_secs(10);

impl Slot {
    fn flush(&mut self, now: Instant) {
        let stats = &self.route.stats;
        for note in self.pending.drain(..) {
            match self.route.queue.try_send(note) {
                Ok(()) => {
                    AlarmStats::bump(&stats.enqueued);
                    if self.overflow_unreported > 0 && report_due(self.overflow_reported_at, now) {
                        tracing::warn!(
                            alarm = %self.route.name,
                            "queue has room again; {} more notifications were dropped while it was full",
                            self.overflow_unreported
                        );
                        self.overflow_unreported = 0;
                        self.overflow_reported_at = Some(now);
                    }
                }
                Err(TrySendError::Full(queued)) => {
                    AlarmStats::bump(&stats.overflow);
                    self.throttle.give_back(queued.note.suppressed);
                    self.overflow_unreported += 1;
                    if report_due(self.overflow_reported_at, now) {
                        tracing::warn!(
                            alarm = %self.route.name,
                            "queue full ({} notifications waiting): {} dropped; reporting at most every {}s",
                            self.route.queue.max_capacity(),
                            self.overflow_unreported,
                            OVERFLOW_REPORT_EVERY.as_secs()
                        );
                        self.overflow_unreported = 0;
                        self.overflow_reported_at = Some(now);
                    }
                }
                Err(TrySendError::Closed(_)) => {
                    // Only after a stop signal: the worker is draining and takes nothing new.
                    tracing::debug!(alarm = %self.route.name, "stopping; a line read after the stop is not alarmed");
                }
            }
        }
    }
}

fn report_due(last: Option<Instant>, now: Instant) -> bool {
    last.is_none_or(|at| now.saturating_duration_since(at) >= OVERFLOW_REPORT_EVERY)
}

/// Routes matched lines to alarm queues.
pub struct Router {
    slots: Vec<Slot>,
    rules: Vec<Arc<str>>,
    msg_size: usize,
    /// Where the current batch came from.
    source: Source,
    /// The current batch's syslog headers (message start offsets), if any.
    headers: Vec<(usize, Arc<Syslog>)>,
    /// Address of the current batch's first byte, to find a line's header.
    base: usize,
    /// When the current batch was taken: the arrival time of its lines.
    now: Instant,
    time: SystemTime,
    /// Random per run: the first part of notification ids, so that ids of
    /// different runs never collide.
    run_id: u64,
    /// Multiline records open per input ([`crate::record`]).
    records: Assembler,
    /// Per rule, the alarms a closed record of it fires.
    record_alarms: Vec<Vec<u32>>,
    /// Records closed and not yet fired (kept for its room).
    closed: Vec<Record>,
}

/// Cuts `line` to at most `max` bytes, backing off to a UTF-8 character boundary
/// when the cut would split one; returns the part kept and whether it was cut.
pub fn cut(line: &[u8], max: usize) -> (&[u8], bool) {
    if line.len() <= max {
        return (line, false);
    }
    let mut end = max;
    // Step back over at most 3 continuation bytes (10xxxxxx) to the start of the character.
    while end > 0 && max - end < 3 && (line[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    if (line[end] & 0xC0) == 0x80 {
        end = max;
    }
    (&line[..end], true)
}

impl Router {
    /// A router over `routes` (indexed like the plan's alarms); `rules` are the
    /// rule regexes (indexed like the plan's rules); `alarm_freq` is uWSGI's
    /// throttle period, `msg_size` its `alarm-msg-size` in bytes.
    pub fn new(
        routes: Vec<Route>,
        rules: Vec<Arc<str>>,
        alarm_freq: Duration,
        msg_size: usize,
    ) -> Self {
        let slots = routes
            .into_iter()
            .map(|route| Slot {
                route,
                throttle: Throttle::new(alarm_freq),
                overflow_unreported: 0,
                overflow_reported_at: None,
                pending: Vec::new(),
                sequence: 0,
            })
            .collect();
        Router {
            slots,
            rules,
            msg_size,
            source: Source::Stdin,
            headers: Vec::new(),
            base: 0,
            now: Instant::now(),
            time: SystemTime::now(),
            // RandomState is seeded from the OS's randomness.
            run_id: std::collections::hash_map::RandomState::new().hash_one(SystemTime::now()),
            records: Assembler::new(Vec::new()),
            record_alarms: Vec::new(),
            closed: Vec::new(),
        }
    }

    /// Takes the multiline rules among `rules` (the plan's, in order): their
    /// records are assembled per input and fired when they close.
    pub fn with_records(mut self, rules: &[PlannedRule]) -> Self {
        if rules.iter().any(|r| r.multiline.is_some()) {
            self.records = Assembler::new(rules.iter().map(|r| r.multiline.clone()).collect());
            self.record_alarms = rules.iter().map(|r| r.alarms.clone()).collect();
        }
        self
    }

    /// Fires the records closed so far.
    fn fire_closed(&mut self) {
        let mut closed = std::mem::take(&mut self.closed);
        for record in closed.drain(..) {
            self.fire_record(record);
        }
        self.closed = closed;
    }

    /// Fires a closed record's rule's alarms with the record as the message,
    /// when the rule's regex matches it. The record is its own batch: its
    /// input, its first line's syslog header, and its own cap (`max_bytes`,
    /// applied as it was assembled) instead of `alarm-msg-size`.
    fn fire_record(&mut self, record: Record) {
        if !record.fires {
            tracing::debug!(
                "a record of rule {} does not match its regex: no alarm",
                record.rule + 1
            );
            return;
        }
        let index = record.rule as usize;
        let (Some(alarms), Some(rule)) = (self.record_alarms.get_mut(index), self.rules.get(index))
        else {
            return;
        };
        let (alarms, rule) = (std::mem::take(alarms), rule.clone());
        let headers = record.header.map(|h| vec![(0, h)]).unwrap_or_default();
        let source = std::mem::replace(&mut self.source, record.source);
        let headers = std::mem::replace(&mut self.headers, headers);
        let base = std::mem::replace(&mut self.base, record.message.as_ptr() as usize);
        let msg_size = std::mem::replace(&mut self.msg_size, usize::MAX);
        for &alarm in &alarms {
            self.notify(alarm, &rule, &record.message);
        }
        (self.source, self.headers, self.base, self.msg_size) = (source, headers, base, msg_size);
        self.record_alarms[index] = alarms;
    }

    /// Opens a record of `rule` at `m`'s line. Out of line: rare, and it
    /// keeps [`Sink::matched`] small enough to be inlined into the scan.
    #[cold]
    #[inline(never)]
    fn open_record(&mut self, rule: u32, m: &LineMatch<'_>) {
        let header = self.header_of(m.line);
        let closed = &mut self.closed;
        let at = Opening {
            rule,
            line: m.line,
            number: m.number,
            header,
        };
        self.records
            .open(&self.source, at, self.now, &mut |r| closed.push(r));
        self.fire_closed();
    }

    /// An input ended (see [`crate::input::Event::Ended`]): its open record is
    /// closed and fired, and everything made is queued.
    pub fn ended(&mut self, source: &Source) {
        let closed = &mut self.closed;
        self.records.close(source, &mut |r| closed.push(r));
        self.fire_closed();
        self.flush();
    }

    /// Starts a batch of lines from `source` taken now: their notifications
    /// carry this time and source, and the `alarm-freq` throttle measures from
    /// it. `lines` is the batch's buffer, and `headers` its syslog headers by
    /// message start offset in it (empty when it has none).
    pub fn begin_batch(
        &mut self,
        source: Source,
        lines: &[u8],
        headers: Vec<(usize, Arc<Syslog>)>,
    ) {
        self.now = Instant::now();
        self.time = SystemTime::now();
        self.source = source;
        self.base = lines.as_ptr() as usize;
        self.headers = headers;
    }

    /// Fires `alarms` with `message` directly, as a matched line would (the
    /// `alarm-freq` throttle and `alarm-msg-size` apply); `rule` names what fired
    /// them. Call between [`Router::begin_batch`] and [`Router::flush`].
    pub fn fire(&mut self, alarms: &[u32], rule: &Arc<str>, message: &[u8]) {
        for &alarm in alarms {
            self.notify(alarm, rule, message);
        }
    }

    /// Per alarm, the notifications queued so far: once each alarm's worker has
    /// finished that many, everything routed before this call is delivered.
    pub fn enqueued(&self) -> Vec<u64> {
        self.slots
            .iter()
            .map(|s| AlarmStats::get(&s.route.stats.enqueued))
            .collect()
    }

    /// The syslog header of the message holding `line` (a slice of the current batch).
    fn header_of(&self, line: &[u8]) -> Option<Arc<Syslog>> {
        if self.headers.is_empty() {
            return None;
        }
        let at = (line.as_ptr() as usize).wrapping_sub(self.base);
        let i = self.headers.partition_point(|(start, _)| *start <= at);
        i.checked_sub(1).map(|i| self.headers[i].1.clone())
    }

    fn notify(&mut self, alarm: u32, rule: &Arc<str>, line: &[u8]) {
        let (message, truncated) = cut(line, self.msg_size);
        let Some(suppressed) = self.slots[alarm as usize].throttle.admit(message, self.now) else {
            AlarmStats::bump(&self.slots[alarm as usize].route.stats.suppressed);
            return;
        };
        let syslog = self.header_of(line);
        let slot = &mut self.slots[alarm as usize];
        slot.sequence += 1;
        let note = Notification {
            id: NoteId {
                run: self.run_id,
                alarm,
                seq: slot.sequence,
            },
            alarm: slot.route.name.clone(),
            rule: rule.clone(),
            message: message.to_vec(),
            truncated_from: truncated.then_some(line.len()),
            suppressed,
            source: self.source.clone(),
            syslog,
            time: self.time,
            kind: logalarm_plugin_api::Kind::Alarm,
            caps: None,
            key: None,
            aggregate: None,
        };
        slot.pending.push(Queued {
            note,
            since: self.now,
        });
        if slot.pending.len() >= FLUSH_EVERY {
            slot.flush(self.now);
        }
    }

    /// Called after every batch and on every [`crate::input::Event::Tick`]:
    /// sends what the policy stage has due by now, and queues everything made.
    pub fn tick(&mut self) {
        if !self.records.is_idle() {
            let now = Instant::now();
            let closed = &mut self.closed;
            self.records.expire(now, &mut |r| closed.push(r));
            if !self.closed.is_empty() {
                (self.now, self.time) = (now, SystemTime::now());
                self.fire_closed();
            }
        }
        self.flush();
    }

    /// Called once at the end (EOF, stop): sends everything the policy stage
    /// still holds, then queues everything made.
    pub fn finish(&mut self) {
        let closed = &mut self.closed;
        self.records.close_all(&mut |r| closed.push(r));
        self.fire_closed();
        self.flush();
    }

    /// Puts the block's notifications on their queues, one burst per alarm, so
    /// that a worker is woken once per block rather than once per line.
    pub fn flush(&mut self) {
        let now = self.now;
        for slot in &mut self.slots {
            if !slot.pending.is_empty() {
                slot.flush(now);
            }
        }
    }
}

impl Sink for Router {
    fn matched(&mut self, m: &LineMatch<'_>) {
        // Borrowed out for the loop (a move, no copy), so that a hit costs one
        // clone of its rule's name, made only when a notification is.
        let rules = std::mem::take(&mut self.rules);
        for hit in m.hits {
            self.notify(hit.alarm, &rules[hit.rule as usize], m.line);
        }
        self.rules = rules;
        if let Some(rule) = m.opened {
            self.open_record(rule, m);
        }
    }

    fn in_record(&self) -> bool {
        self.records.is_open(&self.source)
    }

    fn record_line(&mut self, line: &[u8], number: u64) -> RecordLine {
        let closed = &mut self.closed;
        let step = self
            .records
            .feed(&self.source, line, number, self.now, &mut |r| {
                closed.push(r)
            });
        if !self.closed.is_empty() {
            self.fire_closed();
        }
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_character_boundaries() {
        assert_eq!(cut(b"abc", 3), (&b"abc"[..], false));
        assert_eq!(cut(b"abcd", 3), (&b"abc"[..], true));
        // "é" is C3 A9: a cut after C3 backs off before it.
        assert_eq!(cut("abé".as_bytes(), 3), (&b"ab"[..], true));
        // Invalid UTF-8 is cut where asked.
        assert_eq!(cut(b"\x80\x80\x80\x80\x80", 2), (&b"\x80\x80"[..], true));
    }
}
