//! Real logs through the real binary: rules written against Loghub templates,
//! checked against the corpus ground truth (`*_structured.csv`: the rows with an
//! `EventId` are exactly the lines a rule for that template must match).
//!
//! Every alarm is a `cmd:cat >> FILE` action, so what reached each alarm is
//! compared byte for byte with what the CSV says should have; the same rules
//! then go through `logalarm test`, whose whole output is compared with a
//! report built from the CSV.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Done, Logalarm};

/// Generous: every notification starts a shell, and CI machines are slow.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// The dry run: `logalarm test --print-all-matched --print-all-ignored -c
/// CONFIG LOG`, with alarm-freq off as in the live runs; its last line
/// (`processed N lines in X s`, a time) is checked and cut off.
fn dry_run(config: &Path, log: &Path) -> Done {
    let mut out = Logalarm::new()
        .args(["test", "--print-all-matched", "--print-all-ignored"])
        .args(["--alarm-freq", "0", "-c"])
        .arg(config)
        .arg(log)
        .timeout(RUN_TIMEOUT)
        .run(b"");
    if out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        let timing = text.trim_end().rfind('\n').expect("a report") + 1;
        assert!(
            text[timing..].starts_with("processed 2000 lines in "),
            "{}",
            &text[timing..]
        );
        out.stdout.truncate(timing);
    }
    out
}

/// Whether the system's lines start with a time `logalarm test` reads
/// (`src/policy/clock.rs`): then its policies run on the lines' own clock.
fn timed(system: &str) -> bool {
    matches!(system, "OpenSSH" | "Apache" | "Linux" | "Zookeeper")
}

// ---------------------------------------------------------------------------
// The corpus and its ground truth.

/// One row of `S_2k.log_structured.csv`.
struct Row {
    event: String,
    content: String,
}

/// One Loghub system: the raw log, its lines, and the ground truth per line.
struct Corpus {
    /// The Loghub system's name (`OpenSSH`).
    system: String,
    path: PathBuf,
    raw: Vec<u8>,
    /// Each line without `\r\n` (what an alarm message is).
    lines: Vec<Vec<u8>>,
    /// `rows[i]` describes `lines[i]`.
    rows: Vec<Row>,
}

impl Corpus {
    fn load(system: &str) -> Corpus {
        let dir = common::corpus().join(system);
        let path = dir.join(format!("{system}_2k.log"));
        let raw = std::fs::read(&path).expect("read corpus log");
        let mut lines: Vec<Vec<u8>> = raw.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
        // Some samples end with CRLF, others have an unterminated last line.
        if raw.ends_with(b"\n") {
            lines.pop();
        }
        for line in &mut lines {
            if line.ends_with(b"\r") {
                line.pop();
            }
        }
        let csv_path = dir.join(format!("{system}_2k.log_structured.csv"));
        let mut reader = csv::Reader::from_path(&csv_path)
            .unwrap_or_else(|e| panic!("{}: {e}", csv_path.display()));
        let header = reader.headers().expect("csv header").clone();
        let col = |name: &str| header.iter().position(|h| h == name).expect("csv column");
        let (id_col, content_col, event_col) = (col("LineId"), col("Content"), col("EventId"));
        let mut rows = Vec::new();
        for (i, rec) in reader.records().enumerate() {
            let rec = rec.unwrap_or_else(|e| panic!("{}: {e}", csv_path.display()));
            assert_eq!(
                rec.len(),
                header.len(),
                "{}: row {} has {} fields",
                csv_path.display(),
                i + 1,
                rec.len()
            );
            assert_eq!(
                rec[id_col].parse::<usize>().expect("LineId"),
                i + 1,
                "LineIds are 1, 2, 3…"
            );
            rows.push(Row {
                event: rec[event_col].to_owned(),
                content: rec[content_col].to_owned(),
            });
        }
        assert_eq!(
            rows.len(),
            lines.len(),
            "{}: one csv row per log line",
            system
        );
        assert_eq!(lines.len(), 2000, "{system}: a 2k sample");
        Corpus {
            system: system.to_owned(),
            path,
            raw,
            lines,
            rows,
        }
    }
}

