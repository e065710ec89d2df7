//! The config of inputs beyond stdin — followed files, unix sockets — of the
//! wrapped process (`logalarm run`), and of uWSGI's `alarm-fd`; and the INI and
//! command-line options that set them (TOML has its own tables, see
//! [`super::toml`]).

use super::{Config, Origin, syntax};
use std::path::PathBuf;
use std::time::Duration;

/// Default mode of a socket input's file: owner and group may connect.
pub const DEFAULT_SOCKET_MODE: u32 = 0o660;
/// Default number of a wrapped process's last output lines an `on_exit` alarm carries.
pub const DEFAULT_LAST_LINES: usize = 50;

/// Where reading starts in a file that exists when logalarm starts and has no
/// saved read position.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartAt {
    /// At its end, as `tail -F` does: only lines written from now on.
    #[default]
    End,
    /// At its beginning: the whole file is read.
    Beginning,
}

/// The kind of a unix socket input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SocketKind {
    /// `SOCK_DGRAM`: one datagram is one message (syslog's `/dev/log` convention).
    #[default]
    Dgram,
    /// `SOCK_STREAM`: newline-delimited lines, many clients at once.
    Stream,
}

/// One configured input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputDef {
    /// Files to follow, by path or glob.
    File {
        /// Paths and glob patterns (`/var/log/app/*.log`).
        paths: Vec<String>,
        /// Where reading starts in files that exist at start.
        from: StartAt,
        /// Where it was configured.
        origin: Origin,
    },
    /// A unix socket to listen on.
    Socket {
        /// The socket's path.
        path: PathBuf,
        /// Datagram or stream.
        kind: SocketKind,
        /// Permission bits of the socket file (`0660` by default).
        mode: u32,
        /// Stream clients allowed, by user id (`SO_PEERCRED`); empty: everyone
        /// the file mode lets connect.
        allow_uids: Vec<u32>,
        /// Where it was configured.
        origin: Origin,
    },
}

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
}

/// uWSGI's `alarm-fd = NAME FD[:SIZE] MESSAGE`: fire an alarm each time a
/// descriptor or FIFO has `size` bytes to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlarmFdDef {
    /// The alarm to fire.
    pub alarm: String,
    /// A path (a FIFO or a character device) or an inherited descriptor number.
    pub fd: String,
    /// Bytes read per event (uWSGI's `:SIZE`, default 1).
    pub size: usize,
    /// The alarm's message.
    pub message: String,
    /// Where it was configured.
    pub origin: Origin,
}

/// Parses uWSGI's `alarm-fd` value, `NAME FD[:SIZE] MESSAGE`.
///
/// # Errors
/// A message with the expected form.
pub fn alarm_fd_value(value: &str, origin: &Origin) -> Result<AlarmFdDef, String> {
    let form = "write `alarm-fd = NAME PATH[:SIZE] MESSAGE`, e.g. `alarm-fd = oom /run/oom.fifo:8 OUT OF MEMORY`";
    let mut parts = value.trim().splitn(3, char::is_whitespace);
    let (Some(alarm), Some(fd), Some(message)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("{value:?} is not `NAME FD[:SIZE] MESSAGE`; {form}"));
    };
    let (fd, size) = match fd.rsplit_once(':') {
        Some((fd, size)) if size.bytes().all(|b| b.is_ascii_digit()) => {
            let size = syntax::size(size)?;
            if size == 0 {
                return Err(format!(
                    "the read size after `:` must be at least 1; {form}"
                ));
            }
            (fd, size)
        }
        _ => (fd, 1),
    };
    Ok(AlarmFdDef {
        alarm: alarm.to_owned(),
        fd: fd.to_owned(),
        size,
        message: message.trim().to_owned(),
        origin: origin.clone(),
    })
}

/// Parses a socket mode written in octal (`660`, `0660`, `0o660`).
///
/// # Errors
/// Not an octal number, or bits beyond `0777`.
pub fn mode_value(value: &str) -> Result<u32, String> {
    let digits = value.trim().trim_start_matches("0o");
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => Err(format!(
            "{value:?} is not a file mode; write octal permission bits, e.g. \"0660\""
        )),
    }
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

/// Parses where reading starts: `end` or `beginning`.
///
/// # Errors
/// Any other word.
pub fn start_value(value: &str) -> Result<StartAt, String> {
    match value.trim() {
        "end" => Ok(StartAt::End),
        "beginning" | "start" => Ok(StartAt::Beginning),
        other => Err(format!(
            "{other:?} is not a start position; write \"end\" or \"beginning\""
        )),
    }
}

