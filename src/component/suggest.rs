//! "Did you mean …?" for unknown keys, shared by the config sources and the
//! plan's check of plugin keys.
//!
//! The measure is Jaro-Winkler similarity (`strsim`, the one clap uses for
//! its own suggestions) with a floor of [`MIN_SIMILARITY`]: it favours a
//! shared beginning, which is how key typos look (`acton`, `treshold`,
//! `alram_freq`), and it does not suggest `key` for any three-letter word as
//! an edit distance of 2 would.

/// The least Jaro-Winkler similarity for a known key to be suggested.
pub const MIN_SIMILARITY: f64 = 0.8;

/// The known key most like `word`, if one is alike enough.
pub fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(word, k), *k))
        .filter(|(score, _)| *score >= MIN_SIMILARITY)
        // The first of equal scores wins, so the answer follows `known`'s order.
        .fold(None, |best: Option<(f64, &str)>, (score, k)| match best {
            Some((b, _)) if b >= score => best,
            _ => Some((score, k)),
        })
        .map(|(_, k)| k)
}

/// The fix for the unknown key `word`: "did you mean `x`?" when one of
/// `known` is close, else the list of what `what` takes.
pub fn fix(word: &str, known: &[&str], what: &str) -> String {
    match closest(word, known) {
        Some(k) => format!("did you mean `{k}`?"),
        None => format!("{what} takes {}", known.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_typo_and_not_a_stranger() {
        let keys = ["action", "timeout", "queue_size", "key", "threshold"];
        assert_eq!(closest("acton", &keys), Some("action"));
        assert_eq!(closest("treshold", &keys), Some("threshold"));
        assert_eq!(closest("timout", &keys), Some("timeout"));
        assert_eq!(closest("colour", &keys), None);
        assert_eq!(closest("env", &keys), None);
        assert_eq!(
            fix("colour", &keys, "an alarm"),
            "an alarm takes action, timeout, queue_size, key, threshold"
        );
    }
}