/// When a rule must match a line, according to the CSV.
#[derive(Clone, Copy)]
enum Truth {
    /// The row's EventId is one of these.
    Events(&'static [&'static str]),
    /// The row's EventId is one of these and its Content holds the text.
    EventsWith(&'static [&'static str], &'static str),
    /// The row's Content holds the text.
    ContentHas(&'static str),
}

impl Truth {
    fn holds(self, row: &Row) -> bool {
        match self {
            Truth::Events(ids) => ids.contains(&row.event.as_str()),
            Truth::EventsWith(ids, text) => {
                ids.contains(&row.event.as_str()) && row.content.contains(text)
            }
            Truth::ContentHas(text) => row.content.contains(text),
        }
    }
}

/// One rule of a test config and the lines it must match.
#[derive(Clone, Copy)]
struct Spec {
    negate: bool,
    alarms: &'static [&'static str],
    regex: &'static str,
    truth: Truth,
}

const fn rule(alarms: &'static [&'static str], regex: &'static str, truth: Truth) -> Spec {
    Spec {
        negate: false,
        alarms,
        regex,
        truth,
    }
}

const fn not_rule(alarms: &'static [&'static str], regex: &'static str, truth: Truth) -> Spec {
    Spec {
        negate: true,
        alarms,
        regex,
        truth,
    }
}

/// The alarm names the rules use, in first-use order.
fn alarm_names(rules: &[Spec]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for r in rules {
        for a in r.alarms {
            if !names.contains(a) {
                names.push(a);
            }
        }
    }
    names
}

// ---------------------------------------------------------------------------
// What should happen, computed from the CSV with uWSGI's rule semantics.

/// One line that matched at least one rule.
struct Outcome {
    /// 0-based line index.
    index: usize,
    /// The rule that stopped evaluation, if a negative one matched.
    stopped_by: Option<usize>,
    /// (alarm index, first rule that fired it), in rule order, each alarm once.
    hits: Vec<(usize, usize)>,
}

struct Expected {
    outcomes: Vec<Outcome>,
    per_rule: Vec<u64>,
    per_alarm: Vec<u64>,
    /// What each alarm's `cat >> FILE` must have written.
    files: BTreeMap<&'static str, Vec<u8>>,
}

/// Rules are an ordered list; a matching negative rule skips the rules after it;
/// an alarm fires at most once per line. `alarms` is the plan's alarm order.
fn model(corpus: &Corpus, rules: &[Spec], alarms: &[&'static str]) -> Expected {
    let mut exp = Expected {
        outcomes: Vec::new(),
        per_rule: vec![0; rules.len()],
        per_alarm: vec![0; alarms.len()],
        files: alarms.iter().map(|a| (*a, Vec::new())).collect(),
    };
    for (index, row) in corpus.rows.iter().enumerate() {
        let mut any = false;
        let mut stopped_by = None;
        let mut hits: Vec<(usize, usize)> = Vec::new();
        for (k, r) in rules.iter().enumerate() {
            if !r.truth.holds(row) {
                continue;
            }
            any = true;
            exp.per_rule[k] += 1;
            if r.negate {
                stopped_by = Some(k);
                break;
            }
            for name in r.alarms {
                let a = alarms
                    .iter()
                    .position(|x| x == name)
                    .expect("alarm defined");
                if !hits.iter().any(|&(h, _)| h == a) {
                    hits.push((a, k));
                }
            }
        }
        if !any {
            continue;
        }
        for &(a, _) in &hits {
            exp.per_alarm[a] += 1;
            let file = exp.files.get_mut(alarms[a]).expect("alarm file");
            file.extend_from_slice(&corpus.lines[index]);
            file.push(b'\n');
        }
        exp.outcomes.push(Outcome {
            index,
            stopped_by,
            hits,
        });
    }
    exp
}

fn kind(negate: bool) -> &'static str {
    if negate { "not-log-alarm" } else { "log-alarm" }
}

/// The rule's alarms as `check`/`test` list them: as written, each once.
fn rule_alarms(r: &Spec) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for a in r.alarms {
        if !seen.contains(a) {
            seen.push(a);
        }
    }
    seen.join(",")
}

