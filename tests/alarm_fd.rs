//! uWSGI's `alarm-fd` through the real binary: a FIFO made here, written to by
//! the test as any other program would (one byte per firing, or SIZE bytes),
//! writers that close and come back, several lines on one FIFO, a descriptor
//! inherited from the shell, and clear errors for a bad FD.

mod common;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Done, Logalarm, PATIENCE, Running, sh_quote, summary};

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(made.success(), "mkfifo {}", path.display());
}

/// Opens `fifo` for writing once logalarm has opened it for reading (a
/// non-blocking open fails with ENXIO until a reader exists).
fn writer(fifo: &Path) -> File {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo)
        {
            Ok(f) => return f,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("cannot open {} for writing: {e}", fifo.display()),
        }
    }
}

/// logalarm reading its (piped, open) stdin, with `args`.
fn spawn(args: &[&str]) -> Running {
    Logalarm::new().args(args).stdin_piped().start()
}

fn lines_in(path: &Path) -> Vec<String> {
    common::lines(&std::fs::read(path).unwrap_or_default())
}

/// Closes stdin and waits for logalarm's end.
fn finish(mut la: Running) -> Done {
    la.close_stdin();
    la.finish()
}

#[test]
fn each_byte_fires_and_writers_may_come_and_go() {
    let dir = common::scratch("alarm_fd_fifo");
    let fifo = dir.join("poke.fifo");
    mkfifo(&fifo);
    let fired = dir.join("fired.txt");
    let alarm = format!(
        "poke cmd:printf '%s|%s|%s\\n' \"$LOGALARM_SOURCE\" \"$LOGALARM_RULE\" \"$LOGALARM_LINE\" >> {}",
        sh_quote(&fired)
    );
    let fd = format!("poke {} FIFO POKED", fifo.display());
    let la = spawn(&["--alarm", &alarm, "--alarm-fd", &fd, "--alarm-freq", "0"]);
    let mut w = writer(&fifo);
    w.write_all(b"abc").unwrap();
    let expect = format!("fd:{}|alarm-fd|FIFO POKED", fifo.display());
    assert_eq!(common::wait_for_lines(&fired, 3), [expect.as_str(); 3]);
    // The writer goes away and another comes: logalarm holds the FIFO open, so
    // it never sees an end and goes on watching.
    drop(w);
    let mut w = writer(&fifo);
    w.write_all(b"x").unwrap();
    assert_eq!(common::wait_for_lines(&fired, 4).len(), 4);
    drop(w);
    let out = finish(la);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
    assert_eq!(lines_in(&fired).len(), 4);
    assert_eq!(summary(out.stderr_text().lines(), "poke"), (4, 0, 0, 0));
}

#[test]
fn size_bytes_per_firing_and_lines_sharing_a_fifo() {
    let dir = common::scratch("alarm_fd_size");
    let fifo = dir.join("oom.fifo");
    mkfifo(&fifo);
    let one = dir.join("one.txt");
    let two = dir.join("two.txt");
    let la = spawn(&[
        "--alarm",
        &format!("one cmd:cat >> {}", sh_quote(&one)),
        "--alarm",
        &format!("two cmd:cat >> {}", sh_quote(&two)),
        "--alarm-fd",
        &format!("one {}:8 OUT OF MEMORY", fifo.display()),
        "--alarm-fd",
        &format!("two {}:8 also seen", fifo.display()),
        "--alarm-freq",
        "0",
    ]);
    let mut w = writer(&fifo);
    // 8 bytes: one firing of each; then 12: one more, with 4 bytes carried over.
    w.write_all(&1u64.to_ne_bytes()).unwrap();
    assert_eq!(common::wait_for_lines(&one, 1), ["OUT OF MEMORY"]);
    assert_eq!(common::wait_for_lines(&two, 1), ["also seen"]);
    w.write_all(b"123456789012").unwrap();
    assert_eq!(common::wait_for_lines(&one, 2).len(), 2);
    // The last 4 bytes fire together with 4 more.
    w.write_all(b"3456").unwrap();
    assert_eq!(common::wait_for_lines(&one, 3).len(), 3);
    drop(w);
    let out = finish(la);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
    assert_eq!(lines_in(&one), ["OUT OF MEMORY"; 3]);
    assert_eq!(lines_in(&two), ["also seen"; 3]);
}

#[test]
fn an_inherited_descriptor_is_watched() {
    let dir = common::scratch("alarm_fd_inherited");
    let fifo = dir.join("inherited.fifo");
    mkfifo(&fifo);
    let fired = dir.join("fired.txt");
    // The shell opens the FIFO as descriptor 3 (read-write, so it never blocks)
    // and hands it to logalarm, as a service manager would.
    let script = format!(
        "exec {} --alarm {} --alarm-fd 'poke 3 from fd 3' --alarm-freq 0 3<>{}",
        sh_quote(Path::new(env!("CARGO_BIN_EXE_logalarm"))),
        sh_quote(Path::new(&format!("poke cmd:cat >> {}", sh_quote(&fired)))),
        sh_quote(&fifo)
    );
    let la = Logalarm::program("sh")
        .args(["-c", &script])
        .stdin_piped()
        .start();
    let mut w = writer(&fifo);
    w.write_all(b"!!").unwrap();
    assert_eq!(
        common::wait_for_lines(&fired, 2),
        ["from fd 3", "from fd 3"]
    );
    drop(w);
    let out = finish(la);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
}

#[test]
fn bad_fds_are_clear_errors() {
    let dir = common::scratch("alarm_fd_errors");
    let run = |fd: &str| {
        let out = Logalarm::new()
            .args(["--alarm", "a log:", "--alarm-fd", &format!("a {fd} msg")])
            .run(b"");
        (out.code(), out.stderr_text())
    };
    let missing = dir.join("missing.fifo");
    let (code, err) = run(missing.to_str().unwrap());
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "alarm-fd {} does not exist; create the FIFO first (mkfifo PATH)",
            missing.display()
        )),
        "{err}"
    );
    let plain = dir.join("plain.txt");
    std::fs::write(&plain, "x").unwrap();
    let (code, err) = run(plain.to_str().unwrap());
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("is a regular file"), "{err}");
    let (code, err) = run("250");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("alarm-fd descriptor 250 is not open"), "{err}");
    // Descriptor 3 and up exist in logalarm (its runtime's), but were not inherited.
    let (code, err) = run("3");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("alarm-fd descriptor 3 was not inherited"),
        "{err}"
    );

    // A FIFO logalarm may read but not write cannot be held open (root reads
    // and writes everything, so only check this as another user).
    if unsafe { libc::geteuid() } != 0 {
        let ro = dir.join("ro.fifo");
        mkfifo(&ro);
        std::fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o400)).unwrap();
        let (code, err) = run(ro.to_str().unwrap());
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("read-write"), "{err}");
    }
}
