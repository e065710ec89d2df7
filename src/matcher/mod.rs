//! The matcher: every line against every rule in one pass, never rule by rule.
//!
//! [`Scanner::scan`] takes a buffer of whole lines, as read. A candidate search
//! over the whole buffer skips the lines no rule can fire on: one Aho-Corasick
//! search for the literals the rules require ([`literals`]), and one DFA search
//! for the rules without such literals. Each line it stops on is then checked
//! by one overlapping pass of all rules, which yields the matching rules in
//! rule order. The scanner applies uWSGI's rule semantics — a matching
//! negative rule (`not-log-alarm`) skips the rules after it; an alarm fires at
//! most once per line — and hands the result to a [`Sink`], which knows nothing
//! of regexes (as ripgrep's searcher hands matches to its printer).
//!
//! Per line the scanner allocates nothing, takes no lock and makes no syscall.
//!
//! Multiline records ([`crate::record`]): a rule marked [`Rule::record`] does
//! not fire on the line it matches but opens a record there
//! ([`LineMatch::opened`]). The scanner then hands the sink the lines that
//! follow, one by one ([`Sink::record_line`]), until the sink says one is not
//! part of the record; that line is scanned as usual. A block whose input
//! has a record open ([`Sink::in_record`]) starts the same way. While no
//! record is open, the scan is the candidate search above, unchanged.

pub mod compile;
pub mod literals;

use aho_corasick::AhoCorasick;
use logalarm_plugin_api::{JSON_TAG, TAG, UWSGI_TAG};
use regex_automata::meta::{Cache, Regex};
use regex_automata::{Input, PatternSet};
use regex_syntax::hir::Hir;

/// One rule as the matcher needs it.
#[derive(Clone, Debug)]
pub struct Rule {
    /// A negative rule: skips the rules after it.
    pub negate: bool,
    /// Indexes of the alarms it fires.
    pub alarms: Vec<u32>,
    /// A multiline rule: its pattern is its record's `start` regex; a line
    /// matching it opens a record instead of firing.
    pub record: bool,
}

/// An alarm fired by a line, and the first rule (in rule order) that fired it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    /// Index of the alarm.
    pub alarm: u32,
    /// Index of the rule.
    pub rule: u32,
}

/// What one line matched.
#[derive(Debug)]
pub struct LineMatch<'a> {
    /// The line without `\n` and without a trailing `\r`.
    pub line: &'a [u8],
    /// Where the line starts in the block given to [`Scanner::scan`] (bytes).
    pub offset: usize,
    /// 1-based line number, when the scanner counts lines; else 0.
    pub number: u64,
    /// The rules that matched and were evaluated, in order (after a stopping
    /// negative rule, only hidden ones).
    pub rules: &'a [u32],
    /// The negative rule that skipped the rules after it, if one did.
    pub stopped_by: Option<u32>,
    /// The alarms to fire, each once, in rule order.
    pub hits: &'a [Hit],
    /// The multiline rule that opens a record at this line: the first one in
    /// rule order that matched and was evaluated (its alarms are not in `hits`).
    pub opened: Option<u32>,
}

/// What a sink says of a line offered to its open record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordLine {
    /// Part of the record, which stays open.
    Taken,
    /// Part of the record, and its last line: the record is closed.
    Last,
    /// Not part of it (or no record is open): the record, if any, is closed,
    /// and the line is to be scanned as its own.
    NotPart,
}

