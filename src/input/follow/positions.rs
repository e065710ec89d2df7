//! The state file: where reading stopped in each followed file, saved so that
//! a restart reads what was written while logalarm was down, once.
//!
//! One JSON file, `follow.json`, in the state directory, written atomically
//! (a temporary file, fsynced, renamed over the old one), so a crash leaves
//! the old state or the new, never half of one. A file is known by its device,
//! inode and a fingerprint of its first bytes, so that an inode reused by a new
//! file is not resumed at the old one's offset. The directory is locked by
//! the engine ([`crate::state`]), so one instance at a time writes it.

use super::identity::Identity;
use crate::state::StateDir;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The state file's name in the state directory.
pub const FILE_NAME: &str = "follow.json";
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

/// The positions file of a state directory.
pub struct Positions {
    state: Arc<StateDir>,
    /// What was last written, to skip writing the same again.
    last: Vec<Saved>,
}

impl Positions {
    /// The positions file in `state` (not read yet: [`Positions::load`]).
    pub fn new(state: Arc<StateDir>) -> Positions {
        Positions {
            state,
            last: Vec::new(),
        }
    }

    /// The state directory.
    pub fn path(&self) -> &Path {
        self.state.path()
    }

    /// Reads the saved positions. A missing file is an empty state; a corrupt
    /// one is reported and ignored (reading then starts as on a first run).
    pub fn load(&mut self) -> Vec<Saved> {
        let path = self.state.path().join(FILE_NAME);
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
        let tmp = self.state.path().join(format!(".{FILE_NAME}.tmp"));
        let mut out = File::create(&tmp)?;
        out.write_all(&text)?;
        out.sync_data()?;
        fs::rename(&tmp, self.state.path().join(FILE_NAME))?;
        self.last = contents.files;
        Ok(())
    }
}
