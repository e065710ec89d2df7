//! uWSGI compatibility, through the real binary: the uWSGI documentation's alarm
//! examples loaded as they are, a real program piping its output through
//! logalarm, a full uwsgi.ini, the three config syntaxes agreeing, config
//! errors naming where they are, the `check` report, and rule order on the
//! command line.

mod common;

use std::path::Path;
use std::time::Duration;

use common::Logalarm;

const TIMEOUT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------
// Helpers.

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8 output")
}

/// Input that must never reach stdout when the config is rejected.
const PROBE: &[u8] =
    b"HARAKIRI ON WORKER 1 (pid: 42, try: 1)\nTERRIBLE ALARM the world exploded !!!\nX Y\n";

/// Runs `logalarm ARGS` on [`PROBE`]; asserts exit code 2 and an empty stdout (no
/// input was passed through); returns the stderr lines.
fn config_error(args: &[&str]) -> Vec<String> {
    let out = Logalarm::new().args(args).run(PROBE);
    let err = out.stderr_text();
    assert_eq!(
        out.status.code(),
        Some(2),
        "exit code for a config error; stderr:\n{err}"
    );
    assert!(
        out.stdout.is_empty(),
        "input was passed through despite the config error: {:?}",
        text(&out.stdout)
    );
    err.lines().map(str::to_owned).collect()
}

/// Writes `content` to `file` in a fresh scratch dir `test`, runs
/// `logalarm -c FILE` through [`config_error`], and returns the file's path (as
/// the errors name it) and the stderr lines.
///
/// Each error naming a line of the file is followed by that line as written,
/// secrets redacted (`config error:      3 | alarm = …`): checked here, and
/// left out of what is returned.
fn config_file_error(test: &str, file: &str, content: &str) -> (String, Vec<String>) {
    let dir = common::scratch(test);
    let path = common::write_file(&dir, file, content);
    let path = common::path_str(&path).to_owned();
    let lines = config_error(&["-c", &path]);
    let source: Vec<&str> = content.split('\n').collect();
    let mut errors = Vec::new();
    let mut lines = lines.into_iter().peekable();
    while let Some(line) = lines.next() {
        let number = line
            .strip_prefix(&format!("[logalarm] config error: {path}:"))
            .and_then(|rest| rest.split(':').next())
            .and_then(|n| n.parse::<usize>().ok());
        if let Some(n) = number {
            // A multi-line message's continuation lines come first.
            let mut more = Vec::new();
            while lines.peek().is_some_and(|l| {
                l.starts_with("[logalarm] config error:     ") && !l.contains(" | ")
            }) {
                more.extend(lines.next());
            }
            // As written, an alarm's arguments redacted as `check` shows them
            // (an unknown plugin's: `nope:…`, since they may hold a password).
            let shown = logalarm::report::redact::source_line(source[n - 1]);
            let snippet = format!("[logalarm] config error: {n:>6} | {shown}");
            assert_eq!(
                lines.next().as_deref(),
                Some(snippet.as_str()),
                "after {line}"
            );
            errors.push(line);
            errors.extend(more);
        } else {
            errors.push(line);
        }
    }
    (path, errors)
}

// ---------------------------------------------------------------------------
// (a) The uWSGI documentation's examples, as they are.

const DOCS_MAILME_CACHEFULL: &str = "[uwsgi]\n\
alarm = mailme cmd:mail -s 'uWSGI alarm' -a 'From: foobar@example.com' admin@example.com\n\
alarm = cachefull signal:17\n\
log-alarm = cachefull,mailme uWSGI listen queue of socket\n\
log-alarm = mailme HARAKIRI ON WORKER\n";

#[test]
fn docs_example_signal_without_target_is_rejected_with_the_fix() {
    let (ini, lines) =
        config_file_error("compat_docs_signal17", "uwsgi.ini", DOCS_MAILME_CACHEFULL);
    assert_eq!(
        lines,
        [format!(
            "[logalarm] config error: {ini}:3: alarm: signal:17 has no target; write signal:17@PID or \
             signal:17@pidfile:/path/to/app.pid, or wrap the process with `logalarm run -- CMD` to signal it \
             (uWSGI's signal:N raises a uWSGI signal, which has no meaning outside uWSGI)"
        )]
    );
    // `check` rejects it the same way.
    let out = Logalarm::new().args(["check", "-c", &ini]).run(b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let stderr = out.stderr_text();
    let without_source: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("[logalarm] config error:      3 | "))
        .collect();
    assert_eq!(without_source, lines);
}

#[test]
fn docs_example_with_a_pidfile_target_passes_check() {
    let dir = common::scratch("compat_docs_pidfile_check");
    let pidfile = dir.join("app.pid");
    let config = DOCS_MAILME_CACHEFULL.replace(
        "signal:17",
        &format!("signal:17@pidfile:{}", pidfile.display()),
    );
    let ini = common::write_file(&dir, "uwsgi.ini", &config);
    let ini = common::path_str(&ini);
    let out = Logalarm::new().args(["check", "-c", ini]).run(b"");
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
    let action = format!("signal:17@pidfile:{}", pidfile.display());
    let want = format!(
        "Alarms:\n\
        \x20 mailme     cmd:mail -s 'uWSGI alarm' -a 'From: foobar@example.com' admin@example.com    ({ini}:2: alarm)\n\
        \x20 cachefull  {action}    ({ini}:3: alarm)\n\
        Rules, in order (a matching not-log-alarm skips the rules after it):\n\
        \x20   1  log-alarm      uWSGI listen queue of socket  -> cachefull,mailme    ({ini}:4: log-alarm)\n\
        \x20   2  log-alarm      HARAKIRI ON WORKER            -> mailme    ({ini}:5: log-alarm)\n\
        Inputs: stdin (under `logalarm run`: the process's stdout and stderr)\n\
        Settings: alarm-freq 3s, alarm-msg-size 8192 bytes, pass-through on, queue-size 1024, drain-timeout 10s\n\
        OK: 2 alarms, 2 rules\n"
    );
    assert_eq!(text(&out.stdout), want);
    assert_eq!(
        out.stderr_text(),
        "",
        "a valid config logs nothing on check"
    );
}