/// Receives the lines that matched at least one rule.
pub trait Sink {
    /// Called once per line that matched at least one rule (positive or negative).
    fn matched(&mut self, m: &LineMatch<'_>);

    /// Called for a line a rule matched that starts with the anti-loop tag
    /// (see [`is_tagged`]): it fires nothing. `number` as in
    /// [`LineMatch::number`]. For reports (`logalarm test
    /// --print-all-ignored`); the router ignores it.
    fn tagged(&mut self, line: &[u8], number: u64) {
        let _ = (line, number);
    }

    /// Whether a record is open for the block about to be scanned (its input
    /// left one open in an earlier block). Asked once per block.
    fn in_record(&self) -> bool {
        false
    }

    /// Offers the open record the next line (without `\n` and trailing `\r`;
    /// `number` as in [`LineMatch::number`]). Called after a line that opened
    /// a record, and at the start of a block while [`Sink::in_record`].
    fn record_line(&mut self, line: &[u8], number: u64) -> RecordLine {
        let _ = (line, number);
        RecordLine::NotPart
    }
}

/// Compiled rules, shareable between scanners.
#[derive(Debug)]
pub struct Matcher {
    /// Candidate searches for the rules with required literals, each over at
    /// most [`LITERALS_PER_SEARCH`] literals.
    literals: Vec<AhoCorasick>,
    /// Candidate search for the other rules.
    candidate: Option<Regex>,
    verifier: Regex,
    rules: Vec<Rule>,
    alarms: usize,
    /// Rules from this index on are hidden ones (expected and recovery
    /// lines): a matching negative rule does not skip them.
    hidden_from: usize,
}

/// Literals per Aho-Corasick search: small enough for its SIMD prefilter.
pub const LITERALS_PER_SEARCH: usize = 64;

/// Marks a literal search with no more hits in the block.
const NO_MORE: usize = usize::MAX;

/// Counts kept by a scanner.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Lines that would have matched but start with the anti-loop tag.
    pub tagged: u64,
    /// Lines that matched at least one rule.
    pub matched: u64,
}

impl Matcher {
    /// Compiles rules, given as their parsed patterns ([`compile::parse`]) and
    /// rules, in rule order; `alarms` is
    /// the number of alarms the rules index into. With `report_negative`, lines
    /// that match only negative rules reach the sink too (for `logalarm test`);
    /// otherwise the candidate search skips them, as they can fire nothing.
    ///
    /// # Errors
    /// A message when the combined automata outgrow their size limits.
    pub fn new(
        hirs: &[Hir],
        rules: Vec<Rule>,
        alarms: usize,
        report_negative: bool,
    ) -> Result<Matcher, String> {
        // Rules with required literals are found by one Aho-Corasick search; the
        // rest by one DFA search.
        let mut lits: Vec<Vec<u8>> = Vec::new();
        let mut others: Vec<Hir> = Vec::new();
        for (hir, _) in hirs
            .iter()
            .zip(&rules)
            .filter(|(_, r)| report_negative || !r.negate)
        {
            match literals::required(hir) {
                Some(set) => lits.extend(set),
                None => others.push(hir.clone()),
            }
        }
        // Leftmost semantics and small literal sets let each search use its SIMD
        // (Teddy) prefilter; one automaton over hundreds of literals cannot.
        let literals = lits
            .chunks(LITERALS_PER_SEARCH)
            .map(|chunk| {
                AhoCorasick::builder()
                    .match_kind(aho_corasick::MatchKind::LeftmostFirst)
                    .build(chunk)
                    .map_err(|e| format!("the rules' literals: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let candidate = if others.is_empty() {
            None
        } else {
            Some(compile::candidate(&others)?)
        };
        let verifier = compile::verifier(hirs)?;
        let hidden_from = rules.len();
        Ok(Matcher {
            literals,
            candidate,
            verifier,
            rules,
            alarms,
            hidden_from,
        })
    }

    /// Marks the rules from index `first` on as hidden: they fire no alarm
    /// of their own, and a matching negative rule does not skip them (they
    /// stand for expected and recovery lines, which the rules' order does
    /// not concern).
    pub fn hide_from(mut self, first: usize) -> Self {
        self.hidden_from = first;
        self
    }

    /// A scanner over these rules; `count_lines` makes it number lines (for reports).
    pub fn scanner(&self, count_lines: bool) -> Scanner<'_> {
        Scanner {
            matcher: self,
            candidate_cache: self.candidate.as_ref().map(Regex::create_cache),
            lit_next: vec![None; self.literals.len()],
            verifier_cache: self.verifier.create_cache(),
            set: PatternSet::new(self.verifier.pattern_len()),
            stamps: vec![0; self.alarms],
            epoch: 0,
            rules: Vec::with_capacity(self.rules.len()),
            hits: Vec::with_capacity(self.alarms),
            count_lines,
            counted_to: 0,
            line_no: 0,
            stats: ScanStats::default(),
        }
    }
}

/// Scans buffers of lines; holds the per-scan caches so that scanning allocates nothing.
pub struct Scanner<'m> {
    matcher: &'m Matcher,
    candidate_cache: Option<Cache>,
    /// Per literal search: its next hit at or after the scan position (`None`:
    /// to be searched; [`NO_MORE`]: none left in the block).
    lit_next: Vec<Option<usize>>,
    verifier_cache: Cache,
    set: PatternSet,
    /// `stamps[alarm] == epoch` when the alarm already fired on the current line.
    stamps: Vec<u64>,
    epoch: u64,
    rules: Vec<u32>,
    hits: Vec<Hit>,
    count_lines: bool,
    counted_to: usize,
    line_no: u64,
    stats: ScanStats,
}

fn newlines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// True for lines logalarm (or uWSGI's alarm subsystem) wrote itself: text
/// lines start with [`TAG`] (or [`UWSGI_TAG`]), JSON lines (`--log-format
/// json`) with [`JSON_TAG`]. Asked only of lines a rule matched, so the third
/// test costs nothing on the lines that matter for speed.
#[inline]
pub fn is_tagged(line: &[u8]) -> bool {
    line.starts_with(TAG.as_bytes())
        || line.starts_with(UWSGI_TAG.as_bytes())
        || line.starts_with(JSON_TAG.as_bytes())
}

impl Scanner<'_> {
    /// Counts so far.
    pub fn stats(&self) -> ScanStats {
        self.stats
    }

