//! The socket's file: made with its mode from the start, never over something
//! that is not a stale socket, and removed when logalarm is done with it.
//!
//! - An existing path that is not a socket is never touched: binding fails
//!   with an error naming it.
//! - A socket file nobody listens on (left by a run that was killed) is
//!   removed and bound again; one that a live process serves is refused. The
//!   test is a connect: `ECONNREFUSED` means nobody is bound there (unix(7)).
//! - The mode is set on the socket before `bind(2)` (Linux creates the file
//!   with the socket's mode less the umask), then the file is `chmod`ed to the
//!   exact mode, which can only add bits the umask took: at no moment can
//!   anyone outside `mode` connect. Unlike changing the umask around `bind`,
//!   this touches no process-wide state.

use super::config::SocketKind;
use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, UnixAddr, bind, connect, listen, socket,
};
use nix::sys::stat::{Mode, fchmod};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Connections a stream socket's kernel queue holds before `connect` waits
/// (or fails with `EAGAIN` for a non-blocking client), while logalarm is at
/// its client limit.
const BACKLOG: i32 = 1024;

/// A socket file this process bound: removed when dropped, unless the path
/// by then names another file (a later run bound its own there).
pub struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.file_type().is_socket() && m.dev() == self.dev && m.ino() == self.ino);
        if ours && let Err(e) = fs::remove_file(&self.path) {
            tracing::warn!("cannot remove socket {}: {e}", self.path.display());
        }
    }
}

/// Creates a socket of `kind` bound at `path` with permission bits `mode`
/// (listening, for a stream socket); non-blocking and close-on-exec.
///
/// # Errors
/// The path exists and is not a socket, another process serves it, its
/// directory is missing or not writable, or it is longer than `sun_path`;
/// each message names the path and what to do.
pub fn create(path: &Path, kind: SocketKind, mode: u32) -> Result<(OwnedFd, SocketFile), String> {
    let shown = path.display();
    let addr = UnixAddr::new(path).map_err(|e| match e {
        Errno::ENAMETOOLONG => format!(
            "socket path {shown} is too long for a unix socket (at most 107 bytes); choose a shorter path"
        ),
        e => format!("socket path {shown}: {}", e.desc()),
    })?;
    clear_stale(path, &addr)?;
    let ty = match kind {
        SocketKind::Stream => SockType::Stream,
        SocketKind::Dgram => SockType::Datagram,
    };
    let fd = socket(
        AddressFamily::Unix,
        ty,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| format!("cannot create a socket for {shown}: {}", e.desc()))?;
    let bits = Mode::from_bits_truncate(mode & 0o777);
    fchmod(&fd, bits)
        .map_err(|e| format!("cannot set mode {mode:04o} on socket {shown}: {}", e.desc()))?;
    bind(fd.as_raw_fd(), &addr).map_err(|e| {
        let hint = match e {
            Errno::ENOENT => "; create its directory first",
            Errno::EACCES | Errno::EPERM | Errno::EROFS => {
                "; choose a directory logalarm may write to, or run it as a user who may"
            }
            Errno::EADDRINUSE => "; another process bound it just now",
            _ => "",
        };
        format!("cannot bind socket {shown}: {}{hint}", e.desc())
    })?;
    let meta = fs::symlink_metadata(path)
        .map_err(|e| format!("socket {shown} vanished right after binding it: {e}"))?;
    let file = SocketFile {
        path: path.to_owned(),
        dev: meta.dev(),
        ino: meta.ino(),
    };
    if meta.mode() & 0o777 != mode & 0o777 {
        // Only adds the bits the umask took away.
        fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o777))
            .map_err(|e| format!("cannot set mode {mode:04o} on socket {shown}: {e}"))?;
    }
    if kind == SocketKind::Stream {
        let backlog = Backlog::new(BACKLOG).unwrap_or(Backlog::MAXCONN);
        listen(&fd, backlog)
            .map_err(|e| format!("cannot listen on socket {shown}: {}", e.desc()))?;
    }
    Ok((fd, file))
}

/// Removes a stale socket file at `path`; fails when `path` is anything else
/// or a live socket.
fn clear_stale(path: &Path, addr: &UnixAddr) -> Result<(), String> {
    let shown = path.display();
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot look at socket path {shown}: {e}")),
    };
    if !meta.file_type().is_socket() {
        return Err(format!(
            "{shown} exists and is not a socket; logalarm will not replace it: remove it or choose another socket path"
        ));
    }
    match probe(addr) {
        Ok(()) | Err(Errno::EAGAIN | Errno::EPROTOTYPE) => Err(format!(
            "socket {shown} is in use by another process; stop it or choose another socket path"
        )),
        Err(Errno::ECONNREFUSED) => {
            tracing::info!("removing stale socket {shown} (nobody listens on it)");
            match fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(format!("cannot remove stale socket {shown}: {e}")),
            }
        }
        Err(e) => Err(format!(
            "cannot tell whether socket {shown} is in use ({}); remove it if it is stale",
            e.desc()
        )),
    }
}

/// Connects a non-blocking stream socket to `addr`: `Ok` or `EAGAIN` (its
/// queue is full) mean a stream server, `EPROTOTYPE` a bound datagram socket,
/// `ECONNREFUSED` nobody.
fn probe(addr: &UnixAddr) -> Result<(), Errno> {
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    connect(fd.as_raw_fd(), addr)
}
