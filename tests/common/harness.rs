//! The one way the tests run logalarm: [`Logalarm`] says how (arguments,
//! environment, working directory, what goes on stdin, a deadline),
//! [`Running`] is the process while it runs (feed it, wait for a line of its
//! output, signal it), and [`Done`] is what it left (exit status, stdout,
//! stderr, peak memory).
//!
//! stdout and stderr are always read on threads of their own, so logalarm
//! never blocks on a full pipe; every wait has a deadline and fails the test
//! with what it was waiting for and what it saw. logalarm runs in a process
//! group of its own, and a [`Running`] dropped before it was seen to exit
//! (a failing test) kills that group and reaps it: nothing is left behind.

use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{PATIENCE, RUN_TIMEOUT, untimed};

/// How often the harness looks again whether the process has exited.
const POLL: Duration = Duration::from_millis(10);

/// What goes on the process's stdin.
enum Input {
    /// `/dev/null`.
    Null,
    /// A pipe the test writes to ([`Running::write_stdin`]) and closes
    /// ([`Running::close_stdin`]).
    Piped,
    /// These bytes, written on a thread of their own; then stdin is closed.
    Bytes(Vec<u8>),
    /// Whatever the test set up (say, the read end of another program's stdout).
    From(Stdio),
}

/// How to run logalarm (or, with [`Logalarm::program`], a program that
/// runs it, or a helper program the test runs the same way): a builder.
pub struct Logalarm {
    cmd: Command,
    stdin: Input,
    stdout: Option<Stdio>,
    timeout: Duration,
}

impl Default for Logalarm {
    fn default() -> Self {
        Logalarm::new()
    }
}

impl Logalarm {
    /// The binary under test, with `--alarm-concurrency 1` (each alarm
    /// delivers in the order of its lines: the tests compare what commands
    /// wrote, in order; uWSGI's concurrent commands, the default, are tested
    /// with [`Logalarm::with_default_concurrency`]); stdin is `/dev/null`
    /// unless set otherwise, and [`finish`](Running::finish) waits up to
    /// [`RUN_TIMEOUT`] for the exit.
    pub fn new() -> Logalarm {
        Logalarm::with_default_concurrency().args(["--alarm-concurrency", "1"])
    }

    /// The binary under test, with no arguments (otherwise as [`Logalarm::new`]).
    pub fn with_default_concurrency() -> Logalarm {
        Logalarm::command(Command::new(env!("CARGO_BIN_EXE_logalarm")))
    }

    /// `program` (looked up on PATH) run the same way: a shell that prepares
    /// something (a umask, an inherited descriptor) and then execs logalarm,
    /// or a helper program the test starts and waits for (a syslog client, a
    /// Python script).
    pub fn program(program: impl AsRef<OsStr>) -> Logalarm {
        Logalarm::command(Command::new(program))
    }

