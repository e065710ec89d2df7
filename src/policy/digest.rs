//! Digest: an alarm's events over a period, sent as one notification
//! (failnozzle's digest mail): "N instances of M unique errors", then per
//! unique message its count, first and last seen, per-source counts and one
//! full example.
//!
//! A period starts at the first event while none is pending and ends `period`
//! later, so an idle alarm sends nothing and a burst sends one digest per
//! period. Events group by their key: the alarm's explicit key, or the message
//! [masked](super::mask) so that messages differing only in numbers, ids, IPs
//! and times are one group.
//!
//! Memory is bounded: at most `max_groups` groups (further keys are counted as
//! `ungrouped`), at most [`MAX_SOURCES`] sources per list (further sources
//! count under [`OTHER_SOURCES`]), examples of at most [`MAX_EXAMPLE`] bytes.
//!
//! The clock is passed in (`now` for the period, `time` for the wall-clock
//! times reported), so the logic is tested on a simulated clock.
//!
//! ```
//! use std::time::{Duration, Instant, SystemTime};
//! use logalarm::policy::digest::{Digest, DigestSpec};
//! let (t0, wall) = (Instant::now(), SystemTime::now());
//! let mut d = Digest::new(DigestSpec { period: Duration::from_secs(60), max_groups: 100 });
//! d.add(b"timeout after 31ms", None, "web1", false, t0, wall);
//! d.add(b"timeout after 250ms", None, "web2", false, t0, wall);
//! assert_eq!(d.take(t0 + Duration::from_secs(59), false), None);
//! let agg = d.take(t0 + Duration::from_secs(60), false).unwrap();
//! assert_eq!((agg.count, agg.groups.len()), (2, 1));
//! assert_eq!(agg.groups[0].key, "timeout after <n>ms");
//! assert_eq!(agg.groups[0].example, b"timeout after 31ms");
//! ```

use std::time::{Duration, Instant, SystemTime};

use indexmap::IndexMap;
use logalarm_plugin_api::{Aggregate, Group, Notification};
use regex_automata::meta::Regex;
use serde::Deserialize;

use super::chain::{Key, Verdict};
use super::component::{self, BuildContext, Cx, Kind, Policy, PolicyConfig, Step, TomlKeys};
use super::mask::Masker;
use crate::component::de::{OneOrMany, Period};
use crate::component::range::Count;
use crate::component::toml_doc::{Reader, Schema};
use crate::component::{ConfigError, OptionDoc, Origin};

/// The longest example kept per group, in bytes (the default `alarm-msg-size`).
pub const MAX_EXAMPLE: usize = 8192;
/// The most distinct sources counted per list (a digest's, a group's); more
/// count under [`OTHER_SOURCES`], since syslog host names come from the network.
pub const MAX_SOURCES: usize = 100;
/// The source under which sources beyond [`MAX_SOURCES`] are counted.
pub const OTHER_SOURCES: &str = "(other sources)";

/// The configuration of a digest (`digest = "60s"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DigestSpec {
    /// How long a digest collects, from its first event.
    pub period: Duration,
    /// The most unique messages (groups) a digest lists; default 100.
    pub max_groups: usize,
}

impl Default for DigestSpec {
    /// 60 s, 100 groups.
    fn default() -> Self {
        DigestSpec {
            period: Duration::from_secs(60),
            max_groups: 100,
        }
    }
}

/// `now + period`, or as far as the clock goes when a huge configured period
/// would overflow it (`Instant + Duration` panics).
fn due_after(now: Instant, period: Duration) -> Instant {
    now.checked_add(period)
        .or_else(|| now.checked_add(Duration::from_secs(u64::from(u32::MAX))))
        .unwrap_or(now)
}

/// Per-source counts, in order of first appearance, bounded by [`MAX_SOURCES`].
#[derive(Debug, Default)]
struct Counts(IndexMap<String, u64>);

impl Counts {
    /// Counts one event of `source`; allocates only for a new source.
    fn add(&mut self, source: &str) {
        if let Some(n) = self.0.get_mut(source) {
            *n += 1;
        } else if self.0.len() < MAX_SOURCES {
            self.0.insert(source.to_owned(), 1);
        } else if let Some(n) = self.0.get_mut(OTHER_SOURCES) {
            *n += 1;
        } else {
            self.0.insert(OTHER_SOURCES.to_owned(), 1);
        }
    }

