//! `cmd:COMMAND` — runs `/bin/sh -c COMMAND` with the alarm message on stdin.
//!
//! Mirrors uWSGI's `cmd` alarm: the message reaches the command byte for byte on
//! its stdin, followed by one `\n` (uWSGI passes the log line with its newline).
//! Beyond uWSGI:
//! - the environment carries `LOGALARM_ALARM` (alarm name), `LOGALARM_LINE` (the
//!   message, NUL bytes removed), `LOGALARM_RULE` (the regex that matched),
//!   `LOGALARM_SOURCE` (where the line came from: `stdin`, `file:PATH`,
//!   `socket:PATH`, `child:stdout`, …), `LOGALARM_SUPPRESSED` (copies of this
//!   message the `alarm-freq` throttle dropped since its previous
//!   notification) and
//!   `LOGALARM_TRUNCATED` (the line's full length in bytes when the message was
//!   cut to `alarm-msg-size`, else empty);
//! - for a message received with a syslog header (socket inputs),
//!   `LOGALARM_HOST`, `LOGALARM_APP`, `LOGALARM_PID`, `LOGALARM_SEVERITY` (`err`,
//!   `warning`, …) and `LOGALARM_FACILITY` (`daemon`, `local0`, …) carry its
//!   fields; each is empty when the message had no such field;
//! - `LOGALARM_KIND` (`alarm`, `digest`, `escalation`, `resolved`, `absent`),
//!   `LOGALARM_COUNT` (events the notification stands for: a digest's or
//!   escalation's count, else 1 + `LOGALARM_SUPPRESSED`), `LOGALARM_KEY` (the
//!   policy key, only when the alarm has one), and for each capture group of
//!   the rule that took part in the match `LOGALARM_CAP_<N>` (by number, 0 the
//!   whole match) and `LOGALARM_CAP_<NAME>` (by name, upper-cased, as written
//!   otherwise); NUL bytes are removed from each value;
//! - TOML `env = { IP = "{{ caps.ip }}" }`: more variables, each a Jinja
//!   template over the notification (the `logalarm-template` crate), compiled
//!   and tried when the config loads (an error names `alarm.NAME.env.IP`) and
//!   rendered per notification (a render error is a failed delivery, not
//!   retried); they are set after logalarm's own, so they may override them;
//! - every variable logalarm sets (its own, the captures, the `env` table's)
//!   carries at most its first [`ENV_VALUE_MAX`] bytes (16 KiB, cut at a
//!   UTF-8 character boundary), and all of them together at most
//!   [`ENV_TOTAL_MAX`] (256 KiB; past it, values are empty): the kernel
//!   refuses to start a program given one variable over 128 KiB
//!   (`MAX_ARG_STRLEN`, execve(2)), and the message may be far longer. Only
//!   the environment is cut: the message always reaches stdin whole.
//!   `LOGALARM_LINE_TRUNCATED` is the message's length in bytes when
//!   `LOGALARM_LINE` holds only its beginning (else empty), and
//!   `LOGALARM_ENV_TRUNCATED` names every variable that was cut,
//!   space-separated (else empty);
//! - the variables that hold other alarms' secrets (every `VAR` of an
//!   `env:VAR` password or header, see
//!   [`logalarm_plugin_api::secret_env_vars`]) are removed from the
//!   command's environment, unless the alarm passes them on by name with
//!   TOML `pass_env = ["VAR"]`; the rest of logalarm's environment is
//!   inherited as in uWSGI;
//! - the command's own stdout and stderr never reach logalarm's stdout: each of
//!   their lines is written to stderr as `[logalarm] TIME cmd NAME: …` (in
//!   JSON, `"level":"info","what":"cmd NAME"`), so its output can never
//!   re-trigger an alarm (in uWSGI it can);
//! - a timeout (default 30 s, TOML `timeout`) kills the command's whole process
//!   group;
//! - a command that cannot start because its arguments and environment are
//!   over the kernel's limit (`E2BIG`: say, a huge inherited environment) is
//!   a permanent failure, never retried: trying again cannot help;
//! - a non-zero exit status is a delivery failure (logged at warn by the
//!   engine); status 0 is logged at debug (`-v`), so that a quiet alarm
//!   leaves a quiet log.

