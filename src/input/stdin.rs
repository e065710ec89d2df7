//! The stdin input: reads the process's standard input to EOF in large chunks,
//! hands every read on to stdout's pass-through writer (a thread of its own,
//! [`Passthrough`]), and sends the whole lines to the engine.
//!
//! Runs on its own thread with blocking reads: a pipe is read at memory speed,
//! and a blocked read never holds up the async runtime. The lines of a read
//! reach the engine before this thread waits for room in a full pass-through
//! buffer (`passthrough_full = "block"`), so an alarm never waits on stdout's
//! reader; only the next read does.

use super::passthrough::Passthrough;
use super::reader::{LineReader, MAX_LINE};
use super::{Batch, Event, EventSender};
use logalarm_plugin_api::Source;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use tokio::sync::watch;

/// Reads `input` to its end, passing it through to `out` and its lines to
/// `events` as coming from `source`; `tap` sees every read too (a wrapped
/// process keeps its last lines). Returns when the input ends, the engine
/// stops taking events, or `stopped` says so after a read (what that read
/// returned is then neither passed through nor matched: it came after the stop).
///
/// Each read is handed to `out` whole, one copy per read and none per line;
/// when `out` has no room for all of it, the lines are sent first and the
/// rest of the read waits for room after (in a buffer kept across reads).
///
/// # Errors
/// A read error (other than `EINTR`).
pub fn pump(
    input: impl Read,
    source: &Source,
    mut out: Passthrough,
    events: &EventSender,
    mut tap: impl FnMut(&[u8]),
    stopped: impl Fn() -> bool,
) -> io::Result<()> {
    let mut reader = LineReader::new(input, MAX_LINE);
    // What of a read did not fit in a full pass-through buffer, until there is room.
    let mut held = Vec::new();
    loop {
        let read = reader.read()?;
        if stopped() {
            return Ok(());
        }
        let end = read.is_empty();
        let fitted = out.write_now(read);
        if fitted < read.len() {
            held.extend_from_slice(&read[fitted..]);
        }
        tap(read);
        let lines = if end {
            reader.take_rest()
        } else {
            reader.take_lines()
        };
        if let Some(lines) = lines {
            let batch = Batch::plain(source.clone(), lines);
            if events.blocking_send(Event::Lines(batch)).is_err() {
                return Ok(());
            }
        }
        if !held.is_empty() {
            out.write_rest(&held);
            held.clear();
        }
        if end {
            // What is held for this input alone (an open record) closes now.
            let _ = events.blocking_send(Event::Ended(source.clone()));
            return Ok(());
        }
    }
}

/// Runs [`pump`] over this process's stdin, passing through to `out` (stdout's
/// writer, or [`Passthrough::off`]), until EOF or `stop` turns true.
///
/// # Errors
/// Stdin cannot be duplicated, or a read error.
pub fn run(out: Passthrough, events: &EventSender, stop: &watch::Receiver<bool>) -> io::Result<()> {
    let input = File::from(io::stdin().as_fd().try_clone_to_owned()?);
    pump(
        input,
        &Source::stdin(),
        out,
        events,
        |_| {},
        || *stop.borrow(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::passthrough::Options;
    use std::sync::Arc;
    use tokio::sync::mpsc;

    #[test]
    fn a_read_is_matched_before_it_waits_for_a_full_pass_through() {
        // Nobody reads the pass-through pipe: it fills, and so does the buffer.
        let (reader, writer) = io::pipe().unwrap();
        let options = Options {
            buffer: 16,
            ..Options::default()
        };
        let out = Passthrough::to(writer.into(), "test", options, Arc::default()).unwrap();
        let input = b"line\n".repeat(40_000);
        let (events, mut rx) = mpsc::channel(16);
        let expected = input.len();
        let pumping = std::thread::spawn(move || {
            pump(&input[..], &Source::stdin(), out, &events, |_| {}, || false)
        });
        // One read holds it all: its lines come while pass-through still waits.
        let Some(Event::Lines(batch)) = rx.blocking_recv() else {
            panic!("no lines")
        };
        assert_eq!(batch.lines.len(), expected);
        assert!(!pumping.is_finished());
        // The reader goes away: pass-through stops, and the input goes on to its end.
        drop(reader);
        assert!(matches!(rx.blocking_recv(), Some(Event::Ended(_))));
        pumping.join().unwrap().unwrap();
    }
}
