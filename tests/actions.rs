//! The action plugins and the alarm life cycle through the real binary: `cmd:`
//! (stdin, environment, failures, timeouts killing the process group, no
//! blocking of other alarms), `signal:` against a real process, `log:`,
//! `alarm-freq`, the drain deadline, SIGTERM, and a closed stdout.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Done, Logalarm, PATIENCE, Running, alarm_lines, sh_quote, summary};

/// Runs logalarm with `args` on `input` to the end.
fn run(args: &[&str], input: &[u8]) -> Done {
    Logalarm::new().args(args).run(input)
}

/// The one `[logalarm] LEVEL: …` line about alarm `name` that ends with `tail`.
fn logged<'a>(stderr: &'a [String], level: &str, name: &str, tail: &str) -> &'a str {
    let prefix = format!("[logalarm] {level}: ");
    let tagged = format!("alarm={name}");
    let hits: Vec<&String> = stderr
        .iter()
        .filter(|l| l.starts_with(&prefix) && l.contains(&tagged) && l.contains(tail))
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "expected one {level} line for alarm {name} with {tail:?}: {stderr:#?}"
    );
    hits[0]
}

/// Asserts that a cmd's shell (`sh_pid`, leader of its process group) and its
/// background child are gone; kills the group first if they are not, so a
/// failing test leaves no processes behind.
fn assert_group_gone(sh_pid: i32, bg_pid: i32) {
    let (sh, bg) = (common::gone(sh_pid), common::gone(bg_pid));
    if !(sh && bg) {
        // SAFETY: signalling the process group the cmd action created for its shell.
        unsafe { libc::kill(-sh_pid, libc::SIGKILL) };
    }
    assert!(sh, "the cmd's shell (pid {sh_pid}) is still alive");
    assert!(
        bg,
        "the cmd's background child (pid {bg_pid}) is still alive"
    );
}

fn read_pid(path: &Path) -> i32 {
    let text = common::wait_for_file(path, PATIENCE, |b| b.ends_with(b"\n"));
    String::from_utf8(text)
        .unwrap()
        .trim()
        .parse()
        .expect("a pid")
}

// ---------------------------------------------------------------- cmd:

#[test]
fn cmd_gets_the_message_on_stdin_and_the_environment() {
    let dir = common::scratch("actions_cmd_env");
    let (msg, env) = (dir.join("msg"), dir.join("env"));
    let action = format!(
        "mail cmd:cat >> {}; printf 'ALARM=%s\\nLINE=%s\\nRULE=%s\\nSOURCE=%s\\nSUPPRESSED=%s\\nTRUNCATED=%s\\n' \
         \"$LOGALARM_ALARM\" \"$LOGALARM_LINE\" \"$LOGALARM_RULE\" \"$LOGALARM_SOURCE\" \"$LOGALARM_SUPPRESSED\" \
         \"$LOGALARM_TRUNCATED\" >> {}; echo to-stdout; echo to-stderr >&2",
        sh_quote(&msg),
        sh_quote(&env)
    );
    let line = "TERRIBLE ALARM: the world \"exploded\" $HOME `id` \\ ; é";
    let input = format!("ok\n{line}\r\nfine\n");
    let done = run(
        &["--alarm", &action, "--log-alarm", r"mail world.*explo\w+"],
        input.as_bytes(),
    );
    let stderr = done.stderr_text();
    assert_eq!(done.status.code(), Some(0), "{stderr}");
    // Pass-through is untouched by the command's output.
    assert_eq!(done.stdout_lines(), ["ok", &format!("{line}\r"), "fine"]);
    assert_eq!(
        std::fs::read(&msg).unwrap(),
        format!("{line}\n").into_bytes(),
        "stdin: the message and one newline"
    );
    assert_eq!(
        std::fs::read_to_string(&env).unwrap(),
        format!(
            "ALARM=mail\nLINE={line}\nRULE=world.*explo\\w+\nSOURCE=stdin\nSUPPRESSED=0\nTRUNCATED=\n"
        )
    );
    // The command's own output goes to stderr, tagged.
    let cmd_lines = common::lines_starting_with(done.stderr_lines(), "[logalarm] cmd mail: ");
    assert_eq!(cmd_lines.len(), 2, "{stderr}");
    assert!(
        cmd_lines.contains(&"[logalarm] cmd mail: to-stdout"),
        "{stderr}"
    );
    assert!(
        cmd_lines.contains(&"[logalarm] cmd mail: to-stderr"),
        "{stderr}"
    );
    assert_eq!(summary(done.stderr_lines(), "mail"), (1, 0, 0, 0));
}

