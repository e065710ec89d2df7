//! Threshold: an alarm fires only when `count` events of one key arrived
//! within `window` (the Heroku dyno monitor; fail2ban's `maxretry` within
//! `findtime`), so one failed login is noise and five from one IP in a minute
//! is an attack.
//!
//! The window slides: the event that makes the key's last `count` events span
//! at most `window` (an event exactly `window` old still counts) goes on, and
//! the key's history is cleared, so the next firing needs `count` new events.
//! Per key the memory is at most `count` timestamps (older ones can never
//! matter again), whatever the event rate; keys are bounded by
//! [`Keyed`].
//!
//! The clock is passed in (`now`), so the logic is tested on a simulated clock.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use logalarm::policy::threshold::Threshold;
//! let t0 = Instant::now();
//! let mut t = Threshold::new(3, Duration::from_secs(60), 1000);
//! assert_eq!(t.admit("1.2.3.4", t0), Err(1));
//! assert_eq!(t.admit("1.2.3.4", t0 + Duration::from_secs(30)), Err(2));
//! assert_eq!(t.admit("5.6.7.8", t0 + Duration::from_secs(31)), Err(1));
//! assert_eq!(t.admit("1.2.3.4", t0 + Duration::from_secs(60)), Ok(()));
//! assert_eq!(t.admit("1.2.3.4", t0 + Duration::from_secs(61)), Err(1));
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::chain::{Hold, Key, Verdict};
use super::component::{
    self, BuildContext, Cx, Kind, Policy, PolicyConfig, Step, TomlKeys, key_text,
};
use super::keys::Keyed;
use crate::component::de::Period;
use crate::component::range::Count;
use crate::component::toml_doc::{Reader, Schema};
use crate::component::{ConfigError, OptionDoc, Origin};
use logalarm_plugin_api::Notification;
use serde::Deserialize;

/// The threshold state of one alarm: per key, the times of its recent events.
#[derive(Debug)]
pub struct Threshold {
    count: u32,
    window: Duration,
    keys: Keyed<VecDeque<Instant>>,
}

impl Threshold {
    /// A threshold of `count` events (0 is taken as 1: every event goes on)
    /// within `window`, remembering at most `max_keys` keys.
    pub fn new(count: u32, window: Duration, max_keys: usize) -> Self {
        Threshold {
            count: count.max(1),
            window,
            keys: Keyed::new(max_keys),
        }
    }

    /// Counts one event of `key` at `now`.
    ///
    /// `Ok(())` = reached: the event goes on (and the key starts over);
    /// `Err(seen)` = held back, `seen` events of this key within the window so
    /// far (this one included; `seen < count`).
    ///
    /// Allocates only for a key not held yet (its name and room for up to 16
    /// timestamps), and as a key's timestamps grow towards `count`.
    pub fn admit(&mut self, key: &str, now: Instant) -> Result<(), u32> {
        let count = self.count as usize;
        let window = self.window;
        // Room for a few timestamps at first: a key rarely reaches a large count.
        let times = self
            .keys
            .entry(key, || VecDeque::with_capacity(count.min(16)));
        while let Some(&oldest) = times.front() {
            if now.saturating_duration_since(oldest) > window {
                times.pop_front();
            } else {
                break;
            }
        }
        if times.len() + 1 >= count {
            times.clear();
            return Ok(());
        }
        times.push_back(now);
        // `times.len() < count`, a u32.
        Err(u32::try_from(times.len()).unwrap_or(u32::MAX))
    }

    /// Drops the keys none of whose events is within the window at `now`
    /// (they would start from zero anyway); call it now and then (on a tick)
    /// so that idle keys do not hold memory until evicted.
    pub fn expire(&mut self, now: Instant) {
        let window = self.window;
        self.keys.retain(|_, times| {
            times
                .back()
                .is_some_and(|&last| now.saturating_duration_since(last) <= window)
        });
    }

    /// Keys held now.
    pub fn keys(&self) -> usize {
        self.keys.len()
    }

    /// Keys evicted so far because more than `max_keys` were counting at once
    /// (their partial counts are lost: an attacker spreading over more keys
    /// than `max_keys` can stay below the threshold; the count shows it).
    pub fn evicted(&self) -> u64 {
        self.keys.evicted()
    }
}

/// The threshold as a policy component: TOML `threshold = { count, window,
/// key }`, INI `alarm-threshold = NAME COUNT WINDOW [KEY]`.
pub static KIND: Kind = Kind {
    keys: &["threshold"],
    option: Some(OptionDoc::new(
        "alarm-threshold",
        "NAME COUNT WINDOW [KEY]",
        "Fire alarm NAME only on the COUNTth event of a key within WINDOW",
    )),
    ini_form: "COUNT WINDOW [KEY], e.g. `ssh 5 60s {{ caps.ip }}`",
    table: Schema {
        what: "threshold",
        keys: &[("count", None), ("window", None), ("key", None)],
    },
    from_toml,
    from_ini,
};

