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
//!   reopened yet); the new file is read from its start. A file truncated in
//!   place (`copytruncate`) is read again from 0, after the lines written just
//!   before the truncation are recovered from the copy when one is found beside it.
//! - **Identity.** A file is its device, inode and a fingerprint of its first
//!   bytes ([`identity`]), so a reused inode is not resumed at a wrong offset.
//! - **Restart.** Read positions are saved in the state directory ([`state`])
//!   once every alarm their lines fired has been delivered ([`commits`]); a
//!   restart resumes there, also in a file that was rotated meanwhile, so lines
//!   written while logalarm was down are read once.
//! - **Partial lines** wait for their `\n` up to `flush_timeout`, then are
//!   matched as they are.
//! - **Few descriptors.** At most [`MAX_OPEN`] files stay open; the least
//!   recently active are closed and reopened (identity checked) when they change.

pub mod commits;
pub mod identity;
pub mod state;
pub mod tracked;

use crate::config::Config;
use crate::config::inputs::StartAt;
use crate::dispatch::AlarmStats;
use crate::input::{EventSender, Mark};
use commits::Commits;
use identity::Identity;
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
use tracked::{EngineGone, Tracked};

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
    commits: Arc<Commits>,
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
}

/// Starts following `inputs` (each: paths or globs, and where to start).
///
/// # Errors
/// A bad glob pattern, or a state directory that cannot be used (it is then
/// named, with the fix). A state directory that is merely unwritable later is
/// reported and following goes on.
pub fn start(
    inputs: &[(Vec<String>, StartAt)],
    config: &Config,
    events: EventSender,
    stats: Vec<Arc<AlarmStats>>,
    stop: watch::Receiver<bool>,
) -> Result<Follower, String> {
    let mut patterns = Vec::new();
    for (paths, from) in inputs {
        for text in paths {
            patterns.push(pattern(text, *from)?);
        }
    }
    let state = match config
        .settings
        .state_dir
        .clone()
        .or_else(state::default_dir)
    {
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
    let commits = Arc::new(Commits::new(stats));
    let (raw_tx, raw_rx) = std_mpsc::channel();
    let watcher = match notify::recommended_watcher(raw_tx) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(
                "no file change events ({e}); polling every {:?}",
                config
                    .settings
                    .poll_interval
                    .unwrap_or(DEFAULT_POLL_INTERVAL)
            );
            None
        }
    };
    let mut core = Core {
        patterns,
        files: HashMap::new(),
        by_path: HashMap::new(),
        next_id: 1,
        state,
        events,
        commits: commits.clone(),
        poll_interval: config
            .settings
            .poll_interval
            .unwrap_or(DEFAULT_POLL_INTERVAL),
        rotate_wait: config.settings.rotate_wait.unwrap_or(DEFAULT_ROTATE_WAIT),
        flush_timeout: config
            .settings
            .flush_timeout
            .unwrap_or(DEFAULT_FLUSH_TIMEOUT),
        watcher,
        watched: HashSet::new(),
        reported: HashSet::new(),
        engine_gone: false,
    };
    let thread = std::thread::Builder::new()
        .name("follow".into())
        .spawn(move || {
            core.run(&raw_rx, &stop);
            core
        })
        .map_err(|e| format!("cannot start the file follower: {e}"))?;
    Ok(Follower { thread, commits })
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

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

