//! uWSGI's `alarm-fd = NAME FD[:SIZE] MESSAGE`: fire an alarm each time a
//! descriptor has data.
//!
//! uWSGI (core/alarm.c) watches an inherited descriptor in its alarm thread;
//! each time it is readable it reads SIZE bytes (default 1) and fires the alarm
//! with MESSAGE, and it stops watching when a read hits the end or fails. The
//! classic use is a cgroup's OOM eventfd (`alarm-fd = oom 5:8 OUT OF MEMORY`).
//!
//! logalarm does the same, and FD may also be a path:
//! - a FIFO (`mkfifo`), opened read-write so that it never reaches
//!   end-of-file when its writers close: one writer after another can poke it;
//! - a character device;
//! - a descriptor number logalarm inherited from its parent (`3</run/x.fifo` in
//!   a shell), which logalarm switches to non-blocking mode.
//!
//! Bytes are counted, not interpreted: every SIZE bytes read fire the alarm
//! once (three bytes written at once with SIZE 1 fire it three times, as in
//! uWSGI, whose level-triggered loop reads one byte per wake-up). Several
//! `alarm-fd` lines on the same FD share one reader, and each read fires every
//! one of them, each with its own message (uWSGI's behaviour too). The
//! `alarm-freq` throttle applies: identical messages within its period fire once.

use super::events::{FdStop, FdStopped, InputStats};
use super::{Event, EventSender, Fire};
pub mod config;

use crate::internal_event::InternalEvent;
use config::AlarmFdDef;
use logalarm_plugin_api::Source;
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::fd::BorrowedFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::sync::Arc;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;

/// An opened descriptor to watch, with what it fires.
pub struct Watch {
    fd: AsyncFd<File>,
    /// FD as configured, for messages and as the notifications' source.
    what: Arc<str>,
    /// Bytes read per firing.
    size: usize,
    message: Vec<u8>,
    /// Further `alarm-fd` lines on the same descriptor: their alarms and messages.
    also: Vec<(Vec<u32>, Vec<u8>)>,
    /// Its counters.
    stats: Arc<InputStats>,
}

/// Opens the descriptor of an `alarm-fd` (inside the tokio runtime: it is
/// registered with the runtime's reactor).
///
/// # Errors
/// A message naming the FD and the fix: the path does not exist or cannot be
/// opened, is a regular file, directory or socket (never "readable" in the
/// sense watched here); the descriptor number is not open, was not inherited,
/// is logalarm's stdin/stdout/stderr, or is open for writing only.
pub fn open(def: &AlarmFdDef) -> Result<Watch, String> {
    let what = def.fd.trim();
    let at = &def.origin;
    let file = match what.parse::<i32>() {
        Ok(n) => inherited(n).map_err(|e| format!("{at}: alarm-fd descriptor {n} {e}"))?,
        Err(_) => path(what).map_err(|e| format!("{at}: alarm-fd {what} {e}"))?,
    };
    // SAFETY: the File owns its descriptor and is never replaced or closed
    // while the AsyncFd holds it (only `get_ref` is used).
    let fd = unsafe { AsyncFd::register_with_interest(file, Interest::READABLE) }.map_err(|e| {
        let (_, e) = e.into_parts();
        format!("{at}: alarm-fd {what} cannot be watched for data: {e}")
    })?;
    Ok(Watch {
        fd,
        what: what.into(),
        size: def.size.max(1),
        message: def.message.as_bytes().to_vec(),
        also: Vec::new(),
        stats: Arc::default(),
    })
}

impl Watch {
    /// The FD as configured (a number or a path).
    pub fn what(&self) -> &str {
        &self.what
    }

    /// The watch's counters.
    pub fn stats(&self) -> Arc<InputStats> {
        self.stats.clone()
    }

    /// Whether `def` names the same FD as this watch (as written).
    pub fn watches(&self, def: &AlarmFdDef) -> bool {
        *self.what == *def.fd.trim()
    }

