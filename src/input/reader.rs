//! Reads a byte stream in large chunks and hands out buffers of whole lines.
//!
//! Lines end at `\n`. A line longer than the reader's limit is handed out in
//! pieces of that size, so memory stays bounded whatever the input; every piece
//! is still matched. The buffers handed out ([`Lines`]) come back to the reader
//! when dropped, so a steady stream allocates nothing after its first reads.

use std::io::{self, ErrorKind, Read};
use std::ops::Deref;
use std::sync::mpsc;

/// Bytes asked of the OS per read.
pub const CHUNK: usize = 256 << 10;
/// The longest line kept whole, in bytes (16 MiB): longer lines are matched in
/// pieces of this size.
pub const MAX_LINE: usize = 16 << 20;

/// A buffer of whole lines (the last may lack its `\n`: the end of an input, a
/// partial line flushed after a timeout, or a piece of an over-long line).
///
/// Dropping it returns its memory to the reader that filled it.
pub struct Lines {
    buf: Vec<u8>,
    len: usize,
    home: Option<mpsc::Sender<Vec<u8>>>,
}

impl Lines {
    /// Lines built elsewhere (a socket message), owning `bytes`.
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        Lines {
            len: bytes.len(),
            buf: bytes,
            home: None,
        }
    }
}

impl Deref for Lines {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        if let Some(home) = self.home.take() {
            // The reader may be gone; then the memory is simply freed.
            let _ = home.send(std::mem::take(&mut self.buf));
        }
    }
}

/// A chunked line reader.
pub struct LineReader<R> {
    input: R,
    /// Always fully initialised (its length is its usable size); `filled` bytes hold data.
    buf: Vec<u8>,
    filled: usize,
    /// `buf[..searched]` holds no `\n` after the last cut: only newer bytes are searched.
    searched: usize,
    max_line: usize,
    /// A piece of an over-long line was handed out; its rest is still to come.
    continuing: bool,
    spares: mpsc::Receiver<Vec<u8>>,
    home: mpsc::Sender<Vec<u8>>,
}

impl<R: Read> LineReader<R> {
    /// A reader over `input` keeping lines whole up to `max_line` bytes.
    pub fn new(input: R, max_line: usize) -> Self {
        let (home, spares) = mpsc::channel();
        LineReader {
            input,
            buf: vec![0; CHUNK],
            filled: 0,
            searched: 0,
            max_line: max_line.max(CHUNK),
            continuing: false,
            spares,
            home,
        }
    }

    /// The input.
    pub fn get_ref(&self) -> &R {
        &self.input
    }

