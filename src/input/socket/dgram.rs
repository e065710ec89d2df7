//! A datagram socket input: one datagram is one message (syslog's `/dev/log`
//! convention), read into one fixed buffer of [`MAX_MESSAGE`] bytes.
//!
//! A longer datagram is cut by the kernel; asking `recv(2)` with `MSG_TRUNC`
//! returns its real length, so the cut is reported (its first
//! [`MAX_MESSAGE`] bytes are still matched).

use super::batch::{BATCH, Builder, Piece};
use super::{Damper, MAX_MESSAGE, WARN_EVERY, more, stopped};
use crate::input::EventSender;
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

/// Reads datagrams until `stop` turns true or the engine is gone.
pub async fn serve(
    socket: UnixDatagram,
    path: Arc<Path>,
    events: EventSender,
    mut stop: watch::Receiver<bool>,
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
            ready = socket.readable() => if let Err(e) = ready {
                tracing::error!(socket = %shown, "cannot wait for datagrams: {e}");
                return;
            },
        }
        loop {
            let got = socket.try_io(Interest::READABLE, || {
                recv(socket.as_raw_fd(), &mut buf, MsgFlags::MSG_TRUNC).map_err(io::Error::from)
            });
            match got {
                Ok(len) => {
                    if len > buf.len()
                        && let Some(held) = cut.hit()
                    {
                        tracing::warn!(
                            socket = %shown,
                            "a datagram of {len} bytes was cut to {MAX_MESSAGE}{}",
                            more(held)
                        );
                    }
                    out.push(&buf[..len.min(buf.len())], Piece::Start);
                    if out.len() >= BATCH {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    if let Some(held) = failed.hit() {
                        tracing::warn!(socket = %shown, "reading a datagram failed: {e}{}", more(held));
                    }
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
