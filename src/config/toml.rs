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

use super::policy::{ExpectDef, KeyDef, PolicyDef, StallDef, StallOn};
use super::settings::{SETTINGS, Settings};
use super::suggest;
use super::toml_doc::{Reader, Schema, entries};
use super::{AlarmDef, Config, ConfigError, Origin, PluginOption, RetryDef, RuleDef};
use crate::component::de::{OneOrMany, Period};
use crate::input::child::config::RunDef;
use crate::input::component::{InputConfig, KINDS as INPUT_KINDS, Kind as InputKind};
use crate::input::fd::config::AlarmFdDef;
use crate::policy::component::{KINDS, Kind, PolicyConfig, TomlKeys};
use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use std::path::Path;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    regex: String,
    within: Period,
    alarm: Option<OneOrMany>,
    alarms: Option<OneOrMany>,
}

/// An `[alarm.NAME]` table: the engine's keys, and the rest for the plugin
/// (checked against what the plugin takes when the plan is built).
#[derive(Default)]
struct Alarm {
    action: Option<Spanned<String>>,
    timeout: Option<Period>,
    queue_size: Option<usize>,
    retry: Option<Spanned<Retry>>,
    on_failure: Option<Spanned<String>>,
    headers: Option<IndexMap<String, String>>,
    key: Option<Spanned<String>>,
    max_keys: Option<Spanned<usize>>,
    message: Option<Spanned<String>>,
    env: Option<IndexMap<String, String>>,
    options: Vec<(String, Spanned<toml::Value>)>,
}

impl<'de> Deserialize<'de> for Alarm {
    // By hand rather than derived: `#[serde(flatten)]` for the plugin's keys
    // would lose the spans (line numbers) of every key.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Alarm;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an alarm table, e.g. action = \"cmd:COMMAND\"")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Alarm, A::Error> {
                let mut alarm = Alarm::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "action" => alarm.action = Some(map.next_value()?),
                        "timeout" => alarm.timeout = Some(map.next_value()?),
                        "queue_size" => alarm.queue_size = Some(map.next_value()?),
                        "retry" => alarm.retry = Some(map.next_value()?),
                        "on_failure" => alarm.on_failure = Some(map.next_value()?),
                        "headers" => alarm.headers = Some(map.next_value()?),
                        "key" => alarm.key = Some(map.next_value()?),
                        "max_keys" => alarm.max_keys = Some(map.next_value()?),
                        "message" => alarm.message = Some(map.next_value()?),
                        "env" => alarm.env = Some(map.next_value()?),
                        _ => {
                            let value = map.next_value()?;
                            alarm.options.push((key, value));
                        }
                    }
                }
                Ok(alarm)
            }
        }
        d.deserialize_map(V)
    }
}

/// An alarm's `retry` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Retry {
    attempts: Option<u32>,
    deadline: Option<Period>,
    delay: Option<Period>,
    max_delay: Option<Period>,
}

