//! Starting one run of the wrapped process, and reading its output.
//!
//! The process gets its own process group, logalarm's stdin, and two pipes for
//! stdout and stderr. Each pipe is read on a thread of its own by
//! [`crate::input::stdin::pump`]: passed through unchanged to logalarm's own
//! stdout or stderr, and sent to the engine as lines.
//!
//! A third thread starts the process and waits for it. It must be a thread
//! that lives exactly as long as the process: `PR_SET_PDEATHSIG` fires when the
//! *thread* that forked the child ends, not the whole parent (prctl(2)), so
//! forking from a runtime or pool thread that may later exit would kill a
//! healthy process.

use super::Stream;
use super::events::OutputReadFailed;
use super::tail::Tail;
use crate::input::EventSender;
use crate::input::events::InputStats;
use crate::input::passthrough::Passthrough;
use crate::input::stdin::pump;
use crate::internal_event::InternalEvent;
use logalarm_plugin_api::Source;
use nix::sys::signal::Signal;
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::{Pid, getpid, getppid};
use std::ffi::OsStr;
use std::ffi::OsString;
use std::io::{self, PipeReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Instant;
use tokio::sync::oneshot;

/// One started run of the process.
pub struct Running {
    /// Its process id (also its process group id).
    pub pid: u32,
    /// When it was started.
    pub started: Instant,
    /// Its wait status once it has ended (an error if it could not be waited for).
    pub exit: oneshot::Receiver<io::Result<ExitStatus>>,
    /// Resolve (with an error: the sender is dropped) when a reader reaches
    /// the end of its pipe.
    pub readers: Vec<oneshot::Receiver<()>>,
    /// Its recent output, for the `on_exit` alarm.
    pub tail: Arc<Mutex<Tail>>,
}

/// What every run shares.
pub struct Spec<'a> {
    /// The command and its arguments.
    pub command: &'a [OsString],
    /// The same, as text for messages.
    pub display: &'a str,
    /// The pass-through of its stdout, to logalarm's own (shared by every run,
    /// so that the output of one run is written before the next one's).
    pub stdout: &'a Passthrough,
    /// The pass-through of its stderr, to logalarm's own.
    pub stderr: &'a Passthrough,
    /// The bytes of output kept for the alarm (`alarm-msg-size`).
    pub tail_bytes: usize,
    /// The lines of output the alarm carries (`last_lines`).
    pub last_lines: usize,
    /// Where the running process's pid is published; 0 once it has ended.
    pub pid_slot: &'a Arc<AtomicI32>,
    /// The process input's counters.
    pub stats: &'a Arc<InputStats>,
}

