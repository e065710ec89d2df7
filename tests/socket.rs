//! The unix socket inputs through the real binary, with real clients:
//! util-linux `logger` (datagram, stream, RFC 3164, RFC 5424, octet
//! counting), Python's `logging.handlers.SysLogHandler` (both socket types),
//! many concurrent stream clients writing in pieces, a Loghub corpus replayed
//! over both kinds, hostile input (a 10 MB line, binary garbage, 10,000
//! connections), the socket file's life (mode, a regular file in the way, a
//! stale socket, a live one, removal at stop), `allow_uids`, and the limits
//! that keep one user from holding every slot (`max_per_uid`, `idle_timeout`).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use common::{ALARM_PREFIX, Done, Logalarm, PATIENCE, Running, path_str as s, sh_quote};

/// Peak RSS allowed for logalarm under hostile socket input, in KiB.
const RSS_LIMIT_KIB: u64 = 150 * 1024;

// ---------------------------------------------------------------------------
// Helpers.

/// A short directory for sockets (a socket path must fit in 107 bytes, and the
/// target directory may be deep), readable by every user; removed on drop.
struct SockDir(PathBuf);

impl SockDir {
    fn new(name: &str) -> SockDir {
        let dir = std::env::temp_dir().join(format!("la-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create socket dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod socket dir");
        SockDir(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for SockDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Starts logalarm with `args` (stdin `/dev/null`).
fn start(args: &[&str]) -> Running {
    Logalarm::new().args(args).start()
}

/// Waits until `n` alarm lines starting with `prefix` were logged.
fn wait_alarms(run: &mut Running, prefix: &str, n: usize) {
    let full = format!("{ALARM_PREFIX}{prefix}");
    run.stderr()
        .wait_for(&format!("{n} alarms {prefix:?}"), |seen| {
            seen.iter().filter(|l| l.starts_with(&full)).count() >= n
        });
}

/// Sends SIGTERM and waits for the end.
fn stop(run: Running) -> Done {
    run.signal(libc::SIGTERM);
    run.finish()
}

/// The text after `ALARM: ` of every alarm line with `prefix` (and its space).
fn alarms<'a>(done: &'a Done, prefix: &str) -> Vec<&'a str> {
    let full = format!("{ALARM_PREFIX}{prefix} ");
    done.stderr_lines()
        .iter()
        .filter_map(|l| l.strip_prefix(&full))
        .collect()
}

fn count(done: &Done, needle: &str) -> usize {
    done.stderr_lines()
        .iter()
        .filter(|l| l.contains(needle))
        .count()
}

fn assert_clean_exit(done: &Done) {
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    assert!(
        !done.stderr_text().contains("panicked"),
        "{}",
        done.stderr_text()
    );
}

/// Waits until the socket at `path` takes clients: a stream socket accepts a
/// connection (an empty one, which logalarm serves and forgets), a datagram
/// socket is bound.
fn wait_socket(path: &Path, stream: bool) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let ready = if stream {
            UnixStream::connect(path).is_ok()
        } else {
            UnixDatagram::unbound()
                .and_then(|d| d.connect(path))
                .is_ok()
        };
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "socket {} not ready after {PATIENCE:?}",
            path.display()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// An alarm `f` whose `cmd:` appends `SOURCE|HOST|APP|PID|SEVERITY|LINE` to `out`.
fn fields_alarm(out: &Path) -> String {
    format!(
        "f cmd:printf '%s|%s|%s|%s|%s|%s\\n' \"$LOGALARM_SOURCE\" \"$LOGALARM_HOST\" \"$LOGALARM_APP\" \"$LOGALARM_PID\" \"$LOGALARM_SEVERITY\" \"$LOGALARM_LINE\" >> {}",
        sh_quote(out)
    )
}

/// Runs a client to its end; returns its pid and what it left.
fn client(cmd: Logalarm) -> (u32, Done) {
    let run = cmd.start();
    (run.pid(), run.finish())
}

fn python(script: &str) -> Logalarm {
    Logalarm::program("python3").arg("-c").arg(script)
}

fn uid() -> u32 {
    // SAFETY: getuid(2) cannot fail.
    unsafe { libc::getuid() }
}

fn is_socket(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .expect("stat socket")
        .permissions()
        .mode()
        & 0o7777
}

// ---------------------------------------------------------------------------
// Real clients and syslog headers.

#[test]
fn logger_datagram_and_stream_clients() {
    let dir = SockDir::new("logger");
    let (dgram, stream, out) = (dir.join("d.sock"), dir.join("s.sock"), dir.join("out"));
    let run = start(&[
        "--socket",
        s(&dgram),
        "--socket-stream",
        s(&stream),
        "--alarm-freq",
        "0",
        "--alarm",
        &fields_alarm(&out),
        "--log-alarm",
        "f hello",
    ]);
    wait_socket(&dgram, false);
    wait_socket(&stream, true);
    let host = common::hostname();
    // logger writes the short host name in RFC 3164, the full one in RFC 5424.
    let short = host.split('.').next().unwrap_or_default().to_owned();
    let cases: [(&[&str], bool, &str, &str); 10] = [
        (&["-u"], false, "", "hello datagram"),
        (&["-d", "-u"], false, "", "hello explicit datagram"),
        (
            &["--rfc3164", "-u"],
            false,
            &short,
            "hello datagram rfc3164",
        ),
        (&["--rfc5424", "-u"], false, &host, "hello datagram rfc5424"),
        (
            &[
                "--rfc5424",
                "--msgid",
                "M1",
                "--sd-id",
                "zoo@123",
                "--sd-param",
                r#"tiger="hun\]gry""#,
                "-u",
            ],
            false,
            &host,
            "hello datagram with structured data",
        ),
        (&["-T", "-u"], true, "", "hello stream"),
        (
            &["-T", "--rfc3164", "-u"],
            true,
            &short,
            "hello stream rfc3164",
        ),
        (
            &["-T", "--rfc5424", "-u"],
            true,
            &host,
            "hello stream rfc5424",
        ),
        (
            &["-T", "--octet-count", "-u"],
            true,
            "",
            "hello octet count",
        ),
        (
            &["-T", "--rfc5424", "--octet-count", "-u"],
            true,
            &host,
            "hello rfc5424 octet count",
        ),
    ];
    for (n, (flags, is_stream, want_host, text)) in cases.iter().enumerate() {
        let path = if *is_stream { &stream } else { &dgram };
        let (pid, output) = client(Logalarm::program("logger").args(*flags).arg(path).args([
            "-t",
            "myapp",
            "-p",
            "daemon.err",
            "--id=4242",
            text,
        ]));
        assert!(output.status.success(), "logger {flags:?}: {output:?}");
        let source = if *is_stream {
            format!("socket:{} (pid {pid}, uid {})", stream.display(), uid())
        } else {
            format!("socket:{}", dgram.display())
        };
        let lines = common::wait_for_lines(&out, n + 1);
        assert_eq!(
            lines[n],
            format!("{source}|{want_host}|myapp|4242|err|{text}"),
            "logger {flags:?}"
        );
    }
    // Lines on logger's stdin: one message each, on one connection.
    let mut child = Logalarm::program("logger")
        .args([
            "-T",
            "-u",
            s(&stream),
            "-t",
            "multi",
            "-p",
            "local0.warning",
        ])
        .stdin_piped()
        .start();
    let pid = child.pid();
    child.write_stdin(b"hello one\nhello two\n");
    child.close_stdin();
    assert!(child.finish().status.success());
    let lines = common::wait_for_lines(&out, cases.len() + 2);
    let source = format!("socket:{} (pid {pid}, uid {})", stream.display(), uid());
    assert_eq!(
        lines[cases.len()..],
        [
            format!("{source}||multi||warning|hello one"),
            format!("{source}||multi||warning|hello two"),
        ]
    );
    let done = stop(run);
    assert_clean_exit(&done);
    assert!(!dgram.exists() && !stream.exists(), "sockets left behind");
}

const SYSLOG_HANDLER: &str = r#"
import logging, logging.handlers, socket, sys
kind, path, text = sys.argv[1:4]
if kind == "stream":
    handler = logging.handlers.SysLogHandler(address=path, socktype=socket.SOCK_STREAM)
else:
    handler = logging.handlers.SysLogHandler(address=path)
log = logging.getLogger("t")
log.propagate = False
log.addHandler(handler)
log.error(text)
log.warning(text + " again")
handler.close()
"#;

#[test]
fn python_syslog_handler_both_socket_types() {
    let dir = SockDir::new("python");
    let (dgram, stream, out) = (dir.join("d.sock"), dir.join("s.sock"), dir.join("out"));
    let run = start(&[
        "--socket",
        s(&dgram),
        "--socket-stream",
        s(&stream),
        "--alarm-freq",
        "0",
        "--alarm",
        &fields_alarm(&out),
        "--log-alarm",
        "f from python",
    ]);
    wait_socket(&dgram, false);
    wait_socket(&stream, true);
    let (_, output) =
        client(python(SYSLOG_HANDLER).args(["dgram", s(&dgram), "from python dgram"]));
    assert!(output.status.success(), "{output:?}");
    let lines = common::wait_for_lines(&out, 2);
    let d = format!("socket:{}", dgram.display());
    assert_eq!(
        lines,
        [
            format!("{d}||||err|from python dgram"),
            format!("{d}||||warning|from python dgram again"),
        ]
    );
    let (pid, output) =
        client(python(SYSLOG_HANDLER).args(["stream", s(&stream), "from python stream"]));
    assert!(output.status.success(), "{output:?}");
    let lines = common::wait_for_lines(&out, 4);
    let st = format!("socket:{} (pid {pid}, uid {})", stream.display(), uid());
    assert_eq!(
        lines[2..],
        [
            format!("{st}||||err|from python stream"),
            format!("{st}||||warning|from python stream again"),
        ]
    );
    // One datagram of several lines: each line alarms, all with its header.
    let (_, output) = client(
        python(
            "import socket, sys\n\
             s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
             s.sendto(b'<30>Nov 21 08:00:00 multi[7]: from python first\\nfrom python second\\n\\0', sys.argv[1])\n",
        )
        .arg(s(&dgram)),
    );
    assert!(output.status.success(), "{output:?}");
    let lines = common::wait_for_lines(&out, 6);
    assert_eq!(
        lines[4..],
        [
            format!("{d}||multi|7|info|from python first"),
            format!("{d}||multi|7|info|from python second"),
        ]
    );
    assert_clean_exit(&stop(run));
}

// ---------------------------------------------------------------------------
// Many clients at once.

const INTERLEAVED: &str = r#"
import random, socket, sys, time
path, clients, lines = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(7)
def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s
half = connect()
half.sendall(b"half a line from a client that ")
socks = [connect() for _ in range(clients)]
data = [b"".join(b"client %d line %d END\n" % (i, j) for j in range(lines)) for i in range(clients)]
pos = [0] * clients
live = list(range(clients))
while live:
    i = rng.choice(live)
    k = rng.randint(1, 40)
    socks[i].sendall(data[i][pos[i]:pos[i] + k])
    pos[i] += k
    if pos[i] >= len(data[i]):
        live.remove(i)
        socks[i].close()
    if rng.random() < 0.02:
        time.sleep(0.001)
half.sendall(b"disconnects without a newline")
half.close()
"#;

#[test]
fn concurrent_stream_clients_writing_in_pieces() {
    let dir = SockDir::new("concurrent");
    let sock = dir.join("s.sock");
    let (clients, per_client) = (20, 200);
    let mut run = start(&[
        "--socket-stream",
        s(&sock),
        "--alarm-freq",
        "0",
        "--queue-size",
        "100000",
        "--alarm",
        "c log:c",
        "--log-alarm",
        "c client",
    ]);
    wait_socket(&sock, true);
    let (_, output) =
        client(python(INTERLEAVED).args([s(&sock), &clients.to_string(), &per_client.to_string()]));
    assert!(output.status.success(), "{output:?}");
    let total = clients * per_client + 1;
    wait_alarms(&mut run, "c ", total);
    let done = stop(run);
    assert_clean_exit(&done);
    let mut got: Vec<&str> = alarms(&done, "c");
    got.sort_unstable();
    let mut want: Vec<String> = (0..clients)
        .flat_map(|i| (0..per_client).map(move |j| format!("client {i} line {j} END")))
        .collect();
    want.push("half a line from a client that disconnects without a newline".to_owned());
    want.sort_unstable();
    assert_eq!(got, want, "every line exactly once, none mixed");
}

// ---------------------------------------------------------------------------
// A Loghub corpus over both kinds.

/// Sends each line of a file as one syslog message (`<38>` + the line:
/// auth.info, the line's own date, host and `sshd[PID]:` as the RFC 3164 header).
const REPLAY: &str = r#"
import socket, sys
kind, path, corpus = sys.argv[1:4]
lines = [l for l in open(corpus, "rb").read().split(b"\n") if l]
msgs = [b"<38>" + l for l in lines]
if kind == "dgram":
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    for m in msgs:
        s.sendto(m, path)
else:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    if kind == "octets":
        s.sendall(b"".join(b"%d %s" % (len(m), m) for m in msgs))
    else:
        s.sendall(b"".join(m + b"\n" for m in msgs))
    s.close()
print(len(msgs))
"#;

/// How many rows of a Loghub `*_structured.csv` have each EventId.
fn event_counts(csv: &Path) -> BTreeMap<String, usize> {
    let (_, output) = client(
        python(
            "import csv, collections, sys\n\
             c = collections.Counter(r['EventId'] for r in csv.DictReader(open(sys.argv[1], newline='')))\n\
             for k, v in c.items(): print(k, v)\n",
        )
        .arg(csv),
    );
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.parse().expect("count")))
        .collect()
}

