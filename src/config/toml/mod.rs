//! The native TOML syntax.
//!
//! ```toml
//! alarm_freq = 3          # seconds (or "500ms"), 0 = off; uWSGI's alarm-freq
//! msg_size = 8192         # bytes; uWSGI's alarm-msg-size
//! passthrough = true      # copy stdin to stdout
//! queue_size = 1024       # notifications queued per alarm
//! drain_timeout = "10s"   # time to deliver what is queued at EOF
//! state_dir = "/var/lib/logalarm"  # followed files' read positions
//! poll_interval = "1s"    # check followed files without change events
//! rotate_wait = "5s"      # keep reading a rotated file this long
//! flush_timeout = "1s"    # match a followed file's unfinished last line after this
//! log_format = "text"     # logalarm's own log lines: "text" or "json"
//!
//! [[input]]
//! file = ["/var/log/app/*.log", "/var/log/other.log"]
//! from = "end"            # or "beginning"
//!
//! [[input]]
//! socket = "/run/logalarm.sock"
//! type = "dgram"          # or "stream"
//! mode = "0660"
//! allow_uids = [0, 1000]  # stream clients only
//!
//! [run]                   # logalarm run -- CMD
//! on_exit = ["crash"]     # alarms fired when CMD dies of a signal
//! on_exit_nonzero = false # … or also exits non-zero
//! last_lines = 50
//! restart = "no"          # or "on-failure", "always"
//! restart_delay = "1s"
//! restart_max_delay = "60s"
//!
//! [[alarm_fd]]            # uWSGI's alarm-fd
//! alarm = "oom"
//! fd = "/run/oom.fifo"
//! size = 8
//! message = "OUT OF MEMORY"
//!
//! [alarm.mailme]
//! action = "cmd:mail -s 'alarm' admin@example.com"
//! timeout = "30s"         # optional, per action
//!
//! [alarm.ssh]
//! action = "cmd:/usr/local/bin/block-ip"
//! message = "{{ caps.ip }} failed {{ count }} times"  # Jinja, for every plugin (no INI form)
//! env = { IP = "{{ caps.ip }}" }                       # cmd: extra variables, Jinja
//!
//! [alarm.hook]
//! action = "http:https://hooks.example.com/alarm"
//! retry = { attempts = 10, deadline = "5m", delay = "1s", max_delay = "60s" }
//! on_failure = "mailme"   # gets the notifications that failed for good
//! headers = { "Content-Type" = "application/json" }
//! body = '{"alarm": {{ alarm | tojson }}, "text": {{ line | tojson }}}'
//! auth_user = "logalarm"  # any other key goes to the plugin, which must take it
//! auth_pass = "env:HOOK_PASSWORD"
//!
//! [alarm.ssh]            # alarm policies: see `super::policy`
//! action = "log:"
//! key = "{{ caps.ip }}"
//! threshold = { count = 5, window = "60s" }
//! cooldown = { max = 1, period = "1h" }
//! digest = "10m"          # or { period = "10m", max_groups = 100, key = "…" }
//! escalate = { limit = 100, window = "5m", alarm = "mailme" }
//!
//! [[expect]]              # a heartbeat: its absence fires the alarm
//! regex = "heartbeat ok"
//! within = "5m"
//! alarm = "mailme"
//!
//! [[rule]]
//! regex = "HARAKIRI ON WORKER"
//! alarms = ["mailme"]     # or: alarm = "mailme"
//!
//! [[rule]]
//! regex = "DEBUG"
//! alarms = ["mailme"]
//! negate = true           # uWSGI's not-log-alarm
//!
//! [[rule]]                # a traceback as one alarm (see crate::record)
//! regex = "Error|Exception"   # matched against the whole record
//! alarms = ["mailme"]
//! multiline = "python"    # or "java", "go", "ruby", or a table:
//! # multiline = { start = "^BEGIN", continue = '^\s', end = "^END",
//! #               max_lines = 500, max_bytes = 65536, timeout = "500ms" }
//! # multiline = { preset = "java", max_lines = 200 }
//! ```
//!
//! `multiline` has no INI form: uWSGI's `log-alarm` value has no room for it.
//!
//! Unknown keys are errors (a typo must not silently disable an alarm), named
//! with their key path and the key they most likely meant
//! ([`super::suggest`]). Each section is read on its own
//! (`src/config/toml_doc.rs`), so every error in a file is listed, each with its
//! line and key path; an alarm's keys beyond the engine's own go to its plugin
//! and are checked by [`crate::plan`].

