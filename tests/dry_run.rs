//! `logalarm test` as fail2ban-regex users know it, `--expect` rule unit
//! tests, and the generated shell completions and man page: each run through
//! the built binary, with exact output asserted.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Done, Logalarm};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// The demo application's lines (`examples/demo_app.py`), without its pauses.
fn demo_lines() -> Vec<u8> {
    let out = Command::new("python3")
        .arg("-c")
        .arg("import runpy, time; time.sleep = lambda s: None; runpy.run_path('examples/demo_app.py')")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("python3 runs the demo app");
    assert!(out.status.success(), "demo app: {out:?}");
    out.stdout
}

fn stdout(out: &Done) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

/// The report without its last line, which must be `processed N lines in X s`.
fn without_timing(text: &str, lines: u64) -> String {
    let (body, last) = text
        .trim_end_matches('\n')
        .rsplit_once('\n')
        .expect("more than one line");
    let seconds = last
        .strip_prefix(&format!("processed {lines} lines in "))
        .and_then(|s| s.strip_suffix(" s"))
        .unwrap_or_else(|| panic!("last line {last:?}"));
    let seconds: f64 = seconds.parse().expect("seconds");
    assert!((0.0..60.0).contains(&seconds), "{last}");
    format!("{body}\n")
}

const DEMO_SUMMARY: &str = "\
Lines: 12 read, 4 matched, 2 ignored (0 anti-loop tag, 2 not-log-alarm), 6 missed
Rules:
    1  not-log-alarm  DEBUG  -> console: 2 lines
    2  log-alarm      ^TERRIBLE ALARM  -> console,oncall: 2 lines
    3  log-alarm      HARAKIRI ON WORKER  -> oncall: 1 line
    4  log-alarm      uWSGI listen queue of socket .* full  -> console: 1 line
Alarms (policies on the arrival clock: the lines carry no time logalarm reads):
  console: 3 events -> 2 notifications (1 dropped by alarm-freq)
  oncall: 3 events -> 3 notifications
";

#[test]
fn summary_by_default() {
    let ini = examples().join("alarms.ini");
    let out = Logalarm::new()
        .arg("test")
        .arg("-c")
        .arg(&ini)
        .run(demo_lines());
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
    assert_eq!(without_timing(&stdout(&out), 12), DEMO_SUMMARY);
}

#[test]
fn lists_matched_missed_and_ignored_lines_on_request() {
    let ini = examples().join("alarms.ini");
    let mut input = demo_lines();
    // logalarm's own log line, with a marker a rule would match.
    input.extend_from_slice(b"[logalarm] ALARM: [PAGE ME] uWSGI listen queue of socket x full\n");
    let run = |flags: &[&str]| {
        let out = Logalarm::new()
            .arg("test")
            .arg("-c")
            .arg(&ini)
            .args(flags)
            .arg("-")
            .run(&input);
        assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
        let text = without_timing(&stdout(&out), 13);
        let (listing, summary) = text
            .split_once("\n\n")
            .expect("a blank line before the summary");
        assert!(summary.starts_with(
            "Lines: 13 read, 4 matched, 3 ignored (1 anti-loop tag, 2 not-log-alarm), 6 missed\n"
        ));
        format!("{listing}\n")
    };
    assert_eq!(
        run(&["--print-all-matched"]),
        "\
line 4: fires console, oncall (rule 2 /^TERRIBLE ALARM/): TERRIBLE ALARM the world exploded !!!
line 7: fires oncall (rule 3 /HARAKIRI ON WORKER/): *** HARAKIRI ON WORKER 3 (pid: 4245, try: 1) ***
line 10: fires console, oncall (rule 2 /^TERRIBLE ALARM/): TERRIBLE ALARM the world exploded !!!
    console: dropped by alarm-freq (same message within 3s)
line 11: fires console (rule 4 /uWSGI listen queue of socket .* full/): ERROR uWSGI listen queue of socket 127.0.0.1:3031 (fd: 3) full !!! (101/100)
"
    );
    assert_eq!(
        run(&["--print-all-missed"]),
        "\
line 1: missed: INFO worker 1 started (pid 4242)
line 2: missed: INFO GET /health 200 0.8ms
line 5: missed: INFO GET /api/orders 200 12.1ms
line 6: missed: WARN slow query: 1520ms SELECT * FROM orders
line 9: missed: INFO GET /api/orders 200 11.7ms
line 12: missed: INFO shutting down
"
    );
    assert_eq!(
        run(&["--print-all-ignored"]),
        "\
line 3: ignored (rule 1 not-log-alarm skips the rules after it): DEBUG cache warmed: 1024 keys
line 8: ignored (rule 1 not-log-alarm skips the rules after it): DEBUG HARAKIRI ON WORKER 9 drill (no alarm: DEBUG lines never alarm)
line 13: ignored (anti-loop tag): [logalarm] ALARM: [PAGE ME] uWSGI listen queue of socket x full
"
    );
}