    /// Most first; ties in order of first appearance.
    fn into_sorted(self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self.0.into_iter().collect();
        v.sort_by_key(|s| std::cmp::Reverse(s.1));
        v
    }
}

/// One group being collected.
#[derive(Debug)]
struct GroupAcc {
    count: u64,
    first_seen: SystemTime,
    last_seen: SystemTime,
    sources: Counts,
    example: Vec<u8>,
}

/// The digest being collected.
#[derive(Debug)]
struct Pending {
    due: Instant,
    count: u64,
    /// Events that are not "just monitoring" markers.
    alarms: u64,
    ungrouped: u64,
    first_seen: SystemTime,
    last_seen: SystemTime,
    sources: Counts,
    groups: IndexMap<String, GroupAcc>,
}

/// The digest state of one alarm.
#[derive(Debug)]
pub struct Digest {
    spec: DigestSpec,
    pending: Option<Pending>,
    /// The masked key of the event at hand, reused.
    scratch: String,
    /// Its own mask search state (no shared pool on the engine thread).
    masker: Masker,
}

impl Digest {
    /// An empty digest with `spec`.
    pub fn new(spec: DigestSpec) -> Self {
        Digest {
            spec,
            pending: None,
            scratch: String::new(),
            masker: Masker::default(),
        }
    }

    /// Adds one event: its message, its group key (explicit key, or `mask(message)` when
    /// None), its source label (the syslog host when there is one, else the source's
    /// display form), whether it is a "just monitoring" marker line (such lines never make a
    /// digest on their own, but are counted when the digest is sent), and its times.
    ///
    /// The first event while none is pending (monitoring or not) starts the
    /// period. Monitoring events are counted like the others (in `count`, a
    /// group and the sources). No allocation when the event's group and
    /// source already exist.
    pub fn add(
        &mut self,
        message: &[u8],
        key: Option<&str>,
        source: &str,
        monitoring: bool,
        now: Instant,
        time: SystemTime,
    ) {
        let period = self.spec.period;
        let p = self.pending.get_or_insert_with(|| Pending {
            due: due_after(now, period),
            count: 0,
            alarms: 0,
            ungrouped: 0,
            first_seen: time,
            last_seen: time,
            sources: Counts::default(),
            groups: IndexMap::new(),
        });
        p.count += 1;
        p.alarms += u64::from(!monitoring);
        p.first_seen = p.first_seen.min(time);
        p.last_seen = p.last_seen.max(time);
        p.sources.add(source);
        let key = match key {
            Some(k) => k,
            None => {
                self.masker.mask_into(message, &mut self.scratch);
                &self.scratch
            }
        };
        if let Some(g) = p.groups.get_mut(key) {
            g.count += 1;
            g.first_seen = g.first_seen.min(time);
            g.last_seen = g.last_seen.max(time);
            g.sources.add(source);
        } else if p.groups.len() < self.spec.max_groups {
            let mut sources = Counts::default();
            sources.add(source);
            let example = message.get(..MAX_EXAMPLE).unwrap_or(message).to_vec();
            p.groups.insert(
                key.to_owned(),
                GroupAcc {
                    count: 1,
                    first_seen: time,
                    last_seen: time,
                    sources,
                    example,
                },
            );
        } else {
            p.ungrouped += 1;
        }
    }

    /// When the pending period ends (None: nothing pending). It may be Some
    /// while only monitoring events are pending: [`Digest::take`] then drops
    /// them and returns None.
    pub fn due(&self) -> Option<Instant> {
        self.pending.as_ref().map(|p| p.due)
    }

    /// Events pending (monitoring ones included), for reports.
    pub fn pending(&self) -> u64 {
        self.pending.as_ref().map_or(0, |p| p.count)
    }

