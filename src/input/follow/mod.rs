//! File follow: `tail -F`, without losing a line at rotation or restart.
//!
//! One thread follows every configured path and glob:
//! - **Events, then polling.** Directories holding followed files are watched
//!   with inotify (through `notify`): a write is read as soon as it lands. Every
//!   `poll_interval` all files are checked and globs expanded again anyway, which
//!   is the fallback for filesystems without events (NFS, some FUSE) and catches
//!   whatever an event queue overflow dropped.
//! - **Rotation.** When a path moves on to another file (logrotate `create`: a
//!   rename then a new file; or delete and recreate), the old file is read to
//!   its end first, and then for `rotate_wait` more (a writer may not have
//!   reopened yet); the new file is read from its start. A file renamed away
//!   from a followed path before it was ever read there (logrotate's
//!   `….backup`) is read whole. A file truncated in place (`copytruncate`) is
//!   read again from 0, after the lines written just before the truncation are
//!   recovered from the copy when one is found beside it. Truncation shows as
//!   a file shorter than the read position, or as changed first bytes (it was
//!   already written past that position again) — checked before a read, and
//!   after it, before its lines are sent.
//! - **Identity.** A file is its device, inode and a fingerprint of its first
//!   bytes ([`identity`]), so a reused inode is not resumed at a wrong offset.
//! - **Restart.** Read positions are saved in the state directory ([`state`])
//!   once every alarm their lines fired has been delivered ([`commits`]); a
//!   restart resumes there, also in a file that was rotated (renamed, or copied
//!   and truncated) meanwhile, so lines written while logalarm was down are
//!   read once.
//! - **Paths** are made absolute at start, so that they compare with the
//!   paths change events carry; a glob's `*` never matches `/`.
//! - **Partial lines** wait for their `\n` up to `flush_timeout`, then are
//!   matched as they are.
//! - **Few descriptors.** At most [`MAX_OPEN`] files stay open; the least
//!   recently active are closed and reopened (identity checked) when they
//!   change. Read buffers are sized to what there is to read, and positions
//!   are written only when they changed, so thousands of quiet files cost
//!   little memory and time.

pub mod commits;
pub mod config;
pub mod events;
pub mod identity;
pub mod state;
pub mod tracked;

use crate::input::events::InputStats;
use crate::input::{EventSender, Mark};
use crate::internal_event::InternalEvent;
use commits::Commits;
use config::StartAt;
use events::{
    FileGone, FileRotated, FileTruncated, PathUnfollowable, ReadFailed, RenamedUnread, RotatedLost,
    RotatedResumed, Unfollowable,
};
use identity::Identity;
use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::{RecursiveMode, Watcher};
use state::{Saved, StateDir};
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracked::{ReadError, Tracked};

/// Default period of the polling pass.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Default time a rotated file is still read after its path moved on
/// (fluent-bit's `Rotate_Wait` default).
pub const DEFAULT_ROTATE_WAIT: Duration = Duration::from_secs(5);
/// Default wait for a partial last line's `\n`.
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);
/// Most files kept open at once.
pub const MAX_OPEN: usize = 256;
/// How often delivered positions are saved, at most.
const SAVE_EVERY: Duration = Duration::from_millis(50);

/// A running follower.
pub struct Follower {
    thread: std::thread::JoinHandle<Core>,
    /// Fires once the first pass is done: every file found at start has its
    /// starting position (and a saved one has been resumed).
    ready: Option<tokio::sync::oneshot::Receiver<()>>,
    /// The follower's counters.
    stats: Arc<InputStats>,
}

/// One configured path or glob.
struct Pattern {
    text: String,
    glob: glob::Pattern,
    /// The directory to watch, and whether below it.
    watch: (PathBuf, RecursiveMode),
    from: StartAt,
}

struct Core {
    patterns: Vec<Pattern>,
    files: HashMap<u64, Tracked>,
    /// The file each watched path currently is.
    by_path: HashMap<PathBuf, u64>,
    next_id: u64,
    state: Option<StateDir>,
    events: EventSender,
    commits: Arc<Commits>,
    poll_interval: Duration,
    rotate_wait: Duration,
    flush_timeout: Duration,
    watcher: Option<notify::RecommendedWatcher>,
    watched: HashSet<PathBuf>,
    /// Paths already reported as unreadable, so they are reported once.
    reported: HashSet<PathBuf>,
    engine_gone: bool,
    /// Whether the positions to save changed since they were last saved
    /// (files added, gone or renamed; positions committed).
    dirty: bool,
    /// Counters of the follower (every file together).
    stats: Arc<InputStats>,
}

