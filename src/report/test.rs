//! `logalarm test`: a dry run over a log, as `fail2ban-regex` does for
//! fail2ban filters. Every line goes through the matcher and through each
//! alarm's policies (`alarm-freq` included), on the lines' own clock when
//! they start with a time ([`LineClock`]), else on the arrival clock as a
//! live run; no action runs. The notifications counted are those a live run
//! would queue.
//!
//! By default it prints a summary: lines read, matched, ignored (anti-loop
//! tag, `not-log-alarm`) and missed; per rule the lines it matched; per alarm
//! its events, its notifications and what the policies did with the rest;
//! and `processed N lines in X s`. [`Listing`] adds the lines themselves,
//! with fail2ban-regex's flag names (`--print-all-matched`,
//! `--print-all-missed`, `--print-all-ignored`).

use super::{alarm_names, plural, rule_kind};
use crate::dispatch::outbox::Lane;
use crate::dispatch::router::{Decided, Route, RouteSpec, Router};
use crate::input::reader::{LineReader, MAX_LINE};
use crate::matcher::{LineMatch, RecordLine, Sink};
use crate::plan::Plan;
use crate::policy::chain::{Hold, Verdict};
use crate::policy::clock::LineClock;
use crate::record::assembler::{Assembler, Opening, Record};
use logalarm_plugin_api::{Notification, Source};
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// Which lines `test` lists besides its summary (fail2ban-regex's flags).
#[derive(Clone, Copy, Debug, Default)]
pub struct Listing {
    /// `--print-all-matched`: each line (or multiline record) a rule matched,
    /// with the alarms it fires, and what each alarm's policies decided.
    pub matched: bool,
    /// `--print-all-missed`: each line no rule matched.
    pub missed: bool,
    /// `--print-all-ignored`: each line a rule matched but that fires nothing:
    /// it starts with the anti-loop tag, or a `not-log-alarm` rule skipped it.
    pub ignored: bool,
}

/// Per alarm: what its events became.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlarmCounts {
    /// Events: lines and records that fired the alarm, before any policy.
    pub events: u64,
    /// Events that became notifications at once.
    pub sent: u64,
    /// Events dropped by `alarm-freq` (the same message within the period).
    pub alarm_freq: u64,
    /// Events held back by a threshold or suppressed by a cooldown.
    pub held: u64,
    /// Events batched into digests.
    pub batched: u64,
    /// Notifications the policies made themselves (digests, escalations,
    /// absences, recoveries).
    pub made: u64,
    /// Notifications queued for the alarm, as a live run would: `sent + made`.
    pub notifications: u64,
}

/// The counts of one run, for callers that check them ([`super::expect`]).
#[derive(Debug, Default)]
pub struct Outcome {
    /// Lines read.
    pub lines: u64,
    /// Per alarm (indexed like the plan's alarms).
    pub alarms: Vec<AlarmCounts>,
    /// Per alarm, the notifications queued, in order, when collected.
    pub notes: Vec<Vec<Notification>>,
}

/// The `test` sink: forwards each matched line to a [`Router`] whose queues
/// nobody delivers from, counts per rule and alarm, and lists lines on request.
pub struct TestReport<'p, W: Write> {
    plan: &'p Plan,
    out: W,
    list: Listing,
    per_rule: Vec<u64>,
    alarms: Vec<AlarmCounts>,
    /// Lines that fire an alarm, open a record or match an expected or
    /// recovery line.
    matched: u64,
    /// Lines taken into multiline records after their opening line.
    in_records: u64,
    /// Lines a rule matched that start with the anti-loop tag.
    tagged: u64,
    /// Lines a `not-log-alarm` rule skipped, firing nothing.
    skipped: u64,
    /// Line numbers the scan handed over in the current block (only while
    /// listing missed lines): the others were missed.
    seen: Vec<u64>,
    error: Option<io::Error>,
    router: Router,
    queues: Vec<Arc<Lane>>,
    /// Notifications kept per alarm, when asked ([`TestReport::collect`]).
    notes: Option<Vec<Vec<Notification>>>,
    clock: LineClock,
    /// The first line time read, and the instant it stands for.
    base: Option<(Instant, SystemTime)>,
    /// Whether any line carried a time the clock could read.
    timed: bool,
    /// Multiline records being assembled; the log is one input.
    records: Assembler,
    closed: Vec<Record>,
    /// Per rule: records closed, and those that fire.
    per_rule_records: Vec<(u64, u64)>,
}