/// The full stdout `logalarm test` must print.
fn expected_test_report(
    corpus: &Corpus,
    rules: &[Spec],
    alarms: &[&'static str],
    exp: &Expected,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut firing = 0;
    for o in &exp.outcomes {
        let number = o.index + 1;
        if o.hits.is_empty() {
            let stop = o
                .stopped_by
                .expect("a matching line without hits was stopped")
                + 1;
            write!(
                out,
                "line {number}: ignored (rule {stop} not-log-alarm skips the rules after it): "
            )
            .unwrap();
        } else {
            firing += 1;
            let names: Vec<&str> = o.hits.iter().map(|&(a, _)| alarms[a]).collect();
            let mut fired_by: Vec<usize> = o.hits.iter().map(|&(_, k)| k).collect();
            fired_by.dedup();
            let fired_by: Vec<String> = fired_by
                .iter()
                .map(|&k| format!("{} /{}/", k + 1, rules[k].regex))
                .collect();
            write!(
                out,
                "line {number}: fires {} (rule {}): ",
                names.join(", "),
                fired_by.join(", rule ")
            )
            .unwrap();
        }
        out.extend_from_slice(&corpus.lines[o.index]);
        out.push(b'\n');
    }
    writeln!(out).unwrap();
    let ignored = exp.outcomes.len() - firing;
    writeln!(
        out,
        "Lines: {} read, {firing} matched, {ignored} ignored (0 anti-loop tag, {ignored} not-log-alarm), {} missed",
        corpus.lines.len(),
        corpus.lines.len() - exp.outcomes.len()
    )
    .unwrap();
    let plural = |n: u64, one: &str, more: &str| format!("{n} {}", if n == 1 { one } else { more });
    writeln!(out, "Rules:").unwrap();
    for (k, r) in rules.iter().enumerate() {
        writeln!(
            out,
            "  {:>3}  {:13}  {}  -> {}: {}",
            k + 1,
            kind(r.negate),
            r.regex,
            rule_alarms(r),
            plural(exp.per_rule[k], "line", "lines")
        )
        .unwrap();
    }
    writeln!(
        out,
        "Alarms (policies on {}):",
        if timed(&corpus.system) {
            "the lines' own clock"
        } else {
            "the arrival clock: the lines carry no time logalarm reads"
        }
    )
    .unwrap();
    for (a, name) in alarms.iter().enumerate() {
        let n = exp.per_alarm[a];
        writeln!(
            out,
            "  {name}: {} -> {}",
            plural(n, "event", "events"),
            plural(n, "notification", "notifications")
        )
        .unwrap();
    }
    out
}

// ---------------------------------------------------------------------------
// Configs.

#[derive(Clone, Copy, Debug)]
enum Syntax {
    Ini,
    Toml,
}

fn alarm_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.txt"))
}

fn action(dir: &Path, name: &str) -> String {
    format!("cmd:cat >> {}", common::sh_quote(&alarm_file(dir, name)))
}

/// Writes the config; returns its path and the plan's alarm order (TOML
/// alarms are a table, which logalarm reads sorted by name).
fn write_config(dir: &Path, syntax: Syntax, rules: &[Spec]) -> (PathBuf, Vec<&'static str>) {
    let names = alarm_names(rules);
    let mut text = String::new();
    match syntax {
        Syntax::Ini => {
            text.push_str("[uwsgi]\n; generated by tests/corpus.rs\n");
            for name in &names {
                text.push_str(&format!("alarm = {name} {}\n", action(dir, name)));
            }
            for r in rules {
                // An INI value is trimmed (as in uWSGI): a regex must not start or end with blanks.
                assert_eq!(
                    r.regex.trim(),
                    r.regex,
                    "INI cannot carry the blanks around {:?}",
                    r.regex
                );
                let key = if r.negate {
                    "not-log-alarm"
                } else {
                    "log-alarm"
                };
                text.push_str(&format!("{key} = {} {}\n", r.alarms.join(","), r.regex));
            }
            let path = dir.join("alarms.ini");
            std::fs::write(&path, text).expect("write ini");
            (path, names)
        }
        Syntax::Toml => {
            text.push_str("# generated by tests/corpus.rs\n");
            for name in &names {
                text.push_str(&format!(
                    "[alarm.{name}]\naction = \"{}\"\n\n",
                    action(dir, name)
                ));
            }
            for r in rules {
                // Literal strings: no escapes, so the regex is written as it is.
                let regex = if r.regex.contains('\'') {
                    format!("'''{}'''", r.regex)
                } else {
                    format!("'{}'", r.regex)
                };
                let alarms: Vec<String> = r.alarms.iter().map(|a| format!("\"{a}\"")).collect();
                text.push_str(&format!(
                    "[[rule]]\nregex = {regex}\nalarms = [{}]\n",
                    alarms.join(", ")
                ));
                if r.negate {
                    text.push_str("negate = true\n");
                }
                text.push('\n');
            }
            let path = dir.join("alarms.toml");
            std::fs::write(&path, text).expect("write toml");
            let mut sorted = names;
            sorted.sort_unstable();
            (path, sorted)
        }
    }
}

