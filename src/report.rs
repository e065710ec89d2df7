//! What `logalarm check` and `logalarm test` print.
//!
//! `check` prints the alarms and the ordered rules → alarms table of a valid
//! config. `test` runs the matcher over a log without running any action and
//! prints each line that would fire, with its rule and alarms, then a summary
//! of matches per rule, as fail2ban-regex does.

use crate::config::Config;
use crate::config::inputs::{DEFAULT_LAST_LINES, InputDef, Restart, SocketKind, StartAt};
use crate::dispatch::router::{Decided, Route, RouteSpec, Router};
use crate::matcher::RecordLine;
use crate::matcher::{LineMatch, ScanStats, Sink};
use crate::plan::Plan;
use crate::policy::chain::Verdict;
use crate::policy::clock::LineClock;
use crate::record::assembler::{Assembler, Opening, Record};
use logalarm_plugin_api::Source;
use std::io::{self, Write};
use std::time::{Instant, SystemTime};

fn rule_kind(negate: bool) -> &'static str {
    if negate { "not-log-alarm" } else { "log-alarm" }
}

fn alarm_names(plan: &Plan, alarms: &[u32]) -> String {
    alarms
        .iter()
        .map(|&a| &*plan.alarms[a as usize].name)
        .collect::<Vec<_>>()
        .join(",")
}

/// The inputs part of `check`: what is read, and what fires alarms without rules.
fn inputs(config: &Config, out: &mut impl Write) -> io::Result<()> {
    if config.inputs.is_empty() {
        writeln!(
            out,
            "Inputs: stdin (under `logalarm run`: the process's stdout and stderr)"
        )?;
    } else {
        writeln!(out, "Inputs:")?;
    }
    for input in &config.inputs {
        match input {
            InputDef::File {
                paths,
                from,
                origin,
            } => writeln!(
                out,
                "  file      {} (from {})    ({origin})",
                paths.join(", "),
                match from {
                    StartAt::End => "end",
                    StartAt::Beginning => "beginning",
                }
            )?,
            InputDef::Socket {
                path,
                kind,
                mode,
                allow_uids,
                origin,
            } => {
                let uids = if allow_uids.is_empty() {
                    String::new()
                } else {
                    let list: Vec<String> = allow_uids.iter().map(u32::to_string).collect();
                    format!(", uids {}", list.join(","))
                };
                writeln!(
                    out,
                    "  socket    {} ({}, mode {mode:04o}{uids})    ({origin})",
                    path.display(),
                    match kind {
                        SocketKind::Dgram => "dgram",
                        SocketKind::Stream => "stream",
                    }
                )?;
            }
        }
    }
    for fd in &config.alarm_fds {
        writeln!(
            out,
            "  alarm-fd  {} ({} bytes per event) -> {} {:?}    ({})",
            fd.fd, fd.size, fd.alarm, fd.message, fd.origin
        )?;
    }
    let run = &config.run;
    if !run.on_exit.is_empty() || run.restart.is_some() {
        let names: Vec<&str> = run.on_exit.iter().map(|(n, _)| n.as_str()).collect();
        writeln!(
            out,
            "Under `logalarm run`: on-exit -> {} ({}), last {} lines, restart {}",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(",")
            },
            if run.on_exit_nonzero == Some(true) {
                "crash signals and non-zero exits"
            } else {
                "crash signals"
            },
            run.last_lines.unwrap_or(DEFAULT_LAST_LINES),
            match run.restart.unwrap_or_default() {
                Restart::No => "no",
                Restart::OnFailure => "on-failure",
                Restart::Always => "always",
            }
        )?;
    }
    Ok(())
}

