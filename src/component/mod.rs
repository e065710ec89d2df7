//! What every component's config is made of: the vocabulary shared by the
//! inputs, the policies, the actions and the config loader.
//!
//! A component (an input kind, a policy, an action plugin) keeps in its own
//! module its typed config (a serde struct for TOML, a parser of its uWSGI
//! option for INI and the command line), its checks, its `build` into the
//! running thing, its internal events and its tests. What they share sits
//! here, below every stage:
//!
//! - [`Origin`]: where an item was written (file and line, key path, flag);
//! - [`ConfigError`]: one typed error — its origin, what is wrong, the fix;
//! - [`de`]: the value shapes of the TOML syntax (a period, one or many);
//! - [`syntax`]: the value shapes of uWSGI's options (`500ms`, `NAME PLUGIN:ARGS`);
//! - [`range`]: the allowed range of numbers and periods, with its error;
//! - [`suggest`]: "did you mean" for a mistyped key;
//! - [`toml_doc`]: reading a TOML document so that every error names its key.
//!
//! The config loader ([`crate::config`]) stands above the components and
//! gathers them; the components never use it.

pub mod de;
pub mod range;
pub mod suggest;
pub mod syntax;
pub mod toml_doc;

use std::fmt;
use std::path::{Path, PathBuf};

/// An option of uWSGI's kind: a key of an INI section, and the same
/// command-line flag (`--NAME VALUE`), repeatable, applied in the order
/// written. Each component lists its own ([`crate::config::options`]
/// gathers them).
#[derive(Debug)]
pub struct OptionDoc {
    /// The option's name (`log-alarm`), as uWSGI names it where uWSGI has it.
    pub name: &'static str,
    /// Other names it is also taken under (`on-exit` for `alarm-segfault`).
    pub aliases: &'static [&'static str],
    /// The value's shape for `--help` (`ALARM[,ALARM…] REGEX`).
    pub value_name: &'static str,
    /// What it does, for `--help`.
    pub help: &'static str,
    /// The value a bare `--NAME` stands for, if it may be given without one.
    pub bare: Option<&'static str>,
}

impl OptionDoc {
    /// An option that always takes a value and has no other name.
    pub const fn new(name: &'static str, value_name: &'static str, help: &'static str) -> Self {
        OptionDoc {
            name,
            aliases: &[],
            value_name,
            help,
            bare: None,
        }
    }

    /// Whether `name` is this option's name or one of its aliases.
    pub fn is(&self, name: &str) -> bool {
        self.name == name || self.aliases.contains(&name)
    }
}

/// Where a config item was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A line of an INI file (1-based).
    Ini {
        /// The file.
        file: PathBuf,
        /// The line, 1-based.
        line: u32,
        /// The key as written (`log-alarm`, `alarm-log`, …).
        key: String,
    },
    /// A key of a TOML file.
    Toml {
        /// The file.
        file: PathBuf,
        /// The line, 1-based, where the item starts.
        line: u32,
        /// The key path, such as `rule[2].regex` (1-based index).
        key: String,
    },
    /// A command-line option.
    Cli {
        /// The option as written, such as `--log-alarm`.
        flag: String,
        /// Which occurrence of that option, 1-based.
        nth: usize,
    },
    /// A command-line argument that is not an option, such as `test REGEX`.
    Arg {
        /// The argument as the usage names it.
        name: String,
    },
    /// A file as a whole, or one of its lines where no key applies (a
    /// syntax error).
    File {
        /// The file.
        file: PathBuf,
        /// The line, 1-based, if known.
        line: Option<u32>,
    },
}

impl Origin {
    /// The file and 1-based line this origin points at, if it has both.
    pub fn file_line(&self) -> Option<(&Path, u32)> {
        match self {
            Origin::Ini { file, line, .. } | Origin::Toml { file, line, .. } => Some((file, *line)),
            Origin::File {
                file,
                line: Some(line),
            } => Some((file, *line)),
            Origin::Cli { .. } | Origin::Arg { .. } | Origin::File { line: None, .. } => None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Ini { file, line, key } => write!(f, "{}:{line}: {key}", file.display()),
            Origin::Toml { file, line, key } => write!(f, "{}:{line}: {key}", file.display()),
            Origin::Cli { flag, nth } => write!(f, "command line: {flag} (occurrence {nth})"),
            Origin::Arg { name } => write!(f, "command line: {name}"),
            Origin::File { file, line: None } => write!(f, "{}", file.display()),
            Origin::File {
                file,
                line: Some(line),
            } => write!(f, "{}:{line}", file.display()),
        }
    }
}

