//! The state directory: what must outlive one run of logalarm (the followed
//! files' read positions, `follow.json`; later the outbox, `outbox/`), and
//! the lock that makes the directory one instance's.
//!
//! Two instances writing one state directory would overwrite each other's
//! positions, so the directory is locked: `flock(2)` on [`LOCK_NAME`] in it,
//! held for as long as the [`StateDir`] lives. The kernel drops the lock
//! when its holder exits, however it exits (a SIGKILL included) — but not at
//! once: a service manager that restarts logalarm right after a crash can
//! start the new instance while the old one is still being torn down. So
//! [`StateDir::acquire`] waits for the lock, up to a bounded time, and says
//! once that it waits and for whom (the holder writes its pid into the lock
//! file). If the lock cannot be had in time, the caller refuses to start
//! (exit non-zero, and the service manager tries again), unless the user
//! chose to run without the state directory (`state_busy = "ignore"`).
//!
//! ```no_run
//! use logalarm::state::StateDir;
//! use std::time::Duration;
//! let state = StateDir::acquire("/var/lib/logalarm".as_ref(), Duration::from_secs(10))?;
//! let positions = state.path().join("follow.json");
//! # Ok::<(), logalarm::state::AcquireError>(())
//! ```

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The lock file's name in the state directory.
pub const LOCK_NAME: &str = "logalarm.lock";

/// The default wait for a state directory held by another instance
/// (`state_lock_wait`).
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(10);

/// How often the lock is tried again while another instance holds it.
const RETRY_EVERY: Duration = Duration::from_millis(20);

/// An open, locked state directory. The lock is held until it is dropped:
/// share it (`Arc<StateDir>`) between the components that keep state in it.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    _lock: Flock<File>,
}

/// Why a state directory could not be had.
#[derive(Debug)]
pub enum AcquireError {
    /// It cannot be created, or written in (the message names it and the fix).
    Unusable(String),
    /// Another logalarm held it for the whole wait.
    Busy {
        /// The directory.
        dir: PathBuf,
        /// The holder's pid, as written in the lock file (if it could be read).
        holder: Option<u32>,
        /// How long it was waited for.
        waited: Duration,
    },
}

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireError::Unusable(e) => f.write_str(e),
            AcquireError::Busy {
                dir,
                holder,
                waited,
            } => write!(
                f,
                "state dir {}: another logalarm{} still holds it after {}",
                dir.display(),
                holder_text(*holder),
                duration_text(*waited)
            ),
        }
    }
}

impl std::error::Error for AcquireError {}

/// What to do when the state directory is held by another instance for the
/// whole wait (`state_busy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Busy {
    /// Do not start (exit 1): a service manager starts logalarm again later.
    #[default]
    Refuse,
    /// Run without the state directory: read positions are neither resumed
    /// nor saved (said loudly at start).
    Ignore,
}

/// Parses `state_busy`: `refuse` or `ignore`.
///
/// # Errors
/// Any other word, with the two choices.
pub fn busy_value(value: &str) -> Result<Busy, String> {
    match value.trim() {
        "refuse" => Ok(Busy::Refuse),
        "ignore" => Ok(Busy::Ignore),
        other => Err(format!(
            "{other:?} is neither \"refuse\" nor \"ignore\"; write \"refuse\" (the default: do not start while another logalarm holds the state dir) or \"ignore\" (run without saving or resuming read positions)"
        )),
    }
}

/// The default state directory: `$STATE_DIRECTORY` (systemd's
/// `StateDirectory=`), else `$XDG_STATE_HOME/logalarm`, else
/// `/var/lib/logalarm` for root and `~/.local/state/logalarm` for others (the
/// XDG base directory default).
pub fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = systemd_dir() {
        return Some(dir);
    }
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("XDG_STATE_HOME") {
        return Some(PathBuf::from(dir).join("logalarm"));
    }
    if nix::unistd::geteuid().is_root() {
        return Some(PathBuf::from("/var/lib/logalarm"));
    }
    var("HOME").map(|home| PathBuf::from(home).join(".local/state/logalarm"))
}

/// `$STATE_DIRECTORY`, when systemd set it (`StateDirectory=`): the service
/// then has a state directory whatever its inputs. systemd may list several,
/// separated by `:`; the first is logalarm's.
pub fn systemd_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("STATE_DIRECTORY").filter(|v| !v.is_empty())?;
    let first = dir.to_string_lossy().split(':').next().map(PathBuf::from);
    first.filter(|d| !d.as_os_str().is_empty())
}

