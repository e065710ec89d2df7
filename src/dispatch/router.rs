//! The router: a [`Sink`] that turns each alarm a line fires into a
//! [`Notification`], passes it through the alarm's policy, and puts it on the
//! alarm's queue without ever waiting.
//!
//! Notifications are queued in bursts (every [`FLUSH_EVERY`] per alarm, and at
//! the end of each block read), so a busy alarm costs one worker wake-up per
//! burst instead of a syscall per line. A block is one read, so a line that
//! arrives alone is still queued at once.

use super::events::{
    Absence, Batched, Enqueued, Held, KeyTemplateFailed, KeysEvicted, QueueClosed, QueueOverflow,
    QueueRecovered, Spilled, Suppressed,
};
use super::outbox::{LaneSender, Taken};
use super::{AlarmStats, Queued};
use crate::internal_event::InternalEvent;
use crate::matcher::{LineMatch, RecordLine, Sink};
use crate::policy::chain::{Chain, Hold, Policies, Verdict};
use crate::policy::watch::{Hidden, Made, Watches};
use crate::record::Spec as RecordSpec;
use crate::record::assembler::{Assembler, Opening, Record};
use crate::text::cut;
use logalarm_plugin_api::{Aggregate, Captures, Kind, NoteId, Notification, Source, Syslog};
use regex_automata::meta::Regex;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The sending side of one alarm.
pub struct Route {
    /// The alarm's name.
    pub name: Arc<str>,
    /// Its queue.
    pub lane: LaneSender,
    /// Its counters.
    pub stats: Arc<AlarmStats>,
}

struct Slot {
    route: Route,
    /// Its policies, alarm-freq innermost.
    chain: Chain,
    /// Whether its templates use capture groups.
    needs_caps: bool,
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
        let Slot {
            route,
            chain,
            overflow_unreported,
            overflow_reported_at,
            pending,
            ..
        } = self;
        let stats = &route.stats;
        let lane = route.lane.lane();
        lane.offer(pending, |taken, queued| match taken {
            Taken::Queued | Taken::Spilled => {
                Enqueued { stats }.emit();
                if taken == Taken::Spilled {
                    Spilled { stats }.emit();
                }
                if *overflow_unreported > 0 && report_due(*overflow_reported_at, now) {
                    QueueRecovered {
                        alarm: &route.name,
                        dropped: *overflow_unreported,
                    }
                    .emit();
                    *overflow_unreported = 0;
                    *overflow_reported_at = Some(now);
                }
            }
            Taken::Dropped => {
                chain.give_back(&queued.note);
                *overflow_unreported += 1;
                let report = report_due(*overflow_reported_at, now)
                    .then(|| std::mem::take(overflow_unreported));
                if report.is_some() {
                    *overflow_reported_at = Some(now);
                }
                QueueOverflow {
                    stats,
                    alarm: &route.name,
                    capacity: lane.capacity(),
                    journaled: lane.journaled(),
                    every: OVERFLOW_REPORT_EVERY,
                    report,
                }
                .emit();
            }
            Taken::Closed => {
                // Only after a stop signal: the worker is draining and takes nothing new.
                QueueClosed {
                    stats,
                    alarm: &route.name,
                }
                .emit();
            }
        });
    }
}

fn report_due(last: Option<Instant>, now: Instant) -> bool {
    last.is_none_or(|at| now.saturating_duration_since(at) >= OVERFLOW_REPORT_EVERY)
}

/// What the policy stage decided, as `logalarm test` shows it.
#[derive(Clone, Debug)]
pub enum Decided {
    /// An event of `alarm` (a line or record that fires it): the verdict.
    Event {
        /// The alarm (index into the plan's alarms).
        alarm: u32,
        /// What its policies decided.
        verdict: Verdict,
        /// The key it counted under, when the alarm has one.
        key: Option<Arc<str>>,
    },
    /// A notification made by the policy stage itself: a digest, an
    /// escalation, an absence or a recovery.
    Made {
        /// The alarm it goes to.
        alarm: u32,
        /// What it reports.
        kind: Kind,
        /// Its message (for a digest, the first line of its summary).
        summary: String,
        /// When it was made.
        at: SystemTime,
    },
}

