//! The state file: where reading stopped in each followed file, saved so that
//! a restart reads what was written while logalarm was down, once.
//!
//! One JSON file, `follow.json`, in the state directory, written atomically
//! (a temporary file, fsynced, renamed over the old one), so a crash leaves
//! the old state or the new, never half of one. The directory is locked by
//! the engine ([`crate::state`]), so one instance at a time writes it.
//!
//! Each position is saved with what tells, at restart, whether the file at
//! its path is still the one read ([`Saved::judge`]): its identity (device,
//! inode, creation time, first bytes), a check of the bytes just before the
//! position, and the size and modification time it had when last read. A
//! file only appended to since passes them all, and is resumed; one
//! replaced, truncated, or truncated and written again past the position
//! (even behind the same first bytes) fails one, and is read from its start
//! (its old content first finished from a rotated copy, when one is found).
//! Where they cannot tell — a position saved by an older logalarm, without
//! the check of the bytes before it; a file modified before it was last
//! seen — logalarm says so and reads the file from its start rather than
//! risk skipping lines.

use super::identity::{self, Identity, Tail};
use crate::state::StateDir;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The state file's name in the state directory.
pub const FILE_NAME: &str = "follow.json";
/// The version written. Version 1 (no `tail` nor `seen`) is read too.
const VERSION: u32 = 2;

/// The saved read position of one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// The path the file was followed under.
    pub path: PathBuf,
    /// Which file it was.
    #[serde(flatten)]
    pub identity: Identity,
    /// Bytes read and alarmed (every alarm they fired delivered).
    pub offset: u64,
    /// A check of the bytes just before `offset` (`None` in version 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<Tail>,
    /// The file's size and modification time when it was last read (`None`
    /// in version 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<Seen>,
}

/// A file's size and modification time at one look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// Size, in bytes.
    pub size: u64,
    /// Modification time, in nanoseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<u64>,
}

impl Seen {
    /// The size and modification time `meta` gives.
    pub fn of(meta: &Metadata) -> Seen {
        Seen {
            size: meta.len(),
            mtime: identity::modified(meta),
        }
    }
}

