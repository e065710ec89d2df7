//! A config fuzzer: mutated INI and TOML configs through the built binary's
//! `logalarm check`, each with a deadline. Every case must end with exit 0
//! (a valid config) or 2 (config errors, said as such): never a panic (exit
//! 101, "panicked"), never killed by a signal (an allocation that aborted),
//! never a hang.
//!
//! Seeds are the shipped examples and configs written like the test suite's
//! (policies, multiline records, inputs, templates, plugins with secrets).
//! Each case applies one to four mutations: byte flips, numbers blown up
//! (`1e20`, `2^61`, `2^64`, `-1`, `nan`), periods blown up (`60years`,
//! `1e20s`), lines duplicated, removed or swapped, huge repetition counts in
//! regexes (`(?u)\w{5000}`, `{1000}{1000}`), template loops, extreme values
//! for known keys, and a cut at a random byte.
//!
//! The cases are seeded (`FUZZ_SEED`, default fixed), so a run is repeatable;
//! a failing case is kept in the target's temporary directory, named in the
//! failure, to reproduce with `logalarm check -c FILE`.
//!
//! - CI: `cargo test --test fuzz_config` runs 300 cases (`fuzz_config_briefly`).
//! - At length: `FUZZ_CASES=10000 cargo test --release --test fuzz_config --
//!   --ignored --nocapture` (`fuzz_config_at_length`, 10,000 by default),
//!   which prints the counts by outcome.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A case still running after this is a hang (a debug build takes about 2 s
/// for the slowest legitimate check: a template burning all its fuel).
const DEADLINE: Duration = Duration::from_secs(20);

/// Seeds written like the test suite's configs, beside the examples.
const SEEDS: &[(&str, &str)] = &[
    (
        "policies.toml",
        r#"alarm_freq = 3
queue_size = 1024
msg_size = 8192
drain_timeout = "10s"
regex_size_limit = 10485760

[alarm.ssh]
action = "cmd:cat"
key = "{{ caps.ip }}"
max_keys = 10000
threshold = { count = 5, window = "60s" }
cooldown = { max = 1, period = "1h" }
message = "{{ caps.ip }}: {{ count }} failed logins"
retry = { attempts = 3, deadline = "5m", delay = "1s", max_delay = "60s" }
timeout = "30s"

[alarm.errors]
action = "log:"
digest = { period = "60s", max_groups = 100 }
monitoring_markers = ["E2E-PROBE"]
escalate = { limit = 100, window = "5m", alarm = "pager" }

[alarm.pager]
action = "log:PAGE"
on_failure = "errors"

[[rule]]
regex = 'Failed password for (?:invalid user )?\S+ from (?P<ip>[0-9.]+) port'
alarm = "ssh"

[[rule]]
regex = "ERROR|FATAL"
alarms = ["errors"]
resolve = "recovered"

[[expect]]
regex = "heartbeat ok"
within = "5m"
alarm = "pager"
"#,
    ),
    (
        "inputs.toml",
        r#"state_dir = "/nonexistent/logalarm-fuzz"
poll_interval = "1s"
rotate_wait = "5s"
flush_timeout = "1s"
stall_after = "10m"
on_stall = "a"

[[input]]
file = ["/nonexistent/*.log"]
from = "beginning"
stall_after = "2m"
on_stall = "a"

[[input]]
socket = "/nonexistent/logalarm.sock"
type = "stream"
mode = "0660"
allow_uids = [0, 1000]

[run]
on_exit = ["a"]
last_lines = 50
restart = "on-failure"
restart_delay = "1s"
restart_max_delay = "60s"
max_restarts = 10

[[alarm_fd]]
alarm = "a"
fd = "/nonexistent/oom.fifo"
size = 8
message = "OUT OF MEMORY"

[alarm.a]
action = "log:"

[[rule]]
regex = "Traceback|Exception"
alarms = ["a"]
multiline = { preset = "python", max_lines = 200, max_bytes = 65536, timeout = "500ms" }
"#,
    ),
    (
        "plugins.toml",
        r#"[alarm.hook]
action = "http:https://hooks.example.com/alarm;timeout=4;conn_timeout=2"
auth_user = "logalarm"
auth_pass = "hunter2"
headers = { "Content-Type" = "application/json" }
body = '{"alarm": {{ alarm | tojson }}, "text": {{ line | tojson }}}'

[alarm.mail]
action = "smtp:smtp://127.0.0.1:25;mail_from=a@example.com;mail_to=b@example.com;timeout=4"

[alarm.jabber]
action = "xmpp:a@example.com;hunter2;b@example.com;port=5222;tls=insecure"

[alarm.run]
action = "cmd:cat"
env = { IP = "{{ caps.ip }}" }
pass_env = ["HOME"]

[alarm.sig]
action = "signal:HUP@1"

[[rule]]
regex = "(?P<ip>\\d+\\.\\d+\\.\\d+\\.\\d+) (?:ERR|WARN)"
alarms = ["hook", "mail", "jabber", "run", "sig"]
"#,
    ),
    (
        "uwsgi.ini",
        "[uwsgi]\n\
         processes = 4\n\
         set-placeholder = n=3\n\
         alarm = mailme cmd:mail -s 'alarm %(n)' admin@example.com\n\
         alarm = jabber xmpp:a@example.com;hunter2;b@example.com\n\
         alarm = hook curl:https://example.com/;auth_pass=hunter2;timeout=10\n\
         not-log-alarm = mailme DEBUG\n\
         log-alarm = mailme,jabber,hook HARAKIRI ON WORKER (\\d+)\n\
         alarm-freq = 3\n\
         alarm-msg-size = 8192\n\
         alarm-threshold = mailme 5 60s {{ caps[1] }}\n\
         alarm-cooldown = mailme 1 1h\n\
         alarm-digest = hook 60s\n\
         alarm-escalate = hook 100 5m mailme\n\
         alarm-expect = mailme 5m heartbeat\n\
         alarm-fd = mailme /nonexistent/fifo:8 OOM\n\
         queue-size = 64\n\
         drain-timeout = 10s\n\
         poll-interval = 1s\n\
         last-lines = 50\n\
         restart-delay = 1s\n\
         max-restarts = 3\n",
    ),
];