#[test]
fn failing_cmd_is_logged_and_logalarm_still_exits_0() {
    let done = run(
        &["--alarm", "f cmd:exit 3", "--log-alarm", "f ALARM"],
        b"TERRIBLE ALARM\n",
    );
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr_text());
    let line = logged(
        done.stderr_lines(),
        "warn",
        "f",
        "delivery failed: cmd: exit status: 3",
    );
    assert!(
        line.ends_with("delivery failed: cmd: exit status: 3"),
        "{line}"
    );
    assert_eq!(summary(done.stderr_lines(), "f"), (0, 1, 0, 0));
}

#[test]
fn hanging_cmd_is_killed_with_its_process_group() {
    let dir = common::scratch("actions_cmd_timeout");
    let (sh_pid, bg_pid) = (dir.join("sh.pid"), dir.join("bg.pid"));
    let config = dir.join("hang.toml");
    std::fs::write(
        &config,
        format!(
            "alarm_freq = 0\n\
             [alarm.h]\n\
             action = \"cmd:echo $$ > {}; sleep 120 & echo $! > {}; sleep 120\"\n\
             timeout = \"300ms\"\n\
             [[rule]]\n\
             regex = \"HANG\"\n\
             alarms = [\"h\"]\n",
            sh_quote(&sh_pid),
            sh_quote(&bg_pid)
        ),
    )
    .unwrap();
    let started = Instant::now();
    let done = run(&["-c", config.to_str().unwrap()], b"HANG now\n");
    let took = started.elapsed();
    let stderr = done.stderr_text();
    assert_eq!(done.status.code(), Some(0), "{stderr}");
    assert!(
        took < Duration::from_secs(60),
        "took {took:?}: the hanging command was not cut short"
    );
    let line = logged(
        done.stderr_lines(),
        "warn",
        "h",
        "delivery failed: cmd: still running after 300ms, killed",
    );
    assert!(line.contains("killed"), "{line}");
    assert_eq!(summary(done.stderr_lines(), "h"), (0, 1, 0, 0));
    // The shell and the `sleep 120` it left in the background are both gone
    // (well before they would have ended by themselves).
    assert_group_gone(read_pid(&sh_pid), read_pid(&bg_pid));
}

#[test]
fn slow_cmd_blocks_neither_pass_through_nor_other_alarms() {
    let dir = common::scratch("actions_cmd_slow");
    let (started, release, events) = (dir.join("started"), dir.join("release"), dir.join("events"));
    // The slow alarm holds its delivery until the test releases it (60 s at most).
    let slow = format!(
        "slow cmd:touch {}; i=0; while [ ! -e {} ] && [ $i -lt 3000 ]; do sleep 0.02; i=$((i+1)); done; echo slow >> {}",
        sh_quote(&started),
        sh_quote(&release),
        sh_quote(&events)
    );
    let fast = format!("fast cmd:echo fast >> {}", sh_quote(&events));
    let mut live = Logalarm::new()
        .args([
            "--alarm",
            &slow,
            "--alarm",
            &fast,
            "--alarm",
            "l log:FAST",
            "--log-alarm",
            "slow SLOW",
            "--log-alarm",
            "fast,l QUICK",
        ])
        .stdin_piped()
        .start();
    live.write_stdin(b"SLOW one\n");
    common::wait_for_file(&started, PATIENCE, |_| true);
    live.write_stdin(b"QUICK two\n");
    // While the slow delivery is running: the later line passes through and
    // fires both other alarms.
    live.wait_for_stdout_line("pass-through of the later line", |l| l == "QUICK two");
    live.wait_for_stderr_line("the log alarm", |l| l == "[logalarm] ALARM: FAST QUICK two");
    let got = common::wait_for_file(&events, PATIENCE, |b| !b.is_empty());
    assert_eq!(
        got, b"fast\n",
        "the fast cmd ran while the slow one was still busy"
    );
    std::fs::write(&release, b"").unwrap();
    live.close_stdin();
    let done = live.finish();
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr_text());
    assert_eq!(done.stdout_lines(), ["SLOW one", "QUICK two"]);
    assert_eq!(std::fs::read(&events).unwrap(), b"fast\nslow\n");
    assert_eq!(summary(done.stderr_lines(), "slow"), (1, 0, 0, 0));
    assert_eq!(summary(done.stderr_lines(), "fast"), (1, 0, 0, 0));
}

// ---------------------------------------------------------------- signal:

const SIGNAL_TARGET: &str = r#"
import os, signal, sys
out, pidfile = sys.argv[1], sys.argv[2]
def on_usr1(signum, frame):
    with open(out, "a") as f:
        f.write("usr1\n")