/// The same example run for real: `signal:17` reaches a real process through its
/// pidfile (a Python program waiting for it), and `mailme` (its `mail` swapped for
/// `cat`, so no mail leaves) gets both kinds of line.
#[test]
fn docs_example_signals_a_real_process_and_runs_the_command() {
    let dir = common::scratch("compat_docs_signal_run");
    let pidfile = dir.join("app.pid");
    let mail = dir.join("mail.txt");
    let script = common::write_file(
        &dir,
        "target.py",
        "import os, signal, sys, time\n\
         def got(sig, frame):\n\
         \x20   print('got signal %d' % sig, flush=True)\n\
         \x20   sys.exit(0)\n\
         signal.signal(17, got)\n\
         tmp = sys.argv[1] + '.tmp'\n\
         with open(tmp, 'w') as f:\n\
         \x20   f.write('%d\\n' % os.getpid())\n\
         os.rename(tmp, sys.argv[1])\n\
         deadline = time.time() + 60\n\
         while time.time() < deadline:\n\
         \x20   signal.pause()\n\
         print('no signal', flush=True)\n\
         sys.exit(1)\n",
    );
    let target = Logalarm::program("python3")
        .arg(&script)
        .arg(&pidfile)
        .start();
    let pid = common::wait_for_file(&pidfile, TIMEOUT, |b| !b.is_empty());
    let pid = text(&pid);
    assert_eq!(pid.trim(), target.pid().to_string());

    let config = DOCS_MAILME_CACHEFULL
        .replace(
            "signal:17",
            &format!("signal:17@pidfile:{}", pidfile.display()),
        )
        .replace(
            "cmd:mail -s 'uWSGI alarm' -a 'From: foobar@example.com' admin@example.com",
            &format!("cmd:cat >> {}", common::sh_quote(&mail)),
        );
    let ini = common::write_file(&dir, "uwsgi.ini", &config);
    let input = "*** Starting uWSGI 2.0.21 (64bit) on [Tue Jan  2 10:00:00 2024] ***\n\
                 *** uWSGI listen queue of socket \"127.0.0.1:3031\" (fd: 3) full !!! (101/100) ***\n\
                 [pid: 4242|app: 0|req: 1/1] 127.0.0.1 () {32 vars} [GET /] => generated 12 bytes in 3 msecs\n\
                 *** HARAKIRI ON WORKER 1 (pid: 4242, try: 1) ***\n";
    let out = Logalarm::new().arg("-c").arg(&ini).run(input.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
    assert_eq!(text(&out.stdout), input);
    assert_eq!(
        std::fs::read_to_string(&mail).expect("mailme ran"),
        "*** uWSGI listen queue of socket \"127.0.0.1:3031\" (fd: 3) full !!! (101/100) ***\n\
         *** HARAKIRI ON WORKER 1 (pid: 4242, try: 1) ***\n"
    );
    let target = target.finish();
    assert_eq!(
        text(&target.stdout),
        "got signal 17\n",
        "{}",
        target.stderr_text()
    );
    assert_eq!(target.status.code(), Some(0));
}

/// The docs' jabber example loads as it is; `check` shows it with the
/// password hidden. (Delivery to a real server: tests/xmpp.rs.)
#[test]
fn docs_xmpp_example_loads_and_check_hides_the_password() {
    let dir = common::scratch("compat_docs_xmpp");
    let ini = common::write_file(
        &dir,
        "jabber.ini",
        "[uwsgi]\n\
         alarm = jabber xmpp:foobar@jabber.xxx;mysecretpassword;admin@jabber.xxx,admin2@jabber.xxx\n\
         log-alarm = jabber ^TERRIBLE ALARM\n",
    );
    let ini = common::path_str(&ini);
    let out = Logalarm::new().args(["check", "-c", ini]).run(b"");
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}{}", out.stderr_text());
    assert!(
        report.contains(&format!(
            "  jabber  xmpp:foobar@jabber.xxx;***;admin@jabber.xxx,admin2@jabber.xxx    ({ini}:2: alarm)\n"
        )),
        "{report}"
    );
    assert!(!report.contains("mysecretpassword"), "{report}");
    assert!(!out.stderr_text().contains("mysecretpassword"));
}

