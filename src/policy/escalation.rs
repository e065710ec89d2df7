//! Escalation: when an alarm gets more than `limit` events within `window`,
//! another alarm (a pager) is told, once per window, with the count
//! (failnozzle's "page when the error rate passes a limit").
//!
//! Events are counted in [`BUCKETS`] buckets of `window / BUCKETS` each, not
//! one timestamp per event, so the memory is fixed whatever the rate. The
//! price is precision: the count covers the current bucket and the
//! `BUCKETS - 1` before it, i.e. the events of the last `window` less up to
//! one bucket width (`window / 60`: 1 s of a 60 s window). An event is never
//! counted once it is more than `window` old; one up to `window / 60` younger
//! than that may already be dropped, so an escalation may come a little later
//! than an exact sliding window would send it, never earlier.
//!
//! The clock is passed in (`now`), so the logic is tested on a simulated clock.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use logalarm::policy::escalation::Escalation;
//! let t0 = Instant::now();
//! let mut e = Escalation::new(2, Duration::from_secs(60));
//! assert_eq!(e.event(t0), None);
//! assert_eq!(e.event(t0), None);
//! assert_eq!(e.event(t0), Some(3)); // more than 2 within 60 s
//! assert_eq!(e.event(t0), None); // once per window
//! ```

use std::time::{Duration, Instant};

use super::chain::Escalate;
use super::component::{
    self, AlarmRef, BuildContext, Cx, Kind, Policy, PolicyConfig, Step, TomlKeys,
};
use crate::component::de::Period;
use crate::component::toml_doc::{Reader, Schema};
use crate::component::{ConfigError, OptionDoc, Origin};
use logalarm_plugin_api::Notification;
use serde::Deserialize;

/// How many buckets a window is counted in.
pub const BUCKETS: usize = 60;

/// The escalation state of one alarm.
#[derive(Debug)]
pub struct Escalation {
    limit: u64,
    window: Duration,
    /// `window / BUCKETS` in nanoseconds, at least 1.
    width: u128,
    /// Bucket numbers count from here (the first event).
    base: Option<Instant>,
    /// Events per bucket; bucket `n` lives at `n % BUCKETS`.
    counts: [u64; BUCKETS],
    /// The number of the newest bucket.
    head: u64,
    /// Sum of `counts`.
    total: u64,
    /// When the last escalation was sent.
    last_sent: Option<Instant>,
}

impl Escalation {
    /// More than `limit` events within `window` escalate.
    pub fn new(limit: u32, window: Duration) -> Self {
        Escalation {
            limit: u64::from(limit),
            window,
            width: (window.as_nanos() / BUCKETS as u128).max(1),
            base: None,
            counts: [0; BUCKETS],
            head: 0,
            total: 0,
            last_sent: None,
        }
    }

    /// Counts one event (every event of the alarm, before any other policy). Returns
    /// `Some(count)` when this event makes the count within the sliding `window` exceed
    /// `limit` and no escalation was sent within the last `window`; the caller then sends
    /// one escalation notification carrying `count`.
    ///
    /// While the flood goes on, the first event a full `window` after the last
    /// escalation sends the next one. No allocation, O(1) amortised.
    pub fn event(&mut self, now: Instant) -> Option<u64> {
        self.advance(now);
        let slot = (self.head % BUCKETS as u64) as usize;
        self.counts[slot] += 1;
        self.total += 1;
        if self.total <= self.limit {
            return None;
        }
        if let Some(at) = self.last_sent
            && now.saturating_duration_since(at) < self.window
        {
            return None;
        }
        self.last_sent = Some(now);
        Some(self.total)
    }

    /// The events counted within the window at `now` (to the precision the
    /// module doc gives), for reports.
    pub fn count(&mut self, now: Instant) -> u64 {
        self.advance(now);
        self.total
    }

    /// The window the count covers.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Moves the newest bucket to the one `now` falls in, emptying those the
    /// window has left. A `now` before the newest bucket counts in it.
    fn advance(&mut self, now: Instant) {
        let base = *self.base.get_or_insert(now);
        let n = now.saturating_duration_since(base).as_nanos() / self.width;
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        if n <= self.head {
            return;
        }
        if n - self.head >= BUCKETS as u64 {
            self.counts = [0; BUCKETS];
            self.total = 0;
        } else {
            for b in self.head + 1..=n {
                let slot = (b % BUCKETS as u64) as usize;
                self.total -= self.counts[slot];
                self.counts[slot] = 0;
            }
        }
        self.head = n;
    }
}

