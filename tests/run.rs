//! `logalarm run -- CMD` through the real binary, against real programs: a
//! Python script and a C program (built with gcc here) that crash with
//! SIGSEGV, exit codes passed on, lines matched from the process's stdout and
//! stderr, signals forwarded, restarts with backoff, `signal:` without a
//! target reaching the process, the process dying with a SIGKILLed logalarm,
//! and the shipped crash demo (examples/run.toml).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Done, Logalarm, Running, sh_quote};

/// `logalarm run ARGS -- CMD`, stdin `/dev/null`.
fn logalarm_run(args: &[&str], cmd: &[&str]) -> Logalarm {
    Logalarm::new().arg("run").args(args).arg("--").args(cmd)
}

/// Runs `logalarm run ARGS -- CMD` with stdin closed, to its end.
fn run(args: &[&str], cmd: &[&str]) -> Done {
    logalarm_run(args, cmd).output()
}

fn stderr(out: &Done) -> String {
    out.stderr_text()
}

/// The lines logalarm wrote to stderr that it did not write itself (the
/// process's, passed through).
fn passed_stderr(out: &Done) -> Vec<String> {
    out.stderr_lines()
        .iter()
        .filter(|l| !l.starts_with("[logalarm]"))
        .cloned()
        .collect()
}

/// A `cmd:` alarm named `name` that appends each message (with its newline) to `file`.
fn append_alarm(name: &str, file: &Path) -> String {
    format!("{name} cmd:cat >> {}", sh_quote(file))
}

fn read(path: &Path) -> String {
    String::from_utf8(std::fs::read(path).unwrap_or_default()).expect("utf-8")
}

/// The alarm messages in `file`, each starting with a line that begins with
/// a backquote (the command), followed by its output lines.
fn messages(file: &Path) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    for line in read(file).lines() {
        if line.starts_with('`') || out.is_empty() {
            out.push(vec![line.to_owned()]);
        } else if let Some(last) = out.last_mut() {
            last.push(line.to_owned());
        }
    }
    out
}

/// Lines of `lines` that start with `prefix`, in order.
fn starting<'a>(lines: &'a [String], prefix: &str) -> Vec<&'a str> {
    common::lines_starting_with(lines, prefix)
}

/// A Python crash: numbered lines to stdout and stderr, then SIGSEGV. Core
/// dumps are off, so the message is the same wherever the test runs.
const PY_CRASH: &str = r#"
import os, resource, signal, sys
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
print(f"pid {os.getpid()}", flush=True)
for i in range(1, 6):
    print(f"out {i}", flush=True)
    print(f"err {i}", file=sys.stderr, flush=True)
os.kill(os.getpid(), signal.SIGSEGV)
"#;

#[test]
fn python_segfault_fires_on_exit_with_its_last_lines() {
    let dir = common::scratch("run_python_segfault");
    let crash = common::write_file(&dir, "crash.py", PY_CRASH);
    let alarms = dir.join("alarms.txt");
    let out = run(
        &[
            "--alarm",
            &append_alarm("crash", &alarms),
            "--on-exit",
            "crash",
        ],
        &["python3", crash.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(139), "{}", stderr(&out));
    // Pass-through: stdout byte for byte; stderr holds the process's lines in order.
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let pid: u32 = stdout
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("pid "))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid line: {stdout:?}"));
    assert_eq!(
        stdout,
        format!("pid {pid}\nout 1\nout 2\nout 3\nout 4\nout 5\n")
    );
    assert_eq!(
        passed_stderr(&out),
        ["err 1", "err 2", "err 3", "err 4", "err 5"]
    );
    let got = messages(&alarms);
    assert_eq!(got.len(), 1, "one alarm: {got:#?}");
    let msg = &got[0];
    assert_eq!(
        msg[0],
        format!(
            "`python3 {}` (pid {pid}) was killed by signal 11 (SIGSEGV); its last 11 lines of output:",
            crash.display()
        )
    );
    // Both streams, each in its own order (how they interleave depends on
    // which reader woke first).
    let body = msg[1..].to_vec();
    assert_eq!(starting(&body, "pid"), [format!("pid {pid}")]);
    assert_eq!(
        starting(&body, "out"),
        ["out 1", "out 2", "out 3", "out 4", "out 5"]
    );
    assert_eq!(
        starting(&body, "err"),
        ["err 1", "err 2", "err 3", "err 4", "err 5"]
    );
    assert_eq!(body.len(), 11);
    assert!(
        stderr(&out).contains(&format!("(pid {pid}) was killed by signal 11 (SIGSEGV)")),
        "{}",
        stderr(&out)
    );
}

