//! logalarm's own log lines, in one place: the engine's log (its tracing
//! events) and the lines plugins write themselves ([`crate::emit_tagged`]:
//! `ALARM: …`, a command's output, config errors) are all made here, so
//! that every line logalarm writes has the same shape and starts with the
//! anti-loop tag.
//!
//! Two formats, chosen once per process with [`set_format`] (`--log-format`,
//! TOML `log_format`, INI `log-format`):
//!
//! ```text
//! [logalarm] 2026-12-04T17:40:00.123Z warn: alarm=x: message
//! [logalarm] 2026-12-04T17:40:00.123Z ALARM: [PAGE ME] TERRIBLE ALARM …
//! {"tag":"[logalarm]","time":"2026-12-04T17:40:00.123Z","level":"warn","alarm":"x","message":"message"}
//! {"tag":"[logalarm]","time":"2026-12-04T17:40:00.123Z","level":"warn","what":"ALARM","message":"[PAGE ME] TERRIBLE ALARM …"}
//! ```
//!
//! The time is the wall clock in UTC, RFC 3339 with milliseconds. A text line
//! starts with [`crate::TAG`], a JSON line with [`crate::JSON_TAG`]; the
//! matcher skips both, so logalarm's output fed back into its input never
//! fires an alarm. Text lines keep the text they are given, with line breaks
//! written as `\n` and `\r` escapes and every other control byte (but tab),
//! C1 control character and byte that is not UTF-8 escaped too
//! ([`crate::push_escaped`]), so a logged line can never drive a terminal;
//! JSON lines are UTF-8 (invalid bytes become U+FFFD) with JSON's string
//! escapes, DEL and the C1 controls escaped as `\u007f`, `\u009b`. Each line is written to stderr with one
//! write, so lines of concurrent writers never interleave.
//!
//! ```
//! use logalarm_plugin_api::logline::{Level, LogFormat, render};
//! use std::time::{Duration, SystemTime};
//!
//! let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_500);
//! let line = render(LogFormat::Text, at, Level::Warn, None, &[("alarm", "x".into())], b"two\nlines");
//! assert_eq!(line, b"[logalarm] 1970-01-01T00:00:01.500Z warn: alarm=x: two\\nlines\n");
//! let line = render(LogFormat::Json, at, Level::Warn, Some("ALARM"), &[], b"boom");
//! assert_eq!(
//!     line,
//!     br#"{"tag":"[logalarm]","time":"1970-01-01T00:00:01.500Z","level":"warn","what":"ALARM","message":"boom"}
//! "#
//! );
//! ```

use crate::{JSON_TAG, TAG, push_escaped};
use std::fmt;
use std::io::Write;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::SystemTime;

/// The shape of logalarm's own log lines on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `[logalarm] TIME LEVEL: key=value: message`, for people.
    #[default]
    Text,
    /// One JSON object per line, starting `{"tag":"[logalarm]"`, for log
    /// collectors.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    /// `text` or `json` (ASCII case ignored, surrounding blanks too).
    ///
    /// # Errors
    /// Any other word, with the accepted ones.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?} is not a log format; write text or json")),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// How serious a line is: the `LEVEL` of a text line, the `level` key of a
/// JSON one. Lines of [`crate::emit_tagged`] carry one too, but are never
/// filtered by it (`-q` does not hide an `ALARM:` line).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed: a config error, an input that stopped.
    Error,
    /// Something was lost or went wrong and may need a look: a failed
    /// delivery, a drop; also the `ALARM:` lines of the `log` action.
    Warn,
    /// The run's life: start, stop, summaries; a command's output.
    Info,
    /// Routine detail: each successful delivery, each decision.
    Debug,
    /// Finer still.
    Trace,
}

