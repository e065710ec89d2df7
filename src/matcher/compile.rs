//! Turns rule patterns into the two automata the scanner uses.
//!
//! - The *verifier* holds every rule (positive and negative) and answers, for one
//!   line, which rules match it, in a single overlapping pass.
//! - The *candidate* DFA search holds the positive rules that have no required
//!   literal (those are found by [`super::literals`]) and runs over a whole
//!   read buffer, ripgrep-style, so that lines no rule can match are skipped at
//!   prefilter speed. It must never miss a line the verifier would accept, so its
//!   patterns are rewritten to work on a buffer of lines: `\A`, `^` match at any
//!   line start, `\z`, `$` at any line end (before `\r\n` too), and no class may
//!   match `\n`, so a candidate match never runs across lines.
//!
//! Patterns are compiled for bytes (invalid UTF-8 is matched, never rejected).
//! Unicode mode is off where the pattern allows it: `\w`, `\d`, `\s`, `\b` and
//! case folding are ASCII, as in uWSGI's PCRE (compiled without `PCRE_UTF8`); it
//! keeps the lazy DFA small with a thousand rules. A pattern that needs Unicode
//! (`\p{Greek}`, a non-ASCII literal) is compiled with it on; `(?u)` turns it on.

use regex_automata::MatchKind;
use regex_automata::meta::{self, Regex};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::syntax;
use regex_syntax::ParserBuilder;
use regex_syntax::hir::{
    Class, ClassBytes, ClassBytesRange, ClassUnicode, ClassUnicodeRange, Hir, HirKind, Look,
};

/// The default of the `regex_size_limit` setting: 10 MiB of compiled
/// automaton (Thompson NFA) per rule. The patterns people write for alarms
/// take far less: every rule of the benches' 1000-rule Loghub sets (dense
/// and sparse, `benches/gen_rules.py`) compiles within 64 KiB, the least the
/// setting takes. `(?u)\w{5000}` would take 10 s and 910 MB to compile, and
/// is refused in milliseconds.
pub const DEFAULT_REGEX_SIZE_LIMIT: usize = 10 << 20;

/// Bytes of lazy-DFA cache per automaton: large enough that a thousand rules do
/// not thrash it into the slow fallback engine.
const DFA_CACHE_BYTES: usize = 64 << 20;
/// Upper bound on one automaton's NFA, in bytes.
const NFA_LIMIT_BYTES: usize = 512 << 20;

/// Parses one rule pattern to its HIR, Unicode mode off where the pattern allows.
///
/// # Errors
/// The parser's message (multi-line, with a caret under the fault).
pub fn parse(pattern: &str) -> Result<Hir, String> {
    let parse = |unicode: bool| {
        ParserBuilder::new()
            .unicode(unicode)
            .utf8(false)
            .build()
            .parse(pattern)
            .map_err(|e| e.to_string())
    };
    parse(false).or_else(|_| parse(true))
}

/// Checks that one rule's pattern compiles within `limit` bytes (the
/// `regex_size_limit` setting), before it is compiled with the others:
/// compiling stops as soon as the automaton outgrows the limit, so a
/// pattern too big costs milliseconds, not the seconds and gigabytes it
/// would take to finish.
///
/// # Errors
/// `regex too big: compiled size exceeds 10 MiB (regex_size_limit); …`
/// with the fix; any other failure of the compiler, as it says it.
pub fn check_size(hir: &Hir, limit: usize) -> Result<(), String> {
    let config = thompson::Config::new()
        .nfa_size_limit(Some(limit))
        .which_captures(WhichCaptures::None);
    match thompson::Compiler::new()
        .configure(config)
        .build_from_hir(hir)
    {
        Ok(_) => Ok(()),
        Err(e) if e.size_limit().is_some() => Err(format!(
            "regex too big: compiled size exceeds {} (regex_size_limit); simplify it (a counted repetition such as `\\w{{5000}}` compiles to thousands of states, and `(?u)` classes to hundreds each) or raise regex_size_limit (at most 1 GiB)",
            bytes(limit)
        )),
        Err(e) => Err(format!("regex does not compile: {e}")),
    }
}

/// A byte size as people read it: `10 MiB`, `64 KiB`, `1000 bytes`.
fn bytes(n: usize) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

fn config(kind: MatchKind, captures: WhichCaptures) -> meta::Config {
    meta::Config::new()
        .match_kind(kind)
        .utf8_empty(false)
        .nfa_size_limit(Some(NFA_LIMIT_BYTES))
        .hybrid_cache_capacity(DFA_CACHE_BYTES)
        .which_captures(captures)
}

fn build(hirs: &[Hir], kind: MatchKind, captures: WhichCaptures) -> Result<Regex, String> {
    meta::Builder::new()
        .configure(config(kind, captures))
        .syntax(syntax::Config::new().utf8(false).unicode(false))
        .build_many_from_hir(hirs)
        .map_err(|e| e.to_string())
}

/// Builds the verifier: all rules, overlapping (every matching rule is reported).
///
/// # Errors
/// The automaton outgrew its size limits.
pub fn verifier(hirs: &[Hir]) -> Result<Regex, String> {
    // Which rules match needs no match spans, so no capture slots: should the
    // lazy DFA give up on a huge rule set, the fallback engine's slot table
    // (NFA states x slots, gigabytes for a thousand rules) is never allocated.
    build(hirs, MatchKind::All, WhichCaptures::None)
}

