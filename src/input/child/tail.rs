//! The last output of a wrapped process, kept for its `on_exit` alarm (uWSGI's
//! `alarm-segfault` reports the crash; logalarm adds what the process said last).
//!
//! Both streams feed one buffer in the order their reads arrive, so the alarm
//! shows stdout and stderr interleaved as a terminal would. Memory is bounded:
//! the alarm message can never hold more than `alarm-msg-size` bytes, so the
//! buffer keeps at most that many bytes of whole lines, plus each stream's
//! unfinished line (cut at the same size). Feeding it copies bytes into
//! buffers allocated once; nothing is allocated per line.

use super::Stream;
use std::collections::VecDeque;

/// The recent output of one run of a process.
pub struct Tail {
    /// Whole lines, each ending in `\n`, oldest first; at most `cap` bytes.
    lines: VecDeque<u8>,
    /// Bytes were dropped from the front of `lines`: its first line may be a fragment.
    cut: bool,
    /// Per stream (stdout, stderr), the line begun but not yet ended; at most `cap` bytes.
    partial: [Vec<u8>; 2],
    /// The most bytes kept, in `lines` and in each partial line.
    cap: usize,
}

impl Tail {
    /// An empty tail keeping at most `cap` bytes of lines (the alarm message size).
    pub fn new(cap: usize) -> Self {
        Tail {
            lines: VecDeque::with_capacity(cap.min(1 << 16)),
            cut: false,
            partial: [Vec::new(), Vec::new()],
            cap: cap.max(1),
        }
    }

    /// Takes in one read of `stream`.
    pub fn push(&mut self, stream: Stream, bytes: &[u8]) {
        let cap = self.cap;
        let partial = &mut self.partial[usize::from(stream != Stream::Stdout)];
        let Some(end) = memchr::memrchr(b'\n', bytes) else {
            let room = cap.saturating_sub(partial.len());
            partial.extend_from_slice(&bytes[..bytes.len().min(room)]);
            return;
        };
        let (ended, rest) = bytes.split_at(end + 1);
        if ended.len() >= cap {
            // Everything kept so far falls out of the window anyway.
            self.lines.clear();
            self.lines.extend(&ended[ended.len() - cap..]);
            self.cut = true;
        } else {
            self.lines.extend(partial.iter());
            self.lines.extend(ended);
            if let Some(excess) = self.lines.len().checked_sub(cap).filter(|&n| n > 0) {
                self.lines.drain(..excess);
                self.cut = true;
            }
        }
        partial.clear();
        partial.extend_from_slice(&rest[..rest.len().min(cap)]);
    }

    /// The last `n` lines, oldest first: whole lines, then the unfinished last
    /// line of stdout and of stderr. Each is without its `\n` and any `\r`
    /// before it; a line longer than the buffer shows only its end (or, when
    /// unfinished, its start).
    pub fn last(&mut self, n: usize) -> Vec<&[u8]> {
        let mut lines: Vec<&[u8]> = self
            .lines
            .make_contiguous()
            .split(|&b| b == b'\n')
            .collect();
        // The split leaves an empty piece after the final `\n`.
        lines.pop();
        if self.cut && !lines.is_empty() {
            lines.remove(0);
        }
        lines.extend(
            self.partial
                .iter()
                .filter(|p| !p.is_empty())
                .map(Vec::as_slice),
        );
        let skip = lines.len().saturating_sub(n);
        lines
            .into_iter()
            .skip(skip)
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last(t: &mut Tail, n: usize) -> Vec<String> {
        t.last(n)
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }

    #[test]
    fn interleaves_streams_in_arrival_order() {
        let mut t = Tail::new(100);
        t.push(Stream::Stdout, b"out 1\nout ");
        t.push(Stream::Stderr, b"err 1\r\n");
        t.push(Stream::Stdout, b"2\n");
        t.push(Stream::Stderr, b"unfinished");
        assert_eq!(last(&mut t, 10), ["out 1", "err 1", "out 2", "unfinished"]);
        assert_eq!(last(&mut t, 2), ["out 2", "unfinished"]);
        assert!(last(&mut t, 0).is_empty());
    }

    #[test]
    fn keeps_at_most_cap_bytes_of_whole_lines() {
        let mut t = Tail::new(10);
        for i in 0..100 {
            t.push(Stream::Stdout, format!("l{i}\n").as_bytes());
        }
        // "l97\nl98\nl99\n" is 12 bytes: the window of 10 cuts into l97, which is dropped.
        assert_eq!(last(&mut t, 50), ["l98", "l99"]);
        let mut t = Tail::new(4);
        t.push(Stream::Stderr, b"abcdefgh\n");
        assert_eq!(last(&mut t, 5), Vec::<String>::new());
        t.push(Stream::Stderr, b"0123456789");
        assert_eq!(last(&mut t, 5), ["0123"]);
    }

    #[test]
    fn empty() {
        let mut t = Tail::new(8192);
        assert!(t.last(50).is_empty());
    }
}
