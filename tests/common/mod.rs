//! Shared helpers for the integration tests: they run the built `logalarm`
//! binary as a user would.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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

/// Runs `cmd` with `input` on stdin and returns its output.
pub fn run_with_input(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn logalarm");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait logalarm");
    writer.join().expect("writer thread");
    out
}

/// Stderr as text, for assertions and failure messages.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
