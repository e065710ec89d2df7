//! Pass-through: every byte read from stdin is written to stdout unchanged and
//! in order; a wrapped process's stdout and stderr go to logalarm's own.
//!
//! An output whose reader can stall it (a pipe, a socket, a terminal) is
//! written on a thread of its own, fed through a
//! bounded buffer (`passthrough_buffer` bytes, default [`DEFAULT_BUFFER`]), so
//! that matching and alarms never wait on the output's reader: a pager, a
//! `tee`, a log shipper that is stopped or slow. Each read of the input is
//! handed over whole (one lock and one copy per read, none per line), and the
//! writer writes whatever it holds at once, so an unfinished line (a prompt
//! without `\n`) shows as soon as it is read. An output that cannot stall (a
//! regular file, `/dev/null`) is written at once by the reading thread: no
//! copy, no hand-over.
//!
//! When the buffer is full, `passthrough_full` decides ([`Full`]):
//!
//! - `block` (the default): the input waits for room, as a pipe to a slow
//!   reader would; every byte is passed on, in order. The lines of a read are
//!   still sent to matching before the read waits, so an alarm never waits on
//!   the output's reader; only the next read does.
//! - `drop`: the input is never held up; what does not fit is dropped, in
//!   whole lines where it can be: the lines of a read that fit are kept, a
//!   line already begun may take up to [`LINE_GRACE`] bytes beyond the buffer
//!   to be finished, and writing resumes at the start of a line. Dropped bytes
//!   are counted ([`PassthroughDropped`]), logged once per episode (an episode
//!   ends when the reader has caught up on everything kept), and reported in
//!   the exit summary.
//!
//! When the output's reader goes away (`EPIPE`), pass-through stops with one
//! tagged note and logalarm goes on matching and alarming: the watched
//! application must not lose its alarms because a pager was closed.
//!
//! At the end of a run, the engine waits for what is buffered to be written
//! ([`Passthrough::unwritten`]), then counts what is left as dropped
//! ([`Passthrough::abandon`]).

use super::events::{InputStats, PassthroughDropped, PassthroughStopped, PassthroughTotals};
use crate::internal_event::InternalEvent;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

/// The default size of a pass-through buffer, in bytes (4 MiB).
pub const DEFAULT_BUFFER: usize = 4 << 20;
/// The largest `passthrough_buffer` accepted, in bytes (1 GiB).
pub const MAX_BUFFER: usize = 1 << 30;
/// How far beyond its buffer drop mode lets a line already begun be finished,
/// in bytes (64 KiB): a longer line is cut where the buffer filled.
pub const LINE_GRACE: usize = 64 << 10;

/// What pass-through does when its buffer is full (`passthrough_full`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Full {
    /// The input waits for room: every byte is passed on, in order.
    #[default]
    Block,
    /// What does not fit is dropped, counted and reported.
    Drop,
}

impl Full {
    /// Its name as written in the config (`block`, `drop`).
    pub fn name(self) -> &'static str {
        match self {
            Full::Block => "block",
            Full::Drop => "drop",
        }
    }
}

/// Parses `passthrough_full`: `block` or `drop`.
///
/// # Errors
/// Any other word, with a message naming both.
pub fn full(value: &str) -> Result<Full, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "block" => Ok(Full::Block),
        "drop" => Ok(Full::Drop),
        other => Err(format!(
            "{other:?} is not a pass-through mode; write \"block\" (wait for the reader) or \"drop\" (drop and count what does not fit)"
        )),
    }
}

/// Checks a `passthrough_buffer` size in bytes: from 1 to [`MAX_BUFFER`].
///
/// # Errors
/// 0 or more than [`MAX_BUFFER`].
pub fn buffer_size(bytes: usize) -> Result<usize, String> {
    match bytes {
        0 => Err("must be at least 1 byte".into()),
        n if n > MAX_BUFFER => Err(format!(
            "{n} bytes is more than the most a pass-through buffer may hold ({MAX_BUFFER} bytes, 1 GiB)"
        )),
        n => Ok(n),
    }
}

/// Parses a `passthrough_buffer` size as written in INI or on the command
/// line: a whole number of bytes, from 1 to [`MAX_BUFFER`].
///
/// # Errors
/// Not a positive whole number, or too large.
pub fn buffer_size_text(value: &str) -> Result<usize, String> {
    crate::component::syntax::size(value).and_then(buffer_size)
}

