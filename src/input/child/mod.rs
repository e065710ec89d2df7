//! The wrapped process: `logalarm run -- CMD ARGS…`.
//!
//! logalarm starts the command (`process.rs`), reads its stdout and stderr as
//! two inputs (passed through unchanged to its own stdout and stderr, and
//! matched), forwards the signals it receives, and ends with the process's exit
//! code — 128+N when signal N killed it, as a shell reports it.
//!
//! Signals reach the supervisor through [`Setup::signals`]: the main job
//! installs the handlers (before the process starts, so that none meant for it
//! is lost) and passes each signal on.
//!
//! - SIGTERM, SIGINT and SIGHUP go to the process's group (as a terminal sends
//!   them to a foreground job); after one of them the process is never
//!   restarted. SIGUSR1 and SIGUSR2 go to the process alone (reload requests
//!   that its helpers might not handle).
//! - `on_exit` alarms (uWSGI's `alarm-segfault`, generalised): when the process
//!   dies of a crash signal (`exit.rs`), or exits non-zero with
//!   `on_exit_nonzero`, its on-exit alarms fire with a message naming the
//!   command, its pid and how it ended, followed by its last lines of output
//!   (`tail.rs`). Every line it wrote is matched before that alarm fires. No alarm
//!   for a zero exit, nor when it ends from the stop signal logalarm forwarded.
//! - Restarts (`restart = "on-failure"` or `"always"`) wait `restart_delay`,
//!   doubled after each run up to `restart_max_delay` and back to the start
//!   after a run that lasted longer than that; after `max_restarts` restarts in
//!   a row logalarm gives up with the last exit code.

pub mod config;
pub mod events;
mod exit;
mod process;
mod tail;

use super::events::InputStats;
use super::passthrough::Passthrough;
use super::{Event, EventSender, Fire};
use crate::internal_event::InternalEvent;
use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use config::{DEFAULT_LAST_LINES, Restart, RunDef};
use events::Restarting;
use exit::End;
use logalarm_plugin_api::Source;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use std::ffi::OsStr;
use std::ffi::OsString;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Which output of the process a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Its standard output.
    Stdout,
    /// Its standard error.
    Stderr,
}

/// First delay before a restart (TOML `restart_delay`).
pub const DEFAULT_RESTART_DELAY: Duration = Duration::from_secs(1);
/// Longest delay between restarts (TOML `restart_max_delay`).
pub const DEFAULT_RESTART_MAX_DELAY: Duration = Duration::from_secs(60);
/// How long, after the process ended, its output may stay open (a process it
/// started holds the pipes) before the on-exit alarm fires without waiting for
/// the rest.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// What `logalarm run` starts and how.
pub struct Setup {
    /// The command and its arguments.
    pub command: Vec<OsString>,
    /// The `[run]` settings.
    pub run: RunDef,
    /// Indexes of the `on_exit` alarms.
    pub on_exit: Vec<u32>,
    /// The pass-through of the process's stdout to logalarm's own
    /// ([`Passthrough::off`] without pass-through).
    pub stdout: Passthrough,
    /// The pass-through of the process's stderr to logalarm's own.
    pub stderr: Passthrough,
    /// `alarm-msg-size`: the longest message an alarm carries, in bytes.
    pub msg_size: usize,
    /// Where the running process's pid is published (0 when none runs).
    pub child_pid: Option<Arc<AtomicI32>>,
    /// The signals logalarm received, to forward to the process (SIGTERM,
    /// SIGINT, SIGHUP, SIGUSR1, SIGUSR2); none are forwarded without it, or
    /// once it is closed.
    pub signals: Option<mpsc::Receiver<Signal>>,
    /// The process input's counters.
    pub stats: Arc<InputStats>,
}

