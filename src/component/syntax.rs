//! uWSGI's value syntax, shared by the INI file and the command line.

use logalarm_plugin_api::LogFormat;
use std::time::Duration;

/// The parts of `NAME PLUGIN:ARGS` (uWSGI's `alarm` option).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlarmValue {
    /// The alarm's name.
    pub name: String,
    /// The plugin.
    pub plugin: String,
    /// The plugin's arguments, as written.
    pub args: String,
}

/// Parses `NAME PLUGIN:ARGS`: split at the first whitespace, then at the first `:`
/// (uWSGI core/alarm.c does the same).
///
/// # Errors
/// A message with the expected form when either separator is missing. It
/// never repeats what follows the name: `ARGS` may hold a password
/// (`xmpp:JID;PASSWORD;…`), and a line missing its `:` cannot be redacted
/// by its plugin (see [`shown`]).
pub fn alarm_value(value: &str) -> Result<AlarmValue, String> {
    let value = value.trim();
    let Some((name, rest)) = value.split_once(char::is_whitespace) else {
        return Err(format!(
            "{:?} is not `NAME PLUGIN:ARGS`; write e.g. `mailme cmd:mail -s alarm admin@example.com`",
            shown(value)
        ));
    };
    let (plugin, args) = action_value(rest.trim_start()).map_err(|e| match e {
        ActionError::NoColon(start) => format!(
            "{start:?} has no `:` after the plugin name; write `{name} PLUGIN:ARGS`, e.g. `{name} log:` or `{name} cmd:COMMAND`"
        ),
        ActionError::BadPlugin(start) => format!(
            "{start:?}: the plugin name before `:` is missing or is not a word; write `{name} PLUGIN:ARGS`, e.g. `{name} log:`"
        ),
    })?;
    Ok(AlarmValue {
        name: name.to_owned(),
        plugin: plugin.to_owned(),
        args: args.to_owned(),
    })
}

/// What is wrong with an action (`PLUGIN:ARGS`), showing only its start
/// ([`shown`]), never its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionError {
    /// No `:` at all.
    NoColon(String),
    /// The plugin name before the `:` is empty or not a word.
    BadPlugin(String),
}

/// Splits an action, `PLUGIN:ARGS`, at its first `:`; the plugin name is a
/// word (letters, digits, `_`, `-`).
///
/// # Errors
/// No `:`, or no word before it; the error shows only the action's start.
pub fn action_value(action: &str) -> Result<(&str, &str), ActionError> {
    let Some((plugin, args)) = action.split_once(':') else {
        return Err(ActionError::NoColon(shown(action)));
    };
    let plugin = plugin.trim();
    if plugin.is_empty() || !plugin.bytes().all(is_word) {
        return Err(ActionError::BadPlugin(shown(action)));
    }
    Ok((plugin, args))
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// The start of an action or alarm definition that errors may show: its
/// first word (letters, digits, `_`, `-`, `.`), then `…` when more follows.
/// What follows may be a secret that no plugin can redact, since the text
/// did not parse: `xmpp jid;PASSWORD;to` missing its `:` shows as `xmpp…`.
pub fn shown(text: &str) -> String {
    let text = text.trim();
    let end = text
        .bytes()
        .position(|b| !(is_word(b) || b == b'.'))
        .unwrap_or(text.len());
    if end == text.len() {
        text.to_owned()
    } else {
        format!("{}…", &text[..end])
    }
}

/// Parses `NAME[,NAME…] REGEX` (uWSGI's `log-alarm` option): names before the
/// first space (or tab), comma-separated; the rest, after that one character,
/// is the regex, its leading spaces kept as uWSGI keeps them (core/alarm.c
/// cuts at the first space: `a  ERR` is the regex ` ERR`).
///
/// # Errors
/// A message when there are no names or no regex.
pub fn rule_value(value: &str) -> Result<(Vec<String>, String), String> {
    let value = value.trim_start();
    let (names, regex) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    let names: Vec<String> = names
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        return Err(format!(
            "{value:?} names no alarm; write `ALARM[,ALARM…] REGEX`"
        ));
    }
    if regex.is_empty() {
        return Err(format!(
            "rule without regex: {value:?}; write `{} REGEX`, e.g. `{} HARAKIRI ON WORKER`",
            names.join(","),
            names.join(",")
        ));
    }
    Ok((names, regex.to_owned()))
}

