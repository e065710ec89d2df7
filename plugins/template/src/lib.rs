//! Jinja templates over a [`Notification`], for the parts of a network action
//! a config may shape: an HTTP body, a mail's subject and body.
//!
//! Templates use Jinja syntax through [`minijinja`]. Each is compiled when the
//! config loads, and tried once on a sample notification, so that a syntax
//! error, an unknown filter or a misspelt variable is a config error naming
//! the key, not a failed delivery at 3 a.m.; variables are strict (an unknown
//! one is an error, never silently empty). Nothing is escaped unless asked:
//! `tojson` writes a JSON string, number or `null`.
//!
//! The variables, from the notification:
//!
//! | name | value |
//! |---|---|
//! | `alarm` | the alarm's name |
//! | `line` | the message as delivered (the line; when cut to `alarm-msg-size`, with the truncation marker), invalid UTF-8 replaced by U+FFFD |
//! | `rule` | the regex that fired the alarm |
//! | `source` | where the line came from: `stdin`, `file:PATH`, `socket:PATH`, `child:stderr`, … |
//! | `time` | when the line was read, RFC 3339 in UTC with milliseconds (`2024-05-01T12:00:00.123Z`) |
//! | `id` | the notification's stable id (the same on every attempt) |
//! | `suppressed` | identical messages `alarm-freq` dropped since the previous notification |
//! | `truncated` | the line's full length in bytes when it was cut, else none |
//! | `host`, `app`, `pid`, `msgid` | the syslog header's fields (socket inputs), else none |
//! | `severity`, `facility` | their syslog keywords (`err`, `daemon`, …), else none |
//!
//! None renders as an empty string and `tojson` writes it as `null`; `{{ host
//! or "-" }}` gives a default.
//!
//! ```
//! use logalarm_template::Template;
//! let body = Template::compile("body", r#"{"alarm": {{ alarm | tojson }}, "text": {{ line | tojson }}}"#)
//!     .unwrap();
//! let n = logalarm_template::sample();
//! assert_eq!(
//!     body.render(&n).unwrap(),
//!     r#"{"alarm": "example", "text": "TERRIBLE ALARM! the world \"exploded\""}"#
//! );
//! assert!(Template::compile("subject", "{{ alrm }}").unwrap_err().contains("subject"));
//! ```

#![warn(missing_docs)]

use logalarm_plugin_api::{Notification, Source, Syslog};
use minijinja::{Environment, UndefinedBehavior, Value, context};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The variables a template sees (see the crate docs).
pub const VARIABLES: [&str; 14] = [
    "alarm",
    "line",
    "rule",
    "source",
    "time",
    "id",
    "suppressed",
    "truncated",
    "host",
    "app",
    "pid",
    "msgid",
    "severity",
    "facility",
];

/// The template's name inside its environment (each template has its own).
const NAME: &str = "template";

/// A compiled template.
#[derive(Debug)]
pub struct Template {
    env: Environment<'static>,
    key: String,
}

