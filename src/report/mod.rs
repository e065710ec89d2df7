//! What `logalarm check` and `logalarm test` print.
//!
//! - [`mod@check`]: the alarms and the ordered rules → alarms table of a valid config.
//! - [`mod@test`]: a dry run over a log, running no action: a summary of lines
//!   read, matched, ignored and missed, per rule and per alarm, with what the
//!   alarm policies (alarm-freq included) decided on the lines' own clock;
//!   lines listed on request, with fail2ban-regex's flag names.
//! - [`expect`]: rule unit tests, `logalarm test --expect CASES.toml`.
//! - [`redact`]: config text as errors show it, secrets hidden as `check` hides them.

pub mod check;
pub mod expect;
pub mod redact;
pub mod test;

pub use check::check;

use crate::plan::Plan;

pub(crate) fn rule_kind(negate: bool) -> &'static str {
    if negate { "not-log-alarm" } else { "log-alarm" }
}

pub(crate) fn alarm_names(plan: &Plan, alarms: &[u32]) -> String {
    alarms
        .iter()
        .map(|&a| &*plan.alarms[a as usize].name)
        .collect::<Vec<_>>()
        .join(",")
}

/// `1 line`, `2 lines`.
pub(crate) fn plural(n: u64, one: &str, more: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { more })
}