/// Starts the process and its output readers.
///
/// # Errors
/// The command cannot be started (not found, not executable), or a pipe or
/// thread cannot be created.
pub async fn start(spec: &Spec<'_>, events: &EventSender) -> io::Result<Running> {
    let (program, args) = spec
        .command
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command given"))?;
    let (out_read, out_write) = io::pipe()?;
    let (err_read, err_write) = io::pipe()?;
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::inherit())
        .stdout(out_write)
        .stderr(err_write)
        // Its own group: a Ctrl-C in a terminal reaches logalarm alone, which
        // forwards it once, rather than both of them at the same time.
        .process_group(0);
    let parent = getpid();
    // SAFETY: the closure runs in the forked child before exec and makes only
    // async-signal-safe system calls (prctl, getppid), allocating nothing.
    unsafe {
        command.pre_exec(move || {
            // If logalarm is SIGKILLed (or the OOM killer picks it) it cannot
            // forward a stop, and nothing would read the process's output or
            // report its crash; the kernel then kills the process too. SIGKILL
            // rather than SIGTERM: a process that catches TERM to wind down
            // slowly would otherwise live on unwatched.
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // logalarm may have died between fork and prctl; then nobody is
            // left to deliver the death signal.
            if getppid() != parent {
                return Err(nix::errno::Errno::ESRCH.into());
            }
            Ok(())
        });
    }
    // The readers start first and wait for the pid, so that both are blocked
    // in read(2) when the first bytes come: lines of the two streams then
    // reach the tail in the order they were written, as closely as two pipes allow.
    let tail = Arc::new(Mutex::new(Tail::new(spec.tail_bytes)));
    let (stdout_done, stdout_pid) = reader(out_read, Stream::Stdout, spec, events, &tail)?;
    let (stderr_done, stderr_pid) = reader(err_read, Stream::Stderr, spec, events, &tail)?;
    let (started_tx, started_rx) = oneshot::channel();
    let (exit_tx, exit) = oneshot::channel();
    let pid_slot = spec.pid_slot.clone();
    thread::Builder::new()
        .name("child-wait".into())
        .spawn(move || {
            let spawned = command.spawn();
            // The command holds the pipes' write ends: close ours, or the
            // readers would never see the end of the output.
            drop(command);
            let mut child = match spawned {
                Ok(child) => child,
                Err(e) => {
                    let _ = started_tx.send(Err(e));
                    return;
                }
            };
            let pid = child.id();
            pid_slot.store(i32::try_from(pid).unwrap_or(0), Ordering::SeqCst);
            let _ = started_tx.send(Ok(pid));
            // Wait without reaping first, then unpublish the pid, then reap:
            // while the pid is published it names this process (alive or a
            // zombie), never a stranger that reused the number.
            if let Ok(raw) = i32::try_from(pid) {
                let ended = || {
                    waitid(
                        Id::Pid(Pid::from_raw(raw)),
                        WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
                    )
                };
                while let Err(nix::errno::Errno::EINTR) = ended() {}
            }
            pid_slot.store(0, Ordering::SeqCst);
            let _ = exit_tx.send(child.wait());
        })?;
    // On an error the pid senders are dropped and the readers end unread.
    let pid = started_rx
        .await
        .map_err(|_| io::Error::other("the thread starting the process ended early"))??;
    let started = Instant::now();
    let _ = stdout_pid.send(pid);
    let _ = stderr_pid.send(pid);
    Ok(Running {
        pid,
        started,
        exit,
        readers: vec![stdout_done, stderr_done],
        tail,
    })
}

/// Starts the thread that reads one of the process's outputs once it is sent
/// the process's pid. Returns a receiver that resolves when the pipe is at its
/// end (or the pid never comes), and the sender for the pid.
///
/// # Errors
/// The thread cannot be started.
fn reader(
    pipe: PipeReader,
    stream: Stream,
    spec: &Spec<'_>,
    events: &EventSender,
    tail: &Arc<Mutex<Tail>>,
) -> io::Result<(oneshot::Receiver<()>, mpsc::SyncSender<u32>)> {
    let (done, finished) = oneshot::channel::<()>();
    let (pid_tx, pid_rx) = mpsc::sync_channel::<u32>(1);
    let (name, out) = match stream {
        Stream::Stdout => ("stdout", spec.stdout.clone()),
        Stream::Stderr => ("stderr", spec.stderr.clone()),
    };
    let events = events.clone();
    let tail = tail.clone();
    let stats = spec.stats.clone();
    thread::Builder::new()
        .name(format!("child-{name}"))
        .spawn(move || {
            // Read once the process runs (its pid sent), or not at all.
            if pid_rx.recv().is_err() {
                return;
            }
            let source = Source::new("child", OsStr::new(name));
            // Read to EOF whatever logalarm is told: the process's last lines
            // are matched before it is gone (stops go to the process itself).
            let read = pump(
                pipe,
                &source,
                out,
                &events,
                |bytes| {
                    // One lock per read (up to 256 KiB), never per line.
                    if let Ok(mut tail) = tail.lock() {
                        tail.push(stream, bytes);
                    }
                },
                || false,
            );
            if let Err(error) = read {
                OutputReadFailed {
                    stats: &stats,
                    stream: name,
                    error: &error,
                }
                .emit();
            }
            drop(done);
        })?;
    Ok((finished, pid_tx))
}
