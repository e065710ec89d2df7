//! The outbox: each alarm's queue ([`Lane`]), in memory, and with a state
//! directory also journaled on disk, so that what an alarm accepted survives a
//! crash, a restart and a full queue.
//!
//! **Without a state directory** a lane is a bounded in-memory queue, as
//! uWSGI's alarm queues are: past `queue_size` notifications are dropped and
//! counted, and what is queued at a crash is lost.
//!
//! **With a state directory** (`state_dir`), every notification a lane
//! accepts is first appended to its alarm's journal (`journal.rs`) in
//! `STATE_DIR/outbox/ALARM/`, written in bursts (one `write(2)` per
//! [`FLUSH_EVERY`](super::router::FLUSH_EVERY) notifications, and at the end
//! of each routed block) and fsynced by the syncer thread within [`SYNC_DELAY`] of
//! the write. Then:
//! - a full in-memory queue *spills*: the notification stays on disk only,
//!   and the worker reads it back, in order, once the queue has room; only
//!   past the disk quota (`outbox_max_bytes`, all alarms together) is a
//!   notification dropped (counted, logged);
//! - a finished notification (delivered, or failed for good) is recorded in
//!   the journal's `done` file; a restart delivers every notification not
//!   recorded there, in order per alarm, with its id (so its
//!   `Idempotency-Key`, `Message-ID` and XMPP id) and its first-arrival time
//!   (its retry deadline counts from there);
//! - compaction keeps the journal small: a lane's files are emptied each time
//!   everything it took is finished, and rewritten with only what is left
//!   when they grow past [`COMPACT_AT`] bytes mostly of finished notes.
//!
//! What can repeat: a notification whose delivery was under way at a crash
//! (and one finished just before a crash, if its `done` record had not
//! reached the file: it is written at once, but not fsynced). What can be
//! lost: a SIGKILL or a crash of logalarm loses nothing written (the page
//! cache keeps it); a crash of the machine itself loses what was written in
//! the last [`SYNC_DELAY`] and not yet fsynced. Followed files are safe even
//! then: their read positions are saved only past lines whose notifications
//! are fsynced ([`Lane::safe`]).
//!
//! Each lane also tells how far its notes are safe ([`Lane::safe`], the
//! follower's [`Progress`]): every note numbered up to it is either fsynced in
//! the journal or finished. A dropped note is never safe, so a followed
//! file's position is never saved past a line whose alarm was dropped.

mod journal;
mod stored;
mod watermark;

use super::Queued;
use crate::input::follow::commits::Progress;
use journal::Journal;
use logalarm_plugin_api::NoteId;
use std::collections::{BTreeSet, VecDeque};

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};
use watermark::Watermark;

/// How long after a journal write its fsync may come: writes within it
/// share one fsync.
pub const SYNC_DELAY: Duration = Duration::from_millis(10);

/// A lane's journal is rewritten when it is past this many bytes and more
/// than half of its notes are finished.
pub const COMPACT_AT: u64 = 4 << 20;

/// Notes read back from the journal at a time (at most the queue's size).
const READ_BACK: u64 = 256;

/// What became of one notification offered to a lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    /// Queued in memory (and journaled, with a state directory).
    Queued,
    /// Journaled only: the in-memory queue was full.
    Spilled,
    /// Dropped: the queue was full, and the journal (if any) past its quota.
    Dropped,
    /// The worker takes nothing more (after a stop), and there is no journal
    /// to keep it for the next start.
    Closed,
}

/// The disk quota every lane's journal shares.
struct Quota {
    max: u64,
    used: AtomicU64,
}

/// One alarm's queue. Shared by the senders (the router, the workers of the
/// alarms that fall back to it) and its worker.
pub struct Lane {
    name: Arc<str>,
    capacity: usize,
    journaled: bool,
    state: Mutex<State>,
    wake: tokio::sync::Notify,
    /// [`Lane::safe`], published for the follower without the lock.
    safe: AtomicU64,
    /// Notes offered so far (their numbers are 1 ..= this).
    offered: AtomicU64,
    syncer: Option<Arc<Syncer>>,
    quota: Option<Arc<Quota>>,
}

