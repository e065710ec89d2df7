//! Required literals: for a rule, a small set of byte strings one of which every
//! match must contain (`Failed password for` in `Failed password for \S+ from`).
//!
//! Alarm rules are mostly long literal text with a few variable parts. Finding
//! candidate lines with one Aho-Corasick search for all the rules' literals
//! (as ripgrep does with its inner literals) is much faster than running a
//! thousand-pattern DFA over every byte, and its memory is fixed when it is
//! built, where such a DFA's cache thrashes and its engine falls back.

use regex_syntax::hir::{Hir, HirKind};

/// Literals shorter than this are not worth a prefilter: they occur everywhere.
pub const MIN_LEN: usize = 3;
/// Most literals one rule may contribute (an alternation of many words).
const MAX_PER_RULE: usize = 64;

/// A set of literals one of which every match contains, or `None` when the
/// rule has no such set worth using (too short, too many, or none at all).
pub fn required(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    let set = walk(hir)?;
    let shortest = set.iter().map(Vec::len).min()?;
    let clean = set.iter().all(|l| !l.contains(&b'\n'));
    (shortest >= MIN_LEN && clean && set.len() <= MAX_PER_RULE).then_some(set)
}

/// The best required set of `hir`, before the quality checks.
fn walk(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    match hir.kind() {
        HirKind::Literal(lit) => Some(vec![lit.0.to_vec()]),
        HirKind::Capture(c) => walk(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => walk(&r.sub),
        HirKind::Concat(subs) => subs.iter().filter_map(walk).max_by_key(|set| score(set)),
        HirKind::Alternation(subs) => {
            let mut all = Vec::new();
            for sub in subs {
                all.extend(walk(sub)?);
                if all.len() > MAX_PER_RULE {
                    return None;
                }
            }
            Some(all)
        }
        _ => None,
    }
}

/// Longer shortest literal first; fewer literals break ties.
fn score(set: &[Vec<u8>]) -> (usize, std::cmp::Reverse<usize>) {
    (
        set.iter().map(Vec::len).min().unwrap_or(0),
        std::cmp::Reverse(set.len()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::compile::parse;

    fn lits(pattern: &str) -> Option<Vec<String>> {
        required(&parse(pattern).unwrap()).map(|set| {
            set.into_iter()
                .map(|l| String::from_utf8(l).unwrap())
                .collect()
        })
    }

    #[test]
    fn picks_the_longest_required_piece() {
        assert_eq!(
            lits(r"Failed password for \S+ from"),
            Some(vec!["Failed password for ".into()])
        );
        assert_eq!(
            lits(r"^\d+ (ERROR|FATAL): \d+"),
            Some(vec!["ERROR".into(), "FATAL".into()])
        );
        assert_eq!(
            lits(r"^\d+ (ERROR|FATAL): disk"),
            Some(vec![": disk".into()])
        );
        assert_eq!(lits(r"(?:node-)+\d+ down"), Some(vec![" down".into()]));
    }

    #[test]
    fn refuses_what_cannot_prefilter() {
        assert_eq!(lits(r"\d+ms"), None); // "ms" is too short
        assert_eq!(lits(r"(?i)error"), None); // case-folded: classes, not literals
        assert_eq!(lits(r"(foo)?bar"), Some(vec!["bar".into()]));
        assert_eq!(lits(r"x(foo)?"), None);
        assert_eq!(lits(r"abc|\d+"), None);
    }
}
