//! Collects socket messages into one [`Batch`]: each message's syslog header
//! is split off, its text appended as one or more `\n`-terminated lines, and
//! its header recorded at the offset of its first line.

use crate::input::reader::Lines;
use crate::input::syslog;
use crate::input::{Batch, Event, EventSender};
use logalarm_plugin_api::{Source, Syslog};
use std::sync::Arc;

/// A batch is sent once it holds this many bytes, in bytes (64 KiB); earlier
/// when nothing more is immediately readable.
pub const BATCH: usize = 64 << 10;

/// How a piece of input relates to the message it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece {
    /// A whole message, or the first piece of an over-long one: its header is parsed.
    Start,
    /// A later piece of an over-long message: it shares the first piece's header.
    More,
}

/// A batch under construction, from one source.
pub struct Builder {
    source: Source,
    lines: Vec<u8>,
    headers: Vec<(usize, Arc<Syslog>)>,
    /// Whether any message in `lines` had a header: when none did, the batch
    /// goes out without header entries.
    headed: bool,
    /// The header shared by messages without one: the router takes a line's
    /// header from the last entry at or before it, so once a batch has any
    /// header, every message needs an entry.
    plain: Arc<Syslog>,
    /// The last header made: consecutive messages with the same header (same
    /// program, same second) share it rather than allocating their own.
    last: Option<Arc<Syslog>>,
    /// The header of the message whose pieces are being added.
    current: Arc<Syslog>,
}

impl Builder {
    /// An empty batch of lines from `source`.
    pub fn new(source: Source) -> Self {
        let plain = Arc::new(Syslog::default());
        Builder {
            source,
            lines: Vec::new(),
            headers: Vec::new(),
            headed: false,
            current: plain.clone(),
            plain,
            last: None,
        }
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Adds one message (or a piece of one): trailing `\n` and NUL bytes are
    /// dropped, a syslog header is split off when `piece` starts a message, and
    /// the text becomes lines (an inner `\n` starts another line with the same
    /// header). An empty message adds nothing.
    pub fn push(&mut self, message: &[u8], piece: Piece) {
        let end = message
            .iter()
            .rposition(|&b| b != b'\n' && b != 0)
            .map_or(0, |i| i + 1);
        let message = &message[..end];
        if message.is_empty() && piece == Piece::More {
            return;
        }
        let body = match piece {
            Piece::More => message,
            Piece::Start => match syslog::parse(message) {
                Some((header, body)) => {
                    self.current = match &self.last {
                        Some(last) if header.same_as(last) => last.clone(),
                        _ => {
                            let made = Arc::new(header.to_syslog());
                            self.last = Some(made.clone());
                            made
                        }
                    };
                    body
                }
                None if message.is_empty() => return,
                None => {
                    self.current = self.plain.clone();
                    message
                }
            },
        };
        if !Arc::ptr_eq(&self.current, &self.plain) {
            self.headed = true;
        }
        if self.lines.is_empty() {
            self.lines.reserve(body.len().max(4 << 10) + 1);
        }
        self.headers.push((self.lines.len(), self.current.clone()));
        self.lines.extend_from_slice(body);
        self.lines.push(b'\n');
    }

    /// Takes what is held as a batch; `None` when empty.
    pub fn take(&mut self) -> Option<Batch> {
        if self.lines.is_empty() {
            return None;
        }
        let mut headers = std::mem::take(&mut self.headers);
        if !std::mem::take(&mut self.headed) {
            headers = Vec::new();
        }
        Some(Batch {
            source: self.source.clone(),
            lines: Lines::from_vec(std::mem::take(&mut self.lines)),
            headers,
            mark: None,
        })
    }

    /// Sends what is held to the engine, waiting while its queue is full.
    ///
    /// # Errors
    /// The engine is gone (logalarm is stopping).
    pub async fn send(&mut self, events: &EventSender) -> Result<(), ()> {
        match self.take() {
            Some(batch) => events.send(Event::Lines(batch)).await.map_err(drop),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> Builder {
        Builder::new(Source::new("socket", std::ffi::OsStr::new("/s")))
    }

    #[test]
    fn plain_messages_carry_no_headers() {
        let mut b = builder();
        b.push(b"one\n", Piece::Start);
        b.push(b"two\0", Piece::Start);
        b.push(b"\n", Piece::Start);
        b.push(b"three\nfour", Piece::Start);
        let batch = b.take().unwrap();
        assert_eq!(&*batch.lines, b"one\ntwo\nthree\nfour\n");
        assert!(batch.headers.is_empty());
        assert!(b.take().is_none());
    }

    #[test]
    fn every_message_gets_an_entry_once_one_has_a_header() {
        let mut b = builder();
        b.push(b"plain", Piece::Start);
        b.push(b"<27>Nov 21 08:03:32 app[1]: a\nb", Piece::Start);
        b.push(b"<27>Nov 21 08:03:32 app[1]: c", Piece::Start);
        b.push(b"rest", Piece::More);
        b.push(b"plain again", Piece::Start);
        let batch = b.take().unwrap();
        assert_eq!(&*batch.lines, b"plain\na\nb\nc\nrest\nplain again\n");
        let offsets: Vec<usize> = batch.headers.iter().map(|(o, _)| *o).collect();
        assert_eq!(offsets, [0, 6, 10, 12, 17]);
        let h = &batch.headers;
        assert_eq!(h[0].1.app, None);
        assert_eq!(h[1].1.app.as_deref(), Some("app"));
        // Same header, same allocation; a later piece keeps its message's header.
        assert!(Arc::ptr_eq(&h[1].1, &h[2].1));
        assert!(Arc::ptr_eq(&h[2].1, &h[3].1));
        assert_eq!(h[4].1.app, None);
    }
}
