//! The config of the wrapped process (`logalarm run -- CMD`): TOML `[run]`;
//! INI options and flags `alarm-segfault` (alias `on-exit`),
//! `on-exit-nonzero`, `last-lines`, `restart`, `restart-delay`,
//! `restart-max-delay`, `max-restarts`.

use crate::component::de::{OneOrMany, Period};
use crate::component::range::Count;
use crate::component::syntax;
use crate::component::toml_doc::{Reader, Schema};
use crate::component::{ConfigError, OptionDoc, Origin};
use serde::Deserialize;
use std::time::Duration;
use toml::Spanned;
use toml::de::DeValue;

/// Default number of a wrapped process's last output lines an `on_exit` alarm carries.
pub const DEFAULT_LAST_LINES: usize = 50;

/// The keys of `[run]` (besides `stall_after` and `on_stall`, which every
/// input takes).
pub static TABLE: Schema = Schema {
    what: "[run]",
    keys: &[
        ("on_exit", None),
        ("on_exit_nonzero", None),
        ("last_lines", None),
        ("restart", None),
        ("restart_delay", None),
        ("restart_max_delay", None),
        ("max_restarts", None),
    ],
};

/// The INI options and command-line flags of the wrapped process.
pub static OPTIONS: [OptionDoc; 7] = [
    OptionDoc {
        name: "alarm-segfault",
        aliases: &["on-exit"],
        value_name: "ALARM",
        help: "With `run`: fire ALARM when the process dies of a crash signal (uWSGI --alarm-segfault)",
        bare: None,
    },
    OptionDoc {
        name: "on-exit-nonzero",
        aliases: &[],
        value_name: "BOOL",
        help: "With `run`: also fire the on-exit alarms when the process exits non-zero",
        bare: Some("true"),
    },
    OptionDoc::new(
        "last-lines",
        "N",
        "With `run`: lines of the process's last output an on-exit alarm carries [default: 50]",
    ),
    OptionDoc::new(
        "restart",
        "POLICY",
        "With `run`: restart the process: no, on-failure, always [default: no]",
    ),
    OptionDoc::new(
        "restart-delay",
        "DURATION",
        "With `run`: first delay before a restart, doubled after each quick failure [default: 1s]",
    ),
    OptionDoc::new(
        "restart-max-delay",
        "DURATION",
        "With `run`: longest delay between restarts [default: 60s]",
    ),
    OptionDoc::new(
        "max-restarts",
        "N",
        "With `run`: restarts in a row before giving up [default: unlimited]",
    ),
];

/// When a wrapped process is started again after it ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Restart {
    /// Never: logalarm exits with the process's exit code.
    #[default]
    No,
    /// When it was killed by a signal or exited non-zero (supervisord's
    /// `autorestart=unexpected`), but not after logalarm itself forwarded a stop
    /// signal.
    OnFailure,
    /// Whenever it ends, unless logalarm was told to stop.
    Always,
}

/// Parses a restart policy: `no`, `on-failure`, `always`.
///
/// # Errors
/// Any other word.
pub fn restart_value(value: &str) -> Result<Restart, String> {
    match value.trim() {
        "no" | "never" | "false" => Ok(Restart::No),
        "on-failure" | "unexpected" => Ok(Restart::OnFailure),
        "always" | "true" => Ok(Restart::Always),
        other => Err(format!(
            "{other:?} is not a restart policy; write \"no\", \"on-failure\" or \"always\""
        )),
    }
}

/// The wrapped process's settings (`logalarm run -- CMD`): TOML `[run]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunDef {
    /// Alarms fired when the process dies of a crash signal (uWSGI's
    /// `alarm-segfault`, generalised to SEGV, ABRT, BUS, FPE, ILL, KILL, SYS,
    /// TRAP), each with where it was configured.
    pub on_exit: Vec<(String, Origin)>,
    /// Also fire `on_exit` alarms when the process exits with a non-zero code.
    pub on_exit_nonzero: Option<bool>,
    /// Lines of the process's last output an `on_exit` alarm carries.
    pub last_lines: Option<usize>,
    /// Restart policy.
    pub restart: Option<Restart>,
    /// First delay before a restart; doubled after each quick failure.
    pub restart_delay: Option<Duration>,
    /// Longest delay between restarts.
    pub restart_max_delay: Option<Duration>,
    /// Restarts allowed in a row before logalarm gives up; unlimited when `None`.
    pub max_restarts: Option<u32>,
}