/// How pass-through runs: the settings `passthrough`, `passthrough_buffer`
/// and `passthrough_full`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Pass-through is on.
    pub enabled: bool,
    /// The buffer's size, in bytes.
    pub buffer: usize,
    /// What happens when it is full.
    pub full: Full,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            enabled: true,
            buffer: DEFAULT_BUFFER,
            full: Full::Block,
        }
    }
}

/// A handle on one output's pass-through (cheap to clone; every clone feeds
/// the same writer, in the order of the calls).
pub struct Passthrough {
    shared: Option<Arc<Shared>>,
    /// An output that never waits on a reader (a regular file, `/dev/null`):
    /// written at once by the reading thread, without the writer thread's
    /// copy and hand-over.
    direct: Option<Arc<Direct>>,
}

/// An output written by the reading thread itself.
struct Direct {
    name: &'static str,
    out: File,
    closed: std::sync::atomic::AtomicBool,
}

impl Direct {
    fn write(&self, bytes: &[u8]) {
        use std::sync::atomic::Ordering;
        if bytes.is_empty() || self.closed.load(Ordering::Relaxed) {
            return;
        }
        if let Err(error) = (&self.out).write_all(bytes)
            && !self.closed.swap(true, Ordering::Relaxed)
        {
            PassthroughStopped {
                output: self.name,
                error: &error,
            }
            .emit();
        }
    }
}

/// Whether writing to `file` can wait on a reader: a pipe, a socket or a
/// terminal can; a regular file or a device such as `/dev/null` cannot.
fn can_stall(file: &File) -> bool {
    use std::io::IsTerminal;
    use std::os::unix::fs::FileTypeExt;
    match file.metadata() {
        Ok(meta) => {
            let kind = meta.file_type();
            !(kind.is_file() || (kind.is_char_device() && !file.is_terminal()))
        }
        Err(_) => true,
    }
}

/// What the handles and the writer thread share.
struct Shared {
    /// `stdout` or `stderr`, for messages.
    name: &'static str,
    options: Options,
    /// The counters of the input whose bytes these are.
    stats: Arc<InputStats>,
    state: Mutex<State>,
    /// The writer waits here for bytes.
    data: Condvar,
    /// Blocked handles wait here for room.
    room: Condvar,
}

#[derive(Default)]
struct State {
    /// Bytes handed over, not yet taken by the writer.
    pending: Vec<u8>,
    /// Bytes the writer took and is writing.
    writing: usize,
    /// The writer stopped (its output is gone): nothing more is taken.
    closed: bool,
    /// Live handles; the writer ends once none is left and all is written.
    handles: usize,
    writer_waiting: bool,
    handles_waiting: usize,
    /// Drop mode: the bytes kept end inside a line.
    mid_line: bool,
    /// Drop mode: the bytes dropped last end inside a line, whose rest is
    /// dropped too, so that writing resumes at the start of a line.
    skipping: bool,
    /// Drop mode: bytes are being dropped, until the writer has caught up.
    dropping: bool,
    /// Episodes of dropping so far.
    episodes: u64,
    /// Bytes dropped so far (at the end of a run, with those never written).
    dropped: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What one handing over dropped.
struct Dropped {
    bytes: usize,
    /// It began an episode.
    first: bool,
}

impl Passthrough {
    /// No pass-through: every write goes nowhere.
    pub fn off() -> Self {
        Passthrough {
            shared: None,
            direct: None,
        }
    }

    /// Pass-through to this process's stdout (nowhere unless
    /// `options.enabled`), counting drops in `stats`.
    ///
    /// # Errors
    /// stdout cannot be duplicated, or the writer thread cannot start.
    pub fn stdout(options: Options, stats: Arc<InputStats>) -> io::Result<Self> {
        if !options.enabled {
            return Ok(Self::off());
        }
        let fd = io::stdout().as_fd().try_clone_to_owned()?;
        Self::to(fd, "stdout", options, stats)
    }

    /// Pass-through to this process's stderr (nowhere unless
    /// `options.enabled`), counting drops in `stats`.
    ///
    /// # Errors
    /// stderr cannot be duplicated, or the writer thread cannot start.
    pub fn stderr(options: Options, stats: Arc<InputStats>) -> io::Result<Self> {
        if !options.enabled {
            return Ok(Self::off());
        }
        let fd = io::stderr().as_fd().try_clone_to_owned()?;
        Self::to(fd, "stderr", options, stats)
    }

