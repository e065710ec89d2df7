//! A followed path that moves on: rotation (a rename, then a new file),
//! deletion, truncation in place (`copytruncate`) and a path that becomes
//! something else than a file. The file left behind is read to its end
//! before it is let go.

use super::Core;
use super::config::StartAt;
use super::events::{
    FileGone, FileRotated, FileTruncated, PathUnfollowable, ReadFailed, Unfollowable,
};
use super::resume::find_copy;
use super::tracked::ReadError;
use crate::internal_event::InternalEvent;
use std::fs::{self, File};
use std::io;
use std::time::Instant;

impl Core {
    /// Checks file `id` against its path: reads what is new, and handles
    /// truncation, rotation, deletion and a path that became something else.
    pub(super) fn check(&mut self, id: u64) {
        let Some(t) = self.files.get(&id) else { return };
        let path = t.path.clone();
        let now = Instant::now();
        if let Some(at) = t.rotated_at {
            // Left behind by rotation: read until quiet for rotate_wait.
            self.read(id);
            let quiet = self.files.get(&id).is_some_and(|t| {
                now.saturating_duration_since(t.last_data.max(at)) >= self.rotate_wait
            });
            if quiet {
                self.forget(id);
            }
            return;
        }
        match fs::metadata(&path) {
            Ok(meta) if !meta.is_file() => {
                if self.reported.insert(path.clone()) {
                    PathUnfollowable {
                        stats: &self.stats,
                        path: &path,
                        why: Unfollowable::NoLongerRegular,
                    }
                    .emit();
                }
                self.leave(id, now);
            }
            Ok(meta) if !t.identity.same_inode(&meta) => {
                FileRotated {
                    stats: &self.stats,
                    path: &path,
                }
                .emit();
                self.leave(id, now);
                self.discover(&path, StartAt::Beginning);
            }
            Ok(meta) => self.check_in_place(id, &meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                FileGone {
                    stats: &self.stats,
                    path: &path,
                }
                .emit();
                self.leave(id, now);
            }
            Err(e) => {
                if self.reported.insert(path.clone()) {
                    PathUnfollowable {
                        stats: &self.stats,
                        path: &path,
                        why: Unfollowable::CannotCheck(&e),
                    }
                    .emit();
                }
            }
        }
    }

    /// The path still leads to file `id`'s inode (`meta` is the path's): reads
    /// what is new — unless the file is shorter than the read position, or its
    /// first bytes changed (truncated and already written past the read
    /// position again; or, while it was closed, deleted and its inode given to
    /// a new file), when it is read again from its start.
    ///
    /// The check comes before the read: reading at the old position in new
    /// content would send the middle of other lines.
    pub(super) fn check_in_place(&mut self, id: u64, meta: &fs::Metadata) {
        let Some(t) = self.files.get_mut(&id) else {
            return;
        };
        if t.file.is_none() {
            // Closed while quiet (few descriptors): opened again only to read.
            if meta.len() == t.offset {
                return;
            }
            let opened = File::open(&t.path).and_then(|f| f.metadata().map(|m| (f, m)));
            match opened {
                Ok((file, m)) if t.identity.same_inode(&m) => t.file = Some(file),
                // Replaced between the two looks: the next check sees the new file.
                Ok(_) => return,
                Err(e) => {
                    if self.reported.insert(t.path.clone()) {
                        PathUnfollowable {
                            stats: &self.stats,
                            path: &t.path,
                            why: Unfollowable::CannotReopen(&e),
                        }
                        .emit();
                    }
                    return;
                }
            }
            self.limit_open(id);
        }
        let Some(t) = self.files.get_mut(&id) else {
            return;
        };
        let Some(file) = &t.file else { return };
        if meta.len() < t.offset || !t.identity.same_file(file, meta) {
            FileTruncated {
                stats: &self.stats,
                path: &t.path,
            }
            .emit();
            self.truncated(id);
            return;
        }
        self.read(id);
    }

    /// The path moved on: keep reading file `id` for a while, by its handle.
    /// A closed file is first looked for beside its path (logrotate renamed
    /// it), and read from there.
    pub(super) fn leave(&mut self, id: u64, now: Instant) {
        let Some(t) = self.files.get_mut(&id) else {
            return;
        };
        let path = t.path.clone();
        if self.by_path.get(&path) == Some(&id) {
            self.by_path.remove(&path);
        }
        if t.file.is_some() {
            t.rotated_at = Some(now);
            self.read(id);
            // Lines of the file now at the path must not join a record of this one.
            if let Some(t) = self.files.get(&id)
                && t.ended(&self.events).is_err()
            {
                self.engine_gone = true;
            }
            return;
        }
        if let Some(t) = self.files.remove(&id) {
            self.dirty = true;
            self.resume_rotated(&path, &t.identity, t.offset);
        }
    }

    /// Stops following file `id`: its partial line is matched, its handle closed.
    pub(super) fn forget(&mut self, id: u64) {
        if let Some(mut t) = self.files.remove(&id) {
            self.dirty = true;
            if t.flush_partial(&self.events).is_err() || t.ended(&self.events).is_err() {
                self.engine_gone = true;
            }
            if self.by_path.get(&t.path) == Some(&id) {
                self.by_path.remove(&t.path);
            }
            tracing::debug!("no longer following {} (file {id})", t.path.display());
        }
    }

    /// File `id` was truncated in place (`copytruncate`), or rewritten: first
    /// recover the lines written just before, from the copy when there is one,
    /// then start over at 0.
    ///
    /// The file goes on under a new id: positions of the old content still on
    /// their way through the engine then find no file to move, instead of
    /// being taken for positions in the new content.
    pub(super) fn truncated(&mut self, id: u64) {
        let Some(mut t) = self.files.remove(&id) else {
            return;
        };
        if let Some((copy, copy_path)) = find_copy(&t.path, &t.identity, t.offset) {
            tracing::debug!(
                "reading the end of {} from its copy {}",
                t.path.display(),
                copy_path.display()
            );
            self.unsaved = true;
            match t.read_copy(&copy, &self.events, Instant::now()) {
                Err(ReadError::EngineGone) => self.engine_gone = true,
                Err(ReadError::Io(error)) => ReadFailed {
                    stats: &self.stats,
                    path: &copy_path,
                    error: &error,
                }
                .emit(),
                // Not checked for a copy.
                Err(ReadError::Rewritten) | Ok(_) => {}
            }
        }
        if t.flush_partial(&self.events).is_err() || t.ended(&self.events).is_err() {
            self.engine_gone = true;
        }
        t.restart();
        let new_id = self.next_id;
        self.next_id += 1;
        t.id = new_id;
        if self.by_path.get(&t.path) == Some(&id) {
            self.by_path.insert(t.path.clone(), new_id);
        }
        self.files.insert(new_id, t);
        self.dirty = true;
        self.read(new_id);
    }
}