/// The docs' simplest example (`mailme`, with `cat` instead of `mail`) at the
/// default alarm-freq: a repeat of the same line right after is dropped, a
/// different line is not.
#[test]
fn docs_mailme_example_runs_with_uwsgi_alarm_freq() {
    let dir = common::scratch("compat_docs_mailme");
    let mail = dir.join("mail.txt");
    let ini = common::write_file(
        &dir,
        "uwsgi.ini",
        &format!(
            "[uwsgi]\nalarm = mailme cmd:cat >> {}\nlog-alarm = mailme HARAKIRI ON WORKER\n",
            common::sh_quote(&mail)
        ),
    );
    let input = "*** HARAKIRI ON WORKER 1 (pid: 4242, try: 1) ***\r\n\
                 worker 1 killed successfully (pid: 4242)\r\n\
                 *** HARAKIRI ON WORKER 1 (pid: 4242, try: 1) ***\r\n\
                 *** HARAKIRI ON WORKER 2 (pid: 4250, try: 1) ***";
    let out = Logalarm::new().arg("-c").arg(&ini).run(input.as_bytes());
    let err = out.stderr_text();
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(text(&out.stdout), input);
    assert_eq!(
        std::fs::read_to_string(&mail).expect("mailme ran"),
        "*** HARAKIRI ON WORKER 1 (pid: 4242, try: 1) ***\n*** HARAKIRI ON WORKER 2 (pid: 4250, try: 1) ***\n"
    );
    assert!(
        err.contains(
            "[logalarm] info: alarm=mailme: 2 delivered, 0 failed, 1 suppressed by alarm-freq, 0 dropped on a full queue\n"
        ),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// (b) A real program piping into logalarm through an OS pipe.

const APP: &str = r#"import sys, time
def emit(s):
    sys.stdout.write(s)
    sys.stdout.flush()
for i in range(1, 29):
    if i % 7 == 0:
        emit("TERRIBLE ALARM the world exploded !!!\n")
    elif i % 9 == 0:
        emit("not a TERRIBLE ALARM at line start (%d)\n" % i)
    else:
        emit("[pid: 4242|app: 0|req: %d/%d] 127.0.0.1 () {32 vars} [GET /] => generated 12 bytes in %d msecs\n" % (i, i, i))
emit("[uwsgi-alarm] TERRIBLE ALARM relayed by another logger\n")
emit("[logalarm] cmd any: TERRIBLE ALARM echoed by an action\n")
emit("TERRIBLE ALA")
time.sleep(0.2)
emit("RM split across two writes\r\n")
emit("TERRIBLE ALARM last line without newline")
"#;

/// What [`APP`] prints.
fn app_output() -> String {
    let mut s = String::new();
    for i in 1..29 {
        if i % 7 == 0 {
            s.push_str("TERRIBLE ALARM the world exploded !!!\n");
        } else if i % 9 == 0 {
            s.push_str(&format!("not a TERRIBLE ALARM at line start ({i})\n"));
        } else {
            s.push_str(&format!(
                "[pid: 4242|app: 0|req: {i}/{i}] 127.0.0.1 () {{32 vars}} [GET /] => generated 12 bytes in {i} msecs\n"
            ));
        }
    }
    s.push_str("[uwsgi-alarm] TERRIBLE ALARM relayed by another logger\n");
    s.push_str("[logalarm] cmd any: TERRIBLE ALARM echoed by an action\n");
    s.push_str("TERRIBLE ALARM split across two writes\r\n");
    s.push_str("TERRIBLE ALARM last line without newline");
    s
}

#[test]
fn python_program_through_a_real_pipe() {
    let dir = common::scratch("compat_python_pipe");
    let script = common::write_file(&dir, "app.py", APP);
    let jabber = dir.join("jabber.txt");
    let any = dir.join("any.txt");
    // The docs' jabber example with a command in place of xmpp; the command also
    // records the environment logalarm gives it. `%%` is how uWSGI's INI writes
    // a `%` (`%s` would be the file's name, a magic variable).
    let ini = common::write_file(
        &dir,
        "app.ini",
        &format!(
            "[uwsgi]\n\
             alarm = jabber cmd:{{ cat; printf '%%s|%%s|%%s\\n' \"$LOGALARM_ALARM\" \"$LOGALARM_SOURCE\" \"$LOGALARM_RULE\"; }} >> {}\n\
             alarm = any cmd:cat >> {}\n\
             alarm-freq = 0\n\
             log-alarm = jabber ^TERRIBLE ALARM\n\
             log-alarm = any TERRIBLE ALARM\n",
            common::sh_quote(&jabber),
            common::sh_quote(&any)
        ),
    );
    let (pipe, app_stdout) = std::io::pipe().expect("pipe");
    let app = Logalarm::program("python3")
        .arg(&script)
        .stdout_to(app_stdout)
        .start();
    // Both outputs are read while the app runs, so neither side can block.
    let logalarm = Logalarm::new().arg("-c").arg(&ini).stdin_from(pipe).start();
    let app = app.finish();
    assert!(
        app.status.success(),
        "python3 app failed: {}",
        app.stderr_text()
    );
    let out = logalarm.finish();
    let err = out.stderr_text();
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(text(&out.stdout), app_output(), "pass-through");

    let env = "jabber|stdin|^TERRIBLE ALARM\n";
    let world = "TERRIBLE ALARM the world exploded !!!\n";
    assert_eq!(
        std::fs::read_to_string(&jabber).expect("jabber ran"),
        format!(
            "{world}{env}{world}{env}{world}{env}{world}{env}\
             TERRIBLE ALARM split across two writes\n{env}\
             TERRIBLE ALARM last line without newline\n{env}"
        )
    );
    // Unanchored: also the line where the marker is not at the start; never the
    // lines with an anti-loop tag.
    assert_eq!(
        std::fs::read_to_string(&any).expect("any ran"),
        format!(
            "{world}not a TERRIBLE ALARM at line start (9)\n{world}not a TERRIBLE ALARM at line start (18)\n\
             {world}not a TERRIBLE ALARM at line start (27)\n{world}\
             TERRIBLE ALARM split across two writes\nTERRIBLE ALARM last line without newline\n"
        )
    );
    for (alarm, n) in [("jabber", 6), ("any", 9)] {
        let line = format!(
            "[logalarm] info: alarm={alarm}: {n} delivered, 0 failed, 0 suppressed by alarm-freq, 0 dropped on a full queue\n"
        );
        assert!(err.contains(&line), "missing {line:?} in:\n{err}");
    }
}

// ---------------------------------------------------------------------------
// (c) A full uwsgi.ini.

#[test]
fn full_uwsgi_ini_loads_with_one_warning_naming_the_ignored_options() {
    let dir = common::scratch("compat_full_ini");
    let out_file = dir.join("alarm.txt");
    let ini = common::write_file(
        &dir,
        "uwsgi.ini",
        &format!(
            "[uwsgi]\n\
             ; a real deployment's file\n\
             socket = 127.0.0.1:3031\n\
             socket = /run/myapp.sock\n\
             master = true\n\
             processes = 4\n\
             threads = 2\n\
             module = myapp.wsgi:application\n\
             chdir = /srv/myapp\n\
             harakiri = 30\n\
             vacuum = true\n\
             die-on-term = true\n\
             logto = /var/log/uwsgi/myapp.log\n\
             # the alarms\n\
             alarm = mailme cmd:cat >> {}\n\
             alarm-freq = 0\n\
             alarm-msg-size = 4096\n\
             log-alarm = mailme HARAKIRI ON WORKER\n\
             not-log-alarm = mailme DEBUG\n\
             alarm_log = mailme uWSGI listen queue of socket\n\
             max-requests = 5000\n\
             \n\
             [production]\n\
             processes = 16\n\
             log-alarm = mailme NOT READ\n",
            common::sh_quote(&out_file)
        ),
    );
    let ini = common::path_str(&ini);
    let warning = format!(
        "[logalarm] warn: {ini}: ignoring options logalarm does not use: socket, master, processes, threads, module, \
         chdir, harakiri, vacuum, die-on-term, logto, max-requests"
    );

    let out = Logalarm::new().args(["check", "-c", ini]).run(b"");
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
    assert_eq!(out.stderr_text(), format!("{warning}\n"));
    let report = text(&out.stdout);
    assert!(report.ends_with("OK: 1 alarms, 3 rules\n"), "{report}");
    assert!(
        report.contains("Settings: alarm-freq 0s, alarm-msg-size 4096 bytes,"),
        "{report}"
    );

    let input = "spawned uWSGI worker 1 (pid: 4242, cores: 2)\n\
                 *** HARAKIRI ON WORKER 1 (pid: 4242, try: 1) ***\n\
                 DEBUG uWSGI listen queue of socket \"127.0.0.1:3031\" full\n\
                 *** uWSGI listen queue of socket \"127.0.0.1:3031\" (fd: 3) full !!! (101/100) ***\n\
                 NOT READ\n";
    let out = Logalarm::new().args(["-c", ini]).run(input.as_bytes());
    let err = out.stderr_text();
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(text(&out.stdout), input);
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("[logalarm] info: "))
        .collect();
    assert_eq!(
        warnings,
        [warning.as_str()],
        "exactly one warning, naming every ignored option once"
    );
    assert_eq!(
        std::fs::read_to_string(&out_file).expect("alarm ran"),
        "*** HARAKIRI ON WORKER 1 (pid: 4242, try: 1) ***\n\
         *** uWSGI listen queue of socket \"127.0.0.1:3031\" (fd: 3) full !!! (101/100) ***\n"
    );
}

// ---------------------------------------------------------------------------
// (d) INI, TOML and the command line agree.

/// OpenSSH rules with both kinds of negative rule (see tests/corpus.rs for the
/// ground truth behind the counts).
const SSH_RULES: [(bool, &str, &str); 5] = [
    (true, "early", "Failed password for invalid user admin from"),
    (false, "early", "Failed password for"),
    (true, "late", r"from 187\.141\.143\.180 port"),
    (
        false,
        "late,early",
        r": Failed password for .* from \d+\.\d+\.\d+\.\d+ port \d+ ssh2$",
    ),
    (
        false,
        "late",
        r"sshd\[\d+\]: Invalid user .*from \d+\.\d+\.\d+\.\d+$",
    ),
];

#[test]
fn ini_toml_and_command_line_give_the_same_test_report() {
    let dir = common::scratch("compat_three_syntaxes");
    let log = common::corpus().join("OpenSSH/OpenSSH_2k.log");

    let mut ini = String::from("[logalarm]\nalarm = early log:early\nalarm = late log:late\n");
    let mut toml = String::from(
        "[alarm.early]\naction = \"log:early\"\n\n[alarm.late]\naction = \"log:late\"\n",
    );
    let mut cli: Vec<String> = vec![
        "test".into(),
        "--print-all-ignored".into(),
        "--alarm".into(),
        "early log:early".into(),
    ];
    cli.extend(["--alarm".into(), "late log:late".into()]);
    for (i, (negate, alarms, regex)) in SSH_RULES.iter().enumerate() {
        // Both spellings of each option, as uWSGI accepts them.
        let key = match (negate, i % 2 == 0) {
            (true, true) => "not-log-alarm",
            (true, false) => "not-alarm-log",
            (false, true) => "log-alarm",
            (false, false) => "alarm-log",
        };
        ini.push_str(&format!("{key} = {alarms} {regex}\n"));
        cli.extend([format!("--{key}"), format!("{alarms} {regex}")]);
        let list: Vec<String> = alarms.split(',').map(|a| format!("\"{a}\"")).collect();
        toml.push_str(&format!(
            "\n[[rule]]\nregex = '{regex}'\nalarms = [{}]\n",
            list.join(", ")
        ));
        if *negate {
            toml.push_str("negate = true\n");
        }
    }
    let ini = common::write_file(&dir, "ssh.ini", &ini);
    let toml = common::write_file(&dir, "ssh.toml", &toml);

    let report = |args: Vec<String>| {
        let out = Logalarm::new().args(args).run(b"");
        assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
        assert_eq!(out.stderr_text(), "", "no warnings expected");
        // Without the last line, `processed N lines in X s`.
        let report = text(&out.stdout);
        let timing = report.trim_end().rfind('\n').expect("lines") + 1;
        assert!(report[timing..].starts_with("processed 2000 lines in "));
        report[..timing].to_owned()
    };
    let log = log.to_str().expect("utf-8 path").to_owned();
    let from_ini = report(vec![
        "test".into(),
        "--print-all-ignored".into(),
        "-c".into(),
        common::path_str(&ini).into(),
        log.clone(),
    ]);
    let from_toml = report(vec![
        "test".into(),
        "--print-all-ignored".into(),
        "-c".into(),
        common::path_str(&toml).into(),
        log.clone(),
    ]);
    cli.push(log);
    let from_cli = report(cli);
    assert_eq!(from_ini, from_toml, "INI and TOML disagree");
    assert_eq!(from_ini, from_cli, "INI and the command line disagree");

    // And the report is the right one (counts from the corpus ground truth).
    let summary = &from_ini[from_ini.find("\nLines: ").expect("summary") + 1..];
    assert_eq!(
        summary,
        format!(
            "Lines: 2000 read, 589 matched, 44 ignored (0 anti-loop tag, 44 not-log-alarm), 1367 missed\n\
             Rules:\n\
             \x20   1  not-log-alarm  {}  -> early: 44 lines\n\
             \x20   2  log-alarm      {}  -> early: 476 lines\n\
             \x20   3  not-log-alarm  {}  -> late: 80 lines\n\
             \x20   4  log-alarm      {}  -> late,early: 394 lines\n\
             \x20   5  log-alarm      {}  -> late: 113 lines\n\
             Alarms (policies on the lines' own clock):\n\
             \x20 early: 476 events -> 476 notifications\n\
             \x20 late: 507 events -> 507 notifications\n",
            SSH_RULES[0].2, SSH_RULES[1].2, SSH_RULES[2].2, SSH_RULES[3].2, SSH_RULES[4].2
        )
    );
    assert_eq!(
        from_ini
            .lines()
            .filter(|l| l.contains(": ignored (rule 1 not-log-alarm"))
            .count(),
        44
    );
}

// ---------------------------------------------------------------------------
// (e) Config errors: exit 2 before any input is read, naming file and line (INI),
// key path (TOML) or option occurrence (command line).

#[test]
fn error_unknown_plugin() {
    let (ini, lines) = config_file_error(
        "compat_err_plugin",
        "a.ini",
        "[uwsgi]\nalarm = page pager:+15551234\nlog-alarm = page X\n",
    );
    assert_eq!(lines.len(), 1, "{lines:?}");
    let head = format!(
        "[logalarm] config error: {ini}:2: alarm: unknown plugin \"pager\" (this build has: "
    );
    assert!(
        lines[0].starts_with(&head) && lines[0].ends_with(')'),
        "{}",
        lines[0]
    );
    assert!(
        lines[0][head.len()..]
            .split([',', ' ', ')'])
            .any(|p| p == "cmd"),
        "{}",
        lines[0]
    );
}

#[test]
fn error_unknown_alarm_in_rule() {
    let (ini, lines) = config_file_error(
        "compat_err_unknown_alarm",
        "a.ini",
        "[uwsgi]\nalarm = mailme log:\n\nlog-alarm = mailme,mailem HARAKIRI\n",
    );
    assert_eq!(
        lines,
        [format!(
            "[logalarm] config error: {ini}:4: log-alarm: unknown alarm \"mailem\"; define it (`alarm = mailem PLUGIN:ARGS` \
             in INI, [alarm.mailem] in TOML) or fix the name (defined: mailme)"
        )]
    );
}

#[test]
fn error_bad_regex() {
    let (ini, lines) = config_file_error(
        "compat_err_regex",
        "a.ini",
        "[uwsgi]\nalarm = mailme log:\nlog-alarm = mailme HARAKIRI (ON\n",
    );
    assert_eq!(
        lines[0],
        format!("[logalarm] config error: {ini}:3: log-alarm: bad regex:")
    );
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("[logalarm] config error: ")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("unclosed group")),
        "{lines:?}"
    );
}