impl RunDef {
    /// Takes each value set in `other`, and adds its `on_exit` alarms.
    pub fn override_with(&mut self, other: RunDef) {
        self.on_exit.extend(other.on_exit);
        self.on_exit_nonzero = other.on_exit_nonzero.or(self.on_exit_nonzero);
        self.last_lines = other.last_lines.or(self.last_lines);
        self.restart = other.restart.or(self.restart);
        self.restart_delay = other.restart_delay.or(self.restart_delay);
        self.restart_max_delay = other.restart_max_delay.or(self.restart_max_delay);
        self.max_restarts = other.max_restarts.or(self.max_restarts);
    }

    /// Applies one of [`OPTIONS`]; `Ok(false)` for any other option.
    ///
    /// # Errors
    /// A malformed value, with the form expected.
    pub fn add_option(
        &mut self,
        option: &str,
        value: &str,
        origin: &Origin,
    ) -> Result<bool, String> {
        match option {
            "alarm-segfault" | "on-exit" => {
                for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    self.on_exit.push((name.to_owned(), origin.clone()));
                }
            }
            "on-exit-nonzero" => self.on_exit_nonzero = Some(syntax::boolean(value)?),
            "last-lines" => self.last_lines = Some(LAST_LINES.parse(value)?),
            "restart" => self.restart = Some(restart_value(value)?),
            "restart-delay" => self.restart_delay = Some(syntax::duration(value)?),
            "restart-max-delay" => self.restart_max_delay = Some(syntax::duration(value)?),
            "max-restarts" => {
                self.max_restarts = Some(
                    value
                        .trim()
                        .parse()
                        .map_err(|_| format!("{value:?} is not a count; write e.g. 10"))?,
                );
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// One line for `logalarm check`, when anything is set.
    pub fn describe(&self) -> Option<String> {
        if self.on_exit.is_empty() && self.restart.is_none() {
            return None;
        }
        let names: Vec<&str> = self.on_exit.iter().map(|(n, _)| n.as_str()).collect();
        Some(format!(
            "on-exit -> {} ({}), last {} lines, restart {}",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(",")
            },
            if self.on_exit_nonzero == Some(true) {
                "crash signals and non-zero exits"
            } else {
                "crash signals"
            },
            self.last_lines.unwrap_or(DEFAULT_LAST_LINES),
            match self.restart.unwrap_or_default() {
                Restart::No => "no",
                Restart::OnFailure => "on-failure",
                Restart::Always => "always",
            }
        ))
    }
}

/// `last_lines`: 1 to 100,000 lines of the process's last output kept for
/// its on-exit alarm (each line up to the 16 MiB a line is kept whole; the
/// message is cut to `alarm-msg-size` anyway).
pub const LAST_LINES: Count = Count::new(1, 100_000, "lines");

/// `[run]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    on_exit: Option<OneOrMany>,
    on_exit_nonzero: Option<bool>,
    last_lines: Option<usize>,
    restart: Option<String>,
    restart_delay: Option<Period>,
    restart_max_delay: Option<Period>,
    max_restarts: Option<u32>,
}

/// Reads the `[run]` table (without its `stall_after` and `on_stall`); `None`,
/// with the error given to `reader` or pushed to `errors`, when it is wrong.
pub fn from_toml(
    reader: &mut Reader<'_>,
    value: Spanned<DeValue<'_>>,
    errors: &mut Vec<ConfigError>,
) -> Option<RunDef> {
    let at = reader.origin(value.span().start, "run".into());
    let run: Table = reader.table("run", value, &TABLE)?;
    if let Some(Err(e)) = run.last_lines.map(|n| LAST_LINES.check(n)) {
        errors.push(ConfigError::at(&at, format!("last_lines: {e}")));
        return None;
    }
    let restart = match run.restart.as_deref().map(restart_value).transpose() {
        Ok(restart) => restart,
        Err(e) => {
            errors.push(ConfigError::at(&at, e));
            return None;
        }
    };
    Some(RunDef {
        on_exit: run
            .on_exit
            .map(OneOrMany::into_vec)
            .unwrap_or_default()
            .into_iter()
            .map(|name| (name, at.clone()))
            .collect(),
        on_exit_nonzero: run.on_exit_nonzero,
        last_lines: run.last_lines,
        restart,
        restart_delay: run.restart_delay.map(|p| p.0),
        restart_max_delay: run.restart_max_delay.map(|p| p.0),
        max_restarts: run.max_restarts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_names_the_fields_of_the_table() {
        let fields = crate::component::toml_doc::fields::<Table>();
        assert_eq!(TABLE.names(), fields);
    }

    #[test]
    fn restart_policies() {
        assert_eq!(restart_value("on-failure"), Ok(Restart::OnFailure));
        assert!(restart_value("sometimes").is_err());
    }
}
