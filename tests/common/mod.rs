//! Shared helpers for the integration tests: they run the built `logalarm`
//! binary as a user would.
//!
//! Every wait in here has a deadline. A logalarm (or helper process) that hangs
//! is killed and the test fails with a message saying what it was waiting for;
//! it never hangs the test run.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

mod harness;

#[allow(unused_imports)] // not every test binary names them all
pub use harness::{Done, Lines, Logalarm, Running};

/// How long any single wait for an event (a line of output, a file, a process
/// exit, a pipe closing) may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// How long one run of logalarm may take ([`Logalarm::timeout`] changes it).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// How often the polling helpers look again.
const POLL: Duration = Duration::from_millis(10);

/// The prefix of the line a `log:` alarm writes to stderr.
pub const ALARM_PREFIX: &str = "[logalarm] ALARM: ";

// ---------------------------------------------------------------------------
// Where things are.

/// The binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_logalarm"))
}

/// The Loghub corpus directory (`../shared/corpus/loghub`, or `$LOGALARM_CORPUS/loghub`).
pub fn corpus() -> PathBuf {
    let base = std::env::var_os("LOGALARM_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    let dir = base.join("loghub");
    assert!(
        dir.is_dir(),
        "corpus not found at {} (set LOGALARM_CORPUS)",
        dir.display()
    );
    dir
}

/// A fresh, empty directory for one test, under target/.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// `path` as one `/bin/sh` word, for `cmd:` actions: single-quoted, with any
/// single quote in it written as `'\''`.
pub fn sh_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

// ---------------------------------------------------------------------------
// Running a child with a deadline.

/// Spawns `cmd` with stdin, stdout and stderr all piped.
pub fn spawn_piped(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn logalarm")
}

/// Writes `input` to the child's (piped) stdin on a thread of its own, then
/// closes it; returns the thread, whose result says whether all of `input`
/// was written.
///
/// An error (a broken pipe) means the child exited before reading all of its
/// input: expected on a config error, where logalarm reads nothing, so most
/// callers ignore it; a test that needs all input read checks it.
pub fn feed_stdin(child: &mut Child, input: &[u8]) -> JoinHandle<io::Result<()>> {
    let mut stdin = child.stdin.take().expect("stdin piped");
    let input = input.to_vec();
    thread::spawn(move || stdin.write_all(&input))
}

/// Waits for `child` to exit; after `timeout` kills it, reaps it and fails
/// the test.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "child {} still running after {timeout:?}; killed",
                child.id()
            );
        }
        thread::sleep(POLL);
    }
}

/// A stream read to its end on a thread of its own, so that the child writing
/// it can never block on a full pipe.
pub struct BackgroundRead(Receiver<io::Result<Vec<u8>>>);

/// Starts reading `stream` to its end in the background.
pub fn read_in_background(mut stream: impl Read + Send + 'static) -> BackgroundRead {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = tx.send(stream.read_to_end(&mut buf).map(|_| buf));
    });
    BackgroundRead(rx)
}

impl BackgroundRead {
    /// Everything read, once the stream is closed. Fails the test if it is
    /// still open after `timeout` (say, a process the child left behind holds
    /// it) or could not be read; `what` names it in the message.
    pub fn finish(self, what: &str, timeout: Duration) -> Vec<u8> {
        match self.0.recv_timeout(timeout) {
            Ok(read) => read.unwrap_or_else(|e| panic!("read {what}: {e}")),
            Err(RecvTimeoutError::Timeout) => panic!("{what} still open after {timeout:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("the {what} reader died"),
        }
    }
}

/// Like [`Child::wait_with_output`], but kills the child and fails the test
/// if it has not exited after `timeout` (and fails if its output is still
/// open [`PATIENCE`] after it exited). Closes the child's stdin if it is still
/// here; stdout or stderr not piped count as empty. The time is taken out of
/// logalarm's own lines on stderr ([`untimed`]).
pub fn wait_with_output_timeout(child: Child, timeout: Duration) -> Output {
    let mut out = wait_with_raw_output_timeout(child, timeout);
    out.stderr = untimed_bytes(&out.stderr);
    out
}

/// [`wait_with_output_timeout`] with stderr as logalarm wrote it.
pub fn wait_with_raw_output_timeout(mut child: Child, timeout: Duration) -> Output {
    drop(child.stdin.take());
    let stdout = child.stdout.take().map(read_in_background);
    let stderr = child.stderr.take().map(read_in_background);
    let status = wait_exit(&mut child, timeout);
    let collect = |read: Option<BackgroundRead>, what| {
        read.map_or_else(Vec::new, |r| r.finish(what, PATIENCE))
    };
    Output {
        status,
        stdout: collect(stdout, "stdout"),
        stderr: collect(stderr, "stderr"),
    }
}

/// Runs `cmd` with `input` on stdin and returns its output, within
/// [`RUN_TIMEOUT`] (see [`run_with_input_timeout`]).
pub fn run_with_input(cmd: &mut Command, input: &[u8]) -> Output {
    run_with_input_timeout(cmd, input, RUN_TIMEOUT)
}

/// Runs `cmd` with `input` on stdin and returns its output; kills it and
/// fails the test if it is still running after `timeout`.
///
/// Input it did not read is no error (on a config error logalarm exits
/// without reading): its exit status and output tell what happened.
pub fn run_with_input_timeout(cmd: &mut Command, input: &[u8], timeout: Duration) -> Output {
    let mut out = run_with_raw_output(cmd, input, timeout);
    out.stderr = untimed_bytes(&out.stderr);
    out
}

/// [`run_with_input_timeout`] with stderr as logalarm wrote it (times and
/// all).
pub fn run_with_raw_output(cmd: &mut Command, input: &[u8], timeout: Duration) -> Output {
    let mut child = spawn_piped(cmd);
    let writer = feed_stdin(&mut child, input);
    let out = wait_with_raw_output_timeout(child, timeout);
    // A broken pipe only means logalarm stopped reading early.
    let _ = writer.join().expect("stdin writer thread");
    out
}

// ---------------------------------------------------------------------------
// Output line by line, while the child runs.

/// Reads `stream` line by line (split at `\n`, any `\r` kept, invalid UTF-8
/// replaced, the time taken out of logalarm's own lines: [`untimed`]) on a
/// thread of its own; the channel closes with the stream.
pub fn read_lines(stream: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stream).split(b'\n') {
            let Ok(line) = line else { break };
            if tx
                .send(untimed(&String::from_utf8_lossy(&line)).into_owned())
                .is_err()
            {
                break;
            }
        }
    });
    rx
}

