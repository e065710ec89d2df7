//! At start: every file with a saved read position is resumed there, also
//! one that was rotated, truncated or replaced while logalarm was down (found
//! beside its path by its identity).

use super::Core;
use super::events::{RotatedLost, RotatedResumed};
use super::identity::Identity;
use super::tracked::Tracked;
use crate::internal_event::InternalEvent;
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
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
        for s in saved {
            if self.matches(&s.path).is_none() {
                continue;
            }
            match open_meta(&s.path) {
                Some((file, meta))
                    if meta.len() >= s.offset && s.identity.same_file(&file, &meta) =>
                {
                    if !self.by_path.contains_key(&s.path) {
                        tracing::debug!("resuming {} at byte {}", s.path.display(), s.offset);
                        self.add(&s.path, file, s.identity, s.offset);
                    }
                }
                _ => moved.push(s),
            }
        }
        // Rotated, truncated or replaced while logalarm was down: finish the
        // old file (found beside the path), then read the new one whole.
        for s in moved {
            self.resume_rotated(&s.path, &s.identity, s.offset);
            if !self.by_path.contains_key(&s.path)
                && let Some((file, meta)) = open_meta(&s.path)
            {
                let identity = Identity::fresh(&meta);
                tracing::debug!(
                    "following {} from byte 0: another file than the one read before",
                    s.path.display()
                );
                self.add(&s.path, file, identity, 0);
            }
        }
    }

    /// Finds the file that was at `path` beside it — renamed (same inode and
    /// first bytes), or else copied (`copytruncate`: the same first bytes, at
    /// least `offset` long) — and reads its rest from `offset` as a rotated file.
    pub(super) fn resume_rotated(&mut self, path: &Path, identity: &Identity, offset: u64) {
        let found = find_by_identity(path, identity).or_else(|| find_copy(path, identity, offset));
        let Some((file, found)) = found else {
            RotatedLost {
                stats: &self.stats,
                path,
                offset,
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
            path,
            found: &found,
        }
        .emit();
        let id = self.next_id;
        self.next_id += 1;
        let mut t = Tracked::new(id, path, file, *identity, offset, Instant::now());
        t.rotated_at = Some(Instant::now());
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

/// The file that was at `path`, renamed beside it (same inode and fingerprint).
fn find_by_identity(path: &Path, identity: &Identity) -> Option<(File, PathBuf)> {
    siblings(path).into_iter().find_map(|p| {
        let (file, meta) = open_meta(&p)?;
        identity.same_file(&file, &meta).then_some((file, p))
    })
}

/// The copy `copytruncate` made of the file at `path`: another inode, the same
/// first bytes, at least `offset` long.
pub(super) fn find_copy(path: &Path, identity: &Identity, offset: u64) -> Option<(File, PathBuf)> {
    siblings(path).into_iter().find_map(|p| {
        let (file, meta) = open_meta(&p)?;
        let copy = Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            ..*identity
        };
        (!identity.same_inode(&meta) && meta.len() >= offset && copy.same_file(&file, &meta))
            .then_some((file, p))
    })
}
