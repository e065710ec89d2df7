//! `logalarm check`: the alarms, the ordered rules → alarms table, the
//! inputs and the settings of a valid config.

use super::{alarm_names, rule_kind};
use crate::config::Config;
use crate::plan::Plan;
use std::io::{self, Write};

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
        writeln!(
            out,
            "  {:9} {}    ({})",
            input.kind().key,
            input.describe(),
            input.origin()
        )?;
    }
    for fd in &config.alarm_fds {
        writeln!(
            out,
            "  alarm-fd  {} ({} bytes per event) -> {} {:?}    ({})",
            fd.fd, fd.size, fd.alarm, fd.message, fd.origin
        )?;
    }
    if let Some(run) = config.run.describe() {
        writeln!(out, "Under `logalarm run`: {run}")?;
    }
    Ok(())
}

/// An alarm's policies as `check` lists them, in the order they apply.
fn policy_text(p: &crate::config::policy::PolicyDef) -> Vec<String> {
    let alarm_key = p.key.as_ref().map(|k| k.template.as_str());
    crate::policy::component::KINDS
        .iter()
        .flat_map(|kind| p.list.iter().filter(|c| std::ptr::eq(c.kind(), *kind)))
        .map(|c| c.describe(alarm_key))
        .collect()
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
        humantime::format_duration(config.settings.alarm_freq()),
        config.settings.msg_size(),
        if config.settings.passthrough() {
            "on"
        } else {
            "off"
        },
        config.settings.queue_size(),
        humantime::format_duration(config.settings.drain_timeout()),
    )?;
    writeln!(
        out,
        "OK: {} alarms, {} rules",
        plan.alarms.len(),
        plan.rules.len()
    )
}
