//! The open records, one at most per input, and what closes them: their
//! lines, their caps, their timeout, their input's end.
//!
//! Both sinks of the scanner hold one: the router (which fires closed
//! records) and `logalarm test`'s report (which prints them). Closed records
//! come out through a callback, in the order they closed.

use super::Spec;
use crate::matcher::RecordLine;
use crate::text::cut;
use logalarm_plugin_api::{Source, Syslog};
use std::sync::Arc;
use std::time::Instant;

/// A closed record.
#[derive(Debug)]
pub struct Record {
    /// The input it came from.
    pub source: Source,
    /// The rule that opened it.
    pub rule: u32,
    /// Its lines joined by `\n` (no trailing `\n`); a cut record ends in a
    /// marker line saying where it was cut.
    pub message: Vec<u8>,
    /// Lines in it, the marker not counted.
    pub lines: usize,
    /// The line numbers of its first and last line, when the scanner counts lines.
    pub first: u64,
    /// See `first`.
    pub last: u64,
    /// It was cut at a cap.
    pub cut: bool,
    /// The rule's regex matches it (always true for a spec without its own
    /// `start`): it fires the rule's alarms.
    pub fires: bool,
    /// The syslog header of its first line, when its input parses them.
    pub header: Option<Arc<Syslog>>,
}

/// Where a record opens.
#[derive(Debug)]
pub struct Opening<'a> {
    /// The multiline rule whose `start` matched.
    pub rule: u32,
    /// The line (without `\n` and trailing `\r`).
    pub line: &'a [u8],
    /// Its number, when the scanner counts lines; else 0.
    pub number: u64,
    /// Its syslog header, when its input parses them.
    pub header: Option<Arc<Syslog>>,
}

/// A record still taking lines.
struct Open {
    source: Source,
    rule: u32,
    spec: Arc<Spec>,
    message: Vec<u8>,
    lines: usize,
    first: u64,
    last: u64,
    /// When its input last sent a line (of it).
    last_at: Instant,
    header: Option<Arc<Syslog>>,
    /// Already cut and sent: its further lines are taken and dropped.
    cut: bool,
}

impl Open {
    /// Adds a line; false when a cap cut the record (its marker is then added).
    fn add(&mut self, line: &[u8]) -> bool {
        if self.lines >= self.spec.max_lines {
            let max = self.spec.max_lines;
            self.mark(format_args!("{max} lines"));
            return false;
        }
        let sep = usize::from(!self.message.is_empty());
        let room = self.spec.max_bytes.saturating_sub(self.message.len() + sep);
        let (kept, was_cut) = cut(line, room);
        if was_cut {
            if !kept.is_empty() {
                self.message.extend_from_slice(&b"\n"[..sep]);
                self.message.extend_from_slice(kept);
                self.lines += 1;
            }
            let max = self.spec.max_bytes;
            self.mark(format_args!("{max} bytes"));
            return false;
        }
        self.message.extend_from_slice(&b"\n"[..sep]);
        self.message.extend_from_slice(line);
        self.lines += 1;
        true
    }

    fn mark(&mut self, at: std::fmt::Arguments<'_>) {
        if !self.message.is_empty() {
            self.message.push(b'\n');
        }
        self.message
            .extend_from_slice(format!("[logalarm: record cut at {at}]").as_bytes());
    }

    /// The record as it stands; a cut one stays open, empty, to drop the rest.
    fn take(&mut self, cut: bool) -> Record {
        let message = std::mem::take(&mut self.message);
        let body = if cut {
            // The rule's regex sees the record's lines, not the marker.
            let marker = memchr::memrchr(b'\n', &message).unwrap_or(0);
            &message[..marker]
        } else {
            &message[..]
        };
        let fires = self
            .spec
            .check
            .as_ref()
            .is_none_or(|check| check.is_match(body));
        Record {
            source: self.source.clone(),
            rule: self.rule,
            lines: self.lines,
            first: self.first,
            last: self.last,
            cut,
            fires,
            header: self.header.clone(),
            message,
        }
    }
}

/// The open records, at most one per input.
pub struct Assembler {
    /// Per rule (by index), its spec when it is a multiline rule.
    specs: Vec<Option<Arc<Spec>>>,
    open: Vec<Open>,
}

impl Assembler {
    /// An assembler for rules whose specs are `specs` (by rule index; `None`
    /// for single-line rules).
    pub fn new(specs: Vec<Option<Arc<Spec>>>) -> Self {
        Assembler {
            specs,
            open: Vec::new(),
        }
    }

    /// Whether no record is open (nothing can time out).
    pub fn is_idle(&self) -> bool {
        self.open.is_empty()
    }