impl StateDir {
    /// Creates `dir` (if needed) and locks it, waiting up to `wait` while
    /// another instance holds it. The first time it finds the lock held, it
    /// logs (warn) that it waits, and for which pid. Once locked, the lock
    /// file holds this process's pid.
    ///
    /// Blocks the calling thread for up to `wait` (tried again every 20 ms).
    ///
    /// # Errors
    /// [`AcquireError::Unusable`]: the directory cannot be created, or the
    /// lock file written. [`AcquireError::Busy`]: another instance held it
    /// for the whole wait.
    pub fn acquire(dir: &Path, wait: Duration) -> Result<StateDir, AcquireError> {
        let unusable = |what: &str, e: &dyn fmt::Display| {
            AcquireError::Unusable(format!(
                "state dir {}: {what}: {e}; set --state-dir (state_dir) to a writable directory",
                dir.display()
            ))
        };
        fs::create_dir_all(dir).map_err(|e| unusable("cannot create it", &e))?;
        let lock_path = dir.join(LOCK_NAME);
        // A wait too long for the clock is no deadline at all.
        let deadline = Instant::now().checked_add(wait);
        let mut said = false;
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&lock_path)
                .map_err(|e| unusable("cannot write in it", &e))?;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(mut lock) => {
                    // For the message of the next instance that finds it held.
                    let pid = format!("{}\n", std::process::id());
                    lock.set_len(0)
                        .and_then(|()| lock.write_all(pid.as_bytes()))
                        .map_err(|e| unusable("cannot write in it", &e))?;
                    return Ok(StateDir {
                        dir: dir.to_owned(),
                        _lock: lock,
                    });
                }
                Err((_, Errno::EWOULDBLOCK | Errno::EINTR)) => {}
                Err((_, e)) => return Err(unusable("cannot lock it", &e)),
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(AcquireError::Busy {
                    dir: dir.to_owned(),
                    holder: holder(&lock_path),
                    waited: wait,
                });
            }
            if !said {
                said = true;
                tracing::warn!(
                    "state dir {}: waiting up to {} for the logalarm that holds it{}…",
                    dir.display(),
                    duration_text(wait),
                    holder_text(holder(&lock_path))
                );
            }
            let left = deadline.map_or(RETRY_EVERY, |d| d - now);
            std::thread::sleep(RETRY_EVERY.min(left));
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

/// The pid written in the lock file by its holder, if it can be read.
fn holder(lock_path: &Path) -> Option<u32> {
    let mut text = String::new();
    File::open(lock_path)
        .and_then(|f| f.take(32).read_to_string(&mut text))
        .ok()?;
    text.trim().parse().ok()
}

fn holder_text(holder: Option<u32>) -> String {
    holder.map_or_else(String::new, |pid| format!(" (pid {pid})"))
}

/// `d` as the settings write it: `10s`, `1500ms`.
fn duration_text(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("logalarm-state-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_held_dir_is_waited_for_then_refused_and_free_once_dropped() {
        let dir = scratch("held");
        let first = StateDir::acquire(&dir, Duration::ZERO).unwrap();
        let pid = fs::read_to_string(dir.join(LOCK_NAME)).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
        let started = Instant::now();
        match StateDir::acquire(&dir, Duration::from_millis(100)) {
            Err(AcquireError::Busy { holder, waited, .. }) => {
                assert_eq!(holder, Some(std::process::id()));
                assert_eq!(waited, Duration::from_millis(100));
            }
            other => panic!("not busy: {other:?}"),
        }
        assert!(started.elapsed() >= Duration::from_millis(100));
        drop(first);
        let again = StateDir::acquire(&dir, Duration::ZERO).unwrap();
        assert_eq!(again.path(), dir);
        drop(again);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_uncreatable_dir_is_unusable() {
        let dir = scratch("blocked");
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a-file");
        fs::write(&file, "x").unwrap();
        let err = StateDir::acquire(&file.join("state"), Duration::ZERO).unwrap_err();
        assert!(
            matches!(&err, AcquireError::Unusable(e) if e.contains("cannot create it") && e.contains("--state-dir")),
            "{err}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn busy_takes_two_words() {
        assert_eq!(busy_value("refuse"), Ok(Busy::Refuse));
        assert_eq!(busy_value(" ignore "), Ok(Busy::Ignore));
        assert!(busy_value("wait").unwrap_err().contains("\"refuse\""));
    }
}
