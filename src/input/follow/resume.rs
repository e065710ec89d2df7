//! At start: every file with a saved read position is resumed there, also
//! one that was rotated, truncated or replaced while logalarm was down (found
//! beside its path by its identity).

use super::Core;
use super::events::{ChangedWhileDown, FileUnsure, RotatedLost, RotatedResumed, UnseenRotated};
use super::identity::{self, Identity};
use super::positions::{Judgment, Saved};
use super::tracked::Tracked;
use crate::internal_event::InternalEvent;
use std::collections::HashMap;
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

impl Core {
    /// At start: resumes every file with a saved position.
    ///
    /// The files still at their path come first: a path's current file must
    /// resume at its own position before the files rotated away from that
    /// path are looked for (which otherwise would start the current file over
    /// at 0, reading it twice).
    pub(super) fn resume_saved(&mut self) {
        let saved = match self.state.as_mut() {
            Some(state) => state.load(),
            None => return,
        };
        let mut moved = Vec::new();
        let mut unsure = Vec::new();
        // Per path, the latest modification seen of a file read there.
        let mut last_seen: HashMap<PathBuf, u64> = HashMap::new();
        for s in saved {
            if self.matches(&s.path).is_none() {
                continue;
            }
            if let Some(mtime) = s.seen.and_then(|seen| seen.mtime) {
                let at = last_seen.entry(s.path.clone()).or_default();
                *at = (*at).max(mtime);
            }
            let Some((file, meta)) = open_meta(&s.path) else {
                moved.push(s);
                continue;
            };
            match s.judge(&file, &meta) {
                Judgment::Same => {
                    if !self.by_path.contains_key(&s.path) {
                        tracing::debug!("resuming {} at byte {}", s.path.display(), s.offset);
                        self.add(&s.path, file, s.identity, s.offset);
                    }
                }
                Judgment::Other(why) => {
                    // Rotated away: nothing to say about the file now there.
                    if s.identity.same_inode(&meta) {
                        ChangedWhileDown {
                            stats: &self.stats,
                            path: &s.path,
                            why,
                        }
                        .emit();
                    }
                    moved.push(s);
                }
                Judgment::Unsure(why) => {
                    FileUnsure {
                        stats: &self.stats,
                        path: &s.path,
                        why,
                    }
                    .emit();
                    unsure.push(s.path);
                }
            }
        }
        // Rotated, truncated or replaced while logalarm was down: finish the
        // old file (found beside the path), then read the new one whole.
        for s in &moved {
            self.resume_rotated(s);
        }
        for (path, since) in &last_seen {
            self.read_unseen(path, *since);
        }
        let paths = moved.into_iter().map(|s| s.path).chain(unsure);
        for path in paths {
            if !self.by_path.contains_key(&path)
                && let Some((file, meta)) = open_meta(&path)
            {
                tracing::debug!(
                    "following {} from byte 0: not (surely) the file read before",
                    path.display()
                );
                self.add(&path, file, Identity::fresh(&meta), 0);
            }
        }
    }

    /// Reads whole the files beside `path` that were rotated away from it
    /// after logalarm last looked (modified after `since`, the latest
    /// modification it saw of a file at `path`) and that it never read:
    /// two rotations while it was down (or one just before a crash and one
    /// while down) leave a file between the one it read and the one now at
    /// the path. Oldest first; compressed files are skipped, and so are
    /// files followed under their own name.
    fn read_unseen(&mut self, path: &Path, since: u64) {
        let mut unseen: Vec<(u64, PathBuf, File, fs::Metadata)> = siblings(path)
            .into_iter()
            .filter(|p| rotated_name(path, p) && self.matches(p).is_none() && !compressed_name(p))
            .filter_map(|p| {
                let (file, meta) = open_meta(&p)?;
                let modified = identity::modified(&meta)?;
                let known = self.files.values().any(|t| t.identity.same_inode(&meta));
                (modified > since && !known && !compressed(&file))
                    .then_some((modified, p, file, meta))
            })
            .collect();
        unseen.sort_unstable_by_key(|u| u.0);
        // The file at the path now, when it is older than a file found: under
        // `copytruncate` the path keeps its inode and each rotated file is a
        // copy of it, born later. Lines read from the path before a crash may
        // be in such a copy: it takes the path's key, so they keep their ids.
        let at_path = open_meta(path).map(|(_, m)| Identity::fresh(&m));
        for (_, found, file, meta) in unseen {
            UnseenRotated {
                stats: &self.stats,
                path,
                found: &found,
            }
            .emit();
            let id = self.next_id;
            self.next_id += 1;
            let now = Instant::now();
            let mut identity = Identity::fresh(&meta);
            if let Some(live) = &at_path
                && let (Some(born), Some(live_born)) = (identity.born, live.born)
                && born > live_born
            {
                identity.key = Some(live.key());
            }
            let mut t = Tracked::new(id, path, file, identity, 0, now);
            t.rotated_at = Some(now);
            self.files.insert(id, t);
            self.dirty = true;
            self.read(id);
        }
    }

