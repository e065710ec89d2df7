//! The configuration model, and its three sources: uWSGI-style INI, native TOML,
//! and the command line (uWSGI's option names).
//!
//! Every source produces the same [`Config`]: ordered alarm definitions and an
//! ordered rule list, each item remembering its [`Origin`] so that an error found
//! later (an unknown alarm, a bad regex) names the file and line or key.

pub mod args;
pub mod expand;
pub mod ini;
pub mod options;
pub mod policy;
pub mod settings;
pub mod toml;

pub use crate::component::{ConfigError, Origin, suggest, syntax, toml_doc};
pub use settings::Settings;

use std::path::Path;
use std::time::Duration;

/// An alarm definition: `alarm = NAME PLUGIN:ARGS`.
#[derive(Clone, Debug)]
pub struct AlarmDef {
    /// The alarm's unique name.
    pub name: String,
    /// The plugin name (`cmd`, `signal`, `log`).
    pub plugin: String,
    /// Everything after the first `:`, given to the plugin as it is.
    pub args: String,
    /// Action timeout (TOML `timeout`); the plugin's default when `None`.
    pub timeout: Option<Duration>,
    /// This alarm's queue capacity; the global `queue_size` when `None`.
    pub queue_size: Option<usize>,
    /// Deliveries under way at once (TOML `concurrency`); the plugin's
    /// default when `None` (16 for `cmd`, as uWSGI starts each command at
    /// once; 1, in order, for the others).
    pub concurrency: Option<usize>,
    /// How failed deliveries are retried (TOML `retry`); what it leaves unset
    /// takes the plugin's default.
    pub retry: RetryDef,
    /// The alarm that gets this alarm's notifications when their delivery
    /// failed for good (TOML `on_failure`), and where that was written.
    pub on_failure: Option<(String, Origin)>,
    /// Keys for the plugin (TOML keys beyond the engine's own), by key; see
    /// `BuildContext::options` in the plugin API.
    pub options: Vec<PluginOption>,
    /// Extra headers (TOML `headers` table), by name.
    pub headers: Vec<(String, String)>,
    /// Its policies beyond `alarm-freq` (threshold, cooldown, digest, escalation).
    pub policy: policy::PolicyDef,
    /// The notification's message as a Jinja template (TOML `message`; no
    /// INI form), and where it was written.
    pub message: Option<(String, Origin)>,
    /// Environment variables as Jinja templates (TOML `env` table), by name,
    /// for plugins that take `env` (`cmd`).
    pub env: Vec<(String, String)>,
    /// Where it was defined.
    pub origin: Origin,
}

impl AlarmDef {
    /// Every template text the alarm holds, with where it was written: its
    /// policy keys, `message`, plugin keys (a `body`, a `subject`), `env`
    /// and `headers` values (these two at the alarm's origin).
    pub fn templates(&self) -> impl Iterator<Item = (&str, &Origin)> {
        let p = &self.policy;
        p.key
            .iter()
            .map(|k| (k.template.as_str(), &k.origin))
            .chain(
                p.list
                    .iter()
                    .flat_map(|c| c.templates().into_iter().map(|t| (t, c.origin()))),
            )
            .chain(self.message.as_ref().map(|(m, o)| (m.as_str(), o)))
            .chain(self.options.iter().map(|o| (o.value.as_str(), &o.origin)))
            .chain(
                self.env
                    .iter()
                    .chain(&self.headers)
                    .map(|(_, v)| (v.as_str(), &self.origin)),
            )
    }
}

/// An alarm's retry settings as written (TOML `retry = { attempts, deadline,
/// delay, max_delay }`); `None` takes the plugin's default.
#[derive(Clone, Debug, Default)]
pub struct RetryDef {
    /// Attempts per notification, the first included.
    pub attempts: Option<u32>,
    /// No attempt starts later than this after the notification was made.
    pub deadline: Option<Duration>,
    /// The wait before the first retry, doubled after each.
    pub delay: Option<Duration>,
    /// The longest wait between attempts (before jitter).
    pub max_delay: Option<Duration>,
    /// Where the `retry` table was written; `None` when it was not.
    pub origin: Option<Origin>,
}

/// A TOML alarm key meant for the alarm's plugin (`method = "PUT"`).
#[derive(Clone, Debug)]
pub struct PluginOption {
    /// The key.
    pub key: String,
    /// Its value as a string: numbers and booleans in their TOML form, a list
    /// of strings joined with `,`.
    pub value: String,
    /// Where it was written.
    pub origin: Origin,
}

/// A rule: `log-alarm = NAMES REGEX`, or `not-log-alarm` when `negate`.
#[derive(Clone, Debug)]
pub struct RuleDef {
    /// The regular expression, matched against each line without its terminator.
    pub regex: String,
    /// The alarms it fires, in order.
    pub alarms: Vec<String>,
    /// A negative rule: when it matches, the rules after it are skipped for that line.
    pub negate: bool,
    /// The recovery line: after the rule fired, a line matching it sends one
    /// "resolved" notification to the rule's alarms. With where it was written.
    pub resolve: Option<(String, Origin)>,
    /// Multiline records (TOML `multiline`; INI has no form for it): the rule
    /// takes continuation lines into one event ([`crate::record`]).
    pub multiline: Option<crate::record::config::MultilineDef>,
    /// Where it was defined.
    pub origin: Origin,
}

