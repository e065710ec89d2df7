//! logalarm's own log lines through the real binary: each starts with the
//! anti-loop tag and the time (text) or is a JSON object starting with the
//! tag (`--log-format json`, TOML `log_format`, INI `log-format`); fed back
//! into logalarm they fire nothing; successful deliveries are logged only
//! with `-v`.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::{Done, Logalarm, sh_quote, summary};

/// An input and alarms that make every kind of own line: an `ALARM:` line,
/// a command's output (one line with a `\r` inside), a failed delivery (warn)
/// and the summaries (info).
const INPUT: &[u8] = b"ok\nTERRIBLE ALARM one\n";

fn args() -> Vec<&'static str> {
    vec![
        "--no-passthrough",
        "--alarm",
        "l log:P",
        "--alarm",
        r"c cmd:printf 'out\rmore\n'; echo err >&2",
        "--alarm",
        "f cmd:exit 3",
        "--log-alarm",
        "l,c,f ALARM",
    ]
}

/// Runs logalarm with `extra` and [`args`] on [`INPUT`]; stderr as written.
fn run_raw(extra: &[&str]) -> Done {
    let out = Logalarm::new().args(extra).args(args()).run(INPUT);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Asserts that `time` is an RFC 3339 UTC time with milliseconds within a
/// minute of now.
fn assert_recent(time: &str) {
    assert_eq!(time.len(), 24, "{time}");
    assert!(time.ends_with('Z'), "{time}");
    let at = humantime::parse_rfc3339(time).unwrap_or_else(|e| panic!("{time}: {e}"));
    let now = SystemTime::now();
    let off = now.duration_since(at).unwrap_or_else(|e| e.duration());
    assert!(off < Duration::from_secs(60), "{time} is {off:?} from now");
}

/// `text` with the 16 hex digits of a notification id's run (`id=RUN-…` in
/// text, `"id":"RUN-…"` in JSON) written as `RUN`: random per run.
fn mask_run(text: &str) -> String {
    let mut out = text.to_owned();
    for key in ["id=", "\"id\":\""] {
        if let Some(at) = out.find(key) {
            let start = at + key.len();
            let run = out.get(start..start + 16).unwrap_or_default();
            if run.len() == 16 && run.bytes().all(|b| b.is_ascii_hexdigit()) {
                out.replace_range(start..start + 16, "RUN");
            }
        }
    }
    out
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

#[test]
fn text_lines_start_with_the_tag_and_the_time() {
    let out = run_raw(&[]);
    let text = String::from_utf8(out.stderr).expect("UTF-8");
    let mut rest = Vec::new();
    for line in text.lines() {
        let time = common::line_time(line.as_bytes())
            .unwrap_or_else(|| panic!("no `[logalarm] TIME ` at the start of {line:?}"));
        assert_recent(time);
        // `[logalarm] ` + the time + one space.
        rest.push(mask_run(&line[common::TAG.len() + time.len() + 1..]));
    }
    assert_eq!(
        sorted(rest),
        sorted(vec![
            "ALARM: P TERRIBLE ALARM one".to_owned(),
            r"cmd c: out\rmore".to_owned(),
            "cmd c: err".to_owned(),
            "warn: alarm=f: id=RUN-2-1: delivery failed: cmd: exit status: 3".to_owned(),
            "info: alarm=l: 1 delivered, 0 failed, 0 suppressed by alarm-freq, 0 dropped on a full queue".to_owned(),
            "info: alarm=c: 1 delivered, 0 failed, 0 suppressed by alarm-freq, 0 dropped on a full queue".to_owned(),
            "info: alarm=f: 0 delivered, 1 failed, 0 suppressed by alarm-freq, 0 dropped on a full queue".to_owned(),
        ]),
        "{text}"
    );
}

/// Each line of JSON `stderr`, checked to be one object starting with the
/// tag and a recent time, with the time written as `TIME` and the run of an
/// id as `RUN`.
fn json_lines(stderr: &[u8]) -> Vec<String> {
    let text = String::from_utf8(stderr.to_vec()).expect("UTF-8");
    let mut lines = Vec::new();
    for line in text.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert_eq!(value["tag"], "[logalarm]", "{line}");
        let prefix = r#"{"tag":"[logalarm]","time":""#;
        assert!(line.starts_with(prefix), "{line}");
        let time = value["time"].as_str().expect("a time string");
        assert_recent(time);
        lines.push(mask_run(&line.replacen(time, "TIME", 1)));
    }
    lines
}

#[test]
fn json_lines_are_objects_starting_with_the_tag() {
    let out = run_raw(&["--log-format", "json"]);
    let lines = json_lines(&out.stderr);
    let summary = |alarm: &str, delivered: u32, failed: u32| {
        format!(
            r#"{{"tag":"[logalarm]","time":"TIME","level":"info","alarm":"{alarm}","message":"{delivered} delivered, {failed} failed, 0 suppressed by alarm-freq, 0 dropped on a full queue"}}"#
        )
    };
    assert_eq!(
        sorted(lines),
        sorted(vec![
            r#"{"tag":"[logalarm]","time":"TIME","level":"warn","what":"ALARM","message":"P TERRIBLE ALARM one"}"#.to_owned(),
            r#"{"tag":"[logalarm]","time":"TIME","level":"info","what":"cmd c","message":"out\rmore"}"#.to_owned(),
            r#"{"tag":"[logalarm]","time":"TIME","level":"info","what":"cmd c","message":"err"}"#.to_owned(),
            r#"{"tag":"[logalarm]","time":"TIME","level":"warn","alarm":"f","id":"RUN-2-1","message":"delivery failed: cmd: exit status: 3"}"#.to_owned(),
            summary("l", 1, 0),
            summary("c", 1, 0),
            summary("f", 0, 1),
        ]),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The config error of an unknown alarm on the command line, as a JSON line
/// with the time written as `TIME`.
const UNKNOWN_ALARM_JSON: &str = r#"{"tag":"[logalarm]","time":"TIME","level":"error","what":"config error","message":"command line: --log-alarm (occurrence 1): unknown alarm \"nope\"; define it (`alarm = nope PLUGIN:ARGS` in INI, [alarm.nope] in TOML) or fix the name (defined: l)"}"#;

/// Runs logalarm with `args` (a config with an error), expecting exit 2.
fn config_error(args: &[&str]) -> Done {
    let mut all = args.to_vec();
    all.extend(["--alarm", "l log:P", "--log-alarm", "nope ALARM"]);
    let out = Logalarm::new().args(&all).run(b"");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn log_format_from_the_command_line_toml_and_ini() {
    let dir = common::scratch("own_log_format_config");
    let toml = dir.join("json.toml");
    std::fs::write(&toml, "log_format = \"json\"\n").expect("write toml");
    let ini = dir.join("json.ini");
    std::fs::write(&ini, "[logalarm]\nlog-format = json\n").expect("write ini");
    let path = |p: &Path| p.to_str().expect("UTF-8 path").to_owned();
    let (toml, ini) = (path(&toml), path(&ini));
    for args in [
        vec!["--log-format", "json"],
        vec!["-c", &toml],
        vec!["-c", &ini],
        vec!["--log-format", "json", "check"],
        vec!["check", "-c", &toml],
    ] {
        let out = config_error(&args);
        assert_eq!(json_lines(&out.stderr), [UNKNOWN_ALARM_JSON], "{args:?}");
    }
    // The command line wins over the file.
    let out = config_error(&["-c", &toml, "--log-format", "text"]);
    assert_eq!(
        out.stderr_text(),
        "[logalarm] config error: command line: --log-alarm (occurrence 1): unknown alarm \"nope\"; \
         define it (`alarm = nope PLUGIN:ARGS` in INI, [alarm.nope] in TOML) or fix the name (defined: l)\n"
    );
    // A bad value is a config error where it is written.
    std::fs::write(dir.join("bad.toml"), "log_format = \"xml\"\n").expect("write toml");
    let bad = path(&dir.join("bad.toml"));
    let out = Logalarm::new().args(["-c", &bad]).run(b"");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        out.stderr_text(),
        format!(
            "[logalarm] config error: {bad}:1: log_format: \"xml\" is not a log format; write text or json\n\
             [logalarm] config error:      1 | log_format = \"xml\"\n"
        )
    );
    let out = Logalarm::new().args(["--log-format", "xml"]).run(b"");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        out.stderr_text().lines().next(),
        Some(
            "error: invalid value 'xml' for '--log-format <text|json>': \"xml\" is not a log format; write text or json"
        )
    );
}

/// logalarm's own stderr, text and JSON, fed into a second logalarm whose
/// rule matches every one of those lines: nothing fires, every line is
/// skipped for its tag; an untagged control line after them still fires.
#[test]
fn own_lines_fed_back_fire_nothing() {
    let mut fed = run_raw(&[]).stderr;
    fed.extend(run_raw(&["--log-format", "json"]).stderr);
    fed.extend(config_error(&[]).stderr);
    fed.extend(config_error(&["--log-format", "json"]).stderr);
    let rule = "ALARM|warn|info|cmd|error";
    let fed_lines = String::from_utf8(fed.clone()).expect("UTF-8");
    let n = fed_lines.lines().count();
    assert_eq!(n, 2 * 7 + 2, "{fed_lines}");
    let matches = regex_like(rule);
    assert!(fed_lines.lines().all(matches), "{fed_lines}");

    let dir = common::scratch("own_log_fed_back");
    let out = dir.join("out");
    let mut input = fed.clone();
    input.extend_from_slice(b"TERRIBLE ALARM control\n");
    let action = format!("c cmd:cat >> {}", sh_quote(&out));
    let log_rule = format!("l,c {rule}");
    let done = Logalarm::new()
        .args([
            "--no-passthrough",
            "--alarm-freq",
            "0",
            "--alarm",
            "l log:B",
            "--alarm",
            &action,
            "--log-alarm",
            &log_rule,
        ])
        .run(&input);
    let stderr = done.stderr_text();
    assert_eq!(done.status.code(), Some(0), "{stderr}");
    assert_eq!(
        common::alarm_lines(stderr.lines()),
        ["[logalarm] ALARM: B TERRIBLE ALARM control"],
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&out).unwrap_or_default(),
        b"TERRIBLE ALARM control\n"
    );
    assert_eq!(summary(stderr.lines(), "l"), (1, 0, 0, 0));
    assert_eq!(summary(stderr.lines(), "c"), (1, 0, 0, 0));

    // The dry run counts them: every one matched the rule and was skipped.
    let test = Logalarm::new()
        .args([
            "test",
            "--alarm",
            "l log:B",
            "--log-alarm",
            &format!("l {rule}"),
        ])
        .run(&fed);
    assert_eq!(test.status.code(), Some(0), "{}", test.stderr_text());
    let report = String::from_utf8(test.stdout).expect("UTF-8");
    let counts: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("Lines: "))
        .collect();
    assert_eq!(
        counts,
        [format!(
            "Lines: {n} read, 0 matched, {n} ignored ({n} anti-loop tag, 0 not-log-alarm), 0 missed"
        )],
        "{report}"
    );
}