    /// Adds another `alarm-fd` line on the same FD: each read fires its
    /// `alarms` too, with its message. Its read size is not used: the first
    /// line's counts, as in uWSGI.
    pub fn also(&mut self, def: &AlarmFdDef, alarms: Vec<u32>) {
        if def.size.max(1) != self.size {
            tracing::warn!(
                "{}: alarm-fd {} reads {} bytes per firing, as its first line says; the :{} here is not used",
                def.origin,
                self.what,
                self.size,
                def.size
            );
        }
        self.also.push((alarms, def.message.as_bytes().to_vec()));
    }
}

/// Opens a path: a FIFO read-write (never at end-of-file), a character device
/// read-only; both non-blocking.
fn path(path: &str) -> Result<File, String> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => {
            "does not exist; create the FIFO first (mkfifo PATH) or fix the path".to_owned()
        }
        _ => format!("cannot be read: {e}"),
    })?;
    let kind = meta.file_type();
    let fifo = kind.is_fifo();
    if !fifo && !kind.is_char_device() {
        let is = if kind.is_dir() {
            "a directory"
        } else if kind.is_socket() {
            "a socket (use a socket input for it)"
        } else {
            "a regular file, which always has data"
        };
        return Err(format!(
            "is {is}; alarm-fd watches a FIFO (mkfifo), a character device or an inherited descriptor number"
        ));
    }
    OpenOptions::new()
        .read(true)
        // A FIFO held open for writing by its reader never reports end-of-file
        // when its writers close (fifo(7), Linux).
        .write(fifo)
        .custom_flags(OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(|e| {
            let how = if fifo { "read-write (a FIFO is opened for writing too, so that it never ends when its writers close)" } else { "for reading" };
            format!("cannot be opened {how}: {e}")
        })
}

/// Takes over descriptor `n`, inherited from logalarm's parent: a duplicate,
/// non-blocking and close-on-exec (children of logalarm do not inherit it).
fn inherited(n: i32) -> Result<File, String> {
    if (0..=2).contains(&n) {
        return Err(
            "is logalarm's stdin, stdout or stderr; pass another descriptor (3 and up)".into(),
        );
    }
    if n < 0 || std::fs::symlink_metadata(format!("/proc/self/fd/{n}")).is_err() {
        return Err(format!(
            "is not open: logalarm inherited no such descriptor; open it in the parent, e.g. `logalarm … {n}</run/app.fifo`"
        ));
    }
    // SAFETY: /proc says descriptor n is open, and nothing in logalarm closes
    // descriptors it does not own; the borrow ends within this function.
    let fd = unsafe { BorrowedFd::borrow_raw(n) };
    let flags = fcntl(fd, FcntlArg::F_GETFD).map_err(|e| format!("cannot be inspected: {e}"))?;
    // Descriptors that survived exec are without close-on-exec; every one that
    // logalarm's runtime opened (its epoll, its eventfd) has it.
    if FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC) {
        return Err(format!(
            "was not inherited (it is one logalarm opened itself); open it in the parent, e.g. `logalarm … {n}</run/app.fifo`"
        ));
    }
    let status = fcntl(fd, FcntlArg::F_GETFL).map_err(|e| format!("cannot be inspected: {e}"))?;
    let status = OFlag::from_bits_truncate(status);
    if status & OFlag::O_ACCMODE == OFlag::O_WRONLY {
        return Err(
            "is open for writing only; open it for reading (`N<PATH`, or `N<>PATH` for a FIFO)"
                .into(),
        );
    }
    // The duplicate shares the open file description, so this makes the
    // parent's copy non-blocking too; an inherited descriptor is logalarm's to use.
    fcntl(fd, FcntlArg::F_SETFL(status | OFlag::O_NONBLOCK))
        .map_err(|e| format!("cannot be made non-blocking: {e}"))?;
    let dup = fd
        .try_clone_to_owned()
        .map_err(|e| format!("cannot be duplicated: {e}"))?;
    // Keep the original out of the processes logalarm starts (cmd actions, a
    // wrapped process): a FIFO's writer count or a pipe's end must not leak.
    let _ = fcntl(
        fd,
        FcntlArg::F_SETFD(FdFlag::from_bits_truncate(flags) | FdFlag::FD_CLOEXEC),
    );
    Ok(File::from(dup))
}

