//! Syslog headers of messages received on socket inputs: RFC 5424 and the BSD
//! format of RFC 3164, so that rules see only the message while the header's
//! fields reach the alarm ([`Syslog`]).
//!
//! What is recognised (every form starts with `<PRI>`; a message without it is
//! no syslog message and is passed as it is):
//!
//! - RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`, `-` for an
//!   absent field, structured data skipped, a UTF-8 BOM before MSG dropped
//!   (`logger --rfc5424`);
//! - RFC 3164: `<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG`, and the form local
//!   clients send to `/dev/log` without HOST (`<13>Nov 21 08:00:00 myapp[42]:
//!   msg`, util-linux `logger` by default, glibc's `syslog(3)`); an RFC 3339
//!   timestamp in place of the BSD one (rsyslog's high-precision form) too;
//! - a bare `<PRI>MSG` (Python's `logging.handlers.SysLogHandler`): facility and
//!   severity only. A TAG is looked for only after a timestamp, so that
//!   `<11>Error: disk full` keeps its whole text.
//!
//! A header that does not parse as RFC 5424 is tried as RFC 3164, and failing
//! that, only its PRI is taken. The parser works on bytes (a message need not be
//! UTF-8) and borrows from the message: nothing is allocated here.
//!
//! Why not the `syslog_loose` crate (Vector's parser): it takes `&str`, so a
//! message with invalid UTF-8 loses its header; it returns the timestamp parsed
//! by chrono, not as written; it treats a line without `<PRI>` as RFC 3164 too,
//! which would strip the date and host off plain log lines sent to the socket;
//! and it brings chrono and nom for what this module does in a few hundred lines.

use logalarm_plugin_api::Syslog;

/// The highest valid PRI: facility 23 (local7), severity 7 (debug) (RFC 5424 §6.2.1).
const MAX_PRI: u16 = 191;
/// The longest TAG taken from an RFC 3164 header, in bytes (RFC 3164 §4.1.3
/// says 32; real programs use longer names).
const MAX_TAG: usize = 64;

/// A parsed header: the fields borrow from the message; `None` when absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header<'a> {
    /// Facility code, 0–23.
    pub facility: u8,
    /// Severity code, 0–7.
    pub severity: u8,
    /// The timestamp as written.
    pub timestamp: Option<&'a [u8]>,
    /// HOSTNAME.
    pub host: Option<&'a [u8]>,
    /// APP-NAME, or the RFC 3164 TAG.
    pub app: Option<&'a [u8]>,
    /// PROCID, or the pid of `TAG[PID]:`.
    pub pid: Option<&'a [u8]>,
    /// MSGID (RFC 5424 only).
    pub msgid: Option<&'a [u8]>,
}

/// Splits `message` into its syslog header and the message proper; `None`
/// when it does not start with a valid `<PRI>` (it is then no syslog message).
pub fn parse(message: &[u8]) -> Option<(Header<'_>, &[u8])> {
    let (pri, rest) = pri(message)?;
    let mut header = Header {
        facility: u8::try_from(pri / 8).ok()?,
        severity: u8::try_from(pri % 8).ok()?,
        ..Header::default()
    };
    if let Some(rest5424) = rest.strip_prefix(b"1 ")
        && let Some(body) = rfc5424(rest5424, &mut header)
    {
        return Some((header, body));
    }
    let body = rfc3164(rest, &mut header).unwrap_or(rest);
    Some((header, body))
}

