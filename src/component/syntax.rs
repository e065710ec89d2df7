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
/// A message with the expected form when either separator is missing.
pub fn alarm_value(value: &str) -> Result<AlarmValue, String> {
    let value = value.trim();
    let Some((name, rest)) = value.split_once(char::is_whitespace) else {
        return Err(format!(
            "{value:?} is not `NAME PLUGIN:ARGS`; write e.g. `mailme cmd:mail -s alarm admin@example.com`"
        ));
    };
    let rest = rest.trim_start();
    let Some((plugin, args)) = rest.split_once(':') else {
        return Err(format!(
            "{rest:?} has no `:` after the plugin name; write `{name} PLUGIN:ARGS`, e.g. `{name} log:` or `{name} cmd:COMMAND`"
        ));
    };
    if plugin.is_empty() || plugin.contains(char::is_whitespace) {
        return Err(format!(
            "{rest:?}: the plugin name before `:` is missing or has spaces"
        ));
    }
    Ok(AlarmValue {
        name: name.to_owned(),
        plugin: plugin.to_owned(),
        args: args.to_owned(),
    })
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
            assert!(e.contains("longer than 365d") || e.contains("not a period"), "{long}: {e}");
        }
        assert_eq!(
            duration("1e20").unwrap_err(),
            "\"1e20\" is longer than 365d, the longest period logalarm takes; write a period from 0 to 365d"
        );
    }
}