/// An alarm as the router needs it: its sending side and its policies.
pub struct RouteSpec {
    /// The sending side.
    pub route: Route,
    /// Its policies beyond alarm-freq.
    pub policy: Policies,
    /// Whether its templates or keys use capture groups.
    pub needs_caps: bool,
}

/// A rule as the router needs it: what it fires, and how a notification
/// names it. Built by the plan (`Plan::rule_routes`), so that the router
/// knows nothing of how a config is checked.
#[derive(Clone, Debug)]
pub struct RuleRoute {
    /// The regex as written: a notification's `rule`.
    pub regex: Arc<str>,
    /// The pattern compiled for its capture groups, when it has any.
    pub captures: Option<Arc<Regex>>,
    /// The alarms it fires (indexes into the routes).
    pub alarms: Vec<u32>,
    /// A multiline rule's record spec ([`crate::record`]).
    pub multiline: Option<Arc<RecordSpec>>,
}

/// A rule's pattern compiled for capture groups, and the group names (with numbers).
type RuleCaptures = (Arc<Regex>, Vec<(Arc<str>, usize)>);

/// Routes matched lines to alarm queues, through each alarm's policies.
pub struct Router {
    slots: Vec<Slot>,
    rules: Vec<Arc<str>>,
    /// Per rule: its pattern compiled for capture groups, and the group names.
    captures: Vec<Option<RuleCaptures>>,
    /// Per rule: the alarms it fires (for recoveries and closed records).
    rule_alarms: Vec<Vec<u32>>,
    /// Expected lines, silent inputs, recoveries.
    watches: Watches,
    msg_size: usize,
    /// Where the current batch came from.
    source: Source,
    /// The current batch's syslog headers (message start offsets), if any.
    headers: Vec<(usize, Arc<Syslog>)>,
    /// When the current batch was taken: the arrival time of its lines.
    now: Instant,
    time: SystemTime,
    /// A clock set from outside (`logalarm test` replaying a log's own
    /// times): batches no longer read the real one.
    simulated: bool,
    /// Random per run: the first part of notification ids, so that ids of
    /// different runs never collide.
    run_id: u64,
    /// For a followed file's batch: the file's key and the offset of the
    /// batch's first byte in it (the ids of its lines' notifications).
    file_at: Option<(u64, u64)>,
    /// What was decided, when asked to keep it (`logalarm test`).
    log: Option<Vec<Decided>>,
    /// Multiline records open per input ([`crate::record`]).
    records: Assembler,
    /// Records closed and not yet fired (kept for its room).
    closed: Vec<Record>,
}

/// The capture groups of `re` on `text`, when it matches.
fn captures_of(re: &Regex, names: &[(Arc<str>, usize)], text: &[u8]) -> Option<Arc<Captures>> {
    let mut caps = re.create_captures();
    re.captures(text, &mut caps);
    if !caps.is_match() {
        return None;
    }
    let groups = (0..caps.group_len())
        .map(|i| {
            caps.get_group(i)
                .map(|span| String::from_utf8_lossy(&text[span.range()]).into_owned())
        })
        .collect();
    Some(Arc::new(Captures {
        groups,
        names: names.to_vec(),
    }))
}

/// A digest's one-line summary, its message before the worker words it
/// (and what `logalarm test` shows): `N instances of M unique errors in 1h (sources: …)`.
pub fn digest_summary(a: &Aggregate) -> String {
    let sources: Vec<&str> = a.sources.iter().map(|(s, _)| s.as_str()).collect();
    format!(
        "{} {} of {} unique {} in {} (sources: {})",
        a.count,
        if a.count == 1 {
            "instance"
        } else {
            "instances"
        },
        a.groups.len() + usize::from(a.ungrouped > 0),
        if a.groups.len() == 1 {
            "error"
        } else {
            "errors"
        },
        humantime::format_duration(a.period),
        sources.join(", ")
    )
}

