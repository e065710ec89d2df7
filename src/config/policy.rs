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
use std::time::Duration;

/// Default cap on keys held by each keyed policy of an alarm.
pub const DEFAULT_MAX_KEYS: usize = 10_000;
/// Default cap on the unique messages one digest lists.
pub const DEFAULT_MAX_GROUPS: usize = 100;

/// A key template as written, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDef {
    /// A template over the event (`{{ caps.ip }}`).
    pub template: String,
    /// Where it was written.
    pub origin: Origin,
}

/// `threshold = { count, window, key }`: fire only on the `count`th event of
/// a key within `window` (the Heroku dyno monitor's N-in-T; fail2ban's
/// `maxretry` within `findtime`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThresholdDef {
    /// Events needed, at least 1.
    pub count: u32,
    /// Within this period.
    pub window: Duration,
    /// Its own key, instead of the alarm's.
    pub key: Option<KeyDef>,
    /// Where it was written.
    pub origin: Origin,
}

/// `cooldown = { max, period, key }`: at most `max` notifications per key per
/// `period` (Cyclops' per-key rate limit); the rest are counted and the count
/// goes out with the key's next notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CooldownDef {
    /// Notifications allowed per period, at least 1.
    pub max: u32,
    /// The period.
    pub period: Duration,
    /// Its own key, instead of the alarm's.
    pub key: Option<KeyDef>,
    /// Where it was written.
    pub origin: Origin,
}

/// `digest = PERIOD` or `{ period, max_groups, key }`: one notification per
/// period summing up the alarm's events (failnozzle's digest mail).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestDef {
    /// The period.
    pub period: Duration,
    /// Unique messages listed at most; further ones are only counted.
    pub max_groups: usize,
    /// What makes two events "the same error"; the masked message when `None`.
    pub key: Option<KeyDef>,
    /// Where it was written.
    pub origin: Origin,
}

/// `escalate = { limit, window, alarm }`: more than `limit` events within
/// `window` fire `alarm` once per window (failnozzle's rate page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscalateDef {
    /// Events allowed within the window.
    pub limit: u32,
    /// The sliding window.
    pub window: Duration,
    /// The alarm fired (a pager).
    pub alarm: String,
    /// Where it was written.
    pub origin: Origin,
}

/// An alarm's policies, each optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyDef {
    /// The key the keyed policies count by, unless they have their own.
    pub key: Option<KeyDef>,
    /// N events within T.
    pub threshold: Option<ThresholdDef>,
    /// At most N notifications per key per period.
    pub cooldown: Option<CooldownDef>,
    /// One notification per period.
    pub digest: Option<DigestDef>,
    /// Regexes of "just monitoring" lines, which never make a digest on their own.
    pub monitoring_markers: Vec<(String, Origin)>,
    /// A pager when the rate passes a limit.
    pub escalate: Option<EscalateDef>,
    /// Keys each keyed policy holds at most.
    pub max_keys: Option<usize>,
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

/// Splits `value` at whitespace into `n` words and the rest (trimmed, maybe empty).
fn words(value: &str, n: usize) -> Option<(Vec<&str>, &str)> {
    let mut rest = value.trim();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let (word, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        if word.is_empty() {
            return None;
        }
        out.push(word);
        rest = after.trim_start();
    }
    Some((out, rest))
}

fn count(word: &str, what: &str) -> Result<u32, String> {
    word.parse()
        .map_err(|_| format!("{word:?} is not a whole number ({what})"))
}

impl super::Config {
    /// The options [`Config::add_policy_option`] takes, for "did you mean"
    /// suggestions.
    pub const POLICY_OPTIONS: [&'static str; 6] = [
        "alarm-threshold",
        "alarm-cooldown",
        "alarm-digest",
        "alarm-escalate",
        "alarm-key",
        "alarm-expect",
    ];

