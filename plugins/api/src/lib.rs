//! The contract between the logalarm engine and its action plugins.
//!
//! The engine matches lines and applies alarm policy; it knows this crate's
//! [`Plugin`] and [`Action`] traits and nothing about any backend. Each action
//! backend (`cmd`, `signal`, `log`, …) is its own crate implementing them, as
//! ripgrep's searcher knows its `Sink` trait but not the printer.
//!
//! A [`Plugin`] turns the `ARGS` of an alarm definition (`alarm = NAME PLUGIN:ARGS`,
//! uWSGI's syntax) into an [`Action`] at config load time, so that bad arguments
//! are a config error, not a failure at 3 a.m. An [`Action`] delivers one
//! [`Notification`] at a time; the engine gives every alarm its own worker, so an
//! action may take its time without delaying reading or other alarms.
//!
//! ```
//! use logalarm_plugin_api::{Action, ActionFuture, BuildContext, Notification, Plugin};
//!
//! struct Count;
//! impl Plugin for Count {
//!     fn name(&self) -> &'static str { "count" }
//!     fn build(&self, _ctx: &BuildContext, args: &str) -> Result<Box<dyn Action>, String> {
//!         if !args.is_empty() { return Err("count: takes no arguments".into()); }
//!         Ok(Box::new(CountAction))
//!     }
//! }
//! struct CountAction;
//! impl Action for CountAction {
//!     fn fire<'a>(&'a self, n: &'a Notification) -> ActionFuture<'a> {
//!         Box::pin(async move { let _ = n.body(); Ok(()) })
//!     }
//! }
//! ```

#![warn(missing_docs)]

pub mod logline;

pub use logline::{Level, LogFormat};

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicI32;
use std::time::{Duration, SystemTime};

/// The anti-loop tag: every line logalarm writes itself starts with it (or,
/// with `--log-format json`, with [`JSON_TAG`]), and the matcher never matches
/// a line that starts with it (nor with [`JSON_TAG`] or [`UWSGI_TAG`]).
///
/// Mirrors uWSGI's `[uwsgi-alarm` convention (core/alarm.c), widened to a prefix test.
pub const TAG: &str = "[logalarm";

/// The anti-loop tag of a JSON log line: every line logalarm writes with
/// `--log-format json` starts with exactly these bytes (the object's first
/// key, see [`logline`]), and the matcher never matches a line that does.
pub const JSON_TAG: &str = r#"{"tag":"[logalarm]""#;

/// uWSGI's own anti-loop tag, honoured so that output of a uWSGI instance piped
/// into logalarm never loops either.
pub const UWSGI_TAG: &str = "[uwsgi-alarm";

/// A future returned by [`Action::fire`].
pub type ActionFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ActionError>> + Send + 'a>>;

/// Where a line came from: the input kind that read it, which one of that
/// kind, and who sent it where the input knows.
///
/// Open to any input: each input names its own kind, so a new input needs
/// no change here (nor a rebuild of the plugins). Its
/// [`Display`](fmt::Display) form (`stdin`, `file:/var/log/app.log`,
/// `socket:/run/logalarm.sock (pid 12, uid 0)`, `child:stderr`, `fd:/run/oom.fifo`)
/// is what the `cmd` action exports as `LOGALARM_SOURCE`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Source {
    kind: &'static str,
    name: Arc<OsStr>,
    sender: Option<Arc<str>>,
}

impl Source {
    /// A line of input `name` of `kind` (`file`, `/var/log/app.log`); an
    /// empty name for an input that is the only one of its kind (`stdin`).
    pub fn new(kind: &'static str, name: impl Into<Arc<OsStr>>) -> Self {
        Source {
            kind,
            name: name.into(),
            sender: None,
        }
    }

    /// The process's standard input.
    pub fn stdin() -> Self {
        Source::new("stdin", OsStr::new(""))
    }

    /// The same source, with who sent the line (a stream socket's client
    /// from `SO_PEERCRED`: `pid 12, uid 0`).
    pub fn with_sender(mut self, sender: impl Into<Arc<str>>) -> Self {
        self.sender = Some(sender.into());
        self
    }

    /// The input kind (`stdin`, `file`, `socket`, `child`, `fd`, …).
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Which input of its kind: a path, a stream (`stderr`); empty for stdin.
    pub fn name(&self) -> &OsStr {
        &self.name
    }