    /// The digest, when its period has ended by `now` (at `due` exactly, it
    /// has), or at once with `force` (at shutdown); None when nothing is
    /// pending or only monitoring events are. Resets: the next event starts a
    /// new period.
    ///
    /// The [`Aggregate`]: `count` = all events (monitoring ones included);
    /// groups most frequent first (ties: first seen first), each with its
    /// count, first and last seen, per-source counts (most first) and its
    /// first event's message (at most [`MAX_EXAMPLE`] bytes) as the example;
    /// `ungrouped` = events beyond `max_groups` keys; `period` = the spec's.
    pub fn take(&mut self, now: Instant, force: bool) -> Option<Aggregate> {
        if !force && now < self.pending.as_ref()?.due {
            return None;
        }
        let p = self.pending.take()?;
        if p.alarms == 0 {
            return None;
        }
        let mut groups: Vec<Group> = p
            .groups
            .into_iter()
            .map(|(key, g)| Group {
                key,
                count: g.count,
                first_seen: g.first_seen,
                last_seen: g.last_seen,
                sources: g.sources.into_sorted(),
                example: g.example,
            })
            .collect();
        // Stable: ties keep the order of first appearance.
        groups.sort_by_key(|g| std::cmp::Reverse(g.count));
        Some(Aggregate {
            count: p.count,
            ungrouped: p.ungrouped,
            first_seen: p.first_seen,
            last_seen: p.last_seen,
            period: self.spec.period,
            sources: p.sources.into_sorted(),
            groups,
        })
    }
}

/// Default cap on the unique messages one digest lists.
pub const DEFAULT_MAX_GROUPS: usize = 100;

/// The digest as a policy component: TOML `digest = PERIOD` or `{ period,
/// max_groups, key }` with the alarm's `monitoring_markers`; INI
/// `alarm-digest = NAME PERIOD`.
pub static KIND: Kind = Kind {
    keys: &["digest", "monitoring_markers"],
    option: Some(OptionDoc::new(
        "alarm-digest",
        "NAME PERIOD",
        "Send alarm NAME's events as one digest per PERIOD",
    )),
    ini_form: "PERIOD, e.g. `errors 60s`",
    table: Schema {
        what: "digest",
        keys: &[("period", None), ("max_groups", None), ("key", None)],
    },
    from_toml,
    from_ini,
};

/// `max_groups`: 1 to 100,000 unique messages listed in one digest. Each
/// keeps a whole example message (up to `alarm-msg-size`), so the top is
/// about 800 MB per digest at the default 8 KiB.
pub const MAX_GROUPS: Count = Count::new(1, 100_000, "unique messages");

/// `digest = PERIOD` or `{ period, max_groups, key }` as written.
#[derive(Deserialize)]
#[serde(untagged)]
enum DigestValue {
    Period(Period),
    Table(Table),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    period: Period,
    max_groups: Option<usize>,
    key: Option<String>,
}

/// A checked digest: one notification per period summing up the alarm's
/// events (failnozzle's digest mail).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestConfig {
    /// The period.
    pub period: Duration,
    /// Unique messages listed at most; further ones are only counted.
    pub max_groups: usize,
    /// What makes two events "the same error"; the masked message when `None`.
    pub key: Option<String>,
    /// Regexes of "just monitoring" lines (`monitoring_markers`), which
    /// never make a digest on their own, each with where it was written.
    pub markers: Vec<(String, Origin)>,
    /// Where it was written.
    pub origin: Origin,
}

