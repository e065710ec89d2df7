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
//! | `kind` | what the notification reports: `alarm` (a matched line), `digest`, `escalation`, `resolved`, `absent` |
//! | `line` | the message as the policy stage made it (the line; when cut to `alarm-msg-size`, with the truncation marker), invalid UTF-8 replaced by U+FFFD |
//! | `rule` | the regex that fired the alarm |
//! | `caps` | the rule's capture groups on the line: `caps.ip` by name, `caps[1]` by number, `caps[0]` the whole match |
//! | `key` | the policy key the notification counts under (`key = "{{ caps.ip }}"`), else none |
//! | `source` | where the line came from: `stdin`, `file:PATH`, `socket:PATH`, `child:stderr`, … |
//! | `time` | when the line was read (an aggregate: when it was made), RFC 3339 in UTC with milliseconds (`2024-05-01T12:00:00.123Z`) |
//! | `id` | the notification's stable id (the same on every attempt) |
//! | `suppressed` | copies of this message `alarm-freq` dropped since this message's previous notification (with a `cooldown`: also the events the cooldown held back for this key) |
//! | `truncated` | the line's full length in bytes when it was cut, else none |
//! | `host`, `app`, `pid`, `msgid` | the syslog header's fields (socket inputs), else none |
//! | `severity`, `facility` | their syslog keywords (`err`, `daemon`, …), else none |
//! | `count` | events summed up: a digest's or escalation's count; for one event, 1 + `suppressed` |
//! | `first_seen`, `last_seen` | when the first and the last of them arrived, RFC 3339 as `time`; for one event both are `time` |
//! | `period` | the period summed up (a digest's period, an escalation's window) as a duration (`1m`, `1m 30s`), else none |
//! | `sources` | events per source, most first: a list of `{name, count}`; for one event, its source with `count` |
//! | `events` | the unique messages, most frequent first: a list of `{key, count, first_seen, last_seen, sources, example}` (`sources` as above, `example` the first event's whole message); for one event, one entry for it (key: the policy key, else the message) |
//! | `ungrouped` | events beyond the cap on unique messages (in `count`, in no entry of `events`); 0 for one event |
//!
//! None renders as an empty string and `tojson` writes it as `null`; `{{ host
//! or "-" }}` gives a default.
//!
//! A capture group the rule lacks (`caps.user` when the regex has no group
//! `user`), or that did not take part in the match, is none, not an error:
//! one template serves every rule that fires the alarm, and those rules need
//! not have the same groups, so a template cannot be checked against one
//! regex. Test with `{% if caps.user %}`, not `is defined` (every name is).
//!
//! When an alarm has no `message` template, a notification the policy stage
//! made (a digest, an escalation, a recovery, an absence) is worded by that
//! kind's default template ([`default_message`]); a matched line is delivered
//! as it is.
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
//! let message = Template::compile("message", "{{ caps.ip }} failed {{ count }} times").unwrap();
//! assert_eq!(message.render(&n).unwrap(), "10.0.0.7 failed 3 times");
//! assert!(Template::compile("subject", "{{ alrm }}").unwrap_err().contains("subject"));
//! ```

#![warn(missing_docs)]

mod context;
mod defaults;

pub use context::context;
pub use defaults::{
    ABSENT_MESSAGE, DIGEST_MESSAGE, ESCALATION_MESSAGE, RESOLVED_MESSAGE, default_message,
    default_template,
};

use logalarm_plugin_api::{Aggregate, Captures, Group, Notification, Source, Syslog};
use minijinja::{Environment, UndefinedBehavior};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The variables a template sees (see the crate docs).
pub const VARIABLES: [&str; 24] = [
    "alarm",
    "kind",
    "line",
    "rule",
    "caps",
    "key",
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
    "count",
    "first_seen",
    "last_seen",
    "period",
    "sources",
    "events",
    "ungrouped",
];

/// The template's name inside its environment (each template has its own).
const NAME: &str = "template";