    /// [`Source::name`] as a path (a followed file, a socket).
    pub fn path(&self) -> &Path {
        Path::new(&*self.name)
    }

    /// Who sent the line, where the input knows.
    pub fn sender(&self) -> Option<&str> {
        self.sender.as_deref()
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind)?;
        if !self.name.is_empty() {
            write!(f, ":{}", self.path().display())?;
        }
        if let Some(sender) = &self.sender {
            write!(f, " ({sender})")?;
        }
        Ok(())
    }
}

/// The header of a syslog message (RFC 5424, or the BSD format of RFC 3164)
/// received on a socket input: the rules see only the message after it; these
/// fields reach the alarm. Each is `None` when the header lacks it (`-` in RFC 5424).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Syslog {
    /// Facility code, 0–23 (RFC 5424 §6.2.1: the PRI divided by 8).
    pub facility: Option<u8>,
    /// Severity code, 0 (emergency) to 7 (debug) (RFC 5424 §6.2.1: the PRI modulo 8).
    pub severity: Option<u8>,
    /// The timestamp as written in the header.
    pub timestamp: Option<String>,
    /// HOSTNAME.
    pub host: Option<String>,
    /// APP-NAME (RFC 5424), or the TAG before `[pid]:` (RFC 3164).
    pub app: Option<String>,
    /// PROCID (RFC 5424), or the pid in `TAG[pid]:` (RFC 3164).
    pub pid: Option<String>,
    /// MSGID (RFC 5424 only).
    pub msgid: Option<String>,
}

impl Syslog {
    /// The severity's keyword (RFC 5424 table 2, as syslog.conf spells it:
    /// `emerg`, `alert`, `crit`, `err`, `warning`, `notice`, `info`, `debug`).
    pub fn severity_name(&self) -> Option<&'static str> {
        const NAMES: [&str; 8] = [
            "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
        ];
        self.severity
            .and_then(|s| NAMES.get(usize::from(s)).copied())
    }

    /// The facility's keyword (RFC 5424 table 1, as syslog.conf spells it:
    /// `kern`, `user`, `mail`, `daemon`, `auth`, …, `local0`–`local7`).
    pub fn facility_name(&self) -> Option<&'static str> {
        const NAMES: [&str; 24] = [
            "kern",
            "user",
            "mail",
            "daemon",
            "auth",
            "syslog",
            "lpr",
            "news",
            "uucp",
            "cron",
            "authpriv",
            "ftp",
            "ntp",
            "security",
            "console",
            "solaris-cron",
            "local0",
            "local1",
            "local2",
            "local3",
            "local4",
            "local5",
            "local6",
            "local7",
        ];
        self.facility
            .and_then(|s| NAMES.get(usize::from(s)).copied())
    }
}

/// A notification's id: numbers only, so that making one costs nothing on the
/// matching thread; its [`Display`](fmt::Display) form, `RUN-ALARM-SEQ` (RUN
/// as 16 hex digits), is what receivers see.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct NoteId {
    /// Random per run of logalarm, so ids of different runs never collide;
    /// for a followed file's line, a number of the file and the line instead,
    /// the same in every run (with `seq` its offset), so a line read again
    /// after a crash keeps its id.
    pub run: u64,
    /// The alarm's index in the config.
    pub alarm: u32,
    /// The alarm's notification count in this run, from 1; for a followed
    /// file's line, the line's offset in the file, in bytes.
    pub seq: u64,
}

impl fmt::Display for NoteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}-{}-{}", self.run, self.alarm, self.seq)
    }
}