/// Runs the process to its end — through its restarts, if any — and returns
/// logalarm's exit code: the last run's code, 128+N when signal N killed it,
/// 127 when the command cannot be found (126 when it cannot be executed).
pub async fn supervise(mut setup: Setup, events: EventSender) -> u8 {
    let mut signals = Signals(setup.signals.take());
    let command_text = setup
        .command
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let pid_slot = setup
        .child_pid
        .clone()
        .unwrap_or_else(|| Arc::new(AtomicI32::new(0)));
    let spec = process::Spec {
        command: &setup.command,
        display: &command_text,
        stdout: &setup.stdout,
        stderr: &setup.stderr,
        tail_bytes: setup.msg_size,
        last_lines: setup.run.last_lines.unwrap_or(DEFAULT_LAST_LINES),
        pid_slot: &pid_slot,
        stats: &setup.stats,
    };
    let policy = setup.run.restart.unwrap_or_default();
    let max_delay = setup
        .run
        .restart_max_delay
        .unwrap_or(DEFAULT_RESTART_MAX_DELAY);
    let mut delays = backoff(&setup.run);
    let mut restarts: u32 = 0;
    let mut stop: Option<Signal> = None;
    loop {
        let run = run_once(&spec, &events, &mut signals, &mut stop).await;
        report(&setup, &command_text, &run, stop, &events).await;
        let code = run.end.code();
        if let Some(sig) = stop {
            tracing::debug!("the process ended after {sig}; logalarm ends with code {code}");
            return code;
        }
        let again = match policy {
            Restart::No => false,
            Restart::OnFailure => run.end.failed(),
            Restart::Always => true,
        };
        if !again {
            return code;
        }
        if run.lasted > max_delay {
            // A run that lasted was no crash loop: start counting and waiting afresh.
            delays = backoff(&setup.run);
            restarts = 0;
        }
        // Whole milliseconds: the doubling is done in floating point.
        let Some(delay) = delays.next().map(whole_millis) else {
            tracing::error!(
                "`{command_text}` {}; giving up after {restarts} restarts in a row (max_restarts)",
                run.end.describe()
            );
            return code;
        };
        restarts += 1;
        Restarting {
            stats: &setup.stats,
            command: &command_text,
            delay,
            in_a_row: restarts,
        }
        .emit();
        let wait = tokio::time::sleep(delay);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = &mut wait => break,
                sig = signals.recv() => {
                    if is_stop(sig) {
                        tracing::info!("{sig} while waiting to restart: stopping");
                        return code;
                    }
                    tracing::info!("{sig}: no process runs to forward it to");
                }
            }
        }
    }
}

/// One run, ended.
struct Run {
    end: End,
    /// Its pid; 0 when it did not start.
    pid: u32,
    /// How long it ran.
    lasted: Duration,
    /// Its last output lines (at most `last_lines`), oldest first.
    output: Vec<Vec<u8>>,
}

/// Starts the process, forwards signals to it until it ends, and waits (a
/// little) for its output to end too.
async fn run_once(
    spec: &process::Spec<'_>,
    events: &EventSender,
    signals: &mut Signals,
    stop: &mut Option<Signal>,
) -> Run {
    let mut running = match process::start(spec, events).await {
        Ok(r) => r,
        Err(e) => {
            let end = End::not_started(spec.display, &e);
            return Run {
                end,
                pid: 0,
                lasted: Duration::ZERO,
                output: Vec::new(),
            };
        }
    };
    tracing::debug!("started `{}` as pid {}", spec.display, running.pid);
    let status = loop {
        tokio::select! {
            status = &mut running.exit => break status,
            sig = signals.recv() => forward(sig, spec.pid_slot, stop),
        }
    };
    let lasted = running.started.elapsed();
    let end = match status {
        Ok(Ok(status)) => End::from_status(status),
        Ok(Err(e)) => End::Failed {
            code: 1,
            error: format!("cannot wait for `{}`: {e}", spec.display),
        },
        Err(_) => End::Failed {
            code: 1,
            error: format!("lost track of `{}`", spec.display),
        },
    };
    // Let the readers pass on and match everything it wrote, so that lines
    // come before the on-exit alarm; but a process it left behind may keep
    // the pipes open for ever.
    let deadline = tokio::time::sleep(OUTPUT_GRACE);
    tokio::pin!(deadline);
    for reader in &mut running.readers {
        loop {
            tokio::select! {
                _ = &mut *reader => break,
                () = &mut deadline => {
                    tracing::debug!("the process's output is still open {OUTPUT_GRACE:?} after it ended (a process it started holds it)");
                    break;
                }
                sig = signals.recv() => forward(sig, spec.pid_slot, stop),
            }
        }
    }
    let output = running
        .tail
        .lock()
        .map(|mut tail| {
            tail.last(spec.last_lines)
                .iter()
                .map(|l| l.to_vec())
                .collect()
        })
        .unwrap_or_default();
    Run {
        end,
        pid: running.pid,
        lasted,
        output,
    }
}

