//! Templates through the real binary: an alarm's `message` (for every plugin),
//! `cmd`'s `env` table and its LOGALARM_KIND/COUNT/CAP_* variables, over the
//! real OpenSSH log of the Loghub corpus; template errors at load time.

mod common;

use std::path::Path;

use common::{Done, Logalarm, sh_quote, summary};

/// The OpenSSH log of the corpus.
fn openssh() -> Vec<u8> {
    let path = common::corpus().join("OpenSSH/OpenSSH_2k.log");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What `Invalid user (?P<user>\S+) from (?P<ip>\S+)` captures on each line
/// of `log` it matches: the line, the user, the address.
fn invalid_users(log: &str) -> Vec<(&str, &str, &str)> {
    log.lines()
        .filter_map(|line| {
            let (_, rest) = line.split_once("Invalid user ")?;
            let (user, tail) = rest.split_once(' ')?;
            let ip = tail.strip_prefix("from ")?.split_whitespace().next()?;
            let ip_first = tail
                .as_bytes()
                .get(5)
                .is_some_and(|b| !b.is_ascii_whitespace());
            (!user.is_empty() && ip_first).then_some((line, user, ip))
        })
        .collect()
}

/// Writes `config` as `NAME.toml` in `dir` and runs `logalarm -c` on `input`.
fn run(dir: &Path, name: &str, config: &str, args: &[&str], input: &[u8]) -> Done {
    Logalarm::new()
        .args(args)
        .config(dir.join(format!("{name}.toml")), config)
        .run(input)
}

const SSH_RULE: &str = r#"
[[rule]]
regex = 'Invalid user (?P<user>\S+) from (?P<ip>\S+)'
alarm = "ssh"
"#;

#[test]
fn message_template_words_every_cmd_notification() {
    let dir = common::scratch("templates_message");
    let out = dir.join("out");
    let config = format!(
        "alarm_freq = 0\n[alarm.ssh]\naction = \"cmd:cat >> {}\"\n\
         message = \"{{{{ alarm }}}}/{{{{ kind }}}} x{{{{ count }}}} {{{{ source }}}}: {{{{ line }}}}\"\n{SSH_RULE}",
        sh_quote(&out)
    );
    let log = openssh();
    let done = run(&dir, "message", &config, &[], &log);
    let stderr = done.stderr_text();
    assert_eq!(done.status.code(), Some(0), "{stderr}");
    let text = String::from_utf8(log.clone()).unwrap();
    let expected: String = invalid_users(&text)
        .iter()
        .map(|(line, _, _)| format!("ssh/alarm x1 stdin: {line}\n"))
        .collect();
    // 112 lines: the corpus's one `Invalid user  0101` (two spaces) has no user.
    assert_eq!(invalid_users(&text).len(), 112);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), expected);
    assert_eq!(summary(done.stderr_lines(), "ssh"), (112, 0, 0, 0));
    // Pass-through is the input, untouched.
    assert_eq!(done.stdout, log);
}

#[test]
fn env_templates_and_kind_and_count_reach_the_command() {
    let dir = common::scratch("templates_env");
    let out = dir.join("out");
    // Two identical lines within alarm_freq: the second is dropped and counted
    // in the count of that message's next notification (not in `b`'s).
    let config = format!(
        "alarm_freq = 60\n[alarm.ssh]\n\
         action = \"cmd:printf '%s|%s|%s|%s\\\\n' \\\"$WHO\\\" \\\"$LOGALARM_KIND\\\" \\\"$LOGALARM_COUNT\\\" \\\"${{LOGALARM_KEY-unset}}\\\" >> {}\"\n\
         env = {{ WHO = \"{{{{ alarm | upper }}}} saw {{{{ line | length }}}} bytes\" }}\n{SSH_RULE}",
        sh_quote(&out)
    );
    let a = "Invalid user a from 10.0.0.1\n";
    let b = "Invalid user bob from 10.0.0.2\n";
    let input = format!("{a}{a}{b}{a}");
    let done = run(&dir, "env", &config, &[], input.as_bytes());
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr_text());
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "SSH saw 28 bytes|alarm|1|unset\nSSH saw 30 bytes|alarm|1|unset\nSSH saw 28 bytes|alarm|2|unset\n"
    );
}