#![warn(missing_docs)]

use logalarm_plugin_api::{
    Action, ActionError, ActionFuture, BuildContext, Level, Notification, Plugin, Syslog,
    emit_tagged, secret_env_vars,
};
use logalarm_template::Template;
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::Command;

/// The default time a command may run before it is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The most bytes one environment variable set by `cmd` carries (16 KiB):
/// the message (`LOGALARM_LINE`), a capture, an `env` table value. Far below
/// the kernel's limit on one variable (128 KiB, `MAX_ARG_STRLEN`); the whole
/// message is on stdin.
pub const ENV_VALUE_MAX: usize = 16 << 10;

/// The most bytes all the variables set by `cmd` carry together (256 KiB),
/// well within the kernel's limit on a whole environment (`ARG_MAX`, a
/// quarter of the stack limit: 2 MiB by default), whatever the number of
/// capture groups.
pub const ENV_TOTAL_MAX: usize = 256 << 10;

/// The `cmd` plugin.
pub struct CmdPlugin;

/// A built `cmd:` action.
#[derive(Debug)]
pub struct CmdAction {
    alarm: String,
    command: String,
    timeout: Duration,
    /// The `env` table: variable name and its template.
    env: Vec<(String, Template)>,
    /// `pass_env`: secret variables the command keeps (all others are removed).
    pass_env: Vec<String>,
}

impl Plugin for CmdPlugin {
    /// uWSGI runs every `cmd` alarm as it comes, without waiting for the
    /// one before; logalarm does too, up to this many at once.
    fn concurrency(&self) -> usize {
        16
    }

    fn name(&self) -> &'static str {
        "cmd"
    }

    /// `env`: the TOML table of variables (templates); `pass_env`: the
    /// secret variables (`env:VAR` of other alarms) the command may see.
    fn options(&self) -> &'static [&'static str] {
        &["env", "pass_env"]
    }

    /// `ARGS` is the shell command; it must not be empty.
    fn build(&self, ctx: &BuildContext, args: &str) -> Result<Box<dyn Action>, String> {
        let command = args.trim();
        if command.is_empty() {
            return Err("cmd: needs a command, e.g. cmd:mail -s 'alarm' admin@example.com".into());
        }
        let mut env = Vec::with_capacity(ctx.env.len());
        for (name, source) in &ctx.env {
            let key = format!("alarm.{}.env.{name}", ctx.alarm);
            if name.is_empty() || name.contains(['=', '\0']) {
                return Err(format!(
                    "`{key}`: not a variable name; write e.g. env = {{ IP = \"{{{{ caps.ip }}}}\" }}"
                ));
            }
            env.push((name.clone(), Template::compile(&key, source)?));
        }
        let mut pass_env = Vec::new();
        if let Some(list) = ctx.options.get("pass_env") {
            for name in list.split(',').map(str::trim) {
                if name.is_empty() || name.contains(['=', '\0']) {
                    return Err(format!(
                        "`alarm.{}.pass_env`: {name:?} is not a variable name; write e.g. pass_env = [\"SMTP_PASS\"]",
                        ctx.alarm
                    ));
                }
                pass_env.push(name.to_owned());
            }
        }
        Ok(Box::new(CmdAction {
            alarm: ctx.alarm.clone(),
            command: command.to_owned(),
            timeout: ctx.timeout.unwrap_or(DEFAULT_TIMEOUT),
            env,
            pass_env,
        }))
    }
}

/// Forwards each line of a child's output to stderr, tagged.
async fn forward_tagged(stream: Option<impl AsyncRead + Unpin>, what: &str) {
    let Some(stream) = stream else { return };
    let mut lines = BufReader::new(stream).split(b'\n');
    while let Ok(Some(line)) = lines.next_segment().await {
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        emit_tagged(Level::Info, what, line);
    }
}

