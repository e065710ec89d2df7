//! Alarms about what did *not* happen, and about recovery:
//!
//! - **expected lines** (`[[expect]]`): a line matching the regex must be seen
//!   at least every `within`; its absence fires the alarms once, and its
//!   return fires them once more (`resolved`) — a dead man's switch over a
//!   heartbeat line, as swatchdog's and SEC's "absence" rules;
//! - **silent inputs** (`stall_after` on an input, on `[run]`, or at the top
//!   level for every input together): no line at all for the period;
//! - **recovery** (`resolve` on a rule): after the rule fired, the first line
//!   matching its `resolve` regex sends one `resolved` notification.
//!
//! Expected and recovery lines are found by the matcher in its one pass, as
//! hidden rules after the configured ones ([`Hidden`]). The clock is passed
//! in, so the logic is tested on a simulated clock.

use crate::input::component::SourceFilter;
use logalarm_plugin_api::{Kind, Source};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a hidden rule (one the matcher runs beyond the configured rules) stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hidden {
    /// An expected line, by index into the expectations.
    Expect(usize),
    /// A rule's recovery line, by the rule's index.
    Resolve(u32),
}

/// A notification to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Made {
    /// The alarms it goes to.
    pub alarms: Vec<u32>,
    /// What it reports: [`Kind::Absent`] or [`Kind::Resolved`].
    pub kind: Kind,
    /// What it is about, shown as the notification's rule.
    pub rule: Arc<str>,
    /// Its message.
    pub message: Vec<u8>,
    /// When it happened: for an absence, when the silence reached its limit
    /// (found on the next tick live, on the next line replaying a log).
    pub at: Instant,
}

/// Which lines keep a stall watch quiet.
#[derive(Clone)]
pub enum Silence {
    /// Any line at all.
    Any,
    /// Lines of one configured input, as it tells its own.
    Input(SourceFilter),
    /// Lines of the wrapped process.
    Child,
}

impl std::fmt::Debug for Silence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Silence::Any => "Any",
            Silence::Input(_) => "Input",
            Silence::Child => "Child",
        })
    }
}

impl Silence {
    fn covers(&self, source: &Source) -> bool {
        match self {
            Silence::Any => true,
            Silence::Input(own) => own(source),
            Silence::Child => source.kind() == "child",
        }
    }
}

struct Watch {
    /// For expectations: the regex; for stalls: the input's name.
    what: Arc<str>,
    /// Stalls only: which sources count.
    silence: Option<Silence>,
    within: Duration,
    alarms: Vec<u32>,
    last: Instant,
    /// Reported absent, and not seen since.
    absent: bool,
}

impl Watch {
    fn absent_message(&self) -> String {
        let d = humantime::format_duration(self.within);
        match self.silence {
            None => format!("expected line /{}/ not seen for {d}", self.what),
            Some(_) if self.what.is_empty() => format!("no input has had a line for {d}"),
            Some(_) => format!("input {} has been silent for {d}", self.what),
        }
    }

    fn back_message(&self, now: Instant) -> String {
        let d = humantime::format_duration(round(now.saturating_duration_since(self.last)));
        match self.silence {
            None => format!("expected line /{}/ seen again after {d}", self.what),
            Some(_) if self.what.is_empty() => format!("lines again after {d}"),
            Some(_) => format!("input {} has lines again after {d}", self.what),
        }
    }

    /// Seen at `now`: the recovery to send, if it was reported absent.
    fn seen(&mut self, now: Instant) -> Option<Made> {
        let made = self.absent.then(|| Made {
            alarms: self.alarms.clone(),
            kind: Kind::Resolved,
            rule: self.what.clone(),
            message: self.back_message(now).into_bytes(),
            at: now,
        });
        self.absent = false;
        self.last = now;
        made
    }

    fn due(&mut self, now: Instant) -> Option<Made> {
        if self.absent || now.saturating_duration_since(self.last) < self.within {
            return None;
        }
        self.absent = true;
        Some(Made {
            alarms: self.alarms.clone(),
            kind: Kind::Absent,
            rule: self.what.clone(),
            message: self.absent_message().into_bytes(),
            // `within` is at most 365 days (its range); checked all the same.
            at: self.last.checked_add(self.within).unwrap_or(now),
        })
    }
}