// ---------------------------------------------------------------------------
// The check itself.

/// Pipes the corpus file through `logalarm -c CONF` and checks pass-through,
/// every alarm's deliveries and the final counts; then checks `logalarm test`.
fn check_system(test: &str, system: &str, syntax: Syntax, rules: &[Spec]) {
    let corpus = Corpus::load(system);
    let dir = common::scratch(&format!("corpus_{test}"));
    let (config, alarms) = write_config(&dir, syntax, rules);
    let exp = model(&corpus, rules, &alarms);
    for (k, r) in rules.iter().enumerate() {
        assert!(
            exp.per_rule[k] > 0,
            "{system}: rule {} /{}/ matches no line of the corpus",
            k + 1,
            r.regex
        );
    }

    let out = Logalarm::new()
        .arg("-c")
        .arg(&config)
        .args([
            "--alarm-freq",
            "0",
            "--queue-size",
            "4096",
            "--drain-timeout",
            "240s",
        ])
        .timeout(RUN_TIMEOUT)
        .run(&corpus.raw);
    let err = out.stderr_text();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{system}: exit status; stderr:\n{err}"
    );
    assert!(
        out.stdout == corpus.raw,
        "{system}: stdout is not the input byte for byte"
    );
    for (a, name) in alarms.iter().enumerate() {
        let got = std::fs::read(alarm_file(&dir, name)).unwrap_or_default();
        let want = &exp.files[name];
        if got != *want {
            let (g, w) = (String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
            let first = g.lines().zip(w.lines()).position(|(x, y)| x != y);
            panic!(
                "{system}: alarm {name}: got {} lines, want {}; first difference at delivery {:?}\n got: {:?}\nwant: {:?}",
                g.lines().count(),
                w.lines().count(),
                first.map(|i| i + 1),
                first.and_then(|i| g.lines().nth(i)),
                first.and_then(|i| w.lines().nth(i)),
            );
        }
        let n = exp.per_alarm[a];
        let summary = format!(
            "[logalarm] info: alarm={name}: {n} delivered, 0 failed, 0 suppressed by alarm-freq, 0 dropped on a full queue\n"
        );
        if n > 0 {
            assert!(
                err.contains(&summary),
                "{system}: stderr lacks {summary:?}:\n{err}"
            );
        }
    }
    for line in err.lines() {
        assert!(
            line.starts_with("[logalarm] info: "),
            "{system}: unexpected stderr line {line:?}"
        );
    }

    // The dry run: same rules, the whole report compared.
    let out = dry_run(&config, &corpus.path);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{system}: test exit status; stderr:\n{}",
        out.stderr_text()
    );
    let want = expected_test_report(&corpus, rules, &alarms, &exp);
    assert_report_eq(system, &out.stdout, &want);
    // No action ran in the dry run: the alarm files are as the real run left them.
    for name in &alarms {
        let got = std::fs::read(alarm_file(&dir, name)).unwrap_or_default();
        assert!(
            got == exp.files[name],
            "{system}: `logalarm test` ran alarm {name}'s action"
        );
    }
}

