//! Where messages end on a stream socket.
//!
//! - Non-transparent framing (RFC 6587 §3.4.2): a message ends at `\n`
//!   (`logger -T`, plain line writers) or at a NUL byte (Python's
//!   `SysLogHandler` on a stream socket sends `<PRI>msg\0`).
//! - Octet counting (RFC 6587 §3.4.1, `logger --octet-count`): `LEN <PRI>…`,
//!   the message being the `LEN` bytes after the space. It is recognised only
//!   where a message starts and only when `<` and a digit follow the length, so
//!   a plain line that starts with a number stays a plain line.
//!
//! A message longer than the limit is handed out in pieces of the limit, each
//! matched as a line of its own; the client's buffer never holds more than one
//! limit's worth of a partial message.

use super::batch::{Builder, Piece};

/// The longest octet count taken, in digits (a frame of up to 999,999 bytes).
const MAX_COUNT_DIGITS: usize = 6;

/// What the start of a message says about octet counting.
enum Count {
    /// `LEN ` was read: the frame's body starts after `skip` bytes and is `len` long.
    Frame { skip: usize, len: usize },
    /// Too few bytes to tell yet.
    Undecided,
    /// Not octet-counted.
    No,
}

fn octet_count(s: &[u8]) -> Count {
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > MAX_COUNT_DIGITS || s[0] == b'0' {
        return Count::No;
    }
    // `LEN <d`: the length, one space, and a syslog PRI's first two bytes.
    let tail = &s[digits..];
    let want = [b' ', b'<'];
    for (i, &b) in tail.iter().take(3).enumerate() {
        let fits = match want.get(i) {
            Some(&w) => b == w,
            None => b.is_ascii_digit(),
        };
        if !fits {
            return Count::No;
        }
    }
    if tail.len() < 3 {
        return Count::Undecided;
    }
    let len = s[..digits]
        .iter()
        .fold(0usize, |v, &d| v * 10 + usize::from(d - b'0'));
    Count::Frame {
        skip: digits + 1,
        len,
    }
}

/// One stream client's framing state.
pub struct Framer {
    /// The longest message kept whole, in bytes.
    max: usize,
    /// The bytes at the front of the buffer continue a message already partly handed out.
    continuing: bool,
    /// Inside an octet-counted frame handed out in pieces: its bytes still to come.
    counted: Option<usize>,
    /// A message has been cut into pieces since [`Framer::take_cut`] last said so.
    cut: bool,
}

impl Framer {
    /// A framer keeping messages whole up to `max` bytes.
    pub fn new(max: usize) -> Self {
        Framer {
            max: max.max(1),
            continuing: false,
            counted: None,
            cut: false,
        }
    }

    /// Whether a message was cut into pieces since the last call (so the
    /// caller can warn once).
    pub fn take_cut(&mut self) -> bool {
        std::mem::take(&mut self.cut)
    }

    fn piece(&self) -> Piece {
        if self.continuing {
            Piece::More
        } else {
            Piece::Start
        }
    }