#[test]
fn loghub_openssh_replayed_over_both_kinds() {
    let corpus = common::corpus().join("OpenSSH");
    let log = corpus.join("OpenSSH_2k.log");
    let counts = event_counts(&corpus.join("OpenSSH_2k.log_structured.csv"));
    let count = |id: &str| counts.get(id).copied().unwrap_or(0);
    // E9 `Failed password for <*> from <*> port <*> ssh2` and E10 (the same for
    // an invalid user; one user name starts with a space), not E14 (`message
    // repeated <*> times: [ Failed password …]`); E27 `reverse mapping checking getaddrinfo for <*> [<*>]
    // failed - POSSIBLE BREAK-IN ATTEMPT!`. The rules are anchored at `^`: they
    // match only once the syslog header is off the line.
    let (fail, breakin) = (count("E9") + count("E10"), count("E27"));
    assert!(fail > 0 && breakin > 0, "{counts:?}");
    let dir = SockDir::new("loghub");
    let (dgram, stream) = (dir.join("d.sock"), dir.join("s.sock"));
    let config = dir.join("alarms.toml");
    fs::write(
        &config,
        format!(
            r#"alarm_freq = 0
queue_size = 100000

[[input]]
socket = "{}"
type = "dgram"

[[input]]
socket = "{}"
type = "stream"

[alarm.fail]
action = "log:fail"

[alarm.breakin]
action = "log:breakin"

[[rule]]
regex = '^Failed password for .+ from \S+ port \d+ ssh2$'
alarm = "fail"

[[rule]]
regex = '^reverse mapping checking getaddrinfo for \S+ \[[^\]]+\] failed - POSSIBLE BREAK-IN ATTEMPT!$'
alarm = "breakin"
"#,
            dgram.display(),
            stream.display()
        ),
    )
    .expect("write config");
    let mut run = start(&["-c", s(&config)]);
    wait_socket(&dgram, false);
    wait_socket(&stream, true);
    let rounds = [("dgram", &dgram), ("stream", &stream), ("octets", &stream)];
    for (round, (kind, path)) in rounds.iter().enumerate() {
        let (_, output) = client(python(REPLAY).args([kind, s(path), s(&log)]));
        assert!(output.status.success(), "{kind}: {output:?}");
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "2000");
        wait_alarms(&mut run, "fail ", fail * (round + 1));
        wait_alarms(&mut run, "breakin ", breakin * (round + 1));
    }
    let done = stop(run);
    assert_clean_exit(&done);
    assert_eq!(alarms(&done, "fail").len(), fail * rounds.len());
    assert_eq!(alarms(&done, "breakin").len(), breakin * rounds.len());
    assert!(
        alarms(&done, "breakin")
            .iter()
            .all(|m| m.starts_with("reverse mapping")),
        "header stripped"
    );
}