/// Logs how a run ended and fires the on-exit alarms when it calls for them.
async fn report(
    setup: &Setup,
    command_text: &str,
    run: &Run,
    stop: Option<Signal>,
    events: &EventSender,
) {
    let end = &run.end;
    let nonzero = setup.run.on_exit_nonzero.unwrap_or(false);
    // The stop logalarm forwarded is no reason to alarm (nor is a non-zero
    // exit after it); a crash while stopping is.
    let stopped = stop.is_some() && !end.crashed();
    let alarm = !stopped && (end.crashed() || (nonzero && end.failed()));
    match end {
        End::Failed { error, .. } => tracing::error!("{error}"),
        End::Exited(0) => tracing::debug!("`{command_text}` (pid {}) exited with code 0", run.pid),
        _ if stopped => tracing::info!("`{command_text}` (pid {}) {}", run.pid, end.describe()),
        _ => tracing::warn!("`{command_text}` (pid {}) {}", run.pid, end.describe()),
    }
    if !alarm || setup.on_exit.is_empty() {
        return;
    }
    let lines: Vec<&[u8]> = run.output.iter().map(Vec::as_slice).collect();
    let message = exit::message(command_text, run.pid, end, &lines, setup.msg_size);
    let fire = Fire {
        alarms: setup.on_exit.clone(),
        message,
        source: Source::new("child", OsStr::new("exit")),
        rule: "on_exit".into(),
    };
    // The engine is gone only when logalarm is stopping anyway.
    let _ = events.send(Event::Fire(fire)).await;
}

/// The restart delays: `restart_delay` doubling up to `restart_max_delay`,
/// `max_restarts` of them (unlimited when unset).
fn backoff(run: &RunDef) -> ExponentialBackoff {
    let builder = ExponentialBuilder::new()
        .with_min_delay(run.restart_delay.unwrap_or(DEFAULT_RESTART_DELAY))
        .with_max_delay(run.restart_max_delay.unwrap_or(DEFAULT_RESTART_MAX_DELAY))
        .with_factor(2.0);
    match run.max_restarts {
        Some(n) => builder.with_max_times(usize::try_from(n).unwrap_or(usize::MAX)),
        None => builder.without_max_times(),
    }
    .build()
}

/// `d` rounded to whole milliseconds.
fn whole_millis(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from((d.as_micros() + 500) / 1000).unwrap_or(u64::MAX))
}

/// SIGTERM, SIGINT, SIGHUP: the signals that stop logalarm, and so the process.
fn is_stop(sig: Signal) -> bool {
    matches!(sig, Signal::SIGTERM | Signal::SIGINT | Signal::SIGHUP)
}

/// Passes `sig` on to the running process: a stop signal to its whole group,
/// as a terminal signals a foreground job, and remembers the stop; SIGUSR1 and
/// SIGUSR2 to the process alone.
fn forward(sig: Signal, pid_slot: &AtomicI32, stop: &mut Option<Signal>) {
    let pid = pid_slot.load(Ordering::SeqCst);
    if is_stop(sig) {
        stop.get_or_insert(sig);
    }
    if pid <= 0 {
        tracing::info!("{sig}: the process has ended; not forwarded");
        return;
    }
    let sent = if is_stop(sig) {
        killpg(Pid::from_raw(pid), sig)
    } else {
        kill(Pid::from_raw(pid), sig)
    };
    match sent {
        Ok(()) => tracing::info!("{sig}: forwarded to the process (pid {pid})"),
        Err(e) => tracing::warn!("{sig}: cannot forward it to pid {pid}: {e}"),
    }
}

/// The signals logalarm forwards, as the main job passes them on.
struct Signals(Option<mpsc::Receiver<Signal>>);

impl Signals {
    /// The next signal received; never resolves without a queue, or once it
    /// is closed.
    async fn recv(&mut self) -> Signal {
        if let Some(queue) = &mut self.0
            && let Some(sig) = queue.recv().await
        {
            return sig;
        }
        std::future::pending().await
    }
}
