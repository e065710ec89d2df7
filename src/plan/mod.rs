//! Checks a [`Config`] as a whole and builds what runs: each alarm's action
//! (through its plugin) and the compiled [`Matcher`].
//!
//! Every problem is reported at once, each naming where it was written: unknown
//! plugin, bad plugin arguments, a TOML key the plugin does not take, bad
//! `retry` values, a `message` template that does not compile or fails on a
//! sample notification, duplicate alarm name (uWSGI silently keeps the first), a
//! rule naming an unknown alarm, an `on_failure` naming an unknown alarm, the
//! alarm itself or closing a loop, a bad regex, no rules at all.
//!
//! The config readers check each item on its own; what is checked here needs
//! the plugins or more than one item (names to indexes, `on_failure` and
//! escalation loops, capture groups used by templates), one step per module,
//! in the order [`build`] runs them (which is the order the errors are listed
//! in):
//!
//! - `alarms`: each alarm built through its plugin, then the `on_failure`
//!   fallbacks resolved to indexes (no loops);
//! - `policies`: each alarm's policies built, the alarms they name resolved;
//! - `rules`: the rules, the alarms fired without a rule (`on_exit`,
//!   `alarm-fd`) and the hidden rules (`resolve`, `[[expect]]`);
//! - `templates`: the capture groups the alarms' templates use, against the
//!   rules that fire them;
//! - `watches`: the silent-input watches (`stall_after`).
//!
//! This module holds what they make ([`Plan`]) and joins them.

mod alarms;
mod policies;
mod rules;
mod templates;
mod watches;

pub use alarms::PlannedAlarm;

use crate::config::{Config, ConfigError, Origin};
use crate::matcher::{Matcher, Rule};
use crate::policy::watch::{Silence, Watches};
use crate::record::Spec as RecordSpec;
use std::sync::Arc;
use std::sync::atomic::AtomicI32;
use std::time::Duration;

/// One rule, for reports.
#[derive(Clone, Debug)]
pub struct PlannedRule {
    /// The regex as written (shared with every notification it fires).
    pub regex: Arc<str>,
    /// Negative rule.
    pub negate: bool,
    /// Indexes into [`Plan::alarms`].
    pub alarms: Vec<u32>,
    /// The pattern compiled for its capture groups, when it has any.
    pub captures: Option<Arc<regex_automata::meta::Regex>>,
    /// A multiline rule's record spec ([`crate::record`]).
    pub multiline: Option<Arc<RecordSpec>>,
    /// Where it was defined.
    pub origin: Origin,
}

/// A checked configuration, ready to run.
pub struct Plan {
    /// The alarms, in definition order.
    pub alarms: Vec<PlannedAlarm>,
    /// The rules, in order.
    pub rules: Vec<PlannedRule>,
    /// The compiled rules.
    pub matcher: Matcher,
    /// Under `logalarm run`: the wrapped process's pid while it runs (0 when
    /// none runs), shared with the actions that target it.
    pub child_pid: Option<Arc<AtomicI32>>,
    /// The hidden rules the matcher runs after the configured ones: recovery
    /// lines (`resolve`) and expected lines (`[[expect]]`), in order.
    pub hidden: Vec<HiddenRule>,
    /// Silent-input watches: what, the silence allowed, the alarms.
    pub stalls: Vec<(Silence, String, Duration, Vec<u32>)>,
    /// uWSGI's `alarm-freq`.
    pub alarm_freq: Duration,
    /// uWSGI's `alarm-msg-size`, in bytes.
    pub msg_size: usize,
}

/// A rule the matcher runs beyond the configured ones (see [`crate::policy::watch`]).
#[derive(Clone, Debug)]
pub struct HiddenRule {
    /// The regex as written.
    pub regex: Arc<str>,
    /// What it stands for.
    pub what: HiddenDef,
}

/// What a [`HiddenRule`] stands for.
#[derive(Clone, Debug)]
pub enum HiddenDef {
    /// Rule `0`'s recovery line.
    Resolve(u32),
    /// An expected line: seen at least every `within`, else the alarms fire.
    Expect(Duration, Vec<u32>),
}