signal.signal(signal.SIGUSR1, on_usr1)
with open(pidfile + ".tmp", "w") as f:
    f.write("%d\n" % os.getpid())
os.rename(pidfile + ".tmp", pidfile)
sys.stdin.read()  # until the test closes our stdin
"#;

#[test]
fn signal_reaches_a_real_process_by_pidfile_and_by_pid() {
    let dir = common::scratch("actions_signal");
    let (out, pidfile) = (dir.join("got"), dir.join("target.pid"));
    let mut target = Logalarm::program("python3")
        .args(["-c", SIGNAL_TARGET])
        .arg(&out)
        .arg(&pidfile)
        .stdin_piped()
        .start();
    let pid = read_pid(&pidfile);
    assert_eq!(pid, i32::try_from(target.pid()).unwrap());

    let by_pidfile = format!("p signal:USR1@pidfile:{}", pidfile.display());
    let done = run(
        &["--alarm", &by_pidfile, "--log-alarm", "p ALARM"],
        b"TERRIBLE ALARM\n",
    );
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr_text());
    assert_eq!(summary(done.stderr_lines(), "p"), (1, 0, 0, 0));
    common::wait_for_file(&out, PATIENCE, |b| b == b"usr1\n");

    let by_pid = format!("n signal:{}@{pid}", libc::SIGUSR1);
    let done = run(
        &["--alarm", &by_pid, "--log-alarm", "n ALARM"],
        b"TERRIBLE ALARM\n",
    );
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr_text());
    assert_eq!(summary(done.stderr_lines(), "n"), (1, 0, 0, 0));
    common::wait_for_file(&out, PATIENCE, |b| b == b"usr1\nusr1\n");

    target.close_stdin();
    let status = target.finish().status;
    assert!(status.success(), "the target died: {status}");
    assert_eq!(std::fs::read(&out).unwrap(), b"usr1\nusr1\n");
}

#[test]
fn signal_with_a_missing_pidfile_fails_delivery_not_the_run() {
    let dir = common::scratch("actions_signal_missing");
    let pidfile = dir.join("nobody.pid");
    let alarm = format!("p signal:HUP@pidfile:{}", pidfile.display());
    let done = run(
        &["--alarm", &alarm, "--log-alarm", "p ALARM"],
        b"TERRIBLE ALARM\n",
    );
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr_text());
    let line = logged(
        done.stderr_lines(),
        "warn",
        "p",
        "delivery failed: signal: cannot read pidfile",
    );
    assert!(line.contains(&pidfile.display().to_string()), "{line}");
    assert_eq!(summary(done.stderr_lines(), "p"), (0, 1, 0, 0));
    assert_eq!(done.stdout_lines(), ["TERRIBLE ALARM"]);
}

#[test]
fn signal_without_target_is_a_config_error() {
    let done = run(
        &["--alarm", "s signal:HUP", "--log-alarm", "s ALARM"],
        b"TERRIBLE ALARM\n",
    );
    assert_eq!(done.status.code(), Some(2));
    assert!(
        done.stdout_lines().is_empty(),
        "nothing is read on a config error: {:?}",
        done.stdout_lines()
    );
    assert_eq!(done.stderr_lines().len(), 1, "{:#?}", done.stderr_lines());
    let line = &done.stderr_lines()[0];
    assert!(line.starts_with("[logalarm] config error: "), "{line}");
    assert!(line.contains("--alarm"), "names the option: {line}");
    assert!(
        line.contains("signal:HUP@PID") && line.contains("signal:HUP@pidfile:"),
        "gives the fix: {line}"
    );
}

// ---------------------------------------------------------------- log:

#[test]
fn log_writes_tagged_alarm_lines() {
    let done = run(
        &[
            "-q",
            "--alarm",
            "p log:my prefix",
            "--alarm",
            "e log:",
            "--log-alarm",
            "p,e ALARM",
        ],
        b"quiet\nTERRIBLE ALARM: one\n",
    );
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr_text());
    let mut stderr = done.stderr_lines().to_vec();
    stderr.sort();
    // With -q nothing but the alarms themselves is written.
    assert_eq!(
        stderr,
        [
            "[logalarm] ALARM: TERRIBLE ALARM: one",
            "[logalarm] ALARM: my prefix TERRIBLE ALARM: one"
        ]
    );
}

// ---------------------------------------------------------------- alarm-freq

