//! The outbox, through the binary: with a state directory, what an alarm
//! accepted survives a SIGKILL, a full queue and a second stop signal, and is
//! delivered by the next start with the same id; `cmd` alarms run at once,
//! as uWSGI runs them.
//!
//! Real receivers only: the HTTP test server (tests/servers/webhook.py) on
//! 127.0.0.1, and real commands writing to files.

mod common;

use common::http_server::Server;
use common::{Logalarm, PATIENCE, header, poll_until, scratch, write_file};
use serde_json::Value;
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// A TOML config with one `http` alarm `hook` to `port` that retries for
/// long, every line `ERR …` firing it, and the state directory `state`.
fn http_config(dir: &Path, port: u16, state: &Path) -> std::path::PathBuf {
    write_file(
        dir,
        "hook.toml",
        &format!(
            "state_dir = {state:?}\n\
             alarm_freq = 0\n\
             [alarm.hook]\n\
             action = \"http:http://127.0.0.1:{port}/hook\"\n\
             retry = {{ attempts = 1000, deadline = \"10m\", delay = \"100ms\", max_delay = \"300ms\" }}\n\
             [[rule]]\n\
             regex = '^ERR '\n\
             alarms = [\"hook\"]\n"
        ),
    )
}

/// Whether the alarm's journal in `state` holds `needle`.
fn journal_holds(state: &Path, alarm: &str, needle: &[u8]) -> bool {
    std::fs::read(state.join("outbox").join(alarm).join("puts"))
        .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
}

/// The bodies the server received, and their distinct idempotency keys.
fn bodies_and_keys(requests: &[Value]) -> (Vec<String>, HashSet<String>) {
    let bodies = requests
        .iter()
        .map(|r| r["body"].as_str().unwrap_or_default().to_owned())
        .collect();
    let keys = requests
        .iter()
        .map(|r| header(r, "idempotency-key").to_owned())
        .collect();
    (bodies, keys)
}

/// How the alarm lines reach logalarm in [`alarms_survive_a_sigkill`].
#[derive(Clone, Copy, Debug)]
enum Feed {
    /// Written to its stdin, a pipe.
    Pipe,
    /// Printed by the process `logalarm run` wraps.
    Wrapped,
}

#[test]
fn stdin_alarms_survive_a_sigkill_while_the_backend_is_down() {
    alarms_survive_a_sigkill("outbox_sigkill_pipe", Feed::Pipe);
}

#[test]
fn wrapped_process_alarms_survive_a_sigkill_while_the_backend_is_down() {
    alarms_survive_a_sigkill("outbox_sigkill_run", Feed::Wrapped);
}

/// 50 alarm lines with the HTTP receiver down; logalarm is SIGKILLed while
/// it retries the first; started again with the receiver up, it delivers
/// every one once, in order, under the ids the first run gave them.
fn alarms_survive_a_sigkill(name: &str, feed: Feed) {
    let dir = scratch(name);
    let state = dir.join("state");
    let port = common::free_port();
    let config = http_config(&dir, port, &state);
    let lines: String = (0..50).map(|i| format!("ERR {i}\nok {i}\n")).collect();
    let child_pid = dir.join("child.pid");
    let mut first = match feed {
        Feed::Pipe => {
            let mut running = Logalarm::new()
                .arg("-c")
                .arg(&config)
                .arg("--no-passthrough")
                .stdin_piped()
                .start();
            running.write_stdin(&lines);
            running
        }
        Feed::Wrapped => {
            let script = write_file(&dir, "lines.txt", &lines);
            Logalarm::new()
                .arg("-c")
                .arg(&config)
                .arg("--no-passthrough")
                .arg("run")
                .arg("--")
                .arg("sh")
                .arg("-c")
                .arg(format!(
                    "echo $$ > {}; cat {}; exec sleep 60",
                    child_pid.display(),
                    script.display()
                ))
                .start()
        }
    };
    assert!(
        poll_until(PATIENCE, || journal_holds(&state, "hook", b"ERR 49")),
        "the 50th alarm reached the journal"
    );
    // The receiver is down: the first notification is being retried.
    let failed = first.wait_for_stderr_line("an attempt failing", |l| l.contains("attempt 1 of"));
    let run_id = failed
        .split("id=")
        .nth(1)
        .and_then(|id| id.split('-').next())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(run_id.len(), 16, "{failed}");
    first.signal(libc_sigkill());
    let _ = first.finish();
    if let Ok(pid) = std::fs::read_to_string(&child_pid) {
        // The wrapped process outlives a SIGKILLed logalarm: the test ends it.
        let _ = std::process::Command::new("kill").arg(pid.trim()).status();
    }

    let server = Server::start(&dir, port, "200", None);
    let second = Logalarm::new()
        .arg("-c")
        .arg(&config)
        .arg("--no-passthrough")
        .run("");
    assert_eq!(second.code(), Some(0), "{}", second.stderr_text());
    assert!(
        second.stderr_text().contains(
            "50 notifications left undelivered by the previous run: delivering them first"
        ),
        "{}",
        second.stderr_text()
    );
    let (bodies, keys) = bodies_and_keys(&server.rest());
    let want: Vec<String> = (0..50).map(|i| format!("ERR {i}\n")).collect();
    assert_eq!(bodies, want, "every alarm once, in order");
    assert_eq!(keys.len(), 50);
    // The ids were given by the first run, before the crash.
    assert!(
        keys.iter().all(|k| k.starts_with(&format!("{run_id}-"))),
        "{keys:?} from run {run_id}"
    );
    // Everything delivered: the journal is empty.
    let puts = std::fs::metadata(state.join("outbox/hook/puts")).map(|m| m.len());
    assert_eq!(puts.ok(), Some(0));
}