/// An alarm's policies as `check` lists them, in the order they apply.
fn policy_text(p: &crate::config::policy::PolicyDef) -> Vec<String> {
    let d = |d: &std::time::Duration| humantime::format_duration(*d).to_string();
    let per = |own: &Option<crate::config::policy::KeyDef>| {
        own.as_ref()
            .or(p.key.as_ref())
            .map(|k| format!(" per key {}", k.template))
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    if let Some(e) = &p.escalate {
        out.push(format!(
            "escalate to {} above {} events within {}",
            e.alarm,
            e.limit,
            d(&e.window)
        ));
    }
    if let Some(t) = &p.threshold {
        out.push(format!(
            "threshold {} within {}{}",
            t.count,
            d(&t.window),
            per(&t.key)
        ));
    }
    if let Some(g) = &p.digest {
        let markers = if p.monitoring_markers.is_empty() {
            String::new()
        } else {
            format!(", {} monitoring markers", p.monitoring_markers.len())
        };
        out.push(format!(
            "digest every {} (at most {} unique messages{markers}){}",
            d(&g.period),
            g.max_groups,
            g.key
                .as_ref()
                .map(|k| format!(" per key {}", k.template))
                .unwrap_or_default()
        ));
    }
    if let Some(c) = &p.cooldown {
        out.push(format!(
            "cooldown {} per {}{}",
            c.max,
            d(&c.period),
            per(&c.key)
        ));
    }
    out
}

/// Writes the `check` report: alarms, rules, inputs, settings.
///
/// # Errors
/// Writing to `out` failed.
pub fn check(plan: &Plan, config: &Config, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "Alarms:")?;
    let width = plan.alarms.iter().map(|a| a.name.len()).max().unwrap_or(0);
    for a in &plan.alarms {
        writeln!(
            out,
            "  {:width$}  {}    ({})",
            a.name, a.action_text, a.origin
        )?;
        // Delivery beyond uWSGI's one attempt, when there is any.
        let mut delivery = Vec::new();
        if a.retry.attempts > 1 {
            delivery.push(format!(
                "retried: {} attempts within {}, waits {} to {} (plus jitter)",
                a.retry.attempts,
                humantime::format_duration(a.retry.deadline),
                humantime::format_duration(a.retry.delay),
                humantime::format_duration(a.retry.max_delay)
            ));
        }
        if let Some(i) = a.on_failure {
            delivery.push(format!("on failure: {}", plan.alarms[i].name));
        }
        if !delivery.is_empty() {
            writeln!(out, "  {:width$}    {}", "", delivery.join("; "))?;
        }
        if let Some(def) = config.alarms.iter().find(|d| *d.name == *a.name) {
            let policies = policy_text(&def.policy);
            if !policies.is_empty() {
                writeln!(out, "  {:width$}    policies: {}", "", policies.join("; "))?;
            }
        }
        if let Some(message) = &a.message {
            // One line per alarm entry: line breaks in the template shown escaped.
            let mut text = Vec::new();
            logalarm_plugin_api::push_escaped(&mut text, message.source().as_bytes());
            writeln!(
                out,
                "  {:width$}    message: {}",
                "",
                String::from_utf8_lossy(&text)
            )?;
        }
    }
    writeln!(
        out,
        "Rules, in order (a matching not-log-alarm skips the rules after it):"
    )?;
    let rwidth = plan
        .rules
        .iter()
        .map(|r| r.regex.len())
        .max()
        .unwrap_or(0)
        .min(60);
    for (i, r) in plan.rules.iter().enumerate() {
        writeln!(
            out,
            "  {:>3}  {:13}  {:rwidth$}  -> {}    ({})",
            i + 1,
            rule_kind(r.negate),
            r.regex,
            alarm_names(plan, &r.alarms),
            r.origin
        )?;
        if let Some(spec) = &r.multiline {
            writeln!(out, "       multiline {spec}")?;
        }
        if let Some((resolve, _)) = config.rules.get(i).and_then(|d| d.resolve.as_ref()) {
            writeln!(out, "       resolved by /{resolve}/")?;
        }
    }
    for e in &config.expects {
        writeln!(
            out,
            "Expect /{}/ at least every {} -> {}    ({})",
            e.regex,
            humantime::format_duration(e.within),
            e.alarms.join(","),
            e.origin
        )?;
    }
    for (_, name, after, alarms) in &plan.stalls {
        writeln!(
            out,
            "Stall: input {name} silent for {} -> {}",
            humantime::format_duration(*after),
            alarm_names(plan, alarms)
        )?;
    }
    inputs(config, out)?;
    writeln!(
        out,
        "Settings: alarm-freq {}, alarm-msg-size {} bytes, pass-through {}, queue-size {}, drain-timeout {}",
        humantime::format_duration(config.alarm_freq()),
        config.msg_size(),
        if config.passthrough() { "on" } else { "off" },
        config.queue_size(),
        humantime::format_duration(config.drain_timeout()),
    )?;
    writeln!(
        out,
        "OK: {} alarms, {} rules",
        plan.alarms.len(),
        plan.rules.len()
    )
}