/// The most instructions one render may run (minijinja's fuel): a template
/// that needs more fails with a message naming its key, at config load when
/// the trial render on [`sample`] runs out, else as that delivery's error.
///
/// A digest listing 1,000 unique messages with their counts, times,
/// sources and examples takes about 37,000 (measured by
/// `a_digest_of_many_groups_fits_in_the_fuel`); a render that runs out of
/// these 10 million has taken about 0.3 s (release build), so `{% for i in
/// range(100000) %}{% for j in range(100000) %}…` never hangs a check or a
/// worker.
pub const FUEL: u64 = 10_000_000;

/// How long the trial render at config load may take ([`Template::compile`]).
/// A template burning all its [`FUEL`] takes about 0.3 s (2 s in a debug
/// build); one that takes longer copies huge strings in a loop.
pub const TRIAL_DEADLINE: Duration = Duration::from_secs(5);

/// The most a render may write: 16 MiB, the longest line logalarm keeps
/// whole. Fuel counts instructions, not bytes: `{{ 'x' * 100000000 }}` is
/// one instruction writing 100 MB, and in a loop it would never end. The
/// render stops at the first write past this, with an error naming the key.
pub const MAX_OUTPUT: usize = 16 << 20;

/// A writer that refuses to grow past [`MAX_OUTPUT`].
struct Capped {
    out: Vec<u8>,
    over: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > MAX_OUTPUT {
            self.over = true;
            return Err(std::io::Error::other("template output too long"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A compiled template.
#[derive(Debug)]
pub struct Template {
    env: Environment<'static>,
    key: String,
    source: String,
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
        env.set_fuel(Some(FUEL));
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
            source: source.to_owned(),
        };
        template.trial()
    }

    /// Renders the template once on [`sample`], on a thread of its own,
    /// waiting at most [`TRIAL_DEADLINE`]: fuel and the output cap bound
    /// instructions and bytes, not the bytes an instruction copies (`{% set
    /// b = a ~ a %}` on a 100 MB `a`, in a loop), so a template that takes
    /// longer is refused by the clock. Such a trial is left to finish on its
    /// thread; the config error ends the process anyway.
    fn trial(self) -> Result<Template, String> {
        let key = self.key.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("template trial".into())
            .spawn(move || {
                let result = self.render(&sample());
                let _ = tx.send(result.map(|_| self));
            });
        if let Err(e) = spawned {
            return Err(format!("`{key}` template: cannot try it: {e}"));
        }
        match rx.recv_timeout(TRIAL_DEADLINE) {
            Ok(result) => result,
            Err(_) => Err(format!(
                "`{key}` template: rendering it on a sample takes longer than {} s; shorten its loops or the strings they copy",
                TRIAL_DEADLINE.as_secs()
            )),
        }
    }

    /// The template as written (for `logalarm check`).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The config key it was compiled for, as its errors name it.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Renders the template for `n`.
    ///
    /// # Errors
    /// What went wrong (a filter failing on this notification's values, such
    /// as `upper` on a missing `host`; more than [`FUEL`] instructions; more
    /// than [`MAX_OUTPUT`] bytes written), prefixed by the template's key.
    pub fn render(&self, n: &Notification) -> Result<String, String> {
        let template = self
            .env
            .get_template(NAME)
            .map_err(|e| describe(&self.key, &e))?;
        let mut out = Capped {
            out: Vec::new(),
            over: false,
        };
        match template.render_captured_to(context(n), &mut out) {
            Ok(_) => Ok(String::from_utf8_lossy(&out.out).into_owned()),
            Err(_) if out.over => Err(format!(
                "`{}` template: its output passes {} MiB; shorten it",
                self.key,
                MAX_OUTPUT >> 20
            )),
            Err(e) => Err(describe(&self.key, &e)),
        }
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
    if e.kind() == minijinja::ErrorKind::OutOfFuel {
        let _ = write!(
            text,
            " (more than {FUEL} instructions in one render); shorten its loops"
        );
    }
    if e.kind() == minijinja::ErrorKind::UndefinedError {
        let _ = write!(text, "; the variables are {}", VARIABLES.join(", "));
    }
    text
}

/// A notification with every field set, for trying templates at config load
/// (and for examples): alarm `example`, a line with quotes, a syslog header,
/// capture groups (group 1 and `ip`, `10.0.0.7`), and an aggregate of 3 events
/// in 2 groups from 2 sources over `1m`.
pub fn sample() -> Notification {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_564_800);
    let secs = |s: u64| t0 + Duration::from_secs(s);
    Notification {
        id: logalarm_plugin_api::NoteId {
            run: 0,
            alarm: 0,
            seq: 1,
        },
        syslog: Some(Arc::new(Syslog {
            facility: Some(3),
            severity: Some(3),
            timestamp: Some("2024-05-01T12:00:00Z".into()),
            host: Some("web1".into()),
            app: Some("app".into()),
            pid: Some("42".into()),
            msgid: Some("ID1".into()),
        })),
        caps: Some(Arc::new(Captures {
            groups: vec![
                Some("failed from 10.0.0.7".into()),
                Some("failed".into()),
                Some("10.0.0.7".into()),
            ],
            names: vec![("ip".into(), 2)],
        })),
        key: Some("10.0.0.7".into()),
        aggregate: Some(Arc::new(Aggregate {
            count: 3,
            ungrouped: 0,
            first_seen: secs(0),
            last_seen: secs(42),
            period: Duration::from_secs(60),
            sources: vec![("stdin".into(), 2), ("file:/var/log/app.log".into(), 1)],
            groups: vec![
                Group {
                    key: "db timeout after <n>s".into(),
                    count: 2,
                    first_seen: secs(0),
                    last_seen: secs(42),
                    sources: vec![("stdin".into(), 2)],
                    example: b"db timeout after 30s".to_vec(),
                },
                Group {
                    key: "disk full on <ip>".into(),
                    count: 1,
                    first_seen: secs(7),
                    last_seen: secs(7),
                    sources: vec![("file:/var/log/app.log".into(), 1)],
                    example: b"disk full on 10.0.0.7".to_vec(),
                },
            ],
        })),
        ..Notification::new(
            "example".into(),
            "TERRIBLE ALARM".into(),
            br#"TERRIBLE ALARM! the world "exploded""#.to_vec(),
            Source::stdin(),
            t0,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logalarm_plugin_api::Kind;

    #[test]
    fn a_loop_runs_out_of_fuel_instead_of_hanging() {
        let t = std::time::Instant::now();
        let e = Template::compile(
            "message",
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
        )
        .unwrap_err();
        assert!(
            e.starts_with("`message` template: engine ran out of fuel"),
            "{e}"
        );
        assert!(
            e.contains("(more than 10000000 instructions in one render)"),
            "{e}"
        );
        eprintln!("10M fuel burnt in {:?}", t.elapsed());
        // Fuel counts instructions, not bytes: the output is capped too.
        let t = std::time::Instant::now();
        let e = Template::compile(
            "message",
            "{% for i in range(100000) %}{{ 'x' * 100000000 }}{% endfor %}",
        )
        .unwrap_err();
        assert_eq!(
            e,
            "`message` template: its output passes 16 MiB; shorten it"
        );
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            t.elapsed()
        );
        // Neither counts the bytes one instruction copies: the trial's clock does.
        let t = std::time::Instant::now();
        let e = Template::compile(
            "message",
            "{% set a = 'x' * 100000000 %}{% for i in range(100000) %}{% set b = a ~ a %}{% endfor %}",
        )
        .unwrap_err();
        assert_eq!(
            e,
            "`message` template: rendering it on a sample takes longer than 5 s; shorten its loops or the strings they copy"
        );
        assert!(
            t.elapsed() < std::time::Duration::from_secs(7),
            "{:?}",
            t.elapsed()
        );
        // Recursion is bounded by minijinja itself.
        let e = Template::compile(
            "message",
            "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
        )
        .unwrap_err();
        assert!(e.contains("message"), "{e}");
    }

    #[test]
    fn a_digest_of_many_groups_fits_in_the_fuel() {
        let mut n = sample();
        let mut a = (**n.aggregate.as_ref().unwrap()).clone();
        let group = a.groups[0].clone();
        a.groups = vec![group; 1000];
        n.aggregate = Some(Arc::new(a));
        let t = Template::compile(
            "message",
            "{% for e in events %}{{ e.count }} {{ e.key }} {{ e.first_seen }} {{ e.last_seen }}{% for s in e.sources %} {{ s.name }}={{ s.count }}{% endfor %} {{ e.example }}\n{% endfor %}",
        )
        .unwrap();
        assert_eq!(t.render(&n).unwrap().lines().count(), 1000);
        let env = &t.env;
        let tmpl = env.get_template(NAME).unwrap();
        let captured = tmpl.render_captured(context(&n)).unwrap();
        let (used, _) = captured.state().fuel_levels().unwrap();
        eprintln!("a digest of 1000 groups took {used} fuel");
        assert!(used < FUEL / 20, "{used}");
    }

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
        assert!(
            e.ends_with(
                "the variables are alarm, kind, line, rule, caps, key, source, time, id, \
                 suppressed, truncated, host, app, pid, msgid, severity, facility, count, \
                 first_seen, last_seen, period, sources, events, ungrouped"
            ),
            "{e}"
        );
        let e = Template::compile("subject", "{{ alarm | shout }}").unwrap_err();
        assert!(e.contains("shout"), "{e}");
    }

    #[test]
    fn renders_the_policy_variables() {
        let t = Template::compile(
            "message",
            "{{ kind }}|{{ key }}|{{ count }}|{{ first_seen }}|{{ last_seen }}|{{ period }}|\
             {% for s in sources %}{{ s.name }}={{ s.count }};{% endfor %}|\
             {% for e in events %}[{{ e.key }}|{{ e.count }}|{{ e.first_seen }}|{{ e.last_seen }}|\
             {% for s in e.sources %}{{ s.name }}={{ s.count }}{% endfor %}|{{ e.example }}]{% endfor %}|\
             {{ ungrouped }}",
        )
        .unwrap();
        assert_eq!(
            t.render(&sample()).unwrap(),
            "alarm|10.0.0.7|3|2024-05-01T12:00:00.000Z|2024-05-01T12:00:42.000Z|1m|\
             stdin=2;file:/var/log/app.log=1;|\
             [db timeout after <n>s|2|2024-05-01T12:00:00.000Z|2024-05-01T12:00:42.000Z|stdin=2|db timeout after 30s]\
             [disk full on <ip>|1|2024-05-01T12:00:07.000Z|2024-05-01T12:00:07.000Z|file:/var/log/app.log=1|disk full on 10.0.0.7]|\
             0"
        );
    }

    #[test]
    fn one_event_reads_as_an_aggregate_of_itself() {
        let mut n = sample();
        n.aggregate = None;
        n.key = None;
        n.suppressed = 4;
        n.time += Duration::from_millis(123);
        let t = Template::compile(
            "message",
            "{{ key | tojson }} {{ count }} {{ first_seen }} {{ last_seen }} {{ period | tojson }} \
             {{ sources | tojson }} {{ events | length }} {{ events[0].key }} {{ events[0].count }} \
             {% if events[0].example == line %}same{% endif %} {{ ungrouped }}",
        )
        .unwrap();
        assert_eq!(
            t.render(&n).unwrap(),
            "null 5 2024-05-01T12:00:00.123Z 2024-05-01T12:00:00.123Z null \
             [{\"name\": \"stdin\", \"count\": 5}] 1 TERRIBLE ALARM! the world \"exploded\" 5 same 0"
        );
    }

    #[test]
    fn caps_by_name_and_number_and_missing() {
        let t = Template::compile(
            "message",
            "{{ caps.ip }}|{{ caps[1] }}|{{ caps[0] }}|{{ caps['ip'] }}|{{ caps.user | tojson }}|\
             {{ caps[7] | tojson }}|{% if caps.user %}user{% else %}no user{% endif %}|\
             {% for name in caps %}{{ name }}={{ caps[name] }}{% endfor %}",
        )
        .unwrap();
        assert_eq!(
            t.render(&sample()).unwrap(),
            "10.0.0.7|failed|failed from 10.0.0.7|10.0.0.7|null|null|no user|ip=10.0.0.7"
        );
        // A group that did not take part, and a rule without groups at all.
        let mut n = sample();
        n.caps = Some(Arc::new(Captures {
            groups: vec![Some("x".into()), None],
            names: vec![("ip".into(), 1)],
        }));
        assert_eq!(t.render(&n).unwrap(), "||x||null|null|no user|ip=");
        n.caps = None;
        assert_eq!(t.render(&n).unwrap(), "||||null|null|no user|");
    }

    /// A digest of 5 events: 3 of one shape from two sources (its example
    /// two lines long), 1 of another, 1 beyond the cap on groups.
    fn digest() -> Notification {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_564_800);
        let secs = |s: u64| t0 + Duration::from_secs(s);
        let mut n = sample();
        n.kind = Kind::Digest;
        n.alarm = "errors".into();
        n.caps = None;
        n.key = None;
        n.aggregate = Some(Arc::new(Aggregate {
            count: 5,
            ungrouped: 1,
            first_seen: secs(1),
            last_seen: secs(59),
            period: Duration::from_secs(60),
            sources: vec![("web1".into(), 3), ("web2".into(), 2)],
            groups: vec![
                Group {
                    key: "Traceback <n>".into(),
                    count: 3,
                    first_seen: secs(1),
                    last_seen: secs(50),
                    sources: vec![("web1".into(), 2), ("web2".into(), 1)],
                    example: b"Traceback (most recent call last):\n  File \"app.py\", line 3\nValueError: 7".to_vec(),
                },
                Group {
                    key: "disk full".into(),
                    count: 1,
                    first_seen: secs(59),
                    last_seen: secs(59),
                    sources: vec![("web2".into(), 1)],
                    example: b"disk full".to_vec(),
                },
            ],
        }));
        n
    }

    #[test]
    fn default_digest_message() {
        let n = digest();
        let t = default_template(Kind::Digest).unwrap();
        assert_eq!(
            t.render(&n).unwrap(),
            "5 instances of 2 unique errors (sources: web1, web2) in the last 1m\n\
             (1 more beyond the cap on unique errors, not listed)\n\
             \n\
             #1: 3 instances, first seen 2024-05-01T12:00:01.000Z, last seen 2024-05-01T12:00:50.000Z\n\
             \x20   sources: web1 (2), web2 (1)\n\
             \x20   Traceback (most recent call last):\n\
             \x20     File \"app.py\", line 3\n\
             \x20   ValueError: 7\n\
             \n\
             #2: 1 instance, first seen 2024-05-01T12:00:59.000Z, last seen 2024-05-01T12:00:59.000Z\n\
             \x20   sources: web2 (1)\n\
             \x20   disk full"
        );
    }

    #[test]
    fn default_escalation_message() {
        let mut n = digest();
        n.kind = Kind::Escalation;
        n.alarm = "pager".into();
        n.message = b"alarm errors: 5 events within 1m (limit 3)".to_vec();
        let t = default_template(Kind::Escalation).unwrap();
        assert_eq!(
            t.render(&n).unwrap(),
            "ESCALATION pager: alarm errors: 5 events within 1m (limit 3)\n\
             \x20 3 x Traceback (most recent call last):\n\
             \x20 1 x disk full"
        );
        // Beyond five groups, the rest are counted.
        let mut a = (*n.aggregate.take().unwrap()).clone();
        let group = a.groups[1].clone();
        a.groups = (0..7).map(|_| group.clone()).collect();
        n.aggregate = Some(Arc::new(a));
        let text = t.render(&n).unwrap();
        assert!(
            text.ends_with("  1 x disk full\n  … and 2 more unique errors"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 7, "{text}");
    }

    #[test]
    fn default_resolved_and_absent_messages() {
        let mut n = sample();
        n.aggregate = None;
        n.kind = Kind::Resolved;
        n.message = b"db connection restored".to_vec();
        assert_eq!(
            default_template(Kind::Resolved)
                .unwrap()
                .render(&n)
                .unwrap(),
            "RESOLVED example: db connection restored"
        );
        n.kind = Kind::Absent;
        n.message = b"no line matching \"heartbeat ok\"".to_vec();
        let t = default_template(Kind::Absent).unwrap();
        assert_eq!(
            t.render(&n).unwrap(),
            "ABSENT example: no line matching \"heartbeat ok\""
        );
        n.aggregate = digest().aggregate;
        assert_eq!(
            t.render(&n).unwrap(),
            "ABSENT example: no line matching \"heartbeat ok\" (nothing for 1m)"
        );
        assert!(default_template(Kind::Alarm).is_none());
        assert!(default_message(Kind::Alarm).is_none());
    }
}