#[test]
fn a_second_sigterm_stops_at_once_and_the_next_start_delivers() {
    let dir = scratch("outbox_second_sigterm");
    let state = dir.join("state");
    let port = common::free_port();
    let config = http_config(&dir, port, &state);
    let mut first = Logalarm::new()
        .arg("-c")
        .arg(&config)
        .arg("--no-passthrough")
        .arg("--drain-timeout")
        .arg("60s")
        .stdin_piped()
        .start();
    first.write_stdin((0..20).map(|i| format!("ERR {i}\n")).collect::<String>());
    assert!(poll_until(PATIENCE, || journal_holds(
        &state, "hook", b"ERR 19"
    )));
    first.wait_for_stderr_line("an attempt failing", |l| l.contains("attempt 1 of"));
    first.signal(15);
    first.wait_for_stderr_line("the stop", |l| l.contains("SIGTERM: stopping"));
    let second_at = Instant::now();
    first.signal(15);
    let done = first.finish();
    let took = second_at.elapsed();
    // About 30 ms by hand; the issue asks for 1 s, and a loaded CI machine
    // gets some slack.
    assert!(
        took < Duration::from_secs(2),
        "ended {took:?} after the second SIGTERM"
    );
    let err = done.stderr_text();
    assert!(err.contains("SIGTERM: stopping now"), "{err}");
    assert!(
        err.contains("20 notifications not delivered yet: kept in the outbox for the next start"),
        "{err}"
    );

    let server = Server::start(&dir, port, "200", None);
    let next = Logalarm::new()
        .arg("-c")
        .arg(&config)
        .arg("--no-passthrough")
        .run("");
    assert_eq!(next.code(), Some(0), "{}", next.stderr_text());
    let (bodies, keys) = bodies_and_keys(&server.rest());
    let want: Vec<String> = (0..20).map(|i| format!("ERR {i}\n")).collect();
    assert_eq!(bodies, want);
    assert_eq!(keys.len(), 20);
}