/// Values that numbers are replaced with.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1e20",
    "1e400",
    "nan",
    "inf",
    "0.0000000001",
    "4294967296",
    "2305843009213693952",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999",
    "1048577",
    "16777217",
];

/// Periods that periods are replaced with.
const PERIODS: &[&str] = &[
    "60years",
    "1e20s",
    "99999999999999d",
    "0s",
    "1ns",
    "366d",
    "-5m",
    "584942417355years",
];

/// Regex pieces inserted into a regex.
const REPEATS: &[&str] = &[
    r"(?u)\w{5000}",
    r"\w{1000}{1000}",
    "a{4294967295}",
    r"(?:\p{L}{100}){100}",
    "(((((((((((((((((((((((((((((a)))))))))))))))))))))))))))))",
    "[^a]{2000}",
];

/// Template pieces that loop or recurse.
const TEMPLATES: &[&str] = &[
    "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
    "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "{{ 'x' * 100000000 }}",
    "{% for i in range(100000) %}{{ line }}{% endfor %}",
    "{% set a = 'x' * 1000 %}{% for i in range(100000) %}{{ a }}{% endfor %}",
    "{% set a = 'x' * 100000000 %}{% for i in range(100000) %}{% set b = a ~ a %}{% endfor %}",
];

/// Whole lines with extreme values of keys each syntax knows.
const TOML_LINES: &[&str] = &[
    "queue_size = 2305843009213693952",
    "msg_size = 18446744073709551615",
    "alarm_freq = 1e20",
    "drain_timeout = 1e300",
    "poll_interval = 0",
    "regex_size_limit = 1",
    "max_keys = 18446744073709551615",
    "threshold = { count = 4294967295, window = \"60years\" }",
    "escalate = { limit = 0, window = \"60years\", alarm = \"pager\" }",
    "digest = { period = \"1e20s\", max_groups = 18446744073709551615 }",
    "cooldown = { max = 4294967295, period = \"99999999999999d\" }",
    "retry = { attempts = 4294967295, deadline = \"1e20s\", delay = \"1ns\", max_delay = \"60years\" }",
    "timeout = 1e20",
    "message = \"{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}\"",
];

const INI_LINES: &[&str] = &[
    "queue-size = 2305843009213693952",
    "alarm-msg-size = 18446744073709551615",
    "alarm-freq = 1e20",
    "drain-timeout = 584942417355years",
    "poll-interval = 0",
    "regex-size-limit = 1",
    "alarm-threshold = mailme 4294967295 60years",
    "alarm-escalate = mailme 0 60years jabber",
    "alarm-digest = mailme 1e20",
    "last-lines = 18446744073709551615",
    "alarm-fd = mailme /nonexistent:18446744073709551615 X",
    "log-alarm = mailme (?u)\\w{5000}",
    "max-restarts = 99999999999999999999",
];

/// One case: the config's text and its extension.
struct Case {
    text: Vec<u8>,
    ini: bool,
}

/// The seeds: the examples that are configs, and [`SEEDS`].
fn seeds() -> Vec<Case> {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut seeds = Vec::new();
    for name in ["alarms.ini", "alarms.toml", "policies.toml", "run.toml"] {
        let text = fs::read(examples.join(name)).expect("read an example");
        seeds.push(Case {
            text,
            ini: name.ends_with(".ini"),
        });
    }
    for (name, text) in SEEDS {
        seeds.push(Case {
            text: text.as_bytes().to_vec(),
            ini: name.ends_with(".ini"),
        });
    }
    seeds
}