    /// Finds the file a position was saved for beside its path — renamed
    /// (the same file, judged as at its path), or else copied
    /// (`copytruncate`: the same first bytes and bytes before the position)
    /// — and reads its rest from the position as a rotated file.
    pub(super) fn resume_rotated(&mut self, s: &Saved) {
        let found = find_by_identity(&s.path, s).or_else(|| find_copy(&s.path, s));
        let Some((file, found, identity)) = found else {
            RotatedLost {
                stats: &self.stats,
                path: &s.path,
                offset: s.offset,
            }
            .emit();
            return;
        };
        // Already followed under its own name (the glob matches rotated names).
        if let Ok(meta) = file.metadata()
            && self.files.values().any(|t| t.identity.same_inode(&meta))
        {
            return;
        }
        RotatedResumed {
            stats: &self.stats,
            path: &s.path,
            found: &found,
        }
        .emit();
        let id = self.next_id;
        self.next_id += 1;
        let now = Instant::now();
        let mut t = Tracked::new(id, &s.path, file, identity, s.offset, now);
        t.rotated_at = Some(now);
        self.files.insert(id, t);
        self.dirty = true;
        self.read(id);
    }
}

/// Open `file` and its metadata.
pub(super) fn open_meta(path: &Path) -> Option<(File, fs::Metadata)> {
    let file = File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    meta.is_file().then_some((file, meta))
}

/// The siblings of `path` whose names start with its name (logrotate's
/// `app.log.1`, `app.log-20261121`), newest first.
fn siblings(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let name = name.to_string_lossy().into_owned();
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n != name && n.starts_with(&name)
        })
        .filter_map(|e| {
            let modified = e.metadata().ok()?.modified().ok()?;
            Some((modified, e.path()))
        })
        .collect();
    found.sort_unstable_by_key(|f| std::cmp::Reverse(f.0));
    found.into_iter().map(|(_, p)| p).collect()
}

/// The file `s` was saved for, renamed beside its path: the same file,
/// appended to at most ([`Saved::judge`]).
pub(super) fn find_by_identity(path: &Path, s: &Saved) -> Option<(File, PathBuf, Identity)> {
    siblings(path).into_iter().find_map(|p| {
        let (file, meta) = open_meta(&p)?;
        (s.judge(&file, &meta) == Judgment::Same).then_some((file, p, s.identity))
    })
}

/// The copy `copytruncate` made of the file `s` was saved for: another
/// file, at least as long as the position, with the same first bytes and
/// the same bytes before the position. Its identity is the copy's.
pub(super) fn find_copy(path: &Path, s: &Saved) -> Option<(File, PathBuf, Identity)> {
    siblings(path).into_iter().find_map(|p| {
        let (file, meta) = open_meta(&p)?;
        let copy = s.identity.moved_to(&meta);
        let same_bytes = meta.len() >= s.offset
            && copy.same_file(&file, &meta)
            && s.tail.is_none_or(|t| t.still_before(&file, s.offset));
        (!s.identity.same_inode(&meta) && same_bytes).then_some((file, p, copy))
    })
}

/// Whether `path` is named as logrotate names a compressed file.
fn compressed_name(path: &Path) -> bool {
    const SUFFIXES: &[&str] = &["gz", "bz2", "xz", "zst", "lz4", "lzma", "Z", "zip"];
    path.extension()
        .is_some_and(|e| SUFFIXES.iter().any(|s| e == *s))
}

/// Whether `file` starts as a compressed file does (gzip, bzip2, xz, zstd,
/// lz4): not lines to read.
fn compressed(file: &File) -> bool {
    const MAGIC: &[&[u8]] = &[
        &[0x1f, 0x8b],
        b"BZh",
        &[0xfd, b'7', b'z', b'X', b'Z', 0],
        &[0x28, 0xb5, 0x2f, 0xfd],
        &[0x04, 0x22, 0x4d, 0x18],
    ];
    let mut head = [0u8; 6];
    let got = file.read_at(&mut head, 0).unwrap_or(0);
    MAGIC.iter().any(|m| head[..got].starts_with(m))
}

/// Whether `sibling` is named as logrotate names the files it rotates away
/// from `path`: the name, then `.`, `-` or `_` and a suffix with a digit
/// (`app.log.1`, `app.log-20261205`, `app.log.2-backup`), not any file whose
/// name starts with it (`app.log.lock`).
fn rotated_name(path: &Path, sibling: &Path) -> bool {
    let (Some(name), Some(other)) = (path.file_name(), sibling.file_name()) else {
        return false;
    };
    let (name, other) = (name.to_string_lossy(), other.to_string_lossy());
    other.strip_prefix(name.as_ref()).is_some_and(|rest| {
        rest.starts_with(['.', '-', '_']) && rest.bytes().any(|b| b.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_names_carry_a_number_or_a_date() {
        let path = Path::new("/var/log/app.log");
        for rotated in [
            "app.log.1",
            "app.log-20261205",
            "app.log.2-backup",
            "app.log_3",
        ] {
            assert!(
                rotated_name(path, &path.with_file_name(rotated)),
                "{rotated}"
            );
        }
        for other in ["app.log.lock", "app.log", "app.logs.1", "other.log.1"] {
            assert!(!rotated_name(path, &path.with_file_name(other)), "{other}");
        }
        assert!(compressed_name(Path::new("/var/log/app.log.2.gz")));
        assert!(!compressed_name(Path::new("/var/log/app.log.2")));
    }
}
