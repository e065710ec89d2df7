//! `xmpp:JID[/RESOURCE];PASSWORD;TO1,TO2` — sends each alarm as a Jabber/XMPP
//! chat message to every recipient, over one persistent connection per alarm.
//!
//! Mirrors uWSGI's `xmpp` alarm (plugins/alarm_xmpp, a gloox client): the
//! account logs in once and stays connected; each message goes to each
//! recipient as a `<message type='chat'>` whose body is the alarm message.
//! The password may be `env:VAR` or `file:PATH` (resolved at config load) and
//! is shown as `***` by `logalarm check`. Optional `;key=value` items after
//! the recipients, or the alarm's TOML keys, choose the server and TLS
//! ([`args`]): `host`, `port`, `tls=required|insecure|no`.
//!
//! ```ini
//! alarm = jabber xmpp:alarms@example.com;env:XMPP_PASSWORD;ops@example.com,oncall@example.com
//! ```
//!
//! Beyond uWSGI, which drops messages while disconnected and accepts any TLS
//! certificate:
//! - the connection is opened at the first alarm and kept; when it is lost
//!   the link reconnects with backoff (200 ms doubling to 10 s, jittered);
//! - a message counts as delivered once the server confirmed it: each batch
//!   of messages is followed by a ping (XEP-0199) whose answer proves the
//!   server took them (RFC 6120 §10.1: stanzas are processed in order). A
//!   message sent on a connection that died before the answer is sent again
//!   on the next one — at least once; a duplicate only when the connection
//!   died between the server taking it and its answer arriving;
//! - `fire` completes when the server confirmed the message. It reports a
//!   *transient* failure (which the engine retries, with backoff, within the
//!   alarm's deadline: [`Plugin::retries`]) when that takes longer than the
//!   action timeout (default [`DEFAULT_TIMEOUT`], TOML `timeout`): a message
//!   not yet written is withdrawn and queued again by the retry; one written
//!   to a connection stays, and the retry of the same notification joins it
//!   instead of sending a copy. It reports a *permanent* failure, at once,
//!   when the server refused the login (a wrong password) or cannot be
//!   trusted (an untrusted certificate, no STARTTLS under `tls=required`),
//!   and when it bounced the message for a recipient;
//! - while the server is unreachable, the alarm's notifications wait in the
//!   engine's queue of the alarm and go out, in order, after the reconnect;
//!   written messages whose `fire` gave up wait in the link's own queue, at
//!   most [`link::OUTBOX_CAPACITY`] per alarm (beyond, `fire` fails at once,
//!   transient);
//! - certificates are verified (`tls=insecure` accepts any, as uWSGI does);
//! - DNS SRV records are not looked up: the server is the JID's domain on
//!   port 5222 unless `host=`/`port=` say otherwise.
//!
//! The message is the alarm message as UTF-8 (invalid bytes become U+FFFD),
//! with characters XML cannot carry (control characters other than tab)
//! replaced by U+FFFD, cut to [`MAX_TEXT`] bytes, followed by
//! ` (N identical suppressed)` when `alarm-freq` dropped copies of it since
//! its previous notification.

#![warn(missing_docs)]

pub mod args;
pub mod connect;
pub mod link;
pub mod outbox;
pub mod session;

use crate::args::Settings;
use crate::connect::Connector;
use crate::link::{Link, OUTBOX_CAPACITY, Status, describe};
use crate::outbox::{Outcome, Submitted};
use logalarm_plugin_api::{Action, ActionError, ActionFuture, BuildContext, Notification, Plugin};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How long `fire` waits for the server to confirm a message, unless the
/// alarm sets `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest message body sent, in bytes; servers refuse large stanzas
/// (Prosody's default limit is 256 KiB), and a refused stanza ends the
/// connection, so a longer message is cut (and marked) instead.
pub const MAX_TEXT: usize = 64 * 1024;

/// The `xmpp` plugin.
pub struct XmppPlugin;

impl Plugin for XmppPlugin {
    fn name(&self) -> &'static str {
        "xmpp"
    }

    fn redact(&self, args: &str) -> String {
        args::redact(args)
    }

    /// `host`, `port` and `tls` may be TOML keys of the alarm as well.
    fn options(&self) -> &'static [&'static str] {
        args::KEYS
    }

    /// A server that is down or slow to answer is worth trying again.
    fn retries(&self) -> bool {
        true
    }

    /// Parses `ARGS` (see [`args`]), applies the TOML keys and resolves the
    /// password; connects nothing yet (there is no runtime at config load).
    fn build(&self, ctx: &BuildContext, args: &str) -> Result<Box<dyn Action>, String> {
        let mut settings = Settings::parse(args)?;
        for (key, value) in &ctx.options {
            settings.apply(key, value)?;
        }
        let connector = Connector::new(&settings)?;
        Ok(Box::new(XmppAction {
            alarm: ctx.alarm.clone(),
            timeout: ctx.timeout.unwrap_or(DEFAULT_TIMEOUT),
            settings: Arc::new(settings),
            connector,
            link: OnceLock::new(),
        }))
    }
}

/// A built `xmpp:` action: its connection starts with the first alarm.
pub struct XmppAction {
    alarm: String,
    timeout: Duration,
    settings: Arc<Settings>,
    connector: Connector,
    link: OnceLock<Link>,
}

