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
//!   reopened yet); the new file is read from its start. The old file stays
//!   followed, with its saved position, until it is read to its end and every
//!   alarm its lines fired is delivered — however long that takes — so a
//!   restart meanwhile finds it and finishes it. A file renamed away from a
//!   followed path before it was ever read there (logrotate's `….backup`) is
//!   read whole. A file truncated in place (`copytruncate`) is read again from
//!   0; its old content goes on, under its old id and saved position, in the
//!   copy found beside it, so a position is never moved onto the emptied file.
//!   Truncation shows as a file shorter than the read position, or as changed
//!   first bytes or bytes before the position (it was already written past
//!   that position again) — checked before a read, and after it, before its
//!   lines are sent.
//! - **Identity.** A file is its device, inode, creation time and a
//!   fingerprint of its first bytes; a position carries a check of the bytes
//!   before it ([`identity`]). So a reused inode, or a log truncated and written
//!   again behind the same banner, is not resumed at a wrong offset.
//! - **Restart.** Read positions are saved in the state directory
//!   ([`positions`]; the engine locks it, [`crate::state`]) within
//!   `SAVE_EVERY` (50 ms) of the delivery of every alarm their lines fired
//!   ([`commits`]), never past a line dropped on a full queue. A restart
//!   resumes there — in a file appended to since — and also in a file rotated
//!   (renamed, or copied and truncated) meanwhile, and reads whole the files
//!   rotated away and never read; so lines written while logalarm was down
//!   are read. What it cannot tell is said, and read from the start.
//! - **Paths** are made absolute at start, so that they compare with the
//!   paths change events carry; a glob's `*` never matches `/`.
//! - **Partial lines** wait for their `\n` up to `flush_timeout`, then are
//!   matched as they are.
//! - **Few descriptors.** At most [`MAX_OPEN`] files stay open; the least
//!   recently active are closed and reopened (identity checked) when they
//!   change. Read buffers are sized to what there is to read, and positions
//!   are written only when they changed, so thousands of quiet files cost
//!   little memory and time.
//!
//! The follower's one state machine (`Core`, run by one thread) is written
//! in one file per job: `pattern` (paths, globs, watches), `files` (scans,
//! change events, reading), `rotation` (a path that moves on), `resume`
//! (saved positions at start) and `saving` (positions delivered, written).

pub mod commits;
pub mod config;
pub mod events;
pub mod identity;
pub mod positions;
pub mod tracked;

mod files;
mod pattern;
mod resume;
mod rotation;
mod saving;

use crate::input::EventSender;
use crate::input::events::InputStats;
use crate::state::StateDir;
use commits::Commits;
use config::StartAt;
use notify::event::{EventKind, ModifyKind, RenameMode};
use pattern::{Pattern, absolute, pattern};
use positions::Positions;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracked::Tracked;

/// Default period of the polling pass.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Default time a rotated file is still read after its path moved on
/// (fluent-bit's `Rotate_Wait` default).
pub const DEFAULT_ROTATE_WAIT: Duration = Duration::from_secs(5);
/// Default wait for a partial last line's `\n`.
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);
/// Most files kept open at once.
pub const MAX_OPEN: usize = 256;
/// How often delivered positions are saved, at most; also how soon they are
/// looked at again while lines wait for their alarms. A position is saved
/// within this (plus the write) of the delivery that makes it safe.
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

struct Core {
    patterns: Vec<Pattern>,
    files: HashMap<u64, Tracked>,
    /// The file each watched path currently is.
    by_path: HashMap<PathBuf, u64>,
    next_id: u64,
    /// The positions file; `None`: positions are neither resumed nor saved.
    state: Option<Positions>,
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
    /// Whether lines were sent whose positions are not committed yet (set
    /// on every read that sent some; worked out again after each commit).
    unsaved: bool,
    /// Counters of the follower (every file together).
    stats: Arc<InputStats>,
}

/// The follower's settings (the global `poll_interval`, `rotate_wait` and
/// `flush_timeout`, defaults applied), and the state directory the engine
/// locked for the run.
#[derive(Clone, Debug)]
pub struct FollowSettings {
    /// Where read positions are saved and resumed from; `None`: nowhere (the
    /// engine has said why).
    pub state: Option<Arc<StateDir>>,
    /// How often files are checked without a change event, and globs
    /// scanned again.
    pub poll_interval: Duration,
    /// How long a rotated file is still read after its last line (it is let
    /// go once the alarms of its lines are delivered too).
    pub rotate_wait: Duration,
    /// How long an unfinished last line waits before it is matched as it is.
    pub flush_timeout: Duration,
}

/// Starts following `inputs` (each: paths or globs, and where to start).
///
/// # Errors
/// A bad glob pattern, or the follower's thread cannot start. A state
/// directory that cannot be written later is reported and following goes on.
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
    let state = settings.state.clone().map(Positions::new);
    let (raw_tx, raw_rx) = std_mpsc::channel();
    // The thread sleeps until a change event, a timer or its next poll
    // (`poll_interval` may be a minute): the stop wakes it with an empty
    // event, so that it stops — and saves — at once.
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let (wake, mut stop) = (raw_tx.clone(), stop.clone());
        runtime.spawn(async move {
            // An error: the engine is gone, which stops the follower too.
            let _ = stop.wait_for(|stopped| *stopped).await;
            let _ = wake.send(Ok(notify::Event::new(EventKind::Other)));
        });
    }
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
        unsaved: false,
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
            let mut wait = next_poll.saturating_duration_since(now);
            if let Some(due) = self.next_flush() {
                wait = wait.min(due.saturating_duration_since(now));
            }
            // A timer armed only while something waits to be saved: a quiet
            // follower sleeps until its next poll, yet a position is saved
            // promptly once its alarms are delivered (no wake comes from the
            // delivery side: `commits::Progress` is all the follower knows).
            if self.unsaved || self.dirty || self.commits.has_pending() {
                wait = wait.min((last_save + SAVE_EVERY).saturating_duration_since(now));
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
}
