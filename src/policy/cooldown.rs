//! Cooldown per key: at most `max` notifications per key per `period`
//! (Cyclops' per-key report limit, the Heroku dyno monitor's topic cooldown).
//! The rest are suppressed and counted, and the count goes out with the next
//! notification of that key, so a flood shows as "… and 9,999 more", not as
//! 10,000 mails nor as silence.
//!
//! The period is a fixed window per key: it starts at the first event that
//! passes while the key has no period running, and ends `period` later (an
//! event exactly `period` after the start opens a new one). Keys are bounded
//! by [`Keyed`].
//!
//! The clock is passed in (`now`), so the logic is tested on a simulated clock.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use logalarm::policy::cooldown::Cooldown;
//! let t0 = Instant::now();
//! let mut c = Cooldown::new(1, Duration::from_secs(60), 1000);
//! assert_eq!(c.admit("db1", t0), Ok(0));
//! assert_eq!(c.admit("db1", t0 + Duration::from_secs(1)), Err(1));
//! assert_eq!(c.admit("db2", t0 + Duration::from_secs(2)), Ok(0));
//! assert_eq!(c.admit("db1", t0 + Duration::from_secs(3)), Err(2));
//! assert_eq!(c.admit("db1", t0 + Duration::from_secs(60)), Ok(2));
//! ```

use std::time::{Duration, Instant};

use super::chain::{Hold, Key, Verdict};
use super::component::{
    self, BuildContext, Cx, Kind, Policy, PolicyConfig, Step, TomlKeys, key_text,
};
use super::keys::Keyed;
use crate::component::de::Period;
use crate::component::toml_doc::{Reader, Schema};
use crate::component::{ConfigError, OptionDoc, Origin};
use logalarm_plugin_api::Notification;
use serde::Deserialize;

/// The cooldown of one key.
#[derive(Debug)]
struct KeyState {
    /// When the running period started.
    start: Instant,
    /// Events passed in the running period (≤ max).
    passed: u32,
    /// Events suppressed in the running period.
    in_period: u64,
    /// Events suppressed since the key's last notification, not yet reported.
    unreported: u64,
}

/// The cooldown state of one alarm.
#[derive(Debug)]
pub struct Cooldown {
    max: u32,
    period: Duration,
    keys: Keyed<KeyState>,
}

impl Cooldown {
    /// At most `max` events (0 is taken as 1) per key per `period`,
    /// remembering at most `max_keys` keys.
    pub fn new(max: u32, period: Duration, max_keys: usize) -> Self {
        Cooldown {
            max: max.max(1),
            period,
            keys: Keyed::new(max_keys),
        }
    }

    /// Decides for one event of `key` at `now`.
    ///
    /// `Ok(suppressed_before)` = passes, carrying how many of this key were
    /// suppressed since its previous notification (the caller puts it in the
    /// notification, and gives it back with [`Cooldown::give_back`] if the
    /// notification is lost); `Err(n)` = suppressed (`n` = suppressed so far
    /// in this period, this one included).
    ///
    /// Allocates only for a key not held yet.
    pub fn admit(&mut self, key: &str, now: Instant) -> Result<u64, u64> {
        let (max, period) = (self.max, self.period);
        let st = self.keys.entry(key, || KeyState {
            start: now,
            passed: 0,
            in_period: 0,
            unreported: 0,
        });
        if st.passed == 0 || now.saturating_duration_since(st.start) >= period {
            st.start = now;
            st.passed = 0;
            st.in_period = 0;
        }
        if st.passed < max {
            st.passed += 1;
            return Ok(std::mem::take(&mut st.unreported));
        }
        st.in_period += 1;
        st.unreported += 1;
        Err(st.in_period)
    }

    /// Gives back a count taken by [`Cooldown::admit`] (its `Ok` value) whose
    /// notification was then lost (full queue), so that the key's next
    /// notification still reports it. The lost notification keeps its place
    /// among the `max` of the period (it was decided, not delivered). A key
    /// evicted in between (not possible when called right after `admit`, as
    /// the router does) loses the count.
    pub fn give_back(&mut self, key: &str, suppressed: u64) {
        if let Some(st) = self.keys.get_mut(key) {
            st.unreported += suppressed;
        }
    }

