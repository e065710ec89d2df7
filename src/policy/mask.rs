//! The "unique error" key of a message: the message with its variable parts
//! masked, so that `Failed password for root from 1.2.3.4 port 22` and the
//! same from `5.6.7.8 port 4242` are one error seen twice, as failnozzle and
//! Sentry group them. Digests ([`super::digest`]) group by it.
//!
//! What is masked, in this order of preference where two could start at the
//! same place:
//!
//! | what | becomes |
//! |---|---|
//! | UUIDs (`123e4567-e89b-12d3-a456-426614174000`) | `<uuid>` |
//! | dates and times: ISO 8601 / RFC 3339 (`2024-05-01T12:00:00.123Z`, `2024-05-01 12:00:00,123`), syslog and ctime (`Dec 10 06:55:46`, `Sun Dec 04 04:47:44 2005`), times of day (`12:00:00.123`) | `<time>` |
//! | IPv4 and IPv6 addresses, with an optional `:port` (`[::1]:22` for IPv6) | `<ip>` |
//! | hex ids: `0x…`, or runs of ≥ 8 hex digits holding both a digit and a letter | `<hex>` |
//! | other numbers (`42`, `-7`, `3.14`; runs of decimal digits of any length) | `<n>` |
//!
//! A token is masked only where it starts a word: a digit right after an ASCII
//! letter or digit is part of a name (`ssh2`, `user1`, `md5`) and stays, while
//! `_`, `-` and punctuation separate (`blk_-6952…` → `blk_<n>`, `uid=0` →
//! `uid=<n>`). A number followed by letters is still masked (`10ms` → `<n>ms`).
//! Pure decimal runs are numbers, not hex ids (the brief's "≥ 8 hex digits
//! containing a digit" would also take `20240501`; a letter is required too).
//!
//! Invalid UTF-8 is replaced by U+FFFD, one per invalid sequence, as
//! [`String::from_utf8_lossy`] does.
//!
//! The patterns are one [`regex_automata::meta::Regex`] over many patterns
//! (leftmost-first, earlier patterns preferred at the same start), built once.
//!
//! ```
//! use logalarm::policy::mask::mask;
//! assert_eq!(
//!     mask(b"Failed password for root from 5.36.59.76 port 42393 ssh2"),
//!     "Failed password for root from <ip> port <n> ssh2",
//! );
//! ```

use std::sync::LazyLock;

use regex_automata::Input;
use regex_automata::meta::Regex;
use regex_automata::util::syntax;

/// What a pattern masks, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    /// Replaced by the tag.
    Plain(&'static str),
    /// An IPv6 address: `<ip>` when it holds a digit (`fe80::1`, `::1`);
    /// without one it is a name (`be::add`, `a::b`), left as it is.
    Ipv6,
    /// A run of hex digits holding a letter: `<hex>` when long enough and
    /// holding a digit; else its leading digits (if any) are a number.
    HexRun,
}

/// A hex group of an IPv6 address.
const H: &str = "[0-9a-fA-F]{1,4}";
/// An IPv4 address, without port.
const V4: &str = r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}";

/// The IPv6 forms: full; `::`-compressed with an IPv4 tail (`::ffff:1.2.3.4`);
/// `::`-compressed (at least one group, so a bare `::` as in `std::` is not
/// one). Each is tried in this order at a given start.
fn ipv6() -> String {
    format!(
        "(?:{H}(?::{H}){{7}}|(?:{H}(?::{H}){{0,5}})?::(?:{H}:){{0,5}}{V4}|{H}(?::{H}){{0,6}}::(?:{H}(?::{H}){{0,6}})?|::{H}(?::{H}){{0,6}})"
    )
}

/// The patterns in order of preference, and what each masks.
fn patterns() -> Vec<(String, Token)> {
    let v6 = ipv6();
    vec![
        (
            "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}".into(),
            Token::Plain("<uuid>"),
        ),
        (
            r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2})?(?:[.,][0-9]+)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
                .into(),
            Token::Plain("<time>"),
        ),
        (
            r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) +)?(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +[0-9]{1,2} +[0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.,][0-9]+)?(?: +[0-9]{4})?"
                .into(),
            Token::Plain("<time>"),
        ),
        (
            r"[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:[.,][0-9]+)?".into(),
            Token::Plain("<time>"),
        ),
        (
            format!(r"\[{v6}\](?::[0-9]{{1,5}})?"),
            Token::Ipv6,
        ),
        (format!("{V4}(?::[0-9]{{1,5}})?"), Token::Plain("<ip>")),
        (v6, Token::Ipv6),
        ("0[xX][0-9a-fA-F]+".into(), Token::Plain("<hex>")),
        ("[0-9]*[a-fA-F][0-9a-fA-F]*".into(), Token::HexRun),
        (r"-?[0-9]+(?:\.[0-9]+)?".into(), Token::Plain("<n>")),
    ]
}