impl Router {
    /// A router over `routes` (indexed like the plan's alarms); `rules` are the
    /// plan's rules (regex, capture pattern, alarms); `alarm_freq` is uWSGI's
    /// throttle period, `msg_size` its `alarm-msg-size` in bytes; `watches`
    /// the expected lines, silent inputs and recoveries.
    pub fn new(
        routes: Vec<RouteSpec>,
        rules: &[RuleRoute],
        watches: Watches,
        alarm_freq: Duration,
        msg_size: usize,
    ) -> Self {
        let slots = routes
            .into_iter()
            .map(|spec| Slot {
                route: spec.route,
                chain: Chain::new(spec.policy, alarm_freq),
                needs_caps: spec.needs_caps,
                overflow_unreported: 0,
                overflow_reported_at: None,
                pending: Vec::new(),
                sequence: 0,
            })
            .collect();
        let captures = rules
            .iter()
            .map(|r| {
                r.captures.as_ref().map(|re| {
                    let names = re
                        .group_info()
                        .pattern_names(regex_automata::PatternID::ZERO)
                        .enumerate()
                        .filter_map(|(i, n)| n.map(|n| (Arc::from(n), i)))
                        .collect();
                    (re.clone(), names)
                })
            })
            .collect();
        let now = Instant::now();
        Router {
            slots,
            rules: rules.iter().map(|r| r.regex.clone()).collect(),
            captures,
            rule_alarms: rules.iter().map(|r| r.alarms.clone()).collect(),
            watches,
            msg_size,
            source: Source::stdin(),
            headers: Vec::new(),
            now,
            time: SystemTime::now(),
            simulated: false,
            // RandomState is seeded from the OS's randomness.
            run_id: std::collections::hash_map::RandomState::new().hash_one(SystemTime::now()),
            file_at: None,
            log: None,
            records: Assembler::new(Vec::new()),
            closed: Vec::new(),
        }
    }

    /// Keeps what the policy stage decides, for [`Router::take_log`] (`logalarm test`).
    pub fn keep_log(&mut self) {
        self.log = Some(Vec::new());
    }

