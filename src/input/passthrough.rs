//! Pass-through: every byte read from stdin is written to stdout unchanged and
//! in order, in one write per read, unbuffered (a prompt without `\n` shows at once).
//!
//! When stdout's reader goes away (`EPIPE`), pass-through stops with one tagged
//! note and logalarm goes on matching and alarming: the watched application
//! must not lose its alarms because a pager was closed.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::os::fd::AsFd;

/// The pass-through writer.
pub struct Passthrough {
    out: Option<File>,
}

impl Passthrough {
    /// Writes to this process's stdout, or nowhere when `enabled` is false.
    pub fn stdout(enabled: bool) -> Self {
        // A duplicate of fd 1 as a File: unbuffered writes, no LineWriter.
        let out = enabled
            .then(|| {
                std::io::stdout()
                    .as_fd()
                    .try_clone_to_owned()
                    .map(File::from)
            })
            .and_then(|r| {
                r.map_err(|e| tracing::error!("cannot use stdout for pass-through: {e}"))
                    .ok()
            });
        Passthrough { out }
    }

    /// Writes `bytes` on; after a write error, writes nothing more.
    pub fn write(&mut self, bytes: &[u8]) {
        let Some(out) = &mut self.out else { return };
        if bytes.is_empty() {
            return;
        }
        if let Err(e) = out.write_all(bytes) {
            if e.kind() == ErrorKind::BrokenPipe {
                tracing::info!("stdout was closed by its reader; pass-through stops, alarms go on");
            } else {
                tracing::error!(
                    "pass-through to stdout failed: {e}; pass-through stops, alarms go on"
                );
            }
            self.out = None;
        }
    }
}