/// The `test` sink: prints each matching line and counts per rule and alarm;
/// for alarms with policies, what each policy decided for each line, and the
/// notifications the policy stage made itself (digests, escalations,
/// absences, recoveries), on the lines' own clock when they carry times.
pub struct TestReport<'p, W: Write> {
    plan: &'p Plan,
    out: W,
    per_rule: Vec<u64>,
    per_alarm: Vec<u64>,
    firing_lines: u64,
    error: Option<io::Error>,
    router: Router,
    clock: LineClock,
    /// The first line time read, and the instant it stands for.
    base: Option<(Instant, SystemTime)>,
    /// Whether any line carried a time the clock could read.
    timed: bool,
    /// Per alarm: events sent, held back, batched; notifications made.
    outcomes: Vec<[u64; 4]>,
    /// Whether to show per-line decisions at all (any policy or watch is set).
    policies: bool,
    /// Multiline records being assembled; the log is one input.
    records: Assembler,
    closed: Vec<Record>,
    /// Per rule: records closed, and those that fire.
    per_rule_records: Vec<(u64, u64)>,
}

/// A router that queues nowhere: its queues' receivers are gone, so what it
/// makes is only reported.
fn dry_router(plan: &Plan) -> Router {
    let routes = plan
        .alarms
        .iter()
        .map(|a| {
            let (queue, _) = tokio::sync::mpsc::channel(1);
            RouteSpec {
                route: Route {
                    name: a.name.clone(),
                    queue,
                    stats: Default::default(),
                },
                policy: a.policy.clone(),
                needs_caps: a.needs_caps,
            }
        })
        .collect();
    let (freq, size) = (plan.alarm_freq, plan.msg_size);
    let mut router = Router::new(
        routes,
        &plan.rules,
        plan.watches(Instant::now()),
        freq,
        size,
    );
    router.keep_log();
    router
}

