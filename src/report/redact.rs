//! Config text as errors may show it, secrets hidden as `logalarm check`
//! hides them.
//!
//! Under each config error the line it points at is printed as written in
//! the file (see [`crate::component::ConfigError::source_line`]). An
//! alarm's line holds its action, and an action may hold a password
//! (`xmpp:JID;PASSWORD;TO`, `http:https://user:PASSWORD@host/`,
//! `auth_pass=PASSWORD`): the line is shown with the action its plugin's
//! redaction makes ([`logalarm_plugin_api::Plugin::redact`], `auth_pass=***`),
//! and an action that does not parse, or names a plugin this build lacks,
//! shows only its first word. A TOML key that holds a password
//! (`auth_pass`, `password`) shows `***`, unless it names where the secret
//! is (`env:VAR`, `file:PATH`).
//!
//! ```
//! use logalarm::report::redact::{action, source_line};
//! assert_eq!(action("xmpp:a@b;hunter2;c@d"), "xmpp:a@b;***;c@d");
//! assert_eq!(action("xmpp a@b;hunter2;c@d"), "xmpp…");
//! assert_eq!(
//!     source_line("alarm = jabber xmpp:a@b;hunter2;c@d"),
//!     "alarm = jabber xmpp:a@b;***;c@d"
//! );
//! assert_eq!(source_line(r#"auth_pass = "hunter2""#), r#"auth_pass = "***""#);
//! assert_eq!(source_line("log-alarm = jabber ERROR"), "log-alarm = jabber ERROR");
//! ```

use crate::component::syntax;
use crate::dispatch::registry;

/// The TOML keys whose value is a password.
const SECRET_KEYS: [&str; 2] = ["auth_pass", "password"];

/// An action (`PLUGIN:ARGS`) as `check` shows it: `PLUGIN:` and the
/// plugin's redaction of `ARGS`; `PLUGIN:…` for a plugin this build lacks;
/// only the first word for text that is no action.
pub fn action(text: &str) -> String {
    match syntax::action_value(text) {
        Ok((plugin, args)) => match registry::plugins().iter().find(|p| p.name() == plugin) {
            Some(p) => format!("{plugin}:{}", p.redact(args)),
            None if args.is_empty() => format!("{plugin}:"),
            None => format!("{plugin}:…"),
        },
        Err(_) => syntax::shown(text),
    }
}

/// A config file's line as an error may show it: an INI or command-line
/// `alarm = NAME PLUGIN:ARGS` with its action redacted ([`action`]), a TOML
/// `action = "…"` likewise, a TOML password key as `***`. Any other line,
/// and one whose redaction changes nothing, is returned as it is.
pub fn source_line(line: &str) -> String {
    if let Some(shown) = ini_alarm(line) {
        return shown;
    }
    let mut out = line.to_owned();
    if let Some((start, end)) = toml_string(&out, "action") {
        let shown = action(&out[start..end]);
        if shown != out[start..end] {
            out.replace_range(start..end, &shown);
        }
    }
    for key in SECRET_KEYS {
        if let Some((start, end)) = toml_string(&out, key) {
            let value = &out[start..end];
            if !value.starts_with("env:") && !value.starts_with("file:") && !value.is_empty() {
                out.replace_range(start..end, "***");
            }
        }
    }
    out
}

/// `alarm = NAME PLUGIN:ARGS` (uWSGI INI) with its action redacted; `None`
/// for another line, or when redaction changes nothing.
fn ini_alarm(line: &str) -> Option<String> {
    let (key, value) = line.split_once('=')?;
    if key.trim() != "alarm" {
        return None;
    }
    let value = value.trim_start();
    let (name, rest) = value.split_once(char::is_whitespace)?;
    let rest = rest.trim_start();
    let shown = action(rest);
    if shown == rest {
        return None;
    }
    let head = &line[..line.len() - value.len()];
    Some(format!("{head}{name} {shown}"))
}

/// Where the string value of TOML key `key` lies in `line` (`key = "…"` or
/// `key = '…'`, also inside an inline table): the range between its quotes.
fn toml_string(line: &str, key: &str) -> Option<(usize, usize)> {
    let bytes = line.as_bytes();
    let mut from = 0;
    while let Some(found) = line[from..].find(key) {
        let at = from + found;
        from = at + key.len();
        // A whole key: not the tail of a longer one (`my_action`).
        let before = at.checked_sub(1).map(|i| bytes[i]);
        if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            continue;
        }
        let rest = line[from..].trim_start();
        let Some(rest) = rest.strip_prefix('=') else {
            continue;
        };
        let rest = rest.trim_start();
        let quote = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => q,
            _ => continue,
        };
        let start = line.len() - rest.len() + 1;
        let mut escaped = false;
        for (i, c) in line[start..].char_indices() {
            match c {
                '\\' if quote == '"' && !escaped => escaped = true,
                c if c == quote && !escaped => return Some((start, start + i)),
                _ => escaped = false,
            }
        }
        // No closing quote on this line: the rest of it.
        return Some((start, line.len()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarm_lines_show_their_action_as_check_does() {
        assert_eq!(
            source_line("alarm = hook http:https://u:pw123@h/;auth_pass=s3cret"),
            "alarm = hook http:https://u:***@h/;auth_pass=***"
        );
        // Missing its `:`: only the first word.
        assert_eq!(
            source_line("alarm = jabber xmpp foo@x;hunter2;to@x"),
            "alarm = jabber xmpp…"
        );
        assert_eq!(
            source_line("alarm = a nosuch:secret stuff"),
            "alarm = a nosuch:…"
        );
        assert_eq!(
            source_line("alarm = a cmd:echo hi"),
            "alarm = a cmd:echo hi"
        );
        assert_eq!(
            source_line(r#"action = "xmpp:a@b;hunter2;c@d""#),
            r#"action = "xmpp:a@b;***;c@d""#
        );
        assert_eq!(
            source_line(r#"hook = { action = "xmpp a@b;hunter2", timeout = 3 }"#),
            r#"hook = { action = "xmpp…", timeout = 3 }"#
        );
        assert_eq!(
            source_line(r#"auth_pass = "env:HOOK_PASS""#),
            r#"auth_pass = "env:HOOK_PASS""#
        );
        assert_eq!(source_line("password='x y'"), "password='***'");
        assert_eq!(source_line(r#"my_action = "a b""#), r#"my_action = "a b""#);
    }
}
