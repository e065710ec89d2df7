//! The `[alarm.NAME]` tables of a TOML config: the engine's keys (action,
//! delivery, message, the policy stage's shared `key` and `max_keys`), each
//! policy's keys read by its kind ([`crate::policy::component::KINDS`]), and
//! every other key handed to the alarm's plugin (checked by [`crate::plan`]).

use super::super::policy::{KeyDef, PolicyDef};
use super::super::{AlarmDef, Config, ConfigError, Origin, PluginOption, RetryDef, suggest};
use crate::component::de::Period;
use crate::component::range::Count;
use crate::component::syntax;
use crate::component::toml_doc::{Reader, Schema, entries};
use crate::config::settings::QUEUE_SIZE;
use crate::policy::component::{KINDS, Kind, PolicyConfig, TomlKeys};
use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use toml::Spanned;
use toml::de::DeValue;

/// An `[alarm.NAME]` table: the engine's keys, and the rest for the plugin
/// (checked against what the plugin takes when the plan is built).
#[derive(Default)]
pub(super) struct Alarm {
    action: Option<Spanned<String>>,
    timeout: Option<Period>,
    queue_size: Option<usize>,
    concurrency: Option<Spanned<usize>>,
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
                        "concurrency" => alarm.concurrency = Some(map.next_value()?),
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
pub(super) struct Retry {
    attempts: Option<u32>,
    deadline: Option<Period>,
    delay: Option<Period>,
    max_delay: Option<Period>,
}

/// `max_keys`: keys each keyed policy of an alarm holds, 1 to 10 million
/// (each key costs its policy's state, about a hundred bytes and more, so
/// the top is a gigabyte or more per policy).
pub const MAX_KEYS: Count = Count::new(1, 10_000_000, "keys");

/// `retry.attempts`: tries per notification, the first included, 1 to
/// 10,000 (at the default 60 s longest wait, 10,000 tries outlast a week;
/// 0 is refused, with its own message, by the retry policy).
pub const ATTEMPTS: Count = Count::new(1, 10_000, "attempts");

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
        } else if let Err(e) = MAX_KEYS.check(*m.get_ref()) {
            errors.push(ConfigError::at(&at(m.span().start, "max_keys"), e));
        } else {
            def.max_keys = Some(m.into_inner());
        }
    }
    def
}

/// The most deliveries an alarm runs at once (`concurrency`): the top of
/// the global setting's range ([`crate::config::settings::CONCURRENCY`]).
pub const MAX_CONCURRENCY: usize = crate::config::settings::CONCURRENCY.max as usize;

/// The engine's keys of an `[alarm.NAME]` table; any other key goes to the
/// plugin (checked in [`crate::plan`] against what the plugin takes).
pub(super) static ALARM: Schema = Schema {
    what: "every alarm",
    keys: &[
        ("action", None),
        ("timeout", None),
        ("queue_size", None),
        ("concurrency", None),
        ("retry", Some(&RETRY)),
        ("on_failure", None),
        ("headers", None),
        ("key", None),
        ("max_keys", None),
        ("message", None),
        ("env", None),
    ],
};

pub(super) static RETRY: Schema = Schema {
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

/// An `[alarm.NAME]` table as read: its name, its engine keys, its policies.
pub(super) type ReadAlarm = (String, Spanned<Alarm>, Vec<Box<dyn PolicyConfig>>);

/// Reads each `[alarm.NAME]` table on its own; the names of those that fail
/// go to `broken`, the errors of their policies' checks to `errors`.
pub(super) fn read_alarms(
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

/// Adds the alarms read; those that cannot be used go to `broken`.
pub(super) fn load(
    reader: &Reader<'_>,
    alarms: Vec<ReadAlarm>,
    config: &mut Config,
    broken_alarms: &mut Vec<String>,
    errors: &mut Vec<ConfigError>,
) {
    for (name, alarm, policies) in alarms {
        let start = alarm.span().start;
        let alarm = alarm.into_inner();
        let Some(action) = alarm.action else {
            broken_alarms.push(name.clone());
            errors.push(ConfigError::at(
                &reader.origin(start, format!("alarm.{name}")),
                "has no `action`; write e.g. action = \"cmd:mail -s alarm admin@example.com\"",
            ));
            continue;
        };
        let at = reader.origin(action.span().start, format!("alarm.{name}.action"));
        // The error shows only the action's first word: the rest may hold a
        // password that no plugin can redact, since it did not parse.
        let (plugin, args) = match syntax::action_value(action.get_ref()) {
            Ok((plugin, args)) => (plugin.to_owned(), args.to_owned()),
            Err(syntax::ActionError::NoColon(start) | syntax::ActionError::BadPlugin(start)) => {
                broken_alarms.push(name.clone());
                errors.push(ConfigError::at(
                    &at,
                    format!(
                        "{start:?} is not `PLUGIN:ARGS`; write e.g. \"log:\" or \"cmd:COMMAND\""
                    ),
                ));
                continue;
            }
        };
        if let Some(Err(e)) = alarm.queue_size.map(|n| QUEUE_SIZE.check(n)) {
            errors.push(ConfigError::at(
                &reader.origin(start, format!("alarm.{name}.queue_size")),
                e,
            ));
        }
        let concurrency = alarm.concurrency.map(|c| (c.span().start, c.into_inner()));
        if let Some((at, c)) = concurrency
            && !(1..=MAX_CONCURRENCY).contains(&c)
        {
            errors.push(ConfigError::at(
                &reader.origin(at, format!("alarm.{name}.concurrency")),
                format!("must be from 1 to {MAX_CONCURRENCY}; 1 delivers one at a time, in order"),
            ));
        }
        let retry = match alarm.retry {
            None => RetryDef::default(),
            Some(retry) => {
                let start = retry.span().start;
                let retry = retry.into_inner();
                if let Some(Err(e)) = retry.attempts.filter(|&n| n > 0).map(|n| ATTEMPTS.check(n)) {
                    errors.push(ConfigError::at(
                        &reader.origin(start, format!("alarm.{name}.retry.attempts")),
                        e,
                    ));
                }
                RetryDef {
                    attempts: retry.attempts,
                    deadline: retry.deadline.map(|p| p.0),
                    delay: retry.delay.map(|p| p.0),
                    max_delay: retry.max_delay.map(|p| p.0),
                    origin: Some(reader.origin(start, format!("alarm.{name}.retry"))),
                }
            }
        };
        let on_failure = alarm.on_failure.map(|to| {
            let at = reader.origin(to.span().start, format!("alarm.{name}.on_failure"));
            (to.into_inner(), at)
        });
        let policy = policy_def(
            alarm.key,
            alarm.max_keys,
            policies,
            &|offset, key| reader.origin(offset, format!("alarm.{name}.{key}")),
            errors,
        );
        let mut options = Vec::new();
        for (key, value) in alarm.options {
            let at = reader.origin(value.span().start, format!("alarm.{name}.{key}"));
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
            let at = reader.origin(m.span().start, format!("alarm.{name}.message"));
            (m.into_inner(), at)
        });
        config.alarms.push(AlarmDef {
            name,
            plugin,
            args,
            timeout: alarm.timeout.map(|p| p.0),
            queue_size: alarm.queue_size,
            concurrency: concurrency.map(|(_, c)| c),
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
}