/// The escalation as a policy component: TOML `escalate = { limit, window,
/// alarm }`, INI `alarm-escalate = NAME LIMIT WINDOW PAGER`.
pub static KIND: Kind = Kind {
    keys: &["escalate"],
    option: Some(OptionDoc::new(
        "alarm-escalate",
        "NAME LIMIT WINDOW PAGER",
        "Fire PAGER when alarm NAME has more than LIMIT events within WINDOW",
    )),
    ini_form: "LIMIT WINDOW PAGER, e.g. `errors 100 5m pager`",
    table: Schema {
        what: "escalate",
        keys: &[("limit", None), ("window", None), ("alarm", None)],
    },
    from_toml,
    from_ini,
};

/// `escalate = { limit, window, alarm }` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    limit: u32,
    window: Period,
    alarm: String,
}

/// A checked escalation: more than `limit` events within `window` fire
/// `alarm` once per window (failnozzle's rate page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscalateConfig {
    /// Events allowed within the window.
    pub limit: u32,
    /// The sliding window.
    pub window: Duration,
    /// The alarm fired (a pager).
    pub alarm: String,
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
    let (origin, e) = component::toml_value::<Table>(reader, path, key, value)?;
    if e.window.0.is_zero() {
        errors.push(ConfigError::new(
            &origin,
            "window must be above zero",
            "e.g. escalate = { limit = 100, window = \"5m\", alarm = \"pager\" }",
        ));
        return None;
    }
    Some(Box::new(EscalateConfig {
        limit: e.limit,
        window: e.window.0,
        alarm: e.alarm,
        origin,
    }))
}

fn from_ini(value: &str, origin: &Origin) -> Result<Box<dyn PolicyConfig>, String> {
    let bad = || format!("{value:?} is not `NAME {}`", KIND.ini_form);
    let (w, rest) = component::words(value, 4).ok_or_else(bad)?;
    let limit = component::count(w[1], "LIMIT")?;
    let window = crate::component::syntax::duration(w[2])?;
    if window.is_zero() || !rest.is_empty() {
        return Err(bad());
    }
    Ok(Box::new(EscalateConfig {
        limit,
        window,
        alarm: w[3].to_owned(),
        origin: origin.clone(),
    }))
}

impl PolicyConfig for EscalateConfig {
    fn kind(&self) -> &'static Kind {
        &KIND
    }
    fn origin(&self) -> &Origin {
        &self.origin
    }
    fn describe(&self, _alarm_key: Option<&str>) -> String {
        format!(
            "escalate to {} above {} events within {}",
            self.alarm,
            self.limit,
            component::human(self.window)
        )
    }
    fn fires(&self) -> Vec<&str> {
        vec![self.alarm.as_str()]
    }
    fn build(&self, cx: &BuildContext<'_>) -> Result<Box<dyn Policy>, Option<ConfigError>> {
        let to = match cx.alarm(&self.alarm) {
            AlarmRef::Found(i) => i,
            AlarmRef::Itself => {
                return Err(Some(ConfigError::new(
                    &self.origin,
                    format!("alarm {:?} cannot escalate to itself", cx.alarm),
                    "name a pager alarm",
                )));
            }
            AlarmRef::Unknown => {
                return Err(Some(ConfigError::new(
                    &self.origin,
                    format!("escalate names unknown alarm {:?}", self.alarm),
                    "define it or fix the name",
                )));
            }
            AlarmRef::Broken => return Err(None),
        };
        Ok(Box::new(EscalatePolicy {
            state: Escalation::new(self.limit, self.window),
            limit: self.limit,
            to,
        }))
    }
    fn clone_box(&self) -> Box<dyn PolicyConfig> {
        Box::new(self.clone())
    }
}

/// A running escalation: counts every event, and passes every one on.
#[derive(Debug)]
struct EscalatePolicy {
    state: Escalation,
    limit: u32,
    /// The pager alarm's index in the plan.
    to: u32,
}

