//! Finding and reading the followed files: the polling scan, change events,
//! a file found at a followed path, the limit on open descriptors, reading
//! what is new, and the partial last line that waits for its `\n`.

use super::Core;
use super::MAX_OPEN;
use super::config::StartAt;
use super::events::{FileTruncated, PathUnfollowable, ReadFailed, RenamedUnread, Unfollowable};
use super::identity::Identity;
use super::resume::open_meta;
use super::tracked::{ReadError, Tracked};
use crate::internal_event::InternalEvent;
use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

impl Core {
    /// Checks every followed file and finds new ones; `first` is the scan at
    /// start, where files found are read from `from` rather than from their start.
    pub(super) fn scan(&mut self, first: bool) {
        let mut found = Vec::new();
        for p in &self.patterns {
            match glob::glob(&p.text) {
                Ok(paths) => found.extend(paths.flatten().map(|path| (path, p.from))),
                Err(e) => PathUnfollowable {
                    stats: &self.stats,
                    path: Path::new(&p.text),
                    why: Unfollowable::BadGlob(&p.text, &e),
                }
                .emit(),
            }
        }
        let ids: Vec<u64> = self.files.keys().copied().collect();
        for id in ids {
            self.check(id);
        }
        for (path, from) in found {
            if !self.by_path.contains_key(&path) {
                let start = if first { from } else { StartAt::Beginning };
                self.discover(&path, start);
            }
        }
    }

    /// Handles change events for `paths`.
    pub(super) fn changed(&mut self, paths: &HashSet<PathBuf>) {
        for path in paths {
            match self.by_path.get(path) {
                Some(&id) => self.check(id),
                None => {
                    if self.matches(path).is_some() {
                        self.discover(path, StartAt::Beginning);
                    }
                }
            }
        }
        // Rotated files are few and may be written to under their new name.
        let rotated: Vec<u64> = self
            .files
            .values()
            .filter(|t| t.rotated_at.is_some())
            .map(|t| t.id)
            .collect();
        for id in rotated {
            self.check(id);
        }
    }

    /// A rename from a followed path `from` to `to`, seen in change events.
    /// When the file renamed was never followed — created and renamed away
    /// between two looks; logrotate moves a file that a writer created while
    /// it rotated aside as `….backup` — it is read whole, as a rotated file.
    /// A file followed already is known by its inode; one whose new name is
    /// followed too is found there by [`Core::discover`].
    pub(super) fn renamed_unread(&mut self, from: &Path, to: &Path) {
        if self.matches(from).is_none() || self.matches(to).is_some() {
            return;
        }
        let Some((file, meta)) = open_meta(to) else {
            return;
        };
        if self.files.values().any(|t| t.identity.same_inode(&meta)) {
            return;
        }
        RenamedUnread {
            stats: &self.stats,
            from,
            to,
        }
        .emit();
        let id = self.next_id;
        self.next_id += 1;
        let now = Instant::now();
        let mut t = Tracked::new(id, from, file, Identity::fresh(&meta), 0, now);
        t.rotated_at = Some(now);
        self.files.insert(id, t);
        self.dirty = true;
        self.read(id);
    }

