//! The `smtp:` action through the real binary, against a real SMTP server
//! (aiosmtpd, tests/servers/smtp.py) that each test starts on 127.0.0.1: the
//! mail as received and parsed by Python's `email` module (headers, body,
//! envelope recipients), STARTTLS and implicit TLS with a self-signed
//! certificate made by `openssl`, AUTH PLAIN and LOGIN with a password from the
//! environment, the uWSGI docs' example, 5xx (permanent, no retry) and 4xx
//! (transient) replies, a server down or hung, and the password kept out of
//! every log line, error and `check` output.
//!
//! A missing aiosmtpd or openssl fails the test with what to install; no
//! test passes without its server.

#![cfg(feature = "smtp")]

mod common;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use common::{Done, Logalarm, PATIENCE, header, summary};

/// The aiosmtpd test server.
const SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/servers/smtp.py");

/// The environment variable holding the password in the AUTH tests.
const PASS_VAR: &str = "LOGALARM_TEST_SMTP_PASS";

/// A Python interpreter that has aiosmtpd: `$LOGALARM_PYTHON`, else `python3`
/// on PATH, else Debian's `/usr/bin/python3` (where `python3-aiosmtpd`
/// installs it, when PATH leads to another Python).
fn python() -> String {
    let candidates: Vec<String> = match std::env::var("LOGALARM_PYTHON") {
        Ok(p) => vec![p],
        Err(_) => vec!["python3".into(), "/usr/bin/python3".into()],
    };
    for p in &candidates {
        let ok = Command::new(p)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return p.clone();
        }
    }
    panic!(
        "no Python with aiosmtpd among {candidates:?}: install python3-aiosmtpd (apt-get; scripts/test does) \
         or `pip install aiosmtpd`, or set LOGALARM_PYTHON"
    );
}