/// A stand-in for the rule `A|B|…` (plain words): whether a line contains one.
fn regex_like(rule: &'static str) -> impl Fn(&str) -> bool {
    move |line| rule.split('|').any(|word| line.contains(word))
}

/// A successful `cmd` delivery is a debug line: not written by default,
/// written with `-v`; `-q` keeps only warnings, errors and the alarms' own
/// lines.
#[test]
fn successful_deliveries_are_logged_only_with_v() {
    let args = [
        "--no-passthrough",
        "--alarm",
        "c cmd:true",
        "--alarm",
        "l log:P",
        "--log-alarm",
        "c,l ALARM",
    ];
    let run = |extra: &[&str]| {
        let out = Logalarm::new().args(extra).args(args).run(INPUT);
        assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
        out.stderr_text()
    };
    let exited = |stderr: &str| -> Vec<String> {
        stderr
            .lines()
            .filter(|l| l.contains("cmd exited with status 0"))
            .map(str::to_owned)
            .collect()
    };
    let default = run(&[]);
    assert_eq!(exited(&default), Vec::<String>::new(), "{default}");
    assert_eq!(
        default.lines().collect::<Vec<_>>(),
        [
            "[logalarm] ALARM: P TERRIBLE ALARM one",
            "[logalarm] info: alarm=c: 1 delivered, 0 failed, 0 suppressed by alarm-freq, 0 dropped on a full queue",
            "[logalarm] info: alarm=l: 1 delivered, 0 failed, 0 suppressed by alarm-freq, 0 dropped on a full queue",
        ],
        "{default}"
    );
    let verbose = run(&["-v"]);
    assert_eq!(
        exited(&verbose),
        ["[logalarm] debug: alarm=c: cmd exited with status 0"],
        "{verbose}"
    );
    let quiet = run(&["-q"]);
    assert_eq!(quiet, "[logalarm] ALARM: P TERRIBLE ALARM one\n");
}