fn assert_report_eq(what: &str, got: &[u8], want: &[u8]) {
    if got == want {
        return;
    }
    let (g, w) = (String::from_utf8_lossy(got), String::from_utf8_lossy(want));
    let first = g.lines().zip(w.lines()).position(|(x, y)| x != y);
    match first {
        Some(i) => panic!(
            "{what}: `logalarm test` output differs at line {}:\n got: {:?}\nwant: {:?}",
            i + 1,
            g.lines().nth(i).unwrap_or_default(),
            w.lines().nth(i).unwrap_or_default()
        ),
        None => panic!("{what}: `logalarm test` output differs in length:\n got:\n{g}\nwant:\n{w}"),
    }
}

// ---------------------------------------------------------------------------
// The systems. Each rule is anchored enough to match exactly its template's
// lines; the last rule of each system overlaps others, so that `all` (named by
// every rule) must still fire once per line.

const OPENSSH: &[Spec] = &[
    rule(
        &["r1", "all"],
        r"sshd\[\d+\]: Failed password for [^ ]+ from \d+\.\d+\.\d+\.\d+ port \d+ ssh2$",
        Truth::Events(&["E9"]),
    ),
    rule(
        &["r2", "all"],
        r"sshd\[\d+\]: Failed password for invalid user .* from \d+\.\d+\.\d+\.\d+ port \d+ ssh2$",
        Truth::Events(&["E10"]),
    ),
    rule(
        &["r3", "all"],
        r"sshd\[\d+\]: reverse mapping checking getaddrinfo for \S+ \[\d+\.\d+\.\d+\.\d+\] failed - POSSIBLE BREAK-IN ATTEMPT!$",
        Truth::Events(&["E27"]),
    ),
    rule(
        &["r4", "all"],
        r"sshd\[\d+\]: Connection closed by \d+\.\d+\.\d+\.\d+ \[preauth\]$",
        Truth::Events(&["E2"]),
    ),
    rule(
        &["r5", "all"],
        r"sshd\[\d+\]: message repeated \d+ times: \[ Failed password for root from \d+\.\d+\.\d+\.\d+ port \d+ ssh2\]$",
        Truth::Events(&["E14"]),
    ),
    rule(
        &["r6", "all"],
        r"sshd\[\d+\]: pam_unix\(sshd:session\): session opened for user \S+ by \(uid=\d+\)$",
        Truth::Events(&["E23"]),
    ),
    // Overlaps r1, r2 and r5; names `all` again (and first).
    rule(
        &["all", "r7"],
        "Failed password for",
        Truth::Events(&["E9", "E10", "E14"]),
    ),
];

const HDFS: &[Spec] = &[
    rule(
        &["r1", "all"],
        r"^\d{6} \d{6} \d+ INFO dfs\.FSNamesystem: BLOCK\* ask \d+\.\d+\.\d+\.\d+:\d+ to replicate blk_-?\d+ to datanode\(s\) \d",
        Truth::Events(&["E5"]),
    ),
    rule(
        &["r2", "all"],
        r"^\d+ \d+ \d+ INFO dfs\.FSDataset: Deleting block blk_-?\d+ file /\S+/blk_-?\d+$",
        Truth::Events(&["E9"]),
    ),
    rule(
        &["r3", "all"],
        r":Got exception while serving blk_-?\d+ to /[\d.]+:$",
        Truth::Events(&["E3"]),
    ),
    rule(
        &["r4", "all"],
        r"BLOCK\* ask [\d.]+:\d+ to delete  blk_",
        Truth::Events(&["E4"]),
    ),
    rule(
        &["r5", "all"],
        r": Received block blk_-?\d+ of size \d+ from /[\d.]+$",
        Truth::Events(&["E11"]),
    ),
    rule(
        &["r6", "all"],
        r"BLOCK\* NameSystem\.allocateBlock: /\S+/part-\d+\. blk_-?\d+$",
        Truth::Events(&["E7"]),
    ),
    // Overlaps r5; also E12 and E13, which no other rule covers.
    rule(
        &["r7", "all"],
        r"Receiv(ed|ing) block blk_",
        Truth::Events(&["E11", "E12", "E13"]),
    ),
];