    /// What was decided since the last call.
    pub fn take_log(&mut self) -> Vec<Decided> {
        self.log.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Sets the clock (`logalarm test` replaying a log's own times): from now
    /// on batches keep this time until it is set again, and whatever is due
    /// by it happens.
    pub fn set_clock(&mut self, now: Instant, time: SystemTime) {
        self.simulated = true;
        if now > self.now {
            self.now = now;
            self.time = time;
        }
        self.due();
    }

    /// Takes the multiline rules among `rules` (the plan's, in order): their
    /// records are assembled per input and fired when they close.
    pub fn with_records(mut self, rules: &[RuleRoute]) -> Self {
        if rules.iter().any(|r| r.multiline.is_some()) {
            self.records = Assembler::new(rules.iter().map(|r| r.multiline.clone()).collect());
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
    pub fn fire_record(&mut self, record: Record) {
        if !record.fires {
            tracing::debug!(
                "a record of rule {} does not match its regex: no alarm",
                record.rule + 1
            );
            return;
        }
        let index = record.rule as usize;
        let (Some(alarms), Some(rule)) = (self.rule_alarms.get_mut(index), self.rules.get(index))
        else {
            return;
        };
        // Taken out for the loop (and put back): `notify` borrows `self`.
        let (alarms, rule) = (std::mem::take(alarms), rule.clone());
        let headers = record.header.map(|h| vec![(0, h)]).unwrap_or_default();
        let source = std::mem::replace(&mut self.source, record.source);
        let headers = std::mem::replace(&mut self.headers, headers);
        let msg_size = std::mem::replace(&mut self.msg_size, usize::MAX);
        for &alarm in &alarms {
            self.notify(alarm, &rule, Some(record.rule), &record.message, Some(0));
        }
        (self.source, self.headers, self.msg_size) = (source, headers, msg_size);
        self.rule_alarms[index] = alarms;
    }

    /// Opens a record of `rule` at `m`'s line. Out of line: rare, and it
    /// keeps [`Sink::matched`] small enough to be inlined into the scan.
    #[cold]
    #[inline(never)]
    fn open_record(&mut self, rule: u32, m: &LineMatch<'_>) {
        let header = self.header_of(m.offset);
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
    /// carry this time and source, and the policies measure from it. `lines`
    /// is the batch's buffer, and `headers` its syslog headers by message
    /// start offset in it (empty when it has none).
    pub fn begin_batch(
        &mut self,
        source: Source,
        lines: &[u8],
        headers: Vec<(usize, Arc<Syslog>)>,
        file_at: Option<(u64, u64)>,
    ) {
        self.file_at = file_at;
        if !self.simulated {
            self.now = Instant::now();
            self.time = SystemTime::now();
        }
        if !lines.is_empty() {
            for made in self.watches.input_seen(&source, self.now) {
                self.make(made, None);
            }
        }
        self.source = source;
        self.headers = headers;
    }

    /// Fires `alarms` with `message` directly, as a matched line would (the
    /// alarm's policies and `alarm-msg-size` apply); `rule` names what fired
    /// them. Call between [`Router::begin_batch`] and [`Router::flush`].
    pub fn fire(&mut self, alarms: &[u32], rule: &Arc<str>, message: &[u8]) {
        for &alarm in alarms {
            // A direct fire is no line of the batch: it has no syslog header.
            self.notify(alarm, rule, None, message, None);
        }
    }

    /// Per alarm, the notifications offered to its lane so far (queued,
    /// spilled or dropped): once each lane is [safe](super::outbox::Lane::safe)
    /// up to that many, everything routed before this call is journaled or
    /// finished. A dropped one is never safe, so no position passes it.
    pub fn offered(&self) -> Vec<u64> {
        self.slots
            .iter()
            .map(|s| s.route.lane.lane().offered())
            .collect()
    }

    /// The syslog header of the message holding the line at offset `at` of
    /// the current batch.
    fn header_of(&self, at: usize) -> Option<Arc<Syslog>> {
        if self.headers.is_empty() {
            return None;
        }
        let i = self.headers.partition_point(|(start, _)| *start <= at);
        i.checked_sub(1).map(|i| self.headers[i].1.clone())
    }

    fn record(&mut self, decided: Decided) {
        if let Some(log) = &mut self.log {
            log.push(decided);
        }
    }

    /// One event of `alarm`: `line`, at offset `at` of the current batch, fired
    /// it through rule `rule_index` (both None for direct fires, which are no
    /// line of the batch).
    fn notify(
        &mut self,
        alarm: u32,
        rule: &Arc<str>,
        rule_index: Option<u32>,
        line: &[u8],
        at: Option<usize>,
    ) {
        let (message, truncated) = cut(line, self.msg_size);
        let i = alarm as usize;
        // The common path: alarm-freq alone decides, before anything is made.
        let plain = self.slots[i].chain.is_plain() && !self.slots[i].needs_caps;
        let mut admitted = 0;
        if plain {
            let Some(suppressed) = self.slots[i].chain.throttle().admit(message, self.now) else {
                Suppressed {
                    stats: &self.slots[i].route.stats,
                }
                .emit();
                let held = Hold::AlarmFreq(self.slots[i].chain.alarm_freq());
                self.record(Decided::Event {
                    alarm,
                    verdict: Verdict::Held(held),
                    key: None,
                });
                return;
            };
            admitted = suppressed;
        }
        let syslog = at.and_then(|at| self.header_of(at));
        let mut note = self.note(
            alarm,
            rule.clone(),
            message,
            truncated.then_some(line.len()),
            syslog,
        );
        let (verdict, escalate) = if plain {
            note.suppressed = admitted;
            (Verdict::Sent, None)
        } else {
            if self.slots[i].needs_caps {
                note.caps = rule_index.and_then(|r| {
                    let (re, names) = self.captures[r as usize].as_ref()?;
                    captures_of(re, names, line)
                });
            }
            self.slots[i].chain.decide(&mut note, self.now)
        };
        let stats = &self.slots[i].route.stats;
        match &verdict {
            Verdict::Sent => {}
            Verdict::Held(Hold::AlarmFreq(_)) => Suppressed { stats }.emit(),
            Verdict::Held(_) => Held { stats }.emit(),
            Verdict::Batched { .. } => Batched { stats }.emit(),
        }
        let sent = verdict == Verdict::Sent;
        self.record(Decided::Event {
            alarm,
            verdict,
            key: note.key.clone(),
        });
        if sent {
            if let Some(r) = rule_index {
                self.watches.fired(r);
            }
            // A followed file's line: its id is the file's, the line's bytes'
            // and its offset, so the same line read again after a crash (its
            // position not yet saved) carries the same id and a receiver that
            // deduplicates sees it once. The bytes tell apart the lines of a
            // file truncated and written again at the same offsets.
            let line_id = match (self.file_at, at, rule_index) {
                (Some((key, start)), Some(at), Some(_)) => Some((
                    key ^ u64::from(crc32fast::hash(line)).rotate_left(17),
                    start + at as u64,
                )),
                _ => None,
            };
            self.push_as(alarm, note, line_id);
        }
        if let Some(e) = escalate {
            let from = &self.slots[i].route.name;
            let message = format!(
                "alarm {from}: {} events within {} (limit {})",
                e.count,
                humantime::format_duration(e.window),
                e.limit
            );
            let aggregate = Aggregate {
                count: e.count,
                ungrouped: 0,
                first_seen: self.time.checked_sub(e.window).unwrap_or(self.time),
                last_seen: self.time,
                period: e.window,
                sources: Vec::new(),
                groups: Vec::new(),
            };
            let made = Made {
                alarms: vec![e.alarm],
                kind: Kind::Escalation,
                rule: from.clone(),
                message: message.into_bytes(),
                at: self.now,
            };
            self.make(made, Some(Arc::new(aggregate)));
        }
    }

    /// A notification of `alarm` at the current time and source.
    fn note(
        &self,
        alarm: u32,
        rule: Arc<str>,
        message: &[u8],
        truncated_from: Option<usize>,
        syslog: Option<Arc<Syslog>>,
    ) -> Notification {
        Notification {
            truncated_from,
            syslog,
            ..Notification::new(
                self.slots[alarm as usize].route.name.clone(),
                rule,
                message.to_vec(),
                self.source.clone(),
                self.time,
            )
        }
    }

    /// Queues `note` for `alarm` (its id given here: ids count what is queued).
    fn push(&mut self, alarm: u32, note: Notification) {
        self.push_as(alarm, note, None);
    }

    /// Queues `note` for `alarm`, its id made of `line` (a followed file's
    /// key and the line's offset in it) when given, else of this run's id
    /// and the alarm's count.
    fn push_as(&mut self, alarm: u32, mut note: Notification, line: Option<(u64, u64)>) {
        let slot = &mut self.slots[alarm as usize];
        slot.sequence += 1;
        note.id = match line {
            Some((file, offset)) => NoteId {
                run: file,
                alarm,
                seq: offset,
            },
            None => NoteId {
                run: self.run_id,
                alarm,
                seq: slot.sequence,
            },
        };
        slot.pending.push(Queued::new(note, self.now));
        if slot.pending.len() >= FLUSH_EVERY {
            slot.flush(self.now);
        }
    }

    /// A notification the policy stage makes itself (no policy applies to
    /// it), to each of `made.alarms`.
    fn make(&mut self, made: Made, aggregate: Option<Arc<Aggregate>>) {
        let Made {
            alarms,
            kind,
            rule,
            message,
            at,
        } = made;
        let at = self.wall(at);
        for alarm in alarms {
            let (kept, truncated) = cut(&message, self.msg_size);
            let mut note = self.note(
                alarm,
                rule.clone(),
                kept,
                truncated.then_some(message.len()),
                None,
            );
            note.kind = kind;
            note.aggregate = aggregate.clone();
            note.time = at;
            if kind == Kind::Absent {
                let slot = &self.slots[alarm as usize];
                Absence {
                    stats: &slot.route.stats,
                    alarm: &slot.route.name,
                    message: &note.message,
                }
                .emit();
            }
            if self.log.is_some() {
                self.record(Decided::Made {
                    alarm,
                    kind,
                    summary: String::from_utf8_lossy(&note.message).into_owned(),
                    at,
                });
            }
            self.push(alarm, note);
        }
    }

    /// The wall-clock time of `at`, on the router's clock.
    fn wall(&self, at: Instant) -> SystemTime {
        if at >= self.now {
            self.time + (at - self.now)
        } else {
            self.time.checked_sub(self.now - at).unwrap_or(self.time)
        }
    }

    /// Sends what is due by now: digests whose period ended, absences.
    fn due(&mut self) {
        let now = self.now;
        for i in 0..self.slots.len() {
            if self.slots[i].chain.due().is_some_and(|due| due <= now) {
                self.send_digest(i, false);
            }
        }
        for made in self.watches.due(now) {
            self.make(made, None);
        }
    }

    fn send_digest(&mut self, i: usize, force: bool) {
        let due = self.slots[i].chain.due();
        let Some(aggregate) = self.slots[i].chain.take_digest(self.now, force) else {
            return;
        };
        let summary = digest_summary(&aggregate);
        // When the period ended (or now, at the end): what `test` shows.
        let at = match due {
            Some(due) if !force => self.wall(due),
            _ => self.time,
        };
        let rule: Arc<str> = "digest".into();
        let mut note = self.note(i as u32, rule, summary.as_bytes(), None, None);
        note.kind = Kind::Digest;
        note.time = aggregate.last_seen;
        note.aggregate = Some(Arc::new(aggregate));
        self.record(Decided::Made {
            alarm: i as u32,
            kind: Kind::Digest,
            summary,
            at,
        });
        self.push(i as u32, note);
    }

    /// Called after every batch and on every [`crate::input::Event::Tick`]:
    /// sends what the policy stage has due by now, and queues everything made.
    pub fn tick(&mut self) {
        if !self.simulated {
            self.now = Instant::now();
            self.time = SystemTime::now();
        }
        self.due();
        if !self.records.is_idle() {
            let closed = &mut self.closed;
            self.records.expire(self.now, &mut |r| closed.push(r));
            self.fire_closed();
        }
        self.flush();
    }

    /// Called once at the end (EOF, stop): sends every pending digest now
    /// (nothing held for later is lost), then queues everything made.
    pub fn finish(&mut self) {
        let closed = &mut self.closed;
        self.records.close_all(&mut |r| closed.push(r));
        self.fire_closed();
        for i in 0..self.slots.len() {
            self.send_digest(i, true);
        }
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

    /// Reports what each alarm's policies' state lost during the run: keys
    /// evicted (`max_keys` reached) and events whose key template failed to
    /// render, one event each with its total ([`KeysEvicted`],
    /// [`KeyTemplateFailed`]). Call once, at the end.
    pub fn report_losses(&self) {
        for s in &self.slots {
            let (evicted, key_errors) = (s.chain.evicted(), s.chain.key_errors());
            if evicted > 0 {
                KeysEvicted {
                    stats: &s.route.stats,
                    alarm: &s.route.name,
                    count: evicted,
                }
                .emit();
            }
            if key_errors > 0 {
                KeyTemplateFailed {
                    stats: &s.route.stats,
                    alarm: &s.route.name,
                    count: key_errors,
                }
                .emit();
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
            self.notify(
                hit.alarm,
                &rules[hit.rule as usize],
                Some(hit.rule),
                m.line,
                Some(m.offset),
            );
        }
        self.rules = rules;
        if self.watches.has_hidden() {
            for &r in m.rules {
                match self.watches.hidden(r) {
                    Some(Hidden::Expect(e)) => {
                        if let Some(made) = self.watches.expect_seen(e, self.now) {
                            self.make(made, None);
                        }
                    }
                    Some(Hidden::Resolve(rule)) if self.watches.take_fired(rule) => {
                        let made = Made {
                            alarms: self.rule_alarms[rule as usize].clone(),
                            kind: Kind::Resolved,
                            rule: self.rules[rule as usize].clone(),
                            message: m.line.to_vec(),
                            at: self.now,
                        };
                        self.make(made, None);
                    }
                    Some(Hidden::Resolve(_)) | None => {}
                }
            }
        }
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
