//! The alarm policy stage through the real binary: threshold per key (on the
//! OpenSSH corpus, against its CSV ground truth), cooldown, digest over a
//! 100,000-line burst, escalation, expected lines, silent inputs, recovery
//! lines, bounded keys, and what `logalarm test` shows of each decision.
//!
//! Windows and periods are tested on a simulated clock: `logalarm test`
//! replays a log on the times written in its lines, so an hour of log is an
//! hour of policy time. Live runs use periods far longer than the run (the
//! whole burst falls in one window) or poll for the due notification with a
//! deadline.

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::io::Write;
use std::path::Path;

use common::{Logalarm, PATIENCE, sh_quote};

const SSH_RULE: &str =
    r"sshd\[\d+\]: Failed password for (?:invalid user )?.*? from (?P<ip>[0-9.]+) port";

fn ssh_log() -> std::path::PathBuf {
    common::corpus().join("OpenSSH/OpenSSH_2k.log")
}

/// Seconds since the year's start of a CSV row's `Date Day Time`.
fn csv_seconds(month: &str, day: &str, time: &str) -> i64 {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = MONTHS.iter().position(|x| *x == month).expect("month") as i64;
    let d: i64 = day.parse().expect("day");
    let hms: Vec<i64> = time.split(':').map(|x| x.parse().expect("time")).collect();
    // Months as 31 days: only differences within one month matter here.
    ((m * 31 + d) * 24 + hms[0]) * 3600 + hms[1] * 60 + hms[2]
}

/// The failed logins of the OpenSSH corpus from its CSV: (seconds, ip), in order.
fn failed_logins() -> Vec<(i64, String)> {
    csv::Reader::from_path(common::corpus().join("OpenSSH/OpenSSH_2k.log_structured.csv"))
        .expect("read the OpenSSH CSV")
        .into_records()
        .map(|r| r.expect("an OpenSSH CSV record"))
        .filter(|r| &r[7] == "E9" || &r[7] == "E10")
        .map(|r| {
            let ip = r[6]
                .split(" from ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .expect("ip")
                .to_owned();
            (csv_seconds(&r[1], &r[2], &r[3]), ip)
        })
        .collect()
}

/// fail2ban's maxretry within findtime, computed independently: per ip, the
/// events whose last `count` span at most `window` seconds fire, and the ip's
/// history starts again. Returns the firings per ip.
fn expected_threshold(
    events: &[(i64, String)],
    count: usize,
    window: i64,
) -> BTreeMap<String, u64> {
    let mut seen: BTreeMap<&str, VecDeque<i64>> = BTreeMap::new();
    let mut fired = BTreeMap::new();
    for (t, ip) in events {
        let q = seen.entry(ip).or_default();
        q.push_back(*t);
        while q.len() > count {
            q.pop_front();
        }
        if q.len() == count && t - q[0] <= window {
            q.clear();
            *fired.entry(ip.clone()).or_insert(0) += 1;
        }
    }
    fired
}

/// Runs logalarm over `input` (stdin, pass-through off) with the TOML config
/// `toml`, in which `OUT` stands for a file its `cmd:` alarms append to;
/// returns what that file holds and logalarm's stderr. The run must succeed.
fn run_alarms(name: &str, toml: &str, input: &[u8]) -> (String, String) {
    let dir = common::scratch(name);
    let out_file = dir.join("alarms.txt");
    let config = common::write_file(
        &dir,
        "config.toml",
        &toml.replace("OUT", &sh_quote(&out_file)),
    );
    let out = Logalarm::new()
        .arg("-c")
        .arg(&config)
        .arg("--no-passthrough")
        .run(input);
    let stderr = out.stderr_text();
    assert!(out.status.success(), "{stderr}");
    (fs::read_to_string(&out_file).unwrap_or_default(), stderr)
}

fn test_report(config: &Path, log: &Path) -> String {
    let out = Logalarm::new()
        .arg("test")
        .arg("--print-all-matched")
        .arg("-c")
        .arg(config)
        .arg(log)
        .output();
    assert!(out.status.success(), "{}", out.stderr_text());
    String::from_utf8(out.stdout).expect("utf-8 report")
}

#[test]
fn threshold_per_ip_on_the_openssh_corpus_equals_the_csv() {
    let dir = common::scratch("policy-threshold-ssh");
    let config = common::write_file(
        &dir,
        "ssh.toml",
        &format!(
            r#"alarm_freq = 0
[alarm.bruteforce]
action = "log:"
key = "{{{{ caps.ip }}}}"
threshold = {{ count = 5, window = "60s" }}
[[rule]]
regex = '{SSH_RULE}'
alarm = "bruteforce"
"#
        ),
    );
    // On the lines' own clock: the CSV's times decide the windows.
    let report = test_report(&config, &ssh_log());
    let mut sent: BTreeMap<String, u64> = BTreeMap::new();
    let mut held = 0;
    for line in report.lines() {
        if let Some(rest) = line.strip_prefix("    bruteforce: sent [key ") {
            *sent
                .entry(rest.trim_end_matches(']').to_owned())
                .or_insert(0) += 1;
        } else if line.starts_with("    bruteforce: held by threshold") {
            held += 1;
        }
    }
    let logins = failed_logins();
    assert_eq!(logins.len(), 518);
    let expected = expected_threshold(&logins, 5, 60);
    assert_eq!(sent, expected);
    let fired: u64 = expected.values().sum();
    assert_eq!(held + fired, 518);
    assert!(
        report.contains("Alarms (policies on the lines' own clock):"),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "  bruteforce: 518 events -> {fired} notifications ({held} held back by threshold or cooldown)\n"
        )),
        "{report}"
    );

    // Live, the 2000 lines arrive within one window: every 5th failure of an
    // ip fires, with that line as the message.
    let live = r#"alarm_freq = 0