    fn command(cmd: Command) -> Logalarm {
        Logalarm {
            cmd,
            stdin: Input::Null,
            stdout: None,
            timeout: RUN_TIMEOUT,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Logalarm {
        self.cmd.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Logalarm
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Writes `text` to `path` (a name ending in `.toml` or `.ini`) and
    /// passes `-c PATH`.
    pub fn config(self, path: impl AsRef<Path>, text: &str) -> Logalarm {
        let path = path.as_ref();
        std::fs::write(path, text)
            .unwrap_or_else(|e| panic!("write config {}: {e}", path.display()));
        self.arg("-c").arg(path)
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Logalarm {
        self.cmd.env(key, value);
        self
    }

    pub fn envs<I, K, V>(mut self, vars: I) -> Logalarm
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.cmd.envs(vars);
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Logalarm {
        self.cmd.env_remove(key);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Logalarm {
        self.cmd.current_dir(dir);
        self
    }

    /// stdin is `/dev/null` (the default).
    pub fn stdin_null(mut self) -> Logalarm {
        self.stdin = Input::Null;
        self
    }

    /// stdin is a pipe that stays open until [`Running::close_stdin`] (or
    /// the end of the run); write to it with [`Running::write_stdin`].
    pub fn stdin_piped(mut self) -> Logalarm {
        self.stdin = Input::Piped;
        self
    }

    /// stdin is `input`, written on a thread of its own, then closed.
    /// [`Done::input`] says whether all of it was written.
    pub fn stdin(mut self, input: impl AsRef<[u8]>) -> Logalarm {
        self.stdin = Input::Bytes(input.as_ref().to_vec());
        self
    }

    /// stdin is `stdin` as the test made it (say, the read end of a pipe).
    pub fn stdin_from(mut self, stdin: impl Into<Stdio>) -> Logalarm {
        self.stdin = Input::From(stdin.into());
        self
    }

    /// stdout goes to `stdout` instead of being collected (say, the write
    /// end of a pipe that another program reads, or whose reader is gone);
    /// [`Done::stdout`] is then empty.
    pub fn stdout_to(mut self, stdout: impl Into<Stdio>) -> Logalarm {
        self.stdout = Some(stdout.into());
        self
    }

    /// How long [`Running::finish`] waits for the exit before it kills the
    /// process and fails the test ([`RUN_TIMEOUT`] unless set).
    pub fn timeout(mut self, timeout: Duration) -> Logalarm {
        self.timeout = timeout;
        self
    }

    /// Starts the process: stdin as set, stdout and stderr read line by
    /// line in the background.
    pub fn start(mut self) -> Running {
        let program = Path::new(self.cmd.get_program())
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let (stdin, bytes) = match self.stdin {
            Input::Null => (Stdio::null(), None),
            Input::Piped => (Stdio::piped(), None),
            Input::Bytes(bytes) => (Stdio::piped(), Some(bytes)),
            Input::From(stdio) => (stdio, None),
        };
        let collect_stdout = self.stdout.is_none();
        let mut child = self
            .cmd
            .stdin(stdin)
            .stdout(self.stdout.take().unwrap_or_else(Stdio::piped))
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        // `self.cmd`, and with it the parent's copies of any descriptors
        // handed to the child, is dropped at the end of this function.
        let pid = i32::try_from(child.id()).expect("pid fits i32");
        let mut stdin = child.stdin.take();
        let feeder = bytes.map(|bytes| {
            let mut pipe = stdin.take().expect("stdin piped");
            thread::spawn(move || pipe.write_all(&bytes))
        });
        let stdout = Lines::read(
            "stdout",
            collect_stdout.then(|| child.stdout.take().expect("stdout piped")),
        );
        let stderr = Lines::read("stderr", child.stderr.take());
        // From here on the pid is reaped with wait4(2) (see `reap`); `child`,
        // dropped, neither waits nor kills.
        drop(child);
        Running {
            program,
            pid,
            started: Instant::now(),
            timeout: self.timeout,
            stdin,
            feeder,
            stdout,
            stderr,
            exit: None,
        }
    }

    /// Runs to the end with `input` on stdin (written, then closed).
    pub fn run(self, input: impl AsRef<[u8]>) -> Done {
        self.stdin(input).start().finish()
    }

    /// Runs to the end with stdin as set (`/dev/null` by default), as
    /// [`Command::output`] does.
    pub fn output(self) -> Done {
        self.start().finish()
    }
}

/// One output stream of a running process, line by line: split at `\n`
/// (kept in the raw lines, not in the text ones), a final line without one
/// counts; the text lines have invalid UTF-8 replaced and the time taken out
/// of logalarm's own lines ([`untimed`]), any `\r` kept.
pub struct Lines {
    name: &'static str,
    rx: Option<Receiver<Vec<u8>>>,
    raw: Vec<Vec<u8>>,
    text: Vec<String>,
}

impl Lines {
    /// Reads `stream` (none: nothing to read, already closed) on a thread
    /// of its own.
    fn read(name: &'static str, stream: Option<impl Read + Send + 'static>) -> Lines {
        let rx = stream.map(|stream| {
            let (tx, rx) = mpsc::channel();
            thread::spawn(move || {
                let mut reader = BufReader::with_capacity(1 << 16, stream);
                loop {
                    let mut line = Vec::new();
                    match reader.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if tx.send(line).is_err() => break,
                        Ok(_) => {}
                    }
                }
            });
            rx
        });
        Lines {
            name,
            rx,
            raw: Vec::new(),
            text: Vec::new(),
        }
    }

    fn push(&mut self, line: Vec<u8>) {
        let bare = line.strip_suffix(b"\n").unwrap_or(&line);
        self.text
            .push(untimed(&String::from_utf8_lossy(bare)).into_owned());
        self.raw.push(line);
    }

    /// Receives one more line, waiting until `deadline`: `Ok(true)` when
    /// one came, `Ok(false)` when the stream is closed, `Err` on timeout.
    fn recv(&mut self, deadline: Instant) -> Result<bool, ()> {
        let Some(rx) = &self.rx else {
            return Ok(false);
        };
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                self.push(line);
                Ok(true)
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.rx = None;
                Ok(false)
            }
            Err(RecvTimeoutError::Timeout) => Err(()),
        }
    }

    /// The lines received so far, taking in what has arrived without waiting.
    pub fn so_far(&mut self) -> &[String] {
        while let Some(rx) = &self.rx {
            match rx.try_recv() {
                Ok(line) => self.push(line),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => self.rx = None,
            }
        }
        &self.text
    }

    /// Receives lines until `done(all lines so far)` holds (checked first,
    /// so lines received earlier count); fails the test, naming `what` and
    /// showing the lines, after [`PATIENCE`] or if the stream closes first.
    pub fn wait_for(&mut self, what: &str, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !done(self.so_far()) {
            match self.recv(deadline) {
                Ok(true) => {}
                Ok(false) => panic!(
                    "{} closed before {what}; it holds: {:#?}",
                    self.name, self.text
                ),
                Err(()) => panic!(
                    "timed out after {PATIENCE:?} waiting on {} for {what}; it holds: {:#?}",
                    self.name, self.text
                ),
            }
        }
    }

    /// The first line so far, or to come, for which `want` holds (see
    /// [`wait_for`](Lines::wait_for)).
    pub fn wait_for_line(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        self.wait_for(what, |lines| lines.iter().any(|l| want(l)));
        self.text.iter().find(|l| want(l)).expect("a line").clone()
    }

    /// Like [`wait_for_line`](Lines::wait_for_line), but waits no longer
    /// than `within` and never fails: `None` if no such line came by then
    /// (or the stream closed).
    pub fn try_wait_for_line(
        &mut self,
        within: Duration,
        want: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.so_far().iter().find(|l| want(l)) {
                return Some(line.clone());
            }
            if self.recv(deadline) != Ok(true) {
                return None;
            }
        }
    }

    /// Line `n` (from 0) as the process wrote it (with its `\n`), waiting
    /// for it as [`wait_for`](Lines::wait_for) does.
    pub fn raw_line(&mut self, n: usize, what: &str) -> Vec<u8> {
        self.wait_for(what, |lines| lines.len() > n);
        self.raw[n].clone()
    }

    /// Receives the rest, until the stream closes; fails the test if it is
    /// still open at `deadline` (say, a process left behind holds it).
    fn drain(&mut self, deadline: Instant) {
        loop {
            match self.recv(deadline) {
                Ok(true) => {}
                Ok(false) => return,
                Err(()) => panic!(
                    "{} still open {PATIENCE:?} after the exit; it holds: {:#?}",
                    self.name, self.text
                ),
            }
        }
    }
}

/// A running process (see [`Logalarm::start`]).
pub struct Running {
    /// The program's file name, for messages.
    program: String,
    pid: i32,
    started: Instant,
    timeout: Duration,
    stdin: Option<ChildStdin>,
    feeder: Option<JoinHandle<io::Result<()>>>,
    stdout: Lines,
    stderr: Lines,
    /// The exit, once reaped: status and peak RSS in KiB.
    exit: Option<(ExitStatus, i64)>,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.pid.unsigned_abs()
    }

