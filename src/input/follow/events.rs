//! The internal events of file following: rotations, truncations, read errors
//! and paths that cannot be followed. Each [`InternalEvent::emit`] logs the
//! event and counts it in the follower's [`InputStats`].

use crate::input::events::InputStats;
use crate::internal_event::{self, InternalEvent};
use std::io;
use std::path::Path;

/// A followed path leads to a new file (logrotate `create`): the old one is
/// read to its end, the new one from its start.
pub struct FileRotated<'a> {
    /// The follower's counters.
    pub stats: &'a InputStats,
    /// The path.
    pub path: &'a Path,
}

impl InternalEvent for FileRotated<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.rotated, 1);
        tracing::info!(
            "{} was rotated; reading the new file from its start",
            self.path.display()
        );
    }
}

/// A followed path is gone: the file that was there is read to its end.
pub struct FileGone<'a> {
    /// The follower's counters.
    pub stats: &'a InputStats,
    /// The path.
    pub path: &'a Path,
}

impl InternalEvent for FileGone<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.rotated, 1);
        tracing::info!(
            "{} is gone; reading the rest of the file that was there",
            self.path.display()
        );
    }
}

/// A file was renamed away from a followed path before it was read there
/// (logrotate's `….backup`): it is read whole.
pub struct RenamedUnread<'a> {
    /// The follower's counters.
    pub stats: &'a InputStats,
    /// The followed path.
    pub from: &'a Path,
    /// Where it went.
    pub to: &'a Path,
}

impl InternalEvent for RenamedUnread<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.rotated, 1);
        tracing::info!(
            "{} was renamed to {} before it was read; reading it whole",
            self.from.display(),
            self.to.display()
        );
    }
}

/// The file read at a path before (a saved position, or one left behind)
/// was found beside it under another name: its rest is read.
pub struct RotatedResumed<'a> {
    /// The follower's counters.
    pub stats: &'a InputStats,
    /// The followed path.
    pub path: &'a Path,
    /// Where the file was found.
    pub found: &'a Path,
}

impl InternalEvent for RotatedResumed<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.rotated, 1);
        tracing::info!(
            "{}: reading the rest of its rotated file {}",
            self.path.display(),
            self.found.display()
        );
    }
}

/// The file read at a path before is gone and not found beside it: what was
/// written to it after the position read, if anything, is not read.
pub struct RotatedLost<'a> {
    /// The follower's counters.
    pub stats: &'a InputStats,
    /// The followed path.
    pub path: &'a Path,
    /// The position read in it, in bytes.
    pub offset: u64,
}

impl InternalEvent for RotatedLost<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.failed, 1);
        tracing::warn!(
            "{}: the file read there before is gone and not found beside it (same inode or same first bytes); what was written to it after byte {}, if anything, is not read",
            self.path.display(),
            self.offset
        );
    }
}

/// A followed file was truncated or rewritten in place: it is read again
/// from its start.
pub struct FileTruncated<'a> {
    /// The follower's counters.
    pub stats: &'a InputStats,
    /// The path.
    pub path: &'a Path,
}

impl InternalEvent for FileTruncated<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.truncated, 1);
        tracing::info!(
            "{} was truncated or rewritten; reading it again from its start",
            self.path.display()
        );
    }
}

/// Reading a followed file (or a rotated copy of it) failed; it is tried
/// again at its next change or poll.
pub struct ReadFailed<'a> {
    /// The follower's counters.
    pub stats: &'a InputStats,
    /// The file read.
    pub path: &'a Path,
    /// The error.
    pub error: &'a io::Error,
}

impl InternalEvent for ReadFailed<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.failed, 1);
        tracing::warn!("reading {} failed: {}", self.path.display(), self.error);
    }
}

/// Why a path cannot be followed (for now: it is looked at again at the next
/// poll).
pub enum Unfollowable<'a> {
    /// It cannot be opened or fingerprinted.
    CannotFollow(&'a io::Error),
    /// It is not a regular file.
    NotRegular,
    /// A followed path became something else than a regular file.
    NoLongerRegular,
    /// Its metadata cannot be read.
    CannotCheck(&'a io::Error),
    /// A file closed while quiet cannot be opened again.
    CannotReopen(&'a io::Error),
    /// A glob cannot be expanded (the pattern as written).
    BadGlob(&'a str, &'a glob::PatternError),
}

/// A path cannot be followed; reported once per path until it can be.
pub struct PathUnfollowable<'a> {
    /// The follower's counters.
    pub stats: &'a InputStats,
    /// The path.
    pub path: &'a Path,
    /// Why.
    pub why: Unfollowable<'a>,
}

impl InternalEvent for PathUnfollowable<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.failed, 1);
        let path = self.path.display();
        match self.why {
            Unfollowable::CannotFollow(e) => tracing::warn!("cannot follow {path}: {e}"),
            Unfollowable::NotRegular => {
                tracing::warn!("not following {path}: not a regular file");
            }
            Unfollowable::NoLongerRegular => tracing::warn!(
                "{path} is no longer a regular file; still reading the file that was there"
            ),
            Unfollowable::CannotCheck(e) => tracing::warn!("cannot check {path}: {e}"),
            Unfollowable::CannotReopen(e) => tracing::warn!("cannot reopen {path}: {e}"),
            Unfollowable::BadGlob(text, e) => tracing::warn!("follow {text:?}: {e}"),
        }
    }
}

/// A followed file was truncated or written again while logalarm was down
/// (same inode): it is read from its start.
pub struct ChangedWhileDown<'a> {
    /// The follower's counters.
    pub stats: &'a InputStats,
    /// The path.
    pub path: &'a Path,
    /// What showed it.
    pub why: &'a str,
}

impl InternalEvent for ChangedWhileDown<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.truncated, 1);
        tracing::info!(
            "{} changed while logalarm was down ({}); reading it from its start",
            self.path.display(),
            self.why
        );
    }
}

/// logalarm cannot tell whether a followed file is the one whose position
/// was saved: it is read from its start rather than risk skipping lines.
pub struct FileUnsure<'a> {
    /// The follower's counters.
    pub stats: &'a InputStats,
    /// The path.
    pub path: &'a Path,
    /// Why it cannot tell.
    pub why: &'a str,
}

impl InternalEvent for FileUnsure<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.truncated, 1);
        tracing::warn!(
            "{}: cannot tell whether it is the file read before ({}); reading it from its start rather than risk skipping lines (some may be alarmed again)",
            self.path.display(),
            self.why
        );
    }
}

/// A file beside a followed path that was rotated away from it while
/// logalarm was down, and never read: it is read whole.
pub struct UnseenRotated<'a> {
    /// The follower's counters.
    pub stats: &'a InputStats,
    /// The followed path.
    pub path: &'a Path,
    /// The file.
    pub found: &'a Path,
}

impl InternalEvent for UnseenRotated<'_> {
    fn emit(self) {
        internal_event::add(&self.stats.rotated, 1);
        tracing::info!(
            "{}: reading {} whole: rotated away from it after logalarm last looked, and never read",
            self.path.display(),
            self.found.display()
        );
    }
}