/// The masker: the regex and, by pattern id, what it masks. `None` only if
/// the patterns above failed to compile, which the unit tests rule out; then
/// messages are keyed unmasked rather than panicking on the reading thread.
static MASKER: LazyLock<Option<(Regex, Vec<Token>)>> = LazyLock::new(|| {
    let pats = patterns();
    let re = Regex::builder()
        // ASCII classes and byte matching: every pattern starts and ends on
        // an ASCII byte, so matches always fall on char boundaries.
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .build_many(&pats.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>())
        .ok()?;
    Some((re, pats.into_iter().map(|(_, t)| t).collect()))
});

/// The message with its variable parts masked: UUIDs → `<uuid>`, IPv4/IPv6 addresses (with
/// optional :port) → `<ip>`, dates/times (ISO 8601 / RFC 3339, `2024-05-01 12:00:00,123`,
/// syslog `Dec 10 06:55:46`, `12:00:00.123`) → `<time>`, hex ids (`0x…`, or runs of ≥ 8 hex
/// digits containing a digit and a letter) → `<hex>`, other numbers → `<n>`. Invalid UTF-8
/// is replaced. See the module doc for the word rule. One allocation (the result).
pub fn mask(message: &[u8]) -> String {
    let mut out = String::with_capacity(message.len());
    mask_into(message, &mut out);
    out
}

/// [`mask`] into `out` (cleared first), so that a caller masking every event
/// reuses one buffer and allocates nothing once it is large enough. The
/// regex's search state comes from its shared pool; a [`Masker`] owns its own.
pub fn mask_into(message: &[u8], out: &mut String) {
    mask_with(None, message, out);
}

/// A masker with its own regex search state, for one thread that masks every
/// event (a digest on the engine thread): no pool, no lock, and nothing
/// allocated once the state has warmed up.
#[derive(Debug, Default)]
pub struct Masker {
    cache: Option<regex_automata::meta::Cache>,
}

impl Masker {
    /// [`mask_into`] with this masker's own search state.
    pub fn mask_into(&mut self, message: &[u8], out: &mut String) {
        if self.cache.is_none() {
            self.cache = MASKER.as_ref().map(|(re, _)| re.create_cache());
        }
        mask_with(self.cache.as_mut(), message, out);
    }
}