/// A whole configuration, merged from a file and the command line.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Alarm definitions, in the order written.
    pub alarms: Vec<AlarmDef>,
    /// Rules, in the order written (the order matters for negative rules).
    pub rules: Vec<RuleDef>,
    /// Global settings.
    pub settings: Settings,
    /// Inputs beyond stdin (followed files, sockets); stdin is read only when
    /// there are none and no process is wrapped.
    pub inputs: Vec<Box<dyn crate::input::component::InputConfig>>,
    /// Settings of a wrapped process (`logalarm run`).
    pub run: crate::input::child::config::RunDef,
    /// uWSGI's `alarm-fd` watches.
    pub alarm_fds: Vec<crate::input::fd::config::AlarmFdDef>,
    /// Lines whose absence is an alarm (`[[expect]]`).
    pub expects: Vec<policy::ExpectDef>,
    /// Inputs whose silence is an alarm (`stall_after`).
    pub stalls: Vec<(policy::StallOn, policy::StallDef)>,
    /// Warnings found while loading (ignored uWSGI options, …).
    pub warnings: Vec<String>,
    /// Errors found while loading; the rest of the config is still checked, so
    /// that every error is reported at once.
    pub errors: Vec<ConfigError>,
    /// Names of alarms that were written but not loaded, their error already
    /// in [`Config::errors`]: a rule naming one is not also told the alarm
    /// is unknown.
    pub broken_alarms: Vec<String>,
}

impl Config {
    /// Whether an alarm of this name was written, loaded or not.
    pub fn defines(&self, name: &str) -> bool {
        self.alarms.iter().any(|a| a.name == name) || self.broken_alarms.iter().any(|a| a == name)
    }

    /// Appends another config's alarms and rules after this one's, and takes the
    /// settings it sets.
    pub fn extend(&mut self, other: Config) {
        self.alarms.extend(other.alarms);
        self.rules.extend(other.rules);
        self.settings.override_with(&other.settings);
        // The other config's inputs are renumbered after this one's.
        let base = self.inputs.len();
        self.inputs.extend(other.inputs);
        self.run.override_with(other.run);
        self.alarm_fds.extend(other.alarm_fds);
        self.expects.extend(other.expects);
        self.stalls
            .extend(other.stalls.into_iter().map(|(on, def)| match on {
                policy::StallOn::Input(i) => (policy::StallOn::Input(i + base), def),
                other => (other, def),
            }));
        self.warnings.extend(other.warnings);
        self.errors.extend(other.errors);
        self.broken_alarms.extend(other.broken_alarms);
    }

    /// `Ok(self)` when no error was found while loading.
    ///
    /// # Errors
    /// The errors found.
    pub fn into_result(mut self) -> Result<Config, Vec<ConfigError>> {
        if self.errors.is_empty() {
            Ok(self)
        } else {
            Err(std::mem::take(&mut self.errors))
        }
    }

    /// A config holding nothing but one error.
    pub fn failed(error: ConfigError) -> Config {
        Config {
            errors: vec![error],
            ..Config::default()
        }
    }
}

/// The most a config file, an `include`d one or an `@(FILE)` may hold:
/// 16 MiB. Configs are a few KiB; past this, the file is not one (`-c
/// /dev/zero`, `@(/dev/urandom)` would otherwise be read until memory ran out).
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// Reads a file the config names, at most [`MAX_FILE_BYTES`] of it.
///
/// # Errors
/// The file cannot be read, or holds more than [`MAX_FILE_BYTES`] (the
/// message says so, with the limit).
pub fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "it holds more than {} MiB, the most a config file may",
            MAX_FILE_BYTES >> 20
        )));
    }
    Ok(bytes)
}

/// Loads a config file, choosing the syntax by extension: `.ini` or `.toml`.
///
/// Errors (the file cannot be read, has another extension, or does not parse;
/// each naming the file and, where known, the line and key) are kept in
/// [`Config::errors`] beside what did load.
pub fn load_file(path: &Path) -> Config {
    let bytes = match read_file(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            return Config::failed(ConfigError::file(
                path,
                format!("cannot read the config file: {e}"),
            ));
        }
    };
    match path.extension().and_then(|e| e.to_str()) {
        // uWSGI reads INI as bytes: a regex may hold any (see `ini::load`).
        Some("ini") => ini::load(path, &bytes),
        Some("toml") => match String::from_utf8(bytes) {
            Ok(text) => toml::load(path, &text),
            Err(e) => Config::failed(ConfigError::file(
                path,
                format!(
                    "is not UTF-8 (byte {} is not): TOML files are UTF-8; save it as UTF-8",
                    e.utf8_error().valid_up_to()
                ),
            )),
        },
        _ => Config::failed(ConfigError::file(
            path,
            "unknown config syntax: name the file *.ini (uWSGI INI) or *.toml (native TOML)",
        )),
    }
}
