//! Hostile and odd input through the real binary: invalid UTF-8, NUL bytes,
//! a 10 MB line, empty input, lone carriage returns, no final newline, and a
//! burst of 100,000 matching lines against a slow action (bounded queue,
//! bounded memory, overflow counted).

mod common;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::{Done, Logalarm, alarm_lines, sh_quote, summary};

/// Peak RSS allowed for one logalarm run, in KiB (generous: a debug build
/// holding a 16 MiB line buffer stays far below it).
const RSS_LIMIT_KIB: i64 = 200 * 1024;

/// Runs `cmd` with `input` on stdin, collecting everything, its peak RSS
/// included ([`Done::max_rss_kib`]). Kills it and fails after `limit`.
fn run_measured(cmd: Logalarm, input: Vec<u8>, limit: Duration) -> Done {
    let ran = cmd.timeout(limit).run(input);
    assert!(
        ran.max_rss_kib > 1024,
        "implausible peak RSS {} KiB: measurement broken",
        ran.max_rss_kib
    );
    ran
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_no_panic(stderr: &str) {
    assert!(!stderr.contains("panicked"), "logalarm panicked:\n{stderr}");
}

#[test]
fn invalid_utf8_and_nul_bytes_are_matched_as_bytes() {
    let dir = common::scratch("bad_input_bytes");
    let (msgs, env) = (dir.join("msgs"), dir.join("env"));
    let input: &[u8] = b"plain line\n\
        bad \xff byte here\n\
        nul\x00 TERRIBLE ALARM \x00end\n\
        \xc3\x28 invalid pair ALARM\r\n\
        no match \xfe\n";
    let action = format!(
        "c cmd:cat >> {}; printf '%s|%s\\n' \"$LOGALARM_RULE\" \"$LOGALARM_LINE\" >> {}",
        sh_quote(&msgs),
        sh_quote(&env)
    );
    let ran = run_measured(
        Logalarm::new()
            .args(["--alarm-freq", "0", "--alarm", &action])
            .args(["--log-alarm", r"c \xff", "--log-alarm", "c ALARM"]),
        input.to_vec(),
        Duration::from_secs(60),
    );
    let stderr = ran.stderr_text();
    assert_eq!(ran.code(), Some(0), "{}", stderr);
    assert_eq!(ran.stdout, input, "pass-through must be byte-identical");
    // The command gets each message byte for byte (NULs and invalid UTF-8 kept,
    // the trailing \r removed), plus one newline, in input order.
    assert_eq!(
        read(&msgs),
        b"bad \xff byte here\nnul\x00 TERRIBLE ALARM \x00end\n\xc3\x28 invalid pair ALARM\n"
            .to_vec()
    );
    // The environment carries the rule and the line, NULs removed.
    assert_eq!(
        read(&env),
        b"\\xff|bad \xff byte here\nALARM|nul TERRIBLE ALARM end\nALARM|\xc3\x28 invalid pair ALARM\n".to_vec()
    );
    assert_eq!(summary(stderr.lines(), "c"), (3, 0, 0, 0));
    assert_no_panic(&stderr);
}

/// A `len`-byte line (without its newline) ending in `marker`.
fn long_line(len: usize, marker: &[u8]) -> Vec<u8> {
    let mut line = vec![b'x'; len - marker.len()];
    line.extend_from_slice(marker);
    line.push(b'\n');
    line
}

#[test]
fn ten_megabyte_line_fires_once_with_a_truncated_message() {
    let dir = common::scratch("bad_input_10mb");
    let (msgs, env) = (dir.join("msgs"), dir.join("env"));
    const LEN: usize = 10_000_000;
    let mut input = b"before\n".to_vec();
    input.extend(long_line(LEN, b"TERRIBLE ALARM"));
    input.extend_from_slice(b"after\n");
    let action = format!(
        "c cmd:cat >> {}; echo \"$LOGALARM_TRUNCATED|${{#LOGALARM_LINE}}\" >> {}",
        sh_quote(&msgs),
        sh_quote(&env)
    );
    let ran = run_measured(
        Logalarm::new().args([
            "--alarm",
            &action,
            "--alarm",
            "l log:BIG",
            "--log-alarm",
            "c,l TERRIBLE ALARM",
        ]),
        input.clone(),
        Duration::from_secs(120),
    );
    let stderr = ran.stderr_text();
    assert_eq!(ran.code(), Some(0), "{}", &stderr[..stderr.len().min(4000)]);
    assert!(
        ran.stdout == input,
        "pass-through differs: {} bytes out, {} in",
        ran.stdout.len(),
        input.len()
    );
    let marker = format!(" [logalarm: truncated, {LEN} bytes in all]");
    // Exactly one message: the first 8192 bytes of the line, the marker, a newline.
    let mut expected = vec![b'x'; 8192];
    expected.extend_from_slice(marker.as_bytes());
    expected.push(b'\n');
    let got = read(&msgs);
    assert_eq!(got.len(), expected.len(), "message length");
    assert!(
        got == expected,
        "message differs: ends with {:?}",
        String::from_utf8_lossy(&got[got.len() - 80..])
    );
    assert_eq!(
        String::from_utf8(read(&env)).unwrap(),
        format!("{LEN}|{}\n", 8192 + marker.len()),
        "LOGALARM_TRUNCATED|length of LOGALARM_LINE"
    );
    let alarms = alarm_lines(stderr.lines());
    assert_eq!(alarms.len(), 1);
    assert_eq!(
        alarms[0],
        format!("[logalarm] ALARM: BIG {}{marker}", "x".repeat(8192))
    );
    assert_eq!(summary(stderr.lines(), "c"), (1, 0, 0, 0));
    assert_eq!(summary(stderr.lines(), "l"), (1, 0, 0, 0));
    assert_no_panic(&stderr);
    assert!(
        ran.max_rss_kib < RSS_LIMIT_KIB,
        "peak RSS {} KiB exceeds {RSS_LIMIT_KIB} KiB for a 10 MB line",
        ran.max_rss_kib
    );
}

#[test]
fn empty_input_exits_quietly() {
    let dir = common::scratch("bad_input_empty");
    let out = dir.join("out");
    let action = format!("c cmd:cat >> {}", sh_quote(&out));
    // A rule that matches anything, even the empty string.
    let ran = run_measured(
        Logalarm::new().args([
            "--alarm",
            &action,
            "--alarm",
            "l log:EMPTY",
            "--log-alarm",
            "c,l ^",
        ]),
        Vec::new(),
        Duration::from_secs(60),
    );
    let stderr = ran.stderr_text();
    assert_eq!(ran.code(), Some(0), "{}", stderr);
    assert_eq!(ran.stdout, b"");
    assert_eq!(stderr, "", "no alarm, no summary, nothing logged");
    assert!(!out.exists(), "the cmd alarm ran on empty input");
}

/// Runs one alarm `c` (cmd appending its stdin to a file) with `rules`, and
/// returns (exit code, stdout, what the command received, stderr).
fn run_collecting(
    name: &str,
    rules: &[&str],
    input: &[u8],
) -> (Option<i32>, Vec<u8>, Vec<u8>, String) {
    let dir = common::scratch(name);
    let out = dir.join("out");
    let action = format!("c cmd:cat >> {}", sh_quote(&out));
    let mut cmd = Logalarm::new().args(["--alarm-freq", "0", "--alarm", &action]);
    for rule in rules {
        cmd = cmd.args(["--log-alarm", rule]);
    }
    let ran = run_measured(cmd, input.to_vec(), Duration::from_secs(60));
    let stderr = ran.stderr_text();
    assert_no_panic(&stderr);
    let got = if out.exists() { read(&out) } else { Vec::new() };
    (ran.code(), ran.stdout, got, stderr)
}

/// For each `(case, input, expected)`: runs `input` through [`run_collecting`]
/// (scratch dir `{test}_{case}`) and checks exit 0, an unchanged pass-through
/// and that the command received `expected`.
fn assert_cases(test: &str, rules: &[&str], cases: &[(&str, &[u8], &[u8])]) {
    for &(case, input, expected) in cases {
        let (code, stdout, got, stderr) = run_collecting(&format!("{test}_{case}"), rules, input);
        assert_eq!(code, Some(0), "{case}: {stderr}");
        assert_eq!(stdout, input, "{case}: pass-through");
        assert_eq!(
            got, expected,
            "{case}: messages delivered; stderr:\n{stderr}"
        );
    }
}

#[test]
fn lines_of_only_carriage_returns() {
    // `^$` sees "\r\n" and a final lone "\r" as empty lines; `\r` never sees a
    // trailing carriage return (it is not part of the line), only an inner one.
    let rules = [r"c ^$", r"c \r"];
    assert_cases(
        "bad_input_cr",
        &rules,
        &[
            ("crlf", &b"\r\n"[..], &b"\n"[..]),
            ("cr_eof", b"\r", b"\n"),
            ("both", b"\r\n\r", b"\n\n"),
            ("inner_cr", b"a\rb\n", b"a\rb\n"),
            ("inner_cr_crlf", b"a\rb\r\n", b"a\rb\n"),
        ],
    );
}

#[test]
fn last_line_without_newline_counts() {
    // `ALARM$` also checks that the trailing \r is not part of the last line.
    assert_cases(
        "bad_input_eof",
        &["c ALARM$"],
        &[
            (
                "plain",
                &b"first\nsecond TERRIBLE ALARM"[..],
                &b"second TERRIBLE ALARM\n"[..],
            ),
            (
                "cr",
                b"first\nsecond TERRIBLE ALARM\r",
                b"second TERRIBLE ALARM\n",
            ),
            ("only", b"TERRIBLE ALARM", b"TERRIBLE ALARM\n"),
        ],
    );
}

#[test]
fn burst_of_100k_lines_overflows_counted_and_bounded() {
    const N: usize = 100_000;
    let dir = common::scratch("bad_input_burst");
    let out = dir.join("out");
    let mut input = Vec::with_capacity(N * 24);
    for i in 0..N {
        writeln!(input, "TERRIBLE ALARM {i}").unwrap();
    }
    // One /bin/sh per notification: far slower than reading 100k lines.
    let action = format!("c cmd:cat >> {}", sh_quote(&out));
    let ran = run_measured(
        Logalarm::new().args([
            "--alarm-freq",
            "0",
            "--drain-timeout",
            "600s",
            "--alarm",
            &action,
            "--log-alarm",
            "c ALARM",
        ]),
        input.clone(),
        Duration::from_secs(900),
    );
    let stderr = ran.stderr_text();
    assert_no_panic(&stderr);
    assert_eq!(
        ran.code(),
        Some(0),
        "{}",
        &stderr[stderr.len().saturating_sub(4000)..]
    );
    assert!(
        ran.stdout == input,
        "pass-through differs: {} bytes out, {} in",
        ran.stdout.len(),
        input.len()
    );
    let (delivered, failed, suppressed, dropped) = summary(stderr.lines(), "c");
    assert_eq!((failed, suppressed), (0, 0));
    assert_eq!(
        delivered + dropped,
        N as u64,
        "every matching line is delivered or counted as dropped"
    );
    assert!(dropped > 0, "a 1024-slot queue cannot hold a 100k burst");
    // What the command received: `delivered` distinct lines, in input order;
    // the first 1024 lines always fit in the queue.
    let got = String::from_utf8(read(&out)).unwrap();
    let numbers: Vec<usize> = got
        .lines()
        .map(|l| {
            l.strip_prefix("TERRIBLE ALARM ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("bad line {l:?}"))
        })
        .collect();
    assert_eq!(numbers.len() as u64, delivered);
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "delivered out of order or twice"
    );
    assert_eq!(numbers[..1024], (0..1024).collect::<Vec<_>>());
    // Overflow is reported: a warning when it starts, one when room is back.
    let full = stderr
        .lines()
        .filter(|l| l.starts_with("[logalarm] warn: ") && l.contains("queue full"))
        .count();
    let room: Vec<u64> = stderr
        .lines()
        .filter(|l| l.starts_with("[logalarm] warn: ") && l.contains("queue has room again"))
        .map(|l| {
            let rest = &l[l.find("room again; ").expect("count") + "room again; ".len()..];
            rest.split(' ')
                .next()
                .unwrap()
                .parse()
                .expect("dropped count")
        })
        .collect();
    assert!(full >= 1, "no overflow warning");
    assert!(
        room.len() == full || room.len() + 1 == full,
        "{full} overflow starts, {} ends",
        room.len()
    );
    let reported: u64 = room.iter().sum();
    if room.len() == full {
        assert_eq!(reported, dropped);
    } else {
        assert!(
            reported < dropped,
            "{reported} reported of {dropped} dropped"
        );
    }
    assert!(
        ran.max_rss_kib < RSS_LIMIT_KIB,
        "peak RSS {} KiB exceeds {RSS_LIMIT_KIB} KiB for a 100k-line burst",
        ran.max_rss_kib
    );
}

/// ENGINE BUG (reported): a line of exactly 16 MiB (`MAX_LINE`) plus its `\n`
/// is not kept whole: the reader warns "a line is longer than 16777216 bytes",
/// matches the 16 MiB as one piece and then the lone `\n` as a second, empty
/// line, so a `^$` rule fires on input that has no empty line. Shown by:
/// `python3 -c "import sys; sys.stdout.buffer.write(b'x'*16777211+b'ALARM\n')" |
///  logalarm --alarm 'l log:L' --log-alarm 'l ^$' --log-alarm 'l ALARM' --alarm-msg-size 10 --alarm-freq 0 >/dev/null`
/// (two ALARM lines, the second empty). Un-ignore once the reader is fixed.
#[test]
fn line_of_exactly_16_mib_is_kept_whole() {
    const MAX_LINE: usize = 16 << 20;
    let input = long_line(MAX_LINE, b"ALARM");
    let ran = run_measured(
        Logalarm::new().args([
            "--alarm-freq",
            "0",
            "--alarm-msg-size",
            "10",
            "--alarm",
            "l log:L",
            "--log-alarm",
            "l ^$",
            "--log-alarm",
            "l ALARM",
        ]),
        input.clone(),
        Duration::from_secs(120),
    );
    let stderr = ran.stderr_text();
    assert_eq!(ran.code(), Some(0), "{}", stderr);
    assert!(ran.stdout == input, "pass-through differs");
    let alarms = alarm_lines(stderr.lines());
    assert_eq!(
        alarms,
        [format!(
            "[logalarm] ALARM: L xxxxxxxxxx [logalarm: truncated, {MAX_LINE} bytes in all]"
        )]
    );
    assert!(
        !stderr.contains("longer than"),
        "a 16 MiB line is not longer than 16 MiB:\n{}",
        stderr
    );
}
