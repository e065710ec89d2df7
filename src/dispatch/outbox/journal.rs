//! One alarm's journal on disk: two append-only files in its own directory.
//!
//! - `puts`: every notification the alarm accepted, in order. A record is
//!   framed as `len: u32 LE, crc32: u32 LE, payload`, the payload being the
//!   note's sequence number in this run (`u64 LE`, rewritten on recovery)
//!   then the [`Stored`] notification (postcard).
//! - `done`: the ids of the notifications finished (delivered, or failed for
//!   good), framed the same way. It is written, not fsynced: a `done` record
//!   lost in a crash means one delivery repeated, never one lost.
//!
//! A crash can leave a record half written at a file's end: its frame is
//! short or its CRC wrong, and it is dropped with everything after it (the
//! write of a batch is one `write(2)`, so nothing after it was acknowledged).
//!
//! Compaction ([`Journal::compact`]) rewrites `puts` with only the records
//! not finished, through a temporary file fsynced and renamed over the old
//! one, then empties `done`; a crash in between leaves `done` records of
//! notes no longer in `puts`, which are ignored.

use super::stored::Stored;
use logalarm_plugin_api::{NoteId, Notification};
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// Bytes before a record's payload: its length and CRC-32.
const HEADER: usize = 8;

/// The largest record read back (a corrupt length past it ends the file).
const MAX_RECORD: usize = 256 << 20;

/// One alarm's journal files, open for appending.
pub(super) struct Journal {
    dir: PathBuf,
    /// `puts`, shared with the syncer thread, which fsyncs it outside the lane's lock.
    puts: Arc<File>,
    done: File,
    /// Bytes in `puts` (written or buffered).
    puts_len: u64,
    /// Bytes in `done`.
    done_len: u64,
    /// Records in `puts`.
    records: u64,
    /// Encoded records not yet written.
    buf: Vec<u8>,
    /// Where the next spilled record to read back starts in `puts`.
    pub(super) read_at: u64,
    /// Bumped whenever `puts` is replaced (compaction), so a sync of the old
    /// file is not taken for one of the new.
    pub(super) generation: u64,
}

/// A record read back from `puts`.
pub(super) struct Record {
    pub(super) seq: u64,
    pub(super) note: Notification,
    pub(super) since: SystemTime,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
}

/// Appends `payload`, framed, to `out`.
fn frame(payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// The payloads of the whole frames at the start of `bytes`, each with its
/// offset; stops at the first short or corrupt frame.
fn frames(bytes: &[u8]) -> Vec<(u64, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(header) = bytes.get(at..at + HEADER) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let Some(payload) = bytes.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        if len > MAX_RECORD || crc32fast::hash(payload) != crc {
            break;
        }
        out.push((at as u64, payload));
        at += HEADER + len;
    }
    out
}

/// Reads the next whole frame of `r` into `payload`: false at the end, or at
/// a short or corrupt frame (a crash's half-written end, dropped).
///
/// # Errors
/// Reading failed.
fn next_frame(r: &mut impl io::Read, payload: &mut Vec<u8>) -> io::Result<bool> {
    let mut header = [0u8; HEADER];
    match r.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_RECORD {
        return Ok(false);
    }
    payload.resize(len, 0);
    match r.read_exact(payload) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    Ok(crc32fast::hash(payload) == crc)
}

fn decode(payload: &[u8]) -> Option<Record> {
    let (seq, rest) = payload.split_at_checked(8)?;
    let seq = u64::from_le_bytes(seq.try_into().ok()?);
    let stored: Stored<'static> = postcard::from_bytes(rest).ok()?;
    let (note, since) = stored.into_note();
    Some(Record { seq, note, since })
}

/// The id of a record: the first field of its [`Stored`] notification, read
/// alone (compaction needs nothing else).
fn id_of(payload: &[u8]) -> Option<NoteId> {
    postcard::take_from_bytes::<NoteId>(payload.get(8..)?)
        .ok()
        .map(|(id, _)| id)
}

