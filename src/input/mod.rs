//! Inputs: where lines come from. Each input turns bytes into [`Batch`]es of
//! whole lines, tagged with their [`Source`], and sends them as [`Event`]s to
//! the one engine thread that matches them ([`crate::engine`]).
//!
//! - [`stdin`]: the process's standard input, passed through to stdout;
//! - [`reader::LineReader`]: the chunked line splitting every byte stream shares;
//! - [`passthrough::Passthrough`]: the unchanged copy of stdin (or a wrapped
//!   process's output) to logalarm's own stdout or stderr, written by a thread
//!   of its own through a bounded buffer, so that no reader of it can stall
//!   matching;
//! - [`follow`]: files followed like `tail -F`, through rotation and restarts;
//! - [`socket`]: unix datagram and stream sockets, with [`syslog`] headers split
//!   off each message;
//! - [`child`]: the stdout and stderr of the process `logalarm run` wraps;
//! - [`fd`]: uWSGI's `alarm-fd`, which fires alarms directly ([`Event::Fire`]).
//!
//! Each input counts its incidents (read errors, rotations, cut messages,
//! refused clients) in its [`events::InputStats`], through internal events
//! that log them too ([`events`]).

pub mod child;
pub mod component;
pub mod events;
pub mod fd;
pub mod follow;
pub mod passthrough;
pub mod reader;
pub mod socket;
pub mod stdin;
pub mod syslog;

use logalarm_plugin_api::{Source, Syslog};
use reader::Lines;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Batches an input may have sent that the engine has not yet taken: beyond
/// it, inputs wait (a pipe or a stream client then waits too), so memory stays
/// bounded whatever the input rate.
pub const EVENT_QUEUE: usize = 16;

/// What inputs send to the engine.
pub enum Event {
    /// Whole lines to match.
    Lines(Batch),
    /// Alarms to fire directly, without matching: a wrapped process ended
    /// (`on_exit`), a watched descriptor became readable (`alarm-fd`).
    Fire(Fire),
    /// Stop taking events: sent once by the run loop on a stop signal, after
    /// which inputs see their sends fail.
    Stop,
    /// Time passed: sent every [`TICK`] by the run loop, so that what is due
    /// without a new line (a digest's period ending, an expected line's
    /// absence, a multiline record's flush timeout) happens on time.
    Tick,
    /// An input's stream ended: stdin or a wrapped process's output at EOF,
    /// a stream socket's client gone, a followed file rotated away, truncated
    /// or no longer followed. What is held for that source alone (an open
    /// multiline record, [`crate::record`]) is closed now rather than on its
    /// timeout, and never mixed with lines of what comes next under the same
    /// source (the new file at a rotated path).
    Ended(Source),
}

/// How often [`Event::Tick`] is sent: the resolution of every timer of the
/// alarm policy stage.
pub const TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// The sending side every input holds.
pub type EventSender = mpsc::Sender<Event>;

/// Whole lines from one input.
pub struct Batch {
    /// Where the lines came from.
    pub source: Source,
    /// The lines, each ending in `\n` except possibly the last.
    pub lines: Lines,
    /// For inputs that parse a syslog header per message: each message's
    /// start offset in `lines` and its header, in offset order. Empty otherwise.
    pub headers: Vec<(usize, Arc<Syslog>)>,
    /// For followed files: the read position these lines reach, saved in the
    /// state directory once every alarm they fired has been delivered.
    pub mark: Option<Mark>,
}

impl Batch {
    /// A batch of plain lines (no syslog headers, no read position).
    pub fn plain(source: Source, lines: Lines) -> Self {
        Batch {
            source,
            lines,
            headers: Vec::new(),
            mark: None,
        }
    }
}

/// A read position in a followed file, reached by a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    /// The follower's id for the file.
    pub file: u64,
    /// The offset just past the batch's last byte, in bytes.
    pub offset: u64,
    /// A check of the bytes just before `offset`, saved with it: at restart
    /// it tells a file appended to from one truncated and written again.
    pub tail: follow::identity::Tail,
    /// Which file, the same in every run ([`follow::identity::Identity::key`]):
    /// with the line's offset, it makes the id of a notification of a line,
    /// so a line read again after a crash has the id it had before.
    pub key: u64,
}

/// Alarms to fire with one message, without matching rules.
pub struct Fire {
    /// Indexes of the alarms (into the plan's alarms).
    pub alarms: Vec<u32>,
    /// What to say: the message every alarm gets.
    pub message: Vec<u8>,
    /// What it is about.
    pub source: Source,
    /// Shown as the notification's rule (`on_exit`, `alarm-fd`).
    pub rule: Arc<str>,
}