    /// Whether a record is open for `source`.
    pub fn is_open(&self, source: &Source) -> bool {
        !self.open.is_empty() && self.open.iter().any(|o| o.source == *source)
    }

    /// Opens a record at `at` from `source`, read at `now`. A record still
    /// open for `source` is closed first; a record cut at its first line
    /// (longer than `max_bytes`) is closed at once: both go to `out`.
    pub fn open(
        &mut self,
        source: &Source,
        at: Opening<'_>,
        now: Instant,
        out: &mut impl FnMut(Record),
    ) {
        self.close(source, out);
        let Opening {
            rule,
            line,
            number,
            header,
        } = at;
        let Some(Some(spec)) = self.specs.get(rule as usize) else {
            return;
        };
        let mut open = Open {
            source: source.clone(),
            rule,
            spec: spec.clone(),
            message: Vec::with_capacity(line.len().min(spec.max_bytes) + 64),
            lines: 0,
            first: number,
            last: number,
            last_at: now,
            header,
            cut: false,
        };
        if !open.add(line) {
            out(open.take(true));
            open.cut = true;
        }
        self.open.push(open);
    }

    /// Offers `line` (numbered `number`, read at `now`) from `source` to its
    /// open record: see [`RecordLine`]. A record closed by it (or cut at a
    /// cap) goes to `out`.
    pub fn feed(
        &mut self,
        source: &Source,
        line: &[u8],
        number: u64,
        now: Instant,
        out: &mut impl FnMut(Record),
    ) -> RecordLine {
        let Some(i) = self.open.iter().position(|o| o.source == *source) else {
            return RecordLine::NotPart;
        };
        let open = &mut self.open[i];
        let spec = &open.spec;
        let last = spec.end.as_ref().is_some_and(|e| e.is_match(line));
        if !last && !spec.continue_.as_ref().is_some_and(|c| c.is_match(line)) {
            let mut open = self.open.swap_remove(i);
            if !open.cut {
                out(open.take(false));
            }
            return RecordLine::NotPart;
        }
        open.last_at = now;
        if !open.cut {
            if open.add(line) {
                open.last = number;
            } else {
                out(open.take(true));
                open.cut = true;
            }
        }
        if last {
            let mut open = self.open.swap_remove(i);
            if !open.cut {
                out(open.take(false));
            }
            RecordLine::Last
        } else {
            RecordLine::Taken
        }
    }

    /// Closes the records whose input sent no line for their timeout by `now`.
    pub fn expire(&mut self, now: Instant, out: &mut impl FnMut(Record)) {
        let mut i = 0;
        while i < self.open.len() {
            let o = &self.open[i];
            if now.saturating_duration_since(o.last_at) >= o.spec.timeout {
                let mut open = self.open.swap_remove(i);
                if !open.cut {
                    out(open.take(false));
                }
            } else {
                i += 1;
            }
        }
    }

    /// Closes the record open for `source` (its input ended), if any.
    pub fn close(&mut self, source: &Source, out: &mut impl FnMut(Record)) {
        if let Some(i) = self.open.iter().position(|o| o.source == *source) {
            let mut open = self.open.swap_remove(i);
            if !open.cut {
                out(open.take(false));
            }
        }
    }