impl Journal {
    /// Opens (creating) the journal in `dir`, and compacts what a previous
    /// run left: afterwards `puts` holds only the notifications not finished,
    /// in order, numbered 1, 2, … as this run's first notes.
    ///
    /// Returns the journal and how many notifications it holds.
    ///
    /// # Errors
    /// The directory or its files cannot be created, read or written.
    pub(super) fn open(dir: &Path) -> io::Result<(Journal, u64)> {
        fs::create_dir_all(dir)?;
        let puts = open_append(&dir.join("puts"))?;
        let done = open_append(&dir.join("done"))?;
        let mut journal = Journal {
            dir: dir.to_owned(),
            puts: Arc::new(puts),
            done,
            puts_len: 0,
            done_len: 0,
            records: 0,
            buf: Vec::new(),
            read_at: 0,
            generation: 0,
        };
        journal.puts_len = journal.puts.metadata()?.len();
        journal.done_len = journal.done.metadata()?.len();
        let live = journal.compact(0, true)?;
        // Every record left is read back: none is in memory yet.
        journal.read_at = 0;
        Ok((journal, live))
    }

    /// Bytes on disk (and buffered).
    pub(super) fn bytes(&self) -> u64 {
        self.puts_len + self.done_len + self.buf.len() as u64
    }

    /// Records in `puts`.
    pub(super) fn records(&self) -> u64 {
        self.records
    }

    /// Encodes `note` (number `seq`, first arrived at `since`) into the
    /// buffer; returns where its record will start in `puts` and its size.
    pub(super) fn append(
        &mut self,
        seq: u64,
        note: &Notification,
        since: SystemTime,
    ) -> (u64, u64) {
        let at = self.puts_len + self.buf.len() as u64;
        // Encoding into a Vec fails only on a type serde cannot encode: none here.
        let payload = postcard::to_extend(&Stored::of(note, since), seq.to_le_bytes().to_vec())
            .unwrap_or_else(|_| seq.to_le_bytes().to_vec());
        frame(&payload, &mut self.buf);
        let size = self.puts_len + self.buf.len() as u64 - at;
        self.records += 1;
        (at, size)
    }

    /// Writes what [`Journal::append`] buffered, in one `write(2)`.
    ///
    /// # Errors
    /// The write failed (the buffer is dropped: the caller counts its notes
    /// as not journaled).
    pub(super) fn write(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let result = (&*self.puts).write_all(&self.buf);
        match &result {
            Ok(()) => self.puts_len += self.buf.len() as u64,
            // Part of it may be on disk: cut it off, so the next write does
            // not follow a half frame that would end the journal at recovery.
            Err(_) => {
                let _ = self.puts.set_len(self.puts_len);
            }
        }
        self.buf.clear();
        result
    }

    /// Drops what [`Journal::append`] buffered since the last write: `n`
    /// records (the caller could not take them).
    pub(super) fn unbuffer(&mut self, from: u64, n: u64) {
        let keep = usize::try_from(from.saturating_sub(self.puts_len)).unwrap_or(0);
        self.buf.truncate(keep);
        self.records = self.records.saturating_sub(n);
    }

    /// `puts`, to fsync outside the lane's lock.
    pub(super) fn puts_file(&self) -> Arc<File> {
        self.puts.clone()
    }

    /// Records that the notification `id` is finished.
    pub(super) fn done(&mut self, id: NoteId) {
        let Ok(payload) = postcard::to_extend(&id, Vec::with_capacity(24)) else {
            return;
        };
        let mut framed = Vec::with_capacity(HEADER + payload.len());
        frame(&payload, &mut framed);
        match (&self.done).write_all(&framed) {
            Ok(()) => self.done_len += framed.len() as u64,
            // A lost done record repeats one delivery after a restart; nothing more.
            Err(e) => tracing::warn!(
                "outbox {}: cannot record a delivery: {e}; it may be repeated after a restart",
                self.dir.display()
            ),
        }
    }