/// One alarm notification: what an [`Action`] delivers.
#[derive(Clone, Debug)]
pub struct Notification {
    /// A stable id, unique across runs: the same on every delivery attempt, so
    /// a receiver can recognise a retried delivery (HTTP `Idempotency-Key`, the
    /// mail's `Message-ID`). Its text form is `RUN-ALARM-SEQ`.
    pub id: NoteId,
    /// The alarm's name (`alarm = NAME …`).
    pub alarm: Arc<str>,
    /// The rule (its regex) that fired the alarm: the first matching rule naming it.
    pub rule: Arc<str>,
    /// The line as the rules saw it (no `\n`, no trailing `\r`), cut to at most
    /// `alarm-msg-size` bytes when it was longer; see [`Notification::truncated_from`].
    pub message: Vec<u8>,
    /// `Some(n)`: the line was `n` bytes long and `message` holds only its first part.
    pub truncated_from: Option<usize>,
    /// How many copies of this message the `alarm-freq` throttle dropped for
    /// this alarm since this message's previous notification (a different
    /// message's notification in between does not take the count; see the
    /// engine's `policy::throttle`), plus, with a `cooldown`, the events the
    /// cooldown held back for this key since its previous notification.
    pub suppressed: u64,
    /// Where the line came from.
    pub source: Source,
    /// The syslog header the message came with (socket inputs), if it had one.
    pub syslog: Option<Arc<Syslog>>,
    /// When the line was read (wall clock); for an aggregated notification,
    /// when it was made.
    pub time: SystemTime,
    /// What the notification reports: a matched line (or multiline record), or
    /// something the alarm policy made (a digest, an escalation, a recovery, an
    /// absence).
    pub kind: Kind,
    /// The capture groups of the rule's regex on the line, when it has any.
    pub caps: Option<Arc<Captures>>,
    /// The policy key the notification counts under (`key = "{{ caps.ip }}"`), if the alarm has one.
    pub key: Option<Arc<str>>,
    /// For a digest or an escalation: the events it sums up.
    pub aggregate: Option<Arc<Aggregate>>,
}

/// What a [`Notification`] reports. Its [`Display`](fmt::Display) form (`alarm`,
/// `digest`, …) is the template variable `kind` and `LOGALARM_KIND`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Kind {
    /// A matched line or multiline record.
    #[default]
    Alarm,
    /// A recovery: a rule's `resolve` line after it fired, or an expected line
    /// (`[[expect]]`) or input seen again after its absence was reported.
    Resolved,
    /// An alarm's events over its `digest` period, summed up.
    Digest,
    /// More than an alarm's escalation `limit` events within its `window`
    /// (sent to the escalation's alarm).
    Escalation,
    /// An expected line, or any line of an input, not seen for its period.
    Absent,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Alarm => "alarm",
            Kind::Resolved => "resolved",
            Kind::Digest => "digest",
            Kind::Escalation => "escalation",
            Kind::Absent => "absent",
        })
    }
}

/// The capture groups of a rule's regex on the line it matched: group 0 is
/// the whole match; a group that did not take part is `None`. Text is UTF-8,
/// invalid bytes replaced by U+FFFD.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Captures {
    /// By number, from 0.
    pub groups: Vec<Option<String>>,
    /// Named groups: name and number.
    pub names: Vec<(Arc<str>, usize)>,
}

impl Captures {
    /// The group named `name`, if it took part.
    pub fn name(&self, name: &str) -> Option<&str> {
        let (_, i) = self.names.iter().find(|(n, _)| &**n == name)?;
        self.groups.get(*i)?.as_deref()
    }
}

/// The events a digest or an escalation sums up.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Aggregate {
    /// Events in all.
    pub count: u64,
    /// Events that fell into groups beyond the cap on groups (counted in
    /// `count`, not in any group).
    pub ungrouped: u64,
    /// When the first and the last of them arrived.
    pub first_seen: SystemTime,
    /// See `first_seen`.
    pub last_seen: SystemTime,
    /// The period summed up: a digest's period, an escalation's window.
    pub period: Duration,
    /// Events per source (display form of [`Source`]), most first.
    pub sources: Vec<(String, u64)>,
    /// The unique messages, most frequent first.
    pub groups: Vec<Group>,
}

/// One unique message of an [`Aggregate`]: the events that share a key (the
/// message with its variable parts masked, or the alarm's explicit key).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Group {
    /// What the events share.
    pub key: String,
    /// How many there were.
    pub count: u64,
    /// When the first and the last arrived.
    pub first_seen: SystemTime,
    /// See `first_seen`.
    pub last_seen: SystemTime,
    /// Per source (display form of [`Source`]) or syslog host: how many, most first.
    pub sources: Vec<(String, u64)>,
    /// The first event's message, whole.
    pub example: Vec<u8>,
}