// ---------------------------------------------------------------------------
// Hostile input.

const LONG_LINE: &str = r#"
import socket, sys
path = sys.argv[1]
def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s
big, normal = connect(), connect()
chunk = b"x" * 65536
for i in range(160):                 # 10 MiB, no newline
    big.sendall(chunk)
    if i % 16 == 0:
        normal.sendall(b"normal MARK line %d\n" % (i // 16))
big.close()
normal.close()
"#;

#[test]
fn ten_megabytes_without_a_newline_stay_bounded() {
    let dir = SockDir::new("longline");
    let sock = dir.join("s.sock");
    let mut run = start(&[
        "--socket-stream",
        s(&sock),
        "--alarm-freq",
        "0",
        "--alarm-msg-size",
        "64",
        "--alarm",
        "mark log:mark",
        "--alarm",
        "piece log:piece",
        "--log-alarm",
        "mark MARK",
        "--log-alarm",
        "piece ^x{100}",
    ]);
    wait_socket(&sock, true);
    let (_, output) = client(python(LONG_LINE).arg(s(&sock)));
    assert!(output.status.success(), "{output:?}");
    // 10 MiB in pieces of 64 KiB, each still matched.
    wait_alarms(&mut run, "piece ", 160);
    wait_alarms(&mut run, "mark ", 10);
    let peak = run.peak_rss_kib();
    eprintln!("10 MiB line: peak RSS {peak} KiB");
    let done = stop(run);
    assert_clean_exit(&done);
    assert!(peak < RSS_LIMIT_KIB, "peak RSS {peak} KiB");
    assert_eq!(alarms(&done, "piece").len(), 160);
    let marks: Vec<String> = (0..10).map(|i| format!("normal MARK line {i}")).collect();
    assert_eq!(alarms(&done, "mark"), marks);
    assert_eq!(
        count(&done, "is longer than 65536 bytes; matching it in pieces"),
        1,
        "one warning per connection: {}",
        done.stderr_text()
    );
}

const GARBAGE: &str = r#"
import random, socket, sys
dgram_path, stream_path = sys.argv[1:3]
rng = random.Random(11)
def junk(n):
    return bytes(rng.getrandbits(8) for _ in range(n))
specials = [b"<", b"<13>", b"<13>1 ", b"<999>", b"999999 <1", b"12 <1", b"\x00", b"\n", b"\r\n",
            b"\xff\xfe", b"<13>Nov 21 08:00:00 ", b"[", b"]", b"-"]
d = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for i in range(300):
    size = rng.choice([0, 1, 5, 100, 4000, 70000]) if i % 10 else 70000
    d.sendto(rng.choice(specials) + junk(size), dgram_path)
for c in range(20):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(stream_path)
    for _ in range(50):
        s.sendall(rng.choice(specials) + junk(rng.randint(0, 3000)))
    s.close()
"#;

#[test]
fn binary_garbage_does_not_stop_the_inputs() {
    let dir = SockDir::new("garbage");
    let (dgram, stream) = (dir.join("d.sock"), dir.join("s.sock"));
    let mut run = start(&[
        "--socket",
        s(&dgram),
        "--socket-stream",
        s(&stream),
        "--alarm-freq",
        "0",
        "--alarm",
        "ok log:ok",
        "--log-alarm",
        "ok ^after the garbage",
    ]);
    wait_socket(&dgram, false);
    wait_socket(&stream, true);
    let (_, output) = client(python(GARBAGE).args([s(&dgram), s(&stream)]));
    assert!(output.status.success(), "{output:?}");
    for (path, flag) in [(&dgram, "-u"), (&stream, "-Tu")] {
        let (_, output) =
            client(Logalarm::program("logger").args([flag, s(path), "after the garbage"]));
        assert!(output.status.success(), "{output:?}");
    }
    wait_alarms(&mut run, "ok ", 2);
    assert!(run.is_running());
    let peak = run.peak_rss_kib();
    eprintln!("garbage: peak RSS {peak} KiB");
    let done = stop(run);
    assert_clean_exit(&done);
    assert!(peak < RSS_LIMIT_KIB, "peak RSS {peak} KiB");
    assert_eq!(
        alarms(&done, "ok"),
        ["after the garbage", "after the garbage"]
    );
    // Datagrams over 64 KiB were cut, and said so (damped to one warning per 10 s).
    assert!(
        count(&done, "bytes was cut to 65536") >= 1,
        "{}",
        done.stderr_text()
    );
}

const FLOOD: &str = r#"
import resource, socket, sys
path, want = sys.argv[1], int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
limit = want + 100 if hard == resource.RLIM_INFINITY else min(hard, want + 100)
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
held, refused = [], 0
for _ in range(min(want, limit - 100)):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(path)
        held.append(s)
    except (BlockingIOError, ConnectionRefusedError):
        refused += 1
        s.close()
print("held", len(held), "refused", refused, flush=True)
sys.stdin.readline()
for s in held:
    s.close()
print("closed", flush=True)
"#;

#[test]
fn ten_thousand_connections_held_then_closed() {
    let dir = SockDir::new("flood");
    let sock = dir.join("s.sock");
    let mut run = start(&[
        "--socket-stream",
        s(&sock),
        // One user may hold every slot here, and for as long as it likes:
        // this is about the socket's own client limit.
        "--socket-max-per-uid",
        "1024",
        "--socket-idle-timeout",
        "0",
        "--alarm",
        "ok log:ok",
        "--log-alarm",
        "ok after the flood",
    ]);
    wait_socket(&sock, true);
    let mut flood = python(FLOOD)
        .args([s(&sock), "10000"])
        .stdin_piped()
        .start();
    let held = flood.wait_for_stdout_line("connections held", |l| l.starts_with("held "));
    let n: usize = held
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("held count");
    eprintln!("flood: {held}");
    assert!(
        n > 1024,
        "too few connections held to reach the client limit: {held}"
    );
    run.wait_for_stderr_line("the client limit warning", |l| {
        l.contains("clients connected: not accepting more until one leaves")
    });
    assert!(run.is_running());
    let peak = run.peak_rss_kib();
    eprintln!("flood: peak RSS {peak} KiB with {n} connections held");
    assert!(
        peak < RSS_LIMIT_KIB,
        "peak RSS {peak} KiB with {n} connections"
    );
    flood.write_stdin(b"\n");
    flood.wait_for_stdout_line("connections closed", |l| l == "closed");
    assert!(flood.finish().status.success());
    let (_, output) =
        client(Logalarm::program("logger").args(["-Tu", s(&sock), "after the flood"]));
    assert!(output.status.success(), "{output:?}");
    wait_alarms(&mut run, "ok ", 1);
    let done = stop(run);
    assert_clean_exit(&done);
    assert_eq!(alarms(&done, "ok"), ["after the flood"]);
    assert_eq!(
        count(
            &done,
            "clients connected: not accepting more until one leaves"
        ),
        1,
        "{}",
        done.stderr_text()
    );
}

// ---------------------------------------------------------------------------
// The socket file.

#[test]
fn socket_modes_default_umask_and_configured() {
    let dir = SockDir::new("modes");
    let (a, b) = (dir.join("a.sock"), dir.join("b.sock"));
    // The default 0660 exactly, whatever the umask.
    let run = Logalarm::program("/bin/sh")
        .arg("-c")
        .arg(format!(
            "umask 077; exec {} --socket {} --socket-stream {} --alarm 'x log:' --log-alarm 'x never'",
            env!("CARGO_BIN_EXE_logalarm"),
            sh_quote(&a),
            sh_quote(&b)
        ))
        .start();
    wait_socket(&a, false);
    wait_socket(&b, true);
    assert_eq!((mode_of(&a), mode_of(&b)), (0o660, 0o660));
    assert_clean_exit(&stop(run));
    assert!(!a.exists() && !b.exists(), "sockets removed after SIGTERM");
    // `--socket-mode` sets the sockets defined before it.
    let run = start(&[
        "--socket",
        s(&a),
        "--socket-mode",
        "0600",
        "--socket-stream",
        s(&b),
        "--alarm",
        "x log:",
        "--log-alarm",
        "x never",
    ]);
    wait_socket(&a, false);
    wait_socket(&b, true);
    assert_eq!((mode_of(&a), mode_of(&b)), (0o600, 0o660));
    assert_clean_exit(&stop(run));
    assert!(!a.exists() && !b.exists(), "sockets removed after SIGTERM");
}

#[test]
fn a_regular_file_in_the_way_is_refused_and_untouched() {
    let dir = SockDir::new("regular");
    let path = dir.join("taken");
    fs::write(&path, b"precious\n").expect("write");
    let out = Logalarm::new()
        .args([
            "--socket-stream",
            s(&path),
            "--alarm",
            "x log:",
            "--log-alarm",
            "x y",
        ])
        .run(b"");
    let stderr = out.stderr_text();
    assert_eq!(out.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{} exists and is not a socket", path.display())),
        "{stderr}"
    );
    assert_eq!(fs::read(&path).expect("read"), b"precious\n");
    // allow_uids cannot work on a datagram socket: refused, not ignored.
    let dg = dir.join("d.sock");
    let out = Logalarm::new()
        .args([
            "--socket",
            s(&dg),
            "--socket-allow-uid",
            "0",
            "--alarm",
            "x log:",
            "--log-alarm",
            "x y",
        ])
        .run(b"");
    let stderr = out.stderr_text();
    assert_eq!(out.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("allow_uids applies to stream sockets only"),
        "{stderr}"
    );
    assert!(!dg.exists());
}

#[test]
fn stale_socket_is_replaced_and_live_one_refused() {
    let dir = SockDir::new("stale");
    for (kind, stream) in [("--socket", false), ("--socket-stream", true)] {
        let path = dir.join("s.sock");
        let args = [
            kind,
            s(&path),
            "--alarm-freq",
            "0",
            "--alarm",
            "ok log:ok",
            "--log-alarm",
            "ok ^alive",
        ];
        let first = start(&args);
        wait_socket(&path, stream);
        first.signal(libc::SIGKILL);
        let status = first.finish().status;
        assert_eq!(status.code(), None, "killed by a signal");
        assert!(is_socket(&path), "the killed run left its socket");
        // A new run replaces the stale socket.
        let mut second = start(&args);
        second.wait_for_stderr_line("the stale socket note", |l| {
            l.contains(&format!("removing stale socket {}", path.display()))
        });
        wait_socket(&path, stream);
        // A third run is refused while the second serves, and leaves its socket alone.
        let out = Logalarm::new().args(args).run(b"");
        let stderr = out.stderr_text();
        assert_eq!(out.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "socket {} is in use by another process",
                path.display()
            )),
            "{stderr}"
        );
        let flag = if stream { "-Tu" } else { "-u" };
        let (_, output) =
            client(Logalarm::program("logger").args([flag, s(&path), "alive and well"]));
        assert!(output.status.success(), "{output:?}");
        wait_alarms(&mut second, "ok ", 1);
        let done = stop(second);
        assert_clean_exit(&done);
        assert_eq!(alarms(&done, "ok"), ["alive and well"]);
        assert!(!path.exists(), "socket removed after SIGTERM");
    }
}