/// `logalarm test LOG REGEX IGNOREREGEX` without a config, counted against
/// the Loghub ground truth: OpenSSH's template E9 (`Failed password for <*>
/// from …`) is the lines with `Failed password for` but neither E10's
/// `invalid user` nor E14's `message repeated`.
#[test]
fn ad_hoc_regex_counts_equal_the_ground_truth() {
    let dir = common::corpus().join("OpenSSH");
    let mut reader =
        csv::Reader::from_path(dir.join("OpenSSH_2k.log_structured.csv")).expect("csv");
    let event = reader
        .headers()
        .expect("csv header")
        .iter()
        .position(|h| h == "EventId")
        .expect("EventId column");
    let e9 = reader
        .records()
        .map(|r| r.expect("csv record"))
        .filter(|r| &r[event] == "E9")
        .count() as u64;
    assert_eq!(e9, 383);
    // The ignore regex is plain text: the lines holding either part.
    let log = std::fs::read_to_string(dir.join("OpenSSH_2k.log")).expect("log");
    let ignored = log
        .lines()
        .filter(|l| l.contains("invalid user") || l.contains("message repeated"))
        .count();
    let out = Logalarm::new()
        .arg("test")
        .arg(dir.join("OpenSSH_2k.log"))
        .arg("Failed password for")
        .arg("invalid user|message repeated")
        .run(b"");
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
    assert_eq!(out.stderr_text(), "");
    let missed = 2000 - e9 - ignored as u64;
    assert_eq!(
        without_timing(&stdout(&out), 2000),
        format!(
            "\
Lines: 2000 read, {e9} matched, {ignored} ignored (0 anti-loop tag, {ignored} not-log-alarm), {missed} missed
Rules:
    1  not-log-alarm  invalid user|message repeated  -> regex: {ignored} lines
    2  log-alarm      Failed password for  -> regex: {e9} lines
Alarms (policies on the lines' own clock):
  regex: {e9} events -> {e9} notifications
"
        )
    );
}

/// The numbers of `regex: E events -> N notifications (D dropped by alarm-freq)`.
fn test_counts(text: &str) -> (u64, u64, u64) {
    let line = text
        .lines()
        .find(|l| l.starts_with("  regex: "))
        .unwrap_or_else(|| panic!("no alarm line in {text}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("number"))
        .collect();
    match numbers[..] {
        [events, notes] => (events, notes, 0),
        [events, notes, dropped] => (events, notes, dropped),
        _ => panic!("{line}"),
    }
}

/// `test` applies alarm-freq as a live run does: on Apache's log, whose
/// identical lines come within the same second, both drop the same repeats.
#[test]
fn alarm_freq_counts_equal_a_live_run() {
    let log = common::corpus().join("Apache/Apache_2k.log");
    let raw = std::fs::read(&log).expect("log");
    for (regex, events, notes) in [(r"\[error\]", 595, 420), ("workerEnv", 1108, 862)] {
        let dry = Logalarm::new().arg("test").arg(&log).arg(regex).run(b"");
        assert_eq!(dry.status.code(), Some(0), "{}", dry.stderr_text());
        let (e, n, dropped) = test_counts(&stdout(&dry));
        assert_eq!((e, n, dropped), (events, notes, events - notes), "{regex}");

        let live = Logalarm::new()
            .arg("--no-passthrough")
            .arg("--alarm")
            .arg("regex log:")
            .arg("--log-alarm")
            .arg(format!("regex {regex}"))
            .run(&raw);
        assert_eq!(live.status.code(), Some(0), "{}", live.stderr_text());
        let lines = live.stderr_lines();
        assert_eq!(common::alarm_lines(lines).len() as u64, notes, "{regex}");
        assert_eq!(
            common::summary(lines, "regex"),
            (notes, 0, events - notes, 0),
            "{regex}"
        );
    }
}

#[test]
fn expect_cases_pass() {
    let out = Logalarm::new()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["test", "--expect", "examples/alarms.test.toml"])
        .run(b"");
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(
        stdout(&out),
        "\
ok      case 1: a terrible alarm pages the console and on-call (1 line)
ok      case 2: DEBUG lines never alarm, even with a marker in them (2 lines)
ok      case 3: the marker must start the line (1 line)
ok      case 4: alarm-freq: the same message twice within 3 s reaches each alarm once (2 lines)
ok      case 5: a harakiri goes to on-call only, word for word (1 line)
ok      case 6: the demo application's whole run (6 lines)
examples/alarms.test.toml: 6 cases, 6 passed, 0 failed
"
    );
}

#[test]
fn expect_case_failing_on_purpose_shows_a_diff() {
    let dir = common::scratch("expect_fails");
    let cases = dir.join("cases.toml");
    std::fs::write(
        &cases,
        "\
[[case]]
name = \"holds\"
lines = [\"TERRIBLE ALARM one\"]
alarms = { console = 1, oncall = 1 }

[[case]]
name = \"wrong on purpose\"
lines = [\"TERRIBLE ALARM one\", \"TERRIBLE ALARM two\", \"DEBUG TERRIBLE ALARM\"]
messages = { console = [\"TERRIBLE ALARM one\", \"TERRIBLE ALARM 2\"] }
alarms = { oncall = 1 }
",
    )
    .expect("write cases");
    let out = Logalarm::new()
        .arg("test")
        .arg("-c")
        .arg(examples().join("alarms.ini"))
        .arg("--expect")
        .arg(&cases)
        .run(b"");
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr_text());
    assert_eq!(
        stdout(&out),
        format!(
            "\
ok      case 1: holds (1 line)
FAILED  case 2: wrong on purpose (3 lines)
        at {c}:6: case[2]
        alarm console: messages differ (- expected, + sent; 2 expected, 2 sent):
            TERRIBLE ALARM one
          - TERRIBLE ALARM 2
          + TERRIBLE ALARM two
        alarm oncall: expected 1 notification, sent 2
          + TERRIBLE ALARM one
          + TERRIBLE ALARM two
{c}: 2 cases, 1 passed, 1 failed
",
            c = cases.display()
        )
    );
}

#[test]
fn expect_file_errors_name_the_file_line_and_fix() {
    let dir = common::scratch("expect_errors");
    let cases = dir.join("cases.toml");
    // The config is the one the cases file names.
    std::fs::write(
        &cases,
        format!(
            "config = {:?}\n\n[[case]]\nname = \"typo\"\nlines = [\"x\"]\nalarms = {{ consol = 1 }}\n",
            examples().join("alarms.ini")
        ),
    )
    .expect("write cases");
    let out = Logalarm::new()
        .arg("test")
        .arg("--expect")
        .arg(&cases)
        .run(b"");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "");
    let errors: Vec<String> = out
        .stderr_lines()
        .iter()
        .filter(|l| l.contains("config error"))
        .cloned()
        .collect();
    assert_eq!(
        errors,
        [
            format!(
                "[logalarm] config error: {}:3: case[1]: case \"typo\" expects alarm \"consol\", which the config does not define (defined: console, oncall)",
                cases.display()
            ),
            "[logalarm] config error:      3 | [[case]]".to_owned(),
        ]
    );

    std::fs::write(
        &cases,
        "[[case]]\nname = \"no input\"\nalarms = {}\nlins = [\"x\"]\n",
    )
    .expect("write cases");
    let out = Logalarm::new()
        .arg("test")
        .arg("--expect")
        .arg(&cases)
        .run(b"");
    assert_eq!(out.status.code(), Some(2));
    let err = out.stderr_text();
    assert!(
        err.contains(&format!(
            "config error: {}:4: unknown field `lins`",
            cases.display()
        )),
        "{err}"
    );
}

#[test]
fn completion_scripts_parse_in_their_shells() {
    for (shell, check) in [("bash", "bash"), ("zsh", "zsh"), ("fish", "fish")] {
        let out = Logalarm::new().args(["completions", shell]).output();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8(out.stdout).expect("utf-8");
        // Fish spells a long option `-l print-all-matched`.
        for word in [
            "print-all-matched",
            "log-alarm",
            "alarm-freq",
            "completions",
        ] {
            assert!(script.contains(word), "{shell} script lacks {word}");
        }
        let dir = common::scratch(&format!("completions_{shell}"));
        let path = dir.join(format!("logalarm.{shell}"));
        std::fs::write(&path, &script).expect("write script");
        // Installed by scripts/test; a shell that is missing fails the test.
        let checked = Command::new(check)
            .arg("-n")
            .arg(&path)
            .output()
            .unwrap_or_else(|e| panic!("{check} -n: {e} (scripts/test installs it)"));
        assert!(
            checked.status.success(),
            "{check} -n rejects the script: {}",
            String::from_utf8_lossy(&checked.stderr)
        );
    }
    let out = Logalarm::new().args(["completions", "tcsh"]).output();
    assert_eq!(out.status.code(), Some(2));
}

/// `man -l` renders the page, formatted as man shows it (no pager, fixed width).
fn render_man(page: &[u8], name: &str) -> String {
    let dir = common::scratch(&format!("man_{name}"));
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page).expect("write page");
    let out = Command::new("man")
        .arg("-l")
        .arg(&path)
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .expect("man -l (scripts/test installs man-db)");
    assert!(
        out.status.success(),
        "man -l: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Bold and underline as overstrikes, when groff writes them: taken out.
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut plain = String::new();
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    plain
}

#[test]
fn man_pages_render() {
    let out = Logalarm::new().arg("man").output();
    assert_eq!(out.status.code(), Some(0));
    let text = render_man(&out.stdout, "logalarm");
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert!(lines[0].starts_with("logalarm(1)"), "{}", lines[0]);
    let at = |heading: &str| {
        lines
            .iter()
            .position(|l| *l == heading)
            .unwrap_or_else(|| panic!("no {heading} in\n{text}"))
    };
    assert_eq!(
        lines[at("NAME") + 1],
        "logalarm - Fire alarms on log lines: uWSGI's alarm subsystem as its own program"
    );
    // The synopsis is justified: its words, one space apart.
    let synopsis = lines[at("SYNOPSIS") + 1]
        .split_whitespace()
        .collect::<Vec<_>>();
    assert_eq!(
        synopsis[..4],
        ["logalarm", "[-c|--config]", "[--alarm]", "[--log-alarm]"]
    );
    let subcommands: Vec<&str> = lines[at("SUBCOMMANDS")..]
        .iter()
        .filter_map(|l| l.strip_prefix("logalarm-"))
        .filter_map(|l| l.split('(').next())
        .collect();
    assert_eq!(
        subcommands,
        ["check", "run", "test", "completions", "man", "help"]
    );

    let out = Logalarm::new().args(["man", "test"]).output();
    assert_eq!(out.status.code(), Some(0));
    let text = render_man(&out.stdout, "logalarm-test");
    assert!(
        text.lines()
            .next()
            .is_some_and(|l| l.starts_with("logalarm-test(1)"))
    );
    for flag in [
        "--print-all-matched",
        "--print-all-missed",
        "--print-all-ignored",
        "--expect",
    ] {
        assert!(text.contains(flag), "logalarm-test(1) lacks {flag}");
    }

    let out = Logalarm::new().args(["man", "nosuch"]).output();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn ad_hoc_bad_regex_is_named_as_written() {
    let out = Logalarm::new().args(["test", "-", "ok", "x("]).run(b"ok\n");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        out.stderr_lines(),
        [
            "[logalarm] config error: command line: test IGNOREREGEX: bad regex:",
            "[logalarm] config error:     regex parse error:",
            "[logalarm] config error:         x(",
            "[logalarm] config error:          ^",
            "[logalarm] config error:     error: unclosed group",
        ]
    );
}
