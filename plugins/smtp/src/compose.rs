//! What a mail says: its subject, its text and its Message-ID, made from one
//! notification. The one place that turns a notification into words, so that
//! subject and body templates can take over here.

use logalarm_plugin_api::Notification;
use std::fmt::Write as _;

/// The subject and body of an alarm's mails.
pub struct Compose {
    /// The `subject=` key; `None` for the default, `[logalarm] alarm NAME`.
    subject: Option<String>,
}

impl Compose {
    /// Mails with the given `subject=` (or the default one).
    pub fn new(subject: Option<String>) -> Compose {
        Compose { subject }
    }

    /// The `Subject:` text: the `subject=` key, or `[logalarm] alarm NAME`.
    /// Control characters (a line break would end the header) become spaces.
    pub fn subject(&self, n: &Notification) -> String {
        let text = match &self.subject {
            Some(s) => s.clone(),
            None => format!("[logalarm] alarm {}", n.alarm),
        };
        text.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    }

    /// The text of the mail: the message ([`Notification::body`], invalid
    /// UTF-8 replaced by U+FFFD), a line break, then a signature block (`-- `,
    /// RFC 3676 §4.3) of one line naming the alarm and where the line came
    /// from, with how many identical messages `alarm-freq` dropped before it,
    /// when any:
    ///
    /// ```text
    /// TERRIBLE ALARM! the world exploded
    /// --
    /// logalarm alarm mail, from file:/var/log/app.log (2 identical suppressed)
    /// ```
    pub fn body(&self, n: &Notification) -> String {
        let message = n.body();
        let message = String::from_utf8_lossy(&message);
        let mut text = String::with_capacity(message.len() + 96);
        text.push_str(&message);
        text.push_str("\n-- \n");
        let _ = write!(text, "logalarm alarm {}, from {}", n.alarm, n.source);
        if n.suppressed > 0 {
            let _ = write!(text, " ({} identical suppressed)", n.suppressed);
        }
        // No final line break: the end of DATA (`CRLF.CRLF`) ends the last line.
        text
    }
}

/// The `Message-ID:` of a notification's mail: `<ID@HOST>` (RFC 5322 §3.6.4),
/// ID being [`Notification::id`], the same on every attempt to deliver it.
/// Any byte of ID or HOST that may not stand in a dot-atom (RFC 5322 §3.2.3:
/// `atext`, and single dots between them) is written `=XX`, `=` itself too, so
/// distinct ids stay distinct.
pub fn message_id(id: &str, host: &str) -> String {
    format!("<{}@{}>", atext(id), atext(host))
}

/// `text` as an RFC 5322 dot-atom: every byte outside `atext` (and `=`), and
/// every dot at either end or next to another dot, written `=XX`.
fn atext(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    for (i, &b) in bytes.iter().enumerate() {
        let lone_dot = b == b'.'
            && i > 0
            && i + 1 < bytes.len()
            && bytes[i - 1] != b'.'
            && bytes[i + 1] != b'.';
        let plain = lone_dot || b.is_ascii_alphanumeric() || b"!#$%&'*+-/?^_`{|}~".contains(&b);
        if plain {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "={b:02X}");
        }
    }
    if out.is_empty() {
        out.push_str("=00");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use logalarm_plugin_api::Source;
    use std::time::SystemTime;

    fn note(message: &[u8], suppressed: u64) -> Notification {
        Notification {
            id: "00ab-mail-3".into(),
            alarm: "mail".into(),
            rule: "r".into(),
            message: message.to_vec(),
            truncated_from: None,
            suppressed,
            source: Source::Stdin,
            syslog: None,
            time: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn subject_default_and_given() {
        let n = note(b"x", 0);
        assert_eq!(Compose::new(None).subject(&n), "[logalarm] alarm mail");
        assert_eq!(
            Compose::new(Some("a\r\nBcc: x".into())).subject(&n),
            "a  Bcc: x"
        );
    }

    #[test]
    fn body_with_footer() {
        let c = Compose::new(None);
        assert_eq!(
            c.body(&note(b"boom \xff!", 0)),
            "boom \u{fffd}!\n-- \nlogalarm alarm mail, from stdin"
        );
        assert_eq!(
            c.body(&note(b"boom", 2)),
            "boom\n-- \nlogalarm alarm mail, from stdin (2 identical suppressed)"
        );
    }

    #[test]
    fn message_ids_are_dot_atoms() {
        assert_eq!(
            message_id("00ab-mail-3", "host.example.org"),
            "<00ab-mail-3@host.example.org>"
        );
        assert_eq!(
            message_id(".0-my alarm=x..-1", "é"),
            "<=2E0-my=20alarm=3Dx=2E=2E-1@=C3=A9>"
        );
        assert_eq!(message_id("a", ""), "<a@=00>");
    }
}