    /// Hands the complete messages at the front of `buf` to `out` and removes
    /// them, keeping a partial message back; at the end of the stream (`eof`)
    /// the partial rest is a message of its own too.
    pub fn feed(&mut self, buf: &mut Vec<u8>, out: &mut Builder, eof: bool) {
        let mut pos = 0;
        while pos < buf.len() {
            let rest = &buf[pos..];
            if let Some(left) = self.counted {
                let n = rest.len().min(left).min(self.max);
                if n < left && n < self.max && !eof {
                    break;
                }
                out.push(&rest[..n], self.piece());
                pos += n;
                self.continuing = n < left;
                self.counted = self.continuing.then(|| left - n);
                continue;
            }
            if !self.continuing {
                match octet_count(rest) {
                    Count::Frame { skip, len } if len > self.max => {
                        self.cut = true;
                        self.counted = Some(len);
                        pos += skip;
                        continue;
                    }
                    Count::Frame { skip, len } if rest.len() >= skip + len => {
                        out.push(&rest[skip..skip + len], Piece::Start);
                        pos += skip + len;
                        continue;
                    }
                    Count::Frame { skip, .. } if eof => {
                        out.push(&rest[skip..], Piece::Start);
                        pos = buf.len();
                        continue;
                    }
                    Count::Frame { .. } => break,
                    Count::Undecided if !eof => break,
                    Count::Undecided | Count::No => {}
                }
            }
            match memchr::memchr2(b'\n', 0, rest) {
                Some(i) if i <= self.max => {
                    out.push(&rest[..i], self.piece());
                    pos += i + 1;
                    self.continuing = false;
                }
                // One byte past the limit tells a line of exactly the limit from a longer one.
                None if rest.len() <= self.max && !eof => break,
                None if rest.len() <= self.max => {
                    out.push(rest, self.piece());
                    pos = buf.len();
                    self.continuing = false;
                }
                _ => {
                    self.cut = true;
                    out.push(&rest[..self.max], self.piece());
                    pos += self.max;
                    self.continuing = true;
                }
            }
        }
        buf.drain(..pos);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logalarm_plugin_api::Source;

    fn builder() -> Builder {
        Builder::new(Source::new("socket", std::ffi::OsStr::new("/s")))
    }

    /// Feeds `data` in `step`-byte reads, then the end; returns the lines and
    /// the app of each line's header.
    fn frame(data: &[u8], step: usize, max: usize) -> (Vec<String>, Vec<Option<String>>, bool) {
        let mut f = Framer::new(max);
        let mut out = builder();
        let mut buf = Vec::new();
        for chunk in data.chunks(step) {
            buf.extend_from_slice(chunk);
            f.feed(&mut buf, &mut out, false);
            assert!(buf.len() <= max + 8, "buffer grew to {}", buf.len());
        }
        f.feed(&mut buf, &mut out, true);
        assert!(buf.is_empty());
        let cut = f.take_cut();
        let Some(batch) = out.take() else {
            return (Vec::new(), Vec::new(), cut);
        };
        let text = String::from_utf8_lossy(&batch.lines).into_owned();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let mut apps = Vec::new();
        let mut at = 0;
        for l in &lines {
            let i = batch.headers.partition_point(|(s, _)| *s <= at);
            apps.push(
                i.checked_sub(1)
                    .and_then(|i| batch.headers[i].1.app.clone()),
            );
            at += l.len() + 1;
        }
        (lines, apps, cut)
    }

    #[test]
    fn newline_and_nul_delimited() {
        for step in [1, 2, 3, 7, 100] {
            let (lines, _, cut) = frame(b"a\nb\0<11>py\0\n\nlast", step, 64);
            assert_eq!(lines, ["a", "b", "py", "last"], "step {step}");
            assert!(!cut);
        }
    }

    #[test]
    fn octet_counted_frames() {
        let data = b"35 <13>Nov 21 08:03:32 myapp: hello oc10 <13>x: two\n\n7 apples\n";
        for step in [1, 4, 100] {
            let (lines, apps, _) = frame(data, step, 64);
            assert_eq!(lines, ["hello oc", "x: two", "7 apples"], "step {step}");
            assert_eq!(apps, [Some("myapp".to_owned()), None, None]);
        }
    }

    #[test]
    fn long_messages_come_in_pieces_with_their_header() {
        let mut data = b"<13>Nov 21 08:03:32 app: ".to_vec();
        data.extend_from_slice(&[b'x'; 25]);
        data.extend_from_slice(b"\nnext\n");
        for step in [1, 5, 1000] {
            let (lines, apps, cut) = frame(&data, step, 30);
            assert!(cut);
            assert_eq!(
                lines,
                ["xxxxx", "xxxxxxxxxxxxxxxxxxxx", "next"],
                "step {step}"
            );
            let app = Some("app".to_owned());
            assert_eq!(apps, [app.clone(), app, None]);
        }
        // A piece ending right before the newline leaves no empty line behind.
        let (lines, _, _) = frame(b"0123456789\nz\n", 3, 10);
        assert_eq!(lines, ["0123456789", "z"]);
        let (lines, _, cut) = frame(b"01234567890\nz\n", 3, 10);
        assert_eq!(lines, ["0123456789", "0", "z"]);
        assert!(cut);
    }

    #[test]
    fn long_octet_frames_come_in_pieces() {
        let mut data = b"30 <13>".to_vec();
        data.extend_from_slice(&[b'y'; 26]);
        data.extend_from_slice(b"after\n");
        let (lines, _, cut) = frame(&data, 3, 10);
        assert!(cut);
        // The first piece is a message of its own (its header is parsed as far as it goes).
        assert_eq!(lines.concat(), format!("{}after", "y".repeat(26)));
        assert_eq!(lines.last().unwrap(), "after");
    }

    #[test]
    fn unterminated_rest_at_eof() {
        let (lines, _, _) = frame(b"whole\nhalf a li", 4, 64);
        assert_eq!(lines, ["whole", "half a li"]);
        let (lines, _, _) = frame(b"12", 1, 64);
        assert_eq!(lines, ["12"]);
        let (lines, _, _) = frame(b"40 <13>short", 3, 64);
        assert_eq!(lines, ["short"]);
    }
}