[alarm.bruteforce]
action = "cmd:cat >> OUT"
key = "{{ caps.ip }}"
threshold = { count = 5, window = "1h" }
[[rule]]
regex = 'RULE'
alarm = "bruteforce"
"#
    .replace("RULE", SSH_RULE);
    let log = fs::read(ssh_log()).expect("read the log");
    let (alarms, stderr) = run_alarms("policy-threshold-ssh-live", &live, &log);
    let mut per_ip: BTreeMap<String, u64> = BTreeMap::new();
    let mut all: BTreeMap<String, u64> = BTreeMap::new();
    for (_, ip) in &logins {
        *all.entry(ip.clone()).or_insert(0) += 1;
    }
    for line in alarms.lines() {
        let ip = line
            .split(" from ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .expect("ip");
        *per_ip.entry(ip.to_owned()).or_insert(0) += 1;
    }
    let expected: BTreeMap<String, u64> = all
        .into_iter()
        .filter(|(_, n)| *n >= 5)
        .map(|(ip, n)| (ip, n / 5))
        .collect();
    assert_eq!(per_ip, expected);
    let held_live = 518 - expected.values().sum::<u64>();
    assert!(
        stderr.contains(&format!("{held_live} held back by threshold or cooldown")),
        "{stderr}"
    );
}

#[test]
fn cooldown_lets_max_per_key_through_and_reports_the_rest() {
    let input: String = (0..10)
        .map(|i| format!("OOM on web{} #{i}\n", i % 2))
        .collect();
    let (alarms, stderr) = run_alarms(
        "policy-cooldown",
        r#"alarm_freq = 0
[alarm.oom]
action = "cmd:(printf '%s ' \"$LOGALARM_SUPPRESSED\"; cat) >> OUT"
cooldown = { max = 2, period = "1h", key = "{{ caps.host }}" }
[[rule]]
regex = 'OOM on (?P<host>\w+)'
alarm = "oom"
"#,
        input.as_bytes(),
    );
    let mut got: Vec<&str> = alarms.lines().collect();
    got.sort_unstable();
    assert_eq!(
        got,
        [
            "0 OOM on web0 #0",
            "0 OOM on web0 #2",
            "0 OOM on web1 #1",
            "0 OOM on web1 #3"
        ]
    );
    assert!(
        stderr.contains("6 held back by threshold or cooldown"),
        "{stderr}"
    );
}

