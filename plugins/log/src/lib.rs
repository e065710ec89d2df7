//! `log:PREFIX` — writes `[logalarm] TIME ALARM: PREFIX message` to stderr
//! (with `--log-format json`, an object with `"level":"warn"`,
//! `"what":"ALARM"` and the rest as `"message"`; see the plugin API's
//! `logline` module).
//!
//! Mirrors uWSGI's `log` alarm (`ALARM: PREFIX message` through the logger). The
//! line starts with the anti-loop tag, so piping logalarm's stderr back into its
//! input can never fire the alarm again.
//!
//! When the `alarm-freq` throttle dropped copies of this message since its
//! previous notification, the line ends with ` (N identical suppressed)`.

#![warn(missing_docs)]

use logalarm_plugin_api::{
    Action, ActionFuture, BuildContext, Level, Notification, Plugin, emit_tagged,
};

/// The `log` plugin.
pub struct LogPlugin;

impl Plugin for LogPlugin {
    fn name(&self) -> &'static str {
        "log"
    }

    /// Any `ARGS` is valid: it is the prefix, possibly empty.
    fn build(&self, _ctx: &BuildContext, args: &str) -> Result<Box<dyn Action>, String> {
        Ok(Box::new(LogAction {
            prefix: args.trim().to_owned(),
        }))
    }
}

/// A built `log:` action.
pub struct LogAction {
    prefix: String,
}

impl LogAction {
    /// The text after `ALARM: ` for a notification.
    pub fn text(&self, n: &Notification) -> Vec<u8> {
        let body = n.body();
        let mut text = Vec::with_capacity(self.prefix.len() + body.len() + 32);
        if !self.prefix.is_empty() {
            text.extend_from_slice(self.prefix.as_bytes());
            text.push(b' ');
        }
        text.extend_from_slice(&body);
        if n.suppressed > 0 {
            text.extend_from_slice(format!(" ({} identical suppressed)", n.suppressed).as_bytes());
        }
        text
    }
}

impl Action for LogAction {
    fn fire<'a>(&'a self, n: &'a Notification) -> ActionFuture<'a> {
        Box::pin(async move {
            // At warn: an alarm is for someone to look at, also in a JSON log
            // filtered by level.
            emit_tagged(Level::Warn, "ALARM", &self.text(n));
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logalarm_plugin_api::Source;
    use std::time::SystemTime;

    fn note(suppressed: u64) -> Notification {
        Notification {
            truncated_from: None,
            suppressed,
            ..Notification::new(
                "a".into(),
                "r".into(),
                b"TERRIBLE ALARM".to_vec(),
                Source::stdin(),
                SystemTime::UNIX_EPOCH,
            )
        }
    }

    #[test]
    fn formats_prefix_and_suppressed() {
        let ctx = BuildContext {
            alarm: "a".into(),
            timeout: None,
            child: None,
            ..BuildContext::default()
        };
        let with = LogAction {
            prefix: "boom".into(),
        };
        assert_eq!(with.text(&note(0)), b"boom TERRIBLE ALARM");
        assert_eq!(
            with.text(&note(2)),
            b"boom TERRIBLE ALARM (2 identical suppressed)"
        );
        let without = LogAction {
            prefix: String::new(),
        };
        assert_eq!(without.text(&note(0)), b"TERRIBLE ALARM");
        assert!(LogPlugin.build(&ctx, "").is_ok());
    }
}
