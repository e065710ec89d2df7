//! uWSGI-compatible INI: the `[uwsgi]` and `[logalarm]` sections.
//!
//! Read as uWSGI reads it: as bytes, with its config-time expansion
//! ([`super::expand`]: magic variables, `$(ENV)`, `@(FILE)`, `%(NAME)`
//! placeholders), `include` and `inherit`, and `strict`.
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
//! options of [`super::options`] (`follow`, `alarm-fd`, `alarm-segfault`, …);
//! `socket` and `socket-*` are read only in `[logalarm]`, since in `[uwsgi]`
//! `socket` is uWSGI's own listening socket.

use super::expand::{self, MagicTable};
use super::syntax;
use super::{Config, ConfigError, Origin};
use ini_core::{Item, Parser};
use std::path::{Path, PathBuf};

/// The sections logalarm reads; others are skipped, as uWSGI skips sections it
/// was not asked for.
const SECTIONS: [&str; 2] = ["uwsgi", "logalarm"];

/// How deep `include` and `inherit` may nest (a file including itself stops here).
const MAX_DEPTH: usize = 16;

/// A byte of the file that is not UTF-8 stands for itself as this private
/// use character plus the byte, until a regex takes it as `\xNN`.
const RAW_BYTE: u32 = 0xF700;

/// The options whose value ends in a regex: bytes that are not UTF-8 may
/// stand in it (matched as those bytes, as uWSGI's PCRE does).
const REGEX_OPTIONS: [&str; 4] = ["log-alarm", "alarm-log", "not-log-alarm", "not-alarm-log"];

/// Parses an INI config.
///
/// # Errors
/// Every malformed line or value, each naming the file, line and key.
pub fn parse(file: &Path, text: &str) -> Result<Config, Vec<ConfigError>> {
    load(file, text.as_bytes()).into_result()
}

/// One option of a read section, before expansion.
struct Entry {
    key: String,
    value: String,
    origin: Origin,
    /// Read in a `[logalarm]` section (not `[uwsgi]`).
    own: bool,
}

/// What the files read so far hold.
#[derive(Default)]
struct Read {
    entries: Vec<Entry>,
    errors: Vec<ConfigError>,
    saw_section: bool,
}

/// The file's bytes as text: UTF-8 as it is, any other byte as
/// [`RAW_BYTE`]` + byte`.
fn decode(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        for &b in chunk.invalid() {
            text.push(
                char::from_u32(RAW_BYTE + u32::from(b)).unwrap_or(char::REPLACEMENT_CHARACTER),
            );
        }
    }
    text
}