    /// Pass-through to `fd`, called `name` in messages: written by a thread
    /// of its own behind the bounded buffer when its reader can stall it (a
    /// pipe, a socket, a terminal), else at once by the reading thread.
    ///
    /// # Errors
    /// The writer thread cannot start.
    pub fn to(
        fd: OwnedFd,
        name: &'static str,
        options: Options,
        stats: Arc<InputStats>,
    ) -> io::Result<Self> {
        // A File over the descriptor: unbuffered writes, no LineWriter.
        let out = File::from(fd);
        if !can_stall(&out) {
            return Ok(Passthrough {
                shared: None,
                direct: Some(Arc::new(Direct {
                    name,
                    out,
                    closed: false.into(),
                })),
            });
        }
        let shared = Arc::new(Shared {
            name,
            options: Options {
                buffer: options.buffer.max(1),
                ..options
            },
            stats,
            state: Mutex::new(State {
                handles: 1,
                ..State::default()
            }),
            data: Condvar::new(),
            room: Condvar::new(),
        });
        let writer = shared.clone();
        thread::Builder::new()
            .name(format!("passthrough-{name}"))
            .spawn(move || write_out(&writer, out))?;
        Ok(Passthrough {
            shared: Some(shared),
            direct: None,
        })
    }

    /// Hands `bytes` (one read of the input) over to be written. Returns at
    /// once when they fit in the buffer; when they do not, waits for room
    /// (`block`) or drops what does not fit (`drop`). Once the output is gone,
    /// does nothing.
    pub fn write(&mut self, bytes: &[u8]) {
        let rest = self.write_now(bytes);
        self.write_rest(&bytes[rest..]);
    }

    /// Hands over what of `bytes` can be without waiting, and returns where
    /// the rest begins (`bytes.len()` when nothing is left: all taken, or
    /// dropped in `drop` mode, or the output is gone). Give the rest to
    /// [`write_rest`](Passthrough::write_rest), before anything else.
    pub fn write_now(&mut self, bytes: &[u8]) -> usize {
        if let Some(direct) = &self.direct {
            direct.write(bytes);
        }
        let Some(shared) = &self.shared else {
            return bytes.len();
        };
        if bytes.is_empty() {
            return 0;
        }
        let mut state = shared.lock();
        if state.closed {
            return bytes.len();
        }
        match shared.options.full {
            Full::Block => {
                let taken = take(shared, &mut state, bytes);
                if taken < bytes.len() {
                    tracing::debug!(
                        "pass-through to {}: its reader is not keeping up; reading waits for it",
                        shared.name
                    );
                }
                taken
            }
            Full::Drop => {
                let dropped = take_or_drop(shared, &mut state, bytes);
                drop(state);
                if let Some(dropped) = dropped {
                    PassthroughDropped {
                        stats: &shared.stats,
                        output: shared.name,
                        bytes: dropped.bytes,
                        report: dropped.first,
                    }
                    .emit();
                }
                bytes.len()
            }
        }
    }

    /// Hands `rest` over, waiting for room as long as it takes (`block`
    /// mode: what [`write_now`](Passthrough::write_now) left), unless the
    /// output goes away meanwhile.
    pub fn write_rest(&mut self, mut rest: &[u8]) {
        let Some(shared) = &self.shared else { return };
        if rest.is_empty() {
            return;
        }
        let mut state = shared.lock();
        loop {
            if state.closed {
                return;
            }
            let taken = take(shared, &mut state, rest);
            rest = &rest[taken..];
            if rest.is_empty() {
                return;
            }
            state.handles_waiting += 1;
            state = shared
                .room
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.handles_waiting -= 1;
        }
    }

    /// Bytes handed over and not written yet (0 once the output is gone, or
    /// without pass-through).
    pub fn unwritten(&self) -> usize {
        let Some(shared) = &self.shared else { return 0 };
        let state = shared.lock();
        if state.closed {
            0
        } else {
            state.pending.len() + state.writing
        }
    }

    /// Gives up on what is not written yet (the end of a run whose output's
    /// reader does not take it): counts it as dropped, logs how much, and
    /// stops taking bytes. Returns that count.
    pub fn abandon(&self) -> u64 {
        let Some(shared) = &self.shared else { return 0 };
        let mut state = shared.lock();
        if state.closed {
            return 0;
        }
        let left = (state.pending.len() + state.writing) as u64;
        state.dropped += left;
        state.closed = true;
        state.pending = Vec::new();
        shared.room.notify_all();
        drop(state);
        if left > 0 {
            PassthroughDropped {
                stats: &shared.stats,
                output: shared.name,
                bytes: usize::try_from(left).unwrap_or(usize::MAX),
                report: false,
            }
            .emit();
            tracing::warn!(
                "pass-through to {}: {left} bytes were never written: its reader did not take them before the end",
                shared.name
            );
        }
        left
    }

