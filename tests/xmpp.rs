//! The `xmpp:` action against a real Prosody (Debian package `prosody`) that
//! each test starts itself: its own config, data and certificate under the
//! test's scratch dir, listening on a free port on 127.0.0.1 only, with
//! `VirtualHost "localhost"` and accounts made with `prosodyctl register`.
//! The recipients log in with tokio-xmpp (plain TCP on loopback) and collect
//! the chat messages they receive; the tests assert the exact texts.
//!
//! A test fails with a clear message when Prosody (or openssl, for its
//! certificate) is missing or does not start; it never passes without it.

mod common;

use common::{Logalarm, Running};
use futures::StreamExt;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use tokio_xmpp::connect::DnsConfig;
use tokio_xmpp::parsers::message::MessageType;
use tokio_xmpp::parsers::presence::Presence;
use tokio_xmpp::xmlstream::Timeouts;
use tokio_xmpp::{Client, Event, Stanza};

/// The longest any one wait here may take (a message to arrive, Prosody to
/// start or stop, logalarm to exit).
const WAIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------
// A Prosody of our own.

/// One Prosody instance for one test; killed when dropped.
struct Prosody {
    dir: PathBuf,
    config: PathBuf,
    port: u16,
    child: Option<Child>,
}

fn lua_string(path: &Path) -> String {
    let s = path.to_str().expect("utf-8 path");
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Runs a helper program the tests need, failing clearly when it is missing.
fn run_tool(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {what} ({e}); install it: apt-get install prosody (scripts/test does)")
    });
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Prosody {
    /// Writes the config and a self-signed certificate for `localhost`; does
    /// not start the server.
    fn new(test: &str) -> Prosody {
        let dir = common::scratch(test);
        for sub in ["data", "certs"] {
            std::fs::create_dir_all(dir.join(sub)).expect("create prosody dirs");
        }
        let (cert, key) = common::self_signed(&dir.join("certs"));
        let port = common::free_port();
        // Prosody refuses to run as root unless told it may (mod_posix); CI runs the
        // tests as root, and this instance only listens on loopback for one test.
        // It would otherwise switch to the `prosody` user, which cannot write here.
        let root = if unsafe { libc::geteuid() } == 0 {
            "run_as_root = true\n"
        } else {
            ""
        };
        let config = dir.join("prosody.cfg.lua");
        std::fs::write(
            &config,
            format!(
                "-- A throwaway Prosody for one logalarm test: loopback only, its own data.\n\
                 {root}\
                 pidfile = {pid}\n\
                 data_path = {data}\n\
                 certificates = {certs}\n\
                 plugin_paths = {{}}\n\
                 -- No mod_smacks: logalarm does not use stream management, and without\n\
                 -- it a stopped server never re-delivers to the test's recipient.\n\
                 modules_enabled = {{ \"roster\"; \"saslauth\"; \"tls\"; \"ping\"; \"offline\"; \"posix\" }}\n\
                 modules_disabled = {{ \"s2s\" }}\n\
                 c2s_ports = {{ {port} }}\n\
                 c2s_interfaces = {{ \"127.0.0.1\" }}\n\
                 c2s_direct_tls_ports = {{}}\n\
                 s2s_ports = {{}}\n\
                 http_ports = {{}}\n\
                 https_ports = {{}}\n\
                 -- Plain TCP logins (SCRAM) on loopback, for the recipients and tls=no.\n\
                 c2s_require_encryption = false\n\
                 authentication = \"internal_hashed\"\n\
                 storage = \"internal\"\n\
                 log = {{ {{ levels = {{ min = \"info\" }}, to = \"console\" }} }}\n\
                 ssl = {{ key = {key}; certificate = {cert} }}\n\
                 VirtualHost \"localhost\"\n",
                pid = lua_string(&dir.join("prosody.pid")),
                data = lua_string(&dir.join("data")),
                certs = lua_string(&dir.join("certs")),
                key = lua_string(&key),
                cert = lua_string(&cert),
            ),
        )
        .expect("write prosody config");
        Prosody {
            dir,
            config,
            port,
            child: None,
        }
    }

    /// Creates account `user@localhost` (the server need not run).
    fn register(&self, user: &str, password: &str) {
        run_tool(
            Command::new("prosodyctl")
                .arg("--config")
                .arg(&self.config)
                .args(["register", user, "localhost", password]),
            "prosodyctl register",
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prosody.log")).unwrap_or_default()
    }

    /// Starts the server and waits until it accepts connections.
    fn start(&mut self) {
        assert!(self.child.is_none(), "prosody already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("prosody.log"))
            .expect("open prosody log");
        let child = Command::new("prosody")
            .arg("--config")
            .arg(&self.config)
            .arg("-F")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start prosody ({e}); install it: apt-get install prosody (scripts/test does)")
            });
        let child = self.child.insert(child);
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = child.try_wait().expect("try_wait prosody") {
                self.child = None;
                panic!(
                    "prosody exited ({status}) before listening:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "prosody not listening on 127.0.0.1:{} after {WAIT:?}:\n{}",
                self.port,
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server: as an admin would (SIGTERM), or as a crash does
    /// (SIGKILL); waits for it to exit.
    fn stop(&mut self, signal: i32) {
        let mut child = self.child.take().expect("prosody running");
        let pid = i32::try_from(child.id()).expect("pid");
        // SAFETY: signalling our own child, which has not been reaped yet.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "signal prosody");
        let status = common::wait_exit(&mut child, WAIT);
        if signal == libc::SIGTERM {
            assert!(
                status.success(),
                "prosody stopped with {status}:\n{}",
                self.log()
            );
        }
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// A recipient: logs in, says it is available, collects chat message bodies.

struct Recipient {
    jid: String,
    got: Arc<Mutex<Vec<String>>>,
    online: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Recipient {
    /// Logs `user@localhost` in on `port` and waits until it is online. It
    /// reconnects by itself when the server goes away.
    fn login(user: &str, password: &str, port: u16) -> Recipient {
        let jid = format!("{user}@localhost");
        let got = Arc::new(Mutex::new(Vec::new()));
        let online = Arc::new(AtomicUsize::new(0));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = {
            let (jid, password, got, online) = (
                jid.clone(),
                password.to_owned(),
                got.clone(),
                online.clone(),
            );
            thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("recipient runtime");
                runtime.block_on(async move {
                    let jid = tokio_xmpp::jid::BareJid::new(&jid).expect("jid");
                    let mut client = Client::new_plaintext(
                        jid,
                        password,
                        DnsConfig::addr(&format!("127.0.0.1:{port}")),
                        Timeouts::tight(),
                    );
                    loop {
                        tokio::select! {
                            _ = &mut stopped => break,
                            event = client.next() => match event {
                                Some(Event::Online { .. }) => {
                                    // Available: messages to the bare JID (and those stored
                                    // while offline) come to this session.
                                    let _ = client.send_stanza(Stanza::Presence(Presence::available())).await;
                                    online.fetch_add(1, Ordering::SeqCst);
                                }
                                Some(Event::Stanza(Stanza::Message(m))) if m.type_ == MessageType::Chat => {
                                    if let Some((_, body)) = m.get_best_body(vec![]) {
                                        got.lock().unwrap().push(body.clone());
                                    }
                                }
                                Some(_) => {}
                                None => break,
                            },
                        }
                    }
                    let _ = tokio::time::timeout(Duration::from_secs(2), client.send_end()).await;
                });
            })
        };
        let recipient = Recipient {
            jid,
            got,
            online,
            stop: Some(stop),
            thread: Some(thread),
        };
        let deadline = Instant::now() + WAIT;
        while recipient.online.load(Ordering::SeqCst) == 0 {
            assert!(
                Instant::now() < deadline,
                "{} not online after {WAIT:?}",
                recipient.jid
            );
            thread::sleep(Duration::from_millis(20));
        }
        recipient
    }

    /// Waits until the messages received satisfy `done`; returns them.
    fn wait_for(&self, what: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let got = self.got.lock().unwrap().clone();
            if done(&got) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} still waits for {what} after {WAIT:?}; it got {got:#?}",
                self.jid
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn received(&self) -> Vec<String> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Recipient {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------
// logalarm.

/// logalarm on `config`, stdin piped (for writing lines as they happen).
fn spawn_logalarm(config: &Path, env: &[(&str, &str)]) -> Running {
    Logalarm::new()
        .arg("-c")
        .arg(config)
        .envs(env.iter().copied())
        .stdin_piped()
        .start()
}

/// Closes stdin, waits for logalarm to exit 0, returns all its stderr lines.
fn finish(mut la: Running) -> Vec<String> {
    la.close_stdin();
    let done = la.finish();
    let seen = done.stderr_lines();
    assert_eq!(done.code(), Some(0), "logalarm exit; stderr: {seen:#?}");
    seen.to_vec()
}

fn numbered(prefix: &str, n: usize) -> String {
    format!("{prefix} {n}")
}

/// Every number 1..=`count` in `got` (as `PREFIX N`) at least once, first
/// seen in order; returns the numbers received more than once.
fn all_once_in_order(got: &[String], prefix: &str, count: usize) -> Vec<usize> {
    let mut seen = Vec::new();
    let mut duplicates = Vec::new();
    for line in got {
        let n: usize = line
            .strip_prefix(prefix)
            .and_then(|r| r.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected message {line:?} in {got:#?}"));
        if seen.contains(&n) {
            duplicates.push(n);
        } else {
            seen.push(n);
        }
    }
    let want: Vec<usize> = (1..=count).collect();
    assert_eq!(seen, want, "first arrivals, in order; all: {got:#?}");
    duplicates
}

// ---------------------------------------------------------------------------
// The tests.

/// The uWSGI docs' example (`xmpp:app@example.it;secret1;foo1@foo.it,foo2@foo.it`)
/// with the local domain, plus the port of the test's server: host is the
/// JID's domain (`localhost`), STARTTLS with the self-signed certificate
/// accepted (`tls=insecure`). Both recipients get each alarm, with the exact
/// text; lines that match no rule send nothing, a repeat dropped by
/// alarm-freq is counted in that message's next notification. The password
/// never shows.
#[test]
fn uwsgi_docs_example_reaches_both_recipients() {
    let mut server = Prosody::new("xmpp_docs_example");
    server.register("app", "secret1");
    server.register("foo1", "pw-foo1");
    server.register("foo2", "pw-foo2");
    server.start();
    let foo1 = Recipient::login("foo1", "pw-foo1", server.port);
    let foo2 = Recipient::login("foo2", "pw-foo2", server.port);
    let ini = common::write_file(
        &server.dir,
        "jabber.ini",
        &format!(
            "[uwsgi]\n\
             alarm = jabber xmpp:app@localhost;secret1;foo1@localhost,foo2@localhost;port={};tls=insecure\n\
             log-alarm = jabber ^TERRIBLE ALARM\n",
            server.port
        ),
    );
    // The repeat within alarm-freq (3 s) is dropped, and that message's next
    // notification says so (after another message made it pass again).
    let input = "starting\nTERRIBLE ALARM the world exploded !!!\nTERRIBLE ALARM the world exploded !!!\nall fine\nTERRIBLE ALARM <again> & \"quoted\" — ünïcode\nTERRIBLE ALARM the world exploded !!!\n";
    let out = Logalarm::new()
        .arg("-c")
        .arg(&ini)
        .timeout(WAIT)
        .run(input.as_bytes());
    let stderr = out.stderr_text();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), input, "pass-through");
    let want = [
        "TERRIBLE ALARM the world exploded !!!",
        "TERRIBLE ALARM <again> & \"quoted\" — ünïcode",
        "TERRIBLE ALARM the world exploded !!! (1 identical suppressed)",
    ];
    for who in [&foo1, &foo2] {
        assert_eq!(who.wait_for("the three alarms", |got| got.len() >= 3), want);
    }
    assert_eq!(
        common::summary(stderr.lines(), "jabber"),
        (3, 0, 1, 0),
        "{stderr}"
    );
    assert!(!stderr.contains("secret1"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "xmpp: connected to localhost:{} as app@localhost/",
            server.port
        )),
        "{stderr}"
    );

    let check = Logalarm::new().args(["check", "-c"]).arg(&ini).run(b"");
    let report = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{report}");
    assert!(
        report.contains(&format!(
            "xmpp:app@localhost;***;foo1@localhost,foo2@localhost;port={};tls=insecure",
            server.port
        )),
        "{report}"
    );
    assert!(!report.contains("secret1") && !check.stderr_text().contains("secret1"));
    // Nothing else arrived meanwhile (the lines that match no rule sent nothing).
    assert_eq!(foo1.received(), want);
    assert_eq!(foo2.received(), want);
}

/// Prosody stopped (SIGTERM: it ends the stream with `system-shutdown`) and
/// started again while alarms keep coming, 20 ms apart: every alarm reaches
/// the recipient, the ones fired during the outage after the reconnect.
#[test]
fn server_restart_mid_stream_loses_nothing() {
    outage_mid_stream("xmpp_restart", libc::SIGTERM, 20, Duration::from_millis(20));
}

/// Prosody killed (SIGKILL: no stream end, the connection just breaks) in
/// the middle of a burst of alarms, so that a message is on its way (written,
/// not yet confirmed) when it dies: that one is sent again after the
/// reconnect, and none is lost.
#[test]
fn server_killed_mid_burst_loses_nothing() {
    outage_mid_stream("xmpp_killed", libc::SIGKILL, 100, Duration::ZERO);
}

/// `3 * n` alarms, `pace` apart; the server goes down (by `signal`) after the
/// `n`th, once the recipient has some, and comes back after the `2n`th. All
/// arrive, first seen in order.
///
/// Exactly once is not promised: a message whose ping answer was lost with
/// the connection is sent again (at least once). Only the message in flight
/// when the server went down can be affected (the engine fires one at a time
/// and each waits for its answer), so at most one duplicate.
fn outage_mid_stream(test: &str, signal: i32, n: usize, pace: Duration) {
    let mut server = Prosody::new(test);
    server.register("app", "secret1");
    server.register("ops", "pw-ops");
    server.start();
    let ops = Recipient::login("ops", "pw-ops", server.port);
    let ini = common::write_file(
        &server.dir,
        "outage.ini",
        &format!(
            "[uwsgi]\n\
             alarm = jabber xmpp:app@localhost;env:LOGALARM_TEST_XMPP_PASSWORD;ops@localhost;host=127.0.0.1;port={};tls=insecure\n\
             log-alarm = jabber ^ALARM\n",
            server.port
        ),
    );
    let mut la = spawn_logalarm(&ini, &[("LOGALARM_TEST_XMPP_PASSWORD", "secret1")]);
    let mut write = |range: std::ops::RangeInclusive<usize>| {
        for k in range {
            la.write_stdin(format!("{}\n", numbered("ALARM", k)));
            thread::sleep(pace);
        }
    };
    write(1..=n);
    ops.wait_for("the first alarms", |got| got.len() >= n / 4);
    server.stop(signal);
    write(n + 1..=2 * n);
    server.start();
    write(2 * n + 1..=3 * n);
    let total = 3 * n;
    let got = ops.wait_for("all alarms", |got| {
        (1..=total).all(|k| got.contains(&numbered("ALARM", k)))
    });
    la.wait_for_stderr_line("the reconnect", |l| {
        l.contains("xmpp: connected to 127.0.0.1:") && l.contains(" unreachable")
    });
    let seen = finish(la);
    let duplicates = all_once_in_order(&got, "ALARM", total);
    assert!(
        duplicates.len() <= 1,
        "duplicates {duplicates:?} in {got:#?}"
    );
    let delivered = u64::try_from(total).expect("count");
    assert_eq!(
        common::summary(&seen, "jabber"),
        (delivered, 0, 0, 0),
        "{seen:#?}"
    );
    assert!(
        seen.iter().any(|l| l.contains(&format!(
            "xmpp: connection to 127.0.0.1:{} lost: ",
            server.port
        ))),
        "{seen:#?}"
    );
    assert!(!seen.iter().any(|l| l.contains("secret1")), "{seen:#?}");
}

/// No server when logalarm starts (plain TCP, `tls=no`), for longer than
/// the action timeout: the first alarm's attempt times out unsent (and is
/// withdrawn), the engine retries it, logalarm keeps reconnecting, and once
/// Prosody is up all alarms arrive, each once, in order. The server settings
/// are TOML keys here; the password comes from a file.
#[test]
fn server_down_at_start() {
    let mut server = Prosody::new("xmpp_down_at_start");
    server.register("app", "secret1");
    server.register("ops", "pw-ops");
    let password = server.dir.join("password");
    std::fs::write(&password, "secret1\n").expect("write password file");
    let toml = common::write_file(
        &server.dir,
        "down.toml",
        &format!(
            "[alarm.jabber]\n\
             action = \"xmpp:app@localhost/alarms;file:{};ops@localhost\"\n\
             host = \"127.0.0.1\"\n\
             port = {}\n\
             tls = \"no\"\n\
             timeout = \"1s\"\n\
             retry = {{ delay = \"200ms\", max_delay = \"500ms\" }}\n\
             [[rule]]\n\
             regex = \"^ALARM\"\n\
             alarms = [\"jabber\"]\n",
            password.display(),
            server.port
        ),
    );
    let mut la = spawn_logalarm(&toml, &[]);
    for n in 1..=5 {
        la.write_stdin(format!("{}\n", numbered("ALARM", n)));
    }
    la.wait_for_stderr_line("a failed connection attempt", |l| {
        l.contains(&format!(
            "xmpp: cannot reach 127.0.0.1:{}: cannot connect to 127.0.0.1:{}: ",
            server.port, server.port
        )) && l.contains("retrying")
    });
    la.wait_for_stderr_line("a timed-out attempt", |l| {
        l.contains("attempt 1 of 10 failed: xmpp: not sent within 1s (cannot reach 127.0.0.1:")
    });
    server.start();
    let ops = Recipient::login("ops", "pw-ops", server.port);
    let got = ops.wait_for("all 5 alarms", |got| got.len() >= 5);
    assert!(all_once_in_order(&got, "ALARM", 5).is_empty(), "{got:#?}");
    la.wait_for_stderr_line("the connection", |l| {
        l.contains("xmpp: connected to 127.0.0.1:") && l.contains(" as app@localhost/alarms after ")
    });
    let seen = finish(la);
    assert!(
        seen.iter().any(|l| l.contains("delivered at attempt ")),
        "{seen:#?}"
    );
    assert_eq!(common::summary(&seen, "jabber"), (5, 0, 0, 0), "{seen:#?}");
    // Each alarm once: a withdrawn attempt leaves nothing behind to arrive later.
    thread::sleep(Duration::from_millis(300));
    assert_eq!(ops.received().len(), 5, "{:#?}", ops.received());
}

/// A wrong password: each alarm fails at once with an error that says so
/// (not after a timeout, not a hang), and the password shows nowhere.
#[test]
fn wrong_password_fails_at_once_and_clearly() {
    let mut server = Prosody::new("xmpp_wrong_password");
    server.register("app", "secret1");
    server.register("ops", "pw-ops");
    server.start();
    let ini = common::write_file(
        &server.dir,
        "wrong.ini",
        &format!(
            "[uwsgi]\n\
             alarm = jabber xmpp:app@localhost;not-the-password;ops@localhost;host=127.0.0.1;port={};tls=insecure\n\
             log-alarm = jabber ^ALARM\n",
            server.port
        ),
    );
    let started = Instant::now();
    let out = Logalarm::new()
        .arg("-c")
        .arg(&ini)
        .timeout(WAIT)
        .run(b"ALARM 1\nALARM 2\n");
    let took = started.elapsed();
    let stderr = out.stderr_text();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(took < Duration::from_secs(5), "took {took:?}: {stderr}");
    let refused = "the server refused the login of app@localhost: not-authorized (wrong password or unknown account?)";
    assert_eq!(
        common::lines_starting_with(stderr.lines(), "[logalarm] error: alarm=jabber: xmpp: ").len(),
        1,
        "one error line for the refused login: {stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "[logalarm] error: alarm=jabber: xmpp: {refused}; 1 messages dropped; alarms fail at once until a login succeeds (tried every 60s)"
        )),
        "{stderr}"
    );
    // One failure per alarm (`… id=ID: delivery failed: …`), not retried.
    let failed = format!(": delivery failed: xmpp: {refused}; permanent, not retried");
    let failures = stderr
        .lines()
        .filter(|l| l.starts_with("[logalarm] warn: alarm=jabber: ") && l.ends_with(&failed))
        .count();
    assert_eq!(failures, 2, "{stderr}");
    assert_eq!(
        common::summary(stderr.lines(), "jabber"),
        (0, 2, 0, 0),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-password"), "{stderr}");
}

/// Without `tls=`, the server's certificate is verified: the self-signed one
/// is refused with an error naming the fix, and the alarm fails at once, for
/// good (an untrusted server does not become trusted by retrying), instead
/// of going out unverified.
#[test]
fn certificates_are_verified_by_default() {
    let mut server = Prosody::new("xmpp_certificate");
    server.register("app", "secret1");
    server.start();
    let toml = common::write_file(
        &server.dir,
        "verify.toml",
        &format!(
            "[alarm.jabber]\n\
             action = \"xmpp:app@localhost;secret1;ops@localhost;host=127.0.0.1;port={}\"\n\
             [[rule]]\n\
             regex = \"^ALARM\"\n\
             alarms = [\"jabber\"]\n",
            server.port
        ),
    );
    let started = Instant::now();
    let out = Logalarm::new()
        .arg("-c")
        .arg(&toml)
        .timeout(WAIT)
        .run(b"ALARM 1\n");
    let took = started.elapsed();
    let stderr = out.stderr_text();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(took < Duration::from_secs(5), "took {took:?}: {stderr}");
    let refused = format!(
        "xmpp: TLS with 127.0.0.1:{} for localhost: invalid peer certificate: ",
        server.port
    );
    let fix = "(the server's certificate is not trusted: fix it, or accept any with ;tls=insecure)";
    let failures: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(": delivery failed: ") && l.contains(&refused))
        .collect();
    assert_eq!(failures.len(), 1, "{stderr}");
    assert!(
        failures[0].ends_with(&format!("{fix}; permanent, not retried")),
        "{stderr}"
    );
    assert_eq!(
        common::summary(stderr.lines(), "jabber"),
        (0, 1, 0, 0),
        "{stderr}"
    );
    assert!(!stderr.contains("secret1"), "{stderr}");
}
