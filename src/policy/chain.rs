//! One alarm's policies, composed in a fixed order. For each event (a line or
//! record that fires the alarm):
//!
//! 1. **escalation** counts it (every event counts, whatever happens next);
//!    past the limit, one escalation goes to the escalation's alarm per window;
//! 2. **threshold** holds it back until the key's `count`th event within the window;
//! 3. **digest** takes it into the pending digest (nothing is sent now; the
//!    digest goes out when its period ends);
//! 4. **cooldown** drops it when the key already had `max` notifications this
//!    period (counted; the count goes out with the key's next notification);
//! 5. **alarm-freq** (uWSGI's, innermost) drops it when it repeats the
//!    alarm's previous message within the period.
//!
//! What passes all of them becomes a notification. The order is what a user
//! expects of the names: a threshold decides whether there is anything to
//! say, a digest whether to say it now or later, a cooldown and alarm-freq
//! how often. The clock is passed in (`now`), so all of it is tested on a
//! simulated clock.
//!
//! Steps 1–4 are each a [`Policy`] built from its config (see
//! [`super::component`]); their order is that of
//! [`super::component::KINDS`]. An alarm without them takes the plain path:
//! alarm-freq alone ([`Chain::is_plain`]).

use super::component::{Cx, Policy};
use super::throttle::Throttle;
use logalarm_plugin_api::{Aggregate, Notification};
use logalarm_template::Template;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A compiled key template, shared by the policies that use it.
pub type Key = Arc<Template>;

/// An alarm's policies as built (see [`super::component`]): the alarm's
/// key, and its policies in chain order.
#[derive(Debug, Default)]
pub struct Policies {
    /// The alarm's key, for the policies without their own.
    pub key: Option<Key>,
    /// The policies, in chain order ([`super::component::KINDS`]).
    pub list: Vec<Box<dyn Policy>>,
}

impl Clone for Policies {
    /// The same policies with fresh state.
    fn clone(&self) -> Self {
        Policies {
            key: self.key.clone(),
            list: self.list.iter().map(|p| p.fresh()).collect(),
        }
    }
}

impl Policies {
    /// Whether any policy beyond alarm-freq is set.
    pub fn is_set(&self) -> bool {
        !self.list.is_empty()
    }
}

/// Why an event did not become a notification now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hold {
    /// The threshold is not reached yet: `seen` of `count` within `window`.
    Threshold {
        /// Events of the key within the window, this one included.
        seen: u32,
        /// Events needed.
        count: u32,
        /// The window.
        window: Duration,
    },
    /// The key had its notifications this period.
    Cooldown {
        /// Suppressed this period, this one included.
        suppressed: u64,
        /// Notifications allowed per period.
        max: u32,
        /// The period.
        period: Duration,
    },
    /// The same message as the alarm's previous one, within alarm-freq.
    AlarmFreq(Duration),
}

/// What the policies decided for one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It becomes a notification now.
    Sent,
    /// It is held back or dropped, and by what.
    Held(Hold),
    /// It went into the pending digest, sent when the period ends (`due`).
    Batched {
        /// When the digest's period ends.
        due: Instant,
    },
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |d: &Duration| humantime::format_duration(*d).to_string();
        match self {
            Verdict::Sent => f.write_str("sent"),
            Verdict::Batched { .. } => f.write_str("batched into the digest"),
            Verdict::Held(Hold::Threshold {
                seen,
                count,
                window,
            }) => write!(
                f,
                "held by threshold ({seen} of {count} within {})",
                d(window)
            ),
            Verdict::Held(Hold::Cooldown {
                suppressed,
                max,
                period,
            }) => write!(
                f,
                "suppressed by cooldown ({max} per {} sent; {suppressed} suppressed)",
                d(period)
            ),
            Verdict::Held(Hold::AlarmFreq(p)) => {
                write!(f, "dropped by alarm-freq (same message within {})", d(p))
            }
        }
    }
}

/// An escalation to send: more than the limit within the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Escalate {
    /// The alarm to fire.
    pub alarm: u32,
    /// Events within the window.
    pub count: u64,
    /// The limit.
    pub limit: u32,
    /// The window.
    pub window: Duration,
}

/// One alarm's policy state.
pub struct Chain {
    policies: Policies,
    throttle: Throttle,
    alarm_freq: Duration,
    /// Key templates that failed to render (the event counted under "").
    key_errors: u64,
}

impl Chain {
    /// The state for `policies`, with uWSGI's `alarm-freq` period innermost.
    pub fn new(policies: Policies, alarm_freq: Duration) -> Self {
        Chain {
            policies,
            throttle: Throttle::new(alarm_freq),
            alarm_freq,
            key_errors: 0,
        }
    }