const C_CRASH: &str = r#"
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int main(void) {
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    char line[64];
    int n = snprintf(line, sizeof line, "pid %d\n", (int)getpid());
    write(1, line, n);
    for (int i = 1; i <= 5; i++) {
        n = snprintf(line, sizeof line, "line %d\n", i);
        write(1, line, n);
    }
    volatile int *nothing = NULL;
    *nothing = 1;
    return 0;
}
"#;

#[test]
fn c_segfault_carries_the_last_lines_asked_for() {
    let dir = common::scratch("run_c_segfault");
    std::fs::write(dir.join("crash.c"), C_CRASH).unwrap();
    let exe = dir.join("crash");
    let gcc = Command::new("gcc")
        .args(["-O0", "-o"])
        .arg(&exe)
        .arg(dir.join("crash.c"))
        .output()
        .expect("gcc must be installed to build the crashing program");
    assert!(
        gcc.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&gcc.stderr)
    );
    let alarms = dir.join("alarms.txt");
    let out = run(
        &[
            "--alarm",
            &append_alarm("crash", &alarms),
            "--alarm-segfault",
            "crash",
            "--last-lines",
            "3",
        ],
        &[exe.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(139), "{}", stderr(&out));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let pid = stdout
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("pid "))
        .unwrap_or_else(|| panic!("no pid line: {stdout:?}"))
        .to_owned();
    assert_eq!(
        stdout,
        format!("pid {pid}\nline 1\nline 2\nline 3\nline 4\nline 5\n")
    );
    assert!(passed_stderr(&out).is_empty(), "{}", stderr(&out));
    let got = messages(&alarms);
    assert_eq!(got.len(), 1, "one alarm: {got:#?}");
    let msg = &got[0];
    assert_eq!(
        msg[0],
        format!(
            "`{}` (pid {pid}) was killed by signal 11 (SIGSEGV); its last 3 lines of output:",
            exe.display()
        )
    );
    assert_eq!(msg[1..], ["line 3", "line 4", "line 5"]);
}

