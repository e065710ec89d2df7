//! A datagram socket input: one datagram is one message (syslog's `/dev/log`
//! convention), read into one fixed buffer of [`MAX_MESSAGE`] bytes.
//!
//! A longer datagram is cut by the kernel; asking `recv(2)` with `MSG_TRUNC`
//! returns its real length, so the cut is reported (its first
//! [`MAX_MESSAGE`] bytes are still matched).

use super::batch::{BATCH, Builder, Piece};
use super::events::{DatagramCut, DatagramReadFailed, WaitFailed};
use super::{Damper, MAX_MESSAGE, WARN_EVERY, stopped};
use crate::input::EventSender;
use crate::input::events::InputStats;
use crate::internal_event::InternalEvent;
use logalarm_plugin_api::Source;
use nix::sys::socket::{MsgFlags, recv};
use std::io::{self, ErrorKind};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::Interest;
use tokio::net::UnixDatagram;
use tokio::sync::watch;

/// Reads datagrams until `stop` turns true or the engine is gone, counting
/// its incidents in `stats`.
pub async fn serve(
    socket: UnixDatagram,
    path: Arc<Path>,
    events: EventSender,
    mut stop: watch::Receiver<bool>,
    stats: &InputStats,
) {
    let shown = path.display().to_string();
    let mut out = Builder::new(Source::new("socket", path.as_os_str()));
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut cut = Damper::new(WARN_EVERY);
    let mut failed = Damper::new(WARN_EVERY);
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut stop) => return,
            () = events.closed() => return,
            ready = socket.readable() => if let Err(error) = ready {
                WaitFailed { stats, socket: &shown, error: &error }.emit();
                return;
            },
        }
        loop {
            let got = socket.try_io(Interest::READABLE, || {
                recv(socket.as_raw_fd(), &mut buf, MsgFlags::MSG_TRUNC).map_err(io::Error::from)
            });
            match got {
                Ok(len) => {
                    if len > buf.len() {
                        DatagramCut {
                            stats,
                            socket: &shown,
                            len,
                            report: cut.hit(),
                        }
                        .emit();
                    }
                    out.push(&buf[..len.min(buf.len())], Piece::Start);
                    if out.len() >= BATCH {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(error) => {
                    DatagramReadFailed {
                        stats,
                        socket: &shown,
                        error: &error,
                        report: failed.hit(),
                    }
                    .emit();
                    // Never spin on an error that repeats.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    break;
                }
            }
        }
        if out.send(&events).await.is_err() {
            return;
        }
    }
}