/// Receives lines from `rx` into `seen` until `done(seen)` holds (checked
/// first, so lines received earlier count). Fails the test, naming `what` and
/// showing `seen`, after [`PATIENCE`] or if the stream closes first.
pub fn recv_until(
    rx: &Receiver<String>,
    seen: &mut Vec<String>,
    what: &str,
    done: impl Fn(&[String]) -> bool,
) {
    let deadline = Instant::now() + PATIENCE;
    while !done(seen) {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => seen.push(line),
            Err(RecvTimeoutError::Timeout) => {
                panic!("timed out waiting for {what}; seen: {seen:#?}")
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("stream closed before {what}; seen: {seen:#?}")
            }
        }
    }
}

/// The first line in `seen`, or received from `rx` into `seen`, for which
/// `want` holds (see [`recv_until`]).
pub fn wait_for_line(
    rx: &Receiver<String>,
    seen: &mut Vec<String>,
    what: &str,
    want: impl Fn(&str) -> bool,
) -> String {
    recv_until(rx, seen, what, |seen| seen.iter().any(|l| want(l)));
    seen.iter().find(|l| want(l)).expect("a line").clone()
}

/// Receives the rest of `rx` into `seen`, until the stream closes; fails the
/// test if it is still open at `deadline`.
pub fn drain_lines(rx: &Receiver<String>, seen: &mut Vec<String>, deadline: Instant) {
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => seen.push(line),
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => panic!("output not closed after exit: {seen:#?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Files.

/// Polls `path` until its contents satisfy `done` (a missing file reads as
/// empty) and returns them; fails the test, showing what the file holds, after
/// `timeout`.
pub fn wait_for_file(path: &Path, timeout: Duration, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = std::fs::read(path).unwrap_or_default();
        if done(&got) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting on {}; it holds {:?}",
            path.display(),
            String::from_utf8_lossy(&got)
        );
        thread::sleep(POLL);
    }
}

/// Waits until `path` (say, what a `cmd:cat >> FILE` alarm appends to) holds
/// at least `n` whole lines; returns its lines ([`lines`]). Fails the test
/// after [`PATIENCE`].
pub fn wait_for_lines(path: &Path, n: usize) -> Vec<String> {
    let got = wait_for_file(path, PATIENCE, |b| {
        b.iter().filter(|&&c| c == b'\n').count() >= n
    });
    lines(&got)
}

// ---------------------------------------------------------------------------
// Reading what logalarm wrote.

/// The text tag of logalarm's own lines, as written before the time.
pub const TAG: &str = "[logalarm] ";

/// Length of the time after [`TAG`]: `YYYY-MM-DDTHH:MM:SS.mmmZ` and a space.
const TIME_LEN: usize = 25;

/// The time of one of logalarm's own text lines (`[logalarm] TIME …`): the
/// 24 bytes after the tag, when they have the shape of an RFC 3339 UTC time
/// with milliseconds; `None` for any other line.
pub fn line_time(line: &[u8]) -> Option<&str> {
    let rest = line.strip_prefix(TAG.as_bytes())?;
    let time = rest.get(..TIME_LEN)?;
    let shape = b"dddd-dd-ddTdd:dd:dd.dddZ ";
    let fits = time.iter().zip(shape).all(|(&b, &s)| match s {
        b'd' => b.is_ascii_digit(),
        _ => b == s,
    });
    fits.then(|| std::str::from_utf8(&time[..TIME_LEN - 1]).expect("ASCII"))
}