impl Header<'_> {
    /// Whether `syslog` holds exactly these fields (so it can be shared).
    pub fn same_as(&self, syslog: &Syslog) -> bool {
        fn eq(a: Option<&[u8]>, b: Option<&String>) -> bool {
            match (a, b) {
                (None, None) => true,
                (Some(a), Some(b)) => a == b.as_bytes(),
                _ => false,
            }
        }
        syslog.facility == Some(self.facility)
            && syslog.severity == Some(self.severity)
            && eq(self.timestamp, syslog.timestamp.as_ref())
            && eq(self.host, syslog.host.as_ref())
            && eq(self.app, syslog.app.as_ref())
            && eq(self.pid, syslog.pid.as_ref())
            && eq(self.msgid, syslog.msgid.as_ref())
    }

    /// The header as the plugin API carries it (invalid UTF-8 replaced).
    pub fn to_syslog(&self) -> Syslog {
        let text = |f: Option<&[u8]>| f.map(|b| String::from_utf8_lossy(b).into_owned());
        Syslog {
            facility: Some(self.facility),
            severity: Some(self.severity),
            timestamp: text(self.timestamp),
            host: text(self.host),
            app: text(self.app),
            pid: text(self.pid),
            msgid: text(self.msgid),
        }
    }
}

/// `<PRI>`: one to three digits, at most [`MAX_PRI`].
fn pri(message: &[u8]) -> Option<(u16, &[u8])> {
    let rest = message.strip_prefix(b"<")?;
    let close = rest.iter().take(4).position(|&b| b == b'>')?;
    let digits = &rest[..close];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = digits
        .iter()
        .fold(0u16, |v, &d| v * 10 + u16::from(d - b'0'));
    (value <= MAX_PRI).then(|| (value, &rest[close + 1..]))
}

/// The next space-delimited token of `s` and what follows its space (empty at
/// the end of `s`); `None` when `s` is empty or starts with a space.
fn token(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = memchr::memchr(b' ', s).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    Some((&s[..end], s.get(end + 1..).unwrap_or_default()))
}

/// RFC 5424 §6: the fields after `1 `; returns MSG.
fn rfc5424<'a>(s: &'a [u8], h: &mut Header<'a>) -> Option<&'a [u8]> {
    let field = |s: &'a [u8]| -> Option<(Option<&'a [u8]>, &'a [u8])> {
        let (tok, rest) = token(s)?;
        // PRINTUSASCII only (§6): anything else means this is not RFC 5424.
        if !tok.iter().all(|b| (33..=126).contains(b)) {
            return None;
        }
        Some(((tok != b"-").then_some(tok), rest))
    };
    let (timestamp, s) = field(s)?;
    let (host, s) = field(s)?;
    let (app, s) = field(s)?;
    let (pid, s) = field(s)?;
    let (msgid, s) = field(s)?;
    let msg = structured_data(s)?;
    *h = Header {
        timestamp,
        host,
        app,
        pid,
        msgid,
        ..*h
    };
    Some(msg.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(msg))
}

/// Skips STRUCTURED-DATA (`-` or `[ID name="value"…]…`, RFC 5424 §6.3, where
/// `\"`, `\\` and `\]` escape inside a value) and the space after it; returns MSG.
fn structured_data(s: &[u8]) -> Option<&[u8]> {
    let end = if s.first() == Some(&b'-') {
        1
    } else {
        let mut i = 0;
        while s.get(i) == Some(&b'[') {
            i += 1;
            let mut quoted = false;
            loop {
                match *s.get(i)? {
                    b'\\' if quoted => i += 1,
                    b'"' => quoted = !quoted,
                    b']' if !quoted => break,
                    _ => {}
                }
                i += 1;
            }
            i += 1;
        }
        if i == 0 {
            return None;
        }
        i
    };
    match s.get(end) {
        None => Some(&[]),
        Some(b' ') => Some(&s[end + 1..]),
        Some(_) => None,
    }
}