/// Whether a file is the one a position was saved for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judgment {
    /// The same file, at most appended to: resume at the position.
    Same,
    /// Another file, or the same one truncated or written again (why).
    Other(&'static str),
    /// It cannot be told (why): read it from its start, and say so.
    Unsure(&'static str),
}

impl Saved {
    /// Whether `file` (open, `meta` its metadata) is the file this position
    /// was saved for, with nothing but appends since.
    pub fn judge(&self, file: &File, meta: &Metadata) -> Judgment {
        if !self.identity.same_inode(meta) {
            return Judgment::Other("another file");
        }
        if meta.len() < self.offset {
            return Judgment::Other("shorter than the position read: truncated");
        }
        if let Some(seen) = self.seen {
            if meta.len() < seen.size {
                return Judgment::Other("shorter than when last read: truncated");
            }
            if let (Some(then), Some(now)) = (seen.mtime, identity::modified(meta))
                && now < then
            {
                return Judgment::Unsure("modified earlier than when it was last read");
            }
        }
        if !self.identity.same_file(file, meta) {
            return Judgment::Other("its first bytes changed: written again");
        }
        match self.tail {
            Some(tail) if tail.still_before(file, self.offset) => Judgment::Same,
            Some(_) => Judgment::Other(
                "the bytes before the position read changed: truncated and written again",
            ),
            // The fingerprint covers all that was read.
            None if self.offset <= self.identity.fp_len => Judgment::Same,
            None => Judgment::Unsure(
                "its position was saved by an older logalarm, without a check of the bytes before it",
            ),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Contents {
    version: u32,
    files: Vec<Saved>,
}

/// The positions file of a state directory.
pub struct Positions {
    state: Arc<StateDir>,
    /// What was last written, to skip writing the same again.
    last: Vec<Saved>,
}

impl Positions {
    /// The positions file in `state` (not read yet: [`Positions::load`]).
    pub fn new(state: Arc<StateDir>) -> Positions {
        Positions {
            state,
            last: Vec::new(),
        }
    }

    /// The state directory.
    pub fn path(&self) -> &Path {
        self.state.path()
    }

    /// Reads the saved positions. A missing file is an empty state; a corrupt
    /// one is reported and ignored (reading then starts as on a first run).
    pub fn load(&mut self) -> Vec<Saved> {
        let path = self.state.path().join(FILE_NAME);
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                tracing::error!(
                    "state file {}: cannot read it: {e}; starting without it",
                    path.display()
                );
                return Vec::new();
            }
        };
        match serde_json::from_slice::<Contents>(&text) {
            Ok(c) if c.version == VERSION || c.version == 1 => {
                self.last.clone_from(&c.files);
                c.files
            }
            Ok(c) => {
                tracing::error!(
                    "state file {}: version {} is not {VERSION}; ignoring it",
                    path.display(),
                    c.version
                );
                Vec::new()
            }
            Err(e) => {
                tracing::error!(
                    "state file {} is corrupt ({e}); ignoring it: files are read as on a first run",
                    path.display()
                );
                Vec::new()
            }
        }
    }

    /// Saves `files` atomically, unless they equal what was saved last.
    ///
    /// # Errors
    /// Writing, syncing or renaming failed (the previous state stays in place).
    pub fn save(&mut self, files: Vec<Saved>) -> io::Result<()> {
        if files == self.last {
            return Ok(());
        }
        let contents = Contents {
            version: VERSION,
            files,
        };
        let text = serde_json::to_vec(&contents).map_err(io::Error::other)?;
        let tmp = self.state.path().join(format!(".{FILE_NAME}.tmp"));
        let mut out = File::create(&tmp)?;
        out.write_all(&text)?;
        out.sync_data()?;
        fs::rename(&tmp, self.state.path().join(FILE_NAME))?;
        self.last = contents.files;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::follow::identity::tail_bytes;
    use std::time::Duration;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("logalarm-positions-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The position at the end of `path` as the follower saves it.
    fn saved_at_end(path: &Path) -> Saved {
        let file = File::open(path).unwrap();
        let meta = file.metadata().unwrap();
        Saved {
            path: path.to_owned(),
            identity: Identity::of(&file, &meta).unwrap(),
            offset: meta.len(),
            tail: Some(Tail::of(&tail_bytes(&file, meta.len()).unwrap())),
            seen: Some(Seen::of(&meta)),
        }
    }

    fn judge(s: &Saved) -> Judgment {
        let file = File::open(&s.path).unwrap();
        let meta = file.metadata().unwrap();
        s.judge(&file, &meta)
    }

    #[test]
    fn appended_is_the_same_truncated_or_rewritten_is_not() {
        let dir = scratch("judge");
        let path = dir.join("app.log");
        let banner = "#".repeat(299) + "\n";
        fs::write(&path, banner.clone() + "one\ntwo\n").unwrap();
        let s = saved_at_end(&path);
        assert_eq!(judge(&s), Judgment::Same);
        fs::write(&path, banner.clone() + "one\ntwo\nthree\n").unwrap();
        assert_eq!(judge(&s), Judgment::Same, "appended to");
        // Written again on the same inode, longer, behind the same banner.
        fs::write(&path, banner.clone() + "uno\ndos\ntres\ncuatro\n").unwrap();
        assert_eq!(
            judge(&s),
            Judgment::Other(
                "the bytes before the position read changed: truncated and written again"
            )
        );
        fs::write(&path, "x\n").unwrap();
        assert_eq!(
            judge(&s),
            Judgment::Other("shorter than the position read: truncated")
        );
        // Shorter than when last read, yet not than the position.
        fs::write(&path, banner.clone() + "one\ntwo\nthree\n").unwrap();
        let mut s = saved_at_end(&path);
        s.offset -= 6;
        fs::write(&path, banner.clone() + "one\ntwo\n").unwrap();
        assert_eq!(
            judge(&s),
            Judgment::Other("shorter than when last read: truncated")
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn what_cannot_be_told_is_said() {
        let dir = scratch("unsure");
        let path = dir.join("app.log");
        let text: String = (0..100).map(|n| format!("line {n}\n")).collect();
        fs::write(&path, &text).unwrap();
        // Saved by an older logalarm: no check of the bytes before the position.
        let mut old = saved_at_end(&path);
        old.tail = None;
        old.seen = None;
        assert!(matches!(judge(&old), Judgment::Unsure(why) if why.contains("older logalarm")));
        // Its first bytes cover all that was read: nothing to tell.
        old.offset = 100;
        assert_eq!(judge(&old), Judgment::Same);
        // Modified earlier than when it was last read: its modification
        // time went back (a file put back in its place).
        let mut s = saved_at_end(&path);
        let hour = Duration::from_secs(3600).as_nanos() as u64;
        s.seen = s.seen.map(|seen| Seen {
            mtime: seen.mtime.map(|m| m + hour),
            ..seen
        });
        assert!(matches!(judge(&s), Judgment::Unsure(why) if why.contains("modified earlier")));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn version_1_is_read() {
        let dir = scratch("v1");
        let state = Arc::new(StateDir::acquire(&dir, Duration::ZERO).unwrap());
        fs::write(
            dir.join(FILE_NAME),
            r#"{"version":1,"files":[{"path":"/a.log","dev":1,"ino":2,"fp_len":3,"fp_crc":4,"offset":5}]}"#,
        )
        .unwrap();
        let mut positions = Positions::new(state);
        let loaded = positions.load();
        assert_eq!(loaded.len(), 1);
        assert_eq!(
            (loaded[0].offset, loaded[0].tail, loaded[0].seen),
            (5, None, None)
        );
        assert_eq!(loaded[0].identity.born, None);
        drop(positions);
        fs::remove_dir_all(&dir).unwrap();
    }
}