/// The room of each alarm's queue in a dry run: drained after every line,
/// so only what one line (or one due digest sweep) makes must fit.
const DRY_QUEUE: usize = 1 << 16;

/// A router whose queues are drained by the report instead of workers.
fn dry_router(plan: &Plan) -> (Router, Vec<Arc<Lane>>) {
    let mut queues = Vec::with_capacity(plan.alarms.len());
    let routes = plan
        .alarms
        .iter()
        .map(|a| {
            let lane = Lane::in_memory(a.name.clone(), DRY_QUEUE);
            let sender = lane.sender();
            queues.push(lane);
            RouteSpec {
                route: Route {
                    name: a.name.clone(),
                    lane: sender,
                    stats: Default::default(),
                },
                policy: a.policy.clone(),
                needs_caps: a.needs_caps,
            }
        })
        .collect();
    let mut router = Router::new(
        routes,
        &plan.rule_routes(),
        plan.watches(Instant::now()),
        plan.alarm_freq,
        plan.msg_size,
    );
    router.keep_log();
    (router, queues)
}

impl<'p, W: Write> TestReport<'p, W> {
    /// A report over `plan`, written to `out`, listing the lines `list` asks for.
    pub fn new(plan: &'p Plan, out: W, list: Listing) -> Self {
        let (router, queues) = dry_router(plan);
        TestReport {
            plan,
            out,
            list,
            per_rule: vec![0; plan.rules.len()],
            alarms: vec![AlarmCounts::default(); plan.alarms.len()],
            matched: 0,
            in_records: 0,
            tagged: 0,
            skipped: 0,
            seen: Vec::new(),
            error: None,
            router,
            queues,
            notes: None,
            clock: LineClock::new(),
            base: None,
            timed: false,
            records: Assembler::new(plan.rules.iter().map(|r| r.multiline.clone()).collect()),
            closed: Vec::new(),
            per_rule_records: vec![(0, 0); plan.rules.len()],
        }
    }

    /// Keeps every notification queued, for [`Outcome::notes`].
    pub fn collect(mut self) -> Self {
        self.notes = Some(vec![Vec::new(); self.plan.alarms.len()]);
        self
    }

    /// Keeps the first error writing the report; later writes are skipped.
    fn keep(&mut self, result: io::Result<()>) {
        if let Err(e) = result
            && self.error.is_none()
        {
            self.error = Some(e);
        }
    }

    /// Queues what the router made and takes it off the queues, counting it.
    fn drain(&mut self) {
        self.router.flush();
        for (i, lane) in self.queues.iter().enumerate() {
            while let Some(queued) = lane.try_take() {
                self.alarms[i].notifications += 1;
                if let Some(notes) = &mut self.notes {
                    notes[i].push(queued.note);
                }
            }
        }
    }

    /// Counts and prints the records closed so far.
    fn report_closed(&mut self) {
        let mut closed = std::mem::take(&mut self.closed);
        for record in closed.drain(..) {
            let counts = &mut self.per_rule_records[record.rule as usize];
            counts.0 += 1;
            if record.fires {
                counts.1 += 1;
                for &a in &self.plan.rules[record.rule as usize].alarms {
                    self.alarms[a as usize].events += 1;
                }
            }
            if self.list.matched && self.error.is_none() {
                let written = self.write_record(&record);
                self.keep(written);
            }
            // What the alarms' policies decide for the record.
            self.router.fire_record(record);
            self.decisions();
        }
        self.closed = closed;
    }

    /// `lines 12-19: fires crash (rule 1 /Error/, python record): Traceback … (+7 lines)`.
    fn write_record(&mut self, r: &Record) -> io::Result<()> {
        let plan = self.plan;
        let rule = &plan.rules[r.rule as usize];
        let kind = rule.multiline.as_ref().map_or("custom", |s| s.kind());
        let span = if r.first == r.last {
            format!("line {}", r.first)
        } else {
            format!("lines {}-{}", r.first, r.last)
        };
        if r.fires {
            write!(
                self.out,
                "{span}: fires {} (rule {} /{}/, {kind} record): ",
                rule.alarms
                    .iter()
                    .map(|&a| &*plan.alarms[a as usize].name)
                    .collect::<Vec<_>>()
                    .join(", "),
                r.rule + 1,
                rule.regex
            )?;
        } else {
            write!(
                self.out,
                "{span}: no alarm (rule {} /{}/ does not match the {kind} record): ",
                r.rule + 1,
                rule.regex
            )?;
        }
        let first = memchr::memchr(b'\n', &r.message).map_or(&r.message[..], |i| &r.message[..i]);
        self.out.write_all(first)?;
        let more = r.lines.saturating_sub(1);
        match (more, r.cut) {
            (0, false) => writeln!(self.out),
            (_, false) => writeln!(self.out, " (+{more} lines)"),
            (_, true) => {
                let marker = memchr::memrchr(b'\n', &r.message)
                    .map_or(&r.message[..], |i| &r.message[i + 1..]);
                write!(self.out, " (+{more} lines; ")?;
                self.out.write_all(marker)?;
                writeln!(self.out, ")")
            }
        }
    }