/// The lines of `text`, each with its `\n`.
fn lines(text: &[u8]) -> Vec<Vec<u8>> {
    text.split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

fn pick<'a>(rng: &mut fastrand::Rng, list: &[&'a str]) -> &'a str {
    list[rng.usize(..list.len())]
}

/// Replaces a random run of bytes matching `is` (digits, or a period like
/// `60s`) with `with`.
fn replace_run(
    rng: &mut fastrand::Rng,
    text: &mut Vec<u8>,
    is: fn(&[u8], usize) -> Option<usize>,
    with: &str,
) {
    let starts: Vec<(usize, usize)> = (0..text.len())
        .filter(|&i| i == 0 || !text[i - 1].is_ascii_alphanumeric())
        .filter_map(|i| is(text, i).map(|len| (i, len)))
        .collect();
    if starts.is_empty() {
        return;
    }
    let (at, len) = starts[rng.usize(..starts.len())];
    text.splice(at..at + len, with.bytes());
}

/// A number at `i`: its length.
fn number_at(text: &[u8], i: usize) -> Option<usize> {
    let len = text[i..].iter().take_while(|b| b.is_ascii_digit()).count();
    (len > 0).then_some(len)
}

/// A period at `i` (`60s`, `5m`, `1h`, `500ms`): its length.
fn period_at(text: &[u8], i: usize) -> Option<usize> {
    let digits = number_at(text, i)?;
    let unit = text[i + digits..]
        .iter()
        .take_while(|b| b.is_ascii_alphabetic())
        .count();
    (1..=7).contains(&unit).then_some(digits + unit)
}

/// Applies one random mutation to `case`.
fn mutate(rng: &mut fastrand::Rng, case: &mut Case) {
    let text = &mut case.text;
    match rng.u8(..11) {
        // Byte flips.
        0 => {
            for _ in 0..rng.usize(1..4) {
                if !text.is_empty() {
                    let at = rng.usize(..text.len());
                    text[at] = match rng.u8(..4) {
                        0 => rng.u8(..),
                        1 => {
                            let syntax = b"\"'=[]{};:,.%$@(\\\n#";
                            syntax[rng.usize(..syntax.len())]
                        }
                        _ => text[at] ^ (1 << rng.u8(..8)),
                    };
                }
            }
        }
        1 => {
            let with = pick(rng, NUMBERS);
            replace_run(rng, text, number_at, with);
        }
        2 => {
            let with = pick(rng, PERIODS);
            replace_run(rng, text, period_at, with);
        }
        // Lines duplicated, removed, swapped, or repeated many times.
        3..=5 => {
            let mut ls = lines(text);
            if !ls.is_empty() {
                let i = rng.usize(..ls.len());
                match rng.u8(..4) {
                    0 => {
                        let l = ls[i].clone();
                        ls.insert(i, l);
                    }
                    1 => {
                        ls.remove(i);
                    }
                    2 => {
                        let j = rng.usize(..ls.len());
                        ls.swap(i, j);
                    }
                    _ => {
                        let l = ls[i].clone();
                        for _ in 0..rng.usize(10..500) {
                            ls.insert(i, l.clone());
                        }
                    }
                }
                *text = ls.concat();
            }
        }
        // A huge repetition inside a regex value.
        6 => {
            let mut ls = lines(text);
            let regexes: Vec<usize> = (0..ls.len())
                .filter(|&i| {
                    let l = String::from_utf8_lossy(&ls[i]);
                    l.contains("regex") || l.contains("log-alarm") || l.contains("resolve")
                })
                .collect();
            if !regexes.is_empty() {
                let i = regexes[rng.usize(..regexes.len())];
                let l = &mut ls[i];
                let at = l
                    .iter()
                    .rposition(|&b| b == b'"' || b == b'\'')
                    .unwrap_or(l.len().saturating_sub(1));
                let piece = pick(rng, REPEATS).replace('\\', if case.ini { "\\" } else { "\\\\" });
                l.splice(at..at, piece.bytes());
                *text = ls.concat();
            }
        }
        // A template that loops, in place of a template or as a message.
        7 => {
            let piece = pick(rng, TEMPLATES);
            let as_text = String::from_utf8_lossy(text).into_owned();
            let replaced = if as_text.contains("{{") && rng.bool() {
                as_text.replacen("{{", &format!("{piece}{{{{"), 1)
            } else {
                as_text.replacen("action = ", &format!("message = \"{piece}\"\naction = "), 1)
            };
            *text = replaced.into_bytes();
        }
        // An extreme value of a known key.
        8 | 9 => {
            let line = if case.ini {
                pick(rng, INI_LINES)
            } else {
                pick(rng, TOML_LINES)
            };
            let mut ls = lines(text);
            let at = if ls.is_empty() {
                0
            } else {
                rng.usize(1..=ls.len())
            };
            ls.insert(at, format!("{line}\n").into_bytes());
            *text = ls.concat();
        }
        // Cut at a random byte.
        _ => {
            if !text.is_empty() {
                let at = rng.usize(..text.len());
                text.truncate(at);
            }
        }
    }
}