/// A running test SMTP server; killed when dropped.
struct Server {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl Server {
    /// Starts tests/servers/smtp.py with `args`, recording into `dir/NAME.jsonl`;
    /// fails the test if it does not report its port within [`PATIENCE`].
    fn start(dir: &Path, name: &str, args: &[&str]) -> Server {
        let out = dir.join(format!("{name}.jsonl"));
        let mut child = Command::new(python())
            .arg(SERVER)
            .arg("--out")
            .arg(&out)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the SMTP test server {SERVER}: {e}"));
        let stdout = child.stdout.take().expect("stdout piped");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        // Its stderr (aiosmtpd's log) is kept in a file, for failures.
        let log = dir.join(format!("{name}.log"));
        let log_path = log.clone();
        thread::spawn(move || {
            if let Ok(mut f) = std::fs::File::create(&log_path) {
                let _ = std::io::copy(&mut BufReader::new(stderr), &mut f);
            }
        });
        let line = rx.recv_timeout(PATIENCE).unwrap_or_default();
        let port = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            thread::sleep(Duration::from_millis(100));
            panic!(
                "the SMTP test server did not start (said {line:?}); its stderr: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        Server { child, port, out }
    }

    /// The messages it has received so far (accepted or not), parsed.
    fn mails(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line from the server"))
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The one `delivery failed` line of alarm `name`.
fn failure<'a>(done: &'a Done, name: &str) -> &'a str {
    let tagged = format!("alarm={name}:");
    let hits: Vec<&String> = done
        .stderr_lines()
        .iter()
        .filter(|l| l.contains(&tagged) && l.contains("delivery failed"))
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "one failure of {name} expected:\n{}",
        done.stderr_text()
    );
    hits[0]
}

/// Runs logalarm with `args` and `env` on `input` to its end.
fn run(args: &[&str], env: &[(&str, &str)], input: &[u8]) -> Done {
    Logalarm::new()
        .args(args)
        .env_remove(PASS_VAR)
        .envs(env.iter().copied())
        .run(input)
}

/// A TOML config with `alarms` (name, action), each retried once after 100 ms,
/// all fired by lines holding `TERRIBLE`.
fn alarms_toml(dir: &Path, alarms: &[(&str, String)]) -> PathBuf {
    let mut text = String::new();
    for (name, action) in alarms {
        text.push_str(&format!(
            "[alarm.{name}]\naction = {action:?}\nretry = {{ attempts = 2, delay = \"100ms\" }}\n"
        ));
    }
    let names: Vec<String> = alarms.iter().map(|(n, _)| format!("{n:?}")).collect();
    text.push_str(&format!(
        "[[rule]]\nregex = \"TERRIBLE\"\nalarms = [{}]\n",
        names.join(", ")
    ));
    let path = dir.join("alarms.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The mail's text with CRLF line ends read as `\n`.
fn body(mail: &Value) -> String {
    mail["body"]
        .as_str()
        .unwrap_or_else(|| panic!("no text body in {mail:#}"))
        .replace("\r\n", "\n")
}

/// The notification id in `<ID@HOST>`, checking HOST; split as (run, rest).
fn message_id(mail: &Value) -> (String, String) {
    let id = header(mail, "Message-ID");
    let inner = id
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or_else(|| panic!("Message-ID {id:?} not in <…>"));
    let (left, host) = inner.split_once('@').expect("an @ in the Message-ID");
    assert_eq!(host, common::hostname(), "Message-ID {id:?}");
    let (run, rest) = left.split_once('-').expect("RUN-ALARM-SEQ");
    assert!(
        run.len() == 16 && run.bytes().all(|b| b.is_ascii_hexdigit()),
        "run part of {id:?}"
    );
    (run.to_owned(), rest.to_owned())
}

fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

// ---------------------------------------------------------------------------

#[test]
fn plain_smtp_sends_a_proper_mail_to_every_recipient() {
    let dir = common::scratch("smtp_plain");
    let server = Server::start(&dir, "server", &[]);
    let alarm = format!(
        "mail smtp:smtp://127.0.0.1:{};mail_from=Logalarm <alarm@example.com>;mail_to=ops@example.com, dev@example.org;subject=app alarm — café",
        server.port
    );
    let input: &[u8] = b"fine\nTERRIBLE ALARM one\nok\nTERRIBLE ALARM caf\xc3\xa9 \xff two\n";
    let before = epoch_now();
    let done = run(
        &["--alarm", &alarm, "--log-alarm", "mail TERRIBLE"],
        &[],
        input,
    );
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr_text());
    assert_eq!(done.stdout_lines().len(), 4, "pass-through unchanged");
    assert_eq!(
        summary(done.stderr_lines(), "mail"),
        (2, 0, 0, 0),
        "{}",
        done.stderr_text()
    );

    let mails = server.mails();
    assert_eq!(mails.len(), 2, "{mails:#?}");
    let mut ids = Vec::new();
    for (mail, text) in mails
        .iter()
        .zip(["TERRIBLE ALARM one", "TERRIBLE ALARM café \u{fffd} two"])
    {
        assert_eq!(mail["mail_from"], "alarm@example.com");
        assert_eq!(
            mail["rcpt_tos"],
            serde_json::json!(["ops@example.com", "dev@example.org"])
        );
        assert_eq!(mail["tls"], false);
        assert_eq!(header(mail, "From"), "Logalarm <alarm@example.com>");
        assert_eq!(header(mail, "To"), "ops@example.com, dev@example.org");
        assert_eq!(header(mail, "Subject"), "app alarm — café");
        assert_eq!(header(mail, "MIME-Version"), "1.0");
        assert_eq!(mail["content_type"], "text/plain");
        assert_eq!(mail["charset"], "utf-8");
        let date = mail["date_epoch"].as_f64().expect("a parsable Date");
        assert!(
            date >= before.floor() - 1.0 && date <= epoch_now() + 1.0,
            "Date {} not the time the line was read",
            header(mail, "Date")
        );
        assert_eq!(
            body(mail),
            format!("{text}\n-- \nlogalarm alarm mail, from stdin\n")
        );
        ids.push(message_id(mail));
    }
    // One run, consecutive notifications of one alarm.
    assert_eq!(ids[0].0, ids[1].0);
    assert!(
        ids[0].1.ends_with("-1") && ids[1].1.ends_with("-2"),
        "{ids:?}"
    );
    assert_eq!(
        ids[0].1.trim_end_matches("-1"),
        ids[1].1.trim_end_matches("-2")
    );
}

#[test]
fn starttls_is_required_and_the_certificate_checked_unless_ssl_insecure() {
    let dir = common::scratch("smtp_starttls");
    let (cert, key) = common::self_signed(&dir);
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let tls = Server::start(&dir, "tls", &["--starttls", "--cert", cert, "--key", key]);
    let plain = Server::start(&dir, "plain", &[]);
    let addrs = "mail_from=alarm@example.com;mail_to=ops@example.com";
    let insecure = format!(
        "insecure smtp:smtp://127.0.0.1:{};{addrs};ssl;ssl_insecure=true",
        tls.port
    );
    let checked = format!("checked smtp:smtp://127.0.0.1:{};{addrs};ssl", tls.port);
    // `ssl` means STARTTLS or nothing: never plain text to a server without it.
    let required = format!(
        "required smtp:smtp://127.0.0.1:{};{addrs};ssl=1;ssl_insecure",
        plain.port
    );
    let done = run(
        &[
            "--alarm",
            &insecure,
            "--alarm",
            &checked,
            "--alarm",
            &required,
            "--log-alarm",
            "insecure,checked,required TERRIBLE",
        ],
        &[],
        b"TERRIBLE ALARM over TLS\n",
    );
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr_text());
    assert_eq!(
        summary(done.stderr_lines(), "insecure"),
        (1, 0, 0, 0),
        "{}",
        done.stderr_text()
    );
    assert_eq!(
        summary(done.stderr_lines(), "checked"),
        (0, 1, 0, 0),
        "{}",
        done.stderr_text()
    );
    assert_eq!(
        summary(done.stderr_lines(), "required"),
        (0, 1, 0, 0),
        "{}",
        done.stderr_text()
    );

    let mails = tls.mails();
    assert_eq!(
        mails.len(),
        1,
        "only the ssl_insecure alarm got through: {mails:#?}"
    );
    assert_eq!(mails[0]["tls"], true);
    assert_eq!(header(&mails[0], "Subject"), "[logalarm] alarm insecure");
    assert_eq!(
        body(&mails[0]),
        "TERRIBLE ALARM over TLS\n-- \nlogalarm alarm insecure, from stdin\n"
    );

    let cert_failure = failure(&done, "checked");
    assert!(
        cert_failure.contains("certificate") && cert_failure.contains("ssl_insecure=true"),
        "{cert_failure}"
    );
    assert!(
        !cert_failure.contains("(transient)"),
        "a bad certificate is permanent: {cert_failure}"
    );
    let no_starttls = failure(&done, "required");
    assert!(no_starttls.contains("STARTTLS"), "{no_starttls}");
    assert!(!no_starttls.contains("(transient)"), "{no_starttls}");
    assert!(plain.mails().is_empty(), "nothing may go in plain text");
}

#[test]
fn smtps_is_tls_from_the_first_byte() {
    let dir = common::scratch("smtp_smtps");
    let (cert, key) = common::self_signed(&dir);
    let server = Server::start(
        &dir,
        "server",
        &[
            "--implicit",
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    let alarm = format!(
        "mail smtp:smtps://127.0.0.1:{};mail_from=alarm@example.com;mail_to=ops@example.com;ssl_insecure",
        server.port
    );
    let done = run(
        &["--alarm", &alarm, "--log-alarm", "mail TERRIBLE"],
        &[],
        b"TERRIBLE ALARM smtps\n",
    );
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr_text());
    assert_eq!(
        summary(done.stderr_lines(), "mail"),
        (1, 0, 0, 0),
        "{}",
        done.stderr_text()
    );
    let mails = server.mails();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert_eq!(mails[0]["tls"], true);
    assert_eq!(mails[0]["rcpt_tos"], serde_json::json!(["ops@example.com"]));
    assert_eq!(
        body(&mails[0]),
        "TERRIBLE ALARM smtps\n-- \nlogalarm alarm mail, from stdin\n"
    );
}

#[test]
fn auth_plain_and_login_with_the_password_from_the_environment() {
    let dir = common::scratch("smtp_auth");
    let (cert, key) = common::self_signed(&dir);
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let password = "pw-from-env-7c1d";
    let creds = format!("alarmer:{password}");
    let tls = ["--starttls", "--cert", cert, "--key", key, "--auth", &creds];
    let plain_srv = Server::start(
        &dir,
        "plain",
        &[&tls[..], &["--mechanism", "PLAIN"]].concat(),
    );
    let login_srv = Server::start(
        &dir,
        "login",
        &[&tls[..], &["--mechanism", "LOGIN"]].concat(),
    );
    let alarm = |name: &str, port: u16, pass: &str| {
        format!(
            "{name} smtp:smtp://127.0.0.1:{port};mail_from=alarm@example.com;mail_to=ops@example.com;ssl;ssl_insecure;auth_user=alarmer;auth_pass={pass}"
        )
    };
    let env_pass = format!("env:{PASS_VAR}");
    let (a_plain, a_login) = (
        alarm("plain", plain_srv.port, &env_pass),
        alarm("login", login_srv.port, &env_pass),
    );
    let wrong = alarm("wrong", plain_srv.port, "not-the-password-3f9a");
    let args = [
        "--alarm",
        &a_plain,
        "--alarm",
        &a_login,
        "--alarm",
        &wrong,
        "--log-alarm",
        "plain,login,wrong TERRIBLE",
    ];
    let done = run(
        &args,
        &[(PASS_VAR, password)],
        b"TERRIBLE ALARM authenticated\n",
    );
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr_text());
    assert_eq!(
        summary(done.stderr_lines(), "plain"),
        (1, 0, 0, 0),
        "{}",
        done.stderr_text()
    );
    assert_eq!(
        summary(done.stderr_lines(), "login"),
        (1, 0, 0, 0),
        "{}",
        done.stderr_text()
    );
    assert_eq!(
        summary(done.stderr_lines(), "wrong"),
        (0, 1, 0, 0),
        "{}",
        done.stderr_text()
    );
    for (server, mechanism) in [(&plain_srv, "PLAIN"), (&login_srv, "LOGIN")] {
        let mails = server.mails();
        assert_eq!(mails.len(), 1, "{mechanism}: {mails:#?}");
        assert_eq!(mails[0]["login"], "alarmer");
        assert_eq!(mails[0]["mechanism"], mechanism);
        assert_eq!(mails[0]["tls"], true);
    }
    // 535: the server refused the login; permanent, and no password in sight.
    let refused = failure(&done, "wrong");
    assert!(
        refused.contains("535") && !refused.contains("(transient)"),
        "{refused}"
    );
    for secret in [password, "not-the-password-3f9a"] {
        assert!(
            !done.stderr_text().contains(secret),
            "password in stderr:\n{}",
            done.stderr_text()
        );
    }

    // `check` shows the alarms with the password hidden.
    let check = run(
        &[&["check"], &args[..]].concat(),
        &[(PASS_VAR, password)],
        b"",
    );
    let out = check.stdout_lines().join("\n");
    assert_eq!(
        check.status.code(),
        Some(0),
        "{out}\n{}",
        check.stderr_text()
    );
    assert_eq!(out.matches("auth_pass=***").count(), 3, "{out}");
    assert!(
        !out.contains(password)
            && !out.contains("not-the-password-3f9a")
            && !out.contains(PASS_VAR),
        "{out}"
    );
    // An unset variable is a config error naming it.
    let unset = run(&[&["check"], &args[..]].concat(), &[], b"");
    assert_eq!(unset.status.code(), Some(2), "{}", unset.stderr_text());
    assert!(
        unset.stderr_text().contains(PASS_VAR),
        "{}",
        unset.stderr_text()
    );
}

#[test]
fn the_uwsgi_docs_example_delivers_unchanged() {
    let dir = common::scratch("smtp_uwsgi_docs");
    let server = Server::start(&dir, "server", &["--auth", "uwsgi:secret"]);
    let ini = dir.join("alarms.ini");
    std::fs::write(
        &ini,
        format!(
            "[uwsgi]\n\
             alarm = mailme curl:smtp://127.0.0.1:{};mail_to=admin@example.com,ops@example.com;mail_from=uwsgi@example.com;auth_user=uwsgi;auth_pass=secret;subject=alarm from uWSGI\n\
             log-alarm = mailme TERRIBLE ALARM\n",
            server.port
        ),
    )
    .unwrap();
    let done = run(
        &["-c", ini.to_str().unwrap()],
        &[],
        b"starting\nTERRIBLE ALARM! the world exploded\n",
    );
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr_text());
    assert_eq!(
        done.stdout_lines(),
        ["starting", "TERRIBLE ALARM! the world exploded"]
    );
    assert_eq!(
        summary(done.stderr_lines(), "mailme"),
        (1, 0, 0, 0),
        "{}",
        done.stderr_text()
    );
    let mails = server.mails();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    let mail = &mails[0];
    assert_eq!(mail["login"], "uwsgi");
    assert_eq!(mail["mail_from"], "uwsgi@example.com");
    assert_eq!(
        mail["rcpt_tos"],
        serde_json::json!(["admin@example.com", "ops@example.com"])
    );
    assert_eq!(header(mail, "To"), "admin@example.com, ops@example.com");
    assert_eq!(header(mail, "Subject"), "alarm from uWSGI");
    assert_eq!(
        body(mail),
        "TERRIBLE ALARM! the world exploded\n-- \nlogalarm alarm mailme, from stdin\n"
    );
    assert!(
        !done.stderr_text().contains("secret"),
        "{}",
        done.stderr_text()
    );
}