impl Config {
    /// The options [`Config::add_input_option`] takes, for "did you mean"
    /// suggestions.
    pub const INPUT_OPTIONS: [&'static str; 15] = [
        "follow",
        "follow-from",
        "socket",
        "socket-stream",
        "socket-mode",
        "socket-allow-uid",
        "alarm-fd",
        "alarm-segfault",
        "on-exit",
        "on-exit-nonzero",
        "last-lines",
        "restart",
        "restart-delay",
        "restart-max-delay",
        "max-restarts",
    ];

    /// Adds an input, wrapped-process or `alarm-fd` option written in INI or on
    /// the command line — `follow`, `follow-from`, `socket`, `socket-stream`,
    /// `socket-mode`, `socket-allow-uid`, `alarm-fd`,
    /// `alarm-segfault` (alias `on-exit`), `on-exit-nonzero`, `last-lines`,
    /// `restart`, `restart-delay`, `restart-max-delay`, `max-restarts` — and
    /// returns `Ok(true)`; `Ok(false)` for any other option.
    ///
    /// `follow-from`, `socket-mode` and `socket-allow-uid` apply to the inputs
    /// defined before them in the same source.
    ///
    /// # Errors
    /// A malformed value, with the expected form.
    pub fn add_input_option(
        &mut self,
        option: &str,
        value: &str,
        origin: &Origin,
    ) -> Result<bool, String> {
        let run = &mut self.run;
        match option {
            "follow" => self.inputs.push(InputDef::File {
                paths: vec![nonempty(value, "a path or glob")?],
                from: StartAt::End,
                origin: origin.clone(),
            }),
            "follow-from" => {
                let start = start_value(value)?;
                for input in &mut self.inputs {
                    if let InputDef::File { from, .. } = input {
                        *from = start;
                    }
                }
            }
            "socket" | "socket-stream" => self.inputs.push(InputDef::Socket {
                path: PathBuf::from(nonempty(value, "a socket path")?),
                kind: if option == "socket" {
                    SocketKind::Dgram
                } else {
                    SocketKind::Stream
                },
                mode: DEFAULT_SOCKET_MODE,
                allow_uids: Vec::new(),
                origin: origin.clone(),
            }),
            "socket-mode" => {
                let m = mode_value(value)?;
                for input in &mut self.inputs {
                    if let InputDef::Socket { mode, .. } = input {
                        *mode = m;
                    }
                }
            }
            "socket-allow-uid" => {
                let uid: u32 = value.trim().parse().map_err(|_| {
                    format!("{value:?} is not a user id; write a number, e.g. 1000")
                })?;
                for input in &mut self.inputs {
                    if let InputDef::Socket { allow_uids, .. } = input {
                        allow_uids.push(uid);
                    }
                }
            }
            "alarm-fd" => self.alarm_fds.push(alarm_fd_value(value, origin)?),
            "alarm-segfault" | "on-exit" => {
                for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    run.on_exit.push((name.to_owned(), origin.clone()));
                }
            }
            "on-exit-nonzero" => run.on_exit_nonzero = Some(syntax::boolean(value)?),
            "last-lines" => run.last_lines = Some(syntax::size(value)?),
            "restart" => run.restart = Some(restart_value(value)?),
            "restart-delay" => run.restart_delay = Some(syntax::duration(value)?),
            "restart-max-delay" => run.restart_max_delay = Some(syntax::duration(value)?),
            "max-restarts" => {
                run.max_restarts = Some(
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
}

fn nonempty(value: &str, what: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        Err(format!("is empty; write {what}"))
    } else {
        Ok(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> Origin {
        Origin::Cli {
            flag: "--alarm-fd".into(),
            nth: 1,
        }
    }

    #[test]
    fn alarm_fd_syntax() {
        let d = alarm_fd_value("oom /run/oom.fifo:8 OUT OF MEMORY !!!", &at()).unwrap();
        assert_eq!(
            (d.alarm.as_str(), d.fd.as_str(), d.size, d.message.as_str()),
            ("oom", "/run/oom.fifo", 8, "OUT OF MEMORY !!!")
        );
        let d = alarm_fd_value("x 3 ready", &at()).unwrap();
        assert_eq!((d.fd.as_str(), d.size), ("3", 1));
        assert!(alarm_fd_value("x /run/f", &at()).is_err());
        assert!(alarm_fd_value("x /run/f:0 msg", &at()).is_err());
    }

    #[test]
    fn modes_and_policies() {
        assert_eq!(mode_value("0660"), Ok(0o660));
        assert_eq!(mode_value("0o600"), Ok(0o600));
        assert!(mode_value("999").is_err());
        assert_eq!(restart_value("on-failure"), Ok(Restart::OnFailure));
        assert!(restart_value("sometimes").is_err());
    }
}