/// 50 identical lines then a different one, through a `log:` and a `cmd:` alarm.
fn burst_of_identical(name: &str, freq: &str) -> (Done, Vec<u8>) {
    let dir = common::scratch(name);
    let out = dir.join("out");
    let action = format!(
        "c cmd:printf '%s|%s\\n' \"$LOGALARM_SUPPRESSED\" \"$LOGALARM_LINE\" >> {}",
        sh_quote(&out)
    );
    let mut input = b"TERRIBLE ALARM same\n".repeat(50);
    input.extend_from_slice(b"TERRIBLE ALARM other\n");
    input.extend_from_slice(b"TERRIBLE ALARM same\n");
    let done = run(
        &[
            "--alarm-freq",
            freq,
            "--alarm",
            &action,
            "--alarm",
            "l log:F",
            "--log-alarm",
            "c,l ALARM",
        ],
        &input,
    );
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr_text());
    let got = std::fs::read(&out).unwrap_or_default();
    (done, got)
}

#[test]
fn alarm_freq_drops_identical_messages_and_counts_them() {
    let (done, got) = burst_of_identical("actions_freq_3600", "3600");
    // The 49 dropped copies of "same" are counted with the next notification
    // of "same" (after "other" made it no longer the last message), not with
    // the "other" that passed first.
    assert_eq!(
        alarm_lines(done.stderr_lines()),
        [
            "[logalarm] ALARM: F TERRIBLE ALARM same",
            "[logalarm] ALARM: F TERRIBLE ALARM other",
            "[logalarm] ALARM: F TERRIBLE ALARM same (49 identical suppressed)"
        ]
    );
    assert_eq!(
        got,
        b"0|TERRIBLE ALARM same\n0|TERRIBLE ALARM other\n49|TERRIBLE ALARM same\n"
    );
    assert_eq!(summary(done.stderr_lines(), "c"), (3, 0, 49, 0));
    assert_eq!(summary(done.stderr_lines(), "l"), (3, 0, 49, 0));
}

#[test]
fn alarm_freq_0_fires_every_line() {
    let (done, got) = burst_of_identical("actions_freq_0", "0");
    let mut expected = vec!["[logalarm] ALARM: F TERRIBLE ALARM same"; 50];
    expected.push("[logalarm] ALARM: F TERRIBLE ALARM other");
    expected.push("[logalarm] ALARM: F TERRIBLE ALARM same");
    assert_eq!(alarm_lines(done.stderr_lines()), expected);
    let mut expected = b"0|TERRIBLE ALARM same\n".repeat(50);
    expected.extend_from_slice(b"0|TERRIBLE ALARM other\n0|TERRIBLE ALARM same\n");
    assert_eq!(got, expected);
    assert_eq!(summary(done.stderr_lines(), "c"), (52, 0, 0, 0));
    assert_eq!(summary(done.stderr_lines(), "l"), (52, 0, 0, 0));
}

/// The shipped demo (`python3 examples/demo_app.py | logalarm -c
/// examples/alarms.ini`): the second TERRIBLE ALARM line is dropped by
/// `console`'s alarm-freq, and the listen-queue line after it is a different
/// message, so it carries no suppressed count (it once took the other
/// message's).
#[test]
fn demo_app_through_the_example_ini() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let demo = Command::new("python3")
        .arg(root.join("examples/demo_app.py"))
        .output()
        .expect("run python3 examples/demo_app.py");
    assert!(demo.status.success(), "{demo:?}");
    let config = root.join("examples/alarms.ini");
    let done = run(&["-c", config.to_str().expect("UTF-8 path")], &demo.stdout);
    let stderr = done.stderr_text();
    assert_eq!(done.status.code(), Some(0), "{stderr}");
    assert_eq!(
        alarm_lines(done.stderr_lines()),
        [
            "[logalarm] ALARM: [PAGE ME] TERRIBLE ALARM the world exploded !!!",
            "[logalarm] ALARM: [PAGE ME] ERROR uWSGI listen queue of socket 127.0.0.1:3031 (fd: 3) full !!! (101/100)",
        ],
        "{stderr}"
    );
    assert_eq!(
        common::lines_starting_with(done.stderr_lines(), "[logalarm] cmd oncall: "),
        [
            "[logalarm] cmd oncall: paging on-call: TERRIBLE ALARM the world exploded !!!",
            "[logalarm] cmd oncall: paging on-call: *** HARAKIRI ON WORKER 3 (pid: 4245, try: 1) ***",
            "[logalarm] cmd oncall: paging on-call: TERRIBLE ALARM the world exploded !!!",
        ],
        "{stderr}"
    );
    assert_eq!(summary(done.stderr_lines(), "console"), (2, 0, 1, 0));
    assert_eq!(summary(done.stderr_lines(), "oncall"), (3, 0, 0, 0));
    assert_eq!(
        done.stdout_lines().join("\n").into_bytes(),
        demo.stdout.trim_ascii_end()
    );
}