    /// Closes every open record (the end: EOF, shutdown), oldest first.
    pub fn close_all(&mut self, out: &mut impl FnMut(Record)) {
        self.open.sort_by_key(|o| o.last_at);
        for mut open in self.open.drain(..) {
            if !open.cut {
                out(open.take(false));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::Origin;
    use crate::record::config::MultilineDef;
    use std::time::Duration;

    fn spec(f: impl FnOnce(&mut MultilineDef)) -> Arc<Spec> {
        let mut def = MultilineDef {
            preset: Some("python".into()),
            ..MultilineDef::new(Origin::Cli {
                flag: "x".into(),
                nth: 1,
            })
        };
        f(&mut def);
        Arc::new(Spec::compile(&def, "Error").unwrap())
    }

    fn opening(line: &str) -> Opening<'_> {
        Opening {
            rule: 0,
            line: line.as_bytes(),
            number: 1,
            header: None,
        }
    }

    fn file(name: &str) -> Source {
        Source::new("file", std::ffi::OsStr::new(name))
    }

    /// Feeds `lines` (the first opens) from `source`; returns the steps.
    fn run(
        a: &mut Assembler,
        source: &Source,
        lines: &[&str],
        now: Instant,
        out: &mut Vec<Record>,
    ) -> Vec<RecordLine> {
        let mut push = |r| out.push(r);
        a.open(source, opening(lines[0]), now, &mut push);
        lines[1..]
            .iter()
            .zip(2..)
            .map(|(l, n)| a.feed(source, l.as_bytes(), n, now, &mut push))
            .collect()
    }

    const TRACE: [&str; 4] = [
        "Traceback (most recent call last):",
        "  File \"x.py\", line 1, in <module>",
        "    1/0",
        "ZeroDivisionError: division by zero",
    ];

    #[test]
    fn end_line_closes_and_belongs() {
        let mut a = Assembler::new(vec![Some(spec(|_| {}))]);
        let mut out = Vec::new();
        let steps = run(&mut a, &file("a"), &TRACE, Instant::now(), &mut out);
        use RecordLine::*;
        assert_eq!(steps, [Taken, Taken, Last]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].message, TRACE.join("\n").as_bytes());
        assert_eq!(
            (out[0].lines, out[0].first, out[0].last, out[0].fires),
            (4, 1, 4, true)
        );
        assert!(a.is_idle());
    }

    #[test]
    fn other_line_closes_and_is_not_taken() {
        let mut a = Assembler::new(vec![Some(spec(|_| {}))]);
        let mut out = Vec::new();
        let steps = run(
            &mut a,
            &file("a"),
            &[TRACE[0], TRACE[1], "2024 INFO next"],
            Instant::now(),
            &mut out,
        );
        assert_eq!(steps, [RecordLine::Taken, RecordLine::NotPart]);
        assert_eq!(out[0].message, [TRACE[0], TRACE[1]].join("\n").as_bytes());
        // "Error" is not in it: it does not fire.
        assert!(!out[0].fires);
    }

    #[test]
    fn records_of_two_inputs_never_mix() {
        let mut a = Assembler::new(vec![Some(spec(|_| {}))]);
        let (x, y) = (file("x"), file("y"));
        let now = Instant::now();
        let mut out = Vec::new();
        let mut push = |r| out.push(r);
        a.open(&x, opening(TRACE[0]), now, &mut push);
        a.open(&y, opening(TRACE[0]), now, &mut push);
        for (n, line) in TRACE[1..].iter().enumerate() {
            a.feed(&x, line.as_bytes(), n as u64 + 2, now, &mut push);
            a.feed(&y, line.as_bytes(), n as u64 + 2, now, &mut push);
        }
        assert_eq!(out.len(), 2);
        assert_eq!((&out[0].source, &out[1].source), (&x, &y));
        assert!(out.iter().all(|r| r.message == TRACE.join("\n").as_bytes()));
    }

    #[test]
    fn caps_cut_mark_and_drop_the_rest() {
        let mut a = Assembler::new(vec![Some(spec(|d| d.max_lines = Some(2)))]);
        let mut out = Vec::new();
        let steps = run(&mut a, &file("a"), &TRACE, Instant::now(), &mut out);
        assert_eq!(
            steps,
            [RecordLine::Taken, RecordLine::Taken, RecordLine::Last]
        );
        assert_eq!(out.len(), 1);
        let want = format!(
            "{}\n{}\n[logalarm: record cut at 2 lines]",
            TRACE[0], TRACE[1]
        );
        assert_eq!(String::from_utf8_lossy(&out[0].message), want);
        assert!(out[0].cut);
        // The regex sees the lines, not the marker ("Error" is in neither here).
        assert!(!out[0].fires);

        let mut a = Assembler::new(vec![Some(spec(|d| d.max_bytes = Some(40)))]);
        let mut out = Vec::new();
        run(&mut a, &file("a"), &TRACE, Instant::now(), &mut out);
        assert_eq!(out.len(), 1);
        let want = format!(
            "{}\n{}\n[logalarm: record cut at 40 bytes]",
            TRACE[0],
            &TRACE[1][..40 - TRACE[0].len() - 1]
        );
        assert_eq!(String::from_utf8_lossy(&out[0].message), want);
    }

    #[test]
    fn timeout_and_input_end_close() {
        let mut a = Assembler::new(vec![Some(spec(|d| {
            d.timeout = Some(Duration::from_millis(500));
        }))]);
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut push = |r| out.push(r);
        a.open(&file("a"), opening(TRACE[0]), t0, &mut push);
        a.open(&file("b"), opening(TRACE[0]), t0, &mut push);
        a.feed(
            &file("a"),
            TRACE[1].as_bytes(),
            2,
            t0 + Duration::from_millis(300),
            &mut push,
        );
        a.expire(t0 + Duration::from_millis(600), &mut push);
        assert!(a.is_open(&file("a")) && !a.is_open(&file("b")));
        a.close(&file("a"), &mut push);
        assert!(a.is_idle());
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].source, file("b"));
        assert_eq!(out[1].lines, 2);
    }
}