// ---------------------------------------------------------------------------
// allow_uids.

#[test]
fn allow_uids_refuses_other_users() {
    // SAFETY: geteuid(2) cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to run a client as another user (CI runs as root)");
        return;
    }
    let dir = SockDir::new("allow");
    let (sock, out) = (dir.join("s.sock"), dir.join("out"));
    let mut run = start(&[
        "--socket-stream",
        s(&sock),
        // Let everyone reach the socket, so that the allow-list is what refuses.
        "--socket-mode",
        "0666",
        "--socket-allow-uid",
        "0",
        "--alarm-freq",
        "0",
        "--alarm",
        &fields_alarm(&out),
        "--log-alarm",
        "f ^from ",
    ]);
    wait_socket(&sock, true);
    let (pid, _) = client(
        Logalarm::program("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(["logger", "-Tu", s(&sock), "from nobody"]),
    );
    run.wait_for_stderr_line("the refusal", |l| {
        l.contains(&format!(
            "refused a client (pid {pid}, uid 65534): its user id is not in allow_uids"
        ))
    });
    let (pid, output) = client(Logalarm::program("logger").args(["-Tu", s(&sock), "from root"]));
    assert!(output.status.success(), "{output:?}");
    let lines = common::wait_for_lines(&out, 1);
    assert_eq!(
        lines,
        [format!(
            "socket:{} (pid {pid}, uid 0)||root||notice|from root",
            sock.display()
        )]
    );
    let done = stop(run);
    assert_clean_exit(&done);
    assert_eq!(fs::read_to_string(&out).expect("out").lines().count(), 1);
}

