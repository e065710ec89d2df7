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
//! - a non-zero exit status is a delivery failure (logged at warn by the
//!   engine); status 0 is logged at debug (`-v`), so that a quiet alarm
//!   leaves a quiet log.

#![warn(missing_docs)]

use logalarm_plugin_api::{
    Action, ActionError, ActionFuture, BuildContext, Level, Notification, Plugin, Syslog,
    emit_tagged, secret_env_vars,
};
use logalarm_template::Template;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::Command;

/// The default time a command may run before it is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

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
        let env_line: Vec<u8> = body.iter().copied().filter(|&b| b != 0).collect();
        let env_rule: Vec<u8> = n.rule.bytes().filter(|&b| b != 0).collect();
        let syslog = n.syslog.as_deref();
        let field = |f: fn(&Syslog) -> Option<&str>| syslog.and_then(f).unwrap_or_default();
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(&self.command)
            .env("LOGALARM_ALARM", &*n.alarm)
            .env("LOGALARM_LINE", OsStr::from_bytes(&env_line))
            .env("LOGALARM_RULE", OsStr::from_bytes(&env_rule))
            .env("LOGALARM_SOURCE", n.source.to_string())
            .env("LOGALARM_SUPPRESSED", n.suppressed.to_string())
            .env("LOGALARM_HOST", field(|s| s.host.as_deref()))
            .env("LOGALARM_APP", field(|s| s.app.as_deref()))
            .env("LOGALARM_PID", field(|s| s.pid.as_deref()))
            .env("LOGALARM_SEVERITY", field(Syslog::severity_name))
            .env("LOGALARM_FACILITY", field(Syslog::facility_name))
            .env(
                "LOGALARM_TRUNCATED",
                n.truncated_from.map(|t| t.to_string()).unwrap_or_default(),
            )
            .env("LOGALARM_KIND", n.kind.to_string())
            .env("LOGALARM_COUNT", count(n).to_string());
        match &n.key {
            Some(key) => command.env("LOGALARM_KEY", without_nul(key)),
            // Not inherited from logalarm's own environment either.
            None => command.env_remove("LOGALARM_KEY"),
        };
        if let Some(caps) = &n.caps {
            for (i, group) in caps.groups.iter().enumerate() {
                if let Some(text) = group {
                    command.env(format!("LOGALARM_CAP_{i}"), without_nul(text));
                }
            }
            for (name, i) in &caps.names {
                if let Some(Some(text)) = caps.groups.get(*i) {
                    let var = format!("LOGALARM_CAP_{}", name.to_uppercase());
                    command.env(var, without_nul(text));
                }
            }
        }
        // No other alarm's password, unless this alarm asks for it by name.
        for var in secret_env_vars() {
            if !self.pass_env.contains(&var) {
                command.env_remove(var);
            }
        }
        for (name, template) in &self.env {
            let value = template
                .render(n)
                .map_err(|e| ActionError::Permanent(format!("cmd: {e}")))?;
            command.env(name, without_nul(&value));
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout kills whatever the shell started too.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ActionError::Transient(format!("cmd: cannot start /bin/sh: {e}")))?;
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

/// `text` without NUL bytes, which no environment variable can hold.
fn without_nul(text: &str) -> String {
    text.replace('\0', "")
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