struct State {
    mem: VecDeque<Queued>,
    /// Journaled notes not in memory, after everything in `mem`.
    spilled: u64,
    journal: Option<Journal>,
    offered: u64,
    /// Every journaled note numbered up to this is fsynced.
    synced: u64,
    /// With a journal, the notes it does not hold (past the quota, a failed
    /// write): not yet finished, or dropped (never finished). Rare.
    unjournaled: BTreeSet<u64>,
    /// Without a journal, which notes are finished.
    finished: Watermark,
    /// Notes accepted and not yet finished.
    live: u64,
    /// Senders alive; the worker ends once none is and nothing is left.
    senders: usize,
    /// The worker takes nothing more.
    closed: bool,
    /// Bytes this lane's journal counts in the quota.
    counted: u64,
}

impl Lane {
    /// A lane of `capacity` notes in memory, journaled in `dir`. Returns the
    /// lane and the notes it holds from a previous run.
    fn journaled_in(
        name: Arc<str>,
        capacity: usize,
        dir: &Path,
        syncer: Arc<Syncer>,
        quota: Arc<Quota>,
    ) -> std::io::Result<(Arc<Lane>, u64)> {
        let (journal, restored) = Journal::open(dir)?;
        let lane = Self::with(
            name,
            capacity,
            Some(journal),
            restored,
            Some(syncer),
            Some(quota),
        );
        Ok((lane, restored))
    }

    /// A lane over `journal` (holding `restored` notes), or in memory.
    fn with(
        name: Arc<str>,
        capacity: usize,
        journal: Option<Journal>,
        restored: u64,
        syncer: Option<Arc<Syncer>>,
        quota: Option<Arc<Quota>>,
    ) -> Arc<Lane> {
        let counted = journal.as_ref().map_or(0, Journal::bytes);
        if let Some(q) = &quota {
            q.used.fetch_add(counted, Ordering::Relaxed);
        }
        Arc::new(Lane {
            name,
            capacity: capacity.max(1),
            journaled: journal.is_some(),
            state: Mutex::new(State {
                mem: VecDeque::new(),
                spilled: restored,
                journal,
                offered: restored,
                synced: restored,
                unjournaled: BTreeSet::new(),
                finished: Watermark::new(restored),
                live: restored,
                senders: 0,
                closed: false,
                counted,
            }),
            wake: tokio::sync::Notify::new(),
            safe: AtomicU64::new(restored),
            offered: AtomicU64::new(restored),
            syncer,
            quota,
        })
    }