/// `count`: 1 to 100,000 events of a key within the window. Each key keeps
/// a timestamp per event up to `count` (16 bytes each), for every key held
/// (`max_keys`): at the top, 1.6 MB per key.
pub const COUNT: Count = Count::new(1, 100_000, "events");

/// `threshold = { count, window, key }` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    count: u32,
    window: Period,
    key: Option<String>,
}

/// A checked threshold: fire only on the `count`th event of a key within
/// `window` (the Heroku dyno monitor's N-in-T; fail2ban's `maxretry` within
/// `findtime`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThresholdConfig {
    /// Events needed, at least 1.
    pub count: u32,
    /// Within this period.
    pub window: Duration,
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
    let (origin, t) = component::toml_value::<Table>(reader, path, key, value)?;
    if t.count == 0 || t.window.0.is_zero() {
        errors.push(ConfigError::new(
            &origin,
            "count must be at least 1 and window above zero",
            "e.g. threshold = { count = 5, window = \"60s\" }",
        ));
        return None;
    }
    if let Err(e) = COUNT.check(t.count) {
        errors.push(ConfigError::at(&origin, format!("count {e}")));
        return None;
    }
    Some(Box::new(ThresholdConfig {
        count: t.count,
        window: t.window.0,
        key: t.key,
        origin,
    }))
}

fn from_ini(value: &str, origin: &Origin) -> Result<Box<dyn PolicyConfig>, String> {
    let bad = || format!("{value:?} is not `NAME {}`", KIND.ini_form);
    let (w, rest) = component::words(value, 3).ok_or_else(bad)?;
    let count = component::count(w[1], "COUNT")?;
    let window = crate::component::syntax::duration(w[2])?;
    if count == 0 || window.is_zero() {
        return Err("COUNT must be at least 1 and WINDOW above zero".into());
    }
    COUNT.check(count).map_err(|e| format!("COUNT {e}"))?;
    Ok(Box::new(ThresholdConfig {
        count,
        window,
        key: (!rest.is_empty()).then(|| rest.to_owned()),
        origin: origin.clone(),
    }))
}

impl PolicyConfig for ThresholdConfig {
    fn kind(&self) -> &'static Kind {
        &KIND
    }
    fn origin(&self) -> &Origin {
        &self.origin
    }
    fn describe(&self, alarm_key: Option<&str>) -> String {
        format!(
            "threshold {} within {}{}",
            self.count,
            component::human(self.window),
            component::per_key(self.key.as_deref(), alarm_key)
        )
    }
    fn templates(&self) -> Vec<&str> {
        self.key.as_deref().into_iter().collect()
    }
    fn build(&self, cx: &BuildContext<'_>) -> Result<Box<dyn Policy>, Option<ConfigError>> {
        let key = match &self.key {
            Some(k) => Some(cx.key(k, "threshold.key", &self.origin)?),
            None => None,
        };
        Ok(Box::new(ThresholdPolicy {
            state: Threshold::new(self.count, self.window, cx.max_keys),
            max_keys: cx.max_keys,
            key,
        }))
    }
    fn clone_box(&self) -> Box<dyn PolicyConfig> {
        Box::new(self.clone())
    }
}

/// A running threshold: holds an event back until its key's `count`th.
#[derive(Debug)]
struct ThresholdPolicy {
    state: Threshold,
    max_keys: usize,
    key: Option<Key>,
}