impl Follower {
    /// Where the engine records routed positions.
    pub fn commits(&self) -> Arc<Commits> {
        self.commits.clone()
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
    ) {
        self.update_watches();
        self.resume_saved();
        self.scan(true);
        let mut next_poll = Instant::now() + self.poll_interval;
        let mut last_save = Instant::now();
        while !self.engine_gone && !*stop.borrow() {
            let now = Instant::now();
            let mut wait = next_poll.saturating_duration_since(now).min(SAVE_EVERY);
            if let Some(due) = self.next_flush() {
                wait = wait.min(due.saturating_duration_since(now));
            }
            let mut changed: HashSet<PathBuf> = HashSet::new();
            let mut rescan = false;
            match raw.recv_timeout(wait) {
                Ok(first) => {
                    // Take every event already queued, so a burst costs one pass.
                    for event in std::iter::once(first).chain(raw.try_iter()) {
                        match event {
                            Ok(e) => {
                                rescan |= e.need_rescan();
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

    fn matches(&self, path: &Path) -> Option<StartAt> {
        self.patterns
            .iter()
            .find(|p| p.glob.matches_path(path) || Path::new(&p.text) == path)
            .map(|p| p.from)
    }

    /// Checks every followed file and finds new ones; `first` is the scan at
    /// start, where files found are read from `from` rather than from their start.
    fn scan(&mut self, first: bool) {
        let mut found = Vec::new();
        for p in &self.patterns {
            match glob::glob(&p.text) {
                Ok(paths) => found.extend(paths.flatten().map(|path| (path, p.from))),
                Err(e) => tracing::warn!("follow {:?}: {e}", p.text),
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

    /// A path seen for the first time (or again after its file left).
    fn discover(&mut self, path: &Path, start: StartAt) {
        let (file, meta) = match File::open(path).and_then(|f| f.metadata().map(|m| (f, m))) {
            Ok(x) => x,
            Err(e) => {
                if e.kind() != io::ErrorKind::NotFound && self.reported.insert(path.to_owned()) {
                    tracing::warn!("cannot follow {}: {e}", path.display());
                }
                return;
            }
        };
        if !meta.is_file() {
            if self.reported.insert(path.to_owned()) {
                tracing::warn!("not following {}: not a regular file", path.display());
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
            if let Some(t) = self.files.get_mut(&id) {
                self.by_path.remove(&t.path);
                t.rename(path);
                t.rotated_at = None;
            }
            self.by_path.insert(path.to_owned(), id);
            return;
        }
        let identity = match Identity::of(&file, &meta) {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!("cannot follow {}: {e}", path.display());
                return;
            }
        };
        let offset = match start {
            StartAt::End => meta.len(),
            StartAt::Beginning => 0,
        };
        tracing::debug!("following {} from byte {offset}", path.display());
        self.add(path, file, identity, offset);
    }

    fn add(&mut self, path: &Path, file: File, identity: Identity, offset: u64) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let t = Tracked::new(id, path, file, identity, offset, Instant::now());
        self.files.insert(id, t);
        self.by_path.insert(path.to_owned(), id);
        self.limit_open(id);
        self.read(id);
        id
    }

    /// Keeps at most [`MAX_OPEN`] files open, closing the quietest ones (never
    /// a rotated one: its path no longer leads to it).
    fn limit_open(&mut self, keep: u64) {
        let open = self.files.values().filter(|t| t.file.is_some()).count();
        if open <= MAX_OPEN {
            return;
        }
        let mut candidates: Vec<(Instant, u64)> = self
            .files
            .values()
            .filter(|t| {
                t.file.is_some() && t.rotated_at.is_none() && t.id != keep && t.partial_len() == 0
            })
            .map(|t| (t.last_data, t.id))
            .collect();
        candidates.sort_unstable();
        for (_, id) in candidates.into_iter().take(open - MAX_OPEN) {
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
            Err(Ok(EngineGone)) => self.engine_gone = true,
            Err(Err(e)) => {
                tracing::warn!("reading {} failed: {e}", t.path.display());
            }
        }
    }

    /// Checks file `id` against its path: reads what is new, and handles
    /// truncation, rotation, deletion and a path that became something else.
    fn check(&mut self, id: u64) {
        let Some(t) = self.files.get(&id) else { return };
        let path = t.path.clone();
        let rotated = t.rotated_at;
        if t.file.is_none() && !self.reopen(id) {
            return;
        }
        self.read(id);
        let now = Instant::now();
        if let Some(at) = rotated {
            // Left behind by rotation: read until quiet for rotate_wait.
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
                    tracing::warn!(
                        "{} is no longer a regular file; still reading the file that was there",
                        path.display()
                    );
                }
                self.leave(id, now);
            }
            Ok(meta) => {
                let Some(t) = self.files.get_mut(&id) else {
                    return;
                };
                if !t.identity.same_inode(&meta) {
                    tracing::info!(
                        "{} was rotated; reading the new file from its start",
                        path.display()
                    );
                    self.leave(id, now);
                    self.discover(&path, StartAt::Beginning);
                } else if meta.len() < t.offset {
                    tracing::info!(
                        "{} was truncated; reading it again from its start",
                        path.display()
                    );
                    self.truncated(id);
                } else if let Some(file) = &t.file {
                    t.identity.widen(file, &meta);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                tracing::info!(
                    "{} is gone; reading the rest of the file that was there",
                    path.display()
                );
                self.leave(id, now);
            }
            Err(e) => {
                if self.reported.insert(path.clone()) {
                    tracing::warn!("cannot check {}: {e}", path.display());
                }
            }
        }
    }

    /// The path moved on: keep reading file `id` for a while, by its handle.
    fn leave(&mut self, id: u64, now: Instant) {
        if let Some(t) = self.files.get_mut(&id) {
            if self.by_path.get(&t.path) == Some(&id) {
                self.by_path.remove(&t.path);
            }
            t.rotated_at = Some(now);
        }
    }

    /// Stops following file `id`: its partial line is matched, its handle closed.
    fn forget(&mut self, id: u64) {
        if let Some(mut t) = self.files.remove(&id) {
            if t.flush_partial(&self.events).is_err() {
                self.engine_gone = true;
            }
            if self.by_path.get(&t.path) == Some(&id) {
                self.by_path.remove(&t.path);
            }
            tracing::debug!("no longer following {} (file {id})", t.path.display());
        }
    }

    /// File `id` was truncated in place (`copytruncate`): first recover the
    /// lines written just before, from the copy, then start over at 0.
    fn truncated(&mut self, id: u64) {
        let Some(t) = self.files.get_mut(&id) else {
            return;
        };
        if let Some(copy) = find_copy(&t.path, &t.identity, t.offset) {
            tracing::debug!(
                "reading the end of {} from its copy {}",
                t.path.display(),
                copy.1.display()
            );
            match t.read_from(&copy.0, &self.events, Instant::now()) {
                Err(Ok(EngineGone)) => self.engine_gone = true,
                Err(Err(e)) => tracing::warn!("reading {} failed: {e}", copy.1.display()),
                Ok(_) => {}
            }
        }
        if t.flush_partial(&self.events).is_err() {
            self.engine_gone = true;
        }
        t.restart();
        if let (Some(file), Ok(meta)) = (&t.file, fs::metadata(&t.path))
            && let Ok(identity) = Identity::of(file, &meta)
        {
            t.identity = identity;
        }
        self.read(id);
    }

    /// Opens a closed file again, if its path still leads to it.
    fn reopen(&mut self, id: u64) -> bool {
        let Some(t) = self.files.get_mut(&id) else {
            return false;
        };
        let Ok(meta) = fs::metadata(&t.path) else {
            // Gone while closed: the rotated copy, if any, holds its rest.
            let (path, identity, offset) = (t.path.clone(), t.identity, t.offset);
            self.files.remove(&id);
            self.by_path.remove(&path);
            self.resume_rotated(&path, &identity, offset);
            return false;
        };
        if !t.identity.same_inode(&meta) {
            let (path, identity, offset) = (t.path.clone(), t.identity, t.offset);
            self.files.remove(&id);
            self.by_path.remove(&path);
            self.resume_rotated(&path, &identity, offset);
            self.discover(&path, StartAt::Beginning);
            return false;
        }
        if meta.len() == t.offset && t.partial_len() == 0 {
            return false;
        }
        match File::open(&t.path) {
            Ok(file) => {
                t.file = Some(file);
                self.limit_open(id);
                true
            }
            Err(e) => {
                tracing::warn!("cannot reopen {}: {e}", t.path.display());
                false
            }
        }
    }

    /// At start: resumes every file with a saved position.
    fn resume_saved(&mut self) {
        let saved = match self.state.as_mut() {
            Some(state) => state.load(),
            None => return,
        };
        for s in saved {
            if self.matches(&s.path).is_none() {
                continue;
            }
            let at_path = File::open(&s.path).and_then(|f| f.metadata().map(|m| (f, m)));
            match at_path {
                Ok((file, meta)) if meta.is_file() && s.identity.same_file(&file, &meta) => {
                    let offset = if meta.len() < s.offset { 0 } else { s.offset };
                    if !self.by_path.contains_key(&s.path) {
                        tracing::debug!("resuming {} at byte {offset}", s.path.display());
                        self.add(&s.path, file, s.identity, offset);
                    }
                }
                // Rotated (or replaced) while logalarm was down: finish the old
                // file, then the new one is read whole by the first scan.
                _ => {
                    self.resume_rotated(&s.path, &s.identity, s.offset);
                    if let Ok((file, meta)) =
                        File::open(&s.path).and_then(|f| f.metadata().map(|m| (f, m)))
                        && meta.is_file()
                        && !self.by_path.contains_key(&s.path)
                        && let Ok(identity) = Identity::of(&file, &meta)
                    {
                        self.add(&s.path, file, identity, 0);
                    }
                }
            }
        }
    }

    /// Finds the file that was at `path` (by identity) beside it, and reads
    /// its rest from `offset` as a rotated file.
    fn resume_rotated(&mut self, path: &Path, identity: &Identity, offset: u64) {
        let Some((file, found)) = find_by_identity(path, identity) else {
            tracing::warn!(
                "{}: the file read before was rotated away and not found beside it; its unread lines are lost",
                path.display()
            );
            return;
        };
        tracing::info!(
            "{}: reading the rest of its rotated file {}",
            path.display(),
            found.display()
        );
        let id = self.next_id;
        self.next_id += 1;
        let mut t = Tracked::new(id, path, file, *identity, offset, Instant::now());
        t.rotated_at = Some(Instant::now());
        self.files.insert(id, t);
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
            if let Some(t) = self.files.get_mut(&file) {
                t.committed = t.committed.max(offset);
            }
        }
    }

    fn save(&mut self) {
        let Some(state) = self.state.as_mut() else {
            return;
        };
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