    /// Drops the keys whose period has ended by `now`, first calling `lost`
    /// with each dropped key that still had suppressed events nobody was told
    /// of (no later event of that key came to carry them), so the caller can
    /// report or count them. Call it now and then (on a tick) so that idle
    /// keys do not hold memory until evicted.
    pub fn expire(&mut self, now: Instant, mut lost: impl FnMut(&str, u64)) {
        let period = self.period;
        self.keys.retain(|key, st| {
            if now.saturating_duration_since(st.start) < period {
                return true;
            }
            if st.unreported > 0 {
                lost(key, st.unreported);
            }
            false
        });
    }

    /// Suppressed events of `key` not yet reported (0 for a key not held).
    pub fn pending(&mut self, key: &str) -> u64 {
        self.keys.get_mut(key).map_or(0, |st| st.unreported)
    }

    /// Keys held now.
    pub fn keys(&self) -> usize {
        self.keys.len()
    }

    /// Keys evicted so far because more than `max_keys` were cooling down at
    /// once (an evicted key's next event passes at once, and its unreported
    /// count is lost).
    pub fn evicted(&self) -> u64 {
        self.keys.evicted()
    }
}

/// The cooldown as a policy component: TOML `cooldown = { max, period,
/// key }`, INI `alarm-cooldown = NAME MAX PERIOD [KEY]`.
pub static KIND: Kind = Kind {
    keys: &["cooldown"],
    option: Some(OptionDoc::new(
        "alarm-cooldown",
        "NAME MAX PERIOD [KEY]",
        "At most MAX notifications of alarm NAME per key per PERIOD; the rest are counted",
    )),
    ini_form: "MAX PERIOD [KEY], e.g. `ssh 1 10m`",
    table: Schema {
        what: "cooldown",
        keys: &[("max", None), ("period", None), ("key", None)],
    },
    from_toml,
    from_ini,
};

/// `cooldown = { max, period, key }` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    #[serde(default = "one")]
    max: u32,
    period: Period,
    key: Option<String>,
}

fn one() -> u32 {
    1
}

/// A checked cooldown: at most `max` notifications per key per `period`
/// (Cyclops' per-key rate limit); the rest are counted and the count goes
/// out with the key's next notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CooldownConfig {
    /// Notifications allowed per period, at least 1.
    pub max: u32,
    /// The period.
    pub period: Duration,
    /// Its own key template, instead of the alarm's.
    pub key: Option<String>,
    /// Where it was written.
    pub origin: Origin,
}

fn from_toml(
    reader: &mut Reader<'_>,
    path: &str,
    keys: TomlKeys<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<Box<dyn PolicyConfig>> {
    let (key, value) = keys.into_iter().next()?;
    let (origin, c) = component::toml_value::<Table>(reader, path, key, value)?;
    if c.max == 0 || c.period.0.is_zero() {
        errors.push(ConfigError::new(
            &origin,
            "max must be at least 1 and period above zero",
            "e.g. cooldown = { max = 1, period = \"10m\" }",
        ));
        return None;
    }
    Some(Box::new(CooldownConfig {
        max: c.max,
        period: c.period.0,
        key: c.key,
        origin,
    }))
}

fn from_ini(value: &str, origin: &Origin) -> Result<Box<dyn PolicyConfig>, String> {
    let bad = || format!("{value:?} is not `NAME {}`", KIND.ini_form);
    let (w, rest) = component::words(value, 3).ok_or_else(bad)?;
    let max = component::count(w[1], "MAX")?;
    let period = crate::component::syntax::duration(w[2])?;
    if max == 0 || period.is_zero() {
        return Err("MAX must be at least 1 and PERIOD above zero".into());
    }
    Ok(Box::new(CooldownConfig {
        max,
        period,
        key: (!rest.is_empty()).then(|| rest.to_owned()),
        origin: origin.clone(),
    }))
}

impl PolicyConfig for CooldownConfig {
    fn kind(&self) -> &'static Kind {
        &KIND
    }
    fn origin(&self) -> &Origin {
        &self.origin
    }
    fn describe(&self, alarm_key: Option<&str>) -> String {
        format!(
            "cooldown {} per {}{}",
            self.max,
            component::human(self.period),
            component::per_key(self.key.as_deref(), alarm_key)
        )
    }
    fn templates(&self) -> Vec<&str> {
        self.key.as_deref().into_iter().collect()
    }
    fn build(&self, cx: &BuildContext<'_>) -> Result<Box<dyn Policy>, Option<ConfigError>> {
        let key = match &self.key {
            Some(k) => Some(cx.key(k, "cooldown.key", &self.origin)?),
            None => None,
        };
        Ok(Box::new(CooldownPolicy {
            state: Cooldown::new(self.max, self.period, cx.max_keys),
            max_keys: cx.max_keys,
            key,
        }))
    }
    fn clone_box(&self) -> Box<dyn PolicyConfig> {
        Box::new(self.clone())
    }
}

