//! How one run of a wrapped process ended: the exit code logalarm passes on,
//! whether it counts as a crash, and the `on_exit` alarm's message.
//!
//! Exit codes follow the shells' convention (bash(1) "EXIT STATUS"): the
//! process's own code, 128+N when signal N killed it, 127 when the command was
//! not found and 126 when it could not be executed.

use nix::sys::signal::Signal;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// Signals that mean the process crashed or was killed from outside (uWSGI's
/// `alarm-segfault` reports SIGSEGV; logalarm widens it to every signal whose
/// default action dumps core, and SIGKILL, the OOM killer's).
pub const CRASH_SIGNALS: [Signal; 8] = [
    Signal::SIGSEGV,
    Signal::SIGABRT,
    Signal::SIGBUS,
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGKILL,
    Signal::SIGSYS,
    Signal::SIGTRAP,
];

/// How one run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// It exited with this code.
    Exited(u8),
    /// Signal `signal` (its number) killed it.
    Killed {
        /// The signal's number.
        signal: i32,
        /// The kernel wrote a core dump.
        core_dumped: bool,
    },
    /// It could not be started, or not waited for.
    Failed {
        /// The exit code logalarm reports for it (127, 126, 1).
        code: u8,
        /// What went wrong, for the log and the alarm.
        error: String,
    },
}

impl End {
    /// How a process that ran ended, from its wait status.
    pub fn from_status(status: ExitStatus) -> End {
        match (status.code(), status.signal()) {
            (Some(code), _) => End::Exited(u8::try_from(code).unwrap_or(u8::MAX)),
            (None, Some(signal)) => End::Killed {
                signal,
                core_dumped: status.core_dumped(),
            },
            // Stopped or continued statuses are not reported by wait(2) without
            // WUNTRACED/WCONTINUED; treat anything else as a plain failure.
            (None, None) => End::Failed {
                code: 1,
                error: format!("ended with an unknown wait status ({status})"),
            },
        }
    }

    /// A command that could not be started: 127 when it does not exist, 126
    /// when it exists but cannot be executed, as shells report them.
    pub fn not_started(command: &str, e: &io::Error) -> End {
        let (code, hint) = match e.kind() {
            io::ErrorKind::NotFound => (127, "; check the command's name and PATH"),
            io::ErrorKind::PermissionDenied => (126, "; check that it is an executable file"),
            _ => (127, ""),
        };
        End::Failed {
            code,
            error: format!("cannot start `{command}`: {e}{hint}"),
        }
    }

    /// The exit code logalarm ends with when this run is the last.
    pub fn code(&self) -> u8 {
        match self {
            End::Exited(code) => *code,
            End::Killed { signal, .. } => u8::try_from(128 + signal).unwrap_or(u8::MAX),
            End::Failed { code, .. } => *code,
        }
    }

    /// Anything but a zero exit: what `restart = "on-failure"` restarts.
    pub fn failed(&self) -> bool {
        *self != End::Exited(0)
    }

    /// Killed by one of the [`CRASH_SIGNALS`].
    pub fn crashed(&self) -> bool {
        matches!(self, End::Killed { signal, .. }
            if CRASH_SIGNALS.iter().any(|s| *s as i32 == *signal))
    }

    /// What happened, as said after the command: `exited with code 3`,
    /// `was killed by signal 11 (SIGSEGV), core dumped`.
    pub fn describe(&self) -> String {
        match self {
            End::Exited(code) => format!("exited with code {code}"),
            End::Killed {
                signal,
                core_dumped,
            } => {
                let name = Signal::try_from(*signal).map_or("unknown", Signal::as_str);
                let core = if *core_dumped { ", core dumped" } else { "" };
                format!("was killed by signal {signal} ({name}){core}")
            }
            End::Failed { error, .. } => error.clone(),
        }
    }
}

/// The `on_exit` alarm's message: a first line saying which command (and pid)
/// ended how, then its last output `lines`, oldest first, one per line.
///
/// The message fits in `max` bytes (`alarm-msg-size`): the oldest lines are
/// left out until it does. Only when even the newest line alone does not fit
/// is it kept, to be cut at its end like any long message.
pub fn message(command: &str, pid: u32, end: &End, lines: &[&[u8]], max: usize) -> Vec<u8> {
    let what = match end {
        End::Failed { error, .. } => error.clone(),
        _ => format!("`{command}` (pid {pid}) {}", end.describe()),
    };
    let started = !matches!(end, End::Failed { .. });
    let header = |kept: usize| match kept {
        0 if lines.is_empty() && started => format!("{what}; no output"),
        0 => what.clone(),
        1 => format!("{what}; its last line of output:"),
        n => format!("{what}; its last {n} lines of output:"),
    };
    let mut kept = lines.len();
    let mut body: usize = lines.iter().map(|l| l.len() + 1).sum();
    while kept > 1 && header(kept).len() + body > max {
        body -= lines[lines.len() - kept].len() + 1;
        kept -= 1;
    }
    let mut out = header(kept).into_bytes();
    for line in &lines[lines.len() - kept..] {
        out.push(b'\n');
        out.extend_from_slice(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_shells() {
        assert_eq!(End::Exited(3).code(), 3);
        let segv = End::Killed {
            signal: 11,
            core_dumped: true,
        };
        assert_eq!(segv.code(), 139);
        assert!(segv.crashed() && segv.failed());
        assert_eq!(
            segv.describe(),
            "was killed by signal 11 (SIGSEGV), core dumped"
        );
        let term = End::Killed {
            signal: 15,
            core_dumped: false,
        };
        assert!(!term.crashed() && term.failed());
        assert!(!End::Exited(0).failed());
        let missing = io::Error::from(io::ErrorKind::NotFound);
        assert_eq!(End::not_started("nope", &missing).code(), 127);
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(End::not_started("/etc/passwd", &denied).code(), 126);
    }

    #[test]
    fn message_drops_oldest_lines_to_fit() {
        let end = End::Killed {
            signal: 6,
            core_dumped: false,
        };
        let lines: Vec<&[u8]> = vec![b"one", b"two", b"three"];
        let full = message("app -x", 42, &end, &lines, 8192);
        assert_eq!(
            String::from_utf8(full.clone()).unwrap(),
            "`app -x` (pid 42) was killed by signal 6 (SIGABRT); its last 3 lines of output:\none\ntwo\nthree"
        );
        let fit = message("app -x", 42, &end, &lines, full.len() - 1);
        assert_eq!(
            String::from_utf8(fit).unwrap(),
            "`app -x` (pid 42) was killed by signal 6 (SIGABRT); its last 2 lines of output:\ntwo\nthree"
        );
        let tiny = message("app -x", 42, &end, &lines, 10);
        assert!(tiny.ends_with(b"its last line of output:\nthree"));
        assert_eq!(
            String::from_utf8(message("app", 7, &End::Exited(2), &[], 100)).unwrap(),
            "`app` (pid 7) exited with code 2; no output"
        );
    }
}