#[test]
fn cooldown_count_goes_out_with_the_next_notification() {
    // On the lines' clock: 1 per minute per key; the held ones are counted
    // and carried by the key's next notification.
    let dir = common::scratch("policy-cooldown-count");
    let config = common::write_file(
        &dir,
        "c.toml",
        r#"alarm_freq = 0
[alarm.disk]
action = "log:"
cooldown = { max = 1, period = "1m" }
[[rule]]
regex = 'disk full'
alarm = "disk"
"#,
    );
    let log = common::write_file(
        &dir,
        "disk.log",
        "2024-05-01T12:00:00Z disk full a\n\
         2024-05-01T12:00:10Z disk full b\n\
         2024-05-01T12:00:20Z disk full c\n\
         2024-05-01T12:01:00Z disk full d\n",
    );
    let report = test_report(&config, &log);
    let decisions: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("    disk:"))
        .collect();
    assert_eq!(
        decisions,
        [
            "    disk: sent",
            "    disk: suppressed by cooldown (1 per 1m sent; 1 suppressed)",
            "    disk: suppressed by cooldown (1 per 1m sent; 2 suppressed)",
            "    disk: sent",
        ]
    );
}

#[test]
fn escalation_pages_once_per_window_with_the_count() {
    let input: String = (0..250).map(|i| format!("ERROR number {i}\n")).collect();
    let (paged, _) = run_alarms(
        "policy-escalation",
        r#"alarm_freq = 0
[alarm.errors]
action = "log:"
escalate = { limit = 100, window = "1h", alarm = "pager" }
[alarm.pager]
action = "cmd:(printf '%s|' \"$LOGALARM_RULE\"; cat) >> OUT"
[[rule]]
regex = 'ERROR'
alarm = "errors"
"#,
        input.as_bytes(),
    );
    assert_eq!(
        paged,
        "errors|ESCALATION pager: alarm errors: 101 events within 1h (limit 100)\n"
    );
}

#[test]
fn resolve_sends_one_recovery_after_firing() {
    let (alarms, _) = run_alarms(
        "policy-resolve",
        r#"alarm_freq = 0
[alarm.db]
action = "cmd:cat >> OUT"
[[rule]]
regex = 'db down'
alarm = "db"
resolve = 'db up'
"#,
        b"db up (nothing fired yet)\ndb down 1\ndb down 2\ndb up again\ndb up twice\ndb down 3\ndb up last\n",
    );
    assert_eq!(
        alarms,
        "db down 1\ndb down 2\nRESOLVED db: db up again\ndb down 3\nRESOLVED db: db up last\n"
    );
}

#[test]
fn expected_line_absent_and_back_on_the_lines_clock() {
    let dir = common::scratch("policy-expect");
    let config = common::write_file(
        &dir,
        "x.toml",
        r#"[alarm.pager]
action = "log:"
[[expect]]
regex = "heartbeat ok"
within = "5m"
alarm = "pager"
"#,
    );
    let log = common::write_file(
        &dir,
        "hb.log",
        "2024-05-01T12:00:00Z heartbeat ok\n\
         2024-05-01T12:04:00Z heartbeat ok\n\
         2024-05-01T12:20:00Z heartbeat ok\n\
         2024-05-01T12:21:00Z heartbeat ok\n",
    );
    let report = test_report(&config, &log);
    let made: Vec<&str> = report.lines().filter(|l| l.starts_with("at ")).collect();
    assert_eq!(
        made,
        [
            "at 2024-05-01T12:09:00.000Z: absent -> pager: expected line /heartbeat ok/ not seen for 5m",
            "at 2024-05-01T12:20:00.000Z: resolved -> pager: expected line /heartbeat ok/ seen again after 16m",
        ]
    );
}

