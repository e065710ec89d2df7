//! The config of the alarm policy stage: per alarm, what it fires on and how
//! often (threshold, cooldown, digest, escalation, the key they count by);
//! per rule, the recovery line (`resolve`); and the lines or inputs whose
//! absence is an alarm (`[[expect]]`, `stall_after`).
//!
//! ```toml
//! [alarm.ssh]
//! action = "cmd:/usr/local/bin/page"
//! key = "{{ caps.ip }}"                          # what threshold, cooldown and digest count by
//! threshold = { count = 5, window = "60s" }      # fire on the 5th event of a key within 60 s
//! cooldown = { max = 1, period = "10m" }         # then at most 1 notification per key per 10 min
//! max_keys = 10000                               # keys held per policy (the oldest is evicted)
//!
//! [alarm.errors]
//! action = "curl:smtp://127.0.0.1;mail_to=ops@example.com"
//! digest = "60s"                                 # or { period = "60s", max_groups = 100, key = "…" }
//! monitoring_markers = ["E2E-PROBE"]             # these alone never make a digest
//! escalate = { limit = 100, window = "5m", alarm = "pager" }
//!
//! [[rule]]
//! regex = "db down"
//! alarm = "errors"
//! resolve = "db up"                              # one "resolved" notification after it fired
//!
//! [[expect]]
//! regex = "heartbeat ok"
//! within = "5m"
//! alarm = "pager"
//! ```

use super::Origin;
use crate::component::OptionDoc;
use crate::policy::component::{self, PolicyConfig};
use std::time::Duration;

pub use crate::policy::component::DEFAULT_MAX_KEYS;

/// A key template as written, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDef {
    /// A template over the event (`{{ caps.ip }}`).
    pub template: String,
    /// Where it was written.
    pub origin: Origin,
}

/// An alarm's policies as read: each policy's own config (see
/// [`crate::policy::component`]), and the keys they share.
#[derive(Clone, Debug, Default)]
pub struct PolicyDef {
    /// The key the keyed policies count by, unless they have their own.
    pub key: Option<KeyDef>,
    /// Keys each keyed policy holds at most.
    pub max_keys: Option<usize>,
    /// The policies, in the order written.
    pub list: Vec<Box<dyn PolicyConfig>>,
}

impl PolicyDef {
    /// Sets a policy, replacing one of the same kind written before.
    pub fn set(&mut self, policy: Box<dyn PolicyConfig>) {
        self.list.retain(|p| !std::ptr::eq(p.kind(), policy.kind()));
        self.list.push(policy);
    }
}

/// `[[expect]]`: a line that must be seen at least every `within`; its
/// absence fires the alarms, and its return fires them once more (resolved).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectDef {
    /// The expected line.
    pub regex: String,
    /// The longest silence allowed.
    pub within: Duration,
    /// The alarms fired.
    pub alarms: Vec<String>,
    /// Where it was written.
    pub origin: Origin,
}

/// `stall_after` / `on_stall` on an input: no line from it for the period
/// fires the alarms, and its next line fires them once more (resolved).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StallDef {
    /// The longest silence allowed.
    pub after: Duration,
    /// The alarms fired.
    pub alarms: Vec<String>,
    /// Where it was written.
    pub origin: Origin,
}

/// What a [`StallDef`] watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StallOn {
    /// Every input together (TOML top-level `stall_after`): no line at all.
    Any,
    /// One `[[input]]`, by its index in [`super::Config::inputs`].
    Input(usize),
    /// The wrapped process's output (`[run]`).
    Child,
}

/// The policy stage's options besides the policy kinds' own
/// ([`component::KINDS`]).
pub static OPTIONS: [OptionDoc; 2] = [
    OptionDoc::new(
        "alarm-key",
        "NAME TEMPLATE",
        "The key alarm NAME's threshold, cooldown and digest count by, e.g. 'ssh {{ caps.ip }}'",
    ),
    OptionDoc::new(
        "alarm-expect",
        "ALARM[,ALARM…] WITHIN REGEX",
        "Fire the alarms when no line matches REGEX for WITHIN (a heartbeat)",
    ),
];

impl super::Config {
    /// Adds an alarm policy written as an INI option, for alarms defined
    /// above it, and returns `Ok(true)`; `Ok(false)` for any other option:
    ///
    /// - each policy kind's option (`alarm-threshold = NAME COUNT WINDOW [KEY]`,
    ///   `alarm-cooldown`, `alarm-digest`, `alarm-escalate`: see
    ///   [`component::KINDS`]);
    /// - `alarm-key = NAME TEMPLATE`
    /// - `alarm-expect = NAME[,NAME…] WITHIN REGEX`
    ///
    /// # Errors
    /// A malformed value, or an alarm not defined above, with the fix.
    pub(super) fn add_policy_option(
        &mut self,
        option: &str,
        value: &str,
        origin: &Origin,
    ) -> Result<bool, String> {
        let kind = component::by_ini(option);
        let form = match (option, kind) {
            (_, Some(kind)) => format!("NAME {}", kind.ini_form),
            ("alarm-key", None) => "NAME TEMPLATE, e.g. `ssh {{ caps.ip }}`".to_owned(),
            ("alarm-expect", None) => {
                "NAME[,NAME…] WITHIN REGEX, e.g. `pager 5m heartbeat ok`".to_owned()
            }
            _ => return Ok(false),
        };
        let bad = || format!("{value:?} is not `{form}`");
        if option == "alarm-expect" {
            let (w, rest) = component::words(value, 2).ok_or_else(bad)?;
            if rest.is_empty() {
                return Err(bad());
            }
            let within = super::syntax::duration(w[1])?;
            if within.is_zero() {
                return Err("the period must be above zero".into());
            }
            self.expects.push(ExpectDef {
                regex: rest.to_owned(),
                within,
                alarms: w[0]
                    .split(',')
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned)
                    .collect(),
                origin: origin.clone(),
            });
            return Ok(true);
        }
        let (w, rest) = component::words(value, 1).ok_or_else(bad)?;
        let Some(alarm) = self.alarms.iter_mut().find(|a| a.name == w[0]) else {
            return Err(format!(
                "alarm {:?} is not defined above; define it first with `alarm = {} PLUGIN:ARGS`",
                w[0], w[0]
            ));
        };
        match kind {
            Some(kind) => alarm.policy.set((kind.from_ini)(value, origin)?),
            None if rest.is_empty() => return Err(bad()),
            None => {
                alarm.policy.key = Some(KeyDef {
                    template: rest.to_owned(),
                    origin: origin.clone(),
                });
            }
        }
        Ok(true)
    }
}
