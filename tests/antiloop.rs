//! The anti-loop tag through the real binary: logalarm's own output fed back
//! into its input never fires an alarm, so such a pipeline settles; lines
//! starting with `[logalarm` or `[uwsgi-alarm` pass through but never match.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::ChildStdin;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;

use common::PATIENCE;

/// Waits until every line of `wanted` has been received on `rx` (in any order).
fn wait_lines(rx: &Receiver<String>, wanted: &[&str], seen: &mut Vec<String>) {
    common::recv_until(rx, seen, &format!("{wanted:?} fed back"), |seen| {
        wanted.iter().all(|w| seen.iter().any(|s| s == w))
    });
}

#[test]
fn output_fed_back_into_input_settles() {
    let mut child = common::spawn_piped(common::bin().args([
        "--no-passthrough",
        "--alarm-freq",
        "0",
        "--alarm",
        "l log:LOOP",
        "--alarm",
        "c cmd:cat",
        "--log-alarm",
        "l,c ALARM",
    ]));
    let stdin: Arc<Mutex<Option<ChildStdin>>> = Arc::new(Mutex::new(child.stdin.take()));
    let stderr = child.stderr.take().expect("stderr");
    let stdout = child.stdout.take().expect("stdout");
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
                    let _ = tx.send(common::untimed(&String::from_utf8_lossy(&line)).into_owned());
                }
                drop(guard);
                all.push(common::untimed(&String::from_utf8_lossy(&line)).into_owned());
            }
            all
        })
    };
    let pass_through = common::read_in_background(stdout);
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
    let status = common::wait_exit(&mut child, PATIENCE);
    let all = feedback.join().expect("feedback thread");
    assert!(status.success(), "{status}: {all:#?}");
    assert_eq!(
        pass_through.finish("stdout", PATIENCE),
        b"",
        "--no-passthrough"
    );

    let alarms = common::alarm_lines(&all);
    assert_eq!(
        alarms,
        [
            "[logalarm] ALARM: LOOP TERRIBLE ALARM seed",
            "[logalarm] ALARM: LOOP TERRIBLE ALARM sentinel"
        ],
        "{all:#?}"
    );
    let cmd_out = common::lines_starting_with(&all, "[logalarm] cmd c: ");
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
    let action = format!("c cmd:cat >> {}", common::sh_quote(&out));
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
    let alarms = common::alarm_lines(stderr.lines());
    assert_eq!(
        alarms,
        [
            "[logalarm] ALARM: T  [logalarm TERRIBLE ALARM leading space",
            "[logalarm] ALARM: T x[uwsgi-alarm ALARM not at the start",
            "[logalarm] ALARM: T \t[logalarm ALARM after a tab",
        ]
    );
}