#[test]
fn expected_line_absent_live_then_resolved() {
    let dir = common::scratch("policy-expect-live");
    let out_file = dir.join("alarms.txt");
    let config = common::write_file(
        &dir,
        "x.toml",
        &format!(
            r#"[alarm.pager]
action = "cmd:cat >> {}"
[[expect]]
regex = "heartbeat ok"
within = "1s"
alarm = "pager"
"#,
            sh_quote(&out_file)
        ),
    );
    let mut la = Logalarm::new()
        .arg("-c")
        .arg(&config)
        .arg("--no-passthrough")
        .stdin_piped()
        .start();
    la.write_stdin(b"heartbeat ok\n");
    let text = common::wait_for_file(&out_file, PATIENCE, |b| !b.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&text),
        "ABSENT pager: expected line /heartbeat ok/ not seen for 1s\n"
    );
    la.write_stdin(b"heartbeat ok\n");
    let text = common::wait_for_file(&out_file, PATIENCE, |b| {
        b.split(|&c| c == b'\n').count() > 2
    });
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.lines().nth(1).is_some_and(
            |l| l.starts_with("RESOLVED pager: expected line /heartbeat ok/ seen again after ")
        ),
        "{text}"
    );
    la.close_stdin();
    let status = la.finish().status;
    assert!(status.success());
}

#[test]
fn silent_input_fires_and_recovers() {
    let dir = common::scratch("policy-stall");
    let log = dir.join("app.log");
    fs::write(&log, "").expect("create");
    let out_file = dir.join("alarms.txt");
    let config = common::write_file(
        &dir,
        "s.toml",
        &format!(
            r#"state_dir = {state:?}
[[input]]
file = {log:?}
stall_after = "1s"
on_stall = "pager"
[alarm.pager]
action = "cmd:cat >> {out}"
[alarm.errors]
action = "log:"
[[rule]]
regex = "ERROR"
alarm = "errors"
"#,
            state = dir.join("state").display().to_string(),
            log = log.display().to_string(),
            out = sh_quote(&out_file)
        ),
    );
    let la = Logalarm::new().arg("-c").arg(&config).start();
    let text = common::wait_for_file(&out_file, PATIENCE, |b| !b.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&text),
        format!(
            "ABSENT pager: input file:{} has been silent for 1s\n",
            log.display()
        )
    );
    fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .and_then(|mut f| f.write_all(b"a line\n"))
        .expect("append");
    let text = common::wait_for_file(&out_file, PATIENCE, |b| {
        b.split(|&c| c == b'\n').count() > 2
    });
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.lines().nth(1).is_some_and(|l| l.starts_with(&format!(
            "RESOLVED pager: input file:{} has lines again after ",
            log.display()
        ))),
        "{text}"
    );
    la.signal(libc::SIGTERM);
    la.finish();
}

#[test]
fn bad_policy_config_names_the_key() {
    let dir = common::scratch("policy-bad");
    let config = common::write_file(
        &dir,
        "b.toml",
        r#"[alarm.a]
action = "log:"
threshold = { count = 0, window = "1m" }
escalate = { limit = 1, window = "1m", alarm = "nope" }
[[rule]]
regex = "x"
alarm = "a"
[[expect]]
regex = "hb"
within = "1m"
alarm = "ghost"
"#,
    );
    let out = Logalarm::new().arg("check").arg("-c").arg(&config).output();
    assert_eq!(out.status.code(), Some(2));
    let err = out.stderr_text();
    let at = config.display().to_string();
    assert!(
        err.contains(&format!(
            "{at}:3: alarm.a.threshold: count must be at least 1"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{at}:4: alarm.a.escalate: escalate names unknown alarm \"nope\""
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{at}:8: expect[1]: [[expect]] names unknown alarm \"ghost\""
        )),
        "{err}"
    );
}