    /// Writes `bytes` to stdin (see [`Logalarm::stdin_piped`]).
    pub fn write_stdin(&mut self, bytes: impl AsRef<[u8]>) {
        let stdin = self
            .stdin
            .as_mut()
            .unwrap_or_else(|| panic!("{}'s stdin is not an open pipe", self.program));
        stdin
            .write_all(bytes.as_ref())
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("write to {}: {e}", self.program));
    }

    /// Closes stdin: the end of input.
    pub fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    /// Sends `signal` (`libc::SIGTERM`, …) to the process.
    pub fn signal(&self, signal: i32) {
        assert!(
            self.exit.is_none(),
            "{} (pid {}) has already exited",
            self.program,
            self.pid
        );
        // SAFETY: kill(2) on our own child, not yet reaped.
        let sent = unsafe { libc::kill(self.pid, signal) };
        assert_eq!(
            sent,
            0,
            "signal {signal} to {} (pid {}): {}",
            self.program,
            self.pid,
            io::Error::last_os_error()
        );
    }

    /// Whether the process has not exited yet.
    pub fn is_running(&mut self) -> bool {
        self.reap(false)
    }

    /// Peak resident set size so far, in KiB (`VmHWM`, proc(5)).
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .unwrap_or_else(|e| panic!("read /proc/{}/status: {e}", self.pid));
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no VmHWM in /proc/{}/status", self.pid))
    }

    /// stdout, line by line, as it comes.
    pub fn stdout(&mut self) -> &mut Lines {
        &mut self.stdout
    }

    /// stderr, line by line, as it comes.
    pub fn stderr(&mut self) -> &mut Lines {
        &mut self.stderr
    }

    /// The first stdout line, so far or to come, for which `want` holds;
    /// fails the test, naming `what`, after [`PATIENCE`].
    pub fn wait_for_stdout_line(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        self.stdout.wait_for_line(what, want)
    }

    /// The first stderr line, so far or to come, for which `want` holds;
    /// fails the test, naming `what`, after [`PATIENCE`].
    pub fn wait_for_stderr_line(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        self.stderr.wait_for_line(what, want)
    }

    /// Reaps the process if it has exited (waiting for that when `block`);
    /// true while it runs.
    fn reap(&mut self, block: bool) -> bool {
        if self.exit.is_some() {
            return false;
        }
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value of this plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let flags = if block { 0 } else { libc::WNOHANG };
        // SAFETY: wait4(2) on our own child, with valid out-pointers.
        let got = unsafe { libc::wait4(self.pid, &mut status, flags, &mut usage) };
        if got == self.pid {
            self.exit = Some((ExitStatus::from_raw(status), usage.ru_maxrss));
            return false;
        }
        let err = io::Error::last_os_error();
        assert!(
            got == 0 || err.kind() == io::ErrorKind::Interrupted,
            "wait4 {}: {err}",
            self.pid
        );
        true
    }

    /// Kills the process and its group (it leads one), then reaps it.
    fn kill(&mut self) {
        if self.exit.is_none() {
            // SAFETY: kill(2) on the group of our own child, which leads it
            // and is not reaped yet (so the group id is still its own).
            unsafe { libc::kill(-self.pid, libc::SIGKILL) };
            while self.reap(true) {}
        }
    }

    /// Waits for the exit (stdin is left as it is: close it first when the
    /// end of input is what ends the run), then collects the rest of stdout
    /// and stderr. Kills the process and fails the test if it is still
    /// running after the timeout ([`Logalarm::timeout`]), or if its output
    /// is still open [`PATIENCE`] after the exit.
    pub fn finish(mut self) -> Done {
        let deadline = Instant::now() + self.timeout;
        while self.reap(false) {
            if Instant::now() >= deadline {
                self.kill();
                let stdin = if self.stdin.is_some() {
                    " (its stdin is still open)"
                } else {
                    ""
                };
                panic!(
                    "{} (pid {}) still running after {:?}{stdin}; killed. stderr so far: {:#?}",
                    self.program,
                    self.pid,
                    self.timeout,
                    self.stderr.so_far()
                );
            }
            thread::sleep(POLL);
        }
        let took = self.started.elapsed();
        self.close_stdin();
        // A broken pipe only means the process stopped reading early; the
        // test decides whether that matters (`Done::input`).
        let input = match self.feeder.take() {
            Some(feeder) => feeder.join().expect("the stdin writer thread"),
            None => Ok(()),
        };
        let drained = Instant::now() + PATIENCE;
        self.stdout.drain(drained);
        self.stderr.drain(drained);
        let (status, max_rss_kib) = self.exit.expect("reaped");
        Done {
            status,
            stdout: std::mem::take(&mut self.stdout.raw).concat(),
            stderr: std::mem::take(&mut self.stderr.raw).concat(),
            took,
            max_rss_kib,
            input,
            stdout_lines: std::mem::take(&mut self.stdout.text),
            stderr_lines: std::mem::take(&mut self.stderr.text),
        }
    }
}