mod alarms;
mod inputs;
mod rules;

pub use alarms::{MAX_CONCURRENCY, alarm_engine_keys};

use super::policy::StallOn;
use super::settings::{SETTINGS, Settings};
use super::toml_doc::{Reader, Schema, entries};
use super::{Config, ConfigError};
use crate::component::de::{OneOrMany, Period};
use crate::input::child::config::RunDef;
use crate::input::fd::config::AlarmFdDef;
use alarms::{ReadAlarm, read_alarms};
use inputs::{ReadInput, Stall, read_alarm_fds, read_inputs, read_run};
use rules::{EXPECT, Expect, RULE, Rule};
use std::path::Path;
use toml::Spanned;
use toml::de::DeTable;

/// A whole file as read: each section deserialized on its own (see
/// [`Reader`]), so that an error in one does not hide those in the others.
/// The numbered sections keep each item's 1-based place in the file, as
/// error messages name it (`rule[3]`), also when an item before it failed.
#[derive(Default)]
struct File {
    settings: Settings,
    alarm: Vec<ReadAlarm>,
    rule: Vec<(usize, Spanned<Rule>)>,
    input: Vec<ReadInput>,
    run: Option<(RunDef, Stall)>,
    alarm_fd: Vec<AlarmFdDef>,
    expect: Vec<(usize, Spanned<Expect>)>,
    stall_after: Option<Spanned<Period>>,
    on_stall: Option<OneOrMany>,
}

static TOP: Schema = Schema {
    what: "the top level",
    keys: &[
        ("alarm", None),
        ("rule", None),
        ("input", None),
        ("run", None),
        ("alarm_fd", None),
        ("expect", None),
        ("stall_after", None),
        ("on_stall", None),
    ],
};

/// Reads each top-level key on its own, so that every error is reported.
fn read_file(
    r: &mut Reader<'_>,
    mut root: DeTable<'_>,
    broken: &mut Vec<String>,
    errors: &mut Vec<ConfigError>,
) -> File {
    let settings: Vec<&'static str> = SETTINGS
        .iter()
        .flat_map(|s| s.toml.iter().copied())
        .collect();
    r.known_keys_also("", &mut root, &TOP, &settings, false);
    let mut f = File::default();
    for (key, value) in entries(root) {
        let key: &str = &key;
        match key {
            "stall_after" => f.stall_after = r.value(key, value),
            "on_stall" => f.on_stall = r.value(key, value),
            "run" => f.run = read_run(r, value, errors),
            "rule" => f.rule = r.items(key, value, &RULE),
            "input" => f.input = read_inputs(r, value, errors),
            "alarm_fd" => f.alarm_fd = read_alarm_fds(r, value, errors),
            "expect" => f.expect = r.items(key, value, &EXPECT),
            "alarm" => f.alarm = read_alarms(r, value, broken, errors),
            // Unknown keys were reported by `known_keys_also`.
            _ => {
                f.settings.set_toml(r, key, value, errors);
            }
        }
    }
    f
}

/// Parses a TOML config.
///
/// # Errors
/// TOML syntax and type errors (with line and column, as the `toml` crate gives
/// them), and missing or contradictory keys, each naming the key path.
pub fn parse(file: &Path, text: &str) -> Result<Config, Vec<ConfigError>> {
    load(file, text).into_result()
}