/// Durations in reports, to the millisecond.
fn round(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Every expectation, stall watch and recovery of a config.
#[derive(Default)]
pub struct Watches {
    /// Rule index of the first hidden rule (the number of configured rules).
    first_hidden: u32,
    hidden: Vec<Hidden>,
    expects: Vec<Watch>,
    stalls: Vec<Watch>,
    /// Per configured rule: `Some(fired since its last recovery)` when it has `resolve`.
    resolves: Vec<Option<bool>>,
}

impl Watches {
    /// No watches yet; `rules` is the number of configured rules (hidden
    /// rules are numbered after them, in the order added). Each watch added
    /// starts at the `now` it is added with.
    pub fn new(rules: usize) -> Self {
        Watches {
            first_hidden: u32::try_from(rules).unwrap_or(u32::MAX),
            resolves: vec![None; rules],
            ..Watches::default()
        }
    }

    /// Adds an expected line (its hidden rule is the next one): `regex` for
    /// reports, seen at least every `within`, else `alarms` fire.
    pub fn expect(&mut self, regex: &str, within: Duration, alarms: Vec<u32>, now: Instant) {
        self.hidden.push(Hidden::Expect(self.expects.len()));
        self.expects.push(Watch {
            what: regex.into(),
            silence: None,
            within,
            alarms,
            last: now,
            absent: false,
        });
    }

    /// Adds rule `rule`'s recovery line (its hidden rule is the next one).
    pub fn resolve(&mut self, rule: u32) {
        self.hidden.push(Hidden::Resolve(rule));
        if let Some(r) = self.resolves.get_mut(rule as usize) {
            *r = Some(false);
        }
    }

    /// Adds a stall watch over `silence`, named `name` in reports.
    pub fn stall(
        &mut self,
        name: &str,
        silence: Silence,
        after: Duration,
        alarms: Vec<u32>,
        now: Instant,
    ) {
        self.stalls.push(Watch {
            what: name.into(),
            silence: Some(silence),
            within: after,
            alarms,
            last: now,
            absent: false,
        });
    }

    /// Whether there are hidden rules at all (else lines need no second look).
    pub fn has_hidden(&self) -> bool {
        !self.hidden.is_empty()
    }

    /// What matcher rule `rule` stands for, when it is a hidden one.
    pub fn hidden(&self, rule: u32) -> Option<Hidden> {
        let i = rule.checked_sub(self.first_hidden)?;
        self.hidden.get(i as usize).copied()
    }

    /// Expectation `e` was seen at `now`: its recovery, when it was absent.
    pub fn expect_seen(&mut self, e: usize, now: Instant) -> Option<Made> {
        self.expects.get_mut(e)?.seen(now)
    }

    /// A batch of lines from `source` arrived at `now`: the recoveries of the
    /// inputs that were silent.
    pub fn input_seen(&mut self, source: &Source, now: Instant) -> Vec<Made> {
        self.stalls
            .iter_mut()
            .filter(|w| w.silence.as_ref().is_some_and(|s| s.covers(source)))
            .filter_map(|w| w.seen(now))
            .collect()
    }

    /// Rule `rule` fired an alarm: its next recovery line is worth a notification.
    pub fn fired(&mut self, rule: u32) {
        if let Some(Some(fired)) = self.resolves.get_mut(rule as usize) {
            *fired = true;
        }
    }

    /// Whether rule `rule` fired since its last recovery (and forgets it).
    pub fn take_fired(&mut self, rule: u32) -> bool {
        match self.resolves.get_mut(rule as usize) {
            Some(Some(fired)) => std::mem::take(fired),
            _ => false,
        }
    }

    /// The absences due by `now`, each reported once until seen again.
    pub fn due(&mut self, now: Instant) -> Vec<Made> {
        self.expects
            .iter_mut()
            .chain(self.stalls.iter_mut())
            .filter_map(|w| w.due(now))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_line_absent_then_back_once_each() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut w = Watches::new(2);
        w.expect("heartbeat ok", Duration::from_secs(60), vec![1], t0);
        assert_eq!(w.hidden(2), Some(Hidden::Expect(0)));
        assert_eq!(w.hidden(1), None);
        assert!(w.due(s(59)).is_empty());
        assert_eq!(w.expect_seen(0, s(59)), None);
        // 60 s after the last sighting, exactly: absent, reported once.
        assert!(w.due(s(118)).is_empty());
        let absent = w.due(s(119));
        assert_eq!(absent.len(), 1);
        assert_eq!(absent[0].kind, Kind::Absent);
        assert_eq!(
            String::from_utf8_lossy(&absent[0].message),
            "expected line /heartbeat ok/ not seen for 1m"
        );
        assert!(w.due(s(500)).is_empty());
        let back = w.expect_seen(0, s(600)).unwrap();
        assert_eq!(back.kind, Kind::Resolved);
        assert_eq!(
            String::from_utf8_lossy(&back.message),
            "expected line /heartbeat ok/ seen again after 9m 1s"
        );
        assert_eq!(w.expect_seen(0, s(601)), None);
    }

    #[test]
    fn stalls_cover_their_inputs_only() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut w = Watches::new(0);
        let files = crate::input::follow::config::FileConfig {
            paths: vec!["/var/log/*.log".into()],
            from: crate::input::follow::config::StartAt::End,
            origin: crate::component::Origin::Arg { name: "t".into() },
        };
        let own = crate::input::component::InputConfig::sources(&files).unwrap();
        w.stall(
            "/var/log/*.log",
            Silence::Input(own),
            Duration::from_secs(10),
            vec![0],
            t0,
        );
        let file = Source::new("file", std::ffi::OsStr::new("/var/log/a.log"));
        let nested = Source::new("file", std::ffi::OsStr::new("/var/log/x/a.log"));
        assert!(w.input_seen(&Source::stdin(), s(5)).is_empty());
        assert_eq!(w.due(s(10)).len(), 1);
        // A file in a subdirectory is not the input's (`*` never matches `/`).
        assert!(w.input_seen(&nested, s(11)).is_empty());
        let back = w.input_seen(&file, s(12));
        assert_eq!(back.len(), 1);
        assert_eq!(
            String::from_utf8_lossy(&back[0].message),
            "input /var/log/*.log has lines again after 12s"
        );
    }

    #[test]
    fn recovery_only_after_firing() {
        let mut w = Watches::new(3);
        w.resolve(1);
        assert_eq!(w.hidden(3), Some(Hidden::Resolve(1)));
        assert!(!w.take_fired(1));
        w.fired(1);
        w.fired(0);
        assert!(w.take_fired(1));
        assert!(!w.take_fired(1));
        assert!(!w.take_fired(0));
    }
}