#[test]
fn ini_policy_options_and_check_listing() {
    let dir = common::scratch("policy-ini");
    let config = common::write_file(
        &dir,
        "p.ini",
        "[uwsgi]\n\
         alarm = ssh log:\n\
         alarm = pager log:\n\
         alarm-key = ssh {{ caps.ip }}\n\
         alarm-threshold = ssh 5 60s\n\
         alarm-cooldown = ssh 1 1h\n\
         alarm-escalate = ssh 100 5m pager\n\
         alarm-expect = pager 5m heartbeat ok\n\
         log-alarm = ssh Failed password for \\S+ from (?P<ip>\\S+)\n",
    );
    let out = Logalarm::new().arg("check").arg("-c").arg(&config).output();
    assert!(out.status.success(), "{}", out.stderr_text());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "policies: escalate to pager above 100 events within 5m; threshold 5 within 1m per key {{ caps.ip }}; cooldown 1 per 1h per key {{ caps.ip }}"
        ),
        "{text}"
    );
    assert!(
        text.contains("Expect /heartbeat ok/ at least every 5m -> pager"),
        "{text}"
    );
    let bad = common::write_file(
        &dir,
        "b.ini",
        "[uwsgi]\nalarm-threshold = ghost 5 60s\nalarm = ghost log:\nlog-alarm = ghost x\n",
    );
    let out = Logalarm::new().arg("check").arg("-c").arg(&bad).output();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stderr_text().contains(&format!(
            "{}:2: alarm-threshold: alarm \"ghost\" is not defined above; define it first with `alarm = ghost PLUGIN:ARGS`",
            bad.display()
        )),
        "{}",
        out.stderr_text()
    );
}

#[test]
fn a_negative_rule_does_not_hide_recovery_lines() {
    let (alarms, _) = run_alarms(
        "policy-resolve-negated",
        r#"[alarm.db]
action = "cmd:cat >> OUT"
[[rule]]
regex = 'DEBUG'
alarm = "db"
negate = true
[[rule]]
regex = 'db down'
alarm = "db"
resolve = 'db up'
"#,
        b"db down\nDEBUG db down (skipped)\nDEBUG db up (still a recovery)\n",
    );
    assert_eq!(
        alarms,
        "db down\nRESOLVED db: DEBUG db up (still a recovery)\n"
    );
}

/// One of 20 error shapes, its variable parts drawn from `j`.
fn shape(k: usize, j: usize) -> String {
    let (a, b, n) = (j % 250, (j / 250) % 250, j * 7 % 100_000);
    match k {
        0 => format!("ERROR db timeout after {n} ms"),
        1 => format!("ERROR connection refused from 10.{a}.{b}.7:5432"),
        // Always a letter among the digits: a hex id, never a number.
        2 => format!("ERROR request id {:016x}f failed", j * 2_654_435_761),
        3 => format!("WARN disk at {} percent", n % 100),
        4 => format!("ERROR user id {n} not found"),
        5 => format!("ERROR job 0x{:x} crashed", j + 4096),
        6 => format!("ERROR session 123e4567-e89b-12d3-a456-{:012x} expired", j),
        7 => format!("ERROR queue depth {n} over limit {}", n + 10),
        8 => format!("ERROR payment declined amount {}.{:02}", n, j % 100),
        9 => format!("ERROR cache miss ratio {}.{} too high", n % 10, j % 10),
        10 => format!("ERROR login failed for uid {n} from 192.168.{a}.{b}"),
        11 => format!(
            "ERROR slow query took {n} ms at 2024-05-01T12:{:02}:{:02}Z",
            j % 60,
            a % 60
        ),
        12 => format!("ERROR worker {n} exited with code {}", j % 7),
        13 => format!("ERROR upstream 10.0.{a}.{b} returned 502"),
        14 => format!("ERROR file handle {n} leaked"),
        15 => format!("ERROR retry {n} of 5 failed"),
        16 => format!("ERROR ssl handshake with 172.16.{a}.{b} timed out after {n} ms"),
        17 => format!("ERROR batch {n} had {} bad rows", j % 13),
        18 => format!("ERROR memory at {n} MB exceeds {} MB", n + 512),
        _ => format!("ERROR order {n} stuck since 12:{:02}:{:02}", j % 60, b % 60),
    }
}