/// A running cooldown: drops a key's events beyond `max` per period, and
/// counts them for the key's next notification.
#[derive(Debug)]
struct CooldownPolicy {
    state: Cooldown,
    max_keys: usize,
    key: Option<Key>,
}

impl Policy for CooldownPolicy {
    fn decide(&mut self, note: &mut Notification, now: Instant, cx: &mut Cx) -> Step {
        let k = cx.key(self.key.as_ref(), note);
        match self.state.admit(key_text(k.as_ref()), now) {
            Ok(before) => {
                note.suppressed += before;
                Step::Next
            }
            Err(suppressed) => Step::Stop(Verdict::Held(Hold::Cooldown {
                suppressed,
                max: self.state.max,
                period: self.state.period,
            })),
        }
    }
    fn give_back(&mut self, note: &Notification) -> bool {
        self.state
            .give_back(key_text(note.key.as_ref()), note.suppressed);
        true
    }
    fn evicted(&self) -> u64 {
        self.state.evicted()
    }
    fn fresh(&self) -> Box<dyn Policy> {
        Box::new(CooldownPolicy {
            state: Cooldown::new(self.state.max, self.state.period, self.max_keys),
            max_keys: self.max_keys,
            key: self.key.clone(),
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

    fn ms(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_millis(n)
    }

    #[test]
    fn max_per_period_then_the_count_rides_on_the_next() {
        let t0 = Instant::now();
        let mut c = Cooldown::new(2, Duration::from_secs(10), 100);
        let got: Vec<Result<u64, u64>> = [0, 1000, 2000, 3000, 9999, 10_000, 10_001, 10_002]
            .into_iter()
            .map(|m| c.admit("k", ms(t0, m)))
            .collect();
        assert_eq!(
            got,
            [
                Ok(0),
                Ok(0),
                Err(1),
                Err(2),
                Err(3),
                // Exactly `period` after the start: a new period.
                Ok(3),
                Ok(0),
                Err(1),
            ]
        );
        assert_eq!(c.pending("k"), 1);
    }

    #[test]
    fn the_period_starts_at_the_first_event_passed_when_none_runs() {
        let t0 = Instant::now();
        let mut c = Cooldown::new(1, Duration::from_secs(10), 100);
        assert_eq!(c.admit("k", ms(t0, 0)), Ok(0));
        // Long after: a new period from 25 s, not one aligned to 0/10/20.
        assert_eq!(c.admit("k", ms(t0, 25_000)), Ok(0));
        assert_eq!(c.admit("k", ms(t0, 34_999)), Err(1));
        assert_eq!(c.admit("k", ms(t0, 35_000)), Ok(1));
    }

    #[test]
    fn keys_cool_down_separately() {
        let t0 = Instant::now();
        let mut c = Cooldown::new(1, Duration::from_secs(10), 100);
        assert_eq!(c.admit("a", t0), Ok(0));
        assert_eq!(c.admit("b", t0), Ok(0));
        assert_eq!(c.admit("a", ms(t0, 1)), Err(1));
        assert_eq!(c.admit("a", ms(t0, 2)), Err(2));
        assert_eq!(c.admit("b", ms(t0, 3)), Err(1));
        assert_eq!(c.admit("a", ms(t0, 10_000)), Ok(2));
        assert_eq!(c.admit("b", ms(t0, 10_000)), Ok(1));
    }

    #[test]
    fn give_back_restores_the_count_for_the_next_notification() {
        let t0 = Instant::now();
        let mut c = Cooldown::new(1, Duration::from_secs(10), 100);
        assert_eq!(c.admit("k", t0), Ok(0));
        assert_eq!(c.admit("k", ms(t0, 1)), Err(1));
        assert_eq!(c.admit("k", ms(t0, 10_000)), Ok(1));
        // That notification was lost: its count goes with the next one.
        c.give_back("k", 1);
        assert_eq!(c.pending("k"), 1);
        assert_eq!(c.admit("k", ms(t0, 10_001)), Err(1));
        assert_eq!(c.admit("k", ms(t0, 20_000)), Ok(2));
        // Unknown keys are ignored.
        c.give_back("nope", 5);
        assert_eq!(c.keys(), 1);
    }

    #[test]
    fn expire_reports_unsent_counts() {
        let t0 = Instant::now();
        let mut c = Cooldown::new(1, Duration::from_secs(10), 100);
        c.admit("quiet", t0).unwrap();
        c.admit("noisy", t0).unwrap();
        c.admit("noisy", ms(t0, 1)).unwrap_err();
        c.admit("noisy", ms(t0, 2)).unwrap_err();
        c.admit("late", ms(t0, 5000)).unwrap();
        let mut lost = Vec::new();
        c.expire(ms(t0, 9999), |k, n| lost.push((k.to_owned(), n)));
        assert_eq!((c.keys(), lost.len()), (3, 0));
        c.expire(ms(t0, 10_000), |k, n| lost.push((k.to_owned(), n)));
        assert_eq!(lost, [("noisy".to_owned(), 2)]);
        assert_eq!(c.keys(), 1);
    }

    #[test]
    fn evictions_are_counted() {
        let t0 = Instant::now();
        let mut c = Cooldown::new(1, Duration::from_secs(10), 2);
        assert_eq!(c.admit("a", t0), Ok(0));
        assert_eq!(c.admit("b", t0), Ok(0));
        assert_eq!(c.admit("c", t0), Ok(0)); // evicts a
        assert_eq!(c.admit("a", t0), Ok(0)); // a starts over; evicts b
        assert_eq!(c.admit("c", t0), Err(1));
        assert_eq!((c.evicted(), c.keys()), (2, 2));
    }

    #[test]
    fn admitting_a_known_key_does_not_allocate() {
        let t0 = Instant::now();
        let mut c = Cooldown::new(2, Duration::from_secs(1), 10);
        c.admit("k", t0).unwrap();
        let n = crate::policy::keys::alloc_count::allocations(|| {
            for m in 0..10_000 {
                let _ = c.admit("k", ms(t0, m));
            }
        });
        assert_eq!(n, 0);
    }

    #[test]
    fn a_flood_on_one_key_is_counted_exactly() {
        let t0 = Instant::now();
        let mut c = Cooldown::new(3, Duration::from_secs(60), 10);
        let (mut passed, mut reported) = (0u64, 0u64);
        // 100,000 events, one per millisecond: 100 s, so periods start at 0
        // and 60 s, 3 pass in each.
        for m in 0..100_000 {
            if let Ok(n) = c.admit("k", ms(t0, m)) {
                passed += 1;
                reported += n;
            }
        }
        assert_eq!(passed, 6);
        assert_eq!(reported + c.pending("k"), 100_000 - 6);
        assert_eq!(reported, 60_000 - 3);
    }
}
