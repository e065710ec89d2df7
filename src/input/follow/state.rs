//! The state file: where reading stopped in each followed file, saved so that
//! a restart reads what was written while logalarm was down, once.
//!
//! One JSON file, `follow.json`, in the state directory, written atomically
//! (a temporary file, fsynced, renamed over the old one), so a crash leaves
//! the old state or the new, never half of one. A file is known by its device,
//! inode and a fingerprint of its first bytes, so that an inode reused by a new
//! file is not resumed at the old one's offset. A lock (`flock`) on
//! `follow.lock` keeps two instances from sharing one state directory.

use super::identity::Identity;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The state file's name in the state directory.
pub const FILE_NAME: &str = "follow.json";
const LOCK_NAME: &str = "follow.lock";
const VERSION: u32 = 1;

/// The saved read position of one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// The path the file was followed under.
    pub path: PathBuf,
    /// Which file it was.
    #[serde(flatten)]
    pub identity: Identity,
    /// Bytes read and alarmed (every alarm they fired delivered).
    pub offset: u64,
}

#[derive(Serialize, Deserialize)]
struct Contents {
    version: u32,
    files: Vec<Saved>,
}

/// An open, locked state directory.
pub struct StateDir {
    dir: PathBuf,
    _lock: Flock<File>,
    /// What was last written, to skip writing the same again.
    last: Vec<Saved>,
}

/// The default state directory: `$STATE_DIRECTORY` (systemd's
/// `StateDirectory=`), else `$XDG_STATE_HOME/logalarm`, else
/// `/var/lib/logalarm` for root and `~/.local/state/logalarm` for others (the
/// XDG base directory default).
pub fn default_dir() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("STATE_DIRECTORY") {
        // systemd may list several, separated by ':'; the first is ours.
        let first = dir.to_string_lossy().split(':').next().map(PathBuf::from);
        return first;
    }
    if let Some(dir) = var("XDG_STATE_HOME") {
        return Some(PathBuf::from(dir).join("logalarm"));
    }
    if nix::unistd::geteuid().is_root() {
        return Some(PathBuf::from("/var/lib/logalarm"));
    }
    var("HOME").map(|home| PathBuf::from(home).join(".local/state/logalarm"))
}

impl StateDir {
    /// Creates (if needed) and locks `dir`.
    ///
    /// # Errors
    /// The directory cannot be created or written, or another logalarm holds it.
    pub fn open(dir: &Path) -> Result<StateDir, String> {
        fs::create_dir_all(dir).map_err(|e| {
            format!(
                "state dir {}: cannot create it: {e}; set --state-dir (state_dir) to a writable directory",
                dir.display()
            )
        })?;
        let lock_path = dir.join(LOCK_NAME);
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| {
                format!(
                    "state dir {}: cannot write in it: {e}; set --state-dir (state_dir) to a writable directory",
                    dir.display()
                )
            })?;
        let lock = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
            format!(
                "state dir {}: another logalarm is using it ({e}); give each instance its own --state-dir",
                dir.display()
            )
        })?;
        Ok(StateDir {
            dir: dir.to_owned(),
            _lock: lock,
            last: Vec::new(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Reads the saved positions. A missing file is an empty state; a corrupt
    /// one is reported and ignored (reading then starts as on a first run).
    pub fn load(&mut self) -> Vec<Saved> {
        let path = self.dir.join(FILE_NAME);
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                tracing::error!(
                    "state file {}: cannot read it: {e}; starting without it",
                    path.display()
                );
                return Vec::new();
            }
        };
        match serde_json::from_slice::<Contents>(&text) {
            Ok(c) if c.version == VERSION => {
                self.last.clone_from(&c.files);
                c.files
            }
            Ok(c) => {
                tracing::error!(
                    "state file {}: version {} is not {VERSION}; ignoring it",
                    path.display(),
                    c.version
                );
                Vec::new()
            }
            Err(e) => {
                tracing::error!(
                    "state file {} is corrupt ({e}); ignoring it: files are read as on a first run",
                    path.display()
                );
                Vec::new()
            }
        }
    }

    /// Saves `files` atomically, unless they equal what was saved last.
    ///
    /// # Errors
    /// Writing, syncing or renaming failed (the previous state stays in place).
    pub fn save(&mut self, files: Vec<Saved>) -> io::Result<()> {
        if files == self.last {
            return Ok(());
        }
        let contents = Contents {
            version: VERSION,
            files,
        };
        let text = serde_json::to_vec(&contents).map_err(io::Error::other)?;
        let tmp = self.dir.join(format!(".{FILE_NAME}.tmp"));
        let mut out = File::create(&tmp)?;
        out.write_all(&text)?;
        out.sync_data()?;
        fs::rename(&tmp, self.dir.join(FILE_NAME))?;
        self.last = contents.files;
        Ok(())
    }
}