    /// An in-memory lane (no journal).
    pub fn in_memory(name: Arc<str>, capacity: usize) -> Arc<Lane> {
        Self::with(name, capacity, None, 0, None, None)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many notes fit in memory.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether the lane is journaled.
    pub fn journaled(&self) -> bool {
        self.journaled
    }

    /// Notes offered to the lane so far (queued, spilled, dropped or refused):
    /// what a followed file's position waits for.
    pub fn offered(&self) -> u64 {
        self.offered.load(Ordering::Acquire)
    }

    /// A sender: the lane's worker ends once every sender is dropped and
    /// the lane is empty.
    pub fn sender(self: &Arc<Self>) -> LaneSender {
        self.lock().senders += 1;
        LaneSender(self.clone())
    }

    /// Offers `notes`, in order, and tells `each` what became of each (with
    /// the note: a dropped one is given back to the policy stage there).
    /// Journals them in one write; never waits for the worker.
    pub fn offer(&self, notes: &mut Vec<Queued>, mut each: impl FnMut(Taken, &Queued)) {
        if notes.is_empty() {
            return;
        }
        let mut st = self.lock();
        let st = &mut *st;
        let now = Instant::now();
        let wall = SystemTime::now();
        let mut journaled_any = false;
        let first_seq = st.offered + 1;
        let mut batch_spilled = 0;
        for mut q in notes.drain(..) {
            st.offered += 1;
            q.lane_seq = st.offered;
            let journaled = match (&mut st.journal, &self.quota) {
                (Some(j), Some(quota)) => {
                    let since = wall
                        .checked_sub(now.saturating_duration_since(q.since))
                        .unwrap_or(wall);
                    let before = j.bytes();
                    let (at, size) = j.append(q.lane_seq, &q.note, since);
                    if quota.used.load(Ordering::Relaxed) + size > quota.max {
                        j.unbuffer(at, 1);
                        None
                    } else {
                        quota.used.fetch_add(j.bytes() - before, Ordering::Relaxed);
                        st.counted += j.bytes() - before;
                        journaled_any = true;
                        Some(at)
                    }
                }
                _ => None,
            };
            let room = st.spilled == 0 && st.mem.len() < self.capacity && !st.closed;
            let taken = if room {
                Taken::Queued
            } else if journaled.is_some() {
                Taken::Spilled
            } else if st.closed {
                Taken::Closed
            } else {
                Taken::Dropped
            };
            each(taken, &q);
            if st.journal.is_none() {
                if matches!(taken, Taken::Queued) {
                    st.finished.track(q.lane_seq);
                } else {
                    st.finished.never(q.lane_seq);
                }
            } else if journaled.is_none() {
                st.unjournaled.insert(q.lane_seq);
            }
            match taken {
                Taken::Queued => {
                    st.live += 1;
                    st.mem.push_back(q);
                }
                Taken::Spilled => {
                    if let (0, Some(j), Some(at)) = (st.spilled, &mut st.journal, journaled) {
                        j.read_at = at;
                    }
                    st.live += 1;
                    st.spilled += 1;
                    batch_spilled += 1;
                }
                Taken::Dropped | Taken::Closed => {}
            }
        }
        if journaled_any
            && let Some(j) = &mut st.journal
            && let Err(e) = j.write()
        {
            tracing::error!(
                alarm = %self.name,
                "outbox: cannot write the journal: {e}; the notifications of this batch that did not fit in memory are lost"
            );
            // This batch is not on disk: its notes in memory are safe only once
            // finished, and those spilled cannot be read back.
            for seq in first_seq..=st.offered {
                st.unjournaled.insert(seq);
            }
            st.spilled -= batch_spilled;
            st.live -= batch_spilled;
        }
        self.offered.store(st.offered, Ordering::Release);
        self.publish(st);
        self.wake.notify_one();
        if journaled_any && let Some(s) = &self.syncer {
            s.dirty();
        }
    }

    /// Takes the next note to deliver: from memory, or read back from the
    /// journal; `None` once every sender is gone and nothing is left.
    pub async fn next(&self) -> Option<Queued> {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.lock();
                if let Some(q) = st.mem.pop_front() {
                    return Some(q);
                }
                if st.spilled > 0 {
                    self.read_back(&mut st);
                    continue;
                }
                if st.senders == 0 {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Takes the next note in memory, if there is one, and counts it
    /// finished (a dry run's queues, drained by the report, not a worker).
    pub fn try_take(&self) -> Option<Queued> {
        let q = self.lock().mem.pop_front()?;
        self.finish(q.lane_seq, q.note.id);
        Some(q)
    }

    /// Moves spilled notes from the journal back into memory.
    fn read_back(&self, st: &mut State) {
        let want = st.spilled.min(READ_BACK).min(self.capacity as u64);
        let Some(j) = &mut st.journal else {
            st.spilled = 0;
            return;
        };
        let why = match j.read_back(want) {
            Ok(records) if !records.is_empty() => {
                let now = Instant::now();
                let wall = SystemTime::now();
                st.spilled = st.spilled.saturating_sub(records.len() as u64);
                for r in records {
                    let age = wall.duration_since(r.since).unwrap_or_default();
                    st.mem.push_back(Queued {
                        note: r.note,
                        since: now.checked_sub(age).unwrap_or(now),
                        lane_seq: r.seq,
                    });
                }
                return;
            }
            Ok(_) => "they are not in the journal".to_owned(),
            Err(e) => e.to_string(),
        };
        tracing::error!(
            alarm = %self.name,
            "outbox: cannot read back {} spilled notifications: {why}; they are lost",
            st.spilled
        );
        st.live = st.live.saturating_sub(st.spilled);
        st.spilled = 0;
    }

    /// Records that note `seq` (id `id`) is finished: delivered, failed for
    /// good, or handed over to another alarm.
    pub fn finish(&self, seq: u64, id: NoteId) {
        let mut st = self.lock();
        let st = &mut *st;
        st.live = st.live.saturating_sub(1);
        let journaled = st.journal.is_some() && !st.unjournaled.remove(&seq);
        if st.journal.is_none() {
            st.finished.finish(seq);
        }
        if let Some(j) = &mut st.journal {
            if journaled {
                j.done(id);
            }
            let idle = st.live == 0 && st.mem.is_empty() && st.spilled == 0;
            let result = if idle && j.bytes() > 0 {
                j.reset()
            } else if j.bytes() > COMPACT_AT && st.live * 2 < j.records() {
                // The new file is fsynced whole: everything offered is on disk.
                j.compact(st.spilled, false).map(|_| st.synced = st.offered)
            } else {
                Ok(())
            };
            if let Err(e) = result {
                tracing::warn!(alarm = %self.name, "outbox: cannot compact the journal: {e}");
            }
            if let Some(q) = &self.quota {
                let now = j.bytes();
                if now < st.counted {
                    q.used.fetch_sub(st.counted - now, Ordering::Relaxed);
                } else {
                    q.used.fetch_add(now - st.counted, Ordering::Relaxed);
                }
                st.counted = now;
            }
        }
        self.publish(st);
    }

    /// The worker takes nothing more: later offers are refused (or only
    /// journaled, with a journal).
    pub fn close(&self) {
        self.lock().closed = true;
    }

    /// Notes accepted and not finished (in memory, spilled, or being delivered).
    pub fn pending(&self) -> u64 {
        self.lock().live
    }

    /// Every note numbered up to this is safe: fsynced in the journal, or
    /// finished.
    pub fn safe(&self) -> u64 {
        self.safe.load(Ordering::Acquire)
    }

    fn publish(&self, st: &State) {
        let safe = if st.journal.is_some() {
            let first_unsafe = st.unjournaled.first().map_or(u64::MAX, |s| s - 1);
            st.synced.min(first_unsafe).min(st.offered)
        } else {
            st.finished.upto()
        };
        self.safe.store(safe, Ordering::Release);
    }

    /// Fsyncs what was written; called by the syncer.
    fn sync(&self) {
        let (file, upto, generation) = {
            let st = self.lock();
            let Some(j) = &st.journal else { return };
            if st.synced >= st.offered {
                return;
            }
            (j.puts_file(), st.offered, j.generation)
        };
        if let Err(e) = file.sync_data() {
            tracing::error!(alarm = %self.name, "outbox: cannot fsync the journal: {e}");
            return;
        }
        let mut st = self.lock();
        // A compaction in between replaced the file (and fsynced the new one
        // whole, moving `synced` itself): this fsync was of the old one.
        if st
            .journal
            .as_ref()
            .is_some_and(|j| j.generation == generation)
        {
            st.synced = st.synced.max(upto);
        }
        self.publish(&st);
    }
}

impl Progress for Lane {
    fn finished(&self) -> u64 {
        self.safe()
    }
}

/// A sending side of a [`Lane`]; dropping the last one lets its worker end
/// once the lane is empty.
pub struct LaneSender(Arc<Lane>);

impl LaneSender {
    /// The lane.
    pub fn lane(&self) -> &Arc<Lane> {
        &self.0
    }
}

impl Drop for LaneSender {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.senders = st.senders.saturating_sub(1);
        drop(st);
        self.0.wake.notify_one();
    }
}

/// The thread that fsyncs the journals: woken by a write, it waits
/// [`SYNC_DELAY`] for more, then fsyncs every lane written since.
struct Syncer {
    dirty: Mutex<bool>,
    wake: Condvar,
    stop: AtomicBool,
    lanes: Mutex<Vec<std::sync::Weak<Lane>>>,
}

impl Syncer {
    fn dirty(&self) {
        let mut d = self.dirty.lock().unwrap_or_else(PoisonError::into_inner);
        if !*d {
            *d = true;
            self.wake.notify_one();
        }
    }

    fn run(&self) {
        loop {
            {
                let mut d = self.dirty.lock().unwrap_or_else(PoisonError::into_inner);
                while !*d && !self.stop.load(Ordering::Acquire) {
                    d = self
                        .wake
                        .wait_timeout(d, Duration::from_secs(1))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                if !*d && self.stop.load(Ordering::Acquire) {
                    return;
                }
                *d = false;
            }
            std::thread::sleep(SYNC_DELAY);
            self.sync_all();
        }
    }

    fn sync_all(&self) {
        let lanes: Vec<Arc<Lane>> = self
            .lanes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .collect();
        for lane in lanes {
            lane.sync();
        }
    }
}

/// Every alarm's lane, and the syncer of their journals.
pub struct Outbox {
    lanes: Vec<Arc<Lane>>,
    syncer: Option<(Arc<Syncer>, std::thread::JoinHandle<()>)>,
}

/// The directory name of an alarm's journal: its name where that is a
/// plain file name, else `x` and its bytes in hex.
fn lane_dir(name: &str) -> String {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if plain {
        name.to_owned()
    } else {
        let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
        format!("x{hex}")
    }
}

impl Outbox {
    /// The lanes of `alarms` (name and queue size, in plan order): in memory
    /// when `dir` is `None`, else journaled in `dir/outbox/`, within
    /// `max_bytes` of disk in all. Returns the outbox and, per alarm, how
    /// many notifications a previous run left to deliver.
    ///
    /// # Errors
    /// The outbox directory cannot be created or a journal opened or read:
    /// the message names it.
    pub fn open(
        alarms: &[(Arc<str>, usize)],
        dir: Option<&Path>,
        max_bytes: u64,
    ) -> Result<(Outbox, Vec<u64>), String> {
        let Some(dir) = dir else {
            let lanes = alarms
                .iter()
                .map(|(name, cap)| Lane::in_memory(name.clone(), *cap))
                .collect();
            return Ok((
                Outbox {
                    lanes,
                    syncer: None,
                },
                vec![0; alarms.len()],
            ));
        };
        let root = dir.join("outbox");
        let syncer = Arc::new(Syncer {
            dirty: Mutex::new(false),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            lanes: Mutex::new(Vec::new()),
        });
        let quota = Arc::new(Quota {
            max: max_bytes,
            used: AtomicU64::new(0),
        });
        let mut lanes = Vec::new();
        let mut restored = Vec::new();
        for (name, cap) in alarms {
            let path = root.join(lane_dir(name));
            let (lane, n) = Lane::journaled_in(
                name.clone(),
                *cap,
                &path,
                syncer.clone(),
                quota.clone(),
            )
            .map_err(|e| {
                format!(
                    "outbox {}: {e}; make the state directory writable, or set --state-dir elsewhere",
                    path.display()
                )
            })?;
            syncer
                .lanes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Arc::downgrade(&lane));
            lanes.push(lane);
            restored.push(n);
        }
        if let Ok(entries) = std::fs::read_dir(&root) {
            let known: Vec<String> = alarms.iter().map(|(n, _)| lane_dir(n)).collect();
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let holds = std::fs::metadata(entry.path().join("puts")).map_or(0, |m| m.len());
                if !known.contains(&name) && holds > 0 {
                    tracing::warn!(
                        "outbox {}: notifications of an alarm no longer configured; kept until it is configured again (or the directory is removed)",
                        entry.path().display()
                    );
                }
            }
        }
        let thread_syncer = syncer.clone();
        let thread = std::thread::Builder::new()
            .name("outbox-sync".into())
            .spawn(move || thread_syncer.run())
            .map_err(|e| format!("cannot start the outbox's fsync thread: {e}"))?;
        Ok((
            Outbox {
                lanes,
                syncer: Some((syncer, thread)),
            },
            restored,
        ))
    }

    /// The lanes, in plan order.
    pub fn lanes(&self) -> &[Arc<Lane>] {
        &self.lanes
    }

    /// Fsyncs every journal now and stops the syncer: the end of a run.
    pub fn close(mut self) {
        if let Some((syncer, thread)) = self.syncer.take() {
            syncer.stop.store(true, Ordering::Release);
            syncer.dirty();
            let _ = thread.join();
            // What was written after the syncer's last pass.
            syncer.sync_all();
        }
    }
}