    /// Sets the router's clock to the time `line` starts with, if it has one.
    fn set_clock(&mut self, line: &[u8]) {
        let Some(time) = self.clock.time_of(line) else {
            return;
        };
        self.timed = true;
        let (at, t0) = *self.base.get_or_insert((Instant::now(), time));
        let now = match time.duration_since(t0) {
            // A log's times may lie millennia apart; never past what an Instant holds.
            Ok(ahead) => at.checked_add(ahead).unwrap_or(at),
            Err(_) => at,
        };
        self.router.set_clock(now, time);
    }

    /// Counts (and lists, with `--print-all-matched`) what the router decided
    /// since last asked, then takes what it queued.
    fn decisions(&mut self) {
        for d in self.router.take_log() {
            let written = match d {
                Decided::Event {
                    alarm,
                    verdict,
                    key,
                } => {
                    let counts = &mut self.alarms[alarm as usize];
                    match verdict {
                        Verdict::Sent => counts.sent += 1,
                        Verdict::Held(Hold::AlarmFreq(_)) => counts.alarm_freq += 1,
                        Verdict::Held(_) => counts.held += 1,
                        Verdict::Batched { .. } => counts.batched += 1,
                    }
                    // A plain alarm's events are shown only when not sent.
                    let shown = self.plan.alarms[alarm as usize].policy.is_set()
                        || verdict != Verdict::Sent;
                    if !self.list.matched || !shown || self.error.is_some() {
                        continue;
                    }
                    let key = key
                        .filter(|k| !k.is_empty())
                        .map(|k| format!(" [key {k}]"))
                        .unwrap_or_default();
                    writeln!(
                        self.out,
                        "    {}: {verdict}{key}",
                        self.plan.alarms[alarm as usize].name
                    )
                }
                Decided::Made {
                    alarm,
                    kind,
                    summary,
                    at,
                } => {
                    self.alarms[alarm as usize].made += 1;
                    if !self.list.matched || self.error.is_some() {
                        continue;
                    }
                    let summary = summary.lines().next().unwrap_or_default();
                    writeln!(
                        self.out,
                        "at {}: {kind} -> {}: {summary}",
                        logalarm_plugin_api::logline::rfc3339_millis(at),
                        self.plan.alarms[alarm as usize].name,
                    )
                }
            };
            self.keep(written);
        }
        self.drain();
    }

    fn write_line(&mut self, m: &LineMatch<'_>) -> io::Result<()> {
        let plan = self.plan;
        if m.hits.is_empty() {
            let stop = m.stopped_by.map_or(0, |r| r as usize + 1);
            write!(
                self.out,
                "line {}: ignored (rule {stop} not-log-alarm skips the rules after it): ",
                m.number
            )?;
        } else {
            let alarms: Vec<&str> = m
                .hits
                .iter()
                .map(|h| &*plan.alarms[h.alarm as usize].name)
                .collect();
            let mut rules: Vec<u32> = m.hits.iter().map(|h| h.rule).collect();
            rules.dedup();
            let rules: Vec<String> = rules
                .iter()
                .map(|&r| format!("{} /{}/", r + 1, plan.rules[r as usize].regex))
                .collect();
            write!(
                self.out,
                "line {}: fires {} (rule {}): ",
                m.number,
                alarms.join(", "),
                rules.join(", rule ")
            )?;
        }
        self.out.write_all(m.line)?;
        self.out.write_all(b"\n")
    }

    /// Starts a block read from the log: the arrival clock moves on (when
    /// the lines carry no time) and the input counts as seen.
    fn begin_block(&mut self, block: &[u8]) {
        self.router
            .begin_batch(Source::stdin(), block, Vec::new(), None);
        self.seen.clear();
    }