/// How one case ended.
#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy, PartialOrd, Ord)]
enum Outcome {
    Valid,
    ConfigError,
    OtherExit,
    Panic,
    Signal,
    Hang,
}

/// Runs `logalarm check -c FILE`; the outcome and how long it took.
fn run_check(file: &Path, stderr: &Path) -> (Outcome, Duration) {
    let start = Instant::now();
    let err = fs::File::create(stderr).expect("create a stderr file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_logalarm"))
        .args(["check", "-c"])
        .arg(file)
        .current_dir(file.parent().expect("a directory"))
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("start logalarm");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let took = start.elapsed();
    let Some(status) = status else {
        return (Outcome::Hang, took);
    };
    let text = fs::read(stderr).unwrap_or_default();
    let panicked = text.windows(8).any(|w| w == b"panicked");
    let outcome = match status.code() {
        Some(101) => Outcome::Panic,
        _ if panicked => Outcome::Panic,
        Some(0) => Outcome::Valid,
        Some(2) => Outcome::ConfigError,
        Some(_) => Outcome::OtherExit,
        None => Outcome::Signal,
    };
    (outcome, took)
}

/// Runs `cases` seeded cases on every core; panics naming the kept files
/// of any case that panicked, died of a signal or hung.
fn fuzz(name: &str, cases: usize) {
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    let dir = common::scratch(name);
    let seeds = seeds();
    let next = AtomicUsize::new(0);
    let counts = Mutex::new(std::collections::BTreeMap::<Outcome, usize>::new());
    let failures = Mutex::new(Vec::<String>::new());
    let slowest = Mutex::new((Duration::ZERO, PathBuf::new()));
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let started = Instant::now();
    std::thread::scope(|s| {
        for worker in 0..workers {
            let (dir, seeds, next, counts, failures, slowest) =
                (&dir, &seeds, &next, &counts, &failures, &slowest);
            s.spawn(move || {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= cases {
                        break;
                    }
                    // Each case has its own generator: the same case whatever the thread.
                    let mut rng = fastrand::Rng::with_seed(
                        seed.wrapping_mul(1_000_003).wrapping_add(n as u64),
                    );
                    let base = &seeds[rng.usize(..seeds.len())];
                    let mut case = Case {
                        text: base.text.clone(),
                        ini: base.ini,
                    };
                    for _ in 0..rng.usize(1..=4) {
                        mutate(&mut rng, &mut case);
                    }
                    let ext = if case.ini { "ini" } else { "toml" };
                    let file = dir.join(format!("w{worker}.{ext}"));
                    fs::write(&file, &case.text).expect("write the case");
                    let (outcome, took) = run_check(&file, &dir.join(format!("w{worker}.err")));
                    *counts.lock().unwrap().entry(outcome).or_default() += 1;
                    {
                        let mut slow = slowest.lock().unwrap();
                        if took > slow.0 {
                            let keep = dir.join(format!("slowest.{ext}"));
                            let _ = fs::copy(&file, &keep);
                            *slow = (took, keep);
                        }
                    }
                    if matches!(outcome, Outcome::Panic | Outcome::Signal | Outcome::Hang) {
                        let keep = dir.join(format!("case-{n}-{outcome:?}.{ext}"));
                        let _ = fs::copy(&file, &keep);
                        let _ = fs::copy(
                            dir.join(format!("w{worker}.err")),
                            dir.join(format!("case-{n}-{outcome:?}.err")),
                        );
                        failures.lock().unwrap().push(format!(
                            "case {n} ({outcome:?}, {took:?}): {}",
                            keep.display()
                        ));
                    }
                }
            });
        }
    });
    let counts = counts.into_inner().unwrap();
    let slowest = slowest.into_inner().unwrap();
    println!(
        "fuzz_config: {cases} cases (seed {seed}) in {:.1?} on {workers} threads: {counts:?}; slowest {:.2?} ({})",
        started.elapsed(),
        slowest.0,
        slowest.1.display()
    );
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} cases panicked, died of a signal or hung:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(counts.values().sum::<usize>(), cases);
}

#[test]
fn fuzz_config_briefly() {
    fuzz("fuzz_config_briefly", 300);
}

#[test]
#[ignore = "10,000 cases: FUZZ_CASES=10000 cargo test --release --test fuzz_config -- --ignored --nocapture"]
fn fuzz_config_at_length() {
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    fuzz("fuzz_config_at_length", cases);
}
