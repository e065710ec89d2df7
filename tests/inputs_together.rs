//! Several inputs in one config, read side by side: a wrapped process's
//! stdout and stderr, a followed file and a unix socket. Each line fires with
//! its own origin, and the run ends with the process.

mod common;

use common::{Logalarm, PATIENCE, sh_quote};
use std::io::Write;
use std::os::unix::net::UnixStream;

#[test]
fn wrapped_process_file_and_socket_in_one_run() {
    let dir = common::scratch("inputs_together");
    let out = dir.join("alarms.txt");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let sock = dir.join("in.sock");
    let done = dir.join("done");
    let config = dir.join("all.toml");
    std::fs::write(
        &config,
        format!(
            r#"alarm_freq = 0
state_dir = "{state}"
[alarm.mark]
action = "cmd:printf '%s|%s\n' \"$LOGALARM_SOURCE\" \"$LOGALARM_LINE\" >> {out}"
[[rule]]
regex = "MARK"
alarm = "mark"
[[input]]
file = "{logs}/*.log"
from = "beginning"
[[input]]
socket = "{sock}"
type = "stream"
"#,
            state = dir.join("state").display(),
            out = sh_quote(&out),
            logs = logs.display(),
            sock = sock.display(),
        ),
    )
    .unwrap();
    // The process prints one marker on each stream, then waits to be told to end.
    let script = format!(
        "import os, sys, time\n\
         print('MARK on stdout', flush=True)\n\
         print('MARK on stderr', file=sys.stderr, flush=True)\n\
         while not os.path.exists({done:?}): time.sleep(0.01)\n",
        done = done.display().to_string()
    );
    let la = Logalarm::new()
        .arg("run")
        .arg("-c")
        .arg(&config)
        .args(["--", "python3", "-c", &script])
        .stdin_piped()
        .start();
    assert!(
        common::poll_until(PATIENCE, || sock.exists()),
        "{} never appeared",
        sock.display()
    );
    std::fs::write(logs.join("app.log"), "MARK in a file\n").unwrap();
    let mut client = UnixStream::connect(&sock).unwrap();
    client.write_all(b"MARK over the socket\n").unwrap();
    drop(client);
    let got = common::wait_for_file(&out, PATIENCE, |b| {
        b.iter().filter(|&&c| c == b'\n').count() >= 4
    });
    std::fs::write(&done, "").unwrap();
    let done = la.finish();
    let stderr = done.stderr_text();
    assert_eq!(done.code(), Some(0), "{stderr}");
    let mut lines: Vec<String> = String::from_utf8_lossy(&got)
        .lines()
        .map(|l| {
            // A stream client's source carries its pid: keep the stable part.
            match l.split_once(" (pid ") {
                Some((head, tail)) => {
                    let rest = tail.split_once(')').map_or("", |(_, r)| r);
                    format!("{head}{rest}")
                }
                None => l.to_owned(),
            }
        })
        .collect();
    lines.sort();
    let mut want = vec![
        "child:stderr|MARK on stderr".to_owned(),
        "child:stdout|MARK on stdout".to_owned(),
        format!("file:{}|MARK in a file", logs.join("app.log").display()),
        format!("socket:{}|MARK over the socket", sock.display()),
    ];
    want.sort();
    assert_eq!(lines, want, "{stderr}");
    // The process's output was passed through; the file's and the socket's were not.
    assert_eq!(done.stdout_text(), "MARK on stdout\n");
    assert!(stderr.contains("MARK on stderr\n"), "{stderr}");
    assert!(!sock.exists(), "the socket file is removed at exit");
}
