//! Issue 12's "no panics, secrets stay secret, safe output", through the
//! built binary: a config value out of range is a config error naming its
//! key and range (exit 2, never 101); no config error shows a password; a
//! `cmd:` child never inherits another alarm's `env:` secret unless its
//! alarm passes it (`pass_env`); a line with terminal control bytes reaches
//! the `log:` output escaped, and a `cmd:` still gets it raw on stdin.

mod common;

use common::{Logalarm, path_str, scratch, untimed_bytes, write_file};

/// The password every test hides.
const SECRET: &str = "hunter2-s3cret";

/// Runs `logalarm check` with `args`; its exit code and stderr.
fn check(args: &[&str]) -> (Option<i32>, String) {
    let out = Logalarm::new().arg("check").args(args).output();
    (out.status.code(), out.stderr_text())
}

#[test]
fn values_out_of_range_are_config_errors_naming_key_and_range() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["--alarm-freq", "1e20"],
            "\"1e20\" is longer than 365d, the longest period logalarm takes; write a period from 0 to 365d",
        ),
        (
            &["--queue-size", "2305843009213693952"],
            "2305843009213693952 is out of range; write a whole number from 1 to 1048576 (notifications)",
        ),
        (
            &["--alarm-threshold", "a 5 60years"],
            "alarm-threshold (occurrence 1): \"60years\" is longer than 365d",
        ),
        (
            &["--regex-size-limit", "1"],
            "1 is out of range; write a whole number from 65536 to 1073741824 (bytes)",
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec!["--alarm", "a log:", "--log-alarm", "a x"];
        args.extend_from_slice(extra);
        let (code, err) = check(&args);
        assert_eq!(code, Some(2), "{extra:?}: {err}");
        assert!(err.contains(want), "{extra:?}: {err}");
        assert!(!err.contains("panicked"), "{extra:?}: {err}");
    }

    // An escalation window of 60 years (its worker used to die at the first
    // escalation) and a regex that took 10 s and 910 MB to compile.
    let dir = scratch("hardening_ranges");
    let toml = write_file(
        &dir,
        "a.toml",
        "[alarm.a]\naction = \"log:A\"\nescalate = { limit = 1, window = \"60years\", alarm = \"p\" }\n\
         [alarm.p]\naction = \"log:P\"\n\
         [[rule]]\nregex = '(?u)\\w{5000}'\nalarm = \"a\"\n",
    );
    let t = std::time::Instant::now();
    let (code, err) = check(&["-c", path_str(&toml)]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(
            "a.toml:3: alarm.a.escalate.window: \"60years\" is longer than 365d, the longest period logalarm takes; write a period from 0 to 365d"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "a.toml:7: rule[1].regex: regex too big: compiled size exceeds 10 MiB (regex_size_limit); "
        ),
        "{err}"
    );
    assert!(t.elapsed().as_secs() < 10, "{:?}", t.elapsed());
}