/// RFC 3164 §4.1.2: TIMESTAMP, then HOSTNAME (absent in the local form), then
/// TAG; returns MSG, or `None` when there is no timestamp.
fn rfc3164<'a>(s: &'a [u8], h: &mut Header<'a>) -> Option<&'a [u8]> {
    let (timestamp, s) = bsd_timestamp(s).or_else(|| rfc3339_timestamp(s))?;
    h.timestamp = Some(timestamp);
    let Some((first, after_first)) = token(s) else {
        return Some(s);
    };
    if let Some((app, pid)) = tag(first) {
        (h.app, h.pid) = (Some(app), pid);
        return Some(after_first);
    }
    h.host = Some(first);
    match token(after_first) {
        Some((second, after_second)) => match tag(second) {
            Some((app, pid)) => {
                (h.app, h.pid) = (Some(app), pid);
                Some(after_second)
            }
            None => Some(after_first),
        },
        None => Some(after_first),
    }
}

/// `Mmm dd hh:mm:ss` (the day padded with a space or a zero) and the space after it.
fn bsd_timestamp(s: &[u8]) -> Option<(&[u8], &[u8])> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let ts = s.get(..15)?;
    let digit = |i: usize| ts[i].is_ascii_digit();
    let ok = MONTHS.iter().any(|m| &ts[..3] == *m)
        && ts[3] == b' '
        && (ts[4] == b' ' || digit(4))
        && digit(5)
        && ts[6] == b' '
        && digit(7)
        && digit(8)
        && ts[9] == b':'
        && digit(10)
        && digit(11)
        && ts[12] == b':'
        && digit(13)
        && digit(14);
    if !ok {
        return None;
    }
    match s.get(15) {
        None => Some((ts, &[])),
        Some(b' ') => Some((ts, &s[16..])),
        Some(_) => None,
    }
}

/// An RFC 3339 timestamp (`2024-01-01T08:00:00.123+01:00`) and the space after it.
fn rfc3339_timestamp(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let (ts, rest) = token(s)?;
    let date = ts.get(..11)?;
    let ok = date[..4].iter().all(u8::is_ascii_digit)
        && date[4] == b'-'
        && date[5..7].iter().all(u8::is_ascii_digit)
        && date[7] == b'-'
        && date[8..10].iter().all(u8::is_ascii_digit)
        && date[10] == b'T'
        && ts[11..]
            .iter()
            .all(|b| b.is_ascii_digit() || b":.+-Z".contains(b));
    ok.then_some((ts, rest))
}