#[test]
fn exit_codes_pass_through_and_nonzero_alarms_only_when_asked() {
    let dir = common::scratch("run_exit_codes");
    let alarms = dir.join("alarms.txt");
    let alarm = append_alarm("bad", &alarms);
    let out = run(
        &["--alarm", &alarm, "--on-exit", "bad"],
        &["sh", "-c", "exit 3"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let out = run(
        &["--alarm", &alarm, "--on-exit", "bad"],
        &["sh", "-c", "echo fine"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(out.stdout, b"fine\n");
    assert!(
        !alarms.exists(),
        "no alarm without on-exit-nonzero or on exit 0"
    );

    let out = run(
        &["--alarm", &alarm, "--on-exit", "bad", "--on-exit-nonzero"],
        &["sh", "-c", "echo failing >&2; exit 3"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let text = read(&alarms);
    let (head, tail) = text.split_once(" (pid ").expect("a pid");
    assert_eq!(head, "`sh -c echo failing >&2; exit 3`");
    let tail = tail.split_once(')').expect("pid closes").1;
    assert_eq!(
        tail,
        " exited with code 3; its last line of output:\nfailing\n"
    );

    // A command that does not exist: 127, as a shell says, with a clear error.
    let out = run(
        &["--alarm", &alarm, "--on-exit", "bad"],
        &["no-such-command-x"],
    );
    assert_eq!(out.status.code(), Some(127));
    assert!(
        stderr(&out).contains("cannot start `no-such-command-x`: No such file or directory"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn lines_from_stdout_and_stderr_fire_with_their_source() {
    let dir = common::scratch("run_sources");
    let fired = dir.join("fired.txt");
    let alarm = format!(
        "src cmd:printf '%s %s\\n' \"$LOGALARM_SOURCE\" \"$LOGALARM_LINE\" >> {}",
        sh_quote(&fired)
    );
    let out = run(
        &[
            "--alarm",
            &alarm,
            "--log-alarm",
            "src MARK",
            "--alarm-freq",
            "0",
        ],
        &[
            "sh",
            "-c",
            "echo 'MARK on stdout'; echo 'MARK on stderr' >&2; echo quiet",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(out.stdout, b"MARK on stdout\nquiet\n");
    assert_eq!(passed_stderr(&out), ["MARK on stderr"]);
    let mut got: Vec<String> = read(&fired).lines().map(str::to_owned).collect();
    got.sort();
    assert_eq!(
        got,
        ["child:stderr MARK on stderr", "child:stdout MARK on stdout"]
    );
}

/// Starts `logalarm run ARGS -- CMD`, stdin `/dev/null`.
fn start(args: &[&str], cmd: &[&str]) -> Running {
    logalarm_run(args, cmd).start()
}

const PY_SIGNALS: &str = r#"
import os, signal, sys, time
log = sys.argv[1]
def note(what):
    with open(log, "a") as f:
        f.write(what + "\n")
note("start")
def usr1(sig, frame):
    note("USR1")
    print("got USR1", flush=True)
def term(sig, frame):
    note("TERM")
    sys.exit(7)
signal.signal(signal.SIGUSR1, usr1)
signal.signal(signal.SIGTERM, term)
print("ready", flush=True)
deadline = time.time() + 15
while time.time() < deadline:
    time.sleep(0.05)
sys.exit(1)
"#;

#[test]
fn signals_are_forwarded_and_a_stop_is_never_restarted() {
    let dir = common::scratch("run_signals");
    let child = common::write_file(&dir, "signals.py", PY_SIGNALS);
    let log = dir.join("signals.log");
    let alarms = dir.join("alarms.txt");
    let mut live = start(
        &[
            "--alarm",
            &append_alarm("bad", &alarms),
            "--on-exit",
            "bad",
            "--on-exit-nonzero",
            "--restart",
            "always",
            "--restart-delay",
            "100ms",
        ],
        &["python3", child.to_str().unwrap(), log.to_str().unwrap()],
    );
    live.wait_for_stdout_line("the process ready", |l| l == "ready");
    live.signal(libc::SIGUSR1);
    live.wait_for_stdout_line("the process got USR1", |l| l == "got USR1");
    live.signal(libc::SIGTERM);
    let done = live.finish();
    let (status, err) = (done.status, done.stderr_text());
    assert_eq!(status.code(), Some(7), "{err}");
    assert_eq!(read(&log), "start\nUSR1\nTERM\n", "one run, both signals");
    assert!(!alarms.exists(), "a stop is no failure: {}", read(&alarms));
    assert!(err.contains("SIGTERM: forwarded"), "{err}");
    assert!(!err.contains("restarting"), "{err}");
}

const PY_CRASH_TWICE: &str = r#"
import os, resource, signal, sys
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
count_file, crashes = sys.argv[1], int(sys.argv[2])
try:
    with open(count_file) as f:
        n = int(f.read())
except FileNotFoundError:
    n = 0
n += 1
with open(count_file, "w") as f:
    f.write(str(n))
print(f"run {n}", flush=True)
if n <= crashes:
    os.kill(os.getpid(), signal.SIGSEGV)
"#;

#[test]
fn restarts_on_failure_with_backoff_until_it_succeeds_or_gives_up() {
    let dir = common::scratch("run_restart");
    let child = common::write_file(&dir, "crash_twice.py", PY_CRASH_TWICE);
    let count = dir.join("count");
    let alarms = dir.join("alarms.txt");
    let started = Instant::now();
    let out = run(
        &[
            "--alarm",
            &append_alarm("crash", &alarms),
            "--on-exit",
            "crash",
            "--restart",
            "on-failure",
            "--restart-delay",
            "100ms",
        ],
        &[
            "python3",
            child.to_str().unwrap(),
            count.to_str().unwrap(),
            "2",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(read(&count), "3");
    assert_eq!(out.stdout, b"run 1\nrun 2\nrun 3\n");
    let got = messages(&alarms);
    assert_eq!(got.len(), 2, "{got:#?}");
    for (i, msg) in got.iter().enumerate() {
        assert!(
            msg[0].ends_with("was killed by signal 11 (SIGSEGV); its last line of output:"),
            "{msg:?}"
        );
        assert_eq!(msg[1..], [format!("run {}", i + 1)]);
    }
    let err = stderr(&out);
    assert!(err.contains("in 100ms (restart 1 in a row)"), "{err}");
    assert!(err.contains("in 200ms (restart 2 in a row)"), "{err}");
    // 100 ms then 200 ms of backoff.
    assert!(started.elapsed() >= Duration::from_millis(300));

    // Always crashing: two restarts allowed, so three runs, then the last code.
    let _ = std::fs::remove_file(&count);
    let _ = std::fs::remove_file(&alarms);
    let out = run(
        &[
            "--alarm",
            &append_alarm("crash", &alarms),
            "--on-exit",
            "crash",
            "--restart",
            "on-failure",
            "--restart-delay",
            "50ms",
            "--max-restarts",
            "2",
        ],
        &[
            "python3",
            child.to_str().unwrap(),
            count.to_str().unwrap(),
            "100",
        ],
    );
    assert_eq!(out.status.code(), Some(139), "{}", stderr(&out));
    assert_eq!(read(&count), "3");
    assert_eq!(messages(&alarms).len(), 3);
    assert!(
        stderr(&out).contains("giving up after 2 restarts in a row"),
        "{}",
        stderr(&out)
    );
}

const PY_RELOAD: &str = r#"
import signal, sys, time
def usr1(sig, frame):
    print("reloaded", flush=True)
    sys.exit(0)
signal.signal(signal.SIGUSR1, usr1)
print("please RELOAD ME", flush=True)
deadline = time.time() + 15
while time.time() < deadline:
    time.sleep(0.05)
sys.exit(1)
"#;

#[test]
fn signal_action_without_target_reaches_the_wrapped_process() {
    let dir = common::scratch("run_signal_action");
    let child = common::write_file(&dir, "reload.py", PY_RELOAD);
    let out = run(
        &[
            "--alarm",
            "poke signal:USR1",
            "--log-alarm",
            "poke RELOAD ME",
        ],
        &["python3", child.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(out.stdout, b"please RELOAD ME\nreloaded\n");

    // Outside `logalarm run` it stays a config error that says what to write.
    let out = Logalarm::new()
        .args(["--alarm", "poke signal:USR1", "--log-alarm", "poke x"])
        .run(b"");
    assert_eq!(out.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("has no target") && err.contains("logalarm run"),
        "{err}"
    );
}

#[test]
fn the_process_dies_with_a_sigkilled_logalarm() {
    let dir = common::scratch("run_pdeathsig");
    let child = common::write_file(
        &dir,
        "sleeper.py",
        "import os, time\nprint(f\"pid {os.getpid()}\", flush=True)\ntime.sleep(30)\n",
    );
    let mut live = start(
        &["--alarm", "crash log:", "--on-exit", "crash"],
        &["python3", child.to_str().unwrap()],
    );
    let line = live.wait_for_stdout_line("the pid line", |l| l.starts_with("pid "));
    let pid: i32 = line["pid ".len()..].parse().unwrap();
    live.signal(libc::SIGKILL);
    let status = live.finish().status;
    assert_eq!(status.code(), None, "killed");
    // Gone, or a zombie waiting for init to reap it.
    assert!(
        common::gone(pid),
        "process {pid} still alive after logalarm was killed: {}",
        std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default()
    );
}

#[test]
fn the_shipped_crash_demo_runs_as_documented() {
    let dir = common::scratch("run_crash_demo");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let out = Logalarm::new()
        .args(["run", "-c"])
        .arg(examples.join("run.toml"))
        .args(["--", "python3"])
        .arg(examples.join("crash_app.py"))
        // The demo keeps its run count in $TMPDIR.
        .env("TMPDIR", &dir)
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = out.stdout_lines();
    assert_eq!(starting(stdout, "INFO run ").len(), 3, "{stdout:#?}");
    assert_eq!(
        stdout.last().map(String::as_str),
        Some("INFO shutting down")
    );
    let err = out.stderr_lines();
    assert_eq!(
        starting(err, "[logalarm] cmd crash: CRASH REPORT").len(),
        2,
        "{err:#?}"
    );
    assert!(!dir.join("logalarm-crash-demo.count").exists());
}

/// A config written for `logalarm run` (a `signal:` with no target) passes
/// `check --run`, and is refused, with the way out named, by a plain `check`.
#[test]
fn check_run_accepts_a_signal_to_the_wrapped_process() {
    let args = [
        "--alarm",
        "reload signal:USR1",
        "--log-alarm",
        "reload config changed",
    ];
    let ok = Logalarm::new()
        .arg("check")
        .arg("--run")
        .args(args)
        .output();
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert!(String::from_utf8_lossy(&ok.stdout).ends_with("OK: 1 alarms, 1 rules\n"));
    let refused = Logalarm::new().arg("check").args(args).output();
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("logalarm run -- CMD"),
        "{}",
        stderr(&refused)
    );
}