// ---------------------------------------------------------------- shutdown

#[test]
fn drain_deadline_leaves_notifications_undelivered_exit_1() {
    let done = run(
        &[
            "--alarm-freq",
            "0",
            "--drain-timeout",
            "1s",
            "--alarm",
            "s cmd:sleep 5",
            "--log-alarm",
            "s ALARM",
        ],
        b"ALARM 1\nALARM 2\nALARM 3\n",
    );
    let stderr = done.stderr_text();
    assert_eq!(done.status.code(), Some(1), "{stderr}");
    // The first is still running when the deadline comes, so none was delivered.
    let line = logged(
        done.stderr_lines(),
        "error",
        "s",
        "not delivered within the drain deadline",
    );
    assert!(
        line.contains("3 notifications not delivered within the drain deadline of 1s"),
        "{line}"
    );
    assert_eq!(done.stdout_lines(), ["ALARM 1", "ALARM 2", "ALARM 3"]);
}

/// ENGINE BUG (reported): when the drain deadline aborts a running `cmd:`
/// delivery, only the shell is killed, not its process group (unlike the
/// action timeout): the command's children live on as orphans. Shown by:
/// `printf 'ALARM 1\n' | logalarm --drain-timeout 1s --alarm 's cmd:sleep 7; echo hi' --log-alarm 's ALARM';
///  ps -eo pid,ppid,cmd | grep 'sleep 7'` (a `sleep 7` with parent 1 remains).
/// Un-ignore once the abort kills the process group.
#[test]
fn drain_deadline_kills_the_running_cmd_process_group() {
    let dir = common::scratch("actions_drain_kill");
    let (sh_pid, bg_pid) = (dir.join("sh.pid"), dir.join("bg.pid"));
    let action = format!(
        "s cmd:echo $$ > {}; sleep 120 & echo $! > {}; wait",
        sh_quote(&sh_pid),
        sh_quote(&bg_pid)
    );
    let done = run(
        &[
            "--drain-timeout",
            "1s",
            "--alarm",
            &action,
            "--log-alarm",
            "s ALARM",
        ],
        b"ALARM 1\n",
    );
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr_text());
    logged(
        done.stderr_lines(),
        "error",
        "s",
        "1 notifications not delivered within the drain deadline of 1s",
    );
    assert_group_gone(read_pid(&sh_pid), read_pid(&bg_pid));
}

/// A logalarm whose deliveries the test holds: alarm `c` (a `cmd:`) appends
/// each message to `out`, touches `started`, then waits until the test
/// creates `release`; alarm `l` is a `log:T`. Both fire on every `ALARM` line.
struct Held {
    live: Running,
    out: PathBuf,
    started: PathBuf,
    release: PathBuf,
}

fn spawn_held(test: &str) -> Held {
    let dir = common::scratch(test);
    let (out, started, release) = (dir.join("out"), dir.join("started"), dir.join("release"));
    // Each delivery waits for the release file (60 s at most).
    let action = format!(
        "c cmd:cat >> {}; touch {}; i=0; while [ ! -e {} ] && [ $i -lt 3000 ]; do sleep 0.02; i=$((i+1)); done",
        sh_quote(&out),
        sh_quote(&started),
        sh_quote(&release)
    );
    let live = Logalarm::new()
        .args([
            "--alarm-freq",
            "0",
            "--alarm",
            &action,
            "--alarm",
            "l log:T",
            // Rule order: a line is queued for `c` before `l` prints it.
            "--log-alarm",
            "c ALARM",
            "--log-alarm",
            "l ALARM",
        ])
        .stdin_piped()
        .start();
    Held {
        live,
        out,
        started,
        release,
    }
}

