//! Which file a path is: device, inode, and a fingerprint of the first bytes.
//!
//! Device and inode alone are not enough: a deleted file's inode is soon given
//! to a new one, and resuming the new file at the old offset would skip its
//! first lines. The fingerprint (CRC-32 of up to [`FINGERPRINT_LEN`] bytes)
//! tells them apart, as Vector's and Filebeat's checksum fingerprints do.

use serde::{Deserialize, Serialize};
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

/// Bytes at the start of a file its fingerprint covers.
pub const FINGERPRINT_LEN: u64 = 256;

/// A file's identity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Bytes the fingerprint covers (fewer than [`FINGERPRINT_LEN`] for a
    /// shorter file).
    pub fp_len: u64,
    /// CRC-32 of those bytes.
    pub fp_crc: u32,
}

impl Identity {
    /// The identity of an open file.
    ///
    /// # Errors
    /// Reading its first bytes failed.
    pub fn of(file: &File, meta: &Metadata) -> io::Result<Identity> {
        let len = meta.len().min(FINGERPRINT_LEN);
        Ok(Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            fp_len: len,
            fp_crc: crc_of(file, len)?,
        })
    }

    /// Same device and inode (the fingerprint is checked by [`Identity::same_file`]).
    pub fn same_inode(&self, meta: &Metadata) -> bool {
        self.dev == meta.dev() && self.ino == meta.ino()
    }

    /// Whether `file` is this file: same inode, and its first `fp_len` bytes
    /// still have the fingerprint (false when it became shorter).
    pub fn same_file(&self, file: &File, meta: &Metadata) -> bool {
        self.same_inode(meta)
            && meta.len() >= self.fp_len
            && crc_of(file, self.fp_len).is_ok_and(|c| c == self.fp_crc)
    }

    /// The fingerprint covers fewer bytes than it could now: recompute it.
    pub fn widen(&mut self, file: &File, meta: &Metadata) {
        if self.fp_len < FINGERPRINT_LEN
            && meta.len() > self.fp_len
            && let Ok(wider) = Identity::of(file, meta)
        {
            *self = wider;
        }
    }
}

fn crc_of(file: &File, len: u64) -> io::Result<u32> {
    let mut buf = [0u8; FINGERPRINT_LEN as usize];
    let want = &mut buf[..usize::try_from(len).unwrap_or(0)];
    let mut got = 0;
    while got < want.len() {
        match file.read_at(&mut want[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(crc32fast::hash(&want[..got]))
}
