//! The one table of uWSGI-style options: each is a key of an INI section
//! and the same command-line flag, parsed by the same code into the same
//! [`Config`] that TOML fills.
//!
//! The options come from their components: uWSGI's alarm and rule options
//! ([`UWSGI`], here), each input kind's ([`crate::input::component::KINDS`]),
//! the wrapped process's ([`crate::input::child::config::OPTIONS`]),
//! `alarm-fd` ([`crate::input::fd::config::OPTION`]), each policy kind's
//! ([`crate::policy::component::KINDS`]) and the policy stage's own
//! ([`super::policy::OPTIONS`]). [`Config::options`] lists them, for the
//! INI reader's "did you mean" and for the command line's flags
//! ([`crate::cli`]); [`Config::add_option`] applies one. The global settings
//! have their own typed table ([`super::settings`]).

use super::{AlarmDef, Config, Origin, RetryDef, RuleDef, policy, syntax};
use crate::component::OptionDoc;
use crate::input::child::config as run;
use crate::input::component as inputs;
use crate::input::fd::config as alarm_fd;

/// uWSGI's alarm and rule options.
pub static UWSGI: [OptionDoc; 5] = [
    OptionDoc::new(
        "alarm",
        "NAME PLUGIN:ARGS",
        "Define an alarm (uWSGI --alarm), e.g. 'mailme cmd:mail -s alarm admin@example.com'",
    ),
    OptionDoc::new(
        "log-alarm",
        "ALARM[,ALARM…] REGEX",
        "Fire alarms on lines matching REGEX (uWSGI --log-alarm)",
    ),
    OptionDoc::new("alarm-log", "ALARM[,ALARM…] REGEX", "Same as --log-alarm"),
    OptionDoc::new(
        "not-log-alarm",
        "ALARM[,ALARM…] REGEX",
        "Negative rule: a matching line skips the rules after this one (uWSGI --not-log-alarm)",
    ),
    OptionDoc::new(
        "not-alarm-log",
        "ALARM[,ALARM…] REGEX",
        "Same as --not-log-alarm",
    ),
];

impl Config {
    /// Every option of the table, in the order `--help` lists them.
    pub fn options() -> Vec<&'static OptionDoc> {
        let policies = crate::policy::component::KINDS
            .iter()
            .filter_map(|k| k.option.as_ref());
        UWSGI
            .iter()
            .chain(inputs::options())
            .chain([&alarm_fd::OPTION])
            .chain(run::OPTIONS.iter())
            .chain(policies)
            .chain(policy::OPTIONS.iter())
            .collect()
    }

    /// Applies one option of the table (its name with `-`, as the caller
    /// normalised it) and returns `Ok(true)`; `Ok(false)` for any other.
    ///
    /// `follow-from`, `socket-mode` and `socket-allow-uid` apply to the
    /// inputs defined before them in the same source; the policy options to
    /// the alarm they name, defined before them.
    ///
    /// # Errors
    /// A malformed value, with the expected form.
    pub fn add_option(
        &mut self,
        option: &str,
        value: &str,
        origin: &Origin,
    ) -> Result<bool, String> {
        if self.add_uwsgi_option(option, value, origin)? {
            return Ok(true);
        }
        if alarm_fd::OPTION.is(option) {
            self.alarm_fds
                .push(alarm_fd::alarm_fd_value(value, origin)?);
            return Ok(true);
        }
        if self.run.add_option(option, value, origin)? {
            return Ok(true);
        }
        if inputs::add_option(&mut self.inputs, option, value, origin)? {
            return Ok(true);
        }
        self.add_policy_option(option, value, origin)
    }

    /// Adds an alarm or a rule written with one of uWSGI's options — `alarm`,
    /// `log-alarm`, `alarm-log`, `not-log-alarm`, `not-alarm-log` (with `-`,
    /// as normalised by the caller) — and returns `Ok(true)`; `Ok(false)` for
    /// any other option.
    ///
    /// # Errors
    /// A malformed value, with the expected form.
    fn add_uwsgi_option(
        &mut self,
        option: &str,
        value: &str,
        origin: &Origin,
    ) -> Result<bool, String> {
        match option {
            "alarm" => {
                let a = syntax::alarm_value(value)?;
                self.alarms.push(AlarmDef {
                    name: a.name,
                    plugin: a.plugin,
                    args: a.args,
                    timeout: None,
                    queue_size: None,
                    concurrency: None,
                    retry: RetryDef::default(),
                    on_failure: None,
                    options: Vec::new(),
                    headers: Vec::new(),
                    policy: policy::PolicyDef::default(),
                    message: None,
                    env: Vec::new(),
                    origin: origin.clone(),
                });
            }
            "log-alarm" | "alarm-log" | "not-log-alarm" | "not-alarm-log" => {
                let (alarms, regex) = syntax::rule_value(value)?;
                self.rules.push(RuleDef {
                    regex,
                    alarms,
                    negate: option.starts_with("not-"),
                    resolve: None,
                    multiline: None,
                    origin: origin.clone(),
                });
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}