    /// Logs this output's totals for the exit summary, when it dropped anything.
    pub fn report(&self) {
        let Some(shared) = &self.shared else { return };
        let state = shared.lock();
        let (dropped, episodes) = (state.dropped, state.episodes);
        drop(state);
        PassthroughTotals {
            output: shared.name,
            full: shared.options.full.name(),
            dropped,
            episodes,
        }
        .emit();
    }
}

impl Clone for Passthrough {
    fn clone(&self) -> Self {
        if let Some(shared) = &self.shared {
            shared.lock().handles += 1;
        }
        Passthrough {
            shared: self.shared.clone(),
            direct: self.direct.clone(),
        }
    }
}

impl Drop for Passthrough {
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            let mut state = shared.lock();
            state.handles -= 1;
            if state.handles == 0 && state.writer_waiting {
                shared.data.notify_one();
            }
        }
    }
}

/// Moves as much of `bytes` into the buffer as there is room for; returns
/// how much.
fn take(shared: &Shared, state: &mut State, bytes: &[u8]) -> usize {
    let used = state.pending.len() + state.writing;
    let n = shared.options.buffer.saturating_sub(used).min(bytes.len());
    if n > 0 {
        accept(shared, state, &bytes[..n]);
    }
    n
}

/// Appends `bytes` to the buffer and wakes the writer if it waits.
fn accept(shared: &Shared, state: &mut State, bytes: &[u8]) {
    state.pending.extend_from_slice(bytes);
    if state.writer_waiting {
        state.writer_waiting = false;
        shared.data.notify_one();
    }
}

/// `drop` mode: keeps what of `bytes` fits (in whole lines where it can),
/// drops the rest; returns what was dropped.
fn take_or_drop(shared: &Shared, state: &mut State, bytes: &[u8]) -> Option<Dropped> {
    let mut dropped = 0;
    let mut b = bytes;
    if state.skipping {
        // The rest of a line whose beginning was dropped.
        let end = memchr::memchr(b'\n', b).map_or(b.len(), |i| i + 1);
        dropped += end;
        state.skipping = end == b.len() && b.last() != Some(&b'\n');
        b = &b[end..];
    }
    if !b.is_empty() {
        let used = state.pending.len() + state.writing;
        let room = shared.options.buffer.saturating_sub(used);
        let kept = if b.len() <= room {
            b.len()
        } else {
            let mut kept = 0;
            let mut whole_lines = true;
            if state.mid_line {
                // Finish the line already begun, if it ends within the grace.
                match memchr::memchr(b'\n', b) {
                    Some(i) if i < room + LINE_GRACE => kept = i + 1,
                    _ => whole_lines = false,
                }
            }
            if whole_lines {
                let left = room.saturating_sub(kept).min(b.len() - kept);
                if let Some(j) = memchr::memrchr(b'\n', &b[kept..kept + left]) {
                    kept += j + 1;
                }
            }
            kept
        };
        if kept > 0 {
            accept(shared, state, &b[..kept]);
        }
        let rest = &b[kept..];
        if rest.is_empty() {
            if kept > 0 {
                state.mid_line = b[kept - 1] != b'\n';
            }
        } else {
            dropped += rest.len();
            // A line cut here is over as far as what is kept goes: what
            // comes next starts a line of its own.
            state.mid_line = false;
            state.skipping = rest.last() != Some(&b'\n');
        }
    }
    if dropped == 0 {
        return None;
    }
    state.dropped += dropped as u64;
    let first = !state.dropping;
    if first {
        state.dropping = true;
        state.episodes += 1;
    }
    Some(Dropped {
        bytes: dropped,
        first,
    })
}