/// `TAG:` or `TAG[PID]:` (RFC 3164 §4.1.3, as `syslog(3)` writes it): the TAG
/// and the PID.
fn tag(tok: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let name = tok.strip_suffix(b":")?;
    let (app, pid) = match name.strip_suffix(b"]") {
        Some(inner) => {
            let open = memchr::memrchr(b'[', inner)?;
            (&inner[..open], Some(&inner[open + 1..]))
        }
        None => (name, None),
    };
    let plain = |b: &u8| (33..=126).contains(b) && !b"[]:".contains(b);
    let ok = !app.is_empty()
        && app.len() <= MAX_TAG
        && app.iter().all(plain)
        && pid.is_none_or(|p| !p.is_empty() && p.iter().all(plain));
    ok.then_some((app, pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(msg: &str) -> (Syslog, String) {
        let (h, body) = parse(msg.as_bytes()).expect("a header");
        (h.to_syslog(), String::from_utf8(body.to_vec()).unwrap())
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn no_header_no_parse() {
        for m in [
            "plain line",
            "",
            "<b>bold</b>",
            "<192>too high",
            "<1234>x",
            "<>x",
            "Nov 21 08:00:00 host app: no pri",
        ] {
            assert_eq!(parse(m.as_bytes()), None, "{m:?}");
        }
    }

    #[test]
    fn local_form_without_host() {
        let (h, body) = fields("<27>Nov 21 08:03:32 myapp[4242]: hello dgram");
        assert_eq!(body, "hello dgram");
        assert_eq!((h.facility, h.severity), (Some(3), Some(3)));
        assert_eq!(h.timestamp, s("Nov 21 08:03:32"));
        assert_eq!((h.host, h.app, h.pid), (None, s("myapp"), s("4242")));
        let (h, body) = fields("<13>Nov  1 08:00:00 myapp: msg: with colon");
        assert_eq!(
            (body.as_str(), h.app, h.pid),
            ("msg: with colon", s("myapp"), None)
        );
        assert_eq!(h.timestamp, s("Nov  1 08:00:00"));
    }

    #[test]
    fn bsd_form_with_host() {
        let (h, body) = fields("<27>Nov 21 08:03:32 vm myapp[4242]: hello 3164");
        assert_eq!(body, "hello 3164");
        assert_eq!((h.host, h.app, h.pid), (s("vm"), s("myapp"), s("4242")));
        // A host and no tag: the rest is the message.
        let (h, body) = fields("<13>Nov 21 08:03:32 vm just words");
        assert_eq!(
            (h.host, h.app, body.as_str()),
            (s("vm"), None, "just words")
        );
        // RFC 3339 timestamp in the BSD layout.
        let (h, body) = fields("<14>2024-03-01T10:00:00.5+01:00 db1 postgres[7]: slow");
        assert_eq!(h.timestamp, s("2024-03-01T10:00:00.5+01:00"));
        assert_eq!((h.host, h.app, h.pid), (s("db1"), s("postgres"), s("7")));
        assert_eq!(body, "slow");
    }

    #[test]
    fn bare_pri_python() {
        let (h, body) = fields("<11>py dgram");
        assert_eq!((h.facility, h.severity), (Some(1), Some(3)));
        assert_eq!((h.timestamp, h.app), (None, None));
        assert_eq!(body, "py dgram");
        // No tag is taken without a timestamp.
        let (h, body) = fields("<11>Error: disk full");
        assert_eq!((h.app, body.as_str()), (None, "Error: disk full"));
        let (_, body) = fields("<0>");
        assert_eq!(body, "");
    }

    #[test]
    fn rfc5424_forms() {
        let (h, body) = fields(
            r#"<27>1 2026-11-21T08:03:32.329281+00:00 vm myapp 4242 - [timeQuality tzKnown="1" isSynced="0"] hello 5424"#,
        );
        assert_eq!(body, "hello 5424");
        assert_eq!(h.timestamp, s("2026-11-21T08:03:32.329281+00:00"));
        assert_eq!(
            (h.host, h.app, h.pid, h.msgid),
            (s("vm"), s("myapp"), s("4242"), None)
        );
        let (h, body) = fields(r#"<13>1 - - - - MID [a@1 x="q\"]"][b@2] msg [not sd]"#);
        assert_eq!((h.timestamp, h.host, h.msgid), (None, None, s("MID")));
        assert_eq!(body, "msg [not sd]");
        let (_, body) = fields("<13>1 - h a p m -");
        assert_eq!(body, "");
        let (_, body) = fields("<13>1 - h a p m - \u{feff}bom");
        assert_eq!(body, "bom");
        // Not RFC 5424 after all: a version-looking word in a bare message.
        let (h, body) = fields("<13>1 apple a day");
        assert_eq!((h.app, body.as_str()), (None, "1 apple a day"));
    }

    #[test]
    fn invalid_utf8_keeps_its_header() {
        let (h, body) = parse(b"<27>Nov 21 08:03:32 app[1]: \xff\xfe bytes").unwrap();
        assert_eq!(h.app, Some(&b"app"[..]));
        assert_eq!(body, b"\xff\xfe bytes");
    }

    #[test]
    fn same_as_compares_every_field() {
        let (h, _) = parse(b"<27>Nov 21 08:03:32 app[1]: x").unwrap();
        let syslog = h.to_syslog();
        assert!(h.same_as(&syslog));
        let (other, _) = parse(b"<27>Nov 21 08:03:33 app[1]: x").unwrap();
        assert!(!other.same_as(&syslog));
        assert!(!h.same_as(&Syslog::default()));
    }
}
