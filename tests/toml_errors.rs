//! TOML config errors, as `logalarm check` prints them: each names the file,
//! the line and the key path; an unknown key gets a "did you mean"; every
//! error is listed, and none follows a typo to mislead.

mod common;

use common::Logalarm;

/// Writes `content` as `NAME.toml` in a fresh scratch dir, runs
/// `logalarm check -c` on it, asserts exit code 2 and returns the file's path
/// and stderr's lines (without time stamps).
fn check(name: &str, content: &str) -> (String, Vec<String>) {
    let dir = common::scratch(name);
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, content).expect("write the config");
    let out = Logalarm::new().arg("check").arg("-c").arg(&path).run(b"");
    let err = out.stderr_text();
    assert_eq!(out.status.code(), Some(2), "{err}");
    let path = path.to_str().expect("utf-8 path").to_owned();
    (path, err.lines().map(str::to_owned).collect())
}

/// The line `logalarm` prints under an error: the file's line `number` as written.
fn snippet(number: usize, line: &str) -> String {
    format!("[logalarm] config error: {number:>6} | {line}")
}

#[test]
fn an_unknown_key_is_named_with_a_suggestion_and_nothing_misleading_follows() {
    let (path, lines) = check(
        "toml_err_unknown",
        "[alarm.mail]\nacton = \"log:\"\n\n[[rule]]\nregex = \"ERR\"\nalarms = [\"mail\"]\n",
    );
    // Not also "has no `action`", nor "unknown alarm \"mail\"" for the rule.
    assert_eq!(
        lines,
        [
            format!(
                "[logalarm] config error: {path}:2: alarm.mail.acton: unknown key `acton`; did you mean `action`?"
            ),
            snippet(2, "acton = \"log:\"")
        ]
    );
}

#[test]
fn an_unknown_key_without_a_near_one_lists_the_keys() {
    let (path, lines) = check(
        "toml_err_unknown_list",
        "[alarm.mail]\naction = \"log:\"\n\n[[rule]]\nregex = \"ERR\"\nalarms = [\"mail\"]\ncolour = \"red\"\n",
    );
    assert_eq!(
        lines,
        [
            format!(
                "[logalarm] config error: {path}:7: rule[1].colour: unknown key `colour`; a [[rule]] takes regex, alarms, alarm, negate, resolve, multiline"
            ),
            snippet(7, "colour = \"red\"")
        ]
    );
}

#[test]
fn a_plugin_key_typo_is_suggested_by_the_plan() {
    let (path, lines) = check(
        "toml_err_plugin_key",
        "[alarm.mail]\naction = \"log:\"\ntimout = \"5s\"\n\n[[rule]]\nregex = \"ERR\"\nalarms = [\"mail\"]\n",
    );
    assert_eq!(
        lines,
        [
            format!(
                "[logalarm] config error: {path}:3: alarm.mail.timout: unknown key `timout`; did you mean `timeout`?"
            ),
            snippet(3, "timout = \"5s\"")
        ]
    );
}

#[test]
fn a_type_error_names_the_key_path() {
    let (path, lines) = check(
        "toml_err_type",
        "alarm_freq = 3\n[alarm.mail]\naction = \"log:\"\nqueue_size = \"big\"\n\n[[rule]]\nregex = \"ERR\"\nalarms = [\"mail\"]\n",
    );
    assert_eq!(
        lines,
        [
            format!(
                "[logalarm] config error: {path}:4: alarm.mail.queue_size: expected a whole number (usize), got the string \"big\""
            ),
            snippet(4, "queue_size = \"big\"")
        ]
    );
}

#[test]
fn a_duplicate_key_is_named_with_its_first_line() {
    let (path, lines) = check(
        "toml_err_duplicate",
        "[alarm.mail]\naction = \"log:\"\naction = \"cmd:true\"\n\n[[rule]]\nregex = \"ERR\"\nalarms = [\"mail\"]\n",
    );
    assert_eq!(
        lines,
        [
            format!(
                "[logalarm] config error: {path}:3: alarm.mail.action: duplicate key, first set on line 2; keep one"
            ),
            snippet(3, "action = \"cmd:true\"")
        ]
    );
}

#[test]
fn every_error_in_a_file_is_listed() {
    let (path, lines) = check(
        "toml_err_all",
        "alram_freq = 3\nqueue_size = \"big\"\n\n[alarm.mail]\naction = \"log:\"\nretry = { attempt = 3 }\n\n[[rule]]\nregx = \"ERR\"\nalarms = [\"mail\"]\n\n[[rule]]\nregex = \"WARN\"\nalarm = \"nowhere\"\n",
    );
    assert_eq!(
        lines,
        [
            format!(
                "[logalarm] config error: {path}:1: alram_freq: unknown key `alram_freq`; did you mean `alarm_freq`?"
            ),
            snippet(1, "alram_freq = 3"),
            format!(
                "[logalarm] config error: {path}:2: queue_size: expected a whole number (usize), got the string \"big\""
            ),
            snippet(2, "queue_size = \"big\""),
            format!(
                "[logalarm] config error: {path}:6: alarm.mail.retry.attempt: unknown key `attempt`; did you mean `attempts`?"
            ),
            snippet(6, "retry = { attempt = 3 }"),
            format!(
                "[logalarm] config error: {path}:9: rule[1].regx: unknown key `regx`; did you mean `regex`?"
            ),
            snippet(9, "regx = \"ERR\""),
            format!(
                "[logalarm] config error: {path}:13: rule[2].regex: unknown alarm \"nowhere\"; define it (`alarm = nowhere PLUGIN:ARGS` in INI, [alarm.nowhere] in TOML) or fix the name (defined: mail)"
            ),
            snippet(13, "regex = \"WARN\"")
        ]
    );
}

#[test]
fn every_syntax_error_is_listed() {
    let (path, lines) = check(
        "toml_err_syntax",
        "alarm_freq = \n[alarm.mail]\naction = \"log:\"\nqueue_size = 1 2\n",
    );
    // The toml crate's own words; ours are the file and line of each.
    assert_eq!(
        lines,
        [
            format!(
                "[logalarm] config error: {path}:1: string values must be quoted, expected literal string"
            ),
            snippet(1, "alarm_freq = "),
            format!(
                "[logalarm] config error: {path}:4: string values must be quoted, expected literal string"
            ),
            snippet(4, "queue_size = 1 2")
        ]
    );
}