impl XmppAction {
    /// The running link, started on the current tokio runtime at first use.
    fn link(&self) -> Result<&Link, ActionError> {
        if let Some(link) = self.link.get() {
            return Ok(link);
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            ActionError::Permanent("xmpp: no async runtime to run the connection on".into())
        })?;
        Ok(self.link.get_or_init(|| {
            Link::start(
                &runtime,
                &self.alarm,
                self.settings.clone(),
                self.connector.clone(),
            )
        }))
    }

    async fn deliver(&self, n: &Notification) -> Result<(), ActionError> {
        let link = self.link()?;
        let shared = &link.shared;
        if let Status::Refused(why) = shared.status() {
            return Err(ActionError::Permanent(format!("xmpp: {why}")));
        }
        let server = self.connector.server();
        let id: std::sync::Arc<str> = n.id.to_string().into();
        let outcome = match shared.submit(&id, || body(n).into()) {
            Submitted::AlreadyDelivered => return Ok(()),
            Submitted::Full => {
                return Err(ActionError::Transient(format!(
                    "xmpp: {OUTBOX_CAPACITY} messages already wait for {server} ({}); this one was not queued ({} refused so far)",
                    describe(&shared.status()),
                    shared.overflow()
                )));
            }
            Submitted::Queued(outcome) => outcome,
        };
        match tokio::time::timeout(self.timeout, outcome).await {
            Ok(Ok(Outcome::Delivered)) => Ok(()),
            Ok(Ok(Outcome::Refused(why))) => Err(ActionError::Permanent(format!("xmpp: {why}"))),
            Ok(Err(_)) => Err(ActionError::Transient(
                "xmpp: the message was taken over by a retry of the same alarm".into(),
            )),
            Err(_) if shared.abandon(&id) => Err(ActionError::Transient(format!(
                "xmpp: not sent within {} ({})",
                humantime(self.timeout),
                describe(&shared.status())
            ))),
            Err(_) => Err(ActionError::Transient(format!(
                "xmpp: {server} did not confirm the message within {} ({}); it is sent again after a reconnect unless the server confirms it",
                humantime(self.timeout),
                describe(&shared.status())
            ))),
        }
    }
}

impl Action for XmppAction {
    fn fire<'a>(&'a self, n: &'a Notification) -> ActionFuture<'a> {
        Box::pin(self.deliver(n))
    }
}

fn humantime(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

/// The chat message body for a notification: its message ([`text`]), then
/// ` (N identical suppressed)` when the `alarm-freq` throttle dropped copies
/// of this message since its previous notification (as the `log` action
/// writes it).
pub fn body(n: &Notification) -> String {
    let mut body = text(&n.body());
    if n.suppressed > 0 {
        body.push_str(&format!(" ({} identical suppressed)", n.suppressed));
    }
    body
}

/// The chat message body for an alarm message: UTF-8 (invalid bytes as
/// U+FFFD), without characters XML 1.0 cannot carry (§2.2: control characters
/// other than tab, CR and LF; U+FFFE, U+FFFF), cut to [`MAX_TEXT`] bytes.
pub fn text(message: &[u8]) -> String {
    let lossy = String::from_utf8_lossy(message);
    let mut out = String::with_capacity(lossy.len().min(MAX_TEXT + 64));
    for c in lossy.chars() {
        if out.len() + c.len_utf8() > MAX_TEXT {
            out.push_str(&format!(
                " [logalarm: cut to {MAX_TEXT} bytes for XMPP, {} in all]",
                lossy.len()
            ));
            break;
        }
        let allowed =
            matches!(c, '\t' | '\n' | '\r') || !(c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}');
        out.push(if allowed {
            c
        } else {
            char::REPLACEMENT_CHARACTER
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_xml_safe_and_bounded() {
        assert_eq!(
            text(b"TERRIBLE ALARM \xff\x01\tok"),
            "TERRIBLE ALARM \u{FFFD}\u{FFFD}\tok"
        );
        let long = text(&vec![b'x'; MAX_TEXT + 10]);
        assert!(long.starts_with(&"x".repeat(MAX_TEXT - 100)));
        assert!(long.ends_with(&format!(
            " [logalarm: cut to {MAX_TEXT} bytes for XMPP, {} in all]",
            MAX_TEXT + 10
        )));
    }

    #[test]
    fn body_tells_of_suppressed_repeats() {
        let mut n = Notification::new(
            "jab".into(),
            "r".into(),
            b"TERRIBLE ALARM".to_vec(),
            logalarm_plugin_api::Source::stdin(),
            std::time::SystemTime::UNIX_EPOCH,
        );
        assert_eq!(body(&n), "TERRIBLE ALARM");
        n.suppressed = 3;
        assert_eq!(body(&n), "TERRIBLE ALARM (3 identical suppressed)");
    }

    #[test]
    fn builds_and_redacts() {
        let ctx = BuildContext {
            alarm: "jab".into(),
            timeout: None,
            child: None,
            options: Default::default(),
            headers: Vec::new(),
            env: Vec::new(),
        };
        assert!(
            XmppPlugin
                .build(&ctx, "app@example.it;secret1;foo1@foo.it,foo2@foo.it")
                .is_ok()
        );
        let err = XmppPlugin
            .build(&ctx, "example.it;secret1;foo1@foo.it")
            .err()
            .unwrap();
        assert!(!err.contains("secret1"), "{err}");
        assert_eq!(
            XmppPlugin.redact("app@example.it;secret1;foo1@foo.it"),
            "app@example.it;***;foo1@foo.it"
        );
    }
}