fn mask_with(
    mut cache: Option<&mut regex_automata::meta::Cache>,
    message: &[u8],
    out: &mut String,
) {
    out.clear();
    for chunk in message.utf8_chunks() {
        mask_str(cache.as_deref_mut(), chunk.valid(), out);
        if !chunk.invalid().is_empty() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
}

/// Masks valid UTF-8 `s`, appending to `out`.
fn mask_str(mut cache: Option<&mut regex_automata::meta::Cache>, s: &str, out: &mut String) {
    let Some((re, tokens)) = MASKER.as_ref() else {
        out.push_str(s);
        return;
    };
    let b = s.as_bytes();
    // `copied`: how much of `s` is in `out`; `pos`: where to search next.
    let (mut pos, mut copied) = (0, 0);
    while pos < b.len() {
        let input = Input::new(b).range(pos..);
        let found = match cache.as_deref_mut() {
            Some(cache) => re.search_with(cache, &input),
            None => re.search(&input),
        };
        let Some(m) = found else {
            break;
        };
        let (start, end) = (m.start(), m.end());
        if start > 0 && b[start - 1].is_ascii_alphanumeric() {
            // Glued to a word: refused. When it starts inside the word, skip
            // the rest of the word (every later start in it would be refused
            // too; skipping keeps this linear).
            pos = start + 1;
            if b[start].is_ascii_alphanumeric() {
                while pos < b.len() && b[pos].is_ascii_alphanumeric() {
                    pos += 1;
                }
            }
            continue;
        }
        let (tag, tag_end) = match tokens.get(m.pattern().as_usize()) {
            Some(Token::Plain(tag)) => (*tag, end),
            Some(Token::Ipv6) if b[start..end].iter().any(u8::is_ascii_digit) => ("<ip>", end),
            Some(Token::Ipv6) => {
                pos = end;
                continue;
            }
            Some(Token::HexRun) => {
                let run = &b[start..end];
                let digits = run.iter().take_while(|c| c.is_ascii_digit()).count();
                if run.len() >= 8 && run.iter().any(u8::is_ascii_digit) {
                    ("<hex>", end)
                } else if digits > 0 {
                    // `10ab`: a number, then a word.
                    ("<n>", start + digits)
                } else {
                    // A word that happens to be hex (`deadline`, `cafe`).
                    pos = end;
                    continue;
                }
            }
            None => {
                pos = end;
                continue;
            }
        };
        out.push_str(s.get(copied..start).unwrap_or_default());
        out.push_str(tag);
        copied = tag_end;
        pos = tag_end;
    }
    out.push_str(s.get(copied..).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::PathBuf;

    #[test]
    fn the_patterns_compile() {
        assert!(MASKER.is_some());
    }

    fn m(s: &str) -> String {
        mask(s.as_bytes())
    }

    #[test]
    fn masks_each_kind() {
        assert_eq!(
            m("req 123e4567-e89b-12d3-a456-426614174000 done"),
            "req <uuid> done"
        );
        assert_eq!(m("at 2024-05-01T12:00:00.123Z ok"), "at <time> ok");
        assert_eq!(m("at 2024-05-01T12:00:00+02:00 ok"), "at <time> ok");
        assert_eq!(m("2024-05-01 12:00:00,123 ERROR x"), "<time> ERROR x");
        assert_eq!(m("on 2024-05-01."), "on <time>.");
        assert_eq!(m("Dec 10 06:55:46 LabSZ sshd"), "<time> LabSZ sshd");
        assert_eq!(m("Dec  4 06:55:46 host"), "<time> host");
        assert_eq!(m("[Sun Dec 04 04:47:44 2005] [error]"), "[<time>] [error]");
        assert_eq!(m("took until 12:00:00.123"), "took until <time>");
        assert_eq!(m("from 173.234.31.186 port 38926"), "from <ip> port <n>");
        assert_eq!(m("src: /10.250.19.102:54106 x"), "src: /<ip> x");
        assert_eq!(
            m("peer ::1 and fe80::1ff:fe23:4567:890a"),
            "peer <ip> and <ip>"
        );
        assert_eq!(m("2001:db8:0:0:0:0:2:1 up"), "<ip> up");
        assert_eq!(m("mapped ::ffff:192.0.2.128 in"), "mapped <ip> in");
        assert_eq!(m("peer [2001:db8::1]:443 gone"), "peer <ip> gone");
        assert_eq!(m("addr 0xDEADbeef and 0x1f"), "addr <hex> and <hex>");
        assert_eq!(m("commit 3fa9b2c1d0 by"), "commit <hex> by");
        assert_eq!(m("id=deadbeef12"), "id=<hex>");
        assert_eq!(m("n=42 t=-7 r=3.14"), "n=<n> t=<n> r=<n>");
        assert_eq!(m("20240501123045 records"), "<n> records");
    }

    #[test]
    fn words_keep_their_digits() {
        assert_eq!(m("ssh2 md5 user1 http2"), "ssh2 md5 user1 http2");
        assert_eq!(
            m("blk_38865049064139660 blk_-6952295868487656571"),
            "blk_<n> blk_<n>"
        );
        assert_eq!(m("took 10ms, 2d 10abs"), "took <n>ms, <n>d <n>abs");
        assert_eq!(m("range 5-10"), "range <n>-<n>");
        // Hex-looking words without a digit, or short, stay.
        assert_eq!(
            m("deadbeefcafe failed a cafe"),
            "deadbeefcafe failed a cafe"
        );
        // `std::vector` and `be::add` are not IPv6 addresses.
        assert_eq!(
            m("std::vector<int> a::b be::add"),
            "std::vector<int> a::b be::add"
        );
        assert_eq!(m("Decimal 10 Dec"), "Decimal <n> Dec");
    }

    #[test]
    fn invalid_utf8_is_replaced_and_masking_goes_on() {
        assert_eq!(
            mask(b"bad \xff\xfe 12 \xc3"),
            "bad \u{fffd}\u{fffd} <n> \u{fffd}"
        );
        assert_eq!(mask(b"\xff12"), "\u{fffd}<n>");
        assert_eq!(mask(b""), "");
    }

    #[test]
    fn mask_into_reuses_the_buffer() {
        let mut buf = String::new();
        mask_into(b"from 1.2.3.4 port 22", &mut buf);
        assert_eq!(buf, "from <ip> port <n>");
        let cap = buf.capacity();
        mask_into(b"port 1", &mut buf);
        assert_eq!((buf.as_str(), buf.capacity()), ("port <n>", cap));
    }

    fn corpus(path: &str) -> PathBuf {
        let base = std::env::var_os("LOGALARM_CORPUS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
        base.join("loghub").join(path)
    }

    /// Per EventId of a Loghub `*_structured.csv`: the distinct masked keys
    /// of its lines' `Content`.
    fn keys_per_event(path: &str) -> BTreeMap<String, BTreeSet<String>> {
        let file = corpus(path);
        let mut rd = csv::Reader::from_path(&file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
        let head = rd.headers().unwrap().clone();
        let col = |name: &str| head.iter().position(|h| h == name).unwrap();
        let (content, event) = (col("Content"), col("EventId"));
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for rec in rd.records() {
            let rec = rec.unwrap();
            out.entry(rec[event].to_owned())
                .or_default()
                .insert(mask(rec[content].as_bytes()));
        }
        out
    }

    /// The number of distinct keys per EventId.
    fn counts(keys: &BTreeMap<String, BTreeSet<String>>) -> Vec<(&str, usize)> {
        keys.iter().map(|(e, v)| (e.as_str(), v.len())).collect()
    }

    #[test]
    fn openssh_templates_collapse() {
        let k = keys_per_event("OpenSSH/OpenSSH_2k.log_structured.csv");
        assert_eq!(
            k["E24"].first().unwrap(),
            "Received disconnect from <ip>: <n>: Bye Bye [preauth]"
        );
        assert_eq!(
            k["E19"].first().unwrap(),
            "pam_unix(sshd:auth): authentication failure; logname= uid=<n> euid=<n> tty=ssh ruser= rhost=<ip>"
        );
        // 19 of the 27 templates are one key each: only numbers, IPs and
        // ports vary in them. The others have a word as variable part, which
        // is a different error to a grouping by message (as to failnozzle's;
        // an explicit `key` groups them otherwise):
        // - a user name: E9 (6 users: root, git, ftp…), E10, E12, E13 (54
        //   invalid user names each: webmaster, test, admin, FILTER, `0`…),
        //   E20 (`user=` 7 users), E8 (`admin` and a number);
        // - a host name where the template has an IP: E17 and E19 (one
        //   `rhost=` each is a name), E27 (the reverse lookup's name: 4,
        //   e.g. `<n>-<n>-<n>-<n>.rev.poneytelecom.eu`).
        assert_eq!(
            counts(&k),
            [
                ("E1", 1),
                ("E10", 54),
                ("E11", 1),
                ("E12", 54),
                ("E13", 54),
                ("E14", 1),
                ("E15", 1),
                ("E16", 1),
                ("E17", 2),
                ("E18", 1),
                ("E19", 2),
                ("E2", 1),
                ("E20", 7),
                ("E21", 1),
                ("E22", 1),
                ("E23", 1),
                ("E24", 1),
                ("E25", 1),
                ("E26", 1),
                ("E27", 4),
                ("E3", 1),
                ("E4", 1),
                ("E5", 1),
                ("E6", 1),
                ("E7", 1),
                ("E8", 2),
                ("E9", 6),
            ]
        );
    }

    #[test]
    fn hdfs_templates_collapse_but_for_paths() {
        let k = keys_per_event("HDFS/HDFS_2k.log_structured.csv");
        assert_eq!(
            k["E13"].first().unwrap(),
            "Receiving block blk_<n> src: /<ip> dest: /<ip>"
        );
        // 11 of 14 templates are one key. E4 lists a variable number of
        // blocks (1, 9 or 100 `blk_<n>`); E7 and E9 hold a path whose
        // directory names carry digits inside words (`subdir17`,
        // `randtxt4`), which stay: a digit glued to letters is a name.
        assert_eq!(
            counts(&k),
            [
                ("E1", 1),
                ("E10", 1),
                ("E11", 1),
                ("E12", 1),
                ("E13", 1),
                ("E14", 1),
                ("E2", 1),
                ("E3", 1),
                ("E4", 3),
                ("E5", 1),
                ("E6", 1),
                ("E7", 15),
                ("E8", 1),
                ("E9", 65),
            ]
        );
    }

    #[test]
    fn apache_templates_collapse() {
        let k = keys_per_event("Apache/Apache_2k.log_structured.csv");
        assert_eq!(
            k["E1"].first().unwrap(),
            "jk2_init() Found child <n> in scoreboard slot <n>"
        );
        assert_eq!(
            counts(&k),
            [
                ("E1", 1),
                ("E2", 1),
                ("E3", 1),
                ("E4", 1),
                ("E5", 1),
                ("E6", 1)
            ]
        );
    }
}
