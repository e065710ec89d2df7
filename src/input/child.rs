//! The wrapped process (being built).

use super::EventSender;
use crate::config::inputs::RunDef;
use std::ffi::OsString;
use std::sync::Arc;
use std::sync::atomic::AtomicI32;

/// What `logalarm run` starts and how.
pub struct Setup {
    /// The command and its arguments.
    pub command: Vec<OsString>,
    /// The `[run]` settings.
    pub run: RunDef,
    /// Indexes of the `on_exit` alarms.
    pub on_exit: Vec<u32>,
    /// Pass the process's stdout and stderr through.
    pub passthrough: bool,
    /// `alarm-msg-size`: the longest message an alarm carries, in bytes.
    pub msg_size: usize,
    /// Where the running process's pid is published (0 when none runs).
    pub child_pid: Option<Arc<AtomicI32>>,
}

/// Runs the process to its end; returns logalarm's exit code.
pub async fn supervise(_setup: Setup, _events: EventSender) -> u8 {
    tracing::error!("logalarm run is not built yet");
    1
}