/// The writer thread: writes what is handed over, as it comes, until every
/// handle is gone and all is written, or the output fails.
fn write_out(shared: &Shared, mut out: File) {
    let mut chunk = Vec::new();
    loop {
        {
            let mut state = shared.lock();
            state.writing = 0;
            if state.pending.is_empty() {
                // Caught up: an episode of dropping is over.
                state.dropping = false;
            }
            if state.handles_waiting > 0 {
                shared.room.notify_all();
            }
            while state.pending.is_empty() {
                if state.handles == 0 || state.closed {
                    return;
                }
                state.writer_waiting = true;
                state = shared
                    .data
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                state.writer_waiting = false;
            }
            std::mem::swap(&mut state.pending, &mut chunk);
            state.writing = chunk.len();
        }
        if let Err(error) = out.write_all(&chunk) {
            let mut state = shared.lock();
            let already = state.closed;
            state.closed = true;
            state.writing = 0;
            state.pending = Vec::new();
            shared.room.notify_all();
            drop(state);
            if !already {
                PassthroughStopped {
                    output: shared.name,
                    error: &error,
                }
                .emit();
            }
            return;
        }
        chunk.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::internal_event;
    use std::io::Read;
    use std::time::Duration;

    fn drop_mode(buffer: usize) -> Options {
        Options {
            enabled: true,
            buffer,
            full: Full::Drop,
        }
    }

    /// Waits until everything handed to `out` is written (or its output is gone).
    fn flushed(out: &Passthrough) {
        while out.unwritten() > 0 {
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn every_byte_in_order_through_a_small_buffer() {
        let (mut reader, writer) = io::pipe().unwrap();
        let options = Options {
            buffer: 10,
            ..Options::default()
        };
        let stats = Arc::new(InputStats::default());
        let mut out = Passthrough::to(writer.into(), "test", options, stats.clone()).unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let input = data.clone();
        let feeder = thread::spawn(move || {
            for piece in input.chunks(777) {
                out.write(piece);
            }
        });
        let mut got = Vec::new();
        reader.read_to_end(&mut got).unwrap();
        feeder.join().unwrap();
        assert_eq!(got, data);
        assert_eq!(internal_event::get(&stats.passthrough_dropped), 0);
    }

    #[test]
    fn drop_mode_keeps_whole_lines_and_counts_the_rest() {
        let (mut reader, writer) = io::pipe().unwrap();
        let stats = Arc::new(InputStats::default());
        let mut out =
            Passthrough::to(writer.into(), "test", drop_mode(100), stats.clone()).unwrap();
        // Nobody reads the pipe yet: the writer blocks once the pipe is full,
        // and then the buffer fills.
        let mut input = Vec::new();
        for i in 0..20_000 {
            input.extend_from_slice(format!("line {i:05}\n").as_bytes());
        }
        for piece in input.chunks(1000) {
            out.write(piece);
        }
        let dropped = internal_event::get(&stats.passthrough_dropped);
        assert!(dropped > 0, "a stopped reader makes drop mode drop");
        let reading = thread::spawn(move || {
            let mut got = Vec::new();
            reader.read_to_end(&mut got).unwrap();
            got
        });
        flushed(&out);
        // The reader has caught up: a line written now is kept.
        out.write(b"line 20000\n");
        assert_eq!(internal_event::get(&stats.passthrough_dropped), dropped);
        flushed(&out);
        drop(out);
        let got = reading.join().unwrap();
        assert_eq!(got.len() as u64 + dropped, input.len() as u64 + 11);
        // Whole lines, in order.
        let mut last = None;
        for line in got.split_inclusive(|&b| b == b'\n') {
            let text = std::str::from_utf8(line).unwrap();
            let n: u32 = text
                .strip_prefix("line ")
                .and_then(|t| t.strip_suffix('\n'))
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("not a whole line: {text:?}"));
            assert!(last.is_none_or(|l| n > l), "{n} after {last:?}");
            last = Some(n);
        }
        assert_eq!(last, Some(20_000), "writing resumed");
    }

    #[test]
    fn a_prompt_without_newline_is_written_at_once() {
        let (mut reader, writer) = io::pipe().unwrap();
        let stats = Arc::new(InputStats::default());
        let mut out = Passthrough::to(writer.into(), "test", Options::default(), stats).unwrap();
        out.write(b"password: ");
        let mut got = [0; 10];
        reader.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"password: ");
    }

    #[test]
    fn a_gone_reader_stops_pass_through_and_never_blocks() {
        let (reader, writer) = io::pipe().unwrap();
        drop(reader);
        let stats = Arc::new(InputStats::default());
        let mut out = Passthrough::to(
            writer.into(),
            "test",
            Options {
                buffer: 16,
                ..Options::default()
            },
            stats,
        )
        .unwrap();
        // Far more than the buffer, in block mode: it must not wait forever.
        for _ in 0..1000 {
            out.write(b"0123456789\n");
        }
        assert_eq!(out.unwritten(), 0);
        assert_eq!(out.abandon(), 0);
    }

    #[test]
    fn modes_and_sizes() {
        assert_eq!(full("block"), Ok(Full::Block));
        assert_eq!(full(" DROP "), Ok(Full::Drop));
        assert!(full("wait").unwrap_err().contains("\"block\""));
        assert_eq!(buffer_size_text("65536"), Ok(65536));
        assert!(buffer_size_text("0").is_err());
        assert!(buffer_size(MAX_BUFFER + 1).is_err());
    }
}