    /// Decides for `note` (an event made at `now`): sets its `key` and adds
    /// to its `suppressed` count what the policies held back for it. An
    /// escalation this event set off is returned beside the verdict.
    pub fn decide(&mut self, note: &mut Notification, now: Instant) -> (Verdict, Option<Escalate>) {
        let mut cx = Cx::default();
        note.key = match &self.policies.key {
            Some(template) => cx.render(template, note),
            None => None,
        };
        let mut verdict = None;
        for policy in &mut self.policies.list {
            if let super::component::Step::Stop(v) = policy.decide(note, now, &mut cx) {
                verdict = Some(v);
                break;
            }
        }
        self.key_errors += cx.key_errors;
        let verdict = verdict.unwrap_or_else(|| match self.throttle.admit(&note.message, now) {
            Some(before) => {
                note.suppressed += before;
                Verdict::Sent
            }
            None => Verdict::Held(Hold::AlarmFreq(self.alarm_freq)),
        });
        (verdict, cx.escalate)
    }

    /// A notification's `suppressed` count that was taken but not delivered
    /// (its queue was full): given back so the next notification reports it.
    pub fn give_back(&mut self, note: &Notification) {
        if !self.policies.list.iter_mut().any(|p| p.give_back(note)) {
            self.throttle.give_back(&note.message, note.suppressed);
        }
    }

    /// When the pending digest is due, if one is pending.
    pub fn due(&self) -> Option<Instant> {
        self.policies.list.iter().filter_map(|p| p.due()).min()
    }

    /// The digest, when due by `now` (or at once with `force`).
    pub fn take_digest(&mut self, now: Instant, force: bool) -> Option<Aggregate> {
        self.policies
            .list
            .iter_mut()
            .find_map(|p| p.take(now, force))
    }

    /// Keys evicted so far by the keyed policies (their state was lost to the cap).
    pub fn evicted(&self) -> u64 {
        self.policies.list.iter().map(|p| p.evicted()).sum()
    }

    /// Events whose key template failed to render (each counted under the
    /// empty key).
    pub fn key_errors(&self) -> u64 {
        self.key_errors
    }

    /// Whether `alarm-freq` alone decides (no other policy is set).
    pub fn is_plain(&self) -> bool {
        !self.policies.is_set()
    }

    /// uWSGI's alarm-freq period.
    pub fn alarm_freq(&self) -> Duration {
        self.alarm_freq
    }

    /// The throttle, for the plain path.
    pub fn throttle(&mut self) -> &mut Throttle {
        &mut self.throttle
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::Origin;
    use crate::policy::component::{BuildContext, PolicyConfig};
    use crate::policy::cooldown::CooldownConfig;
    use crate::policy::digest::DigestConfig;
    use crate::policy::escalation::EscalateConfig;
    use crate::policy::threshold::ThresholdConfig;
    use logalarm_plugin_api::Source;
    use std::time::SystemTime;

    fn note(message: &str) -> Notification {
        Notification::new(
            "a".into(),
            "r".into(),
            message.as_bytes().to_vec(),
            Source::stdin(),
            SystemTime::UNIX_EPOCH,
        )
    }

    fn key(src: &str) -> Option<Key> {
        Some(Arc::new(Template::compile("key", src).unwrap()))
    }

    fn at() -> Origin {
        Origin::Arg {
            name: "test".into(),
        }
    }

    /// Builds `configs` for alarm 0 of a plan whose alarm 7 is `pager`.
    fn policies(key: Option<Key>, configs: &[&dyn PolicyConfig]) -> Policies {
        let index = |name: &str| (name == "pager").then_some(7);
        let defines = |name: &str| name == "pager";
        let cx = BuildContext {
            alarm: "a",
            me: 0,
            max_keys: 10,
            alarm_index: &index,
            defines: &defines,
        };
        Policies {
            key,
            list: configs.iter().map(|c| c.build(&cx).unwrap()).collect(),
        }
    }

    #[test]
    fn threshold_then_cooldown_then_alarm_freq_in_that_order() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let threshold = ThresholdConfig {
            count: 2,
            window: Duration::from_secs(60),
            key: None,
            origin: at(),
        };
        let cooldown = CooldownConfig {
            max: 1,
            period: Duration::from_secs(600),
            key: None,
            origin: at(),
        };
        let built = policies(key("{{ line[:1] }}"), &[&threshold, &cooldown]);
        let mut chain = Chain::new(built, Duration::from_secs(3));
        let mut decide = |m: &str, at| {
            let mut n = note(m);
            let (v, e) = chain.decide(&mut n, at);
            assert_eq!(e, None);
            (v, n.key.as_deref().map(str::to_owned), n.suppressed)
        };
        let held = |seen| {
            Verdict::Held(Hold::Threshold {
                seen,
                count: 2,
                window: Duration::from_secs(60),
            })
        };
        assert_eq!(decide("a1", s(0)), (held(1), Some("a".into()), 0));
        assert_eq!(decide("b1", s(1)), (held(1), Some("b".into()), 0));
        assert_eq!(decide("a2", s(2)), (Verdict::Sent, Some("a".into()), 0));
        // The threshold starts again for a; the next pair passes it, the cooldown drops it.
        assert_eq!(decide("a3", s(3)), (held(1), Some("a".into()), 0));
        let cooled = decide("a4", s(4));
        assert_eq!(
            cooled.0,
            Verdict::Held(Hold::Cooldown {
                suppressed: 1,
                max: 1,
                period: Duration::from_secs(600)
            })
        );
        // After the period, the count of what the cooldown dropped goes out.
        assert_eq!(decide("a5", s(700)), (held(1), Some("a".into()), 0));
        assert_eq!(decide("a6", s(701)), (Verdict::Sent, Some("a".into()), 1));
    }

