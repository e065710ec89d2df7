//! uWSGI-compatible INI: the `[uwsgi]` and `[logalarm]` sections.
//!
//! As in uWSGI, keys may repeat and are read in file order; a comment is a line
//! starting with `;` or `#` (there are no inline comments, so a regex may hold
//! either character); keys may be written with `-` or `_`. Options that
//! logalarm does not use (`socket`, `module`, …) are ignored with one warning
//! naming them, so a real uwsgi.ini loads as it is.
//!
//! Keys read: `alarm`, `log-alarm` (alias `alarm-log`), `not-log-alarm` (alias
//! `not-alarm-log`), `alarm-freq`, `alarm-msg-size`, and, for logalarm's own
//! settings, `passthrough`, `queue-size`, `drain-timeout`, `poll-interval`,
//! `rotate-wait`, `flush-timeout`, `log-format`; alarm policies take `alarm-threshold`,
//! `alarm-cooldown`, `alarm-digest`, `alarm-escalate`, `alarm-key` and
//! `alarm-expect` ([`super::policy`]). Inputs and the wrapped process take the
//! options of [`super::inputs`] (`follow`, `alarm-fd`, `alarm-segfault`, …);
//! `socket` and `socket-*` are read only in `[logalarm]`, since in `[uwsgi]`
//! `socket` is uWSGI's own listening socket.

use super::syntax;
use super::{Config, ConfigError, Origin};
use ini_core::{Item, Parser};
use std::path::Path;

/// The sections logalarm reads; others are skipped, as uWSGI skips sections it
/// was not asked for.
const SECTIONS: [&str; 2] = ["uwsgi", "logalarm"];

/// Parses an INI config.
///
/// # Errors
/// Every malformed line or value, each naming the file, line and key.
pub fn parse(file: &Path, text: &str) -> Result<Config, Vec<ConfigError>> {
    load(file, text).into_result()
}

/// Parses an INI config, keeping what loaded beside the errors
/// ([`Config::errors`]), so that later checks can report theirs too.
pub fn load(file: &Path, text: &str) -> Config {
    let mut config = Config::default();
    let mut errors = Vec::new();
    let mut ignored: Vec<String> = Vec::new();
    let mut in_section = false;
    let mut section = "";
    let mut saw_section = false;
    let mut parser = Parser::new(text).auto_trim(true);
    loop {
        let line = parser.line() + 1;
        let Some(item) = parser.next() else { break };
        let (key, value) = match item {
            Item::Section(name) => {
                in_section = SECTIONS.contains(&name);
                section = name;
                saw_section |= in_section;
                continue;
            }
            Item::Error(text) => {
                errors.push(ConfigError {
                    at: format!("{}:{line}", file.display()),
                    message: format!(
                        "malformed section header {text:?}; write `[uwsgi]` or `[logalarm]`"
                    ),
                });
                continue;
            }
            Item::Property(key, value) => (key, value),
            _ => continue,
        };
        if !in_section || key.starts_with('#') || key.starts_with(';') {
            continue;
        }
        let origin = Origin::Ini {
            file: file.to_owned(),
            line,
            key: key.to_owned(),
        };
        let Some(value) = value else {
            errors.push(ConfigError::at(
                &origin,
                format!("`{key}` has no `=`; write `{key} = VALUE`"),
            ));
            continue;
        };
        let own = section == "logalarm";
        if let Err(message) = apply(&mut config, key, value, &origin, own, &mut ignored) {
            errors.push(ConfigError::at(&origin, message));
        }
    }
    if !saw_section {
        errors.push(ConfigError::file(
            file,
            "has no [uwsgi] or [logalarm] section; put the alarm options under one",
        ));
    }
    if !ignored.is_empty() {
        config.warnings.push(format!(
            "{}: ignoring options logalarm does not use: {}",
            file.display(),
            ignored.join(", ")
        ));
    }
    config.errors = errors;
    config
}