/// Watches `w` until `stop`, firing `alarms` (and those of the lines sharing
/// its FD) once per `size` bytes read. Stops by itself, with a warning, when
/// the descriptor reaches its end (a pipe whose writers all closed) or a read
/// fails, as uWSGI does. It holds `events` weakly: a watch alone never keeps
/// logalarm running after its inputs have ended.
pub async fn watch(
    w: Watch,
    alarms: Vec<u32>,
    events: EventSender,
    mut stop: watch::Receiver<bool>,
) {
    // A watch does not keep logalarm running: it ends when its inputs end
    // (stdin at EOF, the wrapped process gone), as the run loop says.
    let weak = events.downgrade();
    drop(events);
    let events = weak;
    let source = Source::new("fd", std::ffi::OsStr::new(&*w.what));
    let rule: Arc<str> = "alarm-fd".into();
    let mut buf = vec![0; w.size];
    let mut have = 0;
    let stopped = |why| {
        FdStopped {
            stats: &w.stats,
            what: &w.what,
            why,
        }
        .emit();
    };
    loop {
        let mut ready = tokio::select! {
            ready = w.fd.readable() => match ready {
                Ok(ready) => ready,
                Err(e) => {
                    stopped(FdStop::WaitFailed(&e));
                    return;
                }
            },
            _ = stop.wait_for(|stop| *stop) => return,
        };
        // Read until it would block (try_io then clears the readiness): every
        // `size` bytes are one firing.
        while let Ok(read) = ready.try_io(|fd| fd.get_ref().read(&mut buf[have..])) {
            match read {
                Ok(0) => {
                    stopped(FdStop::Ended);
                    return;
                }
                Ok(n) => have += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    stopped(FdStop::ReadFailed(&e));
                    return;
                }
            }
            if have < w.size {
                continue;
            }
            have = 0;
            let targets =
                std::iter::once((&alarms, &w.message)).chain(w.also.iter().map(|(a, m)| (a, m)));
            for (alarms, message) in targets {
                let fire = Fire {
                    alarms: alarms.clone(),
                    message: message.clone(),
                    source: source.clone(),
                    rule: rule.clone(),
                };
                let Some(events) = events.upgrade() else {
                    return;
                };
                if events.send(Event::Fire(fire)).await.is_err() {
                    // The engine has stopped: logalarm is ending.
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::Origin;
    use std::os::fd::AsFd;

    fn def(fd: &str) -> AlarmFdDef {
        AlarmFdDef {
            alarm: "a".into(),
            fd: fd.into(),
            size: 1,
            message: "m".into(),
            origin: Origin::Cli {
                flag: "--alarm-fd".into(),
                nth: 1,
            },
        }
    }

    fn error(fd: &str) -> String {
        match open(&def(fd)) {
            Ok(_) => panic!("{fd} opened"),
            Err(e) => e,
        }
    }

    #[tokio::test]
    async fn clear_errors() {
        assert!(error("/nonexistent/x.fifo").contains("does not exist"));
        assert!(error("/").contains("is a directory"));
        assert!(error("/etc/hostname").contains("regular file"));
        assert!(error("1").contains("stdout"));
        assert!(error("987").contains("is not open"));
    }

    #[tokio::test]
    async fn own_descriptors_are_not_taken() {
        // A descriptor this process opened itself has close-on-exec set.
        let own = File::open("/dev/null").unwrap();
        let n = std::os::fd::AsRawFd::as_raw_fd(&own);
        assert!(error(&n.to_string()).contains("was not inherited"));
        assert!(own.as_fd().try_clone_to_owned().is_ok(), "still open");
    }
}
