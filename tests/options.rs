//! One option table: every uWSGI-style option is an INI key and the same
//! command-line flag, parsed by the same code into the same config, which
//! TOML also fills. Shown through `logalarm check`, whose report is the same
//! whichever way the config was written (only the origins differ).

mod common;

use common::Logalarm;

/// The options, as (name, value), in the order written.
const OPTIONS: [(&str, &str); 12] = [
    ("alarm", "mail log:"),
    ("alarm", "pager log:"),
    ("alarm-key", "mail {{ caps.ip }}"),
    ("alarm-threshold", "mail 5 60s"),
    ("alarm-cooldown", "mail 1 10m"),
    ("alarm-escalate", "mail 100 5m pager"),
    ("log-alarm", "mail (?P<ip>\\d+\\.\\d+\\.\\d+\\.\\d+) failed"),
    ("not-log-alarm", "mail DEBUG"),
    ("follow", "/var/log/app/*.log"),
    ("follow-from", "beginning"),
    ("socket-stream", "/run/la-options.sock"),
    ("socket-mode", "0600"),
];

/// The same settings, as (INI option / flag, value).
const SETTINGS: [(&str, &str); 4] = [
    ("alarm-freq", "500ms"),
    ("queue-size", "64"),
    ("poll-interval", "2s"),
    ("flush-timeout", "250ms"),
];

/// `check`'s report without the origins (`(file:line: key)`, `(command
/// line: --flag (occurrence n))`), which differ by how it was written.
fn without_origins(report: &str) -> Vec<String> {
    report
        .lines()
        .map(|l| match l.rfind("    (") {
            Some(i) if l.ends_with(')') => l[..i].to_owned(),
            _ => l.to_owned(),
        })
        .collect()
}

fn check(la: Logalarm) -> Vec<String> {
    let out = la.arg("check").run(b"");
    assert_eq!(out.code(), Some(0), "{}", out.stderr_text());
    without_origins(&out.stdout_text())
}

#[test]
fn ini_keys_command_line_flags_and_toml_give_one_config() {
    let ini: String = OPTIONS
        .iter()
        .chain(&SETTINGS)
        .map(|(k, v)| format!("{k} = {v}\n"))
        .collect();
    let dir = common::scratch("options_one_table");
    let ini_path = dir.join("a.ini");
    std::fs::write(&ini_path, format!("[logalarm]\n{ini}")).expect("write ini");
    let from_ini = check(Logalarm::new().arg("-c").arg(&ini_path));

    let mut cli = Logalarm::new();
    for (k, v) in OPTIONS.iter().chain(&SETTINGS) {
        cli = cli.arg(format!("--{k}")).arg(v);
    }
    let from_cli = check(cli);
    assert_eq!(from_ini, from_cli);

    let toml = r#"
alarm_freq = "500ms"
queue_size = 64
poll_interval = "2s"
flush_timeout = 0.25

[alarm.mail]
action = "log:"
key = "{{ caps.ip }}"
threshold = { count = 5, window = "60s" }
cooldown = { period = "10m" }
escalate = { limit = 100, window = "5m", alarm = "pager" }

[alarm.pager]
action = "log:"

[[rule]]
regex = '(?P<ip>\d+\.\d+\.\d+\.\d+) failed'
alarm = "mail"

[[rule]]
regex = "DEBUG"
alarm = "mail"
negate = true

[[input]]
file = "/var/log/app/*.log"
from = "beginning"

[[input]]
socket = "/run/la-options.sock"
type = "stream"
mode = "0600"
"#;
    let toml_path = dir.join("a.toml");
    std::fs::write(&toml_path, toml).expect("write toml");
    let from_toml = check(Logalarm::new().arg("-c").arg(&toml_path));
    assert_eq!(from_ini, from_toml);

    // What they all say, so that a test that compares three empty reports
    // cannot pass.
    assert_eq!(
        from_ini,
        [
            "Alarms:",
            "  mail   log:",
            "           policies: escalate to pager above 100 events within 5m; threshold 5 within 1m per key {{ caps.ip }}; cooldown 1 per 10m per key {{ caps.ip }}",
            "  pager  log:",
            "Rules, in order (a matching not-log-alarm skips the rules after it):",
            "    1  log-alarm      (?P<ip>\\d+\\.\\d+\\.\\d+\\.\\d+) failed  -> mail",
            "    2  not-log-alarm  DEBUG                              -> mail",
            "Inputs:",
            "  file      /var/log/app/*.log (from beginning)",
            "  socket    /run/la-options.sock (stream, mode 0600)",
            "Settings: alarm-freq 500ms, alarm-msg-size 8192 bytes, pass-through on, queue-size 64, drain-timeout 10s",
            "OK: 2 alarms, 2 rules",
        ]
    );
}