    /// Reads once and returns the bytes just read: empty at the end of the
    /// input (for a followed file: no new data yet).
    ///
    /// # Errors
    /// A read error other than `EINTR`.
    pub fn read(&mut self) -> io::Result<&[u8]> {
        if self.filled == self.buf.len() {
            // Room for a line of `max_line` bytes and its `\n`; `take_lines` cuts
            // a piece before the buffer would need more.
            let grown = (self.buf.len() * 2).min(self.max_line + 1);
            self.buf.resize(grown.max(self.filled + 1), 0);
        }
        let start = self.filled;
        let n = loop {
            match self.input.read(&mut self.buf[start..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        self.filled += n;
        Ok(&self.buf[start..start + n])
    }

    /// Bytes of a partial last line held back (no `\n` yet).
    pub fn partial(&self) -> usize {
        self.filled
    }

    /// Takes the whole lines read so far, keeping a partial last line back;
    /// when that partial line has reached the limit, a piece of it instead.
    /// `None` when there is nothing to hand out.
    pub fn take_lines(&mut self) -> Option<Lines> {
        let cut = match memchr::memrchr(b'\n', &self.buf[self.searched..self.filled]) {
            Some(i) => self.searched + i + 1,
            None if self.filled > self.max_line => {
                tracing::warn!(
                    "a line is longer than {} bytes; matching it in pieces",
                    self.max_line
                );
                self.filled
            }
            None => {
                self.searched = self.filled;
                return None;
            }
        };
        let mut lines = self.split_at(cut);
        if self.continuing {
            // The rest of an over-long line ends here; an empty rest is no line of its own.
            self.continuing = false;
            if lines.first() == Some(&b'\n') {
                lines.buf.copy_within(1..lines.len, 0);
                lines.len -= 1;
            }
        }
        if lines.last() != Some(&b'\n') {
            self.continuing = true;
        }
        (!lines.is_empty()).then_some(lines)
    }

    /// Takes everything held back, a partial last line included: at the end of
    /// the input, or when a followed file's partial line has waited too long.
    pub fn take_rest(&mut self) -> Option<Lines> {
        let lines = self.take_lines();
        if lines.is_some() || self.filled == 0 {
            return lines;
        }
        self.continuing = false;
        Some(self.split_at(self.filled))
    }

    /// Hands out `buf[..cut]`, moving what follows into a fresh (recycled) buffer.
    fn split_at(&mut self, cut: usize) -> Lines {
        let rest = self.filled - cut;
        let mut next = self.spares.try_recv().unwrap_or_default();
        let want = CHUNK.max(rest + CHUNK / 2).min(self.max_line + 1).max(rest);
        if next.len() < want {
            next.resize(want, 0);
        }
        next[..rest].copy_from_slice(&self.buf[cut..self.filled]);
        let full = std::mem::replace(&mut self.buf, next);
        self.filled = rest;
        self.searched = rest;
        Lines {
            buf: full,
            len: cut,
            home: Some(self.home.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that returns its data in fixed small reads, as a pipe might.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn collect(data: &[u8], step: usize, max_line: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut r = LineReader::new(Trickle(data, step), max_line);
        let (mut raw, mut blocks) = (Vec::new(), Vec::new());
        loop {
            let read = r.read().unwrap();
            if read.is_empty() {
                blocks.extend(r.take_rest().map(|l| l.to_vec()));
                break;
            }
            raw.extend_from_slice(read);
            blocks.extend(r.take_lines().map(|l| l.to_vec()));
        }
        (raw, blocks)
    }

    #[test]
    fn whole_lines_and_an_unterminated_last_one() {
        let data = b"one\r\ntwo\nthr";
        let (raw, blocks) = collect(data, 3, MAX_LINE);
        assert_eq!(raw, data);
        assert_eq!(blocks.concat(), data);
        assert!(
            blocks
                .iter()
                .take(blocks.len() - 1)
                .all(|b| b.ends_with(b"\n"))
        );
        assert_eq!(blocks.last().unwrap(), b"thr");
    }

    #[test]
    fn a_line_of_exactly_the_limit_stays_whole() {
        let mut data = vec![b'x'; 2 * CHUNK];
        data.push(b'\n');
        let (raw, blocks) = collect(&data, CHUNK, 2 * CHUNK);
        assert_eq!(raw, data);
        assert_eq!(blocks, vec![data.clone()]);
        // One byte more: cut into a piece, and the lone newline after it is no line of its own.
        data.insert(0, b'y');
        let (_, blocks) = collect(&data, CHUNK, 2 * CHUNK);
        assert_eq!(blocks, vec![data[..data.len() - 1].to_vec()]);
    }

    #[test]
    fn over_long_lines_come_in_pieces() {
        let mut data = vec![b'x'; 3 * CHUNK + 10];
        data.push(b'\n');
        data.extend_from_slice(b"after\n");
        let (raw, blocks) = collect(&data, CHUNK, CHUNK);
        assert_eq!(raw, data);
        assert_eq!(blocks.concat(), data);
        assert!(blocks.iter().all(|b| b.len() <= CHUNK + 6));
    }

    #[test]
    fn buffers_are_reused() {
        let data = b"a\nb\nc\n".repeat(CHUNK);
        let mut r = LineReader::new(Trickle(&data, CHUNK), MAX_LINE);
        let mut seen = Vec::new();
        while !r.read().unwrap().is_empty() {
            let lines = r.take_lines().unwrap();
            seen.push(lines.buf.as_ptr());
        }
        // After the first two buffers, the ones dropped come back.
        assert!(seen[2..].iter().all(|p| seen[..2].contains(p)));
    }
}