/// `line` without the time after the tag when it is one of logalarm's own
/// text lines (`[logalarm] 2026-12-04T17:40:00.123Z warn: …` becomes
/// `[logalarm] warn: …`), so that assertions need not know the time; any
/// other line as it is.
pub fn untimed(line: &str) -> std::borrow::Cow<'_, str> {
    match line_time(line.as_bytes()) {
        Some(_) => format!("{TAG}{}", &line[TAG.len() + TIME_LEN..]).into(),
        None => line.into(),
    }
}

/// [`untimed`] on every line of `bytes`.
pub fn untimed_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        match line_time(line) {
            Some(_) => {
                out.extend_from_slice(TAG.as_bytes());
                out.extend_from_slice(&line[TAG.len() + TIME_LEN..]);
            }
            None => out.extend_from_slice(line),
        }
    }
    out
}

/// Stderr as text, for assertions and failure messages (the time taken out
/// of logalarm's own lines: [`untimed`]).
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&untimed_bytes(&out.stderr)).into_owned()
}

/// `bytes` split into lines at `\n` (a final line without one counts; any `\r`
/// is kept; invalid UTF-8 is replaced; the time taken out of logalarm's own
/// lines: [`untimed`]), as [`read_lines`] receives them.
pub fn lines(bytes: &[u8]) -> Vec<String> {
    let mut lines: Vec<String> = bytes
        .split(|&b| b == b'\n')
        .map(|l| untimed(&String::from_utf8_lossy(l)).into_owned())
        .collect();
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        lines.pop();
    }
    lines
}

/// The lines starting with `prefix`, in order. Takes `text.lines()` as well as
/// `&Vec<String>`.
pub fn lines_starting_with<'a, S>(
    lines: impl IntoIterator<Item = &'a S>,
    prefix: &str,
) -> Vec<&'a str>
where
    S: AsRef<str> + ?Sized + 'a,
{
    lines
        .into_iter()
        .map(AsRef::as_ref)
        .filter(|l| l.starts_with(prefix))
        .collect()
}

/// The `[logalarm] ALARM: …` lines `log:` alarms wrote, in order.
pub fn alarm_lines<'a, S>(lines: impl IntoIterator<Item = &'a S>) -> Vec<&'a str>
where
    S: AsRef<str> + ?Sized + 'a,
{
    lines_starting_with(lines, ALARM_PREFIX)
}

/// The numbers of the exit summary line of alarm `name` in `stderr`:
/// (delivered, failed, suppressed by alarm-freq, dropped on a full queue).
/// Fails the test unless there is exactly one such line. Takes
/// `text.lines()` as well as `&Vec<String>`.
pub fn summary<'a, S>(stderr: impl IntoIterator<Item = &'a S>, name: &str) -> (u64, u64, u64, u64)
where
    S: AsRef<str> + ?Sized + 'a,
{
    let stderr: Vec<&str> = stderr.into_iter().map(AsRef::as_ref).collect();
    let tagged = format!("alarm={name}");
    let lines: Vec<&str> = stderr
        .iter()
        .copied()
        .filter(|l| l.starts_with("[logalarm] info: ") && l.contains(" delivered, "))
        .filter(|l| l.contains(&format!("{tagged}:")) || l.ends_with(&tagged))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one summary line for alarm {name}:\n{}",
        stderr.join("\n")
    );
    let text = lines[0];
    let number_before = |what: &str| -> u64 {
        let end = text
            .find(what)
            .unwrap_or_else(|| panic!("no {what:?} in {text:?}"));
        let start = text[..end].rfind(' ').map_or(0, |i| i + 1);
        text[start..end]
            .parse()
            .unwrap_or_else(|e| panic!("bad number before {what:?} in {text:?}: {e}"))
    };
    (
        number_before(" delivered,"),
        number_before(" failed,"),
        number_before(" suppressed by alarm-freq,"),
        number_before(" dropped on a full queue"),
    )
}

// ---------------------------------------------------------------------------
// Polling for a condition, descriptors, CSV.

/// Polls `done` every few milliseconds until it holds (true) or `timeout`
/// passed (false); the caller then fails the test with a message that says
/// what was expected and what was seen.
pub fn poll_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
}

/// This machine's host name (`uname -n`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("read /proc/sys/kernel/hostname")
        .trim()
        .to_owned()
}

/// True while process `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesised command name.
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    state.is_some_and(|s| s != 'Z' && s != 'X')
}

/// Waits until process `pid` is gone (or a zombie waiting to be reaped);
/// false if it is still alive after [`PATIENCE`].
pub fn gone(pid: i32) -> bool {
    poll_until(PATIENCE, || !alive(pid))
}

/// A TCP port on 127.0.0.1 that nothing listens on right now (bound, then
/// released): for a test server to take, or to find a connection refused.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// How many descriptors process `pid` has open (the entries of `/proc/PID/fd`).
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/fd: {e}"))
        .count()
}

/// A self-signed certificate for 127.0.0.1 and localhost (`openssl req`),
/// written in `dir`: (cert, key) paths.
pub fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run openssl ({e}); install openssl (scripts/test does)")
        });
    assert!(
        out.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}