impl Plan {
    /// The rules as the router needs them ([`crate::dispatch::router::RuleRoute`]).
    pub fn rule_routes(&self) -> Vec<crate::dispatch::router::RuleRoute> {
        self.rules
            .iter()
            .map(|r| crate::dispatch::router::RuleRoute {
                regex: r.regex.clone(),
                captures: r.captures.clone(),
                alarms: r.alarms.clone(),
                multiline: r.multiline.clone(),
            })
            .collect()
    }

    /// The watches over expected lines, silent inputs and recoveries, starting at `now`.
    pub fn watches(&self, now: std::time::Instant) -> Watches {
        let mut w = Watches::new(self.rules.len());
        for h in &self.hidden {
            match &h.what {
                HiddenDef::Resolve(rule) => w.resolve(*rule),
                HiddenDef::Expect(within, alarms) => {
                    w.expect(&h.regex, *within, alarms.clone(), now)
                }
            }
        }
        for (silence, name, after, alarms) in &self.stalls {
            w.stall(name, silence.clone(), *after, alarms.clone(), now);
        }
        w
    }
}

/// Checks `config` and builds the plan; `for_report` builds the matcher for
/// `logalarm test`, which also reports lines matching only negative rules;
/// `wrap` shares a child pid with the actions (`logalarm run`).
///
/// # Errors
/// Every problem found, each with its origin and the fix: those found while
/// loading ([`Config::errors`]) first, then those of each step in turn.
pub fn build(config: &Config, for_report: bool, wrap: bool) -> Result<Plan, Vec<ConfigError>> {
    let child_pid = wrap.then(|| Arc::new(AtomicI32::new(0)));
    // Errors found while loading come first; checking goes on so all show at once.
    let mut errors = config.errors.clone();
    let mut alarms = alarms::build_alarms(config, child_pid.as_ref(), &mut errors);
    alarms::link_fallbacks(config, &mut alarms, &mut errors);
    policies::link_policies(config, &mut alarms, &mut errors);
    let names = plan_names(&alarms);
    let (rules, mut hirs) = rules::plan_rules(config, &names, &mut errors);
    rules::check_direct(config, &mut errors);
    templates::check_caps(config, &names, &rules, &mut errors);
    let hidden = rules::hidden_rules(config, &names, &mut hirs, &mut errors);
    let stalls = watches::stall_watches(config, &names, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let matcher = compile_matcher(&hirs, &rules, hidden.len(), alarms.len(), for_report)?;
    Ok(Plan {
        alarms,
        rules,
        matcher,
        child_pid,
        hidden,
        stalls,
        alarm_freq: config.settings.alarm_freq(),
        msg_size: config.settings.msg_size(),
    })
}

/// The alarms' names, by index.
fn plan_names(alarms: &[PlannedAlarm]) -> Vec<Arc<str>> {
    alarms.iter().map(|a| a.name.clone()).collect()
}

/// The matcher over the rules' patterns and then the `hidden` hidden rules'
/// (`hirs` holds both, in that order), the hidden ones out of reports.
fn compile_matcher(
    hirs: &[regex_syntax::hir::Hir],
    rules: &[PlannedRule],
    hidden: usize,
    alarms: usize,
    for_report: bool,
) -> Result<Matcher, Vec<ConfigError>> {
    let mut matcher_rules: Vec<Rule> = rules
        .iter()
        .map(|r| Rule {
            negate: r.negate,
            alarms: r.alarms.clone(),
            record: r.multiline.is_some(),
        })
        .collect();
    matcher_rules.extend((0..hidden).map(|_| Rule {
        negate: false,
        alarms: Vec::new(),
        record: false,
    }));
    let visible = rules.len();
    Matcher::new(hirs, matcher_rules, alarms, for_report)
        .map(|m| m.hide_from(visible))
        .map_err(|e| {
            vec![ConfigError {
                origin: None,
                what: format!("the rules do not compile together: {e}"),
                fix: None,
            }]
        })
}

/// Warnings about a valid plan: alarms nothing fires (no rule, no `on_exit`,
/// no `alarm-fd` names them).
pub fn warnings(plan: &Plan, config: &Config) -> Vec<String> {
    let direct = |name: &str| {
        config.run.on_exit.iter().any(|(n, _)| n == name)
            || config.alarm_fds.iter().any(|d| d.alarm == name)
            || config
                .alarms
                .iter()
                .any(|a| a.on_failure.as_ref().is_some_and(|(n, _)| n == name))
            || config
                .alarms
                .iter()
                .any(|a| a.policy.list.iter().any(|p| p.fires().contains(&name)))
            || config
                .expects
                .iter()
                .any(|e| e.alarms.iter().any(|a| a == name))
            || config
                .stalls
                .iter()
                .any(|(_, s)| s.alarms.iter().any(|a| a == name))
    };
    plan.alarms
        .iter()
        .enumerate()
        .filter(|(i, a)| {
            !plan.rules.iter().any(|r| r.alarms.contains(&(*i as u32))) && !direct(&a.name)
        })
        .map(|(_, a)| format!("{}: alarm {:?} is not named by any rule", a.origin, a.name))
        .collect()
}

/// What the unit tests of the steps share: configs from text, errors as text.
#[cfg(test)]
mod testing {
    use crate::config::{Config, ConfigError};
    use std::path::Path;

    /// A TOML config that loaded without errors, read as `t.toml`.
    pub(super) fn toml(text: &str) -> Config {
        crate::config::toml::parse(Path::new("t.toml"), text)
            .unwrap_or_else(|e| panic!("{}", strings(&e).join("\n")))
    }

    /// An INI config that loaded without errors, read as `a.ini`.
    pub(super) fn ini(text: &str) -> Config {
        crate::config::ini::parse(Path::new("a.ini"), text)
            .unwrap_or_else(|e| panic!("{}", strings(&e).join("\n")))
    }

    /// The errors as `logalarm check` prints them (without its tag).
    pub(super) fn strings(errors: &[ConfigError]) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    /// The errors of building the plan of `config` (none when it builds).
    pub(super) fn plan_errors(config: &Config) -> Vec<String> {
        match super::build(config, false, false) {
            Ok(_) => Vec::new(),
            Err(e) => strings(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{plan_errors, toml};
    use super::*;

    const FULL: &str = r#"
[[input]]
file = "/var/log/a.log"
stall_after = "5m"
on_stall = "pager"
[alarm.mail]
action = "log:"
on_failure = "pager"
[alarm.pager]
action = "log:"
[alarm.spare]
action = "log:"
[[expect]]
regex = "heartbeat"
within = "1m"
alarm = "pager"
[[rule]]
regex = "DEBUG"
alarms = ["mail"]
negate = true
[[rule]]
regex = "ERROR (?P<code>\\d+)"
alarms = ["mail", "pager", "mail"]
resolve = "OK"
"#;

    #[test]
    fn a_valid_config_becomes_its_plan() {
        let config = toml(FULL);
        let plan = build(&config, false, true).unwrap_or_else(|e| panic!("{e:?}"));
        let names: Vec<&str> = plan.alarms.iter().map(|a| &*a.name).collect();
        assert_eq!(names, ["mail", "pager", "spare"]);
        assert_eq!(plan.alarms[0].on_failure, Some(1));
        assert_eq!(plan.alarms[1].on_failure, None);
        assert_eq!(plan.alarms[0].action_text, "log:");
        let rules: Vec<(&str, bool, &[u32])> = plan
            .rules
            .iter()
            .map(|r| (&*r.regex, r.negate, r.alarms.as_slice()))
            .collect();
        assert_eq!(
            rules,
            [
                ("DEBUG", true, &[0][..]),
                // An alarm named twice fires once.
                ("ERROR (?P<code>\\d+)", false, &[0, 1][..])
            ]
        );
        assert!(plan.rules[0].captures.is_none());
        assert!(plan.rules[1].captures.is_some());
        let hidden: Vec<String> = plan
            .hidden
            .iter()
            .map(|h| format!("{} {:?}", h.regex, h.what))
            .collect();
        assert_eq!(
            hidden,
            ["OK Resolve(1)", "heartbeat Expect(60s, [1])"],
            "recovery lines first, then expected lines"
        );
        let stalls: Vec<(&str, Duration, &[u32])> = plan
            .stalls
            .iter()
            .map(|(_, name, after, alarms)| (name.as_str(), *after, alarms.as_slice()))
            .collect();
        assert_eq!(
            stalls,
            [("file:/var/log/a.log", Duration::from_secs(300), &[1][..])]
        );
        assert!(plan.child_pid.is_some(), "wrap shares a pid");
        let routes = plan.rule_routes();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[1].alarms, [0, 1]);
    }

    /// What the matcher found on a line: the line, the rules evaluated, the
    /// negative rule that stopped, the hits as (alarm, rule).
    type Seen = (String, Vec<u32>, Option<u32>, Vec<(u32, u32)>);

    /// Each line the matcher found.
    #[derive(Default)]
    struct Collect(Vec<Seen>);

    impl crate::matcher::Sink for Collect {
        fn matched(&mut self, m: &crate::matcher::LineMatch<'_>) {
            self.0.push((
                String::from_utf8_lossy(m.line).into_owned(),
                m.rules.to_vec(),
                m.stopped_by,
                m.hits.iter().map(|h| (h.alarm, h.rule)).collect(),
            ));
        }
    }

    #[test]
    fn the_matcher_runs_the_rules_then_the_hidden_ones() {
        let plan = build(&toml(FULL), false, false).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(plan.child_pid.is_none());
        let mut sink = Collect::default();
        plan.matcher.scanner(false).scan(
            b"ERROR 5\nDEBUG ERROR 5 heartbeat\nOK heartbeat\nnothing\n",
            &mut sink,
        );
        assert_eq!(
            sink.0,
            [
                ("ERROR 5".to_owned(), vec![1], None, vec![(0, 1), (1, 1)]),
                // A negative rule skips the rules after it, not the hidden ones.
                (
                    "DEBUG ERROR 5 heartbeat".to_owned(),
                    vec![0, 3],
                    Some(0),
                    vec![]
                ),
                // The hidden rules fire nothing themselves.
                ("OK heartbeat".to_owned(), vec![2, 3], None, vec![]),
            ]
        );
    }

    #[test]
    fn an_alarm_nothing_fires_is_a_warning() {
        let config = toml(FULL);
        let plan = build(&config, false, false).unwrap_or_else(|e| panic!("{e:?}"));
        // pager: on_failure, [[expect]] and on_stall name it; spare: nothing.
        assert_eq!(
            warnings(&plan, &config),
            ["t.toml:12: alarm.spare.action: alarm \"spare\" is not named by any rule"]
        );
    }

    #[test]
    fn the_errors_of_every_step_show_at_once_in_step_order() {
        let config = toml(
            r#"
stall_after = "1m"
on_stall = "e"
[alarm.a]
action = "nope:"
[alarm.f]
action = "log:"
on_failure = "f"
[alarm.b]
action = "log:"
escalate = { limit = 1, window = "1m", alarm = "ghost" }
message = "{{ caps.ip }}"
[[rule]]
regex = "x"
alarms = ["b", "c"]
[[expect]]
regex = "hb"
within = "1m"
alarm = "d"
"#,
        );
        let errors = plan_errors(&config);
        let firsts: Vec<&str> = errors
            .iter()
            .map(|e| {
                e.split(": ")
                    .nth(2)
                    .and_then(|w| w.split("; ").next())
                    .unwrap_or(e)
            })
            .collect();
        assert_eq!(
            firsts,
            [
                "unknown plugin \"nope\" (this build has",
                "alarm \"f\" cannot be its own on_failure alarm",
                "escalate names unknown alarm \"ghost\"",
                "unknown alarm \"c\"",
                "`caps` group \"ip\" is in no rule firing alarm \"b\" (they have no capture groups)",
                "[[expect]] names unknown alarm \"d\"",
                "on_stall names unknown alarm \"e\"",
            ],
            "{errors:#?}"
        );
    }

    #[test]
    fn errors_found_while_loading_come_first() {
        let mut config =
            toml("[alarm.a]\naction = \"log:\"\n[[rule]]\nregex = \"x\"\nalarm = \"b\"\n");
        config.errors.push(ConfigError {
            origin: None,
            what: "loaded badly".into(),
            fix: None,
        });
        let errors = plan_errors(&config);
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert_eq!(errors[0], "loaded badly");
        assert!(errors[1].starts_with("t.toml:4: rule[1].regex: unknown alarm \"b\""));
    }
}
