//! Pass-through: every byte read from stdin is written to stdout unchanged and
//! in order, in one write per read, unbuffered (a prompt without `\n` shows at
//! once); a wrapped process's stdout and stderr go to logalarm's own.
//!
//! When stdout's reader goes away (`EPIPE`), pass-through stops with one tagged
//! note and logalarm goes on matching and alarming: the watched application
//! must not lose its alarms because a pager was closed.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::os::fd::{AsFd, BorrowedFd};

/// The pass-through writer.
pub struct Passthrough {
    out: Option<File>,
    name: &'static str,
}

impl Passthrough {
    /// Writes to this process's stdout, or nowhere when `enabled` is false.
    pub fn stdout(enabled: bool) -> Self {
        Self::to(enabled, std::io::stdout().as_fd(), "stdout")
    }

    /// Writes to this process's stderr, or nowhere when `enabled` is false.
    pub fn stderr(enabled: bool) -> Self {
        Self::to(enabled, std::io::stderr().as_fd(), "stderr")
    }

    fn to(enabled: bool, fd: BorrowedFd<'_>, name: &'static str) -> Self {
        // A duplicate of the descriptor as a File: unbuffered writes, no LineWriter.
        let out = enabled
            .then(|| fd.try_clone_to_owned().map(File::from))
            .and_then(|r| {
                r.map_err(|e| tracing::error!("cannot use {name} for pass-through: {e}"))
                    .ok()
            });
        Passthrough { out, name }
    }

    /// Writes `bytes` on; after a write error, writes nothing more.
    pub fn write(&mut self, bytes: &[u8]) {
        let Some(out) = &mut self.out else { return };
        if bytes.is_empty() {
            return;
        }
        if let Err(e) = out.write_all(bytes) {
            if e.kind() == ErrorKind::BrokenPipe {
                tracing::info!(
                    "{} was closed by its reader; pass-through stops, alarms go on",
                    self.name
                );
            } else {
                tracing::error!(
                    "pass-through to {} failed: {e}; pass-through stops, alarms go on",
                    self.name
                );
            }
            self.out = None;
        }
    }
}