    #[test]
    fn digest_batches_and_escalation_counts_every_event() {
        let t0 = Instant::now();
        let digest = DigestConfig {
            period: Duration::from_secs(60),
            max_groups: 100,
            key: None,
            markers: Vec::new(),
            origin: at(),
        };
        let escalate = EscalateConfig {
            limit: 2,
            window: Duration::from_secs(60),
            alarm: "pager".into(),
            origin: at(),
        };
        let mut chain = Chain::new(policies(None, &[&escalate, &digest]), Duration::ZERO);
        let mut escalations = Vec::new();
        for i in 0..5u64 {
            let mut n = note(&format!("db timeout after {i} ms"));
            let (v, e) = chain.decide(&mut n, t0 + Duration::from_secs(i));
            assert_eq!(
                v,
                Verdict::Batched {
                    due: t0 + Duration::from_secs(60)
                }
            );
            escalations.extend(e);
        }
        // The third event passes the limit of 2: one escalation per window.
        assert_eq!(
            escalations,
            [Escalate {
                alarm: 7,
                count: 3,
                limit: 2,
                window: Duration::from_secs(60)
            }]
        );
        assert_eq!(chain.take_digest(t0 + Duration::from_secs(59), false), None);
        let digest = chain
            .take_digest(t0 + Duration::from_secs(60), false)
            .unwrap();
        assert_eq!((digest.count, digest.groups.len()), (5, 1));
        assert_eq!(digest.groups[0].key, "db timeout after <n> ms");
    }

    #[test]
    fn plain_group_keys_are_read_directly() {
        use crate::policy::component::direct_group;
        assert_eq!(direct_group("{{ caps.ip }}"), Some(Err("ip")));
        assert_eq!(direct_group(" {{caps[2]}} "), Some(Ok(2)));
        assert_eq!(direct_group("{{ caps.ip | upper }}"), None);
        assert_eq!(direct_group("{{ caps.ip }}-{{ caps.user }}"), None);
        assert_eq!(direct_group("{{ line }}"), None);
        // Direct and rendered give the same key.
        let mut n = note("x");
        n.caps = Some(Arc::new(logalarm_plugin_api::Captures {
            groups: vec![Some("x 1.2.3.4".into()), Some("1.2.3.4".into()), None],
            names: vec![("ip".into(), 1), ("user".into(), 2)],
        }));
        let mut cx = Cx::default();
        for (direct, rendered) in [
            ("{{ caps.ip }}", "{{ caps.ip }}{{ '' }}"),
            ("{{ caps.user }}", "{{ caps.user }}{{ '' }}"),
            ("{{ caps[0] }}", "{{ caps[0] }}{{ '' }}"),
        ] {
            let a = cx.render(&key(direct).unwrap(), &n);
            let b = cx.render(&key(rendered).unwrap(), &n);
            assert_eq!(a, b, "{direct}");
        }
        assert_eq!(cx.key_errors, 0);
    }

    #[test]
    fn alarm_freq_alone_drops_repeats() {
        let t0 = Instant::now();
        let mut chain = Chain::new(Policies::default(), Duration::from_secs(3));
        assert!(chain.is_plain());
        let mut n = note("same");
        assert_eq!(chain.decide(&mut n, t0).0, Verdict::Sent);
        let mut n = note("same");
        assert_eq!(
            chain.decide(&mut n, t0 + Duration::from_secs(1)).0,
            Verdict::Held(Hold::AlarmFreq(Duration::from_secs(3)))
        );
    }
}
