//! What a mail says: its subject, its text and its Message-ID, made from one
//! notification. The one place that turns a notification into words, so that
//! subject and body templates can take over here.

use logalarm_plugin_api::{BuildContext, Notification};
use logalarm_template::Template;
use std::fmt::Write as _;

/// Where a mail's subject comes from.
enum Subject {
    /// `[logalarm] alarm NAME`.
    Default,
    /// uWSGI's `subject=` key, as written.
    Literal(String),
    /// TOML `subject = '…'`, a Jinja template over the notification.
    Template(Box<Template>),
}

/// The subject and body of an alarm's mails.
pub struct Compose {
    subject: Subject,
    /// TOML `body = '…'`; `None` for the default text ([`Compose::body`]).
    body: Option<Template>,
}

impl Compose {
    /// Mails with the given `subject=` key (or the default subject), unless the
    /// alarm's TOML table sets `subject` or `body` templates
    /// (`ctx.options`), which take over.
    ///
    /// # Errors
    /// A template that does not compile (or fails on a sample notification),
    /// or both `subject=` and a TOML `subject`.
    pub fn new(ctx: &BuildContext, subject: Option<String>) -> Result<Compose, String> {
        let subject = match (ctx.options.get("subject"), subject) {
            (Some(_), Some(_)) => {
                return Err(
                    "the subject is given twice (`subject=` in the action and `subject` in the alarm's table); keep one"
                        .into(),
                );
            }
            (Some(source), None) => {
                Subject::Template(Box::new(Template::compile("subject", source)?))
            }
            (None, Some(text)) => Subject::Literal(text),
            (None, None) => Subject::Default,
        };
        let body = ctx
            .options
            .get("body")
            .map(|source| Template::compile("body", source))
            .transpose()?;
        Ok(Compose { subject, body })
    }

    /// The `Subject:` text: the template, the `subject=` key, or `[logalarm]
    /// alarm NAME`. Control characters (a line break would end the header)
    /// become spaces.
    ///
    /// # Errors
    /// The subject template failed on this notification.
    pub fn subject(&self, n: &Notification) -> Result<String, String> {
        let text = match &self.subject {
            Subject::Template(t) => t.render(n)?,
            Subject::Literal(s) => s.clone(),
            Subject::Default => format!("[logalarm] alarm {}", n.alarm),
        };
        Ok(text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect())
    }

    /// The text of the mail: the body template's output when there is one,
    /// else the default text ([`Compose::default_body`]).
    ///
    /// # Errors
    /// The body template failed on this notification.
    pub fn body(&self, n: &Notification) -> Result<String, String> {
        match &self.body {
            Some(t) => t.render(n),
            None => Ok(Self::default_body(n)),
        }
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
    pub fn default_body(n: &Notification) -> String {
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
            id: logalarm_plugin_api::NoteId {
                run: 0xab,
                alarm: 0,
                seq: 3,
            },
            suppressed,
            ..Notification::new(
                "mail".into(),
                "r".into(),
                message.to_vec(),
                Source::stdin(),
                SystemTime::UNIX_EPOCH,
            )
        }
    }

    fn compose(options: &[(&str, &str)], subject: Option<&str>) -> Result<Compose, String> {
        let mut ctx = BuildContext::default();
        for (k, v) in options {
            ctx.options.insert((*k).to_owned(), (*v).to_owned());
        }
        Compose::new(&ctx, subject.map(str::to_owned))
    }

    #[test]
    fn subject_default_and_given() {
        let n = note(b"x", 0);
        assert_eq!(
            compose(&[], None).unwrap().subject(&n).unwrap(),
            "[logalarm] alarm mail"
        );
        assert_eq!(
            compose(&[], Some("a\r\nBcc: x"))
                .unwrap()
                .subject(&n)
                .unwrap(),
            "a  Bcc: x"
        );
    }

    #[test]
    fn templates_take_over_subject_and_body() {
        let c = compose(
            &[
                ("subject", "{{ alarm }}: {{ line }}"),
                ("body", "from {{ source }}"),
            ],
            None,
        )
        .unwrap();
        let n = note(b"disk full", 0);
        assert_eq!(c.subject(&n).unwrap(), "mail: disk full");
        assert_eq!(c.body(&n).unwrap(), "from stdin");
        let twice = compose(&[("subject", "x")], Some("y")).err().unwrap();
        assert!(twice.contains("given twice"), "{twice}");
        assert!(compose(&[("body", "{{ nope }}")], None).is_err());
    }

    #[test]
    fn body_with_footer() {
        let c = compose(&[], None).unwrap();
        assert_eq!(
            c.body(&note(b"boom \xff!", 0)).unwrap(),
            "boom \u{fffd}!\n-- \nlogalarm alarm mail, from stdin"
        );
        assert_eq!(
            c.body(&note(b"boom", 2)).unwrap(),
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
