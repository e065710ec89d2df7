//! Reads a byte stream in large chunks and hands out blocks of whole lines.
//!
//! Lines end at `\n`; the last line of the stream counts even without one. A
//! line longer than the buffer's limit is handed out in pieces of that size, so
//! memory stays bounded whatever the input; every piece is still matched.

use std::io::{self, ErrorKind, Read};

/// Bytes asked of the OS per read.
pub const CHUNK: usize = 256 << 10;
/// The longest line kept whole, in bytes (16 MiB): longer lines are matched in
/// pieces of this size.
pub const MAX_LINE: usize = 16 << 20;

/// A chunked line reader.
pub struct LineReader<R> {
    input: R,
    buf: Vec<u8>,
    /// Bytes of `buf` holding data.
    filled: usize,
    /// Bytes at the front of `buf` already handed out as lines.
    consumed: usize,
    max_line: usize,
    eof: bool,
    /// A piece of an over-long line was handed out; its rest is still to come.
    continuing: bool,
}

/// What one call to [`LineReader::next_block`] read.
pub struct Block<'a> {
    /// The bytes just read from the input, for pass-through (may end mid-line).
    pub raw: &'a [u8],
    /// Whole lines ready to match (may be empty while a long line accumulates).
    pub lines: &'a [u8],
}

impl<R: Read> LineReader<R> {
    /// A reader over `input` keeping lines whole up to `max_line` bytes.
    pub fn new(input: R, max_line: usize) -> Self {
        LineReader {
            input,
            buf: vec![0; CHUNK],
            filled: 0,
            consumed: 0,
            max_line: max_line.max(CHUNK),
            eof: false,
            continuing: false,
        }
    }

    /// Reads once and returns what was read and the whole lines now available;
    /// `None` at the end of input, after a last line without `\n` was returned.
    ///
    /// # Errors
    /// A read error other than `EINTR`.
    pub fn next_block(&mut self) -> io::Result<Option<Block<'_>>> {
        if self.eof {
            return Ok(None);
        }
        if self.consumed > 0 {
            // Keep only the partial line, at the front.
            self.buf.copy_within(self.consumed..self.filled, 0);
            self.filled -= self.consumed;
            self.consumed = 0;
            if self.buf.len() > 4 * CHUNK && self.filled < CHUNK {
                // A long line has passed: give its memory back.
                self.buf.truncate(CHUNK);
                self.buf.shrink_to_fit();
            }
        }
        // Room for a line of `max_line` bytes and its `\n`.
        let cap = self.max_line + 1;
        if self.filled == self.buf.len() {
            if self.buf.len() < cap {
                let grown = (self.buf.len() * 2).min(cap);
                self.buf.resize(grown, 0);
            } else {
                tracing::warn!(
                    "a line is longer than {} bytes; matching it in pieces",
                    self.max_line
                );
                self.consumed = self.filled;
                self.continuing = true;
                return Ok(Some(Block {
                    raw: &[],
                    lines: &self.buf[..self.filled],
                }));
            }
        }
        let start = self.filled;
        let n = loop {
            match self.input.read(&mut self.buf[start..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            self.eof = true;
            return Ok((start > 0).then(|| Block {
                raw: &[],
                lines: &self.buf[..start],
            }));
        }
        let end = start + n;
        self.filled = end;
        self.consumed = memchr::memrchr(b'\n', &self.buf[start..end]).map_or(0, |i| start + i + 1);
        let mut lines = &self.buf[..self.consumed];
        if self.continuing && !lines.is_empty() {
            // The rest of an over-long line ends here; an empty rest is no line of its own.
            self.continuing = false;
            if lines[0] == b'\n' {
                lines = &lines[1..];
            }
        }
        Ok(Some(Block {
            raw: &self.buf[start..end],
            lines,
        }))
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
        while let Some(b) = r.next_block().unwrap() {
            raw.extend_from_slice(b.raw);
            if !b.lines.is_empty() {
                blocks.push(b.lines.to_vec());
            }
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
}