#[test]
fn sigterm_delivers_what_is_queued_and_exits_0() {
    let Held {
        mut live,
        out,
        started,
        release,
    } = spawn_held("actions_sigterm");
    live.write_stdin(b"ALARM 1\nALARM 2\nALARM 3\n");
    live.wait_for_stderr_line("all three lines routed", |l| {
        l == "[logalarm] ALARM: T ALARM 3"
    });
    common::wait_for_file(&started, PATIENCE, |_| true);
    live.signal(libc::SIGTERM);
    live.wait_for_stderr_line("the SIGTERM note", |l| {
        l.starts_with("[logalarm] info: ") && l.contains("SIGTERM")
    });
    std::fs::write(&release, b"").unwrap();
    // stdin is still open: only the signal ends the run.
    let done = live.finish();
    let stderr = done.stderr_text();
    assert_eq!(done.status.code(), Some(0), "{stderr}");
    assert_eq!(std::fs::read(&out).unwrap(), b"ALARM 1\nALARM 2\nALARM 3\n");
    assert_eq!(summary(done.stderr_lines(), "c"), (3, 0, 0, 0));
    assert_eq!(summary(done.stderr_lines(), "l"), (3, 0, 0, 0));
    assert_eq!(done.stdout_lines(), ["ALARM 1", "ALARM 2", "ALARM 3"]);
}

#[test]
fn closed_stdout_stops_pass_through_but_not_alarms() {
    let dir = common::scratch("actions_closed_stdout");
    let out = dir.join("out");
    let mut input = Vec::new();
    let mut expected = Vec::new();
    // About 1 MB, so that many writes would follow the first failed one.
    for i in 0..20_000 {
        if i % 1000 == 7 {
            writeln!(input, "TERRIBLE ALARM {i}").unwrap();
            writeln!(expected, "TERRIBLE ALARM {i}").unwrap();
        } else {
            writeln!(input, "filler line {i} {}", "-".repeat(32)).unwrap();
        }
    }
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let action = format!("c cmd:cat >> {}", sh_quote(&out));
    let ran = Logalarm::new()
        .args([
            "--alarm-freq",
            "0",
            "--alarm",
            &action,
            "--log-alarm",
            "c ALARM",
        ])
        .stdout_to(writer)
        .run(&input);
    // Unlike a config error, a closed stdout must not stop logalarm reading.
    ran.input.as_ref().expect("logalarm read all its input");
    let stderr = ran.stderr_lines();
    let text = stderr.join("\n");
    assert_eq!(ran.code(), Some(0), "{text}");
    assert_eq!(std::fs::read(&out).unwrap(), expected, "every alarm fired");
    let notes = stderr
        .iter()
        .filter(|l| l.contains("pass-through stops"))
        .collect::<Vec<_>>();
    assert_eq!(
        notes,
        ["[logalarm] info: stdout was closed by its reader; pass-through stops, alarms go on"],
        "{text}"
    );
    assert_eq!(summary(stderr, "c"), (20, 0, 0, 0));
}

/// ENGINE BUG (reported): after SIGTERM logalarm does not stop reading. The
/// reader thread goes on routing lines while the queues drain: a line written
/// after the SIGTERM note is delivered by an alarm whose worker is still busy,
/// and counted as "dropped on a full queue" (with a false "queue full (1024
/// notifications waiting)" warning) by an idle alarm whose queue is closed.
/// Shown by this test's sequence: `c` blocks on a release file, `l` is a `log:`
/// alarm, SIGTERM, wait for the note, write `ALARM late`, release.
/// Un-ignore once SIGTERM stops reading (or routing).
#[test]
fn sigterm_stops_reading() {
    let Held {
        mut live,
        out,
        started,
        release,
    } = spawn_held("actions_sigterm_late");
    live.write_stdin(b"ALARM early\n");
    live.wait_for_stderr_line("the early line", |l| l == "[logalarm] ALARM: T ALARM early");
    common::wait_for_file(&started, PATIENCE, |_| true);
    live.signal(libc::SIGTERM);
    live.wait_for_stderr_line("the SIGTERM note", |l| {
        l.starts_with("[logalarm] info: ") && l.contains("SIGTERM")
    });
    live.write_stdin(b"ALARM late\n");
    // A buggy reader passes the line through at once; a fixed one never reads
    // it, so this bounded wait only decides how long the fixed engine waits here.
    let _ = live
        .stdout()
        .try_wait_for_line(Duration::from_secs(2), |l| l == "ALARM late");
    std::fs::write(&release, b"").unwrap();
    let done = live.finish();
    let stderr = done.stderr_text();
    assert_eq!(done.status.code(), Some(0), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "ALARM early\n",
        "{stderr}"
    );
    assert!(!stderr.contains("queue full"), "{stderr}");
    assert_eq!(summary(done.stderr_lines(), "c"), (1, 0, 0, 0));
    assert_eq!(summary(done.stderr_lines(), "l"), (1, 0, 0, 0));
}

// ---------------------------------------------------------------------------
// A stopped stdout reader: pass-through lags, alarms do not.