impl Policy for ThresholdPolicy {
    fn decide(&mut self, note: &mut Notification, now: Instant, cx: &mut Cx) -> Step {
        let k = cx.key(self.key.as_ref(), note);
        match self.state.admit(key_text(k.as_ref()), now) {
            Ok(()) => Step::Next,
            Err(seen) => Step::Stop(Verdict::Held(Hold::Threshold {
                seen,
                count: self.state.count,
                window: self.state.window,
            })),
        }
    }
    fn evicted(&self) -> u64 {
        self.state.evicted()
    }
    fn fresh(&self) -> Box<dyn Policy> {
        Box::new(ThresholdPolicy {
            state: Threshold::new(self.state.count, self.state.window, self.max_keys),
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

    #[test]
    fn config_from_ini_and_toml() {
        let at = Origin::Arg { name: "t".into() };
        let c = from_ini("ssh 5 60s {{ caps.ip }}", &at).unwrap();
        assert_eq!(
            c.describe(None),
            "threshold 5 within 1m per key {{ caps.ip }}"
        );
        assert_eq!(
            from_ini("ssh 0 60s", &at).unwrap_err(),
            "COUNT must be at least 1 and WINDOW above zero"
        );
        assert_eq!(
            from_ini("ssh 5", &at).unwrap_err(),
            "\"ssh 5\" is not `NAME COUNT WINDOW [KEY], e.g. `ssh 5 60s {{ caps.ip }}``"
        );
    }

    fn secs(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_secs(n)
    }

    #[test]
    fn fires_on_the_count_th_event_within_the_window_and_starts_over() {
        let t0 = Instant::now();
        let mut t = Threshold::new(3, Duration::from_secs(10), 100);
        let got: Vec<Result<(), u32>> = [0, 1, 2, 3, 4, 5, 6]
            .into_iter()
            .map(|s| t.admit("k", secs(t0, s)))
            .collect();
        assert_eq!(
            got,
            [Err(1), Err(2), Ok(()), Err(1), Err(2), Ok(()), Err(1)]
        );
    }

    #[test]
    fn window_edge_is_inclusive() {
        let t0 = Instant::now();
        let w = Duration::from_secs(10);
        let mut t = Threshold::new(2, w, 100);
        assert_eq!(t.admit("k", t0), Err(1));
        // Exactly `window` later: the two events span exactly the window.
        assert_eq!(t.admit("k", t0 + w), Ok(()));
        assert_eq!(t.admit("k", secs(t0, 20)), Err(1));
        // One nanosecond beyond: the first has left the window.
        assert_eq!(t.admit("k", secs(t0, 30) + Duration::from_nanos(1)), Err(1));
    }

    #[test]
    fn old_events_slide_out() {
        let t0 = Instant::now();
        let mut t = Threshold::new(3, Duration::from_secs(10), 100);
        assert_eq!(t.admit("k", secs(t0, 0)), Err(1));
        assert_eq!(t.admit("k", secs(t0, 5)), Err(2));
        // At 12 the event at 0 is gone: 5 and 12 remain.
        assert_eq!(t.admit("k", secs(t0, 12)), Err(2));
        assert_eq!(t.admit("k", secs(t0, 14)), Ok(()));
        // At 40 all are gone.
        assert_eq!(t.admit("k", secs(t0, 40)), Err(1));
    }

    #[test]
    fn keys_count_separately() {
        let t0 = Instant::now();
        let mut t = Threshold::new(2, Duration::from_secs(10), 100);
        assert_eq!(t.admit("a", t0), Err(1));
        assert_eq!(t.admit("b", t0), Err(1));
        assert_eq!(t.admit("", t0), Err(1));
        assert_eq!(t.admit("b", secs(t0, 1)), Ok(()));
        assert_eq!(t.admit("a", secs(t0, 2)), Ok(()));
        assert_eq!(t.keys(), 3);
    }

    #[test]
    fn count_one_passes_everything() {
        let t0 = Instant::now();
        let mut t = Threshold::new(1, Duration::from_secs(10), 10);
        assert_eq!(t.admit("k", t0), Ok(()));
        assert_eq!(t.admit("k", t0), Ok(()));
        let mut z = Threshold::new(0, Duration::ZERO, 10);
        assert_eq!(z.admit("k", t0), Ok(()));
    }

    #[test]
    fn memory_per_key_is_bounded_by_count() {
        let t0 = Instant::now();
        // Events 1 s apart in a 2 s window never reach 5: the key keeps at
        // most the 3 within the window, however many arrive.
        let mut t = Threshold::new(5, Duration::from_secs(2), 10);
        for s in 0..100_000 {
            assert!(t.admit("k", secs(t0, s)).is_err());
        }
        let times = t.keys.get_mut("k").unwrap();
        assert_eq!(times.len(), 3);
        assert!(times.capacity() < 16);
    }

    #[test]
    fn admitting_a_known_key_does_not_allocate() {
        let t0 = Instant::now();
        let mut t = Threshold::new(4, Duration::from_secs(10), 10);
        t.admit("k", t0).unwrap_err();
        let n = crate::policy::keys::alloc_count::allocations(|| {
            for s in 0..10_000 {
                let _ = t.admit("k", secs(t0, s));
            }
        });
        assert_eq!(n, 0);
    }

    #[test]
    fn evictions_are_counted_and_lose_the_partial_count() {
        let t0 = Instant::now();
        let mut t = Threshold::new(2, Duration::from_secs(10), 2);
        assert_eq!(t.admit("a", t0), Err(1));
        assert_eq!(t.admit("b", t0), Err(1));
        assert_eq!(t.admit("c", t0), Err(1)); // evicts a
        assert_eq!(t.evicted(), 1);
        assert_eq!(t.admit("a", t0), Err(1)); // evicts b; a starts over
        assert_eq!(t.admit("c", t0), Ok(()));
        assert_eq!((t.evicted(), t.keys()), (2, 2));
    }

    #[test]
    fn expire_drops_idle_keys() {
        let t0 = Instant::now();
        let mut t = Threshold::new(3, Duration::from_secs(10), 100);
        t.admit("old", t0).unwrap_err();
        t.admit("new", secs(t0, 5)).unwrap_err();
        t.expire(secs(t0, 10));
        assert_eq!(t.keys(), 2);
        t.expire(secs(t0, 11));
        assert_eq!(t.keys(), 1);
        assert_eq!(t.admit("new", secs(t0, 12)), Err(2));
        assert_eq!(t.evicted(), 0);
    }
}