    /// Lines scanned so far, when counting lines.
    pub fn lines(&self) -> u64 {
        self.line_no
    }

    /// Scans `block`: whole lines, each ending in `\n`, except that the last one
    /// may lack it (the last line of the input, or a piece of an over-long line).
    pub fn scan(&mut self, block: &[u8], sink: &mut impl Sink) {
        // Taken out for the loop (and put back), so that `self.line` can borrow `self`.
        let mut cache = self.candidate_cache.take();
        let terminated = block.last() == Some(&b'\n');
        let mut lit_next = std::mem::take(&mut self.lit_next);
        lit_next.fill(None);
        let candidate = &self.matcher.candidate;
        // The next hit of the DFA search at or after `pos`; `None` once it has no more.
        let (mut next_dfa, mut dfa_live) = (None, candidate.is_some());
        let mut pos = 0;
        if sink.in_record() {
            pos = self.feed(block, 0, sink);
        }
        while pos < block.len() {
            let mut next_lit = None;
            for (ac, next) in self.matcher.literals.iter().zip(lit_next.iter_mut()) {
                if next.is_none_or(|at| at < pos) {
                    let hit = ac.find(aho_corasick::Input::new(block).range(pos..));
                    *next = Some(hit.map_or(NO_MORE, |m| m.start()));
                }
                if let Some(at) = *next
                    && at != NO_MORE
                {
                    next_lit = Some(next_lit.map_or(at, |n: usize| n.min(at)));
                }
            }
            if let (Some(re), Some(cache)) = (candidate, cache.as_mut())
                && dfa_live
                && next_dfa.is_none_or(|at| at < pos)
            {
                // Forward only, stopping at the first match state: the line holding
                // the end of the earliest-ending match is the first line worth
                // verifying (no candidate match crosses a `\n`: see
                // `compile::for_buffer`). An empty match after the last `\n` is no line.
                let input = Input::new(block).range(pos..).earliest(true);
                next_dfa = re
                    .search_half_with(cache, &input)
                    .map(|m| m.offset())
                    .filter(|&at| !(at == block.len() && terminated));
                dfa_live = next_dfa.is_some();
            }
            let at = match (next_lit, next_dfa) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => break,
            };
            let start = memchr::memrchr(b'\n', &block[pos..at]).map_or(pos, |i| pos + i + 1);
            let end = memchr::memchr(b'\n', &block[at..]).map_or(block.len(), |i| at + i);
            if self.count_lines {
                self.line_no += newlines(&block[self.counted_to..start]) + 1;
                self.counted_to = end + 1;
            }
            let opened = self.line(&block[start..end], start, sink);
            pos = end + 1;
            if opened {
                pos = self.feed(block, pos, sink);
            }
        }
        self.candidate_cache = cache;
        self.lit_next = lit_next;
        if self.count_lines {
            // The lines after the last match; an unterminated last line counts too.
            if let Some(rest) = block.get(self.counted_to..) {
                self.line_no +=
                    newlines(rest) + u64::from(rest.last().is_some_and(|&b| b != b'\n'));
            }
            self.counted_to = 0;
        }
    }

    /// Hands the sink's open record the lines of `block` from `pos` on, until
    /// one is not part of it or the record ends; returns where scanning goes on.
    #[cold]
    #[inline(never)]
    fn feed(&mut self, block: &[u8], mut pos: usize, sink: &mut impl Sink) -> usize {
        while pos < block.len() {
            let end = memchr::memchr(b'\n', &block[pos..]).map_or(block.len(), |i| pos + i);
            let raw = &block[pos..end];
            let line = raw.strip_suffix(b"\r").unwrap_or(raw);
            let number = if self.count_lines {
                self.line_no + newlines(&block[self.counted_to.min(pos)..pos]) + 1
            } else {
                0
            };
            let step = sink.record_line(line, number);
            if step == RecordLine::NotPart {
                return pos;
            }
            if self.count_lines {
                self.line_no = number;
                self.counted_to = end + 1;
            }
            pos = end + 1;
            if step == RecordLine::Last {
                break;
            }
        }
        pos
    }

    /// Evaluates one line (without its `\n`); true when it opened a record.
    fn line(&mut self, raw: &[u8], offset: usize, sink: &mut impl Sink) -> bool {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        self.set.clear();
        self.matcher.verifier.which_overlapping_matches_with(
            &mut self.verifier_cache,
            &Input::new(line),
            &mut self.set,
        );
        if self.set.is_empty() {
            return false;
        }
        if is_tagged(line) {
            self.stats.tagged += 1;
            sink.tagged(line, self.line_no);
            return false;
        }
        self.stats.matched += 1;
        self.epoch += 1;
        self.rules.clear();
        self.hits.clear();
        let mut stopped_by = None;
        let mut opened = None;
        for pid in self.set.iter() {
            let index = pid.as_usize();
            if stopped_by.is_some() {
                if index >= self.matcher.hidden_from {
                    self.rules.push(index as u32);
                }
                continue;
            }
            let rule = &self.matcher.rules[index];
            let index = index as u32;
            self.rules.push(index);
            if rule.negate {
                stopped_by = Some(index);
                continue;
            }
            if rule.record {
                opened = opened.or(Some(index));
                continue;
            }
            for &alarm in &rule.alarms {
                let stamp = &mut self.stamps[alarm as usize];
                if *stamp != self.epoch {
                    *stamp = self.epoch;
                    self.hits.push(Hit { alarm, rule: index });
                }
            }
        }
        sink.matched(&LineMatch {
            line,
            offset,
            number: self.line_no,
            rules: &self.rules,
            stopped_by,
            hits: &self.hits,
            opened,
        });
        opened.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Seen = (u64, Vec<u8>, Vec<Hit>, Option<u32>);
    #[derive(Default)]
    struct Collect(Vec<Seen>);
    impl Sink for Collect {
        fn matched(&mut self, m: &LineMatch<'_>) {
            self.0
                .push((m.number, m.line.to_vec(), m.hits.to_vec(), m.stopped_by));
        }
    }

    fn matcher(
        patterns: &[&str],
        rules: Vec<Rule>,
        alarms: usize,
        report_negative: bool,
    ) -> Result<Matcher, String> {
        let hirs: Vec<Hir> = patterns
            .iter()
            .map(|p| compile::parse(p))
            .collect::<Result<_, _>>()?;
        Matcher::new(&hirs, rules, alarms, report_negative)
    }

    fn rule(negate: bool, alarms: &[u32]) -> Rule {
        Rule {
            negate,
            alarms: alarms.to_vec(),
            record: false,
        }
    }

    #[test]
    fn tagged_lines_text_json_and_uwsgi() {
        for line in [
            &b"[logalarm] 2026-12-04T17:40:00.123Z ALARM: x"[..],
            b"[logalarm",
            b"[uwsgi-alarm] x",
            b"{\"tag\":\"[logalarm]\",\"time\":\"2026-12-04T17:40:00.123Z\"}",
        ] {
            assert!(is_tagged(line), "{}", String::from_utf8_lossy(line));
        }
        for line in [
            &b" [logalarm"[..],
            b"{\"tag\":\"[logalarmx\"",
            b"{\"tag\": \"[logalarm]\"",
            b"{\"time\":\"x\",\"tag\":\"[logalarm]\"}",
            b"{\"tag\":\"[uwsgi-alarm]\"",
        ] {
            assert!(!is_tagged(line), "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn order_negation_and_once_per_line() {
        let m = matcher(
            &["ALARM", "DEBUG", "ALARM|BOOM"],
            vec![rule(false, &[0]), rule(true, &[0]), rule(false, &[0, 1])],
            2,
            false,
        )
        .unwrap();
        let mut s = m.scanner(true);
        let mut out = Collect::default();
        s.scan(
            b"ok\r\nALARM one\r\nDEBUG BOOM\nDEBUG ALARM\n[logalarm] ALARM\nlast BOOM",
            &mut out,
        );
        let hit = |alarm, rule| Hit { alarm, rule };
        assert_eq!(
            out.0,
            vec![
                (2, b"ALARM one".to_vec(), vec![hit(0, 0), hit(1, 2)], None),
                (3, b"DEBUG BOOM".to_vec(), vec![], Some(1)),
                (4, b"DEBUG ALARM".to_vec(), vec![hit(0, 0)], Some(1)),
                (6, b"last BOOM".to_vec(), vec![hit(0, 2), hit(1, 2)], None),
            ]
        );
        assert_eq!(s.lines(), 6);
        assert_eq!(
            s.stats(),
            ScanStats {
                tagged: 1,
                matched: 4
            }
        );
    }

    #[test]
    fn literal_and_dfa_candidates_interleave() {
        // "ALARM" is found by its literal, `\d{3}$` by the DFA; lines alternate.
        let m = matcher(
            &["ALARM", r"\d{3}$"],
            vec![rule(false, &[0]), rule(false, &[1])],
            2,
            false,
        )
        .unwrap();
        let mut out = Collect::default();
        let mut s = m.scanner(true);
        s.scan(b"x 123\nALARM\nnone\nALARM 456\r\nabc\n789", &mut out);
        let seen: Vec<(u64, &[u8])> = out
            .0
            .iter()
            .map(|(n, l, _, _)| (*n, l.as_slice()))
            .collect();
        assert_eq!(
            seen,
            vec![
                (1, &b"x 123"[..]),
                (2, b"ALARM"),
                (4, b"ALARM 456"),
                (6, b"789")
            ]
        );
        assert_eq!(
            out.0[2].2,
            vec![Hit { alarm: 0, rule: 0 }, Hit { alarm: 1, rule: 1 }]
        );
        assert_eq!(s.lines(), 6);
    }

    #[test]
    fn literals_spread_over_several_searches() {
        // More rules than one literal search holds: hits in either search are found, in order.
        let n = LITERALS_PER_SEARCH + 6;
        let patterns: Vec<String> = (0..n).map(|i| format!("marker{i:03}x")).collect();
        let refs: Vec<&str> = patterns.iter().map(String::as_str).collect();
        let rules = (0..n).map(|i| rule(false, &[i as u32])).collect();
        let m = matcher(&refs, rules, n, false).unwrap();
        let block = format!(
            "a marker{:03}x\nnone\nmarker000x\nmarker{:03}x b\n",
            n - 1,
            n - 2
        );
        let mut out = Collect::default();
        m.scanner(true).scan(block.as_bytes(), &mut out);
        let seen: Vec<(u64, u32)> = out.0.iter().map(|(l, _, h, _)| (*l, h[0].rule)).collect();
        assert_eq!(seen, vec![(1, n as u32 - 1), (3, 0), (4, n as u32 - 2)]);
    }

    /// A sink whose records take the lines starting with a space, and end at
    /// a line starting with `END`.
    #[derive(Default)]
    struct Records {
        open: bool,
        /// (number, line, opened) of each line matched.
        matched: Vec<(u64, Vec<u8>, Option<u32>)>,
        /// (number, line) of each line taken into a record.
        taken: Vec<(u64, Vec<u8>)>,
    }
    impl Sink for Records {
        fn matched(&mut self, m: &LineMatch<'_>) {
            self.matched.push((m.number, m.line.to_vec(), m.opened));
            self.open |= m.opened.is_some();
        }
        fn in_record(&self) -> bool {
            self.open
        }
        fn record_line(&mut self, line: &[u8], number: u64) -> RecordLine {
            if !self.open {
                return RecordLine::NotPart;
            }
            if line.starts_with(b"END") {
                self.open = false;
                self.taken.push((number, line.to_vec()));
                return RecordLine::Last;
            }
            if !line.starts_with(b" ") {
                self.open = false;
                return RecordLine::NotPart;
            }
            self.taken.push((number, line.to_vec()));
            RecordLine::Taken
        }
    }

    #[test]
    fn records_take_the_lines_after_their_opener_across_blocks() {
        // Rule 0 is negative on "DEBUG"; rule 1 opens records on "BEGIN";
        // rule 2 fires on "x" (also inside records, where it must not be evaluated).
        let record = Rule {
            negate: false,
            alarms: vec![0],
            record: true,
        };
        let m = matcher(
            &["DEBUG", "BEGIN", "x"],
            vec![rule(true, &[0]), record, rule(false, &[1])],
            2,
            false,
        )
        .unwrap();
        let mut s = m.scanner(true);
        let mut out = Records::default();
        s.scan(
            b"a
BEGIN x
 x1
 x2
next x
BEGIN
 y",
            &mut out,
        );
        // The record is still open at the block's end: the next block starts in it.
        s.scan(
            b" z
END x
x after
DEBUG BEGIN
",
            &mut out,
        );
        let lines = |v: &[(u64, &str)]| -> Vec<(u64, Vec<u8>)> {
            v.iter().map(|(n, l)| (*n, l.as_bytes().to_vec())).collect()
        };
        assert_eq!(
            out.taken,
            lines(&[(3, " x1"), (4, " x2"), (7, " y"), (8, " z"), (9, "END x")])
        );
        let matched: Vec<(u64, &[u8], Option<u32>)> = out
            .matched
            .iter()
            .map(|(n, l, o)| (*n, l.as_slice(), *o))
            .collect();
        assert_eq!(
            matched,
            vec![
                (2, &b"BEGIN x"[..], Some(1)),
                (5, b"next x", None),
                (6, b"BEGIN", Some(1)),
                (10, b"x after", None),
                // A negative rule before the opener stops it, as any rule.
                (11, b"DEBUG BEGIN", None),
            ]
        );
        assert_eq!(s.lines(), 11);
    }

    #[test]
    fn empty_matches_do_not_invent_lines() {
        let m = matcher(&["^$"], vec![rule(false, &[0])], 1, false).unwrap();
        let mut out = Collect::default();
        m.scanner(false).scan(b"a\n\r\nb\n", &mut out);
        assert_eq!(out.0.len(), 1);
        assert_eq!(out.0[0].1, b"");
    }
}