fn from_toml(
    reader: &mut Reader<'_>,
    path: &str,
    keys: TomlKeys<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<Box<dyn PolicyConfig>> {
    let (mut digest, mut markers) = (None, None);
    for (key, value) in keys {
        if key == "digest" {
            digest = Some(component::toml_value::<DigestValue>(
                reader, path, key, value,
            ));
        } else {
            markers = Some(component::toml_value::<OneOrMany>(reader, path, key, value));
        }
    }
    let markers: Vec<(String, Origin)> = match markers {
        None => Vec::new(),
        Some(None) => return None,
        Some(Some((origin, m))) => m
            .into_vec()
            .into_iter()
            .map(|r| (r, origin.clone()))
            .collect(),
    };
    let Some(digest) = digest else {
        if let Some((_, origin)) = markers.first() {
            errors.push(ConfigError::new(
                origin,
                "monitoring_markers only matter to a digest",
                "add digest = \"60s\" or remove them",
            ));
        }
        return None;
    };
    let (origin, value) = digest?;
    let (period, max_groups, key) = match value {
        DigestValue::Period(p) => (p.0, None, None),
        DigestValue::Table(t) => (t.period.0, t.max_groups, t.key),
    };
    if period.is_zero() || max_groups == Some(0) {
        errors.push(ConfigError::new(
            &origin,
            "the period must be above zero and max_groups at least 1",
            "e.g. digest = \"60s\"",
        ));
        return None;
    }
    if let Some(Err(e)) = max_groups.map(|n| MAX_GROUPS.check(n)) {
        errors.push(ConfigError::at(&origin, format!("max_groups {e}")));
        return None;
    }
    Some(Box::new(DigestConfig {
        period,
        max_groups: max_groups.unwrap_or(DEFAULT_MAX_GROUPS),
        key,
        markers,
        origin,
    }))
}

fn from_ini(value: &str, origin: &Origin) -> Result<Box<dyn PolicyConfig>, String> {
    let bad = || format!("{value:?} is not `NAME {}`", KIND.ini_form);
    let (w, rest) = component::words(value, 2).ok_or_else(bad)?;
    let period = crate::component::syntax::duration(w[1])?;
    if period.is_zero() || !rest.is_empty() {
        return Err(bad());
    }
    Ok(Box::new(DigestConfig {
        period,
        max_groups: DEFAULT_MAX_GROUPS,
        key: None,
        markers: Vec::new(),
        origin: origin.clone(),
    }))
}

impl PolicyConfig for DigestConfig {
    fn kind(&self) -> &'static Kind {
        &KIND
    }
    fn origin(&self) -> &Origin {
        &self.origin
    }
    fn describe(&self, _alarm_key: Option<&str>) -> String {
        let markers = if self.markers.is_empty() {
            String::new()
        } else {
            format!(", {} monitoring markers", self.markers.len())
        };
        format!(
            "digest every {} (at most {} unique messages{markers}){}",
            component::human(self.period),
            self.max_groups,
            component::per_key(self.key.as_deref(), None)
        )
    }
    fn templates(&self) -> Vec<&str> {
        self.key.as_deref().into_iter().collect()
    }
    fn build(&self, cx: &BuildContext<'_>) -> Result<Box<dyn Policy>, Option<ConfigError>> {
        let key = match &self.key {
            Some(k) => Some(cx.key(k, "digest.key", &self.origin)?),
            None => None,
        };
        let markers = match self.markers.first() {
            None => None,
            Some((_, origin)) => {
                let patterns: Vec<&str> = self.markers.iter().map(|(r, _)| r.as_str()).collect();
                let re = Regex::new_many(&patterns).map_err(|e| {
                    ConfigError::at(origin, format!("bad regex in monitoring_markers: {e}"))
                })?;
                Some(re)
            }
        };
        let spec = DigestSpec {
            period: self.period,
            max_groups: self.max_groups,
        };
        Ok(Box::new(DigestPolicy {
            state: Digest::new(spec),
            key,
            markers,
        }))
    }
    fn clone_box(&self) -> Box<dyn PolicyConfig> {
        Box::new(self.clone())
    }
}

/// A running digest: takes every event it gets, and sends the digest when
/// its period ends.
#[derive(Debug)]
struct DigestPolicy {
    state: Digest,
    key: Option<Key>,
    markers: Option<Regex>,
}