impl<'p, W: Write> TestReport<'p, W> {
    /// A report over `plan`, written to `out`.
    pub fn new(plan: &'p Plan, out: W) -> Self {
        TestReport {
            plan,
            out,
            per_rule: vec![0; plan.rules.len()],
            per_alarm: vec![0; plan.alarms.len()],
            firing_lines: 0,
            error: None,
            router: dry_router(plan),
            clock: LineClock::new(),
            base: None,
            timed: false,
            outcomes: vec![[0; 4]; plan.alarms.len()],
            policies: plan.alarms.iter().any(|a| a.policy.is_set())
                || !plan.hidden.is_empty()
                || !plan.stalls.is_empty(),
            records: Assembler::new(plan.rules.iter().map(|r| r.multiline.clone()).collect()),
            closed: Vec::new(),
            per_rule_records: vec![(0, 0); plan.rules.len()],
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
                    self.per_alarm[a as usize] += 1;
                }
            }
            if self.error.is_none()
                && let Err(e) = self.write_record(&record).and_then(|()| {
                    // What the alarms' policies decide for the record.
                    self.router.fire_record(record);
                    self.write_decisions()
                })
            {
                self.error = Some(e);
            }
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
            Ok(ahead) => at + ahead,
            Err(_) => at,
        };
        self.router.set_clock(now, time);
    }

    /// Writes what the router decided since last asked.
    fn write_decisions(&mut self) -> io::Result<()> {
        for d in self.router.take_log() {
            match d {
                Decided::Event {
                    alarm,
                    verdict,
                    key,
                } => {
                    let o = &mut self.outcomes[alarm as usize];
                    match verdict {
                        Verdict::Sent => o[0] += 1,
                        Verdict::Held(_) => o[1] += 1,
                        Verdict::Batched { .. } => o[2] += 1,
                    }
                    if !self.plan.alarms[alarm as usize].policy.is_set() {
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
                    )?;
                }
                Decided::Made {
                    alarm,
                    kind,
                    summary,
                    at,
                } => {
                    self.outcomes[alarm as usize][3] += 1;
                    let summary = summary.lines().next().unwrap_or_default().to_owned();
                    writeln!(
                        self.out,
                        "at {}: {kind} -> {}: {summary}",
                        humantime::format_rfc3339_millis(at),
                        self.plan.alarms[alarm as usize].name,
                    )?;
                }
            }
        }
        Ok(())
    }

    fn write_line(&mut self, m: &LineMatch<'_>) -> io::Result<()> {
        let plan = self.plan;
        if m.hits.is_empty() {
            let stop = m.stopped_by.map(|r| r as usize + 1).unwrap_or(0);
            write!(
                self.out,
                "line {}: no alarm (rule {stop} not-log-alarm skips the rules after it): ",
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

    fn line(&mut self, m: &LineMatch<'_>) -> io::Result<()> {
        if self.policies {
            self.set_clock(m.line);
            self.write_decisions()?;
        }
        // A line matching only hidden rules (an expected or recovery line)
        // fires nothing of its own.
        let opens_only = m.opened.is_some() && m.hits.is_empty() && m.stopped_by.is_none();
        let visible = !opens_only
            && (!m.hits.is_empty()
                || m.rules
                    .iter()
                    .any(|&r| (r as usize) < self.plan.rules.len()));
        if visible {
            self.write_line(m)?;
        }
        self.router.matched(m);
        self.write_decisions()
    }

    /// Writes the summary.
    ///
    /// # Errors
    /// Writing to `out` failed now or earlier.
    pub fn finish(mut self, lines: u64, stats: ScanStats) -> io::Result<()> {
        let closed = &mut self.closed;
        self.records.close_all(&mut |r| closed.push(r));
        self.report_closed();
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.router.finish();
        self.write_decisions()?;
        let plan = self.plan;
        let out = &mut self.out;
        writeln!(out)?;
        writeln!(
            out,
            "Lines: {lines} read, {} matched a rule, {} would fire alarms, {} skipped (anti-loop tag)",
            stats.matched, self.firing_lines, stats.tagged
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
                "  {:>3}  {:13}  {}  -> {}: {} lines",
                i + 1,
                rule_kind(r.negate),
                r.regex,
                alarm_names(plan, &r.alarms),
                self.per_rule[i]
            )?;
        }
        writeln!(out, "Alarms (before alarm-freq):")?;
        for (i, a) in plan.alarms.iter().enumerate() {
            writeln!(out, "  {}: {} notifications", a.name, self.per_alarm[i])?;
        }
        if self.policies {
            writeln!(
                out,
                "Policies (on {}):",
                if self.timed {
                    "the lines' own clock"
                } else {
                    "the arrival clock: the lines carry no time logalarm reads"
                }
            )?;
            for (i, a) in plan.alarms.iter().enumerate() {
                let [sent, held, batched, made] = self.outcomes[i];
                writeln!(
                    out,
                    "  {}: {sent} events sent, {held} held back or dropped, {batched} batched into digests; {made} {} made by the policies",
                    a.name,
                    if made == 1 {
                        "notification"
                    } else {
                        "notifications"
                    }
                )?;
            }
        }
        out.flush()
    }
}

impl<W: Write> Sink for TestReport<'_, W> {
    fn matched(&mut self, m: &LineMatch<'_>) {
        for &r in m.rules {
            if let Some(n) = self.per_rule.get_mut(r as usize) {
                *n += 1;
            }
        }
        for h in m.hits {
            self.per_alarm[h.alarm as usize] += 1;
        }
        self.firing_lines += u64::from(!m.hits.is_empty());
        if self.error.is_none()
            && let Err(e) = self.line(m)
        {
            self.error = Some(e);
        }
        if let Some(rule) = m.opened {
            let closed = &mut self.closed;
            let at = Opening {
                rule,
                line: m.line,
                number: m.number,
                header: None,
            };
            self.records
                .open(&Source::Stdin, at, std::time::Instant::now(), &mut |r| {
                    closed.push(r)
                });
            self.report_closed();
        }
    }

    fn in_record(&self) -> bool {
        !self.records.is_idle()
    }

    fn record_line(&mut self, line: &[u8], number: u64) -> RecordLine {
        let closed = &mut self.closed;
        let step = self.records.feed(
            &Source::Stdin,
            line,
            number,
            std::time::Instant::now(),
            &mut |r| closed.push(r),
        );
        if !self.closed.is_empty() {
            self.report_closed();
        }
        step
    }
}