#[test]
fn digest_sums_up_a_100k_line_burst_in_one_notification() {
    let mut input = String::new();
    let mut per_shape = [0u64; 20];
    for j in 0..100_000 {
        // Uneven counts: shapes 0-16 take 5 of every 97 lines, 17-19 take 4.
        let k = (j % 97) % 20;
        per_shape[k] += 1;
        input.push_str(&shape(k, j));
        input.push('\n');
    }
    let (text, stderr) = run_alarms(
        "policy-digest-burst",
        r#"[alarm.errors]
action = "cmd:cat >> OUT"
digest = "1h"
message = "{{ count }} in {{ events | length }}{% for e in events %}\n{{ e.count }}|{{ e.sources[0].name }}|{{ e.key }}{% endfor %}"
[[rule]]
regex = '^(ERROR|WARN) '
alarm = "errors"
"#,
        input.as_bytes(),
    );
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("100000 in 20"), "{text}");
    let mut got: Vec<(u64, String)> = lines
        .map(|l| {
            let mut f = l.splitn(3, '|');
            let count = f.next().and_then(|c| c.parse().ok()).expect("count");
            assert_eq!(f.next(), Some("stdin"), "{l}");
            (count, f.next().expect("key").to_owned())
        })
        .collect();
    // Every shape is one unique error, with its exact count.
    let mut counts: Vec<u64> = got.iter().map(|(c, _)| *c).collect();
    let mut expected = per_shape.to_vec();
    counts.sort_unstable();
    expected.sort_unstable();
    assert_eq!(counts, expected, "{text}");
    got.sort();
    let keys: std::collections::BTreeSet<&str> = got.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(keys.len(), 20, "{text}");
    assert!(stderr.contains("1 delivered"), "{stderr}");
    assert!(
        stderr.contains("100000 events taken into digests"),
        "{stderr}"
    );
}

#[test]
fn digest_per_period_on_the_lines_clock_and_monitoring_markers() {
    let dir = common::scratch("policy-digest-periods");
    let config = common::write_file(
        &dir,
        "d.toml",
        r#"[alarm.errors]
action = "log:"
digest = "10m"
monitoring_markers = ["E2E-PROBE"]
[[rule]]
regex = 'ERROR'
alarm = "errors"
"#,
    );
    let log = common::write_file(
        &dir,
        "app.log",
        "2024-05-01T12:00:00Z ERROR db timeout after 31 ms\n\
         2024-05-01T12:03:00Z ERROR db timeout after 45 ms\n\
         2024-05-01T12:04:00Z ERROR disk full on /var\n\
         2024-05-01T12:30:00Z ERROR E2E-PROBE 1\n\
         2024-05-01T12:50:00Z ERROR db timeout after 3 ms\n\
         2024-05-01T13:05:00Z ERROR db timeout after 7 ms\n",
    );
    let report = test_report(&config, &log);
    let made: Vec<&str> = report.lines().filter(|l| l.starts_with("at ")).collect();
    // 12:00–12:10: 3 events; the probe alone (12:30–12:40) makes none; 12:50–13:00: 1;
    // 13:05 is pending at the end and sent then.
    assert_eq!(
        made,
        [
            "at 2024-05-01T12:10:00.000Z: digest -> errors: 3 instances of 2 unique errors in 10m (sources: stdin)",
            "at 2024-05-01T13:00:00.000Z: digest -> errors: 1 instance of 1 unique error in 10m (sources: stdin)",
            "at 2024-05-01T13:05:00.000Z: digest -> errors: 1 instance of 1 unique error in 10m (sources: stdin)",
        ],
        "{report}"
    );
}

#[test]
fn keys_beyond_max_keys_evict_the_oldest_and_are_counted() {
    let run = |max_keys: usize| {
        let toml = r#"alarm_freq = 0
[alarm.t]
action = "cmd:cat >> OUT"
key = "{{ caps.k }}"
threshold = { count = 2, window = "1h" }
max_keys = MAX
[[rule]]
regex = 'x (?P<k>\w+)'
alarm = "t"
"#
        .replace("MAX", &max_keys.to_string());
        run_alarms(
            &format!("policy-max-keys-{max_keys}"),
            &toml,
            b"x a\nx b\nx c\nx a\n",
        )
    };
    // Room for every key: a's second event reaches the threshold.
    let (alarms, stderr) = run(3);
    assert_eq!(alarms, "x a\n");
    assert!(!stderr.contains("evicted"), "{stderr}");
    // Two keys at most: c evicts a, and a's return evicts b; a starts again at 1 of 2.
    let (alarms, stderr) = run(2);
    assert_eq!(alarms, "");
    assert!(
        stderr.contains("2 keys were evicted from its policies' state (max_keys reached)"),
        "{stderr}"
    );
}