impl Policy for DigestPolicy {
    fn decide(&mut self, note: &mut Notification, now: Instant, cx: &mut Cx) -> Step {
        let k = cx.key(self.key.as_ref(), note);
        let monitoring = self
            .markers
            .as_ref()
            .is_some_and(|m| m.is_match(&note.message));
        let source = match note.syslog.as_ref().and_then(|s| s.host.as_deref()) {
            Some(host) => host.to_owned(),
            None => note.source.to_string(),
        };
        self.state.add(
            &note.body(),
            k.as_deref(),
            &source,
            monitoring,
            now,
            note.time,
        );
        let due = self.state.due().unwrap_or(now);
        Step::Stop(Verdict::Batched { due })
    }
    fn due(&self) -> Option<Instant> {
        self.state.due()
    }
    fn take(&mut self, now: Instant, force: bool) -> Option<Aggregate> {
        self.state.take(now, force)
    }
    fn fresh(&self) -> Box<dyn Policy> {
        Box::new(DigestPolicy {
            state: Digest::new(self.state.spec),
            key: self.key.clone(),
            markers: self.markers.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_names_the_fields_of_the_table() {
        let fields = crate::component::toml_doc::fields::<Table>();
        assert_eq!(KIND.table.names(), fields);
    }
    use std::collections::HashMap;

    fn spec(secs: u64, max_groups: usize) -> DigestSpec {
        DigestSpec {
            period: Duration::from_secs(secs),
            max_groups,
        }
    }

    #[test]
    fn one_digest_per_period_from_the_first_event() {
        let (t0, w0) = (Instant::now(), SystemTime::UNIX_EPOCH);
        let s = |n: u64| (t0 + Duration::from_secs(n), w0 + Duration::from_secs(n));
        let mut d = Digest::new(spec(60, 100));
        assert_eq!((d.due(), d.take(s(1000).0, false)), (None, None));
        let (now, time) = s(10);
        d.add(b"disk 91% full", None, "db1", false, now, time);
        assert_eq!(d.due(), Some(s(70).0));
        let (now, time) = s(69);
        d.add(b"disk 97% full", None, "db2", false, now, time);
        d.add(b"disk 95% full", None, "db1", false, now, time);
        assert_eq!(d.take(s(69).0, false), None);
        assert_eq!(d.take(s(70).0 - Duration::from_nanos(1), false), None);
        let a = d.take(s(70).0, false).unwrap();
        assert_eq!(
            a,
            Aggregate {
                count: 3,
                ungrouped: 0,
                first_seen: s(10).1,
                last_seen: s(69).1,
                period: Duration::from_secs(60),
                sources: vec![("db1".into(), 2), ("db2".into(), 1)],
                groups: vec![Group {
                    key: "disk <n>% full".into(),
                    count: 3,
                    first_seen: s(10).1,
                    last_seen: s(69).1,
                    sources: vec![("db1".into(), 2), ("db2".into(), 1)],
                    example: b"disk 91% full".to_vec(),
                }],
            }
        );
        // Reset: nothing pending, and the next event starts a new period.
        assert_eq!((d.due(), d.pending()), (None, 0));
        let (now, time) = s(500);
        d.add(b"x", None, "db1", false, now, time);
        assert_eq!(d.due(), Some(s(560).0));
    }

    #[test]
    fn explicit_keys_group_and_order_is_by_count_then_first_seen() {
        let (t0, w0) = (Instant::now(), SystemTime::UNIX_EPOCH);
        let mut d = Digest::new(spec(60, 100));
        for (msg, key) in [
            ("a 1", "k1"),
            ("b 2", "k2"),
            ("c 3", "k3"),
            ("a 4", "k1"),
            ("d 5", "k3"),
            ("e 6", "k4"),
        ] {
            d.add(msg.as_bytes(), Some(key), "s", false, t0, w0);
        }
        let a = d.take(t0, true).unwrap();
        let got: Vec<(&str, u64, &[u8])> = a
            .groups
            .iter()
            .map(|g| (g.key.as_str(), g.count, g.example.as_slice()))
            .collect();
        assert_eq!(
            got,
            [
                ("k1", 2, &b"a 1"[..]),
                ("k3", 2, &b"c 3"[..]),
                ("k2", 1, &b"b 2"[..]),
                ("k4", 1, &b"e 6"[..]),
            ]
        );
    }

    #[test]
    fn a_burst_of_100000_events_of_20_shapes_counts_exactly() {
        const SHAPES: [&str; 20] = [
            "timeout",
            "refused",
            "reset",
            "denied",
            "corrupt",
            "missing",
            "overflow",
            "deadlock",
            "stale",
            "throttled",
            "unreachable",
            "expired",
            "invalid",
            "rejected",
            "aborted",
            "locked",
            "busy",
            "full",
            "closed",
            "broken",
        ];
        let (t0, w0) = (Instant::now(), SystemTime::UNIX_EPOCH);
        let mut d = Digest::new(spec(60, 100));
        let mut want: HashMap<String, (u64, HashMap<String, u64>)> = HashMap::new();
        let mut msg = String::new();
        // Uneven shares per shape ((j² + j/7) mod 20), 3 hosts, every event
        // with its own numbers, IP, port and hex id, 0.5 ms apart: 50 s, one
        // 60 s period.
        for j in 0..100_000u64 {
            let s = ((j * j + j / 7) % 20) as usize;
            let host = format!("web{}", j % 3);
            msg.clear();
            use std::fmt::Write;
            write!(
                msg,
                "job {j} {}: peer 10.{}.{}.{}:{} after {}ms id 0x{:x}",
                SHAPES[s],
                j % 256,
                j / 256 % 256,
                j % 7,
                1024 + j % 5000,
                j % 1000,
                j * 31
            )
            .unwrap();
            let now = t0 + Duration::from_micros(500 * j);
            d.add(
                msg.as_bytes(),
                None,
                &host,
                false,
                now,
                w0 + Duration::from_micros(500 * j),
            );
            let key = format!("job <n> {}: peer <ip> after <n>ms id <hex>", SHAPES[s]);
            let e = want.entry(key).or_default();
            e.0 += 1;
            *e.1.entry(host).or_default() += 1;
        }
        assert_eq!(d.pending(), 100_000);
        assert_eq!(d.take(t0 + Duration::from_secs(59), false), None);
        let a = d.take(t0 + Duration::from_secs(60), false).unwrap();
        assert_eq!((a.count, a.ungrouped, a.groups.len()), (100_000, 0, 20));
        assert_eq!(
            a.sources,
            [
                ("web0".to_owned(), 33_334),
                ("web1".to_owned(), 33_333),
                ("web2".to_owned(), 33_333)
            ]
        );
        for g in &a.groups {
            let (count, hosts) = &want[&g.key];
            assert_eq!(g.count, *count, "{}", g.key);
            let mut hosts: Vec<(String, u64)> =
                hosts.iter().map(|(h, n)| (h.clone(), *n)).collect();
            hosts.sort();
            let mut got = g.sources.clone();
            got.sort();
            assert_eq!(got, hosts, "{}", g.key);
            assert!(g.sources.windows(2).all(|w| w[0].1 >= w[1].1));
        }
        assert!(a.groups.windows(2).all(|w| w[0].count >= w[1].count));
        assert_eq!(a.groups.iter().map(|g| g.count).sum::<u64>(), 100_000);
        // The example is each group's first event, whole.
        let first = &a
            .groups
            .iter()
            .find(|g| g.key.contains(" timeout:"))
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&first.example),
            "job 0 timeout: peer 10.0.0.0:1024 after 0ms id 0x0"
        );
        assert_eq!(first.first_seen, w0);
    }

    #[test]
    fn monitoring_only_is_not_sent_but_counted_with_real_events() {
        let (t0, w0) = (Instant::now(), SystemTime::UNIX_EPOCH);
        let mut d = Digest::new(spec(60, 100));
        for _ in 0..5 {
            d.add(b"probe ok 17", None, "probe", true, t0, w0);
        }
        assert_eq!(d.due(), Some(t0 + Duration::from_secs(60)));
        assert_eq!(d.take(t0 + Duration::from_secs(60), false), None);
        assert_eq!((d.due(), d.pending()), (None, 0));
        // Forced (shutdown): still not sent.
        d.add(b"probe ok 18", None, "probe", true, t0, w0);
        assert_eq!(d.take(t0, true), None);
        // With a real event, the markers are counted too.
        d.add(b"probe ok 19", None, "probe", true, t0, w0);
        d.add(b"boom 1", None, "app", false, t0, w0);
        d.add(b"probe ok 20", None, "probe", true, t0, w0);
        let a = d.take(t0 + Duration::from_secs(60), false).unwrap();
        assert_eq!(a.count, 3);
        let groups: Vec<(&str, u64)> = a.groups.iter().map(|g| (g.key.as_str(), g.count)).collect();
        assert_eq!(groups, [("probe ok <n>", 2), ("boom <n>", 1)]);
        assert_eq!(a.sources, [("probe".to_owned(), 2), ("app".to_owned(), 1)]);
    }

    #[test]
    fn a_known_group_and_source_cost_no_allocation() {
        let (t0, w0) = (Instant::now(), SystemTime::UNIX_EPOCH);
        let mut d = Digest::new(spec(60, 100));
        // Warm up: the groups, the sources and the mask buffer exist.
        d.add(b"refused by 10.0.0.1 port 1", None, "web1", false, t0, w0);
        d.add(b"timeout 1", Some("k"), "web2", false, t0, w0);
        let msgs: Vec<String> = (0..1000)
            .map(|i| format!("refused by 10.0.{}.{} port {}", i % 256, i % 7, i))
            .collect();
        let run = |d: &mut Digest| {
            for (i, m) in msgs.iter().enumerate() {
                let host = if i % 2 == 0 { "web1" } else { "web2" };
                d.add(m.as_bytes(), None, host, false, t0, w0);
                d.add(b"timeout 2", Some("k"), host, true, t0, w0);
            }
        };
        // Once more to warm up the regex's lazy DFA (it allocates states as
        // it meets new inputs, then reuses them).
        run(&mut d);
        let n = crate::policy::keys::alloc_count::allocations(|| run(&mut d));
        assert_eq!(n, 0);
        let a = d.take(t0, true).unwrap();
        assert_eq!((a.count, a.groups.len()), (4002, 2));
    }

    #[test]
    fn escalation_and_mask_into_do_not_allocate() {
        let t0 = Instant::now();
        let mut e = crate::policy::escalation::Escalation::new(10, Duration::from_secs(60));
        let mut buf = String::with_capacity(256);
        let mut masker = super::Masker::default();
        let line = b"Failed password for root from 5.36.59.76 port 42393 ssh2";
        // Warm up the masker's own lazy DFA (it allocates states as it meets
        // new inputs, then reuses them); its own, so that other test threads
        // sharing the regex's pool cannot make this one allocate.
        masker.mask_into(line, &mut buf);
        let n = crate::policy::keys::alloc_count::allocations(|| {
            for i in 0..10_000u64 {
                e.event(t0 + Duration::from_millis(i * 37));
                masker.mask_into(line, &mut buf);
            }
        });
        assert_eq!(n, 0);
    }

    #[test]
    fn a_huge_period_does_not_overflow_the_clock() {
        let (t0, w0) = (Instant::now(), SystemTime::UNIX_EPOCH);
        let mut d = Digest::new(spec(u64::MAX, 100));
        d.add(b"x", None, "s", false, t0, w0);
        assert!(d.due().unwrap() > t0 + Duration::from_secs(86_400 * 365));
        assert_eq!(d.take(t0 + Duration::from_secs(86_400), false), None);
        assert_eq!(d.take(t0, true).map(|a| a.count), Some(1));
    }

    #[test]
    fn force_sends_before_the_period_ends() {
        let (t0, w0) = (Instant::now(), SystemTime::UNIX_EPOCH);
        let mut d = Digest::new(spec(3600, 100));
        d.add(b"x", None, "s", false, t0, w0);
        assert_eq!(d.take(t0, false), None);
        assert_eq!(d.take(t0, true).map(|a| a.count), Some(1));
        assert_eq!(d.take(t0, true), None);
    }

    #[test]
    fn bounded_groups_sources_and_examples() {
        let (t0, w0) = (Instant::now(), SystemTime::UNIX_EPOCH);
        let mut d = Digest::new(spec(60, 2));
        d.add(&[b'a'; 10_000], Some("big"), "s", false, t0, w0);
        d.add(b"b", Some("k2"), "s", false, t0, w0);
        d.add(b"c", Some("k3"), "s", false, t0, w0);
        d.add(b"c", Some("k3"), "s", false, t0, w0);
        d.add(b"b", Some("k2"), "s", false, t0, w0);
        for i in 0..150 {
            d.add(b"b", Some("k2"), &format!("host{i}"), false, t0, w0);
        }
        let a = d.take(t0, true).unwrap();
        assert_eq!((a.count, a.ungrouped), (155, 2));
        assert_eq!(a.groups.len(), 2);
        let (k2, big) = (&a.groups[0], &a.groups[1]);
        assert_eq!((k2.key.as_str(), k2.count), ("k2", 152));
        assert_eq!((big.key.as_str(), big.example.len()), ("big", MAX_EXAMPLE));
        // 100 sources for k2: "s" and host0..=host98; host99..149 count as other.
        assert_eq!(k2.sources.len(), MAX_SOURCES + 1);
        assert_eq!(k2.sources[0], (OTHER_SOURCES.to_owned(), 51));
        assert_eq!(k2.sources[1], ("s".to_owned(), 2));
        assert_eq!(k2.sources[2], ("host0".to_owned(), 1));
        assert_eq!(a.sources[0], (OTHER_SOURCES.to_owned(), 51));
        assert_eq!(a.sources[1], ("s".to_owned(), 5));
    }
}