/// `cat` reading the pipe logalarm's stdout goes to, into a file, stopped
/// (SIGSTOP) before logalarm writes anything; [`StoppedReader::resume`]
/// lets it read on.
struct StoppedReader {
    cat: std::process::Child,
    out: PathBuf,
}

impl StoppedReader {
    /// Starts and stops the reader; returns it and the pipe's write end.
    fn start(dir: &Path) -> (StoppedReader, std::io::PipeWriter) {
        let (reader, writer) = std::io::pipe().expect("pipe");
        let out = dir.join("passed-through");
        let file = std::fs::File::create(&out).expect("create out");
        let cat = Command::new("cat")
            .stdin(reader)
            .stdout(file)
            .spawn()
            .expect("start cat");
        let pid = i32::try_from(cat.id()).expect("pid");
        // SAFETY: kill(2) on our own child, not yet reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
        assert!(
            common::poll_until(PATIENCE, || stopped(pid)),
            "cat (pid {pid}) did not stop"
        );
        (StoppedReader { cat, out }, writer)
    }

    /// Lets the reader go on, and returns all it read once its input ends.
    fn resume(mut self) -> Vec<u8> {
        let pid = i32::try_from(self.cat.id()).expect("pid");
        // SAFETY: kill(2) on our own child, not yet reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
        let status = common::wait_exit(&mut self.cat, PATIENCE);
        assert!(status.success(), "cat: {status}");
        std::fs::read(&self.out).expect("read what cat wrote")
    }
}

impl Drop for StoppedReader {
    fn drop(&mut self) {
        let _ = self.cat.kill();
        let _ = self.cat.wait();
    }
}

/// Whether process `pid` is stopped (state `T`, proc(5)).
fn stopped(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.rsplit_once(") ")?;
            rest.chars().next()
        })
        .is_some_and(|state| state == 'T')
}

/// `lines` numbered lines, 1 in `every` an alarm line (`TERRIBLE ALARM n`),
/// the others filler of `width` bytes: (the input, its alarm lines).
fn numbered(lines: usize, every: usize, width: usize) -> (Vec<u8>, Vec<String>) {
    let (mut input, mut alarms) = (Vec::new(), Vec::new());
    for i in 0..lines {
        if i % every == every - 1 {
            writeln!(input, "TERRIBLE ALARM {i:06}").unwrap();
            alarms.push(format!("TERRIBLE ALARM {i:06}"));
        } else {
            writeln!(input, "filler {i:06} {}", "-".repeat(width)).unwrap();
        }
    }
    (input, alarms)
}

#[test]
fn a_stopped_stdout_reader_stalls_no_alarm_and_gets_every_byte() {
    let dir = common::scratch("actions_stopped_reader_block");
    // 400 alarms in 1.6 MB: far beyond what the pipe holds (64 KiB), within
    // the default pass-through buffer (4 MiB).
    let (input, alarms) = numbered(8000, 20, 180);
    assert_eq!(alarms.len(), 400);
    let (reader, stdout) = StoppedReader::start(&dir);
    let mut live = Logalarm::new()
        .args([
            "--alarm-freq",
            "0",
            "--alarm",
            "l log:",
            "--log-alarm",
            "l TERRIBLE ALARM",
        ])
        .stdout_to(stdout)
        .stdin(&input)
        .start();
    // Every alarm fires while the reader is still stopped.
    live.stderr().wait_for("400 alarms", |lines| {
        alarm_lines(lines).len() >= alarms.len()
    });
    assert!(live.is_running(), "it waits to pass the rest through");
    let passed = reader.resume();
    let done = live.finish();
    let stderr = done.stderr_lines();
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    let fired: Vec<String> = alarm_lines(stderr)
        .iter()
        .map(|l| l.trim_start_matches(common::ALARM_PREFIX).to_owned())
        .collect();
    assert_eq!(fired, alarms);
    assert_eq!(summary(stderr, "l"), (400, 0, 0, 0));
    assert_eq!(passed.len(), input.len(), "every byte passed through");
    assert!(passed == input, "in order");
    assert!(!done.stderr_text().contains("dropped ("), "nothing dropped");
}