impl Template {
    /// Compiles `source`, the value of config key `key` (which error
    /// messages name), and tries it on [`sample`].
    ///
    /// # Errors
    /// The syntax error, or the error of the trial render (an unknown
    /// variable or filter), with its line in the template, prefixed by `key`.
    pub fn compile(key: &str, source: &str) -> Result<Template, String> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // The text is the template's: a body ending with a newline keeps it.
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
            .map_err(|e| describe(key, &e))?;
        env.set_syntax(syntax);
        // A missing field prints as nothing, not as Jinja's `None`.
        env.set_formatter(|out, state, value| {
            if value.is_none() {
                Ok(())
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        env.add_template_owned(NAME, source.to_owned())
            .map_err(|e| describe(key, &e))?;
        let template = Template {
            env,
            key: key.to_owned(),
        };
        template.render(&sample())?;
        Ok(template)
    }

    /// Renders the template for `n`.
    ///
    /// # Errors
    /// What went wrong (a filter failing on this notification's values, such
    /// as `upper` on a missing `host`), prefixed by the template's key.
    pub fn render(&self, n: &Notification) -> Result<String, String> {
        self.env
            .get_template(NAME)
            .and_then(|t| t.render(context(n)))
            .map_err(|e| describe(&self.key, &e))
    }
}

/// A template error as one line: the key, what is wrong, and where.
fn describe(key: &str, e: &minijinja::Error) -> String {
    let mut text = format!("`{key}` template: {}", e.kind());
    if let Some(detail) = e.detail() {
        text.push_str(": ");
        text.push_str(detail);
    }
    if let Some(line) = e.line() {
        let _ = write!(text, " (line {line} of the template)");
    }
    if e.kind() == minijinja::ErrorKind::UndefinedError {
        let _ = write!(text, "; the variables are {}", VARIABLES.join(", "));
    }
    text
}

/// The template variables of `n` (see the crate docs).
pub fn context(n: &Notification) -> Value {
    let syslog = n.syslog.as_deref();
    let field = |get: fn(&Syslog) -> Option<&str>| syslog.and_then(get).map(str::to_owned);
    context! {
        alarm => &*n.alarm,
        line => String::from_utf8_lossy(&n.body()).into_owned(),
        rule => &*n.rule,
        source => n.source.to_string(),
        time => humantime::format_rfc3339_millis(n.time).to_string(),
        id => n.id.to_string(),
        suppressed => n.suppressed,
        truncated => n.truncated_from,
        host => field(|s| s.host.as_deref()),
        app => field(|s| s.app.as_deref()),
        pid => field(|s| s.pid.as_deref()),
        msgid => field(|s| s.msgid.as_deref()),
        severity => syslog.and_then(Syslog::severity_name),
        facility => syslog.and_then(Syslog::facility_name),
    }
}

/// A notification with every field set, for trying templates at config load
/// (and for examples): alarm `example`, a line with quotes, a syslog header.
pub fn sample() -> Notification {
    Notification {
        id: logalarm_plugin_api::NoteId {
            run: 0,
            alarm: 0,
            seq: 1,
        },
        alarm: "example".into(),
        rule: "TERRIBLE ALARM".into(),
        message: br#"TERRIBLE ALARM! the world "exploded""#.to_vec(),
        truncated_from: None,
        suppressed: 0,
        source: Source::Stdin,
        syslog: Some(Arc::new(Syslog {
            facility: Some(3),
            severity: Some(3),
            timestamp: Some("2024-05-01T12:00:00Z".into()),
            host: Some("web1".into()),
            app: Some("app".into()),
            pid: Some("42".into()),
            msgid: Some("ID1".into()),
        })),
        time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_564_800),
        kind: logalarm_plugin_api::Kind::Alarm,
        caps: None,
        key: None,
        aggregate: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_variable() {
        let t = Template::compile(
            "body",
            "{{ alarm }}|{{ line }}|{{ rule }}|{{ source }}|{{ time }}|{{ id }}|{{ suppressed }}|\
             {{ truncated }}|{{ host }}|{{ app }}|{{ pid }}|{{ msgid }}|{{ severity }}|{{ facility }}\n",
        )
        .unwrap();
        assert_eq!(
            t.render(&sample()).unwrap(),
            "example|TERRIBLE ALARM! the world \"exploded\"|TERRIBLE ALARM|stdin|\
             2024-05-01T12:00:00.000Z|0000000000000000-0-1|0||web1|app|42|ID1|err|daemon\n"
        );
    }

    #[test]
    fn missing_fields_are_none() {
        let mut n = sample();
        n.syslog = None;
        n.message = b"caf\xe9 long".to_vec();
        n.truncated_from = Some(100);
        let t = Template::compile(
            "body",
            "{{ host | tojson }} {{ host or '-' }} {{ truncated }} {{ line | tojson }}",
        )
        .unwrap();
        assert_eq!(
            t.render(&n).unwrap(),
            "null - 100 \"caf\u{fffd} long [logalarm: truncated, 100 bytes in all]\""
        );
    }

    #[test]
    fn errors_name_the_key_and_the_line() {
        let e = Template::compile("body", "ok\n{{ alarm ").unwrap_err();
        assert!(e.starts_with("`body` template: syntax error"), "{e}");
        assert!(e.contains("line 2"), "{e}");
        let e = Template::compile("subject", "{{ alrm }}").unwrap_err();
        assert!(e.starts_with("`subject` template: undefined value"), "{e}");
        assert!(e.ends_with("the variables are alarm, line, rule, source, time, id, suppressed, truncated, host, app, pid, msgid, severity, facility"), "{e}");
        let e = Template::compile("subject", "{{ alarm | shout }}").unwrap_err();
        assert!(e.contains("shout"), "{e}");
    }
}
