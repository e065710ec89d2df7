//! Which file a path is, and whether the bytes before a read position are
//! still those that were read.
//!
//! A file is its device, inode, creation time (where the filesystem keeps
//! one: `statx` birth time, which `std` reads) and a fingerprint of its first
//! bytes. Device and inode alone are not enough: a deleted file's inode is
//! soon given to a new one, and resuming the new file at the old offset would
//! skip its first lines. The creation time tells them apart; where there is
//! none, the fingerprint (CRC-32 of up to [`FINGERPRINT_LEN`] bytes) does,
//! unless the new file starts with the same bytes — which many logs do (a
//! banner, a header line written at every start).
//!
//! So a read position carries a [`Tail`] too: a CRC of the bytes just before
//! it. A file truncated and written again past the position read (with the
//! same banner, on the same inode) has other bytes there, and is read again
//! from its start instead of resumed in the middle of its new content.
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
use std::time::{SystemTime, UNIX_EPOCH};

/// Bytes at the start of a file its fingerprint covers.
pub const FINGERPRINT_LEN: u64 = 256;

/// Bytes before a read position its [`Tail`] covers.
pub const TAIL_LEN: usize = 256;

/// A file's identity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Creation time, in nanoseconds since the Unix epoch; `None` where the
    /// filesystem keeps none (or in a state file of an older logalarm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub born: Option<u64>,
    /// The key its lines' notification ids were made with, when it is not
    /// the one its device, inode and birth time give: a copy `copytruncate`
    /// made keeps the key of the file it copies ([`Identity::key`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<u64>,
    /// Bytes the fingerprint covers (fewer than [`FINGERPRINT_LEN`] for a
    /// shorter file).
    pub fp_len: u64,
    /// CRC-32 of those bytes.
    pub fp_crc: u32,
}

/// A check of the bytes just before a read position (up to [`TAIL_LEN`] of
/// them): whether the file still holds, before that position, what was read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tail {
    /// Bytes covered: [`TAIL_LEN`], or the position when it is smaller.
    pub len: u32,
    /// Their CRC-32.
    pub crc: u32,
}

/// `time` in nanoseconds since the Unix epoch, if it fits.
fn nanos(time: io::Result<SystemTime>) -> Option<u64> {
    let since = time.ok()?.duration_since(UNIX_EPOCH).ok()?;
    u64::try_from(since.as_nanos()).ok()
}

/// When the file `meta` describes was created, if its filesystem says
/// (`statx` birth time), in nanoseconds since the Unix epoch.
pub fn birth(meta: &Metadata) -> Option<u64> {
    nanos(meta.created())
}

/// When the file `meta` describes was last modified, in nanoseconds since
/// the Unix epoch.
pub fn modified(meta: &Metadata) -> Option<u64> {
    nanos(meta.modified())
}