/// Builds one rule's pattern for its capture groups (`caps.ip` in templates
/// and keys), run only on the lines that fire an alarm needing them; `None`
/// when the pattern has no group of its own.
///
/// # Errors
/// The automaton outgrew its size limits.
pub fn captures(hir: &Hir) -> Result<Option<Regex>, String> {
    if hir.properties().explicit_captures_len() == 0 {
        return Ok(None);
    }
    build(
        std::slice::from_ref(hir),
        MatchKind::LeftmostFirst,
        WhichCaptures::All,
    )
    .map(Some)
}

/// Builds one pattern on its own, for matching outside the scanner (a
/// multiline record's `continue` and `end` lines, a whole record against its
/// rule): the same syntax and byte semantics as the rules, within
/// [`DEFAULT_REGEX_SIZE_LIMIT`].
///
/// # Errors
/// The pattern is too big ([`check_size`]), or the automaton outgrew its
/// size limits.
pub fn single(hir: &Hir) -> Result<Regex, String> {
    check_size(hir, DEFAULT_REGEX_SIZE_LIMIT)?;
    build(
        std::slice::from_ref(hir),
        MatchKind::LeftmostFirst,
        WhichCaptures::Implicit,
    )
}

/// Builds the candidate search over a buffer of lines from the positive rules.
///
/// # Errors
/// The automaton outgrew its size limits.
pub fn candidate(hirs: &[Hir]) -> Result<Regex, String> {
    let rewritten: Vec<Hir> = hirs.iter().map(for_buffer).collect();
    build(
        &rewritten,
        MatchKind::LeftmostFirst,
        WhichCaptures::Implicit,
    )
}

/// Rewrites a per-line pattern so that, run over a buffer of `\n`-terminated
/// lines (optionally `\r\n`), it matches wherever the original matches inside one
/// of the lines, and never across a `\n`.
fn for_buffer(hir: &Hir) -> Hir {
    match hir.kind() {
        HirKind::Empty | HirKind::Literal(_) => hir.clone(),
        HirKind::Class(Class::Bytes(c)) => {
            let mut c = c.clone();
            c.difference(&ClassBytes::new([ClassBytesRange::new(b'\n', b'\n')]));
            Hir::class(Class::Bytes(c))
        }
        HirKind::Class(Class::Unicode(c)) => {
            let mut c = c.clone();
            c.difference(&ClassUnicode::new([ClassUnicodeRange::new('\n', '\n')]));
            Hir::class(Class::Unicode(c))
        }
        HirKind::Look(look) => Hir::look(match look {
            Look::Start => Look::StartLF,
            Look::End | Look::EndLF => Look::EndCRLF,
            other => *other,
        }),
        HirKind::Repetition(r) => {
            let mut r = r.clone();
            r.sub = Box::new(for_buffer(&r.sub));
            Hir::repetition(r)
        }
        HirKind::Capture(c) => {
            let mut c = c.clone();
            c.sub = Box::new(for_buffer(&c.sub));
            Hir::capture(c)
        }
        HirKind::Concat(subs) => Hir::concat(subs.iter().map(for_buffer).collect()),
        HirKind::Alternation(subs) => Hir::alternation(subs.iter().map(for_buffer).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_automata::Input;

    fn finds(pattern: &str, buffer: &[u8]) -> Option<usize> {
        let re = candidate(&[parse(pattern).unwrap()]).unwrap();
        re.find(Input::new(buffer)).map(|m| m.start())
    }

    #[test]
    fn anchors_work_per_line_in_a_buffer() {
        assert_eq!(finds(r"\AERROR", b"x\r\nERROR y\r\n"), Some(3));
        assert_eq!(finds(r"^ERROR", b"x\nERROR y\n"), Some(2));
        assert_eq!(finds(r"ERROR$", b"an ERROR\r\nnext\r\n"), Some(3));
        assert_eq!(finds(r"ERROR\z", b"an ERROR\nnext\n"), Some(3));
    }

    #[test]
    fn classes_never_cross_lines() {
        assert_eq!(finds(r"a\s+b", b"a\nb\n"), None);
        assert_eq!(finds(r"a[^x]*b", b"a\nb\n"), None);
        assert_eq!(finds(r"(?s)a.b", b"a\nb\nacb\n"), Some(4));
    }

    #[test]
    fn unicode_off_unless_needed() {
        // ASCII \w, as uWSGI's PCRE: the é is not a word character.
        assert_eq!(finds(r"caf\w", "café\n".as_bytes()), None);
        assert_eq!(finds(r"(?u)caf\w", "café\n".as_bytes()), Some(0));
        assert_eq!(finds(r"\p{Greek}+", "a λ\n".as_bytes()), Some(2));
        assert_eq!(finds("café", "le café\n".as_bytes()), Some(3));
        assert_eq!(finds(r"\xff", b"bad \xff byte\n"), Some(4));
        assert!(parse("a(b").unwrap_err().contains("unclosed group"));
    }

    #[test]
    fn a_pattern_too_big_is_refused_quickly_by_name() {
        let t = std::time::Instant::now();
        let e = check_size(&parse(r"(?u)\w{5000}").unwrap(), DEFAULT_REGEX_SIZE_LIMIT).unwrap_err();
        assert!(
            e.starts_with("regex too big: compiled size exceeds 10 MiB (regex_size_limit); "),
            "{e}"
        );
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
        assert!(check_size(&parse(r"(?u)\w{50}").unwrap(), DEFAULT_REGEX_SIZE_LIMIT).is_ok());
        assert!(check_size(&parse(r"\w{5000}").unwrap(), DEFAULT_REGEX_SIZE_LIMIT).is_ok());
        assert!(single(&parse(r"(?u)\w{5000}").unwrap()).is_err());
        assert_eq!(bytes(64 << 10), "64 KiB");
    }
}
