//! Shared helpers for the integration tests: they run the built `logalarm`
//! binary as a user would, through the one harness in [`harness`]
//! ([`Logalarm`], [`Running`], [`Done`]).
//!
//! Every wait in here has a deadline. A logalarm (or helper process) that hangs
//! is killed and the test fails with a message saying what it was waiting for;
//! it never hangs the test run.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

mod harness;
pub mod http_server;

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
// Other programs: the test servers.

/// Waits for `child` (a test server, not logalarm: that runs in a
/// [`Logalarm`]) to exit; after `timeout` kills it, reaps it and fails the
/// test.
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

/// Reads `stream` (a test server's output) line by line (split at `\n`,
/// any `\r` kept, invalid UTF-8 replaced, the time taken out of logalarm's
/// own lines: [`untimed`]) on a thread of its own; the channel closes with
/// the stream.
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

// ---------------------------------------------------------------------------
// Files.

/// Writes `text` to `dir/name` and returns that path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// `path` as `&str` (the tests' paths are UTF-8).
pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

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

/// `bytes` split into lines at `\n` (a final line without one counts; any `\r`
/// is kept; invalid UTF-8 is replaced; the time taken out of logalarm's own
/// lines: [`untimed`]), as [`Lines`] gives them.
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

/// Header `name` (spelt as the server recorded it) of a request or mail a
/// test server recorded as JSON (`{"headers": {NAME: VALUE, …}, …}`).
pub fn header<'a>(record: &'a serde_json::Value, name: &str) -> &'a str {
    record["headers"][name]
        .as_str()
        .unwrap_or_else(|| panic!("no header {name} in {record:#}"))
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