impl Identity {
    /// A number for this file, the same in every run of every logalarm
    /// build (device, inode and birth time mixed by SplitMix64's finalizer;
    /// for a copy, the copied file's): with a line's offset, the id of its
    /// notifications, so a line read again after a crash, from the file or
    /// from its copy, has the id it had.
    pub fn key(&self) -> u64 {
        if let Some(key) = self.key {
            return key;
        }
        let mut z = self.dev.rotate_left(32)
            ^ self.ino
            ^ self.born.unwrap_or(0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The identity of an open file.
    ///
    /// # Errors
    /// Reading its first bytes failed.
    pub fn of(file: &File, meta: &Metadata) -> io::Result<Identity> {
        let len = meta.len().min(FINGERPRINT_LEN);
        let (fp_crc, got) = crc_of(file, 0, len)?;
        Ok(Identity {
            fp_len: got,
            fp_crc,
            ..Identity::fresh(meta)
        })
    }

    /// The identity of the file `meta` describes, before any of it is read:
    /// its fingerprint covers no byte yet, and grows with
    /// [`Identity::extend`] as the file is read from its start.
    pub fn fresh(meta: &Metadata) -> Identity {
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            born: birth(meta),
            key: None,
            fp_len: 0,
            fp_crc: crc32fast::hash(&[]),
        }
    }

    /// The same first bytes, in another file (`meta`'s): the identity of a
    /// copy (`copytruncate`).
    pub fn moved_to(&self, meta: &Metadata) -> Identity {
        Identity {
            fp_len: self.fp_len,
            fp_crc: self.fp_crc,
            key: Some(self.key()),
            ..Identity::fresh(meta)
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
        crc_of(file, 0, self.fp_len)
            .is_ok_and(|(crc, got)| got == self.fp_len && crc == self.fp_crc)
    }

    /// Same device and inode, and the same creation time where both are
    /// known: the same file object (its content is checked by
    /// [`Identity::same_file`]). A file created anew on a freed inode has
    /// another creation time.
    pub fn same_inode(&self, meta: &Metadata) -> bool {
        self.dev == meta.dev()
            && self.ino == meta.ino()
            && match (self.born, birth(meta)) {
                (Some(then), Some(now)) => then == now,
                _ => true,
            }
    }

    /// Whether `file` is this file: the same file object, and its first
    /// `fp_len` bytes still have the fingerprint (false when it became
    /// shorter).
    pub fn same_file(&self, file: &File, meta: &Metadata) -> bool {
        self.same_inode(meta) && meta.len() >= self.fp_len && self.still_starts(file)
    }
}

impl Tail {
    /// The check of `bytes`, the last ones before a position (at most
    /// [`TAIL_LEN`] are taken, from the end).
    pub fn of(bytes: &[u8]) -> Tail {
        let bytes = &bytes[bytes.len().saturating_sub(TAIL_LEN)..];
        Tail {
            len: u32::try_from(bytes.len()).unwrap_or(0),
            crc: crc32fast::hash(bytes),
        }
    }

    /// Whether `file` still holds, just before `offset`, the bytes checked.
    /// False when they differ, or the file is shorter than `offset`.
    pub fn still_before(&self, file: &File, offset: u64) -> bool {
        let len = u64::from(self.len);
        offset >= len
            && crc_of(file, offset - len, len).is_ok_and(|(crc, got)| got == len && crc == self.crc)
    }
}

/// The last bytes (up to [`TAIL_LEN`]) of `file` before `offset`, to go on
/// checking from there.
///
/// # Errors
/// Reading failed.
pub fn tail_bytes(file: &File, offset: u64) -> io::Result<Vec<u8>> {
    let start = offset.saturating_sub(TAIL_LEN as u64);
    let mut buf = vec![0u8; usize::try_from(offset - start).unwrap_or(0)];
    let got = read_fully(file, start, &mut buf)?;
    buf.truncate(got);
    Ok(buf)
}

/// Reads into `buf` from `at` until it is full or the file ends; returns
/// the bytes read.
fn read_fully(file: &File, at: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], at + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The CRC-32 of the `len` bytes of `file` from `at` (up to 256; fewer at
/// its end), and how many bytes it covers.
fn crc_of(file: &File, at: u64, len: u64) -> io::Result<(u32, u64)> {
    let mut buf = [0u8; TAIL_LEN];
    let want = &mut buf[..usize::try_from(len).unwrap_or(0).min(TAIL_LEN)];
    let got = read_fully(file, at, want)?;
    Ok((crc32fast::hash(&want[..got]), got as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("logalarm-identity-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn extending_equals_hashing_the_whole() {
        let dir = scratch("extend");
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

    #[test]
    fn a_rewrite_behind_the_same_banner_shows_in_the_tail() {
        let dir = scratch("tail");
        let path = dir.join("f");
        let banner = "=".repeat(299) + "\n";
        let old: String =
            banner.clone() + &(1..=40).map(|n| format!("line {n}\n")).collect::<String>();
        std::fs::write(&path, &old).unwrap();
        let file = File::open(&path).unwrap();
        let meta = file.metadata().unwrap();
        let identity = Identity::of(&file, &meta).unwrap();
        let at = old.len() as u64;
        let tail = Tail::of(&tail_bytes(&file, at).unwrap());
        assert_eq!(tail.len as usize, TAIL_LEN);
        assert!(tail.still_before(&file, at));
        // Appended to: still the same.
        std::fs::write(&path, old.clone() + "line 41\n").unwrap();
        assert!(tail.still_before(&file, at));
        // Truncated and written again, longer, on the same inode: the first
        // bytes are the same, the bytes before the position are not.
        let new: String = banner
            + &(100..=180)
                .map(|n| format!("line {n}\n"))
                .collect::<String>();
        std::fs::write(&path, &new).unwrap();
        let meta = file.metadata().unwrap();
        assert!(identity.same_file(&file, &meta));
        assert!(!tail.still_before(&file, at));
        // Shorter than the position.
        std::fs::write(&path, "x\n").unwrap();
        assert!(!tail.still_before(&file, at));
        assert_eq!(Tail::of(b"").len, 0);
        assert!(Tail::of(b"").still_before(&file, 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