/// A config error: where it was written, what is wrong, and the fix.
///
/// Shown as `ORIGIN: WHAT; FIX`. Messages in this code base are written in
/// that shape (`"has no `action`; write e.g. action = \"log:\""`), so
/// [`ConfigError::at`] splits a message at its first `; ` into what and fix;
/// [`ConfigError::new`] takes them apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Where: a key of a file, a line, a whole file or a command-line
    /// option; `None` for an error that belongs to no place.
    pub origin: Option<Origin>,
    /// What is wrong.
    pub what: String,
    /// How to fix it, where there is one way.
    pub fix: Option<String>,
}

impl ConfigError {
    /// An error at `origin` with what is wrong and its fix.
    pub fn new(origin: &Origin, what: impl Into<String>, fix: impl Into<String>) -> Self {
        ConfigError {
            origin: Some(origin.clone()),
            what: what.into(),
            fix: Some(fix.into()),
        }
    }

    /// An error at `origin`; `message` is `WHAT` or `WHAT; FIX`.
    pub fn at(origin: &Origin, message: impl Into<String>) -> Self {
        let message = message.into();
        let (what, fix) = match message.split_once("; ") {
            Some((what, fix)) => (what.to_owned(), Some(fix.to_owned())),
            None => (message, None),
        };
        ConfigError {
            origin: Some(origin.clone()),
            what,
            fix,
        }
    }

    /// An error about a whole file.
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        let origin = Origin::File {
            file: file.to_owned(),
            line: None,
        };
        ConfigError::at(&origin, message)
    }

    /// An error at a line of a file, where no key applies.
    pub fn line(file: &Path, line: u32, message: impl Into<String>) -> Self {
        let origin = Origin::File {
            file: file.to_owned(),
            line: Some(line),
        };
        ConfigError::at(&origin, message)
    }

    /// The message without its origin: `WHAT` or `WHAT; FIX`.
    pub fn message(&self) -> String {
        match &self.fix {
            Some(fix) => format!("{}; {fix}", self.what),
            None => self.what.clone(),
        }
    }

    /// The line of the config file this error points at, as it is written
    /// there (read again from the file; its trailing `\r` dropped, bytes that
    /// are not UTF-8 replaced), with its number: `(7, "colour = \"red\"")`.
    /// `None` when the error names no file and line (the command line, a
    /// whole file) or the file cannot be read again.
    pub fn source_line(&self) -> Option<(usize, String)> {
        let (file, number) = self.origin.as_ref()?.file_line()?;
        let number = usize::try_from(number).ok().filter(|&n| n > 0)?;
        let bytes = std::fs::read(file).ok()?;
        let line = bytes.split(|&b| b == b'\n').nth(number - 1)?;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        Some((number, String::from_utf8_lossy(line).into_owned()))
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(origin) = &self.origin {
            write!(f, "{origin}: ")?;
        }
        f.write_str(&self.what)?;
        if let Some(fix) = &self.fix {
            write!(f, "; {fix}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_origin_what_and_fix() {
        let at = Origin::Toml {
            file: "a.toml".into(),
            line: 3,
            key: "alarm.x".into(),
        };
        let e = ConfigError::at(&at, "has no `action`; write e.g. action = \"log:\"");
        assert_eq!(e.what, "has no `action`");
        assert_eq!(e.fix.as_deref(), Some("write e.g. action = \"log:\""));
        assert_eq!(
            e.to_string(),
            "a.toml:3: alarm.x: has no `action`; write e.g. action = \"log:\""
        );
        let plain = ConfigError::line(Path::new("b.ini"), 7, "malformed");
        assert_eq!(
            (plain.to_string(), plain.fix),
            ("b.ini:7: malformed".into(), None)
        );
    }
}
