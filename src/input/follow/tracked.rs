//! One followed file: its open handle, identity, read position and the
//! partial last line not yet complete.
//!
//! Reading uses `pread` at the tracked offset, so the handle's own position
//! never matters, and a handle may be closed and opened again (to keep few
//! descriptors open) without losing the place.

use super::identity::Identity;
use crate::input::reader::{CHUNK, Lines, MAX_LINE};
use crate::input::{Batch, Event, EventSender, Mark};
use logalarm_plugin_api::Source;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
    /// When data was last read (or the file was found).
    pub last_data: Instant,
    /// When its path moved on to another file (rotation, deletion): it is
    /// still read until it has been quiet for `rotate_wait`.
    pub rotated_at: Option<Instant>,
}

/// Reading stopped because the engine takes no more events.
#[derive(Debug)]
pub struct EngineGone;

impl Tracked {
    /// A file opened at `offset`.
    pub fn new(
        id: u64,
        path: &Path,
        file: File,
        identity: Identity,
        offset: u64,
        now: Instant,
    ) -> Tracked {
        Tracked {
            id,
            path: path.to_owned(),
            source: Source::File(Arc::from(path)),
            file: Some(file),
            identity,
            offset,
            partial: Vec::new(),
            partial_since: None,
            committed: offset,
            last_data: now,
            rotated_at: None,
        }
    }

    /// Follows the file under another path (it was renamed into a watched name).
    pub fn rename(&mut self, path: &Path) {
        self.path = path.to_owned();
        self.source = Source::File(Arc::from(path));
    }

    /// Starts over at offset 0 (the file was truncated in place).
    pub fn restart(&mut self) {
        self.offset = 0;
        self.committed = 0;
        self.partial.clear();
        self.partial_since = None;
    }

    /// Bytes of a partial last line waiting for its `\n`.
    pub fn partial_len(&self) -> usize {
        self.partial.len()
    }

    /// Reads what is new, sending whole lines to the engine; returns the
    /// bytes read.
    ///
    /// # Errors
    /// `Err(Ok(EngineGone))` when the engine stopped; `Err(Err(e))` on a read error.
    pub fn read_new(
        &mut self,
        events: &EventSender,
        now: Instant,
    ) -> Result<u64, Result<EngineGone, io::Error>> {
        let Some(file) = self.file.take() else {
            return Ok(0);
        };
        let result = self.read_from(&file, events, now);
        self.file = Some(file);
        result
    }

    /// Reads `file` (this file, or a copy of it) from the tracked offset to its end.
    pub fn read_from(
        &mut self,
        file: &File,
        events: &EventSender,
        now: Instant,
    ) -> Result<u64, Result<EngineGone, io::Error>> {
        let mut total = 0;
        loop {
            let kept = self.partial.len();
            let mut chunk = Vec::with_capacity(kept + CHUNK);
            chunk.append(&mut self.partial);
            chunk.resize(kept + CHUNK, 0);
            let n = loop {
                match file.read_at(&mut chunk[kept..], self.offset) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        chunk.truncate(kept);
                        self.partial = chunk;
                        return Err(Err(e));
                    }
                }
            };
            chunk.truncate(kept + n);
            if n == 0 {
                self.partial = chunk;
                return Ok(total);
            }
            total += n as u64;
            self.offset += n as u64;
            self.last_data = now;
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
            if n < CHUNK {
                return Ok(total);
            }
        }
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
        self.send(line, events).map_err(|e| e.unwrap_or(EngineGone))
    }

    fn send(
        &mut self,
        lines: Vec<u8>,
        events: &EventSender,
    ) -> Result<(), Result<EngineGone, io::Error>> {
        let batch = Batch {
            source: self.source.clone(),
            lines: Lines::from_vec(lines),
            headers: Vec::new(),
            mark: Some(Mark {
                file: self.id,
                offset: self.offset - self.partial.len() as u64,
            }),
        };
        events
            .blocking_send(Event::Lines(batch))
            .map_err(|_| Ok(EngineGone))
    }
}