#[test]
fn a_5xx_reply_is_permanent_and_a_4xx_reply_transient() {
    let dir = common::scratch("smtp_rejects");
    let reject5 = Server::start(&dir, "reject5", &["--mode", "reject5"]);
    let reject4 = Server::start(&dir, "reject4", &["--mode", "reject4"]);
    let addrs = "mail_from=alarm@example.com;mail_to=ops@example.com";
    // Two attempts, quickly: a 4xx reply is retried, a 5xx one never.
    let config = alarms_toml(
        &dir,
        &[
            (
                "five",
                format!("smtp:smtp://127.0.0.1:{};{addrs}", reject5.port),
            ),
            (
                "four",
                format!("smtp:smtp://127.0.0.1:{};{addrs}", reject4.port),
            ),
        ],
    );
    let done = run(
        &["-c", &config.display().to_string()],
        &[],
        b"TERRIBLE ALARM rejected\n",
    );
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr_text());
    assert_eq!(
        summary(done.stderr_lines(), "five"),
        (0, 1, 0, 0),
        "{}",
        done.stderr_text()
    );
    assert_eq!(
        summary(done.stderr_lines(), "four"),
        (0, 1, 0, 0),
        "{}",
        done.stderr_text()
    );

    let permanent = failure(&done, "five");
    assert!(permanent.starts_with("[logalarm] "), "tagged: {permanent}");
    assert!(
        permanent.contains("554") && permanent.contains("Message rejected by the test server"),
        "{permanent}"
    );
    assert!(!permanent.contains("(transient)"), "{permanent}");
    assert_eq!(
        reject5.mails().len(),
        1,
        "a permanent failure is not retried"
    );

    let transient = failure(&done, "four");
    assert!(
        transient.contains("451")
            && transient.contains("(transient)")
            && transient.contains("gave up after 2 attempts"),
        "{transient}"
    );
    assert_eq!(reject4.mails().len(), 2, "a transient failure is retried");
}

