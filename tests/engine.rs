//! The engine in-process, as mini-redis's tests run its server: a `Config`
//! parsed from TOML, `Engine::build`, lines fed through a unix datagram socket
//! input in a temp directory, the `Shutdown` token triggered by the test, and
//! the returned `Summary`'s counters asserted exactly. Besides the binary's
//! tests: no process, no signal, no log parsing.
//!
//! Each test waits for what it needs through the engine's live `Counters`
//! (deliveries, a command having started) before it stops the engine: a line
//! read after the stop is never alarmed, so stopping early would make the
//! counts a race.

use logalarm::config::Config;
use logalarm::dispatch::AlarmCounts;
use logalarm::engine::{BuildError, Counters, Engine, Mode, Shutdown, Summary};
use logalarm::input::events::InputCounts;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The longest any wait here may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// A fresh directory for one test: short, as a socket path must fit in 107 bytes.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("la-engine-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// `path` as one `/bin/sh` word.
fn quoted(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// Parses `text` as the TOML config `dir/name`.
fn config(dir: &Path, name: &str, text: &str) -> Config {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    logalarm::config::toml::parse(&path, text).unwrap_or_else(|e| panic!("config: {e:?}"))
}

/// A config (its commands one at a time, so their output is in order) with
/// one datagram socket input at `socket` and one `cmd:` alarm
/// `c` appending each message to `out`, fired by lines starting with ALARM;
/// `extra` goes at the top level.
fn socket_config(dir: &Path, socket: &Path, out: &Path, command_tail: &str, extra: &str) -> Config {
    let text = format!(
        r#"passthrough = false
drain_timeout = "30s"
concurrency = 1
{extra}

[[input]]
socket = "{socket}"

[alarm.c]
action = "cmd:cat >> {out}{command_tail}"

[[rule]]
regex = "^ALARM"
alarm = "c"
"#,
        socket = socket.display(),
        out = quoted(out),
    );
    config(dir, "engine.toml", &text)
}

/// Sends each of `lines` as one datagram to `socket`.
fn send(socket: &Path, lines: &[&str]) {
    let client = UnixDatagram::unbound().expect("client socket");
    for line in lines {
        client
            .send_to(format!("{line}\n").as_bytes(), socket)
            .expect("send a datagram");
    }
}

/// Waits until `done` holds; fails the test after [`PATIENCE`].
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "still waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Alarm `name`'s live counters.
fn live(counters: &Counters, name: &str) -> AlarmCounts {
    counters.alarm(name).expect("the alarm exists")
}

/// Runs `engine` on a task of its own; returns the token and the summary's handle.
fn start(engine: Engine) -> (Shutdown, tokio::task::JoinHandle<Summary>) {
    let shutdown = Shutdown::new();
    let run = tokio::spawn(engine.run(shutdown.clone()));
    (shutdown, run)
}

/// The lines of `path`.
fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_matching_lines_are_three_notifications_delivered() {
    let dir = scratch("three");
    let (socket, out) = (dir.join("in.sock"), dir.join("out.txt"));
    let engine =
        Engine::build(&socket_config(&dir, &socket, &out, "", ""), Mode::Inputs).expect("build");
    let counters = engine.counters();
    let (shutdown, run) = start(engine);
    send(
        &socket,
        &[
            "ALARM one",
            "nothing here",
            "ALARM two",
            "ALARM three",
            "fine",
        ],
    );
    wait_until("3 deliveries", || live(&counters, "c").delivered == 3).await;
    shutdown.trigger("test");
    let summary = run.await.expect("the run");
    assert_eq!(
        *summary.alarm("c").expect("alarm c"),
        AlarmCounts {
            enqueued: 3,
            delivered: 3,
            ..AlarmCounts::default()
        }
    );
    let input = format!("socket {}", socket.display());
    assert_eq!(summary.input(&input), Some(&InputCounts::default()));
    assert_eq!(summary.stopped_by.as_deref(), Some("test"));
    assert!(!summary.failed);
    assert_eq!(summary.exit_code(), 0);
    assert_eq!(lines_of(&out), ["ALARM one", "ALARM two", "ALARM three"]);
    assert!(!socket.exists(), "the socket file is removed at the end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_queue_behind_a_slow_command_counts_its_overflow() {
    let dir = scratch("overflow");
    let (socket, out) = (dir.join("in.sock"), dir.join("out.txt"));
    // One notification waits at most; each delivery takes three seconds.
    let config = socket_config(&dir, &socket, &out, "; sleep 3", "queue_size = 1");
    let engine = Engine::build(&config, Mode::Inputs).expect("build");
    let counters = engine.counters();
    let (shutdown, run) = start(engine);
    send(&socket, &["ALARM first"]);
    // The worker is now in the command's sleep: its queue holds one
    // notification, and the other three are dropped.
    wait_until("the first delivery to start", || lines_of(&out).len() == 1).await;
    send(&socket, &["ALARM 2", "ALARM 3", "ALARM 4", "ALARM 5"]);
    wait_until("the drops", || live(&counters, "c").overflow == 3).await;
    shutdown.trigger("test");
    let summary = run.await.expect("the run");
    assert_eq!(
        *summary.alarm("c").expect("alarm c"),
        AlarmCounts {
            enqueued: 2,
            delivered: 2,
            overflow: 3,
            ..AlarmCounts::default()
        }
    );
    assert_eq!(summary.exit_code(), 0, "drops are counted, not a failure");
    assert_eq!(lines_of(&out), ["ALARM first", "ALARM 2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_engine_is_built_beside_a_running_one() {
    let dir = scratch("beside");
    let (socket_a, out_a) = (dir.join("a.sock"), dir.join("a.txt"));
    let first = Engine::build(
        &socket_config(&dir, &socket_a, &out_a, "", ""),
        Mode::Inputs,
    )
    .expect("build the first");
    let first_counters = first.counters();
    let (first_stop, first_run) = start(first);
    send(&socket_a, &["ALARM before"]);
    wait_until("the first engine's delivery", || {
        live(&first_counters, "c").delivered == 1
    })
    .await;

    // A changed config (another socket, another output, a 0 s alarm-freq) is
    // built while the first engine runs; the first is untouched.
    let (socket_b, out_b) = (dir.join("b.sock"), dir.join("b.txt"));
    let changed = socket_config(&dir, &socket_b, &out_b, "", "alarm_freq = 0");
    let second = Engine::build(&changed, Mode::Inputs).expect("build beside the first");
    // What cannot be built twice side by side is refused, not taken over: the
    // socket the first engine serves (a reload carries it over instead).
    let same_socket = socket_config(&dir, &socket_a, &out_b, "", "");
    match Engine::build(&same_socket, Mode::Inputs) {
        Err(BuildError::Input(e)) => assert!(e.contains("a.sock"), "{e}"),
        Err(e) => panic!("not an input error: {e}"),
        Ok(_) => panic!("a second engine bound a socket the first serves"),
    }
    // A broken config fails to build, and the first engine goes on.
    let broken = config(&dir, "broken.toml", "[alarm.x]\naction = \"nope:\"\n");
    assert!(matches!(
        Engine::build(&broken, Mode::Inputs),
        Err(BuildError::Config(_))
    ));
    send(&socket_a, &["ALARM still the first"]);
    wait_until("the first engine's second delivery", || {
        live(&first_counters, "c").delivered == 2
    })
    .await;

    // The swap a reload makes: stop the first, run the second.
    first_stop.trigger("reload");
    let first_summary = first_run.await.expect("the first run");
    assert_eq!(first_summary.alarm("c").map(|c| c.delivered), Some(2));
    assert_eq!(first_summary.stopped_by.as_deref(), Some("reload"));
    let second_counters = second.counters();
    let (second_stop, second_run) = start(second);
    // alarm_freq = 0 in the new config: the same message twice is two alarms.
    send(&socket_b, &["ALARM after", "ALARM after"]);
    wait_until("the second engine's deliveries", || {
        live(&second_counters, "c").delivered == 2
    })
    .await;
    second_stop.trigger("test");
    let second_summary = second_run.await.expect("the second run");
    assert_eq!(second_summary.stopped_by.as_deref(), Some("test"));
    assert_eq!(
        *second_summary.alarm("c").expect("alarm c"),
        AlarmCounts {
            enqueued: 2,
            delivered: 2,
            ..AlarmCounts::default()
        }
    );
    assert_eq!(lines_of(&out_a), ["ALARM before", "ALARM still the first"]);
    assert_eq!(lines_of(&out_b), ["ALARM after", "ALARM after"]);
}

/// A config with no input and one `cmd:` alarm `c` appending to `out`, for a
/// wrapped process.
fn wrap_config(dir: &Path, out: &Path) -> Config {
    let text = format!(
        r#"passthrough = false
concurrency = 1

[alarm.c]
action = "cmd:cat >> {out}"

[[rule]]
regex = "^ALARM"
alarm = "c"
"#,
        out = quoted(out),
    );
    config(dir, "wrap.toml", &text)
}

/// `sh -c SCRIPT` as a wrapped command.
fn sh(script: &str) -> Mode {
    Mode::Wrap(vec!["sh".into(), "-c".into(), script.into()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrapped_process_ends_the_run_with_its_exit_code() {
    let dir = scratch("wrap");
    let out = dir.join("out.txt");
    let engine = Engine::build(
        &wrap_config(&dir, &out),
        sh("echo ALARM from the process; echo ok; exit 3"),
    )
    .expect("build");
    let summary = engine.run(Shutdown::new()).await;
    assert_eq!(summary.exit, Some(3));
    assert_eq!(summary.exit_code(), 3);
    assert_eq!(summary.stopped_by, None);
    assert_eq!(
        *summary.alarm("c").expect("alarm c"),
        AlarmCounts {
            enqueued: 1,
            delivered: 1,
            ..AlarmCounts::default()
        }
    );
    assert_eq!(summary.input("process"), Some(&InputCounts::default()));
    assert_eq!(lines_of(&out), ["ALARM from the process"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_stops_a_wrapped_process_with_sigterm() {
    let dir = scratch("wrapstop");
    let (out, started) = (dir.join("out.txt"), dir.join("started"));
    let script = format!("echo ALARM up; touch {}; exec sleep 60", quoted(&started));
    let engine = Engine::build(&wrap_config(&dir, &out), sh(&script)).expect("build");
    let counters = engine.counters();
    let (shutdown, run) = start(engine);
    wait_until("the process to start", || {
        started.exists() && live(&counters, "c").delivered == 1
    })
    .await;
    shutdown.trigger("test");
    let summary = tokio::time::timeout(PATIENCE, run)
        .await
        .expect("the run ends with the process")
        .expect("the run");
    // 128 + SIGTERM's 15, as a shell reports it.
    assert_eq!(summary.exit, Some(143));
    assert_eq!(summary.stopped_by.as_deref(), Some("test"));
    assert_eq!(summary.alarm("c").map(|c| c.delivered), Some(1));
}