// ---------------------------------------------------------------------------
// One user cannot hold every slot: max_per_uid and idle_timeout.

/// Raises this test process's descriptor limit (`RLIMIT_NOFILE`) to at least
/// `n` (root may raise the hard limit too); logalarm inherits it.
fn raise_nofile(n: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) and setrlimit(2) with a valid pointer.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < n {
            lim.rlim_cur = n;
            lim.rlim_max = lim.rlim_max.max(n);
            assert_eq!(
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim),
                0,
                "raise RLIMIT_NOFILE to {n}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// Opens `n` stream connections to `path` (waiting, while it is not yet
/// listening, for it to be) and keeps them, sending nothing; fails the test
/// if that takes longer than [`PATIENCE`] (connect(2) blocks while the
/// listen queue is full: nobody takes the connections).
fn idle_connections(path: &Path, n: usize) -> Vec<UnixStream> {
    let path = path.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut held = Vec::with_capacity(n);
        while held.len() < n {
            match UnixStream::connect(&path) {
                Ok(stream) => held.push(stream),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                    ) =>
                {
                    thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("connection {}: {e}", held.len()),
            }
        }
        let _ = tx.send(held);
    });
    rx.recv_timeout(PATIENCE)
        .unwrap_or_else(|e| panic!("{n} connections not made within {PATIENCE:?}: {e}"))
}