#[test]
fn test_shows_policy_decisions_for_multiline_records() {
    let dir = common::scratch("policy-records");
    let config = common::write_file(
        &dir,
        "tb.toml",
        r#"[alarm.crash]
action = "log:"
cooldown = { max = 1, period = "1h" }
[[rule]]
regex = "Error"
alarm = "crash"
multiline = "python"
"#,
    );
    let log = common::write_file(
        &dir,
        "tb.log",
        "start\nTraceback (most recent call last):\n  File \"x.py\", line 1, in <module>\nValueError: bad\nmid\n\
         Traceback (most recent call last):\n  File \"x.py\", line 2, in <module>\nKeyError: k\nend\n",
    );
    let report = test_report(&config, &log);
    let head: Vec<&str> = report.lines().take(4).collect();
    assert_eq!(
        head,
        [
            "lines 2-4: fires crash (rule 1 /Error/, python record): Traceback (most recent call last): (+2 lines)",
            "    crash: sent",
            "lines 6-8: fires crash (rule 1 /Error/, python record): Traceback (most recent call last): (+2 lines)",
            "    crash: suppressed by cooldown (1 per 1h sent; 1 suppressed)",
        ]
    );
}

#[test]
fn top_level_stall_after_watches_stdin() {
    let dir = common::scratch("policy-stall-stdin");
    let out_file = dir.join("alarms.txt");
    let config = common::write_file(
        &dir,
        "s.toml",
        &format!(
            r#"stall_after = "1s"
on_stall = "pager"
[alarm.pager]
action = "cmd:cat >> {}"
"#,
            sh_quote(&out_file)
        ),
    );
    let mut la = Logalarm::new()
        .arg("-c")
        .arg(&config)
        .arg("--no-passthrough")
        .stdin_piped()
        .start();
    let text = common::wait_for_file(&out_file, PATIENCE, |b| !b.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&text),
        "ABSENT pager: no input has had a line for 1s\n"
    );
    la.write_stdin(b"anything\n");
    let text = common::wait_for_file(&out_file, PATIENCE, |b| {
        b.split(|&c| c == b'\n').count() > 2
    });
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("RESOLVED pager: lines again after ")),
        "{text}"
    );
    la.close_stdin();
    assert!(la.finish().status.success());
}

#[test]
fn a_misspelt_capture_group_is_a_config_error() {
    let dir = common::scratch("policy-caps-typo");
    let config = common::write_file(
        &dir,
        "t.toml",
        r#"[alarm.ssh]
action = "log:"
key = "{{ caps.iip }}"
threshold = { count = 5, window = "60s" }
message = "{{ caps.ip }} {{ caps[3] }}"
[[rule]]
regex = 'from (?P<ip>\S+) port (\d+)'
alarm = "ssh"
"#,
    );
    let out = Logalarm::new().arg("check").arg("-c").arg(&config).output();
    assert_eq!(out.status.code(), Some(2));
    let at = config.display().to_string();
    assert_eq!(
        out.stderr_text().lines().collect::<Vec<_>>(),
        [
            format!(
                "[logalarm] config error: {at}:3: alarm.ssh.key: `caps` group \"iip\" is in no rule firing alarm \"ssh\" (theirs: ip; numbered up to 2); fix the name or add `(?P<iip>…)` to the rule"
            ),
            "[logalarm] config error:      3 | key = \"{{ caps.iip }}\"".to_owned(),
            format!(
                "[logalarm] config error: {at}:5: alarm.ssh.message: `caps` group \"3\" is in no rule firing alarm \"ssh\" (theirs: ip; numbered up to 2); fix the number (group 0 is the whole match)"
            ),
            "[logalarm] config error:      5 | message = \"{{ caps.ip }} {{ caps[3] }}\""
                .to_owned(),
        ]
    );
}