impl CmdAction {
    async fn run(&self, n: &Notification) -> Result<(), ActionError> {
        let body = n.body();
        let syslog = n.syslog.as_deref();
        let field = |f: fn(&Syslog) -> Option<&str>| syslog.and_then(f).unwrap_or_default();
        let mut command = Command::new("/bin/sh");
        command.arg("-c").arg(&self.command);
        let mut env = Env::new(&mut command);
        env.set("LOGALARM_ALARM", n.alarm.as_bytes());
        let line_cut = env.set("LOGALARM_LINE", &body);
        env.set("LOGALARM_RULE", n.rule.as_bytes());
        env.set("LOGALARM_SOURCE", n.source.to_string().as_bytes());
        env.set("LOGALARM_SUPPRESSED", n.suppressed.to_string().as_bytes());
        env.set("LOGALARM_HOST", field(|s| s.host.as_deref()).as_bytes());
        env.set("LOGALARM_APP", field(|s| s.app.as_deref()).as_bytes());
        env.set("LOGALARM_PID", field(|s| s.pid.as_deref()).as_bytes());
        env.set("LOGALARM_SEVERITY", field(Syslog::severity_name).as_bytes());
        env.set("LOGALARM_FACILITY", field(Syslog::facility_name).as_bytes());
        let truncated = n.truncated_from.map(|t| t.to_string()).unwrap_or_default();
        env.set("LOGALARM_TRUNCATED", truncated.as_bytes());
        env.set("LOGALARM_KIND", n.kind.to_string().as_bytes());
        env.set("LOGALARM_COUNT", count(n).to_string().as_bytes());
        let line_len = if line_cut {
            body.len().to_string()
        } else {
            String::new()
        };
        env.set("LOGALARM_LINE_TRUNCATED", line_len.as_bytes());
        match &n.key {
            Some(key) => {
                env.set("LOGALARM_KEY", key.as_bytes());
            }
            // Not inherited from logalarm's own environment either.
            None => {
                env.command.env_remove("LOGALARM_KEY");
            }
        }
        if let Some(caps) = &n.caps {
            for (i, group) in caps.groups.iter().enumerate() {
                if let Some(text) = group {
                    env.set(&format!("LOGALARM_CAP_{i}"), text.as_bytes());
                }
            }
            for (name, i) in &caps.names {
                if let Some(Some(text)) = caps.groups.get(*i) {
                    let var = format!("LOGALARM_CAP_{}", name.to_uppercase());
                    env.set(&var, text.as_bytes());
                }
            }
        }
        // No other alarm's password, unless this alarm asks for it by name.
        for var in secret_env_vars() {
            if !self.pass_env.contains(&var) {
                env.command.env_remove(var);
            }
        }
        for (name, template) in &self.env {
            let value = template
                .render(n)
                .map_err(|e| ActionError::Permanent(format!("cmd: {e}")))?;
            env.set(name, value.as_bytes());
        }
        env.finish();
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout kills whatever the shell started too.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| spawn_error(&e))?;
        // Until the command has finished, dropping this future (a drain deadline
        // aborting the worker) kills the command's whole process group.
        let mut group = GroupGuard(child.id().and_then(|p| i32::try_from(p).ok()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let what = format!("cmd {}", self.alarm);
        let feed = async move {
            if let Some(mut stdin) = stdin {
                // A command that does not read its stdin closes the pipe early; that is its right.
                let _ = stdin.write_all(&body).await;
                let _ = stdin.write_all(b"\n").await;
                let _ = stdin.shutdown().await;
            }
        };
        let work = async {
            let ((), (), (), status) = tokio::join!(
                feed,
                forward_tagged(stdout, &what),
                forward_tagged(stderr, &what),
                child.wait()
            );
            status
        };
        let outcome = tokio::time::timeout(self.timeout, work).await;
        if outcome.is_ok() {
            group.0 = None;
        }
        match outcome {
            Ok(Ok(status)) if status.success() => {
                // A success per delivery: only worth a line when asked (-v).
                tracing::debug!(alarm = %self.alarm, "cmd exited with status 0");
                Ok(())
            }
            Ok(Ok(status)) => Err(ActionError::Permanent(format!("cmd: {status}"))),
            Ok(Err(e)) => Err(ActionError::Transient(format!(
                "cmd: waiting for the command failed: {e}"
            ))),
            Err(_) => {
                group.kill();
                let _ = child.wait().await;
                Err(ActionError::Transient(format!(
                    "cmd: still running after {}, killed",
                    humanize(self.timeout)
                )))
            }
        }
    }
}

/// The events a notification stands for: its aggregate's count, else the
/// line and the identical ones `alarm-freq` dropped before it.
fn count(n: &Notification) -> u64 {
    match &n.aggregate {
        Some(a) => a.count,
        None => n.suppressed.saturating_add(1),
    }
}

/// Why a command could not start, as a delivery failure: permanent when the
/// kernel refuses its arguments and environment as too large (`E2BIG`,
/// execve(2)), which no retry can change; transient otherwise (out of
/// processes or memory for a moment).
fn spawn_error(e: &io::Error) -> ActionError {
    if e.raw_os_error() == Some(Errno::E2BIG as i32) {
        ActionError::Permanent(format!(
            "cmd: cannot start /bin/sh: {e}: its arguments and environment are over the kernel's limit (ARG_MAX, MAX_ARG_STRLEN); a shorter command or a smaller inherited environment would start"
        ))
    } else {
        ActionError::Transient(format!("cmd: cannot start /bin/sh: {e}"))
    }
}

/// The variables logalarm sets on one command, each within [`ENV_VALUE_MAX`]
/// and all within [`ENV_TOTAL_MAX`]; remembers which were cut.
struct Env<'a> {
    command: &'a mut Command,
    /// Bytes left of [`ENV_TOTAL_MAX`].
    left: usize,
    /// The names of the variables cut, space-separated.
    cut: String,
}