const APACHE: &[Spec] = &[
    rule(
        &["r1", "all"],
        r"^\[[^]]+\] \[notice\] jk2_init\(\) Found child \d+ in scoreboard slot \d+$",
        Truth::Events(&["E1"]),
    ),
    rule(
        &["r2", "all"],
        r"^\[[^]]+\] \[error\] mod_jk child workerEnv in error state \d+$",
        Truth::Events(&["E3"]),
    ),
    rule(
        &["r3", "all"],
        r"^\[[^]]+\] \[error\] \[client [\d.]+\] Directory index forbidden by rule: /\S*$",
        Truth::Events(&["E4"]),
    ),
    // A quote in the regex (TOML writes it as a ''' string).
    rule(
        &["r4", "all"],
        r"\] jk2_init\(\) Can't find child \d+ in scoreboard$",
        Truth::Events(&["E5"]),
    ),
    rule(
        &["r5", "all"],
        r"jk2_init\(\)",
        Truth::Events(&["E1", "E5"]),
    ),
];

const ZOOKEEPER: &[Spec] = &[
    rule(
        &["r1", "all"],
        r"\d - WARN  \[.*\] - Cannot open channel to \d+ at election address /[\d.]+:\d+$",
        Truth::Events(&["E5"]),
    ),
    rule(
        &["r2", "all"],
        r"\d - INFO  \[.*\] - Expiring session 0x[0-9a-f]+, timeout of \d+ms exceeded$",
        Truth::Events(&["E15"]),
    ),
    rule(
        &["r3", "all"],
        r"\] - Closed socket connection for client /[\d.]+:\d+ which had sessionid 0x[0-9a-f]+$",
        Truth::Events(&["E10"]),
    ),
    rule(
        &["r4", "all"],
        r"\] - Accepted socket connection from /[\d.]+:\d+$",
        Truth::Events(&["E2"]),
    ),
    rule(
        &["r5", "all"],
        "socket connection",
        Truth::Events(&["E2", "E9", "E10"]),
    ),
];

const LINUX: &[Spec] = &[
    // The raw lines end with a space before CRLF (the CSV's Content is trimmed).
    rule(
        &["r1", "all"],
        r"sshd\(pam_unix\)\[\d+\]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=\S+\s*$",
        Truth::Events(&["E16"]),
    ),
    rule(
        &["r2", "all"],
        r"sshd\(pam_unix\)\[\d+\]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=\S+\s+user=root\s*$",
        Truth::Events(&["E18"]),
    ),
    rule(
        &["r3", "all"],
        r"\]: check pass; user unknown\s*$",
        Truth::Events(&["E27"]),
    ),
    rule(
        &["r4", "all"],
        r"(?i)ftpd\[\d+\]: anonymous ftp login from [\d.]+, +\(anonymous\)\s*$",
        Truth::Events(&["E9"]),
    ),
    rule(
        &["r5", "all"],
        "authentication failure; logname=",
        Truth::Events(&["E15", "E16", "E17", "E18", "E19"]),
    ),
];

#[test]
fn openssh_templates_toml() {
    check_system("openssh_templates_toml", "OpenSSH", Syntax::Toml, OPENSSH);
}

#[test]
fn hdfs_templates_ini() {
    check_system("hdfs_templates_ini", "HDFS", Syntax::Ini, HDFS);
}

#[test]
fn apache_templates_toml() {
    check_system("apache_templates_toml", "Apache", Syntax::Toml, APACHE);
}

#[test]
fn zookeeper_templates_ini() {
    check_system(
        "zookeeper_templates_ini",
        "Zookeeper",
        Syntax::Ini,
        ZOOKEEPER,
    );
}

#[test]
fn linux_templates_ini() {
    check_system("linux_templates_ini", "Linux", Syntax::Ini, LINUX);
}

