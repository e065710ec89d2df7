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
use crate::component::range::{Count, Periods};
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

/// `queue_size` (global and per alarm): 1 to 2^20 notifications. tokio's
/// bounded queue takes at most 2^61 - 1 slots (it panics past that), and a
/// million queued notifications of the default 8 KiB message is already
/// 8 GiB of memory: past that, a queue is no longer a buffer.
pub const QUEUE_SIZE: Count = Count::new(1, 1 << 20, "notifications");

/// `concurrency` (global, and each alarm's own): 1 to 256 deliveries at once.
pub const CONCURRENCY: Count = Count::new(1, 256, "deliveries at once");

/// `outbox_max_bytes`: 1 byte to 1 PiB of journal on disk (a quota, not an
/// allocation: the top only keeps the number far from overflowing sums).
pub const OUTBOX_MAX_BYTES: Count = Count::new(1, 1 << 50, "bytes");

/// `alarm-msg-size`: 1 byte to 16 MiB, the longest line the inputs keep
/// whole ([`crate::input::reader::MAX_LINE`]), so no message is longer.
pub const MSG_SIZE: Count = Count::new(1, crate::input::reader::MAX_LINE as u64, "bytes");

/// `regex_size_limit`: 64 KiB to 1 GiB of compiled automaton per rule
/// (default [`crate::matcher::compile::DEFAULT_REGEX_SIZE_LIMIT`]).
pub const REGEX_SIZE: Count = Count::new(64 << 10, 1 << 30, "bytes");

/// `poll-interval`: 10 ms to 365 days. At 0 the followed files would be
/// polled in a busy loop (one core at 100 %).
pub const POLL_INTERVAL: Periods = Periods::at_least(Duration::from_millis(10));

/// A period in TOML: seconds (`3`, `0.5`) or a duration string (`"500ms"`),
/// at most 365 days (checked by [`Period`] itself).
fn period(p: Period) -> Result<Duration, String> {
    Ok(p.0)
}

/// A queue size as written in INI or on the command line.
fn queue_size(text: &str) -> Result<usize, String> {
    QUEUE_SIZE.parse(text)
}

/// A concurrency as written in INI or on the command line.
fn concurrency(text: &str) -> Result<usize, String> {
    CONCURRENCY.parse(text)
}

/// An outbox quota as written in INI or on the command line.
fn outbox_max_bytes(text: &str) -> Result<usize, String> {
    OUTBOX_MAX_BYTES.parse(text)
}

/// A message size as written in INI or on the command line.
fn msg_size(text: &str) -> Result<usize, String> {
    MSG_SIZE.parse(text)
}

/// A regex size limit as written in INI or on the command line.
fn regex_size(text: &str) -> Result<usize, String> {
    REGEX_SIZE.parse(text)
}

/// A poll interval as written in INI or on the command line.
fn poll_interval(text: &str) -> Result<Duration, String> {
    POLL_INTERVAL.parse(text)
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
    /// Drop a message identical to the alarm's last one within this period
    /// (0 to 365d); 0 = off (uWSGI's `alarm-freq`) [default: 3 s].
    alarm_freq: Duration = Duration::from_secs(3),
    toml &["alarm_freq"], ini "alarm-freq", cli Some("alarm-freq"), value "SECONDS",
    parse syntax::duration, from_toml Period => period;

    /// Longest message an alarm carries, in bytes (1 to 16 MiB); longer
    /// lines are cut and marked (uWSGI's `alarm-msg-size`) [default: 8192].
    msg_size: usize = 8192,
    toml &["msg_size", "alarm_msg_size"], ini "alarm-msg-size", cli Some("alarm-msg-size"),
    value "BYTES", parse msg_size, from_toml usize => |n| MSG_SIZE.check(n);

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
    /// counted), 1 to 1048576 [default: 1024].
    queue_size: usize = 1024,
    toml &["queue_size"], ini "queue-size", cli Some("queue-size"), value "N",
    parse queue_size, from_toml usize => |n| QUEUE_SIZE.check(n);

    /// Deliveries each alarm runs at once, unless it sets its own
    /// `concurrency` [default: the action's: 16 for `cmd`, started as they
    /// come as uWSGI does; 1, in order, for the others]. 1 delivers every
    /// alarm's notifications one after another, in the order of their lines.
    concurrency: usize,
    toml &["concurrency"], ini "alarm-concurrency", cli Some("alarm-concurrency"), value "N",
    parse concurrency, from_toml usize => |n| CONCURRENCY.check(n);

    /// Time allowed at the end of input to deliver queued notifications
    /// (0 to 365d) [default: 10s].
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
    value "BYTES", parse outbox_max_bytes, from_toml usize => |n| OUTBOX_MAX_BYTES.check(n);

    /// How often followed files are checked without a change event (the
    /// fallback where inotify is missing), and globs scanned again, 10ms to
    /// 365d [default: 1s].
    poll_interval: Duration = DEFAULT_POLL_INTERVAL,
    toml &["poll_interval"], ini "poll-interval", cli Some("poll-interval"), value "DURATION",
    parse poll_interval, from_toml Period => |p: Period| POLL_INTERVAL.check(p.0);

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

    /// The most memory one rule's regex may compile to, in bytes (64 KiB
    /// to 1 GiB); a bigger one is a config error naming the rule, not
    /// seconds of compiling and gigabytes of memory [default: 10485760, 10 MiB].
    regex_size_limit: usize = crate::matcher::compile::DEFAULT_REGEX_SIZE_LIMIT,
    toml &["regex_size_limit"], ini "regex-size-limit", cli Some("regex-size-limit"),
    value "BYTES", parse regex_size, from_toml usize => |n| REGEX_SIZE.check(n);

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
            Some(Err(
                "0 is out of range; write a whole number from 1 to 1048576 (notifications)".into()
            ))
        );
        // Past what a queue, a period or a message can be: an error, never a panic.
        for (option, value) in [
            ("queue-size", "2305843009213693952"),
            ("alarm-msg-size", "99999999999999999999"),
            ("alarm-freq", "1e20"),
            ("drain-timeout", "inf"),
            ("poll-interval", "0"),
            ("regex-size-limit", "1"),
        ] {
            let e = s.set_option(option, value).unwrap().unwrap_err();
            assert!(
                e.contains("out of range") || e.contains("longer than"),
                "{option}: {e}"
            );
        }
        assert_eq!(s.set_option("nope", "1"), None);
        let names: Vec<&str> = SETTINGS.iter().map(|s| s.ini).collect();
        assert!(names.contains(&"poll-interval") && names.contains(&"state-dir"));
        assert!(SETTINGS.iter().all(|s| !s.doc.is_empty()));
    }
}
