//! The global settings: one table for the three syntaxes.
//!
//! Each setting is written once below, in `settings!`: its type, its
//! default, its TOML key, its INI option (uWSGI's name where uWSGI has the
//! option) and its command-line flag, with its doc. The table gives:
//!
//! - [`Settings`], the typed values (`None`: not set by this source), with
//!   an accessor per setting that applies the default;
//! - [`Settings::set_option`] for INI options and command-line flags, which
//!   parse the same way (`500ms`, `8192`, `true`);
//! - [`Settings::set_toml`] for TOML keys (a period may also be a number of
//!   seconds there);
//! - [`SETTINGS`], the names and docs, from which the command line's flags
//!   ([`crate::cli`]) and the INI reader's "did you mean" are made.
//!
//! A new global key is one entry here, and its use.

use super::syntax;
use crate::component::de::Period;
use crate::component::toml_doc::Reader;
use crate::component::{ConfigError, Origin};
use crate::input::follow::{DEFAULT_FLUSH_TIMEOUT, DEFAULT_POLL_INTERVAL, DEFAULT_ROTATE_WAIT};
use crate::input::passthrough::{self, Full};
use crate::state::{self, Busy, DEFAULT_LOCK_WAIT};
use logalarm_plugin_api::LogFormat;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;
use toml::de::DeValue;

/// One setting's names and doc.
#[derive(Debug)]
pub struct Setting {
    /// Its TOML keys (the first is its name; others are aliases).
    pub toml: &'static [&'static str],
    /// Its INI option (with `-`; uWSGI's name where uWSGI has it).
    pub ini: &'static str,
    /// Its command-line flag without `--`, if it has one.
    pub cli: Option<&'static str>,
    /// The value's name in `--help` (`SECONDS`).
    pub value_name: &'static str,
    /// What it does, its unit and default, for `--help`.
    pub doc: &'static str,
    /// Checks a value as written in INI or on the command line.
    pub check: fn(&str) -> Result<(), String>,
}

impl Setting {
    /// The doc as one line (`--help`).
    pub fn summary(&self) -> String {
        let words: Vec<&str> = self.doc.split_whitespace().collect();
        words.join(" ")
    }
}

/// A period in TOML: seconds (`3`, `0.5`) or a duration string (`"500ms"`).
fn period(p: Period) -> Result<Duration, String> {
    Ok(p.0)
}

/// A count or size in TOML, at least 1.
fn positive(n: usize) -> Result<usize, String> {
    if n == 0 {
        Err("must be at least 1".into())
    } else {
        Ok(n)
    }
}

/// A directory: not empty (surrounding spaces dropped).
fn path(text: String) -> Result<PathBuf, String> {
    directory(&text)
}

fn directory(value: &str) -> Result<PathBuf, String> {
    match value.trim() {
        "" => Err("is empty; write a directory".into()),
        dir => Ok(PathBuf::from(dir)),
    }
}

fn same<T>(value: T) -> Result<T, String> {
    Ok(value)
}