/// The follower's settings (the global `state_dir`, `poll_interval`,
/// `rotate_wait` and `flush_timeout`, defaults applied).
#[derive(Clone, Debug)]
pub struct FollowSettings {
    /// Where read positions are saved; `None`: the default directory
    /// ([`state::default_dir`]), if there is one.
    pub state_dir: Option<PathBuf>,
    /// How often files are checked without a change event, and globs
    /// scanned again.
    pub poll_interval: Duration,
    /// How long a rotated file is still read after its path moved on.
    pub rotate_wait: Duration,
    /// How long an unfinished last line waits before it is matched as it is.
    pub flush_timeout: Duration,
}

/// Starts following `inputs` (each: paths or globs, and where to start).
///
/// # Errors
/// A bad glob pattern, or a state directory that cannot be used (it is then
/// named, with the fix). A state directory that is merely unwritable later is
/// reported and following goes on.
pub fn start(
    inputs: &[(Vec<String>, StartAt)],
    settings: &FollowSettings,
    events: EventSender,
    commits: Arc<Commits>,
    stop: watch::Receiver<bool>,
) -> Result<Follower, String> {
    let mut patterns = Vec::new();
    for (paths, from) in inputs {
        for text in paths {
            patterns.push(pattern(&absolute(text), *from)?);
        }
    }
    let state = match settings.state_dir.clone().or_else(state::default_dir) {
        Some(dir) => match StateDir::open(&dir) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!("{e}; following without saving read positions");
                None
            }
        },
        None => {
            tracing::warn!(
                "no state directory (set --state-dir); following without saving read positions"
            );
            None
        }
    };
    let (raw_tx, raw_rx) = std_mpsc::channel();
    let watcher = match notify::recommended_watcher(raw_tx) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(
                "no file change events ({e}); polling every {:?}",
                settings.poll_interval
            );
            None
        }
    };
    let stats = Arc::<InputStats>::default();
    let mut core = Core {
        patterns,
        files: HashMap::new(),
        by_path: HashMap::new(),
        next_id: 1,
        state,
        events,
        commits: commits.clone(),
        poll_interval: settings.poll_interval,
        rotate_wait: settings.rotate_wait,
        flush_timeout: settings.flush_timeout,
        watcher,
        watched: HashSet::new(),
        reported: HashSet::new(),
        engine_gone: false,
        dirty: true,
        stats: stats.clone(),
    };
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("follow".into())
        .spawn(move || {
            core.run(&raw_rx, &stop, ready_tx);
            core
        })
        .map_err(|e| format!("cannot start the file follower: {e}"))?;
    Ok(Follower {
        thread,
        ready: Some(ready),
        stats,
    })
}

