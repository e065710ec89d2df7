//! The anti-loop tag through the real binary: logalarm's own output fed back
//! into its input never fires an alarm, so such a pipeline settles; lines
//! starting with `[logalarm` or `[uwsgi-alarm` pass through but never match.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long any single wait in these tests may take before it fails.
const PATIENCE: Duration = Duration::from_secs(30);

fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("logalarm did not exit within {limit:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until every line of `wanted` has been received on `rx` (in any order).
fn wait_lines(rx: &Receiver<String>, wanted: &[&str], seen: &mut Vec<String>) {
    let deadline = Instant::now() + PATIENCE;
    while !wanted.iter().all(|w| seen.iter().any(|s| s == w)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(RecvTimeoutError::Timeout) => {
                panic!("timed out waiting for {wanted:?}; forwarded so far: {seen:#?}")
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("stderr closed while waiting for {wanted:?}: {seen:#?}")
            }
        }
    }
}

#[test]
fn output_fed_back_into_input_settles() {
    let mut child = common::bin()
        .args([
            "--no-passthrough",
            "--alarm-freq",
            "0",
            "--alarm",
            "l log:LOOP",
            "--alarm",
            "c cmd:cat",
            "--log-alarm",
            "l,c ALARM",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn logalarm");
    let stdin: Arc<Mutex<Option<ChildStdin>>> = Arc::new(Mutex::new(child.stdin.take()));
    let stderr = child.stderr.take().expect("stderr");
    let mut stdout = child.stdout.take().expect("stdout");
    let (tx, forwarded) = mpsc::channel::<String>();
    // Every stderr line of logalarm goes back into its stdin, as long as it is open.
    let feedback = {
        let stdin = Arc::clone(&stdin);
        thread::spawn(move || {
            let mut all = Vec::new();
            for line in BufReader::new(stderr).split(b'\n') {
                let line = line.expect("read stderr");
                let mut guard = stdin.lock().unwrap();
                if let Some(input) = guard.as_mut() {
                    input
                        .write_all(&line)
                        .and_then(|()| input.write_all(b"\n"))
                        .expect("feed back");
                    let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
                }
                drop(guard);
                all.push(String::from_utf8_lossy(&line).into_owned());
            }
            all
        })
    };
    let pass_through = thread::spawn(move || {
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).expect("read stdout");
        out
    });
    let send = |bytes: &[u8]| {
        stdin
            .lock()
            .unwrap()
            .as_mut()
            .expect("stdin open")
            .write_all(bytes)
            .expect("write")
    };

    let mut seen = Vec::new();
    send(b"TERRIBLE ALARM seed\n");
    wait_lines(
        &forwarded,
        &[
            "[logalarm] ALARM: LOOP TERRIBLE ALARM seed",
            "[logalarm] cmd c: TERRIBLE ALARM seed",
        ],
        &mut seen,
    );
    // Each worker delivers in order: once the sentinel's lines are back, every
    // notification the fed-back lines could have caused has been emitted (and
    // fed back too).
    send(b"TERRIBLE ALARM sentinel\n");
    wait_lines(
        &forwarded,
        &[
            "[logalarm] ALARM: LOOP TERRIBLE ALARM sentinel",
            "[logalarm] cmd c: TERRIBLE ALARM sentinel",
        ],
        &mut seen,
    );
    stdin.lock().unwrap().take();
    let status = wait_exit(&mut child, PATIENCE);
    let all = feedback.join().expect("feedback thread");
    assert!(status.success(), "{status}: {all:#?}");
    assert_eq!(
        pass_through.join().expect("stdout thread"),
        b"",
        "--no-passthrough"
    );

    let alarms: Vec<&str> = all
        .iter()
        .map(String::as_str)
        .filter(|l| l.starts_with("[logalarm] ALARM: "))
        .collect();
    assert_eq!(
        alarms,
        [
            "[logalarm] ALARM: LOOP TERRIBLE ALARM seed",
            "[logalarm] ALARM: LOOP TERRIBLE ALARM sentinel"
        ],
        "{all:#?}"
    );
    let cmd_out: Vec<&str> = all
        .iter()
        .map(String::as_str)
        .filter(|l| l.starts_with("[logalarm] cmd c: "))
        .collect();
    assert_eq!(
        cmd_out,
        [
            "[logalarm] cmd c: TERRIBLE ALARM seed",
            "[logalarm] cmd c: TERRIBLE ALARM sentinel"
        ],
        "{all:#?}"
    );
    // Every line logalarm wrote is tagged, so none of it could have fired.
    assert!(all.iter().all(|l| l.starts_with("[logalarm")), "{all:#?}");
    // Lines were really fed back: at least the two ALARM and two cmd lines.
    assert!(seen.len() >= 4, "{seen:#?}");
}

#[test]
fn tagged_lines_pass_through_but_never_fire() {
    let dir = common::scratch("antiloop_tagged");
    let out = dir.join("out");
    let input: &[u8] = b"[uwsgi-alarm TERRIBLE ALARM\n\
        [uwsgi-alarm\n\
        [uwsgi-alarm] alarm ALARM\r\n\
        [logalarm] ALARM: x TERRIBLE ALARM\n\
        [logalarm\n\
        [logalarm TERRIBLE ALARM\n\
        [logalarm] cmd c: TERRIBLE ALARM\r\n\
        \x20[logalarm TERRIBLE ALARM leading space\n\
        x[uwsgi-alarm ALARM not at the start\n\
        \t[logalarm ALARM after a tab\n\
        [logalarm ALARM last, no newline";
    let action = format!("c cmd:cat >> '{}'", out.display());
    let output = common::run_with_input(
        common::bin().args([
            "--alarm-freq",
            "0",
            "--alarm",
            &action,
            "--alarm",
            "l log:T",
            "--log-alarm",
            "c,l ALARM",
            "--log-alarm",
            "c,l alarm$|^\\[logalarm$",
        ]),
        input,
    );
    let stderr = common::stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(output.stdout, input, "tagged lines pass through unchanged");
    assert_eq!(
        std::fs::read(&out).unwrap_or_default(),
        b" [logalarm TERRIBLE ALARM leading space\n\
          x[uwsgi-alarm ALARM not at the start\n\
          \t[logalarm ALARM after a tab\n"
            .to_vec(),
        "only untagged lines fire; stderr:\n{stderr}"
    );
    let alarms: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("[logalarm] ALARM: "))
        .collect();
    assert_eq!(
        alarms,
        [
            "[logalarm] ALARM: T  [logalarm TERRIBLE ALARM leading space",
            "[logalarm] ALARM: T x[uwsgi-alarm ALARM not at the start",
            "[logalarm] ALARM: T \t[logalarm ALARM after a tab",
        ]
    );
}