    /// Reads back up to `max` records from [`Journal::read_at`] on (records
    /// written before: the caller's spilled ones), and moves `read_at` past them.
    ///
    /// # Errors
    /// Reading failed, or a record there is corrupt.
    pub(super) fn read_back(&mut self, max: u64) -> io::Result<Vec<Record>> {
        let mut out = Vec::new();
        let mut chunk = vec![0u8; 256 << 10];
        while (out.len() as u64) < max && self.read_at < self.puts_len {
            let want = usize::try_from(self.puts_len - self.read_at)
                .unwrap_or(usize::MAX)
                .min(chunk.len());
            let base = self.read_at;
            let got = self.puts.read_at(&mut chunk[..want], base)?;
            let parsed = frames(&chunk[..got]);
            if parsed.is_empty() {
                // A record bigger than the chunk: read it whole.
                let len = chunk
                    .get(..4)
                    .map(|h| u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize)
                    .unwrap_or(0);
                if got < HEADER || len > MAX_RECORD || chunk.len() >= HEADER + len {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("a corrupt record at byte {}", self.read_at),
                    ));
                }
                chunk.resize(HEADER + len, 0);
                continue;
            }
            for (at, payload) in parsed {
                if out.len() as u64 == max {
                    break;
                }
                let record = decode(payload).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("an unreadable record at byte {}", base + at),
                    )
                })?;
                out.push(record);
                self.read_at = base + at + (HEADER + payload.len()) as u64;
            }
        }
        Ok(out)
    }

    /// Rewrites `puts` with only the records whose ids are not in `done`,
    /// renumbering them from `first_seq + 1` when `renumber`; empties `done`.
    /// `read_at` then points at the record that was the `spilled`-th from the
    /// end (the caller passes how many of the live records are spilled, i.e.
    /// not in memory: they are always the last ones). Returns the live count.
    ///
    /// # Errors
    /// A file cannot be read, written or renamed.
    pub(super) fn compact(&mut self, spilled: u64, renumber: bool) -> io::Result<u64> {
        self.write()?;
        // Streamed, a record at a time: a journal may be as big as the quota.
        let mut finished: HashSet<NoteId> = HashSet::new();
        let mut done = io::BufReader::new(File::open(self.dir.join("done"))?);
        let mut payload = Vec::new();
        while next_frame(&mut done, &mut payload)? {
            if let Ok(id) = postcard::from_bytes::<NoteId>(&payload) {
                finished.insert(id);
            }
        }
        let mut puts = io::BufReader::new(File::open(self.dir.join("puts"))?);
        let tmp = self.dir.join("puts.tmp");
        let mut out = io::BufWriter::new(File::create(&tmp)?);
        let (mut live, mut len) = (0u64, 0u64);
        let mut framed = Vec::new();
        while next_frame(&mut puts, &mut payload)? {
            let Some(id) = id_of(&payload) else { continue };
            if finished.contains(&id) {
                continue;
            }
            live += 1;
            if renumber && payload.len() >= 8 {
                payload[..8].copy_from_slice(&live.to_le_bytes());
            }
            framed.clear();
            frame(&payload, &mut framed);
            out.write_all(&framed)?;
            len += framed.len() as u64;
        }
        out.into_inner()
            .map_err(io::IntoInnerError::into_error)?
            .sync_data()?;
        fs::rename(&tmp, self.dir.join("puts"))?;
        File::open(&self.dir)?.sync_all()?;
        self.done.set_len(0)?;
        self.puts = Arc::new(open_append(&self.dir.join("puts"))?);
        self.puts_len = len;
        self.done_len = 0;
        self.records = live;
        self.generation += 1;
        // The spilled records are the last ones: find where the first starts.
        let mut at = 0u64;
        let mut header = [0u8; HEADER];
        for _ in 0..live.saturating_sub(spilled) {
            self.puts.read_exact_at(&mut header, at)?;
            let n = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
            at += (HEADER as u64) + u64::from(n);
        }
        self.read_at = at.min(self.puts_len);
        Ok(live)
    }

    /// Empties both files: every notification in them is finished. `puts`
    /// first: a crash between the two leaves `done` records of nothing.
    ///
    /// # Errors
    /// A file cannot be truncated.
    pub(super) fn reset(&mut self) -> io::Result<()> {
        self.buf.clear();
        self.puts.set_len(0)?;
        self.done.set_len(0)?;
        self.puts_len = 0;
        self.done_len = 0;
        self.records = 0;
        self.read_at = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logalarm_plugin_api::Source;

    fn note(seq: u64) -> Notification {
        Notification {
            id: NoteId {
                run: 7,
                alarm: 0,
                seq,
            },
            ..Notification::new(
                "a".into(),
                "r".into(),
                format!("line {seq}").into_bytes(),
                Source::stdin(),
                SystemTime::UNIX_EPOCH,
            )
        }
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("la-journal-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn what_is_not_done_survives_a_reopen_in_order() {
        let d = dir("reopen");
        let (mut j, live) = Journal::open(&d).unwrap();
        assert_eq!(live, 0);
        for s in 1..=5 {
            j.append(s, &note(s), SystemTime::UNIX_EPOCH);
        }
        j.write().unwrap();
        j.done(note(2).id);
        j.done(note(4).id);
        // A torn record at the end (a crash mid-write) is dropped.
        (&*j.puts).write_all(&[9, 0, 0, 0, 1, 2]).unwrap();
        drop(j);
        let (mut j, live) = Journal::open(&d).unwrap();
        assert_eq!(live, 3);
        j.read_at = 0;
        let back = j.read_back(10).unwrap();
        let got: Vec<(u64, Vec<u8>)> = back.into_iter().map(|r| (r.seq, r.note.message)).collect();
        assert_eq!(
            got,
            vec![
                (1, b"line 1".to_vec()),
                (2, b"line 3".to_vec()),
                (3, b"line 5".to_vec())
            ]
        );
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn compaction_keeps_what_is_not_done_and_where_the_spilled_ones_start() {
        let d = dir("compact");
        let (mut j, _) = Journal::open(&d).unwrap();
        for s in 1..=5 {
            j.append(s, &note(s), SystemTime::UNIX_EPOCH);
        }
        j.write().unwrap();
        j.done(note(1).id);
        j.done(note(2).id);
        // 3 is in memory; 4 and 5 are spilled.
        assert_eq!(j.compact(2, false).unwrap(), 3);
        assert_eq!(j.records(), 3);
        let back = j.read_back(10).unwrap();
        let seqs: Vec<u64> = back.iter().map(|r| r.seq).collect();
        assert_eq!(
            seqs,
            vec![4, 5],
            "numbers kept, read from the first spilled"
        );
        assert_eq!(std::fs::metadata(d.join("done")).unwrap().len(), 0);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn reading_back_resumes_where_it_stopped_and_takes_big_records() {
        let d = dir("readback");
        let (mut j, _) = Journal::open(&d).unwrap();
        let mut big = note(2);
        big.message = vec![b'x'; 600 << 10];
        j.append(1, &note(1), SystemTime::UNIX_EPOCH);
        j.append(2, &big, SystemTime::UNIX_EPOCH);
        j.append(3, &note(3), SystemTime::UNIX_EPOCH);
        j.write().unwrap();
        let first = j.read_back(1).unwrap();
        assert_eq!(first[0].seq, 1);
        let rest = j.read_back(10).unwrap();
        assert_eq!(rest.len(), 2);
        assert_eq!(rest[0].note.message.len(), 600 << 10);
        assert_eq!(rest[1].seq, 3);
        assert!(j.read_back(10).unwrap().is_empty());
        let _ = fs::remove_dir_all(&d);
    }
}
