//! The anti-loop tag through the real binary: logalarm's own output fed back
//! into its input never fires an alarm, so such a pipeline settles; lines
//! starting with `[logalarm` or `[uwsgi-alarm` pass through but never match.

mod common;

use common::{Logalarm, Running};

/// Feeds every line logalarm writes to stderr back into its stdin, as it was
/// written, from line `fed` on, until every line of `wanted` is among those
/// fed back (in any order); `fed` counts the lines fed back.
fn feed_back_until(la: &mut Running, fed: &mut usize, wanted: &[&str]) {
    let what = format!("{wanted:?} fed back");
    while !wanted
        .iter()
        .all(|w| la.stderr().so_far()[..*fed].iter().any(|s| s == w))
    {
        let line = la.stderr().raw_line(*fed, &what);
        la.write_stdin(&line);
        *fed += 1;
    }
}

#[test]
fn output_fed_back_into_input_settles() {
    let mut la = Logalarm::new()
        .args([
            "--no-passthrough",
            "--alarm-freq",
            "0",
            "--alarm",
            "l log:LOOP",
            "--alarm",
            "c cmd:cat",
            "--log-alarm",
            "l,c ALARM",
        ])
        .stdin_piped()
        .start();
    // Every stderr line of logalarm goes back into its stdin, in order, until
    // the test closes it.
    let mut fed = 0;
    la.write_stdin(b"TERRIBLE ALARM seed\n");
    feed_back_until(
        &mut la,
        &mut fed,
        &[
            "[logalarm] ALARM: LOOP TERRIBLE ALARM seed",
            "[logalarm] cmd c: TERRIBLE ALARM seed",
        ],
    );
    // Each worker delivers in order: once the sentinel's lines are back, every
    // notification the fed-back lines could have caused has been emitted (and
    // fed back too).
    la.write_stdin(b"TERRIBLE ALARM sentinel\n");
    feed_back_until(
        &mut la,
        &mut fed,
        &[
            "[logalarm] ALARM: LOOP TERRIBLE ALARM sentinel",
            "[logalarm] cmd c: TERRIBLE ALARM sentinel",
        ],
    );
    la.close_stdin();
    let done = la.finish();
    let all = done.stderr_lines();
    let status = done.status;
    assert!(status.success(), "{status}: {all:#?}");
    assert_eq!(done.stdout, b"", "--no-passthrough");

    let alarms = common::alarm_lines(all);
    assert_eq!(
        alarms,
        [
            "[logalarm] ALARM: LOOP TERRIBLE ALARM seed",
            "[logalarm] ALARM: LOOP TERRIBLE ALARM sentinel"
        ],
        "{all:#?}"
    );
    let cmd_out = common::lines_starting_with(all, "[logalarm] cmd c: ");
    assert_eq!(
        cmd_out,
        [
            "[logalarm] cmd c: TERRIBLE ALARM seed",
            "[logalarm] cmd c: TERRIBLE ALARM sentinel"
        ],
        "{all:#?}"
    );
    // Every line logalarm wrote is tagged, so none of it could have fired.
    assert!(all.iter().all(|l| l.starts_with("[logalarm")), "{all:#?}");
    // Lines were really fed back: at least the two ALARM and two cmd lines.
    assert!(fed >= 4, "{all:#?}");
}

#[test]
fn tagged_lines_pass_through_but_never_fire() {
    let dir = common::scratch("antiloop_tagged");
    let out = dir.join("out");
    let input: &[u8] = b"[uwsgi-alarm TERRIBLE ALARM\n\
        [uwsgi-alarm\n\
        [uwsgi-alarm] alarm ALARM\r\n\
        [logalarm] ALARM: x TERRIBLE ALARM\n\
        [logalarm\n\
        [logalarm TERRIBLE ALARM\n\
        [logalarm] cmd c: TERRIBLE ALARM\r\n\
        \x20[logalarm TERRIBLE ALARM leading space\n\
        x[uwsgi-alarm ALARM not at the start\n\
        \t[logalarm ALARM after a tab\n\
        [logalarm ALARM last, no newline";
    let action = format!("c cmd:cat >> {}", common::sh_quote(&out));
    let output = Logalarm::new()
        .args([
            "--alarm-freq",
            "0",
            "--alarm",
            &action,
            "--alarm",
            "l log:T",
            "--log-alarm",
            "c,l ALARM",
            "--log-alarm",
            "c,l alarm$|^\\[logalarm$",
        ])
        .run(input);
    let stderr = output.stderr_text();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(output.stdout, input, "tagged lines pass through unchanged");
    assert_eq!(
        std::fs::read(&out).unwrap_or_default(),
        b" [logalarm TERRIBLE ALARM leading space\n\
          x[uwsgi-alarm ALARM not at the start\n\
          \t[logalarm ALARM after a tab\n"
            .to_vec(),
        "only untagged lines fire; stderr:\n{stderr}"
    );
    let alarms = common::alarm_lines(stderr.lines());
    assert_eq!(
        alarms,
        [
            "[logalarm] ALARM: T  [logalarm TERRIBLE ALARM leading space",
            "[logalarm] ALARM: T x[uwsgi-alarm ALARM not at the start",
            "[logalarm] ALARM: T \t[logalarm ALARM after a tab",
        ]
    );
}