/// Needs the router to fill `caps` (capture extraction, in the policy stage's
/// wiring): until then every `caps.…` renders empty.
#[test]
fn caps_in_message_and_env_over_openssh() {
    let dir = common::scratch("templates_caps");
    let out = dir.join("out");
    let config = format!(
        "alarm_freq = 0\n[alarm.ssh]\n\
         action = \"cmd:cat >> {0}; printf '%s %s %s\\\\n' \\\"$IP\\\" \\\"$LOGALARM_CAP_USER\\\" \\\"$LOGALARM_CAP_2\\\" >> {0}\"\n\
         message = \"{{{{ caps.user }}}} failed from {{{{ caps.ip }}}} ({{{{ caps[1] }}}})\"\n\
         env = {{ IP = \"{{{{ caps.ip }}}}\" }}\n{SSH_RULE}",
        sh_quote(&out)
    );
    let log = openssh();
    let done = run(&dir, "caps", &config, &[], &log);
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr_text());
    let text = String::from_utf8(log).unwrap();
    let expected: String = invalid_users(&text)
        .iter()
        .map(|(_, user, ip)| format!("{user} failed from {ip} ({user})\n{ip} {user} {ip}\n"))
        .collect();
    let got = std::fs::read_to_string(&out).unwrap();
    // The first ones by name, so that a failure shows a readable difference.
    let first: Vec<&str> = got.lines().take(6).collect();
    assert_eq!(
        first,
        [
            "webmaster failed from 173.234.31.186 (webmaster)",
            "173.234.31.186 webmaster 173.234.31.186",
            "test9 failed from 52.80.34.196 (test9)",
            "52.80.34.196 test9 52.80.34.196",
            "webmaster failed from 173.234.31.186 (webmaster)",
            "173.234.31.186 webmaster 173.234.31.186",
        ]
    );
    assert_eq!(got, expected);
}

#[test]
fn template_errors_are_config_errors_with_file_and_line() {
    let dir = common::scratch("templates_errors");
    let config = "[alarm.ssh]\naction = \"log:\"\nmessage = \"ok\\n{{ caps.ip \"\n\
                  [alarm.cmd]\naction = \"cmd:true\"\nenv = { IP = \"{{ ip }}\" }\n\
                  [alarm.hook]\naction = \"log:\"\nenv = { A = \"x\" }\n\
                  [[rule]]\nregex = \"x\"\nalarms = [\"ssh\", \"cmd\", \"hook\"]\n";
    let done = run(&dir, "bad", config, &["check"], b"");
    assert_eq!(done.status.code(), Some(2));
    let file = dir.join("bad.toml");
    let errors = done.stderr_lines();
    let at = |line: u32, key: &str| format!("{}:{line}: {key}: ", file.display());
    let find = |prefix: &str| {
        errors
            .iter()
            .find(|l| l.contains(prefix))
            .unwrap_or_else(|| panic!("no error at {prefix:?}: {errors:#?}"))
            .clone()
    };
    let message = find(&at(3, "alarm.ssh.message"));
    assert!(
        message.contains("`message` template: syntax error")
            && message.contains("(line 2 of the template)"),
        "{message}"
    );
    let env = find(&at(5, "alarm.cmd.action"));
    assert!(
        env.contains("`alarm.cmd.env.IP` template: undefined value"),
        "{env}"
    );
    let not_for_log = find(&at(8, "alarm.hook.action"));
    assert!(
        not_for_log.contains("`env` is not for this alarm: the log plugin takes no other key"),
        "{not_for_log}"
    );
}

#[test]
fn check_shows_the_message_template() {
    let dir = common::scratch("templates_check");
    let config = "[alarm.ssh]\naction = \"log:\"\nmessage = \"\"\"{{ caps.user }}\n{{ count }}\"\"\"\n\
                  [[rule]]\nregex = \"(?P<user>x)\"\nalarm = \"ssh\"\n";
    let done = run(&dir, "check", config, &["check"], b"");
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr_text());
    let stdout = done.stdout_lines();
    assert!(
        stdout
            .iter()
            .any(|l| l == r"         message: {{ caps.user }}\n{{ count }}"),
        "{stdout:#?}"
    );
}