impl Drop for Running {
    /// A process not seen to exit (the test failed, or did not wait) is
    /// killed with its group, and reaped.
    fn drop(&mut self) {
        self.kill();
    }
}

/// What a finished run left.
pub struct Done {
    pub status: ExitStatus,
    /// stdout, byte for byte (empty when it went elsewhere: [`Logalarm::stdout_to`]).
    pub stdout: Vec<u8>,
    /// stderr as written, times and all ([`Done::stderr_text`] and
    /// [`Done::stderr_lines`] have them taken out).
    pub stderr: Vec<u8>,
    /// From the start to the exit.
    pub took: Duration,
    /// Peak resident set size of the process (and of the children it
    /// waited for), in KiB, from wait4(2).
    pub max_rss_kib: i64,
    /// Whether all of the input given with [`Logalarm::stdin`] was written:
    /// an error (a broken pipe) means the process exited before reading it
    /// all, as logalarm does on a config error.
    pub input: io::Result<()>,
    stdout_lines: Vec<String>,
    stderr_lines: Vec<String>,
}

impl std::fmt::Debug for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Done")
            .field("status", &self.status)
            .field("stdout", &self.stdout_text())
            .field("stderr", &self.stderr_text())
            .finish_non_exhaustive()
    }
}

impl Done {
    /// The exit code; `None` when killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// stdout's lines (see [`Lines`]).
    pub fn stdout_lines(&self) -> &[String] {
        &self.stdout_lines
    }

    /// stderr's lines, the time taken out of logalarm's own (see [`Lines`]).
    pub fn stderr_lines(&self) -> &[String] {
        &self.stderr_lines
    }

    /// stdout as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as text, for assertions and failure messages: invalid UTF-8
    /// replaced, the time taken out of logalarm's own lines ([`untimed`]).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&super::untimed_bytes(&self.stderr)).into_owned()
    }
}
