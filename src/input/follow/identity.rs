//! Which file a path is: device, inode, and a fingerprint of the first bytes.
//!
//! Device and inode alone are not enough: a deleted file's inode is soon given
//! to a new one, and resuming the new file at the old offset would skip its
//! first lines. The fingerprint (CRC-32 of up to [`FINGERPRINT_LEN`] bytes)
//! tells them apart, as Vector's and Filebeat's checksum fingerprints do.
//!
//! A file read from its start gets its fingerprint from the bytes read
//! ([`Identity::fresh`], [`Identity::extend`]), not from a second look at the
//! file: a file truncated and written again between that look and the read
//! would otherwise carry the fingerprint of content that was never read, and
//! be read twice when the difference shows.

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
        let (fp_crc, got) = crc_of(file, len)?;
        Ok(Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            fp_len: got,
            fp_crc,
        })
    }

    /// The identity of the file `meta` describes, before any of it is read:
    /// its fingerprint covers no byte yet, and grows with
    /// [`Identity::extend`] as the file is read from its start.
    pub fn fresh(meta: &Metadata) -> Identity {
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            fp_len: 0,
            fp_crc: crc32fast::hash(&[]),
        }
    }

    /// Adds `bytes` — the file's bytes just after the `fp_len` the
    /// fingerprint covers — to the fingerprint, up to [`FINGERPRINT_LEN`].
    pub fn extend(&mut self, bytes: &[u8]) {
        let room = usize::try_from(FINGERPRINT_LEN.saturating_sub(self.fp_len)).unwrap_or(0);
        let take = &bytes[..bytes.len().min(room)];
        if take.is_empty() {
            return;
        }
        let mut hasher = crc32fast::Hasher::new_with_initial(self.fp_crc);
        hasher.update(take);
        self.fp_crc = hasher.finalize();
        self.fp_len += take.len() as u64;
    }

    /// Whether the first `fp_len` bytes of `file` (this file, open) still have
    /// the fingerprint: false when they changed or the file became shorter.
    pub fn still_starts(&self, file: &File) -> bool {
        crc_of(file, self.fp_len).is_ok_and(|(crc, got)| got == self.fp_len && crc == self.fp_crc)
    }

    /// Same device and inode (the fingerprint is checked by [`Identity::same_file`]).
    pub fn same_inode(&self, meta: &Metadata) -> bool {
        self.dev == meta.dev() && self.ino == meta.ino()
    }

    /// Whether `file` is this file: same inode, and its first `fp_len` bytes
    /// still have the fingerprint (false when it became shorter).
    pub fn same_file(&self, file: &File, meta: &Metadata) -> bool {
        self.same_inode(meta) && meta.len() >= self.fp_len && self.still_starts(file)
    }
}

/// The CRC-32 of the first `len` bytes of `file` (fewer at its end), and how
/// many bytes it covers.
fn crc_of(file: &File, len: u64) -> io::Result<(u32, u64)> {
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
    Ok((crc32fast::hash(&want[..got]), got as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extending_equals_hashing_the_whole() {
        let dir = std::env::temp_dir().join(format!("logalarm-identity-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let text: Vec<u8> = (0..300u32).map(|i| b'a' + (i % 26) as u8).collect();
        std::fs::write(&path, &text).unwrap();
        let file = File::open(&path).unwrap();
        let meta = file.metadata().unwrap();
        let whole = Identity::of(&file, &meta).unwrap();
        let mut built = Identity::fresh(&meta);
        built.extend(&text[..10]);
        built.extend(&text[10..200]);
        built.extend(&text[200..]);
        assert_eq!(built, whole);
        assert!(built.same_file(&file, &meta));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