#[test]
fn idle_connections_of_one_user_starve_no_other_and_are_closed() {
    // SAFETY: geteuid(2) cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to run a client as another user (CI runs as root)");
        return;
    }
    const IDLE: usize = 2000;
    raise_nofile(IDLE as u64 + 1000);
    let dir = SockDir::new("peruid");
    let (sock, out) = (dir.join("s.sock"), dir.join("out"));
    let run = start(&[
        "--socket-stream",
        s(&sock),
        // Let every user reach the socket.
        "--socket-mode",
        "0666",
        // Short, for the test (default 60 s), yet long enough for the 2,000
        // connections to be made first; max_per_uid keeps its default, 64.
        "--socket-idle-timeout",
        "10s",
        "--alarm-freq",
        "0",
        "--alarm",
        &fields_alarm(&out),
        "--log-alarm",
        "f ^from ",
    ]);
    // 2,000 idle connections of this user (root): 64 are served, the others
    // refused at once. Without the limit they would hold all 1,024 slots and
    // fill the listen queue.
    let mut idle = idle_connections(&sock, IDLE);
    // Another user is served while they are held.
    let (pid, output) = client(
        Logalarm::program("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(["logger", "-Tu", s(&sock), "from nobody"]),
    );
    assert!(output.status.success(), "{output:?}");
    let lines = common::wait_for_lines(&out, 1);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let source = format!("socket:{} (pid {pid}, uid 65534)|", sock.display());
    assert!(
        lines[0].starts_with(&source) && lines[0].ends_with("|notice|from nobody"),
        "{lines:?}"
    );
    // Every idle connection is closed: the refused ones at once, the served
    // ones after the idle timeout.
    for (i, stream) in idle.iter_mut().enumerate() {
        stream
            .set_read_timeout(Some(PATIENCE))
            .expect("read timeout");
        let mut byte = [0u8; 1];
        match std::io::Read::read(stream, &mut byte) {
            Ok(0) => {}
            other => panic!("idle connection {i} not closed by logalarm: {other:?}"),
        }
    }
    let done = stop(run);
    assert_clean_exit(&done);
    let totals = format!(
        "[logalarm] info: socket {}: {} clients refused (allow_uids, max_per_uid), 64 idle clients disconnected (idle_timeout)",
        sock.display(),
        IDLE - 64
    );
    assert_eq!(count(&done, &totals), 1, "{}", done.stderr_text());
    // Logged, at most once per 10 s.
    let warned = count(&done, "its user already has 64 connections (max_per_uid)");
    assert!((1..10).contains(&warned), "{}", done.stderr_text());
    assert_eq!(fs::read_to_string(&out).expect("out").lines().count(), 1);
}