    /// A path seen for the first time (or again after its file left).
    pub(super) fn discover(&mut self, path: &Path, start: StartAt) {
        let (file, meta) = match File::open(path).and_then(|f| f.metadata().map(|m| (f, m))) {
            Ok(x) => x,
            Err(e) => {
                if e.kind() != io::ErrorKind::NotFound && self.reported.insert(path.to_owned()) {
                    PathUnfollowable {
                        stats: &self.stats,
                        path,
                        why: Unfollowable::CannotFollow(&e),
                    }
                    .emit();
                }
                return;
            }
        };
        if !meta.is_file() {
            if self.reported.insert(path.to_owned()) {
                PathUnfollowable {
                    stats: &self.stats,
                    path,
                    why: Unfollowable::NotRegular,
                }
                .emit();
            }
            return;
        }
        self.reported.remove(path);
        // A file already followed under another name was renamed into this one.
        if let Some(id) = self
            .files
            .values()
            .find(|t| t.identity.same_inode(&meta))
            .map(|t| t.id)
        {
            // An open file holds its inode; a closed one may have been deleted
            // and its inode given to this new file: then its first bytes differ.
            let renamed = self
                .files
                .get(&id)
                .is_some_and(|t| t.file.is_some() || t.identity.same_file(&file, &meta));
            if !renamed {
                self.forget(id);
            } else {
                if let Some(t) = self.files.get_mut(&id) {
                    if self.by_path.get(&t.path) == Some(&id) {
                        self.by_path.remove(&t.path);
                    }
                    t.rename(path);
                    t.rotated_at = None;
                    self.dirty = true;
                }
                self.by_path.insert(path.to_owned(), id);
                return;
            }
        }
        // Read from its start, a file's fingerprint is built from the bytes
        // read; started at its end, it is taken from the file now.
        let (identity, offset) = match start {
            StartAt::Beginning => (Identity::fresh(&meta), 0),
            StartAt::End => match Identity::of(&file, &meta) {
                Ok(i) => (i, meta.len()),
                Err(e) => {
                    PathUnfollowable {
                        stats: &self.stats,
                        path,
                        why: Unfollowable::CannotFollow(&e),
                    }
                    .emit();
                    return;
                }
            },
        };
        tracing::debug!("following {} from byte {offset}", path.display());
        self.add(path, file, identity, offset);
    }

    pub(super) fn add(&mut self, path: &Path, file: File, identity: Identity, offset: u64) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let t = Tracked::new(id, path, file, identity, offset, Instant::now());
        self.files.insert(id, t);
        self.dirty = true;
        self.by_path.insert(path.to_owned(), id);
        self.limit_open(id);
        self.read(id);
        id
    }

    /// Keeps at most [`MAX_OPEN`] files open, closing the quietest ones (never
    /// a rotated one: its path no longer leads to it).
    ///
    /// Beyond the limit, it closes down to three quarters of it, so that a
    /// burst of files found (thousands at start) sorts the open ones a few
    /// times, not once per file.
    pub(super) fn limit_open(&mut self, keep: u64) {
        let open = self.files.values().filter(|t| t.file.is_some()).count();
        if open <= MAX_OPEN {
            return;
        }
        let close = open - MAX_OPEN * 3 / 4;
        let mut candidates: Vec<(Instant, u64)> = self
            .files
            .values()
            .filter(|t| {
                t.file.is_some() && t.rotated_at.is_none() && t.id != keep && t.partial_len() == 0
            })
            .map(|t| (t.last_data, t.id))
            .collect();
        candidates.sort_unstable();
        for (_, id) in candidates.into_iter().take(close) {
            if let Some(t) = self.files.get_mut(&id) {
                t.file = None;
            }
        }
    }

    /// Reads what is new in file `id`.
    pub(super) fn read(&mut self, id: u64) {
        let Some(t) = self.files.get_mut(&id) else {
            return;
        };
        match t.read_new(&self.events, Instant::now()) {
            Ok(0) => {}
            Ok(_) => self.unsaved = true,
            Err(ReadError::EngineGone) => self.engine_gone = true,
            Err(ReadError::Rewritten) => {
                FileTruncated {
                    stats: &self.stats,
                    path: &t.path,
                }
                .emit();
                self.truncated(id);
            }
            Err(ReadError::Io(error)) => ReadFailed {
                stats: &self.stats,
                path: &t.path,
                error: &error,
            }
            .emit(),
        }
    }

    pub(super) fn next_flush(&self) -> Option<Instant> {
        self.files
            .values()
            .filter_map(|t| t.partial_since)
            .min()
            .map(|since| since + self.flush_timeout)
    }

    /// Matches partial lines that waited `flush_timeout` for their `\n`.
    pub(super) fn flush_due(&mut self, now: Instant) {
        for t in self.files.values_mut() {
            if t.partial_since
                .is_some_and(|s| now.saturating_duration_since(s) >= self.flush_timeout)
            {
                self.unsaved = true;
                if t.flush_partial(&self.events).is_err() {
                    self.engine_gone = true;
                }
            }
        }
    }
}