#[test]
fn a_server_down_or_hung_is_a_transient_failure_and_the_password_stays_secret() {
    let dir = common::scratch("smtp_down");
    let hung = Server::start(&dir, "hung", &["--silent"]);
    let password = "literal-pw-e41b";
    let common_keys = format!(
        "mail_from=alarm@example.com;mail_to=ops@example.com;auth_user=a;auth_pass={password}"
    );
    let down = format!(
        "smtp:smtp://127.0.0.1:{};{common_keys}",
        common::free_port()
    );
    let slow = format!(
        "smtp:smtp://127.0.0.1:{};{common_keys};timeout=1",
        hung.port
    );
    let config = alarms_toml(&dir, &[("down", down), ("slow", slow)]);
    let config_arg = config.display().to_string();
    let args = ["-c", config_arg.as_str()];
    let done = run(&args, &[], b"TERRIBLE ALARM nobody listens\n");
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr_text());
    assert_eq!(
        summary(done.stderr_lines(), "down"),
        (0, 1, 0, 0),
        "{}",
        done.stderr_text()
    );
    assert_eq!(
        summary(done.stderr_lines(), "slow"),
        (0, 1, 0, 0),
        "{}",
        done.stderr_text()
    );
    let refused = failure(&done, "down");
    assert!(
        refused.contains("Connection refused") && refused.contains("(transient)"),
        "{refused}"
    );
    let timed_out = failure(&done, "slow");
    assert!(
        timed_out.contains("timeout") && timed_out.contains("(transient)"),
        "{timed_out}"
    );
    assert!(
        done.took < Duration::from_secs(10),
        "timeout=1 took {:?}",
        done.took
    );
    assert!(
        !done.stderr_text().contains(password),
        "{}",
        done.stderr_text()
    );

    let check = run(&[&["check"], &args[..]].concat(), &[], b"");
    let out = format!(
        "{}\n{}",
        check.stdout_lines().join("\n"),
        check.stderr_text()
    );
    assert_eq!(check.status.code(), Some(0), "{out}");
    assert_eq!(out.matches("auth_pass=***").count(), 2, "{out}");
    assert!(!out.contains(password), "{out}");
}