/// Negative rules on OpenSSH, in uWSGI's order semantics:
/// - rule 1 (`not-log-alarm`) stops everything for `invalid user admin`: those
///   lines fire nothing at all;
/// - rule 2 fires `early` for every failed password, including lines the next
///   negative rule matches (an earlier rule already fired);
/// - rule 3 (`not-log-alarm`) stops the rules after it for one attacking IP;
/// - rules 4 and 5 fire `late` (and `early` again, which must not duplicate).
const OPENSSH_NEGATIVE: &[Spec] = &[
    not_rule(
        &["early"],
        "Failed password for invalid user admin from",
        Truth::EventsWith(&["E10"], "invalid user admin from"),
    ),
    rule(
        &["early"],
        "Failed password for",
        Truth::Events(&["E9", "E10", "E14"]),
    ),
    not_rule(
        &["late"],
        r"from 187\.141\.143\.180 port",
        Truth::ContentHas("from 187.141.143.180 port"),
    ),
    rule(
        &["late", "early"],
        r": Failed password for .* from \d+\.\d+\.\d+\.\d+ port \d+ ssh2$",
        Truth::Events(&["E9", "E10"]),
    ),
    rule(
        &["late"],
        r"sshd\[\d+\]: Invalid user .*from \d+\.\d+\.\d+\.\d+$",
        Truth::Events(&["E13"]),
    ),
];

#[test]
fn openssh_negative_rules_ini() {
    // Ground truth sizes, so a corpus change cannot make the test vacuous.
    let corpus = Corpus::load("OpenSSH");
    let exp = model(&corpus, OPENSSH_NEGATIVE, &["early", "late"]);
    assert_eq!(exp.per_rule, [44, 476, 80, 394, 113]);
    assert_eq!(exp.per_alarm, [476, 507]);
    assert_eq!(
        exp.outcomes.iter().filter(|o| o.hits.is_empty()).count(),
        44
    );
    check_system(
        "openssh_negative_rules_ini",
        "OpenSSH",
        Syntax::Ini,
        OPENSSH_NEGATIVE,
    );
}

#[test]
fn openssh_negative_rules_toml() {
    check_system(
        "openssh_negative_rules_toml",
        "OpenSSH",
        Syntax::Toml,
        OPENSSH_NEGATIVE,
    );
}

/// The CSV counts, spelled out for one system: `logalarm test` reports per rule
/// exactly the number of rows with the rule's EventId.
#[test]
fn test_summary_counts_equal_csv_counts() {
    let corpus = Corpus::load("HDFS");
    let count = |ids: &[&str]| {
        corpus
            .rows
            .iter()
            .filter(|r| ids.contains(&r.event.as_str()))
            .count()
    };
    let csv_counts: Vec<usize> = HDFS
        .iter()
        .map(|s| match s.truth {
            Truth::Events(ids) => count(ids),
            _ => unreachable!("HDFS rules are by EventId"),
        })
        .collect();
    assert_eq!(csv_counts, [1, 263, 80, 5, 292, 115, 586]);

    let dir = common::scratch("corpus_test_summary");
    let (config, _) = write_config(&dir, Syntax::Ini, HDFS);
    let out = dry_run(&config, &corpus.path);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", out.stderr_text());
    let text = String::from_utf8(out.stdout).expect("utf-8 report");
    let summary = &text[text.find("\nLines: ").expect("summary") + 1..];
    let reported: Vec<usize> = summary
        .lines()
        .skip_while(|l| *l != "Rules:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| {
            let n = l
                .strip_suffix(" lines")
                .or_else(|| l.strip_suffix(" line"))
                .expect("`N lines`");
            n[n.rfind(": ").expect("`: N`") + 2..]
                .parse()
                .expect("count")
        })
        .collect();
    assert_eq!(reported, csv_counts);
    // Lines matching r5 (E11) also match r7; `all` counts each line once.
    let all_lines = count(&["E5", "E9", "E3", "E4", "E11", "E7", "E12", "E13"]);
    assert!(
        summary.contains(&format!(
            "\n  all: {all_lines} events -> {all_lines} notifications\n"
        )),
        "{summary}"
    );
    assert!(
        summary.starts_with(&format!(
            "Lines: 2000 read, {all_lines} matched, 0 ignored (0 anti-loop tag, 0 not-log-alarm), {} missed\n",
            2000 - all_lines
        )),
        "{summary}"
    );
}