    /// Ends a block whose first line is number `first`: lists the lines the
    /// scan did not hand over, with `--print-all-missed`; sends what is due.
    fn end_block(&mut self, block: &[u8], first: u64) {
        if self.list.missed && self.error.is_none() {
            let mut seen = self.seen.iter().copied().peekable();
            let mut written = Ok(());
            for (number, raw) in (first..).zip(block.split_inclusive(|&b| b == b'\n')) {
                while seen.next_if(|&n| n < number).is_some() {}
                if seen.next_if_eq(&number).is_some() {
                    continue;
                }
                let line = raw.strip_suffix(b"\n").unwrap_or(raw);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                written = write!(self.out, "line {number}: missed: ")
                    .and_then(|()| self.out.write_all(line))
                    .and_then(|()| self.out.write_all(b"\n"));
                if written.is_err() {
                    break;
                }
            }
            self.keep(written);
        }
        self.router.tick();
        self.decisions();
    }

    /// Ends the log: closes open records, sends pending digests, and returns
    /// the counts (the summary is [`TestReport::summary`]).
    fn finish(&mut self) -> io::Result<()> {
        let closed = &mut self.closed;
        self.records.close_all(&mut |r| closed.push(r));
        self.report_closed();
        self.router.finish();
        self.decisions();
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Writes the summary of a run over `lines` lines that took `took`.
    ///
    /// # Errors
    /// Writing to `out` failed.
    fn summary(&mut self, lines: u64, took: std::time::Duration) -> io::Result<()> {
        let plan = self.plan;
        let out = &mut self.out;
        if self.list.matched || self.list.missed || self.list.ignored {
            writeln!(out)?;
        }
        let ignored = self.tagged + self.skipped;
        let matched = self.matched + self.in_records;
        writeln!(
            out,
            "Lines: {lines} read, {matched} matched, {ignored} ignored ({} anti-loop tag, {} not-log-alarm), {} missed",
            self.tagged,
            self.skipped,
            lines.saturating_sub(matched + ignored)
        )?;
        writeln!(out, "Rules:")?;
        for (i, r) in plan.rules.iter().enumerate() {
            if let Some(spec) = &r.multiline {
                let (records, firing) = self.per_rule_records[i];
                writeln!(
                    out,
                    "  {:>3}  {:13}  {}  -> {}: {records} {} records, {firing} fire",
                    i + 1,
                    rule_kind(r.negate),
                    r.regex,
                    alarm_names(plan, &r.alarms),
                    spec.kind()
                )?;
                continue;
            }
            writeln!(
                out,
                "  {:>3}  {:13}  {}  -> {}: {}",
                i + 1,
                rule_kind(r.negate),
                r.regex,
                alarm_names(plan, &r.alarms),
                plural(self.per_rule[i], "line", "lines")
            )?;
        }
        writeln!(
            out,
            "Alarms (policies on {}):",
            if self.timed {
                "the lines' own clock"
            } else {
                "the arrival clock: the lines carry no time logalarm reads"
            }
        )?;
        for (i, a) in plan.alarms.iter().enumerate() {
            let c = self.alarms[i];
            let mut rest = Vec::new();
            if c.alarm_freq > 0 {
                rest.push(format!("{} dropped by alarm-freq", c.alarm_freq));
            }
            if c.held > 0 {
                rest.push(format!("{} held back by threshold or cooldown", c.held));
            }
            if c.batched > 0 {
                rest.push(format!("{} batched into digests", c.batched));
            }
            if c.made > 0 {
                rest.push(format!("{} made by the policies", c.made));
            }
            let rest = if rest.is_empty() {
                String::new()
            } else {
                format!(" ({})", rest.join(", "))
            };
            writeln!(
                out,
                "  {}: {} -> {}{rest}",
                a.name,
                plural(c.events, "event", "events"),
                plural(c.notifications, "notification", "notifications")
            )?;
        }
        writeln!(
            out,
            "processed {lines} lines in {:.3} s",
            took.as_secs_f64()
        )?;
        out.flush()
    }

    /// The counts, and the notifications when collected.
    fn outcome(self, lines: u64) -> Outcome {
        Outcome {
            lines,
            alarms: self.alarms,
            notes: self.notes.unwrap_or_default(),
        }
    }
}

impl<W: Write> Sink for TestReport<'_, W> {
    fn matched(&mut self, m: &LineMatch<'_>) {
        if self.list.missed {
            self.seen.push(m.number);
        }
        for &r in m.rules {
            if let Some(n) = self.per_rule.get_mut(r as usize) {
                *n += 1;
            }
        }
        for h in m.hits {
            self.alarms[h.alarm as usize].events += 1;
        }
        // A line that only opens a record is shown with its record.
        let opens_only = m.opened.is_some() && m.hits.is_empty() && m.stopped_by.is_none();
        let skipped = m.hits.is_empty() && m.opened.is_none() && m.stopped_by.is_some();
        if skipped {
            self.skipped += 1;
        } else {
            self.matched += 1;
        }
        self.set_clock(m.line);
        self.decisions();
        // A line matching only hidden rules (an expected or recovery line)
        // fires nothing of its own and is not listed.
        let visible = !opens_only
            && (!m.hits.is_empty()
                || m.rules
                    .iter()
                    .any(|&r| (r as usize) < self.plan.rules.len()));
        let listed = if skipped {
            self.list.ignored
        } else {
            self.list.matched
        };
        if visible && listed && self.error.is_none() {
            let written = self.write_line(m);
            self.keep(written);
        }
        self.router.matched(m);
        self.decisions();
        if let Some(rule) = m.opened {
            let closed = &mut self.closed;
            let at = Opening {
                rule,
                line: m.line,
                number: m.number,
                header: None,
            };
            self.records
                .open(&Source::stdin(), at, Instant::now(), &mut |r| {
                    closed.push(r)
                });
            self.report_closed();
        }
    }