#[test]
fn drop_mode_drops_whole_lines_counts_them_and_stalls_no_alarm() {
    let dir = common::scratch("actions_stopped_reader_drop");
    // 400 alarms in 1.6 MB, through a 64 KiB buffer: most of it is dropped.
    let (input, alarms) = numbered(8000, 20, 180);
    let (reader, stdout) = StoppedReader::start(&dir);
    let mut live = Logalarm::new()
        .args([
            "--alarm-freq",
            "0",
            "--passthrough-full",
            "drop",
            "--passthrough-buffer",
            "65536",
            // The end waits for what was kept to be written, bounded by this.
            "--drain-timeout",
            "120s",
            "--alarm",
            "l log:",
            "--log-alarm",
            "l TERRIBLE ALARM",
        ])
        .stdout_to(stdout)
        .stdin(&input)
        .start();
    live.stderr().wait_for("400 alarms", |lines| {
        alarm_lines(lines).len() >= alarms.len()
    });
    let passed = reader.resume();
    let done = live.finish();
    let stderr = done.stderr_lines();
    let text = done.stderr_text();
    assert_eq!(done.code(), Some(0), "{text}");
    assert_eq!(alarm_lines(stderr).len(), 400, "{text}");
    assert_eq!(summary(stderr, "l"), (400, 0, 0, 0));
    // The exit summary's count is exactly what the reader missed.
    let totals: Vec<&String> = stderr
        .iter()
        .filter(|l| l.starts_with("[logalarm] info: pass-through to stdout: "))
        .collect();
    assert_eq!(totals.len(), 1, "{text}");
    let dropped: usize = totals[0]
        .trim_start_matches("[logalarm] info: pass-through to stdout: ")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {:?}", totals[0]));
    assert!(dropped > 0, "{text}");
    assert_eq!(passed.len() + dropped, input.len(), "{text}");
    eprintln!(
        "drop mode: {} of {} bytes passed through, {dropped} dropped: {}",
        passed.len(),
        input.len(),
        totals[0]
    );
    // One warning per episode, as many as the summary counts.
    let warned = stderr
        .iter()
        .filter(|l| {
            l.starts_with("[logalarm] warn: pass-through to stdout: its reader is not keeping up")
        })
        .count();
    assert!(
        totals[0].contains(&format!("({warned} episode")),
        "{warned} warnings: {text}"
    );
    // What passed through is whole lines of the input, in order.
    let input_lines: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
    let mut at = 0;
    for line in passed.split_inclusive(|&b| b == b'\n') {
        let found = input_lines[at..].iter().position(|l| *l == line);
        let Some(skip) = found else {
            panic!(
                "not a whole input line in order: {:?}",
                String::from_utf8_lossy(line)
            );
        };
        at += skip + 1;
    }
}

// ---------------------------------------------------------------------------
// A `cmd:` message of any size.

#[test]
fn a_one_mebibyte_cmd_message_reaches_stdin_whole() {
    let dir = common::scratch("actions_cmd_1mib");
    let (out, vars) = (dir.join("stdin"), dir.join("vars"));
    // A 1 MiB line (8 times what the kernel allows one environment variable),
    // carried whole by an alarm-msg-size of 1 MiB.
    const MIB: usize = 1 << 20;
    let mut line = b"BIG ".to_vec();
    line.extend((0..MIB - 4).map(|i| b'a' + (i % 26) as u8));
    let mut input = line.clone();
    input.push(b'\n');
    let command = format!(
        "cmd:cat > {}; printf '%s|%s|%s|%s|%s' \"${{#LOGALARM_LINE}}\" \"$LOGALARM_LINE_TRUNCATED\" \"${{#LOGALARM_CAP_REST}}\" \"${{#REST}}\" \"$LOGALARM_ENV_TRUNCATED\" > {}",
        sh_quote(&out),
        sh_quote(&vars)
    );
    // The `env` table's template asks for the captures (and is cut too).
    let config = format!(
        r#"msg_size = {MIB}

[alarm.c]
action = {command:?}
env = {{ REST = "{{{{ caps.rest }}}}" }}

[[rule]]
regex = "^BIG (?P<rest>.*)"
alarm = "c"
"#
    );
    let done = Logalarm::new()
        .config(dir.join("big.toml"), &config)
        .run(&input);
    let stderr = done.stderr_text();
    assert_eq!(done.code(), Some(0), "{stderr}");
    assert_eq!(summary(done.stderr_lines(), "c"), (1, 0, 0, 0), "{stderr}");
    let got = std::fs::read(&out).expect("what the command read");
    assert_eq!(got.len(), MIB + 1, "the message and its newline");
    assert_eq!(
        crc32fast::hash(&got),
        crc32fast::hash(&input),
        "the same bytes"
    );
    assert!(got == input);
    // The environment carries the first 16 KiB of each, and says what it cut.
    assert_eq!(
        std::fs::read_to_string(&vars).expect("vars"),
        format!(
            "16384|{MIB}|16384|16384|LOGALARM_LINE LOGALARM_CAP_0 LOGALARM_CAP_1 LOGALARM_CAP_REST REST"
        )
    );
}