#[test]
fn a_bad_flag_value_is_refused_as_the_ini_key_is() {
    let out = Logalarm::new()
        .args(["check", "--alarm", "a log:", "--log-alarm", "a x"])
        .args(["--poll-interval", "soon"])
        .run(b"");
    assert_eq!(out.code(), Some(2));
    let err = out.stderr_text();
    assert!(
        err.contains("invalid value 'soon' for '--poll-interval <DURATION>'"),
        "{err}"
    );

    let dir = common::scratch("options_bad_value");
    let ini = dir.join("b.ini");
    std::fs::write(
        &ini,
        "[logalarm]\nalarm = a log:\nlog-alarm = a x\npoll-interval = soon\nalarm-threshold = a 0 60s\n",
    )
    .expect("write ini");
    let out = Logalarm::new().arg("check").arg("-c").arg(&ini).run(b"");
    assert_eq!(out.code(), Some(2));
    let path = ini.display();
    assert_eq!(
        out.stderr_lines(),
        [
            format!(
                "[logalarm] config error: {path}:4: poll-interval: \"soon\" is not a period (expected number at 0); write seconds (`3`, `0.5`) or a duration (`500ms`, `2m`)"
            ),
            "[logalarm] config error:      4 | poll-interval = soon".to_owned(),
            format!(
                "[logalarm] config error: {path}:5: alarm-threshold: COUNT must be at least 1 and WINDOW above zero"
            ),
            "[logalarm] config error:      5 | alarm-threshold = a 0 60s".to_owned(),
        ]
    );
}

#[test]
fn a_policy_key_typo_in_toml_is_named_in_its_own_table() {
    let dir = common::scratch("options_policy_typo");
    let path = dir.join("p.toml");
    std::fs::write(
        &path,
        "[alarm.a]\naction = \"log:\"\nthreshold = { cont = 5, window = \"1m\" }\n\
         [alarm.b]\naction = \"log:\"\nescalate = { limit = 1, window = \"1m\", alarm = \"b\" }\n\
         [[rule]]\nregex = \"x\"\nalarms = [\"a\", \"b\"]\n",
    )
    .expect("write toml");
    let out = Logalarm::new().arg("check").arg("-c").arg(&path).run(b"");
    assert_eq!(out.code(), Some(2));
    let path = path.display();
    assert_eq!(
        out.stderr_lines(),
        [
            format!("[logalarm] config error: {path}:3: alarm.a.threshold.cont: unknown key `cont`; did you mean `count`?"),
            "[logalarm] config error:      3 | threshold = { cont = 5, window = \"1m\" }".to_owned(),
            format!("[logalarm] config error: {path}:6: alarm.b.escalate: alarm \"b\" cannot escalate to itself; name a pager alarm"),
            "[logalarm] config error:      6 | escalate = { limit = 1, window = \"1m\", alarm = \"b\" }".to_owned(),
        ]
    );
}

#[test]
fn an_input_key_of_another_kind_says_whose_it_is() {
    let dir = common::scratch("options_input_kind");
    let path = dir.join("i.toml");
    std::fs::write(
        &path,
        "[alarm.a]\naction = \"log:\"\n[[rule]]\nregex = \"x\"\nalarm = \"a\"\n\
         [[input]]\nfile = \"/var/log/x.log\"\nmode = \"0600\"\ntype = \"stream\"\n\
         [[input]]\nfrom = \"end\"\n",
    )
    .expect("write toml");
    let out = Logalarm::new().arg("check").arg("-c").arg(&path).run(b"");
    assert_eq!(out.code(), Some(2));
    let path = path.display();
    let lines = out.stderr_lines();
    assert_eq!(
        lines[0],
        format!(
            "[logalarm] config error: {path}:6: input[1]: `mode` and `type` belong to socket inputs, not to `file`"
        )
    );
    assert_eq!(
        lines[2],
        format!(
            "[logalarm] config error: {path}:10: input[2]: names no input; write file = \"PATH\" or socket = \"PATH\""
        )
    );
}