#[test]
fn endless_files_are_config_errors_not_endless_reads() {
    let dir = scratch("hardening_endless");
    let ini = write_file(
        &dir,
        "a.ini",
        "[uwsgi]\nalarm = a log:\nlog-alarm = a @(/dev/zero)\ninclude = /dev/zero.ini\n",
    );
    for args in [vec!["-c", "/dev/zero"], vec!["-c", path_str(&ini)]] {
        let (code, err) = check(&args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let (_, err) = check(&["-c", "/dev/zero"]);
    assert!(
        err.contains("/dev/zero: cannot read the config file: it holds more than 16 MiB"),
        "{err}"
    );
    let (_, err) = check(&["-c", path_str(&ini)]);
    assert!(
        err.contains("@(/dev/zero): cannot read the file: it holds more than 16 MiB"),
        "{err}"
    );
}

#[test]
fn no_config_error_shows_a_password() {
    let dir = scratch("hardening_secrets");
    // Each alarm line is wrong in its own way; each holds the password.
    let ini = write_file(
        &dir,
        "a.ini",
        &format!(
            "[uwsgi]\n\
             alarm = jabber xmpp foo@example.com;{SECRET};ops@example.com\n\
             alarm = hook http//user:{SECRET}@example.com/\n\
             alarm = hook2 htttp:https://user:{SECRET}@example.com/\n\
             alarm = hook3 http:https://example.com/;auth_pass={SECRET};nosuch=1\n\
             alarm = jab2 xmpp:foo@example.com;{SECRET};ops@example.com;port=0\n\
             log-alarm = jabber,hook,hook2,hook3,jab2 x\n"
        ),
    );
    let toml = write_file(
        &dir,
        "a.toml",
        &format!(
            "[alarm.jabber]\naction = \"xmpp foo@example.com;{SECRET};ops@example.com\"\n\
             [alarm.hook]\naction = \"http:https://example.com/\"\nauth_pass = \"{SECRET}\"\nmethd = \"PUT\"\n\
             [[rule]]\nregex = \"x\"\nalarms = [\"jabber\", \"hook\"]\n"
        ),
    );
    let flag = format!("hook xmpp;foo@example.com;{SECRET};ops@example.com");
    for args in [
        vec!["-c", path_str(&ini)],
        vec!["-c", path_str(&toml)],
        vec!["--alarm", &flag, "--log-alarm", "hook x"],
    ] {
        let (code, err) = check(&args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains("config error"), "{args:?}: {err}");
        assert!(!err.contains(SECRET), "{args:?} shows the password:\n{err}");
    }
    // What the errors show instead, INI: the first word, or the redaction.
    let (_, err) = check(&["-c", path_str(&ini)]);
    let err = String::from_utf8(untimed_bytes(err.as_bytes())).unwrap();
    for want in [
        "a.ini:2: alarm: \"xmpp…\" has no `:` after the plugin name",
        "     2 | alarm = jabber xmpp…",
        "     3 | alarm = hook http…",
        "     4 | alarm = hook2 htttp:…",
        "     5 | alarm = hook3 http:https://example.com/;auth_pass=***;nosuch=1",
        "     6 | alarm = jab2 xmpp:foo@example.com;***;ops@example.com;port=0",
    ] {
        assert!(err.contains(want), "{want}\n{err}");
    }
}

#[test]
fn cmd_children_do_not_inherit_env_secrets_unless_passed() {
    let dir = scratch("hardening_env");
    let toml = write_file(
        &dir,
        "a.toml",
        "[alarm.hook]\naction = \"http:http://127.0.0.1:9/\"\nauth_user = \"u\"\nauth_pass = \"env:HOOK_PASS\"\n\
         [alarm.plain]\naction = \"cmd:env\"\n\
         [alarm.passed]\naction = \"cmd:env\"\npass_env = [\"HOOK_PASS\"]\n\
         [[rule]]\nregex = \"x\"\nalarms = [\"plain\"]\n\
         [[rule]]\nregex = \"y\"\nalarms = [\"passed\"]\n",
    );
    let out = Logalarm::new()
        .args(["--no-passthrough", "-c", path_str(&toml)])
        .env("HOOK_PASS", SECRET)
        .env("NOT_A_SECRET", "visible")
        .run(b"x\n");
    let err = out.stderr_text();
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("cmd plain: NOT_A_SECRET=visible"), "{err}");
    assert!(err.contains("cmd plain: LOGALARM_ALARM=plain"), "{err}");
    assert!(!err.contains(SECRET), "the child saw the secret:\n{err}");
    assert!(!err.contains("HOOK_PASS"), "{err}");

    let out = Logalarm::new()
        .args(["--no-passthrough", "-c", path_str(&toml)])
        .env("HOOK_PASS", SECRET)
        .run(b"y\n");
    let err = out.stderr_text();
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!("cmd passed: HOOK_PASS={SECRET}")),
        "{err}"
    );
}

#[test]
fn control_bytes_reach_the_log_action_escaped_and_cmd_raw() {
    let dir = scratch("hardening_escape");
    let raw = dir.join("raw");
    let line: &[u8] = b"TERRIBLE \x1b]0;x\x07 title \x1b[2J\x9b\xff end\n";
    let out = Logalarm::new()
        .args([
            "--no-passthrough",
            "--alarm",
            "console log:[PAGE]",
            "--alarm",
            &format!("keep cmd:cat > {}", path_str(&raw)),
            "--log-alarm",
            "console,keep ^TERRIBLE",
        ])
        .run(line);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
    let stderr = untimed_bytes(&out.stderr);
    let want: &[u8] =
        b"[logalarm] ALARM: [PAGE] TERRIBLE \\x1b]0;x\\x07 title \\x1b[2J\\x9b\\xff end\n";
    assert!(
        stderr.windows(want.len()).any(|w| w == want),
        "{}",
        String::from_utf8_lossy(&stderr)
    );
    assert!(!out.stderr.contains(&0x1b), "an ESC reached stderr");
    assert!(!out.stderr.contains(&0x07), "a BEL reached stderr");
    // The command gets the bytes as they were, as in uWSGI.
    assert_eq!(std::fs::read(&raw).unwrap(), line);
}