impl<'a> Env<'a> {
    fn new(command: &'a mut Command) -> Self {
        Env {
            command,
            left: ENV_TOTAL_MAX,
            cut: String::new(),
        }
    }

    /// Sets `name` to `value` without its NUL bytes (which no variable can
    /// hold), cut to what it may carry; true when it was cut.
    fn set(&mut self, name: &str, value: &[u8]) -> bool {
        let (value, was_cut) = bounded(value, ENV_VALUE_MAX.min(self.left));
        self.left -= value.len();
        if was_cut {
            if !self.cut.is_empty() {
                self.cut.push(' ');
            }
            self.cut.push_str(name);
        }
        self.command.env(name, OsStr::from_bytes(&value));
        was_cut
    }

    /// Sets `LOGALARM_ENV_TRUNCATED`: the names of the variables cut.
    fn finish(self) {
        self.command.env("LOGALARM_ENV_TRUNCATED", &self.cut);
    }
}

/// `value` without NUL bytes, cut to at most `max` bytes, at a UTF-8
/// character boundary when it is UTF-8 there (a byte that is not is cut
/// anywhere); and whether it was cut.
fn bounded(value: &[u8], max: usize) -> (Vec<u8>, bool) {
    let mut out: Vec<u8> = value
        .iter()
        .copied()
        .filter(|&b| b != 0)
        .take(max.saturating_add(1))
        .collect();
    if out.len() <= max {
        return (out, false);
    }
    let mut end = max;
    // Back off over at most three continuation bytes (10xxxxxx) to the start
    // of the character the limit falls in.
    let start = end.saturating_sub(3);
    while end > start && out.get(end).is_some_and(|&b| b & 0xC0 == 0x80) {
        end -= 1;
    }
    if out.get(end).is_some_and(|&b| b & 0xC0 == 0x80) {
        end = max;
    }
    out.truncate(end);
    (out, true)
}

/// The process group of a running command; killed when dropped while armed.
struct GroupGuard(Option<i32>);

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

