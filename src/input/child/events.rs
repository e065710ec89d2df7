//! The internal events of the wrapped process (`logalarm run`): restarts and
//! failed reads of its output. Each [`InternalEvent::emit`] logs the event and
//! counts it in the process input's [`InputStats`].

use crate::input::events::InputStats;
use crate::internal_event::{self, InternalEvent};
use std::io;
use std::time::Duration;

/// The process ended and is started again after `delay`.
pub struct Restarting<'a> {
    /// The process input's counters.
    pub stats: &'a InputStats,
    /// The command, as shown.
    pub command: &'a str,
    /// The wait before the restart.
    pub delay: Duration,
    /// Restarts in a row, this one included.
    pub in_a_row: u32,
}

impl InternalEvent for Restarting<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.restarts, 1);
        tracing::warn!(
            "restarting `{}` in {} (restart {} in a row)",
            self.command,
            humantime::format_duration(self.delay),
            self.in_a_row
        );
    }
}

/// Reading the process's stdout or stderr failed: that stream is no longer read.
pub struct OutputReadFailed<'a> {
    /// The process input's counters.
    pub stats: &'a InputStats,
    /// `stdout` or `stderr`.
    pub stream: &'a str,
    /// The error.
    pub error: &'a io::Error,
}

impl InternalEvent for OutputReadFailed<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.failed, 1);
        tracing::error!(
            "reading the process's {} failed: {}",
            self.stream,
            self.error
        );
    }
}
