//! One followed file: its open handle, identity, read position and the
//! partial last line not yet complete.
//!
//! Reading uses `pread` at the tracked offset, so the handle's own position
//! never matters, and a handle may be closed and opened again (to keep few
//! descriptors open) without losing the place. The bytes read within the
//! first [`FINGERPRINT_LEN`] extend the file's fingerprint, and the last
//! bytes sent are kept (up to [`TAIL_LEN`]), to check before each read that
//! the file still holds them ([`Tail`]) and to save that check with the
//! position.

use super::identity::{self, FINGERPRINT_LEN, Identity, TAIL_LEN, Tail};
use super::positions::{Saved, Seen};
use crate::input::reader::{CHUNK, Lines, MAX_LINE};
use crate::input::{Batch, Event, EventSender, Mark};
use logalarm_plugin_api::Source;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A followed file.
pub struct Tracked {
    /// The follower's id for it (the key of its saved position).
    pub id: u64,
    /// The path it is followed under.
    pub path: PathBuf,
    source: Source,
    /// Its handle; `None` while closed to save descriptors.
    pub file: Option<File>,
    /// Which file it is.
    pub identity: Identity,
    /// Bytes read from it, the partial line included.
    pub offset: u64,
    /// The last line, read but not yet ended by `\n`.
    partial: Vec<u8>,
    /// Since when a partial line has waited.
    pub partial_since: Option<Instant>,
    /// Offset up to which every alarm fired has been delivered.
    pub committed: u64,
    /// The check of the bytes before `committed`.
    pub committed_tail: Tail,
    /// The last bytes sent to the engine (up to [`TAIL_LEN`]): those just
    /// before [`Tracked::sent`].
    tail: Vec<u8>,
    /// Its size and modification time at the last read.
    pub seen: Seen,
    /// A rotated file read to its end, its partial line matched and its end
    /// told to the engine; it stays until its alarms are delivered.
    pub finished: bool,
    /// When data was last read (or the file was found).
    pub last_data: Instant,
    /// When its path moved on to another file (rotation, deletion): it is
    /// still read until it has been quiet for `rotate_wait`, and kept until
    /// the alarms of its lines are delivered.
    pub rotated_at: Option<Instant>,
}

/// Reading stopped because the engine takes no more events.
#[derive(Debug)]
pub struct EngineGone;

/// Why reading a file stopped early.
#[derive(Debug)]
pub enum ReadError {
    /// The engine takes no more events.
    EngineGone,
    /// The file's first bytes are no longer those of its fingerprint: it was
    /// truncated and written again (or, while closed, replaced on its inode).
    Rewritten,
    /// Reading failed.
    Io(io::Error),
}

impl Tracked {
    /// A file opened at `offset` (its bytes before `offset` are taken as
    /// read: they are what later reads check).
    pub fn new(
        id: u64,
        path: &Path,
        file: File,
        identity: Identity,
        offset: u64,
        now: Instant,
    ) -> Tracked {
        // A failed read only weakens the check (it covers fewer bytes).
        let tail = identity::tail_bytes(&file, offset).unwrap_or_default();
        let seen = file.metadata().map(|m| Seen::of(&m)).unwrap_or_default();
        Tracked {
            id,
            path: path.to_owned(),
            source: Source::new("file", path.as_os_str()),
            file: Some(file),
            identity,
            offset,
            partial: Vec::new(),
            partial_since: None,
            committed: offset,
            committed_tail: Tail::of(&tail),
            tail,
            seen,
            finished: false,
            last_data: now,
            rotated_at: None,
        }
    }

    /// What is saved of it: the position whose alarms are delivered.
    pub fn saved(&self) -> Saved {
        Saved {
            path: self.path.clone(),
            identity: self.identity,
            offset: self.committed,
            tail: Some(self.committed_tail),
            seen: Some(self.seen),
        }
    }

    /// Where reading got: the position of the last line sent, to find the
    /// file again by (as a saved one is found).
    pub fn reached(&self) -> Saved {
        Saved {
            offset: self.sent(),
            tail: Some(Tail::of(&self.tail)),
            ..self.saved()
        }
    }

    /// Follows the file under another path (it was renamed into a watched name).
    pub fn rename(&mut self, path: &Path) {
        self.path = path.to_owned();
        self.source = Source::new("file", path.as_os_str());
    }

    /// The offset just past the last line sent to the engine (the partial
    /// line waiting for its `\n` not included).
    pub fn sent(&self) -> u64 {
        self.offset.saturating_sub(self.partial.len() as u64)
    }

    /// Bytes of a partial last line waiting for its `\n`.
    pub fn partial_len(&self) -> usize {
        self.partial.len()
    }

    /// Reads what is new, sending whole lines to the engine; returns the
    /// bytes read.
    ///
    /// Each chunk read is sent only once the file's first bytes, and its bytes
    /// before the position, are checked to be still those read: a file
    /// truncated and written again between the caller's look and the read
    /// would otherwise give the middle of its new lines as if they followed
    /// the old ones.
    ///
    /// # Errors
    /// [`ReadError::Rewritten`] (nothing of the chunk was sent, the position
    /// is unchanged), [`ReadError::EngineGone`], [`ReadError::Io`].
    pub fn read_new(&mut self, events: &EventSender, now: Instant) -> Result<u64, ReadError> {
        let Some(file) = self.file.take() else {
            return Ok(0);
        };
        let result = self.read_chunks(&file, events, now);
        self.file = Some(file);
        result
    }