impl Policy for EscalatePolicy {
    fn decide(&mut self, _note: &mut Notification, now: Instant, cx: &mut Cx) -> Step {
        if let Some(count) = self.state.event(now) {
            cx.escalate = Some(Escalate {
                alarm: self.to,
                count,
                limit: self.limit,
                window: self.state.window,
            });
        }
        Step::Next
    }
    fn fresh(&self) -> Box<dyn Policy> {
        Box::new(EscalatePolicy {
            state: Escalation::new(self.limit, self.state.window),
            limit: self.limit,
            to: self.to,
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

    fn secs(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_secs(n)
    }

    #[test]
    fn escalates_once_per_window_while_over_the_limit() {
        let t0 = Instant::now();
        let mut e = Escalation::new(3, Duration::from_secs(60));
        let got: Vec<Option<u64>> = [0, 1, 2, 3, 4, 5, 59, 60, 61]
            .into_iter()
            .map(|s| e.event(secs(t0, s)))
            .collect();
        // 4th event: 4 > 3. At 60 s the bucket of 0 s has left (count:
        // 1..=60 s = 7 events), and the last escalation (3 s) is 57 s ago. At
        // 61 s, 58 s after: still none. Exactly one window after (63 s): sent,
        // counting 4, 5, 59, 60, 61 and 63 s.
        assert_eq!(
            got,
            [None, None, None, Some(4), None, None, None, None, None]
        );
        assert_eq!(e.event(secs(t0, 63)), Some(6));
    }

    #[test]
    fn events_older_than_the_window_are_not_counted() {
        let t0 = Instant::now();
        let mut e = Escalation::new(2, Duration::from_secs(60));
        assert_eq!(e.event(secs(t0, 0)), None);
        assert_eq!(e.event(secs(t0, 30)), None);
        // At 60 s the event at 0 s is exactly a window old: dropped (the
        // bucket precision errs on the late side), so 2 events, not 3.
        assert_eq!(e.event(secs(t0, 60)), None);
        assert_eq!(e.count(secs(t0, 60)), 2);
        assert_eq!(e.event(secs(t0, 61)), Some(3));
        // A long silence empties everything.
        assert_eq!(e.count(secs(t0, 1000)), 0);
    }

    #[test]
    fn bucket_precision_is_one_sixtieth_of_the_window() {
        let t0 = Instant::now();
        let mut e = Escalation::new(100, Duration::from_secs(60));
        e.event(t0);
        // Bucket width 1 s: at 59.999 s the first event still counts, at
        // 60 s (its bucket has left) it does not.
        assert_eq!(e.count(t0 + Duration::from_millis(59_999)), 1);
        assert_eq!(e.count(t0 + Duration::from_millis(60_000)), 0);
        // An event at 0.5 s lives in bucket 0 too: dropped at 60 s, when it
        // is only 59.5 s old.
        let mut e = Escalation::new(100, Duration::from_secs(60));
        e.event(t0);
        e.event(t0 + Duration::from_millis(500));
        assert_eq!(e.count(t0 + Duration::from_millis(59_999)), 2);
        assert_eq!(e.count(t0 + Duration::from_secs(60)), 0);
    }

    #[test]
    fn a_million_events_keep_sixty_buckets_and_escalate_once_per_window() {
        let t0 = Instant::now();
        let window = Duration::from_secs(10);
        let mut e = Escalation::new(1000, window);
        let mut sent = Vec::new();
        // 1,000,000 events, one per 100 µs: 100 s at 10,000 a second.
        for i in 0..1_000_000u64 {
            let now = t0 + Duration::from_micros(100 * i);
            if let Some(n) = e.event(now) {
                sent.push((i, n));
            }
        }
        assert_eq!(e.counts.len(), BUCKETS);
        // The first at the 1001st event, then one each full window after: at
        // 0.1 s, 10.1 s, … 90.1 s. The count is the events in the current
        // bucket and the 59 before it (bucket width 1/6 s).
        assert_eq!(sent.len(), 10);
        assert_eq!(sent[0], (1000, 1001));
        for (k, &(i, n)) in sent.iter().enumerate().skip(1) {
            assert_eq!(i, 1000 + 100_000 * k as u64);
            // 59 whole buckets of 1666.67 events plus the current one's part.
            assert!((98_300..=100_000).contains(&n), "{k}: {n}");
        }
    }

    #[test]
    fn zero_window_and_limit() {
        let t0 = Instant::now();
        // A zero window counts in buckets of 1 ns (60 ns in all).
        let mut e = Escalation::new(0, Duration::ZERO);
        assert_eq!(e.event(t0), Some(1));
        assert_eq!(e.event(t0 + Duration::from_nanos(1)), Some(2));
        assert_eq!(e.event(t0 + Duration::from_millis(1)), Some(1));
    }
}