impl Notification {
    /// A notification of a matched line (kind [`Kind::Alarm`]) with nothing
    /// else set: no id yet (all zero), not truncated, nothing suppressed, no
    /// syslog header, no capture groups, key or aggregate. Set the rest with
    /// struct update syntax: `Notification { suppressed: 3, ..Notification::new(…) }`.
    pub fn new(
        alarm: Arc<str>,
        rule: Arc<str>,
        message: Vec<u8>,
        source: Source,
        time: SystemTime,
    ) -> Self {
        Notification {
            id: NoteId::default(),
            alarm,
            rule,
            message,
            truncated_from: None,
            suppressed: 0,
            source,
            syslog: None,
            time,
            kind: Kind::Alarm,
            caps: None,
            key: None,
            aggregate: None,
        }
    }

    /// The message as delivered: [`Notification::message`], followed, when it was
    /// truncated, by the marker ` [logalarm: truncated, N bytes in all]`.
    ///
    /// Never ends with a newline; actions that need one (uWSGI's `cmd` passes the
    /// log line with its `\n`) add it.
    pub fn body(&self) -> Cow<'_, [u8]> {
        match self.truncated_from {
            None => Cow::Borrowed(&self.message),
            Some(total) => {
                let mut out = self.message.clone();
                out.extend_from_slice(
                    format!(" [logalarm: truncated, {total} bytes in all]").as_bytes(),
                );
                Cow::Owned(out)
            }
        }
    }
}

/// Why an action failed to deliver a notification.
///
/// The engine retries [`Transient`](ActionError::Transient) and
/// [`RetryAfter`](ActionError::RetryAfter) failures with exponential backoff
/// and jitter, within the alarm's attempts and deadline; a
/// [`Permanent`](ActionError::Permanent) failure is never retried.
#[derive(Debug)]
pub enum ActionError {
    /// Worth retrying later (a timeout, a refused connection, HTTP 5xx, SMTP 4xx).
    Transient(String),
    /// Worth retrying, but not before the delay the receiver asked for (HTTP
    /// 429 or 503 with `Retry-After`, RFC 9110 §10.2.3): the engine waits at
    /// least this long before the next attempt, and gives up at once when the
    /// delay would reach past the alarm's deadline.
    RetryAfter(String, Duration),
    /// Retrying will not help (bad target, rejected by the receiver: HTTP 4xx,
    /// SMTP 5xx, an untrusted certificate).
    Permanent(String),
}

impl ActionError {
    /// The message, without the kind.
    pub fn message(&self) -> &str {
        match self {
            ActionError::Transient(m)
            | ActionError::RetryAfter(m, _)
            | ActionError::Permanent(m) => m,
        }
    }