#[test]
fn error_duplicate_alarm_name() {
    let (ini, lines) = config_file_error(
        "compat_err_duplicate",
        "a.ini",
        "[uwsgi]\nalarm = mailme log:one\nlog-alarm = mailme X\nalarm = mailme log:two\n",
    );
    assert_eq!(
        lines,
        [format!(
            "[logalarm] config error: {ini}:4: alarm: duplicate alarm name \"mailme\", first defined at {ini}:2: alarm; \
             rename one of them"
        )]
    );
}

#[test]
fn error_rule_without_regex() {
    let (ini, lines) = config_file_error(
        "compat_err_no_regex",
        "a.ini",
        "[uwsgi]\nalarm = mailme log:\nlog-alarm = mailme   \n",
    );
    assert_eq!(
        lines,
        [format!(
            "[logalarm] config error: {ini}:3: log-alarm: rule without regex: \"mailme\"; write `mailme REGEX`, \
             e.g. `mailme HARAKIRI ON WORKER`"
        )]
    );
}

#[test]
fn error_toml_unknown_key() {
    let (toml, lines) = config_file_error(
        "compat_err_toml_key",
        "a.toml",
        "alarm_freq = 3\n\n[alarm.mailme]\naction = \"log:\"\n\n[[rule]]\nregex = \"X\"\nalarms = [\"mailme\"]\nnegated = true\n",
    );
    assert_eq!(
        lines,
        [format!(
            "[logalarm] config error: {toml}:9: rule[1].negated: unknown key `negated`; did you mean `negate`?"
        )]
    );
}