#[test]
fn a_burst_spills_to_disk_and_every_alarm_is_accounted_for() {
    const LINES: usize = 200_000;
    let dir = scratch("outbox_burst");
    let state = dir.join("state");
    let ran = dir.join("ran");
    // A slow receiver: one command a second, one at a time.
    let slow = write_file(
        &dir,
        "slow.toml",
        &format!(
            "state_dir = {state:?}\n\
             alarm_freq = 0\n\
             queue_size = 1024\n\
             drain_timeout = \"2s\"\n\
             [alarm.burst]\n\
             action = \"cmd:cat >> {ran}; sleep 1\"\n\
             concurrency = 1\n\
             [[rule]]\n\
             regex = '^ERR '\n\
             alarms = [\"burst\"]\n",
            ran = ran.display()
        ),
    );
    let input: String = (0..LINES).map(|i| format!("ERR {i}\n")).collect();
    let first = Logalarm::new()
        .arg("-c")
        .arg(&slow)
        .arg("--no-passthrough")
        .run(&input);
    assert_eq!(first.code(), Some(0), "{}", first.stderr_text());
    let err = first.stderr_text();
    let totals = err
        .lines()
        .find(|l| l.contains("delivered,") && l.contains("burst"))
        .unwrap_or_else(|| panic!("no totals line: {err}"))
        .to_owned();
    let number_before = |what: &str| -> usize {
        let at = totals
            .find(what)
            .unwrap_or_else(|| panic!("{what} in {totals}"));
        totals[..at]
            .rsplit(|c: char| !c.is_ascii_digit())
            .find(|s| !s.is_empty())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a number before {what} in {totals}"))
    };
    let delivered = number_before(" delivered");
    let kept = number_before(" kept in the outbox");
    assert_eq!(number_before(" dropped on a full queue"), 0, "{totals}");
    assert_eq!(delivered + kept, LINES, "{totals}");
    assert!(number_before(" spilled to the outbox") >= LINES - 1024 - delivered - 1);

    // The next start, with a fast action on the same alarm, delivers the rest.
    let fast = write_file(
        &dir,
        "fast.toml",
        &format!(
            "state_dir = {state:?}\n\
             alarm_freq = 0\n\
             drain_timeout = \"10m\"\n\
             [alarm.burst]\n\
             action = \"log:\"\n\
             [[rule]]\n\
             regex = '^ERR '\n\
             alarms = [\"burst\"]\n"
        ),
    );
    let second = Logalarm::new()
        .arg("-c")
        .arg(&fast)
        .arg("--no-passthrough")
        .run("");
    assert_eq!(second.code(), Some(0), "{}", second.stderr_text());
    let delivered_first: Vec<String> = std::fs::read_to_string(&ran)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let delivered_second: Vec<String> = second
        .stderr_lines()
        .iter()
        .filter_map(|l| l.split("ALARM: ").nth(1))
        .map(str::to_owned)
        .collect();
    assert_eq!(delivered_second.len(), kept);
    // A command under way at the drain deadline was stopped: its notification
    // was not finished, so the next start delivered it again (the one
    // repetition the outbox allows).
    let mut delivered_first = delivered_first;
    if delivered_first.len() == delivered + 1 {
        assert_eq!(delivered_first.last(), delivered_second.first());
        delivered_first.pop();
    }
    assert_eq!(delivered_first.len(), delivered);
    let all: Vec<String> = delivered_first
        .into_iter()
        .chain(delivered_second)
        .collect();
    let want: Vec<String> = (0..LINES).map(|i| format!("ERR {i}")).collect();
    assert_eq!(all, want, "each alarm once, in order");
}

#[test]
fn commands_run_at_once_as_in_uwsgi() {
    let dir = scratch("outbox_parallel_cmd");
    let log = dir.join("starts");
    // Each command notes when it starts and ends (seconds since the epoch).
    let ini = write_file(
        &dir,
        "uwsgi.ini",
        &format!(
            "[uwsgi]\n\
             alarm = slow cmd:echo start $(date +%%s.%%N) >> {log}; sleep 1; echo end >> {log}\n\
             log-alarm = slow ^SLOW\n\
             alarm-freq = 0\n",
            log = log.display()
        ),
    );
    let done = Logalarm::with_default_concurrency()
        .arg("-c")
        .arg(&ini)
        .arg("--no-passthrough")
        .run("SLOW 1\nSLOW 2\nSLOW 3\n");
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let starts: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("start "))
        .filter_map(|t| t.parse().ok())
        .collect();
    assert_eq!(starts.len(), 3, "{text}");
    assert_eq!(text.lines().filter(|l| *l == "end").count(), 3, "{text}");
    let spread = starts.iter().copied().fold(f64::MIN, f64::max)
        - starts.iter().copied().fold(f64::MAX, f64::min);
    assert!(
        spread < 0.9,
        "the three commands started together: {starts:?}"
    );

    // Four 4-second commands at the end of input: all run within the drain.
    let ini = write_file(
        &dir,
        "four.ini",
        &format!(
            "[uwsgi]\n\
             alarm = slow cmd:sleep 4; echo done >> {log}\n\
             log-alarm = slow ^SLOW\n\
             alarm-freq = 0\n",
            log = dir.join("four").display()
        ),
    );
    let done = Logalarm::with_default_concurrency()
        .arg("-c")
        .arg(&ini)
        .arg("--no-passthrough")
        .run("SLOW 1\nSLOW 2\nSLOW 3\nSLOW 4\n");
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    let four = std::fs::read_to_string(dir.join("four")).unwrap_or_default();
    assert_eq!(four.lines().count(), 4, "{four}");
}

/// SIGKILL's number (no libc in the tests' dependencies).
fn libc_sigkill() -> i32 {
    9
}
