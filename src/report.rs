//! What `logalarm check` and `logalarm test` print.
//!
//! `check` prints the alarms and the ordered rules → alarms table of a valid
//! config. `test` runs the matcher over a log without running any action and
//! prints each line that would fire, with its rule and alarms, then a summary
//! of matches per rule, as fail2ban-regex does.

use crate::config::Config;
use crate::config::inputs::{DEFAULT_LAST_LINES, InputDef, Restart, SocketKind, StartAt};
use crate::matcher::{LineMatch, ScanStats, Sink};
use crate::plan::Plan;
use std::io::{self, Write};

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

/// The `test` sink: prints each matching line and counts per rule and alarm.
pub struct TestReport<'p, W: Write> {
    plan: &'p Plan,
    out: W,
    per_rule: Vec<u64>,
    per_alarm: Vec<u64>,
    firing_lines: u64,
    error: Option<io::Error>,
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
        }
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

    /// Writes the summary.
    ///
    /// # Errors
    /// Writing to `out` failed now or earlier.
    pub fn finish(mut self, lines: u64, stats: ScanStats) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
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
        out.flush()
    }
}

impl<W: Write> Sink for TestReport<'_, W> {
    fn matched(&mut self, m: &LineMatch<'_>) {
        for &r in m.rules {
            self.per_rule[r as usize] += 1;
        }
        for h in m.hits {
            self.per_alarm[h.alarm as usize] += 1;
        }
        self.firing_lines += u64::from(!m.hits.is_empty());
        if self.error.is_none()
            && let Err(e) = self.write_line(m)
        {
            self.error = Some(e);
        }
    }
}