impl Action for CmdAction {
    fn fire<'a>(&'a self, n: &'a Notification) -> ActionFuture<'a> {
        Box::pin(self.run(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logalarm_plugin_api::Source;
    use std::time::SystemTime;

    fn note(message: &[u8]) -> Notification {
        Notification {
            suppressed: 3,
            ..Notification::new(
                "a".into(),
                "ALARM".into(),
                message.to_vec(),
                Source::stdin(),
                SystemTime::UNIX_EPOCH,
            )
        }
    }

    fn action(command: &str, timeout: Option<Duration>) -> Box<dyn Action> {
        let ctx = BuildContext {
            alarm: "a".into(),
            timeout,
            child: None,
            ..BuildContext::default()
        };
        CmdPlugin.build(&ctx, command).unwrap()
    }

    #[tokio::test]
    async fn passes_message_and_env() {
        let dir = std::env::temp_dir().join(format!("logalarm-cmd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let cmd = format!(
            "cat > {0}; printf '%s|%s|%s|%s' \"$LOGALARM_ALARM\" \"$LOGALARM_LINE\" \"$LOGALARM_SUPPRESSED\" \"$LOGALARM_SOURCE\" >> {0}",
            out.display()
        );
        action(&cmd, None)
            .fire(&note(b"TERRIBLE \xff ALARM"))
            .await
            .unwrap();
        let got = std::fs::read(&out).unwrap();
        assert_eq!(got, b"TERRIBLE \xff ALARM\na|TERRIBLE \xff ALARM|3|stdin");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn failing_and_hanging_commands() {
        let err = action("exit 3", None).fire(&note(b"x")).await.unwrap_err();
        assert!(err.to_string().contains("exit status: 3"), "{err}");
        let err = action("sleep 5", Some(Duration::from_millis(100)))
            .fire(&note(b"x"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("killed"), "{err}");
    }

    #[test]
    fn empty_command_is_an_error() {
        let ctx = BuildContext {
            alarm: "a".into(),
            timeout: None,
            child: None,
            ..BuildContext::default()
        };
        assert!(CmdPlugin.build(&ctx, "  ").is_err());
    }

    #[tokio::test]
    async fn exports_kind_count_key_caps_and_env_templates() {
        let ctx = BuildContext {
            alarm: "ssh".into(),
            env: vec![
                ("IP".into(), "{{ caps.ip }}".into()),
                ("WHO".into(), "{{ caps.user or 'nobody' }}@{{ key }}".into()),
            ],
            ..BuildContext::default()
        };
        let mut n = note(b"Invalid user admin from 10.0.0.7");
        n.key = Some("10.0.0.7".into());
        n.caps = Some(std::sync::Arc::new(logalarm_plugin_api::Captures {
            groups: vec![
                Some("user admin from 10.0.0.7".into()),
                Some("admin".into()),
                Some("10.0.0.7".into()),
                None,
            ],
            names: vec![("user".into(), 1), ("ip".into(), 2), ("port".into(), 3)],
        }));
        let dir = std::env::temp_dir().join(format!("logalarm-cmd-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let with_env = CmdPlugin
            .build(
                &ctx,
                &format!(
                    "env | grep -E '^(LOGALARM_(KIND|COUNT|KEY|CAP_[A-Z0-9_]+)|IP|WHO)=' | sort > {}",
                    out.display()
                ),
            )
            .unwrap();
        with_env.fire(&n).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "IP=10.0.0.7\n\
             LOGALARM_CAP_0=user admin from 10.0.0.7\n\
             LOGALARM_CAP_1=admin\n\
             LOGALARM_CAP_2=10.0.0.7\n\
             LOGALARM_CAP_IP=10.0.0.7\n\
             LOGALARM_CAP_USER=admin\n\
             LOGALARM_COUNT=4\n\
             LOGALARM_KEY=10.0.0.7\n\
             LOGALARM_KIND=alarm\n\
             WHO=admin@10.0.0.7\n"
        );
        // Without caps, key or env: only kind and count.
        let plain = action(
            &format!(
                "env | grep -E '^LOGALARM_(KIND|COUNT|KEY|CAP_)' | sort > {}",
                out.display()
            ),
            None,
        );
        let mut digest = note(b"x");
        digest.kind = logalarm_plugin_api::Kind::Digest;
        digest.aggregate = logalarm_template::sample().aggregate;
        plain.fire(&digest).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "LOGALARM_COUNT=3\nLOGALARM_KIND=digest\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn values_are_cut_at_a_character_boundary() {
        assert_eq!(bounded(b"a\0b", 10), (b"ab".to_vec(), false));
        assert_eq!(bounded(b"abcdef", 6), (b"abcdef".to_vec(), false));
        assert_eq!(bounded(b"abcdef", 4), (b"abcd".to_vec(), true));
        // "é" is C3 A9: a limit inside it keeps the bytes before it.
        assert_eq!(bounded("abcdé".as_bytes(), 5), (b"abcd".to_vec(), true));
        assert_eq!(bounded("€€".as_bytes(), 4), ("€".as_bytes().to_vec(), true));
        // Not UTF-8 there: cut where the limit is.
        assert_eq!(bounded(b"\x80\x80\x80\x80\x80", 4), (vec![0x80; 4], true));
        assert_eq!(bounded(b"abc", 0), (Vec::new(), true));
    }

    #[test]
    fn an_environment_over_the_kernel_limit_fails_for_good() {
        let e = io::Error::from_raw_os_error(Errno::E2BIG as i32);
        assert!(matches!(spawn_error(&e), ActionError::Permanent(_)));
        let e = io::Error::from_raw_os_error(Errno::EAGAIN as i32);
        assert!(matches!(spawn_error(&e), ActionError::Transient(_)));
    }

    #[tokio::test]
    async fn a_message_of_any_size_reaches_stdin_whole_and_the_environment_cut() {
        let dir = std::env::temp_dir().join(format!("logalarm-cmd-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (out, vars) = (dir.join("out"), dir.join("vars"));
        let ctx = BuildContext {
            alarm: "big".into(),
            env: vec![("MSG".into(), "{{ line }}".into())],
            ..BuildContext::default()
        };
        let action = CmdPlugin
            .build(
                &ctx,
                &format!(
                    "cat > {}; printf '%s|%s|%s|%s|%s' \"${{#LOGALARM_LINE}}\" \"$LOGALARM_LINE_TRUNCATED\" \"${{#LOGALARM_CAP_0}}\" \"${{#MSG}}\" \"$LOGALARM_ENV_TRUNCATED\" > {}",
                    out.display(),
                    vars.display()
                ),
            )
            .unwrap();
        // 1 MiB: eight times what the kernel allows one variable.
        let message: Vec<u8> = (0..1 << 20).map(|i| b'a' + (i % 26) as u8).collect();
        let mut n = note(&message);
        n.caps = Some(std::sync::Arc::new(logalarm_plugin_api::Captures {
            groups: vec![Some(String::from_utf8(message.clone()).unwrap())],
            names: Vec::new(),
        }));
        action.fire(&n).await.unwrap();
        let got = std::fs::read(&out).unwrap();
        assert_eq!(got.len(), message.len() + 1);
        assert!(got[..message.len()] == message[..] && got.ends_with(b"\n"));
        assert_eq!(
            std::fs::read_to_string(&vars).unwrap(),
            format!(
                "16384|{}|16384|16384|LOGALARM_LINE LOGALARM_CAP_0 MSG",
                1 << 20
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn env_templates_are_checked_at_build() {
        let ctx = |name: &str, source: &str| BuildContext {
            alarm: "ssh".into(),
            env: vec![(name.into(), source.into())],
            ..BuildContext::default()
        };
        let err = CmdPlugin
            .build(&ctx("IP", "{{ caps.ip "), "true")
            .err()
            .unwrap();
        assert!(
            err.starts_with("`alarm.ssh.env.IP` template: syntax error"),
            "{err}"
        );
        let err = CmdPlugin
            .build(&ctx("IP", "{{ ip }}"), "true")
            .err()
            .unwrap();
        assert!(
            err.starts_with("`alarm.ssh.env.IP` template: undefined value"),
            "{err}"
        );
        let err = CmdPlugin.build(&ctx("A=B", "x"), "true").err().unwrap();
        assert!(
            err.starts_with("`alarm.ssh.env.A=B`: not a variable name"),
            "{err}"
        );
    }
}