/// Applies one `key = value` of a read section.
fn apply(
    config: &mut Config,
    key: &str,
    value: &str,
    origin: &Origin,
    own_section: bool,
    ignored: &mut Vec<String>,
) -> Result<(), String> {
    let normalized = key.replace('_', "-");
    if config.add_uwsgi_option(&normalized, value, origin)? {
        return Ok(());
    }
    // In [uwsgi], `socket` is uWSGI's own listening socket, not a log input.
    let uwsgis_own = !own_section && normalized.starts_with("socket");
    if !uwsgis_own && config.add_input_option(&normalized, value, origin)? {
        return Ok(());
    }
    if config.add_policy_option(&normalized, value, origin)? {
        return Ok(());
    }
    let settings = &mut config.settings;
    match normalized.as_str() {
        "alarm-freq" => settings.alarm_freq = Some(syntax::duration(value)?),
        "alarm-msg-size" => settings.msg_size = Some(syntax::size(value)?),
        "passthrough" => settings.passthrough = Some(syntax::boolean(value)?),
        "queue-size" => settings.queue_size = Some(syntax::size(value)?),
        "drain-timeout" => settings.drain_timeout = Some(syntax::duration(value)?),
        "poll-interval" => settings.poll_interval = Some(syntax::duration(value)?),
        "rotate-wait" => settings.rotate_wait = Some(syntax::duration(value)?),
        "flush-timeout" => settings.flush_timeout = Some(syntax::duration(value)?),
        "log-format" => settings.log_format = Some(syntax::log_format(value)?),
        _ => {
            if !ignored.iter().any(|k| k == key) {
                ignored.push(key.to_owned());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_uwsgi_docs_example_in_order() {
        let text = "[uwsgi]\n\
            socket = :3031\n\
            ; a comment\n\
            # another; with = sign\n\
            alarm = mailme cmd:mail -s 'uWSGI alarm' -a 'From: foobar@example.com' admin@example.com\n\
            log-alarm = mailme HARAKIRI ON WORKER\n\
            not-log-alarm = mailme DEBUG\n\
            alarm-log = mailme a;b#c\n\
            alarm-freq = 0\n\
            [other]\n\
            log-alarm = nope x\n";
        let c = parse(Path::new("u.ini"), text).unwrap();
        assert_eq!(c.alarms.len(), 1);
        let rules: Vec<_> = c
            .rules
            .iter()
            .map(|r| (r.regex.as_str(), r.negate))
            .collect();
        assert_eq!(
            rules,
            [
                ("HARAKIRI ON WORKER", false),
                ("DEBUG", true),
                ("a;b#c", false)
            ]
        );
        assert_eq!(c.rules[0].origin.to_string(), "u.ini:6: log-alarm");
        assert_eq!(c.settings.alarm_freq, Some(std::time::Duration::ZERO));
        assert_eq!(
            c.warnings,
            ["u.ini: ignoring options logalarm does not use: socket"]
        );
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let errs = parse(
            Path::new("bad.ini"),
            "[uwsgi]\n\nlog-alarm = mailme\nalarm-freq = often\n",
        )
        .unwrap_err();
        assert_eq!(errs.len(), 2);
        assert!(
            errs[0]
                .to_string()
                .starts_with("bad.ini:3: log-alarm: rule without regex"),
            "{}",
            errs[0]
        );
        assert!(
            errs[1].to_string().starts_with("bad.ini:4: alarm-freq:"),
            "{}",
            errs[1]
        );
        let errs = parse(Path::new("none.ini"), "[app]\nx = 1\n").unwrap_err();
        assert!(
            errs[0]
                .to_string()
                .contains("no [uwsgi] or [logalarm] section")
        );
    }

    #[test]
    fn socket_is_uwsgis_own_in_the_uwsgi_section() {
        use crate::config::inputs::InputDef;
        let text = "[uwsgi]\nsocket = :3031\nfollow = /var/log/*.log\nalarm-segfault = crash\n\
                    [logalarm]\nsocket = /run/l.sock\nsocket-mode = 0600\n";
        let c = parse(Path::new("s.ini"), text).unwrap();
        assert_eq!(c.inputs.len(), 2);
        assert!(
            matches!(&c.inputs[0], InputDef::File { paths, .. } if paths == &["/var/log/*.log"])
        );
        assert!(matches!(&c.inputs[1], InputDef::Socket { mode: 0o600, .. }));
        assert_eq!(c.run.on_exit[0].0, "crash");
        assert_eq!(
            c.warnings,
            ["s.ini: ignoring options logalarm does not use: socket"]
        );
    }
}