impl Level {
    /// The lower-case name written in lines: `error`, `warn`, `info`,
    /// `debug`, `trace`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The value of a line's extra field (`alarm=x`): in JSON, a string, a
/// number or a boolean.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Text.
    Str(String),
    /// A whole number.
    Int(i128),
    /// A number with a fraction (written as text as Rust's `{:?}` does; a
    /// non-finite one is `null` in JSON).
    Float(f64),
    /// True or false.
    Bool(bool),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

/// The keys a JSON line writes itself; a field of the same name is written
/// with a `_` in front, so that no key appears twice in an object.
const RESERVED: [&str; 5] = ["tag", "time", "level", "what", "message"];

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Chooses the format of every line from now on; the first call wins (the
/// format is the process's, chosen at start).
///
/// # Errors
/// The format already chosen, when one was (this call then changes nothing).
pub fn set_format(format: LogFormat) -> Result<(), LogFormat> {
    FORMAT.set(format).map_err(|_| self::format())
}

/// The format chosen with [`set_format`]; [`LogFormat::Text`] until then.
pub fn format() -> LogFormat {
    FORMAT.get().copied().unwrap_or_default()
}

/// Writes one line to stderr, now, in the chosen [`format()`], with one write.
///
/// `what`, when given, names the line instead of the level in text form
/// (`ALARM`, `cmd NAME`, `config error`) and is the `what` key in JSON;
/// `fields` come before the message, in order. Nothing is done when stderr
/// is gone: there is nowhere left to say so.
pub fn emit(level: Level, what: Option<&str>, fields: &[(&str, Value)], message: &[u8]) {
    let line = render(format(), SystemTime::now(), level, what, fields, message);
    let _ = std::io::stderr().lock().write_all(&line);
}

/// `t` in RFC 3339, UTC, with milliseconds (`2026-12-04T17:40:00.123Z`), as
/// every time logalarm writes is shown. Never panics: a time before the Unix
/// epoch is shown as the epoch, and one past the year 9999 (which RFC 3339
/// cannot write) as its last millisecond. Neither comes from a clock; a
/// time computed from a config value far out of range could.
pub fn rfc3339_millis(t: SystemTime) -> String {
    use std::time::{Duration, UNIX_EPOCH};
    // 10000-01-01T00:00:00Z, less a millisecond.
    let last = UNIX_EPOCH + Duration::from_millis(253_402_300_800_000 - 1);
    humantime::format_rfc3339_millis(t.clamp(UNIX_EPOCH, last)).to_string()
}

/// One line, with its `\n`, as [`emit`] writes it at `time`.
pub fn render(
    format: LogFormat,
    time: SystemTime,
    level: Level,
    what: Option<&str>,
    fields: &[(&str, Value)],
    message: &[u8],
) -> Vec<u8> {
    let time = rfc3339_millis(time);
    let mut out = Vec::with_capacity(64 + message.len() + 24 * fields.len());
    match format {
        LogFormat::Text => {
            // `write!` to a Vec cannot fail.
            let _ = write!(out, "{TAG}] {time} {}: ", what.unwrap_or(level.as_str()));
            for (name, value) in fields {
                let mut text = Vec::new();
                let _ = match value {
                    Value::Str(s) => write!(text, "{name}={s}: "),
                    Value::Int(n) => write!(text, "{name}={n}: "),
                    Value::Float(x) => write!(text, "{name}={x:?}: "),
                    Value::Bool(b) => write!(text, "{name}={b}: "),
                };
                push_escaped(&mut out, &text);
            }
            push_escaped(&mut out, message);
        }
        LogFormat::Json => {
            let _ = write!(
                out,
                "{JSON_TAG},\"time\":\"{time}\",\"level\":\"{}\"",
                level.as_str()
            );
            if let Some(what) = what {
                out.extend_from_slice(b",\"what\":");
                push_json_str(&mut out, what);
            }
            for (name, value) in fields {
                out.push(b',');
                if RESERVED.contains(name) {
                    push_json_str(&mut out, &format!("_{name}"));
                } else {
                    push_json_str(&mut out, name);
                }
                out.push(b':');
                let _ = match value {
                    Value::Str(s) => {
                        push_json_str(&mut out, s);
                        Ok(())
                    }
                    Value::Int(n) => write!(out, "{n}"),
                    Value::Float(x) if x.is_finite() => write!(out, "{x:?}"),
                    Value::Float(_) => write!(out, "null"),
                    Value::Bool(b) => write!(out, "{b}"),
                };
            }
            out.extend_from_slice(b",\"message\":");
            push_json_str(&mut out, &String::from_utf8_lossy(message));
            out.push(b'}');
        }
    }
    out.push(b'\n');
    out
}

/// Appends `s` as a JSON string (quoted, escaped by serde_json).
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Serialising a str cannot fail. JSON escapes the C0 controls itself;
    // DEL and the C1 controls (which a terminal showing the line may take
    // for ESC sequences) it leaves raw, so they are escaped here.
    let json = serde_json::to_string(s).unwrap_or_default();
    for c in json.chars() {
        match c {
            '\x7f' | '\u{80}'..='\u{9f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at() -> SystemTime {
        // 2026-12-04T17:40:00.123Z
        SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_406_000_123)
    }

    fn text(line: Vec<u8>) -> String {
        String::from_utf8(line).expect("UTF-8")
    }

    #[test]
    fn text_lines() {
        let fields = [("alarm", Value::from("x")), ("id", "1-2-3".into())];
        assert_eq!(
            text(render(
                LogFormat::Text,
                at(),
                Level::Warn,
                None,
                &fields,
                b"delivery failed"
            )),
            "[logalarm] 2026-12-04T17:40:00.123Z warn: alarm=x: id=1-2-3: delivery failed\n"
        );
        assert_eq!(
            text(render(
                LogFormat::Text,
                at(),
                Level::Warn,
                Some("ALARM"),
                &[],
                b"[PAGE ME] TERRIBLE\r\nALARM"
            )),
            "[logalarm] 2026-12-04T17:40:00.123Z ALARM: [PAGE ME] TERRIBLE\\r\\nALARM\n"
        );
        let numbers = [
            ("n", Value::Int(-3)),
            ("x", Value::Float(1.0)),
            ("b", Value::Bool(true)),
            ("s", "a\nb".into()),
        ];
        assert_eq!(
            text(render(
                LogFormat::Text,
                at(),
                Level::Debug,
                None,
                &numbers,
                b""
            )),
            "[logalarm] 2026-12-04T17:40:00.123Z debug: n=-3: x=1.0: b=true: s=a\\nb: \n"
        );
    }

    #[test]
    fn text_lines_escape_bytes_that_are_not_utf8_and_controls() {
        // Issue 12: a logged line can never drive the terminal (CWE-117).
        assert_eq!(
            render(
                LogFormat::Text,
                at(),
                Level::Info,
                Some("cmd c"),
                &[],
                b"\xff\xfe ok \x1b]0;x\x07"
            ),
            b"[logalarm] 2026-12-04T17:40:00.123Z cmd c: \\xff\\xfe ok \\x1b]0;x\\x07\n"
        );
        assert_eq!(
            text(render(
                LogFormat::Json,
                at(),
                Level::Info,
                None,
                &[],
                "\x1b]0;x\x07 \u{9b}2J \x7f".as_bytes()
            )),
            "{\"tag\":\"[logalarm]\",\"time\":\"2026-12-04T17:40:00.123Z\",\"level\":\"info\",\"message\":\"\\u001b]0;x\\u0007 \\u009b2J \\u007f\"}\n"
        );
    }

    #[test]
    fn json_lines() {
        let fields = [("alarm", Value::from("x\"y")), ("id", "1-2-3".into())];
        assert_eq!(
            text(render(
                LogFormat::Json,
                at(),
                Level::Warn,
                None,
                &fields,
                b"failed: \"quoted\"\n\ttab \x01"
            )),
            "{\"tag\":\"[logalarm]\",\"time\":\"2026-12-04T17:40:00.123Z\",\"level\":\"warn\",\
             \"alarm\":\"x\\\"y\",\"id\":\"1-2-3\",\
             \"message\":\"failed: \\\"quoted\\\"\\n\\ttab \\u0001\"}\n"
        );
        assert_eq!(
            text(render(
                LogFormat::Json,
                at(),
                Level::Error,
                Some("config error"),
                &[],
                b"bad \xff byte"
            )),
            "{\"tag\":\"[logalarm]\",\"time\":\"2026-12-04T17:40:00.123Z\",\"level\":\"error\",\
             \"what\":\"config error\",\"message\":\"bad \u{fffd} byte\"}\n"
        );
    }

    #[test]
    fn json_values_and_reserved_names() {
        let fields = [
            ("n", Value::Int(7)),
            ("x", Value::Float(0.5)),
            ("nan", Value::Float(f64::NAN)),
            ("b", Value::Bool(false)),
            ("level", "mine".into()),
        ];
        let line = text(render(
            LogFormat::Json,
            at(),
            Level::Info,
            None,
            &fields,
            b"m",
        ));
        assert_eq!(
            line,
            "{\"tag\":\"[logalarm]\",\"time\":\"2026-12-04T17:40:00.123Z\",\"level\":\"info\",\
             \"n\":7,\"x\":0.5,\"nan\":null,\"b\":false,\"_level\":\"mine\",\"message\":\"m\"}\n"
        );
        let parsed: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(parsed["_level"], "mine");
        assert!(line.starts_with(JSON_TAG));
    }

    #[test]
    fn formats_parse() {
        assert_eq!(" JSON ".parse(), Ok(LogFormat::Json));
        assert_eq!("text".parse(), Ok(LogFormat::Text));
        assert_eq!(
            "xml".parse::<LogFormat>(),
            Err("\"xml\" is not a log format; write text or json".to_owned())
        );
        assert_eq!(LogFormat::Json.to_string(), "json");
    }
}