/// Parses a TOML config, keeping what loaded beside the errors
/// ([`Config::errors`]), so that later checks can report theirs too.
pub fn load(file: &Path, text: &str) -> Config {
    let mut reader = Reader::new(file, text);
    let Some(root) = reader.parse() else {
        return Config {
            errors: reader.finish(),
            ..Config::default()
        };
    };
    let mut broken_alarms = Vec::new();
    let mut errors = Vec::new();
    let parsed = read_file(&mut reader, root, &mut broken_alarms, &mut errors);
    let origin = |offset: usize, key: String| reader.origin(offset, key);
    let mut config = Config {
        settings: parsed.settings,
        ..Config::default()
    };
    inputs::load(parsed.input, parsed.run, &mut config, &mut errors);
    config.alarm_fds = parsed.alarm_fd;
    if parsed.stall_after.is_some() || parsed.on_stall.is_some() {
        let at = origin(
            parsed.stall_after.as_ref().map_or(0, |s| s.span().start),
            "stall_after".into(),
        );
        inputs::stall(
            parsed.stall_after.map(Spanned::into_inner),
            parsed.on_stall,
            StallOn::Any,
            &at,
            &mut config,
            &mut errors,
        );
    }
    rules::load_expects(&reader, parsed.expect, &mut config, &mut errors);
    alarms::load(
        &reader,
        parsed.alarm,
        &mut config,
        &mut broken_alarms,
        &mut errors,
    );
    rules::load_rules(&reader, parsed.rule, &mut config, &mut errors);
    let mut all = reader.finish();
    all.extend(errors);
    config.errors = all;
    config.broken_alarms = broken_alarms;
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const ISSUE_EXAMPLE: &str = r#"
alarm_freq = 3          # seconds, 0 = off
msg_size = 8192
[alarm.mailme]
action = "cmd:mail -s 'alarm' admin@example.com"
[[rule]]
regex = "HARAKIRI ON WORKER"
alarms = ["mailme"]
[[rule]]
regex = "DEBUG"
alarms = ["mailme"]
negate = true
"#;

    #[test]
    fn reads_the_documented_form() {
        let c = parse(Path::new("a.toml"), ISSUE_EXAMPLE).unwrap();
        assert_eq!(c.alarms[0].plugin, "cmd");
        assert_eq!(c.alarms[0].args, "mail -s 'alarm' admin@example.com");
        assert_eq!(c.rules.len(), 2);
        assert!(c.rules[1].negate);
        assert_eq!(c.rules[1].origin.to_string(), "a.toml:10: rule[2].regex");
        assert_eq!(c.settings.alarm_freq, Some(Duration::from_secs(3)));
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let errs = parse(Path::new("b.toml"), "[[rule]]\nalarms = [\"x\"]\n").unwrap_err();
        assert_eq!(
            errs[0].to_string(),
            "b.toml:1: rule[1]: rule without regex; add regex = \"…\" to this [[rule]]"
        );
        let errs = parse(Path::new("c.toml"), "alarm_freq = 3\nalram_freq = 4\n").unwrap_err();
        assert_eq!(
            errs[0].to_string(),
            "c.toml:2: alram_freq: unknown key `alram_freq`; did you mean `alarm_freq`?"
        );
        let errs = parse(
            Path::new("t.toml"),
            "[alarm.a]\naction = \"log:\"\n[alarm.a]\nqueue_size = 3\n",
        )
        .unwrap_err();
        assert_eq!(
            errs[0].to_string(),
            "t.toml:3: alarm.a: the table [alarm.a] is written twice; merge them into one"
        );
        let errs = parse(Path::new("d.toml"), "[alarm.x]\naction = \"nocolon\"\n").unwrap_err();
        assert!(
            errs[0].to_string().starts_with("d.toml:2: alarm.x.action:"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn reads_inputs_run_and_alarm_fd() {
        let text = r#"
[[input]]
file = ["/var/log/a/*.log", "/var/log/b.log"]
from = "beginning"
[[input]]
socket = "/run/l.sock"
type = "stream"
mode = 0o600
allow_uids = [0, 1000]
[run]
on_exit = ["crash", "pager"]
restart = "on-failure"
restart_delay = "250ms"
[[alarm_fd]]
alarm = "oom"
fd = 3
message = "OUT OF MEMORY"
"#;
        let c = parse(Path::new("i.toml"), text).unwrap();
        let described: Vec<String> = c.inputs.iter().map(|i| i.describe()).collect();
        assert_eq!(
            described,
            [
                "/var/log/a/*.log, /var/log/b.log (from beginning)",
                "/run/l.sock (stream, mode 0600, uids 0,1000)"
            ]
        );
        let names: Vec<&str> = c.run.on_exit.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["crash", "pager"]);
        assert_eq!(c.run.restart_delay, Some(Duration::from_millis(250)));
        assert_eq!((c.alarm_fds[0].fd.as_str(), c.alarm_fds[0].size), ("3", 1));
    }

    #[test]
    fn reads_delivery_and_plugin_keys() {
        let text = r#"
[alarm.hook]
action = "http:http://127.0.0.1:9/"
retry = { attempts = 3, deadline = "30s", delay = "100ms" }
on_failure = "mail"
headers = { "Content-Type" = "application/json", X-Team = "ops" }
body = '{"a": {{ alarm | tojson }}}'
ssl_insecure = true
conn_timeout = 2
mail_to = ["a@x", "b@y"]
[alarm.mail]
action = "log:"
[[rule]]
regex = "x"
alarm = "hook"
"#;
        let c = parse(Path::new("h.toml"), text).unwrap();
        let hook = &c.alarms[0];
        assert_eq!(hook.retry.attempts, Some(3));
        assert_eq!(hook.retry.deadline, Some(Duration::from_secs(30)));
        assert_eq!(hook.retry.delay, Some(Duration::from_millis(100)));
        assert_eq!(hook.retry.max_delay, None);
        let (to, at) = hook.on_failure.as_ref().unwrap();
        assert_eq!(
            (to.as_str(), at.to_string().as_str()),
            ("mail", "h.toml:5: alarm.hook.on_failure")
        );
        assert_eq!(
            hook.headers,
            [
                ("Content-Type".to_owned(), "application/json".to_owned()),
                ("X-Team".to_owned(), "ops".to_owned())
            ]
        );
        let options: Vec<(&str, &str)> = hook
            .options
            .iter()
            .map(|o| (o.key.as_str(), o.value.as_str()))
            .collect();
        assert_eq!(
            options,
            [
                ("body", r#"{"a": {{ alarm | tojson }}}"#),
                ("conn_timeout", "2"),
                ("mail_to", "a@x,b@y"),
                ("ssl_insecure", "true"),
            ]
        );
        assert_eq!(
            hook.options[1].origin.to_string(),
            "h.toml:9: alarm.hook.conn_timeout"
        );
        let errs = parse(
            Path::new("r.toml"),
            "[alarm.a]\naction = \"log:\"\nretry = { attempt = 3 }\nport = { x = 1 }\n",
        )
        .unwrap_err();
        assert_eq!(
            errs[0].to_string(),
            "r.toml:3: alarm.a.retry.attempt: unknown key `attempt`; did you mean `attempts`?"
        );
    }

    use crate::component::toml_doc::fields;

    #[test]
    fn schemas_name_the_fields_of_their_structs() {
        for (schema, fields) in [
            (&RULE, fields::<Rule>()),
            (&EXPECT, fields::<Expect>()),
            (&alarms::RETRY, fields::<alarms::Retry>()),
        ] {
            assert_eq!(schema.names(), fields, "{}", schema.what);
        }
    }

    #[test]
    fn input_errors_name_the_table() {
        let errs = parse(
            Path::new("e.toml"),
            "[[input]]\nfile = \"/a\"\nsocket = \"/b\"\n[[input]]\nsocket = \"/c\"\ntype = \"seq\"\n",
        )
        .unwrap_err();
        assert_eq!(
            errs[0].to_string(),
            "e.toml:1: input[1]: has both `file` and `socket`; one [[input]] table per input"
        );
        assert!(
            errs[1]
                .to_string()
                .starts_with("e.toml:4: input[2]: type \"seq\""),
            "{}",
            errs[1]
        );
        let errs = parse(
            Path::new("m.toml"),
            "[[input]]\nsocket = \"/b\"\nmode = 660\n",
        )
        .unwrap_err();
        assert!(
            errs[0].message().contains("write it in octal"),
            "{}",
            errs[0]
        );
    }
}