/// Writes [`Settings`] and [`SETTINGS`] from one list.
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])+
        $field:ident: $ty:ty $(= $default:expr)?,
        toml $toml:expr, ini $ini:literal, cli $cli:expr, value $value:literal,
        parse $parse:expr, from_toml $toml_ty:ty => $from_toml:expr;
    )*) => {
        /// Global settings; `None` means "not set here", so later sources
        /// can override. Each accessor of the same name applies the default.
        #[derive(Clone, Debug, Default)]
        pub struct Settings {
            $( $(#[doc = $doc])+ pub $field: Option<$ty>, )*
        }

        /// Every setting's names and doc, in the order of [`Settings`].
        pub static SETTINGS: &[Setting] = &[
            $( Setting {
                toml: $toml,
                ini: $ini,
                cli: $cli,
                value_name: $value,
                doc: concat!($($doc, "\n"),+),
                check: |value| ($parse)(value).map(|_| ()),
            }, )*
        ];

        impl Settings {
            $($(
                #[doc = concat!("`", stringify!($field), "` with its default applied.")]
                pub fn $field(&self) -> $ty {
                    self.$field.clone().unwrap_or_else(|| $default)
                }
            )?)*

            /// Takes each value set in `other`.
            pub fn override_with(&mut self, other: &Settings) {
                $( if other.$field.is_some() {
                    self.$field = other.$field.clone();
                } )*
            }

            /// Sets the setting whose INI option is `option` (also the
            /// command-line flag's name) from its text; `None` when no
            /// setting has that name.
            pub fn set_option(&mut self, option: &str, value: &str) -> Option<Result<(), String>> {
                $( if option == $ini {
                    return Some(($parse)(value).map(|v| self.$field = Some(v)));
                } )*
                None
            }

            /// Reads the TOML key `key`; `false` when no setting has that key.
            /// A value of the wrong type is reported to `reader`; one out of
            /// range to `errors`, at its key.
            pub fn set_toml(
                &mut self,
                reader: &mut Reader<'_>,
                key: &str,
                value: Spanned<DeValue<'_>>,
                errors: &mut Vec<ConfigError>,
            ) -> bool {
                $( if ($toml as &[&str]).contains(&key) {
                    let origin = reader.origin(value.span().start, key.to_owned());
                    if let Some(v) = reader.value::<$toml_ty>(key, value) {
                        match ($from_toml)(v) {
                            Ok(v) => self.$field = Some(v),
                            Err(e) => errors.push(ConfigError::at(&origin, e)),
                        }
                    }
                    return true;
                } )*
                false
            }
        }
    };
}

settings! {
    /// Drop a message identical to the alarm's last one within this period;
    /// 0 = off (uWSGI's `alarm-freq`) [default: 3 s].
    alarm_freq: Duration = Duration::from_secs(3),
    toml &["alarm_freq"], ini "alarm-freq", cli Some("alarm-freq"), value "SECONDS",
    parse syntax::duration, from_toml Period => period;

    /// Longest message an alarm carries, in bytes; longer lines are cut and
    /// marked (uWSGI's `alarm-msg-size`) [default: 8192].
    msg_size: usize = 8192,
    toml &["msg_size", "alarm_msg_size"], ini "alarm-msg-size", cli Some("alarm-msg-size"),
    value "BYTES", parse syntax::size, from_toml usize => positive;

    /// Copy every input byte on to stdout [default: true; `--no-passthrough`].
    passthrough: bool = true,
    toml &["passthrough"], ini "passthrough", cli None, value "BOOL",
    parse syntax::boolean, from_toml bool => same;

    /// Bytes of pass-through output held for a slow or stopped reader of
    /// stdout, so that matching never waits on it [default: 4194304 (4 MiB);
    /// at most 1 GiB].
    passthrough_buffer: usize = passthrough::DEFAULT_BUFFER,
    toml &["passthrough_buffer"], ini "passthrough-buffer", cli Some("passthrough-buffer"),
    value "BYTES", parse passthrough::buffer_size_text, from_toml usize => passthrough::buffer_size;

    /// When the pass-through buffer is full: block (reading the input waits;
    /// every byte is passed on) or drop (dropped in whole lines, counted and
    /// reported) [default: block].
    passthrough_full: Full = Full::Block,
    toml &["passthrough_full"], ini "passthrough-full", cli Some("passthrough-full"),
    value "block|drop", parse passthrough::full, from_toml String => |s: String| passthrough::full(&s);

    /// Notifications queued per alarm before new ones are dropped (and
    /// counted) [default: 1024].
    queue_size: usize = 1024,
    toml &["queue_size"], ini "queue-size", cli Some("queue-size"), value "N",
    parse syntax::size, from_toml usize => positive;

    /// Deliveries each alarm runs at once, unless it sets its own
    /// `concurrency` [default: the action's: 16 for `cmd`, started as they
    /// come as uWSGI does; 1, in order, for the others]. 1 delivers every
    /// alarm's notifications one after another, in the order of their lines.
    concurrency: usize,
    toml &["concurrency"], ini "alarm-concurrency", cli Some("alarm-concurrency"), value "N",
    parse syntax::size, from_toml usize => positive;

    /// Time allowed at the end of input to deliver queued notifications
    /// [default: 10s].
    drain_timeout: Duration = Duration::from_secs(10),
    toml &["drain_timeout"], ini "drain-timeout", cli Some("drain-timeout"), value "DURATION",
    parse syntax::duration, from_toml Period => period;

    /// Directory for what outlives a run, locked by one logalarm at a time:
    /// followed files' read positions [default: $STATE_DIRECTORY,
    /// $XDG_STATE_HOME/logalarm, ~/.local/state/logalarm, or /var/lib/logalarm as root],
    /// and, when set here or by $STATE_DIRECTORY, the outbox: every
    /// notification journaled until delivered, across crashes and restarts.
    state_dir: PathBuf,
    toml &["state_dir"], ini "state-dir", cli Some("state-dir"), value "DIR",
    parse directory, from_toml String => path;

    /// How long to wait at start for a state directory that another logalarm
    /// holds (a crashed one's lock is freed as it exits) [default: 10s].
    state_lock_wait: Duration = DEFAULT_LOCK_WAIT,
    toml &["state_lock_wait"], ini "state-lock-wait", cli Some("state-lock-wait"),
    value "DURATION", parse syntax::duration, from_toml Period => period;

    /// When another logalarm still holds the state directory after
    /// state_lock_wait: refuse to start (exit 1, so a service manager tries
    /// again), or ignore it and run without saving or resuming read positions
    /// [default: refuse].
    state_busy: Busy = Busy::Refuse,
    toml &["state_busy"], ini "state-busy", cli Some("state-busy"), value "refuse|ignore",
    parse state::busy_value, from_toml String => |s: String| state::busy_value(&s);

    /// Disk the outbox's journals may take, in bytes, all alarms together:
    /// past it, a notification that finds its queue full is dropped (and
    /// counted) instead of spilled to disk [default: 1 GiB].
    outbox_max_bytes: usize = 1 << 30,
    toml &["outbox_max_bytes"], ini "outbox-max-bytes", cli Some("outbox-max-bytes"),
    value "BYTES", parse syntax::size, from_toml usize => positive;

    /// How often followed files are checked without a change event (the
    /// fallback where inotify is missing), and globs scanned again [default: 1s].
    poll_interval: Duration = DEFAULT_POLL_INTERVAL,
    toml &["poll_interval"], ini "poll-interval", cli Some("poll-interval"), value "DURATION",
    parse syntax::duration, from_toml Period => period;

    /// How long a rotated file is still read after its last line (a writer may
    /// not have reopened yet); it is let go once its alarms are delivered too
    /// [default: 5s].
    rotate_wait: Duration = DEFAULT_ROTATE_WAIT,
    toml &["rotate_wait"], ini "rotate-wait", cli Some("rotate-wait"), value "DURATION",
    parse syntax::duration, from_toml Period => period;

    /// How long a followed file's unfinished last line (no newline yet)
    /// waits before it is matched as it is [default: 1s].
    flush_timeout: Duration = DEFAULT_FLUSH_TIMEOUT,
    toml &["flush_timeout"], ini "flush-timeout", cli Some("flush-timeout"), value "DURATION",
    parse syntax::duration, from_toml Period => period;

    /// logalarm's own log lines on stderr: text (`[logalarm] TIME LEVEL: …`)
    /// or json (one object per line) [default: text].
    log_format: LogFormat = LogFormat::default(),
    toml &["log_format"], ini "log-format", cli Some("log-format"), value "text|json",
    parse syntax::log_format, from_toml String => |s: String| syntax::log_format(&s);
}

impl Settings {
    /// Sets a setting given on the command line (`--alarm-freq 5`).
    ///
    /// # Errors
    /// An unknown flag or a value that does not parse, at `origin`.
    pub fn set_flag(
        &mut self,
        flag: &str,
        value: &str,
        origin: &Origin,
    ) -> Result<(), ConfigError> {
        match self.set_option(flag, value) {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(ConfigError::at(origin, e)),
            None => Err(ConfigError::at(
                origin,
                format!("--{flag} is not a setting"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_table_for_ini_cli_and_toml() {
        let mut s = Settings::default();
        assert_eq!(s.set_option("alarm-freq", "500ms"), Some(Ok(())));
        assert_eq!(s.alarm_freq(), Duration::from_millis(500));
        assert_eq!(s.msg_size(), 8192);
        assert_eq!(
            s.set_option("queue-size", "0"),
            Some(Err("\"0\" is not a positive whole number".into()))
        );
        assert_eq!(s.set_option("nope", "1"), None);
        let names: Vec<&str> = SETTINGS.iter().map(|s| s.ini).collect();
        assert!(names.contains(&"poll-interval") && names.contains(&"state-dir"));
        assert!(SETTINGS.iter().all(|s| !s.doc.is_empty()));
    }
}