    fn tagged(&mut self, line: &[u8], number: u64) {
        self.tagged += 1;
        if self.list.missed {
            self.seen.push(number);
        }
        if self.list.ignored && self.error.is_none() {
            let written = write!(self.out, "line {number}: ignored (anti-loop tag): ")
                .and_then(|()| self.out.write_all(line))
                .and_then(|()| self.out.write_all(b"\n"));
            self.keep(written);
        }
    }

    fn in_record(&self) -> bool {
        !self.records.is_idle()
    }

    fn record_line(&mut self, line: &[u8], number: u64) -> RecordLine {
        let closed = &mut self.closed;
        let step = self
            .records
            .feed(&Source::stdin(), line, number, Instant::now(), &mut |r| {
                closed.push(r)
            });
        if step != RecordLine::NotPart {
            self.in_records += 1;
            if self.list.missed {
                self.seen.push(number);
            }
        }
        if !self.closed.is_empty() {
            self.report_closed();
        }
        step
    }
}

/// Runs `plan` over `input` into `report`; returns the lines read.
fn replay<W: Write>(
    plan: &Plan,
    input: impl Read,
    report: &mut TestReport<'_, W>,
) -> io::Result<u64> {
    let mut reader = LineReader::new(input, MAX_LINE);
    let mut scanner = plan.matcher.scanner(true);
    loop {
        let end = reader.read()?.is_empty();
        let lines = if end {
            reader.take_rest()
        } else {
            reader.take_lines()
        };
        if let Some(lines) = lines {
            let first = scanner.lines() + 1;
            report.begin_block(&lines);
            scanner.scan(&lines, report);
            report.end_block(&lines, first);
        }
        if end {
            break;
        }
    }
    report.finish()?;
    Ok(scanner.lines())
}

/// `logalarm test`: runs `plan` over `input`, lists what `list` asks for and
/// writes the summary to `out`; returns the counts.
///
/// # Errors
/// Reading `input` or writing `out` failed.
pub fn run(plan: &Plan, input: impl Read, out: impl Write, list: Listing) -> io::Result<Outcome> {
    let started = Instant::now();
    let mut report = TestReport::new(plan, out, list);
    let lines = replay(plan, input, &mut report)?;
    report.summary(lines, started.elapsed())?;
    Ok(report.outcome(lines))
}

/// Runs `plan` over `input` and returns the counts and every notification a
/// live run would queue, printing nothing ([`super::expect`]).
///
/// # Errors
/// Reading `input` failed.
pub fn collect(plan: &Plan, input: impl Read) -> io::Result<Outcome> {
    let mut report = TestReport::new(plan, io::sink(), Listing::default()).collect();
    let lines = replay(plan, input, &mut report)?;
    Ok(report.outcome(lines))
}