/// A plugin key's value as the plugin gets it: strings as they are, numbers
/// and booleans in their TOML form, a list of strings joined with `,` (as in
/// uWSGI's `mail_to=a@x,b@y`).
fn option_value(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Array(items) => items
            .iter()
            .map(|item| match item {
                toml::Value::String(s) if !s.contains(',') => Ok(s.as_str()),
                _ => Err("a list here holds strings without `,`".to_owned()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|items| items.join(",")),
        _ => Err("must be a string, a number, a boolean or a list of strings".into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    regex: Option<Spanned<String>>,
    alarms: Option<Vec<String>>,
    alarm: Option<String>,
    #[serde(default)]
    negate: bool,
    resolve: Option<Spanned<String>>,
    multiline: Option<Spanned<toml::Value>>,
}

/// `stall_after` and `on_stall` of an input, `[run]` or the top level: both or neither.
fn stall_def(
    after: Option<Period>,
    on: Option<OneOrMany>,
    at: &Origin,
) -> Result<Option<StallDef>, String> {
    match (after, on.map(OneOrMany::into_vec)) {
        (None, None) => Ok(None),
        (Some(after), Some(alarms)) if !after.0.is_zero() && !alarms.is_empty() => {
            Ok(Some(StallDef {
                after: after.0,
                alarms,
                origin: at.clone(),
            }))
        }
        (Some(_), None) => Err("has `stall_after` but no `on_stall`; name the alarm to fire, e.g. on_stall = \"pager\"".into()),
        (None, Some(_)) => Err("has `on_stall` but no `stall_after`; give the silence allowed, e.g. stall_after = \"5m\"".into()),
        _ => Err("`stall_after` must be above zero and `on_stall` must name an alarm".into()),
    }
}

/// An alarm's shared policy keys (`key`, `max_keys`) with the policies read
/// by their kinds; `at(offset, key)` names a key of the alarm.
fn policy_def(
    key: Option<Spanned<String>>,
    max_keys: Option<Spanned<usize>>,
    list: Vec<Box<dyn PolicyConfig>>,
    at: &dyn Fn(usize, &str) -> Origin,
    errors: &mut Vec<ConfigError>,
) -> PolicyDef {
    let mut def = PolicyDef {
        key: key.map(|k| KeyDef {
            origin: at(k.span().start, "key"),
            template: k.into_inner(),
        }),
        max_keys: None,
        list,
    };
    if let Some(m) = max_keys {
        if *m.get_ref() == 0 {
            errors.push(ConfigError::at(
                &at(m.span().start, "max_keys"),
                "must be at least 1",
            ));
        } else {
            def.max_keys = Some(m.into_inner());
        }
    }
    def
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

static RULE: Schema = Schema {
    what: "a [[rule]]",
    keys: &[
        ("regex", None),
        ("alarms", None),
        ("alarm", None),
        ("negate", None),
        ("resolve", None),
        ("multiline", Some(&crate::record::config::TABLE)),
    ],
};

static EXPECT: Schema = Schema {
    what: "an [[expect]]",
    keys: &[
        ("regex", None),
        ("within", None),
        ("alarm", None),
        ("alarms", None),
    ],
};

/// The engine's keys of an `[alarm.NAME]` table; any other key goes to the
/// plugin (checked in [`crate::plan`] against what the plugin takes).
static ALARM: Schema = Schema {
    what: "every alarm",
    keys: &[
        ("action", None),
        ("timeout", None),
        ("queue_size", None),
        ("retry", Some(&RETRY)),
        ("on_failure", None),
        ("headers", None),
        ("key", None),
        ("max_keys", None),
        ("message", None),
        ("env", None),
    ],
};

static RETRY: Schema = Schema {
    what: "retry",
    keys: &[
        ("attempts", None),
        ("deadline", None),
        ("delay", None),
        ("max_delay", None),
    ],
};

/// The keys every `[alarm.NAME]` table takes, whatever its plugin: the
/// engine's own and the policy kinds' ([`crate::policy::component::KINDS`]).
pub fn alarm_engine_keys() -> Vec<&'static str> {
    let mut keys = ALARM.names();
    keys.extend(KINDS.iter().flat_map(|k| k.keys.iter().copied()));
    keys
}

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

/// An input's `stall_after` and `on_stall`, as read, with where.
type Stall = (Option<Period>, Option<OneOrMany>, Origin);

/// An `[[input]]` table as read: its config and its stall watch.
type ReadInput = (Box<dyn InputConfig>, Stall);

/// Takes `stall_after` and `on_stall` out of a table (every input takes
/// them; its kind's own reader does not).
fn take_stall(r: &mut Reader<'_>, path: &str, value: &mut Spanned<DeValue<'_>>) -> Stall {
    let at = r.origin(value.span().start, path.to_owned());
    let DeValue::Table(t) = value.get_mut() else {
        return (None, None, at);
    };
    let after = t
        .remove("stall_after")
        .and_then(|v| r.value::<Period>(&format!("{path}.stall_after"), v));
    let on = t
        .remove("on_stall")
        .and_then(|v| r.value::<OneOrMany>(&format!("{path}.on_stall"), v));
    (after, on, at)
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Reads each `[[input]]` table through the input kind its keys name
/// ([`crate::input::component::KINDS`]).
fn read_inputs(
    r: &mut Reader<'_>,
    value: Spanned<DeValue<'_>>,
    errors: &mut Vec<ConfigError>,
) -> Vec<ReadInput> {
    if !matches!(value.get_ref(), DeValue::Array(_)) {
        // Not a list: let serde say what it is.
        let _: Option<Vec<toml::Value>> = r.value("input", value);
        return Vec::new();
    }
    let DeValue::Array(items) = value.into_inner() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, mut item) in items.into_iter().enumerate() {
        let path = format!("input[{}]", i + 1);
        if !matches!(item.get_ref(), DeValue::Table(_)) {
            let _: Option<toml::Table> = r.value(&path, item);
            continue;
        }
        let stall = take_stall(r, &path, &mut item);
        let at = stall.2.clone();
        let DeValue::Table(t) = item.get_mut() else {
            continue;
        };
        let named: Vec<&'static InputKind> = INPUT_KINDS
            .iter()
            .copied()
            .filter(|k| t.get(k.key).is_some())
            .collect();
        let kind = match named.as_slice() {
            [kind] => *kind,
            [] => {
                let keys: Vec<String> = INPUT_KINDS
                    .iter()
                    .map(|k| format!("{} = \"PATH\"", k.key))
                    .collect();
                let fix = keys.join(" or ");
                errors.push(ConfigError::new(
                    &at,
                    "names no input",
                    format!("write {fix}"),
                ));
                continue;
            }
            many => {
                let keys: Vec<String> = many.iter().map(|k| format!("`{}`", k.key)).collect();
                errors.push(ConfigError::new(
                    &at,
                    format!("has both {}", and_list(&keys)),
                    "one [[input]] table per input",
                ));
                continue;
            }
        };
        // A key of another kind is named as such, not as a mere unknown key.
        let foreign: Vec<String> = t
            .iter()
            .map(|(k, _)| k.get_ref().to_string())
            .filter(|k| !kind.table.names().contains(&k.as_str()))
            .filter(|k| {
                INPUT_KINDS
                    .iter()
                    .any(|o| o.table.names().contains(&k.as_str()))
            })
            .collect();
        if !foreign.is_empty() {
            let owner = INPUT_KINDS
                .iter()
                .find(|o| o.table.names().contains(&foreign[0].as_str()))
                .map_or("other", |o| o.key);
            let keys: Vec<String> = foreign.iter().map(|k| format!("`{k}`")).collect();
            let verb = if keys.len() == 1 { "belongs" } else { "belong" };
            errors.push(ConfigError::at(
                &at,
                format!(
                    "{} {verb} to {owner} inputs, not to `{}`",
                    and_list(&keys),
                    kind.key
                ),
            ));
            continue;
        }
        if !r.known_keys(&path, t, &kind.table, false) {
            continue;
        }
        if let Some(input) = (kind.from_toml)(r, &path, item, errors) {
            out.push((input, stall));
        }
    }
    out
}

/// Reads the `[run]` table (see [`crate::input::child::config`]).
fn read_run(
    r: &mut Reader<'_>,
    mut value: Spanned<DeValue<'_>>,
    errors: &mut Vec<ConfigError>,
) -> Option<(RunDef, Stall)> {
    let stall = take_stall(r, "run", &mut value);
    let run = crate::input::child::config::from_toml(r, value, errors)?;
    Some((run, stall))
}

/// Reads each `[[alarm_fd]]` table (see [`crate::input::fd::config`]).
fn read_alarm_fds(
    r: &mut Reader<'_>,
    value: Spanned<DeValue<'_>>,
    errors: &mut Vec<ConfigError>,
) -> Vec<AlarmFdDef> {
    if !matches!(value.get_ref(), DeValue::Array(_)) {
        let _: Option<Vec<toml::Value>> = r.value("alarm_fd", value);
        return Vec::new();
    }
    let DeValue::Array(items) = value.into_inner() else {
        return Vec::new();
    };
    items
        .into_iter()
        .enumerate()
        .filter_map(|(i, item)| {
            crate::input::fd::config::from_toml(r, &format!("alarm_fd[{}]", i + 1), item, errors)
        })
        .collect()
}

/// An `[alarm.NAME]` table as read: its name, its engine keys, its policies.
type ReadAlarm = (String, Spanned<Alarm>, Vec<Box<dyn PolicyConfig>>);

/// Reads each `[alarm.NAME]` table on its own; the names of those that fail
/// go to `broken`, the errors of their policies' checks to `errors`.
fn read_alarms(
    r: &mut Reader<'_>,
    value: Spanned<DeValue<'_>>,
    broken: &mut Vec<String>,
    errors: &mut Vec<ConfigError>,
) -> Vec<ReadAlarm> {
    if !matches!(value.get_ref(), DeValue::Table(_)) {
        // Not a table: let serde say what it is.
        let _: Option<toml::Table> = r.value("alarm", value);
        return Vec::new();
    }
    let DeValue::Table(alarms) = value.into_inner() else {
        return Vec::new();
    };
    let engine = alarm_engine_keys();
    let mut out = Vec::new();
    for (name, mut value) in entries(alarms) {
        let path = format!("alarm.{name}");
        let mut clean = true;
        let mut policies: Vec<(&'static Kind, TomlKeys<'_>)> = Vec::new();
        if let DeValue::Table(t) = value.get_mut() {
            clean = r.known_keys(&path, t, &ALARM, true);
            // Without `action`, a key that looks like it is the typo: named
            // here, rather than "has no `action`" and a plugin's "unknown key".
            if !t.iter().any(|(k, _)| k.get_ref() == "action") {
                for (k, _) in t.iter() {
                    let key: &str = k.get_ref();
                    if !engine.contains(&key) && suggest::closest(key, &engine) == Some("action") {
                        r.unknown(
                            k.span().start,
                            format!("{path}.{key}"),
                            key,
                            "did you mean `action`?",
                        );
                        clean = false;
                    }
                }
            }
            // Each policy's keys go to its kind, checked against its table.
            for kind in KINDS {
                for &key in kind.keys {
                    let Some(mut v) = t.remove(key) else { continue };
                    if let DeValue::Table(sub) = v.get_mut() {
                        clean &= r.known_keys(&format!("{path}.{key}"), sub, &kind.table, false);
                    }
                    match policies.iter_mut().find(|(k, _)| std::ptr::eq(*k, *kind)) {
                        Some((_, keys)) => keys.push((key, v)),
                        None => policies.push((kind, vec![(key, v)])),
                    }
                }
            }
        }
        let alarm = clean
            .then(|| r.value::<Spanned<Alarm>>(&path, value))
            .flatten();
        // A policy that fails is left out, its error reported; the alarm
        // still loads, so that rules naming it are checked too.
        let list = if clean {
            policies
                .into_iter()
                .filter_map(|(kind, keys)| (kind.from_toml)(r, &path, keys, errors))
                .collect()
        } else {
            Vec::new()
        };
        match alarm {
            Some(alarm) => out.push((name.into_owned(), alarm, list)),
            None => broken.push(name.into_owned()),
        }
    }
    out
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
    for (input, (after, on, at)) in parsed.input {
        match stall_def(after, on, &at) {
            Ok(Some(stall)) => config
                .stalls
                .push((StallOn::Input(config.inputs.len()), stall)),
            Ok(None) => {}
            Err(message) => errors.push(ConfigError::at(&at, message)),
        }
        config.inputs.push(input);
    }
    if let Some((run, (after, on, at))) = parsed.run {
        match stall_def(after, on, &at) {
            Ok(Some(stall)) => config.stalls.push((StallOn::Child, stall)),
            Ok(None) => {}
            Err(message) => errors.push(ConfigError::at(&at, message)),
        }
        config.run = run;
    }
    config.alarm_fds = parsed.alarm_fd;
    if parsed.stall_after.is_some() || parsed.on_stall.is_some() {
        let at = origin(
            parsed.stall_after.as_ref().map_or(0, |s| s.span().start),
            "stall_after".into(),
        );
        match stall_def(
            parsed.stall_after.map(Spanned::into_inner),
            parsed.on_stall,
            &at,
        ) {
            Ok(Some(stall)) => config.stalls.push((StallOn::Any, stall)),
            Ok(None) => {}
            Err(message) => errors.push(ConfigError::at(&at, message)),
        }
    }
    for (n, expect) in parsed.expect {
        let at = origin(expect.span().start, format!("expect[{n}]"));
        let expect = expect.into_inner();
        let alarms = match (expect.alarm, expect.alarms) {
            (Some(a), None) | (None, Some(a)) => a.into_vec(),
            _ => Vec::new(),
        };
        if alarms.is_empty() {
            errors.push(ConfigError::at(
                &at,
                "names no alarm (or both `alarm` and `alarms`); write alarm = \"NAME\"",
            ));
            continue;
        }
        if expect.within.0.is_zero() || expect.regex.is_empty() {
            errors.push(ConfigError::at(
                &at,
                "needs a regex and a period above zero, e.g. regex = \"heartbeat ok\", within = \"5m\"",
            ));
            continue;
        }
        config.expects.push(ExpectDef {
            regex: expect.regex,
            within: expect.within.0,
            alarms,
            origin: at,
        });
    }
    for (name, alarm, policies) in parsed.alarm {
        let start = alarm.span().start;
        let alarm = alarm.into_inner();
        let Some(action) = alarm.action else {
            broken_alarms.push(name.clone());
            errors.push(ConfigError::at(
                &origin(start, format!("alarm.{name}")),
                "has no `action`; write e.g. action = \"cmd:mail -s alarm admin@example.com\"",
            ));
            continue;
        };
        let at = origin(action.span().start, format!("alarm.{name}.action"));
        let (plugin, args) = match action.get_ref().split_once(':') {
            Some((plugin, args)) if !plugin.trim().is_empty() => {
                (plugin.trim().to_owned(), args.to_owned())
            }
            _ => {
                broken_alarms.push(name.clone());
                errors.push(ConfigError::at(
                    &at,
                    format!(
                        "{:?} is not `PLUGIN:ARGS`; write e.g. \"log:\" or \"cmd:COMMAND\"",
                        action.get_ref()
                    ),
                ));
                continue;
            }
        };
        if alarm.queue_size == Some(0) {
            errors.push(ConfigError::at(
                &origin(start, format!("alarm.{name}.queue_size")),
                "must be at least 1",
            ));
        }
        let retry = match alarm.retry {
            None => RetryDef::default(),
            Some(retry) => {
                let start = retry.span().start;
                let retry = retry.into_inner();
                RetryDef {
                    attempts: retry.attempts,
                    deadline: retry.deadline.map(|p| p.0),
                    delay: retry.delay.map(|p| p.0),
                    max_delay: retry.max_delay.map(|p| p.0),
                    origin: Some(origin(start, format!("alarm.{name}.retry"))),
                }
            }
        };
        let on_failure = alarm.on_failure.map(|to| {
            let at = origin(to.span().start, format!("alarm.{name}.on_failure"));
            (to.into_inner(), at)
        });
        let policy = policy_def(
            alarm.key,
            alarm.max_keys,
            policies,
            &|offset, key| origin(offset, format!("alarm.{name}.{key}")),
            &mut errors,
        );
        let mut options = Vec::new();
        for (key, value) in alarm.options {
            let at = origin(value.span().start, format!("alarm.{name}.{key}"));
            match option_value(value.get_ref()) {
                Ok(value) => options.push(PluginOption {
                    key,
                    value,
                    origin: at,
                }),
                Err(message) => errors.push(ConfigError::at(&at, message)),
            }
        }
        let message = alarm.message.map(|m| {
            let at = origin(m.span().start, format!("alarm.{name}.message"));
            (m.into_inner(), at)
        });
        config.alarms.push(AlarmDef {
            name,
            plugin,
            args,
            timeout: alarm.timeout.map(|p| p.0),
            queue_size: alarm.queue_size,
            retry,
            on_failure,
            options,
            headers: alarm
                .headers
                .map(|h| h.into_iter().collect())
                .unwrap_or_default(),
            policy,
            message,
            env: alarm
                .env
                .map(|e| e.into_iter().collect())
                .unwrap_or_default(),
            origin: at,
        });
    }
    for (n, rule) in parsed.rule {
        let start = rule.span().start;
        let rule = rule.into_inner();
        let Some(regex) = rule.regex.filter(|r| !r.get_ref().is_empty()) else {
            errors.push(ConfigError::at(
                &origin(start, format!("rule[{n}]")),
                "rule without regex; add regex = \"…\" to this [[rule]]",
            ));
            continue;
        };
        let alarms = match (rule.alarms, rule.alarm) {
            (Some(list), None) if !list.is_empty() => list,
            (None, Some(one)) => vec![one],
            (Some(_), Some(_)) => {
                errors.push(ConfigError::at(
                    &origin(start, format!("rule[{n}]")),
                    "has both `alarm` and `alarms`; keep one",
                ));
                continue;
            }
            _ => {
                errors.push(ConfigError::at(
                    &origin(start, format!("rule[{n}]")),
                    "names no alarm; add alarms = [\"NAME\"]",
                ));
                continue;
            }
        };
        let multiline = match rule.multiline {
            None => None,
            Some(value) => {
                let at = origin(value.span().start, format!("rule[{n}].multiline"));
                match crate::record::config::from_toml(value.into_inner(), at.clone()) {
                    Ok(def) => Some(def),
                    Err(message) => {
                        errors.push(ConfigError::at(&at, message));
                        continue;
                    }
                }
            }
        };
        let at = origin(regex.span().start, format!("rule[{n}].regex"));
        let resolve = rule.resolve.map(|r| {
            let at = origin(r.span().start, format!("rule[{n}].resolve"));
            (r.into_inner(), at)
        });
        if rule.negate && resolve.is_some() {
            errors.push(ConfigError::at(
                &at,
                "a not-log-alarm rule fires nothing, so it has nothing to resolve; remove `resolve` or `negate`",
            ));
        }
        config.rules.push(RuleDef {
            regex: regex.into_inner(),
            alarms,
            negate: rule.negate,
            resolve,
            multiline,
            origin: at,
        });
    }
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
            (&RETRY, fields::<Retry>()),
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
