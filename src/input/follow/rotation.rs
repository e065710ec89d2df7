//! A followed path that moves on: rotation (a rename, then a new file),
//! deletion, truncation in place (`copytruncate`) and a path that becomes
//! something else than a file.
//!
//! The file left behind stays followed, with its saved position, until it
//! has been read to its end (quiet for `rotate_wait`: a writer may not have
//! reopened yet) *and* every alarm its lines fired is delivered, however long
//! that takes: a restart meanwhile finds it beside its path and finishes it.
//! A file truncated in place has its old content followed on in the copy
//! `copytruncate` made (same first bytes, same bytes before the position),
//! under its old id, so a saved position is never moved onto the emptied file.

use super::Core;
use super::config::StartAt;
use super::events::{
    FileGone, FileRotated, FileTruncated, PathUnfollowable, RotatedLost, Unfollowable,
};
use super::identity::Identity;
use super::positions::Seen;
use super::resume::{find_by_identity, find_copy};
use super::tracked::Tracked;
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
            self.read(id);
            self.finish_rotated(id, at, now);
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

    /// A rotated file `id` (rotated at `at`), just read: once quiet for
    /// `rotate_wait` it has been read to its end — its partial line is
    /// matched — and once every alarm of its lines is delivered, it is let go.
    fn finish_rotated(&mut self, id: u64, at: Instant, now: Instant) {
        let Some(t) = self.files.get_mut(&id) else {
            return;
        };
        if now.saturating_duration_since(t.last_data.max(at)) < self.rotate_wait {
            return;
        }
        if !t.finished {
            t.finished = true;
            if t.partial_len() > 0 {
                self.unsaved = true;
                if t.flush_partial(&self.events).is_err() || t.ended(&self.events).is_err() {
                    self.engine_gone = true;
                }
            }
            if t.committed < t.offset {
                tracing::debug!(
                    "{} (rotated, file {id}): read to its end at byte {}; kept until the alarms of its lines are delivered (byte {} so far)",
                    t.path.display(),
                    t.offset,
                    t.committed
                );
            }
        }
        if t.committed >= t.offset {
            self.forget(id);
        }
    }

    /// The path moved on: keep reading file `id`, by its handle, as a
    /// rotated file. A closed file is first looked for beside its path
    /// (logrotate renamed it), and read from there.
    pub(super) fn leave(&mut self, id: u64, now: Instant) {
        let Some(t) = self.files.get_mut(&id) else {
            return;
        };
        let path = t.path.clone();
        if self.by_path.get(&path) == Some(&id) {
            self.by_path.remove(&path);
        }
        if t.file.is_none() {
            match find_by_identity(&path, &t.reached()) {
                Some((file, found, _)) => {
                    tracing::debug!(
                        "{}: its closed file is now {}",
                        path.display(),
                        found.display()
                    );
                    t.file = Some(file);
                }
                None => {
                    RotatedLost {
                        stats: &self.stats,
                        path: &path,
                        offset: t.offset,
                    }
                    .emit();
                    self.files.remove(&id);
                    self.dirty = true;
                    return;
                }
            }
        }
        t.rotated_at = Some(now);
        self.read(id);
        // Lines of the file now at the path must not join a record of this one.
        if let Some(t) = self.files.get(&id)
            && t.ended(&self.events).is_err()
        {
            self.engine_gone = true;
        }
    }

    /// Stops following file `id`: its partial line is matched, its handle closed.
    pub(super) fn forget(&mut self, id: u64) {
        if let Some(mut t) = self.files.remove(&id) {
            self.dirty = true;
            // A rotated file read to its end has told the engine already.
            let told = t.finished && t.partial_len() == 0;
            if !told && (t.flush_partial(&self.events).is_err() || t.ended(&self.events).is_err()) {
                self.engine_gone = true;
            }
            if self.by_path.get(&t.path) == Some(&id) {
                self.by_path.remove(&t.path);
            }
            tracing::debug!("no longer following {} (file {id})", t.path.display());
        }
    }

    /// File `id` was truncated in place (`copytruncate`), or rewritten.
    ///
    /// A file at its path: its old content goes on under its id, from the copy `copytruncate`
    /// made when one is found beside it, as a rotated file: its lines written
    /// just before the truncation are read from there, and its position
    /// stays saved (on the copy) until their alarms are delivered. Without a
    /// copy, what was not read of the old content is gone.
    ///
    /// The file at the path goes on under a new id, from 0: positions of the
    /// old content still on their way through the engine then find the copy
    /// (or nothing), never the new content.
    pub(super) fn truncated(&mut self, id: u64) {
        let Some(mut old) = self.files.remove(&id) else {
            return;
        };
        self.dirty = true;
        let now = Instant::now();
        let path = old.path.clone();
        if self.by_path.get(&path) != Some(&id) {
            // A file left behind (rotated) and written again in place: what
            // it held past the position read is gone, and its new content is
            // not a followed path's.
            tracing::debug!(
                "{} (rotated, file {id}) was truncated or written again; no longer following it",
                path.display()
            );
            if old.flush_partial(&self.events).is_err() || old.ended(&self.events).is_err() {
                self.engine_gone = true;
            }
            return;
        }
        self.by_path.remove(&path);
        let live = old.file.take().or_else(|| File::open(&path).ok());
        match find_copy(&path, &old.reached()) {
            Some((copy, copy_path, identity)) => {
                tracing::debug!(
                    "reading the end of {} from its copy {}",
                    path.display(),
                    copy_path.display()
                );
                if let Ok(meta) = copy.metadata() {
                    old.seen = Seen::of(&meta);
                }
                old.file = Some(copy);
                old.identity = identity;
                old.rotated_at = Some(now);
                self.files.insert(id, old);
                self.read(id);
                // Lines of the new content must not join a record of the old.
                if let Some(old) = self.files.get(&id)
                    && old.ended(&self.events).is_err()
                {
                    self.engine_gone = true;
                }
            }
            None => {
                if old.flush_partial(&self.events).is_err() || old.ended(&self.events).is_err() {
                    self.engine_gone = true;
                }
            }
        }
        let Some((file, meta)) = live.and_then(|f| f.metadata().ok().map(|m| (f, m))) else {
            // Gone meanwhile: the next look finds whatever is there.
            return;
        };
        let new_id = self.next_id;
        self.next_id += 1;
        let t = Tracked::new(new_id, &path, file, Identity::fresh(&meta), 0, now);
        self.files.insert(new_id, t);
        self.by_path.insert(path, new_id);
        self.read(new_id);
    }
}