    /// Whether another attempt may succeed.
    pub fn is_transient(&self) -> bool {
        !matches!(self, ActionError::Permanent(_))
    }
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActionError::Transient(m) => write!(f, "{m} (transient)"),
            ActionError::RetryAfter(m, delay) => {
                write!(
                    f,
                    "{m} (transient; retry after {:.3}s)",
                    delay.as_secs_f64()
                )
            }
            ActionError::Permanent(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ActionError {}

/// What a plugin gets to know when it builds an action at config load time.
///
/// Build it with `..BuildContext::default()` so that fields added later do not
/// break the construction.
#[derive(Clone, Debug, Default)]
pub struct BuildContext {
    /// The alarm's name.
    pub alarm: String,
    /// The per-alarm action timeout, when the config sets one (TOML `timeout`);
    /// each plugin documents its default.
    pub timeout: Option<Duration>,
    /// Under `logalarm run`: the wrapped process's pid while it runs (0 when
    /// none runs), for actions that target it (`signal:` without a target).
    /// `None` when no process is wrapped.
    pub child: Option<Arc<AtomicI32>>,
    /// The alarm's TOML keys meant for its plugin (beyond the engine's own
    /// `action`, `timeout`, `queue_size`, `retry`, `on_failure`, `message`,
    /// `headers`, `env`),
    /// by key, as written: strings as they are, numbers and booleans in their
    /// TOML form, arrays of strings joined with `,` (uWSGI's list syntax).
    /// Only keys the plugin lists in [`Plugin::options`] reach it (others are
    /// config errors). Secrets are not resolved: the plugin calls
    /// [`resolve_secret`] on the keys that hold them. Empty for INI and the
    /// command line, whose alarms carry everything in `ARGS`.
    pub options: BTreeMap<String, String>,
    /// Extra headers from the TOML `headers` table (`name → value`, by name),
    /// for plugins that list `headers` in [`Plugin::options`]. Values are as
    /// written (the plugin resolves `env:`/`file:` where it allows them).
    pub headers: Vec<(String, String)>,
    /// Environment variables from the TOML `env` table (`name → template`,
    /// in the order written): Jinja templates over the notification (the
    /// `logalarm-template` crate) for plugins that list `env` in
    /// [`Plugin::options`], which compile them at build time (an error naming
    /// `alarm.NAME.env.VAR`) and render them per notification.
    pub env: Vec<(String, String)>,
}

/// An action backend: builds [`Action`]s from the `ARGS` part of `PLUGIN:ARGS`.
pub trait Plugin: Send + Sync {
    /// The plugin's name as written in an alarm definition (`cmd`, `signal`, `log`).
    fn name(&self) -> &'static str;

    /// `args` as they may be shown (in `logalarm check`, in errors): with any
    /// secret in them (a password) replaced by `***`. The default shows them as
    /// they are; plugins whose arguments hold secrets override it.
    fn redact(&self, args: &str) -> String {
        args.to_owned()
    }

    /// The TOML alarm keys this plugin takes beyond the engine's own (see
    /// [`BuildContext::options`]); `headers` stands for the `headers` table,
    /// `env` for the `env` table.
    /// Any other key on one of its alarms is a config error. None by default.
    fn options(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether this plugin's failed deliveries are retried when the alarm sets
    /// no `retry` of its own. False by default: a local action (a command, a
    /// signal) that failed would most likely fail the same way again, and a
    /// command run twice may do its work twice. Network actions say true: a
    /// receiver that is down or overloaded is usually back soon.
    fn retries(&self) -> bool {
        false
    }

    /// How many of the alarm's notifications are delivered at once when the
    /// alarm sets no `concurrency` of its own. 1 by default: one after
    /// another, in the order of their lines (what a chat or a mailbox
    /// reader expects). The `cmd` action says more, as uWSGI starts every
    /// command at once.
    fn concurrency(&self) -> usize {
        1
    }

    /// Checks `args` and builds the action.
    ///
    /// # Errors
    /// A message saying what is wrong with `args` and how to fix it; the engine
    /// prefixes it with the file and line of the alarm definition.
    fn build(&self, ctx: &BuildContext, args: &str) -> Result<Box<dyn Action>, String>;
}

/// A built action: delivers notifications for one alarm, one at a time.
pub trait Action: Send + Sync {
    /// Delivers one notification.
    ///
    /// # Errors
    /// [`ActionError`] when delivery failed; the engine logs it (tagged) and
    /// counts it per alarm.
    fn fire<'a>(&'a self, n: &'a Notification) -> ActionFuture<'a>;
}

/// The longest period logalarm takes anywhere: a duration setting, a policy
/// window, a retry deadline, an action's timeout. 365 days.
///
/// Longer than any window, cooldown, digest period or timeout an alarm can
/// mean, and short enough that every time computed from one stays where the
/// clocks hold it: a deadline `now + period` is far inside the monotonic
/// clock's range and within tokio's timer wheel (about 2.2 years, 2^36 ms),
/// and a notification's `time - period` (an escalation's first event) is
/// decades after the Unix epoch that RFC 3339 times count from. A longer
/// value is a config error naming its key (never a panic or a worker that
/// dies at its first notification).
pub const MAX_PERIOD: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// [`MAX_PERIOD`] as the configs write it, for messages.
pub const MAX_PERIOD_TEXT: &str = "365d";

/// Parses a period as configs write it: whole seconds as uWSGI does (`3`),
/// seconds with a fraction (`0.5`), or a duration (`500ms`, `1m 30s`), from 0
/// to [`MAX_PERIOD`]. Never panics, whatever the text (`1e20`, `inf`, `-1`).
///
/// # Errors
/// A message in the config errors' `WHAT; FIX` shape: the text is not a
/// period, or it is longer than [`MAX_PERIOD`] (with the range).
pub fn period(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let parsed = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        match value.parse::<f64>() {
            // Infinite or past what a Duration holds: too long, not malformed.
            Ok(secs) if secs >= 0.0 => Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX),
            // Negative or NaN: humantime says why below.
            Ok(_) | Err(_) => match humantime::parse_duration(value) {
                Ok(d) => d,
                Err(e) => {
                    return Err(format!(
                        "{value:?} is not a period ({e}); write seconds (`3`, `0.5`) or a duration (`500ms`, `2m`)"
                    ));
                }
            },
        }
    };
    if parsed > MAX_PERIOD {
        return Err(format!(
            "{value:?} is longer than {MAX_PERIOD_TEXT}, the longest period logalarm takes; write a period from 0 to {MAX_PERIOD_TEXT}"
        ));
    }
    Ok(parsed)
}

/// The environment variables named by `env:` secrets resolved so far in
/// this process ([`resolve_secret`]), in the order first resolved.
static SECRET_VARS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// The environment variables that hold secrets: every `VAR` of an `env:VAR`
/// secret [`resolve_secret`] has read (an http `auth_pass`, a header, an
/// smtp or xmpp password). Actions that start programs (`cmd`) remove them
/// from the child's environment unless the alarm asks for one by name
/// (`pass_env`), so a command never inherits another alarm's password.
///
/// Secrets are resolved when the config loads, before any action fires, so
/// the list is complete by the first delivery.
pub fn secret_env_vars() -> Vec<String> {
    SECRET_VARS
        .lock()
        .map(|vars| vars.clone())
        .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
}

/// Resolves a secret as written in a config: `env:VAR` reads environment
/// variable VAR, `file:PATH` reads the file at PATH (one trailing newline
/// dropped), anything else is the secret itself. Resolved once, at config
/// load, so a missing secret is a config error, not a failed delivery.
///
/// An `env:VAR` is remembered ([`secret_env_vars`]), so that VAR is kept
/// out of the environment of the commands `cmd` actions run.
///
/// # Errors
/// The variable is unset or the file cannot be read; the message names the
/// variable or the file, never the secret.
pub fn resolve_secret(value: &str) -> Result<String, String> {
    if let Some(var) = value.strip_prefix("env:") {
        let mut vars = SECRET_VARS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !vars.iter().any(|v| v == var) {
            vars.push(var.to_owned());
        }
        drop(vars);
        return std::env::var(var).map_err(|_| {
            format!("the secret's environment variable {var} is not set (or not UTF-8)")
        });
    }
    if let Some(path) = value.strip_prefix("file:") {
        return std::fs::read_to_string(path)
            .map(|s| s.strip_suffix('\n').unwrap_or(&s).to_owned())
            .map_err(|e| format!("cannot read the secret's file {path}: {e}"));
    }
    Ok(value.to_owned())
}

/// Writes one tagged line to stderr in logalarm's log format ([`logline`]):
/// `[logalarm] TIME WHAT: TEXT`, or a JSON object with `"what":WHAT` and
/// `"message":TEXT`, in a single write so that concurrent writers never
/// interleave within a line.
///
/// `level` is written in JSON lines only; it does not filter (`-q` hides no
/// such line). The engine's callers use [`Level::Error`] for config errors,
/// [`Level::Warn`] for the `log` action's `ALARM` lines (an alarm is what
/// someone must look at) and [`Level::Info`] for a command's output.
///
/// Any `\n` or `\r` inside `text` is written as `\n`/`\r` escapes (JSON's own
/// escapes in JSON), so that every physical line logalarm emits starts with
/// [`TAG`] or [`JSON_TAG`] and can never re-trigger an alarm; every other
/// control byte and invalid UTF-8 is escaped too ([`push_escaped`]), so that
/// a logged line can never drive the terminal that shows it.
pub fn emit_tagged(level: Level, what: &str, text: &[u8]) {
    logline::emit(level, Some(what), &[], text);
}

/// Appends `text` to `out` so that it can never drive a terminal (log
/// injection, CWE-117): line breaks as `\n` and `\r`, every other control
/// byte but tab (`ESC`, `BEL`, `BS`, …, `DEL`) as `\xNN`, the C1 control
/// characters U+0080–U+009F (which terminals may take for `ESC [` and its
/// kin) as `\u{NN}`, and each byte that is not UTF-8 as `\xNN`. Tab and
/// all other text are kept as they are.
///
/// ```
/// let mut out = Vec::new();
/// logalarm_plugin_api::push_escaped(&mut out, b"a\x1b]0;x\x07 \xff\tb\n");
/// assert_eq!(out, b"a\\x1b]0;x\\x07 \\xff\tb\\n");
/// ```
pub fn push_escaped(out: &mut Vec<u8>, text: &[u8]) {
    use std::io::Write as _;
    for chunk in text.utf8_chunks() {
        for c in chunk.valid().chars() {
            // `write!` to a Vec cannot fail.
            let _ = match c {
                '\n' => out.write_all(b"\\n"),
                '\r' => out.write_all(b"\\r"),
                '\t' => out.write_all(b"\t"),
                '\0'..='\x1f' | '\x7f' => write!(out, "\\x{:02x}", u32::from(c)),
                '\u{80}'..='\u{9f}' => write!(out, "\\u{{{:x}}}", u32::from(c)),
                c => out.write_all(c.encode_utf8(&mut [0; 4]).as_bytes()),
            };
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(message: &[u8], truncated_from: Option<usize>) -> Notification {
        Notification {
            truncated_from,
            ..Notification::new(
                "a".into(),
                "r".into(),
                message.to_vec(),
                Source::stdin(),
                SystemTime::UNIX_EPOCH,
            )
        }
    }

    #[test]
    fn body_marks_truncation() {
        assert_eq!(&*note(b"abc", None).body(), b"abc");
        assert_eq!(
            &*note(b"abc", Some(10)).body(),
            b"abc [logalarm: truncated, 10 bytes in all]"
        );
    }

    #[test]
    fn secrets_from_env_and_files() {
        assert_eq!(resolve_secret("plain").unwrap(), "plain");
        let err = resolve_secret("env:LOGALARM_SURELY_UNSET_VAR").unwrap_err();
        assert!(err.contains("LOGALARM_SURELY_UNSET_VAR"));
        let path = std::env::temp_dir().join(format!("logalarm-secret-{}", std::process::id()));
        std::fs::write(&path, "s3cret\n").unwrap();
        assert_eq!(
            resolve_secret(&format!("file:{}", path.display())).unwrap(),
            "s3cret"
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn escapes_line_breaks() {
        let mut out = Vec::new();
        push_escaped(&mut out, b"a\nb\rc");
        assert_eq!(out, b"a\\nb\\rc");
    }

    #[test]
    fn escapes_what_could_drive_a_terminal() {
        let mut out = Vec::new();
        push_escaped(
            &mut out,
            "\x1b]0;x\x07 \x1b[2J\x08\x7f caf\u{e9}\t\u{9b}31m".as_bytes(),
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\\x1b]0;x\\x07 \\x1b[2J\\x08\\x7f caf\u{e9}\t\\u{9b}31m"
        );
        let mut out = Vec::new();
        push_escaped(&mut out, b"\xc3\x28 \xe9t\xe9");
        assert_eq!(out, b"\\xc3( \\xe9t\\xe9");
    }

    #[test]
    fn periods_never_panic() {
        assert_eq!(period("3").unwrap(), Duration::from_secs(3));
        assert_eq!(period("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(period("365d").unwrap(), MAX_PERIOD);
        for text in ["1e20", "inf", "366d", "18446744073709551616", "1e400"] {
            assert!(
                period(text).unwrap_err().contains("longer than 365d"),
                "{text}"
            );
        }
        for text in ["-1", "nan", "-inf", "soon", ""] {
            assert!(
                period(text).unwrap_err().contains("is not a period"),
                "{text}"
            );
        }
    }

    #[test]
    fn env_secrets_are_remembered() {
        // A variable every test run has (setting one would race other tests).
        resolve_secret("env:PATH").unwrap();
        let _ = resolve_secret("env:LOGALARM_TEST_SECRET_UNSET");
        let vars = secret_env_vars();
        assert!(vars.iter().any(|v| v == "PATH"));
        assert!(vars.iter().any(|v| v == "LOGALARM_TEST_SECRET_UNSET"));
        resolve_secret("plain").unwrap();
        assert_eq!(vars.len(), secret_env_vars().len());
    }
}