#[test]
fn error_toml_rule_without_regex() {
    let (toml, lines) = config_file_error(
        "compat_err_toml_no_regex",
        "a.toml",
        "[alarm.mailme]\naction = \"log:\"\n\n[[rule]]\nregex = \"X\"\nalarms = [\"mailme\"]\n\n[[rule]]\nalarms = [\"mailme\"]\n",
    );
    assert_eq!(
        lines,
        [format!(
            "[logalarm] config error: {toml}:8: rule[2]: rule without regex; add regex = \"…\" to this [[rule]]"
        )]
    );
}

#[test]
fn error_toml_bad_regex_names_the_key_path() {
    let (toml, lines) = config_file_error(
        "compat_err_toml_regex",
        "a.toml",
        "[alarm.mailme]\naction = \"log:\"\n\n[[rule]]\nregex = \"X\"\nalarms = [\"mailme\"]\n\n[[rule]]\nalarms = [\"mailme\"]\nregex = 'a{2,1}'\n",
    );
    assert_eq!(
        lines[0],
        format!("[logalarm] config error: {toml}:10: rule[2].regex: bad regex:")
    );
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("[logalarm] config error: ")),
        "{lines:?}"
    );
}

#[test]
fn error_on_the_command_line_names_the_option_occurrence() {
    let lines = config_error(&[
        "--alarm",
        "a log:",
        "--log-alarm",
        "a X",
        "--log-alarm",
        "b Y",
        "--not-log-alarm",
        "a Z",
        "--not-log-alarm",
        "a",
    ]);
    assert_eq!(
        lines,
        [
            "[logalarm] config error: command line: --not-log-alarm (occurrence 2): rule without regex: \"a\"; \
          write `a REGEX`, e.g. `a HARAKIRI ON WORKER`",
            // All errors show at once: the syntax error does not hide the unknown alarm.
            "[logalarm] config error: command line: --log-alarm (occurrence 2): unknown alarm \"b\"; \
          define it (`alarm = b PLUGIN:ARGS` in INI, [alarm.b] in TOML) or fix the name (defined: a)",
        ]
    );
    let lines = config_error(&[
        "--alarm",
        "a log:",
        "--log-alarm",
        "a X",
        "--alarm-log",
        "b Y",
    ]);
    assert_eq!(
        lines,
        [
            "[logalarm] config error: command line: --alarm-log (occurrence 1): unknown alarm \"b\"; define it \
          (`alarm = b PLUGIN:ARGS` in INI, [alarm.b] in TOML) or fix the name (defined: a)"
        ]
    );
}