fn pattern(text: &str, from: StartAt) -> Result<Pattern, String> {
    let glob =
        glob::Pattern::new(text).map_err(|e| format!("follow {text:?}: not a valid glob: {e}"))?;
    let path = Path::new(text);
    let magic =
        |c: &std::path::Component<'_>| c.as_os_str().to_string_lossy().contains(['*', '?', '[']);
    let comps: Vec<_> = path.components().collect();
    let first_magic = comps.iter().position(magic);
    let watch = match first_magic {
        // A plain path, or a glob in its last component: its directory.
        None => (parent_of(path), RecursiveMode::NonRecursive),
        Some(i) if i + 1 == comps.len() => (parent_of(path), RecursiveMode::NonRecursive),
        // A glob in a directory component: everything below the fixed part.
        Some(i) => (comps[..i].iter().collect(), RecursiveMode::Recursive),
    };
    Ok(Pattern {
        text: text.to_owned(),
        glob,
        watch,
        from,
    })
}

/// `text` joined to the working directory when relative: change events carry
/// absolute paths (`notify` watches the absolute directory), which must compare
/// equal to the paths the glob walk finds. Left relative when the working
/// directory holds glob characters (its files are then found by polling only).
fn absolute(text: &str) -> String {
    if Path::new(text).is_absolute() {
        return text.to_owned();
    }
    let cwd = std::env::current_dir().ok();
    match cwd.as_deref().and_then(Path::to_str) {
        Some(cwd) if !cwd.contains(['*', '?', '[', ']']) => {
            let rel = text.trim_start_matches("./");
            format!("{}/{rel}", cwd.trim_end_matches('/'))
        }
        _ => text.to_owned(),
    }
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

impl Follower {
    /// The follower's counters (every followed file together).
    pub fn stats(&self) -> Arc<InputStats> {
        self.stats.clone()
    }

    /// Waits for the first pass over the files (the engine must be taking
    /// events: the pass may read). A file that appears after this is new, and
    /// is read from its start whatever `from` says.
    pub async fn ready(&mut self) {
        if let Some(ready) = self.ready.take() {
            // An error means the thread ended early; `finish` reports that.
            let _ = ready.await;
        }
    }

    /// Waits for the follower to stop (after the stop signal), and saves the
    /// positions delivered by then: call after the alarm queues are drained.
    pub async fn finish(self) {
        let joined = tokio::task::spawn_blocking(move || self.thread.join()).await;
        match joined {
            Ok(Ok(mut core)) => {
                core.commit();
                core.save();
            }
            _ => tracing::error!(
                "the file follower stopped unexpectedly; read positions were not saved"
            ),
        }
    }
}

impl Core {
    fn run(
        &mut self,
        raw: &std_mpsc::Receiver<notify::Result<notify::Event>>,
        stop: &watch::Receiver<bool>,
        ready: tokio::sync::oneshot::Sender<()>,
    ) {
        self.update_watches();
        self.resume_saved();
        self.scan(true);
        tracing::info!(
            "follow: {} files followed for {} paths and globs",
            self.files.len(),
            self.patterns.len()
        );
        let _ = ready.send(());
        let mut next_poll = Instant::now() + self.poll_interval;
        let mut last_save = Instant::now();
        while !self.engine_gone && !*stop.borrow() {
            let now = Instant::now();
            let mut wait = next_poll.saturating_duration_since(now).min(SAVE_EVERY);
            if let Some(due) = self.next_flush() {
                wait = wait.min(due.saturating_duration_since(now));
            }
            let mut changed: HashSet<PathBuf> = HashSet::new();
            let mut renamed: Vec<(PathBuf, PathBuf)> = Vec::new();
            let mut rescan = false;
            match raw.recv_timeout(wait) {
                Ok(first) => {
                    // Take every event already queued, so a burst costs one pass.
                    for event in std::iter::once(first).chain(raw.try_iter()) {
                        match event {
                            Ok(e) => {
                                rescan |= e.need_rescan();
                                if let (
                                    EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
                                    [from, to],
                                ) = (e.kind, e.paths.as_slice())
                                {
                                    renamed.push((from.clone(), to.clone()));
                                }
                                changed.extend(e.paths);
                            }
                            Err(e) => {
                                tracing::warn!("file change events: {e}; checking every file");
                                rescan = true;
                            }
                        }
                    }
                }
                Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                    if self.watcher.take().is_some() {
                        tracing::warn!("file change events stopped; polling only");
                    }
                    std::thread::sleep(wait);
                }
            }
            for (from, to) in &renamed {
                self.renamed_unread(from, to);
            }
            let now = Instant::now();
            if rescan || now >= next_poll {
                self.update_watches();
                self.scan(false);
                next_poll = now + self.poll_interval;
            } else if !changed.is_empty() {
                self.changed(&changed);
            }
            self.flush_due(Instant::now());
            if last_save.elapsed() >= SAVE_EVERY {
                self.commit();
                self.save();
                last_save = Instant::now();
            }
        }
    }

    /// Adds a watch on each pattern's directory that exists and is not yet watched.
    fn update_watches(&mut self) {
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        for p in &self.patterns {
            let (dir, mode) = &p.watch;
            if self.watched.contains(dir) || !dir.is_dir() {
                continue;
            }
            match watcher.watch(dir, *mode) {
                Ok(()) => {
                    self.watched.insert(dir.clone());
                }
                Err(e) => {
                    if self.reported.insert(dir.clone()) {
                        tracing::warn!(
                            "cannot watch {} ({e}); polling it every {:?}",
                            dir.display(),
                            self.poll_interval
                        );
                    }
                }
            }
        }
    }

    /// Whether a path from a change event is one to follow. A glob's `*` does
    /// not match `/` here, as in the directory walk of [`glob::glob`] (a
    /// recursive watch reports files at every depth).
    fn matches(&self, path: &Path) -> Option<StartAt> {
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        self.patterns
            .iter()
            .find(|p| p.glob.matches_path_with(path, options) || Path::new(&p.text) == path)
            .map(|p| p.from)
    }

    /// Checks every followed file and finds new ones; `first` is the scan at
    /// start, where files found are read from `from` rather than from their start.
    fn scan(&mut self, first: bool) {
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
    fn changed(&mut self, paths: &HashSet<PathBuf>) {
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
    fn renamed_unread(&mut self, from: &Path, to: &Path) {
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
    fn discover(&mut self, path: &Path, start: StartAt) {
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

    fn add(&mut self, path: &Path, file: File, identity: Identity, offset: u64) -> u64 {
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
    fn limit_open(&mut self, keep: u64) {
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
    fn read(&mut self, id: u64) {
        let Some(t) = self.files.get_mut(&id) else {
            return;
        };
        match t.read_new(&self.events, Instant::now()) {
            Ok(_) => {}
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

    /// Checks file `id` against its path: reads what is new, and handles
    /// truncation, rotation, deletion and a path that became something else.
    fn check(&mut self, id: u64) {
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
    fn check_in_place(&mut self, id: u64, meta: &fs::Metadata) {
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
    fn leave(&mut self, id: u64, now: Instant) {
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
    fn forget(&mut self, id: u64) {
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
    fn truncated(&mut self, id: u64) {
        let Some(mut t) = self.files.remove(&id) else {
            return;
        };
        if let Some((copy, copy_path)) = find_copy(&t.path, &t.identity, t.offset) {
            tracing::debug!(
                "reading the end of {} from its copy {}",
                t.path.display(),
                copy_path.display()
            );
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

    /// At start: resumes every file with a saved position.
    ///
    /// The files still at their path come first: a path's current file must
    /// resume at its own position before the files rotated away from that
    /// path are looked for (which otherwise would start the current file over
    /// at 0, reading it twice).
    fn resume_saved(&mut self) {
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
    fn resume_rotated(&mut self, path: &Path, identity: &Identity, offset: u64) {
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

    fn next_flush(&self) -> Option<Instant> {
        self.files
            .values()
            .filter_map(|t| t.partial_since)
            .min()
            .map(|since| since + self.flush_timeout)
    }

    /// Matches partial lines that waited `flush_timeout` for their `\n`.
    fn flush_due(&mut self, now: Instant) {
        for t in self.files.values_mut() {
            if t.partial_since
                .is_some_and(|s| now.saturating_duration_since(s) >= self.flush_timeout)
                && t.flush_partial(&self.events).is_err()
            {
                self.engine_gone = true;
            }
        }
    }

    /// Takes the positions whose alarms are delivered.
    fn commit(&mut self) {
        for Mark { file, offset } in self.commits.take_done() {
            if let Some(t) = self.files.get_mut(&file)
                && offset > t.committed
            {
                t.committed = offset;
                self.dirty = true;
            }
        }
    }

    fn save(&mut self) {
        let Some(state) = self.state.as_mut() else {
            return;
        };
        if !self.dirty {
            return;
        }
        let mut files: Vec<Saved> = self
            .files
            .values()
            .map(|t| Saved {
                path: t.path.clone(),
                identity: t.identity,
                offset: t.committed,
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path).then(a.offset.cmp(&b.offset)));
        if let Err(e) = state.save(files) {
            if self.reported.insert(state.path().to_owned()) {
                tracing::error!(
                    "cannot save read positions in {}: {e}; following goes on, but a restart may read lines again",
                    state.path().display()
                );
            }
        } else {
            self.reported.remove(state.path());
            self.dirty = false;
        }
    }
}

/// Open `file` and its metadata.
fn open_meta(path: &Path) -> Option<(File, fs::Metadata)> {
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
fn find_copy(path: &Path, identity: &Identity, offset: u64) -> Option<(File, PathBuf)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_the_fixed_part_of_a_glob() {
        let p = pattern("/var/log/app/*.log", StartAt::End).unwrap();
        assert_eq!(
            p.watch,
            (PathBuf::from("/var/log/app"), RecursiveMode::NonRecursive)
        );
        let p = pattern("/var/log/*/x.log", StartAt::End).unwrap();
        assert_eq!(
            p.watch,
            (PathBuf::from("/var/log"), RecursiveMode::Recursive)
        );
        let p = pattern("app.log", StartAt::End).unwrap();
        assert_eq!(p.watch, (PathBuf::from("."), RecursiveMode::NonRecursive));
        assert!(pattern("/a/[", StartAt::End).is_err());
    }
}