    /// Adds an alarm policy written as an INI option, for alarms defined
    /// above it, and returns `Ok(true)`; `Ok(false)` for any other option:
    ///
    /// - `alarm-threshold = NAME COUNT WINDOW [KEY]`
    /// - `alarm-cooldown = NAME MAX PERIOD [KEY]`
    /// - `alarm-digest = NAME PERIOD`
    /// - `alarm-escalate = NAME LIMIT WINDOW PAGER`
    /// - `alarm-key = NAME TEMPLATE`
    /// - `alarm-expect = NAME[,NAME…] WITHIN REGEX`
    ///
    /// # Errors
    /// A malformed value, or an alarm not defined above, with the fix.
    pub fn add_policy_option(
        &mut self,
        option: &str,
        value: &str,
        origin: &Origin,
    ) -> Result<bool, String> {
        let (n, form) = match option {
            "alarm-threshold" => (3, "NAME COUNT WINDOW [KEY], e.g. `ssh 5 60s {{ caps.ip }}`"),
            "alarm-cooldown" => (3, "NAME MAX PERIOD [KEY], e.g. `ssh 1 10m`"),
            "alarm-digest" => (2, "NAME PERIOD, e.g. `errors 60s`"),
            "alarm-escalate" => (4, "NAME LIMIT WINDOW PAGER, e.g. `errors 100 5m pager`"),
            "alarm-key" => (1, "NAME TEMPLATE, e.g. `ssh {{ caps.ip }}`"),
            "alarm-expect" => (2, "NAME[,NAME…] WITHIN REGEX, e.g. `pager 5m heartbeat ok`"),
            _ => return Ok(false),
        };
        let bad = || format!("{value:?} is not `{form}`");
        let (w, rest) = words(value, n).ok_or_else(bad)?;
        let period = |word: &str| super::syntax::duration(word);
        let key = (!rest.is_empty()).then(|| KeyDef {
            template: rest.to_owned(),
            origin: origin.clone(),
        });
        if option == "alarm-expect" {
            if rest.is_empty() {
                return Err(bad());
            }
            let within = period(w[1])?;
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
        let Some(alarm) = self.alarms.iter_mut().find(|a| a.name == w[0]) else {
            return Err(format!(
                "alarm {:?} is not defined above; define it first with `alarm = {} PLUGIN:ARGS`",
                w[0], w[0]
            ));
        };
        let p = &mut alarm.policy;
        match option {
            "alarm-threshold" => {
                let (c, window) = (count(w[1], "COUNT")?, period(w[2])?);
                if c == 0 || window.is_zero() {
                    return Err("COUNT must be at least 1 and WINDOW above zero".into());
                }
                p.threshold = Some(ThresholdDef {
                    count: c,
                    window,
                    key,
                    origin: origin.clone(),
                });
            }
            "alarm-cooldown" => {
                let (max, per) = (count(w[1], "MAX")?, period(w[2])?);
                if max == 0 || per.is_zero() {
                    return Err("MAX must be at least 1 and PERIOD above zero".into());
                }
                p.cooldown = Some(CooldownDef {
                    max,
                    period: per,
                    key,
                    origin: origin.clone(),
                });
            }
            "alarm-digest" => {
                let per = period(w[1])?;
                if per.is_zero() || !rest.is_empty() {
                    return Err(bad());
                }
                p.digest = Some(DigestDef {
                    period: per,
                    max_groups: DEFAULT_MAX_GROUPS,
                    key: None,
                    origin: origin.clone(),
                });
            }
            "alarm-escalate" => {
                let (limit, window) = (count(w[1], "LIMIT")?, period(w[2])?);
                if window.is_zero() || !rest.is_empty() {
                    return Err(bad());
                }
                p.escalate = Some(EscalateDef {
                    limit,
                    window,
                    alarm: w[3].to_owned(),
                    origin: origin.clone(),
                });
            }
            _ => {
                if key.is_none() {
                    return Err(bad());
                }
                p.key = key;
            }
        }
        Ok(true)
    }
}