    fn read_chunks(
        &mut self,
        file: &File,
        events: &EventSender,
        now: Instant,
    ) -> Result<u64, ReadError> {
        let mut total = 0;
        loop {
            // Sized to what there is to read: small files cost small buffers,
            // and a file with nothing new costs no buffer at all.
            let meta = file.metadata().map_err(ReadError::Io)?;
            let len = meta.len();
            let want = match len.saturating_sub(self.offset) {
                0 => return Ok(total),
                more => usize::try_from(more).map_or(CHUNK, |m| m.min(CHUNK)),
            };
            let kept = self.partial.len();
            let mut chunk = Vec::with_capacity(kept + want);
            chunk.append(&mut self.partial);
            chunk.resize(kept + want, 0);
            let read = loop {
                match file.read_at(&mut chunk[kept..], self.offset) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    other => break other,
                }
            };
            let n = read.map_err(|e| {
                self.keep_partial(&mut chunk, kept);
                ReadError::Io(e)
            })?;
            // Checked after the read: a file truncated and written again
            // before it has other first bytes, or other bytes before the
            // position (behind the same first bytes).
            let at = self.offset - kept as u64;
            let rewritten =
                !self.identity.still_starts(file) || !Tail::of(&self.tail).still_before(file, at);
            if n == 0 || rewritten {
                self.keep_partial(&mut chunk, kept);
                return if n == 0 {
                    Ok(total)
                } else {
                    Err(ReadError::Rewritten)
                };
            }
            chunk.truncate(kept + n);
            // Bytes just past what the fingerprint covers extend it.
            let fp_end = self.identity.fp_len;
            if fp_end < FINGERPRINT_LEN && self.offset <= fp_end && fp_end < self.offset + n as u64
            {
                let from = kept + usize::try_from(fp_end - self.offset).unwrap_or(n);
                self.identity.extend(&chunk[from..kept + n]);
            }
            total += n as u64;
            self.offset += n as u64;
            self.last_data = now;
            self.seen = Seen::of(&meta);
            self.finished = false;
            let cut = match memchr::memrchr(b'\n', &chunk[kept..]) {
                Some(i) => kept + i + 1,
                // A line beyond the limit is matched in pieces, as on stdin.
                None if chunk.len() > MAX_LINE => chunk.len(),
                None => 0,
            };
            self.partial = chunk[cut..].to_vec();
            chunk.truncate(cut);
            self.partial_since = match (self.partial.is_empty(), self.partial_since) {
                (true, _) => None,
                (false, Some(since)) if cut == 0 => Some(since),
                (false, _) => Some(now),
            };
            if cut > 0 {
                self.send(chunk, events)?;
            }
            if n < want {
                return Ok(total);
            }
        }
    }

    /// Puts the first `kept` bytes of `chunk` — the partial line it began
    /// with — back, without the chunk's spare room.
    fn keep_partial(&mut self, chunk: &mut Vec<u8>, kept: usize) {
        chunk.truncate(kept);
        chunk.shrink_to_fit();
        self.partial = std::mem::take(chunk);
    }

    /// Sends the partial last line as it is (it waited too long, or the file
    /// is being left).
    ///
    /// # Errors
    /// The engine stopped.
    pub fn flush_partial(&mut self, events: &EventSender) -> Result<(), EngineGone> {
        self.partial_since = None;
        if self.partial.is_empty() {
            return Ok(());
        }
        let line = std::mem::take(&mut self.partial);
        self.send(line, events).map_err(|_| EngineGone)
    }

    /// Tells the engine that this file's lines end here (it was rotated away,
    /// truncated, or is no longer followed): what it holds for the file's
    /// source alone (an open multiline record) closes now.
    ///
    /// # Errors
    /// The engine stopped.
    pub fn ended(&self, events: &EventSender) -> Result<(), EngineGone> {
        events
            .blocking_send(Event::Ended(self.source.clone()))
            .map_err(|_| EngineGone)
    }

    fn send(&mut self, lines: Vec<u8>, events: &EventSender) -> Result<(), ReadError> {
        // The bytes before the new position: the end of these lines, and
        // before them, what was sent before.
        let keep = TAIL_LEN.saturating_sub(lines.len()).min(self.tail.len());
        self.tail.drain(..self.tail.len() - keep);
        self.tail
            .extend_from_slice(&lines[lines.len().saturating_sub(TAIL_LEN)..]);
        let batch = Batch {
            source: self.source.clone(),
            lines: Lines::from_vec(lines),
            headers: Vec::new(),
            mark: Some(Mark {
                file: self.id,
                offset: self.sent(),
                tail: Tail::of(&self.tail),
                key: self.identity.key(),
            }),
        };
        events
            .blocking_send(Event::Lines(batch))
            .map_err(|_| ReadError::EngineGone)
    }
}