#[test]
fn config_errors_are_all_listed_at_once() {
    let (ini, lines) = config_file_error(
        "compat_err_many",
        "a.ini",
        "[uwsgi]\n\
         alarm = mailme log:\n\
         alarm = pager pager:+15551234\n\
         alarm = mailme log:again\n\
         log-alarm = mailme,jabber HARAKIRI\n\
         log-alarm = mailme (\n",
    );
    let firsts: Vec<&str> = lines
        .iter()
        .filter(|l| !l.starts_with("[logalarm] config error:     "))
        .map(String::as_str)
        .collect();
    assert_eq!(firsts.len(), 4, "{lines:#?}");
    assert!(firsts[0].starts_with(&format!(
        "[logalarm] config error: {ini}:3: alarm: unknown plugin \"pager\""
    )));
    assert!(firsts[1].starts_with(&format!(
        "[logalarm] config error: {ini}:4: alarm: duplicate alarm name \"mailme\""
    )));
    assert!(firsts[2].starts_with(&format!(
        "[logalarm] config error: {ini}:5: log-alarm: unknown alarm \"jabber\""
    )));
    assert_eq!(
        firsts[3],
        format!("[logalarm] config error: {ini}:6: log-alarm: bad regex:")
    );
}

/// ENGINE BUG (reported): an alarm name defined twice is not reported when the
/// first definition is itself broken; the second one silently takes the name.
/// `logalarm check -c a.ini` with `alarm = x nope:foo` / `alarm = x log:` lists
/// only the unknown plugin.
#[test]
fn bug_duplicate_of_a_broken_alarm_is_reported() {
    let (ini, lines) = config_file_error(
        "compat_bug_duplicate_broken",
        "a.ini",
        "[uwsgi]\nalarm = x nope:foo\nalarm = x log:\nlog-alarm = x X\n",
    );
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "[logalarm] config error: {ini}:3: alarm: duplicate alarm name \"x\""
        ))),
        "{lines:#?}"
    );
}

/// ENGINE BUG (reported): errors found while reading the file (a rule without
/// regex) hide every error found later (unknown plugin, bad regex), so they are
/// not "all listed at once".
#[test]
fn bug_syntax_errors_do_not_hide_other_errors() {
    let (ini, lines) = config_file_error(
        "compat_bug_phases",
        "a.ini",
        "[uwsgi]\nalarm = x nope:foo\nlog-alarm = x\nlog-alarm = x (\n",
    );
    for at in [
        ":2: alarm: unknown plugin",
        ":3: log-alarm: rule without regex",
        ":4: log-alarm: bad regex",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(&format!("{ini}{at}"))),
            "missing {at:?} in {lines:#?}"
        );
    }
}

// ---------------------------------------------------------------------------
// (f) The `check` report.

#[test]
fn check_prints_alarms_rules_table_and_settings() {
    let dir = common::scratch("compat_check_report");
    let ini = common::write_file(
        &dir,
        "small.ini",
        "[uwsgi]\n\
         alarm = mailme cmd:mail -s alarm admin@example.com\n\
         alarm = ops log:OPS\n\
         alarm-freq = 10\n\
         alarm-msg-size = 512\n\
         log-alarm = mailme,ops HARAKIRI ON WORKER\n\
         not-log-alarm = ops ^DEBUG\n\
         alarm-log = ops,ops,mailme listen queue .* full\n",
    );
    let ini = common::path_str(&ini);
    let out = Logalarm::new()
        .args(["check", "-c", ini, "--log-alarm", "ops segfault"])
        .run(b"");
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
    assert_eq!(
        text(&out.stdout),
        format!(
            "Alarms:\n\
             \x20 mailme  cmd:mail -s alarm admin@example.com    ({ini}:2: alarm)\n\
             \x20 ops     log:OPS    ({ini}:3: alarm)\n\
             Rules, in order (a matching not-log-alarm skips the rules after it):\n\
             \x20   1  log-alarm      HARAKIRI ON WORKER    -> mailme,ops    ({ini}:6: log-alarm)\n\
             \x20   2  not-log-alarm  ^DEBUG                -> ops    ({ini}:7: not-log-alarm)\n\
             \x20   3  log-alarm      listen queue .* full  -> ops,mailme    ({ini}:8: alarm-log)\n\
             \x20   4  log-alarm      segfault              -> ops    (command line: --log-alarm (occurrence 1))\n\
             Inputs: stdin (under `logalarm run`: the process's stdout and stderr)\n\
             Settings: alarm-freq 10s, alarm-msg-size 512 bytes, pass-through on, queue-size 1024, drain-timeout 10s\n\
             OK: 2 alarms, 4 rules\n"
        )
    );
    assert_eq!(out.stderr_text(), "");
}

