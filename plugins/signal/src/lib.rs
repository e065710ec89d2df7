//! `signal:SIG@TARGET` — sends a Unix signal to a process.
//!
//! uWSGI's `signal:N` raises uWSGI signal N inside the uWSGI instance. A
//! standalone logalarm has no such framework, so it sends a real Unix signal:
//! `SIG` is a number (`10`) or a name (`USR1`, `SIGUSR1`, `hup`), `TARGET` a pid
//! (`@1234`) or a pidfile read at every firing (`@pidfile:/run/app.pid`), so a
//! restarted service with a new pid is still reached.
//!
//! Without a target (`signal:USR1`), the signal goes to the process logalarm
//! wraps (`logalarm run -- CMD`) — the one running at the time of the firing,
//! so a restarted process is reached too; when none runs (between restarts)
//! the delivery fails as transient. Outside `logalarm run` a missing target is
//! a config error: there is nothing sensible to signal when logalarm reads a pipe.

#![warn(missing_docs)]

use logalarm_plugin_api::{Action, ActionError, ActionFuture, BuildContext, Notification, Plugin};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

/// The `signal` plugin.
pub struct SignalPlugin;

/// Whom a `signal:` action signals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A fixed process id.
    Pid(i32),
    /// A pidfile, read at every firing.
    Pidfile(PathBuf),
    /// The process wrapped by `logalarm run`, whichever runs at the firing.
    Child,
}

/// A built `signal:` action.
#[derive(Debug)]
pub struct SignalAction {
    signal: Signal,
    target: Target,
    /// Under `logalarm run`: the wrapped process's pid (0 while none runs).
    child: Option<Arc<AtomicI32>>,
}

/// Parses a signal given as a number or a name, with or without `SIG`, any case.
///
/// # Errors
/// A message naming the bad value.
pub fn parse_signal(text: &str) -> Result<Signal, String> {
    let text = text.trim();
    if let Ok(n) = text.parse::<i32>() {
        return Signal::try_from(n)
            .map_err(|_| format!("signal: {n} is not a signal number on this system"));
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map_err(|_| {
        format!(
            "signal: unknown signal {text:?} (use a number or a name such as HUP, USR1, SIGTERM)"
        )
    })
}

/// Parses `SIG@TARGET`, or `SIG` alone when `wrapped` (under `logalarm run`,
/// where it means the wrapped process).
///
/// # Errors
/// A message for a bad signal, a bad target, or a missing target outside
/// `logalarm run`.
pub fn parse_args(args: &str, wrapped: bool) -> Result<(Signal, Target), String> {
    let args = args.trim();
    let Some((sig, target)) = args.split_once('@') else {
        if wrapped {
            return Ok((parse_signal(args)?, Target::Child));
        }
        return Err(format!(
            "signal:{args} has no target; write signal:{args}@PID or signal:{args}@pidfile:/path/to/app.pid, \
             or wrap the process with `logalarm run -- CMD` to signal it \
             (uWSGI's signal:N raises a uWSGI signal, which has no meaning outside uWSGI)"
        ));
    };
    let signal = parse_signal(sig)?;
    let target = target.trim();
    let target = if let Some(path) = target.strip_prefix("pidfile:") {
        if path.is_empty() {
            return Err("signal: pidfile: needs a path, e.g. @pidfile:/run/app.pid".into());
        }
        Target::Pidfile(PathBuf::from(path))
    } else {
        match target.parse::<i32>() {
            Ok(pid) if pid > 0 => Target::Pid(pid),
            _ => {
                return Err(format!(
                    "signal: target {target:?} is neither a positive pid nor pidfile:PATH"
                ));
            }
        }
    };
    Ok((signal, target))
}

impl Plugin for SignalPlugin {
    fn name(&self) -> &'static str {
        "signal"
    }

    fn build(&self, ctx: &BuildContext, args: &str) -> Result<Box<dyn Action>, String> {
        let (signal, target) = parse_args(args, ctx.child.is_some())?;
        Ok(Box::new(SignalAction {
            signal,
            target,
            child: ctx.child.clone(),
        }))
    }
}

impl SignalAction {
    fn pid(&self) -> Result<i32, ActionError> {
        match &self.target {
            Target::Pid(pid) => Ok(*pid),
            Target::Child => match self.child.as_ref().map(|c| c.load(Ordering::SeqCst)) {
                Some(pid) if pid > 0 => Ok(pid),
                _ => Err(ActionError::Transient(
                    "signal: no process running (the wrapped process has ended)".into(),
                )),
            },
            Target::Pidfile(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ActionError::Transient(format!(
                        "signal: cannot read pidfile {}: {e}",
                        path.display()
                    ))
                })?;
                match text.trim().parse::<i32>() {
                    Ok(pid) if pid > 0 => Ok(pid),
                    _ => Err(ActionError::Transient(format!(
                        "signal: pidfile {} does not hold a pid: {:?}",
                        path.display(),
                        text.trim()
                    ))),
                }
            }
        }
    }
}

impl Action for SignalAction {
    fn fire<'a>(&'a self, _n: &'a Notification) -> ActionFuture<'a> {
        Box::pin(async move {
            let pid = self.pid()?;
            kill(Pid::from_raw(pid), self.signal).map_err(|e| {
                ActionError::Permanent(format!("signal: kill({pid}, {}) failed: {e}", self.signal))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_numbers() {
        assert_eq!(parse_signal("HUP").unwrap(), Signal::SIGHUP);
        assert_eq!(parse_signal("sigusr1").unwrap(), Signal::SIGUSR1);
        assert_eq!(parse_signal("15").unwrap(), Signal::SIGTERM);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("999").is_err());
    }

    #[test]
    fn parses_targets() {
        assert_eq!(
            parse_args("HUP@42", false).unwrap(),
            (Signal::SIGHUP, Target::Pid(42))
        );
        assert_eq!(
            parse_args("USR1@pidfile:/run/x.pid", true).unwrap(),
            (Signal::SIGUSR1, Target::Pidfile("/run/x.pid".into()))
        );
        let err = parse_args("17", false).unwrap_err();
        assert!(
            err.contains("no target") && err.contains("logalarm run"),
            "{err}"
        );
        assert_eq!(
            parse_args("USR1", true).unwrap(),
            (Signal::SIGUSR1, Target::Child)
        );
        assert!(parse_args("NOPE", true).is_err());
        assert!(parse_args("HUP@0", false).is_err());
        assert!(parse_args("HUP@pidfile:", false).is_err());
    }

    #[tokio::test]
    async fn no_child_running_is_transient() {
        let ctx = BuildContext {
            alarm: "a".into(),
            timeout: None,
            child: Some(Arc::new(AtomicI32::new(0))),
            ..BuildContext::default()
        };
        let action = SignalPlugin.build(&ctx, "USR1").unwrap();
        let n = Notification::new(
            "a".into(),
            "r".into(),
            b"m".to_vec(),
            logalarm_plugin_api::Source::stdin(),
            std::time::SystemTime::UNIX_EPOCH,
        );
        let err = action.fire(&n).await.unwrap_err();
        assert!(
            matches!(&err, ActionError::Transient(m) if m.contains("no process running")),
            "{err}"
        );
    }
}