#[test]
fn bad_arguments_are_config_errors_with_the_fix_and_no_password() {
    let bad = |args: &str| {
        let alarm = format!("mail smtp:{args}");
        let done = run(
            &["check", "--alarm", &alarm, "--log-alarm", "mail X"],
            &[],
            b"",
        );
        assert_eq!(
            done.status.code(),
            Some(2),
            "{args}: {}",
            done.stderr_text()
        );
        let text = done.stderr_text();
        assert!(!text.contains("hunter2"), "{text}");
        text
    };
    assert!(
        bad("smtp://h;mail_to=a@example.com;auth_user=u;auth_pass=hunter2")
            .contains("mail_from= is missing")
    );
    assert!(
        bad("smtp://h;mail_from=a@example.com;auth_pass=hunter2").contains("mail_to= is missing")
    );
    assert!(
        bad("smtp://h;mail_from=a@x;mail_to=b@y;auth_user=u;auth_pass=hunter2;colour=red")
            .contains("unknown key \"colour\"")
    );
    assert!(
        bad("smtp://u:hunter2@h;mail_from=a@x;mail_to=b@y")
            .contains("auth_user=NAME;auth_pass=PASSWORD")
    );
    assert!(
        bad("smtp://h;mail_from=a@x;mail_to=not an address;auth_user=u;auth_pass=hunter2")
            .contains("is not a mail address")
    );
}