// ---------------------------------------------------------------------------
// (g) Rule order on the command line, negative rules included.

#[test]
fn command_line_not_log_alarm_keeps_its_place_in_the_order() {
    let dir = common::scratch("compat_cli_order");
    let (a, b) = (dir.join("a.txt"), dir.join("b.txt"));
    let args = [
        "--alarm-freq".to_owned(),
        "0".to_owned(),
        "--alarm".to_owned(),
        format!("a cmd:cat >> {}", common::sh_quote(&a)),
        "--alarm".to_owned(),
        format!("b cmd:cat >> {}", common::sh_quote(&b)),
        "--log-alarm".to_owned(),
        "a X".to_owned(),
        "--not-log-alarm".to_owned(),
        "a Y".to_owned(),
        "--log-alarm".to_owned(),
        "b X".to_owned(),
    ];
    let input = "1 X only\n2 X and Y\n3 Y only\n4 neither\n5 Y then X\n";
    let out = Logalarm::new().args(&args).run(input.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
    assert_eq!(text(&out.stdout), input);
    assert_eq!(
        std::fs::read_to_string(&a).expect("a ran"),
        "1 X only\n2 X and Y\n5 Y then X\n"
    );
    assert_eq!(std::fs::read_to_string(&b).expect("b ran"), "1 X only\n");

    // The dry run explains it.
    let out = Logalarm::new()
        .args(["test", "--print-all-matched", "--print-all-ignored"])
        .args(&args[2..])
        .run(input.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
    let report = text(&out.stdout);
    let (report, timing) = report.trim_end().rsplit_once('\n').expect("lines");
    assert!(timing.starts_with("processed 5 lines in "), "{timing}");
    assert_eq!(
        report,
        "line 1: fires a, b (rule 1 /X/, rule 3 /X/): 1 X only\n\
         line 2: fires a (rule 1 /X/): 2 X and Y\n\
         line 3: ignored (rule 2 not-log-alarm skips the rules after it): 3 Y only\n\
         line 5: fires a (rule 1 /X/): 5 Y then X\n\
         \n\
         Lines: 5 read, 3 matched, 1 ignored (0 anti-loop tag, 1 not-log-alarm), 1 missed\n\
         Rules:\n\
         \x20   1  log-alarm      X  -> a: 3 lines\n\
         \x20   2  not-log-alarm  Y  -> a: 3 lines\n\
         \x20   3  log-alarm      X  -> b: 1 line\n\
         Alarms (policies on the arrival clock: the lines carry no time logalarm reads):\n\
         \x20 a: 3 events -> 3 notifications\n\
         \x20 b: 1 event -> 1 notification"
    );
}

// ---------------------------------------------------------------------------
// (f) Config-time expansion, as uWSGI's documentation describes it
// ("Magic variables", "Configuration logic": placeholders, `$(ENV)`,
// `@(file)`, `include`/`inherit`), and bytes that are not UTF-8.

/// The `check` report's alarm and rule lines, without their origins, their
/// blanks each one space.
fn check_lines(ini: &Path, env: &[(&str, &str)]) -> Vec<String> {
    let out = Logalarm::new()
        .args(["check", "-c"])
        .arg(ini)
        .envs(env.iter().copied())
        .run(b"");
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
    text(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(|l| {
            let l = l.split("    (").next().unwrap_or(l);
            l.split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .collect()
}

#[test]
fn magic_variables_placeholders_env_and_files_as_uwsgi_documents() {
    let dir = common::scratch("compat_expand").join("etc").join("app");
    std::fs::create_dir_all(&dir).expect("mkdir");
    common::write_file(&dir, "token.txt", "s3cret\n");
    let ini = common::write_file(
        &dir,
        "site.ini",
        "[uwsgi]\n\
         processes = 4\n\
         set-placeholder = team=ops\n\
         ; %d is the directory with its trailing slash, %n the name without extension\n\
         alarm = page cmd:echo %n.%e in %c (%d) 100%% %(team) %(processes + 1) $(TEAM_X) $(UNSET_X:-dflt) @(%dtoken.txt)\n\
         log-alarm = page %n-%(processes * 2)\n",
    );
    let d = format!("{}/", std::fs::canonicalize(&dir).expect("dir").display());
    assert_eq!(
        check_lines(&ini, &[("TEAM_X", "blue")]),
        [
            format!("page cmd:echo site.ini in app ({d}) 100% ops 5 blue dflt s3cret"),
            "1 log-alarm site-8 -> page".to_owned(),
        ]
    );

    // The machine's own: %h host name, %k CPUs, %u/%U user, %p the path.
    let ini = common::write_file(
        &dir,
        "who.ini",
        "[uwsgi]\nalarm = w cmd:echo %h %k %u %p %z|\nlog-alarm = w x\n",
    );
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    let cpus = std::thread::available_parallelism().expect("cpus");
    let uid = unsafe { libc::getuid() };
    let p = std::fs::canonicalize(&ini).expect("path");
    assert_eq!(
        check_lines(&ini, &[])[0],
        // An unknown magic variable (%z) is empty, as in uWSGI.
        format!("w cmd:echo {} {cpus} {uid} {} |", host.trim(), p.display())
    );
}

#[test]
fn include_in_place_and_inherit_after_with_their_own_magic_variables() {
    let dir = common::scratch("compat_include");
    common::write_file(
        &dir,
        "extra.ini",
        "[uwsgi]\nlog-alarm = page from-%n-in-%N\n",
    );
    common::write_file(&dir, "base.ini", "[uwsgi]\nlog-alarm = page inherited-%n\n");
    let ini = common::write_file(
        &dir,
        "main.ini",
        "[uwsgi]\nalarm = page log:\ninherit = %dbase.ini\nlog-alarm = page first\n\
         include = %dextra.ini\nlog-alarm = page last\n",
    );
    assert_eq!(
        check_lines(&ini, &[]),
        [
            "page log:",
            "1 log-alarm first -> page",
            "2 log-alarm from-extra-in-main -> page",
            "3 log-alarm last -> page",
            "4 log-alarm inherited-base -> page",
        ]
    );
}

#[test]
fn a_regexs_leading_spaces_are_kept() {
    // uWSGI cuts `log-alarm` at the first space: the regex is " ERR".
    let dir = common::scratch("compat_leading_space");
    let ini = common::write_file(
        &dir,
        "a.ini",
        "[uwsgi]\nalarm = a log:\nlog-alarm = a  ERR\n",
    );
    let out = Logalarm::new()
        .args(["test", "--print-all-matched", "-c"])
        .arg(&ini)
        .run(b"disk ERR\ndiskERR\n");
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
    assert!(
        text(&out.stdout)
            .starts_with("line 1: fires a (rule 1 / ERR/): disk ERR\n\nLines: 2 read, 1 matched,"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn an_ini_that_is_not_utf8_keeps_its_bytes_in_regexes() {
    let dir = common::scratch("compat_latin1");
    let ini = dir.join("latin.ini");
    // A Latin-1 file: é is the one byte E9.
    std::fs::write(&ini, b"[uwsgi]\nalarm = a log:\nlog-alarm = a caf\xe9\n").expect("write");
    let out = Logalarm::new()
        .args(["test", "--print-all-matched", "-c"])
        .arg(&ini)
        .run(b"caf\xe9 in Latin-1\ncaf\xc3\xa9 in UTF-8\n");
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
    assert!(
        out.stdout.starts_with(
            b"line 1: fires a (rule 1 /caf\\xE9/): caf\xe9 in Latin-1\n\nLines: 2 read, 1 matched,"
        ),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Elsewhere such bytes are an error naming the line (and the alarm it
    // did not define is then unknown to its rule).
    std::fs::write(
        &ini,
        b"[uwsgi]\nalarm = a cmd:echo caf\xe9\nlog-alarm = a x\n",
    )
    .expect("write");
    let out = Logalarm::new().args(["check", "-c"]).arg(&ini).run(b"");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        out.stderr_lines(),
        [
            format!(
                "[logalarm] config error: {}:2: alarm: holds bytes that are not UTF-8; logalarm reads this option as UTF-8 (only a rule's regex may hold other bytes): save the file as UTF-8",
                ini.display()
            ),
            // The line as written, its byte shown as U+FFFD.
            "[logalarm] config error:      2 | alarm = a cmd:echo caf\u{FFFD}".to_owned(),
            format!(
                "[logalarm] config error: {}:3: log-alarm: unknown alarm \"a\"; define it (`alarm = a PLUGIN:ARGS` in INI, [alarm.a] in TOML) or fix the name (defined: none)",
                ini.display()
            ),
            "[logalarm] config error:      3 | log-alarm = a x".to_owned(),
        ]
    );
}

#[test]
fn strict_makes_unknown_options_errors() {
    let dir = common::scratch("compat_strict");
    let ini = common::write_file(
        &dir,
        "s.ini",
        "[uwsgi]\nstrict = true\nalarm = a log:\nlog-alarm = a x\nprocesses = 4\n",
    );
    let out = Logalarm::new().args(["check", "-c"]).arg(&ini).run(b"");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        out.stderr_lines(),
        [
            format!(
                "[logalarm] config error: {}:5: processes: unknown option `processes` (strict = true makes it an error)",
                ini.display()
            ),
            "[logalarm] config error:      5 | processes = 4".to_owned(),
        ]
    );
}

#[test]
fn ini_typos_are_errors_with_a_suggestion_and_uwsgis_own_options_a_warning() {
    let dir = common::scratch("compat_typos");
    let ini = common::write_file(
        &dir,
        "t.ini",
        "[uwsgi]\n\
         alarm = a log:\n\
         log-alamr = a x\n\
         log-alarm = a y\n\
         ; uWSGI's own, one of them two edits from alarm-fd, one named as a logalarm setting\n\
         alarm-lq = 10\n\
         log-format = %(addr) - %(user)\n\
         processes = 4\n\
         [logalarm]\n\
         queue-szie = 10\n\
         foo = bar\n",
    );
    let out = Logalarm::new().args(["check", "-c"]).arg(&ini).run(b"");
    assert_eq!(out.status.code(), Some(2));
    let at = ini.display();
    assert_eq!(
        out.stderr_lines(),
        [
            format!(
                "[logalarm] config error: {at}:3: log-alamr: unknown option `log-alamr`; did you mean `log-alarm`? (uWSGI's own options are ignored, but this is a typo's distance from logalarm's)"
            ),
            "[logalarm] config error:      3 | log-alamr = a x".to_owned(),
            format!(
                "[logalarm] config error: {at}:10: queue-szie: unknown option `queue-szie`; did you mean `queue-size`?"
            ),
            "[logalarm] config error:     10 | queue-szie = 10".to_owned(),
            format!(
                "[logalarm] config error: {at}:11: foo: unknown option `foo`; [logalarm] takes logalarm's options only (uWSGI's own go under [uwsgi])"
            ),
            "[logalarm] config error:     11 | foo = bar".to_owned(),
        ]
    );

    // Without the typos, uWSGI's own options are one warning.
    let ini = common::write_file(
        &dir,
        "ok.ini",
        "[uwsgi]
alarm = a log:
log-alarm = a y
alarm-lq = 10
log-format = %(addr) - %(user)
processes = 4
",
    );
    let out = Logalarm::new().args(["check", "-c"]).arg(&ini).run(b"");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        out.stderr_lines(),
        [format!(
            "[logalarm] warn: {}: ignoring options logalarm does not use: alarm-lq, log-format, processes",
            ini.display()
        )]
    );
}