#[test]
fn a_wrapped_process_silent_too_long_fires_on_stall() {
    let dir = common::scratch("policy-stall-run");
    let out_file = dir.join("alarms.txt");
    let config = common::write_file(
        &dir,
        "r.toml",
        &format!(
            r#"[run]
stall_after = "1s"
on_stall = "pager"
[alarm.pager]
action = "cmd:cat >> {}"
"#,
            sh_quote(&out_file)
        ),
    );
    // Silent until told to speak (a file appears), then done.
    let go = dir.join("go");
    let script = format!(
        "while [ ! -e {} ]; do sleep 0.05; done; echo back",
        sh_quote(&go)
    );
    let la = Logalarm::new()
        .args(["run", "-c"])
        .arg(&config)
        .args(["--", "sh", "-c", &script])
        .start();
    let text = common::wait_for_file(&out_file, PATIENCE, |b| !b.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&text),
        "ABSENT pager: input child has been silent for 1s\n"
    );
    fs::write(&go, "").expect("touch");
    assert!(la.finish().status.success());
    let text = fs::read_to_string(&out_file).expect("read");
    assert!(
        text.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("RESOLVED pager: input child has lines again after ")),
        "{text}"
    );
}

#[test]
fn a_pending_digest_is_sent_at_sigterm() {
    let dir = common::scratch("policy-digest-sigterm");
    let (seen, digest) = (dir.join("seen.txt"), dir.join("digest.txt"));
    let config = common::write_file(
        &dir,
        "d.toml",
        &format!(
            r#"[alarm.seen]
action = "cmd:cat >> {}"
[alarm.errors]
action = "cmd:cat >> {}"
digest = "1h"
message = "{{{{ count }}}} events"
[[rule]]
regex = 'ERROR'
alarms = ["seen", "errors"]
"#,
            sh_quote(&seen),
            sh_quote(&digest)
        ),
    );
    let mut la = Logalarm::new()
        .arg("-c")
        .arg(&config)
        .arg("--no-passthrough")
        .stdin_piped()
        .start();
    la.write_stdin(b"ERROR a 1\nERROR b 2\nERROR c 3\n");
    // The plain alarm shows the lines went through the engine.
    common::wait_for_file(&seen, PATIENCE, |b| b.ends_with(b"ERROR c 3\n"));
    assert!(!digest.exists(), "the period is an hour: nothing yet");
    la.signal(libc::SIGTERM);
    assert!(la.finish().status.success());
    assert_eq!(
        fs::read_to_string(&digest).expect("digest sent"),
        "3 events\n"
    );
}

#[test]
fn a_long_recovery_line_is_cut_to_msg_size_and_says_its_length() {
    let recovery = format!("db up {}", "x".repeat(44));
    assert_eq!(recovery.len(), 50);
    let (alarms, _) = run_alarms(
        "policy-resolve-cut",
        r#"alarm_freq = 0
msg_size = 20
[alarm.db]
action = "cmd:cat >> OUT"
[[rule]]
regex = 'db down'
alarm = "db"
resolve = 'db up'
"#,
        format!("db down\n{recovery}\n").as_bytes(),
    );
    assert_eq!(
        alarms,
        format!(
            "db down\nRESOLVED db: {} [logalarm: truncated, 50 bytes in all]\n",
            &recovery[..20]
        )
    );
}

#[test]
fn a_key_template_failing_on_an_event_is_counted_and_reported() {
    // `int` fails on an address that is not a number ("a"): those events
    // count under the empty key, and the exit summary says so.
    let (alarms, stderr) = run_alarms(
        "policy-key-error",
        r#"alarm_freq = 0
[alarm.t]
action = "cmd:cat >> OUT"
key = "{{ caps.ip | split('.') | first | int }}"
threshold = { count = 2, window = "1h" }
[[rule]]
regex = 'x from (?P<ip>\S+)'
alarm = "t"
"#,
        b"x from a\nx from 10.0.0.1\nx from b\n",
    );
    // a and b share the empty key: b is its second event.
    assert_eq!(alarms, "x from b\n");
    assert!(
        stderr.contains(
            "alarm=t: 2 events had a key template that failed to render: they were counted under the empty key"
        ),
        "{stderr}"
    );
}