/// A mail server that is down when the alarm fires and comes up later: the
/// mail is retried until it is accepted, once, while another alarm on the same
/// line is delivered at once.
#[test]
fn a_server_down_at_start_gets_the_mail_once_it_is_up() {
    let dir = common::scratch("smtp_down_then_up");
    let port = common::free_port();
    let marker = dir.join("local.txt");
    let config = dir.join("alarms.toml");
    std::fs::write(
        &config,
        format!(
            "[alarm.mail]\n\
             action = \"curl:smtp://127.0.0.1:{port};mail_from=alarm@example.com;mail_to=ops@example.com\"\n\
             retry = {{ attempts = 50, deadline = \"60s\", delay = \"100ms\", max_delay = \"300ms\" }}\n\
             [alarm.local]\n\
             action = \"cmd:cat >> {marker}\"\n\
             [[rule]]\n\
             regex = \"TERRIBLE\"\n\
             alarms = [\"mail\", \"local\"]\n",
            marker = common::sh_quote(&marker),
        ),
    )
    .unwrap();
    let mut live = Logalarm::new().arg("-c").arg(&config).stdin_piped().start();
    live.write_stdin(b"TERRIBLE ALARM while the mail server is down\n");
    // The other alarm does not wait for the mail server.
    common::wait_for_file(&marker, PATIENCE, |b| !b.is_empty());
    let server = Server::start(&dir, "late", &["--port", &port.to_string()]);
    let deadline = Instant::now() + PATIENCE;
    while server.mails().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the mail never arrived after the server came up"
        );
        thread::sleep(Duration::from_millis(20));
    }
    live.close_stdin();
    let done = live.finish();
    let text = String::from_utf8_lossy(&done.stderr).into_owned();
    assert_eq!(done.code(), Some(0), "{text}");
    let lines = done.stderr_lines();
    assert_eq!(summary(lines, "mail"), (1, 0, 0, 0), "{text}");
    assert_eq!(server.mails().len(), 1, "{text}");
    assert_eq!(
        body(&server.mails()[0]),
        "TERRIBLE ALARM while the mail server is down\n-- \nlogalarm alarm mail, from stdin\n"
    );
    assert!(text.contains("Connection refused"), "{text}");
}