/// The raw bytes of `value` written as regex escapes (`\xE9`), or `None`
/// when it has none.
fn raw_bytes_as_escapes(value: &str) -> Option<String> {
    let raw = |c: char| (RAW_BYTE..RAW_BYTE + 0x100).contains(&u32::from(c));
    if !value.chars().any(raw) {
        return None;
    }
    Some(
        value
            .chars()
            .map(|c| {
                if raw(c) {
                    format!("\\x{:02X}", u32::from(c) - RAW_BYTE)
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// Reads one file's sections into `read`: its magic variables substituted,
/// `include` read in place, `inherit` after the file's own options (when
/// uWSGI applies them).
fn read_file(file: &Path, bytes: &[u8], first: Option<&MagicTable>, depth: usize, read: &mut Read) {
    let table = MagicTable::for_file(file, first);
    let first = first.unwrap_or(&table);
    let text = decode(&table.sub(bytes));
    let mut inherited: Vec<(PathBuf, Origin)> = Vec::new();
    let mut in_section = false;
    let mut section = "";
    let mut parser = Parser::new(&text).auto_trim(true);
    loop {
        let line = parser.line() + 1;
        let Some(item) = parser.next() else { break };
        let (key, value) = match item {
            Item::Section(name) => {
                in_section = SECTIONS.contains(&name);
                section = name;
                read.saw_section |= in_section;
                continue;
            }
            Item::Error(text) => {
                read.errors.push(ConfigError::line(
                    file,
                    line,
                    format!("malformed section header {text:?}; write `[uwsgi]` or `[logalarm]`"),
                ));
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
            read.errors.push(ConfigError::at(
                &origin,
                format!("`{key}` has no `=`; write `{key} = VALUE`"),
            ));
            continue;
        };
        match key {
            "include" | "inherit" if depth >= MAX_DEPTH => read.errors.push(ConfigError::at(
                &origin,
                format!("{key} nests deeper than {MAX_DEPTH} files; does a file include itself?"),
            )),
            "include" => include(Path::new(value), &origin, first, depth, read),
            "inherit" => inherited.push((PathBuf::from(value), origin)),
            _ => read.entries.push(Entry {
                key: key.to_owned(),
                value: value.to_owned(),
                origin,
                own: section == "logalarm",
            }),
        }
    }
    for (path, origin) in inherited {
        include(&path, &origin, first, depth, read);
    }
}

/// Reads the INI file `path` (an `include` or `inherit` at `origin`).
fn include(path: &Path, origin: &Origin, first: &MagicTable, depth: usize, read: &mut Read) {
    if path.extension().is_none_or(|e| e != "ini") {
        read.errors.push(ConfigError::at(
            origin,
            format!(
                "{}: only INI files (*.ini) can be included here",
                path.display()
            ),
        ));
        return;
    }
    match super::read_file(path) {
        Ok(bytes) => read_file(path, &bytes, Some(first), depth + 1, read),
        Err(e) => read.errors.push(ConfigError::at(
            origin,
            format!("cannot read {}: {e}", path.display()),
        )),
    }
}

/// Expands `$(VAR)`, `@(FILE)` and `%(NAME)` in every value, in that order,
/// as uWSGI's three passes do ([`expand`]); placeholders are the options as
/// written (the first of a key) and the `set-placeholder`/`set-ph`/`set`
/// definitions, which are taken out.
fn expand_values(read: &mut Read) {
    let getenv = |k: &str| std::env::var(k).ok();
    for e in &mut read.entries {
        let value = expand::pass(&e.value, '$', |k| Ok(expand::env_var(k, getenv)))
            .and_then(|v| expand::pass(&v, '@', expand::at_file));
        match value {
            Ok(v) => e.value = v,
            Err(message) => read.errors.push(ConfigError::at(&e.origin, message)),
        }
    }
    let mut options: Vec<(String, String)> = Vec::new();
    for e in &read.entries {
        let (key, value) = match e.key.as_str() {
            "set-placeholder" | "set-ph" | "set" => match e.value.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => {
                    read.errors.push(ConfigError::at(
                        &e.origin,
                        format!("{} needs NAME=VALUE, as in `{} = name=value`", e.key, e.key),
                    ));
                    continue;
                }
            },
            _ => (e.key.clone(), e.value.clone()),
        };
        if !options.iter().any(|(k, _)| *k == key) {
            options.push((key, value));
        }
    }
    let lookup = |k: &str| options.iter().find(|(o, _)| o == k).map(|(_, v)| v.clone());
    for e in &mut read.entries {
        match expand::pass(&e.value, '%', |k| Ok(expand::placeholder(k, lookup))) {
            Ok(v) => e.value = v,
            Err(message) => read.errors.push(ConfigError::at(&e.origin, message)),
        }
    }
    read.entries
        .retain(|e| !matches!(e.key.as_str(), "set-placeholder" | "set-ph" | "set"));
}

/// Parses an INI config from its bytes, keeping what loaded beside the
/// errors ([`Config::errors`]), so that later checks can report theirs too.
///
/// As uWSGI reads it: magic variables, `$(ENV)`, `@(FILE)` and `%(NAME)`
/// expanded ([`expand`]), `include` and `inherit` read, and bytes that are
/// not UTF-8 kept in regexes (as `\xNN`; elsewhere they are an error).
/// `strict = true` makes an option logalarm does not know an error, not a
/// warning (uWSGI's `strict`).
pub fn load(file: &Path, bytes: &[u8]) -> Config {
    let mut read = Read::default();
    read_file(file, bytes, None, 0, &mut read);
    expand_values(&mut read);
    let mut config = Config::default();
    let mut errors = std::mem::take(&mut read.errors);
    let mut ignored: Vec<String> = Vec::new();
    let strict = read
        .entries
        .iter()
        .filter(|e| e.key == "strict")
        .map(|e| syntax::boolean(&e.value))
        .next_back();
    let strict = match strict {
        Some(Ok(strict)) => strict,
        Some(Err(message)) => {
            errors.push(ConfigError::file(file, format!("strict: {message}")));
            false
        }
        None => false,
    };
    for e in &read.entries {
        if e.key == "strict" {
            continue;
        }
        let normalized = e.key.replace('_', "-");
        let value = match raw_bytes_as_escapes(&e.value) {
            None => e.value.clone(),
            Some(escaped) if REGEX_OPTIONS.contains(&normalized.as_str()) => escaped,
            Some(_) => {
                errors.push(ConfigError::at(
                    &e.origin,
                    "holds bytes that are not UTF-8; logalarm reads this option as UTF-8 \
                     (only a rule's regex may hold other bytes): save the file as UTF-8",
                ));
                continue;
            }
        };
        match apply(&mut config, &e.key, &value, &e.origin, e.own) {
            Ok(true) => {}
            Ok(false) => match unknown(&e.key, e.own, strict) {
                Some(message) => errors.push(ConfigError::at(&e.origin, message)),
                None if !ignored.contains(&e.key) => ignored.push(e.key.clone()),
                None => {}
            },
            Err(message) => errors.push(ConfigError::at(&e.origin, message)),
        }
    }
    if !read.saw_section {
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

/// The options of uWSGI's config logic this reader handles itself.
const LOGIC_OPTIONS: [&str; 6] = [
    "include",
    "inherit",
    "strict",
    "set",
    "set-placeholder",
    "set-ph",
];

/// uWSGI's own options within two edits of one of logalarm's (from uWSGI
/// 2.0's option table): real options in a `[uwsgi]` section, not typos.
const UWSGI_NEAR_MISSES: [&str; 4] = ["alarm-lq", "farm", "logformat", "lq-alarm"];

/// Every option an INI section may hold for logalarm.
fn known_options() -> impl Iterator<Item = &'static str> {
    Config::options()
        .into_iter()
        .flat_map(|o| std::iter::once(o.name).chain(o.aliases.iter().copied()))
        .chain(super::settings::SETTINGS.iter().map(|s| s.ini))
        .chain(LOGIC_OPTIONS)
}

/// The logalarm option `key` (normalised: `-`, not `_`) is most likely a typo
/// of: within two edits (Levenshtein), the closest; `None` for short keys
/// (every 3-letter word is two edits from `set`) and uWSGI's own options.
fn suggestion(key: &str) -> Option<&'static str> {
    if key.len() < 5 || UWSGI_NEAR_MISSES.contains(&key) {
        return None;
    }
    known_options()
        .map(|o| (strsim::levenshtein(key, o), o))
        .filter(|&(d, _)| d <= 2)
        .min()
        .map(|(_, o)| o)
}

/// Applies one `key = value` of a read section; `Ok(false)` when logalarm
/// does not know the option.
fn apply(
    config: &mut Config,
    key: &str,
    value: &str,
    origin: &Origin,
    own_section: bool,
) -> Result<bool, String> {
    let normalized = key.replace('_', "-");
    // In [uwsgi], `socket` is uWSGI's own listening socket, not a log input,
    // and `log-format` uWSGI's request log format.
    let uwsgis_own =
        !own_section && (normalized.starts_with("socket") || normalized == "log-format");
    if uwsgis_own {
        return Ok(false);
    }
    if config.add_option(&normalized, value, origin)? {
        return Ok(true);
    }
    match config.settings.set_option(&normalized, value) {
        Some(set) => set?,
        None => return Ok(false),
    }
    Ok(true)
}

/// What an option logalarm does not know is: an error (in `[logalarm]`,
/// under `strict`, or two edits from one of logalarm's options), else
/// `None`: one of uWSGI's own, ignored with a warning.
fn unknown(key: &str, own_section: bool, strict: bool) -> Option<String> {
    let normalized = key.replace('_', "-");
    // A name logalarm knows that a [uwsgi] section gives to uWSGI (`socket`,
    // `log-format`).
    if !own_section && known_options().any(|o| o == normalized) {
        return None;
    }
    let hint = suggestion(&normalized).map(|s| format!("; did you mean `{s}`?"));
    match (own_section, strict, hint) {
        (true, _, hint) => Some(format!(
            "unknown option `{key}`{}",
            hint.unwrap_or_else(|| {
                "; [logalarm] takes logalarm's options only (uWSGI's own go under [uwsgi])"
                    .to_owned()
            })
        )),
        (false, true, hint) => Some(format!(
            "unknown option `{key}` (strict = true makes it an error){}",
            hint.unwrap_or_default()
        )),
        (false, false, Some(hint)) => Some(format!(
            "unknown option `{key}`{hint} (uWSGI's own options are ignored, but this is a typo's distance from logalarm's)"
        )),
        (false, false, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_option_is_read() {
        let origin = Origin::Ini {
            file: "t.ini".into(),
            line: 1,
            key: "k".into(),
        };
        for key in known_options().filter(|k| !LOGIC_OPTIONS.contains(k)) {
            let mut config = Config::default();
            // A bad value is an error, but never "unknown".
            let known = apply(&mut config, key, "1", &origin, true);
            assert!(!matches!(known, Ok(false)), "{key} is listed but not read");
        }
        assert_eq!(suggestion("log-alamr"), Some("log-alarm"));
        assert_eq!(suggestion("alarm-lq"), None);
        assert_eq!(suggestion("sett"), None);
    }

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
        let text = "[uwsgi]\nsocket = :3031\nfollow = /var/log/*.log\nalarm-segfault = crash\n\
                    [logalarm]\nsocket = /run/l.sock\nsocket-mode = 0600\n";
        let c = parse(Path::new("s.ini"), text).unwrap();
        assert_eq!(c.inputs.len(), 2);
        assert_eq!(c.inputs[0].describe(), "/var/log/*.log (from end)");
        assert_eq!(c.inputs[1].describe(), "/run/l.sock (dgram, mode 0600)");
        assert_eq!(c.run.on_exit[0].0, "crash");
        assert_eq!(
            c.warnings,
            ["s.ini: ignoring options logalarm does not use: socket"]
        );
    }
}