/// Parses a period: whole seconds as uWSGI writes them (`3`), or a
/// humantime duration (`500ms`, `1m 30s`), from 0 to
/// [`MAX_PERIOD`](logalarm_plugin_api::MAX_PERIOD) (365 days); the plugin
/// API's [`period`](logalarm_plugin_api::period), so that every period of a
/// config has the same syntax and the same bound. A setting that needs a
/// narrower range checks it with [`super::range`].
///
/// # Errors
/// A message with both accepted forms, or with the range when it is longer.
pub fn duration(value: &str) -> Result<Duration, String> {
    logalarm_plugin_api::period(value)
}

/// Parses a size in bytes (a plain integer, as uWSGI writes it).
///
/// # Errors
/// A message when it is not a positive integer.
pub fn size(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{value:?} is not a positive whole number")),
    }
}

/// Parses the format of logalarm's own log lines: `text` or `json`.
///
/// # Errors
/// A message naming both.
pub fn log_format(value: &str) -> Result<LogFormat, String> {
    value.parse()
}

/// Parses a boolean the way uWSGI and TOML users write them.
///
/// # Errors
/// A message listing the accepted words.
pub fn boolean(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(format!("{other:?} is not a boolean; write true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarm_values() {
        let a = alarm_value(
            "mailme cmd:mail -s 'uWSGI alarm' -a 'From: foobar@example.com' admin@example.com",
        )
        .unwrap();
        assert_eq!(a.name, "mailme");
        assert_eq!(a.plugin, "cmd");
        assert_eq!(
            a.args,
            "mail -s 'uWSGI alarm' -a 'From: foobar@example.com' admin@example.com"
        );
        let x = alarm_value("jabber xmpp:foobar@jabber.xxx;pw;admin@jabber.xxx").unwrap();
        assert_eq!(
            (x.plugin.as_str(), x.args.as_str()),
            ("xmpp", "foobar@jabber.xxx;pw;admin@jabber.xxx")
        );
        assert!(alarm_value("lonely").is_err());
        assert!(alarm_value("name plugin-without-colon").is_err());
        // Whatever is missing, no error repeats the arguments (a password).
        for bad in [
            "jabber xmpp foo@jabber.xxx;hunter2;admin@jabber.xxx",
            "jabber xmpp;foo@jabber.xxx;hunter2;admin@jabber.xxx:x",
            "jabberxmpp:foo@jabber.xxx;hunter2;admin@jabber.xxx",
            "hook http//user:hunter2@example.com/",
        ] {
            let e = alarm_value(bad).unwrap_err();
            assert!(!e.contains("hunter2"), "{e}");
        }
        assert_eq!(
            alarm_value("jabber xmpp foo@jabber.xxx;hunter2;admin@jabber.xxx").unwrap_err(),
            "\"xmpp…\" has no `:` after the plugin name; write `jabber PLUGIN:ARGS`, e.g. `jabber log:` or `jabber cmd:COMMAND`"
        );
    }

    #[test]
    fn rule_values() {
        assert_eq!(
            rule_value("cachefull,mailme uWSGI listen queue of socket").unwrap(),
            (
                vec!["cachefull".into(), "mailme".into()],
                "uWSGI listen queue of socket".into()
            )
        );
        assert_eq!(
            rule_value("jabber ^TERRIBLE ALARM").unwrap().1,
            "^TERRIBLE ALARM"
        );
        let e = rule_value("mailme").unwrap_err();
        assert!(e.contains("rule without regex"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(duration("0.25").unwrap(), Duration::from_millis(250));
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(duration("soon").is_err());
        assert!(duration("-1").is_err());
        assert_eq!(duration("365d").unwrap(), logalarm_plugin_api::MAX_PERIOD);
        // Past u64 seconds, infinite, past 365 days: an error, never a panic.
        for long in ["1e20", "inf", "366d", "60years", "18446744073709551616"] {
            let e = duration(long).unwrap_err();
            assert!(
                e.contains("longer than 365d") || e.contains("not a period"),
                "{long}: {e}"
            );
        }
        assert_eq!(
            duration("1e20").unwrap_err(),
            "\"1e20\" is longer than 365d, the longest period logalarm takes; write a period from 0 to 365d"
        );
    }
}
